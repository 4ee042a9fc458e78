//! Where the host puts a table-described vdev's vrings and buffers, and how it is woken: one
//! plan, made from the firmware's resource table and the board file, used by
//! [`Board::open`](crate::Board::open) and by [`Board::check`](crate::Board::check) (on the
//! table read from the image), so that the two agree and every refusal names its key.
//!
//! Placement follows Linux, for a firmware table as vendors ship it (a vdev with vrings at
//! `FW_RSC_ADDR_ANY`, no buffer carveout):
//!
//! * `rproc_alloc_vring` (drivers/remoteproc/remoteproc_core.c) allocates each vring as
//!   `PAGE_ALIGN(vring_size(num, align))` bytes with `dma_alloc_coherent` from the remote
//!   processor device, whose pool is its first `memory-region` (TI K3:
//!   `of_reserved_mem_device_init_by_idx(dev, np, 0)`), vring 0 first;
//! * `rproc_virtio_probe` (remoteproc_virtio.c) gives the vdev the carveout named
//!   `vdev%dbuffer` if there is one, else the same reserved-memory region 0 — the same
//!   pool (`rmem_dma_device_init` creates the pool once, `rmem->priv`);
//! * `rpmsg_probe` (drivers/rpmsg/virtio_rpmsg_bus.c) then allocates all the buffers in one
//!   `dma_alloc_coherent(num_bufs * buf_size)` (`num_bufs` = twice the vring size, at most
//!   512);
//! * the per-device coherent pool (`__dma_alloc_from_coherent`, kernel/dma/coherent.c)
//!   takes `bitmap_find_free_region(bitmap, pages, get_order(size))`: the first free run of
//!   `1 << order` pages starting at a multiple of `1 << order` pages from the pool's start.
//!
//! So with TI's table (two vrings of 256 entries, align 4096: 3 pages each, order 2) the
//! rings take pages 0 and 4, and 512 × 512 B of buffers (order 6) land at page 64:
//! `vring0.da + 0x40000`, where TI's `RPMessage_vringResetLinux` puts them.
//!
//! The host bus does the allocation (`HostConfig::vring_region` is the pool, modelled by
//! [`CoherentPool`]); the plan here runs the same model first, so that `board check` can
//! say where everything goes and refuse a pool too small, naming the key.
//!
//! A table without intercore's vendor entry declares no doorbell the host can ring or
//! watch: the link is polled ([`PolledRings`](intercore::pollbell::PolledRings)).

use crate::model::{Board, TransportSpec};
use crate::open::OpenError;
use intercore::rpmsg::{BUFFER_CARVEOUT, CoherentPool, LINUX_PAGE};
use intercore::virtq::VringLayout;
use intercore::wire::rsc::{FW_RSC_ADDR_ANY, FwRscIntercore, Resource, ResourceTable};
use intercore::{DevAddr, LinearMap};

const PAGE: u64 = LINUX_PAGE as u64;

/// A device-address range the board file gives (`[vdev]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DaRange {
    /// First device address.
    pub base: u64,
    /// Bytes.
    pub size: u64,
}

/// The `[vdev]` table: where the host places what the firmware's table leaves to it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VdevSpec {
    /// `vdev.pool_base` + `vdev.pool_size`: the vdev's DMA pool, the remote processor's first
    /// `memory-region` (a `shared-dma-pool`): vrings at `FW_RSC_ADDR_ANY`, then the buffers,
    /// allocated from it as Linux's per-device coherent pool does.
    pub pool: Option<DaRange>,
    /// `vdev.buffers_base` + `vdev.buffers_size`: a `vdev0buffer` region; the buffers go
    /// here instead of the pool (Linux: the carveout or reserved-memory region named
    /// `vdev0buffer`).
    pub buffers: Option<DaRange>,
}

/// How the host is woken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// The polling doorbell's counters at the block the firmware's intercore vendor entry
    /// declares.
    Counters(FwRscIntercore),
    /// No doorbell: both sides poll the rings.
    PolledRings,
}

