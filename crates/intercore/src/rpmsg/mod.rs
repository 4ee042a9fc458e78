//! The rpmsg bus over a virtio device with two split rings, in both roles.
//!
//! The wire protocol is Linux's `virtio_rpmsg_bus` (also spoken by OpenAMP and
//! RPMsg-Lite): vring 0 carries remote → host messages (the host's receive ring), vring 1
//! host → remote; the host (virtio driver) owns every buffer, each one descriptor of
//! `buf_size` bytes beginning with a 16-byte header; services are announced to the
//! name-service endpoint at address 53 with a 40-byte message.
//!
//! Both roles find the virtio device (id 7) and its two vrings in the remoteproc resource
//! table, read from shared memory into a private copy and checked before use. Buffers come
//! from a carveout named `vdev0buffer` when the table has one, else from a region the caller
//! configures, else from the vdev's DMA pool (Linux likewise looks `vdev%dbuffer` up among
//! all carveouts, usually one from the device tree, and otherwise uses the parent device's
//! DMA memory). Vrings the table leaves at `FW_RSC_ADDR_ANY` are placed by the host where
//! Linux's coherent allocator would put them (`CoherentPool`), which writes `da` and
//! `notifyid` back into the table before `DRIVER_OK`, as `rproc_alloc_vring` and
//! `rp_find_vq` do.

mod endpoints;
#[cfg(feature = "alloc")]
mod host;
pub mod layout;
mod remote;
pub mod rsc_table;
mod transport;

pub use endpoints::EndpointAddr;
#[cfg(feature = "alloc")]
pub use host::{
    CoherentPool, HostBus, HostConfig, HostStats, LINUX_PAGE, RxBuf, SHARED_TX_CREDIT, TxBuf,
    VdevPlacement,
};
pub use remote::{Msg, NotifyPolicy, RemoteBus, RemoteConfig, RemoteSetup, RemoteStats, ReplyBuf};
pub use transport::{Channel, MessageIo, Transport};

use crate::LinearMap;

use crate::virtq::VringLayout;
use crate::{DevAddr, DeviceAddressMap, Error, Result, SharedMemory};
use intercore_wire::rpmsg::VIRTIO_ID_RPMSG;
pub use intercore_wire::rpmsg::{
    Name, RPMSG_ADDR_ANY, RPMSG_HDR_SIZE, RPMSG_NS_ADDR, RPMSG_RESERVED_ADDRESSES,
};
use intercore_wire::rsc::{FW_RSC_ADDR_ANY, Resource, ResourceTable};

/// Name of the carveout that holds the rpmsg buffers (the name TI's and AMD's device trees
/// give the reserved-memory region, `vdev0buffer`).
pub const BUFFER_CARVEOUT: &[u8] = b"vdev0buffer";
/// Largest resource table the buses copy and parse.
pub const RSC_MAX_LEN: usize = 2048;

/// virtio status bits written by the host (`VIRTIO_CONFIG_S_*`).
pub mod status {
    /// The guest noticed the device.
    pub const ACKNOWLEDGE: u8 = 1;
    /// The guest has a driver for it.
    pub const DRIVER: u8 = 2;
    /// The driver is ready: rings are set up, receive buffers posted.
    pub const DRIVER_OK: u8 = 4;
    /// Feature negotiation is complete.
    pub const FEATURES_OK: u8 = 8;
    /// The driver gave up on the device.
    pub const FAILED: u8 = 0x80;
}

/// Feature bits the buses implement: the name service and `EVENT_IDX`.
pub const SUPPORTED_FEATURES: u32 = (1 << intercore_wire::rpmsg::VIRTIO_RPMSG_F_NS)
    | (1 << intercore_wire::vring::VIRTIO_RING_F_EVENT_IDX);

/// Where the resource table sits in the shared region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RscLocation {
    /// Region offset of the table.
    pub offset: usize,
    /// Its length in bytes.
    pub len: usize,
}

