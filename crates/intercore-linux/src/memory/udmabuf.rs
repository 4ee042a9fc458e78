//! udmabuf: a dma-buf over the pages of a sealed memfd (`/dev/udmabuf`).

use super::*;

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
    map: Mmap,
    dmabuf: OwnedFd,
    memfd: OwnedFd,
}

impl OwnsMmap for UdmabufRegion {
    fn mmap(&self) -> &Mmap {
        &self.map
    }
    /// The memfd pages behind the udmabuf: Normal memory, so copies may use `memcpy`.
    fn mapping_is_device_memory(&self) -> bool {
        false
    }
}

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
        let arg = UdmabufCreate {
            memfd: memfd.as_raw_fd() as u32,
            flags: UDMABUF_FLAGS_CLOEXEC,
            offset: 0,
            size: len as u64,
        };
        let dmabuf = sys::ioctl::udmabuf_create(ctl.as_fd(), &arg).map_err(|e| {
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
        // The CPU view maps the memfd, not the dma-buf: the same pages (udmabuf holds the
        // memfd's folios, and the seals keep them), with the same cacheable attributes, but
        // an ordinary shared-memory mapping that VFIO type1 can pin — udmabuf's own mmap is
        // VM_PFNMAP, which VFIO_IOMMU_MAP_DMA refuses with EFAULT. DMA_BUF_IOCTL_SYNC on the
        // dma-buf works on the pages, whatever mapping the CPU uses.
        let map = Mmap::shared(memfd.as_fd(), len, 0)
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
        let fd = sys::fd::memfd_create(&name, libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING)
            .map_err(|e| os("memfd_create", e))?;
        let size = libc::off_t::try_from(len)
            .map_err(|_| MemError::InvalidRequest(format!("size {len:#x} too large")))?;
        sys::fd::ftruncate(fd.as_fd(), size as u64).map_err(|e| os("ftruncate of the memfd", e))?;
        let seals = libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_SEAL;
        sys::fd::add_seals(fd.as_fd(), seals).map_err(|e| os("F_ADD_SEALS on the memfd", e))?;
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
pub(super) fn udmabuf_einval(
    roots: &SysRoots,
    memfd: BorrowedFd<'_>,
    len: usize,
) -> (&'static str, String) {
    let Ok(seals) = sys::fd::seals(memfd) else {
        return (
            "udmabuf needs a memfd (memfd_create with MFD_ALLOW_SEALING); this descriptor has no seals to check",
            String::new(),
        );
    };
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
    if let Some(size) = sys::fd::file_size(memfd).ok().filter(|&s| s < len as u64) {
        return (
            "the memfd is smaller than the buffer asked for",
            format!(" (memfd size {size:#x})"),
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
