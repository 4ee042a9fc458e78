//! The host role's defaults and its open (issue 19, items 4, 6 and 9): the status byte Linux
//! writes, no message lost by default, a failed open that leaves shared memory as it found
//! it, and a placed remote that keeps the default buffer size.

use intercore::rpmsg::Channel;
use intercore::rpmsg::RPMSG_ADDR_ANY;
use intercore::rpmsg::RemoteConfig;
use intercore::rpmsg::rsc_table::IntercoreRpmsgTable;
use intercore::rpmsg::{DeviceControl, DevicePlacement, HostBus, HostConfig, RemoteBus, status};
use intercore::testing::{Carveout, HeapMem, ThreadBell};
use intercore::virtq::VringLayout;
use intercore::wire::Le32;
use intercore::wire::rsc::{
    FW_RSC_ADDR_ANY, FwRscTrace, FwRscVdev, FwRscVdevVring, INTERCORE_FEATURES, RscTableWriter,
    VDEV_GFEATURES_OFFSET, VDEV_STATUS_OFFSET,
};
use intercore::{DevAddr, Error, LinearMap, SharedMemory, WaitMode};
use std::sync::Arc;
use std::thread;
use std::time::Duration;
use zerocopy::IntoBytes;

type Remote = RemoteBus<Arc<HeapMem>, ThreadBell, 8>;

const T: Option<Duration> = Some(Duration::from_secs(10));
const DA: u64 = 0xA000_0000;

/// Linux's status for a remoteproc vdev is ACKNOWLEDGE|DRIVER|DRIVER_OK = 0x7:
/// `virtio_dev_probe` → `virtio_features_ok()` adds FEATURES_OK only for a device offering
/// VIRTIO_F_VERSION_1 (bit 32), which a table's 32-bit `dfeatures` cannot. TI's MCU+ SDK
/// firmware waits for exactly 0x7 (`RPMessage_waitForLinuxReady`); our remote, which checks
/// DRIVER_OK alone, comes up on it. Before the fix the host wrote 0xF.
#[test]
fn host_writes_status_0x7_as_linux_does_and_our_remote_accepts_it() {
    let link = Carveout::with_buffers(8);
    let (mut host, mut remote): (_, Remote) =
        link.connect(HostConfig::default(), WaitMode::Poll).unwrap();
    let mut raw = vec![0u8; link.rsc.len];
    link.mem.read(link.rsc.offset, &mut raw);
    let t = intercore::wire::rsc::ResourceTable::validate(&raw).unwrap();
    let v = t.find_vdev(7).unwrap().unwrap();
    assert_eq!(
        v.vdev.status,
        status::ACKNOWLEDGE | status::DRIVER | status::DRIVER_OK
    );
    assert_eq!(v.vdev.status, 0x7);
    // The link works on that status.
    let ep = remote.create_endpoint("s", None).unwrap();
    remote.announce(ep).unwrap();
    let dst = host.find_service("s", T).unwrap();
    let me = host.create_endpoint("me", None).unwrap();
    host.send_raw(me, dst, b"ping", Some(Duration::from_secs(1)))
        .unwrap();
    let (src, n) = remote
        .recv_any_with(T, |m| (m.src, m.payload.len()))
        .unwrap();
    assert_eq!((src, n), (me, 4));
}

/// An echo remote in a thread: echoes every message until the host goes away.
fn spawn_echo(mut remote: Remote) -> thread::JoinHandle<u64> {
    thread::spawn(move || {
        let ep = remote.create_endpoint("echo", None).unwrap();
        remote.announce(ep).unwrap();
        let mut n = 0;
        let mut buf = [0u8; 512];
        loop {
            match remote.recv_any_with(None, |m| {
                buf[..m.payload.len()].copy_from_slice(m.payload);
                (m.src, m.payload.len())
            }) {
                Ok((src, len)) => {
                    remote.send_raw(ep, src, &buf[..len], None).unwrap();
                    n += 1;
                }
                Err(Error::PeerGone) => return n,
                Err(e) => panic!("remote: {e}"),
            }
        }
    })
}

fn message(i: usize) -> Vec<u8> {
    (0..(i * 31) % 496 + 1)
        .map(|b| (b as u8).wrapping_mul(7) ^ i as u8)
        .collect()
}

