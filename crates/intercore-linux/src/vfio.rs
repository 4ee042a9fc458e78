//! The remote core's IOMMU through VFIO type1 (feature `vfio`): windows of a host region
//! mapped at I/O virtual addresses the host chooses.
//!
//! Sequence (the kernel's `Documentation/driver-api/vfio.rst`): open the container
//! `/dev/vfio/vfio`, check `VFIO_GET_API_VERSION` and `VFIO_CHECK_EXTENSION(type1)`, open
//! the group `/dev/vfio/<N>`, check it is viable (`VFIO_GROUP_GET_STATUS`), put it in the
//! container (`VFIO_GROUP_SET_CONTAINER`), select the IOMMU (`VFIO_SET_IOMMU`), then
//! `VFIO_IOMMU_MAP_DMA` / `VFIO_IOMMU_UNMAP_DMA` per window.
//!
//! VFIO has no cache-maintenance operation: pair it with a [`CacheOps`] that does the
//! maintenance (e.g. `Arm64El0Cache`). vfio-platform (the usual way to give a remote core's
//! IOMMU stream to VFIO) is being retired upstream; iommufd (`IOMMU_IOAS_MAP` with
//! `FIXED_IOVA`) is its successor and not covered here.
//!
//! [`CacheOps`]: intercore::dataplane::CacheOps

use crate::SysRoots;
use crate::dmabuf::{MemError, page_size};
use crate::uapi::{
    VFIO_API_VERSION, VFIO_CHECK_EXTENSION, VFIO_DMA_MAP_FLAG_READ, VFIO_DMA_MAP_FLAG_WRITE,
    VFIO_GET_API_VERSION, VFIO_GROUP_FLAGS_VIABLE, VFIO_GROUP_GET_STATUS, VFIO_GROUP_SET_CONTAINER,
    VFIO_IOMMU_MAP_DMA, VFIO_IOMMU_UNMAP_DMA, VFIO_SET_IOMMU, VFIO_TYPE1_IOMMU, VFIO_TYPE1V2_IOMMU,
    VfioGroupStatus, VfioIommuType1DmaMap, VfioIommuType1DmaUnmap,
};
use intercore::dataplane::{Iommu, Perm};
use intercore::{DevAddr, Error, SharedMemory};
use std::fs::OpenOptions;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;

const VFIO_MISSING: &str = "the kernel has no VFIO (CONFIG_VFIO, CONFIG_VFIO_IOMMU_TYPE1; `modprobe vfio vfio_iommu_type1`)";
const GROUP_MISSING: &str = "no such VFIO group: bind the remote core's IOMMU device to a VFIO driver (vfio-platform / vfio-pci) so that /dev/vfio/<group> appears";
const VFIO_PERM: &str = "run as root, or give this user the group node with a udev rule (and enough RLIMIT_MEMLOCK for the pinned pages)";

fn open(path: &Path, missing: &'static str) -> Result<OwnedFd, MemError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map(OwnedFd::from)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ENOENT | libc::ENODEV | libc::ENXIO) => MemError::Missing {
                path: path.to_path_buf(),
                hint: missing,
            },
            Some(libc::EACCES | libc::EPERM) => MemError::PermissionDenied {
                path: path.to_path_buf(),
                hint: VFIO_PERM,
            },
            Some(libc::EBUSY) => MemError::Os {
                op: format!("open {}", path.display()),
                source: e,
                hint: "another process holds the VFIO group",
            },
            _ => MemError::Os {
                op: format!("open {}", path.display()),
                source: e,
                hint: "",
            },
        })
}

/// An ioctl whose argument is passed by value (not a pointer).
fn ioctl_val(fd: BorrowedFd<'_>, req: u32, arg: libc::c_ulong) -> io::Result<libc::c_int> {
    loop {
        // SAFETY: the VFIO requests used with this helper (GET_API_VERSION,
        // CHECK_EXTENSION, SET_IOMMU) take an integer by value and access no memory of ours.
        let r = unsafe { libc::ioctl(fd.as_raw_fd(), req as libc::Ioctl, arg) };
        if r >= 0 {
            return Ok(r);
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINTR) {
            return Err(e);
        }
    }
}