/// What the host will do with a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VdevPlan {
    /// Where vrings at `FW_RSC_ADDR_ANY` go (`HostConfig::vring_region`).
    pub vring_region: Option<LinearMap>,
    /// Where the buffers go when the table has no `vdev0buffer` (`HostConfig::buffers`).
    pub buffers: Option<LinearMap>,
    /// How the host is woken.
    pub wake: Wake,
    /// One line per decision, for `board check` and the owner's log.
    pub notes: Vec<String>,
}

/// The window of the shared memory the host maps: device address `base` is offset
/// `offset`, `len` bytes.
fn inside(window: &LinearMap, r: DaRange) -> Option<LinearMap> {
    let rel = r.base.checked_sub(window.base.0)?;
    let end = rel.checked_add(r.size)?;
    (end <= window.len as u64).then(|| LinearMap {
        base: DevAddr(r.base),
        offset: window.offset + rel as usize,
        len: r.size as usize,
    })
}

impl Board {
    /// The pool the board gives for the vdev: `[vdev]`, or the userspace transport's
    /// `vring_offset` (from there to the carveout's end). `key` names where it came from.
    fn vdev_pool(&self, window: &LinearMap) -> Option<(DaRange, &'static str)> {
        if let Some(p) = self.vdev.pool {
            return Some((p, "vdev.pool_base"));
        }
        match &self.transport {
            TransportSpec::Userspace {
                vring_offset: Some(v),
                ..
            } => Some((
                DaRange {
                    base: window.base.0 + v,
                    size: (window.len as u64).saturating_sub(*v),
                },
                "transport.vring_offset",
            )),
            _ => None,
        }
    }

    /// The plan for the resource table `table`, in shared memory the host sees as
    /// `window`. `table_key` names the key that led to the table (`transport.image`,
    /// `transport.rsc_offset`). Every error names the board key to change.
    pub(crate) fn plan_vdev(
        &self,
        table: &ResourceTable<'_>,
        window: &LinearMap,
        table_key: &'static str,
    ) -> Result<VdevPlan, OpenError> {
        let rings = rpmsg_vrings(table, table_key)?;
        let mut notes = Vec::new();
        let table_buffers = has_buffer_carveout(table);
        let wake = wake(table, table_key, &mut notes)?;
        let any = rings.iter().any(|r| r.0 == FW_RSC_ADDR_ANY);
        let mut vring_region = None;
        if any || (!table_buffers && self.vdev.buffers.is_none()) {
            vring_region = Some(self.place_in_pool(
                window,
                &rings,
                any,
                table_buffers,
                table_key,
                &mut notes,
            )?);
        }
        let buffers = self.buffers_region(window, table_buffers, &mut notes)?;
        Ok(VdevPlan {
            vring_region,
            buffers,
            wake,
            notes,
        })
    }

    /// The host's allocations in the board's vdev pool, as Linux makes them in the remote
    /// processor's DMA pool: the vrings the table leaves at `FW_RSC_ADDR_ANY`, then the
    /// buffers when neither the table nor the board places them. Returns the pool.
    fn place_in_pool(
        &self,
        window: &LinearMap,
        rings: &[(u32, u64, u64)],
        any: bool,
        table_buffers: bool,
        table_key: &'static str,
        notes: &mut Vec<String>,
    ) -> Result<LinearMap, OpenError> {
        let Some((p, key)) = self.vdev_pool(window) else {
            return Err(self.missing_pool(any));
        };
        let lm = pool_window(window, p, key)?;
        // The host bus's allocation (HostBus::new), run first on a model of the pool.
        let mut cp = CoherentPool::new(p.size as usize);
        place_vrings(&mut cp, rings, p, key, table_key, notes)?;
        if !table_buffers && self.vdev.buffers.is_none() {
            self.place_buffers(&mut cp, rings, p, key, notes)?;
        }
        Ok(lm)
    }

