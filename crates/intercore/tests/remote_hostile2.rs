//! A hostile host against the remote role, round two (issue 20): addresses the host writes
//! into the table must keep the device's writes out of the firmware's own memory (20.1),
//! and no remote call may wait for the host without a bound (20.10).

use intercore::rpmsg::{
    DeviceControl, DevicePlacement, RemoteBus, RemoteConfig, RscLocation, status,
};
use intercore::testing::{HeapMem, ThreadBell};
use intercore::virtq::{DriverQueue, VringLayout};
use intercore::wire::Le32;
use intercore::wire::rpmsg::VIRTIO_ID_RPMSG;
use intercore::wire::rsc::{
    FW_RSC_ADDR_ANY, FwRscTrace, FwRscVdev, FwRscVdevVring, ResourceTable, RscTableWriter,
    VDEV_STATUS_OFFSET,
};
use intercore::{DevAddr, Error, LinearMap, SharedMemory, WaitMode};
use std::sync::Arc;
use std::sync::atomic::Ordering::{Relaxed, Release};
use std::time::{Duration, Instant};

const T: Option<Duration> = Some(Duration::from_secs(5));
const NS: u32 = 1 << intercore::wire::rpmsg::VIRTIO_RPMSG_F_NS;
const DA: u64 = 0xA000_0000;
const NUM: u32 = 256;
/// TI K3 (`ti_k3_common.c`): memory-region 0 holds what the host allocates (vrings,
/// buffers), region 1 the firmware, with the resource table at its start.
const REGION0: usize = 0x10_0000;
const REGION1: usize = 0x10_0000;

/// The TI MCU+ SDK table (`IpcRPMessage_linux_sample.c`): trace, vdev with both vrings at
/// `FW_RSC_ADDR_ANY`, notify ids 1 and 2, 256 entries, 4096 alignment.
fn ti_table(mem: &HeapMem, at: usize) -> RscLocation {
    let mut buf = [0u8; 1024];
    let mut w = RscTableWriter::new(&mut buf, 2).unwrap();
    let mut name = [0u8; 32];
    name[..9].copy_from_slice(b"trace:r5f");
    w.add_trace(&FwRscTrace {
        da: Le32::new(0x9000_0000),
        len: Le32::new(0x1000),
        reserved: Le32::new(0),
        name,
    })
    .unwrap();
    let ring = |id| FwRscVdevVring {
        da: Le32::new(FW_RSC_ADDR_ANY),
        align: Le32::new(4096),
        num: Le32::new(NUM),
        notifyid: Le32::new(id),
        pa: Le32::new(0),
    };
    w.add_vdev(
        &FwRscVdev {
            id: Le32::new(VIRTIO_ID_RPMSG),
            dfeatures: Le32::new(NS),
            ..Default::default()
        },
        &[ring(1), ring(2)],
        &[],
    )
    .unwrap();
    let len = w.finish();
    mem.write(at, &buf[..len]);
    RscLocation { offset: at, len }
}

/// A hostile host on the K3 layout: it writes the vrings' device addresses (region
/// offsets `rings`) and notify ids into the table and sets the status Linux sets (0x7).
fn host_places(mem: &HeapMem, loc: RscLocation, rings: [usize; 2]) {
    let mut raw = vec![0u8; loc.len];
    mem.read(loc.offset, &mut raw);
    let t = ResourceTable::validate(&raw).unwrap();
    let v = t.find_vdev(VIRTIO_ID_RPMSG).unwrap().unwrap();
    for (i, off) in rings.into_iter().enumerate() {
        let e = loc.offset + v.vring_offset(i);
        mem.store_u32(e, (DA + off as u64) as u32, Relaxed);
        mem.store_u32(e + 12, i as u32, Relaxed);
    }
    let status = loc.offset + v.offset + VDEV_STATUS_OFFSET;
    let s = status::ACKNOWLEDGE | status::DRIVER | status::DRIVER_OK;
    // The status byte shares its word with `num_of_vrings` and the reserved bytes.
    let word = mem.load_u32(status, Relaxed);
    mem.store_u32(status, (word & !0xFF) | u32::from(s), Release);
}

/// The firmware of the K3 layout, its private memory at `private` (region offset, length).
type Bus = RemoteBus<Arc<HeapMem>, ThreadBell, 4>;

/// The firmware of the K3 layout, its private memory at `private` (region offset, length),
/// with the host's side of the doorbell.
fn k3_firmware(private: (usize, usize)) -> (Arc<HeapMem>, RscLocation, Bus, ThreadBell) {
    let mem = Arc::new(HeapMem::new(REGION0 + REGION1));
    let loc = ti_table(&mem, REGION0);
    let rmap = LinearMap {
        base: DevAddr(DA),
        offset: 0,
        len: REGION0 + REGION1,
    };
    let cfg = RemoteConfig::default()
        .buffers(Some(LinearMap {
            base: DevAddr(DA),
            offset: 0,
            len: REGION0,
        }))
        .private(Some(private))
        .wait(WaitMode::Poll);
    let (host, bell) = ThreadBell::pair();
    let bus = RemoteBus::new(Arc::clone(&mem), bell, &rmap, loc, cfg).unwrap();
    (mem, loc, bus, host)
}

