//! In-order rings between two intercore ends, negotiated through the intercore vendor
//! resource entry (`INTERCORE_F_IN_ORDER`: `VIRTIO_F_IN_ORDER` semantics, which a resource
//! table's 32-bit `dfeatures`/`gfeatures` cannot carry), and the fall-back to the standard
//! split ring whenever either end does not take part — docs/ARCHITECTURE.md,
//! "Interoperability decisions".

use intercore::rpmsg::Channel;
use intercore::rpmsg::HostConfig;
use intercore::rpmsg::RPMSG_ADDR_ANY;
use intercore::rpmsg::RemoteConfig;
use intercore::rpmsg::layout::VRING_ALIGN;
use intercore::rpmsg::rsc_table::IntercoreRpmsgTable;
use intercore::testing::counting::{self, Counts};
use intercore::testing::{Carveout, TestHost, TestRemote, ThreadBell};
use intercore::virtq::VringLayout;
use intercore::wire::rsc::{INTERCORE_ACCEPTED_OFFSET, INTERCORE_F_IN_ORDER, INTERCORE_F_INLINE};
use intercore::{Error, SharedMemory, WaitMode};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;
use zerocopy::IntoBytes;

const T: Option<Duration> = Some(Duration::from_secs(5));
const NUM: u16 = 8;

/// A link whose table carries the intercore entry offering `features`.
fn link(features: u32) -> Carveout {
    let link = Carveout::with_buffers(NUM);
    let table = IntercoreRpmsgTable::standard(&link.spec, features);
    link.mem.write(link.rsc.offset, table.as_bytes());
    link
}

/// Region offset of the entry's `accepted` word in [`link`]'s table.
fn accepted_off(link: &Carveout) -> usize {
    link.rsc.offset
        + core::mem::offset_of!(IntercoreRpmsgTable, intercore)
        + INTERCORE_ACCEPTED_OFFSET
}

fn connect(link: &Carveout, cfg: HostConfig) -> (TestHost, TestRemote<8>) {
    link.connect::<8>(cfg, WaitMode::Poll).unwrap()
}

/// Round trips through the reply path and batches that wrap both rings several times.
fn traffic(host: &mut TestHost, remote: &mut TestRemote<8>) {
    let r = remote.create_endpoint("svc", None).unwrap();
    let h = host.create_endpoint("client", None).unwrap();
    for i in 0..5 * NUM as u32 {
        let msg = i.to_le_bytes();
        host.send_raw(h, r, &msg, Some(Duration::from_secs(1)))
            .unwrap();
        remote
            .recv_reply_any_with(T, |m, reply| {
                assert_eq!((m.src, m.dst, m.payload), (h, r, &msg[..]));
                reply[..4].copy_from_slice(&(i * 3).to_le_bytes());
                reply.send(4).unwrap();
            })
            .unwrap();
        let mut buf = [0u8; 8];
        assert_eq!(
            host.recv_from(
                &Channel::new(h, RPMSG_ADDR_ANY),
                &mut buf,
                Some(Duration::from_secs(1))
            )
            .unwrap(),
            (Some(r), 4)
        );
        assert_eq!(buf[..4], (i * 3).to_le_bytes());
    }
    for round in 0..3u8 {
        let msgs: Vec<[u8; 3]> = (0..NUM as u8).map(|k| [round, k, 7]).collect();
        let refs: Vec<&[u8]> = msgs.iter().map(|m| &m[..]).collect();
        assert_eq!(host.try_send_batch(h, r, &refs).unwrap(), NUM as usize);
        for m in &msgs {
            let mut buf = [0u8; 8];
            assert_eq!(
                remote
                    .recv_any_with(T, |m| (
                        m.src,
                        m.dst,
                        intercore::copy_from_shared(m.payload, &mut buf)
                    ))
                    .unwrap(),
                (h, r, 3)
            );
            assert_eq!(&buf[..3], m);
            remote.send_raw(r, h, &buf[..3], T).unwrap();
            // Read at once: the host holds at most 3/4 of its buffers per endpoint.
            let mut back = [0u8; 8];
            assert_eq!(
                host.recv_from(
                    &Channel::new(h, RPMSG_ADDR_ANY),
                    &mut back,
                    Some(Duration::from_secs(1))
                )
                .unwrap(),
                (Some(r), 3)
            );
            assert_eq!(&back[..3], m);
        }
    }
}

