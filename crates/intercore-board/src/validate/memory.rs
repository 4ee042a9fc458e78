//! `[memory]`: where the data-plane pool lives — a memfd (the simulated SoC), a physical
//! carveout (through `/dev/mem` or UIO), a dma-buf heap allocation or a udmabuf.

use super::{Check, check_page, hex, plain_node_name, quoted};
use crate::keyword::keyword_enum;
use crate::model::{DeviceAddress, MemorySource, MemorySpec, PoolCarveout, RegionSpec};
use crate::raw::RawMemory;

keyword_enum! {
    /// `memory.access`: how a carveout is reached.
    enum Access {
        /// `/dev/mem`.
        DevMem = "devmem",
        /// A UIO device's map.
        Uio = "uio",
    }
}

/// The table; `None` when its source is unknown or a key it needs is missing.
pub(super) fn validate(m: &RawMemory, c: &mut Check) -> Option<MemorySpec> {
    let source = c.one_of::<MemorySource>("memory.source", &m.source)?;
    check_keys(source, m, c);
    match source {
        MemorySource::Memfd => Some(MemorySpec::Memfd { size: m.size }),
        MemorySource::Carveout => {
            let access = c.one_of_or("memory.access", m.access.as_deref(), Access::DevMem)?;
            match access {
                Access::DevMem => devmem(m, c),
                Access::Uio => uio(m, c),
            }
        }
        MemorySource::DmaHeap => dma_heap(m, c),
        MemorySource::Hugetlb => {
            let size = c.require(
                "memory.size",
                &m.size,
                "bytes of the hugetlb memfd (a multiple of the huge page size, 2 MiB on arm64 with 4 KiB pages)",
            )?;
            Some(MemorySpec::Hugetlb { size })
        }
        MemorySource::UDmaBuf => u_dma_buf(m, c),
        MemorySource::Udmabuf => {
            let size = c.require("memory.size", &m.size, "bytes of the udmabuf")?;
            Some(MemorySpec::Udmabuf { size })
        }
    }
}

/// The keys only another source takes, and the size's granularity.
fn check_keys(source: MemorySource, m: &RawMemory, c: &mut Check) {
    if source != MemorySource::Carveout {
        let carve = "memory.source = \"carveout\"";
        c.not_here("memory.access", &m.access, carve);
        c.not_here("memory.reserved_memory", &m.reserved_memory, carve);
        c.not_here("memory.base", &m.base, carve);
        c.not_here("memory.uio_device", &m.uio_device, carve);
        c.not_here("memory.uio_map", &m.uio_map, carve);
        c.not_here("memory.uio_map_name", &m.uio_map_name, carve);
    }
    if source != MemorySource::DmaHeap {
        c.not_here("memory.heap", &m.heap, "memory.source = \"dma-heap\"");
        c.not_here(
            "memory.device_address",
            &m.device_address,
            "memory.source = \"dma-heap\" (a u-dma-buf's address is in sysfs, a carveout's in the file)",
        );
    }
    if source != MemorySource::UDmaBuf {
        c.not_here("memory.device", &m.device, "memory.source = \"u-dma-buf\"");
    }
    if let Some(size) = m.size {
        if size == 0 || size % 4096 != 0 {
            c.err(
                "memory.size",
                Some(hex(size)),
                "expected a non-zero multiple of the page size (4096)",
            );
        }
    }
}

/// A dma-buf heap allocation: the heap's name, the size, how the remote's address is found.
fn dma_heap(m: &RawMemory, c: &mut Check) -> Option<MemorySpec> {
    let heap = c.require(
        "memory.heap",
        &m.heap,
        "the dma-buf heap's name under /dev/dma_heap",
    );
    if let Some(h) = &heap {
        if !plain_node_name(h) {
            c.err(
                "memory.heap",
                Some(quoted(h)),
                "expected a heap name under /dev/dma_heap, e.g. \"system\" or \"linux,cma\"",
            );
        }
    }
    let size = c.require("memory.size", &m.size, "bytes to allocate from the heap");
    let device_address = match &m.device_address {
        None => None,
        Some(_) => {
            Some(c.one_of::<DeviceAddress>("memory.device_address", m.device_address.as_ref()?)?)
        }
    };
    if device_address == Some(DeviceAddress::Pagemap) && heap.as_deref() == Some("system") {
        c.err(
            "memory.device_address",
            Some(quoted("pagemap")),
            "the system heap's pages are not physically contiguous: use a CMA heap (\"linux,cma\", \"reserved\", or the name of a reusable shared-dma-pool node) for a buffer the remote reaches at one physical address",
        );
    }
    Some(MemorySpec::DmaHeap {
        heap: heap?,
        size: size?,
        device_address,
    })
}

