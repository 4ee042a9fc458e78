//! `intercore::inspect` (issue 22.3): links frozen in each stuck state users meet — a real
//! bus of one role against the hand-driven peer of `intercore::testing::mock` (or a real
//! pair), driven into the state — are decoded read-only and the diagnosis names the cause;
//! a healthy link and an RPMsg-Lite layout decode correctly with nothing wrong; garbage
//! never panics; and an inspector re-reading a live link changes neither its traffic nor
//! its memory.

use intercore::inspect::{Flavor, Loads, Report, Severity, Target, VringSpec, inspect};
use intercore::rpmsg::layout::CarveoutSpec;
use intercore::rpmsg::{
    Channel, DeviceControl, DevicePlacement, HostBus, HostConfig, RemoteBus, RemoteConfig,
};
use intercore::testing::counting::{CountingMem, MemoryMap};
use intercore::testing::mock::{MockDevice, MockDriver};
use intercore::testing::{Carveout, HeapMem, TestHost, TestRemote, ThreadBell};
use intercore::virtq::VringLayout;
use intercore::wire::rpmsg::{RPMSG_NS_ADDR, RpmsgHdr};
use intercore::wire::rsc::{ResourceTable, VDEV_GFEATURES_OFFSET, VDEV_STATUS_OFFSET};
use intercore::wire::vring::{
    Desc, VRING_AVAIL_F_NO_INTERRUPT, VRING_DESC_F_WRITE, VRING_USED_F_NO_NOTIFY,
};
use intercore::{DevAddr, Doorbell, Error, LinearMap, SharedMemory, WaitMode};
use proptest::prelude::*;
use std::sync::Arc;
use std::sync::atomic::Ordering::{Relaxed, Release};
use std::time::Duration;
use zerocopy::IntoBytes;

const NUM: u16 = 4;
const T: Option<Duration> = Some(Duration::from_secs(5));
const EP: u32 = 0x500;

fn target(link: &Carveout) -> Target {
    Target {
        base: link.spec.da_base,
        rsc_offset: Some(link.rsc.offset),
        ..Target::default()
    }
}

fn report(link: &Carveout) -> Report {
    let r = inspect(&Loads(&*link.mem), &target(link));
    // Both output forms of every report the tests make are exercised.
    let text = r.to_string();
    serde_json::to_string(&r).expect("serializes");
    println!("{text}");
    r
}

fn codes(r: &Report) -> Vec<&'static str> {
    r.diagnosis.iter().map(|f| f.code).collect()
}

/// The finding `code`, which must be there.
fn named<'a>(r: &'a Report, code: &str) -> &'a intercore::inspect::Finding {
    r.diagnosis
        .iter()
        .find(|f| f.code == code)
        .unwrap_or_else(|| panic!("no {code} in {:?}\n{r}", codes(r)))
}

fn host_cfg() -> HostConfig {
    HostConfig {
        wait: WaitMode::Event,
        timeout: Some(Duration::from_millis(50)),
        ..HostConfig::default()
    }
}

/// A name-service message as the remote sends it, header included.
fn ns_bytes(name: &str, addr: u32) -> Vec<u8> {
    let mut v = RpmsgHdr::new(addr, RPMSG_NS_ADDR, 40).as_bytes().to_vec();
    let mut n = [0u8; 32];
    n[..name.len()].copy_from_slice(name.as_bytes());
    v.extend_from_slice(&n);
    v.extend_from_slice(&addr.to_le_bytes());
    v.extend_from_slice(&0u32.to_le_bytes());
    v
}

