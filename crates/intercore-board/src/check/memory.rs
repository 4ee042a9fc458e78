//! The data-plane memory: the carveout's reserved-memory node or UIO map, the dma-buf heap,
//! udmabuf and its size limit, and the device nodes each opens.

use super::{Findings, Level, probe_node};
use crate::CheckEnv;
use crate::model::{Board, DeviceAddress, MemorySpec, PoolCarveout, RegionSpec};
use crate::validate::hex;
use intercore_linux::{
    MemError, list_dma_heaps, reserved_memory, u_dma_buf_devices, u_dma_buf_info, uio_device,
    uio_devices,
};

impl Board {
    /// Physical base, length and `no-map` of a region, from the device tree if named.
    pub(super) fn region_phys(
        &self,
        r: &RegionSpec,
        env: &CheckEnv,
    ) -> Result<(u64, u64, bool), MemError> {
        match r {
            RegionSpec::Range { base, size } => Ok((*base, *size, false)),
            RegionSpec::ReservedMemory { node, size } => {
                let rm = reserved_memory(&env.roots, node)?;
                let (base, len) = rm.regions[0];
                if let Some(s) = size {
                    if *s > len {
                        return Err(MemError::InvalidRequest(format!(
                            "size {} is larger than /reserved-memory/{} ({})",
                            hex(*s),
                            rm.node,
                            hex(len)
                        )));
                    }
                }
                let page = page_size();
                if base % page != 0 {
                    return Err(MemError::InvalidRequest(format!(
                        "/reserved-memory/{} starts at {}, not on a {page}-byte page",
                        rm.node,
                        hex(base)
                    )));
                }
                Ok((base, size.unwrap_or(len), rm.no_map))
            }
        }
    }

    /// Returns the pool's physical base and length and whether it is `no-map`, when known:
    /// each source checks itself.
    pub(super) fn check_memory(
        &self,
        env: &CheckEnv,
        f: &mut Findings,
    ) -> Option<(u64, u64, bool)> {
        match &self.memory {
            MemorySpec::Memfd { .. } => {
                f.push(Level::Ok, "memory", "memfd (always available)");
                None
            }
            MemorySpec::Carveout(PoolCarveout::DevMem(r)) => self.check_devmem(r, env, f),
            MemorySpec::Carveout(PoolCarveout::Uio { device, map }) => {
                self.check_uio_map(device, map, env, f)
            }
            MemorySpec::Carveout(PoolCarveout::UioNamed(name)) => {
                self.check_uio_named(name, env, f)
            }
            MemorySpec::DmaHeap {
                heap,
                size,
                device_address,
            } => self.check_dma_heap(heap, size, device_address, env, f),
            MemorySpec::Hugetlb { size } => self.check_hugetlb(size, f),
            MemorySpec::UDmaBuf { device, size } => self.check_u_dma_buf(device, size, env, f),
            MemorySpec::Udmabuf { size } => self.check_udmabuf(size, env, f),
        }
    }

    /// An error when the pool does not fit `len` bytes of memory.
    fn check_fits(&self, f: &mut Findings, len: u64) {
        let pool = self.pool.region_len() as u64;
        if pool > len {
            f.push(
                Level::Error,
                "memory",
                format!(
                    "the pool needs {} bytes; the memory has {}",
                    hex(pool),
                    hex(len)
                ),
            );
        }
    }

