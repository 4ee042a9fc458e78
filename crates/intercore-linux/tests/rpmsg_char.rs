//! The kernel rpmsg transport (`KernelRpmsg`) against a fake of the kernel's rpmsg
//! character devices (`intercore_linux::rpmsg_char::fake`: a fake sysfs tree and
//! `SOCK_SEQPACKET` endpoint "devices" served by remote threads), and one application
//! written against `Transport` running unchanged over intercore's own bus and the kernel
//! transport. Each test names the kernel behaviour it follows. Nothing here touches the
//! real /sys or /dev.

use intercore::Error;
use intercore::rpmsg::{Channel, HostBus, HostConfig, MessageIo, RemoteBus, Transport};
use intercore::testing::{Carveout, HeapMem, ThreadBell};
use intercore::{WaitMode, wire::rpmsg::RPMSG_ADDR_ANY};
use intercore_linux::rpmsg_char::fake::{Behavior, FakeRpmsgKernel};
use intercore_linux::rpmsg_char::{
    DEFAULT_MAX_PAYLOAD, KernelRpmsg, LOCAL_UNKNOWN, MAX_PARKED, RpmsgCharError, RpmsgPaths,
};
use intercore_linux::sys::Epoll;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

const T: Option<Duration> = Some(Duration::from_secs(5));

fn kernel_with_echo() -> (FakeRpmsgKernel, KernelRpmsg) {
    let k = FakeRpmsgKernel::new();
    k.announce("echo", 1024, Behavior::Echo);
    let t = k.transport().expect("fake control device");
    (k, t)
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// rpmsg_ctrl.c: without a control device node there is nothing to talk to; the error
/// names the kernel options (CONFIG_RPMSG_CHAR, CONFIG_RPMSG_CTRL from 5.18), says the
/// remote must be running, and lists the control devices that do exist. Runs the real
/// `open(2)` against an empty directory, then the fake with a wrong control device.
#[test]
fn missing_control_device_names_the_kernel_options() {
    let dir = std::env::temp_dir().join(format!("intercore-rpmsg-none-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("dev")).unwrap();
    let e = KernelRpmsg::open(&RpmsgPaths::under(&dir)).unwrap_err();
    assert!(matches!(e, RpmsgCharError::NoCtrl { .. }), "{e:?}");
    let msg = e.to_string();
    for want in [
        "CONFIG_RPMSG_CHAR",
        "CONFIG_RPMSG_CTRL",
        "5.18",
        "running",
        "rpmsg_ctrl0",
    ] {
        assert!(msg.contains(want), "{want:?} missing from: {msg}");
    }
    std::fs::remove_dir_all(&dir).unwrap();

    let k = FakeRpmsgKernel::new();
    let paths = RpmsgPaths {
        ctrl: "rpmsg_ctrl3".into(),
        ..k.paths()
    };
    let msg = k.transport_with(&paths).unwrap_err().to_string();
    assert!(
        msg.contains("rpmsg_ctrl3") && msg.contains("present: rpmsg_ctrl0"),
        "{msg}"
    );
}

/// Device nodes are root-only by default: EACCES on the control device says to run as
/// root or add a udev rule for the rpmsg subsystem.
#[test]
fn permission_denied_says_root_or_udev() {
    let k = FakeRpmsgKernel::new();
    k.deny_access(true);
    let e = k.transport().unwrap_err();
    assert!(
        matches!(e, RpmsgCharError::PermissionDenied { .. }),
        "{e:?}"
    );
    let msg = e.to_string();
    assert!(msg.contains("EACCES") && msg.contains("root"), "{msg}");
    k.deny_access(false);
    k.transport().unwrap();
}

/// rpmsg_core.c: announced channels are /sys/bus/rpmsg/devices/<vdev>.<name>.<src>.<dst>
/// with `name` and `dst` ("0x%x"); the bus's own rpmsg_ns (53) and rpmsg_ctrl devices are
/// not services; channels of another virtio device (another remote core) are not
/// reachable through this control device. sysfs gives no notification, so a late
/// announcement is found by re-reading within the timeout.
#[test]
fn finds_services_of_its_own_remote_and_waits_for_late_ones() {
    let k = FakeRpmsgKernel::new();
    let mut t = k.transport().unwrap();
    k.announce("rpmsg-raw", 0x401, Behavior::Echo);
    k.announce_on_other_core("rpmsg-raw", 0x400);
    k.announce_on_other_core("elsewhere", 0x405);
    assert_eq!(t.find_service("rpmsg-raw", T).unwrap(), 0x401);
    let names: Vec<String> = t.services().unwrap().into_iter().map(|s| s.name).collect();
    assert_eq!(names, ["rpmsg-raw"]);
    let t0 = Instant::now();
    assert_eq!(
        t.find_service("elsewhere", Some(Duration::from_millis(50))),
        Err(Error::Timeout)
    );
    assert!(t0.elapsed() >= Duration::from_millis(50));
    assert_eq!(
        t.find_service("rpmsg_ns", Some(Duration::ZERO)),
        Err(Error::Timeout)
    );

    let k = Arc::new(k);
    let late = {
        let k = Arc::clone(&k);
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(60));
            k.announce("late", 1030, Behavior::Echo);
        })
    };
    let t0 = Instant::now();
    assert_eq!(t.find_service("late", T).unwrap(), 1030);
    assert!(t0.elapsed() < Duration::from_secs(1), "{:?}", t0.elapsed());
    late.join().unwrap();
}