/// A healthy link after a round trip: the table, the status and features by name, both
/// rings' indices, the last headers each way and the announcement decode as written, and
/// nothing is reported wrong.
#[test]
fn healthy_link_decodes_and_nothing_is_wrong() {
    let link = Carveout::with_buffers(8);
    let (mut host, mut remote): (TestHost, TestRemote) =
        link.connect(host_cfg(), WaitMode::Event).unwrap();
    remote.create_endpoint("rpmsg-echo", Some(EP)).unwrap();
    remote.announce(EP).unwrap();
    assert_eq!(host.find_service("rpmsg-echo", T).unwrap(), EP);
    let hep = host.create_endpoint("h", None).unwrap();
    host.send_raw(hep, EP, b"hello", T).unwrap();
    let mut buf = [0u8; 64];
    let (src, dst, n) = remote
        .recv_any_with(T, |m| {
            let n = m.payload.len();
            buf[..n].copy_from_slice(m.payload);
            (m.src, m.dst, n)
        })
        .unwrap();
    assert_eq!((src, dst, &buf[..n]), (hep, EP, &b"hello"[..]));
    remote.send_raw(EP, hep, b"hello back", T).unwrap();
    assert_eq!(
        host.recv_from(&Channel::new(hep, EP), &mut buf, T).unwrap(),
        (Some(EP), 10)
    );

    let r = report(&link);
    assert!(r.diagnosis.is_empty(), "{r}");
    let v = r.resource_table.as_ref().unwrap().vdev.as_ref().unwrap();
    assert_eq!(v.status.value, 0x7);
    assert_eq!(v.status.names, ["ACKNOWLEDGE", "DRIVER", "DRIVER_OK"]);
    assert!(v.gfeatures.names.contains(&"VIRTIO_RPMSG_F_NS".to_string()));
    let (r0, r1) = (&r.vrings[0], &r.vrings[1]);
    assert_eq!(
        (r0.used_idx, r0.avail_idx),
        (2, 8 + 2),
        "announcement + reply, reposted"
    );
    assert_eq!((r0.held_by_remote, r0.held_by_host), (8, 0));
    assert_eq!((r1.avail_idx, r1.used_idx, r1.held_by_remote), (1, 1, 0));
    let m = &r0.last_messages[0];
    assert_eq!((m.src, m.dst, m.len, m.flags), (EP, hep, 10, 0));
    let m = &r0.last_messages[1];
    assert_eq!((m.src, m.dst, m.len), (EP, RPMSG_NS_ADDR, 40));
    assert!(m.note.as_ref().unwrap().contains("rpmsg-echo"));
    let m = &r1.last_messages[0];
    assert_eq!((m.src, m.dst, m.len), (hep, EP, 5));
    assert_eq!(r.announcements.len(), 1);
    assert_eq!(
        (r.announcements[0].name.as_str(), r.announcements[0].addr),
        ("rpmsg-echo", EP)
    );
}

/// Every transmit buffer sent and none returned (the remote stopped taking them): named,
/// and, as the remote announced nothing, the host's destination is named as never
/// announced.
#[test]
fn all_transmit_buffers_held_by_the_remote() {
    let (dev, mut host) = MockDevice::new(NUM, host_cfg()).unwrap();
    let hep = host.create_endpoint("h", None).unwrap();
    for _ in 0..NUM {
        host.send_raw(hep, EP, b"x", Some(Duration::ZERO)).unwrap();
    }
    assert!(matches!(
        host.send_raw(hep, EP, b"x", Some(Duration::ZERO)),
        Err(Error::Timeout)
    ));
    let r = report(dev.link());
    let f = named(&r, "tx-buffers-all-with-remote");
    assert_eq!(f.severity, Severity::Stuck);
    assert!(f.summary.contains("4 of 4"), "{}", f.summary);
    assert_eq!(r.vrings[1].remote_holds.len(), NUM as usize);
    let f = named(&r, "endpoint-never-announced");
    assert!(f.summary.contains("0x500"), "{}", f.summary);
}

/// The remote filled every receive buffer the host posted and the host has read none:
/// the remote cannot send.
#[test]
fn all_receive_buffers_held_by_the_host() {
    let (dev, _host) = MockDevice::new(NUM, host_cfg()).unwrap();
    for id in 0..NUM {
        dev.write_rx(id as usize, RpmsgHdr::new(EP, 0x400, 1).as_bytes());
        dev.push_used(0, id, u32::from(id), 17);
    }
    dev.set_used_idx(0, NUM);
    let r = report(dev.link());
    let f = named(&r, "rx-buffers-all-with-host");
    assert_eq!(f.severity, Severity::Stuck);
    assert_eq!(
        (r.vrings[0].held_by_remote, r.vrings[0].held_by_host),
        (0, NUM)
    );
    assert_eq!(r.vrings[0].last_messages.len(), 4);
}

