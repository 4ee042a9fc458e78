// The rpmsg suite's body, included twice by `tests/rpmsg.rs`: over the standard split
// ring (`INLINE` false) and over inline-slot rings negotiated with an intercore table.

use intercore::rpmsg::Channel;
use intercore::rpmsg::RPMSG_ADDR_ANY;
use intercore::rpmsg::{HostBus, HostConfig, RemoteBus};
use intercore::testing::{Carveout, HeapMem, ThreadBell};
use intercore::{Error, WaitMode};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

type Host = HostBus<Arc<HeapMem>, ThreadBell>;
type Remote = RemoteBus<Arc<HeapMem>, ThreadBell, 8>;

const T: Option<Duration> = Some(Duration::from_secs(5));

fn pair(num: u16) -> (Host, Remote) {
    pair_with(num, HostConfig::default())
}

fn pair_with(num: u16, cfg: HostConfig) -> (Host, Remote) {
    let link = Carveout::with_buffers(num);
    // The inline run: an intercore firmware's table, so the buses negotiate inline-slot
    // rings (where the host has a buffer per vring entry) as they do between two
    // intercore ends by default.
    let link = if INLINE {
        link.offering(intercore::wire::rsc::INTERCORE_FEATURES)
    } else {
        link
    };
    link.connect(cfg, WaitMode::Event).unwrap()
}

/// Messages in flight per direction over `num`-entry rings: one per buffer on the split
/// ring; one per slot on inline rings, which have half as many slots as entries (the other
/// half of the host's transmit buffers is lent as `TxBuf`s).
fn cap(num: u16) -> u16 {
    if INLINE { num / 2 } else { num }
}

/// Transmit buffers the host lends (`tx_buf`) over `num`-entry rings.
fn lendable(num: u16) -> u16 {
    num - if INLINE { num / 2 } else { 0 }
}

/// Runs an echo service on the remote in a thread until the host goes away.
fn spawn_echo(mut remote: Remote, name: &'static str) -> thread::JoinHandle<u64> {
    thread::spawn(move || {
        let ep = remote.create_endpoint(name, None).unwrap();
        remote.announce(ep).unwrap();
        let mut n = 0;
        let mut buf = [0u8; 512];
        loop {
            match remote.recv_any_with(None, |m| {
                buf[..m.payload.len()].copy_from_slice(m.payload);
                (m.src, m.payload.len())
            }) {
                Ok((src, len)) => {
                    remote.send_raw(ep, src, &buf[..len], None).unwrap();
                    n += 1;
                }
                Err(Error::PeerGone) => return n,
                Err(e) => panic!("remote: {e}"),
            }
        }
    })
}

/// The remote's announcement (40-byte message to address 53) reaches the host's name
/// service; a destroy announcement withdraws it (`rpmsg_ns_cb`).
#[test]
fn name_service_create_and_destroy() {
    let (mut host, mut remote) = pair(16);
    let ep = remote.create_endpoint("svc-a", None).unwrap();
    assert_eq!(
        ep, 1024,
        "dynamic addresses start at RPMSG_RESERVED_ADDRESSES"
    );
    remote.announce(ep).unwrap();
    assert_eq!(host.find_service("svc-a", T).unwrap(), 1024);
    remote.destroy_endpoint(ep).unwrap();
    let t0 = Instant::now();
    while host.service("svc-a").is_some() {
        host.poll().unwrap();
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "destroy never arrived"
        );
    }
    assert!(host.services().is_empty());
}

/// The host can announce its own endpoints to the remote (`virtio_rpmsg_announce_create`).
#[test]
fn host_announcement_reaches_remote() {
    let (mut host, mut remote) = pair(16);
    let ep = host.create_endpoint("host-svc", Some(2000)).unwrap();
    host.announce(ep).unwrap();
    assert_eq!(
        remote.recv_any_with(Some(Duration::ZERO), |_| ()),
        Err(Error::Timeout),
        "an announcement is not a message for an endpoint"
    );
    assert_eq!(remote.host_service("host-svc"), Some(2000));
}

