//! The host's per-endpoint transmit credit (issue 23, "a flooding endpoint cannot raise
//! another endpoint's p99 round trip by more than 2×"): the remote serves the transmit ring
//! in order, so the host bounds how many messages one local endpoint may have in it not yet
//! consumed (`HostConfig::tx_credit`). On the standard split ring, the in-order split ring
//! and the inline-slot rings: a flood holds at most its credit, another endpoint's message
//! is next after it (a count, not a timing), the credit returns when the remote consumes,
//! `Some(ZERO)` answers at once, and a slow remote never deadlocks a blocked sender.

use intercore::rpmsg::{HostConfig, RPMSG_ADDR_ANY, SHARED_TX_CREDIT};
use intercore::testing::{Carveout, TestHost, TestRemote};
use intercore::wire::rsc::{INTERCORE_F_IN_ORDER, INTERCORE_FEATURES};
use intercore::{Error, WaitMode};
use std::thread;
use std::time::{Duration, Instant};

const T: Option<Duration> = Some(Duration::from_secs(5));
const ZERO: Option<Duration> = Some(Duration::ZERO);

/// The three ring kinds: (name, vendor features offered; `None`: a table without the
/// intercore entry, the standard split ring).
const RINGS: [(&str, Option<u32>); 3] = [
    ("split", None),
    ("in-order", Some(INTERCORE_F_IN_ORDER)),
    ("inline", Some(INTERCORE_FEATURES)),
];

fn pair(features: Option<u32>, cfg: HostConfig, wait: WaitMode) -> (TestHost, TestRemote<8>) {
    let link = Carveout::with_buffers(16);
    let link = match features {
        Some(f) => link.offering(f),
        None => link,
    };
    let (host, remote) = link.connect::<8>(cfg, wait).unwrap();
    (host, remote)
}

fn check_kind(name: &str, host: &TestHost) {
    match name {
        "inline" => assert!(host.inline_max().is_some(), "{name}"),
        "in-order" => assert!(host.in_order(), "{name}"),
        _ => assert!(!host.in_order() && host.inline_max().is_none(), "{name}"),
    }
}

/// A flooding endpoint stops at its credit (3) with `Timeout` at once for `Some(ZERO)`
/// (the bus's non-blocking answer, `WouldBlock` inside), though buffers are free; the
/// quiet endpoint's message goes in and the remote finds it behind exactly 3 flood
/// messages. Once the remote consumes them the flood's credit is back, in full.
#[test]
fn a_flood_holds_its_credit_and_the_quiet_message_is_next() {
    for (name, features) in RINGS {
        let cfg = HostConfig::default().tx_credit(Some(3));
        let (mut host, mut remote) = pair(features, cfg, WaitMode::Poll);
        check_kind(name, &host);
        assert_eq!(host.tx_credit(), 3);
        let r = remote.open("svc", RPMSG_ADDR_ANY).unwrap();
        let flood = host.connect("svc", T).unwrap();
        let quiet = host.open("quiet", flood.remote).unwrap();
        let t0 = Instant::now();
        let mut sent = 0;
        let err = loop {
            match host.send(&flood, b"flood", ZERO) {
                Ok(()) => sent += 1,
                Err(e) => break e,
            }
            assert!(sent <= 16, "{name}: the flood took every buffer");
        };
        assert_eq!((sent, err), (3, Error::Timeout), "{name}");
        assert!(t0.elapsed() < Duration::from_secs(1), "{name}: no wait");
        assert_eq!(host.tx_in_flight(flood.local), 3);
        assert_eq!(
            host.try_send_batch(flood.local, flood.remote, &[b"more"])
                .unwrap(),
            0,
            "{name}: a batch stops at the credit too"
        );
        host.send(&quiet, b"quiet", ZERO).unwrap();
        let mut buf = [0u8; 64];
        let mut order = Vec::new();
        for _ in 0..4 {
            let (src, n) = remote.recv_from(&r, &mut buf, T).unwrap();
            order.push((src, buf[..n].to_vec()));
        }
        let pos = order
            .iter()
            .position(|(src, _)| *src == Some(quiet.local))
            .unwrap();
        assert_eq!(pos, 3, "{name}: behind the flood's credit, no more");
        assert!(remote.recv_from(&r, &mut buf, ZERO).is_err());
        // Consumed: the credit is back, in full.
        for i in 0..3 {
            host.send(&flood, b"again", ZERO)
                .unwrap_or_else(|e| panic!("{name}: credit not returned at {i}: {e}"));
        }
        assert_eq!(host.send(&flood, b"over", ZERO), Err(Error::Timeout));
        assert_eq!(host.tx_in_flight(flood.local), 3);
    }
}

