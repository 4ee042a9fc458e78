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

use super::{MemError, SysRoots};
use crate::sys::ioctl::{ioctl, ioctl_val, vfio as req};
use crate::sys::page_size;
use crate::uapi::{
    VFIO_API_VERSION, VFIO_DMA_MAP_FLAG_READ, VFIO_DMA_MAP_FLAG_WRITE, VFIO_GROUP_FLAGS_VIABLE,
    VFIO_TYPE1_IOMMU, VFIO_TYPE1V2_IOMMU,
};
use intercore::dataplane::{DataWindows, Fault, FaultKind, Iommu, Perm};
use intercore::{DevAddr, Error, SharedMemory};
use std::ffi::CString;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::path::Path;

const VFIO_MISSING: &str = "the kernel has no VFIO (CONFIG_VFIO, CONFIG_VFIO_IOMMU_TYPE1; `modprobe vfio vfio_iommu_type1`)";
const GROUP_MISSING: &str = "no such VFIO group: bind the remote core's IOMMU device to a VFIO driver (vfio-platform / vfio-pci) so that /dev/vfio/<group> appears";
const GROUP_BUSY: &str = "the VFIO group is open already: another process holds it, or this process still has it open (an earlier VfioIommu, or a device descriptor or BAR mapping taken from one and kept after it was dropped)";
/// `VFIO_SET_IOMMU` answers EPERM when the IOMMU cannot remap interrupts and the type1
/// driver was not told to accept that (vfio_iommu_type1.c, `allow_unsafe_interrupts`).
const SET_IOMMU_EPERM: &str = "the IOMMU offers no interrupt remapping (virtio-iommu never does; intel-iommu only with intremap=on), and vfio_iommu_type1 refuses such an IOMMU unless loaded with allow_unsafe_interrupts=1 (`modprobe vfio_iommu_type1 allow_unsafe_interrupts=1`, or write Y to /sys/module/vfio_iommu_type1/parameters/allow_unsafe_interrupts) — acceptable only where the device cannot forge MSI writes";
/// What VFIO type1 cannot pin.
pub(crate) const PFNMAP_REFUSAL: &str = "the region is mapped VM_PFNMAP (a dma-buf heap buffer or a dma-buf's own mmap): VFIO type1 pins pages with pin_user_pages, which refuses VM_PFNMAP mappings (VFIO_IOMMU_MAP_DMA fails with EFAULT); use a UdmabufRegion (its CPU view maps the backing memfd, whose pages can be pinned) or other ordinary memory";
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
                hint: GROUP_BUSY,
            },
            _ => MemError::Os {
                op: format!("open {}", path.display()),
                source: e,
                hint: "",
            },
        })
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
/// The kernel pins the pages of every window. When this value drops, the devices opened
/// through it ([`open_device`](Self::open_device)) are closed first (vfio-pci resets and
/// disables the device), then the windows still mapped are unmapped, then the group and the
/// container are closed; the region itself is dropped last, so the device can never reach
/// released host memory through it.
///
/// The region may not be a `VM_PFNMAP` mapping (a dma-buf heap buffer, a dma-buf's mmap):
/// type1 cannot pin those, and [`open`](Self::open) refuses them naming the cause.
#[derive(Debug)]
pub struct VfioIommu<M: SharedMemory> {
    // Declared first: the devices are closed before the group and the container (a device
    // descriptor keeps the group open, so a later `open` of it would fail with EBUSY).
    devices: Vec<VfioDevice>,
    group: OwnedFd,
    container: OwnedFd,
    windows: Vec<Window>,
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
        if vm_pfnmap(mem.as_ptr() as usize, mem.len())? {
            return Err(MemError::InvalidRequest(PFNMAP_REFUSAL.into()));
        }
        let cpath = roots.dev.join("vfio/vfio");
        let container = open(&cpath, VFIO_MISSING)?;
        let not_vfio = "the node is not a VFIO container";
        let v = ioctl_val(container.as_fd(), req::GET_API_VERSION, 0)
            .map_err(|e| os("VFIO_GET_API_VERSION", e, not_vfio))?;
        if v != VFIO_API_VERSION {
            return Err(MemError::Os {
                op: "VFIO_GET_API_VERSION".into(),
                source: io::Error::other(format!("API version {v}, expected {VFIO_API_VERSION}")),
                hint: "unknown VFIO API",
            });
        }
        let has = |t: u32| {
            ioctl_val(container.as_fd(), req::CHECK_EXTENSION, t as libc::c_ulong)
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
        let status_flags = req::group_status(group_fd.as_fd())
            .map_err(|e| os("VFIO_GROUP_GET_STATUS", e, "the node is not a VFIO group"))?;
        if status_flags & VFIO_GROUP_FLAGS_VIABLE == 0 {
            return Err(MemError::InvalidRequest(format!(
                "VFIO group {group} is not viable: every device in it must be bound to a VFIO driver (or to none)"
            )));
        }
        let mut cfd: libc::c_int = container.as_raw_fd();
        ioctl(group_fd.as_fd(), req::GROUP_SET_CONTAINER, &mut cfd).map_err(|e| {
            os(
                "VFIO_GROUP_SET_CONTAINER",
                e,
                "the group already belongs to a container",
            )
        })?;
        ioctl_val(
            container.as_fd(),
            req::SET_IOMMU,
            iommu_type as libc::c_ulong,
        )
        .map_err(|e| {
            let hint = if e.raw_os_error() == Some(libc::EPERM) {
                SET_IOMMU_EPERM
            } else {
                "the IOMMU refused the type1 backend"
            };
            os("VFIO_SET_IOMMU", e, hint)
        })?;
        Ok(Self {
            devices: Vec::new(),
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

    /// Opens the group's device `name` (a PCI address such as `0000:00:03.0` for vfio-pci)
    /// with `VFIO_GROUP_GET_DEVICE_FD`. The device belongs to this container: it is closed
    /// when the container is, and reached through [`device`](Self::device).
    pub fn open_device(&mut self, name: &str) -> Result<VfioDeviceId, MemError> {
        let c = CString::new(name)
            .map_err(|_| MemError::InvalidRequest(format!("device name {name:?} contains NUL")))?;
        let fd = req::group_get_device_fd(self.group.as_fd(), &c).map_err(|e| {
                let hint = match e.raw_os_error() {
                    Some(libc::ENODEV) => {
                        "no device of that name in this group (names are `DDDD:BB:DD.F` for PCI, see /sys/kernel/iommu_groups/<group>/devices)"
                    }
                    Some(libc::EBUSY) => "the device is open already",
                    _ => "",
                };
                os(&format!("VFIO_GROUP_GET_DEVICE_FD {name}"), e, hint)
        })?;
        let file = File::from(fd);
        self.devices.push(VfioDevice {
            file,
            name: name.to_string(),
        });
        Ok(VfioDeviceId(self.devices.len() - 1))
    }

    /// A device opened by [`open_device`](Self::open_device).
    pub fn device(&self, id: VfioDeviceId) -> &VfioDevice {
        &self.devices[id.0]
    }

    /// The windows mapped now, as (I/O virtual address, length, region offset).
    pub fn windows(&self) -> impl Iterator<Item = (DevAddr, usize, usize)> + '_ {
        self.windows
            .iter()
            .map(|w| (DevAddr(w.iova), w.len as usize, w.off))
    }

    fn unmap_raw(&self, iova: u64, size: u64) -> io::Result<u64> {
        req::unmap_dma(self.container.as_fd(), iova, size)
    }
}

#[derive(Debug, Clone, Copy)]
struct Window {
    iova: u64,
    len: u64,
    off: usize,
    perm: Perm,
}

/// Which device of a [`VfioIommu`] (returned by [`VfioIommu::open_device`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VfioDeviceId(usize);

/// A device opened through a [`VfioIommu`]'s group; it lives as long as the container.
///
/// Its regions (a PCI device's BARs and configuration space) are reached with `pread` /
/// `pwrite` at the offsets `VFIO_DEVICE_GET_REGION_INFO` gives — no mapping of device
/// memory outlives the device.
#[derive(Debug)]
pub struct VfioDevice {
    file: File,
    name: String,
}

/// One region of a [`VfioDevice`] (`struct vfio_region_info`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VfioRegion {
    /// The region index (`VFIO_PCI_BAR0_REGION_INDEX`, …).
    pub index: u32,
    /// `VFIO_REGION_INFO_FLAG_*`.
    pub flags: u32,
    /// Bytes of the region (0: the device has no such region).
    pub size: u64,
    /// The region's offset in the device descriptor.
    pub offset: u64,
}

impl VfioDevice {
    /// The device's name in its group.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The device descriptor.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }

