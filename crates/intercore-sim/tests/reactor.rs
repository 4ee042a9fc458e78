//! The reactor (issue 23.2) against simulated remotes in their own processes: one thread,
//! several links, one epoll wait. Fairness when one endpoint floods; a link whose remote
//! dies or breaks the protocol fails alone while the others keep exchanging messages.

mod common;

use intercore::rpmsg::{HostBus, HostConfig};
use intercore::virtq::VringLayout;
use intercore::{Error, SharedMemory};
use intercore_linux::reactor::{LinkId, Reactor, ReactorConfig, Ready};
use intercore_linux::{EventfdDoorbell, MemfdRegion};
use intercore_sim::{SimConfig, Soc};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

type Bus = HostBus<Arc<MemfdRegion>, EventfdDoorbell>;
const T: Option<Duration> = Some(Duration::from_secs(5));

/// A simulated SoC running the echo firmware, its host bus, and the echo service's address.
/// The bus takes intercore's default rings (inline slots) unless `inline` is false (the
/// split ring every other peer gets).
fn echo_soc_with(inline: bool) -> (Soc, Bus, u32) {
    let cfg = SimConfig::new(common::echo());
    let soc = Soc::start(&cfg, &common::program()).expect("simulated SoC");
    let mut bus = soc
        .host_bus(HostConfig::default().inline(inline))
        .expect("host bus");
    assert_eq!(
        bus.inline_max().is_some(),
        inline,
        "ring kind not negotiated"
    );
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
/// R's one echo. With 4 messages per endpoint and 32 per link per turn, Q's echo is handed
/// out within F's first 4 and R's within link A's first 32 — not after the flood (position
/// `FLOOD + 1` in arrival order). The flood itself arrives whole, in order. `FLOOD` fits the
/// receive side of both ring kinds (256 split-ring buffers; fewer inline slots, which share
/// the vring's area), so every echo is in the host's hands before the reactor starts — a
/// flood past the slots waits in the remote, where no host-side fairness can reach it.
fn flooding_endpoint_delays_others_by_one_budget_at_most(inline: bool) {
    const FLOOD: u32 = 48;
    let (soc_a, mut a, svc_a) = echo_soc_with(inline);
    let (soc_b, mut b, svc_b) = echo_soc_with(inline);
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
    let mut reactor = Reactor::new(ReactorConfig::default().per_endpoint(4).per_link(32)).unwrap();
    let la = reactor.add(a).unwrap();
    let lb = reactor.add(b).unwrap();
    let mut seq: Vec<(LinkId, u32, [u8; 8])> = Vec::new();
    let t0 = Instant::now();
    while seq.len() < FLOOD as usize + 2 {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "only {} echoes",
            seq.len()
        );
        let _ = reactor.turn(Some(Duration::from_secs(1)), |link, _, ready| match ready {
            Ready::Message(m) => seq.push((link, m.dst(), m[..8].try_into().unwrap())),
            other => panic!("{link:?}: {other:?}"),
        });
    }
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
    drop(reactor);
    let _ = soc_a.shutdown(Duration::from_secs(1));
    let _ = soc_b.shutdown(Duration::from_secs(1));
}

#[test]
fn a_flooding_endpoint_delays_others_by_one_budget_at_most() {
    flooding_endpoint_delays_others_by_one_budget_at_most(true);
}

#[test]
fn a_flooding_endpoint_delays_others_by_one_budget_at_most_on_split_rings() {
    flooding_endpoint_delays_others_by_one_budget_at_most(false);
}