/// The remote asked not to be kicked (NO_NOTIFY) and has host messages waiting.
#[test]
fn remote_waits_for_a_kick_it_suppressed() {
    let (dev, mut host) = MockDevice::new(NUM, host_cfg()).unwrap();
    let (base, l) = dev.ring(1);
    dev.link()
        .mem
        .store_u16(base + l.used_flags(), VRING_USED_F_NO_NOTIFY, Release);
    let hep = host.create_endpoint("h", None).unwrap();
    host.send_raw(hep, EP, b"one", Some(Duration::ZERO))
        .unwrap();
    host.send_raw(hep, EP, b"two", Some(Duration::ZERO))
        .unwrap();
    let r = report(dev.link());
    let f = named(&r, "remote-kicks-suppressed");
    assert!(f.summary.starts_with("2 message(s)"), "{}", f.summary);
    assert!(!codes(&r).contains(&"tx-buffers-all-with-remote"));
}

/// The host (played as RPMsg-Lite's master plays it: NO_INTERRUPT set and kept) has
/// messages from a real remote that honours the flag, so it was never interrupted.
#[test]
fn host_waits_for_an_interrupt_it_suppressed() {
    let (drv, mut remote): (MockDriver, TestRemote<8>) = MockDriver::new(NUM).unwrap();
    drv.set_driver_ok(None).unwrap();
    let (base, l) = drv.ring(0);
    for i in 0..NUM {
        drv.offer(
            0,
            i,
            i,
            Desc::new(drv.rx_da(i as u64), 512, VRING_DESC_F_WRITE, 0),
        );
    }
    drv.link()
        .mem
        .store_u16(base + l.avail_flags(), VRING_AVAIL_F_NO_INTERRUPT, Relaxed);
    drv.set_avail_idx(0, NUM);
    remote.wait_ready(T).unwrap();
    let ep = remote.create_endpoint("x", Some(EP)).unwrap();
    remote
        .send_raw(ep, 0x401, b"ping", Some(Duration::ZERO))
        .unwrap();
    remote
        .send_raw(ep, 0x401, b"pong", Some(Duration::ZERO))
        .unwrap();
    let r = report(drv.link());
    let f = named(&r, "host-interrupts-suppressed");
    assert!(
        f.summary.starts_with("2 message buffer(s)"),
        "{}",
        f.summary
    );
    assert_eq!(r.vrings[0].last_messages[0].len, 4);
}

/// A used index ahead of the available index: the impossible state.
#[test]
fn used_index_running_ahead() {
    let (dev, _host) = MockDevice::new(NUM, host_cfg()).unwrap();
    dev.set_used_idx(0, 10);
    let r = report(dev.link());
    let f = named(&r, "used-ahead-of-avail");
    assert_eq!(f.severity, Severity::Error);
    assert!(f.summary.contains("6 ahead"), "{}", f.summary);
    assert_eq!(
        r.diagnosis[0].code, "used-ahead-of-avail",
        "errors come first"
    );
    // Half the index space away: as far ahead as a u16 index can be.
    dev.set_used_idx(0, 4 + 0x8000);
    let r = report(dev.link());
    assert!(
        named(&r, "used-ahead-of-avail")
            .summary
            .contains("32768 ahead")
    );
}

/// A host that writes FEATURES_OK too (a virtio-1 host): status 0xf, which TI's firmware
/// never accepts.
#[test]
fn status_byte_ti_firmware_rejects() {
    let link = Carveout::with_buffers(NUM);
    let (_host, _remote): (TestHost, TestRemote) =
        link.connect(host_cfg(), WaitMode::Event).unwrap();
    let mut raw = vec![0u8; link.rsc.len];
    link.mem.read(link.rsc.offset, &mut raw);
    let vdev = ResourceTable::parse(&raw)
        .unwrap()
        .find_vdev(7)
        .unwrap()
        .unwrap()
        .offset;
    let off = link.rsc.offset + vdev + VDEV_STATUS_OFFSET;
    assert_eq!(report(&link).diagnosis, vec![], "0x7 is fine");
    let w = link.mem.load_u32(off, Relaxed);
    link.mem.store_u32(off, (w & !0xFF) | 0xF, Release);
    let r = report(&link);
    let f = named(&r, "status-not-0x7");
    assert!(f.summary.contains("0xf"), "{}", f.summary);
    assert!(f.evidence[0].contains("FEATURES_OK"), "{:?}", f.evidence);
}

