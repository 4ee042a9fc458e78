//! Design rule 2, "never trust the peer": a peer that writes garbage into the rings gets
//! an error for the link (`Error::Protocol`), or its bad message is dropped and counted —
//! never a panic, a hang, or an access outside the region. Each test plays a misbehaving
//! peer by writing the shared memory directly, at the offsets of virtio 1.x §2.7.

use intercore::rpmsg::layout::VRING_ALIGN;
use intercore::rpmsg::{HostBus, HostConfig, RemoteBus, status};
use intercore::testing::{HeapMem, Link, ThreadBell};
use intercore::virtq::VringLayout;
use intercore::wire::rpmsg::RpmsgHdr;
use intercore::wire::vring::{Desc, VRING_DESC_F_NEXT, VRING_DESC_F_WRITE};
use intercore::{Error, SharedMemory, WaitMode};
use proptest::prelude::*;
use std::sync::Arc;
use std::sync::atomic::Ordering::{Relaxed, Release};
use std::time::Duration;
use zerocopy::IntoBytes;

const NUM: u16 = 4;

/// A way of corrupting a link's shared memory.
type Corruption = Box<dyn Fn(&Link)>;

fn ring(link: &Link, which: usize) -> (usize, VringLayout) {
    let base = if which == 0 {
        link.layout.vring0
    } else {
        link.layout.vring1
    };
    (base, VringLayout::new(NUM as u32, VRING_ALIGN).unwrap())
}

fn host() -> (Link, HostBus<Arc<HeapMem>, ThreadBell>, ThreadBell) {
    let link = Link::with_buffers(NUM);
    let (hb, rb) = ThreadBell::pair();
    let cfg = HostConfig {
        wait: WaitMode::Event,
        timeout: Some(Duration::from_millis(50)),
        ..HostConfig::default()
    };
    let bus = HostBus::new(Arc::clone(&link.mem), &link.map, hb, link.rsc, cfg).unwrap();
    (link, bus, rb)
}

/// Plays the remote on vring 0: returns buffer `id` as used with `len` bytes.
fn push_used(link: &Link, slot: u16, id: u32, len: u32) {
    let (base, l) = ring(link, 0);
    let mut e = [0u8; 8];
    e[..4].copy_from_slice(&id.to_le_bytes());
    e[4..].copy_from_slice(&len.to_le_bytes());
    link.mem.write(base + l.used_ring(slot % NUM), &e);
}

fn set_used_idx(link: &Link, idx: u16) {
    let (base, l) = ring(link, 0);
    link.mem.store_u16(base + l.used_idx(), idx, Release);
}

fn rx_buffer_off(link: &Link, id: usize) -> usize {
    link.layout.buffers + id * 512
}

fn is_protocol(r: Result<usize, Error>) -> bool {
    matches!(r, Err(Error::Protocol { .. }))
}

/// A used index more than the buffers in flight ahead (§2.7.8: the device may only return
/// buffers it was given) breaks the link, and the link stays broken.
#[test]
fn used_index_running_ahead_breaks_the_link() {
    let (link, mut bus, _rb) = host();
    set_used_idx(&link, 10);
    assert!(is_protocol(bus.poll()));
    let ep = bus.create_endpoint("x", None).unwrap();
    assert!(
        matches!(bus.try_send(ep, 1, b"a"), Err(Error::Protocol { .. })),
        "error is sticky"
    );
}

/// A used element naming a descriptor outside the queue, or one not in flight (returned
/// twice), is a protocol error — the "same buffer handed out twice" class of bug.
#[test]
fn bad_used_ids_break_the_link() {
    let (link, mut bus, _rb) = host();
    push_used(&link, 0, 99, 16);
    set_used_idx(&link, 1);
    assert!(is_protocol(bus.poll()));

    let (link, mut bus, _rb) = host();
    bus.create_endpoint("x", Some(1024)).unwrap();
    let hdr = RpmsgHdr::new(5000, 1024, 0);
    link.mem.write(rx_buffer_off(&link, 0), hdr.as_bytes());
    push_used(&link, 0, 0, 16);
    push_used(&link, 1, 0, 16);
    set_used_idx(&link, 2);
    let r = bus.poll();
    assert!(is_protocol(r), "{r:?}");
}