/// One vring as the resource table places it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RingPlace {
    pub base: usize,
    pub layout: VringLayout,
}

/// What both roles learn from the resource table (or a placement), with every vring placed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct VdevInfo {
    /// Region offset of the 4-byte word `status, num_of_vrings, reserved[2]` (`None`: no
    /// status word — an RPMsg-Lite master, which has no resource table).
    pub status_off: Option<usize>,
    /// That word with status 0 (to rewrite the other bytes unchanged).
    #[cfg_attr(not(feature = "alloc"), allow(dead_code))]
    pub status_rest: u32,
    /// Region offset of `gfeatures` (`None` with no status word: `dfeatures` are in force).
    pub gfeatures_off: Option<usize>,
    /// Features the firmware offers.
    pub dfeatures: u32,
    /// vring 0 (remote → host) and vring 1 (host → remote).
    pub rings: [RingPlace; 2],
    /// The notify id of each vring, passed to [`crate::Doorbell::ring`].
    pub notify_ids: [u32; 2],
    /// Where buffers may lie: device address and region offset of the window, and its length.
    pub buf_da: DevAddr,
    pub buf_off: usize,
    pub buf_len: usize,
    /// The resource table's own bytes (region offset, length); `(0, 0)` without a table.
    pub table: (usize, usize),
    /// The intercore vendor entry, if the table has one.
    pub intercore: Option<EntryFeatures>,
}

/// The feature words of the table's intercore vendor entry, as copied and checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EntryFeatures {
    /// Region offset of the `accepted` word (the host writes it; the remote consumes it).
    pub accepted_off: usize,
    /// What the firmware offered.
    pub offered: u32,
    /// What the host accepted (a subset of `offered`, checked by the parser).
    pub accepted: u32,
    /// The payload bytes an inline slot carries (`inline_max`; 0: no inline rings).
    pub inline_max: u32,
}

/// A vring as a resource table declares it, before the host has placed it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RingSpec {
    pub layout: VringLayout,
    /// `None`: `FW_RSC_ADDR_ANY`, the host allocates it.
    pub da: Option<DevAddr>,
    pub notify_id: u32,
    /// Region offset of the `fw_rsc_vdev_vring` entry (for the host's write-back).
    #[cfg_attr(not(feature = "alloc"), allow(dead_code))]
    pub entry_off: usize,
}

/// What a resource table says about the rpmsg vdev, read from a private, validated copy.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TableInfo {
    pub status_off: usize,
    pub status_rest: u32,
    pub gfeatures_off: usize,
    pub dfeatures: u32,
    pub rings: [RingSpec; 2],
    /// The `vdev0buffer` carveout, if the table has one: device address and length.
    pub buffers: Option<(DevAddr, usize)>,
    pub table: (usize, usize),
    pub intercore: Option<EntryFeatures>,
}

/// Where a remote finds its device when no resource table describes it. A vhost-user
/// front end tells the device its ring addresses in messages and keeps the virtio status to
/// itself, so the back end places the status words in memory of its own
/// (`intercore-vhost`); an RPMsg-Lite master (`rpmsg_lite_master_init`) lays vrings and
/// buffers out from one shared-memory base and has no status word at all. Checked by
/// [`RemoteBus::new`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DevicePlacement {
    /// How the link is started and its features agreed.
    pub control: DeviceControl,
    /// Region offsets and geometry of vring 0 (remote → host) and vring 1 (host → remote),
    /// each in the contiguous layout of [`VringLayout`].
    pub rings: [(usize, VringLayout); 2],
    /// The notify id of vring 0 and vring 1, passed to [`crate::Doorbell::ring`].
    pub notify_ids: [u32; 2],
    /// The device addresses buffers may have, and where they are in the region. It may
    /// contain the rings (a guest's RAM holds both); a buffer overlapping a ring is refused.
    pub buffers: LinearMap,
}