/// A host that offers a buffer outside the shared memory; the real remote refuses it and
/// the inspector says why.
#[test]
fn buffer_outside_every_window() {
    let (drv, mut remote): (MockDriver, TestRemote<8>) = MockDriver::new(NUM).unwrap();
    drv.set_driver_ok(None).unwrap();
    remote.wait_ready(T).unwrap();
    drv.offer(1, 0, 0, Desc::new(0x1000_0000, 512, 0, 0));
    drv.set_avail_idx(1, 1);
    remote.create_endpoint("r", Some(EP)).unwrap();
    assert!(matches!(
        remote.recv_any_with(Some(Duration::ZERO), |_| ()),
        Err(Error::Protocol { .. })
    ));
    let r = report(drv.link());
    let f = named(&r, "buffer-outside-windows");
    assert!(
        f.evidence[0].contains("0x10000000..0x10000200"),
        "{:?}",
        f.evidence
    );
}

/// EVENT_IDX negotiated with a remote that never writes `avail_event`: the host (which
/// honours EVENT_IDX) kicks once; the inspector names the missing word.
#[test]
fn event_index_never_written() {
    let link = Carveout::new(CarveoutSpec {
        vring_num: NUM,
        buf_size: 512,
        event_idx: true,
        da_base: 0xA000_0000,
    });
    let (hb, _rb) = ThreadBell::pair();
    let mut host =
        HostBus::new(Arc::clone(&link.mem), hb, &link.map, link.rsc, host_cfg()).unwrap();
    let hep = host.create_endpoint("h", None).unwrap();
    for _ in 0..3 {
        host.send_raw(hep, EP, b"x", Some(Duration::ZERO)).unwrap();
    }
    let r = report(&link);
    let f = named(&r, "event-idx-never-written");
    assert!(f.summary.contains("avail_event"), "{}", f.summary);
    assert!(
        !codes(&r).contains(&"remote-kicks-suppressed"),
        "the first publish crossed avail_event 0: a kick was due"
    );
}

/// EVENT_IDX negotiated with a host that never writes `used_event` (OpenAMP's
/// remoteproc host): the real remote, which honours EVENT_IDX, interrupts once; the
/// inspector names the missing word on the host's side.
#[test]
fn host_never_writes_used_event() {
    let link = Carveout::new(CarveoutSpec {
        vring_num: NUM,
        buf_size: 512,
        event_idx: true,
        da_base: 0xA000_0000,
    });
    let (hb, rb) = ThreadBell::pair();
    let mut remote: TestRemote = RemoteBus::new(
        Arc::clone(&link.mem),
        rb,
        &link.map,
        link.rsc,
        RemoteConfig::default().wait(WaitMode::Event),
    )
    .unwrap();
    // The host's part by hand: its receive buffers posted, then gfeatures = dfeatures
    // and DRIVER_OK, as OpenAMP's host writes them; used_event is never touched.
    let l = VringLayout::new(u32::from(NUM), 4096).unwrap();
    let r0 = link.layout.vring0;
    for id in 0..NUM {
        let da = 0xA000_0000 + (link.layout.buffers + id as usize * 512) as u64;
        link.mem.write(
            r0 + l.desc(id),
            Desc::new(da, 512, VRING_DESC_F_WRITE, 0).as_bytes(),
        );
        link.mem.store_u16(r0 + l.avail_ring(id), id, Relaxed);
    }
    link.mem.store_u16(r0 + l.avail_idx(), NUM, Release);
    let mut raw = vec![0u8; link.rsc.len];
    link.mem.read(link.rsc.offset, &mut raw);
    let v = ResourceTable::parse(&raw)
        .unwrap()
        .find_vdev(7)
        .unwrap()
        .unwrap();
    let vdev = link.rsc.offset + v.offset;
    link.mem.store_u32(
        vdev + VDEV_GFEATURES_OFFSET,
        v.vdev.dfeatures.get(),
        Relaxed,
    );
    link.mem
        .store_u32(vdev + VDEV_STATUS_OFFSET, 0x7 | 2 << 8, Release);
    hb.ring(0).unwrap();
    remote.wait_ready(T).unwrap();
    let ep = remote.create_endpoint("x", Some(EP)).unwrap();
    for _ in 0..3 {
        remote
            .send_raw(ep, 0x400, b"x", Some(Duration::ZERO))
            .unwrap();
    }
    let r = report(&link);
    let f = named(&r, "event-idx-never-written");
    assert!(f.summary.contains("used_event"), "{}", f.summary);
    assert_eq!(r.vrings[0].used_idx, 3);
}

