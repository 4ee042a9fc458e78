//! Design rule 2, "never trust the peer": a peer that writes garbage into the rings gets
//! an error for the link (`Error::Protocol`), or its bad message is dropped and counted —
//! never a panic, a hang, or an access outside the region. Each test plays a misbehaving
//! peer by writing the shared memory directly, at the offsets of virtio 1.x §2.7.

//!
//! The misbehaving peers are `intercore::testing::mock`'s hand-driven `MockDevice` (in the
//! remote's place) and `MockDriver` (in the host's place).

use intercore::rpmsg::{HostConfig, RemoteBus};
use intercore::testing::mock::{MockDevice, MockDriver};
use intercore::testing::{HeapMem, TestHost, ThreadBell};
use intercore::wire::rpmsg::RpmsgHdr;
use intercore::wire::vring::{Desc, VRING_DESC_F_NEXT, VRING_DESC_F_WRITE};
use intercore::{Error, SharedMemory, WaitMode};
use proptest::prelude::*;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;
use zerocopy::IntoBytes;

const NUM: u16 = 4;

/// A way of corrupting a link's shared memory.
type Corruption = Box<dyn Fn(&MockDriver)>;

fn host() -> (MockDevice, TestHost) {
    let cfg = HostConfig {
        wait: WaitMode::Event,
        timeout: Some(Duration::from_millis(50)),
        ..HostConfig::default()
    };
    MockDevice::new(NUM, cfg).unwrap()
}

fn is_protocol(r: Result<usize, Error>) -> bool {
    matches!(r, Err(Error::Protocol { .. }))
}

/// A used index more than the buffers in flight ahead (§2.7.8: the device may only return
/// buffers it was given) breaks the link, and the link stays broken.
#[test]
fn used_index_running_ahead_breaks_the_link() {
    let (dev, mut bus) = host();
    dev.set_used_idx(0, 10);
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
    let (dev, mut bus) = host();
    dev.push_used(0, 0, 99, 16);
    dev.set_used_idx(0, 1);
    assert!(is_protocol(bus.poll()));

    let (dev, mut bus) = host();
    bus.create_endpoint("x", Some(1024)).unwrap();
    let hdr = RpmsgHdr::new(5000, 1024, 0);
    dev.write_rx(0, hdr.as_bytes());
    dev.push_used(0, 0, 0, 16);
    dev.push_used(0, 1, 0, 16);
    dev.set_used_idx(0, 2);
    let r = bus.poll();
    assert!(is_protocol(r), "{r:?}");
}

/// A used length beyond the buffer, or a header whose length runs past what was written,
/// is a malformed message: dropped, counted, buffer reposted, link alive.
#[test]
fn malformed_messages_are_dropped_and_counted() {
    let (dev, mut bus) = host();
    let ep = bus.create_endpoint("x", Some(1024)).unwrap();
    dev.push_used(0, 0, 0, 100_000);
    let hdr = RpmsgHdr::new(5000, 1024, 400);
    dev.write_rx(1, hdr.as_bytes());
    dev.push_used(0, 1, 1, 20);
    dev.push_used(0, 2, 2, 3);
    dev.set_used_idx(0, 3);
    assert_eq!(bus.poll(), Ok(3));
    assert_eq!(bus.stats().malformed, 3);
    assert_eq!(bus.try_recv(ep, &mut [0; 64]), Err(Error::WouldBlock));
    // All four receive buffers are back in the ring: the remote can return them again.
    let hdr = RpmsgHdr::new(5000, 1024, 2);
    dev.write_rx(0, hdr.as_bytes());
    dev.link().mem.write(dev.rx_buffer_off(0) + 16, b"ok");
    dev.push_used(0, 3, 0, 18);
    dev.set_used_idx(0, 4);
    let mut buf = [0u8; 8];
    assert_eq!(bus.try_recv(ep, &mut buf), Ok((5000, 2)));
}

/// A name-service message of the wrong size or with unknown flags is ignored and counted
/// (Linux logs "malformed ns msg" and drops it).
#[test]
fn malformed_name_service_message_is_ignored() {
    let (dev, mut bus) = host();
    let hdr = RpmsgHdr::new(5000, 53, 39);
    dev.write_rx(0, hdr.as_bytes());
    dev.push_used(0, 0, 0, 16 + 39);
    dev.set_used_idx(0, 1);
    assert_eq!(bus.poll(), Ok(1));
    assert_eq!(bus.stats().malformed, 1);
    assert!(bus.services().is_empty());
}

type Remote = RemoteBus<Arc<HeapMem>, ThreadBell, 4>;

