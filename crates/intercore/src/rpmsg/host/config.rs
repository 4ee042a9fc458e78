//! The host's configuration and counters, and the placement of vrings the resource table
//! leaves to the host.

use crate::{DevAddr, Error, LinearMap, Result, SharedMemory, WaitMode};
use core::sync::atomic::Ordering::Relaxed;
use core::time::Duration;

/// How the host sets up and runs the link.
#[derive(Debug, Clone, Copy)]
pub struct HostConfig {
    /// Buffers per direction (Linux: 256; capped by the vring size).
    pub num_bufs: u16,
    /// Size of each buffer including the 16-byte header (Linux: 512).
    pub buf_size: usize,
    /// Timeout of the blocking calls that take none (`None`: wait forever). A peer that
    /// stops answering turns into `Error::Timeout` after this long.
    pub timeout: Option<Duration>,
    /// How blocking calls wait.
    pub wait: WaitMode,
    /// Where the buffers go when the resource table has no `vdev0buffer` carveout (stock TI
    /// MCU+ SDK, OpenAMP, NXP and Zephyr tables have none; Linux then uses the
    /// `vdev0buffer` reserved-memory region of the device tree or the device's DMA pool).
    /// A carveout in the table takes precedence.
    pub buffers: Option<LinearMap>,
    /// Where vrings the table leaves at `FW_RSC_ADDR_ANY` are allocated (Linux:
    /// `rproc_alloc_vring`, from the vdev's first memory region on TI K3). Each ring is
    /// page-aligned; its device address and notify id are written back into the table.
    pub vring_region: Option<LinearMap>,
    /// Most services the name-service table holds; announcements of new names past it are
    /// dropped and counted (`HostStats::ns_overflow`).
    pub max_services: usize,
    /// Most receive buffers one endpoint may hold (queued unread, or lent out as
    /// [`RxBuf`](super::RxBuf)); `None`: three quarters of the buffers. A message for an
    /// endpoint at its limit is dropped and counted (`HostStats::held_dropped`), so an
    /// application that stops reading one endpoint cannot starve the others or the name
    /// service.
    pub max_held_per_endpoint: Option<u16>,
    /// Accept in-order rings when the firmware offers them in its intercore vendor entry
    /// (`INTERCORE_F_IN_ORDER`, docs/ARCHITECTURE.md "Interoperability decisions"); a table
    /// without the entry gets the standard split ring whatever this says. Default on;
    /// off measures or debugs the standard path against an intercore remote.
    pub in_order: bool,
}

impl Default for HostConfig {
    fn default() -> Self {
        Self {
            num_bufs: intercore_wire::rpmsg::RPMSG_DEFAULT_NUM_BUFS as u16,
            buf_size: intercore_wire::rpmsg::RPMSG_DEFAULT_BUF_SIZE,
            timeout: Some(Duration::from_secs(1)),
            wait: WaitMode::default(),
            buffers: None,
            vring_region: None,
            max_services: 64,
            max_held_per_endpoint: None,
            in_order: true,
        }
    }
}

/// Places the vrings the table left at `FW_RSC_ADDR_ANY` in `region`, one page-aligned
/// block each after the other, and writes every ring's device address and notify id back
/// into the table. Notify ids are assigned like Linux's `rproc_alloc_vring` (`idr_alloc`
/// from 0: vring 0 gets 0, vring 1 gets 1), which also overwrites the table's values.
pub(super) fn place_rings<M: SharedMemory + ?Sized>(
    mem: &M,
    t: &mut crate::rpmsg::TableInfo,
    region: Option<LinearMap>,
) -> Result<()> {
    const PAGE: usize = 4096;
    let mut next = 0usize;
    for (i, ring) in t.rings.iter_mut().enumerate() {
        if ring.da.is_none() {
            let r = region.ok_or(Error::Config(
                "vring at FW_RSC_ADDR_ANY and no vring region configured (HostConfig::vring_region)",
            ))?;
            let align = (ring.layout.align() as usize).max(PAGE);
            // Align the device address (what the remote sees), not only the offset.
            let skew = (r.base.0 % align as u64) as usize;
            let start = (next + skew).div_ceil(align) * align - skew;
            let size = ring.layout.size().div_ceil(PAGE) * PAGE;
            let end = start
                .checked_add(size)
                .filter(|&e| e <= r.len)
                .ok_or(Error::Config(
                    "the vring region is too small for the vrings at FW_RSC_ADDR_ANY",
                ))?;
            let da = r.base.0 + start as u64;
            if da + size as u64 > u64::from(u32::MAX) + 1 {
                return Err(Error::Config(
                    "vring region above 4 GiB: resource tables hold 32-bit device addresses",
                ));
            }
            if r.offset.checked_add(end).is_none_or(|e| e > mem.len()) {
                return Err(Error::Config("vring region outside the shared region"));
            }
            ring.da = Some(DevAddr(da));
            next = end;
        }
        ring.notify_id = i as u32;
        let da = ring.da.map_or(0, |d| d.0 as u32);
        // Relaxed: published to the remote by the Release store of DRIVER_OK.
        mem.store_u32(ring.entry_off, da, Relaxed);
        mem.store_u32(ring.entry_off + 12, ring.notify_id, Relaxed);
    }
    Ok(())
}

/// Counters of what the host bus did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HostStats {
    /// Messages sent.
    pub sent: u64,
    /// Messages received for an endpoint.
    pub received: u64,
    /// Doorbells rung.
    pub kicks: u64,
    /// Sleeps on the doorbell.
    pub sleeps: u64,
    /// Messages for an address with no endpoint (dropped, as Linux does).
    pub no_endpoint: u64,
    /// Messages or name-service announcements that failed validation (dropped).
    pub malformed: u64,
    /// Name-service announcements for address 53 (the name service itself) or
    /// 0xFFFFFFFF (`RPMSG_ADDR_ANY`), refused.
    pub ns_refused: u64,
    /// Announcements of new services while the table was full (dropped).
    pub ns_overflow: u64,
    /// Messages dropped because their endpoint held its limit of receive buffers.
    pub held_dropped: u64,
}
