//! intercore: virtio-rpmsg between an application core and a remote core, over shared
//! memory, in both roles.
//!
//! * [`virtq`]: the split virtqueue, driver and device sides, validating everything the
//!   peer writes.
//! * [`rpmsg`]: the rpmsg bus on top — the host role ([`rpmsg::HostBus`], needs `alloc`)
//!   and the remote role ([`rpmsg::RemoteBus`], `no_std` without allocation) — with
//!   endpoints and the name service.
//! * [`platform`]: the traits a platform implements — [`SharedMemory`], [`Doorbell`],
//!   [`DeviceAddressMap`], [`CacheOps`](platform::CacheOps), [`Iommu`](platform::Iommu)
//!   (`intercore-linux` for Linux, `intercore-sim` for the simulated SoC); the most used
//!   are re-exported here.
//! * [`wait`]: the wait policy — how a blocking call waits for the peer ([`WaitMode`]).
//!
//! `unsafe` code is denied everywhere except four modules, each saying why: `platform::shm`
//! (turns the [`SharedMemory`] contract into bounds-checked accessors and makes the only
//! slices into shared memory), `platform::cache` (declares the `CacheOps` contract),
//! `rpmsg::rsc_table` (a writable static the host writes back into) and `testing`.
#![cfg_attr(not(feature = "std"), no_std)]
#![deny(unsafe_code)]

#[cfg(feature = "alloc")]
extern crate alloc;

mod crc32c;
pub mod dataplane;
mod error;
pub mod firmware;
#[cfg(feature = "inspect")]
pub mod inspect;
#[cfg(feature = "alloc")]
mod lockfree;
/// The atomics `lockfree` is built on (loom's in `tests/loom.rs`).
#[cfg(feature = "alloc")]
mod lf_atomic {
    pub(crate) use core::sync::atomic::*;
}
pub mod platform;
pub mod pollbell;
pub mod rpmsg;
#[cfg(any(test, feature = "test-utils"))]
pub mod testing;
pub mod virtq;
pub mod wait;

// The modules' former crate-internal paths, still used by `rpmsg/` (`crate::shm::…`,
// `crate::notify::…`); new code names `platform::shm` and `wait`.
use platform::shm;
use wait as notify;

/// The README's Rust examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct ReadmeDoctests;

pub use crc32c::{crc32c, crc32c_append};
pub use error::{Error, Result};
pub use intercore_wire as wire;
pub use platform::{DevAddr, DeviceAddressMap, Doorbell, LinearMap, PeerCpu, SharedMemory};
#[doc(hidden)]
#[cfg(feature = "test-utils")]
pub use shm::MemcpyMem;
pub use shm::{AlignedLoad, copy_from_shared, copy_to_shared, fill_shared};
pub use wait::{ParseWaitModeError, WaitMode};
