//! Inline-slot rings (issue 24) driven by the rpmsg buses: negotiated through the intercore
//! vendor entry (on by default between two intercore ends, off with
//! `HostConfig::inline(false)`), never seen by a peer whose table has no entry; every
//! message API of both roles over them, small messages in the slots and larger ones by
//! reference; hostile slot contents refused by name. docs/ARCHITECTURE.md, "Inline-slot
//! rings".

use intercore::rpmsg::rsc_table::IntercoreRpmsgTable;
use intercore::rpmsg::{Channel, HostConfig, RPMSG_ADDR_ANY};
use intercore::testing::{Carveout, TestHost, TestRemote};
use intercore::virtq::inline::CTRL;
use intercore::wire::rsc::{
    INTERCORE_ACCEPTED_OFFSET, INTERCORE_F_IN_ORDER, INTERCORE_F_INLINE, INTERCORE_FEATURES,
};
use intercore::{Error, SharedMemory, WaitMode};
use std::sync::atomic::Ordering::Relaxed;
use std::thread;
use std::time::Duration;

const T: Option<Duration> = Some(Duration::from_secs(5));
const SIZES: [usize; 9] = [0, 1, 16, 48, 64, 112, 113, 256, 496];

fn data(len: usize, salt: usize) -> Vec<u8> {
    (0..len).map(|b| (b * 31 + salt) as u8).collect()
}

fn accepted_off(link: &Carveout) -> usize {
    link.rsc.offset
        + core::mem::offset_of!(IntercoreRpmsgTable, intercore)
        + INTERCORE_ACCEPTED_OFFSET
}

/// On by default between two intercore ends; `inline(false)` keeps the in-order split
/// ring; a table without the vendor entry (every other firmware) keeps the standard ring;
/// a firmware offering in-order only keeps in-order. The remote consumes the acceptance
/// (back to 0), so a later host that never writes it cannot pass inline on.
#[test]
fn negotiated_only_between_intercore_ends_and_consumed() {
    for (features, inline_cfg, want_inline, want_in_order) in [
        (INTERCORE_FEATURES, true, true, false),
        (INTERCORE_FEATURES, false, false, true),
        (INTERCORE_F_IN_ORDER, true, false, true),
    ] {
        let link = Carveout::with_buffers(8).offering(features);
        let (host, remote) = link
            .connect::<8>(HostConfig::default().inline(inline_cfg), WaitMode::Poll)
            .unwrap();
        assert_eq!(host.inline_max().is_some(), want_inline, "{features:#x}");
        assert_eq!(remote.inline_max(), host.inline_max());
        assert_eq!(host.in_order(), want_in_order);
        assert_eq!(remote.in_order(), want_in_order);
        assert_eq!(
            link.mem.load_u32(accepted_off(&link), Relaxed),
            0,
            "consumed"
        );
    }
    let plain = Carveout::with_buffers(8);
    let (host, remote) = plain
        .connect::<8>(HostConfig::default(), WaitMode::Poll)
        .unwrap();
    assert_eq!((host.inline_max(), remote.inline_max()), (None, None));
    assert!(!host.in_order());
    // Fewer host buffers than vring entries: the slots' companions would be missing, so
    // the host does not accept inline rings (in-order instead).
    let link = Carveout::with_buffers(16).offering(INTERCORE_FEATURES);
    let (host, remote) = link
        .connect::<8>(HostConfig::default().num_bufs(8), WaitMode::Poll)
        .unwrap();
    assert_eq!((host.inline_max(), remote.inline_max()), (None, None));
    assert!(host.in_order() && remote.in_order());
}

fn inline_pair(wait: WaitMode) -> (Carveout, TestHost, TestRemote<8>) {
    let link = Carveout::with_buffers(16).offering(INTERCORE_FEATURES);
    let (host, remote) = link.connect::<8>(HostConfig::default(), wait).unwrap();
    assert_eq!(host.inline_max(), Some(112));
    (link, host, remote)
}