/// Dynamic addresses count up from 1024; fixed ones may not collide, nor be the name
/// service's 53 or RPMSG_ADDR_ANY.
#[test]
fn endpoint_addresses() {
    let (mut host, _remote) = pair(8);
    assert_eq!(host.create_endpoint("a", None).unwrap(), 1024);
    assert_eq!(host.create_endpoint("b", None).unwrap(), 1025);
    assert_eq!(
        host.create_endpoint("c", Some(1025)),
        Err(Error::AddressInUse(1025))
    );
    assert_eq!(
        host.create_endpoint("d", Some(53)),
        Err(Error::AddressInUse(53))
    );
    assert_eq!(
        host.create_endpoint("e", Some(u32::MAX)),
        Err(Error::AddressInUse(u32::MAX))
    );
    assert!(matches!(
        host.create_endpoint("a-name-that-is-longer-than-31-bytes", None),
        Err(Error::Config(_))
    ));
    host.destroy_endpoint(1024).unwrap();
    assert_eq!(
        host.destroy_endpoint(1024),
        Err(Error::NoSuchEndpoint(1024))
    );
    assert_eq!(
        host.send_raw(4242, 1, b"x", Some(Duration::ZERO)),
        Err(Error::NoSuchEndpoint(4242))
    );
}

/// Messages of every size 1..=496 echo back intact through the copy API and through the
/// zero-copy API (filled in place, read in place), across index wrap-around of a 4-entry
/// ring (70,000 messages > 65,536).
#[test]
fn echo_copy_and_zero_copy_across_wraparound() {
    let (mut host, remote) = pair(4);
    let echo = spawn_echo(remote, "echo");
    let dst = host.find_service("echo", T).unwrap();
    let ep = host.create_endpoint("me", None).unwrap();
    let mut out = [0u8; 496];
    let mut back = [0u8; 496];
    for i in 0..70_000u32 {
        let len = 1 + (i as usize * 7919) % 496;
        for (k, b) in out[..len].iter_mut().enumerate() {
            *b = (i as usize + k) as u8;
        }
        if i % 2 == 0 {
            host.send_raw(ep, dst, &out[..len], Some(Duration::from_secs(1)))
                .unwrap();
            let (src, n) = host
                .recv_from(
                    &Channel::new(ep, RPMSG_ADDR_ANY),
                    &mut back,
                    Some(Duration::from_secs(1)),
                )
                .unwrap();
            assert_eq!((src, n), (Some(dst), len));
            assert_eq!(&back[..n], &out[..len], "message {i}");
        } else {
            let mut tx = host.tx_buf(T).unwrap();
            assert_eq!(tx.len(), 496);
            tx[..len].copy_from_slice(&out[..len]);
            host.send_buf(&Channel::new(ep, dst), tx, len).unwrap();
            let rx = host.recv_buf(&Channel::new(ep, RPMSG_ADDR_ANY), T).unwrap();
            assert_eq!((rx.src(), rx.dst()), (dst, ep));
            assert_eq!(&rx[..], &out[..len], "message {i}");
        }
    }
    drop(host);
    assert_eq!(echo.join().unwrap(), 70_000);
}

/// A payload larger than a buffer's 496 bytes is `MessageTooLarge` on both sides
/// (Linux: EMSGSIZE), and the remote's refused buffer stays available.
#[test]
fn oversized_payload_is_an_error() {
    let (mut host, mut remote) = pair(8);
    let ep = host.create_endpoint("me", None).unwrap();
    assert_eq!(
        host.send_raw(ep, 1024, &[0; 497], Some(Duration::ZERO)),
        Err(Error::MessageTooLarge { len: 497, max: 496 })
    );
    let r = remote.create_endpoint("r", None).unwrap();
    assert_eq!(
        remote.send_raw(r, ep, &[0; 497], Some(Duration::ZERO)),
        Err(Error::MessageTooLarge { len: 497, max: 496 })
    );
    remote
        .send_raw(r, ep, &[7; 496], Some(Duration::ZERO))
        .unwrap();
    let mut buf = [0u8; 496];
    assert_eq!(
        host.recv_from(
            &Channel::new(ep, RPMSG_ADDR_ANY),
            &mut buf,
            Some(Duration::ZERO)
        )
        .unwrap(),
        (Some(r), 496)
    );
}

