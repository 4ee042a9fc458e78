//! `[mapping]`: how the remote core addresses the pool — identity, a fixed offset, an
//! IOMMU through VFIO, TI's dma-buf attach, or the simulator's IOMMU.

use super::{Check, check_page, hex, quoted};
use crate::model::POOL_IOVA;
use crate::model::{MappingKind, MappingSpec, MemorySpec, PoolCarveout, RegionSpec, RprocSpec};
use crate::raw::RawMapping;

/// A QEMU board's mapping: the emulated core has no IOMMU and reaches the shared memfd at
/// its own addresses (the firmware declares the data-plane window), so only `identity` (the
/// default) fits.
pub(super) fn validate_qemu(m: Option<&RawMapping>, c: &mut Check) -> Option<MappingSpec> {
    let Some(m) = m else {
        return Some(MappingSpec::Identity);
    };
    let kind = c.one_of::<MappingKind>("mapping.kind", &m.kind)?;
    c.not_here("mapping.offset", &m.offset, "mapping.kind = \"offset\"");
    c.not_here(
        "mapping.iova",
        &m.iova,
        "mapping.kind = \"vfio\" or \"sim-iommu\"",
    );
    c.not_here("mapping.group", &m.group, "mapping.kind = \"vfio\"");
    if kind != MappingKind::Identity {
        c.err(
            "mapping.kind",
            Some(quoted(&m.kind)),
            "QEMU's emulated core has no IOMMU and sees the shared memory at the addresses its firmware declares: use \"identity\" (or leave [mapping] out)",
        );
    }
    Some(MappingSpec::Identity)
}

/// The table, or the mapping the memory implies when the file has none.
pub(super) fn validate(
    m: Option<&RawMapping>,
    memory: &MemorySpec,
    rproc: Option<&RprocSpec>,
    c: &mut Check,
) -> Option<MappingSpec> {
    let Some(m) = m else {
        return default_mapping(memory, c);
    };
    let kind = c.one_of::<MappingKind>("mapping.kind", &m.kind)?;
    check_keys(kind, m, c);
    let is_carveout = memory.has_phys_addr();
    let value = Some(quoted(&m.kind));
    let spec = match kind {
        MappingKind::Identity | MappingKind::Offset => {
            direct(kind, m, memory, is_carveout, value, c)?
        }
        MappingKind::Vfio => vfio(m, memory, value, c)?,
        MappingKind::TiRprocAttach => {
            if !matches!(memory, MemorySpec::DmaHeap { .. }) {
                c.err(
                    "mapping.kind",
                    value,
                    format!(
                        "needs memory.source = \"dma-heap\" (a physically contiguous dma-buf); not {}",
                        quoted(memory.source().as_str())
                    ),
                );
            }
            if rproc.is_none() {
                c.err(
                    "mapping.kind",
                    Some(quoted(&m.kind)),
                    "needs [remoteproc]: the buffer is attached through /dev/remoteprocN",
                );
            }
            MappingSpec::TiRprocAttach
        }
        MappingKind::SimIommu => {
            if !matches!(memory, MemorySpec::Memfd { .. }) {
                c.err(
                    "mapping.kind",
                    value,
                    "the simulator's IOMMU exists only with memory.source = \"memfd\"",
                );
            }
            let iova = m.iova.unwrap_or(POOL_IOVA);
            check_page("mapping.iova", iova, c);
            MappingSpec::SimIommu { iova }
        }
    };
    check_kind_fits_memory(kind, m, memory, c);
    Some(spec)
}

/// The mapping the memory implies when the file has no `[mapping]`.
fn default_mapping(memory: &MemorySpec, c: &mut Check) -> Option<MappingSpec> {
    match memory {
        MemorySpec::Memfd { .. } => Some(MappingSpec::SimIommu { iova: POOL_IOVA }),
        MemorySpec::Carveout(_) => Some(MappingSpec::Identity),
        other if other.has_phys_addr() => Some(MappingSpec::Identity),
        other => {
            c.err(
            "mapping",
            None,
            format!(
                "missing: a {} buffer has no physical address the remote could use; give mapping.kind = \"vfio\"{}, or memory.device_address = \"pagemap\" for a CMA heap",
                other.source(),
                if matches!(other, MemorySpec::DmaHeap { .. }) {
                    " or \"ti-rproc-attach\""
                } else {
                    ""
                }
            ),
        );
            None
        }
    }
}