/// Every size both ways, in the slot up to 112 bytes and by reference above, through each
/// message API: copy (`send`/`recv_from`), zero copy (`recv_with`, `recv_buf`,
/// `send_with`, `tx_buf`/`send_buf`), the remote's reply path and batches; laps of the ring
/// (8 slots) many times over.
#[test]
fn every_message_api_over_inline_rings() {
    let (_link, mut host, mut remote) = inline_pair(WaitMode::Poll);
    let r = remote.open("svc", RPMSG_ADDR_ANY).unwrap();
    let h = host.connect("svc", T).unwrap();
    assert_eq!(h.remote, r.local, "the name service works over the slots");
    let mut buf = [0u8; 512];
    for round in 0..6 {
        for (i, &len) in SIZES.iter().enumerate() {
            let msg = data(len, i + round);
            // Host → remote: a copy, a zero-copy fill, and a lent buffer.
            match round % 3 {
                0 => host.send(&h, &msg, T).unwrap(),
                1 => host
                    .send_with(&h, T, |b| {
                        b[..len].copy_from_slice(&msg);
                        len
                    })
                    .unwrap(),
                _ => {
                    let mut tx = host.tx_buf(T).unwrap();
                    tx[..len].copy_from_slice(&msg);
                    host.send_buf(&h, tx, len).unwrap();
                }
            }
            let (src, got) = remote
                .recv_with(&r, T, |m| (m.src, m.payload.to_vec()))
                .unwrap();
            assert_eq!((src, &got[..]), (h.local, &msg[..]), "to remote {len}");
            // Remote → host: a copy, the reply path, and a zero-copy fill.
            match round % 3 {
                0 => remote.send(&r, &msg, T).unwrap(),
                1 => {
                    host.send(&h, &msg, T).unwrap();
                    remote
                        .recv_reply_with(&r, T, |m, out| {
                            let n = m.payload.len();
                            out[..n].copy_from_slice(m.payload);
                            out.send(n).unwrap();
                        })
                        .unwrap();
                }
                _ => remote
                    .send_with(&r, T, |b| {
                        b[..len].copy_from_slice(&msg);
                        len
                    })
                    .unwrap(),
            }
            if round % 2 == 0 {
                let (from, n) = host.recv_from(&h, &mut buf, T).unwrap();
                assert_eq!(
                    (from, &buf[..n]),
                    (Some(r.local), &msg[..]),
                    "to host {len}"
                );
            } else {
                let rx = host.recv_buf(&h, T).unwrap();
                assert_eq!(&rx[..], &msg[..], "to host {len}");
                host.release(rx).unwrap();
            }
        }
    }
    // Batches: more messages than slots, taken in one go each way.
    let msgs: Vec<Vec<u8>> = (0..5).map(|i| data(40 + 100 * i, i)).collect();
    let refs: Vec<&[u8]> = msgs.iter().map(|m| &m[..]).collect();
    let sent = host.try_send_batch(h.local, r.local, &refs).unwrap();
    assert_eq!(sent, 5);
    let mut got = Vec::new();
    let n = remote
        .try_recv_batch(8, |m| got.push(m.payload.to_vec()))
        .unwrap();
    assert_eq!((n, got), (5, msgs));
    assert_eq!(host.stats().malformed + remote.stats().malformed, 0);
}

