//! A standard carveout layout: the resource table, two vrings and the `vdev0buffer`
//! carveout, page-aligned one after another — what the simulated SoC uses and what a
//! firmware author can start from. The table that describes it is built by
//! [`RpmsgTable::standard`](super::rsc_table::RpmsgTable::standard).

use super::RscLocation;
use intercore_wire::WireError;
use intercore_wire::vring::VringLayout;

/// What the layout is computed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CarveoutSpec {
    /// Entries per vring (and rpmsg buffers per direction).
    pub vring_num: u16,
    /// rpmsg buffer size.
    pub buf_size: usize,
    /// Whether the firmware offers `VIRTIO_RING_F_EVENT_IDX`.
    pub event_idx: bool,
    /// Device address at which the remote sees the carveout's first byte.
    pub da_base: u64,
}

const PAGE: usize = 4096;
/// The vrings' used-ring alignment, as TI and AMD firmware use.
pub const VRING_ALIGN: u32 = 4096;
/// Room reserved for the resource table.
pub const RSC_ROOM: usize = 1024;

fn page_up(n: usize) -> usize {
    n.div_ceil(PAGE) * PAGE
}

/// Offsets (in the carveout) of everything placed there.
#[derive(Debug, Clone, Copy)]
pub struct CarveoutLayout {
    /// The resource table.
    pub rsc: RscLocation,
    /// vring 0 (remote → host).
    pub vring0: usize,
    /// vring 1 (host → remote).
    pub vring1: usize,
    /// The `vdev0buffer` carveout.
    pub buffers: usize,
    /// Its length.
    pub buffers_len: usize,
    /// The whole carveout.
    pub total: usize,
}

impl CarveoutLayout {
    /// Computes the layout for `cfg`, each area page-aligned.
    pub fn new(cfg: &CarveoutSpec) -> Result<Self, WireError> {
        let ring = VringLayout::new(cfg.vring_num as u32, VRING_ALIGN)?;
        let ring_size = page_up(ring.size());
        let vring0 = PAGE;
        let vring1 = vring0 + ring_size;
        let buffers = vring1 + ring_size;
        let buffers_len = page_up(2 * cfg.vring_num as usize * cfg.buf_size);
        let total = buffers + buffers_len;
        let end = cfg.da_base.checked_add(total as u64);
        if end.is_none_or(|end| end > u32::MAX as u64 + 1) {
            return Err(WireError::LengthOverflow {
                what: "carveout end address (resource tables hold 32-bit device addresses)",
                len: end.unwrap_or(u64::MAX),
                max: u32::MAX as u64 + 1,
            });
        }
        Ok(Self {
            rsc: RscLocation {
                offset: 0,
                len: RSC_ROOM,
            },
            vring0,
            vring1,
            buffers,
            buffers_len,
            total,
        })
    }
}