/// Both ends intercore, the entry offered: the host accepts, writes `accepted`, the remote
/// runs in order and consumes the word (back to 0, so a later Linux host, which never
/// writes it, cannot inherit it); messages flow both ways across several ring wraps.
#[test]
fn in_order_is_negotiated_between_intercore_ends() {
    let link = link(INTERCORE_F_IN_ORDER);
    let (mut host, mut remote) = connect(&link, HostConfig::default());
    assert!(host.in_order() && remote.in_order());
    assert_eq!(
        link.mem.load_u32(accepted_off(&link), Relaxed),
        0,
        "consumed"
    );
    traffic(&mut host, &mut remote);

    assert_eq!((host.broken(), remote.broken()), (None, None));
}

/// Issue 20.3: in order, the host takes its buffer without waiting for the used element,
/// but the remote still writes one for every buffer and the host checks each (at its next
/// call after the message it announced): an element naming another descriptor than the
/// next in ring order breaks the link, as a bad used id does on the standard ring. Before,
/// garbage there changed nothing. The available ring, which an in-order device has no use
/// for, is still not read (docs/ARCHITECTURE.md, "In-order rings": its check would cost the
/// remote a load per buffer).
#[test]
fn in_order_rings_check_what_they_do_not_follow() {
    let l = VringLayout::new(u32::from(NUM), VRING_ALIGN).unwrap();
    let scribble = |link: &Carveout, base: usize, at: fn(&VringLayout, u16) -> usize| {
        for i in 0..NUM {
            link.mem.store_u16(base + at(&l, i), 0xFFFF, Relaxed);
        }
    };
    // The available ring: not read by the remote.
    let link = link(INTERCORE_F_IN_ORDER);
    let (mut host, mut remote) = connect(&link, HostConfig::default());
    let r = remote.create_endpoint("svc", None).unwrap();
    let h = host.create_endpoint("client", None).unwrap();
    host.send_raw(h, r, b"x", Some(Duration::from_secs(1)))
        .unwrap();
    scribble(&link, link.layout.vring1, VringLayout::avail_ring);
    let mut buf = [0u8; 8];
    assert_eq!(
        remote
            .recv_any_with(Some(Duration::ZERO), |m| (
                m.src,
                m.dst,
                intercore::copy_from_shared(m.payload, &mut buf)
            ))
            .unwrap(),
        (h, r, 1)
    );
    // The used ring, on the host.
    let link = self::link(INTERCORE_F_IN_ORDER);
    let (mut host, mut remote) = connect(&link, HostConfig::default());
    let r = remote.create_endpoint("svc", None).unwrap();
    let h = host.create_endpoint("client", None).unwrap();
    remote.send_raw(r, h, b"y", T).unwrap();
    scribble(&link, link.layout.vring0, |l, i| l.used_ring(i));
    assert_eq!(
        host.recv_from(
            &Channel::new(h, RPMSG_ADDR_ANY),
            &mut buf,
            Some(Duration::ZERO)
        )
        .unwrap(),
        (Some(r), 1)
    );
    let e = host.poll().unwrap_err();
    assert!(
        matches!(e, Error::Protocol { what, .. } if what.contains("used element")),
        "{e:?}"
    );
}

/// The host accepts only what it implements: a firmware offering every bit gets
/// `INTERCORE_F_INLINE` (inline rings replace both split rings, in order or not) and
/// nothing else written back; with inline rings declined, `INTERCORE_F_IN_ORDER`.
#[test]
fn host_accepts_only_known_bits() {
    let inline_ask = INTERCORE_F_INLINE | intercore::wire::rsc::INTERCORE_F_INLINE_ASK;
    for (inline, want) in [(true, inline_ask), (false, INTERCORE_F_IN_ORDER)] {
        let link = link(u32::MAX);
        let (hb, _rb) = ThreadBell::pair();
        let host = intercore::rpmsg::HostBus::new(
            Arc::clone(&link.mem),
            hb,
            &link.map,
            link.rsc,
            HostConfig::default().inline(inline),
        )
        .unwrap();
        assert_eq!(host.in_order(), !inline);
        assert_eq!(host.inline_max().is_some(), inline);
        assert_eq!(link.mem.load_u32(accepted_off(&link), Relaxed), want);
    }
}

/// Fall-back: a table without the entry (what Linux, OpenAMP and RPMsg-Lite peers are
/// tested with), an entry offering nothing, and a host configured not to accept all give
/// the standard split ring on both ends, working.
#[test]
fn falls_back_to_the_standard_ring() {
    let plain = Carveout::with_buffers(NUM);
    let declining = HostConfig {
        in_order: false,
        ..HostConfig::default()
    };
    for (link, cfg) in [
        (plain, HostConfig::default()),
        (link(0), HostConfig::default()),
        (link(INTERCORE_F_IN_ORDER), declining),
    ] {
        let (mut host, mut remote) = connect(&link, cfg);
        assert!(!host.in_order() && !remote.in_order());
        traffic(&mut host, &mut remote);
    }
}

