//! intercore's host under a firmware that behaves as TI's MCU+ SDK `ipc_rpmsg` driver does
//! with Linux (TexasInstruments/mcupsdk-core, `source/drivers/ipc_rpmsg/ipc_rpmsg.c` and
//! `ipc_rpmsg_vring.c`), on TI K3's memory layout (`ti_k3_common.c`: memory-region 0 is the
//! vdev's DMA pool, the firmware's table at the start of region 1). The model follows TI's
//! functions step by step, each step naming the function it follows; it trusts nothing but
//! what TI's code reads:
//!
//! * it starts only when the vdev status is **exactly 0x7** (`RPMessage_waitForLinuxReady`);
//! * it then **rewrites vring 0** (its transmit ring) itself, descriptors pointing at
//!   buffers it computes from `vring0.da` (`RPMessage_vringResetLinux` →
//!   `RPMessage_vringResetInternal`): `vring0.da + 0x40000` for 256 entries aligned to
//!   4096 — where Linux's coherent pool puts the host's receive buffers;
//! * it announces `rpmsg_chrdev` on endpoint 14 and `ti.ipc4.ping-pong` on 13
//!   (`RPMessage_announce`, from and to endpoint 53), 512-byte buffers (496-byte payloads).

use intercore::rpmsg::Channel;
use intercore::rpmsg::RPMSG_ADDR_ANY;
use intercore::rpmsg::{HostBus, HostConfig, RscLocation};
use intercore::testing::HeapMem;
use intercore::wire::Le32;
use intercore::wire::rsc::{
    FW_RSC_ADDR_ANY, FwRscTrace, FwRscVdev, FwRscVdevVring, ResourceTable, RscTableWriter,
    VDEV_STATUS_OFFSET,
};
use intercore::{DevAddr, Doorbell, Error, LinearMap, SharedMemory};
use std::collections::VecDeque;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const T: Option<Duration> = Some(Duration::from_secs(10));
const DA: u64 = 0xA000_0000;
/// Memory-region 0 (the DMA pool) and region 1 (the firmware, table at its start).
const REGION0: usize = 0x10_0000;
const REGION1: usize = 0x1_0000;
/// `RPMESSAGE_LINUX_MSG_SIZE` (`ipc_rpmsg_priv.h`: "fixed in Linux side").
const MSG_SIZE: u32 = 512;
/// `RPMESSAGE_CTRL_ENDPOINT_ID`.
const CTRL_EP: u32 = 53;
/// `RPMESSAGE_LINUX_TX_VRING_ID` / `RPMESSAGE_LINUX_RX_VRING_ID`: the mailbox values.
const LINUX_TX_VRING_ID: u32 = 0;
const LINUX_RX_VRING_ID: u32 = 1;
/// `RPMESSAGE_MAX_LOCAL_MSG_OBJ`: received messages outstanding at once.
const MAX_LOCAL_MSG_OBJ: usize = 16;

// ---------------------------------------------------------------------------------------
// The mailbox: each message is a vring id (TI K3: `ti_k3_r5_remoteproc` sends the notify id;
// the firmware's IpcNotify delivers its value to `RPMessage_notifyCallback`).

#[derive(Default)]
struct Wire {
    /// Values sent to each side, not yet taken: `[to host, to firmware]`.
    pending: [VecDeque<u32>; 2],
}

#[derive(Clone)]
struct Mailbox {
    wire: Arc<Mutex<Wire>>,
    side: usize,
    epoch: Instant,
}

impl Mailbox {
    fn pair() -> (Mailbox, Mailbox) {
        let wire = Arc::new(Mutex::new(Wire::default()));
        let epoch = Instant::now();
        let side = |side| Mailbox {
            wire: Arc::clone(&wire),
            side,
            epoch,
        };
        (side(0), side(1))
    }
    fn take(&self) -> Option<u32> {
        self.wire.lock().unwrap().pending[self.side].pop_front()
    }
}