/// rpmsg_char.c: one message per write(2) and per read(2), boundaries kept, up to the
/// 496-byte payload of 512-byte buffers; the endpoint device is created by the control
/// device's ioctl, found in sysfs (name/src/dst, src "-1" for RPMSG_ADDR_ANY) and opened.
#[test]
fn echo_one_message_per_call() {
    let (k, mut t) = kernel_with_echo();
    let remote = t.find_service("echo", T).unwrap();
    let ch = t.open("intercore-test", remote).unwrap();
    let dev = t.endpoint_device(&ch).unwrap();
    assert!(dev.exists(), "{}", dev.display());
    let devs = k.endpoint_devices();
    assert_eq!(devs.len(), 1);
    let (m, ref name, src, dst, open) = devs[0];
    assert_eq!(
        (name.as_str(), src, dst, open),
        ("intercore-test", RPMSG_ADDR_ANY, 1024, true)
    );
    let attr = |a: &str| {
        std::fs::read_to_string(k.paths().class_dir().join(format!("rpmsg{m}")).join(a)).unwrap()
    };
    assert_eq!(attr("src"), "-1\n");
    assert_eq!(attr("dst"), "1024\n");
    assert_eq!(t.max_payload(), DEFAULT_MAX_PAYLOAD);
    // Several messages in flight, then read back: boundaries preserved.
    let sizes = [1usize, 2, 100, 495, 496, 7];
    for (i, &n) in sizes.iter().enumerate() {
        t.send(&ch, &pattern(n, i as u8), T).unwrap();
    }
    let mut buf = [0u8; 1024];
    for (i, &n) in sizes.iter().enumerate() {
        let got = t.recv(&ch, &mut buf, T).unwrap();
        assert_eq!(got, n);
        assert_eq!(&buf[..n], &pattern(n, i as u8)[..]);
    }
    t.close(ch).unwrap();
    assert!(k.refusals().is_empty(), "{:?}", k.refusals());
}

