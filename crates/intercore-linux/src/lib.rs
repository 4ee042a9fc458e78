//! Linux backends for intercore.
//!
//! * [`MemfdRegion`]: shared memory from `memfd_create`, mapped `MAP_SHARED`, passed to
//!   another process by file descriptor.
//! * [`EventFd`] and [`EventfdDoorbell`]: doorbells in both directions, with the peer's
//!   liveness watched through a [`PidFd`].
//!
//! `unsafe` is confined to the system-call wrappers of this crate; each block says why it
//! is sound.

mod eventfd;
mod memfd;
mod sys;

pub use eventfd::{EventFd, EventfdDoorbell, PidFd};
pub use memfd::{MemfdRegion, PrivateRegion};
pub use sys::{adopt_inherited_fd, clear_cloexec, monotonic_now, spawn_inheriting};