impl Doorbell for Mailbox {
    const CARRIES_NOTIFY_ID: bool = true;
    fn ring(&self, notify_id: u32) -> intercore::Result<()> {
        self.wire.lock().unwrap().pending[1 - self.side].push_back(notify_id);
        Ok(())
    }
    fn wait(&self, timeout: Option<Duration>) -> intercore::Result<bool> {
        let end = Instant::now() + timeout.unwrap_or(Duration::from_secs(3600));
        loop {
            // The host learns "something happened" and looks at its rings: take it all.
            if self.wire.lock().unwrap().pending[self.side]
                .drain(..)
                .count()
                > 0
            {
                return Ok(true);
            }
            if Instant::now() >= end {
                return Ok(false);
            }
            std::thread::sleep(Duration::from_micros(100));
        }
    }
    fn now(&self) -> Duration {
        self.epoch.elapsed()
    }
}

// ---------------------------------------------------------------------------------------
// The firmware's resource table: the one of TI's doc sample `IpcRPMessage_linux_sample.c`
// (`ipc_rpmsg_linux_resource_table.h`): a trace entry and the rpmsg vdev (id 7, NS), both
// vrings at FW_RSC_ADDR_ANY, align 4096, 256 entries, notify ids 1 and 2.

fn ti_table(mem: &HeapMem) -> RscLocation {
    let mut buf = vec![0u8; 256];
    let mut w = RscTableWriter::new(&mut buf, 2).unwrap();
    w.add_trace(&FwRscTrace {
        da: Le32::new((DA + (REGION0 + 0x8000) as u64) as u32),
        len: Le32::new(0x1000),
        reserved: Le32::new(0),
        name: intercore::rpmsg::rsc_table::name32(b"trace:r5fss0_0"),
    })
    .unwrap();
    let ring = |id: u32| FwRscVdevVring {
        da: Le32::new(FW_RSC_ADDR_ANY),
        align: Le32::new(4096),
        num: Le32::new(256),
        notifyid: Le32::new(id),
        pa: Le32::new(0),
    };
    w.add_vdev(
        &FwRscVdev {
            id: Le32::new(7),
            dfeatures: Le32::new(1),
            ..Default::default()
        },
        &[ring(1), ring(2)],
        &[],
    )
    .unwrap();
    w.finish();
    mem.write(REGION0, &buf);
    RscLocation {
        offset: REGION0,
        len: buf.len(),
    }
}

/// `RPMessage_Vring`: TI's private state of one ring in shared memory.
struct Vring {
    /// Region offsets of `desc`, `avail`, `used`.
    desc: usize,
    avail: usize,
    used: usize,
    num: u16,
    last_avail: u16,
}

/// `RPMessage_align`.
fn align(v: u32, a: u32) -> u32 {
    (v + a - 1) & !(a - 1)
}

struct TiFirmware {
    mem: Arc<HeapMem>,
    bell: Mailbox,
    /// `vringTxObj` (vring 0) and `vringRxObj` (vring 1).
    tx: Vring,
    rx: Vring,
    /// Where the firmware put its transmit buffers (region offset), for the tests.
    tx_bufs: usize,
    /// Endpoints constructed (`RPMessage_construct`), each with its queue of received
    /// buffer ids (`endPtQ`), at most `MAX_LOCAL_MSG_OBJ` in all (`freeQ`).
    endpoints: Vec<(u32, VecDeque<u16>)>,
}

impl TiFirmware {
    fn off(da: u32) -> usize {
        (da as u64 - DA) as usize
    }

    /// The vdev's `vring[i]` entry: (da, align, num).
    fn vring_entry(mem: &HeapMem, rsc: RscLocation, i: usize) -> (u32, u32, u16) {
        let mut raw = vec![0u8; rsc.len];
        mem.read(rsc.offset, &mut raw);
        let t = ResourceTable::validate(&raw).unwrap();
        let v = t.find_vdev(7).unwrap().unwrap();
        let r = v.vring(i).unwrap();
        (r.da.get(), r.align.get(), r.num.get() as u16)
    }

