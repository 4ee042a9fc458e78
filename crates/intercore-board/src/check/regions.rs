//! Overlapping physical regions: the userspace transport's carveout, the pool's memory and
//! the remote core's own memory (the `memory-region` entries of its device-tree node).
//! Two users of one range corrupt each other's data with no error at run time, so each
//! overlap is an error naming both regions and their ranges.

use super::{Findings, Level};
use crate::CheckEnv;
use crate::model::{Board, MemorySpec, PoolCarveout, RegionSpec, TransportSpec};
use crate::validate::hex;
use intercore_linux::remoteproc::Remoteproc;
use intercore_linux::reserved_memory;

/// A named physical range.
struct Named {
    what: String,
    base: u64,
    len: u64,
}

impl Named {
    fn end(&self) -> u64 {
        self.base.saturating_add(self.len)
    }
    fn overlaps(&self, o: &Named) -> bool {
        self.len > 0 && o.len > 0 && self.base < o.end() && o.base < self.end()
    }
    fn contains(&self, o: &Named) -> bool {
        self.base <= o.base && o.end() <= self.end()
    }
    fn range(&self) -> String {
        format!("{}..{}", hex(self.base), hex(self.end()))
    }
}

fn region_label(r: &RegionSpec, key: &str) -> String {
    match r {
        RegionSpec::ReservedMemory { node, .. } => format!("/reserved-memory/{node}"),
        RegionSpec::Range { .. } => format!("{key}.base"),
    }
}

/// The `memory-region` entries of `r`'s device-tree node
/// (`/sys/class/remoteproc/remoteprocN/device/of_node/memory-region`: big-endian u32
/// phandles, `reserved-memory.yaml`), resolved through the `phandle` property of each
/// `/reserved-memory` child. Empty when sysfs or the device tree does not say.
fn firmware_regions(env: &CheckEnv, r: &Remoteproc) -> Vec<Named> {
    let Ok(raw) = std::fs::read(r.sysfs_dir().join("device/of_node/memory-region")) else {
        return Vec::new();
    };
    let wanted: Vec<u32> = raw
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let rm = env.roots.device_tree.join("reserved-memory");
    let mut nodes: Vec<(usize, String)> = std::fs::read_dir(&rm)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter_map(|e| {
                    let name = e.file_name().into_string().ok()?;
                    let p = std::fs::read(e.path().join("phandle")).ok()?;
                    let p: [u8; 4] = p.as_slice().try_into().ok()?;
                    let at = wanted.iter().position(|&w| w == u32::from_be_bytes(p))?;
                    Some((at, name))
                })
                .collect()
        })
        .unwrap_or_default();
    nodes.sort();
    let mut out = Vec::new();
    for (_, name) in nodes {
        if let Ok(m) = reserved_memory(&env.roots, &name) {
            for &(base, len) in &m.regions {
                out.push(Named {
                    what: format!(
                        "{}'s own memory /reserved-memory/{name} (memory-region of its device-tree node)",
                        r.id()
                    ),
                    base,
                    len,
                });
            }
        }
    }
    out
}

impl Board {
    /// Every physical range this core's link uses that this machine can locate: the pool
    /// memory, the userspace transport's region, and the core's own `memory-region`
    /// entries (probed quietly: `check` reports what cannot be found).
    fn used_regions(&self, env: &CheckEnv) -> Vec<Named> {
        let rproc = self
            .remoteproc
            .as_ref()
            .and_then(|s| Remoteproc::open(&env.rproc, Some(&s.selector.as_arg())).ok());
        let mut out = Vec::new();
        if let Some((base, len, _)) = self.check_memory(env, &mut Findings(Vec::new())) {
            out.push(Named {
                what: "pool memory".into(),
                base,
                len,
            });
        }
        if let TransportSpec::Userspace { region, .. } = &self.transport {
            if let Ok((base, len, _)) = self.region_phys(region, env) {
                out.push(Named {
                    what: format!("transport region ({})", region_label(region, "transport")),
                    base,
                    len,
                });
            }
        }
        out.extend(rproc.map(|r| firmware_regions(env, &r)).unwrap_or_default());
        out
    }
}

