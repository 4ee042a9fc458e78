//! [`Board::open_pool`]: the data plane's buffer memory from the board file — the
//! `[memory]` source mapped, the device address the remote uses from `[mapping]`, the
//! cache maintenance from `[cache]` — for boards whose link is not intercore's own
//! simulator or QEMU SoC (those open their data plane through the SoC, which owns the
//! memory and the remote's window).
//!
//! Wired: `memory.source` = `carveout` (`/dev/mem` range or reserved-memory node, or a UIO
//! map), `dma-heap` with `device_address = "pagemap"`, `u-dma-buf`; `mapping.kind` =
//! `identity` or `offset`; `cache.mode` = `coherent`, `arm64-el0` (aarch64 hosts),
//! `dma-buf` (dma-heap), `u-dma-buf-sysfs` (u-dma-buf). Everything else is refused with
//! an [`OpenError::Config`] naming the key.

use crate::model::{
    Board, CacheMaintenance, DeviceAddress, MappingSpec, MemorySpec, PoolCarveout, RegionSpec,
};
use crate::open::{OpenEnv, OpenError};
use intercore::dataplane::{CacheOps, Coherent, Pool};
use intercore::{DevAddr, SharedMemory};
use intercore_linux::memory::contiguous_phys_addr;
use intercore_linux::{DevMemCaching, DmaHeapRegion, MemfdRegion, PhysCarveout, UDmaBufRegion};
use std::path::Path;
use std::sync::Arc;

/// The cache maintenance of a board's pool, whichever backend the board names. An `Arc`
/// because the core forwards [`CacheOps`] through `Arc` (and `&`), not `Box`; it is used
/// for type erasure only, and is neither `Send` nor `Sync` (the dma-buf and u-dma-buf
/// backends are not `Sync`): the pool stays on the thread that opened it.
pub type PoolCache = Arc<dyn CacheOps>;

/// The data plane's buffers for a board: a [`Pool`] over the board's memory, laid out as
/// the board's `[pool]` says from the region's first byte.
pub struct BoardPool {
    /// The pool (hand it to `DpHost::on_channel`).
    pub pool: Pool<PoolCache>,
    /// The device address of the region's first byte, as the remote sees it.
    pub device_addr: DevAddr,
    /// Where the memory came from (`carveout /dev/mem`, `dma-heap linux,cma`, ...).
    pub source: String,
}

impl std::fmt::Debug for BoardPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BoardPool")
            .field("device_addr", &self.device_addr)
            .field("source", &self.source)
            .field("buffers", &self.pool.len())
            .finish()
    }
}

fn cfg_err(key: &'static str) -> impl FnOnce(String) -> OpenError {
    move |message| OpenError::Config { key, message }
}

/// `/proc/self/pagemap`: the physical address of each of this process's pages (root).
const PAGEMAP: &str = "/proc/self/pagemap";

