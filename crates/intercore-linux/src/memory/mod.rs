//! Memory sources: shared memory between processes ([`MemfdRegion`], and the private
//! [`PrivateRegion`]), and buffer memory a remote core can reach, from the Linux side:
//! udmabuf, dma-buf heaps, and physical carveouts (`/dev/mem` or a UIO map, found through
//! the device tree), with the device addresses the remote uses for them; the VFIO type1
//! IOMMU that gives such memory I/O addresses (feature `vfio`), and the QEMU `edu` test
//! device it is tested with.
//!
//! Every region maps its memory with [`crate::sys::Mmap`], which alone vouches for
//! [`SharedMemory`]; nothing in this module is `unsafe`.
//!
//! | source | what the kernel needs | contiguous? | device address |
//! |---|---|---|---|
//! | [`UdmabufRegion`] | `CONFIG_UDMABUF`, `/dev/udmabuf` | no (memfd pages) | only through an IOMMU (`VfioIommu`, feature `vfio`) |
//! | [`DmaHeapRegion`] | `CONFIG_DMABUF_HEAPS`, `/dev/dma_heap/<name>` | `system`: no; CMA / carveout heaps: yes | IOMMU, or TI's [`RprocDmaBufAttach`] |
//! | [`PhysCarveout`] | `/dev/mem` (root) or a UIO device | yes | [`identity`](PhysCarveout::identity_map) or [fixed offset](PhysCarveout::offset_map) of the physical address |
//! | [`DmaHeapRegion`] + [`contiguous_phys_addr`] | a CMA heap (`CONFIG_DMABUF_HEAPS_CMA`, `cma=` or a `linux,cma` / `reusable` pool), root for `/proc/self/pagemap` | checked page by page | the physical address from pagemap ([`DmaHeapRegion::pagemap_map`]) |
//! | [`UDmaBufRegion`] | the out-of-tree u-dma-buf module (`/dev/udmabufN`) | yes | `phys_addr` from sysfs ([`identity`](UDmaBufRegion::identity_map)) |
//!
//! **Two sources, one spelling each.** The kernel's udmabuf (`/dev/udmabuf`,
//! `CONFIG_UDMABUF`: a dma-buf made of a sealed memfd's pages, not contiguous) is spelled
//! `Udmabuf` everywhere ([`UdmabufRegion`], module `udmabuf`, board files' `udmabuf`); the
//! out-of-tree u-dma-buf driver (`/dev/udmabufN`: contiguous memory at a physical address
//! sysfs gives) is spelled `UDmaBuf` ([`UDmaBufRegion`], [`UDmaBufCache`](crate::UDmaBufCache),
//! `u_dma_buf_*`, board files' `u-dma-buf`). They are different drivers with different
//! properties, not two spellings of one.
//!
//! The last two are the mainline routes to memory that is at once **cacheable**,
//! physically contiguous and at a known device address (without an IOMMU or TI's ioctl).
//! Their cache maintenance: a CMA heap's `DMA_BUF_IOCTL_SYNC` does nothing with no
//! device attached, so use `Arm64El0Cache` (aarch64) or `coherent` on I/O-coherent
//! hardware; u-dma-buf has [`UDmaBufCache`](crate::UDmaBufCache) (its sysfs sync
//! attributes) or `Arm64El0Cache`. A cacheable `/dev/mem` carveout is not a route on a
//! mainline arm64 kernel: see [`PhysCarveout`].
//!
//! Every constructor that fails says **why** the source cannot be used on this system: a
//! missing device node (and the kernel option or module behind it), a permission problem
//! (and the udev fix), no contiguous memory left, a malformed sysfs or device-tree file.
//!
//! All filesystem roots (`/dev`, `/sys`, `/proc/device-tree`) come from a [`SysRoots`], so
//! discovery can be tested against a fake tree.
//!
//! Which cache maintenance fits which source: see [`crate::DmaBufCache`] (udmabuf: real
//! maintenance on arm64; mainline heaps: possibly none) and the notes on
//! [`PhysCarveout`] (`/dev/mem` and UIO give uncached or Device memory on arm64).

use crate::sys::{self, Mmap, OwnsMmap, page_size};
use crate::uapi::{
    DmaHeapAllocationData, RprocDmaBufAttachData, UDMABUF_FLAGS_CLOEXEC, UdmabufCreate,
};
use intercore::{DevAddr, LinearMap, SharedMemory};
use std::ffi::CString;
use std::fmt;
use std::fs::OpenOptions;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

mod carveout;
mod devtree;
mod dma_heap;
#[cfg(all(feature = "vfio", feature = "test-utils"))]
pub mod edu;
mod guest;
mod memfd;
mod pagemap;
#[cfg(test)]
mod tests;
mod u_dma_buf;
mod udmabuf;
mod uio;
#[cfg(feature = "vfio")]
mod vfio;

