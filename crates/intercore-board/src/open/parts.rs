//! [`Link::async_parts`]: the transport a link holds, lent to a wrapper that drives it
//! from an event loop (intercore-tokio's `AsyncLink`). Kept in this one file so that the
//! link's internals stay private everywhere else.

use super::{Inner, Link, UserUioBus};
use intercore::rpmsg::HostBus;
use intercore_linux::MemfdRegion;
use intercore_linux::notify::EventfdDoorbell;
use intercore_linux::rpmsg_char::KernelRpmsg;
use std::sync::Arc;

/// A host bus over a memfd with eventfd doorbells (the simulated SoC's, `SimBus`).
pub type EventfdBus = HostBus<Arc<MemfdRegion>, EventfdDoorbell>;

/// The transport a [`Link`] holds, borrowed for as long as the `&mut Link` is, as an
/// event loop sees it: which file descriptors a wait can sleep on. The same whatever
/// features this crate was built with. The link keeps owning the transport, its child
/// process and regions.
#[non_exhaustive]
pub enum LinkParts<'a> {
    /// A host bus with eventfd doorbells (`sim`: the doorbell's eventfd, the remote's pidfd).
    Eventfd(&'a mut EventfdBus),
    /// The kernel's rpmsg char devices (`kernel`: one descriptor per endpoint).
    Kernel(&'a mut KernelRpmsg),
    /// The userspace transport with a UIO doorbell (the UIO device's descriptor).
    Uio(&'a mut UserUioBus),
    /// A polled doorbell or polled rings, no descriptor (`qemu`; `userspace` with
    /// `doorbell = "poll"`).
    Polled,
}

impl Link {
    /// A `userspace/uio` link over a host bus already built (what `Board::open` builds
    /// for `doorbell = "uio"` from the board's carveout and UIO device). For tests that
    /// stand a fake UIO device (a socket, which the reactor can poll) behind the bus: a
    /// fake `/dev/uioN` in a directory tree would be a regular file, which epoll refuses.
    #[doc(hidden)]
    pub fn from_uio_bus(bus: UserUioBus) -> Self {
        Link {
            inner: Inner::UserUio { bus },
            name: "userspace/uio".into(),
            services: Vec::new(),
        }
    }

    /// The transport this link holds, lent for an async wrapper (see [`LinkParts`]).
    pub fn async_parts(&mut self) -> LinkParts<'_> {
        match &mut self.inner {
            #[cfg(feature = "sim")]
            Inner::Sim { bus, .. } => LinkParts::Eventfd(bus),
            #[cfg(feature = "qemu")]
            Inner::Qemu { .. } => LinkParts::Polled,
            Inner::Kernel { rpmsg } => LinkParts::Kernel(rpmsg),
            Inner::UserPoll { .. } | Inner::UserRings { .. } => LinkParts::Polled,
            Inner::UserUio { bus } => LinkParts::Uio(bus),
        }
    }
}
