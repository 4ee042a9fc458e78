//! `RemoteBus::new` with a `DevicePlacement`: a remote that is told where its rings and status words are
//! (as a vhost-user back end is) instead of reading a resource table. Its buffer window may
//! hold the rings, as a guest's RAM does; a buffer over a ring is still refused.

use intercore::rpmsg::Channel;
use intercore::rpmsg::RPMSG_ADDR_ANY;
use intercore::rpmsg::RemoteConfig;
use intercore::rpmsg::layout::VRING_ALIGN;
use intercore::rpmsg::{DeviceControl, DevicePlacement, HostBus, HostConfig, RemoteBus, status};
use intercore::testing::{Carveout, ThreadBell};
use intercore::virtq::{DriverQueue, VringLayout};
use intercore::wire::rsc::{ResourceTable, VDEV_GFEATURES_OFFSET, VDEV_STATUS_OFFSET};
use intercore::{DevAddr, Error, LinearMap, SharedMemory, WaitMode};
use std::sync::Arc;
use std::sync::atomic::Ordering::Release;
use std::time::Duration;

const T: Option<Duration> = Some(Duration::from_secs(5));
const NUM: u16 = 8;

/// The placement `discover` would find in `link`'s table, but with a buffer window that
/// spans both rings and the buffers (everything after the table page).
fn placement(link: &Carveout) -> DevicePlacement {
    let mut raw = vec![0u8; link.rsc.len];
    link.mem.read(link.rsc.offset, &mut raw);
    let table = ResourceTable::validate(&raw).unwrap();
    let vdev = table.find_vdev(7).unwrap().unwrap();
    let at = link.rsc.offset + vdev.offset;
    let layout = VringLayout::new(NUM as u32, VRING_ALIGN).unwrap();
    let from = link.layout.vring0;
    DevicePlacement {
        control: DeviceControl::StatusWords {
            status_off: at + VDEV_STATUS_OFFSET,
            gfeatures_off: at + VDEV_GFEATURES_OFFSET,
            dfeatures: vdev.vdev.dfeatures.get(),
        },
        rings: [(link.layout.vring0, layout), (link.layout.vring1, layout)],
        notify_ids: [1, 2],
        buffers: LinearMap {
            base: DevAddr(link.map.base.0 + from as u64),
            offset: from,
            len: link.layout.total - from,
        },
    }
}

/// A host bus and a placed remote exchange messages both ways.
#[test]
fn placed_remote_echoes() {
    let link = Carveout::with_buffers(NUM);
    let (hb, rb) = ThreadBell::pair();
    let p = placement(&link);
    let mut host = HostBus::new(
        Arc::clone(&link.mem),
        hb,
        &link.map,
        link.rsc,
        HostConfig::default(),
    )
    .unwrap();
    let mut remote = RemoteBus::<_, _, 4>::new(
        Arc::clone(&link.mem),
        rb,
        &p.buffers,
        p,
        RemoteConfig::default().wait(WaitMode::Event),
    )
    .unwrap();
    let t = std::thread::spawn(move || {
        remote.wait_ready(T).unwrap();
        let ep = remote.create_endpoint("rpmsg-raw", None).unwrap();
        remote.announce(ep).unwrap();
        for _ in 0..20 {
            let mut buf = [0u8; 496];
            let (src, _, n) = loop {
                match remote.recv_any_with(Some(Duration::ZERO), |m| {
                    (
                        m.src,
                        m.dst,
                        intercore::copy_from_shared(m.payload, &mut buf),
                    )
                }) {
                    Err(Error::Timeout) => {}
                    r => break r.unwrap(),
                }
                std::thread::sleep(Duration::from_millis(1));
            };
            remote.send_raw(ep, src, &buf[..n], T).unwrap();
        }
    });
    let dst = host.find_service("rpmsg-raw", T).unwrap();
    let ep = host.create_endpoint("me", None).unwrap();
    for i in 0..20u32 {
        let msg = i.to_le_bytes().repeat(i as usize + 1);
        host.send_raw(ep, dst, &msg, Some(Duration::from_secs(1)))
            .unwrap();
        let mut buf = [0u8; 496];
        let (src, n) = host
            .recv_from(&Channel::new(ep, RPMSG_ADDR_ANY), &mut buf, T)
            .unwrap();
        assert_eq!((src, &buf[..n]), (Some(dst), &msg[..]));
    }
    t.join().unwrap();
}