    /// `VFIO_DEVICE_GET_REGION_INFO` for region `index`.
    pub fn region(&self, index: u32) -> Result<VfioRegion, MemError> {
        let info = req::region_info(self.file.as_fd(), index).map_err(|e| {
            os(
                &format!("VFIO_DEVICE_GET_REGION_INFO {} region {index}", self.name),
                e,
                "the device has no region of that index",
            )
        })?;
        Ok(VfioRegion {
            index,
            flags: info.flags,
            size: info.size,
            offset: info.offset,
        })
    }

    fn check(&self, r: &VfioRegion, at: u64, n: usize) -> Result<u64, MemError> {
        match at.checked_add(n as u64) {
            Some(end) if end <= r.size => Ok(r.offset + at),
            _ => Err(MemError::InvalidRequest(format!(
                "{}: bytes {at:#x}..+{n:#x} are outside region {} ({:#x} bytes)",
                self.name, r.index, r.size
            ))),
        }
    }

    /// Reads `buf.len()` bytes at `at` in region `r` (one `pread`; a 4- or 8-byte read is
    /// one access of that width for vfio-pci BARs).
    pub fn read(&self, r: &VfioRegion, at: u64, buf: &mut [u8]) -> Result<(), MemError> {
        let pos = self.check(r, at, buf.len())?;
        self.file.read_exact_at(buf, pos).map_err(|e| {
            os(
                &format!("read of {} region {} at {at:#x}", self.name, r.index),
                e,
                "",
            )
        })
    }

