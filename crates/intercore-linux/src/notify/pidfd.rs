//! pidfd: a process's liveness as a descriptor.

use crate::sys::{self, fd::poll_readable};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Duration;

/// A pidfd: becomes readable when the process exits.
#[derive(Debug)]
pub struct PidFd(OwnedFd);

impl PidFd {
    /// `pidfd_open(pid)` (Linux 5.3+).
    pub fn open(pid: libc::pid_t) -> io::Result<Self> {
        sys::fd::pidfd_open(pid).map(Self)
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
        sys::fd::pidfd_send_signal(self.0.as_fd(), sig)
    }
}

impl AsFd for PidFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}