pub use carveout::{DevMemCaching, PhysCarveout};
pub use devtree::{ReservedMemory, parse_reg, reserved_memory};
pub use dma_heap::{DmaHeapRegion, RprocDmaBufAttach, list_dma_heaps};
pub use guest::{GuestMemory, GuestRegion};
pub use memfd::{MemfdRegion, PrivateRegion};
pub use pagemap::{
    PM_PFN_MASK, PM_PRESENT, PM_SWAPPED, check_contiguous, contiguous_phys_addr, own_pagemap,
    phys_pages,
};
pub use u_dma_buf::{
    SyncDirection, UDmaBufInfo, UDmaBufRegion, UDmaBufSync, u_dma_buf_devices, u_dma_buf_info,
};
pub use udmabuf::UdmabufRegion;
pub use uio::{UioDevice, UioMap, uio_device, uio_devices};
#[cfg(feature = "vfio")]
pub use vfio::{VfioDevice, VfioDeviceId, VfioIommu, VfioRegion};

/// Where the kernel's filesystems are mounted. [`Default`] is the real system; tests build
/// a fake tree in a temporary directory and use [`SysRoots::under`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SysRoots {
    /// Device nodes (`/dev`).
    pub dev: PathBuf,
    /// sysfs (`/sys`).
    pub sys: PathBuf,
    /// The flattened device tree (`/proc/device-tree`).
    pub device_tree: PathBuf,
}

impl Default for SysRoots {
    fn default() -> Self {
        Self {
            dev: "/dev".into(),
            sys: "/sys".into(),
            device_tree: "/proc/device-tree".into(),
        }
    }
}

impl SysRoots {
    /// `root/dev`, `root/sys` and `root/proc/device-tree`.
    pub fn under(root: &Path) -> Self {
        Self {
            dev: root.join("dev"),
            sys: root.join("sys"),
            device_tree: root.join("proc/device-tree"),
        }
    }
}

/// Why a memory source cannot be used.
#[derive(Debug)]
#[non_exhaustive]
pub enum MemError {
    /// A device node, directory or file does not exist (or no driver answers it).
    Missing {
        /// The path looked for.
        path: PathBuf,
        /// What provides it.
        hint: &'static str,
    },
    /// The process may not open or map it.
    PermissionDenied {
        /// The path refused.
        path: PathBuf,
        /// How to get access.
        hint: &'static str,
    },
    /// A sysfs or device-tree file does not hold what the kernel writes there.
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        what: String,
    },
    /// Nothing of that name exists (a heap, a reserved-memory node, a UIO map).
    NotFound {
        /// What was looked for, and what exists instead.
        what: String,
    },
    /// A name matches more than one thing.
    Ambiguous {
        /// The name and its matches.
        what: String,
    },
    /// The request itself cannot be satisfied as asked (size 0, misaligned, too large).
    InvalidRequest(String),
    /// The kernel has not enough (contiguous) memory for it.
    OutOfMemory {
        /// What was asked for.
        what: String,
        /// Where more memory comes from.
        hint: &'static str,
    },
    /// The kernel refused for another reason.
    Os {
        /// The operation (`"UDMABUF_CREATE on /dev/udmabuf"`).
        op: String,
        /// The error the kernel returned.
        source: io::Error,
        /// The likely reasons.
        hint: &'static str,
    },
}

