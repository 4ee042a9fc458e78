//! `AsyncReactor` (issue 23.2): intercore-linux's reactor driven by tokio, one task serving
//! several links. Simulated SoCs whose remote cores are processes of their own (this
//! crate's `board_link` example run with `--remote-core`, echo firmware): fairness when one
//! endpoint floods, and a killed remote failing its link alone. Links with a polled
//! doorbell (no descriptor) served on the reactor's tick, one whose peer dies failing alone. The runtimes have no time driver:
//! every wake-up comes from the reactor's epoll descriptor; a lost one shows as the
//! watchdog's failure.

use intercore::Error;
use intercore::WaitMode;
use intercore::pollbell::{PollDoorbell, PollSide};
use intercore::rpmsg::{HostBus, HostConfig, RPMSG_ADDR_ANY, RemoteBus, RemoteConfig};
use intercore::testing::{Carveout, HeapMem};
use intercore_linux::notify::LinuxPoll;
use intercore_linux::reactor::{LinkId, ReactorConfig, Ready};
use intercore_linux::{EventfdDoorbell, MemfdRegion};
use intercore_sim::{RemoteProgram, SimConfig, Soc};
use intercore_tokio::AsyncReactor;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

type Bus = HostBus<Arc<MemfdRegion>, EventfdDoorbell>;
const T: Option<Duration> = Some(Duration::from_secs(5));

/// A current-thread runtime with I/O and no timers: any `tokio::time` use panics.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .unwrap()
}

/// Runs `f` on a thread of its own, failing (not hanging) after 60 s: a lost wake-up.
fn watchdog<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)));
    });
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(Ok(v)) => v,
        Ok(Err(p)) => std::panic::resume_unwind(p),
        Err(_) => panic!("hung: a wake-up was lost"),
    }
}

/// `target/<profile>/examples/board_link`, built by `cargo test -p intercore-tokio`.
fn remote_program() -> RemoteProgram {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(|d| d.parent()).unwrap();
    let path: PathBuf = dir.join("examples").join("board_link");
    assert!(
        path.is_file(),
        "{} is missing: `cargo build -p intercore-tokio --example board_link` (cargo test -p intercore-tokio builds it)",
        path.display()
    );
    RemoteProgram {
        program: path,
        args: vec!["--remote-core".into()],
    }
}

/// A simulated SoC running the echo firmware in its own process, its host bus, and the
/// echo service's address.
fn echo_soc() -> (Soc, Bus, u32) {
    let cfg = SimConfig::new(Arc::new(intercore_fw_echo::Echo));
    let soc = Soc::start(&cfg, &remote_program()).expect("simulated SoC");
    let mut bus = soc.host_bus(HostConfig::default()).expect("host bus");
    let svc = bus.find_service(intercore_fw_echo::SERVICE, T).unwrap();
    (soc, bus, svc)
}

/// The message `n` of endpoint `ep`: checkable from its bytes alone.
fn msg(ep: u32, n: u32) -> [u8; 8] {
    let mut m = [0u8; 8];
    m[..4].copy_from_slice(&ep.to_le_bytes());
    m[4..].copy_from_slice(&n.to_le_bytes());
    m
}

