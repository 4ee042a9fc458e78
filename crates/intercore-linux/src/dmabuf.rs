//! Buffer memory a remote core can reach, from the Linux side: udmabuf, dma-buf heaps,
//! and physical carveouts (`/dev/mem` or a UIO map), with the device addresses the remote
//! uses for them.
//!
//! | source | what the kernel needs | contiguous? | device address |
//! |---|---|---|---|
//! | [`UdmabufRegion`] | `CONFIG_UDMABUF`, `/dev/udmabuf` | no (memfd pages) | only through an IOMMU (`VfioIommu`, feature `vfio`) |
//! | [`DmaHeapRegion`] | `CONFIG_DMABUF_HEAPS`, `/dev/dma_heap/<name>` | `system`: no; CMA / carveout heaps: yes | IOMMU, or TI's [`RprocDmaBufAttach`] |
//! | [`PhysCarveout`] | `/dev/mem` (root) or a UIO device | yes | [`identity`](PhysCarveout::identity_map) or [fixed offset](PhysCarveout::offset_map) of the physical address |
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

use crate::uapi::{
    DMA_HEAP_IOCTL_ALLOC, DmaHeapAllocationData, RPROC_IOC_DMA_BUF_ATTACH, RprocDmaBufAttachData,
    UDMABUF_CREATE, UDMABUF_FLAGS_CLOEXEC, UdmabufCreate,
};
use intercore::{DevAddr, LinearMap, SharedMemory};
use std::ffi::CString;
use std::fmt;
use std::fs::OpenOptions;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::ptr::NonNull;

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

const UDEV_HINT: &str = "run as root or add a udev rule giving this user read/write access (e.g. SUBSYSTEM==\"...\", KERNEL==\"<node>\", GROUP=\"<group>\", MODE=\"0660\")";
const UDMABUF_MISSING: &str =
    "the kernel has no udmabuf driver (CONFIG_UDMABUF; try `modprobe udmabuf`)";
const HEAPS_MISSING: &str = "the kernel has no dma-buf heaps (CONFIG_DMABUF_HEAPS with CONFIG_DMABUF_HEAPS_SYSTEM / _CMA, or a vendor carveout heap)";
const DEVMEM_MISSING: &str = "the kernel has no /dev/mem (CONFIG_DEVMEM)";
const DEVMEM_PERM: &str = "/dev/mem needs root (CAP_SYS_RAWIO)";
const UIO_MISSING: &str = "no such UIO device (CONFIG_UIO with uio_pdrv_genirq or generic-uio bound to the carveout's device-tree node)";
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
fn open_rw(
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

/// The system's page size.
pub(crate) fn page_size() -> usize {
    // SAFETY: sysconf has no memory-safety preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 { p as usize } else { 4096 }
}

/// Issues an ioctl whose argument is a pointer to `arg`, retrying on `EINTR`.
///
/// # Safety
///
/// `req` must be an ioctl that reads and/or writes at most `size_of::<T>()` bytes at the
/// pointer, with `T`'s layout, on a descriptor of the kind `fd` is.
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

/// A shared read/write mapping of a file, unmapped on drop.
#[derive(Debug)]
struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: a plain shared mapping; all access to it goes through `SharedMemory`'s accessors
// and the core's views, which are valid from any thread.
unsafe impl Send for Mapping {}
// SAFETY: as above; `&Mapping` exposes no references into the mapping.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// `mmap(len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, offset)`.
    fn shared(fd: BorrowedFd<'_>, len: usize, offset: u64) -> io::Result<Self> {
        if len == 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "empty mapping"));
        }
        let off = libc::off_t::try_from(offset).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("offset {offset:#x} does not fit this platform's off_t"),
            )
        })?;
        // SAFETY: a fresh shared mapping of an open descriptor; the kernel chooses the
        // address, so no existing mapping is replaced.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                off,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr =
            NonNull::new(p.cast::<u8>()).ok_or_else(|| io::Error::other("mmap returned null"))?;
        Ok(Self { ptr, len })
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly the mapping made in `shared`; the regions holding it
        // hand out no references that outlive them.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

macro_rules! shared_memory_via_mapping {
    ($t:ty) => {
        // SAFETY: `map` is a live MAP_SHARED read/write mapping for as long as the value
        // lives (unmapped only when it drops), page-aligned (so 8-aligned), and this type
        // creates no references into it.
        unsafe impl SharedMemory for $t {
            fn as_ptr(&self) -> *mut u8 {
                self.map.ptr.as_ptr()
            }
            fn len(&self) -> usize {
                self.map.len
            }
        }
    };
}