/// Issue 19.6: a pipelined echo of depth 256 to one endpoint over 256-entry rings, default
/// settings: every reply arrives, in order, verified. Before the fix the endpoint held at
/// most 192 buffers and the other 64 replies were dropped (only counted): the caller saw
/// a timeout. Over the standard split ring, over in-order rings and over inline-slot rings
/// (an intercore remote; inline copies queued messages out once every slot is taken).
#[test]
fn pipelined_echo_of_depth_256_to_one_endpoint_loses_nothing() {
    for (depth, in_order, inline) in [
        (255usize, false, false),
        (256, false, false),
        (256, true, false),
        (256, false, true),
    ] {
        let link = Carveout::with_buffers(256);
        if in_order || inline {
            // An intercore firmware's table: in-order rings negotiated.
            let t = IntercoreRpmsgTable::standard(&link.spec, INTERCORE_FEATURES);
            link.mem.write(link.rsc.offset, t.as_bytes());
        }
        let (mut host, remote) = link
            .connect::<8>(HostConfig::default().inline(inline), WaitMode::Event)
            .unwrap();
        assert_eq!(host.in_order(), in_order);
        assert_eq!(host.inline_max().is_some(), inline);
        let echo = spawn_echo(remote);
        let dst = host.find_service("echo", T).unwrap();
        let me = host.create_endpoint("me", None).unwrap();
        for i in 0..depth {
            host.send_raw(me, dst, &message(i), Some(Duration::from_secs(1)))
                .unwrap();
        }
        // Every reply is in before the first is read: the ring alone could not hold them
        // in place past the endpoint's limit.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !inline && host.stats().held_copied + 192 < depth as u64 && depth > 192 {
            host.poll().unwrap();
            assert!(std::time::Instant::now() < deadline, "replies missing");
            thread::sleep(Duration::from_millis(1));
        }
        let mut buf = [0u8; 496];
        for i in 0..depth {
            let (src, n) = host
                .recv_from(&Channel::new(me, RPMSG_ADDR_ANY), &mut buf, T)
                .unwrap_or_else(|e| panic!("depth {depth}: reply {i}: {e}"));
            assert_eq!(src, Some(dst));
            assert_eq!(&buf[..n], &message(i)[..], "depth {depth}: reply {i}");
        }
        let s = host.stats();
        assert_eq!(s.held_dropped, 0);
        if !inline {
            assert_eq!(s.held_copied, depth as u64 - 192, "192 held in place");
        }
        drop(host);
        assert_eq!(echo.join().unwrap(), depth as u64);
    }
}

