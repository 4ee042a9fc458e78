//! Endpoints at scale (issue 23.3): 256 endpoints on one link, announced and destroyed
//! while messages flow; delivery in round robin through `HostBus::next_ready`; the
//! name-service table's bound reported as an error.

use intercore::rpmsg::RemoteConfig;
use intercore::rpmsg::{HostBus, HostConfig, RemoteBus};
use intercore::testing::{Carveout, HeapMem, ThreadBell};
use intercore::{Error, WaitMode};
use std::sync::Arc;
use std::time::Duration;

type Host = HostBus<Arc<HeapMem>, ThreadBell>;
type Remote = RemoteBus<Arc<HeapMem>, ThreadBell, 8>;

const T: Option<Duration> = Some(Duration::from_secs(5));

fn pair(num: u16, cfg: HostConfig) -> (Carveout, Host, Remote) {
    let link = Carveout::with_buffers(num);
    let (hb, rb) = ThreadBell::pair();
    let host = HostBus::new(Arc::clone(&link.mem), hb, &link.map, link.rsc, cfg).unwrap();
    let mut remote = RemoteBus::new(
        Arc::clone(&link.mem),
        rb,
        &link.map,
        link.rsc,
        RemoteConfig::default().wait(WaitMode::Poll),
    )
    .unwrap();
    remote.wait_ready(T).unwrap();
    (link, host, remote)
}

/// The remote reads what the host sent its name service (announcements, withdrawals):
/// nothing else may be waiting.
fn drain_ns(remote: &mut Remote) {
    let n = remote.try_recv_batch(64, |_| panic!("only name-service messages were sent"));
    assert_eq!(
        n,
        Ok(0),
        "name-service messages are not delivered to endpoints"
    );
}

/// The remote answers one message: back to its sender, from the endpoint it was sent to.
fn echo_one(remote: &mut Remote) {
    let (src, dst, data) = remote
        .recv_any_with(T, |m| (m.src, m.dst, m.payload.to_vec()))
        .unwrap();
    remote.send_raw(dst, src, &data, T).unwrap();
}

/// 256 host endpoints, each announced; a message from each comes back to that endpoint
/// alone. Then every other one is destroyed (withdrawn) and 128 new ones created and
/// announced in their place, and every endpoint alive gets its own answer again.
#[test]
fn endpoints_256_announced_and_destroyed_while_messages_flow() {
    let (_link, mut host, mut remote) = pair(16, HostConfig::default());
    let svc = remote.create_endpoint("echo", None).unwrap();
    let mut eps: Vec<u32> = (0..256)
        .map(|i| host.create_endpoint(&format!("ep{i}"), None).unwrap())
        .collect();
    assert_eq!(host.endpoint_count(), 256);
    let round = |host: &mut Host, remote: &mut Remote, eps: &[u32], tag: u8| {
        for &ep in eps {
            let msg = [tag, ep as u8, (ep >> 8) as u8];
            host.send_raw(ep, svc, &msg, T).unwrap();
            echo_one(remote);
            let mut back = [0u8; 8];
            let (src, n) = host
                .recv_from(&intercore::rpmsg::Channel::new(ep, svc), &mut back, T)
                .unwrap();
            assert_eq!((src, &back[..n]), (Some(svc), &msg[..]), "endpoint {ep}");
        }
    };
    for &ep in &eps {
        host.announce(ep).unwrap();
        drain_ns(&mut remote);
    }
    round(&mut host, &mut remote, &eps, 1);
    for &ep in eps.iter().step_by(2) {
        host.destroy_endpoint(ep).unwrap();
        drain_ns(&mut remote);
    }
    assert_eq!(host.endpoint_count(), 128);
    let kept: Vec<u32> = eps.iter().skip(1).step_by(2).copied().collect();
    eps = kept;
    for i in 0..128 {
        let ep = host.create_endpoint(&format!("new{i}"), None).unwrap();
        host.announce(ep).unwrap();
        drain_ns(&mut remote);
        eps.push(ep);
    }
    assert_eq!(host.endpoint_count(), 256);
    round(&mut host, &mut remote, &eps, 2);
    // The remote read every announcement and withdrawal without breaking the link.
    assert_eq!(remote.broken(), None);
    assert_eq!(host.broken(), None);
}

/// One endpoint flooded, another sent one message after the flood: `next_ready` hands
/// out the flooded endpoint, then — after one message taken from it — the other, not
/// the rest of the flood first.
#[test]
fn next_ready_serves_endpoints_in_round_robin() {
    let (_link, mut host, mut remote) = pair(64, HostConfig::default());
    let r = remote.create_endpoint("src", None).unwrap();
    let flood = host.create_endpoint("flood", None).unwrap();
    let quiet = host.create_endpoint("quiet", None).unwrap();
    for i in 0..40u8 {
        remote.send_raw(r, flood, &[i], T).unwrap();
    }
    remote.send_raw(r, quiet, &[0xEE], T).unwrap();
    host.poll().unwrap();
    let mut order = Vec::new();
    while let Some(ep) = host.next_ready() {
        let m = host.try_recv_buf(ep).unwrap();
        order.push((ep, m[0]));
    }
    assert_eq!(order.len(), 41);
    assert_eq!(order[0], (flood, 0));
    assert_eq!(
        order[1],
        (quiet, 0xEE),
        "the quiet endpoint's turn came second"
    );
    assert!(order[2..].iter().all(|&(ep, _)| ep == flood));
    assert!(
        order[2..].windows(2).all(|w| w[1].1 == w[0].1 + 1),
        "in order"
    );
    assert_eq!(host.next_ready(), None);
    assert_eq!(host.try_recv_buf(quiet).err(), Some(Error::WouldBlock));
}

/// The remote announces more services than the host's table holds: the ones past the
/// bound are counted, and a search for a name not in the table says the table is full
/// instead of only timing out.
#[test]
fn name_service_table_past_its_bound_is_a_clear_error() {
    let (_link, mut host, mut remote) = pair(16, HostConfig::default().max_services(4));
    for i in 0..6 {
        let ep = remote.create_endpoint(&format!("svc{i}"), None).unwrap();
        remote.announce(ep).unwrap();
    }
    assert!(host.find_service("svc3", T).is_ok());
    assert_eq!(host.services().len(), 4);
    assert_eq!(host.stats().ns_overflow, 2);
    assert_eq!(
        host.find_service("svc5", Some(Duration::from_millis(20))),
        Err(Error::Exhausted(
            "name-service table full (HostConfig::max_services): announcements were dropped"
        ))
    );
    // A name that is in the table is still found.
    assert!(host.find_service("svc0", Some(Duration::ZERO)).is_ok());
}