fn mmap_error(what: &Path, e: io::Error, hint: &'static str) -> MemError {
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

// ---- udmabuf -----------------------------------------------------------------------------

/// A dma-buf made from a memfd's pages by `/dev/udmabuf`, mapped read/write and shared.
///
/// The memfd is created with `MFD_ALLOW_SEALING` and sealed `F_SEAL_SHRINK | F_SEAL_GROW |
/// F_SEAL_SEAL` — udmabuf requires `F_SEAL_SHRINK` and refuses `F_SEAL_WRITE`, and
/// `F_SEAL_SEAL` keeps anyone from adding it later. The pages are **not physically
/// contiguous**: a remote core reaches them only through an IOMMU. udmabuf's
/// `DMA_BUF_IOCTL_SYNC` does real cache maintenance on arm64 (see
/// [`DmaBufCache`](crate::DmaBufCache)). Mainline limits one buffer to the module parameter
/// `udmabuf.size_limit_mb` (64 MiB by default).
///
/// The CPU view ([`SharedMemory::as_ptr`]) is a shared mapping of the **memfd**, not of the
/// dma-buf: the same pages with the same attributes, but pinnable, so a `VfioIommu` can
/// map them for a device (udmabuf's own mmap is VM_PFNMAP, which VFIO type1 refuses with
/// EFAULT — seen against Linux 6.12). The dma-buf stays open for `DMA_BUF_IOCTL_SYNC`
/// ([`AsFd`] gives it).
#[derive(Debug)]
pub struct UdmabufRegion {
    map: Mapping,
    dmabuf: OwnedFd,
    memfd: OwnedFd,
}

shared_memory_via_mapping!(UdmabufRegion);

impl UdmabufRegion {
    /// A udmabuf of `len` bytes (a non-zero multiple of the page size) from `/dev/udmabuf`.
    pub fn create(len: usize) -> Result<Self, MemError> {
        Self::create_in(&SysRoots::default(), len)
    }

    /// As [`create`](Self::create), with the device node under `roots.dev`; sizes above
    /// [`DEFAULT_MAX_ALLOC`] are refused.
    pub fn create_in(roots: &SysRoots, len: usize) -> Result<Self, MemError> {
        Self::create_capped(roots, len, DEFAULT_MAX_ALLOC)
    }

    /// As [`create_in`](Self::create_in), refusing sizes above `max` bytes before the
    /// kernel is asked.
    pub fn create_capped(roots: &SysRoots, len: usize, max: usize) -> Result<Self, MemError> {
        let page = page_size();
        if len == 0 || len % page != 0 {
            return Err(MemError::InvalidRequest(format!(
                "udmabuf size {len:#x} must be a non-zero multiple of the {page}-byte page"
            )));
        }
        check_cap("udmabuf", len, max)?;
        let memfd = Self::sealed_memfd(len)?;
        Self::from_memfd_capped(roots, memfd, len, max)
    }

    /// A udmabuf over the first `len` bytes of a memfd the caller made (it must be sealed
    /// `F_SEAL_SHRINK` and not `F_SEAL_WRITE`, and hold at least `len` bytes); sizes above
    /// [`DEFAULT_MAX_ALLOC`] are refused. When the kernel refuses (EINVAL), the error says
    /// which of udmabuf's rules the memfd breaks.
    pub fn from_memfd(roots: &SysRoots, memfd: OwnedFd, len: usize) -> Result<Self, MemError> {
        Self::from_memfd_capped(roots, memfd, len, DEFAULT_MAX_ALLOC)
    }

    /// As [`from_memfd`](Self::from_memfd), with the cap `max`.
    pub fn from_memfd_capped(
        roots: &SysRoots,
        memfd: OwnedFd,
        len: usize,
        max: usize,
    ) -> Result<Self, MemError> {
        let page = page_size();
        if len == 0 || len % page != 0 {
            return Err(MemError::InvalidRequest(format!(
                "udmabuf size {len:#x} must be a non-zero multiple of the {page}-byte page"
            )));
        }
        check_cap("udmabuf", len, max)?;
        let node = roots.dev.join("udmabuf");
        let ctl = open_rw(&node, 0, UDMABUF_MISSING, UDEV_HINT)?;
        let mut arg = UdmabufCreate {
            memfd: memfd.as_raw_fd() as u32,
            flags: UDMABUF_FLAGS_CLOEXEC,
            offset: 0,
            size: len as u64,
        };
        // SAFETY: UDMABUF_CREATE reads one `struct udmabuf_create` (the layout of
        // `UdmabufCreate`, checked against the kernel header by a test) and writes nothing.
        let r = unsafe { ioctl_ptr(ctl.as_fd(), UDMABUF_CREATE, &mut arg) }.map_err(|e| {
            let mut op = format!("UDMABUF_CREATE of {len:#x} bytes on {}", node.display());
            let hint = match e.raw_os_error() {
                Some(libc::EINVAL) => {
                    let (why, detail) = udmabuf_einval(roots, memfd.as_fd(), len);
                    op.push_str(&detail);
                    why
                }
                Some(libc::ENOTTY) => "the node is not a udmabuf device",
                Some(libc::ENOSYS) => NOT_FORWARDED,
                _ => "",
            };
            MemError::Os {
                op,
                source: e,
                hint,
            }
        })?;
        // SAFETY: UDMABUF_CREATE returned a new dma-buf descriptor that nothing else owns.
        let dmabuf = unsafe { OwnedFd::from_raw_fd(r) };
        // The CPU view maps the memfd, not the dma-buf: the same pages (udmabuf holds the
        // memfd's folios, and the seals keep them), with the same cacheable attributes, but
        // an ordinary shared-memory mapping that VFIO type1 can pin — udmabuf's own mmap is
        // VM_PFNMAP, which VFIO_IOMMU_MAP_DMA refuses with EFAULT. DMA_BUF_IOCTL_SYNC on the
        // dma-buf works on the pages, whatever mapping the CPU uses.
        let map = Mapping::shared(memfd.as_fd(), len, 0)
            .map_err(|e| mmap_error(&node, e, "mapping the udmabuf's memfd failed"))?;
        Ok(Self { map, dmabuf, memfd })
    }

    /// The memfd udmabuf needs: `len` bytes, `MFD_CLOEXEC | MFD_ALLOW_SEALING`, sealed
    /// `F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL` and **not** `F_SEAL_WRITE`. Public so
    /// that it can be checked (and used) where `/dev/udmabuf` does not exist.
    pub fn sealed_memfd(len: usize) -> Result<OwnedFd, MemError> {
        let os = |op: &str, e: io::Error| MemError::Os {
            op: op.to_string(),
            source: e,
            hint: "",
        };
        let name = CString::new("intercore-udmabuf").expect("no NUL in a literal");
        // SAFETY: `name` is a valid NUL-terminated string; the flags are plain integers.
        let fd = unsafe {
            libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING)
        };
        if fd < 0 {
            return Err(os("memfd_create", io::Error::last_os_error()));
        }
        // SAFETY: memfd_create returned a new descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let size = libc::off_t::try_from(len)
            .map_err(|_| MemError::InvalidRequest(format!("size {len:#x} too large")))?;
        // SAFETY: ftruncate on a descriptor we own.
        if unsafe { libc::ftruncate(fd.as_raw_fd(), size) } < 0 {
            return Err(os("ftruncate of the memfd", io::Error::last_os_error()));
        }
        let seals = libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_SEAL;
        // SAFETY: F_ADD_SEALS with an integer argument on a memfd we own.
        if unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, seals) } < 0 {
            return Err(os("F_ADD_SEALS on the memfd", io::Error::last_os_error()));
        }
        Ok(fd)
    }

    /// The dma-buf descriptor (for `DMA_BUF_IOCTL_SYNC`, an IOMMU, or another process).
    pub fn dmabuf_fd(&self) -> BorrowedFd<'_> {
        self.dmabuf.as_fd()
    }

    /// The memfd whose pages back the buffer.
    pub fn memfd(&self) -> BorrowedFd<'_> {
        self.memfd.as_fd()
    }
}

