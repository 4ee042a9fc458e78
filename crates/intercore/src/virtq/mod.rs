//! The virtio split virtqueue (virtio 1.x §2.7), in both roles.
//!
//! * [`DriverQueue`]: the side that owns the descriptor table and adds buffers (on an
//!   rpmsg link, the Linux/application core for both rings).
//! * [`DeviceQueue`]: the side that takes available buffers and returns them used (the
//!   remote core).
//!
//! Neither owns the memory: every method takes the region, so one region can hold several
//! rings and the buffers. Private state (shadow indices, which descriptors are in flight)
//! never lives in shared memory, so the peer cannot corrupt it; everything read from the
//! ring is validated before use and a violation is an [`Error::Protocol`](crate::Error).
//!
//! Memory ordering follows the kernel's `virtio_ring.c`: the index that publishes entries
//! is stored with `Release` and loaded with `Acquire` (the kernel's `virtio_wmb`/`virtio_rmb`),
//! and a `SeqCst` fence sits between publishing our index and reading the other side's
//! notification request (the kernel's `virtio_mb`), the store→load ordering without which
//! both sides can decide not to notify and sleep forever.

mod device;
mod driver;
pub mod inline;

pub use device::{DescChain, DeviceQueue};
pub use driver::{DriverQueue, MAX_DRIVER_QUEUE};
pub use intercore_wire::vring::VringLayout;

use crate::{Error, Result, SharedMemory};

/// A descriptor as read (and copied out of shared memory) by the device side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DescInfo {
    /// Device address of the buffer.
    pub addr: crate::DevAddr,
    /// Length of the buffer.
    pub len: u32,
    /// Whether the device may write the buffer (`VRING_DESC_F_WRITE`).
    pub writable: bool,
}

/// Checks that a ring of `layout` fits at `base` in `mem` with the alignment virtio
/// requires (16 for the descriptor table; the used ring's alignment is in the layout).
pub(crate) fn check_placement<M: SharedMemory + ?Sized>(
    mem: &M,
    base: usize,
    layout: &VringLayout,
) -> Result<()> {
    if base % 16 != 0 {
        return Err(Error::Config("vring base must be 16-byte aligned"));
    }
    match base.checked_add(layout.size()) {
        Some(end) if end <= mem.len() => Ok(()),
        _ => Err(Error::Config("vring does not fit in the shared region")),
    }
}