/// Link A: endpoint F has `FLOOD` echoes queued ahead of endpoint Q's one; link B: endpoint
/// R's one echo. With 4 messages per endpoint and 32 per link per turn, the async turns
/// hand out Q's echo within F's first 4 and R's within link A's first 32, not after the
/// flood; the flood itself arrives whole and in order.
#[test]
fn async_reactor_a_flooding_endpoint_delays_others_by_one_budget_at_most() {
    const FLOOD: u32 = 48;
    let (soc_a, mut a, svc_a) = echo_soc();
    let (soc_b, mut b, svc_b) = echo_soc();
    let f = a.create_endpoint("flood", None).unwrap();
    let q = a.create_endpoint("quiet", None).unwrap();
    let r = b.create_endpoint("other-link", None).unwrap();
    for n in 0..FLOOD {
        a.send_raw(f, svc_a, &msg(f, n), T).unwrap();
    }
    a.send_raw(q, svc_a, &msg(q, 0), T).unwrap();
    b.send_raw(r, svc_b, &msg(r, 0), T).unwrap();
    // The remotes echo everything meanwhile (in their own processes).
    std::thread::sleep(Duration::from_millis(300));
    let (seq, la, lb) = watchdog(move || {
        runtime().block_on(async move {
            let cfg = ReactorConfig::default().per_endpoint(4).per_link(32);
            let mut reactor = AsyncReactor::new(cfg).unwrap();
            let la = reactor.add(a).unwrap();
            let lb = reactor.add(b).unwrap();
            let mut seq: Vec<(LinkId, u32, [u8; 8])> = Vec::new();
            while seq.len() < FLOOD as usize + 2 {
                let n = reactor
                    .turn(|link, _, ready| match ready {
                        Ready::Message(m) => seq.push((link, m.dst(), m[..8].try_into().unwrap())),
                        other => panic!("{link:?}: {other:?}"),
                    })
                    .await
                    .unwrap();
                assert!(n > 0, "a turn handed out nothing");
            }
            (seq, la, lb)
        })
    });
    let pos = |l, ep| {
        seq.iter()
            .position(|&(sl, se, _)| sl == l && se == ep)
            .unwrap()
    };
    assert!(pos(la, q) <= 4, "Q at {}: {:?}", pos(la, q), &seq[..8]);
    assert!(pos(lb, r) <= 32 + 1, "R at {}", pos(lb, r));
    let flood: Vec<[u8; 8]> = seq
        .iter()
        .filter(|s| s.0 == la && s.1 == f)
        .map(|s| s.2)
        .collect();
    assert!(
        flood == (0..FLOOD).map(|n| msg(f, n)).collect::<Vec<_>>(),
        "flood altered or out of order"
    );
    let _ = soc_a.shutdown(Duration::from_secs(1));
    let _ = soc_b.shutdown(Duration::from_secs(1));
}

/// Ping-pong on every link through the async reactor: each echo checked and answered with
/// the next message, until every live link has done `rounds` more round trips.
async fn ping_pong(
    reactor: &mut AsyncReactor,
    eps: &BTreeMap<LinkId, (u32, u32)>,
    next: &mut BTreeMap<LinkId, u32>,
    rounds: u32,
    downs: &mut Vec<(LinkId, Error)>,
) {
    let goal: BTreeMap<LinkId, u32> = next.iter().map(|(&l, &n)| (l, n + rounds)).collect();
    loop {
        let done = next
            .iter()
            .all(|(l, n)| reactor.down(*l).is_some() || *n >= goal[l]);
        if done {
            return;
        }
        reactor
            .turn(|link, bus, ready| match ready {
                Ready::Message(m) => {
                    let (ep, svc) = eps[&link];
                    let n = next.get_mut(&link).unwrap();
                    assert_eq!(&m[..], &msg(ep, *n), "{link:?}: echo {n} altered");
                    drop(m);
                    *n += 1;
                    bus.post(ep, svc, &msg(ep, *n)).unwrap();
                }
                Ready::Down(e) => downs.push((link, e)),
                other => panic!("{link:?}: {other:?}"),
            })
            .await
            .unwrap();
    }
}

/// Three links in ping-pong on one task; the second's remote process is killed: that link
/// alone is reported down (`PeerGone`, once), and the other two go on with 200 more
/// verified round trips each, with no error.
#[test]
fn async_reactor_a_dead_remote_fails_its_link_alone() {
    let mut socs = Vec::new();
    let mut buses = Vec::new();
    for _ in 0..3 {
        let (soc, mut bus, svc) = echo_soc();
        let ep = bus.create_endpoint("pp", None).unwrap();
        buses.push((bus, ep, svc));
        socs.push(soc);
    }
    let (kill_tx, kill_rx) = mpsc::channel::<()>();
    let (killed_tx, killed_rx) = mpsc::channel::<()>();
    let killer = std::thread::spawn(move || {
        kill_rx.recv().unwrap();
        socs[1].kill_remote().unwrap();
        killed_tx.send(()).unwrap();
        socs
    });
    let (downs, next, ids) = watchdog(move || {
        runtime().block_on(async move {
            let mut reactor = AsyncReactor::new(ReactorConfig::default()).unwrap();
            let mut eps = BTreeMap::new();
            let mut next = BTreeMap::new();
            for (mut bus, ep, svc) in buses {
                bus.send_raw(ep, svc, &msg(ep, 0), T).unwrap();
                let l = reactor.add(bus).unwrap();
                eps.insert(l, (ep, svc));
                next.insert(l, 0);
            }
            let mut downs = Vec::new();
            ping_pong(&mut reactor, &eps, &mut next, 50, &mut downs).await;
            assert!(downs.is_empty(), "{downs:?}");
            kill_tx.send(()).unwrap();
            killed_rx.recv().unwrap();
            ping_pong(&mut reactor, &eps, &mut next, 200, &mut downs).await;
            let ids: Vec<LinkId> = eps.keys().copied().collect();
            // The dead link can be taken out; the others stay.
            assert!(reactor.remove(ids[1]).is_some());
            assert_eq!(reactor.len(), 2);
            assert_eq!(reactor.down(ids[0]), None);
            assert_eq!(reactor.down(ids[2]), None);
            (downs, next, ids)
        })
    });
    assert_eq!(downs.len(), 1, "{downs:?}");
    assert_eq!(downs[0], (ids[1], Error::PeerGone));
    assert!(next[&ids[0]] >= 250 && next[&ids[2]] >= 250, "{next:?}");
    for soc in killer.join().unwrap() {
        let _ = soc.shutdown(Duration::from_secs(1));
    }
}

