//! A vhost-user front end played by the test, sending the message sequence user-mode
//! Linux 6.1's `virtio_uml` sends (including its 72-byte one-region `SET_MEM_TABLE` and a
//! `SET_PROTOCOL_FEATURES` that asks for its own acknowledgement), with guest memory in a
//! memfd and the guest's driver side of both rings played by intercore's `DriverQueue`.

use intercore::virtq::{DriverQueue, VringLayout};
use intercore::wire::rpmsg::{NsAnnouncement, NsKind, RpmsgHdr};
use intercore::{DevAddr, SharedMemory};
use intercore_linux::{EventFd, MemfdRegion};
use intercore_vhost::proto::{self, FLAG_NEED_REPLY, req};
use intercore_vhost::{Device, DeviceFirmware, F_PROTOCOL_FEATURES, PROTOCOL_FEATURES};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use zerocopy::IntoBytes;

const BASE: u64 = 0x10_0000; // guest physical address of the memfd's first byte
const USER: u64 = 0x7f00_0000_0000; // the "front end's" virtual address of it
const LEN: usize = 1 << 20;
const NUM: u16 = 16;
const RING: [u64; 2] = [0, 0x4000]; // ring offsets in guest memory
const BUFS: usize = 0x10000; // buffer area offset: rx (vring 0) then tx (vring 1)

struct Guest {
    sock: UnixStream,
    mem: MemfdRegion,
    rings: [DriverQueue; 2],
    kicks: [EventFd; 2],
    _calls: [EventFd; 2],
    dev: JoinHandle<Device>,
}

fn layout() -> VringLayout {
    VringLayout::new(NUM as u32, 4096).unwrap()
}