    /// `RPMessage_waitForLinuxReady`: `CacheP_inv` the table, then `if(rscTable->vdev.status
    /// == 0x7U)` — exactly 0x7 — else sleep a tick until `timeout`. Then
    /// `RPMessage_vringResetLinux` for RX (vring 1, `isTx` 0: nothing written) and TX
    /// (vring 0, `isTx` 1: rewritten). `None` on timeout.
    fn wait_for_linux_ready(
        mem: Arc<HeapMem>,
        bell: Mailbox,
        rsc: RscLocation,
        timeout: Duration,
    ) -> Option<TiFirmware> {
        let status_off = {
            let mut raw = vec![0u8; rsc.len];
            mem.read(rsc.offset, &mut raw);
            let t = ResourceTable::validate(&raw).unwrap();
            rsc.offset + t.find_vdev(7).unwrap().unwrap().offset + VDEV_STATUS_OFFSET
        };
        let end = Instant::now() + timeout;
        // Acquire: stands for CacheP_inv + the barrier before reading what Linux wrote.
        while mem.load_u32(status_off, Acquire) as u8 != 0x7 {
            if Instant::now() >= end {
                return None;
            }
            // The mailbox interrupt fires meanwhile; `RPMessage_notifyCallback` ignores it
            // while `isCoreInitialized` is 0.
            while bell.take().is_some() {}
            std::thread::sleep(Duration::from_micros(200));
        }
        let rx = Self::vring_reset_linux(&mem, rsc, false).0;
        let (tx, tx_bufs) = Self::vring_reset_linux(&mem, rsc, true);
        Some(TiFirmware {
            mem,
            bell,
            tx,
            rx,
            tx_bufs,
            endpoints: Vec::new(),
        })
    }

    /// `RPMessage_vringResetLinux(remoteCoreId, isTx, rscTable)`: TX is vring 0, RX vring 1;
    /// `msgSize = RPMESSAGE_LINUX_MSG_SIZE`; `offset_avail = 16·num`; `offset_used =
    /// offset_avail + align(2·(2+num), align)`; `offset_buf = offset_used + align(4 + 8·num,
    /// align)`, then aligned to `num·msgSize·2` ("256KB after offset_used"); for RX (unused)
    /// moved on by `num·msgSize − (vring1.da − vring0.da)`. Then
    /// `RPMessage_vringResetInternal`, which writes only a TX ring: every descriptor
    /// `{addr = bufBase + i·msgSize, len = msgSize, flags 0, next 0}`, the available ring
    /// `0..num` with `idx` counted up to `num` and `flags` 0, the used ring `idx` and
    /// `flags` 0 and every element zeroed. Returns the ring and its buffers' offset.
    fn vring_reset_linux(mem: &HeapMem, rsc: RscLocation, is_tx: bool) -> (Vring, usize) {
        let (da, a, num) = Self::vring_entry(mem, rsc, if is_tx { 0 } else { 1 });
        let n = num as u32;
        let offset_avail = 16 * n;
        let offset_used = offset_avail + align(2 * (2 + n), a);
        let mut offset_buf = offset_used + align(4 + 8 * n, a);
        offset_buf = align(offset_buf, n * MSG_SIZE * 2);
        if !is_tx {
            let (da0, _, _) = Self::vring_entry(mem, rsc, 0);
            offset_buf = offset_buf.wrapping_add((n * MSG_SIZE).wrapping_sub(da - da0));
        }
        let base = Self::off(da);
        let ring = Vring {
            desc: base,
            avail: base + offset_avail as usize,
            used: base + offset_used as usize,
            num,
            last_avail: 0,
        };
        let bufs = base + offset_buf as usize;
        if is_tx {
            for i in 0..n {
                let d = ring.desc + 16 * i as usize;
                mem.store_u32(d, da.wrapping_add(offset_buf + i * MSG_SIZE), Relaxed);
                mem.store_u32(d + 4, 0, Relaxed); // padding
                mem.store_u32(d + 8, MSG_SIZE, Relaxed);
                mem.store_u16(d + 12, 0, Relaxed); // flags
                mem.store_u16(d + 14, 0, Relaxed); // next
            }
            mem.store_u16(ring.avail + 2, 0, Relaxed);
            mem.store_u16(ring.avail, 0, Relaxed);
            for i in 0..num {
                mem.store_u16(ring.avail + 4 + 2 * i as usize, i, Relaxed);
                mem.store_u16(ring.avail + 2, i + 1, Relaxed);
            }
            mem.store_u16(ring.used + 2, 0, Relaxed);
            mem.store_u16(ring.used, 0, Relaxed);
            for i in 0..n as usize {
                mem.store_u32(ring.used + 4 + 8 * i, 0, Relaxed);
                mem.store_u32(ring.used + 8 + 8 * i, 0, Relaxed);
            }
            // IpcRpMsg_dataAndInstructionBarrier is not in the reset; the first send's is.
        }
        (ring, if is_tx { bufs } else { 0 })
    }

