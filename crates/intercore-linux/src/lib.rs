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
pub mod file;
mod memfd;
pub mod remoteproc;
pub mod rpmsg_char;
mod sys;

pub use eventfd::{EventFd, EventfdDoorbell, PidFd};
pub use memfd::{MemfdRegion, PrivateRegion};
pub use remoteproc::{Remoteproc, RprocError, RprocPaths, RprocState};
pub use rpmsg_char::{KernelRpmsg, RpmsgCharError, RpmsgPaths};
pub use sys::{
    adopt_inherited_fd, allowed_cpus, clear_cloexec, monotonic_now, pin_to_cpu, pipe,
    process_cpu_time, spawn_inheriting,
};

mod cache;
mod dmabuf;
#[cfg(all(feature = "vfio", feature = "test-utils"))]
pub mod edu;
pub mod uapi;
#[cfg(feature = "vfio")]
mod vfio;

#[cfg(target_arch = "aarch64")]
pub use cache::Arm64El0Cache;
pub use cache::{DmaBufCache, dminline_bytes, line_addrs, native_line_size};
pub use dmabuf::{
    DEFAULT_MAX_ALLOC, DevMemCaching, DmaHeapRegion, MemError, PhysCarveout, ReservedMemory,
    RprocDmaBufAttach, SysRoots, UdmabufRegion, UioDevice, UioMap, list_dma_heaps, parse_reg,
    reserved_memory, uio_device, uio_devices,
};
#[cfg(feature = "vfio")]
pub use vfio::{VfioDevice, VfioDeviceId, VfioIommu, VfioRegion};
