//! Sending from the reactor's thread without waiting (issue 23, "a flooding endpoint cannot
//! raise another endpoint's p99 round trip by more than 2×"): a flood held by its transmit
//! credit parks on its own queue (`Reactor::post` / `HostBus::post`) instead of holding the
//! one thread that serves every endpoint; the quiet endpoint's round trips go on meanwhile,
//! and every parked message is sent — none lost, in order.

mod common;

use intercore::Error;
use intercore::rpmsg::{HostBus, HostConfig};
use intercore_linux::reactor::{Reactor, ReactorConfig, Ready};
use intercore_linux::{EventfdDoorbell, MemfdRegion};
use intercore_sim::{SimConfig, Soc};
use std::sync::Arc;
use std::time::{Duration, Instant};

type Bus = HostBus<Arc<MemfdRegion>, EventfdDoorbell>;
const T: Option<Duration> = Some(Duration::from_secs(5));

/// The message `n` of endpoint `ep`: checkable from its bytes alone.
fn msg(ep: u32, n: u32) -> [u8; 8] {
    let mut m = [0u8; 8];
    m[..4].copy_from_slice(&ep.to_le_bytes());
    m[4..].copy_from_slice(&n.to_le_bytes());
    m
}

/// The flood posts `FLOOD` messages at once (the default credit sends 4, the rest park);
/// then the quiet endpoint does `QUIET` round trips, each answered from the callback with
/// `post`. The quiet endpoint is done while most of the flood is still parked or in flight
/// (its echoes flowed while the flood was held: the thread never waited in the flood's
/// sends), and the flood's echoes all come back, each once, in order.
fn quiet_flows_while_the_flood_is_parked(inline: bool) {
    const FLOOD: u32 = 3000;
    const QUIET: u32 = 20;
    let cfg = SimConfig::new(common::echo());
    let soc = Soc::start(&cfg, &common::program()).expect("simulated SoC");
    let host = HostConfig::default()
        .inline(inline)
        .max_parked_per_endpoint(FLOOD as usize);
    let mut bus: Bus = soc.host_bus(host).expect("host bus");
    assert_eq!(bus.inline_max().is_some(), inline, "ring kind");
    let svc = bus.find_service(intercore_fw_echo::SERVICE, T).unwrap();
    let f = bus.create_endpoint("flood", None).unwrap();
    let q = bus.create_endpoint("quiet", None).unwrap();
    let mut reactor = Reactor::new(ReactorConfig::default()).unwrap();
    let link = reactor.add(bus).unwrap();
    // The quiet endpoint's first message first: it is an active endpoint from then on, so
    // the default credit binds the flood.
    assert!(reactor.post(link, q, svc, &msg(q, 0)).unwrap());
    let t0 = Instant::now();
    let mut parked_at_once = 0;
    for n in 0..FLOOD {
        if !reactor.post(link, f, svc, &msg(f, n)).unwrap() {
            parked_at_once += 1;
        }
    }
    assert!(
        parked_at_once >= FLOOD - 64,
        "the flood went into the ring: {parked_at_once} parked"
    );
    assert!(
        t0.elapsed() < Duration::from_millis(500),
        "posting waited: {:?}",
        t0.elapsed()
    );
    let (mut quiet_next, mut flood_next) = (0u32, 0u32);
    // Flood echoes not yet back when the quiet endpoint's last echo came.
    let mut flood_left_at_quiet_done = None;
    let t0 = Instant::now();
    while flood_next < FLOOD || quiet_next < QUIET {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "stalled: quiet {quiet_next}/{QUIET}, flood {flood_next}/{FLOOD}"
        );
        let r = reactor.turn(Some(Duration::from_secs(2)), |_, bus, ready| match ready {
            Ready::Message(m) if m.dst() == q => {
                assert_eq!(&m[..], &msg(q, quiet_next), "quiet echo {quiet_next}");
                drop(m);
                quiet_next += 1;
                if quiet_next < QUIET {
                    bus.post(q, svc, &msg(q, quiet_next)).unwrap();
                } else {
                    flood_left_at_quiet_done = Some(FLOOD - flood_next);
                }
            }
            Ready::Message(m) if m.dst() == f => {
                assert_eq!(&m[..], &msg(f, flood_next), "flood echo {flood_next}");
                flood_next += 1;
            }
            other => panic!("{other:?}"),
        });
        assert!(matches!(r, Ok(_) | Err(Error::Timeout)), "{r:?}");
    }
    let left = flood_left_at_quiet_done.unwrap();
    // 20 quiet round trips, each behind at most the flood's credit of 2 in the ring: a few
    // hundred flood messages at most. Sent with a waiting send, the whole flood was ahead.
    assert!(
        left > FLOOD / 2,
        "the quiet endpoint finished after the flood ({left} of {FLOOD} flood echoes left)"
    );
    assert_eq!(reactor.link(link).unwrap().parked(f), 0);
    drop(reactor);
    let _ = soc.shutdown(Duration::from_secs(1));
}

#[test]
fn the_quiet_endpoint_flows_while_a_flood_is_parked() {
    quiet_flows_while_the_flood_is_parked(true);
}

#[test]
fn the_quiet_endpoint_flows_while_a_flood_is_parked_on_split_rings() {
    quiet_flows_while_the_flood_is_parked(false);
}