/// An ioctl whose argument is a pointer to `arg`.
///
/// # Safety
///
/// `req` must access at most `size_of::<T>()` bytes at the pointer, with `T`'s layout.
unsafe fn ioctl_ptr<T>(fd: BorrowedFd<'_>, req: u32, arg: &mut T) -> io::Result<libc::c_int> {
    loop {
        // SAFETY: `arg` is a live, exclusively borrowed `T`; the caller guarantees the
        // ioctl accesses only that many bytes with that layout.
        let r = unsafe { libc::ioctl(fd.as_raw_fd(), req as libc::Ioctl, arg as *mut T) };
        if r >= 0 {
            return Ok(r);
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINTR) {
            return Err(e);
        }
    }
}

fn os(op: &str, e: io::Error, hint: &'static str) -> MemError {
    MemError::Os {
        op: op.to_string(),
        source: e,
        hint,
    }
}

/// A VFIO type1 container holding one group, mapping windows of the region `M` at I/O
/// virtual addresses the host chooses: the core's [`Iommu`], on Linux.
///
/// The kernel pins the pages of every window. Windows still mapped when this value drops
/// are unmapped first; the region itself is dropped last, after the container is closed, so
/// the device can never reach unmapped host memory through it.
#[derive(Debug)]
pub struct VfioIommu<M: SharedMemory> {
    group: OwnedFd,
    container: OwnedFd,
    windows: Vec<(u64, u64)>,
    iommu_type: u32,
    // Declared last: dropped after both descriptors are closed.
    mem: M,
}

impl<M: SharedMemory> VfioIommu<M> {
    /// Opens `/dev/vfio/vfio` and the group `/dev/vfio/<group>` and sets up a type1 IOMMU
    /// (v2 semantics when the kernel has them) whose windows map bytes of `mem`.
    pub fn open(group: u32, mem: M) -> Result<Self, MemError> {
        Self::open_in(&SysRoots::default(), group, mem)
    }