fn snapshot(mem: &HeapMem, (off, len): (usize, usize)) -> Vec<u8> {
    let mut v = vec![0u8; len];
    mem.read(off, &mut v);
    v
}

/// Issue 20.1: on the TI K3 layout, a host that places vring 1 at the start of the
/// firmware's private memory — or so that only the end of vring 1 reaches into it — is
/// refused by `wait_ready` with a protocol error that stays (later calls and another
/// `wait_ready` report it too), and the private memory is not written. A later placement
/// in region 0 attaches, the refused attempt's error gone with it. Before the fix `wait_ready` returned `Ok` and the
/// remote wrote its used-ring flags into its own memory.
#[test]
fn remote_refuses_vrings_the_host_places_in_its_private_memory() {
    let ring = VringLayout::new(NUM, 4096).unwrap().size();
    let table_end = REGION0 + 0x1000;
    // (what, private area, where the host puts vring 1)
    let cases = [
        (
            "vring 1 at the start of private",
            (table_end, REGION0 + REGION1 - table_end),
            table_end,
        ),
        (
            "vring 1 ending inside private",
            (REGION0 + 0x8000, REGION1 - 0x8000),
            REGION0 + 0x8000 - 0x1000,
        ),
    ];
    for (what, private, vring1) in cases {
        let (mem, loc, mut bus, _host) = k3_firmware(private);
        assert!(vring1 + ring > private.0 && vring1 < private.0 + private.1);
        assert!(loc.offset + loc.len <= table_end);
        mem.write(private.0, &vec![0xA5; private.1]);
        let before = snapshot(&mem, private);
        host_places(&mem, loc, [0, vring1]);
        let got = bus.wait_ready(T);
        assert!(
            matches!(
                got,
                Err(Error::Protocol {
                    what: "host placed a vring in the firmware's private memory",
                    ..
                })
            ),
            "{what}: {got:?}"
        );
        assert!(
            matches!(
                bus.recv_any_with(Some(Duration::ZERO), |_| ()),
                Err(Error::Protocol { .. })
            ),
            "{what}: not sticky"
        );
        assert!(
            matches!(bus.wait_ready(T), Err(Error::Protocol { .. })),
            "{what}: a second wait_ready attached"
        );
        let ep = bus.create_endpoint("rpmsg_chrdev", Some(14)).unwrap();
        assert!(bus.send_raw(ep, 0x400, b"x", Some(Duration::ZERO)).is_err());
        assert!(
            snapshot(&mem, private) == before,
            "{what}: the remote wrote into its private memory"
        );
        // The host places the vrings where they belong and sets DRIVER_OK again: the next
        // negotiation attaches, without the refused attempt's error.
        host_places(&mem, loc, [0, 0x2_0000]);
        bus.wait_ready(T).unwrap();
        assert_eq!(
            bus.recv_any_with(Some(Duration::ZERO), |_| ()).err(),
            Some(Error::Timeout),
            "{what}: the refused attempt's error outlived the next negotiation"
        );
    }
    // Control: the same firmware with the vrings in region 0 attaches.
    let (mem, loc, mut bus, _host) = k3_firmware((table_end, REGION0 + REGION1 - table_end));
    host_places(&mem, loc, [0, 0x2_0000]);
    bus.wait_ready(T).unwrap();
}

/// A firmware whose table leaves the vrings to the host and names no buffer carveout, built
/// without a buffer region, is refused when the bus is built (its own configuration), not
/// at `DRIVER_OK` (where errors are the host's). Before: accepted, then an error at
/// `wait_ready`.
#[test]
fn firmware_without_any_buffer_window_is_refused_at_once() {
    let mem = Arc::new(HeapMem::new(REGION0 + REGION1));
    let loc = ti_table(&mem, REGION0);
    let rmap = LinearMap {
        base: DevAddr(DA),
        offset: 0,
        len: REGION0 + REGION1,
    };
    let cfg = RemoteConfig::default();
    let (_host, bell) = ThreadBell::pair();
    let got = RemoteBus::<_, _, 4>::new(Arc::clone(&mem), bell, &rmap, loc, cfg);
    assert!(matches!(got, Err(Error::Config(_))), "{:?}", got.err());
}

/// Issue 20.1 for a placement (a vhost-user front end sends the ring addresses): a vring
/// over the firmware's private memory is refused when the bus is built.
#[test]
fn placement_with_a_vring_in_private_memory_is_refused() {
    let mem = Arc::new(HeapMem::new(0x4_0000));
    let l = VringLayout::new(16, 4096).unwrap();
    let p = DevicePlacement {
        control: DeviceControl::FirstNotification { features: NS },
        rings: [(0, l), (0x3_0000 - 0x100, l)],
        notify_ids: [0, 1],
        buffers: LinearMap {
            base: DevAddr(DA + 0x1_0000),
            offset: 0x1_0000,
            len: 0x1_0000,
        },
    };
    let cfg = RemoteConfig::default().private(Some((0x3_0000, 0x1_0000)));
    let (_h, bell) = ThreadBell::pair();
    let got = RemoteBus::<_, _, 4>::new(Arc::clone(&mem), bell, &p.buffers, p, cfg);
    assert!(matches!(got, Err(Error::Config(_))), "{:?}", got.err());
}