/// virtio_rpmsg_bus.c refuses payloads above buffer size − 16 (EMSGSIZE); the transport
/// refuses them before writing, so the kernel never sees one.
#[test]
fn oversized_message_refused_before_write() {
    let (k, mut t) = kernel_with_echo();
    let ch = t.open("big", 1024).unwrap();
    assert_eq!(
        t.send(&ch, &[0u8; 497], T),
        Err(Error::MessageTooLarge { len: 497, max: 496 })
    );
    assert!(k.refusals().is_empty(), "{:?}", k.refusals());
    // A kernel with smaller buffers than configured: its EMSGSIZE is reported the same way.
    t.set_max_payload(1000);
    assert!(matches!(
        t.send(&ch, &[0u8; 600], T),
        Err(Error::MessageTooLarge { len: 600, .. })
    ));
    assert_eq!(k.refusals().len(), 1);
}

/// rpmsg_eptdev_read_iter copies min(count, skb->len) and frees the skb: a short read
/// truncates the message and the rest is lost. The transport reads into a scratch buffer
/// larger than any message, so it reports Truncated with the full length; the next
/// message is intact.
#[test]
fn short_buffer_truncates_and_reports_length() {
    let (_k, mut t) = kernel_with_echo();
    let ch = t.open("trunc", 1024).unwrap();
    t.send(&ch, &pattern(300, 1), T).unwrap();
    t.send(&ch, &pattern(20, 2), T).unwrap();
    let mut small = [0u8; 100];
    assert_eq!(
        t.recv(&ch, &mut small, T),
        Err(Error::Truncated { len: 300 })
    );
    assert_eq!(&small[..], &pattern(300, 1)[..100]);
    let mut buf = [0u8; 512];
    assert_eq!(t.recv(&ch, &mut buf, T), Ok(20));
    assert_eq!(&buf[..20], &pattern(20, 2)[..]);
}

/// rpmsg_eptdev_write_iter with O_NONBLOCK uses rpmsg_trysendto: no free transmit buffer
/// gives EAGAIN; virtio_rpmsg_bus reports no POLLOUT, so the wait is bounded retries, and
/// a send against a remote that stopped reading ends in Timeout near the deadline
/// (never the kernel's 15 s blocking wait). Receiving with nothing queued times out too.
#[test]
fn full_transmit_side_times_out_without_pollout() {
    let k = FakeRpmsgKernel::new();
    k.announce("stuck", 1100, Behavior::Stalled);
    let mut t = k.transport().unwrap();
    let ch = t.open("host", 1100).unwrap();
    let msg = [0x5au8; 200];
    let mut sent = 0;
    loop {
        match t.send(&ch, &msg, Some(Duration::ZERO)) {
            Ok(()) => sent += 1,
            Err(Error::Timeout) => break,
            Err(e) => panic!("{e}"),
        }
        assert!(sent < 10_000, "the transmit side never filled");
    }
    assert!(sent > 0);
    let t0 = Instant::now();
    assert_eq!(
        t.send(&ch, &msg, Some(Duration::from_millis(30))),
        Err(Error::Timeout)
    );
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_millis(30) && took < Duration::from_millis(500),
        "{took:?}"
    );
    let mut buf = [0u8; 64];
    let t0 = Instant::now();
    assert_eq!(
        t.recv(&ch, &mut buf, Some(Duration::from_millis(30))),
        Err(Error::Timeout)
    );
    assert!(t0.elapsed() >= Duration::from_millis(30));
}