/// Which of udmabuf's rules (drivers/dma-buf/udmabuf.c `udmabuf_create`: a shmem or
/// hugetlbfs file sealed F_SEAL_SHRINK and not F_SEAL_WRITE, page-aligned, at most
/// `size_limit_mb`, within the file) an EINVAL answer is about: a hint and a detail for
/// the operation's description.
fn udmabuf_einval(roots: &SysRoots, memfd: BorrowedFd<'_>, len: usize) -> (&'static str, String) {
    // SAFETY: F_GET_SEALS takes no argument and only reads the descriptor's seals.
    let seals = unsafe { libc::fcntl(memfd.as_raw_fd(), libc::F_GET_SEALS) };
    if seals < 0 {
        return (
            "udmabuf needs a memfd (memfd_create with MFD_ALLOW_SEALING); this descriptor has no seals to check",
            String::new(),
        );
    }
    if seals & libc::F_SEAL_SHRINK == 0 {
        return (
            "the memfd is not sealed F_SEAL_SHRINK, which udmabuf requires (memfd_create with MFD_ALLOW_SEALING, then F_ADD_SEALS)",
            format!(" (memfd seals {seals:#x})"),
        );
    }
    if seals & libc::F_SEAL_WRITE != 0 {
        return (
            "the memfd is sealed F_SEAL_WRITE, which udmabuf refuses (the buffer's pages must stay writable)",
            format!(" (memfd seals {seals:#x})"),
        );
    }
    let limit = roots.sys.join("module/udmabuf/parameters/size_limit_mb");
    if let Some(mb) = std::fs::read_to_string(&limit)
        .ok()
        .and_then(|t| t.trim().parse::<u64>().ok())
    {
        if len as u64 > mb << 20 {
            return (
                "the size is above udmabuf's size_limit_mb module parameter (udmabuf.size_limit_mb= on the kernel command line, or the module option)",
                format!(" (size_limit_mb = {mb})"),
            );
        }
    }
    // SAFETY: an all-zero `stat` is a valid value of the plain C struct fstat fills.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fstat writes one `struct stat` to the pointer, which points at `st`.
    if unsafe { libc::fstat(memfd.as_raw_fd(), &mut st) } == 0 && (st.st_size as u64) < len as u64 {
        return (
            "the memfd is smaller than the buffer asked for",
            format!(" (memfd size {:#x})", st.st_size),
        );
    }
    (
        "udmabuf refuses sizes above its size_limit_mb module parameter (64 MiB by default), unaligned sizes, and memfds without F_SEAL_SHRINK or with F_SEAL_WRITE",
        String::new(),
    )
}

/// The dma-buf descriptor.
impl AsFd for UdmabufRegion {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.dmabuf.as_fd()
    }
}

// ---- dma-buf heaps -----------------------------------------------------------------------

/// The dma-buf heaps this system offers (the names under `/dev/dma_heap`), sorted.
pub fn list_dma_heaps(roots: &SysRoots) -> Result<Vec<String>, MemError> {
    let dir = roots.dev.join("dma_heap");
    let rd = std::fs::read_dir(&dir).map_err(|e| open_error(&dir, e, HEAPS_MISSING, UDEV_HINT))?;
    let mut v: Vec<String> = rd
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    v.sort();
    Ok(v)
}

/// A buffer allocated from a dma-buf heap (`/dev/dma_heap/<name>`), mapped read/write and
/// shared.
///
/// The mainline `system` heap hands out scattered pages (reachable by a remote core only
/// through an IOMMU); CMA heaps (`linux,cma`, `reserved`, …) and vendor carveout heaps give
/// physically contiguous memory. Mainline offers no way to learn the physical address from
/// userspace: use an IOMMU, or on TI kernels [`RprocDmaBufAttach`]. Mainline heaps'
/// `DMA_BUF_IOCTL_SYNC` syncs only for attached kernel devices — see
/// [`DmaBufCache`](crate::DmaBufCache).
#[derive(Debug)]
pub struct DmaHeapRegion {
    map: Mapping,
    dmabuf: OwnedFd,
    heap: String,
}

shared_memory_via_mapping!(DmaHeapRegion);

impl DmaHeapRegion {
    /// `len` bytes (rounded up to pages) from the heap `heap` under `/dev/dma_heap`.
    pub fn alloc(heap: &str, len: usize) -> Result<Self, MemError> {
        Self::alloc_in(&SysRoots::default(), heap, len)
    }

    /// As [`alloc`](Self::alloc), with the heaps under `roots.dev/dma_heap`; lengths above
    /// [`DEFAULT_MAX_ALLOC`] are refused.
    pub fn alloc_in(roots: &SysRoots, heap: &str, len: usize) -> Result<Self, MemError> {
        Self::alloc_capped(roots, heap, len, DEFAULT_MAX_ALLOC)
    }