/// A remote that announces a service before its endpoint exists (address ANY).
#[test]
fn announcement_without_an_endpoint() {
    let (dev, mut host) = MockDevice::new(NUM, host_cfg()).unwrap();
    dev.write_rx(0, &ns_bytes("rpmsg-echo", u32::MAX));
    dev.push_used(0, 0, 0, 56);
    dev.set_used_idx(0, 1);
    host.poll().ok();
    let r = report(dev.link());
    let f = named(&r, "announcement-without-endpoint");
    assert!(f.summary.contains("rpmsg-echo"), "{}", f.summary);
    assert_eq!(r.announcements[0].addr, u32::MAX);
}

/// An RPMsg-Lite master's layout (no table; all transmit buffers start in vring 1's used
/// ring; NO_INTERRUPT kept on both rings), built step by step as `rpmsg_lite_master_init`
/// does, with a real remote attached that sent one message and has one from the master
/// pending. Decoded as RPMsg-Lite: the rings as they are, no error. Decoded as a virtio
/// layout, the pre-filled used ring is (rightly) impossible.
#[test]
fn rpmsg_lite_layout_decodes() {
    const BUF: usize = 512;
    const DA: u64 = 0xA000_0000;
    let l = VringLayout::new(NUM as u32, 4096).unwrap();
    let rb = l.size().div_ceil(4096) * 4096;
    let bufs = 2 * rb;
    let mem = Arc::new(HeapMem::new(bufs + 2 * NUM as usize * BUF));
    let da = |id: usize| DA + (bufs + id * BUF) as u64;
    for q in 0..2 {
        let base = q * rb;
        mem.store_u16(base + l.avail_flags(), VRING_AVAIL_F_NO_INTERRUPT, Relaxed);
        for id in 0..NUM {
            let d = Desc::new(
                da(q * NUM as usize + id as usize),
                BUF as u32,
                VRING_DESC_F_WRITE,
                0,
            );
            mem.write(base + l.desc(id), d.as_bytes());
            if q == 0 {
                mem.store_u16(base + l.avail_ring(id), id, Relaxed);
                mem.store_u16(base + l.avail_idx(), id + 1, Release);
            } else {
                let mut e = [0u8; 8];
                e[..4].copy_from_slice(&u32::from(id).to_le_bytes());
                e[4..].copy_from_slice(&(BUF as u32).to_le_bytes());
                mem.write(base + l.used_ring(id), &e);
                mem.store_u16(base + l.used_idx(), id + 1, Release);
            }
        }
    }
    let (master, rbell) = ThreadBell::pair();
    master.ring(0).unwrap();
    let p = DevicePlacement {
        control: DeviceControl::FirstNotification { features: 1 },
        rings: [(0, l), (rb, l)],
        notify_ids: [0, 1],
        buffers: LinearMap {
            base: DevAddr(DA + bufs as u64),
            offset: bufs,
            len: 2 * NUM as usize * BUF,
        },
    };
    let cfg = RemoteConfig::default().wait(WaitMode::Event);
    let mut remote =
        RemoteBus::<_, _, 4>::new(Arc::clone(&mem), rbell, &p.buffers, p, cfg).unwrap();
    remote.wait_ready(T).unwrap();
    let ep = remote.create_endpoint("x", Some(30)).unwrap();
    remote.send_raw(ep, EP, b"hello", T).unwrap();
    // The master sends: the first free transmit buffer (from vring 1's used ring) into
    // its available ring, not yet taken by the remote.
    mem.write(
        bufs + NUM as usize * BUF,
        RpmsgHdr::new(EP, 30, 3).as_bytes(),
    );
    mem.store_u16(rb + l.avail_ring(0), 0, Relaxed);
    mem.store_u16(rb + l.avail_idx(), 1, Release);

    let t = Target {
        base: DA,
        vrings: vec![
            VringSpec {
                da: DA,
                num: NUM as u32,
                align: 4096,
            },
            VringSpec {
                da: DA + rb as u64,
                num: NUM as u32,
                align: 4096,
            },
        ],
        flavor: Flavor::RpmsgLite,
        ..Target::default()
    };
    let r = inspect(&Loads(&*mem), &t);
    println!("{r}");
    assert!(
        r.diagnosis.iter().all(|f| f.severity > Severity::Stuck),
        "{r}"
    );
    let (r0, r1) = (&r.vrings[0], &r.vrings[1]);
    assert_eq!(
        (r0.avail_idx, r0.used_idx, r0.held_by_remote),
        (NUM, 1, NUM - 1)
    );
    assert_eq!((r1.avail_idx, r1.used_idx, r1.held_by_remote), (1, NUM, 1));
    assert_eq!(
        (
            r0.last_messages[0].src,
            r0.last_messages[0].dst,
            r0.last_messages[0].len
        ),
        (30, EP, 5)
    );
    assert_eq!((r1.last_messages[0].src, r1.last_messages[0].dst), (EP, 30));
    let f = named(&r, "host-interrupts-suppressed");
    assert!(f.explanation.contains("RPMsg-Lite"), "{}", f.explanation);
    let virtio = inspect(
        &Loads(&*mem),
        &Target {
            flavor: Flavor::Virtio,
            ..t
        },
    );
    named(&virtio, "used-ahead-of-avail");
}