    /// A carveout through `/dev/mem`: the region (from the device tree if named), its `no-map`, and `/dev/mem` itself.
    fn check_devmem(
        &self,
        r: &RegionSpec,
        env: &CheckEnv,
        f: &mut Findings,
    ) -> Option<(u64, u64, bool)> {
        let found = self.region_phys(r, env);
        let phys = match found {
            Err(e) => {
                f.push(Level::Error, "memory", e.to_string());
                None
            }
            Ok((base, len, no_map)) => {
                f.push(
                    Level::Ok,
                    "memory",
                    format!(
                        "would map {}+{} through /dev/mem{}",
                        hex(base),
                        hex(len),
                        if no_map { " (no-map)" } else { "" }
                    ),
                );
                self.check_fits(f, len);
                if no_map {
                    f.push(
                        Level::Info,
                        "memory",
                        "a no-map region through /dev/mem is Device-nGnRnE memory on arm64: uncached (no maintenance needed), slow, and an unaligned access raises SIGBUS",
                    );
                } else {
                    f.push(
                        Level::Warn,
                        "memory",
                        "the region is in the kernel's linear map (no no-map): CONFIG_STRICT_DEVMEM keeps /dev/mem from mapping it; mark it no-map, or export it as a dma-buf heap",
                    );
                }
                Some((base, len, no_map))
            }
        };
        if let Err(e) = probe_node(
            &env.roots.dev.join("mem"),
            true,
            "the kernel has no /dev/mem (CONFIG_DEVMEM)",
        ) {
            f.push(Level::Error, "memory", e.to_string());
        }
        phys
    }

    /// A carveout as map `map` of the UIO device `device`.
    fn check_uio_map(
        &self,
        device: &String,
        map: &u32,
        env: &CheckEnv,
        f: &mut Findings,
    ) -> Option<(u64, u64, bool)> {
        match uio_device(&env.roots, device) {
            Err(e) => f.push(Level::Error, "memory", e.to_string()),
            Ok(d) => match d.maps.iter().find(|m| m.index == *map as usize) {
                None => f.push(
                    Level::Error,
                    "memory",
                    format!(
                        "{device} ({}) has no map{map}: it has {} map(s)",
                        d.name,
                        d.maps.len()
                    ),
                ),
                Some(m) => {
                    f.push(
                        Level::Ok,
                        "memory",
                        format!(
                            "would map {device} map{map} ({}+{}, UIO: uncached Device memory)",
                            hex(m.addr),
                            hex(m.size)
                        ),
                    );
                    self.check_fits(f, m.size);
                    if let Err(e) =
                        probe_node(&env.roots.dev.join(device), true, "no such UIO device node")
                    {
                        f.push(Level::Error, "memory", e.to_string());
                    }
                    return Some((m.addr, m.size, true));
                }
            },
        }
        None
    }

    /// A carveout as the UIO map named `name`, on whichever UIO device has it.
    fn check_uio_named(
        &self,
        name: &String,
        env: &CheckEnv,
        f: &mut Findings,
    ) -> Option<(u64, u64, bool)> {
        let devs = match uio_devices(&env.roots) {
            Ok(d) => d,
            Err(e) => {
                f.push(Level::Error, "memory", e.to_string());
                return None;
            }
        };
        let hits: Vec<_> = devs
            .iter()
            .flat_map(|d| d.maps.iter().map(move |m| (d, m)))
            .filter(|(_, m)| m.name == *name)
            .collect();
        match hits.as_slice() {
            [(d, m)] => {
                f.push(
                    Level::Ok,
                    "memory",
                    format!(
                        "UIO map {name:?} is {} map{} ({}+{})",
                        d.node,
                        m.index,
                        hex(m.addr),
                        hex(m.size)
                    ),
                );
                self.check_fits(f, m.size);
                Some((m.addr, m.size, true))
            }
            [] => {
                f.push(
                    Level::Error,
                    "memory",
                    MemError::NotFound {
                        what: format!("a UIO map named {name:?}"),
                    }
                    .to_string(),
                );
                None
            }
            _ => {
                f.push(
                    Level::Error,
                    "memory",
                    format!("several UIO maps are named {name:?}: use memory.uio_device"),
                );
                None
            }
        }
    }

