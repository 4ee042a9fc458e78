//! Notifiers: eventfd doorbells (the core's `Doorbell` between processes), pidfd
//! liveness (a dead peer wakes the waiter at once), and the UIO doorbell of a hardware
//! mailbox ([`UioDoorbell`]).

mod eventfd;
mod pidfd;
pub mod uio;

pub use eventfd::{EventFd, EventfdDoorbell};
pub use pidfd::PidFd;
pub use uio::{OmapMailbox, UioDoorbell, UioLayout, ZynqmpIpi};
