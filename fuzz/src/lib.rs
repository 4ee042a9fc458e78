//! The fuzz targets' bodies, one function per target. `fuzz_targets/*.rs` hand libFuzzer's
//! input to them; `crates/intercore-vhost/tests/fuzz_corpus.rs` replays the committed corpus
//! (`fuzz/corpus/<target>/*`) through the same functions under an ordinary `cargo test`.
//!
//! Every body feeds untrusted bytes to one parser or one role of the protocol and asserts
//! nothing but "no panic, no hang, no access outside the region": the library's own checks
//! (slices, debug assertions, AddressSanitizer in `cargo fuzz`) find the rest.

#![forbid(unsafe_code)]
#![allow(missing_docs)]

use intercore::dataplane::{Coherent, DpHost, Pool, PoolConfig};
use intercore::rpmsg::Channel;
use intercore::rpmsg::RPMSG_ADDR_ANY;
use intercore::rpmsg::RemoteConfig;
use intercore::rpmsg::rsc_table::IntercoreRpmsgTable;
use intercore::rpmsg::{HostBus, HostConfig, RemoteBus};
use intercore::testing::{Carveout, HeapMem, ThreadBell};
use intercore::wire::IntoBytes;
use intercore::wire::elf::{Elf, Region};
use intercore::wire::rpmsg::{NsAnnouncement, RpmsgHdr};
use intercore::wire::rsc::{INTERCORE_FEATURES, ResourceTable};
use intercore::{DevAddr, SharedMemory, WaitMode};
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

/// A target's body.
pub type Target = fn(&[u8]);

/// Names of the targets, as in `fuzz/fuzz_targets/` and `fuzz/corpus/`.
pub const TARGETS: &[(&str, Target)] = &[
    ("rsc_table", rsc_table),
    ("elf", elf),
    ("rpmsg_msg", rpmsg_msg),
    ("rings", rings),
    ("dp_completions", dp_completions),
    ("board_toml", board_toml),
    ("vhost_user", vhost_user),
    ("inline_slots", inline_slots),
    ("inspect", inspect),
];

/// The resource table parser, and a host bus discovering its device in it.
pub fn rsc_table(data: &[u8]) {
    if let Ok(t) = ResourceTable::parse(data) {
        for r in t.iter() {
            let _ = r;
        }
        // The intercore vendor entry, offered/accepted feature words included.
        let _ = t.find_intercore();
        if let Ok(Some(v)) = t.find_vdev(7) {
            for i in 0..v.num_vrings() {
                let _ = v.vring(i);
            }
        }
    }
    let _ = ResourceTable::validate(data);
    // The host's discovery: the table in shared memory, as a loaded firmware left it.
    let link = Carveout::with_buffers(4);
    let n = data.len().min(link.rsc.len);
    link.mem.write(link.rsc.offset, &data[..n]);
    let (hb, _rb) = ThreadBell::pair();
    let _ = HostBus::new(Arc::clone(&link.mem), hb, &link.map, link.rsc, quick());
}

/// The ELF firmware loader: parse, find the resource table, load into two small
/// regions of device memory.
pub fn elf(data: &[u8]) {
    let Ok(e) = Elf::parse(data) else { return };
    let _ = e.validate();
    let _ = e.resource_table();
    for s in e.segments() {
        let _ = s;
    }
    let mut low = vec![0u8; 8 << 10];
    let mut high = vec![0u8; 8 << 10];
    let mut target = [
        Region {
            da: 0,
            mem: &mut low,
        },
        Region {
            da: 0xA000_0000,
            mem: &mut high,
        },
    ];
    let _ = e.load(&mut target[..]);
}

/// The rpmsg header and the name-service message.
pub fn rpmsg_msg(data: &[u8]) {
    if let Ok((h, payload)) = RpmsgHdr::parse(data) {
        let _ = (h, payload.len());
        let _ = NsAnnouncement::parse(payload);
    }
    let _ = NsAnnouncement::parse(data);
}

fn quick() -> HostConfig {
    HostConfig {
        wait: WaitMode::Poll,
        timeout: Some(Duration::from_millis(1)),
        ..HostConfig::default()
    }
}