    /// A dma-buf heap allocation: the heap, and where its device address comes from.
    fn check_dma_heap(
        &self,
        heap: &String,
        size: &u64,
        device_address: &Option<DeviceAddress>,
        env: &CheckEnv,
        f: &mut Findings,
    ) -> Option<(u64, u64, bool)> {
        match list_dma_heaps(&env.roots) {
            Err(e) => f.push(Level::Error, "memory", e.to_string()),
            Ok(names) if !names.contains(heap) => f.push(
                Level::Error,
                "memory",
                MemError::NotFound {
                    what: format!(
                        "dma-buf heap {heap:?} (this system has: {})",
                        if names.is_empty() {
                            "none".to_string()
                        } else {
                            names.join(", ")
                        }
                    ),
                }
                .to_string(),
            ),
            Ok(_) => {
                let node = env.roots.dev.join("dma_heap").join(heap);
                match probe_node(&node, false, "no such heap") {
                    Ok(()) => f.push(
                        Level::Ok,
                        "memory",
                        format!("would allocate {} from {}", hex(*size), node.display()),
                    ),
                    Err(e) => f.push(Level::Error, "memory", e.to_string()),
                }
            }
        }
        if heap == "system" {
            f.push(
                Level::Warn,
                "memory",
                "the system heap's pages are not contiguous: the remote reaches them only through an IOMMU",
            );
        }
        if *device_address == Some(DeviceAddress::Pagemap) {
            f.push(
                Level::Warn,
                "memory",
                "memory.device_address = \"pagemap\": pagemap shows no address for a VM_PFNMAP mapping, and current mainline system and CMA heaps map VM_PFNMAP (a vendor heap, or a kernel before the 2024 CMA-heap change, may not); opening then fails with an error naming VM_PFNMAP. memory.source = \"hugetlb\" works on every kernel",
            );
            pagemap_cap(f);
        }
        None
    }

    /// A hugetlbfs memfd: the huge pages, and `/proc/self/pagemap` for its physical address.
    fn check_hugetlb(&self, size: &u64, f: &mut Findings) -> Option<(u64, u64, bool)> {
        let info = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let field = |k: &str| {
            info.lines()
                .find_map(|l| l.strip_prefix(k))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse::<u64>().ok())
        };
        match (field("Hugepagesize:"), field("HugePages_Free:")) {
            (Some(kb), Some(free)) => {
                let huge = kb << 10;
                if huge == 0 || *size % huge != 0 {
                    f.push(
                        Level::Error,
                        "memory",
                        format!(
                            "memory.size = {} is not a multiple of this kernel's huge page size ({})",
                            hex(*size),
                            hex(huge)
                        ),
                    );
                } else if free * huge < *size {
                    f.push(
                        Level::Warn,
                        "memory",
                        format!(
                            "{free} huge pages of {} are free and the pool needs {}: reserve them (`echo N > /proc/sys/vm/nr_hugepages`, or hugepages=N on the kernel command line)",
                            hex(huge),
                            size / huge
                        ),
                    );
                } else {
                    f.push(
                        Level::Ok,
                        "memory",
                        format!(
                            "would map a {} hugetlb memfd ({free} huge pages of {} free)",
                            hex(*size),
                            hex(huge)
                        ),
                    );
                }
                if *size > huge {
                    f.push(
                        Level::Info,
                        "memory",
                        "a pool larger than one huge page is contiguous only if the kernel hands out adjacent huge pages; opening checks it page by page",
                    );
                }
            }
            _ => f.push(
                Level::Error,
                "memory",
                "/proc/meminfo has no Hugepagesize: the kernel has no hugetlbfs (CONFIG_HUGETLBFS)",
            ),
        }
        pagemap_cap(f);
        None
    }

    /// A buffer of the u-dma-buf driver (`/dev/udmabufN`): its sysfs attributes.
    fn check_u_dma_buf(
        &self,
        device: &String,
        size: &Option<u64>,
        env: &CheckEnv,
        f: &mut Findings,
    ) -> Option<(u64, u64, bool)> {
        match u_dma_buf_info(&env.roots, device) {
            Err(e) => {
                let have = u_dma_buf_devices(&env.roots);
                f.push(
                    Level::Error,
                    "memory",
                    if have.is_empty() {
                        e.to_string()
                    } else {
                        format!("{e} (this system has: {})", have.join(", "))
                    },
                );
                None
            }
            Ok(info) => {
                let len = size.unwrap_or(info.size);
                f.push(
                    Level::Ok,
                    "memory",
                    format!(
                        "would map /dev/{device} cacheable: {}+{} (u-dma-buf sysfs){}",
                        hex(info.phys_addr),
                        hex(len),
                        if info.dma_coherent {
                            ", dma_coherent = 1"
                        } else {
                            ""
                        }
                    ),
                );
                if len > info.size {
                    f.push(
                        Level::Error,
                        "memory",
                        format!(
                            "memory.size = {} is larger than {device}'s {} bytes ({})",
                            hex(len),
                            hex(info.size),
                            info.sysfs.join("size").display()
                        ),
                    );
                }
                self.check_fits(f, len);
                if let Some(m) = info.sync_mode.filter(|m| m & 4 != 0) {
                    f.push(
                    Level::Error,
                    "memory",
                    format!(
                        "{}/sync_mode is {m}: its \"always\" bit (4) makes every mapping uncached; write 1, 2 or 3 to it, or drop sync-always from the device tree",
                        info.sysfs.display()
                    ),
                );
                }
                if let Err(e) = probe_node(
                    &env.roots.dev.join(device),
                    true,
                    "no such u-dma-buf device node",
                ) {
                    f.push(Level::Error, "memory", e.to_string());
                }
                Some((info.phys_addr, len, false))
            }
        }
    }

    /// A udmabuf of memfd pages (`/dev/udmabuf`) and its size limit.
    fn check_udmabuf(
        &self,
        size: &u64,
        env: &CheckEnv,
        f: &mut Findings,
    ) -> Option<(u64, u64, bool)> {
        match probe_node(
            &env.roots.dev.join("udmabuf"),
            true,
            "the kernel has no udmabuf driver (CONFIG_UDMABUF; try `modprobe udmabuf`)",
        ) {
            Ok(()) => f.push(
                Level::Ok,
                "memory",
                format!("would create a {} udmabuf", hex(*size)),
            ),
            Err(e) => f.push(Level::Error, "memory", e.to_string()),
        }
        let limit = std::fs::read_to_string(
            env.roots
                .sys
                .join("module/udmabuf/parameters/size_limit_mb"),
        )
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(64);
        if *size > limit << 20 {
            f.push(
                Level::Error,
                "memory",
                format!(
                    "{} exceeds udmabuf's size_limit_mb ({limit} MiB): raise the module parameter",
                    hex(*size)
                ),
            );
        }
        None
    }
}

