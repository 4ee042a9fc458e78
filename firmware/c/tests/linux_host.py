#!/usr/bin/env python3
"""A Linux-like remoteproc + virtio_rpmsg host for the C firmwares in firmware/c, over
QEMU's shared RAM file. It does what Linux does, step by step, and nothing intercore does:

  * loads the ELF's PT_LOAD segments at p_paddr and finds `.resource_table`
    (remoteproc_elf_loader.c);
  * starts the core first, then brings the virtio device up (rproc_start: ops->start
    before the subdevices);
  * allocates ANY vrings and the 512-byte buffers from a per-device coherent pool whose
    allocations are aligned to their own power-of-two size (kernel/dma/coherent.c), writes
    da and notify ids (0, 1, ...) back (rproc_alloc_vring), writes gfeatures, posts every
    receive buffer on vring 0 (device-writable, 512 B), then status 0x7
    (ACKNOWLEDGE|DRIVER|DRIVER_OK: no FEATURES_OK without VIRTIO_F_VERSION_1);
  * sends on vring 1 with descriptor length = header + payload, flags 0; takes received
    buffers by its own cookie for the descriptor id (virtqueue_get_buf), and re-posts the
    same buffer at once (rpmsg_recv_single).

It then checks the announcements and an echo of every payload size, and exits non-zero
with the reason on any difference. Written for this project (tests only)."""

import argparse
import ctypes
import signal
import mmap
import os
import struct
import subprocess
import sys
import tempfile
import time

RAM = 16 << 20
ANY = 0xFFFFFFFF
PAGE = 4096


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


class Elf:
    def __init__(self, path):
        self.data = open(path, "rb").read()
        d = self.data
        if d[:4] != b"\x7fELF" or d[4] != 1 or d[5] != 1:
            fail(f"{path}: not a little-endian ELF32")
        (self.entry, phoff, shoff) = struct.unpack_from("<III", d, 24)
        (phentsize, phnum, shentsize, shnum, shstrndx) = struct.unpack_from("<HHHHH", d, 42)
        self.segs = []
        for i in range(phnum):
            (t, off, va, pa, fsz, msz, fl, al) = struct.unpack_from("<8I", d, phoff + i * phentsize)
            if t == 1 and msz > 0:
                self.segs.append((pa, d[off:off + fsz], msz))
        secs = [struct.unpack_from("<10I", d, shoff + i * shentsize) for i in range(shnum)]
        stroff = secs[shstrndx][4]
        self.sections = {}
        for s in secs:
            name = d[stroff + s[0]:d.index(b"\0", stroff + s[0])].decode()
            self.sections[name] = (s[3], s[5])  # addr, size


class Ring:
    def __init__(self, mem, da, num, align):
        self.mem, self.da, self.num = mem, da, num
        self.avail = da + 16 * num
        used = 16 * num + 2 * (3 + num)
        self.used = da + ((used + align - 1) & ~(align - 1))
        self.avail_idx = 0
        self.last_used = 0

    def u16(self, a):
        return struct.unpack_from("<H", self.mem, a)[0]

    def w16(self, a, v):
        struct.pack_into("<H", self.mem, a, v & 0xFFFF)

    def set_desc(self, i, addr, ln, flags):
        struct.pack_into("<QIHH", self.mem, self.da + 16 * i, addr, ln, flags, 0)

    def post(self, i):
        self.w16(self.avail + 4 + 2 * (self.avail_idx % self.num), i)
        self.avail_idx = (self.avail_idx + 1) & 0xFFFF
        self.w16(self.avail + 2, self.avail_idx)

    def used_idx(self):
        return self.u16(self.used + 2)

    def get_used(self):
        if self.used_idx() == self.last_used:
            return None
        e = self.used + 4 + 8 * (self.last_used % self.num)
        (i, ln) = struct.unpack_from("<II", self.mem, e)
        self.last_used = (self.last_used + 1) & 0xFFFF
        return i, ln