/// Both ring roles over shared memory the input writes: the first byte picks which areas
/// (rings, buffers) are overwritten (bits 0–2), whether the firmware's table offers
/// in-order rings (bit 3: the intercore vendor entry, which the host accepts) and how much
/// honest traffic comes first (bits 4–7); the rest is the areas' new contents. Then the
/// host (driver of both rings) and the remote (device of both) poll, send and receive —
/// the remote reading one of its two endpoints, so messages for the other are held (on an
/// in-order ring: copied out).
pub fn rings(data: &[u8]) {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let link = Carveout::with_buffers(4);
    if sel & 8 != 0 {
        let table = IntercoreRpmsgTable::standard(&link.spec, INTERCORE_FEATURES);
        link.mem.write(link.rsc.offset, table.as_bytes());
    }
    let (hb, rb) = ThreadBell::pair();
    let Ok(mut host) = HostBus::new(Arc::clone(&link.mem), hb, &link.map, link.rsc, quick()) else {
        return;
    };
    let Ok(mut remote) = RemoteBus::<_, _, 4>::new(
        Arc::clone(&link.mem),
        rb,
        &link.map,
        link.rsc,
        RemoteConfig::default().wait(WaitMode::Poll),
    ) else {
        return;
    };
    let _ = remote.wait_ready(Some(Duration::ZERO));
    let hep = host.create_endpoint("fuzz", None).unwrap_or(1024);
    let rep = remote.create_endpoint("fuzz", None).unwrap_or(1024);
    let other = remote.create_endpoint("other", None).unwrap_or(1025);
    // Some honest traffic first, so the indices are not all zero.
    for k in 0..(sel >> 4) {
        let _ = host.send_raw(
            hep,
            if k % 3 == 0 { other } else { rep },
            b"ping",
            Some(Duration::ZERO),
        );
        let _ = remote.recv_with(
            &Channel::new(rep, RPMSG_ADDR_ANY),
            Some(Duration::ZERO),
            |m| m.payload.len(),
        );
        let _ = remote.send_raw(rep, hep, b"pong", Some(Duration::ZERO));
    }
    let areas = [
        (link.layout.vring0, link.layout.vring1 - link.layout.vring0),
        (link.layout.vring1, link.layout.buffers - link.layout.vring1),
        (link.layout.buffers, link.layout.buffers_len),
    ];
    let mut at = 0;
    for (i, &(off, len)) in areas.iter().enumerate() {
        if sel & (1 << i) == 0 || at >= rest.len() {
            continue;
        }
        let n = len.min(rest.len() - at);
        link.mem.write(off, &rest[at..at + n]);
        at += n;
    }
    let mut buf = [0u8; 512];
    for k in 0..4 {
        let _ = host.poll();
        let _ = host.recv_from(
            &Channel::new(hep, RPMSG_ADDR_ANY),
            &mut buf,
            Some(Duration::ZERO),
        );
        let _ = host.send_raw(
            hep,
            if k == 1 { other } else { rep },
            b"x",
            Some(Duration::ZERO),
        );
        let _ = remote.recv_with(
            &Channel::new(rep, RPMSG_ADDR_ANY),
            Some(Duration::ZERO),
            |m| m.payload.len(),
        );
        let _ = remote.recv_any_with(Some(Duration::ZERO), |m| m.payload.len());
        let _ = remote.send_raw(rep, hep, b"y", Some(Duration::ZERO));
    }
}

/// A transport that takes every message and delivers none: where `dp_completions` sends
/// its submissions (a completion counts only for a submission that was sent).
struct Sink;

impl intercore::rpmsg::MessageIo for Sink {
    fn send(
        &mut self,
        _: &intercore::rpmsg::Channel,
        _: &[u8],
        _: Option<Duration>,
    ) -> intercore::Result<()> {
        Ok(())
    }
    fn recv(
        &mut self,
        _: &intercore::rpmsg::Channel,
        _: &mut [u8],
        _: Option<Duration>,
    ) -> intercore::Result<usize> {
        Err(intercore::Error::Timeout)
    }
    fn max_payload(&self) -> usize {
        496
    }
}