/// A link whose host set `DRIVER_OK` with `bufs` receive buffers posted on vring 0 and
/// nothing more, and a remote on it with `announce_timeout`.
fn starved_link(bufs: u16, announce_timeout: Option<Duration>) -> (Bus, ThreadBell) {
    let l = VringLayout::new(16, 4096).unwrap();
    let mem = Arc::new(HeapMem::new(0x2_0000));
    let p = DevicePlacement {
        control: DeviceControl::StatusWords {
            status_off: 0x1_F000,
            gfeatures_off: 0x1_F004,
            dfeatures: NS,
        },
        rings: [(0, l), (0x4000, l)],
        notify_ids: [0, 1],
        buffers: LinearMap {
            base: DevAddr(DA + 0x1_0000),
            offset: 0x1_0000,
            len: 0x8000,
        },
    };
    let mut q = DriverQueue::new(&*mem, 0, l, false).unwrap();
    q.reset(&*mem);
    for id in 0..bufs {
        q.add(
            &*mem,
            id,
            DevAddr(DA + 0x1_0000 + 512 * id as u64),
            512,
            true,
        )
        .unwrap();
    }
    q.publish(&*mem);
    mem.store_u32(0x1_F000, u32::from(status::DRIVER_OK), Release);
    let cfg = RemoteConfig::default()
        .wait(WaitMode::Poll)
        .announce_timeout(announce_timeout);
    let (host, bell) = ThreadBell::pair();
    let mut bus = RemoteBus::new(mem, bell, &p.buffers, p, cfg).unwrap();
    bus.wait_ready(T).unwrap();
    (bus, host)
}

/// Runs `f` on a thread and gives its result, or fails the test if it has not returned
/// within 5 s (it would block forever).
fn bounded<R: Send + 'static>(what: &str, f: impl FnOnce() -> R + Send + 'static) -> R {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(5))
        .unwrap_or_else(|_| panic!("{what} did not return within 5 s"))
}

/// Issue 20.10: a host that sets `DRIVER_OK` and never posts a receive buffer does not
/// block `announce` or `destroy_endpoint` beyond `RemoteConfig::announce_timeout`: both
/// return `Timeout`, and an announcement that timed out leaves the endpoint unannounced.
/// Before the fix both waited forever.
#[test]
fn announce_and_destroy_wait_at_most_the_announce_timeout() {
    let t = Duration::from_millis(100);
    let (elapsed, got) = bounded("announce", move || {
        let (mut bus, _host) = starved_link(0, Some(t));
        let ep = bus.create_endpoint("svc", None).unwrap();
        let start = Instant::now();
        let got = bus.announce(ep);
        (start.elapsed(), got)
    });
    assert_eq!(got, Err(Error::Timeout));
    assert!(elapsed >= t, "{elapsed:?}");

    // One buffer: the announcement goes out, the withdrawal finds none.
    let (elapsed, got) = bounded("destroy_endpoint", move || {
        let (mut bus, _host) = starved_link(1, Some(t));
        let ep = bus.create_endpoint("svc", None).unwrap();
        bus.announce(ep).unwrap();
        let start = Instant::now();
        let got = bus.destroy_endpoint(ep);
        (start.elapsed(), got)
    });
    assert_eq!(got, Err(Error::Timeout));
    assert!(elapsed >= t, "{elapsed:?}");

    // The default is bounded too (Linux's 15 s), and the bound can be changed on a bus
    // built without a `RemoteConfig`.
    assert_eq!(
        RemoteConfig::default().announce_timeout,
        Some(Duration::from_secs(15))
    );
    let got = bounded("announce after set_announce_timeout", move || {
        let (mut bus, _host) = starved_link(0, None);
        bus.set_announce_timeout(Some(Duration::from_millis(10)));
        let ep = bus.create_endpoint("svc", None).unwrap();
        bus.announce(ep)
    });
    assert_eq!(got, Err(Error::Timeout));
}

/// An endpoint whose announcement timed out is not withdrawn on destroy (nothing was
/// announced), so destroying it does not wait at all.
#[test]
fn destroying_an_endpoint_whose_announcement_timed_out_does_not_wait() {
    let got = bounded("destroy after a failed announce", || {
        let (mut bus, _host) = starved_link(0, Some(Duration::from_millis(10)));
        let ep = bus.create_endpoint("svc", None).unwrap();
        assert_eq!(bus.announce(ep), Err(Error::Timeout));
        bus.set_announce_timeout(None);
        bus.destroy_endpoint(ep)
    });
    assert_eq!(got, Ok(()));
}
