//! Notifiers: eventfd doorbells (the core's `Doorbell` between processes) and pidfd
//! liveness (a dead peer wakes the waiter at once).

mod eventfd;
mod pidfd;

pub use eventfd::{EventFd, EventfdDoorbell};
pub use pidfd::PidFd;