/// The host's data plane judging completion messages: eight buffers staged as one batch
/// of submissions — sent, unless the first byte's bit 1 is set (then every completion
/// names a submission the remote was never sent) — then the rest of the input as
/// completion messages (split on a 2-byte length prefix), each from the service's address
/// or, by its first byte's low bit, another. With the first byte's bit 2 set, the data
/// plane is `reset` half-way (stale completions follow: the fence). Afterwards `reclaim`
/// must account for every buffer.
pub fn dp_completions(data: &[u8]) {
    let Some((&sel, data)) = data.split_first() else {
        return;
    };
    let cfg = PoolConfig {
        classes: vec![(4096, 8), (8192, 2)],
        align: 4096,
    };
    let mem = Arc::new(HeapMem::new(cfg.region_len() + 4096));
    let Ok(pool) = Pool::new(Coherent::new(mem), 4096, DevAddr(0xC000_0000), &cfg) else {
        return;
    };
    let Ok(mut dp) = DpHost::new(pool, Channel::new(1030, 1024), 496) else {
        return;
    };
    let stage = |dp: &mut DpHost<_>| {
        for _ in 0..8 {
            if let Some(b) = dp.alloc(4096) {
                let _ = dp.stage(b, 16, 1);
            }
        }
        if sel & 2 == 0 {
            let _ = dp.flush(&mut Sink);
        }
    };
    stage(&mut dp);
    let mut rest = data;
    let half = data.len() / 2;
    let mut reset = sel & 4 != 0;
    while rest.len() >= 2 {
        if reset && rest.len() <= half {
            reset = false;
            dp.reset(Channel::new(1030, 1024));
            stage(&mut dp);
        }
        let n = (u16::from_le_bytes([rest[0], rest[1]]) as usize).min(rest.len() - 2);
        let msg = &rest[2..2 + n];
        rest = &rest[2 + n..];
        let src = if msg.first().is_some_and(|b| b & 1 == 1) {
            1025
        } else {
            1024
        };
        let _ = dp.absorb_for_test(src, msg);
        while let Some(c) = dp.take_completed() {
            let _ = c.iter().fold(0u8, |a, b| a ^ b);
        }
    }
    dp.reclaim();
    let counts = dp.pool().counts();
    assert_eq!(counts[2], 0, "reclaim leaves nothing in flight");
    assert_eq!(counts.iter().sum::<usize>(), dp.pool().len());
}

/// The board configuration (TOML) parser and validator.
pub fn board_toml(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        match intercore_board::Board::from_str(text) {
            Ok(b) => {
                let _ = b.rpmsg.host_config();
            }
            Err(e) => {
                let _ = (e.problems().len(), e.to_string());
            }
        }
    }
}

/// vhost-user messages: the bytes arrive on a socket as a front end would send them;
/// every message the framing accepts goes to the device's request handler.
pub fn vhost_user(data: &[u8]) {
    let Ok((mut a, mut b)) = std::os::unix::net::UnixStream::pair() else {
        return;
    };
    if a.write_all(data).is_err() {
        return;
    }
    drop(a);
    let _ = b.set_read_timeout(Some(Duration::from_secs(1)));
    let mut dev = intercore_vhost::Device::new(std::sync::Arc::new(intercore_fw_echo::Echo));
    for _ in 0..64 {
        match intercore_vhost::proto::recv(&mut b) {
            Ok(Some(m)) => {
                let _ = dev.handle(m);
            }
            _ => break,
        }
    }
}

/// The inline-slot ring (`intercore::virtq::inline`) between a producer and a consumer
/// over memory the input scribbles on. The first byte: bit 0 picks one- or two-line slots,
/// bits 1–4 how much honest traffic comes first; the rest is 6-byte records (a 16-bit
/// offset into the ring and its companions, a 32-bit word written there). Then both ends
/// send, take and release. Every message the consumer accepts must lie inside its slot or
/// its companion buffer, and its length inside what they hold.
pub fn inline_slots(data: &[u8]) {
    use intercore::virtq::inline::{Companions, InlineLayout, InlineRx, InlineTx};
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let mem = HeapMem::new(4096);
    let max_inline = if sel & 1 == 0 { 48 } else { 112 };
    let Ok(layout) = InlineLayout::fit(0, 2048, max_inline, 8) else {
        return;
    };
    let comp = Companions {
        base: 2048,
        stride: 256,
    };
    layout.reset(&mem);
    let (Ok(mut tx), Ok(mut rx)) = (
        InlineTx::new(&mem, layout, comp),
        InlineRx::new(&mem, layout, comp),
    ) else {
        return;
    };
    let payload = [0xA5u8; 256];
    let send = |tx: &mut InlineTx, k: usize| {
        let _ = tx.try_send(&mem, k as u32, 1024, &payload[..(k * 37) % 257]);
    };
    for k in 0..usize::from(sel >> 1 & 15) {
        send(&mut tx, k);
        if let Ok(Some(_)) = rx.try_recv(&mem) {
            let _ = rx.release(&mem);
        }
    }
    let span = comp.base + layout.slots as usize * comp.stride;
    for r in rest.chunks_exact(6) {
        let off = (usize::from(u16::from_le_bytes([r[0], r[1]])) % span) & !3;
        mem.store_u32(
            off,
            u32::from_le_bytes([r[2], r[3], r[4], r[5]]),
            core::sync::atomic::Ordering::Relaxed,
        );
    }
    let mut out = [0u8; 256];
    for k in 0..24 {
        match rx.try_recv(&mem) {
            Ok(Some(m)) => {
                let in_slot = m.inline
                    && m.off >= layout.base
                    && m.off + m.len <= layout.base + layout.size()
                    && m.len <= layout.max_inline();
                let in_comp = !m.inline
                    && m.off >= comp.base
                    && m.off + m.len <= span
                    && m.len <= comp.stride;
                assert!(
                    in_slot || in_comp,
                    "message outside its slot or companion: {m:?}"
                );
                mem.read(m.off, &mut out[..m.len]);
                if k % 3 != 2 {
                    let _ = rx.release(&mem);
                }
            }
            Ok(None) => {
                let _ = rx.arm(&mem, Duration::ZERO);
                rx.disarm(&mem);
            }
            Err(_) => break,
        }
        send(&mut tx, k);
        if k % 5 == 4 {
            let _ = tx.arm_space(&mem);
            tx.disarm_space(&mem);
        }
    }
}

