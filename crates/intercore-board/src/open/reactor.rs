//! A board's [`Link`] in intercore-linux's reactor ([`ReactorLink`]): one thread (or one
//! task, `intercore_tokio::AsyncReactor`) serves the links of every core a board opened,
//! whatever each one's transport, with the reactor's budgets, round robin and
//! fail-alone.
//!
//! | transport | the reactor waits on | messages handed as |
//! |---|---|---|
//! | `sim` | the doorbell's eventfd; the remote's pidfd | [`LinkMsg::Memfd`], in place |
//! | `qemu` | the tick (the polling doorbell has no descriptor; each tick also asks whether QEMU lives) | [`LinkMsg::Memfd`], in place |
//! | `userspace`, `doorbell = "uio"` | the UIO device | [`LinkMsg::Carveout`], in place |
//! | `userspace`, polled | the tick | [`LinkMsg::Carveout`], in place |
//! | `kernel` | one epoll over the link's `/dev/rpmsgM` devices ([`KernelRpmsg::watch_fd`]) | [`LinkMsg::Copied`] (`read(2)` copies) |
//!
//! Sending from the callback without waiting: [`Link::post`] (a host bus parks the
//! message on the endpoint's bounded queue; the kernel transport parks it while every
//! transmit buffer is with the remote and the reactor's tick retries it).

use super::{Inner, Link, UserMem};
use intercore::rpmsg::{Channel, RxBuf};
use intercore::{Doorbell, Error, Result};
use intercore_linux::MemfdRegion;
use intercore_linux::reactor::{ReactorDoorbell, ReactorLink};
use std::fmt;
use std::ops::Deref;
use std::os::fd::BorrowedFd;
use std::sync::Arc;

/// A message a board link's reactor hands out: in place for the host buses, a copy for the
/// kernel's character devices. Dereferences to its payload.
pub enum LinkMsg {
    /// In the simulated SoC's or QEMU's shared memfd (its buffer goes back when dropped).
    Memfd(RxBuf<Arc<MemfdRegion>>),
    /// In the userspace transport's carveout (its buffer goes back when dropped).
    Carveout(RxBuf<UserMem>),
    /// Read from a kernel endpoint device: `/dev/rpmsgM` does not say the sender, so `src`
    /// is the remote address the endpoint was opened with.
    Copied {
        /// The remote endpoint.
        src: u32,
        /// The local endpoint.
        dst: u32,
        /// The payload.
        data: Vec<u8>,
    },
}

impl LinkMsg {
    /// The sender's address.
    pub fn src(&self) -> u32 {
        match self {
            LinkMsg::Memfd(m) => m.src(),
            LinkMsg::Carveout(m) => m.src(),
            LinkMsg::Copied { src, .. } => *src,
        }
    }
    /// The local endpoint it was sent to.
    pub fn dst(&self) -> u32 {
        match self {
            LinkMsg::Memfd(m) => m.dst(),
            LinkMsg::Carveout(m) => m.dst(),
            LinkMsg::Copied { dst, .. } => *dst,
        }
    }
}

impl Deref for LinkMsg {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            LinkMsg::Memfd(m) => m,
            LinkMsg::Carveout(m) => m,
            LinkMsg::Copied { data, .. } => data,
        }
    }
}

impl fmt::Debug for LinkMsg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} -> {}, {} B", self.src(), self.dst(), self.len())
    }
}

impl Link {
    /// Sends `data` from local endpoint `src` to `dst` without waiting, for a reactor's
    /// callback: `Ok(true)` sent, `Ok(false)` parked and sent by a later turn,
    /// `Exhausted` when the parking queue is full (nothing parked). On a host bus:
    /// `HostBus::post`; on the kernel transport `dst` must be the remote the endpoint was
    /// opened with (`Config` otherwise), [`KernelRpmsg::post`](intercore_linux::rpmsg_char::KernelRpmsg::post).
    pub fn post(&mut self, src: u32, dst: u32, data: &[u8]) -> Result<bool> {
        on_link!(&mut self.inner, bus => bus.post(src, dst, data),
            k => k.post(&Channel { local: src, remote: dst }, data))
    }
}

impl ReactorLink for Link {
    type Msg = LinkMsg;
    fn wake_fd(&self) -> Option<BorrowedFd<'_>> {
        on_link!(&self.inner, bus => ReactorDoorbell::wake_fd(bus.doorbell()), k => k.watch_fd())
    }
    fn peer_fd(&self) -> Option<BorrowedFd<'_>> {
        on_link!(&self.inner, bus => ReactorDoorbell::peer_fd(bus.doorbell()), _k => None)
    }
    fn take_wake(&mut self) -> Result<()> {
        // The kernel's epoll is level-triggered: nothing to consume.
        on_link!(&mut self.inner, bus => ReactorDoorbell::take_wake(bus.doorbell()), _k => Ok(()))
    }
    fn check_peer(&mut self) -> Result<()> {
        on_link!(&self.inner, bus => Doorbell::check_peer(bus.doorbell()), _k => Ok(()))
    }
    fn needs_tick(&self) -> bool {
        on_link!(&self.inner, bus => ReactorDoorbell::wake_fd(bus.doorbell()).is_none(),
            k => k.watch_fd().is_none() || k.has_parked())
    }
    fn link_error(&self) -> Option<Error> {
        on_link!(&self.inner, bus => bus.broken(), _k => None)
    }
    fn arm(&mut self) -> Result<bool> {
        // The kernel's endpoints always wake the epoll: nothing to ask for.
        on_link!(&mut self.inner, bus => bus.arm_notify(false), _k => Ok(false))
    }
    fn poll_link(&mut self) -> Result<()> {
        on_link!(&mut self.inner, bus => bus.poll().map(drop), k => k.poll_ready())
    }
    fn next_endpoint(&mut self) -> Option<u32> {
        on_link!(&mut self.inner, bus => bus.next_ready(), k => k.next_ready())
    }
    fn take(&mut self, ep: u32) -> Result<LinkMsg> {
        match &mut self.inner {
            #[cfg(feature = "sim")]
            Inner::Sim { bus, .. } => bus.try_recv_buf(ep).map(LinkMsg::Memfd),
            #[cfg(feature = "qemu")]
            Inner::Qemu { bus, .. } => bus.try_recv_buf(ep).map(LinkMsg::Memfd),
            Inner::UserPoll { bus } => bus.try_recv_buf(ep).map(LinkMsg::Carveout),
            Inner::UserRings { bus } => bus.try_recv_buf(ep).map(LinkMsg::Carveout),
            Inner::UserUio { bus } => bus.try_recv_buf(ep).map(LinkMsg::Carveout),
            Inner::Kernel { rpmsg } => rpmsg.try_recv_owned(ep).map(|(ch, data)| LinkMsg::Copied {
                src: ch.remote,
                dst: ch.local,
                data,
            }),
        }
    }
    fn post_msg(&mut self, src: u32, dst: u32, data: &[u8]) -> Result<bool> {
        self.post(src, dst, data)
    }
}