    /// `RPMessage_construct` for endpoint `ep` (non-callback mode).
    fn construct(&mut self, ep: u32) {
        self.endpoints.push((ep, VecDeque::new()));
    }

    /// `RPMessage_vringGetEmptyTxBuf`: a buffer id from vring 0's available ring, or `None`
    /// (TI pends on `newEmptyVringBufSem`; the caller polls the mailbox and retries).
    fn get_empty_tx_buf(&mut self) -> Option<u16> {
        let m = &self.mem;
        if self.tx.last_avail == m.load_u16(self.tx.avail + 2, Acquire) {
            // "We need to know about added buffers": clear VRING_USED_F_NO_NOTIFY.
            let f = m.load_u16(self.tx.used, Relaxed);
            m.store_u16(self.tx.used, f & !1, Relaxed);
            return None;
        }
        let slot = self.tx.avail + 4 + 2 * (self.tx.last_avail % self.tx.num) as usize;
        let head = m.load_u16(slot, Relaxed);
        self.tx.last_avail = self.tx.last_avail.wrapping_add(1);
        Some(head)
    }

    /// `RPMessage_send` + `RPMessage_vringPutFullTxBuf`: the buffer's address and length
    /// come from vring 0's descriptor (`RPMessage_vringGetTxBufAddr`/`GetTxBufLen`); the
    /// payload is truncated to `len − 16`; header `{srcEndPt, dstEndPt, srcCoreId, dataLen,
    /// flags 0}`; used element `{id, dataLen + 16}`, `used->idx++`, barrier, then the
    /// mailbox value `RPMESSAGE_LINUX_TX_VRING_ID`. Waits (polling the mailbox) for a buffer.
    fn send(&mut self, data: &[u8], dst: u32, src: u32) {
        let end = Instant::now() + T.unwrap();
        let id = loop {
            if let Some(id) = self.get_empty_tx_buf() {
                break id;
            }
            assert!(
                Instant::now() < end,
                "firmware: no transmit buffer from the host"
            );
            self.poll_mailbox();
            std::thread::sleep(Duration::from_micros(100));
        };
        let m = &self.mem;
        let d = self.tx.desc + 16 * id as usize;
        let addr = m.load_u32(d, Relaxed);
        let buf_len = m.load_u32(d + 8, Relaxed);
        let len = (data.len() as u32).min(buf_len - 16);
        let at = Self::off(addr);
        m.store_u32(at, src, Relaxed);
        m.store_u32(at + 4, dst, Relaxed);
        m.store_u32(at + 8, 2, Relaxed); // srcCoreId: the firmware's own core id
        m.store_u16(at + 12, len as u16, Relaxed);
        m.store_u16(at + 14, 0, Relaxed);
        m.write(at + 16, &data[..len as usize]);
        let used_idx = m.load_u16(self.tx.used + 2, Relaxed);
        let e = self.tx.used + 4 + 8 * (used_idx % self.tx.num) as usize;
        m.store_u32(e, id as u32, Relaxed);
        m.store_u32(e + 4, len + 16, Relaxed);
        // Release: IpcRpMsg_dataAndInstructionBarrier before the index is seen.
        m.store_u16(self.tx.used + 2, used_idx.wrapping_add(1), Release);
        self.bell.ring(LINUX_TX_VRING_ID).unwrap();
    }