    /// The error when the host must allocate and the board gives no pool.
    fn missing_pool(&self, any: bool) -> OpenError {
        let what = if any {
            "the firmware's table leaves its vrings at FW_RSC_ADDR_ANY"
        } else {
            "the firmware's table has no vdev0buffer carveout"
        };
        cfg(
            "vdev.pool_base",
            format!(
                "missing: {what}, so the host allocates them, as Linux does from the remote processor's DMA pool (its first memory-region): give vdev.pool_base and vdev.pool_size (device addresses){}",
                if self.transport.kind() == crate::model::TransportKind::Userspace {
                    " or transport.vring_offset"
                } else {
                    ""
                }
            ),
        )
    }

    /// The buffers, after the vrings in the pool `p` (board key `key`).
    fn place_buffers(
        &self,
        cp: &mut CoherentPool,
        rings: &[(u32, u64, u64)],
        p: DaRange,
        key: &'static str,
        notes: &mut Vec<String>,
    ) -> Result<(), OpenError> {
        let num = rings.iter().map(|r| r.1).min().unwrap_or(0);
        let per_dir = num.min(self.rpmsg.buffers as u64) as usize;
        let size = 2 * per_dir * self.rpmsg.buffer_size;
        let off = cp.alloc(size).ok_or_else(|| {
            cfg(
                key,
                format!(
                    "the pool {:#x}+{:#x} is too small for the vrings and {} buffers of {} bytes ({size:#x} bytes, aligned to their size as Linux's coherent pool does)",
                    p.base, p.size, 2 * per_dir, self.rpmsg.buffer_size
                ),
            )
        })?;
        notes.push(format!(
            "buffers: {} × {} B placed by the host at {:#x} (where Linux's coherent pool puts them)",
            2 * per_dir,
            self.rpmsg.buffer_size,
            p.base + off as u64
        ));
        Ok(())
    }

    /// The buffers the board places itself (`vdev.buffers_base`), unless the table has them.
    fn buffers_region(
        &self,
        window: &LinearMap,
        table_buffers: bool,
        notes: &mut Vec<String>,
    ) -> Result<Option<LinearMap>, OpenError> {
        if table_buffers {
            notes.push("buffers: the table's vdev0buffer carveout".into());
        } else if let Some(b) = self.vdev.buffers {
            let lm = inside(window, b).ok_or_else(|| {
                cfg(
                    "vdev.buffers_base",
                    format!(
                        "{:#x}+{:#x} is not inside the shared memory ({:#x}+{:#x})",
                        b.base, b.size, window.base.0, window.len
                    ),
                )
            })?;
            notes.push(format!(
                "buffers: vdev.buffers_base {:#x}+{:#x} (a vdev0buffer region)",
                b.base, b.size
            ));
            return Ok(Some(lm));
        }
        Ok(None)
    }
}

/// A board configuration error at `key`.
fn cfg(key: &'static str, message: String) -> OpenError {
    OpenError::Config { key, message }
}

/// The table's rpmsg vdev's two vrings: `(da, num, align)`.
fn rpmsg_vrings(
    table: &ResourceTable<'_>,
    table_key: &'static str,
) -> Result<Vec<(u32, u64, u64)>, OpenError> {
    let vdev = table
        .find_vdev(intercore::wire::rpmsg::VIRTIO_ID_RPMSG)
        .map_err(|e| cfg(table_key, format!("the resource table: {e}")))?
        .ok_or_else(|| {
            cfg(
                table_key,
                "the resource table has no rpmsg vdev (virtio id 7)".into(),
            )
        })?;
    if vdev.num_vrings() < 2 {
        return Err(cfg(
            table_key,
            format!(
                "the rpmsg vdev has {} vrings; rpmsg needs two",
                vdev.num_vrings()
            ),
        ));
    }
    Ok((0..2)
        .filter_map(|i| vdev.vring(i))
        .map(|v| (v.da.get(), v.num.get() as u64, v.align.get() as u64))
        .collect())
}

/// Whether the table has the `vdev0buffer` carveout.
fn has_buffer_carveout(table: &ResourceTable<'_>) -> bool {
    let mut table_buffers = false;
    for e in table.iter() {
        if let Ok(Resource::Carveout(c)) = e {
            let n = BUFFER_CARVEOUT.len();
            if c.name[..n] == *BUFFER_CARVEOUT && c.name[n] == 0 {
                table_buffers = true;
            }
        }
    }
    table_buffers
}

