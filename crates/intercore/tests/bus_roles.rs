//! What the two bus roles share and what the remote gained with it: the reply path (a
//! message and a host buffer together, answered in place), per-endpoint receive, the one
//! "nothing yet" convention, and a remote that goes back to waiting when the host resets
//! the device instead of staying dead.

use intercore::rpmsg::Channel;
use intercore::rpmsg::RPMSG_ADDR_ANY;
use intercore::rpmsg::RemoteConfig;
use intercore::rpmsg::layout::VRING_ALIGN;
use intercore::rpmsg::{EndpointAddr, HostBus, HostConfig, RemoteBus};
use intercore::testing::{Carveout, HeapMem, ThreadBell};
use intercore::virtq::VringLayout;
use intercore::{Error, SharedMemory, WaitMode};
use std::sync::Arc;
use std::time::Duration;

type Host = HostBus<Arc<HeapMem>, ThreadBell>;
type Remote<const N: usize> = RemoteBus<Arc<HeapMem>, ThreadBell, N>;

const T: Option<Duration> = Some(Duration::from_secs(5));
const NUM: u16 = 8;

fn pair<const N: usize>() -> (Carveout, Host, Remote<N>) {
    let link = Carveout::with_buffers(NUM);
    let (hb, rb) = ThreadBell::pair();
    let host = HostBus::new(
        Arc::clone(&link.mem),
        hb,
        &link.map,
        link.rsc,
        HostConfig::default(),
    )
    .unwrap();
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

/// The remote answers in the host buffer lent with the message: the reply comes from the
/// endpoint the message was sent to, to its sender, with the bytes written in place.
#[test]
fn reply_path_answers_in_place() {
    let (_link, mut host, mut remote) = pair::<8>();
    let r = remote.create_endpoint("svc", None).unwrap();
    let h = host.create_endpoint("client", None).unwrap();
    for i in 0..20u8 {
        host.send_raw(h, r, &[i; 7], Some(Duration::from_secs(1)))
            .unwrap();
        let got = remote
            .recv_reply_any_with(T, |m, reply| {
                assert_eq!((m.src, m.dst, m.payload), (h, r, &[i; 7][..]));
                assert_eq!(reply.len(), 512 - 16, "the whole host buffer is lent");
                reply[..3].copy_from_slice(&[i, i + 1, i + 2]);
                reply.send(3).unwrap();
                m.payload.len()
            })
            .unwrap();
        assert_eq!(got, 7);
        let mut buf = [0u8; 16];
        assert_eq!(
            host.recv_from(
                &Channel::new(h, RPMSG_ADDR_ANY),
                &mut buf,
                Some(Duration::from_secs(1))
            )
            .unwrap(),
            (Some(r), 3)
        );
        assert_eq!(&buf[..3], &[i, i + 1, i + 2]);
    }
    let s = remote.stats();
    assert_eq!((s.received, s.sent), (20, 20));
}

/// A reply longer than the lent buffer is refused and nothing is sent; a message
/// answered with nothing leaves the host buffer to the next reply.
#[test]
fn reply_too_long_or_absent_sends_nothing() {
    let (_link, mut host, mut remote) = pair::<8>();
    let r = remote.create_endpoint("svc", None).unwrap();
    let h = host.create_endpoint("client", None).unwrap();
    host.send_raw(h, r, b"a", Some(Duration::from_secs(1)))
        .unwrap();
    remote
        .recv_reply_any_with(T, |_, reply| {
            assert_eq!(
                reply.send(497),
                Err(Error::MessageTooLarge { len: 497, max: 496 })
            );
        })
        .unwrap();
    host.send_raw(h, r, b"b", Some(Duration::from_secs(1)))
        .unwrap();
    remote
        .recv_reply_any_with(T, |_, reply| {
            reply.send(1).unwrap();
            reply.cancel();
        })
        .unwrap();
    assert_eq!(
        host.recv_from(
            &Channel::new(h, RPMSG_ADDR_ANY),
            &mut [0; 8],
            Some(Duration::ZERO)
        ),
        Err(Error::Timeout)
    );
    assert_eq!(remote.stats().sent, 0);
    host.send_raw(h, r, b"c", Some(Duration::from_secs(1)))
        .unwrap();
    remote
        .recv_reply_any_with(T, |m, reply| reply.send_copy(m.payload).unwrap())
        .unwrap();
    let mut buf = [0u8; 8];
    assert_eq!(
        host.recv_from(
            &Channel::new(h, RPMSG_ADDR_ANY),
            &mut buf,
            Some(Duration::from_secs(1))
        )
        .unwrap(),
        (Some(r), 1)
    );
    assert_eq!(buf[0], b'c');
}

/// "Nothing yet" is `Timeout` on both roles (a zero timeout does not wait). Without a host buffer to answer in, the
/// reply path takes no message: it stays for a plain receive.
#[test]
fn nothing_yet_is_would_block_and_the_reply_path_needs_a_host_buffer() {
    let (_link, mut host, mut remote) = pair::<8>();
    let r = remote.create_endpoint("svc", None).unwrap();
    let h = host.create_endpoint("client", None).unwrap();
    assert_eq!(
        host.recv_from(
            &Channel::new(h, RPMSG_ADDR_ANY),
            &mut [0; 8],
            Some(Duration::ZERO)
        ),
        Err(Error::Timeout)
    );
    assert_eq!(
        remote.recv_any_with(Some(Duration::ZERO), |_| ()),
        Err(Error::Timeout)
    );
    assert_eq!(
        remote.recv_any_with(Some(Duration::ZERO), |m| (
            m.src,
            m.dst,
            intercore::copy_from_shared(m.payload, &mut [0; 8])
        )),
        Err(Error::Timeout)
    );
    assert_eq!(
        remote.recv_reply_any_with(Some(Duration::ZERO), |_, _| ()),
        Err(Error::Timeout)
    );
    // Fill every host receive buffer; the host does not read them.
    for i in 0..NUM {
        remote
            .send_raw(r, h, &[i as u8], Some(Duration::ZERO))
            .unwrap();
    }
    assert_eq!(
        remote.send_raw(r, h, b"x", Some(Duration::ZERO)),
        Err(Error::Timeout)
    );
    host.send_raw(h, r, b"question", Some(Duration::ZERO))
        .unwrap();
    assert_eq!(
        remote.recv_reply_any_with(Some(Duration::ZERO), |_, _| ()),
        Err(Error::Timeout)
    );
    assert_eq!(
        remote.recv_reply_any_with(Some(Duration::from_millis(50)), |_, _| ()),
        Err(Error::Timeout)
    );
    let mut buf = [0u8; 16];
    assert_eq!(
        remote.recv_any_with(Some(Duration::ZERO), |m| (
            m.src,
            m.dst,
            intercore::copy_from_shared(m.payload, &mut buf)
        )),
        Ok((h, r, 8))
    );
    assert_eq!(&buf[..8], b"question");
}

/// Messages for an endpoint nobody is reading are held for it (in their buffers, in
/// order) while another endpoint is read; past `N` held they are returned unread and
/// counted. Destroying an endpoint gives back what was held for it.
#[test]
fn per_endpoint_receive_holds_the_others_messages() {
    let (_link, mut host, mut remote) = pair::<3>();
    let a = remote.create_endpoint("a", None).unwrap();
    let b = remote.create_endpoint("b", None).unwrap();
    let h = host.create_endpoint("client", None).unwrap();
    for m in [b"a1", b"a2", b"b1", b"a3", b"a4", b"b2"] {
        let dst = if m[0] == b'a' { a } else { b };
        host.send_raw(h, dst, m, Some(Duration::from_secs(1)))
            .unwrap();
    }
    let on = |remote: &mut Remote<3>, ep: u32| {
        remote
            .recv_with(&Channel::new(ep, RPMSG_ADDR_ANY), T, |m| {
                (m.dst, m.payload.to_vec())
            })
            .unwrap()
    };
    assert_eq!(on(&mut remote, b), (b, b"b1".to_vec()));
    // a1, a2 held; a3 held (the third); a4 found no room.
    assert_eq!(on(&mut remote, b), (b, b"b2".to_vec()));
    assert_eq!(remote.stats().held_dropped, 1);
    let next =
        |remote: &mut Remote<3>| remote.recv_any_with(Some(Duration::ZERO), |m| m.payload.to_vec());
    assert_eq!(next(&mut remote).unwrap(), b"a1");
    assert_eq!(
        remote
            .recv_reply_with(
                &Channel::new(a, RPMSG_ADDR_ANY),
                Some(Duration::ZERO),
                |m, reply| {
                    reply.send_copy(m.payload).unwrap();
                    m.payload.to_vec()
                }
            )
            .unwrap(),
        b"a2"
    );
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
    // Destroying `a` returns a3 to the host; nothing is left.
    remote.destroy_endpoint(EndpointAddr(a)).unwrap();
    assert_eq!(next(&mut remote), Err(Error::Timeout));
    assert_eq!(
        remote.recv_with(
            &Channel::new(a, RPMSG_ADDR_ANY),
            Some(Duration::ZERO),
            |_| ()
        ),
        Err(Error::NoSuchEndpoint(a))
    );
    // Every host transmit buffer came back: the host can fill the ring again.
    for _ in 0..NUM {
        host.send_raw(h, b, b"again", Some(Duration::ZERO)).unwrap();
    }
}

/// A host that hands out the same memory as a transmit and a receive buffer breaks the
/// protocol: the reply path refuses to make two views of it (sticky).
#[test]
fn reply_path_refuses_aliased_buffers() {
    let (link, mut host, mut remote) = pair::<8>();
    let r = remote.create_endpoint("svc", None).unwrap();
    let h = host.create_endpoint("client", None).unwrap();
    host.send_raw(h, r, b"x", Some(Duration::ZERO)).unwrap();
    // Receive buffer 0 (vring 0, descriptor 0) now points at transmit buffer 0.
    let l = VringLayout::new(NUM as u32, VRING_ALIGN).unwrap();
    let tx0 = 0xA000_0000 + link.layout.buffers as u64 + NUM as u64 * 512;
    link.mem
        .write(link.layout.vring0 + l.desc(0), &tx0.to_le_bytes());
    let e = remote
        .recv_reply_any_with(Some(Duration::ZERO), |_, _| ())
        .unwrap_err();
    assert!(matches!(e, Error::Protocol { .. }), "{e:?}");
    assert_eq!(
        remote.recv_any_with(Some(Duration::ZERO), |_| ()),
        Err(e),
        "sticky"
    );
}

/// A host that resets the device (drops its bus) sends the remote back to waiting:
/// `PeerGone` from then on, no panic; a new host over the same memory negotiates again
/// and the remote attaches to it with its endpoints kept.
#[test]
fn remote_waits_again_after_a_reset() {
    let link = Carveout::with_buffers(NUM);
    // The host's doorbell outlives each host bus (a new host process would come with a
    // doorbell of its own; the remote's side stays the same).
    let (hb, rb) = ThreadBell::pair();
    let hb: &'static ThreadBell = Box::leak(Box::new(hb));
    let new_host = || {
        HostBus::new(
            Arc::clone(&link.mem),
            hb,
            &link.map,
            link.rsc,
            HostConfig::default(),
        )
        .unwrap()
    };
    let host = new_host();
    let mut remote: Remote<8> = RemoteBus::new(
        Arc::clone(&link.mem),
        rb,
        &link.map,
        link.rsc,
        RemoteConfig::default().wait(WaitMode::Poll),
    )
    .unwrap();
    remote.wait_ready(T).unwrap();
    let r = remote.create_endpoint("svc", None).unwrap();
    let mut host = host;
    let c = host.create_endpoint("host-svc", None).unwrap();
    host.announce(c).unwrap();
    assert_eq!(
        remote.recv_any_with(Some(Duration::ZERO), |_| ()),
        Err(Error::Timeout)
    );
    assert_eq!(remote.host_service("host-svc"), Some(c));
    drop(host);
    assert_eq!(
        remote.recv_any_with(Some(Duration::ZERO), |_| ()),
        Err(Error::PeerGone)
    );
    assert!(!remote.is_ready());
    assert_eq!(remote.host_service("host-svc"), None, "went with its host");
    assert_eq!(
        remote.send_raw(r, 1024, b"x", Some(Duration::ZERO)),
        Err(Error::PeerGone)
    );
    assert_eq!(
        remote.recv_reply_any_with(T, |_, _| ()),
        Err(Error::PeerGone)
    );
    let mut host = new_host();
    remote.wait_ready(T).unwrap();
    assert!(remote.is_ready());
    remote.announce(r).unwrap();
    assert_eq!(host.find_service("svc", T).unwrap(), r);
    let h = host.create_endpoint("client", None).unwrap();
    host.send_raw(h, r, b"hello", Some(Duration::from_secs(1)))
        .unwrap();
    remote
        .recv_reply_any_with(T, |m, reply| reply.send_copy(m.payload).unwrap())
        .unwrap();
    let mut buf = [0u8; 8];
    assert_eq!(
        host.recv_from(
            &Channel::new(h, RPMSG_ADDR_ANY),
            &mut buf,
            Some(Duration::from_secs(1))
        )
        .unwrap(),
        (Some(r), 5)
    );
}