/// Past the explicit bound (`max_copied_per_endpoint`), a message is dropped and the
/// receiver is TOLD: the receive that reaches the place of the lost messages returns
/// `Error::Lost` with how many; the messages before and after them arrive in order, and the
/// endpoint goes on receiving. Before the fix the drop was only counted.
#[test]
fn overflow_past_the_bound_is_told_to_the_receiver() {
    let cfg = HostConfig {
        max_held_per_endpoint: Some(2),
        max_copied_per_endpoint: 3,
        ..HostConfig::default()
    };
    let (mut host, mut remote): (_, Remote) = Carveout::with_buffers(8)
        .connect(cfg, WaitMode::Poll)
        .unwrap();
    let me = host.create_endpoint("me", None).unwrap();
    let other = host.create_endpoint("other", None).unwrap();
    let r = remote.create_endpoint("r", None).unwrap();
    for i in 0..10u32 {
        remote
            .send_raw(r, me, &i.to_le_bytes(), Some(Duration::ZERO))
            .unwrap();
        host.poll().unwrap();
    }
    // Another endpoint is not affected.
    remote
        .send_raw(r, other, b"x", Some(Duration::ZERO))
        .unwrap();
    let mut b = [0u8; 4];
    assert_eq!(
        host.recv_from(
            &Channel::new(other, RPMSG_ADDR_ANY),
            &mut b,
            Some(Duration::ZERO)
        )
        .unwrap(),
        (Some(r), 1)
    );
    let s = host.stats();
    assert_eq!((s.held_copied, s.held_dropped), (3, 5));
    for i in 0..5u32 {
        assert_eq!(
            host.recv_from(
                &Channel::new(me, RPMSG_ADDR_ANY),
                &mut b,
                Some(Duration::ZERO)
            )
            .unwrap(),
            (Some(r), 4)
        );
        assert_eq!(b, i.to_le_bytes());
    }
    assert_eq!(
        host.recv_from(
            &Channel::new(me, RPMSG_ADDR_ANY),
            &mut b,
            Some(Duration::ZERO)
        ),
        Err(Error::Lost { count: 5 })
    );
    assert_eq!(
        host.recv_from(
            &Channel::new(me, RPMSG_ADDR_ANY),
            &mut b,
            Some(Duration::ZERO)
        ),
        Err(Error::Timeout)
    );
    remote
        .send_raw(r, me, &10u32.to_le_bytes(), Some(Duration::ZERO))
        .unwrap();
    assert_eq!(
        host.recv_from(
            &Channel::new(me, RPMSG_ADDR_ANY),
            &mut b,
            Some(Duration::ZERO)
        )
        .unwrap(),
        (Some(r), 4)
    );
    assert_eq!(b, 10u32.to_le_bytes());
    // The zero-copy receive is told the same way.
    for i in 11..20u32 {
        remote
            .send_raw(r, me, &i.to_le_bytes(), Some(Duration::ZERO))
            .unwrap();
        host.poll().unwrap();
    }
    let got: Vec<u32> = (0..5)
        .map(|_| {
            let m = host
                .recv_buf(&Channel::new(me, RPMSG_ADDR_ANY), Some(Duration::ZERO))
                .unwrap();
            u32::from_le_bytes(m[..4].try_into().unwrap())
        })
        .collect();
    assert_eq!(got, [11, 12, 13, 14, 15]);
    assert_eq!(
        host.recv_buf(&Channel::new(me, RPMSG_ADDR_ANY), Some(Duration::ZERO))
            .unwrap_err(),
        Error::Lost { count: 4 }
    );
    assert_eq!(
        host.recv_buf(&Channel::new(me, RPMSG_ADDR_ANY), Some(Duration::ZERO))
            .unwrap_err(),
        Error::Timeout
    );
}