/// Issue 20.2: one message for a remote endpoint nobody reads must not stall the link. On
/// an in-order ring the used index may not pass a buffer still held, so the remote copies a
/// held message out and returns its buffer at once: 200 of 200 round trips to another
/// endpoint, as on the standard ring (before the copy: 7 of 200 with these 8 buffers, then a
/// timeout). The held message is delivered intact afterwards, through the reply path and
/// the plain one, and nothing was dropped.
#[test]
fn held_message_does_not_stall_the_link() {
    for features in [INTERCORE_F_IN_ORDER, 0] {
        let link = link(features);
        let cfg = HostConfig {
            timeout: Some(Duration::from_millis(100)),
            ..HostConfig::default()
        };
        let (mut host, mut remote) = connect(&link, cfg);
        assert_eq!(host.in_order(), features != 0);
        let short = Some(Duration::from_millis(100));
        let a = remote.create_endpoint("a", None).unwrap();
        let b = remote.create_endpoint("b", None).unwrap();
        let h = host.create_endpoint("client", None).unwrap();
        host.send_raw(h, a, b"for a", Some(Duration::from_secs(1)))
            .unwrap();
        host.send_raw(h, a, b"for a, again", Some(Duration::from_secs(1)))
            .unwrap();
        let mut done = 0;
        for i in 0..200u32 {
            let msg = i.to_le_bytes();
            if host
                .send_raw(h, b, &msg, Some(Duration::from_secs(1)))
                .is_err()
            {
                break;
            }
            let echoed = if i % 2 == 0 {
                remote.recv_reply_with(&Channel::new(b, RPMSG_ADDR_ANY), short, |m, reply| {
                    assert_eq!(m.payload, &msg[..]);
                    reply[..4].copy_from_slice(&msg);
                    reply.send(4).unwrap();
                })
            } else {
                remote
                    .recv_with(&Channel::new(b, RPMSG_ADDR_ANY), short, |m| {
                        assert_eq!(m.payload, &msg[..])
                    })
                    .and_then(|()| remote.send_raw(b, h, &msg, short))
            };
            let mut buf = [0u8; 8];
            if echoed.is_err()
                || host.recv_from(
                    &Channel::new(h, RPMSG_ADDR_ANY),
                    &mut buf,
                    Some(Duration::from_secs(1)),
                ) != Ok((Some(b), 4))
                || buf[..4] != msg
            {
                break;
            }
            done += 1;
        }
        let ring = if features != 0 {
            "in order"
        } else {
            "standard"
        };
        assert_eq!(done, 200, "{ring}: round trips before the link stalled");
        remote
            .recv_reply_with(&Channel::new(a, RPMSG_ADDR_ANY), T, |m, reply| {
                assert_eq!(m.payload, b"for a");
                reply[..2].copy_from_slice(b"ok");
                reply.send(2).unwrap();
            })
            .unwrap();
        remote
            .recv_any_with(T, |m| {
                assert_eq!((m.dst, m.payload), (a, &b"for a, again"[..]))
            })
            .unwrap();
        let mut buf = [0u8; 8];
        assert_eq!(
            host.recv_from(
                &Channel::new(h, RPMSG_ADDR_ANY),
                &mut buf,
                Some(Duration::from_secs(1))
            )
            .unwrap(),
            (Some(a), 2)
        );
        assert_eq!(remote.stats().held_dropped, 0, "{ring}");
        assert_eq!((host.broken(), remote.broken()), (None, None), "{ring}");
    }
}

/// A hostile `accepted` word is refused: bits the firmware did not offer (the table
/// parser names the field), and offered bits the remote does not implement.
#[test]
fn hostile_acceptance_is_refused() {
    let bad = link(0);
    bad.mem
        .store_u32(accepted_off(&bad), INTERCORE_F_IN_ORDER, Relaxed);
    let (_, rb) = ThreadBell::pair();
    let err = intercore::rpmsg::RemoteBus::<_, _, 8>::new(
        Arc::clone(&bad.mem),
        rb,
        &bad.map,
        bad.rsc,
        RemoteConfig::default().wait(WaitMode::Poll),
    )
    .err()
    .expect("refused");
    assert!(err.to_string().contains("accepted"), "{err}");

    // Offered (bit 3, which the buses do not implement) and "accepted" by a hostile host.
    let hostile = link(INTERCORE_F_IN_ORDER | INTERCORE_F_INLINE | 8);
    let link = hostile;
    let (hb, rb) = ThreadBell::pair();
    let _host = intercore::rpmsg::HostBus::new(
        Arc::clone(&link.mem),
        hb,
        &link.map,
        link.rsc,
        HostConfig::default(),
    )
    .unwrap();
    link.mem.store_u32(accepted_off(&link), 8, Relaxed);
    let mut remote = intercore::rpmsg::RemoteBus::<_, _, 8>::new(
        Arc::clone(&link.mem),
        rb,
        &link.map,
        link.rsc,
        RemoteConfig::default().wait(WaitMode::Poll),
    )
    .unwrap();
    let err = remote.wait_ready(T).unwrap_err();
    assert!(matches!(err, Error::Protocol { .. }), "{err}");
}