/// The link decoder behind `intercore inspect` (`intercore::inspect`), which reads memory
/// it must not trust. The first byte picks the input: bit 0 clear, the rest is a raw dump
/// decoded at a resource-table offset (bytes 1–2) or, with bit 1, at rings given by hand
/// (device address from bytes 1–2, 2^(byte 3 mod 16) entries, alignment 2^(1 + byte 4 mod
/// 12)); bit 0 set, a real link (host and remote up, a few messages each way, one
/// announcement) is scribbled with the rest as 6-byte records (a 16-bit offset, a 32-bit
/// word) and read through its loads. Bit 2 picks RPMsg-Lite's layout, bit 3 EVENT_IDX,
/// byte 5 the history length, bytes 6–7 the base address's high bits. Both the report
/// and its text are produced: no panic, no read outside the region, bounded work.
pub fn inspect(data: &[u8]) {
    use intercore::inspect::{Flavor, Loads, Target, VringSpec, inspect};
    let Some((head, rest)) = data.split_first_chunk::<8>() else {
        return;
    };
    let sel = head[0];
    let w16 = u16::from_le_bytes([head[1], head[2]]);
    let mut t = Target {
        base: u64::from(u16::from_le_bytes([head[6], head[7]])) << 16,
        flavor: if sel & 4 != 0 {
            Flavor::RpmsgLite
        } else {
            Flavor::Virtio
        },
        event_idx: sel & 8 != 0,
        history: usize::from(head[5] % 70),
        ..Target::default()
    };
    if sel & 1 == 0 {
        if sel & 2 == 0 {
            t.rsc_offset = Some(usize::from(w16) % (rest.len() + 16));
        } else {
            let v = |da: u64| VringSpec {
                da,
                num: 1 << (head[3] % 16),
                align: 1 << (1 + head[4] % 12),
            };
            t.vrings = vec![v(t.base + u64::from(w16)), v(t.base + u64::from(w16) * 2)];
        }
        let r = inspect(&rest.to_vec(), &t);
        let _ = r.to_string();
        return;
    }
    let link = Carveout::with_buffers(4);
    if let Ok((mut host, mut remote)) = link.connect::<4>(quick(), WaitMode::Poll) {
        if let Ok(rep) = remote.create_endpoint("rpmsg-raw", None) {
            let _ = remote.announce(rep);
        }
        if let Ok(ep) = host.create_endpoint("h", None) {
            for i in 0..usize::from(sel >> 4) {
                let _ = host.send_raw(ep, 0x400, &[i as u8; 7], Some(Duration::ZERO));
            }
        }
    }
    let len = link.mem.len();
    for r in rest.chunks_exact(6) {
        let off = (usize::from(u16::from_le_bytes([r[0], r[1]])) % len) & !3;
        link.mem.store_u32(
            off,
            u32::from_le_bytes([r[2], r[3], r[4], r[5]]),
            core::sync::atomic::Ordering::Relaxed,
        );
    }
    t.base = link.map.base.0;
    t.rsc_offset = Some(link.rsc.offset);
    let r = inspect(&Loads(&*link.mem), &t);
    let _ = r.to_string();
}