impl Board {
    /// Maps the board's `[memory]` and lays out its `[pool]` there, with the device
    /// addresses `[mapping]` gives and the cache maintenance `[cache]` names. Wired:
    /// `memory.source` = `carveout` (`/dev/mem` or a UIO map), `dma-heap` with
    /// `device_address = "pagemap"`, `hugetlb` (address from pagemap), `u-dma-buf`; `mapping.kind` = `identity`, `offset`;
    /// `cache.mode` = `coherent`, `arm64-el0` (aarch64 hosts), `dma-buf` (dma-heap),
    /// `u-dma-buf-sysfs` (u-dma-buf). The rest is refused. Errors name the board key.
    #[allow(clippy::arc_with_non_send_sync)] // type erasure only, see PoolCache
    pub fn open_pool(&self, env: &OpenEnv) -> Result<BoardPool, OpenError> {
        let need = self.pool.region_len();
        // The mapping first: what it cannot do is refused before any memory is taken.
        let delta = match self.mapping {
            MappingSpec::Identity => 0,
            MappingSpec::Offset(d) => d,
            other => {
                return Err(cfg_err("mapping.kind")(format!(
                    "\"{}\" is not wired into Board::open_pool (identity and offset are)",
                    other.kind().as_str()
                )));
            }
        };
        let (phys, cache, source): (u64, PoolCache, String) = match &self.memory {
            MemorySpec::Carveout(c) => self.open_carveout(c, env)?,
            MemorySpec::DmaHeap {
                heap,
                size,
                device_address,
            } => self.open_dma_heap(heap, *size, *device_address, env)?,
            MemorySpec::UDmaBuf { device, .. } => self.open_u_dma_buf(device, env)?,
            MemorySpec::Hugetlb { size } => self.open_hugetlb(*size)?,
            other => {
                return Err(cfg_err("memory.source")(format!(
                    "\"{}\" is not wired into Board::open_pool (carveout, dma-heap with device_address = \"pagemap\", hugetlb and u-dma-buf are; the simulator and QEMU boards open their pool through their SoC)",
                    other.source().as_str()
                )));
            }
        };
        let device_addr = DevAddr(phys.checked_add_signed(delta).ok_or_else(|| {
            cfg_err("mapping.offset")(format!(
                "physical address {phys:#x} moved by {delta:#x} leaves the address space"
            ))
        })?);
        if cache.region_len() < need {
            return Err(cfg_err("pool.classes")(format!(
                "the pool needs {need:#x} bytes, {source} has {:#x}",
                cache.region_len()
            )));
        }
        let pool = Pool::new(cache, 0, device_addr, &self.pool)
            .map_err(|e| cfg_err("pool.classes")(e.to_string()))?;
        Ok(BoardPool {
            pool,
            device_addr,
            source,
        })
    }
}

/// One way to open the pool per memory source: the physical address, the cache
/// operations over the mapping, and how to name it.
impl Board {
    /// A carveout: through `/dev/mem` (by address or reserved-memory node) or a UIO map.
    fn open_carveout(
        &self,
        c: &PoolCarveout,
        env: &OpenEnv,
    ) -> Result<(u64, PoolCache, String), OpenError> {
        let caching = match self.cache.mode {
            CacheMaintenance::Arm64El0 => DevMemCaching::Cached,
            _ => DevMemCaching::Uncached,
        };
        let (key, r) = match c {
            PoolCarveout::DevMem(RegionSpec::Range { base, size }) => (
                "memory.base",
                usize::try_from(*size)
                    .map_err(|_| {
                        intercore_linux::MemError::InvalidRequest(format!(
                            "size {size:#x} exceeds the address space"
                        ))
                    })
                    .and_then(|len| PhysCarveout::devmem(&env.roots, *base, len, caching)),
            ),
            PoolCarveout::DevMem(RegionSpec::ReservedMemory { node, .. }) => (
                "memory.reserved_memory",
                PhysCarveout::from_device_tree(&env.roots, node, caching),
            ),
            PoolCarveout::Uio { device, map } => (
                "memory.uio_device",
                PhysCarveout::uio(&env.roots, device, *map as usize),
            ),
            PoolCarveout::UioNamed(name) => (
                "memory.uio_map_name",
                PhysCarveout::uio_named(&env.roots, name),
            ),
        };
        let mem = Arc::new(r.map_err(|e| cfg_err(key)(e.to_string()))?);
        let source = format!("carveout {}", mem.source().display());
        let phys = mem.phys_addr();
        let cache: PoolCache = match self.cache.mode {
            CacheMaintenance::Coherent => Arc::new(Coherent::new(mem)),
            CacheMaintenance::Arm64El0 => arm64_el0(mem)?,
            other => return Err(unsupported_cache(other, "a carveout")),
        };
        Ok((phys, cache, source))
    }

