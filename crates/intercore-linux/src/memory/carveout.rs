//! Physical carveouts mapped through `/dev/mem` or a UIO map.

use super::*;

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
    map: Mmap,
    fd: OwnedFd,
    pa: u64,
    source: PathBuf,
}

impl OwnsMmap for PhysCarveout {
    fn mmap(&self) -> &Mmap {
        &self.map
    }
}

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
        let map = Mmap::shared(fd.as_fd(), len, pa).map_err(|e| {
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
        let map = Mmap::shared(fd.as_fd(), len, offset)
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
            len: self.map.len(),
        }
    }

    /// The remote sees the carveout at a fixed offset from its physical address
    /// (`da = pa + delta`, e.g. a core that sees DDR through an alias window).
    pub fn offset_map(&self, delta: i64) -> Result<LinearMap, MemError> {
        let base = self
            .pa
            .checked_add_signed(delta)
            .filter(|b| b.checked_add(self.map.len() as u64).is_some())
            .ok_or_else(|| {
                MemError::InvalidRequest(format!(
                    "device address {:#x}{delta:+#x} of a {:#x}-byte carveout leaves the 64-bit space",
                    self.pa, self.map.len()
                ))
            })?;
        Ok(LinearMap {
            base: DevAddr(base),
            offset: 0,
            len: self.map.len(),
        })
    }
}
