//! Issue 12: recovery of the kernel transport (`KernelRpmsg::reconnect`) against the fake
//! kernel (`rpmsg_char::fake`). Its own test binary, so the open-descriptor count is not
//! disturbed by other tests running in parallel threads.

use intercore::Error;
use intercore::rpmsg::{MessageIo, Transport};
use intercore_linux::rpmsg_char::RpmsgCharError;
use intercore_linux::rpmsg_char::fake::{Behavior, FakeRpmsgKernel};
use std::time::Duration;

const T: Option<Duration> = Some(Duration::from_secs(5));

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(7).wrapping_add(seed))
        .collect()
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// Issue 12, recovery of the kernel transport against the fake kernel: the remote stops
/// mid-traffic (every endpoint gives EPIPE → `PeerGone`, `/dev/rpmsg_ctrl0` disappears),
/// remoteproc's recovery registers the rpmsg device again with a control device of a new
/// number (`rpmsg_ctrl1`, then 2, …), the firmware re-announces its service, and
/// `reconnect` finds the new control device (same remoteproc parent, not the old node),
/// closes the dead channels and reports them for reopening; traffic continues. Ten cycles,
/// no descriptor leaked, no endpoint device left behind, no call the kernel would refuse.
#[test]
fn reconnect_after_the_remote_restarts_with_a_new_control_device() {
    let k = FakeRpmsgKernel::new();
    k.announce("rpmsg-raw", 0x400, Behavior::Echo);
    let mut t = k.transport().unwrap();
    let fds = open_fds();
    for cycle in 1..=10u32 {
        let remote = t.find_service("rpmsg-raw", T).unwrap();
        let ch = t.open("rpmsg-raw", remote).unwrap();
        let msg = pattern(64, cycle as u8);
        t.send(&ch, &msg, T).unwrap();
        let mut back = [0u8; 496];
        assert_eq!(t.recv(&ch, &mut back, T).unwrap(), 64);
        assert_eq!(&back[..64], &msg[..]);
        t.send(&ch, &msg, T).unwrap(); // in flight when the remote dies

        let new_ctrl = k.restart_remote();
        assert_eq!(new_ctrl, format!("rpmsg_ctrl{cycle}"));
        assert!(!k.paths().dev.join("rpmsg_ctrl0").exists());
        let mut buf = [0u8; 496];
        let e = loop {
            match t.recv(&ch, &mut buf, T) {
                Ok(_) => continue, // the echo of the in-flight message
                Err(e) => break e,
            }
        };
        assert_eq!(e, Error::PeerGone, "cycle {cycle}");
        assert_eq!(t.send(&ch, b"x", T), Err(Error::PeerGone));

        // The firmware comes back and announces again, at another address.
        k.announce("rpmsg-raw", 0x400 + cycle, Behavior::Echo);
        let reopen = t.reconnect(T).unwrap();
        assert_eq!(reopen, vec![("rpmsg-raw".to_string(), remote)]);
        assert_eq!(t.paths().ctrl, new_ctrl);
        assert!(t.send(&ch, b"x", T).is_err(), "old channel is closed");
        let remote = t.find_service("rpmsg-raw", T).unwrap();
        assert_eq!(remote, 0x400 + cycle);
        let ch = t.open(&reopen[0].0, remote).unwrap();
        t.send(&ch, b"again", T).unwrap();
        let n = t.recv(&ch, &mut back, T).unwrap();
        assert_eq!(&back[..n], b"again");
        t.close(ch).unwrap();
        assert!(
            k.endpoint_devices().is_empty(),
            "cycle {cycle}: devices left"
        );
    }
    assert_eq!(open_fds(), fds, "file descriptors");
    assert!(k.refusals().is_empty(), "{:?}", k.refusals());

    // No restart this time: `reconnect` gives up at its deadline with an error naming the
    // node, and the transport then reports the link as gone instead of panicking.
    k.stop_remote();
    let e = t.reconnect(Some(Duration::from_millis(50))).unwrap_err();
    assert!(matches!(e, RpmsgCharError::NoCtrl { .. }), "{e}");
    assert!(matches!(
        t.open_endpoint("rpmsg-raw", None, 0x400),
        Err(RpmsgCharError::Gone { .. })
    ));
}