/// With every transmit buffer at the remote, a send that does not wait says `Timeout` and `send` times
/// out (the kernel waits up to 15 s; ours is configurable) — by sleeping on the doorbell,
/// not by spinning in Event mode.
#[test]
fn full_transmit_ring_blocks_then_times_out() {
    let (mut host, _remote) = pair(8);
    host.set_wait_mode(WaitMode::Event);
    let ep = host.create_endpoint("me", None).unwrap();
    for _ in 0..cap(8) {
        host.send_raw(ep, 1024, b"fill", Some(Duration::ZERO))
            .unwrap();
    }
    assert_eq!(
        host.send_raw(ep, 1024, b"x", Some(Duration::ZERO)),
        Err(Error::Timeout)
    );
    let t0 = Instant::now();
    assert_eq!(
        host.send_raw(ep, 1024, b"x", Some(Duration::from_millis(100))),
        Err(Error::Timeout)
    );
    assert!(t0.elapsed() >= Duration::from_millis(95));
    assert!(
        host.stats().sleeps >= 1,
        "event mode must sleep on the doorbell"
    );
}

/// A blocked sender is woken when the remote consumes a buffer.
#[test]
fn blocked_sender_wakes_when_remote_consumes() {
    let (mut host, mut remote) = pair(4);
    host.set_wait_mode(WaitMode::Event);
    let ep = host.create_endpoint("me", None).unwrap();
    let r = remote.create_endpoint("sink", None).unwrap();
    for _ in 0..cap(4) {
        host.send_raw(ep, r, b"fill", Some(Duration::ZERO)).unwrap();
    }
    let t = thread::spawn(move || {
        thread::sleep(Duration::from_millis(50));
        remote.recv_any_with(T, |m| m.payload.len()).unwrap();
        remote
    });
    host.send_raw(ep, r, b"more", T).unwrap();
    let _remote = t.join().unwrap();
}

/// Held receive buffers are out of the ring (the remote runs out of host buffers), and
/// dropping the handles gives them back.
#[test]
fn held_receive_buffers_return_on_drop() {
    let cfg = HostConfig {
        max_held_per_endpoint: Some(4),
        ..HostConfig::default()
    };
    let (mut host, mut remote) = pair_with(4, cfg);
    let ep = host.create_endpoint("me", None).unwrap();
    let r = remote.create_endpoint("r", None).unwrap();
    for i in 0..cap(4) as u8 {
        remote
            .send_raw(r, ep, &[i; 10], Some(Duration::ZERO))
            .unwrap();
    }
    assert_eq!(
        remote.send_raw(r, ep, b"x", Some(Duration::ZERO)),
        Err(Error::Timeout)
    );
    let held: Vec<_> = (0..cap(4))
        .map(|_| {
            host.recv_buf(&Channel::new(ep, RPMSG_ADDR_ANY), Some(Duration::ZERO))
                .unwrap()
        })
        .collect();
    for (i, b) in held.iter().enumerate() {
        assert_eq!(&b[..], &[i as u8; 10]);
    }
    assert_eq!(
        remote.send_raw(r, ep, b"x", Some(Duration::ZERO)),
        Err(Error::Timeout)
    );
    drop(held);
    host.poll().unwrap();
    remote.send_raw(r, ep, b"x", Some(Duration::ZERO)).unwrap();
}