/// A u-dma-buf device (its size and address are in sysfs).
fn u_dma_buf(m: &RawMemory, c: &mut Check) -> Option<MemorySpec> {
    let device = c.require(
        "memory.device",
        &m.device,
        "the u-dma-buf device (\"udmabuf0\": /dev/udmabuf0, /sys/class/u-dma-buf/udmabuf0)",
    )?;
    if !plain_node_name(&device) {
        c.err(
            "memory.device",
            Some(quoted(&device)),
            "expected a u-dma-buf device name like \"udmabuf0\"",
        );
    }
    Some(MemorySpec::UDmaBuf {
        device,
        size: m.size,
    })
}

/// A carveout through `/dev/mem`: a reserved-memory node or a physical range.
fn devmem(m: &RawMemory, c: &mut Check) -> Option<MemorySpec> {
    let uio = "memory.access = \"uio\"";
    c.not_here("memory.uio_device", &m.uio_device, uio);
    c.not_here("memory.uio_map", &m.uio_map, uio);
    c.not_here("memory.uio_map_name", &m.uio_map_name, uio);
    let region = match (&m.reserved_memory, m.base) {
        (Some(node), None) => {
            if !plain_node_name(node) {
                c.err(
                    "memory.reserved_memory",
                    Some(quoted(node)),
                    "expected a node name under /reserved-memory, e.g. \"intercore-pool@a6000000\"",
                );
            }
            RegionSpec::ReservedMemory {
                node: node.clone(),
                size: m.size,
            }
        }
        (None, Some(base)) => {
            check_page("memory.base", base, c);
            let size = c.require("memory.size", &m.size, "memory.base needs a size")?;
            if base.checked_add(size).is_none() {
                c.err(
                    "memory.size",
                    Some(hex(size)),
                    "base + size wraps the physical address space",
                );
            }
            RegionSpec::Range { base, size }
        }
        (Some(_), Some(_)) => {
            c.err(
                "memory.base",
                None,
                "give either memory.reserved_memory or memory.base + memory.size, not both",
            );
            return None;
        }
        (None, None) => {
            c.err(
                "memory.reserved_memory",
                None,
                "missing: the carveout's /reserved-memory node (or memory.base + memory.size)",
            );
            return None;
        }
    };
    Some(MemorySpec::Carveout(PoolCarveout::DevMem(region)))
}

/// A carveout through UIO: a device's map, or a map found by its name.
fn uio(m: &RawMemory, c: &mut Check) -> Option<MemorySpec> {
    let devmem = "memory.access = \"devmem\"";
    c.not_here("memory.reserved_memory", &m.reserved_memory, devmem);
    c.not_here("memory.base", &m.base, devmem);
    c.not_here(
        "memory.size",
        &m.size,
        "memory.access = \"devmem\" (a UIO map's size comes from sysfs)",
    );
    match (&m.uio_device, &m.uio_map_name) {
        (Some(d), None) => {
            if !(d.starts_with("uio") && plain_node_name(d)) {
                c.err(
                    "memory.uio_device",
                    Some(quoted(d)),
                    "expected a UIO device name like \"uio0\"",
                );
            }
            Some(MemorySpec::Carveout(PoolCarveout::Uio {
                device: d.clone(),
                map: m.uio_map.unwrap_or(0),
            }))
        }
        (None, Some(n)) => {
            c.not_here(
                "memory.uio_map",
                &m.uio_map,
                "memory.uio_device (a named map is found by its name)",
            );
            Some(MemorySpec::Carveout(PoolCarveout::UioNamed(n.clone())))
        }
        (Some(_), Some(_)) => {
            c.err(
                "memory.uio_map_name",
                None,
                "give either memory.uio_device (+ uio_map) or memory.uio_map_name, not both",
            );
            None
        }
        (None, None) => {
            c.err(
                "memory.uio_device",
                None,
                "missing: the UIO device (\"uio0\") or memory.uio_map_name",
            );
            None
        }
    }
}