/// A table as TI's, OpenAMP's and Zephyr's firmware declare it: a trace entry and the rpmsg
/// vdev (NS) with both vrings at `FW_RSC_ADDR_ANY`, no buffer carveout.
fn any_vring_table(mem: &HeapMem, at: usize, num: u32) -> intercore::rpmsg::RscLocation {
    let mut buf = vec![0u8; 512];
    let mut w = RscTableWriter::new(&mut buf, 2).unwrap();
    w.add_trace(&FwRscTrace {
        da: Le32::new(0x1000),
        len: Le32::new(0x1000),
        reserved: Le32::new(0),
        name: intercore::rpmsg::rsc_table::name32(b"trace:r5fss0_0"),
    })
    .unwrap();
    let ring = |id: u32| FwRscVdevVring {
        da: Le32::new(FW_RSC_ADDR_ANY),
        align: Le32::new(4096),
        num: Le32::new(num),
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
    mem.write(at, &buf);
    intercore::rpmsg::RscLocation {
        offset: at,
        len: buf.len(),
    }
}

/// Issue 19.9: every way `HostBus::new` can fail after reading the table leaves the shared
/// region byte for byte as it was — vring addresses, notify ids, status and features words,
/// rings. Before the fix the host wrote the vrings' `da` and notify ids (and reset the
/// status) into the table, then failed on the missing or too small buffer area.
#[test]
fn a_failed_open_leaves_shared_memory_as_it_found_it() {
    let num = 256;
    let region = 0x100000;
    let pool = |len: usize| LinearMap {
        base: DevAddr(DA),
        offset: 0,
        len,
    };
    let vrings_only = 0x8000; // both vrings fit, the 256 KiB of buffers do not
    let cases: [(&str, HostConfig); 5] = [
        (
            "pool too small for the buffers",
            HostConfig {
                vring_region: Some(pool(vrings_only)),
                ..HostConfig::default()
            },
        ),
        (
            "explicit buffer region too small",
            HostConfig {
                vring_region: Some(pool(vrings_only)),
                buffers: Some(LinearMap {
                    base: DevAddr(DA + vrings_only as u64),
                    offset: vrings_only,
                    len: 0x1000,
                }),
                ..HostConfig::default()
            },
        ),
        (
            "buffer region over the vrings",
            HostConfig {
                vring_region: Some(pool(vrings_only)),
                buffers: Some(pool(0x80000)),
                ..HostConfig::default()
            },
        ),
        (
            "pool not page-aligned",
            HostConfig {
                vring_region: Some(LinearMap {
                    base: DevAddr(DA + 0x10),
                    offset: 0x10,
                    len: 0x80000,
                }),
                ..HostConfig::default()
            },
        ),
        (
            "pool outside the region",
            HostConfig {
                vring_region: Some(LinearMap {
                    base: DevAddr(DA + 0xC0000),
                    offset: 0xC0000,
                    len: 0x80000,
                }),
                ..HostConfig::default()
            },
        ),
    ];
    for (what, cfg) in cases {
        let mem = Arc::new(HeapMem::new(region + 0x1000));
        // What a previous link left: dirty rings and a table with its own words.
        let junk: Vec<u8> = (0..region).map(|i| (i * 13 % 251) as u8).collect();
        mem.write(0, &junk);
        let loc = any_vring_table(&mem, region, num);
        let map = LinearMap {
            base: DevAddr(DA),
            offset: 0,
            len: region + 0x1000,
        };
        let mut before = vec![0u8; mem.len()];
        mem.read(0, &mut before);
        let (hb, _rb) = ThreadBell::pair();
        let e = HostBus::new(Arc::clone(&mem), hb, &map, loc, cfg)
            .err()
            .unwrap_or_else(|| panic!("{what}: opened"));
        assert!(matches!(e, Error::Config(_)), "{what}: {e:?}");
        let mut after = vec![0u8; mem.len()];
        mem.read(0, &mut after);
        let first = before.iter().zip(&after).position(|(a, b)| a != b);
        assert_eq!(first, None, "{what} ({e}): shared memory changed");
    }
}

/// Issue 19.9: `RemoteBus::new` with a `DevicePlacement` keeps the default buffer size (512, as Linux and
/// RPMsg-Lite build it): a host buffer longer than that is refused, as it is for a remote
/// built from a table. Before the fix it silently set the limit to `usize::MAX`.
#[test]
fn a_placed_remote_keeps_the_default_buffer_size() {
    let link = Carveout::with_buffers(8);
    let mut raw = vec![0u8; link.rsc.len];
    link.mem.read(link.rsc.offset, &mut raw);
    let table = intercore::wire::rsc::ResourceTable::validate(&raw).unwrap();
    let vdev = table.find_vdev(7).unwrap().unwrap();
    let at = link.rsc.offset + vdev.offset;
    let layout = VringLayout::new(8, intercore::rpmsg::layout::VRING_ALIGN).unwrap();
    let p = DevicePlacement {
        control: DeviceControl::StatusWords {
            status_off: at + VDEV_STATUS_OFFSET,
            gfeatures_off: at + VDEV_GFEATURES_OFFSET,
            dfeatures: vdev.vdev.dfeatures.get(),
        },
        rings: [(link.layout.vring0, layout), (link.layout.vring1, layout)],
        notify_ids: [0, 1],
        buffers: LinearMap {
            base: DevAddr(link.map.base.0 + link.layout.buffers as u64),
            offset: link.layout.buffers,
            len: link.layout.buffers_len,
        },
    };
    // 1024-byte host buffers, 4 per direction: the same bytes as 8 × 512.
    let cfg = HostConfig {
        num_bufs: 4,
        buf_size: 1024,
        ..HostConfig::default()
    };
    let (hb, rb) = ThreadBell::pair();
    let mut host = HostBus::new(Arc::clone(&link.mem), hb, &link.map, link.rsc, cfg).unwrap();
    let mut remote = RemoteBus::<_, _, 4>::new(
        Arc::clone(&link.mem),
        rb,
        &p.buffers,
        p,
        RemoteConfig::default().wait(WaitMode::Poll),
    )
    .unwrap();
    remote.wait_ready(T).unwrap();
    let r = remote.create_endpoint("r", Some(0x400)).unwrap();
    let me = host.create_endpoint("me", None).unwrap();
    // 600 bytes of payload: a 616-byte descriptor, more than a 512-byte buffer.
    host.send_raw(me, r, &[7u8; 600], Some(Duration::from_secs(1)))
        .unwrap();
    let e = remote.recv_any_with(T, |m| m.payload.len()).unwrap_err();
    assert!(
        matches!(e, Error::Protocol { .. }),
        "a 1024-byte descriptor must be refused by a 512-byte remote: {e:?}"
    );
}
