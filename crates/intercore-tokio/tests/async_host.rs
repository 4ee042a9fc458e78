//! The async host against an echo remote in another thread (in-process shared memory,
//! eventfd doorbells): round trips verified, cancellation safety, 64 endpoints on one
//! thread, and the refusals (a doorbell without a descriptor, no runtime).

#[path = "../examples/common/mod.rs"]
mod common;

use intercore::WaitMode;
use intercore::pollbell::{PollDoorbell, PollSide};
use intercore::rpmsg::{HostBus, HostConfig};
use intercore::testing::{Carveout, HeapMem};
use intercore_linux::notify::LinuxPoll;
use intercore_tokio::{AsyncHost, OpenError};
use std::sync::Arc;
use std::time::Duration;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Runs `f` on a current-thread runtime, failing (not hanging) if it takes over 60 s: a
/// lost wake-up shows as this failure.
fn run<F: std::future::Future>(f: F) -> F::Output {
    runtime().block_on(async {
        tokio::time::timeout(std::time::Duration::from_secs(60), f)
            .await
            .expect("hung: a wake-up was lost")
    })
}

/// A message of length `len` that names its number.
fn message(i: u32, len: usize) -> Vec<u8> {
    (0..len).map(|k| (i as usize * 31 + k) as u8).collect()
}

/// Every size from 0 to the largest payload, copied and in place, each echo compared.
#[test]
fn async_round_trips_are_verified() {
    let (bus, remote) = common::echo_link(2 * 497, WaitMode::Event);
    run(async move {
        let host = AsyncHost::new(bus).unwrap();
        let ch = host.connect(common::SERVICE).await.unwrap();
        let max = host.with_bus(|b| b.max_payload());
        assert_eq!(max, 496);
        let mut buf = vec![0u8; max];
        for len in 0..=max {
            let m = message(len as u32, len);
            host.send(&ch, &m).await.unwrap();
            let (from, n) = host.recv_from(&ch, &mut buf).await.unwrap();
            assert_eq!((from, &buf[..n]), (Some(ch.remote), &m[..]), "size {len}");
        }
        for len in [0, 1, 17, 495, 496] {
            let m = message(7 + len as u32, len);
            host.send_with(&ch, |out| {
                out[..len].copy_from_slice(&m);
                len
            })
            .await
            .unwrap();
            let got = host
                .recv_with(&ch, |msg| msg.payload.to_vec())
                .await
                .unwrap();
            assert_eq!(got, m, "in place, size {len}");
        }
        // The remote echoes 2 × 497 messages: send the rest so that it finishes.
        for i in 0..(2 * 497 - 497 - 5) {
            host.send(&ch, b"x").await.unwrap();
            assert_eq!(host.recv(&ch, &mut buf).await.unwrap(), 1, "filler {i}");
        }
    });
    assert_eq!(remote.join().unwrap(), Ok(2 * 497));
}

/// Receives raced against a task yield (`select!`) and against a zero timeout are
/// dropped thousands of times while messages arrive; every message still comes out
/// exactly once and in order. Fails if a dropped receive took its message with it.
#[test]
fn dropped_receives_lose_no_message() {
    const N: u32 = 3000;
    let (bus, remote) = common::echo_link(u64::from(N), WaitMode::Event);
    run(async move {
        let host = Arc::new(AsyncHost::new(bus).unwrap());
        let ch = host.connect(common::SERVICE).await.unwrap();
        let sender = {
            let host = Arc::clone(&host);
            tokio::spawn(async move {
                for i in 0..N {
                    host.send(&ch, &i.to_le_bytes()).await.unwrap();
                    if i % 7 == 0 {
                        tokio::task::yield_now().await;
                    }
                }
            })
        };
        let (mut next, mut dropped) = (0u32, 0u32);
        let mut buf = [0u8; 496];
        while next < N {
            let got = if next % 2 == 0 {
                tokio::select! {
                    r = host.recv(&ch, &mut buf) => Some(r),
                    () = tokio::task::yield_now() => None,
                }
            } else {
                tokio::time::timeout(Duration::ZERO, host.recv(&ch, &mut buf))
                    .await
                    .ok()
            };
            match got {
                None => dropped += 1,
                Some(r) => {
                    let n = r.unwrap();
                    assert_eq!(&buf[..n], &next.to_le_bytes(), "message {next}");
                    next += 1;
                }
            }
        }
        sender.await.unwrap();
        assert!(
            dropped > 100,
            "only {dropped} receives were dropped: the race did not happen"
        );
        // Nothing is left over either.
        let extra = tokio::time::timeout(Duration::from_millis(50), host.recv(&ch, &mut buf)).await;
        assert!(extra.is_err(), "an extra message arrived");
    });
    assert_eq!(remote.join().unwrap(), Ok(u64::from(N)));
}

/// 64 endpoints, one task each, on one current-thread runtime, every echo checked.
#[test]
fn sixty_four_endpoints_on_one_thread() {
    const EPS: u32 = 64;
    const ROUNDS: u32 = 20;
    let (bus, remote) = common::echo_link(u64::from(EPS * ROUNDS), WaitMode::Event);
    run(async move {
        let host = Arc::new(AsyncHost::new(bus).unwrap());
        let addr = host.find_service(common::SERVICE).await.unwrap();
        let mut tasks = tokio::task::JoinSet::new();
        for ep in 0..EPS {
            let ch = host.open(common::SERVICE, addr).unwrap();
            let host = Arc::clone(&host);
            tasks.spawn(async move {
                let mut buf = [0u8; 496];
                for r in 0..ROUNDS {
                    let m = message(ep * 1000 + r, 8 + (ep as usize % 40));
                    host.send(&ch, &m).await.unwrap();
                    let n = host.recv(&ch, &mut buf).await.unwrap();
                    assert_eq!(&buf[..n], &m[..], "endpoint {ep} round {r}");
                }
                ep
            });
        }
        let mut done = Vec::new();
        while let Some(r) = tasks.join_next().await {
            done.push(r.unwrap());
        }
        done.sort();
        assert_eq!(done, (0..EPS).collect::<Vec<_>>());
    });
    assert_eq!(remote.join().unwrap(), Ok(u64::from(EPS * ROUNDS)));
}