    /// Writes `buf` at `at` in region `r` (one `pwrite`).
    pub fn write(&self, r: &VfioRegion, at: u64, buf: &[u8]) -> Result<(), MemError> {
        let pos = self.check(r, at, buf.len())?;
        self.file.write_all_at(buf, pos).map_err(|e| {
            os(
                &format!("write of {} region {} at {at:#x}", self.name, r.index),
                e,
                "",
            )
        })
    }
}

/// Whether any mapping overlapping `addr..addr+len` of this process is `VM_PFNMAP` (the
/// `pf` flag in `/proc/self/smaps`' `VmFlags`). A kernel without `VmFlags` (before 3.8)
/// answers "no"; VFIO then reports the EFAULT itself.
fn vm_pfnmap(addr: usize, len: usize) -> Result<bool, MemError> {
    let text = std::fs::read_to_string("/proc/self/smaps").map_err(|e| {
        os(
            "read /proc/self/smaps",
            e,
            "procfs is needed to check the region's mapping",
        )
    })?;
    Ok(pfnmap_in(&text, addr as u64, addr as u64 + len as u64))
}

/// The `/proc/PID/smaps` parser behind [`vm_pfnmap`]: a header line starts with
/// `start-end` in hex; the `VmFlags:` line after it lists two-letter flags (`pf` =
/// VM_PFNMAP, fs/proc/task_mmu.c `show_smap_vma_flags`).
fn pfnmap_in(smaps: &str, lo: u64, hi: u64) -> bool {
    let mut overlapping = false;
    for line in smaps.lines() {
        if let Some(flags) = line.strip_prefix("VmFlags:") {
            if overlapping && flags.split_whitespace().any(|f| f == "pf") {
                return true;
            }
            continue;
        }
        let range = line.split_whitespace().next().unwrap_or("");
        if let Some((a, b)) = range.split_once('-') {
            if let (Ok(a), Ok(b)) = (u64::from_str_radix(a, 16), u64::from_str_radix(b, 16)) {
                overlapping = a < hi && lo < b;
            }
        }
    }
    false
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
        if self
            .windows
            .iter()
            .any(|w| w.iova < hi && lo < w.iova + w.len)
        {
            return Err(Error::Config("window overlaps an existing one"));
        }
        let flags = if perm.read { VFIO_DMA_MAP_FLAG_READ } else { 0 }
            | if perm.write {
                VFIO_DMA_MAP_FLAG_WRITE
            } else {
                0
            };
        req::map_dma(self.container.as_fd(), &self.mem, off, len, da.0, flags).map_err(
            |e| match e.raw_os_error() {
                // vfio_iommu_type1.c: vaddr_get_pfns fails with EFAULT where
                // pin_user_pages cannot pin (VM_PFNMAP, VM_IO).
                Some(libc::EFAULT) => Error::Config(
                    "VFIO_IOMMU_MAP_DMA: EFAULT: the kernel cannot pin these pages (a VM_PFNMAP or VM_IO mapping, such as a dma-buf heap buffer, cannot be mapped by VFIO type1)",
                ),
                Some(libc::EEXIST) => Error::Config(
                    "VFIO_IOMMU_MAP_DMA: EEXIST: the container already maps part of that I/O address range",
                ),
                Some(libc::ENOMEM) => Error::Config(
                    "VFIO_IOMMU_MAP_DMA: ENOMEM: RLIMIT_MEMLOCK exceeded (pinned pages count against it) or vfio_iommu_type1's dma_entry_limit reached",
                ),
                Some(libc::EINVAL) => Error::Config(
                    "VFIO_IOMMU_MAP_DMA: EINVAL: the IOMMU refused the address, size or alignment (outside its aperture, or below its page size)",
                ),
                other => Error::Os(other.unwrap_or(libc::EIO)),
            },
        )?;
        self.windows.push(Window {
            iova: da.0,
            len: len as u64,
            off,
            perm,
        });
        Ok(())
    }