/// Zero-copy receive is a view into the slot until released, and views held out of order
/// are released in order: the ring goes on only once the oldest is given back. An
/// endpoint nobody reads does not stall the link: when every slot is taken its messages
/// are copied out.
#[test]
fn views_release_in_order_and_unread_endpoints_do_not_stall() {
    let (_link, mut host, mut remote) = inline_pair(WaitMode::Poll);
    let r = remote.open("svc", RPMSG_ADDR_ANY).unwrap();
    let h = host.connect("svc", T).unwrap();
    let idle = host.create_endpoint("idle", None).unwrap();
    for i in 0..3u8 {
        remote.send_raw(r.local, h.local, &[i; 20], T).unwrap();
    }
    let a = host.recv_buf(&h, T).unwrap();
    let b = host.recv_buf(&h, T).unwrap();
    let c = host.recv_buf(&h, T).unwrap();
    assert_eq!((a[0], b[0], c[0]), (0, 1, 2));
    drop(c);
    drop(b);
    assert_eq!(a[0], 0, "the oldest view is still there");
    drop(a);
    // 100 messages to an endpoint nobody reads, interleaved with round trips on another.
    for i in 0..100usize {
        remote.send_raw(r.local, idle, &data(30, i), T).unwrap();
        host.send(&h, b"ping", T).unwrap();
        remote.recv_with(&r, T, |_| ()).unwrap();
        // The host application takes what arrives (as a receive on another endpoint
        // would): filed for `idle`, copied out once every slot is taken.
        host.poll().unwrap();
    }
    for i in 0..100usize {
        let mut buf = [0u8; 64];
        let n = host
            .recv(&Channel::new(idle, RPMSG_ADDR_ANY), &mut buf, T)
            .unwrap();
        assert_eq!(&buf[..n], &data(30, i)[..]);
    }
    assert!(host.stats().held_copied > 0);
}

/// The copying receive takes a message straight from its slot when nothing else is queued
/// or held (issue 24's fast path): a message for another endpoint in front of it is filed
/// for that one, a held view sends it the general way, order per endpoint is kept, a short
/// buffer gets `Truncated` with the message consumed, and an unknown endpoint is refused —
/// as the queued path does.
#[test]
fn copying_receive_from_the_slot_keeps_order_and_others_messages() {
    let (_link, mut host, mut remote) = inline_pair(WaitMode::Poll);
    let r = remote.open("svc", RPMSG_ADDR_ANY).unwrap();
    let h = host.connect("svc", T).unwrap();
    let other = host.create_endpoint("other", None).unwrap();
    let oc = Channel::new(other, RPMSG_ADDR_ANY);
    let mut buf = [0u8; 512];
    for round in 0..20usize {
        // Another endpoint's message first, then two for `h`.
        remote
            .send_raw(r.local, other, &data(24, round), T)
            .unwrap();
        remote
            .send_raw(r.local, h.local, &data(16, round), T)
            .unwrap();
        remote
            .send_raw(r.local, h.local, &data(64, round), T)
            .unwrap();
        let n = host.recv(&h, &mut buf, T).unwrap();
        assert_eq!(&buf[..n], &data(16, round)[..], "round {round}");
        // A view held: the next receive goes the general way, still in order.
        let view = host.recv_buf(&oc, T).unwrap();
        assert_eq!(&view[..], &data(24, round)[..]);
        let n = host.recv(&h, &mut buf, T).unwrap();
        assert_eq!(&buf[..n], &data(64, round)[..]);
        drop(view);
        // Truncated: the full length, the message consumed.
        remote
            .send_raw(r.local, h.local, &data(40, round), T)
            .unwrap();
        assert_eq!(
            host.recv(&h, &mut buf[..8], T),
            Err(Error::Truncated { len: 40 })
        );
        assert_eq!(&buf[..8], &data(40, round)[..8]);
        assert_eq!(
            host.recv(&h, &mut buf, Some(Duration::ZERO)),
            Err(Error::Timeout)
        );
    }
    assert_eq!(
        host.recv(&Channel::new(4321, RPMSG_ADDR_ANY), &mut buf, T),
        Err(Error::NoSuchEndpoint(4321))
    );
    assert_eq!(host.stats().received, 20 * 4);
}