    /// A dma-buf heap allocation, its address from `/proc/self/pagemap`.
    #[allow(clippy::arc_with_non_send_sync)] // type erasure only, see PoolCache
    fn open_dma_heap(
        &self,
        heap: &str,
        size: u64,
        device_address: Option<DeviceAddress>,
        env: &OpenEnv,
    ) -> Result<(u64, PoolCache, String), OpenError> {
        if device_address != Some(DeviceAddress::Pagemap) {
            return Err(cfg_err("memory.device_address")(
                "a dma-heap pool needs device_address = \"pagemap\" here (an IOMMU or TI's attach ioctl is not wired into Board::open_pool)".into(),
            ));
        }
        let len = usize::try_from(size)
            .map_err(|_| cfg_err("memory.size")("exceeds the address space".into()))?;
        let region = DmaHeapRegion::alloc_in(&env.roots, heap, len)
            .map_err(|e| cfg_err("memory.heap")(e.to_string()))?;
        let phys = region
            .phys_addr_from_pagemap(Path::new(PAGEMAP))
            .map_err(|e| cfg_err("memory.device_address")(e.to_string()))?;
        let cache: PoolCache = match self.cache.mode {
            CacheMaintenance::Coherent => Arc::new(Coherent::new(region)),
            CacheMaintenance::Arm64El0 => arm64_el0(region)?,
            CacheMaintenance::DmaBuf => Arc::new(
                intercore_linux::DmaBufCache::new(region)
                    .map_err(|e| cfg_err("cache.mode")(e.to_string()))?,
            ),
            other => return Err(unsupported_cache(other, "a dma-heap buffer")),
        };
        Ok((phys, cache, format!("dma-heap {heap}")))
    }

    /// A u-dma-buf buffer (`/dev/udmabufN`), its address from sysfs.
    #[allow(clippy::arc_with_non_send_sync)] // type erasure only, see PoolCache
    fn open_u_dma_buf(
        &self,
        device: &str,
        env: &OpenEnv,
    ) -> Result<(u64, PoolCache, String), OpenError> {
        let region = UDmaBufRegion::open(&env.roots, device)
            .map_err(|e| cfg_err("memory.device")(e.to_string()))?;
        let phys = region.phys_addr();
        let cache: PoolCache = match self.cache.mode {
            CacheMaintenance::Coherent => Arc::new(Coherent::new(region)),
            CacheMaintenance::Arm64El0 => arm64_el0(region)?,
            CacheMaintenance::UDmaBufSysfs => Arc::new(
                intercore_linux::UDmaBufCache::new(region)
                    .map_err(|e| cfg_err("cache.mode")(e.to_string()))?,
            ),
            other => return Err(unsupported_cache(other, "a u-dma-buf buffer")),
        };
        Ok((phys, cache, format!("u-dma-buf {device}")))
    }

    /// A hugetlbfs memfd: the mainline route to cacheable, contiguous memory with a known address.
    fn open_hugetlb(&self, size: u64) -> Result<(u64, PoolCache, String), OpenError> {
        // The mainline route to cacheable, contiguous memory with a known address: one
        // huge page (or several that happen to be adjacent) from a hugetlbfs memfd, its
        // physical address from /proc/self/pagemap (root), checked page by page.
        let len = usize::try_from(size)
            .map_err(|_| cfg_err("memory.size")("exceeds the address space".into()))?;
        let region = MemfdRegion::create_hugetlb("intercore-pool", len)
            .map_err(|e| cfg_err("memory.size")(e.to_string()))?;
        let phys = contiguous_phys_addr(Path::new(PAGEMAP), &region)
            .map_err(|e| cfg_err("memory.source")(e.to_string()))?;
        let cache: PoolCache = match self.cache.mode {
            CacheMaintenance::Coherent => Arc::new(Coherent::new(region)),
            CacheMaintenance::Arm64El0 => arm64_el0(region)?,
            other => return Err(unsupported_cache(other, "a hugetlb memfd")),
        };
        Ok((phys, cache, format!("hugetlb memfd of {len:#x} bytes")))
    }
}

fn unsupported_cache(mode: CacheMaintenance, what: &str) -> OpenError {
    cfg_err("cache.mode")(format!("\"{}\" does not apply to {what}", mode.as_str()))
}

#[cfg(target_arch = "aarch64")]
fn arm64_el0<M: SharedMemory + 'static>(mem: M) -> Result<PoolCache, OpenError> {
    intercore_linux::Arm64El0Cache::new(mem)
        .map(|c| Arc::new(c) as PoolCache)
        .map_err(|e| cfg_err("cache.mode")(e.to_string()))
}

#[cfg(not(target_arch = "aarch64"))]
fn arm64_el0<M: SharedMemory + 'static>(mem: M) -> Result<PoolCache, OpenError> {
    drop(mem);
    Err(cfg_err("cache.mode")(
        "\"arm64-el0\" needs an aarch64 host".into(),
    ))
}
