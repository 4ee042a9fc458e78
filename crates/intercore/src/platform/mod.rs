//! The platform traits: what a platform implements so that the core runs on it.
//!
//! * [`SharedMemory`]: the region both sides read and write (a mapped carveout, a UIO
//!   region, a dma-buf, heap memory in tests). The core reaches it only through the
//!   trait's bounds-checked accessors, which are the one place that makes pointers into it.
//! * [`Doorbell`]: how one side tells the other that a ring changed (a mailbox, an IPI,
//!   an eventfd, a polled counter — [`pollbell`](crate::pollbell)).
//! * [`DeviceAddressMap`]: device addresses ([`DevAddr`], what the remote core puts on its
//!   bus) to region offsets and back; [`LinearMap`] is one window.
//! * [`CacheOps`]: cache maintenance over byte ranges of a region shared with a peer that
//!   does not snoop our caches; [`Coherent`] is the implementation for coherent memory.
//! * [`Iommu`] (the host maps and unmaps the remote's windows) and [`DataWindows`] (what
//!   every remote access to the data-plane pool goes through).
//!
//! Implementations: `intercore-linux` (Linux: mappings, UIO/mailbox/eventfd doorbells,
//! ARM64 and dma-buf cache maintenance, VFIO), `intercore-sim` (the simulated SoC, with its
//! non-coherent cache model and IOMMU), `intercore::testing` (heap memory and thread
//! doorbells, feature `test-utils`). Each trait states its contract, and
//! `intercore::testing::conformance` checks an implementation against it.
//!
//! Nothing here depends on the rest of the crate except [`Error`](crate::Error): this is the
//! bottom layer. `unsafe` is allowed in two of its files only: `shm` (the accessors of
//! [`SharedMemory`] and the only slices into shared memory) and `cache` (declares the
//! [`CacheOps`] contract). How a blocking call *uses* the doorbell — spin, sleep, or spin
//! then sleep — is the wait policy, in [`wait`](crate::wait).

mod addr;
mod cache;
mod doorbell;
mod iommu;
pub(crate) mod shm;

pub use addr::{DevAddr, DeviceAddressMap, LinearMap};
pub use cache::{CacheOps, Coherent, line_span};
pub use doorbell::{Doorbell, PeerCpu};
pub use iommu::{DataWindows, Fault, FaultKind, Iommu, Perm};
pub use shm::SharedMemory;
