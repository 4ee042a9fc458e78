//! The data-plane memory: the carveout's reserved-memory node or UIO map, the dma-buf heap,
//! udmabuf and its size limit, and the device nodes each opens.

use super::{Findings, Level, probe_node};
use crate::CheckEnv;
use crate::model::{Board, MemorySpec, PoolCarveout, RegionSpec};
use crate::validate::hex;
use intercore_linux::{MemError, list_dma_heaps, reserved_memory, uio_device, uio_devices};

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

    /// Returns the pool's physical base and length and whether it is `no-map`, when known.
    pub(super) fn check_memory(
        &self,
        env: &CheckEnv,
        f: &mut Findings,
    ) -> Option<(u64, u64, bool)> {
        let pool = self.pool.region_len() as u64;
        let fits = |f: &mut Findings, len: u64| {
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
        };
        match &self.memory {
            MemorySpec::Memfd { .. } => {
                f.push(Level::Ok, "memory", "memfd (always available)");
                None
            }
            MemorySpec::Carveout(PoolCarveout::DevMem(r)) => {
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
                        fits(f, len);
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
            MemorySpec::Carveout(PoolCarveout::Uio { device, map }) => {
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
                            fits(f, m.size);
                            if let Err(e) = probe_node(
                                &env.roots.dev.join(device),
                                true,
                                "no such UIO device node",
                            ) {
                                f.push(Level::Error, "memory", e.to_string());
                            }
                            return Some((m.addr, m.size, true));
                        }
                    },
                }
                None
            }
            MemorySpec::Carveout(PoolCarveout::UioNamed(name)) => {
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
                        fits(f, m.size);
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
            MemorySpec::DmaHeap { heap, size } => {
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
                None
            }
            MemorySpec::Udmabuf { size } => {
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
    }
}

/// The kernel's page size (`sysconf(_SC_PAGESIZE)`, through intercore-linux's `sys`).
fn page_size() -> u64 {
    intercore_linux::sys::page_size() as u64
}