impl crate::BoardFile {
    /// The cores against each other on this machine: each core's pool memory, transport
    /// region and own `memory-region` entries, as this machine locates them (reserved-memory
    /// nodes the file names without a size, UIO maps, u-dma-buf buffers), must not overlap
    /// another core's. Validation compares only what the file itself locates; this finds
    /// the rest. One finding per overlapping pair, on topic `cores`; none for a single core.
    pub fn check_between(&self, env: &CheckEnv) -> Vec<(String, crate::Finding)> {
        let used: Vec<_> = self
            .cores
            .iter()
            .map(|c| (c, c.board.used_regions(env)))
            .collect();
        let mut out = Vec::new();
        for (i, (a, ra)) in used.iter().enumerate() {
            for (b, rb) in &used[..i] {
                for x in ra {
                    for y in rb.iter().filter(|y| x.overlaps(y)) {
                        let mut f = Findings(Vec::new());
                        f.push(
                            Level::Error,
                            "cores",
                            format!(
                                "core {}'s {} {} overlaps core {}'s {} {}: each core needs its own memory",
                                a.name,
                                x.what,
                                x.range(),
                                b.name,
                                y.what,
                                y.range()
                            ),
                        );
                        out.extend(f.0.into_iter().map(|f| (a.name.clone(), f)));
                    }
                }
            }
        }
        out
    }
}

impl Board {
    /// `pool` is the pool memory's physical range as the memory check found it.
    pub(super) fn check_overlaps(
        &self,
        env: &CheckEnv,
        rproc: Option<&Remoteproc>,
        pool: Option<(u64, u64, bool)>,
        f: &mut Findings,
    ) {
        let transport = match &self.transport {
            TransportSpec::Userspace { region, .. } => {
                self.region_phys(region, env)
                    .ok()
                    .map(|(base, len, _)| Named {
                        what: format!(
                            "the transport region ({})",
                            region_label(region, "transport")
                        ),
                        base,
                        len,
                    })
            }
            _ => None,
        };
        let pool = pool.map(|(base, len, _)| Named {
            what: format!(
                "the pool memory ({})",
                match &self.memory {
                    MemorySpec::Carveout(PoolCarveout::DevMem(r)) => region_label(r, "memory"),
                    MemorySpec::Carveout(PoolCarveout::Uio { device, map }) =>
                        format!("{device} map{map}"),
                    MemorySpec::Carveout(PoolCarveout::UioNamed(n)) => format!("UIO map {n:?}"),
                    MemorySpec::UDmaBuf { device, .. } => format!("u-dma-buf {device}"),
                    _ => "memory".to_string(),
                }
            ),
            base,
            len,
        });
        let firmware = rproc.map(|r| firmware_regions(env, r)).unwrap_or_default();
        let clash = |f: &mut Findings, a: &Named, b: &Named, fix: &str| {
            f.push(
                Level::Error,
                "regions",
                format!(
                    "{} {} overlaps {} {}: {fix}",
                    a.what,
                    a.range(),
                    b.what,
                    b.range()
                ),
            )
        };
        if let (Some(t), Some(p)) = (&transport, &pool) {
            if t.overlaps(p) {
                clash(
                    f,
                    p,
                    t,
                    "the pool's buffers would overwrite the rings and rpmsg buffers; give the pool its own reserved-memory node",
                );
            }
        }
        for m in &firmware {
            if let Some(p) = &pool {
                if p.overlaps(m) {
                    clash(
                        f,
                        p,
                        m,
                        "the pool would overwrite the remote core's code, data or vrings; give the pool a reserved-memory node of its own",
                    );
                }
            }
            // The transport region is normally one of the core's own regions (the vdev's
            // DMA memory): inside one is right, straddling a boundary is not.
            if let Some(t) = &transport {
                if t.overlaps(m) && !m.contains(t) {
                    clash(
                        f,
                        t,
                        m,
                        "the transport region must be one of the core's regions (or inside one), not straddle it",
                    );
                }
            }
        }
    }
}
