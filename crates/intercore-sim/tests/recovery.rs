//! Issue 12, recovery: the remote core dies (SIGKILL of its process) mid-traffic, mid-bulk
//! or idle, 40 times, in one host process; each time the host sees `PeerGone`, reclaims its
//! in-flight data-plane buffers, the firmware comes back (`Soc::restart_remote`, what
//! remoteproc's recovery does on a board), the host resets the link (`HostBus::reconnect`),
//! waits for the re-announced services and carries on. Nothing leaks: the pool's exact
//! accounting, the endpoint table's size, the open file descriptors and (after five
//! warm-up cycles) the resident set are the same at the end.

use common::program;
use intercore::Error;
use intercore::dataplane::DpHost;
use intercore::rpmsg::Channel;
use intercore::rpmsg::RPMSG_ADDR_ANY;
use intercore::rpmsg::{HostBus, HostConfig};
use intercore::wire::dataplane::{DP_OK, DP_OP_CRC32C, DP_SERVICE};
use intercore_linux::{EventfdDoorbell, MemfdRegion};
use intercore_sim::{AnyCache, Soc};
use std::sync::Arc;
use std::time::{Duration, Instant};

type Bus = HostBus<Arc<MemfdRegion>, EventfdDoorbell>;

const ECHO: &str = intercore_fw_offload::ECHO_SERVICE;
const T: Option<Duration> = Some(Duration::from_secs(10));

mod common;

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

fn rss_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// One echo round trip and one CRC32C offload on the live link.
fn prove_alive(bus: &mut Bus, ep: u32, echo: u32, dp: &mut DpHost<AnyCache>, cycle: usize) {
    let msg = format!("cycle {cycle}");
    bus.send_raw(ep, echo, msg.as_bytes(), Some(Duration::from_secs(1)))
        .unwrap();
    let mut back = [0u8; 64];
    let (src, n) = bus
        .recv_from(&Channel::new(ep, RPMSG_ADDR_ANY), &mut back, T)
        .unwrap();
    assert_eq!((src, &back[..n]), (Some(echo), msg.as_bytes()));
    let mut b = dp.alloc(4096).unwrap();
    b[..100].fill(cycle as u8);
    let want = intercore::crc32c(&b[..100]);
    dp.submit(bus, b, 100, DP_OP_CRC32C).unwrap();
    let c = dp.wait_complete(bus, T).unwrap();
    assert_eq!(c.status(), DP_OK);
    assert_eq!(&c[100..104], &want.to_le_bytes(), "cycle {cycle}");
}

/// Waits until the host sees the remote's death as `PeerGone` (messages or completions
/// that arrived before it are consumed on the way).
fn wait_peer_gone(bus: &mut Bus, ep: u32, dp: &mut DpHost<AnyCache>) {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut buf = [0u8; 512];
    loop {
        assert!(Instant::now() < deadline, "PeerGone not reported");
        let r = match bus.recv_from(
            &Channel::new(ep, RPMSG_ADDR_ANY),
            &mut buf,
            Some(Duration::from_millis(50)),
        ) {
            Ok(_) | Err(Error::Timeout) => match dp.try_complete(bus) {
                Ok(Some(c)) => {
                    drop(c);
                    Ok(())
                }
                Ok(None) => Ok(()),
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        match r {
            Ok(()) => {}
            Err(Error::PeerGone) => return,
            Err(e) => panic!("unexpected error while the remote dies: {e}"),
        }
    }
}

#[test]
fn forty_kill_and_restart_cycles_leak_nothing() {
    let start = Instant::now();
    let cfg = common::offload();
    let mut soc = Soc::start(&cfg, &program()).unwrap();
    let mut bus = soc
        .host_bus(HostConfig {
            timeout: T,
            ..HostConfig::default()
        })
        .unwrap();
    let echo = bus.find_service(ECHO, T).unwrap();
    let ep = bus.create_endpoint("recovery", None).unwrap();
    let mut dp = soc.open_data_plane(&mut bus, T).unwrap();
    let (dp_ep, _) = dp.addresses();
    let npool = dp.pool().len();
    let endpoints = bus.endpoint_count();
    prove_alive(&mut bus, ep, echo, &mut dp, 0);
    let fds = open_fds();
    let mut rss_warm = 0;
    let mut reclaimed_total = 0;
    for cycle in 0..40 {
        if cycle == 5 {
            rss_warm = rss_kib();
        }
        match cycle % 3 {
            // Mid-traffic: messages in both rings when the remote dies.
            0 => {
                for i in 0..32u32 {
                    bus.send_raw(ep, echo, &i.to_le_bytes(), Some(Duration::from_secs(1)))
                        .unwrap();
                }
            }
            // Mid-bulk: data-plane buffers in flight (some sent, some still batched).
            1 => {
                for i in 0..20 {
                    let size = if i % 4 == 0 { 64 << 10 } else { 4096 };
                    let mut b = dp.alloc(size).unwrap();
                    b[..64].fill(i);
                    dp.submit(&mut bus, b, 64, DP_OP_CRC32C).unwrap();
                }
            }
            // Idle.
            _ => {}
        }
        soc.kill_remote().unwrap();
        wait_peer_gone(&mut bus, ep, &mut dp);
        reclaimed_total += dp.reclaim();
        assert_eq!(
            dp.pool().counts(),
            [npool, 0, 0, 0],
            "cycle {cycle}: every buffer back in the pool after reclaim"
        );
        soc.restart_remote().unwrap();
        soc.reconnect(&mut bus).unwrap();
        let echo_now = bus.find_service(ECHO, T).unwrap();
        assert_eq!(echo_now, echo, "the firmware announces at the same address");
        let dp_remote = bus.find_service(DP_SERVICE, T).unwrap();
        dp.reset(intercore::rpmsg::Channel::new(dp_ep, dp_remote));
        assert_eq!(bus.endpoint_count(), endpoints, "cycle {cycle}: endpoints");
        prove_alive(&mut bus, ep, echo, &mut dp, cycle + 1);
        assert_eq!(dp.pool().counts(), [npool, 0, 0, 0], "cycle {cycle}");
    }
    assert_eq!(open_fds(), fds, "file descriptors");
    let growth = rss_kib().saturating_sub(rss_warm);
    assert!(growth < 8 << 10, "RSS grew by {growth} KiB after warm-up");
    assert!(
        reclaimed_total > 0,
        "mid-bulk cycles had buffers to reclaim"
    );
    let took = start.elapsed();
    eprintln!(
        "40 cycles in {took:?}; {reclaimed_total} buffers reclaimed; RSS growth {growth} KiB"
    );
    assert!(took < Duration::from_secs(60), "took {took:?}");
    drop(bus);
    soc.shutdown(Duration::from_secs(5)).unwrap();
}