/// Ping-pong on every link through the reactor: each echo checked and answered with the
/// next message, until every live link has done `rounds` more round trips.
fn ping_pong(
    reactor: &mut Reactor,
    eps: &BTreeMap<LinkId, (u32, u32)>,
    next: &mut BTreeMap<LinkId, u32>,
    rounds: u32,
    downs: &mut Vec<(LinkId, Error)>,
) {
    let goal: BTreeMap<LinkId, u32> = next.iter().map(|(&l, &n)| (l, n + rounds)).collect();
    let t0 = Instant::now();
    loop {
        let done = next
            .iter()
            .all(|(l, n)| reactor.down(*l).is_some() || *n >= goal[l]);
        if done {
            return;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "stalled at {next:?}"
        );
        let r = reactor.turn(
            Some(Duration::from_secs(2)),
            |link, bus, ready| match ready {
                Ready::Message(m) => {
                    let (ep, svc) = eps[&link];
                    let n = next.get_mut(&link).unwrap();
                    assert_eq!(&m[..], &msg(ep, *n), "{link:?}: echo {n} altered");
                    drop(m);
                    *n += 1;
                    bus.send_raw(ep, svc, &msg(ep, *n), T).unwrap();
                }
                Ready::Down(e) => downs.push((link, e)),
                other => panic!("{link:?}: {other:?}"),
            },
        );
        assert!(matches!(r, Ok(_) | Err(Error::Timeout)), "{r:?}");
    }
}

/// Three links, one endpoint each in ping-pong; a link whose remote breaks (`kill`: its
/// process dies; `corrupt`: it publishes a used index past the buffers in flight) is
/// reported down — that link alone, once — and the other two go on with 200 verified
/// round trips each.
fn one_link_fails_alone(inline: bool, break_it: impl FnOnce(&mut Soc)) -> Error {
    let mut socs = Vec::new();
    let mut reactor = Reactor::new(ReactorConfig::default()).unwrap();
    let mut eps = BTreeMap::new();
    let mut next = BTreeMap::new();
    for _ in 0..3 {
        let (soc, mut bus, svc) = echo_soc_with(inline);
        let ep = bus.create_endpoint("pp", None).unwrap();
        bus.send_raw(ep, svc, &msg(ep, 0), T).unwrap();
        let l = reactor.add(bus).unwrap();
        eps.insert(l, (ep, svc));
        next.insert(l, 0);
        socs.push(soc);
    }
    let mut downs = Vec::new();
    ping_pong(&mut reactor, &eps, &mut next, 50, &mut downs);
    assert!(downs.is_empty(), "{downs:?}");
    break_it(&mut socs[1]);
    ping_pong(&mut reactor, &eps, &mut next, 200, &mut downs);
    let ids: Vec<LinkId> = eps.keys().copied().collect();
    assert_eq!(downs.len(), 1, "{downs:?}");
    assert_eq!(downs[0].0, ids[1]);
    assert_eq!(reactor.down(ids[0]), None);
    assert_eq!(reactor.down(ids[2]), None);
    assert!(next[&ids[0]] >= 250 && next[&ids[2]] >= 250, "{next:?}");
    // The dead link can be taken out; the others stay.
    assert!(reactor.remove(ids[1]).is_some());
    assert_eq!(reactor.len(), 2);
    downs[0].1
}

#[test]
fn a_dead_remote_fails_its_link_alone() {
    let e = one_link_fails_alone(true, |soc| soc.kill_remote().unwrap());
    assert_eq!(e, Error::PeerGone);
}

#[test]
fn a_protocol_breaking_remote_fails_its_link_alone() {
    // Split rings: the corruption is a split ring's used index (the inline-slot ring's
    // hostile contents are refused in crates/intercore/tests/inline_ring.rs).
    let e = one_link_fails_alone(false, |soc| {
        // The host's receive ring (vring 0): a used index 1000 entries ahead of what the
        // remote returned — more than were ever in flight (virtio 1.2 §2.7.8).
        let layout = VringLayout::new(256, intercore::rpmsg::layout::VRING_ALIGN).unwrap();
        let at = soc.layout().vring0 + layout.used_idx();
        let mem = soc.memory();
        soc.freeze_remote().unwrap();
        let idx = mem.load_u16(at, Relaxed);
        mem.store_u16(at, idx.wrapping_add(1000), Relaxed);
    });
    assert!(matches!(e, Error::Protocol { .. }), "{e:?}");
}