/// The keys only another kind takes.
fn check_keys(kind: MappingKind, m: &RawMapping, c: &mut Check) {
    if kind != MappingKind::Offset {
        c.not_here("mapping.offset", &m.offset, "mapping.kind = \"offset\"");
    }
    if !matches!(kind, MappingKind::Vfio | MappingKind::SimIommu) {
        c.not_here(
            "mapping.iova",
            &m.iova,
            "mapping.kind = \"vfio\" or \"sim-iommu\"",
        );
    }
    if kind != MappingKind::Vfio {
        c.not_here("mapping.group", &m.group, "mapping.kind = \"vfio\"");
    }
}

/// `"identity"` or `"offset"`: a pool with a physical address, an offset keeping it in
/// the address space.
fn direct(
    kind: MappingKind,
    m: &RawMapping,
    memory: &MemorySpec,
    is_carveout: bool,
    value: Option<String>,
    c: &mut Check,
) -> Option<MappingSpec> {
    if !is_carveout {
        c.err(
            "mapping.kind",
            value,
            format!(
                "needs a pool with a physical address (memory.source = \"carveout\" or \"u-dma-buf\", or a CMA \"dma-heap\" with memory.device_address = \"pagemap\"): a {} buffer has none userspace can learn",
                memory.source()
            ),
        );
    }
    if kind == MappingKind::Identity {
        Some(MappingSpec::Identity)
    } else {
        let off = c.require(
            "mapping.offset",
            &m.offset,
            "device address = physical address + offset",
        )?;
        if let MemorySpec::Carveout(PoolCarveout::DevMem(RegionSpec::Range { base, size })) = memory
        {
            let ok = base
                .checked_add_signed(off)
                .and_then(|b| b.checked_add(*size))
                .is_some();
            if !ok {
                c.err(
                    "mapping.offset",
                    Some(off.to_string()),
                    format!(
                        "moves the carveout {}+{} out of the 64-bit address space",
                        hex(*base),
                        hex(*size)
                    ),
                );
            }
        }
        Some(MappingSpec::Offset(off))
    }
}

/// `"vfio"`: the group and the page-aligned I/O virtual address.
fn vfio(
    m: &RawMapping,
    memory: &MemorySpec,
    value: Option<String>,
    c: &mut Check,
) -> Option<MappingSpec> {
    if matches!(memory, MemorySpec::Memfd { .. }) {
        c.err(
            "mapping.kind",
            value,
            "the simulated SoC's IOMMU is \"sim-iommu\"",
        );
    }
    let group = c.require(
        "mapping.group",
        &m.group,
        "the VFIO group of the remote core's IOMMU (/dev/vfio/<group>)",
    );
    let iova = c.require(
        "mapping.iova",
        &m.iova,
        "the I/O virtual address the remote sees the pool at",
    );
    if let Some(iova) = iova {
        check_page("mapping.iova", iova, c);
    }
    Some(MappingSpec::Vfio {
        group: group?,
        iova: iova?,
    })
}

/// The memories that only one way of mapping reaches.
fn check_kind_fits_memory(kind: MappingKind, m: &RawMapping, memory: &MemorySpec, c: &mut Check) {
    if matches!(memory, MemorySpec::Memfd { .. }) && kind != MappingKind::SimIommu {
        c.err(
            "mapping.kind",
            Some(quoted(&m.kind)),
            "memory.source = \"memfd\" is reached through the simulator's IOMMU: use \"sim-iommu\"",
        );
    }
    if memory.has_phys_addr()
        && !matches!(memory, MemorySpec::Carveout(_))
        && !matches!(kind, MappingKind::Identity | MappingKind::Offset)
    {
        c.err(
            "mapping.kind",
            Some(quoted(&m.kind)),
            format!(
                "a {} buffer with a known physical address is addressed by \"identity\" or \"offset\"{}",
                memory.source(),
                match memory {
                    MemorySpec::UDmaBuf { .. } => " (VFIO cannot pin its PFN-mapped pages)",
                    MemorySpec::Hugetlb { .. } => {
                        " (for an IOMMU use memory.source = \"udmabuf\" with mapping.kind = \"vfio\")"
                    }
                    _ => " (drop memory.device_address to use an IOMMU or TI's attach)",
                }
            ),
        );
    }
    if matches!(memory, MemorySpec::Udmabuf { .. }) && kind != MappingKind::Vfio {
        c.err(
            "mapping.kind",
            Some(quoted(&m.kind)),
            "a udmabuf's pages are scattered: the remote reaches them only through an IOMMU (\"vfio\")",
        );
    }
}