/// OpenAMP's Linux "generic" machine layout (REFERENCE.md: `openamp.shm`, 0x80000 bytes,
/// offset = physical address, the table at 0 with a trace entry and a vdev whose vrings sit
/// at 0x4000 and 0x8000 (256 entries, align 0x1000), the host's buffer pool at 0x10000):
/// a real host and remote exchange messages over it, and the inspector reads it back as
/// laid out, with nothing wrong.
#[test]
fn openamp_generic_layout_decodes() {
    use intercore::rpmsg::RscLocation;
    use intercore::wire::Le32;
    use intercore::wire::rsc::{FwRscTrace, FwRscVdev, FwRscVdevVring, RscTableWriter};
    let mem = Arc::new(HeapMem::new(0x8_0000));
    let mut buf = [0u8; 512];
    let mut w = RscTableWriter::new(&mut buf, 2).unwrap();
    let mut name = [0u8; 32];
    name[..5].copy_from_slice(b"trace");
    w.add_trace(&FwRscTrace {
        da: Le32::new(0x7_0000),
        len: Le32::new(0x1000),
        reserved: Le32::new(0),
        name,
    })
    .unwrap();
    let ring = |da: u32, id: u32| FwRscVdevVring {
        da: Le32::new(da),
        align: Le32::new(0x1000),
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
        &[ring(0x4000, 0), ring(0x8000, 1)],
        &[],
    )
    .unwrap();
    let len = w.finish();
    mem.write(0, &buf[..len]);
    let rsc = RscLocation { offset: 0, len };
    let map = LinearMap {
        base: DevAddr(0),
        offset: 0,
        len: 0x8_0000,
    };
    let cfg = HostConfig {
        buffers: Some(LinearMap {
            base: DevAddr(0x1_0000),
            offset: 0x1_0000,
            len: 0x4_0000,
        }),
        ..host_cfg()
    };
    let (hb, rb) = ThreadBell::pair();
    let mut host = HostBus::new(Arc::clone(&mem), hb, &map, rsc, cfg).unwrap();
    let rcfg = RemoteConfig::default()
        .wait(WaitMode::Event)
        .buffers(Some(LinearMap {
            base: DevAddr(0x1_0000),
            offset: 0x1_0000,
            len: 0x4_0000,
        }));
    let mut remote: TestRemote = RemoteBus::new(Arc::clone(&mem), rb, &map, rsc, rcfg).unwrap();
    remote.wait_ready(T).unwrap();
    remote
        .create_endpoint("rpmsg-openamp-demo-channel", Some(EP))
        .unwrap();
    remote.announce(EP).unwrap();
    host.find_service("rpmsg-openamp-demo-channel", T).unwrap();
    let hep = host.create_endpoint("h", None).unwrap();
    let mut b = [0u8; 64];
    for i in 0..3u8 {
        host.send_raw(hep, EP, &[i; 7], T).unwrap();
        let (src, _, n) = remote
            .recv_any_with(T, |m| {
                let n = m.payload.len();
                b[..n].copy_from_slice(m.payload);
                (m.src, m.dst, n)
            })
            .unwrap();
        remote.send_raw(EP, src, &b[..n], T).unwrap();
        host.recv_from(&Channel::new(hep, EP), &mut b, T).unwrap();
    }
    let r = inspect(
        &Loads(&*mem),
        &Target {
            rsc_offset: Some(0),
            ..Target::default()
        },
    );
    println!("{r}");
    assert!(r.diagnosis.is_empty(), "{r}");
    let t = r.resource_table.as_ref().unwrap();
    assert!(matches!(
        &t.entries[0],
        intercore::inspect::RscEntry::Trace { da: 0x7_0000, .. }
    ));
    let (r0, r1) = (&r.vrings[0], &r.vrings[1]);
    assert_eq!(
        (r0.da, r0.num, r0.align, r1.da),
        (0x4000, 256, 0x1000, 0x8000)
    );
    assert_eq!((r0.used_idx, r1.avail_idx, r1.used_idx), (4, 3, 3));
    assert!(
        r0.remote_holds
            .iter()
            .all(|d| (0x1_0000..0x5_0000).contains(&d.addr))
    );
    assert_eq!(r1.last_messages[0].len, 7);
    assert_eq!(r.announcements[0].name, "rpmsg-openamp-demo-channel");
}