/// The status and features words of a placement.
fn words(p: &DevicePlacement) -> (usize, usize) {
    match p.control {
        DeviceControl::StatusWords {
            status_off,
            gfeatures_off,
            ..
        } => (status_off, gfeatures_off),
        DeviceControl::FirstNotification { .. } => unreachable!("placement() has status words"),
    }
}

/// The placement with other status and features words.
fn with_words(mut p: DevicePlacement, s: usize, g: usize) -> DevicePlacement {
    if let DeviceControl::StatusWords {
        status_off,
        gfeatures_off,
        ..
    } = &mut p.control
    {
        *status_off = s;
        *gfeatures_off = g;
    }
    p
}

/// Placements that do not fit the region, or overlap, are refused before use.
#[test]
fn bad_placements_are_refused() {
    let link = Carveout::with_buffers(NUM);
    let good = placement(&link);
    let mem = || Arc::clone(&link.mem);
    let bell = || ThreadBell::pair().0;
    let try_place = |p: DevicePlacement| {
        RemoteBus::<_, _, 4>::new(
            mem(),
            bell(),
            &p.buffers,
            p,
            RemoteConfig::default().wait(WaitMode::Event),
        )
        .err()
    };
    assert!(try_place(good).is_none());
    let (s, g) = words(&good);
    let p = with_words(good, link.layout.total, g); // past the end
    assert!(matches!(try_place(p), Some(Error::Config(_))));
    let p = with_words(good, s, s + 2); // misaligned
    assert!(matches!(try_place(p), Some(Error::Config(_))));
    let mut p = good;
    p.rings[1].0 = p.rings[0].0; // rings overlap
    assert!(matches!(try_place(p), Some(Error::Config(_))));
    let p = with_words(good, link.layout.buffers, g); // status word inside the buffer window
    assert!(matches!(try_place(p), Some(Error::Config(_))));
    let mut p = good;
    p.buffers.len = link.layout.total; // window runs past the region
    assert!(matches!(try_place(p), Some(Error::Config(_))));
}

/// A host that hands the remote a "buffer" lying over a vring breaks the link.
#[test]
fn buffer_over_a_ring_is_a_protocol_error() {
    let link = Carveout::with_buffers(NUM);
    let p = placement(&link);
    let (hb, rb) = ThreadBell::pair();
    let mut remote = RemoteBus::<_, _, 4>::new(
        Arc::clone(&link.mem),
        rb,
        &p.buffers,
        p,
        RemoteConfig::default().wait(WaitMode::Event),
    )
    .unwrap();
    // Play the host: rings reset, DRIVER_OK, then one transmit "buffer" over vring 0.
    let mem = &*link.mem;
    let (base1, layout) = p.rings[1];
    let mut q = DriverQueue::new(mem, base1, layout, false).unwrap();
    q.reset(mem);
    let mut q0 = DriverQueue::new(mem, p.rings[0].0, layout, false).unwrap();
    q0.reset(mem);
    let (s, g) = words(&p);
    mem.store_u32(g, 1, Release);
    mem.store_u32(s, status::DRIVER_OK as u32, Release);
    remote.wait_ready(T).unwrap();
    let ring0_da = DevAddr(link.map.base.0 + p.rings[0].0 as u64);
    q.add(mem, 0, ring0_da, 64, false).unwrap();
    q.publish(mem);
    let mut buf = [0u8; 64];
    assert!(matches!(
        remote.recv_any_with(Some(Duration::ZERO), |m| (
            m.src,
            m.dst,
            intercore::copy_from_shared(m.payload, &mut buf)
        )),
        Err(Error::Protocol { .. })
    ));
    drop(hb);
}
