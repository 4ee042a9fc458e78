//! `[cache]`: the cache maintenance the data plane uses, against the host's architecture
//! and the memory's mapping.

use super::{Check, quoted};
use crate::model::Eviction;
use crate::model::{Arch, CacheKind, CacheMaintenance, CacheSpec, MemorySpec};
use crate::raw::RawCache;

/// The table, checked against the host architecture and the memory.
pub(super) fn validate(
    r: &RawCache,
    arch: Arch,
    memory: &MemorySpec,
    is_sim: bool,
    c: &mut Check,
) -> Option<CacheSpec> {
    let mode = c.one_of::<CacheKind>("cache.mode", &r.mode)?;
    let value = Some(quoted(&r.mode));
    if mode != CacheKind::SimNoncoherent {
        let sim = "cache.mode = \"sim-noncoherent\"";
        c.not_here("cache.seed", &r.seed, sim);
        c.not_here("cache.per_mille", &r.per_mille, sim);
    }
    if mode != CacheKind::Coherent {
        c.not_here(
            "cache.io_coherent",
            &r.io_coherent,
            "cache.mode = \"coherent\"",
        );
    }
    let io_coherent = r.io_coherent.unwrap_or(false);
    let mode = match mode {
        CacheKind::Coherent => {
            check_coherent(arch, memory, is_sim, io_coherent, value, c);
            CacheMaintenance::Coherent
        }
        CacheKind::Arm64El0 => {
            check_arm64_el0(r, arch, is_sim, value, c);
            CacheMaintenance::Arm64El0
        }
        CacheKind::DmaBuf => {
            check_dma_buf(memory, value, c);
            CacheMaintenance::DmaBuf
        }
        CacheKind::UDmaBufSysfs => {
            check_u_dma_buf_sysfs(memory, value, c);
            CacheMaintenance::UDmaBufSysfs
        }
        CacheKind::SimNoncoherent => sim_noncoherent(r, is_sim, value, c),
    };
    Some(CacheSpec { mode, io_coherent })
}

/// `cache.mode = "coherent"`: a cacheable mapping needs a snooping remote.
fn check_coherent(
    arch: Arch,
    memory: &MemorySpec,
    is_sim: bool,
    io_coherent: bool,
    value: Option<String>,
    c: &mut Check,
) {
    let cached = memory.is_cacheable();
    if cached && !is_sim && arch != Arch::X86_64 && !io_coherent {
        c.err(
            "cache.mode",
            value,
            format!(
                "a {} mapping is cacheable and the remote core does not snoop the CPU's caches: use \"arm64-el0\" (or \"dma-buf\"), or set cache.io_coherent = true if this SoC's interconnect really is coherent for it",
                memory.source()
            ),
        );
    }
}

/// `cache.mode = "arm64-el0"`: an aarch64 host, not the simulated SoC.
fn check_arm64_el0(r: &RawCache, arch: Arch, is_sim: bool, value: Option<String>, c: &mut Check) {
    if arch != Arch::Aarch64 {
        c.err(
            "cache.mode",
            value,
            format!(
                "needs an aarch64 host (DC CVAC / DC CIVAC are ARM64 instructions), and board.arch is {}",
                quoted(arch.as_str())
            ),
        );
    }
    if is_sim {
        c.err(
            "cache.mode",
            Some(quoted(&r.mode)),
            "the simulated SoC models caches itself: use \"coherent\" or \"sim-noncoherent\"",
        );
    }
}

/// `cache.mode = "dma-buf"`: the memory is a dma-buf.
fn check_dma_buf(memory: &MemorySpec, value: Option<String>, c: &mut Check) {
    if !matches!(
        memory,
        MemorySpec::DmaHeap { .. } | MemorySpec::Udmabuf { .. }
    ) {
        c.err(
            "cache.mode",
            value,
            format!(
                "needs a dma-buf (memory.source = \"dma-heap\" or \"udmabuf\"), not {}",
                quoted(memory.source().as_str())
            ),
        );
    }
}

/// The u-dma-buf sysfs mode: the memory is a u-dma-buf.
fn check_u_dma_buf_sysfs(memory: &MemorySpec, value: Option<String>, c: &mut Check) {
    if !matches!(memory, MemorySpec::UDmaBuf { .. }) {
        c.err(
            "cache.mode",
            value,
            format!(
                "needs memory.source = \"u-dma-buf\" (its sysfs sync attributes), not {}",
                quoted(memory.source().as_str())
            ),
        );
    }
}

/// `cache.mode = "sim-noncoherent"`: the simulated SoC's eviction model.
fn sim_noncoherent(
    r: &RawCache,
    is_sim: bool,
    value: Option<String>,
    c: &mut Check,
) -> CacheMaintenance {
    if !is_sim {
        c.err(
            "cache.mode",
            value,
            "the cache model exists only in the simulated SoC (transport.kind = \"sim\")",
        );
    }
    let default = Eviction::default();
    let per_mille = r.per_mille.unwrap_or(default.per_mille);
    if per_mille > 1000 {
        c.err(
            "cache.per_mille",
            Some(per_mille.to_string()),
            "expected 0..=1000 evictions per thousand accesses",
        );
    }
    CacheMaintenance::SimNoncoherent(Eviction {
        seed: r.seed.unwrap_or(default.seed),
        per_mille,
    })
}
