//! The system calls: the only module of this crate (with the cache-maintenance assembly in
//! `cache`) where `unsafe` is allowed. Everything here wraps one kind of call in a safe
//! function whose arguments cannot break memory safety, so the rest of the crate has none.
//!
//! * [`Mmap`]: the one owned memory mapping (shared file mappings, anonymous memory, a
//!   reservation that files are mapped into side by side), and the one place that
//!   implements `SharedMemory` for the crate's region types.
//! * [`ReadOnlyMap`]: a file's pages mapped read-only (`intercore inspect` over `/dev/mem`).
//! * [`MmioRegs`]: 32-bit device registers in a mapping, through volatile accesses only.
//! * `ioctl`: every ioctl request the crate issues, paired with its argument type, and
//!   safe calls with `EINTR` retry.
//! * `fd`: creating descriptors (memfd, eventfd, pidfd, pipes), reading, writing, seals,
//!   polling, passing them to children; `socket`: the socket pairs of the fake rpmsg
//!   kernel, and messages with descriptors attached ([`recv_with_fds`], [`send_with_fds`]).
//!
//! The public functions here are what other crates of the workspace use instead of
//! `unsafe` of their own (`intercore-vhost` denies it): each is safe for any argument.
//! * [`Epoll`]: one wait over many descriptors (the reactor's); [`TimerFd`]: its tick for
//!   links without a descriptor.
//! * `process`: clocks, CPU affinity, the effective user, the page size.
#![allow(unsafe_code)]

mod epoll;
pub(crate) mod fd;
pub(crate) mod ioctl;
mod mmap;
mod mmio;
mod process;
mod romap;
pub(crate) mod socket;
mod timerfd;

pub use epoll::Epoll;
pub use fd::{
    add_seals, adopt_inherited_fd, clear_cloexec, ftruncate, memfd_create, pipe, poll_readable_any,
    read, seals, set_nonblock, spawn_inheriting, write,
};
pub use mmap::Mmap;
pub(crate) use mmap::OwnsMmap;
pub use mmio::MmioRegs;
pub use process::{
    allowed_cpus, monotonic_now, page_size, pin_to_cpu, pin_to_cpus, process_cpu_time,
};
pub(crate) use process::{current_cpu, running_as_root};
pub use romap::ReadOnlyMap;
pub use socket::{MAX_PASSED_FDS, Received, recv_with_fds, send_with_fds};
pub use timerfd::TimerFd;