/// An unsent transmit buffer dropped by the caller goes back to the pool.
#[test]
fn dropped_transmit_buffer_is_not_lost() {
    let (mut host, _remote) = pair(4);
    let ep = host.create_endpoint("me", None).unwrap();
    let bufs: Vec<_> = (0..lendable(4))
        .map(|_| host.tx_buf(Some(Duration::ZERO)).unwrap())
        .collect();
    assert!(matches!(
        host.tx_buf(Some(Duration::ZERO)),
        Err(Error::Timeout)
    ));
    drop(bufs);
    for _ in 0..cap(4) {
        host.send_raw(ep, 1024, b"ok", Some(Duration::ZERO))
            .unwrap();
    }
}

/// A message for an address nobody bound is dropped and counted, as Linux does
/// ("msg received with no recipient"); the buffer goes back to the remote.
#[test]
fn message_without_recipient_is_dropped() {
    let (mut host, mut remote) = pair(4);
    let r = remote.create_endpoint("r", None).unwrap();
    for _ in 0..10 {
        remote.send_raw(r, 4000, b"nobody", T).unwrap();
        host.poll().unwrap();
    }
    assert_eq!(host.stats().no_endpoint, 10);
}

/// A receive buffer smaller than the message gives `Truncated` with the full length, and
/// the message is consumed (like a short read on /dev/rpmsgN).
#[test]
fn short_receive_buffer_truncates() {
    let (mut host, mut remote) = pair(4);
    let ep = host.create_endpoint("me", None).unwrap();
    let r = remote.create_endpoint("r", None).unwrap();
    remote
        .send_raw(r, ep, &[1; 100], Some(Duration::ZERO))
        .unwrap();
    let mut small = [0u8; 10];
    assert_eq!(
        host.recv_from(
            &Channel::new(ep, RPMSG_ADDR_ANY),
            &mut small,
            Some(Duration::ZERO)
        ),
        Err(Error::Truncated { len: 100 })
    );
    assert_eq!(small, [1; 10]);
    assert_eq!(
        host.recv_from(
            &Channel::new(ep, RPMSG_ADDR_ANY),
            &mut small,
            Some(Duration::ZERO)
        ),
        Err(Error::Timeout)
    );
}

/// Messages for two endpoints are kept apart, in order, whichever endpoint is read first.
#[test]
fn messages_are_demultiplexed_by_endpoint() {
    let (mut host, mut remote) = pair(16);
    let a = host.create_endpoint("a", None).unwrap();
    let b = host.create_endpoint("b", None).unwrap();
    let r = remote.create_endpoint("r", None).unwrap();
    for i in 0..6u8 {
        remote
            .send_raw(
                r,
                if i % 2 == 0 { a } else { b },
                &[i],
                Some(Duration::ZERO),
            )
            .unwrap();
    }
    let mut buf = [0u8; 8];
    for want in [1u8, 3, 5] {
        host.recv_from(
            &Channel::new(b, RPMSG_ADDR_ANY),
            &mut buf,
            Some(Duration::ZERO),
        )
        .unwrap();
        assert_eq!(buf[0], want);
    }
    for want in [0u8, 2, 4] {
        host.recv_from(
            &Channel::new(a, RPMSG_ADDR_ANY),
            &mut buf,
            Some(Duration::ZERO),
        )
        .unwrap();
        assert_eq!(buf[0], want);
    }
}

/// When the host goes away (its bus resets the device status), the remote's blocking
/// calls return `PeerGone` instead of hanging.
#[test]
fn host_reset_is_peer_gone_for_remote() {
    let (host, mut remote) = pair(4);
    remote.create_endpoint("r", None).unwrap();
    drop(host);
    assert_eq!(remote.recv_any_with(T, |_| ()), Err(Error::PeerGone));
}