/// A link over the polling doorbell (counters in shared memory, no descriptor), an echo
/// remote in a thread: the async reactor serves it on its tick, without a tokio timer.
/// 200 round trips, each echo verified; with a 1 ms tick they take at most about one tick
/// each (the remote echoes within microseconds), far from the 60 s watchdog.
#[test]
fn async_reactor_serves_a_polled_link_on_its_tick() {
    const N: u32 = 200;
    let c = Carveout::with_buffers(16);
    let block = Arc::new(HeapMem::new(4096));
    let host_bell = PollDoorbell::new(block.clone(), 0, 2, PollSide::Host, LinuxPoll).unwrap();
    let remote_bell = PollDoorbell::new(block, 0, 2, PollSide::Remote, LinuxPoll).unwrap();
    let (mem, map, rsc) = (c.mem.clone(), c.map, c.rsc);
    let remote = std::thread::spawn(move || -> Result<(), String> {
        let cfg = RemoteConfig {
            wait: WaitMode::Event,
            ..RemoteConfig::default()
        };
        let mut bus: RemoteBus<_, _> =
            RemoteBus::new(mem, remote_bell, &map, rsc, cfg).map_err(|e| e.to_string())?;
        bus.wait_ready(T).map_err(|e| e.to_string())?;
        let ch = bus
            .open("echo", RPMSG_ADDR_ANY)
            .map_err(|e| e.to_string())?;
        let mut buf = [0u8; 496];
        for i in 0..N {
            let n = bus
                .recv(&ch, &mut buf, T)
                .map_err(|e| format!("remote recv {i}: {e}"))?;
            bus.send(&ch, &buf[..n], T)
                .map_err(|e| format!("remote send {i}: {e}"))?;
        }
        Ok(())
    });
    let mut bus = HostBus::new(
        c.mem.clone(),
        host_bell,
        &c.map,
        c.rsc,
        HostConfig::default(),
    )
    .expect("host bus");
    let svc = bus.find_service("echo", T).unwrap();
    let ep = bus.create_endpoint("polled", None).unwrap();
    let (got, ticking, took) = watchdog(move || {
        runtime().block_on(async move {
            let cfg = ReactorConfig::default().tick(Duration::from_millis(1));
            let mut reactor = AsyncReactor::new(cfg).unwrap();
            let l = reactor.add(bus).unwrap();
            let ticking = reactor.reactor().ticking();
            let t0 = Instant::now();
            reactor
                .link(l)
                .unwrap()
                .send_raw(ep, svc, &msg(ep, 0), T)
                .unwrap();
            let mut got = 0u32;
            while got < N {
                reactor
                    .turn(|link, bus, ready| match ready {
                        Ready::Message(m) => {
                            assert_eq!(&m[..], &msg(ep, got), "echo {got} altered");
                            drop(m);
                            got += 1;
                            if got < N {
                                bus.post(ep, svc, &msg(ep, got)).unwrap();
                            }
                        }
                        other => panic!("{link:?}: {other:?}"),
                    })
                    .await
                    .unwrap();
            }
            let took = t0.elapsed();
            // The last polled link gone, the tick stops.
            assert!(reactor.remove(l).is_some());
            (got, ticking, (took, reactor.reactor().ticking()))
        })
    });
    assert_eq!(got, N);
    assert!(ticking, "a polled link in the reactor and no tick");
    assert!(!took.1, "the tick outlived the last polled link");
    eprintln!(
        "{N} round trips over a polled link on a 1 ms tick: {:?}",
        took.0
    );
    assert_eq!(remote.join().unwrap(), Ok(()));
}

