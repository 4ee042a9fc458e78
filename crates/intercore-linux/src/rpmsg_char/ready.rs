//! Serving the kernel's endpoint devices from one wait (the reactor,
//! `crate::reactor::ReactorLink` on `intercore_board::Link`): one epoll over every open
//! endpoint's `/dev/rpmsgM`, readable while any of them holds a message (or reports
//! `POLLERR`, the endpoint destroyed), so a reactor waits on one descriptor per kernel
//! link however many endpoints it has; and sends that do not wait, parked while every
//! transmit buffer is with the remote. The kernel never reports an endpoint device
//! writable (`virtio_rpmsg_bus` has no poll for transmit buffers), so parked sends are
//! retried whenever the link is looked at, and [`KernelRpmsg::has_parked`] tells the
//! reactor to look on its tick meanwhile.

use super::*;
use crate::sys::Epoll;
use std::collections::{HashSet, VecDeque};

/// Messages one kernel link holds back for want of a transmit buffer, all endpoints
/// together ([`KernelRpmsg::post`] answers `Exhausted` past it).
pub const MAX_PARKED: usize = 256;

/// The epoll over the endpoint devices, and what it found.
pub(super) struct Watch {
    epoll: Epoll,
    /// Endpoints (local addresses) whose device was readable, oldest first, each once.
    ready: VecDeque<u32>,
    queued: HashSet<u32>,
    /// Sends waiting for a transmit buffer, oldest first.
    parked: VecDeque<(Channel, Vec<u8>)>,
    /// An endpoint opened while watching could not join the epoll: its messages would
    /// never wake the wait, so the next look fails the link with this.
    failed: Option<Error>,
    events: Vec<u64>,
}

fn os_err(e: io::Error) -> Error {
    Error::Os(e.raw_os_error().unwrap_or(libc::EIO))
}

impl Watch {
    /// Adds endpoint `local`'s device to the epoll (its token: the local address).
    pub(super) fn add(&mut self, fd: BorrowedFd<'_>, local: u32) {
        if let Err(e) = self.epoll.add(fd, u64::from(local)) {
            self.failed.get_or_insert(os_err(e));
        }
    }
}

impl KernelRpmsg {
    /// Starts serving this transport from one wait: every open endpoint's device (and each
    /// opened later) joins one epoll, [`Self::watch_fd`]. Idempotent.
    pub fn watch(&mut self) -> Result<(), Error> {
        if self.watch.is_some() {
            return Ok(());
        }
        let mut w = Watch {
            epoll: Epoll::new().map_err(os_err)?,
            ready: VecDeque::new(),
            queued: HashSet::new(),
            parked: VecDeque::new(),
            failed: None,
            events: vec![0; 64],
        };
        for (&local, ep) in &self.eps {
            if let Some(fd) = ep.fd.as_ref() {
                w.add(fd.as_fd(), local);
            }
        }
        if let Some(e) = w.failed {
            return Err(e);
        }
        self.watch = Some(Box::new(w));
        Ok(())
    }

    /// The descriptor readable while an endpoint has a message or was destroyed (after
    /// [`Self::watch`]; `None` before).
    pub fn watch_fd(&self) -> Option<BorrowedFd<'_>> {
        self.watch.as_ref().map(|w| w.epoll.as_fd())
    }

    /// Without waiting: retries parked sends (in order; stops at the first still without a
    /// buffer), then notes which endpoints have something. A parked send that fails for
    /// another reason is this call's error (the message is not sent: the link is to be
    /// reported down). `NotReady` before [`Self::watch`].
    pub fn poll_ready(&mut self) -> Result<(), Error> {
        self.flush_parked()?;
        let w = self
            .watch
            .as_mut()
            .ok_or(Error::NotReady("KernelRpmsg::watch was not called"))?;
        if let Some(e) = w.failed {
            return Err(e);
        }
        let n = w
            .epoll
            .wait(&mut w.events, Some(Duration::ZERO))
            .map_err(os_err)?;
        for &t in &w.events[..n] {
            // Tokens are local addresses (u32), see `Watch::add`.
            let local = t as u32;
            if w.queued.insert(local) {
                w.ready.push_back(local);
            }
        }
        Ok(())
    }

    /// The next endpoint [`Self::poll_ready`] found with something, oldest first; its
    /// messages are taken with [`Self::try_recv_owned`]. An endpoint that still has some
    /// after its turn is found again by the next `poll_ready` (level-triggered).
    pub fn next_ready(&mut self) -> Option<u32> {
        let w = self.watch.as_mut()?;
        let local = w.ready.pop_front()?;
        w.queued.remove(&local);
        Some(local)
    }

    /// One message for local endpoint `local` without waiting, as the channel it came on
    /// (`remote`: the endpoint's peer; `/dev/rpmsgM` does not say the sender) and a copy:
    /// `WouldBlock` when there is none; `PeerGone` once the kernel destroyed the endpoint.
    pub fn try_recv_owned(&mut self, local: u32) -> Result<(Channel, Vec<u8>), Error> {
        let remote = self
            .eps
            .get(&local)
            .ok_or(Error::NoSuchEndpoint(local))?
            .remote;
        let ch = Channel { local, remote };
        let mut buf = vec![0; self.max_payload.max(1)];
        match self.recv_timeout(&ch, &mut buf, Some(Duration::ZERO)) {
            Ok(n) => {
                buf.truncate(n);
                Ok((ch, buf))
            }
            Err(Error::Timeout) => Err(Error::WouldBlock),
            Err(e) => Err(e),
        }
    }

    /// Sends on `ch` without waiting: `Ok(true)` sent; `Ok(false)` every transmit buffer is
    /// with the remote, the message is parked and sent by a later [`Self::poll_ready`]
    /// (after the ones parked before it, so order holds); `Exhausted` when
    /// [`MAX_PARKED`] are parked already (nothing parked). `NotReady` before
    /// [`Self::watch`].
    pub fn post(&mut self, ch: &Channel, data: &[u8]) -> Result<bool, Error> {
        let max = self.max_payload;
        if data.len() > max {
            return Err(Error::MessageTooLarge {
                len: data.len(),
                max,
            });
        }
        self.endpoint(ch)?;
        self.flush_parked()?;
        let w = self
            .watch
            .as_ref()
            .ok_or(Error::NotReady("KernelRpmsg::watch was not called"))?;
        if w.parked.is_empty() {
            match self.send_timeout(ch, data, Some(Duration::ZERO)) {
                Ok(()) => return Ok(true),
                Err(Error::Timeout) => {}
                Err(e) => return Err(e),
            }
        }
        let w = self
            .watch
            .as_mut()
            .ok_or(Error::NotReady("KernelRpmsg::watch was not called"))?;
        if w.parked.len() >= MAX_PARKED {
            return Err(Error::Exhausted("kernel link: parked sends"));
        }
        w.parked.push_back((*ch, data.to_vec()));
        Ok(false)
    }

    /// Whether sends are parked ([`Self::post`]).
    pub fn has_parked(&self) -> bool {
        self.watch.as_ref().is_some_and(|w| !w.parked.is_empty())
    }

    fn flush_parked(&mut self) -> Result<(), Error> {
        while let Some((ch, data)) = self.watch.as_mut().and_then(|w| w.parked.pop_front()) {
            match self.send_timeout(&ch, &data, Some(Duration::ZERO)) {
                Ok(()) => {}
                Err(Error::Timeout) => {
                    if let Some(w) = self.watch.as_mut() {
                        w.parked.push_front((ch, data));
                    }
                    return Ok(());
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}