/// A remote that never answers turns a blocking receive into `Timeout` after the
/// configured default, in every wait mode.
#[test]
fn silent_remote_times_out_in_every_mode() {
    for mode in [
        WaitMode::Event,
        WaitMode::Poll,
        WaitMode::Adaptive(Duration::from_micros(50)),
    ] {
        let (mut host, _remote) = pair(4);
        host.set_wait_mode(mode);
        host.set_timeout(Some(Duration::from_millis(200)));
        let ep = host.create_endpoint("me", None).unwrap();
        let t0 = Instant::now();
        assert_eq!(
            host.recv_from(
                &Channel::new(ep, RPMSG_ADDR_ANY),
                &mut [0; 16],
                Some(Duration::from_secs(1))
            ),
            Err(Error::Timeout),
            "{mode:?}"
        );
        let dt = t0.elapsed();
        assert!(
            dt >= Duration::from_millis(195) && dt < Duration::from_secs(2),
            "{mode:?}: {dt:?}"
        );
    }
}

/// remoteproc's write-back, as Linux does it: after set-up the table's vdev holds the
/// accepted features in `gfeatures` and ACKNOWLEDGE|DRIVER|DRIVER_OK (0x7: no FEATURES_OK
/// for a device without VIRTIO_F_VERSION_1, `virtio_features_ok()`) in `status` (byte 24
/// of the entry), with `config_len` and the vring count untouched — so a
/// Linux host or an OpenAMP remote reads them where `struct fw_rsc_vdev` puts them.
#[test]
fn host_writes_back_status_and_features_into_the_kernel_fields() {
    let link = Carveout::with_buffers(8);
    let (hb, _rb) = ThreadBell::pair();
    let _host = HostBus::new(
        Arc::clone(&link.mem),
        hb,
        &link.map,
        link.rsc,
        HostConfig::default(),
    )
    .unwrap();
    let mut raw = vec![0u8; link.rsc.len];
    intercore::SharedMemory::read(&*link.mem, link.rsc.offset, &mut raw);
    let t = intercore::wire::rsc::ResourceTable::validate(&raw).unwrap();
    let v = t.find_vdev(7).unwrap().unwrap();
    assert_eq!(v.vdev.status, 0x07, "ACKNOWLEDGE | DRIVER | DRIVER_OK");
    assert_eq!(
        v.vdev.gfeatures.get(),
        v.vdev.dfeatures.get() & intercore::rpmsg::SUPPORTED_FEATURES
    );
    assert_eq!(v.vdev.config_len.get(), 0);
    assert_eq!(v.vdev.num_of_vrings, 2);
}

/// Issues 12 and 19: an endpoint whose application never reads holds at most its limit of
/// receive buffers in place (default three quarters); past it, its messages are copied out
/// of the ring (as Linux copies every message into a per-endpoint queue) and their buffers
/// go back at once, so another endpoint keeps receiving and nothing is lost.
#[test]
fn a_non_reading_endpoint_cannot_starve_the_others() {
    let (mut host, mut remote) = pair(8);
    let lazy = host.create_endpoint("lazy", None).unwrap();
    let busy = host.create_endpoint("busy", None).unwrap();
    let r = remote.create_endpoint("r", None).unwrap();
    for i in 0..20u32 {
        remote
            .send_raw(r, lazy, &i.to_le_bytes(), Some(Duration::ZERO))
            .unwrap();
        host.poll().unwrap();
    }
    let stats = host.stats();
    // Inline: every time the 4 slots are all taken, the queued messages are copied out.
    let copied = if INLINE { 20 } else { 14 };
    assert_eq!(
        (stats.held_copied, stats.held_dropped),
        (copied, 0),
        "6 held in place (3/4 of 8), 14 copied out (split ring)"
    );
    for i in 0..20u32 {
        remote
            .send_raw(r, busy, &i.to_le_bytes(), Some(Duration::ZERO))
            .unwrap();
        let mut b = [0u8; 4];
        assert_eq!(
            host.recv_from(
                &Channel::new(busy, RPMSG_ADDR_ANY),
                &mut b,
                Some(Duration::ZERO)
            )
            .unwrap(),
            (Some(r), 4)
        );
        assert_eq!(b, i.to_le_bytes());
    }
    // The lazy endpoint has all twenty, in order: six in place, then the copies.
    for i in 0..20u32 {
        let m = host
            .recv_buf(&Channel::new(lazy, RPMSG_ADDR_ANY), Some(Duration::ZERO))
            .unwrap();
        // The copy path for untrusted data: one copy out of shared memory.
        let mut copy = [0u8; 8];
        assert_eq!(m.copy_to(&mut copy), 4);
        assert_eq!(&copy[..4], &i.to_le_bytes());
        assert_eq!(m.src(), r);
    }
    assert_eq!(
        host.recv_buf(&Channel::new(lazy, RPMSG_ADDR_ANY), Some(Duration::ZERO))
            .unwrap_err(),
        Error::Timeout
    );
}