/// How a table-less link starts and agrees on features.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceControl {
    /// Status and features words in shared memory, as in a resource table's vdev entry.
    StatusWords {
        /// Region offset of a 4-byte word whose low byte is the virtio status (`DRIVER_OK`
        /// starts the link; clearing it is the host going away).
        status_off: usize,
        /// Region offset of the 4-byte word of features the host accepted.
        gfeatures_off: usize,
        /// Features offered; the host may accept only these.
        dfeatures: u32,
    },
    /// No status word (RPMsg-Lite): the link is up at the master's notification once the
    /// rings are as `rpmsg_lite_master_init` leaves them (vring 0's used index 0, vring 1's
    /// used index equal to vring 0's available index), with these features in force. The
    /// host's going away is seen from the doorbell (`PeerGone`) or from a used index the
    /// remote did not write (a master that rebuilt the rings); `wait_ready` then waits for
    /// the next master's initialisation.
    FirstNotification {
        /// The features both sides were built with (RPMsg-Lite negotiates none).
        features: u32,
    },
}

pub(crate) fn overlaps(a: (usize, usize), b: (usize, usize)) -> bool {
    a.0 < b.0 + b.1 && b.0 < a.0 + a.1
}

/// Reads the resource table out of shared memory and finds the rpmsg vdev, its rings and
/// the buffer carveout (if any). Rings at `FW_RSC_ADDR_ANY` are left for the host to place;
/// fixed ones must be inside the region.
pub(crate) fn read_table<M: SharedMemory + ?Sized, A: DeviceAddressMap>(
    mem: &M,
    map: &A,
    loc: RscLocation,
) -> Result<TableInfo> {
    if loc.len > RSC_MAX_LEN {
        return Err(Error::Config("resource table larger than RSC_MAX_LEN"));
    }
    if loc.offset % 4 != 0
        || loc
            .offset
            .checked_add(loc.len)
            .is_none_or(|e| e > mem.len())
    {
        return Err(Error::Config(
            "resource table outside the shared region or misaligned",
        ));
    }
    let mut copy = [0u8; RSC_MAX_LEN];
    let bytes = &mut copy[..loc.len];
    mem.read(loc.offset, bytes);
    let table = ResourceTable::validate(bytes)?;
    let vdev = table.find_vdev(VIRTIO_ID_RPMSG)?.ok_or(Error::Config(
        "no rpmsg vdev (virtio id 7) in the resource table",
    ))?;
    if vdev.num_vrings() < 2 {
        return Err(Error::Config("rpmsg vdev has fewer than two vrings"));
    }
    let mut rings = [RingSpec {
        layout: VringLayout::new(1, 16)?,
        da: None,
        notify_id: 0,
        entry_off: 0,
    }; 2];
    for (i, ring) in rings.iter_mut().enumerate() {
        let v = vdev.vring(i).ok_or(Error::Config("vring entry missing"))?;
        let layout = VringLayout::new(v.num.get(), v.align.get())?;
        let da = (v.da.get() != FW_RSC_ADDR_ANY).then(|| DevAddr(v.da.get() as u64));
        if let Some(da) = da {
            map.to_offset(da, layout.size()).ok_or(Error::Config(
                "vring device address outside the shared region",
            ))?;
        }
        *ring = RingSpec {
            layout,
            da,
            notify_id: v.notifyid.get(),
            entry_off: loc.offset + vdev.vring_offset(i),
        };
    }
    let mut buffers = None;
    for e in table.iter() {
        if let Resource::Carveout(c) = e? {
            if Name::from_field(&c.name).as_bytes() == BUFFER_CARVEOUT {
                buffers = Some((DevAddr(c.da.get() as u64), c.len.get() as usize));
                break;
            }
        }
    }
    // The intercore vendor entry (Linux, OpenAMP and RPMsg-Lite skip vendor entries): a
    // malformed one, or one whose `accepted` word names features not offered, is refused.
    let intercore = table.find_intercore()?.map(|(off, e)| EntryFeatures {
        accepted_off: loc.offset + off + intercore_wire::rsc::INTERCORE_ACCEPTED_OFFSET,
        offered: e.features.get(),
        accepted: e.accepted.get(),
        inline_max: e.inline_max.get(),
    });
    let status_off = loc.offset + vdev.offset + intercore_wire::rsc::VDEV_STATUS_OFFSET;
    let status_rest = u32::from(vdev.vdev.num_of_vrings) << 8
        | u32::from(vdev.vdev.reserved[0]) << 16
        | u32::from(vdev.vdev.reserved[1]) << 24;
    Ok(TableInfo {
        status_off,
        status_rest,
        gfeatures_off: loc.offset + vdev.offset + intercore_wire::rsc::VDEV_GFEATURES_OFFSET,
        dfeatures: vdev.vdev.dfeatures.get(),
        rings,
        buffers,
        table: (loc.offset, loc.len),
        intercore,
    })
}