/// A used length beyond the buffer, or a header whose length runs past what was written,
/// is a malformed message: dropped, counted, buffer reposted, link alive.
#[test]
fn malformed_messages_are_dropped_and_counted() {
    let (link, mut bus, _rb) = host();
    let ep = bus.create_endpoint("x", Some(1024)).unwrap();
    push_used(&link, 0, 0, 100_000);
    let hdr = RpmsgHdr::new(5000, 1024, 400);
    link.mem.write(rx_buffer_off(&link, 1), hdr.as_bytes());
    push_used(&link, 1, 1, 20);
    push_used(&link, 2, 2, 3);
    set_used_idx(&link, 3);
    assert_eq!(bus.poll(), Ok(3));
    assert_eq!(bus.stats().malformed, 3);
    assert_eq!(bus.try_recv(ep, &mut [0; 64]), Err(Error::WouldBlock));
    // All four receive buffers are back in the ring: the remote can return them again.
    let hdr = RpmsgHdr::new(5000, 1024, 2);
    link.mem.write(rx_buffer_off(&link, 0), hdr.as_bytes());
    link.mem.write(rx_buffer_off(&link, 0) + 16, b"ok");
    push_used(&link, 3, 0, 18);
    set_used_idx(&link, 4);
    let mut buf = [0u8; 8];
    assert_eq!(bus.try_recv(ep, &mut buf), Ok((5000, 2)));
}

/// A name-service message of the wrong size or with unknown flags is ignored and counted
/// (Linux logs "malformed ns msg" and drops it).
#[test]
fn malformed_name_service_message_is_ignored() {
    let (link, mut bus, _rb) = host();
    let hdr = RpmsgHdr::new(5000, 53, 39);
    link.mem.write(rx_buffer_off(&link, 0), hdr.as_bytes());
    push_used(&link, 0, 0, 16 + 39);
    set_used_idx(&link, 1);
    assert_eq!(bus.poll(), Ok(1));
    assert_eq!(bus.stats().malformed, 1);
    assert!(bus.services().is_empty());
}

/// A remote bus with the host's part played by the test: DRIVER_OK and features set by
/// hand, descriptors written by hand into vring 1.
fn remote(features: Option<u32>) -> (Link, RemoteBus<Arc<HeapMem>, ThreadBell, 4>, ThreadBell) {
    let link = Link::with_buffers(NUM);
    let (hb, rb) = ThreadBell::pair();
    let bus = RemoteBus::new(
        Arc::clone(&link.mem),
        &link.map,
        rb,
        link.rsc,
        WaitMode::Event,
    )
    .unwrap();
    // The vdev's status word and gfeatures, found through a host-side parse of the table.
    let mut raw = vec![0u8; link.rsc.len];
    link.mem.read(link.rsc.offset, &mut raw);
    let t = intercore::wire::rsc::ResourceTable::parse(&raw).unwrap();
    let v = t.find_vdev(7).unwrap().unwrap();
    let g = features.unwrap_or(v.vdev.dfeatures.get());
    link.mem.store_u32(
        link.rsc.offset + v.offset + intercore::wire::rsc::VDEV_GFEATURES_OFFSET,
        g,
        Relaxed,
    );
    link.mem.store_u32(
        link.rsc.offset + v.offset + intercore::wire::rsc::VDEV_STATUS_OFFSET,
        u32::from(status::DRIVER_OK) | 2 << 8,
        Release,
    );
    (link, bus_ready(bus), hb)
}