    /// As [`alloc_in`](Self::alloc_in), refusing lengths above `max` bytes before the
    /// kernel is asked: mainline heaps do not refuse a huge request up front, they reclaim
    /// and may invoke the OOM killer, which can kill the caller.
    pub fn alloc_capped(
        roots: &SysRoots,
        heap: &str,
        len: usize,
        max: usize,
    ) -> Result<Self, MemError> {
        if heap.is_empty() || heap.contains('/') || heap == "." || heap == ".." {
            return Err(MemError::InvalidRequest(format!(
                "{heap:?} is not a dma-buf heap name"
            )));
        }
        if len == 0 {
            return Err(MemError::InvalidRequest(
                "a dma-buf heap allocation needs a non-zero length".into(),
            ));
        }
        let page = page_size();
        let len = len
            .checked_next_multiple_of(page)
            .ok_or_else(|| MemError::InvalidRequest(format!("length {len:#x} too large")))?;
        check_cap("dma-buf heap", len, max)?;
        let node = roots.dev.join("dma_heap").join(heap);
        let file = OpenOptions::new().read(true).open(&node).map_err(|e| {
            match e.raw_os_error() {
                // Tell "no heaps at all" apart from "no heap of that name".
                Some(libc::ENOENT) => match list_dma_heaps(roots) {
                    Err(missing) => missing,
                    Ok(names) => MemError::NotFound {
                        what: format!(
                            "dma-buf heap {heap:?} (this system has: {})",
                            if names.is_empty() {
                                "none".to_string()
                            } else {
                                names.join(", ")
                            }
                        ),
                    },
                },
                _ => open_error(&node, e, HEAPS_MISSING, UDEV_HINT),
            }
        })?;
        let heap_fd = OwnedFd::from(file);
        let mut arg = DmaHeapAllocationData {
            len: len as u64,
            fd: 0,
            fd_flags: (libc::O_RDWR | libc::O_CLOEXEC) as u32,
            heap_flags: 0,
        };
        // SAFETY: DMA_HEAP_IOCTL_ALLOC reads and writes one `struct
        // dma_heap_allocation_data` (the layout of `DmaHeapAllocationData`, checked against
        // the kernel header by a test).
        unsafe { ioctl_ptr(heap_fd.as_fd(), DMA_HEAP_IOCTL_ALLOC, &mut arg) }.map_err(|e| {
            match e.raw_os_error() {
                Some(libc::ENOMEM) => MemError::OutOfMemory {
                    what: format!("heap {heap:?} could not allocate {len:#x} bytes"),
                    hint: "no contiguous memory left: a CMA heap is bounded by cma= on the kernel command line or its reserved-memory node's size",
                },
                Some(errno @ (libc::ENOTTY | libc::ENOSYS)) => MemError::Os {
                    op: format!("DMA_HEAP_IOCTL_ALLOC on {}", node.display()),
                    source: e,
                    hint: if errno == libc::ENOTTY {
                        "the node is not a dma-buf heap"
                    } else {
                        NOT_FORWARDED
                    },
                },
                _ => MemError::Os {
                    op: format!("DMA_HEAP_IOCTL_ALLOC on {}", node.display()),
                    source: e,
                    hint: "",
                },
            }
        })?;
        let raw = i32::try_from(arg.fd).map_err(|_| MemError::Os {
            op: "DMA_HEAP_IOCTL_ALLOC".into(),
            source: io::Error::other(format!("kernel returned descriptor {}", arg.fd)),
            hint: "",
        })?;
        // SAFETY: DMA_HEAP_IOCTL_ALLOC succeeded and returned a new dma-buf descriptor in
        // `fd` that nothing else owns.
        let dmabuf = unsafe { OwnedFd::from_raw_fd(raw) };
        let map = Mapping::shared(dmabuf.as_fd(), len, 0)
            .map_err(|e| mmap_error(&node, e, "mapping the heap buffer failed"))?;
        Ok(Self {
            map,
            dmabuf,
            heap: heap.to_string(),
        })
    }

    /// The heap it came from.
    pub fn heap(&self) -> &str {
        &self.heap
    }

    /// The dma-buf descriptor.
    pub fn dmabuf_fd(&self) -> BorrowedFd<'_> {
        self.dmabuf.as_fd()
    }
}

/// The dma-buf descriptor.
impl AsFd for DmaHeapRegion {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.dmabuf.as_fd()
    }
}

// ---- TI: dma-buf → remote device address -------------------------------------------------

/// A dma-buf attached to a remote processor through TI's `RPROC_IOC_DMA_BUF_ATTACH` on
/// `/dev/remoteprocN`, which pins a physically contiguous dma-buf (e.g. from a carveout
/// heap) and returns the device address the remote core uses for it.
///
/// **TI kernels only** (TI's `remoteproc_cdev.h`; a mainline kernel answers `EINVAL`). The
/// kernel detaches the buffer when the `/dev/remoteprocN` descriptor closes, so this value
/// keeps it open: keep it alive as long as the remote uses the address.
#[derive(Debug)]
pub struct RprocDmaBufAttach {
    rproc: OwnedFd,
    da: DevAddr,
    len: usize,
}

impl RprocDmaBufAttach {
    /// Attaches the dma-buf `region` to remote processor `index` (`/dev/remoteproc<index>`).
    pub fn attach<M: SharedMemory + AsFd>(index: u32, region: &M) -> Result<Self, MemError> {
        Self::attach_in(&SysRoots::default(), index, region)
    }

    /// As [`attach`](Self::attach), with the node under `roots.dev`.
    pub fn attach_in<M: SharedMemory + AsFd>(
        roots: &SysRoots,
        index: u32,
        region: &M,
    ) -> Result<Self, MemError> {
        let node = roots.dev.join(format!("remoteproc{index}"));
        // Read-only is enough for the ioctl (TI's own examples open it so).
        let rproc = OpenOptions::new()
            .read(true)
            .open(&node)
            .map(OwnedFd::from)
            .map_err(|e| open_error(&node, e, RPROC_MISSING, UDEV_HINT))?;
        let mut arg = RprocDmaBufAttachData {
            fd: region.as_fd().as_raw_fd() as u32,
            pad: 0,
            da: 0,
        };
        // SAFETY: the ioctl reads/writes one 16-byte `struct rproc_dma_buf_attach_data`,
        // the layout of `RprocDmaBufAttachData` (padding explicit); a kernel without the
        // ioctl rejects the number and accesses nothing.
        unsafe { ioctl_ptr(rproc.as_fd(), RPROC_IOC_DMA_BUF_ATTACH, &mut arg) }.map_err(|e| {
            MemError::Os {
                op: format!("RPROC_IOC_DMA_BUF_ATTACH on {}", node.display()),
                source: e,
                hint: "only TI kernels have this ioctl (mainline answers EINVAL), and the dma-buf must be physically contiguous",
            }
        })?;
        Ok(Self {
            rproc,
            da: DevAddr(arg.da),
            len: region.len(),
        })
    }

    /// The device address of the buffer's first byte.
    pub fn dev_addr(&self) -> DevAddr {
        self.da
    }

