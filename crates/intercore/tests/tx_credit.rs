//! The host's per-endpoint transmit credit (issue 23, "a flooding endpoint cannot raise
//! another endpoint's p99 round trip by more than 2×"): the remote serves the transmit ring
//! in order, so the host bounds how many messages one local endpoint may have in it not yet
//! consumed (`HostConfig::tx_credit`). On the standard split ring, the in-order split ring
//! and the inline-slot rings: a flood holds at most its credit, another endpoint's message
//! is next after it (a count, not a timing), the credit returns when the remote consumes,
//! `Some(ZERO)` answers at once, and a slow remote never deadlocks a blocked sender.

use intercore::rpmsg::{HostConfig, RPMSG_ADDR_ANY};
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

/// Without a setting the credit is a fair share of half the transmit ring: a lone
/// endpoint fills the whole ring (pipelining as before), but once another endpoint has a
/// message in flight a flood stops at half.
#[test]
fn the_default_credit_is_half_the_buffers() {
    for (name, features) in RINGS {
        let (mut host, mut remote) = pair(features, HostConfig::default(), WaitMode::Poll);
        let _r = remote.open("svc", RPMSG_ADDR_ANY).unwrap();
        let flood = host.connect("svc", T).unwrap();
        let slots = if name == "inline" { 8 } else { 16 };
        assert_eq!(host.tx_credit(), slots / 2, "{name}");
        let mut sent = 0;
        while host.send(&flood, b"flood", ZERO).is_ok() {
            sent += 1;
        }
        assert_eq!(sent, slots, "{name}: alone, the whole ring");
        drop((host, remote));
        let (mut host, mut remote) = pair(features, HostConfig::default(), WaitMode::Poll);
        let _r = remote.open("svc", RPMSG_ADDR_ANY).unwrap();
        let flood = host.connect("svc", T).unwrap();
        let quiet = host.open("quiet", flood.remote).unwrap();
        host.send(&quiet, b"quiet", ZERO).unwrap();
        let mut sent = 0;
        while host.send(&flood, b"flood", ZERO).is_ok() {
            sent += 1;
        }
        assert_eq!(sent, slots / 2, "{name}: beside another, half");
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