fn bus_ready(
    mut bus: RemoteBus<Arc<HeapMem>, ThreadBell, 4>,
) -> RemoteBus<Arc<HeapMem>, ThreadBell, 4> {
    bus.wait_ready(Some(Duration::from_secs(1))).unwrap();
    bus
}

/// Plays the host on vring 1: makes descriptor `id` available.
fn offer(link: &Link, slot: u16, id: u16, d: Desc) {
    let (base, l) = ring(link, 1);
    link.mem.write(base + l.desc(id % NUM), d.as_bytes());
    link.mem
        .store_u16(base + l.avail_ring(slot % NUM), id, Relaxed);
}

fn set_avail_idx(link: &Link, idx: u16) {
    let (base, l) = ring(link, 1);
    link.mem.store_u16(base + l.avail_idx(), idx, Release);
}

fn tx_da(link: &Link, id: u64) -> u64 {
    0xA000_0000 + link.layout.buffers as u64 + (NUM as u64 + id) * 512
}

fn remote_err(bus: &mut RemoteBus<Arc<HeapMem>, ThreadBell, 4>) -> Error {
    bus.create_endpoint("r", Some(1024)).ok();
    bus.try_recv_with(|_| ()).unwrap_err()
}

/// The remote validates what the host offers as strictly as the host validates the remote:
/// an available index too far ahead, a head outside the queue, a buffer outside the
/// `vdev0buffer` carveout (here: pointing at the vring itself, or wrapping the address
/// space), one shorter than a header, a chained or indirect descriptor.
#[test]
fn remote_rejects_bad_descriptors() {
    let cases: Vec<(&str, Corruption)> = vec![
        ("avail idx ahead", Box::new(|l| set_avail_idx(l, 9))),
        (
            "head outside queue",
            Box::new(|l| {
                let (base, lay) = ring(l, 1);
                l.mem.store_u16(base + lay.avail_ring(0), 77, Relaxed);
                set_avail_idx(l, 1);
            }),
        ),
        (
            "buffer over the vring",
            Box::new(|l| {
                offer(
                    l,
                    0,
                    0,
                    Desc::new(0xA000_0000 + l.layout.vring0 as u64, 64, 0, 0),
                );
                set_avail_idx(l, 1);
            }),
        ),
        (
            "address wraps",
            Box::new(|l| {
                offer(l, 0, 0, Desc::new(u64::MAX - 8, 512, 0, 0));
                set_avail_idx(l, 1);
            }),
        ),
        (
            "shorter than header",
            Box::new(|l| {
                offer(l, 0, 0, Desc::new(tx_da(l, 0), 8, 0, 0));
                set_avail_idx(l, 1);
            }),
        ),
        (
            "descriptor loop",
            Box::new(|l| {
                offer(l, 0, 0, Desc::new(tx_da(l, 0), 512, VRING_DESC_F_NEXT, 1));
                offer(l, 1, 1, Desc::new(tx_da(l, 1), 512, VRING_DESC_F_NEXT, 0));
                let (base, lay) = ring(l, 1);
                l.mem.store_u16(base + lay.avail_ring(0), 0, Relaxed);
                set_avail_idx(l, 1);
            }),
        ),
        (
            "indirect",
            Box::new(|l| {
                offer(l, 0, 0, Desc::new(tx_da(l, 0), 512, 4, 0));
                set_avail_idx(l, 1);
            }),
        ),
    ];
    for (what, setup) in cases {
        let (link, mut bus, _hb) = remote(None);
        setup(&link);
        let e = remote_err(&mut bus);
        assert!(matches!(e, Error::Protocol { .. }), "{what}: {e:?}");
        assert_eq!(bus.try_recv_with(|_| ()).unwrap_err(), e, "{what}: sticky");
    }
}