impl fmt::Display for MemError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MemError::Missing { path, hint } => {
                write!(
                    f,
                    "{} does not exist (or has no driver): {hint}",
                    path.display()
                )
            }
            MemError::PermissionDenied { path, hint } => {
                write!(f, "permission denied on {}: {hint}", path.display())
            }
            MemError::Malformed { path, what } => write!(f, "malformed {}: {what}", path.display()),
            MemError::NotFound { what } => write!(f, "not found: {what}"),
            MemError::Ambiguous { what } => write!(f, "ambiguous: {what}"),
            MemError::InvalidRequest(what) => write!(f, "invalid request: {what}"),
            MemError::OutOfMemory { what, hint } => {
                write!(f, "not enough memory: {what}: {hint}")
            }
            MemError::Os { op, source, hint } => {
                write!(f, "{op} failed: {source}")?;
                if !hint.is_empty() {
                    write!(f, " ({hint})")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for MemError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            MemError::Os { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl From<MemError> for io::Error {
    fn from(e: MemError) -> Self {
        let kind = match &e {
            MemError::Missing { .. } | MemError::NotFound { .. } => io::ErrorKind::NotFound,
            MemError::PermissionDenied { .. } => io::ErrorKind::PermissionDenied,
            MemError::Malformed { .. } => io::ErrorKind::InvalidData,
            MemError::Ambiguous { .. } | MemError::InvalidRequest(_) => io::ErrorKind::InvalidInput,
            MemError::OutOfMemory { .. } => io::ErrorKind::OutOfMemory,
            MemError::Os { source, .. } => source.kind(),
        };
        io::Error::new(kind, e)
    }
}

pub(crate) const UDEV_HINT: &str = "run as root or add a udev rule giving this user read/write access (e.g. SUBSYSTEM==\"...\", KERNEL==\"<node>\", GROUP=\"<group>\", MODE=\"0660\")";
const UDMABUF_MISSING: &str =
    "the kernel has no udmabuf driver (CONFIG_UDMABUF; try `modprobe udmabuf`)";
const HEAPS_MISSING: &str = "the kernel has no dma-buf heaps (CONFIG_DMABUF_HEAPS with CONFIG_DMABUF_HEAPS_SYSTEM / _CMA, or a vendor carveout heap)";
const DEVMEM_MISSING: &str = "the kernel has no /dev/mem (CONFIG_DEVMEM)";
const DEVMEM_PERM: &str = "/dev/mem needs root (CAP_SYS_RAWIO)";
pub(crate) const UIO_MISSING: &str = "no such UIO device (CONFIG_UIO with uio_pdrv_genirq or generic-uio bound to the carveout's device-tree node)";
/// `ENOSYS` from an ioctl is never a kernel's answer for these devices: qemu-user returns
/// it for ioctls it does not know how to forward.
const NOT_FORWARDED: &str =
    "ENOSYS: an emulator (qemu-user) that does not forward this ioctl, not the kernel";
const RPROC_MISSING: &str =
    "no remoteproc character device (CONFIG_REMOTEPROC_CDEV, and a remoteproc driver bound)";

/// Classifies a failed `open` of a device node or file.
fn open_error(path: &Path, e: io::Error, missing: &'static str, perm: &'static str) -> MemError {
    match e.raw_os_error() {
        Some(libc::ENOENT | libc::ENODEV | libc::ENXIO) => MemError::Missing {
            path: path.to_path_buf(),
            hint: missing,
        },
        Some(libc::EACCES | libc::EPERM) => MemError::PermissionDenied {
            path: path.to_path_buf(),
            hint: perm,
        },
        _ => MemError::Os {
            op: format!("open {}", path.display()),
            source: e,
            hint: "",
        },
    }
}

/// Opens `path` read/write, close-on-exec (and with `extra` open flags).
pub(crate) fn open_rw(
    path: &Path,
    extra: libc::c_int,
    missing: &'static str,
    perm: &'static str,
) -> Result<OwnedFd, MemError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(extra)
        .open(path)
        .map(OwnedFd::from)
        .map_err(|e| open_error(path, e, missing, perm))
}

pub(crate) fn mmap_error(what: &Path, e: io::Error, hint: &'static str) -> MemError {
    match e.raw_os_error() {
        Some(libc::EPERM | libc::EACCES) => MemError::PermissionDenied {
            path: what.to_path_buf(),
            hint,
        },
        Some(libc::ENOMEM) => MemError::OutOfMemory {
            what: format!("mapping {}", what.display()),
            hint: "the address space or the memory map limit is exhausted",
        },
        _ => MemError::Os {
            op: format!("mmap of {}", what.display()),
            source: e,
            hint,
        },
    }
}

/// The largest buffer [`DmaHeapRegion`] and [`UdmabufRegion`] ask the kernel for unless told
/// otherwise (`alloc_capped` / `create_capped`): 256 MiB. A mainline heap does not refuse a
/// request larger than the memory it can get; it reclaims, and the OOM killer may end the
/// caller. udmabuf refuses above its `size_limit_mb` parameter (64 MiB by default) itself.
pub const DEFAULT_MAX_ALLOC: usize = 256 << 20;

fn check_cap(what: &str, len: usize, max: usize) -> Result<(), MemError> {
    if len > max {
        return Err(MemError::InvalidRequest(format!(
            "{what} allocation of {len:#x} bytes is above the cap of {max:#x} bytes (DEFAULT_MAX_ALLOC is {:#x}; a larger cap is passed explicitly)",
            DEFAULT_MAX_ALLOC
        )));
    }
    Ok(())
}

/// Reads a sysfs or device-tree file; a missing one is [`MemError::Missing`] with `missing`.
fn read_file(path: &Path, missing: &'static str) -> Result<Vec<u8>, MemError> {
    std::fs::read(path).map_err(|e| open_error(path, e, missing, UDEV_HINT))
}