/// How the host learns of new messages: the intercore vendor entry's counters, else the rings.
fn wake(
    table: &ResourceTable<'_>,
    table_key: &'static str,
    notes: &mut Vec<String>,
) -> Result<Wake, OpenError> {
    Ok(
        match table
            .find_intercore()
            .map_err(|e| cfg(table_key, format!("the resource table: {e}")))?
        {
            Some((_, entry)) => {
                notes.push(
                    "doorbell: the polling counters the firmware's intercore vendor entry declares"
                        .into(),
                );
                Wake::Counters(entry)
            }
            None => {
                notes.push("doorbell: none (the table has no intercore vendor entry): the host polls the rings, as the firmware must".into());
                Wake::PolledRings
            }
        },
    )
}

/// The board's vdev pool `p` (key `key`) inside the shared memory, page-aligned.
fn pool_window(window: &LinearMap, p: DaRange, key: &'static str) -> Result<LinearMap, OpenError> {
    let lm = inside(window, p).ok_or_else(|| {
        cfg(
            key,
            format!(
                "the pool {:#x}+{:#x} is not inside the shared memory ({:#x}+{:#x})",
                p.base, p.size, window.base.0, window.len
            ),
        )
    })?;
    if p.base % PAGE != 0 || p.size < PAGE {
        return Err(cfg(
            key,
            format!(
                "the pool {:#x}+{:#x} must start on a page and hold at least one",
                p.base, p.size
            ),
        ));
    }
    Ok(lm)
}