def die_with_parent():
    """QEMU gets SIGKILL when this harness dies, however it dies (prctl PR_SET_PDEATHSIG)."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)


def order_align(size):
    """kernel/dma/coherent.c: bitmap_find_free_region(.., get_order(size)) aligns an
    allocation to its own power-of-two number of pages."""
    pages = (size + PAGE - 1) // PAGE
    n = 1
    while n < pages:
        n <<= 1
    return n * PAGE


class Pool:
    def __init__(self, base, size):
        self.base, self.end, self.next = base, base + size, base

    def alloc(self, size):
        a = order_align(size)
        at = (self.next + a - 1) & ~(a - 1)
        if at + size > self.end:
            fail("coherent pool exhausted")
        self.next = at + a
        return at


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("elf")
    ap.add_argument("--qemu", default=os.environ.get("INTERCORE_QEMU", "qemu-system-arm"))
    ap.add_argument("--pool", type=lambda s: int(s, 0), default=0x200000,
                    help="device address of the vdev's coherent pool (ANY vrings and buffers)")
    ap.add_argument("--buffers", type=lambda s: int(s, 0), default=None,
                    help="place the buffers here instead of the pool (a vdev0buffer carveout)")
    ap.add_argument("--status", type=lambda s: int(s, 0), default=0x7,
                    help="the vdev status to write at DRIVER_OK (Linux: 0x7)")
    ap.add_argument("--no-status", action="store_true", help="write no status (RPMsg-Lite has none)")
    ap.add_argument("--no-buffers", action="store_true",
                    help="post no receive buffers (so vring 0 is never notified)")
    ap.add_argument("--expect", action="append", default=[],
                    help="NAME@ADDR announcement expected (ADDR may be *), in order")
    ap.add_argument("--service", help="service to echo on (default: the first expected)")
    ap.add_argument("--prefix", default="", help="reply = PREFIX%%04x(ept) + payload (rpmsg-tty)")
    ap.add_argument("--max", type=int, default=496, help="largest payload to echo")
    ap.add_argument("--rounds", type=int, default=1, help="how many passes over 1..=max")
    ap.add_argument("--tx-used-len", default="any", help="'msg' (16 + payload), 'desc' (512) or 'any'")
    ap.add_argument("--rx-used-len", default="any", help="'desc' or 'any'")
    ap.add_argument("--expect-silent", type=float, default=None,
                    help="expect NO announcement within this many seconds (the firmware must not start)")
    ap.add_argument("--expect-exit", type=int, default=None,
                    help="expect the firmware to exit with this code, having printed --console text")
    ap.add_argument("--bad-head", action="store_true",
                    help="after the announcements, make a vring-1 avail entry name a descriptor past "
                         "the table; with --expect-exit")
    ap.add_argument("--console", action="append", default=[], help="text the console must show")
    ap.add_argument("--timeout", type=float, default=30.0)
    a = ap.parse_args()

    elf = Elf(a.elf)
    if ".resource_table" not in elf.sections:
        fail("no .resource_table section")
    rt, rt_size = elf.sections[".resource_table"]

    fd, path = tempfile.mkstemp(prefix="fw-shm-", dir="/dev/shm")
    os.unlink(path)  # nothing left behind: QEMU gets the open file as /proc/self/fd/N
    os.ftruncate(fd, RAM)
    mem = mmap.mmap(fd, RAM)
    for pa, data, msz in elf.segs:
        if pa + msz > RAM:
            fail(f"segment at {pa:#x} outside the RAM")
        mem[pa:pa + len(data)] = data
        mem[pa + len(data):pa + msz] = bytes(msz - len(data))

    # the resource table: one vdev expected
    ver, num = struct.unpack_from("<II", mem, rt)
    vdev = None
    for i in range(num):
        off = struct.unpack_from("<I", mem, rt + 16 + 4 * i)[0]
        if struct.unpack_from("<I", mem, rt + off)[0] == 3:
            vdev = rt + off
    if vdev is None:
        fail("no vdev entry")
    (_, vid, _, dfeat, _, _, status, nvr) = struct.unpack_from("<6IBB", mem, vdev)
    rings = [struct.unpack_from("<5I", mem, vdev + 28 + 20 * i) for i in range(nvr)]

    console = tempfile.NamedTemporaryFile(prefix="fw-console-", delete=False)
    qemu = subprocess.Popen(
        [a.qemu, "-nodefaults", "-display", "none", "-monitor", "none",
         "-semihosting-config", "enable=on,target=native",
         "-object", f"memory-backend-file,id=shm,mem-path=/proc/self/fd/{fd},size=16M,share=on",
         "-M", "none,memory-backend=shm", "-cpu", "cortex-r5f",
         "-device", f"loader,addr={elf.entry:#x},cpu-num=0"],
        stdin=subprocess.DEVNULL, stdout=console, stderr=console, preexec_fn=die_with_parent,
        pass_fds=(fd,))

    def console_text():
        return open(console.name, errors="replace").read()

    def finish(code, msg=None):
        if qemu.poll() is None:
            qemu.kill()
            qemu.wait()
        text = console_text()
        if msg:
            print(("PASS: " if code == 0 else "FAIL: ") + msg, file=sys.stderr)
        if code != 0:
            print("--- firmware console ---\n" + text, file=sys.stderr)
        os.unlink(console.name)
        sys.exit(code)

    def alive():
        if qemu.poll() is not None and a.expect_exit is None:
            finish(1, f"QEMU/firmware exited with {qemu.returncode}")

    time.sleep(0.2)  # rproc_start: the core runs before the virtio device comes up

    # rproc_alloc_vring: ANY rings from the pool, notify ids from 0 (idr_alloc)
    pool = Pool(a.pool, RAM - a.pool)
    ring_da = []
    for i, (da, align, n, _nid, _pa) in enumerate(rings):
        if da == ANY:
            da = pool.alloc(((16 * n + 2 * (3 + n) + align - 1) & ~(align - 1)) + 6 + 8 * n)
        ring_da.append(da)
        struct.pack_into("<I", mem, vdev + 28 + 20 * i, da)
        struct.pack_into("<I", mem, vdev + 28 + 20 * i + 12, i)
    # virtio_rpmsg_bus: min(2 * vring size, 512) buffers of 512 B, first half receive
    n = rings[0][2]
    nbufs = min(2 * n, 512)
    bufs = a.buffers if a.buffers is not None else pool.alloc(nbufs * 512)
    rx = Ring(mem, ring_da[0], rings[0][2], rings[0][1])
    tx = Ring(mem, ring_da[1], rings[1][2], rings[1][1])
    mem[ring_da[0]:ring_da[0] + 16 * n] = bytes(16 * n)
    cookie = {}
    half = nbufs // 2
    for i in range(0 if a.no_buffers else min(half, rx.num)):
        cookie[i] = bufs + 512 * i
        rx.set_desc(i, cookie[i], 512, 2)
        rx.post(i)
    if not a.no_status:
        struct.pack_into("<I", mem, vdev + 16, dfeat & 1)  # gfeatures: NS if offered
        mem[vdev + 24] = a.status  # status after every ring and buffer is in place
    tx_next = 0  # get_a_tx_buf: unused buffers first, then recycled ones
    tx_free = []

    def recv(deadline):
        nap = 0.0001
        while time.time() < deadline:
            alive()
            u = rx.get_used()
            if u is None:
                time.sleep(nap)
                nap = min(nap * 2, 0.005)  # the machine is shared: back off while idle
                continue
            i, ln = u
            if i not in cookie:
                finish(1, f"vring0 used id {i} was never posted")
            b = cookie[i]
            src, dst, _r, plen, _fl = struct.unpack_from("<IIIHH", mem, b)
            if plen > 496:
                finish(1, f"message length {plen} > 496")
            if a.tx_used_len == "msg" and ln != 16 + plen:
                finish(1, f"used length {ln} for a {plen}-byte message (expected header + payload)")
            if a.tx_used_len == "desc" and ln != 512:
                finish(1, f"used length {ln} for a {plen}-byte message (expected the buffer's 512)")
            payload = bytes(mem[b + 16:b + 16 + plen])
            rx.set_desc(i, b, 512, 2)  # rpmsg_recv_single: the same buffer again
            rx.post(i)
            return src, dst, payload
        return None

    def send(src, dst, payload):
        nonlocal tx_next
        while True:
            alive()
            u = tx.get_used()
            if u is not None:
                i, ln = u
                if a.rx_used_len == "desc" and ln != tx_desc_len[i]:
                    finish(1, f"vring1 used length {ln}, descriptor length {tx_desc_len[i]}")
                tx_free.append(i)
                continue
            if tx_next < min(half, tx.num):
                i = tx_next
                tx_next += 1
                break
            if tx_free:
                i = tx_free.pop(0)
                break
            time.sleep(0.0005)
        b = bufs + 512 * (half + i)
        struct.pack_into("<IIIHH", mem, b, src, dst, 0, len(payload), 0)
        mem[b + 16:b + 16 + len(payload)] = payload
        tx_desc_len[i] = 16 + len(payload)
        tx.set_desc(i, b, 16 + len(payload), 0)
        tx.post(i)

    tx_desc_len = {}

    if a.expect_silent is not None:
        r = recv(time.time() + a.expect_silent)
        if r is not None:
            finish(1, f"the firmware started (sent {r!r}) although it must not")
        for c in a.console:
            if c not in console_text():
                finish(1, f"console lacks {c!r}")
        finish(0, f"no announcement within {a.expect_silent} s, as expected")
    def wait_exit():
        deadline = time.time() + a.timeout
        while qemu.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        if qemu.returncode != a.expect_exit:
            finish(1, f"exit code {qemu.returncode}, expected {a.expect_exit}")
        for c in a.console:
            if c not in console_text():
                finish(1, f"console lacks {c!r}")
        finish(0, f"firmware exited with {a.expect_exit} as expected")

    if a.expect_exit is not None and not a.bad_head:
        wait_exit()

    deadline = time.time() + a.timeout
    services = {}
    for e in a.expect:
        name, addr = e.split("@")
        r = recv(deadline)
        if r is None:
            finish(1, f"no announcement of {name}")
        src, dst, p = r
        if dst != 53 or len(p) != 40:
            finish(1, f"expected a 40-byte name-service message to 53, got {len(p)} bytes to {dst}")
        got = p[:32].split(b"\0")[0].decode()
        gaddr, flags = struct.unpack_from("<II", p, 32)
        if got != name or (addr != "*" and gaddr != int(addr, 0)) or flags != 0:
            finish(1, f"announcement {got}@{gaddr:#x} flags {flags}, expected {e}")
        services[name] = gaddr
    if a.bad_head:
        tx.w16(tx.avail + 4 + 2 * (tx.avail_idx % tx.num), tx.num + 5)
        tx.avail_idx = (tx.avail_idx + 1) & 0xFFFF
        tx.w16(tx.avail + 2, tx.avail_idx)
        wait_exit()
    for c in a.console:
        if c not in console_text():
            finish(1, f"console lacks {c!r}")
    svc = a.service or (a.expect[0].split("@")[0] if a.expect else None)
    if svc is None:
        finish(0, "no service to echo on")
    ept = services[svc]
    local = 0x400
    count = 0
    for rnd in range(a.rounds):
        for size in range(1, a.max + 1):
            payload = bytes((size * 7 + k + rnd) & 0xFF for k in range(size))
            send(local, ept, payload)
            while True:
                r = recv(time.time() + a.timeout)
                if r is None:
                    finish(1, f"no reply to a {size}-byte message")
                src, dst, p = r
                if dst == 53 and len(p) == 40:
                    continue  # a later announcement (rpmsg_ns_cb), not a reply
                break
            want = (a.prefix % ept).encode() + payload if a.prefix else payload
            if (src, dst) != (ept, local) or p != want:
                finish(1, f"reply {src:#x}->{dst:#x} {len(p)} B differs for size {size}")
            count += 1
    finish(0, f"{count} echoes verified on {svc}@{ept:#x} (sizes 1..={a.max})")


main()
