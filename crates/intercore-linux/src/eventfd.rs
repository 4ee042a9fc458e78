//! eventfd doorbells and pidfd liveness.

use crate::sys::{cvt, monotonic_now, poll_readable};
use intercore::{Doorbell, Error};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::time::Duration;

/// An eventfd: a counter the kernel wakes pollers on.
#[derive(Debug)]
pub struct EventFd(OwnedFd);

impl EventFd {
    /// A new non-blocking eventfd with close-on-exec.
    pub fn new() -> io::Result<Self> {
        // SAFETY: eventfd with plain integer flags.
        let fd = cvt(unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) })?;
        // SAFETY: `fd` was just returned and is owned by nobody else.
        Ok(Self(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// Wraps a received eventfd.
    pub fn from_fd(fd: OwnedFd) -> Self {
        Self(fd)
    }

    /// Adds one to the counter, waking pollers.
    pub fn signal(&self) -> io::Result<()> {
        let one = 1u64.to_ne_bytes();
        loop {
            // SAFETY: writing 8 bytes from a live buffer to an open descriptor.
            let r = unsafe { libc::write(self.0.as_raw_fd(), one.as_ptr().cast(), 8) };
            if r == 8 {
                return Ok(());
            }
            let e = io::Error::last_os_error();
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
        // SAFETY: reading 8 bytes into a live buffer from an open descriptor.
        let r = unsafe { libc::read(self.0.as_raw_fd(), buf.as_mut_ptr().cast(), 8) };
        if r == 8 {
            return Ok(true);
        }
        let e = io::Error::last_os_error();
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

/// A pidfd: becomes readable when the process exits.
#[derive(Debug)]
pub struct PidFd(OwnedFd);

impl PidFd {
    /// `pidfd_open(pid)` (Linux 5.3+).
    pub fn open(pid: libc::pid_t) -> io::Result<Self> {
        // SAFETY: the pidfd_open system call takes a pid and flags and returns a new fd.
        let r = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the kernel returned a new descriptor that nobody else owns.
        Ok(Self(unsafe { OwnedFd::from_raw_fd(r as i32) }))
    }

    /// Whether the process has exited (non-blocking).
    pub fn exited(&self) -> io::Result<bool> {
        self.wait_exit(Some(Duration::ZERO))
    }

    /// Sleeps until the process exits or `timeout` passes; returns whether it exited.
    pub fn wait_exit(&self, timeout: Option<Duration>) -> io::Result<bool> {
        Ok(poll_readable([self.0.as_fd()], timeout)?[0] != 0)
    }

    /// Sends `sig` to the process (`pidfd_send_signal`, Linux 5.1+): unlike `kill`, it
    /// cannot reach a different process that reused the pid.
    pub fn send_signal(&self, sig: libc::c_int) -> io::Result<()> {
        // SAFETY: pidfd_send_signal(fd, sig, info = NULL, flags = 0) on a pidfd we own.
        let r = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.0.as_raw_fd(),
                sig,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
        if r < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }
}

impl AsFd for PidFd {
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