/// Blocking calls sleep and are woken over the slots (notification suppression: a ring
/// only when the other side armed): an echo thread, round trips of every size, and a burst
/// larger than the ring each way.
#[test]
fn blocking_round_trips_across_threads() {
    let (_link, mut host, mut remote) = inline_pair(WaitMode::Event);
    let echo = thread::spawn(move || {
        let ch = remote.open("echo", RPMSG_ADDR_ANY).unwrap();
        let mut n = 0u64;
        loop {
            match remote.recv_reply_with(&ch, None, |m, out| {
                let len = m.payload.len();
                out[..len].copy_from_slice(m.payload);
                out.send(len).unwrap();
            }) {
                Ok(()) => n += 1,
                Err(Error::PeerGone) => return (n, remote.stats()),
                Err(e) => panic!("remote: {e}"),
            }
        }
    });
    let h = host.connect("echo", T).unwrap();
    let mut buf = [0u8; 512];
    for i in 0..300 {
        let msg = data(SIZES[i % SIZES.len()], i);
        host.send(&h, &msg, T).unwrap();
        let n = host.recv(&h, &mut buf, T).unwrap();
        assert_eq!(&buf[..n], &msg[..]);
    }
    for i in 0..40 {
        host.send(&h, &data(64, i), T).unwrap();
    }
    for i in 0..40 {
        let n = host.recv(&h, &mut buf, T).unwrap();
        assert_eq!(&buf[..n], &data(64, i)[..]);
    }
    let sleeps = host.stats().sleeps;
    drop(host);
    let (n, stats) = echo.join().unwrap();
    assert_eq!(n, 340);
    assert!(sleeps > 0, "the host slept and was woken");
    assert!(
        stats.kicks < 2 * 340,
        "notifications suppressed while awake: {stats:?}"
    );
}

/// A hostile peer's slot contents are refused by name and the link reports its death:
/// a sequence word that is neither the next message nor empty, a length beyond the slot
/// or its companion buffer, unknown flags — on the host (the remote wrote them) and on the
/// remote (the host wrote them); nothing is delivered from them.
#[test]
fn hostile_slot_contents_are_refused_on_both_roles() {
    type Break = fn(&Carveout, usize);
    let cases: [(Break, &str); 4] = [
        (|l, s| l.mem.store_u32(s + 8, 0x77, Relaxed), "sequence"),
        (|l, s| l.mem.store_u32(s + 12, 113, Relaxed), "length"),
        (
            |l, s| l.mem.store_u32(s + 12, 513 | 1 << 31, Relaxed),
            "length",
        ),
        (
            |l, s| l.mem.store_u32(s + 12, 4 | 1 << 16, Relaxed),
            "flags",
        ),
    ];
    for (brk, what) in cases {
        // Remote → host, in vring 0's area: the host refuses.
        let (link, mut host, mut remote) = inline_pair(WaitMode::Poll);
        let r = remote.open("svc", RPMSG_ADDR_ANY).unwrap();
        let h = host.connect("svc", T).unwrap();
        remote.send_raw(r.local, h.local, b"evil", T).unwrap();
        // Slot 1 of vring 0's ring (slot 0 carried the announcement).
        brk(&link, link.layout.vring0 + CTRL + 128);
        let mut buf = [0u8; 64];
        match host.recv(&h, &mut buf, Some(Duration::ZERO)) {
            Err(Error::Protocol { what: w, .. }) => assert!(w.contains(what), "{w}"),
            other => panic!("host, {what}: {other:?}"),
        }
        assert!(host.broken().is_some(), "host: the link is dead");
        // Host → remote, in vring 1's area: the remote refuses.
        let (link, mut host, mut remote) = inline_pair(WaitMode::Poll);
        let r = remote.open("svc", RPMSG_ADDR_ANY).unwrap();
        let h = host.connect("svc", T).unwrap();
        host.send(&h, b"evil", T).unwrap();
        brk(&link, link.layout.vring1 + CTRL);
        match remote.recv_with(&r, Some(Duration::ZERO), |m| m.payload.to_vec()) {
            Err(Error::Protocol { what: w, .. }) => assert!(w.contains(what), "{w}"),
            other => panic!("remote, {what}: {other:?}"),
        }
        assert!(remote.broken().is_some(), "remote: the link is dead");
    }
    // A hostile consumer: progress beyond what was produced.
    let (link, mut host, mut remote) = inline_pair(WaitMode::Poll);
    let r = remote.open("svc", RPMSG_ADDR_ANY).unwrap();
    let h = host.connect("svc", T).unwrap();
    for _ in 0..8 {
        host.send(&h, b"x", T).unwrap();
    }
    link.mem.store_u32(link.layout.vring1, 1000, Relaxed);
    assert!(matches!(
        host.send(&h, b"x", Some(Duration::ZERO)),
        Err(Error::Protocol { .. })
    ));
    let _ = r;
}