    /// `RPMessage_announce(linux, localEndPt, name)`: `{name[32], remoteEndPt = localEndPt,
    /// type = 0}` from and to `RPMESSAGE_CTRL_ENDPOINT_ID`.
    fn announce(&mut self, ep: u32, name: &str) {
        let mut msg = [0u8; 40];
        msg[..name.len()].copy_from_slice(name.as_bytes());
        msg[32..36].copy_from_slice(&ep.to_le_bytes());
        self.send(&msg, CTRL_EP, CTRL_EP);
    }

    /// The IpcNotify interrupt: each mailbox value goes to `RPMessage_notifyCallback`.
    /// `RPMESSAGE_LINUX_RX_VRING_ID` → `while (RPMessage_vringIsFullRxBuf)
    /// RPMessage_recvHandler`; anything else → `RPMessage_vringCheckEmptyTxBuf` (the sender
    /// above polls instead of pending on the semaphore).
    fn poll_mailbox(&mut self) {
        while let Some(v) = self.bell.take() {
            if v == LINUX_RX_VRING_ID {
                while self.is_full_rx_buf() && self.recv_handler() {}
            }
        }
    }

    /// `RPMessage_vringIsFullRxBuf` (Linux core): `lastAvailIdx != avail->idx` on vring 1.
    fn is_full_rx_buf(&self) -> bool {
        self.rx.last_avail != self.mem.load_u16(self.rx.avail + 2, Acquire)
    }

    /// `RPMessage_recvHandler`: only with a free message object (`RPMessage_allocEndPtMsg`,
    /// `RPMESSAGE_MAX_LOCAL_MSG_OBJ`) is a buffer taken (`RPMessage_vringGetFullRxBuf`);
    /// a message for an endpoint nobody constructed goes straight back
    /// (`RPMessage_vringPutEmptyRxBuf`). Returns whether a buffer was taken.
    fn recv_handler(&mut self) -> bool {
        let outstanding: usize = self.endpoints.iter().map(|e| e.1.len()).sum();
        if outstanding >= MAX_LOCAL_MSG_OBJ {
            return false;
        }
        let slot = self.rx.avail + 4 + 2 * (self.rx.last_avail % self.rx.num) as usize;
        let head = self.mem.load_u16(slot, Relaxed);
        self.rx.last_avail = self.rx.last_avail.wrapping_add(1);
        let addr = self
            .mem
            .load_u32(self.rx.desc + 16 * head as usize, Relaxed);
        let dst = self.mem.load_u32(Self::off(addr) + 4, Relaxed);
        match self.endpoints.iter_mut().find(|e| e.0 == dst) {
            Some(e) => e.1.push_back(head),
            None => self.put_empty_rx_buf(head),
        }
        true
    }

    /// `RPMessage_vringPutEmptyRxBuf` (Linux core): used element `{id, desc[id].len}` on
    /// vring 1, `used->idx++`, barrier, mailbox value `RPMESSAGE_LINUX_RX_VRING_ID`.
    fn put_empty_rx_buf(&mut self, id: u16) {
        let m = &self.mem;
        let len = m.load_u32(self.rx.desc + 16 * id as usize + 8, Relaxed);
        let used_idx = m.load_u16(self.rx.used + 2, Relaxed);
        let e = self.rx.used + 4 + 8 * (used_idx % self.rx.num) as usize;
        m.store_u32(e, id as u32, Relaxed);
        m.store_u32(e + 4, len, Relaxed);
        m.store_u16(self.rx.used + 2, used_idx.wrapping_add(1), Release);
        self.bell.ring(LINUX_RX_VRING_ID).unwrap();
    }

    /// `RPMessage_recv` on endpoint `ep`, polling: copies the payload (`header->dataLen`)
    /// and the sender, gives the buffer back (`RPMessage_vringPutEmptyRxBuf`), frees the
    /// message object and, if a buffer was left in the ring for want of one, runs the
    /// handler again (`isAllocPending` → `RPMessage_notifyCallback`).
    fn recv(&mut self, ep: u32, deadline: Instant) -> Option<(u32, Vec<u8>)> {
        loop {
            self.poll_mailbox();
            let e = self.endpoints.iter_mut().find(|e| e.0 == ep).unwrap();
            if let Some(id) = e.1.pop_front() {
                let m = &self.mem;
                let addr = m.load_u32(self.rx.desc + 16 * id as usize, Relaxed);
                let at = Self::off(addr);
                let src = m.load_u32(at, Relaxed);
                let len = m.load_u16(at + 12, Relaxed) as usize;
                let mut data = vec![0u8; len];
                m.read(at + 16, &mut data);
                self.put_empty_rx_buf(id);
                while self.is_full_rx_buf() && self.recv_handler() {}
                return Some((src, data));
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_micros(50));
        }
    }
}

