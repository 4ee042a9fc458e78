//! The remote's end of an endpoint of a [`Behavior::External`](super::Behavior::External)
//! service: a [`MessageIo`] for remote-side code under test.

use super::FAKE_MTU;
use crate::rpmsg_char::ppoll_one;
use crate::sys::socket::{recv, send};
use intercore::Error;
use intercore::rpmsg::{Channel, MessageIo};
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

/// The remote's end of one endpoint of a [`Behavior::External`](super::Behavior::External) service: what the remote
/// core's rpmsg stack delivers to and takes from the service at [`Self::channel`]`.local`.
/// A [`MessageIo`] for remote-side code, with the fake kernel's limits: [`FAKE_MTU`]-byte
/// messages, `PeerGone` once the host's endpoint is destroyed or the remote stopped.
pub struct FakeRemoteEnd {
    pub(super) fd: OwnedFd,
    pub(super) ch: Channel,
    pub(super) scratch: Vec<u8>,
}

impl std::fmt::Debug for FakeRemoteEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeRemoteEnd")
            .field("ch", &self.ch)
            .finish()
    }
}

impl FakeRemoteEnd {
    /// The service's address (`local`) and the host endpoint's bound address (`remote`).
    pub fn channel(&self) -> Channel {
        self.ch
    }

    /// Waits for `events` up to the deadline: `Timeout` past it, `PeerGone` on a hang-up
    /// with nothing left to read.
    fn wait(
        &self,
        events: libc::c_short,
        deadline: Option<std::time::Instant>,
    ) -> Result<(), Error> {
        loop {
            let left = deadline.map(|d| d.saturating_duration_since(std::time::Instant::now()));
            let r = match ppoll_one(self.fd.as_fd(), events, left) {
                Ok(r) => r,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::Os(e.raw_os_error().unwrap_or(libc::EIO))),
            };
            if r & events != 0 {
                return Ok(());
            }
            if r & (libc::POLLHUP | libc::POLLERR) != 0 {
                return Err(Error::PeerGone);
            }
            if left.is_some_and(|l| l.is_zero()) {
                return Err(Error::Timeout);
            }
        }
    }
}

fn end_error(e: &io::Error) -> Error {
    match e.raw_os_error() {
        Some(libc::EPIPE | libc::ECONNRESET | libc::ENOTCONN) => Error::PeerGone,
        Some(n) => Error::Os(n),
        None => Error::Os(libc::EIO),
    }
}

impl MessageIo for FakeRemoteEnd {
    fn send(&mut self, ch: &Channel, data: &[u8], timeout: Option<Duration>) -> Result<(), Error> {
        if *ch != self.ch {
            return Err(Error::NoSuchEndpoint(ch.local));
        }
        if data.len() > FAKE_MTU {
            return Err(Error::MessageTooLarge {
                len: data.len(),
                max: FAKE_MTU,
            });
        }
        let deadline = timeout.and_then(|t| std::time::Instant::now().checked_add(t));
        loop {
            match send(self.fd.as_fd(), data) {
                Ok(_) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.wait(libc::POLLOUT, deadline)?
                }
                Err(e) => return Err(end_error(&e)),
            }
        }
    }

    fn recv(
        &mut self,
        ch: &Channel,
        buf: &mut [u8],
        timeout: Option<Duration>,
    ) -> Result<usize, Error> {
        if *ch != self.ch {
            return Err(Error::NoSuchEndpoint(ch.local));
        }
        let deadline = timeout.and_then(|t| std::time::Instant::now().checked_add(t));
        loop {
            match recv(self.fd.as_fd(), &mut self.scratch) {
                // A SOCK_SEQPACKET read of 0 is an empty message, or the end of the
                // stream: the wait tells them apart (POLLHUP with nothing to read).
                Ok(0) => {
                    let ev = libc::POLLIN | libc::POLLRDHUP;
                    if ppoll_one(self.fd.as_fd(), ev, Some(Duration::ZERO))
                        .is_ok_and(|r| r & (libc::POLLHUP | libc::POLLRDHUP) != 0)
                    {
                        return Err(Error::PeerGone);
                    }
                    return Ok(0);
                }
                Ok(n) => {
                    let k = n.min(buf.len());
                    buf[..k].copy_from_slice(&self.scratch[..k]);
                    return if k < n {
                        Err(Error::Truncated { len: n })
                    } else {
                        Ok(n)
                    };
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.wait(libc::POLLIN, deadline)?
                }
                Err(e) => return Err(end_error(&e)),
            }
        }
    }

    fn max_payload(&self) -> usize {
        FAKE_MTU
    }
}