/// Without a setting a lone endpoint fills the whole ring (pipelining as before), but
/// once another endpoint is active (a message in flight, or sent within the last 16 ring
/// lengths) a flood stops at `SHARED_TX_CREDIT` (2).
#[test]
fn the_default_credit_binds_only_beside_another_endpoint() {
    for (name, features) in RINGS {
        let (mut host, mut remote) = pair(features, HostConfig::default(), WaitMode::Poll);
        let _r = remote.open("svc", RPMSG_ADDR_ANY).unwrap();
        let flood = host.connect("svc", T).unwrap();
        let slots = if name == "inline" { 8 } else { 16 };
        assert_eq!(host.tx_credit(), SHARED_TX_CREDIT, "{name}");
        let mut sent = 0;
        while host.send(&flood, b"flood", ZERO).is_ok() {
            sent += 1;
        }
        assert_eq!(sent, slots, "{name}: alone, the whole ring");
        drop((host, remote));
        let (mut host, mut remote) = pair(features, HostConfig::default(), WaitMode::Poll);
        let r = remote.open("svc", RPMSG_ADDR_ANY).unwrap();
        let flood = host.connect("svc", T).unwrap();
        let quiet = host.open("quiet", flood.remote).unwrap();
        host.send(&quiet, b"quiet", ZERO).unwrap();
        // The quiet message consumed: nothing of it in flight, but it sent recently.
        let mut buf = [0u8; 64];
        remote.recv_from(&r, &mut buf, T).unwrap();
        let mut sent = 0;
        while host.send(&flood, b"flood", ZERO).is_ok() {
            sent += 1;
        }
        assert_eq!(
            sent,
            usize::from(SHARED_TX_CREDIT),
            "{name}: beside an active endpoint, the shared credit"
        );
    }
}

/// `post` never waits: past its credit the flood's messages park on its own queue
/// (`Ok(false)`), at once, while the quiet endpoint's message still goes straight into the
/// ring behind the credit (position 2). Each `poll` sends parked messages as the remote
/// consumes; every one arrives, once, in order. A full queue is `Exhausted` and parks
/// nothing; a destroyed endpoint's parked messages go with it.
#[test]
fn post_parks_past_the_credit_and_loses_nothing() {
    for (name, features) in RINGS {
        let cfg = HostConfig::default()
            .tx_credit(Some(2))
            .max_parked_per_endpoint(40);
        let (mut host, mut remote) = pair(features, cfg, WaitMode::Poll);
        let r = remote.open("svc", RPMSG_ADDR_ANY).unwrap();
        let flood = host.connect("svc", T).unwrap();
        let quiet = host.open("quiet", flood.remote).unwrap();
        let t0 = Instant::now();
        let mut now = 0;
        for n in 0u32..42 {
            if host
                .post(flood.local, flood.remote, &n.to_le_bytes())
                .unwrap()
            {
                now += 1;
            }
        }
        assert_eq!(now, 2, "{name}: the credit's worth at once");
        assert_eq!(host.parked(flood.local), 40, "{name}");
        assert!(t0.elapsed() < Duration::from_secs(1), "{name}: no wait");
        assert_eq!(
            host.post(flood.local, flood.remote, b"over"),
            Err(Error::Exhausted("endpoint's parked sends (post) are full")),
            "{name}"
        );
        assert_eq!(
            host.parked(flood.local),
            40,
            "{name}: nothing parked past the bound"
        );
        assert!(
            host.post(quiet.local, quiet.remote, b"quiet").unwrap(),
            "{name}"
        );
        let mut buf = [0u8; 64];
        let mut flood_seen = Vec::new();
        let mut quiet_at = None;
        let t0 = Instant::now();
        while flood_seen.len() < 42 {
            assert!(t0.elapsed() < Duration::from_secs(5), "{name}: stalled");
            match remote.recv_from(&r, &mut buf, ZERO) {
                Ok((src, n)) if src == Some(quiet.local) => {
                    quiet_at = Some(flood_seen.len());
                    assert_eq!(&buf[..n], b"quiet");
                }
                Ok((_, n)) => {
                    assert_eq!(n, 4, "{name}");
                    flood_seen.push(u32::from_le_bytes(buf[..4].try_into().unwrap()));
                    assert!(
                        host.tx_in_flight(flood.local) <= 2,
                        "{name}: over the credit"
                    );
                }
                Err(_) => {
                    host.poll().unwrap();
                }
            }
        }
        assert_eq!(quiet_at, Some(2), "{name}: behind the flood's credit only");
        assert_eq!(
            flood_seen,
            (0..42).collect::<Vec<_>>(),
            "{name}: lost or reordered"
        );
        assert_eq!(host.parked(flood.local), 0, "{name}");
        // Destroyed with messages parked: they go with their sender, nothing is sent later.
        for n in 0u32..10 {
            host.post(flood.local, flood.remote, &n.to_le_bytes())
                .unwrap();
        }
        // At most the credit went in (inline rings: less while the remote's batched
        // progress has not returned the last messages' credit).
        assert!(host.parked(flood.local) >= 8, "{name}");
        // What is in the ring consumed (the endpoint's withdrawal needs its credit).
        while remote.recv_from(&r, &mut buf, ZERO).is_ok() {}
        host.destroy_endpoint(flood.local).unwrap();
        assert_eq!(host.parked(flood.local), 0, "{name}");
    }
}