/// The echo application of TI's Linux IPC examples (`ipc_rpmsg_echo_linux`): endpoints 14
/// (`rpmsg_chrdev`) and 13 (`ti.ipc4.ping-pong`) constructed and announced once Linux is
/// ready, then every message echoed to its sender from the endpoint it came to, until
/// `n` are echoed on each.
fn ti_echo(mut fw: TiFirmware, n: [usize; 2]) -> TiFirmware {
    fw.construct(14);
    fw.construct(13);
    fw.announce(14, "rpmsg_chrdev");
    fw.announce(13, "ti.ipc4.ping-pong");
    for (ep, count) in [(14, n[0]), (13, n[1])] {
        for _ in 0..count {
            let (src, data) = fw
                .recv(ep, Instant::now() + T.unwrap())
                .expect("firmware: no message from the host");
            fw.send(&data, src, ep);
        }
    }
    fw
}

fn k3() -> (Arc<HeapMem>, RscLocation, LinearMap) {
    let mem = Arc::new(HeapMem::new(REGION0 + REGION1));
    let loc = ti_table(&mem);
    let map = LinearMap {
        base: DevAddr(DA),
        offset: 0,
        len: REGION0 + REGION1,
    };
    (mem, loc, map)
}

/// The host's configuration on K3: the vdev's DMA pool is memory-region 0. Nothing else.
fn k3_host_config() -> HostConfig {
    HostConfig {
        vring_region: Some(LinearMap {
            base: DevAddr(DA),
            offset: 0,
            len: REGION0,
        }),
        ..HostConfig::default()
    }
}

fn payload(i: usize, len: usize) -> Vec<u8> {
    (0..len).map(|b| (b * 7 + i * 13) as u8).collect()
}

/// Issue 19, items 4 and 5: a firmware behaving as TI's `ipc_rpmsg` does comes up under
/// intercore's host (status 0x7), finds the host's receive buffers exactly where it
/// rewrites vring 0 (`vring0.da + 0x40000`), announces both services, and echoes every
/// payload size 1..=496 on endpoint 14 and 50 messages on 13, all verified — with the
/// firmware started first (IPC-only attach) and after the host. Before the fix the host
/// wrote status 0xF (the firmware never started) and, given its buffers after the vrings,
/// the firmware's messages landed in the host's transmit buffers.
#[test]
fn host_under_ti_ipc_rpmsg_firmware() {
    for firmware_first in [true, false] {
        let (mem, loc, map) = k3();
        let (hb, fb) = Mailbox::pair();
        let fw = {
            let mem = Arc::clone(&mem);
            move || {
                let fw = TiFirmware::wait_for_linux_ready(mem, fb, loc, T.unwrap())
                    .expect("firmware: vdev status never became 0x7");
                ti_echo(fw, [496, 50])
            }
        };
        let (mut host, fw) = if firmware_first {
            let t = std::thread::spawn(fw);
            std::thread::sleep(Duration::from_millis(20));
            (
                HostBus::new(Arc::clone(&mem), hb, &map, loc, k3_host_config()).unwrap(),
                t,
            )
        } else {
            let h = HostBus::new(Arc::clone(&mem), hb, &map, loc, k3_host_config()).unwrap();
            (h, std::thread::spawn(fw))
        };
        let chrdev = host.find_service("rpmsg_chrdev", T).unwrap();
        let ping = host.find_service("ti.ipc4.ping-pong", T).unwrap();
        assert_eq!((chrdev, ping), (14, 13));
        let me = host.create_endpoint("me", None).unwrap();
        let mut buf = [0u8; 496];
        for len in 1..=496 {
            let p = payload(len, len);
            host.send_raw(me, chrdev, &p, Some(Duration::from_secs(1)))
                .unwrap();
            let (src, n) = host
                .recv_from(
                    &Channel::new(me, RPMSG_ADDR_ANY),
                    &mut buf,
                    Some(Duration::from_secs(1)),
                )
                .unwrap();
            assert_eq!(src, Some(chrdev));
            assert_eq!(&buf[..n], &p[..], "size {len}");
        }
        for i in 0..50 {
            let p = payload(i, 1 + i * 9);
            host.send_raw(me, ping, &p, Some(Duration::from_secs(1)))
                .unwrap();
            let (src, n) = host
                .recv_from(
                    &Channel::new(me, RPMSG_ADDR_ANY),
                    &mut buf,
                    Some(Duration::from_secs(1)),
                )
                .unwrap();
            assert_eq!(src, Some(ping));
            assert_eq!(&buf[..n], &p[..]);
        }
        let fw = fw.join().unwrap();
        assert_eq!(
            fw.tx_bufs, 0x40000,
            "TI's vring-0 buffers at vring0.da + 0x40000 (firmware_first={firmware_first})"
        );
        let s = host.stats();
        assert_eq!((s.malformed, s.no_endpoint), (0, 0), "nothing lost");
    }
}