    /// Region offsets `0..len` at device addresses `da..da+len`.
    pub fn map(&self) -> LinearMap {
        LinearMap {
            base: self.da,
            offset: 0,
            len: self.len,
        }
    }

    /// The `/dev/remoteprocN` descriptor that keeps the attachment.
    pub fn rproc_fd(&self) -> BorrowedFd<'_> {
        self.rproc.as_fd()
    }
}

// ---- device tree: reserved-memory --------------------------------------------------------

/// A node under `/reserved-memory` of the device tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReservedMemory {
    /// The node's name (`r5f-dma-memory@a0000000`).
    pub node: String,
    /// `(base, size)` of each `reg` entry.
    pub regions: Vec<(u64, u64)>,
    /// The node has `no-map`: the kernel keeps it out of its linear map (and `/dev/mem`
    /// maps it as uncached Device memory on arm64).
    pub no_map: bool,
    /// The first string of `compatible`, if any (`shared-dma-pool`, …).
    pub compatible: Option<String>,
}

fn read_file(path: &Path, missing: &'static str) -> Result<Vec<u8>, MemError> {
    std::fs::read(path).map_err(|e| open_error(path, e, missing, UDEV_HINT))
}

/// One big-endian u32 cell property (`#address-cells`), or its absence.
fn cells_property(path: &Path) -> Result<Option<u32>, MemError> {
    match std::fs::read(path) {
        Ok(b) => {
            let arr: [u8; 4] = b.as_slice().try_into().map_err(|_| MemError::Malformed {
                path: path.to_path_buf(),
                what: format!("{} bytes, expected one 4-byte big-endian cell", b.len()),
            })?;
            Ok(Some(u32::from_be_bytes(arr)))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(open_error(path, e, "", UDEV_HINT)),
    }
}

/// Decodes a `reg` property: entries of `address_cells` then `size_cells` big-endian u32
/// cells. Each of the two counts must be 1 or 2 (values up to 64 bits).
pub fn parse_reg(
    bytes: &[u8],
    address_cells: u32,
    size_cells: u32,
) -> Result<Vec<(u64, u64)>, String> {
    for (name, c) in [
        ("#address-cells", address_cells),
        ("#size-cells", size_cells),
    ] {
        if !(1..=2).contains(&c) {
            return Err(format!("{name} = {c}: only 1 or 2 cells are supported"));
        }
    }
    let entry = 4 * (address_cells + size_cells) as usize;
    if bytes.is_empty() || bytes.len() % entry != 0 {
        return Err(format!(
            "reg has {} bytes, not a non-zero multiple of the {entry}-byte entry ({address_cells} address + {size_cells} size cells)",
            bytes.len()
        ));
    }
    let cells = |b: &[u8]| {
        b.chunks_exact(4).fold(0u64, |acc, c| {
            (acc << 32) | u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as u64
        })
    };
    let split = 4 * address_cells as usize;
    Ok(bytes
        .chunks_exact(entry)
        .map(|e| (cells(&e[..split]), cells(&e[split..])))
        .collect())
}

/// Reads the node `node` of `/reserved-memory`. `node` is the full name
/// (`dma-memory@a0000000`), or the name without its unit address if exactly one node has it.
/// `#address-cells` / `#size-cells` come from the `reserved-memory` node (2 / 2 when absent).
pub fn reserved_memory(roots: &SysRoots, node: &str) -> Result<ReservedMemory, MemError> {
    let rm = roots.device_tree.join("reserved-memory");
    let missing = "the device tree has no /reserved-memory node (or this system has no device tree at /proc/device-tree)";
    let entries = std::fs::read_dir(&rm).map_err(|e| open_error(&rm, e, missing, UDEV_HINT))?;
    let names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    let full = if names.iter().any(|n| n == node) {
        node.to_string()
    } else {
        let prefix = format!("{node}@");
        let matches: Vec<&String> = names.iter().filter(|n| n.starts_with(&prefix)).collect();
        match matches.as_slice() {
            [one] => (*one).clone(),
            [] => {
                let mut names = names.clone();
                names.sort();
                return Err(MemError::NotFound {
                    what: format!(
                        "reserved-memory node {node:?} (the device tree has: {})",
                        if names.is_empty() {
                            "none".into()
                        } else {
                            names.join(", ")
                        }
                    ),
                });
            }
            many => {
                return Err(MemError::Ambiguous {
                    what: format!(
                        "reserved-memory node {node:?} matches {}",
                        many.iter()
                            .map(|s| s.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                });
            }
        }
    };
    let ac = cells_property(&rm.join("#address-cells"))?.unwrap_or(2);
    let sc = cells_property(&rm.join("#size-cells"))?.unwrap_or(2);
    let dir = rm.join(&full);
    let reg_path = dir.join("reg");
    let reg = read_file(
        &reg_path,
        "the reserved-memory node has no reg property (a dynamically placed pool has no fixed address)",
    )?;
    let regions = parse_reg(&reg, ac, sc).map_err(|what| MemError::Malformed {
        path: reg_path.clone(),
        what,
    })?;
    if let Some(&(base, _)) = regions.iter().find(|&&(_, size)| size == 0) {
        return Err(MemError::Malformed {
            path: reg_path,
            what: format!("entry at {base:#x} has size 0"),
        });
    }
    let compatible = std::fs::read(dir.join("compatible")).ok().and_then(|b| {
        b.split(|&c| c == 0)
            .next()
            .filter(|s| !s.is_empty())
            .map(|s| String::from_utf8_lossy(s).into_owned())
    });
    Ok(ReservedMemory {
        node: full,
        regions,
        no_map: dir.join("no-map").exists(),
        compatible,
    })
}

// ---- UIO ---------------------------------------------------------------------------------

/// One memory map of a UIO device (`/sys/class/uio/uioN/maps/mapM`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UioMap {
    /// `M`: the map is mmapped at offset `M * page_size` of `/dev/uioN`.
    pub index: usize,
    /// `name` (the device-tree node or driver's name for the region; may be empty).
    pub name: String,
    /// `addr`: the physical address.
    pub addr: u64,
    /// `size` in bytes.
    pub size: u64,
    /// `offset`: where the region starts inside its first page (0 when absent).
    pub offset: u64,
}

/// A UIO device (`/sys/class/uio/uioN`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UioDevice {
    /// `uioN`.
    pub node: String,
    /// The driver-given `name`.
    pub name: String,
    /// Its memory maps, by index.
    pub maps: Vec<UioMap>,
}

/// A sysfs number as UIO prints it (`0x00000000a0000000`; decimal accepted too).
fn parse_sysfs_u64(path: &Path, text: &str) -> Result<u64, MemError> {
    let t = text.trim();
    let parsed = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => t.parse(),
    };
    parsed.map_err(|_| MemError::Malformed {
        path: path.to_path_buf(),
        what: format!("{t:?} is not a number"),
    })
}

