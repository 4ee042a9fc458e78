//! Notifiers: eventfd doorbells (the core's `Doorbell` between processes), pidfd
//! liveness (a dead peer wakes the waiter at once), and the UIO doorbell of a hardware
//! mailbox ([`UioDoorbell`]), and the Linux side of the polling doorbell ([`LinuxPoll`]).

mod eventfd;
mod pidfd;
pub mod uio;

pub use eventfd::{EventFd, EventfdDoorbell};
pub use pidfd::PidFd;
pub use uio::{OmapMailbox, UioDoorbell, UioLayout, ZynqmpIpi};

/// The polling doorbell's platform (`intercore::pollbell::PollPlatform`) for a Linux
/// process: the monotonic clock, and a back-off that spins (32 rounds), yields (32 rounds),
/// then sleeps 10 µs doubling up to 160 µs; `yield_cpu` is `sched_yield(2)`. It cannot
/// tell whether the peer is alive (the
/// default `check_peer`): a peer that is a process is watched through its [`PidFd`] by
/// the caller's own platform, a remote core through remoteproc.
#[derive(Debug, Clone, Copy, Default)]
pub struct LinuxPoll;

impl intercore::pollbell::PollPlatform for LinuxPoll {
    fn now(&self) -> std::time::Duration {
        crate::monotonic_now()
    }
    fn back_off(&self, round: u32) {
        match round {
            0..32 => std::hint::spin_loop(),
            32..64 => std::thread::yield_now(),
            r => std::thread::sleep(std::time::Duration::from_micros(10u64 << (r - 64).min(4))),
        }
    }
    /// `sched_yield(2)`.
    fn yield_cpu(&self) {
        std::thread::yield_now()
    }
}