/// Reads a live link without disturbing it: the same lock-step traffic run twice, once
/// alone and once with an inspector thread re-reading the whole link continuously,
/// leaves identical traffic counters on both buses; and the inspector's memory, which
/// counts every access, saw loads and not one store.
#[test]
fn inspector_does_not_disturb_a_live_link() {
    fn traffic(inspect_it: bool) -> (String, String, u64, u64) {
        let link = Carveout::with_buffers(8);
        let (mut host, mut remote): (TestHost, TestRemote) =
            link.connect(host_cfg(), WaitMode::Event).unwrap();
        let watched = Arc::new(CountingMem::new(
            Arc::clone(&link.mem),
            MemoryMap::for_link(&link),
        ));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let t = target(&link);
        let inspector = inspect_it.then(|| {
            let (w, stop, t) = (Arc::clone(&watched), Arc::clone(&stop), t.clone());
            std::thread::spawn(move || {
                let mut n = 0u64;
                while !stop.load(Relaxed) || n == 0 {
                    let r = inspect(&Loads(&*w), &t);
                    assert_eq!(r.vrings.len(), 2);
                    n += 1;
                }
                n
            })
        });
        remote.create_endpoint("rpmsg-echo", Some(EP)).unwrap();
        remote.announce(EP).unwrap();
        host.find_service("rpmsg-echo", T).unwrap();
        let hep = host.create_endpoint("h", None).unwrap();
        let mut buf = [0u8; 512];
        for i in 0..300usize {
            let len = 1 + i % 496;
            let msg: Vec<u8> = (0..len).map(|k| (k + i) as u8).collect();
            host.send_raw(hep, EP, &msg, T).unwrap();
            let (src, _, n) = remote
                .recv_any_with(T, |m| {
                    let n = m.payload.len();
                    buf[..n].copy_from_slice(m.payload);
                    (m.src, m.dst, n)
                })
                .unwrap();
            assert_eq!(&buf[..n], &msg[..]);
            remote.send_raw(EP, src, &msg, T).unwrap();
            let (_, n) = host.recv_from(&Channel::new(hep, EP), &mut buf, T).unwrap();
            assert_eq!(&buf[..n], &msg[..]);
        }
        stop.store(true, Relaxed);
        let reads = inspector.map_or(0, |h| h.join().unwrap());
        let c = watched.counts();
        assert_eq!(c.stores, 0, "the inspector stored into the link");
        (
            format!("{:?}", host.stats()),
            format!("{:?}", remote.stats()),
            reads,
            c.loads,
        )
    }
    let alone = traffic(false);
    let watched = traffic(true);
    assert!(
        watched.2 > 0 && watched.3 > 0,
        "the inspector ran: {watched:?}"
    );
    assert_eq!((&alone.0, &alone.1), (&watched.0, &watched.1));
}