/// The vrings the table leaves at `FW_RSC_ADDR_ANY`, placed in the pool `p` in order.
fn place_vrings(
    cp: &mut CoherentPool,
    rings: &[(u32, u64, u64)],
    p: DaRange,
    key: &'static str,
    table_key: &'static str,
    notes: &mut Vec<String>,
) -> Result<(), OpenError> {
    for (i, &(da, num, align)) in rings.iter().enumerate() {
        if da != FW_RSC_ADDR_ANY {
            notes.push(format!("vring {i}: at {da:#x} (the table's)"));
            continue;
        }
        let size = VringLayout::new(num as u32, align as u32)
            .map_err(|e| {
                cfg(
                    table_key,
                    format!("vring {i} ({num} entries, align {align}): {e}"),
                )
            })?
            .size()
            .div_ceil(LINUX_PAGE)
            * LINUX_PAGE;
        let off = cp.alloc(size).ok_or_else(|| {
            cfg(
                key,
                format!(
                    "the pool {:#x}+{:#x} is too small for vring {i} ({num} entries, {size:#x} bytes)",
                    p.base, p.size
                ),
            )
        })?;
        notes.push(format!(
            "vring {i}: {num} entries, align {align}, placed by the host at {:#x}",
            p.base + off as u64
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn board(extra: &str) -> Board {
        Board::from_str(&format!(
            "[board]\nname = \"q\"\n[transport]\nkind = \"qemu\"\ncore = \"r5f\"\nimage = \"x.elf\"\n[memory]\nsource = \"memfd\"\n[cache]\nmode = \"coherent\"\n{extra}"
        ))
        .unwrap()
    }

    /// A table as vendors ship it: one rpmsg vdev with two vrings (`da`, `num`, `align`),
    /// no carveout, no vendor entry.
    fn vendor_table(rings: [(u32, u32, u32); 2]) -> Vec<u8> {
        let mut t = vec![0u8; 16 + 4 + 4 + 24 + 2 * 20];
        t[0..4].copy_from_slice(&1u32.to_le_bytes());
        t[4..8].copy_from_slice(&1u32.to_le_bytes());
        t[16..20].copy_from_slice(&20u32.to_le_bytes());
        let v = 20;
        t[v..v + 4].copy_from_slice(&3u32.to_le_bytes()); // RSC_VDEV
        t[v + 4..v + 8].copy_from_slice(&7u32.to_le_bytes()); // rpmsg
        t[v + 12..v + 16].copy_from_slice(&1u32.to_le_bytes()); // VIRTIO_RPMSG_F_NS
        t[v + 25] = 2; // num_of_vrings
        for (i, (da, num, align)) in rings.into_iter().enumerate() {
            let r = v + 28 + 20 * i;
            t[r..r + 4].copy_from_slice(&da.to_le_bytes());
            t[r + 4..r + 8].copy_from_slice(&align.to_le_bytes());
            t[r + 8..r + 12].copy_from_slice(&num.to_le_bytes());
        }
        t
    }

    const WINDOW: LinearMap = LinearMap {
        base: DevAddr(0),
        offset: 0,
        len: 16 << 20,
    };

    /// TI's table (ANY, 256 entries, align 4096): the pool is the vring region, the
    /// buffers land at pool + 0x40000 (vring0.da + 0x40000, where TI's firmware puts
    /// them), the link is polled; without a pool the key to add is named.
    #[test]
    fn ti_table_places_buffers_where_ti_expects_and_names_the_pool_key() {
        let bytes = vendor_table([(FW_RSC_ADDR_ANY, 256, 4096); 2]);
        let t = ResourceTable::validate(&bytes).unwrap();
        let b = board("[vdev]\npool_base = 0x200000\npool_size = 0x100000\n");
        let p = b.plan_vdev(&t, &WINDOW, "transport.image").unwrap();
        assert_eq!(p.wake, Wake::PolledRings);
        assert_eq!(
            p.vring_region.map(|r| (r.base.0, r.len)),
            Some((0x200000, 0x100000))
        );
        assert_eq!(p.buffers, None, "the host bus places them from the pool");
        assert!(
            p.notes
                .iter()
                .any(|n| n.contains("vring 1") && n.contains("0x204000")),
            "{:?}",
            p.notes
        );
        assert!(
            p.notes
                .iter()
                .any(|n| n.contains("512 × 512 B") && n.contains("0x240000")),
            "{:?}",
            p.notes
        );
        let e = board("")
            .plan_vdev(&t, &WINDOW, "transport.image")
            .unwrap_err();
        assert!(e.to_string().starts_with("vdev.pool_base: missing"), "{e}");
        let e = board("[vdev]\npool_base = 0x200000\npool_size = 0x20000\n")
            .plan_vdev(&t, &WINDOW, "transport.image")
            .unwrap_err();
        assert!(
            e.to_string().starts_with("vdev.pool_base: the pool")
                && e.to_string().contains("too small"),
            "{e}"
        );
        let e = board("[vdev]\npool_base = 0x2000000\npool_size = 0x100000\n")
            .plan_vdev(&t, &WINDOW, "transport.image")
            .unwrap_err();
        assert!(
            e.to_string().contains("not inside the shared memory"),
            "{e}"
        );
    }

    /// RPMsg-Lite's table (vrings fixed, no carveout): buffers from `vdev.buffers_base`,
    /// no pool needed; without either, the pool key is named.
    #[test]
    fn fixed_rings_take_buffers_from_the_vdev0buffer_keys() {
        let bytes = vendor_table([(0x200000, 256, 4096), (0x208000, 256, 4096)]);
        let t = ResourceTable::validate(&bytes).unwrap();
        let b = board("[vdev]\nbuffers_base = 0x600000\nbuffers_size = 0x100000\n");
        let p = b.plan_vdev(&t, &WINDOW, "transport.image").unwrap();
        assert_eq!(p.vring_region, None);
        assert_eq!(
            p.buffers.map(|r| (r.base.0, r.offset, r.len)),
            Some((0x600000, 0x600000, 0x100000))
        );
        let e = board("")
            .plan_vdev(&t, &WINDOW, "transport.image")
            .unwrap_err();
        assert!(
            e.to_string().contains("vdev.pool_base") && e.to_string().contains("no vdev0buffer"),
            "{e}"
        );
    }
}
