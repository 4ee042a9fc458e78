//! The simulated SoC end to end: the remote firmware really runs in another process,
//! shares only the memfd carveout and two eventfds with us, and its death or silence
//! reaches the host as an error within the bounded time the core issue asks for (≤ 1 s).

use common::program;
use intercore::Error;
use intercore::rpmsg::Channel;
use intercore::rpmsg::HostConfig;
use intercore::rpmsg::RPMSG_ADDR_ANY;
use intercore_sim::{SimConfig, Soc};
use std::time::{Duration, Instant};

mod common;

fn start() -> Soc {
    Soc::start(&common::offload(), &program()).expect("simulated SoC starts")
}

const SERVICE: &str = intercore_fw_echo::SERVICE;

/// The echo firmware runs in a separate process (another pid), announces itself through
/// the name service and echoes verified messages.
#[test]
fn remote_runs_in_its_own_process_and_echoes() {
    let soc = start();
    assert_ne!(soc.remote_pid(), std::process::id());
    let mut bus = soc.host_bus(HostConfig::default()).unwrap();
    let dst = bus
        .find_service(SERVICE, Some(Duration::from_secs(10)))
        .unwrap();
    let ep = bus.create_endpoint("test", None).unwrap();
    let mut back = [0u8; 496];
    for len in 1..=496usize {
        let msg: Vec<u8> = (0..len).map(|i| (i * 31 + len) as u8).collect();
        bus.send_raw(ep, dst, &msg, Some(Duration::from_secs(1)))
            .unwrap();
        let (src, n) = bus
            .recv_from(
                &Channel::new(ep, RPMSG_ADDR_ANY),
                &mut back,
                Some(Duration::from_secs(1)),
            )
            .unwrap();
        assert_eq!((src, &back[..n]), (Some(dst), &msg[..]));
    }
    drop(bus);
    let status = soc.shutdown(Duration::from_secs(5)).unwrap();
    assert!(
        status.success(),
        "remote exits cleanly when the host resets the device: {status}"
    );
}

/// SIGKILL of the remote in the middle of traffic: the host's next blocking call fails
/// with `PeerGone` (seen through the pidfd) well within 1 s, and keeps failing.
#[test]
fn killed_remote_is_reported_within_a_second() {
    let mut soc = start();
    let mut bus = soc.host_bus(HostConfig::default()).unwrap();
    let dst = bus
        .find_service(SERVICE, Some(Duration::from_secs(10)))
        .unwrap();
    let ep = bus.create_endpoint("test", None).unwrap();
    let mut back = [0u8; 64];
    for _ in 0..1000 {
        bus.send_raw(ep, dst, b"before", Some(Duration::from_secs(1)))
            .unwrap();
        bus.recv_from(
            &Channel::new(ep, RPMSG_ADDR_ANY),
            &mut back,
            Some(Duration::from_secs(1)),
        )
        .unwrap();
    }
    soc.kill_remote().unwrap();
    let t0 = Instant::now();
    let err = loop {
        match bus
            .send_raw(ep, dst, b"after", Some(Duration::from_secs(1)))
            .and_then(|_| {
                bus.recv_from(
                    &Channel::new(ep, RPMSG_ADDR_ANY),
                    &mut back,
                    Some(Duration::from_secs(1)),
                )
            }) {
            Ok(_) => assert!(
                t0.elapsed() < Duration::from_secs(1),
                "still answering after the kill"
            ),
            Err(e) => break e,
        }
    };
    let dt = t0.elapsed();
    assert_eq!(err, Error::PeerGone);
    assert!(dt <= Duration::from_secs(1), "took {dt:?}");
    assert_eq!(
        bus.recv_from(
            &Channel::new(ep, RPMSG_ADDR_ANY),
            &mut back,
            Some(Duration::from_secs(1))
        ),
        Err(Error::PeerGone),
        "the link stays dead"
    );
}

/// A remote that stops answering (SIGSTOP: alive, silent) turns the host's receive into
/// `Timeout` after the default 1 s, not a hang.
#[test]
fn frozen_remote_times_out_after_the_default_second() {
    let soc = start();
    let mut bus = soc.host_bus(HostConfig::default()).unwrap();
    assert_eq!(bus.config().timeout, Some(Duration::from_secs(1)));
    let dst = bus
        .find_service(SERVICE, Some(Duration::from_secs(10)))
        .unwrap();
    let ep = bus.create_endpoint("test", None).unwrap();
    soc.freeze_remote().unwrap();
    bus.send_raw(ep, dst, b"hello?", Some(Duration::from_secs(1)))
        .unwrap();
    let t0 = Instant::now();
    assert_eq!(
        bus.recv_from(
            &Channel::new(ep, RPMSG_ADDR_ANY),
            &mut [0; 64],
            Some(Duration::from_secs(1))
        ),
        Err(Error::Timeout)
    );
    let dt = t0.elapsed();
    assert!(
        dt >= Duration::from_millis(990) && dt < Duration::from_millis(1500),
        "took {dt:?}"
    );
    soc.thaw_remote().unwrap();
    // Thawed, the remote answers the message it missed.
    let (src, n) = bus
        .recv_from(
            &Channel::new(ep, RPMSG_ADDR_ANY),
            &mut [0; 64],
            Some(Duration::from_secs(1)),
        )
        .unwrap();
    assert_eq!((src, n), (Some(dst), 6));
}