impl TableInfo {
    /// Places every ring (all must have a device address by now) and the buffer window
    /// (`fallback` when the table has no `vdev0buffer` carveout), checking that the table,
    /// the rings and the buffer window lie in the region and do not overlap. A remote's
    /// fallback window is a permission window that may hold the rings and the table
    /// (`window_may_hold_rings`): each descriptor is then checked against them.
    pub(crate) fn resolve<A: DeviceAddressMap>(
        &self,
        map: &A,
        fallback: Option<LinearMap>,
        window_may_hold_rings: bool,
    ) -> Result<VdevInfo> {
        let mut rings = [RingPlace {
            base: 0,
            layout: VringLayout::new(1, 16)?,
        }; 2];
        for (place, spec) in rings.iter_mut().zip(self.rings.iter()) {
            let da = spec.da.ok_or(Error::Config(
                "vring still at FW_RSC_ADDR_ANY: the host must place it first",
            ))?;
            let base = map.to_offset(da, spec.layout.size()).ok_or(Error::Config(
                "vring device address outside the shared region",
            ))?;
            *place = RingPlace {
                base,
                layout: spec.layout,
            };
        }
        let (buf_da, buf_off, buf_len) = match (self.buffers, fallback) {
            (Some((da, len)), _) => {
                let off = map.to_offset(da, len).ok_or(Error::Config(
                    "vdev0buffer carveout outside the shared region",
                ))?;
                (da, off, len)
            }
            (None, Some(w)) => (w.base, w.offset, w.len),
            (None, None) => {
                return Err(Error::Config(
                    "the resource table has no vdev0buffer carveout and no buffer region was configured",
                ));
            }
        };
        let loose = window_may_hold_rings && self.buffers.is_none();
        let areas = [
            self.table,
            (rings[0].base, rings[0].layout.size()),
            (rings[1].base, rings[1].layout.size()),
            (buf_off, buf_len),
        ];
        for i in 0..areas.len() {
            for j in i + 1..areas.len() {
                if overlaps(areas[i], areas[j]) && !(loose && j == 3) {
                    return Err(Error::Config(
                        "resource table, vrings and buffer area overlap",
                    ));
                }
            }
        }
        Ok(VdevInfo {
            status_off: Some(self.status_off),
            status_rest: self.status_rest,
            gfeatures_off: Some(self.gfeatures_off),
            dfeatures: self.dfeatures,
            rings,
            notify_ids: [self.rings[0].notify_id, self.rings[1].notify_id],
            buf_da,
            buf_off,
            buf_len,
            table: self.table,
            intercore: self.intercore,
        })
    }
}