/// The kernel's page size (`sysconf(_SC_PAGESIZE)`, through intercore-linux's `sys`).
fn page_size() -> u64 {
    intercore_linux::sys::page_size() as u64
}

/// Reports whether this process could read physical addresses from `/proc/self/pagemap`.
fn pagemap_cap(f: &mut Findings) {
    match cap_sys_admin() {
        Some(true) => f.push(
            Level::Ok,
            "memory",
            "the physical address would come from /proc/self/pagemap (this process has CAP_SYS_ADMIN), each page checked contiguous",
        ),
        Some(false) => f.push(
            Level::Warn,
            "memory",
            "the physical address comes from /proc/self/pagemap, which needs CAP_SYS_ADMIN (root) when the board is opened: without it the kernel zeroes every PFN and opening fails",
        ),
        None => f.push(
            Level::Warn,
            "memory",
            "cannot tell from /proc/self/status whether this process has CAP_SYS_ADMIN, which /proc/self/pagemap needs for physical addresses",
        ),
    }
}

/// Whether this process has `CAP_SYS_ADMIN` (bit 21 of `CapEff` in `/proc/self/status`,
/// include/uapi/linux/capability.h), which `/proc/self/pagemap` needs to show PFNs.
fn cap_sys_admin() -> Option<bool> {
    const CAP_SYS_ADMIN: u32 = 21;
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let hex = s.lines().find_map(|l| l.strip_prefix("CapEff:"))?.trim();
    let eff = u64::from_str_radix(hex, 16).ok()?;
    Some(eff & (1 << CAP_SYS_ADMIN) != 0)
}