/// The accepted bit with no valid `inline_max` (a hostile or broken host accepting what
/// the entry cannot carry) is refused by the remote as a protocol error.
#[test]
fn inline_accepted_without_a_slot_size_is_refused() {
    let link = Carveout::with_buffers(8);
    let t = IntercoreRpmsgTable::standard(&link.spec, INTERCORE_F_IN_ORDER | INTERCORE_F_INLINE);
    let mut t = t;
    t.intercore = t.intercore.with_inline_max(0);
    link.mem
        .write(link.rsc.offset, zerocopy::IntoBytes::as_bytes(&t));
    let (hb, rb) = intercore::testing::ThreadBell::pair();
    let host = intercore::rpmsg::HostBus::new(
        std::sync::Arc::clone(&link.mem),
        hb,
        &link.map,
        link.rsc,
        HostConfig::default(),
    )
    .unwrap();
    assert_eq!(host.inline_max(), None, "no valid inline_max: not accepted");
    link.mem
        .store_u32(accepted_off(&link), INTERCORE_F_INLINE, Relaxed);
    let mut remote = intercore::rpmsg::RemoteBus::<_, _, 8>::new(
        std::sync::Arc::clone(&link.mem),
        rb,
        &link.map,
        link.rsc,
        intercore::rpmsg::RemoteConfig::default().wait(WaitMode::Poll),
    )
    .unwrap();
    let err = remote.wait_ready(T).unwrap_err();
    assert!(matches!(err, Error::Protocol { .. }), "{err}");
}

/// Buses in `WaitMode::Poll` declare that they never sleep, so the other end skips its wake
/// check per message; a change of wait mode on either end, mid-stream, withdraws or makes
/// that declaration and loses nothing: every round trip below completes within its
/// timeout, whichever end polls or sleeps. The remote echoes on its own thread and switches
/// Poll → Event after 100 messages (it then sleeps between messages, so the host must ring
/// it again); the host switches Poll → Event after 200 (it sleeps for each echo, so the
/// remote must ring it), pausing now and then so that the remote is asleep when the next
/// message comes; then back to Poll.
#[test]
fn changing_wait_modes_mid_stream_loses_no_wake_up() {
    let (_link, mut host, mut remote) = inline_pair(WaitMode::Poll);
    let echo = thread::spawn(move || {
        let ch = remote.open("echo", RPMSG_ADDR_ANY).unwrap();
        let mut n = 0u64;
        loop {
            if n == 100 {
                remote.set_wait_mode(WaitMode::Event);
            }
            match remote.recv_reply_with(&ch, Some(Duration::from_secs(5)), |m, out| {
                let len = m.payload.len();
                out[..len].copy_from_slice(m.payload);
                out.send(len).unwrap();
            }) {
                Ok(()) => n += 1,
                Err(Error::PeerGone) => return (n, remote.stats()),
                Err(e) => panic!("remote, after {n} messages: {e}"),
            }
        }
    });
    let h = host.connect("echo", T).unwrap();
    let mut buf = [0u8; 512];
    for i in 0..400 {
        match i {
            200 => host.set_wait_mode(WaitMode::Event),
            300 => host.set_wait_mode(WaitMode::Poll),
            _ => {}
        }
        if i % 25 == 0 {
            // Long enough for a remote in Event mode to be asleep.
            thread::sleep(Duration::from_millis(3));
        }
        let msg = data(SIZES[i % SIZES.len()], i);
        host.send(&h, &msg, T)
            .unwrap_or_else(|e| panic!("send {i}: {e}"));
        let n = host
            .recv(&h, &mut buf, T)
            .unwrap_or_else(|e| panic!("echo {i}: {e}"));
        assert_eq!(&buf[..n], &msg[..], "echo {i}");
    }
    let sleeps = host.stats().sleeps;
    drop(host);
    let (n, _) = echo.join().unwrap();
    assert_eq!(n, 400);
    assert!(sleeps > 0, "the host slept in Event mode and was woken");
}