/// A region that ends at the top of the address space, with a name-service message in
/// its last bytes: the payload's address would overflow; decoded without a panic.
#[test]
fn region_at_the_top_of_the_address_space() {
    let base = u64::MAX - 0xFFFF;
    let mut mem = vec![0u8; 0x10000];
    let l = VringLayout::new(4, 16).unwrap();
    let ring1 = 0x100;
    let buf = 0x10000 - 16;
    mem[ring1..ring1 + 16].copy_from_slice(Desc::new(base + buf as u64, 56, 0, 0).as_bytes());
    mem[ring1 + l.avail_idx()] = 1;
    mem[buf..].copy_from_slice(RpmsgHdr::new(0x400, RPMSG_NS_ADDR, 40).as_bytes());
    let t = Target {
        base,
        vrings: vec![
            VringSpec {
                da: base,
                num: 4,
                align: 16,
            },
            VringSpec {
                da: base + ring1 as u64,
                num: 4,
                align: 16,
            },
        ],
        ..Target::default()
    };
    let r = inspect(&mem, &t);
    assert_eq!(r.vrings[1].last_messages[0].dst, RPMSG_NS_ADDR, "{r}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Garbage, with any addresses and geometry: findings and errors, never a panic.
    #[test]
    fn garbage_never_panics(
        bytes in proptest::collection::vec(any::<u8>(), 0..12288),
        base in prop_oneof![Just(0u64), Just(0xA000_0000u64), any::<u64>(), Just(u64::MAX - 0x2FFF)],
        rsc in proptest::option::of(0usize..14000),
        rings in proptest::collection::vec((0u64..0x4000, 0u32..70000, 0u32..10000), 0..3),
        lite in any::<bool>(),
        event_idx in any::<bool>(),
        history in 0usize..100,
    ) {
        let t = Target {
            base,
            rsc_offset: rsc,
            vrings: rings.iter().map(|&(off, num, align)| VringSpec { da: base.wrapping_add(off), num, align }).collect(),
            event_idx,
            flavor: if lite { Flavor::RpmsgLite } else { Flavor::Virtio },
            windows: vec![(u64::MAX - 10, 100)],
            history,
        };
        let r = inspect(&bytes, &t);
        let _ = r.to_string();
        serde_json::to_string(&r).unwrap();
    }

    /// A real link's memory scribbled over (ring words, table bytes, buffers): decoded
    /// without panicking.
    #[test]
    fn scribbled_link_never_panics(writes in proptest::collection::vec((0usize..0x8000, any::<u16>()), 1..64)) {
        let link = Carveout::with_buffers(NUM);
        let (_host, _remote): (TestHost, TestRemote) = link.connect(host_cfg(), WaitMode::Event).unwrap();
        for (off, v) in writes {
            let off = (off % link.mem.len()) & !1;
            link.mem.store_u16(off, v, Relaxed);
        }
        let r = inspect(&Loads(&*link.mem), &target(&link));
        let _ = r.to_string();
    }
}
