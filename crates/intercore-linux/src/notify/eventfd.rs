//! eventfd doorbells.

use super::PidFd;
use crate::sys::{self, fd::poll_readable, monotonic_now};
use intercore::{Doorbell, Error};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Duration;

/// An eventfd: a counter the kernel wakes pollers on.
#[derive(Debug)]
pub struct EventFd(OwnedFd);

impl EventFd {
    /// A new non-blocking eventfd with close-on-exec.
    pub fn new() -> io::Result<Self> {
        sys::fd::eventfd(libc::EFD_CLOEXEC | libc::EFD_NONBLOCK).map(Self)
    }

    /// Wraps a received eventfd.
    pub fn from_fd(fd: OwnedFd) -> Self {
        Self(fd)
    }

    /// Adds one to the counter, waking pollers.
    pub fn signal(&self) -> io::Result<()> {
        let one = 1u64.to_ne_bytes();
        loop {
            let e = match sys::fd::write(self.0.as_fd(), &one) {
                Ok(8) => return Ok(()),
                // An eventfd write is all 8 bytes or an error.
                Ok(_) => return Err(io::Error::from_raw_os_error(libc::EIO)),
                Err(e) => e,
            };
            match e.kind() {
                io::ErrorKind::Interrupted => continue,
                // The counter is saturated: the peer has plenty of wake-ups pending already.
                io::ErrorKind::WouldBlock => return Ok(()),
                _ => return Err(e),
            }
        }
    }

    /// Resets the counter to zero; returns whether it was non-zero.
    pub fn drain(&self) -> io::Result<bool> {
        let mut buf = [0u8; 8];
        let e = match sys::fd::read(self.0.as_fd(), &mut buf) {
            Ok(8) => return Ok(true),
            Ok(_) => return Err(io::Error::from_raw_os_error(libc::EIO)),
            Err(e) => e,
        };
        if e.kind() == io::ErrorKind::WouldBlock {
            Ok(false)
        } else {
            Err(e)
        }
    }
}

impl AsFd for EventFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

fn os(e: io::Error) -> Error {
    Error::Os(e.raw_os_error().unwrap_or(libc::EIO))
}

/// A doorbell pair over two eventfds: `ring` signals the peer's, `wait` sleeps on ours and
/// on the peer's pidfd, so a dead peer wakes us at once with `PeerGone`.
#[derive(Debug)]
pub struct EventfdDoorbell {
    peer_bell: EventFd,
    our_bell: EventFd,
    peer: Option<PidFd>,
}

impl EventfdDoorbell {
    /// A doorbell that rings `peer_bell`, sleeps on `our_bell`, and watches `peer`.
    pub fn new(peer_bell: EventFd, our_bell: EventFd, peer: Option<PidFd>) -> Self {
        Self {
            peer_bell,
            our_bell,
            peer,
        }
    }

    /// The eventfd that becomes readable when the peer rings: for event loops that wait
    /// on it themselves (an async runtime's reactor, epoll) instead of calling `wait`.
    /// Consume the rings with [`Self::take_rings`] after it became readable.
    pub fn wake_fd(&self) -> BorrowedFd<'_> {
        self.our_bell.as_fd()
    }

    /// The peer's pidfd, readable once the peer exited (if one is watched).
    pub fn peer_fd(&self) -> Option<BorrowedFd<'_>> {
        self.peer.as_ref().map(AsFd::as_fd)
    }

    /// Consumes every pending ring without waiting; whether there was one.
    pub fn take_rings(&self) -> io::Result<bool> {
        self.our_bell.drain()
    }
}

impl Doorbell for EventfdDoorbell {
    /// An eventfd carries a count, not an id: the notify id is not delivered.
    fn ring(&self, _notify_id: u32) -> intercore::Result<()> {
        self.peer_bell.signal().map_err(os)
    }

    fn wait(&self, timeout: Option<Duration>) -> intercore::Result<bool> {
        let rev = match &self.peer {
            Some(p) => poll_readable([self.our_bell.as_fd(), p.as_fd()], timeout).map_err(os)?,
            None => {
                let [r] = poll_readable([self.our_bell.as_fd()], timeout).map_err(os)?;
                [r, 0]
            }
        };
        if rev[0] != 0 {
            self.our_bell.drain().map_err(os)?;
            return Ok(true);
        }
        if rev[1] != 0 {
            return Err(Error::PeerGone);
        }
        Ok(false)
    }

    fn now(&self) -> Duration {
        monotonic_now()
    }

    /// `sched_yield(2)`.
    fn yield_cpu(&self) {
        std::thread::yield_now()
    }

    fn check_peer(&self) -> intercore::Result<()> {
        match &self.peer {
            Some(p) if p.exited().map_err(os)? => Err(Error::PeerGone),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A rung doorbell wakes the waiter; an unrung one times out after roughly the timeout.
    #[test]
    fn ring_wakes_and_timeout_expires() {
        let (a, b) = (EventFd::new().unwrap(), EventFd::new().unwrap());
        let a2 = EventFd::from_fd(a.as_fd().try_clone_to_owned().unwrap());
        let b2 = EventFd::from_fd(b.as_fd().try_clone_to_owned().unwrap());
        let left = EventfdDoorbell::new(a, b, None);
        let right = EventfdDoorbell::new(b2, a2, None);
        left.ring(0).unwrap();
        assert_eq!(right.wait(Some(Duration::from_secs(1))), Ok(true));
        let t0 = monotonic_now();
        assert_eq!(right.wait(Some(Duration::from_millis(30))), Ok(false));
        assert!(monotonic_now() - t0 >= Duration::from_millis(29));
    }

    /// A pidfd of an exited child makes `wait` report `PeerGone`.
    #[test]
    fn dead_peer_is_reported() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = PidFd::open(child.id() as i32).unwrap();
        child.wait().unwrap();
        let bell =
            EventfdDoorbell::new(EventFd::new().unwrap(), EventFd::new().unwrap(), Some(pid));
        assert_eq!(
            bell.wait(Some(Duration::from_secs(5))),
            Err(Error::PeerGone)
        );
        assert_eq!(bell.check_peer(), Err(Error::PeerGone));
    }
}