/// 64-byte round trips in steady state, counted on each side (docs/BENCHMARKS.md,
/// "Counting shared-memory accesses"): the host sends, the remote answers in place through
/// the reply path, the host receives. `(host, remote, in order)`, over `NUM` round trips.
fn round_trip_counts(link: &Carveout, cfg: HostConfig) -> (Counts, Counts, bool) {
    let mut c = counting::connect::<8>(link, cfg, WaitMode::Poll).unwrap();
    let r = c.remote.create_endpoint("svc", None).unwrap();
    let h = c.host.create_endpoint("client", None).unwrap();
    let msg = [0x5a; 64];
    let one = |c: &mut counting::Counted<8>| {
        c.host.send_raw(h, r, &msg, Some(Duration::ZERO)).unwrap();
        c.remote
            .recv_reply_any_with(Some(Duration::ZERO), |m, reply| {
                reply.send_copy(m.payload).unwrap()
            })
            .unwrap();
        let mut buf = [0u8; 64];
        assert_eq!(
            c.host
                .recv_from(
                    &Channel::new(h, RPMSG_ADDR_ANY),
                    &mut buf,
                    Some(Duration::ZERO)
                )
                .unwrap(),
            (Some(r), 64)
        );
        assert_eq!(buf, msg);
    };
    // Past the first wrap of both rings: every descriptor written once already.
    for _ in 0..3 * NUM {
        one(&mut c);
    }
    // `NUM` round trips, each its own window: loads, stores and lines summed (the host's
    // transmit-buffer reclaim comes once per `NUM`), chains the longest of any.
    let (mut host, mut remote) = (Counts::default(), Counts::default());
    for _ in 0..NUM {
        c.host_mem.mark();
        c.remote_mem.mark();
        one(&mut c);
        host = host + c.host_mem.take();
        remote = remote + c.remote_mem.take();
    }
    let in_order = c.host.in_order();
    (host, remote, in_order)
}

/// The negotiated in-order rings against the default standard path (a table without the
/// entry, EVENT_IDX off as `Carveout::with_buffers` offers): dependent loads per 64-byte round
/// trip — the host's chain and the remote's, which run one after the other — at most 60%
/// of the standard path's (issue 14), and no more loads in all. Deterministic: an upper
/// bound that fails if a cut is undone.
#[test]
fn in_order_cuts_dependent_loads_per_round_trip() {
    let (sh, sr, std_in_order) =
        round_trip_counts(&Carveout::with_buffers(NUM), HostConfig::default());
    let (fh, fr, fast_in_order) =
        round_trip_counts(&link(INTERCORE_F_IN_ORDER), HostConfig::default());
    assert!(!std_in_order && fast_in_order);
    for (name, h, r) in [("standard", sh, sr), ("in-order", fh, fr)] {
        let per = |n: u64| n as f64 / f64::from(NUM);
        eprintln!(
            "{name:9} per round trip: host loads {:.1} stores {:.1} fences {:.1} lines64 {:.1} \
             chain {} ordered {} | remote loads {:.1} stores {:.1} fences {:.1} lines32 {:.1} \
             chain {} ordered {} | chain sum {} ordered sum {}",
            per(h.loads),
            per(h.stores),
            per(h.fences),
            per(h.lines64),
            h.chain,
            h.ordered_chain,
            per(r.loads),
            per(r.stores),
            per(r.fences),
            per(r.lines32),
            r.chain,
            r.ordered_chain,
            h.chain + r.chain,
            h.ordered_chain + r.ordered_chain,
        );
    }
    let (std_chain, fast_chain) = (sh.chain + sr.chain, fh.chain + fr.chain);
    assert!(
        fast_chain * 10 <= std_chain * 6,
        "in-order chain {fast_chain} > 60% of standard {std_chain}"
    );
    assert!(fh.loads + fr.loads <= sh.loads + sr.loads);
}