/// A host bus over the polling doorbell (no file descriptor).
fn polled_bus() -> HostBus<Arc<HeapMem>, PollDoorbell<Arc<HeapMem>, LinuxPoll>> {
    let c = Carveout::with_buffers(4);
    let block = Arc::new(HeapMem::new(4096));
    let bell = PollDoorbell::new(block, 0, 2, PollSide::Host, LinuxPoll).unwrap();
    HostBus::new(c.mem.clone(), bell, &c.map, c.rsc, HostConfig::default()).unwrap()
}

/// A doorbell without a descriptor is refused when the async bus is built, saying why.
#[test]
fn fd_less_doorbell_is_refused() {
    let bus = polled_bus();
    let e = runtime().block_on(async { AsyncHost::new(bus).unwrap_err() });
    assert!(matches!(e, OpenError::NoWakeFd { .. }), "{e:?}");
    let text = e.to_string();
    assert!(
        text.contains("PollDoorbell") && text.contains("no file descriptor"),
        "{text}"
    );
}

/// Outside a tokio runtime the async bus is refused with an error, not a panic.
#[test]
fn no_runtime_is_an_error() {
    let e = AsyncHost::new(polled_bus()).unwrap_err();
    assert!(matches!(e, OpenError::Reactor(_)), "{e:?}");
    assert!(e.to_string().contains("reactor"), "{e}");
}

/// A borrowed bus (one its owner lends as `&mut`)
/// runs async round trips, then works blocking again once the async host is dropped.
#[test]
fn a_borrowed_bus_goes_back_to_blocking_use() {
    let (mut bus, remote) = common::echo_link(11, WaitMode::Event);
    let ch = run(async {
        let host = AsyncHost::borrowed(&mut bus).unwrap();
        let ch = host.connect(common::SERVICE).await.unwrap();
        let mut buf = [0u8; 496];
        for i in 0..10u32 {
            host.send(&ch, &i.to_le_bytes()).await.unwrap();
            let n = host.recv(&ch, &mut buf).await.unwrap();
            assert_eq!(&buf[..n], &i.to_le_bytes());
        }
        ch
    });
    let mut buf = [0u8; 496];
    bus.send(&ch, b"blocking", common::TIMEOUT).unwrap();
    let n = bus.recv(&ch, &mut buf, common::TIMEOUT).unwrap();
    assert_eq!(&buf[..n], b"blocking");
    assert_eq!(remote.join().unwrap(), Ok(11));
}

/// A receive parked on a bus whose peer (watched through its pidfd) has exited ends with
/// `PeerGone`, woken by the pidfd through the reactor.
#[test]
fn a_dead_peer_ends_a_parked_receive() {
    use intercore_linux::notify::{EventFd, EventfdDoorbell, PidFd};
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = PidFd::open(child.id() as i32).unwrap();
    child.wait().unwrap();
    let c = Carveout::with_buffers(4);
    let bell = EventfdDoorbell::new(EventFd::new().unwrap(), EventFd::new().unwrap(), Some(pid));
    let bus = HostBus::new(c.mem.clone(), bell, &c.map, c.rsc, HostConfig::default()).unwrap();
    let e = run(async move {
        let host = AsyncHost::new(bus).unwrap();
        let ch = host.open("gone", 1024).unwrap();
        let mut buf = [0u8; 16];
        host.recv(&ch, &mut buf).await.unwrap_err()
    });
    assert_eq!(e, intercore::Error::PeerGone);
}

/// With the remote not reading for 200 ms, 200 sends use up every transmit buffer and
/// park; they are woken again once the remote reads (its returns of transmit buffers and
/// its echoes ring the eventfd) while another task collects every echo, in order. (The
/// echoes alone would also wake them: this checks that parked sends finish, not which
/// notification woke them.)
#[test]
fn sends_park_until_transmit_buffers_return() {
    const N: u32 = 200;
    let (bus, remote) =
        common::echo_link_after(u64::from(N), WaitMode::Event, Duration::from_millis(200));
    run(async move {
        let host = Arc::new(AsyncHost::new(bus).unwrap());
        let ch = host.connect(common::SERVICE).await.unwrap();
        let sender = {
            let host = Arc::clone(&host);
            tokio::spawn(async move {
                for i in 0..N {
                    host.send(&ch, &i.to_le_bytes()).await.unwrap();
                }
            })
        };
        let mut buf = [0u8; 496];
        for i in 0..N {
            let n = host.recv(&ch, &mut buf).await.unwrap();
            assert_eq!(&buf[..n], &i.to_le_bytes(), "echo {i}");
        }
        sender.await.unwrap();
        let tx = host.with_bus(|b| b.num_bufs());
        assert!(
            u32::from(tx) < N,
            "{tx} transmit buffers: the sends never ran out"
        );
    });
    assert_eq!(remote.join().unwrap(), Ok(u64::from(N)));
}