/// What TI's firmware needs, shown by its absence: a host that puts its buffers right after
/// the vrings (an explicit `HostConfig::buffers` there, the former K3 layout) hands the
/// firmware vring-0 descriptors it overwrites with `vring0.da + 0x40000`; the
/// announcements then land where the host has no receive buffer and it never sees them.
#[test]
fn buffers_right_after_the_vrings_lose_ti_messages() {
    let (mem, loc, map) = k3();
    let (hb, fb) = Mailbox::pair();
    let m = Arc::clone(&mem);
    let fw = std::thread::spawn(move || {
        let mut fw = TiFirmware::wait_for_linux_ready(m, fb, loc, T.unwrap()).unwrap();
        fw.construct(14);
        fw.announce(14, "rpmsg_chrdev");
    });
    let cfg = HostConfig {
        buffers: Some(LinearMap {
            base: DevAddr(DA + 0x8000),
            offset: 0x8000,
            len: REGION0 - 0x8000,
        }),
        ..k3_host_config()
    };
    let mut host = HostBus::new(Arc::clone(&mem), hb, &map, loc, cfg).unwrap();
    fw.join().unwrap();
    assert_eq!(
        host.find_service("rpmsg_chrdev", Some(Duration::from_millis(300))),
        Err(Error::Timeout)
    );
}

/// The status wait is exact: a host that also writes FEATURES_OK (0xF) never starts TI's
/// firmware (`RPMessage_waitForLinuxReady` compares with 0x7).
#[test]
fn ti_firmware_waits_for_exactly_0x7() {
    let (mem, loc, _) = k3();
    let (_hb, fb) = Mailbox::pair();
    let mut raw = vec![0u8; loc.len];
    mem.read(loc.offset, &mut raw);
    let t = ResourceTable::validate(&raw).unwrap();
    let vdev = t.find_vdev(7).unwrap().unwrap();
    let status_off = loc.offset + vdev.offset + VDEV_STATUS_OFFSET;
    // Vrings placed as a host would, before the status.
    for (i, da) in [(0, DA), (1, DA + 0x4000)] {
        mem.store_u32(loc.offset + vdev.vring_offset(i), da as u32, Relaxed);
    }
    let rest = mem.load_u32(status_off, Relaxed) & !0xFF;
    for wrong in [0x1, 0x3, 0xB, 0xF] {
        mem.store_u32(status_off, rest | wrong, Release);
        assert!(
            TiFirmware::wait_for_linux_ready(
                Arc::clone(&mem),
                fb.clone(),
                loc,
                Duration::from_millis(50)
            )
            .is_none(),
            "started on status {wrong:#x}"
        );
    }
    mem.store_u32(status_off, rest | 0x7, Release);
    let fw = TiFirmware::wait_for_linux_ready(mem, fb, loc, Duration::from_millis(100)).unwrap();
    assert_eq!(fw.tx_bufs, 0x40000);
}