/// The blocking reactor refuses nothing it cannot serve: a polled link makes even a wait
/// without a timeout end within ticks (a `turn(None)` with a message arriving on the
/// polled link returns it).
#[test]
fn blocking_reactor_wakes_for_a_polled_link_without_a_timeout() {
    let c = Carveout::with_buffers(8);
    let block = Arc::new(HeapMem::new(4096));
    let host_bell = PollDoorbell::new(block.clone(), 0, 2, PollSide::Host, LinuxPoll).unwrap();
    let remote_bell = PollDoorbell::new(block, 0, 2, PollSide::Remote, LinuxPoll).unwrap();
    let (mem, map, rsc) = (c.mem.clone(), c.map, c.rsc);
    let remote = std::thread::spawn(move || -> Result<(), String> {
        let mut bus: RemoteBus<_, _> =
            RemoteBus::new(mem, remote_bell, &map, rsc, RemoteConfig::default())
                .map_err(|e| e.to_string())?;
        bus.wait_ready(T).map_err(|e| e.to_string())?;
        let ch = bus.open("hello", 0x400).map_err(|e| e.to_string())?;
        // Sent once the host sleeps in its turn.
        std::thread::sleep(Duration::from_millis(100));
        bus.send(&ch, b"late", T).map_err(|e| e.to_string())?;
        std::thread::sleep(Duration::from_millis(200));
        Ok(())
    });
    let mut bus = HostBus::new(
        c.mem.clone(),
        host_bell,
        &c.map,
        c.rsc,
        HostConfig::default(),
    )
    .expect("host bus");
    bus.find_service("hello", T).unwrap();
    bus.create_endpoint("hello-host", Some(0x400)).unwrap();
    let got = watchdog(move || {
        let mut r = intercore_linux::reactor::Reactor::new(ReactorConfig::default()).unwrap();
        r.add(bus).unwrap();
        let mut got = Vec::new();
        while got.is_empty() {
            r.turn(None, |_, _, ready| match ready {
                Ready::Message(m) => got.extend_from_slice(&m),
                other => panic!("{other:?}"),
            })
            .unwrap();
        }
        got
    });
    assert_eq!(got, b"late");
    assert_eq!(remote.join().unwrap(), Ok(()));
}

/// A polling platform whose peer can be declared dead (as QEMU's exiting would be).
struct Mortal(Arc<std::sync::atomic::AtomicBool>);

impl intercore::pollbell::PollPlatform for Mortal {
    fn now(&self) -> Duration {
        intercore_linux::monotonic_now()
    }
    fn back_off(&self, round: u32) {
        intercore::pollbell::PollPlatform::back_off(&LinuxPoll, round)
    }
    fn check_peer(&self) -> intercore::Result<()> {
        // Relaxed: a flag, ordered with nothing else.
        if self.0.load(std::sync::atomic::Ordering::Relaxed) {
            Err(Error::PeerGone)
        } else {
            Ok(())
        }
    }
}

type MortalBus = HostBus<Arc<HeapMem>, PollDoorbell<Arc<HeapMem>, Mortal>>;