fn request(sock: &mut UnixStream, code: u32, payload: &[u8], fds: &[BorrowedFd<'_>]) {
    proto::send(sock, code, FLAG_NEED_REPLY, payload, fds).unwrap();
    let r = proto::recv(sock).unwrap().expect("ack");
    assert_eq!(r.request, code);
    assert_eq!(r.payload, 0u64.to_le_bytes(), "request {code} refused");
}

fn get_u64(sock: &mut UnixStream, code: u32) -> u64 {
    proto::send(sock, code, 0, &[], &[]).unwrap();
    let r = proto::recv(sock).unwrap().expect("reply");
    r.u64_at(0).unwrap()
}

fn state(index: u32, num: u32) -> Vec<u8> {
    [index.to_le_bytes(), num.to_le_bytes()].concat()
}

/// Connects a device running `fw` and sets it up the way user-mode Linux does.
fn connect(fw: Arc<DeviceFirmware>) -> Guest {
    let (mut sock, theirs) = UnixStream::pair().unwrap();
    let dev = std::thread::spawn(move || {
        let mut d = Device::new(fw);
        d.serve(theirs).unwrap();
        d
    });
    let mem = MemfdRegion::create("guest", LEN).unwrap();
    proto::send(&sock, req::SET_OWNER, 0, &[], &[]).unwrap();
    let features = get_u64(&mut sock, req::GET_FEATURES);
    assert_eq!(features & 1, 1, "VIRTIO_RPMSG_F_NS offered");
    assert_ne!(features & F_PROTOCOL_FEATURES, 0);
    let pf = get_u64(&mut sock, req::GET_PROTOCOL_FEATURES);
    assert_eq!(pf, PROTOCOL_FEATURES);
    // Like UML: REPLY_ACK is already in use for the message that negotiates it.
    request(
        &mut sock,
        req::SET_PROTOCOL_FEATURES,
        &pf.to_le_bytes(),
        &[],
    );
    let (backend_req, _peer) = UnixStream::pair().unwrap();
    request(
        &mut sock,
        req::SET_BACKEND_REQ_FD,
        &[],
        &[backend_req.as_fd()],
    );
    let acked: u64 = 1 | 1 << 32; // NS and VERSION_1, no EVENT_IDX
    request(&mut sock, req::SET_FEATURES, &acked.to_le_bytes(), &[]);
    // UML's memory table always has room for two regions: 8 + 2 × 32 bytes.
    let mut table = vec![0u8; 72];
    table[..4].copy_from_slice(&1u32.to_le_bytes());
    for (i, v) in [BASE, LEN as u64, USER, 0].iter().enumerate() {
        table[8 + 8 * i..16 + 8 * i].copy_from_slice(&v.to_le_bytes());
    }
    request(&mut sock, req::SET_MEM_TABLE, &table, &[mem.fd()]);
    let l = layout();
    let calls = [EventFd::new().unwrap(), EventFd::new().unwrap()];
    let kicks = [EventFd::new().unwrap(), EventFd::new().unwrap()];
    let mut rings = Vec::new();
    for i in 0..2u32 {
        let call = [calls[i as usize].as_fd()];
        request(
            &mut sock,
            req::SET_VRING_CALL,
            &(i as u64).to_le_bytes(),
            &call,
        );
        request(&mut sock, req::SET_VRING_NUM, &state(i, NUM as u32), &[]);
        request(&mut sock, req::SET_VRING_BASE, &state(i, 0), &[]);
        let desc = USER + RING[i as usize];
        let mut addr = Vec::new();
        addr.extend_from_slice(&i.to_le_bytes());
        addr.extend_from_slice(&0u32.to_le_bytes());
        let (used, avail) = (desc + l.used_flags() as u64, desc + l.avail_flags() as u64);
        for v in [desc, used, avail, u64::MAX] {
            addr.extend_from_slice(&v.to_le_bytes());
        }
        request(&mut sock, req::SET_VRING_ADDR, &addr, &[]);
        let mut q = DriverQueue::new(&mem, RING[i as usize] as usize, l, false).unwrap();
        q.reset(&mem);
        rings.push(q);
    }
    for i in 0..2u32 {
        let kick = [kicks[i as usize].as_fd()];
        request(
            &mut sock,
            req::SET_VRING_KICK,
            &(i as u64).to_le_bytes(),
            &kick,
        );
        request(&mut sock, req::SET_VRING_ENABLE, &state(i, 1), &[]);
    }
    let mut rings: [DriverQueue; 2] = rings.try_into().map_err(|_| ()).unwrap();
    // The guest driver: every receive buffer posted, then the first kick of vring 0.
    for id in 0..NUM {
        let da = DevAddr(BASE + (BUFS + id as usize * 512) as u64);
        rings[0].add(&mem, id, da, 512, true).unwrap();
    }
    rings[0].publish(&mem);
    kicks[0].signal().unwrap();
    Guest {
        sock,
        mem,
        rings,
        kicks,
        _calls: calls,
        dev,
    }
}

impl Guest {
    /// Waits for the device to fill a receive buffer: (src, dst, payload); reposts it.
    fn recv(&mut self) -> (u32, u32, Vec<u8>) {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some((id, len)) = self.rings[0].pop_used(&self.mem).unwrap() {
                let off = BUFS + id as usize * 512;
                let mut raw = vec![0u8; len as usize];
                self.mem.read(off, &mut raw);
                let (h, rest) = <RpmsgHdr as zerocopy::FromBytes>::read_from_prefix(&raw).unwrap();
                let payload = rest[..h.len.get() as usize].to_vec();
                let da = DevAddr(BASE + off as u64);
                self.rings[0].add(&self.mem, id, da, 512, true).unwrap();
                self.rings[0].publish(&self.mem);
                self.kicks[0].signal().unwrap();
                return (h.src.get(), h.dst.get(), payload);
            }
            assert!(Instant::now() < deadline, "no message from the device");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Sends a message in transmit buffer `id` (at device address `da`, `None`: its own).
    fn send(&mut self, id: u16, da: Option<DevAddr>, src: u32, dst: u32, payload: &[u8]) {
        let off = BUFS + (NUM + id) as usize * 512;
        let hdr = RpmsgHdr::new(src, dst, payload.len() as u16);
        self.mem.write(off, hdr.as_bytes());
        self.mem.write(off + 16, payload);
        let da = da.unwrap_or(DevAddr(BASE + off as u64));
        self.rings[1]
            .add(&self.mem, id, da, (16 + payload.len()) as u32, false)
            .unwrap();
        self.rings[1].publish(&self.mem);
        self.kicks[1].signal().unwrap();
    }

    /// Disconnects and returns the device.
    fn close(self) -> Device {
        drop(self.sock);
        self.dev.join().unwrap()
    }
}

/// The echo firmware announces `rpmsg-raw` and echoes what the "guest" sends.
#[test]
fn echo_through_a_uml_style_front_end() {
    let mut g = connect(Arc::new(intercore_fw_echo::Echo));
    let (src, dst, ns) = g.recv();
    assert_eq!(dst, 53);
    let a = NsAnnouncement::parse(&ns).unwrap();
    assert_eq!(a.name.as_bytes(), b"rpmsg-raw");
    assert_eq!((a.addr, a.kind, src), (1024, NsKind::Create, 1024));
    for i in 0..40u16 {
        let msg: Vec<u8> = (0..(i as usize * 13 % 496) + 1)
            .map(|b| b as u8 ^ i as u8)
            .collect();
        g.send(i % NUM, None, 0x500, 1024, &msg);
        assert_eq!(g.recv(), (1024, 0x500, msg));
        // Reclaim the transmit buffer.
        let deadline = Instant::now() + Duration::from_secs(5);
        while g.rings[1].pop_used(&g.mem).unwrap().is_none() {
            assert!(Instant::now() < deadline);
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    let dev = g.close();
    assert_eq!(dev.reports.len(), 1);
    assert_eq!(dev.reports[0].messages, 40);
    assert!(dev.reports[0].result.is_ok(), "{:?}", dev.reports[0].result);
}

/// A descriptor outside guest memory, or over a ring, is a protocol error for the link,
/// never an access outside the mapping.
#[test]
fn hostile_descriptors_break_the_link() {
    for bad in [
        BASE + LEN as u64 - 8,
        BASE - 512,
        BASE + RING[1],
        u64::MAX - 4,
    ] {
        let mut g = connect(Arc::new(intercore_fw_echo::Echo));
        let (_, dst, _) = g.recv();
        assert_eq!(dst, 53);
        g.send(0, Some(DevAddr(bad)), 0x500, 1024, b"boom");
        std::thread::sleep(Duration::from_millis(50));
        let dev = g.close();
        let r = &dev.reports[0].result;
        assert!(
            matches!(r, Err(e) if e.contains("buffer window") || e.contains("vring")),
            "{bad:#x}: {r:?}"
        );
    }
}

/// Memory tables the device cannot describe exactly are refused (acknowledged with an
/// error; the connection stays up).
#[test]
fn memory_table_with_a_hole_is_refused() {
    let (mut sock, theirs) = UnixStream::pair().unwrap();
    let dev =
        std::thread::spawn(move || Device::new(Arc::new(intercore_fw_echo::Echo)).serve(theirs));
    let pf = get_u64(&mut sock, req::GET_PROTOCOL_FEATURES);
    request(
        &mut sock,
        req::SET_PROTOCOL_FEATURES,
        &pf.to_le_bytes(),
        &[],
    );
    let (a, b) = (
        MemfdRegion::create("a", 4096).unwrap(),
        MemfdRegion::create("b", 4096).unwrap(),
    );
    let mut table = vec![0u8; 8 + 64];
    table[..4].copy_from_slice(&2u32.to_le_bytes());
    for (r, gpa) in [(0usize, 0x1000u64), (1, 0x3000)] {
        for (i, v) in [gpa, 4096, gpa, 0].iter().enumerate() {
            let at = 8 + 32 * r + 8 * i;
            table[at..at + 8].copy_from_slice(&v.to_le_bytes());
        }
    }
    let fds = [a.fd(), b.fd()];
    proto::send(&sock, req::SET_MEM_TABLE, FLAG_NEED_REPLY, &table, &fds).unwrap();
    let r = proto::recv(&mut sock).unwrap().unwrap();
    assert_eq!(r.u64_at(0).unwrap(), 1, "refused");
    // Still serving: the next request gets its reply.
    assert_eq!(get_u64(&mut sock, req::GET_QUEUE_NUM), 2);
    drop(sock);
    dev.join().unwrap().unwrap();
}

/// The offload firmware on a vhost-user device: the data plane's buffers are in the
/// guest's RAM and a job names one by guest physical address, which the device translates
/// through the memory table the front end shared; it writes the CRC32C in place. A job
/// outside the guest's RAM is refused with `DP_FAULT`, never an access outside the
/// mapping.
#[test]
fn offload_data_plane_over_guest_ram() {
    use intercore::wire::dataplane::*;
    use intercore::wire::{Le16, Le32, Le64};
    let mut g = connect(Arc::new(intercore_fw_offload::Offload));
    let mut services = std::collections::HashMap::new();
    for _ in 0..3 {
        let (_, dst, ns) = g.recv();
        assert_eq!(dst, 53);
        let a = NsAnnouncement::parse(&ns).unwrap();
        services.insert(
            String::from_utf8_lossy(a.name.as_bytes()).into_owned(),
            a.addr,
        );
    }
    let dp = services[DP_SERVICE];
    // A 4 KiB buffer in guest RAM, past the rpmsg buffers.
    const DATA: usize = 0x20000;
    let input: Vec<u8> = (0..1000u32).map(|i| (i * 7 + 3) as u8).collect();
    g.mem.write(DATA, &input);
    let job = |seq: u64, da: u64, buf: u32| DpSubmit {
        seq: Le64::new(seq),
        da: Le64::new(da),
        len: Le32::new(1000),
        cap: Le32::new(4096),
        buf: Le32::new(buf),
        op: Le32::new(DP_OP_CRC32C),
    };
    let mut msg = DpHdr {
        kind: Le16::new(DP_SUBMIT),
        count: Le16::new(2),
        reserved: Le32::new(0),
    }
    .as_bytes()
    .to_vec();
    msg.extend_from_slice(job(1, BASE + DATA as u64, 0).as_bytes());
    msg.extend_from_slice(job(2, BASE + LEN as u64, 1).as_bytes());
    g.send(0, None, 0x600, dp, &msg);
    let (src, dst, reply) = g.recv();
    assert_eq!((src, dst), (dp, 0x600));
    let entries = dp_parse(&reply, DP_COMPLETE).unwrap();
    assert_eq!(entries.len(), 2 * DP_ENTRY_SIZE);
    let ok: DpComplete = dp_entry(entries, 0).unwrap();
    let bad: DpComplete = dp_entry(entries, 1).unwrap();
    assert_eq!(
        (ok.seq.get(), ok.status.get(), ok.len.get()),
        (1, DP_OK, 1004)
    );
    assert_eq!((bad.seq.get(), bad.status.get()), (2, DP_FAULT));
    let mut crc = [0u8; 4];
    g.mem.read(DATA + 1000, &mut crc);
    assert_eq!(crc, intercore::crc32c(&input).to_le_bytes());
    let dev = g.close();
    assert!(dev.reports[0].result.is_ok(), "{:?}", dev.reports[0].result);
}

/// What `intercore kernel-scale` puts on the device in the UML guest: 256 endpoints of the
/// guest's `virtio_rpmsg_bus` (source addresses 1024..1280, as its IDR hands them out),
/// each sending to offload's `rpmsg-raw`, `NUM` in flight at a time. Each is answered at
/// its own address with its own bytes.
#[test]
fn offload_echo_answers_256_source_addresses() {
    let mut g = connect(Arc::new(intercore_fw_offload::Offload));
    let mut echo = None;
    for _ in 0..3 {
        let (_, dst, ns) = g.recv();
        assert_eq!(dst, 53);
        let a = NsAnnouncement::parse(&ns).unwrap();
        if a.name.as_bytes() == intercore_fw_offload::ECHO_SERVICE.as_bytes() {
            echo = Some(a.addr);
        }
    }
    let echo = echo.expect("rpmsg-raw announced");
    let msg = |src: u32| -> Vec<u8> { (0..64u32).map(|b| (src * 7 + b) as u8).collect() };
    for batch in 0..256 / NUM as u32 {
        let srcs: Vec<u32> = (0..NUM as u32)
            .map(|j| 1024 + batch * NUM as u32 + j)
            .collect();
        for (j, &src) in srcs.iter().enumerate() {
            g.send(j as u16, None, src, echo, &msg(src));
        }
        let mut got: Vec<(u32, u32, Vec<u8>)> = (0..NUM).map(|_| g.recv()).collect();
        got.sort_by_key(|m| m.1);
        let want: Vec<_> = srcs.iter().map(|&s| (echo, s, msg(s))).collect();
        assert_eq!(got, want, "batch {batch}");
        // Reclaim the transmit buffers.
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut back = 0;
        while back < NUM {
            if g.rings[1].pop_used(&g.mem).unwrap().is_some() {
                back += 1;
            } else {
                assert!(Instant::now() < deadline, "transmit buffers not returned");
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }
    let dev = g.close();
    assert_eq!(dev.reports.len(), 1);
    assert_eq!(dev.reports[0].messages, 256);
    assert!(dev.reports[0].result.is_ok(), "{:?}", dev.reports[0].result);
}