fn announce_raw(remote: &mut Remote, name: &[u8], addr: u32, flags: u32) {
    let mut m = [0u8; 40];
    m[..name.len()].copy_from_slice(name);
    m[32..36].copy_from_slice(&addr.to_le_bytes());
    m[36..].copy_from_slice(&flags.to_le_bytes());
    remote
        .send_raw(addr.max(1024), 53, &m, Some(Duration::ZERO))
        .unwrap();
}

/// Issue 12: announcements for 53 (the name service) and 0xFFFFFFFF are refused and
/// counted; the rest of 0..1023, 0 included, is accepted (TI firmware announces there and
/// Linux's rpmsg_ns_cb accepts any address); the table is bounded (overflow counted) and a
/// destroy frees a slot.
#[test]
fn name_service_refuses_reserved_and_is_bounded() {
    let cfg = HostConfig {
        max_services: 3,
        ..HostConfig::default()
    };
    let (mut host, mut remote) = pair_with(16, cfg);
    announce_raw(&mut remote, b"ns", 53, 0);
    announce_raw(&mut remote, b"any", u32::MAX, 0);
    announce_raw(&mut remote, b"zero", 0, 0);
    announce_raw(&mut remote, b"ti", 13, 0);
    announce_raw(&mut remote, b"dyn", 1030, 0);
    announce_raw(&mut remote, b"extra", 1031, 0);
    announce_raw(&mut remote, b"dyn", 1032, 0); // re-announced: updated, not a new slot
    host.poll().unwrap();
    let s = host.stats();
    assert_eq!((s.ns_refused, s.ns_overflow), (2, 1));
    assert_eq!(host.service("zero"), Some(0));
    assert_eq!(host.service("ti"), Some(13));
    assert_eq!(host.service("dyn"), Some(1032));
    assert_eq!(host.service("extra"), None);
    assert_eq!(host.services().len(), 3);
    announce_raw(&mut remote, b"zero", 0, 1);
    announce_raw(&mut remote, b"extra", 1031, 0);
    host.poll().unwrap();
    assert_eq!(host.service("zero"), None);
    assert_eq!(host.service("extra"), Some(1031));
}

/// 100 000 announcements of distinct names against the default cap: bounded memory, no
/// scan per announcement (issue 12 measured 10 s for 200k with the old list).
#[test]
fn announcement_flood_is_bounded() {
    let (mut host, mut remote) = pair(16);
    let t = std::time::Instant::now();
    for i in 0..100_000u32 {
        let name = format!("s{i}");
        announce_raw(&mut remote, name.as_bytes(), 2000 + i, 0);
        if i % 8 == 7 {
            host.poll().unwrap();
        }
    }
    host.poll().unwrap();
    assert_eq!(host.services().len(), 64);
    assert_eq!(host.stats().ns_overflow, 100_000 - 64);
    eprintln!("100k announcements in {:?}", t.elapsed());
}