    /// As [`open`](Self::open), with the nodes under `roots.dev/vfio`.
    pub fn open_in(roots: &SysRoots, group: u32, mem: M) -> Result<Self, MemError> {
        if mem.as_ptr().is_null() {
            return Err(MemError::InvalidRequest(
                "the region has no direct mapping to give the IOMMU".into(),
            ));
        }
        let cpath = roots.dev.join("vfio/vfio");
        let container = open(&cpath, VFIO_MISSING)?;
        let not_vfio = "the node is not a VFIO container";
        let v = ioctl_val(container.as_fd(), VFIO_GET_API_VERSION, 0)
            .map_err(|e| os("VFIO_GET_API_VERSION", e, not_vfio))?;
        if v != VFIO_API_VERSION {
            return Err(MemError::Os {
                op: "VFIO_GET_API_VERSION".into(),
                source: io::Error::other(format!("API version {v}, expected {VFIO_API_VERSION}")),
                hint: "unknown VFIO API",
            });
        }
        let has = |t: u32| {
            ioctl_val(container.as_fd(), VFIO_CHECK_EXTENSION, t as libc::c_ulong)
                .is_ok_and(|r| r > 0)
        };
        let iommu_type = if has(VFIO_TYPE1V2_IOMMU) {
            VFIO_TYPE1V2_IOMMU
        } else if has(VFIO_TYPE1_IOMMU) {
            VFIO_TYPE1_IOMMU
        } else {
            return Err(MemError::Missing {
                path: cpath,
                hint: "the VFIO container offers no type1 IOMMU (CONFIG_VFIO_IOMMU_TYPE1; `modprobe vfio_iommu_type1`)",
            });
        };
        let gpath = roots.dev.join(format!("vfio/{group}"));
        let group_fd = open(&gpath, GROUP_MISSING)?;
        let mut status = VfioGroupStatus {
            argsz: size_of::<VfioGroupStatus>() as u32,
            flags: 0,
        };
        // SAFETY: VFIO_GROUP_GET_STATUS reads `argsz` and writes `flags` of one `struct
        // vfio_group_status` (the layout of `VfioGroupStatus`, checked against vfio.h).
        unsafe { ioctl_ptr(group_fd.as_fd(), VFIO_GROUP_GET_STATUS, &mut status) }
            .map_err(|e| os("VFIO_GROUP_GET_STATUS", e, "the node is not a VFIO group"))?;
        if status.flags & VFIO_GROUP_FLAGS_VIABLE == 0 {
            return Err(MemError::InvalidRequest(format!(
                "VFIO group {group} is not viable: every device in it must be bound to a VFIO driver (or to none)"
            )));
        }
        let mut cfd: libc::c_int = container.as_raw_fd();
        // SAFETY: VFIO_GROUP_SET_CONTAINER reads one int (the container's descriptor) at
        // the pointer.
        unsafe { ioctl_ptr(group_fd.as_fd(), VFIO_GROUP_SET_CONTAINER, &mut cfd) }.map_err(
            |e| {
                os(
                    "VFIO_GROUP_SET_CONTAINER",
                    e,
                    "the group already belongs to a container",
                )
            },
        )?;
        ioctl_val(
            container.as_fd(),
            VFIO_SET_IOMMU,
            iommu_type as libc::c_ulong,
        )
        .map_err(|e| os("VFIO_SET_IOMMU", e, "the IOMMU refused the type1 backend"))?;
        Ok(Self {
            group: group_fd,
            container,
            windows: Vec::new(),
            iommu_type,
            mem,
        })
    }

    /// The region the windows map.
    pub fn memory(&self) -> &M {
        &self.mem
    }

    /// `VFIO_TYPE1v2_IOMMU` or `VFIO_TYPE1_IOMMU`.
    pub fn iommu_type(&self) -> u32 {
        self.iommu_type
    }

    /// The container descriptor (to open devices of the group through it).
    pub fn container_fd(&self) -> BorrowedFd<'_> {
        self.container.as_fd()
    }

    /// The group descriptor.
    pub fn group_fd(&self) -> BorrowedFd<'_> {
        self.group.as_fd()
    }

    fn unmap_raw(&self, iova: u64, size: u64) -> io::Result<u64> {
        let mut arg = VfioIommuType1DmaUnmap {
            argsz: size_of::<VfioIommuType1DmaUnmap>() as u32,
            flags: 0,
            iova,
            size,
        };
        // SAFETY: VFIO_IOMMU_UNMAP_DMA reads `struct vfio_iommu_type1_dma_unmap` (24 bytes
        // without the flexible data[], which flags 0 does not use) and writes back `size`.
        unsafe { ioctl_ptr(self.container.as_fd(), VFIO_IOMMU_UNMAP_DMA, &mut arg) }?;
        Ok(arg.size)
    }
}