/// Checks a [`DevicePlacement`] against the region and turns it into what the remote keeps.
pub(crate) fn place<M: SharedMemory + ?Sized>(mem: &M, p: &DevicePlacement) -> Result<VdevInfo> {
    let word = |off: usize| off % 4 == 0 && off.checked_add(4).is_some_and(|e| e <= mem.len());
    let (status_off, gfeatures_off, dfeatures) = match p.control {
        DeviceControl::StatusWords {
            status_off,
            gfeatures_off,
            dfeatures,
        } => {
            if !word(status_off) || !word(gfeatures_off) || status_off == gfeatures_off {
                return Err(Error::Config(
                    "status and features words must be distinct, 4-aligned and inside the region",
                ));
            }
            (Some(status_off), Some(gfeatures_off), dfeatures)
        }
        DeviceControl::FirstNotification { features } => (None, None, features),
    };
    let b = p.buffers;
    if b.len == 0 || b.offset.checked_add(b.len).is_none_or(|e| e > mem.len()) {
        return Err(Error::Config("buffer window outside the shared region"));
    }
    if b.base.0.checked_add(b.len as u64).is_none() {
        return Err(Error::Config(
            "buffer window wraps the device address space",
        ));
    }
    let mut rings = [RingPlace {
        base: 0,
        layout: VringLayout::new(1, 16)?,
    }; 2];
    for (ring, &(base, layout)) in rings.iter_mut().zip(p.rings.iter()) {
        crate::virtq::check_placement(mem, base, &layout)?;
        *ring = RingPlace { base, layout };
    }
    let rs = [
        (rings[0].base, rings[0].layout.size()),
        (rings[1].base, rings[1].layout.size()),
    ];
    let words = [status_off, gfeatures_off];
    if overlaps(rs[0], rs[1])
        || words.iter().flatten().any(|&w| {
            overlaps((w, 4), (b.offset, b.len)) || rs.iter().any(|&r| overlaps((w, 4), r))
        })
    {
        return Err(Error::Config(
            "vrings overlap each other, or the status/features words overlap rings or buffers",
        ));
    }
    Ok(VdevInfo {
        status_off,
        status_rest: 0,
        gfeatures_off,
        dfeatures,
        rings,
        notify_ids: p.notify_ids,
        buf_da: b.base,
        buf_off: b.offset,
        buf_len: b.len,
        table: (0, 0),
        intercore: None,
    })
}

/// Writes a message (header and payload) into a buffer at region offset `off`.
#[cfg(feature = "alloc")]
pub(crate) fn write_message<M: SharedMemory + ?Sized>(
    mem: &M,
    off: usize,
    src: u32,
    dst: u32,
    payload: &[u8],
) {
    let hdr = intercore_wire::rpmsg::RpmsgHdr::new(src, dst, payload.len() as u16);
    mem.write(off, zerocopy::IntoBytes::as_bytes(&hdr));
    mem.write(off + RPMSG_HDR_SIZE, payload);
}

/// Reads and checks the header of a received buffer of `len` valid bytes at `off`:
/// `(src, dst, payload length)`.
pub(crate) fn read_header<M: SharedMemory + ?Sized>(
    mem: &M,
    off: usize,
    len: usize,
) -> Result<(u32, u32, usize)> {
    if len < RPMSG_HDR_SIZE {
        return Err(crate::error::protocol(
            "message shorter than the rpmsg header",
            len as u64,
        ));
    }
    // Only what is used: `src` and `dst` (bytes 0..8) and the word holding `len` (12..16);
    // `reserved` (8..12) is not read — one access fewer on a 32-bit core, where every
    // shared-memory load may be a DRAM round trip. Offsets from `struct rpmsg_hdr`
    // (drivers/rpmsg/virtio_rpmsg_bus.c: src, dst, reserved, len, flags).
    let mut addrs = [0u8; 8];
    mem.read(off, &mut addrs);
    let mut tail = [0u8; 4];
    mem.read(off + 12, &mut tail);
    let plen = u16::from_le_bytes([tail[0], tail[1]]) as usize;
    if plen > len - RPMSG_HDR_SIZE {
        return Err(crate::error::protocol(
            "rpmsg payload length exceeds the buffer",
            plen as u64,
        ));
    }
    let src = u32::from_le_bytes([addrs[0], addrs[1], addrs[2], addrs[3]]);
    let dst = u32::from_le_bytes([addrs[4], addrs[5], addrs[6], addrs[7]]);
    Ok((src, dst, plen))
}
