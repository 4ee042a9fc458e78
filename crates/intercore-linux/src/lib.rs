//! The Linux side of intercore: platform backends for the core's traits, and clients of
//! the kernel subsystems that run remote cores.
//!
//! * [`memory`]: memory sources. [`MemfdRegion`] (shared memory between processes, passed
//!   by descriptor) and [`PrivateRegion`]; buffer memory a remote core can reach —
//!   [`UdmabufRegion`], [`DmaHeapRegion`], [`PhysCarveout`] over `/dev/mem` or UIO, found
//!   through the device tree ([`reserved_memory`], [`uio_devices`]) — and, with feature
//!   `vfio`, the VFIO type1 IOMMU (`VfioIommu`) and the QEMU `edu` test device.
//! * [`notify`]: [`EventFd`] and [`EventfdDoorbell`], doorbells in both directions, with
//!   the peer's liveness watched through a [`PidFd`]; [`UioDoorbell`], a hardware mailbox
//!   (TI OMAP/K3 or ZynqMP IPI) through UIO.
//! * [`DmaBufCache`] and `Arm64El0Cache` (aarch64): the core's `CacheOps` through the
//!   dma-buf sync ioctl or the EL0 cache-maintenance instructions.
//! * [`reactor`]: one thread serving many host links and endpoints through one `epoll`
//!   wait, fair across links and endpoints ([`Reactor`]).
//! * [`remoteproc`]: the kernel's remoteproc framework (sysfs and the character device):
//!   firmware, start, stop, state ([`Remoteproc`]).
//! * [`rpmsg_char`]: the kernel's rpmsg character devices as an intercore transport
//!   ([`KernelRpmsg`]).
//! * [`sys`]: the system calls, [`sys::Mmap`] among them.
//!
//! `unsafe` is denied in this crate except in two modules: [`sys`], which wraps every
//! system call in a safe function (and alone implements `SharedMemory` for the crate's
//! regions, through [`sys::Mmap`]), and the cache-maintenance module, whose EL0 assembly
//! and `CacheOps` implementations cannot be written without it. Each block says why it is
//! sound; a test over the workspace (`crates/intercore/tests/unsafe_confinement.rs`) keeps
//! it so.
#![deny(unsafe_code)]

pub mod file;
pub mod memory;
pub mod notify;
pub mod reactor;
pub mod remoteproc;
pub mod rpmsg_char;
pub mod sys;
pub mod uapi;

// The EL0 cache assembly and the `CacheOps` implementations.
mod cache;

#[cfg(all(feature = "vfio", feature = "test-utils"))]
pub use memory::edu;
pub use notify::{EventFd, EventfdDoorbell, PidFd, UioDoorbell, UioLayout};
pub use reactor::{LinkId, Reactor, ReactorConfig, Ready};
pub use remoteproc::{Remoteproc, RprocError, RprocPaths, RprocState};
pub use rpmsg_char::{KernelRpmsg, RpmsgCharError, RpmsgPaths};
pub use sys::{
    adopt_inherited_fd, allowed_cpus, clear_cloexec, monotonic_now, pin_to_cpu, pin_to_cpus, pipe,
    process_cpu_time, spawn_inheriting,
};

#[cfg(target_arch = "aarch64")]
pub use cache::Arm64El0Cache;
pub use cache::{DmaBufCache, UDmaBufCache, dminline_bytes, line_addrs, native_line_size};
pub use memory::{
    DEFAULT_MAX_ALLOC, DevMemCaching, DmaHeapRegion, MemError, MemfdRegion, PhysCarveout,
    PrivateRegion, ReservedMemory, RprocDmaBufAttach, SysRoots, UdmabufRegion, UioDevice, UioMap,
    list_dma_heaps, parse_reg, reserved_memory, uio_device, uio_devices,
};
pub use memory::{
    SyncDirection, UDmaBufInfo, UDmaBufRegion, UDmaBufSync, check_contiguous, contiguous_phys_addr,
    own_pagemap, phys_pages, u_dma_buf_devices, u_dma_buf_info,
};
#[cfg(feature = "vfio")]
pub use memory::{VfioDevice, VfioDeviceId, VfioIommu, VfioRegion};