fn read_sysfs_string(path: &Path, missing: &'static str) -> Result<String, MemError> {
    let b = read_file(path, missing)?;
    String::from_utf8(b)
        .map(|s| s.trim_end_matches('\n').to_string())
        .map_err(|_| MemError::Malformed {
            path: path.to_path_buf(),
            what: "not UTF-8 text".into(),
        })
}

/// Reads `/sys/class/uio/<node>` and its maps.
pub fn uio_device(roots: &SysRoots, node: &str) -> Result<UioDevice, MemError> {
    if node.is_empty() || node.contains('/') || node == "." || node == ".." {
        return Err(MemError::InvalidRequest(format!(
            "{node:?} is not a UIO device name"
        )));
    }
    let dir = roots.sys.join("class/uio").join(node);
    let name = read_sysfs_string(&dir.join("name"), UIO_MISSING)?;
    let maps_dir = dir.join("maps");
    let mut maps = Vec::new();
    // A device without memory maps has no `maps` directory.
    if let Ok(rd) = std::fs::read_dir(&maps_dir) {
        for e in rd.filter_map(|e| e.ok()) {
            let Some(fname) = e.file_name().into_string().ok() else {
                continue;
            };
            let Some(idx) = fname.strip_prefix("map") else {
                continue;
            };
            let index: usize = idx.parse().map_err(|_| MemError::Malformed {
                path: e.path(),
                what: format!("{fname:?} is not map<N>"),
            })?;
            let mdir = e.path();
            let num = |f: &str| -> Result<u64, MemError> {
                let p = mdir.join(f);
                let s = read_sysfs_string(&p, "a UIO map lacks this attribute")?;
                parse_sysfs_u64(&p, &s)
            };
            let offset = if mdir.join("offset").exists() {
                num("offset")?
            } else {
                0
            };
            let name = match std::fs::read(mdir.join("name")) {
                Ok(b) => String::from_utf8_lossy(&b)
                    .trim_end_matches('\n')
                    .to_string(),
                Err(_) => String::new(),
            };
            maps.push(UioMap {
                index,
                name,
                addr: num("addr")?,
                size: num("size")?,
                offset,
            });
        }
    }
    maps.sort_by_key(|m| m.index);
    Ok(UioDevice {
        node: node.to_string(),
        name,
        maps,
    })
}

/// Every UIO device under `/sys/class/uio`, sorted by node name.
pub fn uio_devices(roots: &SysRoots) -> Result<Vec<UioDevice>, MemError> {
    let dir = roots.sys.join("class/uio");
    let rd = std::fs::read_dir(&dir).map_err(|e| {
        open_error(
            &dir,
            e,
            "the kernel has no UIO devices (CONFIG_UIO)",
            UDEV_HINT,
        )
    })?;
    let mut nodes: Vec<String> = rd
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    nodes.sort();
    nodes.iter().map(|n| uio_device(roots, n)).collect()
}

// ---- physical carveouts ------------------------------------------------------------------

/// How `/dev/mem` should map a carveout. What the CPU finally gets is the kernel's choice
/// (arm64 `phys_mem_access_prot`): a `no-map` reserved region — the usual remoteproc
/// carveout, and the only RAM `CONFIG_STRICT_DEVMEM` lets `/dev/mem` map — is always
/// mapped as **Device-nGnRnE** memory, whatever is asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DevMemCaching {
    /// No `O_SYNC`: cacheable when the kernel maps RAM that is in its linear map.
    Cached,
    /// `O_SYNC`: write-combining (Normal non-cacheable) for such RAM.
    Uncached,
}

/// A physical carveout — memory the remote core sees at a fixed address — mapped through
/// `/dev/mem` (offset = physical base) or a UIO map (`/dev/uioN`, offset = map index × page
/// size), with its base and size given or discovered (device tree `reserved-memory`, UIO
/// sysfs).
///
/// **Memory type on arm64.** A `no-map` reserved region through `/dev/mem`, and any UIO
/// physical map (`pgprot_noncached`), is **Device-nGnRnE**: no cache maintenance is needed
/// (use `Coherent`), but every access must be naturally aligned — an unaligned load or
/// store, as a byte copy may issue, raises SIGBUS. Cached access to a carveout needs it in
/// the kernel's linear map (no `no-map`), which `CONFIG_STRICT_DEVMEM` then keeps
/// `/dev/mem` from mapping: such memory is better reached through a dma-buf heap.
#[derive(Debug)]
pub struct PhysCarveout {
    map: Mapping,
    fd: OwnedFd,
    pa: u64,
    source: PathBuf,
}

shared_memory_via_mapping!(PhysCarveout);

impl PhysCarveout {
    /// Maps `len` bytes at physical address `pa` (page-aligned) through `roots.dev/mem`.
    pub fn devmem(
        roots: &SysRoots,
        pa: u64,
        len: usize,
        caching: DevMemCaching,
    ) -> Result<Self, MemError> {
        let page = page_size();
        if len == 0 || pa % page as u64 != 0 {
            return Err(MemError::InvalidRequest(format!(
                "carveout {pa:#x}+{len:#x} must be non-empty and start on a {page}-byte page"
            )));
        }
        if pa.checked_add(len as u64).is_none() {
            return Err(MemError::InvalidRequest(format!(
                "carveout {pa:#x}+{len:#x} wraps the physical address space"
            )));
        }
        let node = roots.dev.join("mem");
        let flags = match caching {
            DevMemCaching::Cached => 0,
            DevMemCaching::Uncached => libc::O_SYNC,
        };
        let fd = open_rw(&node, flags, DEVMEM_MISSING, DEVMEM_PERM)?;
        let map = Mapping::shared(fd.as_fd(), len, pa).map_err(|e| {
            mmap_error(
                &node,
                e,
                "CONFIG_STRICT_DEVMEM lets /dev/mem map only what is not System RAM: mark the reserved-memory node no-map, or use a UIO map or a dma-buf heap",
            )
        })?;
        Ok(Self {
            map,
            fd,
            pa,
            source: node,
        })
    }