/// A host bus over the polling doorbell whose platform says the peer is dead once `dead`
/// is set, its endpoint, the echo service's address, and the echo remote's thread (which
/// echoes until its receive times out after `quiet`).
fn mortal_link(
    dead: Arc<std::sync::atomic::AtomicBool>,
    quiet: Duration,
) -> (MortalBus, u32, u32, std::thread::JoinHandle<u32>) {
    let c = Carveout::with_buffers(16);
    let block = Arc::new(HeapMem::new(4096));
    let host_bell = PollDoorbell::new(block.clone(), 0, 2, PollSide::Host, Mortal(dead)).unwrap();
    let remote_bell = PollDoorbell::new(block, 0, 2, PollSide::Remote, LinuxPoll).unwrap();
    let (mem, map, rsc) = (c.mem.clone(), c.map, c.rsc);
    let remote = std::thread::spawn(move || {
        let mut bus: RemoteBus<_, _> =
            RemoteBus::new(mem, remote_bell, &map, rsc, RemoteConfig::default()).unwrap();
        bus.wait_ready(T).unwrap();
        let ch = bus.open("echo", RPMSG_ADDR_ANY).unwrap();
        let mut buf = [0u8; 496];
        let mut echoed = 0;
        while let Ok(n) = bus.recv(&ch, &mut buf, Some(quiet)) {
            if bus.send(&ch, &buf[..n], T).is_err() {
                break;
            }
            echoed += 1;
        }
        echoed
    });
    let mut bus = HostBus::new(
        c.mem.clone(),
        host_bell,
        &c.map,
        c.rsc,
        HostConfig::default(),
    )
    .expect("host bus");
    let svc = bus.find_service("echo", T).unwrap();
    let ep = bus.create_endpoint("mortal", None).unwrap();
    (bus, ep, svc, remote)
}

/// Two polled links in ping-pong on one task; the second one's platform then reports its
/// peer dead: the tick finds it (`Doorbell::check_peer`), that link alone is reported
/// `Down(PeerGone)` once, and the first goes on with 100 more verified round trips, the
/// tick still running for it (and stopping once it is taken out).
#[test]
fn async_reactor_a_dead_polled_peer_fails_its_link_alone_on_the_tick() {
    let dead = [
        Arc::new(std::sync::atomic::AtomicBool::new(false)),
        Arc::new(std::sync::atomic::AtomicBool::new(false)),
    ];
    let (bus0, ep0, svc0, remote0) = mortal_link(dead[0].clone(), Duration::from_millis(500));
    let (bus1, ep1, svc1, remote1) = mortal_link(dead[1].clone(), Duration::from_millis(500));
    let kill = dead[1].clone();
    let (next, downs, ticking_after) = watchdog(move || {
        runtime().block_on(async move {
            let mut reactor = AsyncReactor::new(ReactorConfig::default()).unwrap();
            let mut eps = BTreeMap::new();
            let mut next = BTreeMap::new();
            for (mut bus, ep, svc) in [(bus0, ep0, svc0), (bus1, ep1, svc1)] {
                bus.send_raw(ep, svc, &msg(ep, 0), T).unwrap();
                let l = reactor.add(bus).unwrap();
                eps.insert(l, (ep, svc));
                next.insert(l, 0u32);
            }
            let ids: Vec<LinkId> = eps.keys().copied().collect();
            let mut downs = Vec::new();
            let mut killed = false;
            while next[&ids[0]] < 120 {
                if !killed && next[&ids[1]] >= 20 {
                    // Relaxed: a flag, see `Mortal`.
                    kill.store(true, std::sync::atomic::Ordering::Relaxed);
                    killed = true;
                }
                reactor
                    .turn(|link, bus, ready| match ready {
                        Ready::Message(m) => {
                            let (ep, svc) = eps[&link];
                            let n = next.get_mut(&link).unwrap();
                            assert_eq!(&m[..], &msg(ep, *n), "{link:?}: echo {n} altered");
                            drop(m);
                            *n += 1;
                            bus.post(ep, svc, &msg(ep, *n)).unwrap();
                        }
                        Ready::Down(e) => downs.push((link, e)),
                        other => panic!("{link:?}: {other:?}"),
                    })
                    .await
                    .unwrap();
            }
            assert!(killed, "link 1 never reached 20 round trips");
            assert_eq!(reactor.down(ids[0]), None);
            assert_eq!(reactor.down(ids[1]), Some(Error::PeerGone));
            let ticking = reactor.reactor().ticking();
            assert!(reactor.remove(ids[1]).is_some());
            assert!(reactor.remove(ids[0]).is_some());
            (next, downs, (ticking, reactor.reactor().ticking(), ids))
        })
    });
    let (ticking, ticking_empty, ids) = ticking_after;
    assert_eq!(downs, vec![(ids[1], Error::PeerGone)]);
    assert!(next[&ids[0]] >= 120, "{next:?}");
    assert!(ticking, "the live polled link lost its tick");
    assert!(!ticking_empty, "the tick outlived the polled links");
    // The remotes end once nothing comes for 500 ms.
    assert!(remote0.join().unwrap() >= 120);
    assert!(remote1.join().unwrap() >= 20);
}