/// The remote refuses a host that accepted features the firmware never offered.
#[test]
fn remote_rejects_unoffered_features() {
    let link = Link::with_buffers(NUM);
    let (_hb, rb) = ThreadBell::pair();
    let mut bus: RemoteBus<_, _, 4> = RemoteBus::new(
        Arc::clone(&link.mem),
        &link.map,
        rb,
        link.rsc,
        WaitMode::Event,
    )
    .unwrap();
    let mut raw = vec![0u8; link.rsc.len];
    link.mem.read(0, &mut raw);
    let t = intercore::wire::rsc::ResourceTable::parse(&raw).unwrap();
    let v = t.find_vdev(7).unwrap().unwrap();
    link.mem.store_u32(
        v.offset + intercore::wire::rsc::VDEV_GFEATURES_OFFSET,
        1 << 5,
        Relaxed,
    );
    link.mem.store_u32(
        v.offset + intercore::wire::rsc::VDEV_STATUS_OFFSET,
        u32::from(status::DRIVER_OK) | 2 << 8,
        Release,
    );
    assert!(matches!(
        bus.wait_ready(Some(Duration::from_secs(1))),
        Err(Error::Protocol { .. })
    ));
}

/// A receive buffer the host marked device-readable only cannot be filled by the remote.
#[test]
fn remote_rejects_read_only_receive_buffer() {
    let (link, mut bus, _hb) = remote(None);
    let (base, l) = ring(&link, 0);
    let da = 0xA000_0000 + link.layout.buffers as u64;
    link.mem
        .write(base + l.desc(0), Desc::new(da, 512, 0, 0).as_bytes());
    link.mem.store_u16(base + l.avail_ring(0), 0, Relaxed);
    link.mem.store_u16(base + l.avail_idx(), 1, Release);
    let ep = bus.create_endpoint("r", None).unwrap();
    assert!(matches!(
        bus.try_send(ep, 1, b"x"),
        Err(Error::Protocol { .. })
    ));
    // With VRING_DESC_F_WRITE the same buffer is accepted.
    let (link, mut bus, _hb) = remote(None);
    link.mem.write(
        base + l.desc(0),
        Desc::new(da, 512, VRING_DESC_F_WRITE, 0).as_bytes(),
    );
    link.mem.store_u16(base + l.avail_ring(0), 0, Relaxed);
    link.mem.store_u16(base + l.avail_idx(), 1, Release);
    let ep = bus.create_endpoint("r", None).unwrap();
    bus.try_send(ep, 1, b"x").unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Random 16-bit writes anywhere in both rings, interleaved with host operations,
    /// never panic: every call returns `Ok` or an `Err`.
    #[test]
    fn host_survives_random_ring_corruption(writes in proptest::collection::vec((0usize..2, 0usize..0x3000, any::<u16>()), 1..64)) {
        let (link, mut bus, _rb) = host();
        let ep = bus.create_endpoint("x", None).unwrap();
        for (k, (which, off, val)) in writes.into_iter().enumerate() {
            let (base, l) = ring(&link, which);
            let off = (off % l.size()) & !1;
            link.mem.store_u16(base + off, val, Relaxed);
            let _ = match k % 4 {
                0 => bus.poll().map(|_| ()),
                1 => bus.try_send(ep, 1024, b"payload"),
                2 => bus.try_recv(ep, &mut [0; 512]).map(|_| ()),
                _ => bus.try_recv_buf(ep).map(|_| ()),
            };
        }
    }

    /// The same for the remote role: corrupting both rings never panics it.
    #[test]
    fn remote_survives_random_ring_corruption(writes in proptest::collection::vec((0usize..2, 0usize..0x3000, any::<u16>()), 1..64)) {
        let (link, mut bus, _hb) = remote(None);
        let ep = bus.create_endpoint("r", None).unwrap();
        for (k, (which, off, val)) in writes.into_iter().enumerate() {
            let (base, l) = ring(&link, which);
            let off = (off % l.size()) & !1;
            link.mem.store_u16(base + off, val, Relaxed);
            let _ = if k % 2 == 0 { bus.try_recv_with(|m| m.payload.len()).map(|_| ()) } else { bus.try_send(ep, 1024, b"x") };
        }
    }
}