impl<M: SharedMemory> Iommu for VfioIommu<M> {
    /// Maps region bytes `off..off+len` at I/O virtual address `da`. All three must be
    /// multiples of the page size (the IOMMU's granule is at least a page on every system
    /// this targets); the window may not overlap another.
    fn map(&mut self, da: DevAddr, off: usize, len: usize, perm: Perm) -> intercore::Result<()> {
        let page = page_size();
        let end = off
            .checked_add(len)
            .ok_or(Error::Config("window overflows"))?;
        if len == 0 || end > self.mem.len() {
            return Err(Error::Config("window outside the region"));
        }
        let vaddr = self.mem.as_ptr() as usize + off;
        if vaddr % page != 0 || len % page != 0 || da.0 % page as u64 != 0 {
            return Err(Error::Config(
                "VFIO windows must start and end on page boundaries (host and I/O addresses)",
            ));
        }
        if da.0.checked_add(len as u64).is_none() {
            return Err(Error::Config("window leaves the 64-bit I/O address space"));
        }
        if !perm.read && !perm.write {
            return Err(Error::Config("a window needs read or write permission"));
        }
        let (lo, hi) = (da.0, da.0 + len as u64);
        if self.windows.iter().any(|&(a, s)| a < hi && lo < a + s) {
            return Err(Error::Config("window overlaps an existing one"));
        }
        let flags = if perm.read { VFIO_DMA_MAP_FLAG_READ } else { 0 }
            | if perm.write {
                VFIO_DMA_MAP_FLAG_WRITE
            } else {
                0
            };
        let mut arg = VfioIommuType1DmaMap {
            argsz: size_of::<VfioIommuType1DmaMap>() as u32,
            flags,
            vaddr: vaddr as u64,
            iova: da.0,
            size: len as u64,
        };
        // SAFETY: reads one `vfio_iommu_type1_dma_map` (our layout, checked against vfio.h);
        // `vaddr..+size` is inside `mem`'s mapping (checked above), which outlives the
        // window because `Drop` unmaps every window before `mem` goes.
        unsafe { ioctl_ptr(self.container.as_fd(), VFIO_IOMMU_MAP_DMA, &mut arg) }
            .map_err(|e| Error::Os(e.raw_os_error().unwrap_or(libc::EIO)))?;
        self.windows.push((da.0, len as u64));
        Ok(())
    }

    /// Unmaps the window that was mapped at `da` with length `len`.
    fn unmap(&mut self, da: DevAddr, len: usize) -> intercore::Result<()> {
        let at = self
            .windows
            .iter()
            .position(|&(a, s)| a == da.0 && s == len as u64)
            .ok_or(Error::Config("no such window"))?;
        let done = self
            .unmap_raw(da.0, len as u64)
            .map_err(|e| Error::Os(e.raw_os_error().unwrap_or(libc::EIO)))?;
        if done != len as u64 {
            return Err(Error::Config("the IOMMU unmapped a different size"));
        }
        self.windows.swap_remove(at);
        Ok(())
    }
}

impl<M: SharedMemory> Drop for VfioIommu<M> {
    fn drop(&mut self) {
        for &(iova, size) in &self.windows {
            // Closing the container unmaps everything anyway; this makes the order
            // explicit (windows gone before the region's memory is released).
            let _ = self.unmap_raw(iova, size);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemfdRegion;

    /// Without `/dev/vfio` the container cannot be opened, and the error names the node and
    /// the kernel options behind it (vfio.rst: the container is `/dev/vfio/vfio`).
    #[test]
    fn missing_vfio_is_explained() {
        let dir = std::env::temp_dir().join(format!("intercore-vfio-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("dev")).unwrap();
        let mem = MemfdRegion::create("intercore-vfio", 8192).unwrap();
        let e = VfioIommu::open_in(&SysRoots::under(&dir), 7, mem).unwrap_err();
        match &e {
            MemError::Missing { path, hint } => {
                assert!(path.ends_with("vfio/vfio"), "{path:?}");
                assert!(hint.contains("CONFIG_VFIO"));
            }
            other => panic!("expected Missing, got {other:?}"),
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A node that is not a VFIO container (here a regular file) is refused at
    /// `VFIO_GET_API_VERSION` (the kernel answers ENOTTY), not used.
    #[test]
    fn non_vfio_node_is_refused() {
        let dir = std::env::temp_dir().join(format!("intercore-vfio2-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("dev/vfio")).unwrap();
        std::fs::write(dir.join("dev/vfio/vfio"), b"").unwrap();
        let mem = MemfdRegion::create("intercore-vfio", 8192).unwrap();
        let e = VfioIommu::open_in(&SysRoots::under(&dir), 7, mem).unwrap_err();
        assert!(
            e.to_string().contains("VFIO_GET_API_VERSION"),
            "unexpected error: {e}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
