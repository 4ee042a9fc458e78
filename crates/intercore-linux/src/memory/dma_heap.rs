//! dma-buf heaps (`/dev/dma_heap/<name>`), and TI's ioctl that gives a dma-buf a
//! remote device address.

use super::*;

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
/// physically contiguous memory. Mainline has no ioctl for the physical address: as root
/// it comes from `/proc/self/pagemap` ([`phys_addr_from_pagemap`](Self::phys_addr_from_pagemap),
/// which also checks the pages are contiguous); otherwise use an IOMMU, or on TI kernels
/// [`RprocDmaBufAttach`]. Mainline heaps'
/// `DMA_BUF_IOCTL_SYNC` syncs only for attached kernel devices — see
/// [`DmaBufCache`](crate::DmaBufCache).
#[derive(Debug)]
pub struct DmaHeapRegion {
    map: Mmap,
    dmabuf: OwnedFd,
    heap: String,
}

impl OwnsMmap for DmaHeapRegion {
    fn mmap(&self) -> &Mmap {
        &self.map
    }
    /// A dma-heap buffer mapped by the heap's mmap (cacheable pages of the system or CMA heap): Normal memory, so copies may use `memcpy`.
    fn mapping_is_device_memory(&self) -> bool {
        false
    }
}

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
        let dmabuf = sys::ioctl::dma_heap_alloc(heap_fd.as_fd(), &mut arg).map_err(|e| {
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
        let map = Mmap::shared(dmabuf.as_fd(), len, 0)
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

    /// The physical address of the buffer's first byte, read from the pagemap file
    /// `pagemap` ([`own_pagemap`](super::own_pagemap) on a real system: needs root, i.e.
    /// `CAP_SYS_ADMIN`), after checking page by page that the buffer is physically
    /// contiguous — true of CMA heaps (`linux,cma`, `reserved`, any
    /// `shared-dma-pool` `reusable` region the kernel exposes as a heap), not of `system`.
    /// The heap owns these pages for the buffer's lifetime, so the address stays valid
    /// while `self` lives.
    ///
    /// **Works only where the heap's mmap is not `VM_PFNMAP`**: the CMA heap of kernels
    /// before the 2024 change to `vmf_insert_pfn`, or a vendor heap that maps pages. On
    /// current mainline both the system and the CMA heap map `VM_PFNMAP`, pagemap shows
    /// holes, and this fails with an error saying so (see
    /// [`contiguous_phys_addr`](super::contiguous_phys_addr)); the verified routes there
    /// are a hugetlb memfd, u-dma-buf, and carveouts.
    pub fn phys_addr_from_pagemap(&self, pagemap: &Path) -> Result<u64, MemError> {
        super::contiguous_phys_addr(pagemap, self)
    }

    /// Region offsets `0..len` at device addresses `pa + delta ..`, with `pa` from
    /// [`phys_addr_from_pagemap`](Self::phys_addr_from_pagemap) (`delta` 0: the remote
    /// sees DDR at its physical address).
    pub fn pagemap_map(&self, pagemap: &Path, delta: i64) -> Result<LinearMap, MemError> {
        let pa = self.phys_addr_from_pagemap(pagemap)?;
        let base = pa
            .checked_add_signed(delta)
            .filter(|b| b.checked_add(self.len() as u64).is_some())
            .ok_or_else(|| {
                MemError::InvalidRequest(format!(
                    "device address {pa:#x}{delta:+#x} of a {:#x}-byte buffer leaves the 64-bit space",
                    self.len()
                ))
            })?;
        Ok(LinearMap {
            base: DevAddr(base),
            offset: 0,
            len: self.len(),
        })
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
        sys::ioctl::ioctl(rproc.as_fd(), sys::ioctl::RPROC_IOC_DMA_BUF_ATTACH, &mut arg).map_err(|e| {
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