    /// Unmaps the window that was mapped at `da` with length `len`.
    fn unmap(&mut self, da: DevAddr, len: usize) -> intercore::Result<()> {
        let at = self
            .windows
            .iter()
            .position(|w| w.iova == da.0 && w.len == len as u64)
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

/// The windows as the device sees them: what a remote built on the device (its DMA engine
/// behind this IOMMU) checks before it uses an address, so a fault it reports is one the
/// IOMMU would have raised.
impl<M: SharedMemory> DataWindows for VfioIommu<M> {
    fn translate(&self, da: DevAddr, len: usize, write: bool) -> Result<usize, Fault> {
        let fault = |kind| Fault {
            da,
            len,
            write,
            kind,
        };
        let end =
            da.0.checked_add(len as u64)
                .ok_or(fault(FaultKind::Unmapped))?;
        let w = self
            .windows
            .iter()
            .find(|w| w.iova <= da.0 && end <= w.iova + w.len)
            .ok_or(fault(FaultKind::Unmapped))?;
        if (write && !w.perm.write) || (!write && !w.perm.read) {
            return Err(fault(FaultKind::Permission));
        }
        Ok(w.off + (da.0 - w.iova) as usize)
    }
}

impl<M: SharedMemory> Drop for VfioIommu<M> {
    fn drop(&mut self) {
        // Devices first: closing a vfio-pci device disables it, so no DMA is in flight
        // while its windows go.
        self.devices.clear();
        for w in &self.windows {
            // Closing the container unmaps everything anyway; this makes the order
            // explicit (windows gone before the region's memory is released).
            let _ = self.unmap_raw(w.iova, w.len);
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

    /// The smaps parser finds `pf` (VM_PFNMAP, fs/proc/task_mmu.c) only in the VmFlags of
    /// a mapping that overlaps the range asked about.
    #[test]
    fn pfnmap_flag_is_read_from_smaps() {
        let smaps = "\
7f0000000000-7f0000004000 rw-s 00000000 00:0f 12 /dmabuf:
Size:                 16 kB
VmFlags: rd wr sh mr mw me ms pf io dc de dd sd
7f0000004000-7f0000008000 rw-s 00000000 00:01 13 /memfd:intercore (deleted)
Size:                 16 kB
VmFlags: rd wr sh mr mw me ms sd
";
        assert!(pfnmap_in(smaps, 0x7f00_0000_0000, 0x7f00_0000_1000));
        assert!(pfnmap_in(smaps, 0x7f00_0000_3000, 0x7f00_0000_5000));
        assert!(!pfnmap_in(smaps, 0x7f00_0000_4000, 0x7f00_0000_8000));
        assert!(!pfnmap_in(smaps, 0x1000, 0x2000));
    }

    /// Ordinary memory (a memfd mapping) is not VM_PFNMAP in this process's real smaps.
    #[test]
    fn memfd_region_is_not_pfnmap() {
        let mem = MemfdRegion::create("intercore-vfio", 8192).unwrap();
        assert!(!vm_pfnmap(mem.as_ptr() as usize, mem.len()).unwrap());
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