/// Each wait mode works against the real process (the remote uses the same mode).
#[test]
fn every_wait_mode_round_trips() {
    use intercore::WaitMode;
    for mode in [
        WaitMode::Poll,
        WaitMode::Event,
        WaitMode::Adaptive(Duration::from_micros(20)),
    ] {
        let cfg = SimConfig {
            remote_wait: mode,
            ..common::offload()
        };
        let soc = Soc::start(&cfg, &program()).unwrap();
        let mut bus = soc
            .host_bus(HostConfig {
                wait: mode,
                ..HostConfig::default()
            })
            .unwrap();
        let dst = bus
            .find_service(SERVICE, Some(Duration::from_secs(10)))
            .unwrap();
        let ep = bus.create_endpoint("test", None).unwrap();
        for i in 0..200u32 {
            bus.send_raw(ep, dst, &i.to_le_bytes(), Some(Duration::from_secs(1)))
                .unwrap();
            let mut b = [0u8; 4];
            bus.recv_from(
                &Channel::new(ep, RPMSG_ADDR_ANY),
                &mut b,
                Some(Duration::from_secs(1)),
            )
            .unwrap();
            assert_eq!(u32::from_le_bytes(b), i, "{mode:?}");
        }
    }
}

/// The TI K3-like layout across the process boundary, firmware first (IPC-only attach):
/// the remote process starts with its table in the second region and vrings at
/// `FW_RSC_ADDR_ANY`, waits for DRIVER_OK; the host allocates the vrings in the first
/// region (`rproc_alloc_vring`), writes their `da` and notify ids (0, 1) into the table,
/// places the buffers there, and verified messages flow.
#[test]
fn ti_k3_layout_firmware_first() {
    use intercore::SharedMemory;
    use intercore::wire::rsc::ResourceTable;
    let cfg = SimConfig {
        layout: intercore_sim::SimLayout::TiK3,
        firmware: common::echo(),
        ..common::offload()
    };
    let soc = Soc::start(&cfg, &program()).unwrap();
    // The remote is already running and waiting when the host attaches.
    std::thread::sleep(Duration::from_millis(50));
    let mut bus = soc.host_bus(HostConfig::default()).unwrap();
    let dst = bus
        .find_service(SERVICE, Some(Duration::from_secs(10)))
        .unwrap();
    let rsc = soc.rsc();
    assert!(rsc.offset >= 1 << 20, "table in the second region");
    let mut raw = vec![0u8; rsc.len];
    soc.memory().read(rsc.offset, &mut raw);
    let table = ResourceTable::validate(&raw).unwrap();
    let vdev = table.find_vdev(7).unwrap().unwrap();
    for i in 0..2 {
        let v = vdev.vring(i).unwrap();
        assert_eq!(v.notifyid.get(), i as u32, "notify id written back");
        assert_eq!(
            v.da.get() as u64,
            cfg.da_base + soc.layout().vring0 as u64 + (i * soc.layout().vring1) as u64,
            "vring {i} placed in the first region"
        );
    }
    let ep = bus.create_endpoint("test", None).unwrap();
    let mut back = [0u8; 496];
    for len in 1..=496usize {
        let msg: Vec<u8> = (0..len).map(|i| (i * 7 + len) as u8).collect();
        bus.send_raw(ep, dst, &msg, Some(Duration::from_secs(1)))
            .unwrap();
        let (src, n) = bus
            .recv_from(
                &Channel::new(ep, RPMSG_ADDR_ANY),
                &mut back,
                Some(Duration::from_secs(1)),
            )
            .unwrap();
        assert_eq!((src, &back[..n]), (Some(dst), &msg[..]));
    }
    drop(bus);
    assert!(soc.shutdown(Duration::from_secs(5)).unwrap().success());
}

/// Both firmwares' tables offer the name service and not EVENT_IDX: OpenAMP's
/// remoteproc-virtio host accepts EVENT_IDX but never writes `used_event`, and RPMsg-Lite
/// implements none, so a default that works with every host leaves it off.
#[test]
fn firmware_tables_do_not_offer_event_idx() {
    let fws: [std::sync::Arc<intercore_sim::SimFirmware>; 2] = [
        common::echo(),
        std::sync::Arc::new(intercore_fw_offload::Offload),
    ];
    for fw in fws {
        let (spec, table) = fw.resource_table().expect("a declared table");
        assert!(!spec.event_idx, "{}", fw.name());
        assert_eq!(table.vdev.vdev.dfeatures.get(), 1, "{}: NS only", fw.name());
    }
}