/// A remote bus with the host's part played by the test: DRIVER_OK and features set by
/// hand, descriptors written by hand into vring 1.
fn remote(features: Option<u32>) -> (MockDriver, Remote) {
    let (drv, mut bus) = MockDriver::new(NUM).unwrap();
    drv.set_driver_ok(features).unwrap();
    bus.wait_ready(Some(Duration::from_secs(1))).unwrap();
    (drv, bus)
}

fn remote_err(bus: &mut Remote) -> Error {
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
        ("avail idx ahead", Box::new(|d| d.set_avail_idx(1, 9))),
        (
            "head outside queue",
            Box::new(|d| {
                let (base, lay) = d.ring(1);
                d.link()
                    .mem
                    .store_u16(base + lay.avail_ring(0), 77, Relaxed);
                d.set_avail_idx(1, 1);
            }),
        ),
        (
            "buffer over the vring",
            Box::new(|d| {
                let vring0 = d.link().layout.vring0 as u64;
                d.offer(1, 0, 0, Desc::new(0xA000_0000 + vring0, 64, 0, 0));
                d.set_avail_idx(1, 1);
            }),
        ),
        (
            "address wraps",
            Box::new(|d| {
                d.offer(1, 0, 0, Desc::new(u64::MAX - 8, 512, 0, 0));
                d.set_avail_idx(1, 1);
            }),
        ),
        (
            "shorter than header",
            Box::new(|d| {
                d.offer(1, 0, 0, Desc::new(d.tx_da(0), 8, 0, 0));
                d.set_avail_idx(1, 1);
            }),
        ),
        (
            "descriptor loop",
            Box::new(|d| {
                d.offer(1, 0, 0, Desc::new(d.tx_da(0), 512, VRING_DESC_F_NEXT, 1));
                d.offer(1, 1, 1, Desc::new(d.tx_da(1), 512, VRING_DESC_F_NEXT, 0));
                let (base, lay) = d.ring(1);
                d.link().mem.store_u16(base + lay.avail_ring(0), 0, Relaxed);
                d.set_avail_idx(1, 1);
            }),
        ),
        (
            "indirect",
            Box::new(|d| {
                d.offer(1, 0, 0, Desc::new(d.tx_da(0), 512, 4, 0));
                d.set_avail_idx(1, 1);
            }),
        ),
    ];
    for (what, setup) in cases {
        let (drv, mut bus) = remote(None);
        setup(&drv);
        let e = remote_err(&mut bus);
        assert!(matches!(e, Error::Protocol { .. }), "{what}: {e:?}");
        assert_eq!(bus.try_recv_with(|_| ()).unwrap_err(), e, "{what}: sticky");
    }
}

/// The remote refuses a host that accepted features the firmware never offered.
#[test]
fn remote_rejects_unoffered_features() {
    let (drv, mut bus): (_, Remote) = MockDriver::new(NUM).unwrap();
    drv.set_driver_ok(Some(1 << 5)).unwrap();
    assert!(matches!(
        bus.wait_ready(Some(Duration::from_secs(1))),
        Err(Error::Protocol { .. })
    ));
}

/// A receive buffer the host marked device-readable only cannot be filled by the remote.
#[test]
fn remote_rejects_read_only_receive_buffer() {
    let (drv, mut bus) = remote(None);
    let da = drv.rx_da(0);
    drv.offer(0, 0, 0, Desc::new(da, 512, 0, 0));
    drv.set_avail_idx(0, 1);
    let ep = bus.create_endpoint("r", None).unwrap();
    assert!(matches!(
        bus.try_send(ep, 1, b"x"),
        Err(Error::Protocol { .. })
    ));
    // With VRING_DESC_F_WRITE the same buffer is accepted.
    let (drv, mut bus) = remote(None);
    drv.offer(0, 0, 0, Desc::new(da, 512, VRING_DESC_F_WRITE, 0));
    drv.set_avail_idx(0, 1);
    let ep = bus.create_endpoint("r", None).unwrap();
    bus.try_send(ep, 1, b"x").unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Random 16-bit writes anywhere in both rings, interleaved with host operations,
    /// never panic: every call returns `Ok` or an `Err`.
    #[test]
    fn host_survives_random_ring_corruption(writes in proptest::collection::vec((0usize..2, 0usize..0x3000, any::<u16>()), 1..64)) {
        let (dev, mut bus) = host();
        let ep = bus.create_endpoint("x", None).unwrap();
        for (k, (which, off, val)) in writes.into_iter().enumerate() {
            dev.corrupt(which, off, val);
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
        let (drv, mut bus) = remote(None);
        let ep = bus.create_endpoint("r", None).unwrap();
        for (k, (which, off, val)) in writes.into_iter().enumerate() {
            drv.corrupt(which, off, val);
            let _ = if k % 2 == 0 { bus.try_recv_with(|m| m.payload.len()).map(|_| ()) } else { bus.try_send(ep, 1024, b"x") };
        }
    }
}