    /// Maps the first `reg` entry of the device-tree node `/reserved-memory/<node>` (see
    /// [`reserved_memory`]) through `/dev/mem`.
    pub fn from_device_tree(
        roots: &SysRoots,
        node: &str,
        caching: DevMemCaching,
    ) -> Result<Self, MemError> {
        let rm = reserved_memory(roots, node)?;
        let (base, size) = rm.regions[0];
        let len = usize::try_from(size).map_err(|_| {
            MemError::InvalidRequest(format!("carveout size {size:#x} exceeds the address space"))
        })?;
        Self::devmem(roots, base, len, caching)
    }

    /// Maps map `index` of the UIO device `node` (`uio0`): `mmap` of `/dev/<node>` at
    /// offset `index * page_size`, with address and size from sysfs.
    pub fn uio(roots: &SysRoots, node: &str, index: usize) -> Result<Self, MemError> {
        let dev = uio_device(roots, node)?;
        let map = dev
            .maps
            .iter()
            .find(|m| m.index == index)
            .ok_or_else(|| MemError::NotFound {
                what: format!("map{index} of {node} (it has {} map(s))", dev.maps.len()),
            })?
            .clone();
        Self::map_uio(roots, node, &map)
    }

    /// Maps the UIO map called `name`, searching every UIO device.
    pub fn uio_named(roots: &SysRoots, name: &str) -> Result<Self, MemError> {
        let devs = uio_devices(roots)?;
        let found: Vec<(&UioDevice, &UioMap)> = devs
            .iter()
            .flat_map(|d| d.maps.iter().map(move |m| (d, m)))
            .filter(|(_, m)| m.name == name)
            .collect();
        match found.as_slice() {
            [(d, m)] => Self::map_uio(roots, &d.node, m),
            [] => Err(MemError::NotFound {
                what: format!("a UIO map named {name:?}"),
            }),
            many => Err(MemError::Ambiguous {
                what: format!(
                    "UIO map name {name:?} is used by {}",
                    many.iter()
                        .map(|(d, m)| format!("{}/map{}", d.node, m.index))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            }),
        }
    }

    fn map_uio(roots: &SysRoots, node: &str, m: &UioMap) -> Result<Self, MemError> {
        let page = page_size();
        let map_path = roots
            .sys
            .join("class/uio")
            .join(node)
            .join(format!("maps/map{}", m.index));
        if m.size == 0 {
            return Err(MemError::Malformed {
                path: map_path.join("size"),
                what: "map size is 0".into(),
            });
        }
        if m.offset != 0 || m.addr % page as u64 != 0 {
            return Err(MemError::InvalidRequest(format!(
                "{node} map{} at {:#x} does not start on a page: not usable as a carveout",
                m.index, m.addr
            )));
        }
        let len = usize::try_from(m.size).map_err(|_| MemError::Malformed {
            path: map_path.join("size"),
            what: format!("size {:#x} exceeds the address space", m.size),
        })?;
        let node_path = roots.dev.join(node);
        let fd = open_rw(&node_path, 0, UIO_MISSING, UDEV_HINT)?;
        let offset = (m.index as u64)
            .checked_mul(page as u64)
            .ok_or_else(|| MemError::InvalidRequest(format!("map index {} too large", m.index)))?;
        let map = Mapping::shared(fd.as_fd(), len, offset)
            .map_err(|e| mmap_error(&node_path, e, "the UIO driver refused the mapping"))?;
        Ok(Self {
            map,
            fd,
            pa: m.addr,
            source: node_path,
        })
    }

    /// The physical address of the first byte.
    pub fn phys_addr(&self) -> u64 {
        self.pa
    }

    /// The node it was mapped through (`/dev/mem`, `/dev/uio0`).
    pub fn source(&self) -> &Path {
        &self.source
    }

    /// The descriptor it was mapped through (for a UIO device, also its interrupt).
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The remote sees the carveout at its physical address (`da == pa`).
    pub fn identity_map(&self) -> LinearMap {
        LinearMap {
            base: DevAddr(self.pa),
            offset: 0,
            len: self.map.len,
        }
    }

    /// The remote sees the carveout at a fixed offset from its physical address
    /// (`da = pa + delta`, e.g. a core that sees DDR through an alias window).
    pub fn offset_map(&self, delta: i64) -> Result<LinearMap, MemError> {
        let base = self
            .pa
            .checked_add_signed(delta)
            .filter(|b| b.checked_add(self.map.len as u64).is_some())
            .ok_or_else(|| {
                MemError::InvalidRequest(format!(
                    "device address {:#x}{delta:+#x} of a {:#x}-byte carveout leaves the 64-bit space",
                    self.pa, self.map.len
                ))
            })?;
        Ok(LinearMap {
            base: DevAddr(base),
            offset: 0,
            len: self.map.len,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test_memfd(seals: i32, sealing: bool) -> OwnedFd {
        let name = CString::new("intercore-einval").unwrap();
        let flags = libc::MFD_CLOEXEC | if sealing { libc::MFD_ALLOW_SEALING } else { 0 };
        // SAFETY: a valid NUL-terminated name and plain flags.
        let fd = unsafe { libc::memfd_create(name.as_ptr(), flags) };
        assert!(fd >= 0);
        // SAFETY: memfd_create returned a new descriptor nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: ftruncate and F_ADD_SEALS on our own memfd, integer arguments.
        unsafe {
            assert_eq!(libc::ftruncate(fd.as_raw_fd(), 4096), 0);
            if seals != 0 {
                assert_eq!(libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, seals), 0);
            }
        }
        fd
    }

    /// The EINVAL diagnosis names the rule of drivers/dma-buf/udmabuf.c that a memfd
    /// breaks: no F_SEAL_SHRINK, F_SEAL_WRITE, above size_limit_mb (read from sysfs, here a
    /// fake tree), smaller than asked.
    #[test]
    fn udmabuf_einval_names_the_rule() {
        let dir = std::env::temp_dir().join(format!("intercore-einval-{}", std::process::id()));
        let roots = SysRoots::under(&dir);
        let (why, _) = udmabuf_einval(&roots, test_memfd(0, true).as_fd(), 4096);
        assert!(why.contains("F_SEAL_SHRINK"), "{why}");
        let (why, _) = udmabuf_einval(&roots, test_memfd(0, false).as_fd(), 4096);
        assert!(why.contains("F_SEAL_SHRINK"), "not sealable: {why}");
        let w = test_memfd(libc::F_SEAL_SHRINK | libc::F_SEAL_WRITE, true);
        let (why, detail) = udmabuf_einval(&roots, w.as_fd(), 4096);
        assert!(
            why.contains("F_SEAL_WRITE") && detail.contains("seals"),
            "{why}"
        );
        let ok = test_memfd(libc::F_SEAL_SHRINK, true);
        let (why, _) = udmabuf_einval(&roots, ok.as_fd(), 8192);
        assert!(why.contains("smaller"), "{why}");
        let p = dir.join("sys/module/udmabuf/parameters");
        std::fs::create_dir_all(&p).unwrap();
        std::fs::write(p.join("size_limit_mb"), "1\n").unwrap();
        let (why, detail) = udmabuf_einval(&roots, ok.as_fd(), 2 << 20);
        assert!(
            why.contains("size_limit_mb") && detail.contains("= 1"),
            "{why} {detail}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Sizes above the cap are refused before any device node is opened (here none
    /// exists), and the refusal names the cap; DEFAULT_MAX_ALLOC applies without one.
    #[test]
    fn allocation_cap_comes_first() {
        let dir = std::env::temp_dir().join(format!("intercore-cap-{}", std::process::id()));
        let roots = SysRoots::under(&dir);
        let e = DmaHeapRegion::alloc_in(&roots, "system", 1 << 40).unwrap_err();
        assert!(matches!(e, MemError::InvalidRequest(_)), "{e:?}");
        assert!(e.to_string().contains("cap of 0x10000000"), "{e}");
        let e = DmaHeapRegion::alloc_capped(&roots, "system", 8192, 4096).unwrap_err();
        assert!(e.to_string().contains("cap of 0x1000"), "{e}");
        let e = UdmabufRegion::create_capped(&roots, 8192, 4096).unwrap_err();
        assert!(e.to_string().contains("cap of 0x1000"), "{e}");
        // Under the cap, the missing node is what is reported.
        assert!(matches!(
            DmaHeapRegion::alloc_capped(&roots, "system", 4096, 4096),
            Err(MemError::Missing { .. })
        ));
    }

    /// `reg` decoding follows the device-tree spec: big-endian cells, `#address-cells`
    /// then `#size-cells` per entry, one or two cells per number.
    #[test]
    fn reg_cells_decode() {
        let two_two = [
            0, 0, 0, 0, 0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, // a0000000 + 100000
            0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, // 8_00000000 + 1_00000000
        ];
        assert_eq!(
            parse_reg(&two_two, 2, 2).unwrap(),
            [(0xa000_0000, 0x10_0000), (0x8_0000_0000, 0x1_0000_0000)]
        );
        let one_one = [0x9c, 0, 0, 0, 0, 0x80, 0, 0];
        assert_eq!(
            parse_reg(&one_one, 1, 1).unwrap(),
            [(0x9c00_0000, 0x80_0000)]
        );
        let two_one = [0, 0, 0, 1, 0, 0, 0x10, 0, 0, 0, 0x20, 0];
        assert_eq!(
            parse_reg(&two_one, 2, 1).unwrap(),
            [(0x1_0000_1000, 0x2000)]
        );
    }

    /// Malformed `reg` values are refused with a message naming the problem.
    #[test]
    fn reg_cells_malformed() {
        assert!(
            parse_reg(&[0; 12], 2, 2)
                .unwrap_err()
                .contains("16-byte entry")
        );
        assert!(parse_reg(&[], 2, 2).unwrap_err().contains("0 bytes"));
        assert!(
            parse_reg(&[0; 12], 3, 0)
                .unwrap_err()
                .contains("#address-cells = 3")
        );
        assert!(
            parse_reg(&[0; 8], 1, 0)
                .unwrap_err()
                .contains("#size-cells = 0")
        );
    }

    /// UIO prints addresses and sizes as `0x%pa` (zero-padded hex); decimal is accepted.
    #[test]
    fn sysfs_numbers() {
        let p = Path::new("x");
        assert_eq!(
            parse_sysfs_u64(p, "0x00000000a0000000\n").unwrap(),
            0xa000_0000
        );
        assert_eq!(parse_sysfs_u64(p, "4096").unwrap(), 4096);
        assert!(matches!(
            parse_sysfs_u64(p, "0xzz"),
            Err(MemError::Malformed { .. })
        ));
        assert!(matches!(
            parse_sysfs_u64(p, ""),
            Err(MemError::Malformed { .. })
        ));
    }

    /// Errors convert to `io::Error` with a matching kind and the full message.
    #[test]
    fn errors_convert_to_io() {
        let e: io::Error = MemError::Missing {
            path: "/dev/udmabuf".into(),
            hint: UDMABUF_MISSING,
        }
        .into();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        assert!(e.to_string().contains("/dev/udmabuf"));
        assert!(e.to_string().contains("CONFIG_UDMABUF"));
        let e: io::Error = MemError::PermissionDenied {
            path: "/dev/udmabuf".into(),
            hint: UDEV_HINT,
        }
        .into();
        assert_eq!(e.kind(), io::ErrorKind::PermissionDenied);
        assert!(e.to_string().contains("udev rule"));
    }
}