/// rpmsg_eptdev_open: one open per endpoint device, a second gets EBUSY. When another
/// process takes the device we just created (a race), opening says so clearly.
#[test]
fn exclusive_open_busy_is_a_clear_error() {
    let (k, mut t) = kernel_with_echo();
    k.steal_next_endpoint();
    let e = t.open_endpoint("svc", None, 1024).unwrap_err();
    assert!(matches!(e, RpmsgCharError::Busy { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(
        msg.contains("EBUSY") && msg.contains("another process"),
        "{msg}"
    );
    // Through the Transport API: the errno.
    k.steal_next_endpoint();
    assert_eq!(t.open("svc", 1024), Err(Error::Os(libc::EBUSY)));
    // Without the race the same request works.
    let ch = t.open("svc", 1024).unwrap();
    t.send(&ch, b"x", T).unwrap();
}

/// When the remote stops, rpmsg_ctrldev_remove destroys every endpoint device
/// (rpmsg_chrdev_eptdev_destroy): a blocked reader wakes with EPIPE, later writes get
/// EPIPE, poll gives POLLERR — all PeerGone. Closing afterwards must not destroy the
/// device a second time.
#[test]
fn remote_gone_is_peer_gone() {
    let (k, mut t) = kernel_with_echo();
    let ch = t.open("host", 1024).unwrap();
    let k = Arc::new(k);
    let stopper = {
        let k = Arc::clone(&k);
        thread::spawn(move || {
            thread::sleep(Duration::from_millis(50));
            k.stop_remote();
        })
    };
    let mut buf = [0u8; 64];
    let t0 = Instant::now();
    assert_eq!(t.recv(&ch, &mut buf, T), Err(Error::PeerGone));
    assert!(t0.elapsed() < Duration::from_secs(2));
    stopper.join().unwrap();
    assert_eq!(t.send(&ch, b"hello", T), Err(Error::PeerGone));
    assert_eq!(t.open("again", 1024), Err(Error::PeerGone));
    t.close(ch).unwrap();
    assert!(k.refusals().is_empty(), "{:?}", k.refusals());
}

/// close(2) destroys only the endpoint; RPMSG_DESTROY_EPT_IOCTL removes /dev/rpmsgM and
/// its sysfs entry, so close() issues it and dropping the transport does so for every
/// channel still open. The device number is then reused (IDA), and the fake's log shows
/// the destroy before the close.
#[test]
fn close_and_drop_destroy_endpoint_devices() {
    let (k, mut t) = kernel_with_echo();
    let a = t.open("a", 1024).unwrap();
    let b = t.open("b", 1024).unwrap();
    let dev_a = t.endpoint_device(&a).unwrap();
    assert_eq!(k.endpoint_devices().len(), 2);
    t.close(a).unwrap();
    assert!(!dev_a.exists());
    assert_eq!(t.close(a), Err(Error::NoSuchEndpoint(a.local)));
    let c = t.open("c", 1024).unwrap();
    assert_eq!(
        t.endpoint_device(&c).unwrap(),
        dev_a,
        "lowest free number reused"
    );
    t.send(&b, b"still here", T).unwrap();
    drop(t);
    assert!(k.endpoint_devices().is_empty());
    let log = k.log();
    let destroy = log.iter().position(|l| l.starts_with("destroy")).unwrap();
    let close = log
        .iter()
        .position(|l| l.starts_with("close rpmsg"))
        .unwrap();
    assert!(destroy < close, "{log:?}");
}

/// The address virtio_rpmsg_bus binds for src = RPMSG_ADDR_ANY is reported nowhere
/// (rpmsg_char.c's `src` attribute prints the request, -1), so such a channel's `local`
/// is LOCAL_UNKNOWN | M; a fixed local address is real, visible in sysfs, and refused
/// when another endpoint device of this control device uses it.
#[test]
fn local_address_is_known_only_when_fixed() {
    let (k, mut t) = kernel_with_echo();
    let any = t.open("any", 1024).unwrap();
    assert!(any.local >= LOCAL_UNKNOWN, "{:#x}", any.local);
    let m = any.local & !LOCAL_UNKNOWN;
    assert_eq!(k.bound_address(m), Some(1024), "the kernel did bind one");
    let fixed = t.open_endpoint("fixed", Some(100), 1024).unwrap();
    assert_eq!(fixed.local, 100);
    let e = t.open_endpoint("again", Some(100), 1024).unwrap_err();
    assert!(
        matches!(e, RpmsgCharError::AddressInUse { addr: 100, .. }),
        "{e:?}"
    );
    assert!(matches!(
        t.open_endpoint("ns", Some(53), 1024),
        Err(RpmsgCharError::BadAddress { .. })
    ));
    assert!(matches!(
        t.open_endpoint("x", None, RPMSG_ADDR_ANY),
        Err(RpmsgCharError::BadAddress { .. })
    ));
    assert!(matches!(
        t.open_endpoint("a-name-that-is-longer-than-31-by", None, 1024),
        Err(RpmsgCharError::BadName(_))
    ));
    t.send(&fixed, b"from 100", T).unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(t.recv(&fixed, &mut buf, T), Ok(8));
    // A channel only talks to the remote it was opened with.
    let other = Channel {
        local: fixed.local,
        remote: 2000,
    };
    assert!(matches!(t.send(&other, b"x", T), Err(Error::Config(_))));
}

// ---- one application, two transports -----------------------------------------------------

/// An application written only against `Transport`: finds the echo service, checks round
/// trips at several sizes, truncation, the payload limit and a receive timeout, closes.
fn echo_app<Tr: Transport + ?Sized>(t: &mut Tr) -> usize {
    let remote = t.find_service("echo", T).unwrap();
    let ch = t.open("echo-client", remote).unwrap();
    let max = t.max_payload();
    let mut buf = vec![0u8; max];
    let mut n = 0;
    for (i, len) in [1, 17, 128, max].into_iter().enumerate() {
        let msg = pattern(len, i as u8);
        t.send(&ch, &msg, T).unwrap();
        assert_eq!(t.recv(&ch, &mut buf, T).unwrap(), len);
        assert_eq!(&buf[..len], &msg[..]);
        n += 1;
    }
    t.send(&ch, &pattern(64, 9), T).unwrap();
    assert_eq!(
        t.recv(&ch, &mut buf[..8], T),
        Err(Error::Truncated { len: 64 })
    );
    assert_eq!(&buf[..8], &pattern(64, 9)[..8]);
    assert_eq!(
        t.send(&ch, &vec![0; max + 1], T),
        Err(Error::MessageTooLarge { len: max + 1, max })
    );
    assert_eq!(
        t.recv(&ch, &mut buf, Some(Duration::from_millis(20))),
        Err(Error::Timeout)
    );
    t.close(ch).unwrap();
    n
}

/// The dyn-dispatched entry point an application configured at run time would use.
fn run_dyn(t: &mut dyn Transport) -> usize {
    echo_app(t)
}

type Host = HostBus<Arc<HeapMem>, ThreadBell>;
type Remote = RemoteBus<Arc<HeapMem>, ThreadBell, 8>;

/// intercore's own bus with an echo service on a remote thread (as crates/intercore's
/// rpmsg tests set it up).
fn userspace_bus() -> (Host, thread::JoinHandle<()>) {
    let (host, mut remote): (Host, Remote) = Carveout::with_buffers(16)
        .connect(HostConfig::default(), WaitMode::Event)
        .unwrap();
    let echo = thread::spawn(move || {
        let ep = remote.create_endpoint("echo", None).unwrap();
        remote.announce(ep).unwrap();
        let mut buf = [0u8; 512];
        loop {
            match remote.recv_any_with(None, |m| {
                buf[..m.payload.len()].copy_from_slice(m.payload);
                (m.src, m.payload.len())
            }) {
                Ok((src, len)) => remote.send_raw(ep, src, &buf[..len], None).unwrap(),
                Err(Error::PeerGone) => return,
                Err(e) => panic!("remote: {e}"),
            }
        }
    });
    (host, echo)
}

/// Transport's contract: the same application code, generic and through `dyn`, runs over
/// intercore's userspace bus and over the kernel's rpmsg character devices, chosen only
/// by how the transport was constructed.
#[test]
fn one_application_runs_over_both_transports() {
    let (mut bus, echo) = userspace_bus();
    assert_eq!(echo_app(&mut bus), 4);
    assert_eq!(run_dyn(&mut bus), 4);
    drop(bus);
    echo.join().unwrap();

    let (k, mut kernel) = kernel_with_echo();
    assert_eq!(echo_app(&mut kernel), 4);
    assert_eq!(run_dyn(&mut kernel), 4);
    assert!(k.endpoint_devices().is_empty(), "close destroyed them");

    // Chosen by configuration.
    let k2 = FakeRpmsgKernel::new();
    k2.announce("echo", 1024, Behavior::Echo);
    for use_kernel in [false, true] {
        let (mut t, echo): (Box<dyn Transport>, _) = if use_kernel {
            (Box::new(k2.transport().unwrap()), None)
        } else {
            let (bus, echo) = userspace_bus();
            (Box::new(bus), Some(echo))
        };
        assert_eq!(run_dyn(&mut *t), 4);
        drop(t);
        if let Some(e) = echo {
            e.join().unwrap();
        }
    }
}

/// Serving a kernel transport from one wait (what a reactor does with a `kernel` board
/// link): `post` before `watch` is refused; after it, posts that find every transmit
/// buffer with a remote that reads nothing are parked (`Ok(false)`, `has_parked`) up to
/// `MAX_PARKED`, then `Exhausted`; once the remote reads, `poll_ready` sends them, all in
/// order. A message from the remote makes the watch descriptor readable and is found by
/// `poll_ready`/`next_ready` and taken by `try_recv_owned` (then `WouldBlock`).
#[test]
fn a_watched_transport_parks_sends_and_finds_messages_from_one_descriptor() {
    let k = FakeRpmsgKernel::new();
    let ends = k.announce_external("ext", 0x500);
    let mut t = k.transport().unwrap();
    let ch = t.open("host", 0x500).unwrap();
    let mut end = ends.recv_timeout(Duration::from_secs(5)).unwrap();
    assert!(matches!(t.post(&ch, b"x"), Err(Error::NotReady(_))));
    assert!(t.watch_fd().is_none());
    t.watch().unwrap();
    let fd = t.watch_fd().unwrap().try_clone_to_owned().unwrap();
    let msg = |i: u32| i.to_le_bytes();
    let mut n = 0u32;
    while t.post(&ch, &msg(n)).unwrap() {
        n += 1;
        assert!(n < 10_000, "the transmit side never filled");
    }
    // Message n was parked.
    assert!(t.has_parked());
    let mut parked = 1;
    loop {
        match t.post(&ch, &msg(n + parked)) {
            Ok(false) => parked += 1,
            Err(Error::Exhausted(_)) => break,
            r => panic!("{r:?}"),
        }
    }
    assert_eq!(parked as usize, MAX_PARKED);
    let total = n + parked;
    let mut buf = [0u8; 496];
    for i in 0..total {
        let got = loop {
            match end.recv(&end.channel(), &mut buf, Some(Duration::ZERO)) {
                Ok(len) => break len,
                Err(Error::Timeout) => t.poll_ready().unwrap(),
                Err(e) => panic!("{e}"),
            }
        };
        assert_eq!(&buf[..got], &msg(i), "message {i}");
    }
    assert!(!t.has_parked());
    // Nothing from the remote yet: the descriptor is quiet.
    assert!(!readable(fd.as_fd()));
    end.send(&end.channel(), b"hi", None).unwrap();
    assert!(readable(fd.as_fd()));
    t.poll_ready().unwrap();
    assert_eq!(t.next_ready(), Some(ch.local));
    assert_eq!(t.next_ready(), None);
    let (from, data) = t.try_recv_owned(ch.local).unwrap();
    assert_eq!((from, &data[..]), (ch, &b"hi"[..]));
    assert_eq!(t.try_recv_owned(ch.local), Err(Error::WouldBlock));
    assert!(!readable(fd.as_fd()));
}

/// Whether `fd` is readable now, asked through an epoll of its own.
fn readable(fd: BorrowedFd<'_>) -> bool {
    let ep = Epoll::new().unwrap();
    ep.add(fd, 1).unwrap();
    ep.wait(&mut [0], Some(Duration::ZERO)).unwrap() == 1
}