/// A slow remote (1 ms per message) and two endpoints sending with blocking calls, each
/// past its credit of 2 many times over: every message arrives and no sender deadlocks
/// (on the inline ring the blocked sender sleeps until the remote's progress moves).
#[test]
fn a_slow_remote_never_deadlocks_a_sender_waiting_for_credit() {
    for (name, features) in RINGS {
        let t0 = Instant::now();
        let cfg = HostConfig::default().tx_credit(Some(2));
        let (mut host, mut remote) = pair(features, cfg, WaitMode::Event);
        let sink = thread::spawn(move || {
            let r = remote.open("svc", RPMSG_ADDR_ANY).unwrap();
            let mut buf = [0u8; 64];
            let mut order = Vec::new();
            while order.len() < 120 {
                let (src, n) = remote.recv_from(&r, &mut buf, T).unwrap();
                assert_eq!(n, 1);
                order.push(src.unwrap());
                thread::sleep(Duration::from_millis(1));
            }
            (order, remote)
        });
        let flood = host.connect("svc", T).unwrap();
        let quiet = host.open("quiet", flood.remote).unwrap();
        for i in 0..100 {
            host.send(&flood, &[1], T)
                .unwrap_or_else(|e| panic!("{name}: flood {i}: {e}"));
            if i % 5 == 4 {
                host.send(&quiet, &[2], T).unwrap();
            }
        }
        let (order, _remote) = sink.join().unwrap();
        assert_eq!(order.iter().filter(|&&s| s == quiet.local).count(), 20);
        // 120 ms of remote work: the blocked sender was woken by the remote's progress, not
        // by its timeout (an inline wait that asked for the wrong progress took 2 s each).
        assert!(
            t0.elapsed() < Duration::from_secs(4),
            "{name}: {:?}",
            t0.elapsed()
        );
    }
}

/// Inline rings publish the remote's progress in batches (a quarter of the ring), so a
/// credit-bound sender got its credit back only at the end of a batch or when the remote
/// next slept (bench scale before: 0.04 M msgs/s under a flood, a 50 µs remote spin per
/// credit). Now a message that uses up its sender's credit carries the ask flag
/// (`SLOT_F_ASK`, negotiated with `INTERCORE_F_INLINE_ASK`) and the remote publishes its
/// release at once. Here the remote never sleeps (it only looks, `recv_from` with a zero
/// timeout), so without the flag the credit of 1 would come back only every second
/// message (batch of 2) and the sender would time out; in every wait mode of the sender.
/// Against a firmware that does not offer the bit (an older intercore) the flag is never
/// set — the remote would refuse it — and the exchange still completes when the remote
/// waits (its `arm` publishes before it sleeps; a remote that only polls would not).
#[test]
fn inline_credit_comes_back_per_message_without_the_remote_sleeping() {
    use intercore::wire::rsc::{INTERCORE_F_INLINE, INTERCORE_F_INLINE_ASK};
    for (features, looks) in [
        (INTERCORE_FEATURES, true),
        (INTERCORE_F_IN_ORDER | INTERCORE_F_INLINE, false),
    ] {
        for wait in [WaitMode::Poll, WaitMode::default(), WaitMode::Event] {
            if !looks && wait == WaitMode::Poll {
                // Without the flag a polling remote never publishes short of a batch: a
                // credit of 1 then waits out the sender's timeout (why the flag exists).
                continue;
            }
            let cfg = HostConfig::default().tx_credit(Some(1));
            let (mut host, mut remote) = pair(Some(features), cfg, wait);
            check_kind("inline", &host);
            assert_eq!(features & INTERCORE_F_INLINE_ASK != 0, looks);
            let r = remote.open("svc", RPMSG_ADDR_ANY).unwrap();
            let flood = host.connect("svc", T).unwrap();
            const N: u32 = 200;
            let looker = thread::spawn(move || {
                let mut buf = [0u8; 64];
                let mut got = 0u32;
                let t0 = Instant::now();
                while got < N && t0.elapsed() < Duration::from_secs(20) {
                    // Only looking, or (no ask flag) waiting, which publishes before sleeping.
                    let t = if looks {
                        ZERO
                    } else {
                        Some(Duration::from_millis(1))
                    };
                    if let Ok((_, n)) = remote.recv_from(&r, &mut buf, t) {
                        assert_eq!(&buf[..n], &got.to_le_bytes(), "in order");
                        got += 1;
                    }
                    std::hint::spin_loop();
                }
                got
            });
            let t0 = Instant::now();
            for i in 0..N {
                host.send(&flood, &i.to_le_bytes(), Some(Duration::from_secs(2)))
                    .unwrap_or_else(|e| panic!("{wait}: message {i}: credit not back: {e}"));
            }
            assert_eq!(looker.join().unwrap(), N, "{wait}");
            assert!(t0.elapsed() < Duration::from_secs(10), "{wait}");
        }
    }
}
