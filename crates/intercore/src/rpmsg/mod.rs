//! The rpmsg bus over a virtio device with two split rings, in both roles.
//!
//! The wire protocol is Linux's `virtio_rpmsg_bus` (also spoken by OpenAMP and
//! RPMsg-Lite): vring 0 carries remote → host messages (the host's receive ring), vring 1
//! host → remote; the host (virtio driver) owns every buffer, each one descriptor of
//! `buf_size` bytes beginning with a 16-byte header; services are announced to the
//! name-service endpoint at address 53 with a 40-byte message.
//!
//! Both roles find the virtio device (id 7), its two vrings and the buffer carveout
//! (`vdev0buffer`) in the remoteproc resource table, read from shared memory into a
//! private copy and checked before use.

#[cfg(feature = "alloc")]
mod host;
pub mod layout;
mod remote;
pub mod rsc_table;
mod transport;

#[cfg(feature = "alloc")]
pub use host::{HostBus, HostConfig, HostStats, RxBuf, TxBuf};
pub use remote::{Msg, RemoteBus, RemoteStats};
pub use transport::{Channel, Transport};

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

/// What both roles learn from the resource table.
#[derive(Debug, Clone, Copy)]
pub(crate) struct VdevInfo {
    /// Region offset of the 4-byte word `status, num_of_vrings, reserved[2]`.
    pub status_off: usize,
    /// That word with status 0 (to rewrite the other bytes unchanged).
    #[cfg_attr(not(feature = "alloc"), allow(dead_code))]
    pub status_rest: u32,
    /// Region offset of `gfeatures`.
    pub gfeatures_off: usize,
    /// Features the firmware offers.
    pub dfeatures: u32,
    /// vring 0 (remote → host) and vring 1 (host → remote).
    pub rings: [RingPlace; 2],
    /// The notify id of each vring, passed to [`crate::Doorbell::ring`].
    pub notify_ids: [u32; 2],
    /// Device address and region offset of the buffer carveout, and its length.
    pub buf_da: DevAddr,
    pub buf_off: usize,
    pub buf_len: usize,
}

/// Where a remote finds its device when no resource table describes it: a vhost-user
/// front end, for one, tells the device its ring addresses in messages and keeps the virtio
/// status to itself, so the back end places these words in memory of its own
/// (`intercore-vhost`). Checked by [`RemoteBus::with_placement`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DevicePlacement {
    /// Region offset of a 4-byte word whose low byte is the virtio status (`DRIVER_OK`
    /// starts the link; clearing it is the host going away).
    pub status_off: usize,
    /// Region offset of the 4-byte word of features the host accepted.
    pub gfeatures_off: usize,
    /// Features offered; the host may accept only these.
    pub dfeatures: u32,
    /// Region offsets and geometry of vring 0 (remote → host) and vring 1 (host → remote),
    /// each in the contiguous layout of [`VringLayout`].
    pub rings: [(usize, VringLayout); 2],
    /// The notify id of vring 0 and vring 1, passed to [`crate::Doorbell::ring`].
    pub notify_ids: [u32; 2],
    /// The device addresses buffers may have, and where they are in the region. It may
    /// contain the rings (a guest's RAM holds both); a buffer overlapping a ring is refused.
    pub buffers: LinearMap,
}

fn overlaps(a: (usize, usize), b: (usize, usize)) -> bool {
    a.0 < b.0 + b.1 && b.0 < a.0 + a.1
}

/// Reads the resource table out of shared memory and finds the rpmsg vdev, its rings and
/// the buffer carveout, checking that they are inside the region and do not overlap.
pub(crate) fn discover<M: SharedMemory + ?Sized, A: DeviceAddressMap>(
    mem: &M,
    map: &A,
    loc: RscLocation,
) -> Result<VdevInfo> {
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
    let mut rings = [RingPlace {
        base: 0,
        layout: VringLayout::new(1, 16)?,
    }; 2];
    let mut notify_ids = [0u32; 2];
    for (i, ring) in rings.iter_mut().enumerate() {
        let v = vdev.vring(i).ok_or(Error::Config("vring entry missing"))?;
        notify_ids[i] = v.notifyid.get();
        let layout = VringLayout::new(v.num.get(), v.align.get())?;
        if v.da.get() == FW_RSC_ADDR_ANY {
            return Err(Error::Config(
                "vring with FW_RSC_ADDR_ANY: host-allocated vrings are not supported; give the ring a fixed da",
            ));
        }
        let base = map
            .to_offset(DevAddr(v.da.get() as u64), layout.size())
            .ok_or(Error::Config(
                "vring device address outside the shared region",
            ))?;
        *ring = RingPlace { base, layout };
    }
    let mut buf = None;
    for e in table.iter() {
        if let Resource::Carveout(c) = e? {
            if Name::from_field(&c.name).as_bytes() == BUFFER_CARVEOUT {
                buf = Some(c);
                break;
            }
        }
    }
    let c = buf.ok_or(Error::Config(
        "no carveout named vdev0buffer for the rpmsg buffers",
    ))?;
    let buf_da = DevAddr(c.da.get() as u64);
    let buf_len = c.len.get() as usize;
    let buf_off = map.to_offset(buf_da, buf_len).ok_or(Error::Config(
        "vdev0buffer carveout outside the shared region",
    ))?;
    let areas = [
        (loc.offset, loc.len),
        (rings[0].base, rings[0].layout.size()),
        (rings[1].base, rings[1].layout.size()),
        (buf_off, buf_len),
    ];
    for i in 0..areas.len() {
        for j in i + 1..areas.len() {
            if overlaps(areas[i], areas[j]) {
                return Err(Error::Config(
                    "resource table, vrings and buffer carveout overlap",
                ));
            }
        }
    }
    let status_off = loc.offset + vdev.offset + intercore_wire::rsc::VDEV_STATUS_OFFSET;
    let status_rest = u32::from(vdev.vdev.num_of_vrings) << 8
        | u32::from(vdev.vdev.reserved[0]) << 16
        | u32::from(vdev.vdev.reserved[1]) << 24;
    Ok(VdevInfo {
        status_off,
        status_rest,
        gfeatures_off: loc.offset + vdev.offset + intercore_wire::rsc::VDEV_GFEATURES_OFFSET,
        dfeatures: vdev.vdev.dfeatures.get(),
        rings,
        notify_ids,
        buf_da,
        buf_off,
        buf_len,
    })
}

/// Checks a [`DevicePlacement`] against the region and turns it into what the remote keeps.
pub(crate) fn place<M: SharedMemory + ?Sized>(mem: &M, p: &DevicePlacement) -> Result<VdevInfo> {
    let word = |off: usize| off % 4 == 0 && off.checked_add(4).is_some_and(|e| e <= mem.len());
    if !word(p.status_off) || !word(p.gfeatures_off) || p.status_off == p.gfeatures_off {
        return Err(Error::Config(
            "status and features words must be distinct, 4-aligned and inside the region",
        ));
    }
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
    let words = [(p.status_off, 4), (p.gfeatures_off, 4)];
    let rs = [
        (rings[0].base, rings[0].layout.size()),
        (rings[1].base, rings[1].layout.size()),
    ];
    if overlaps(rs[0], rs[1])
        || words
            .iter()
            .any(|&w| overlaps(w, (b.offset, b.len)) || rs.iter().any(|&r| overlaps(w, r)))
    {
        return Err(Error::Config(
            "vrings overlap each other, or the status/features words overlap rings or buffers",
        ));
    }
    Ok(VdevInfo {
        status_off: p.status_off,
        status_rest: 0,
        gfeatures_off: p.gfeatures_off,
        dfeatures: p.dfeatures,
        rings,
        notify_ids: p.notify_ids,
        buf_da: b.base,
        buf_off: b.offset,
        buf_len: b.len,
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
    let mut raw = [0u8; RPMSG_HDR_SIZE];
    mem.read(off, &mut raw);
    let (hdr, _) = <intercore_wire::rpmsg::RpmsgHdr as zerocopy::FromBytes>::read_from_prefix(&raw)
        .map_err(|_| crate::error::protocol("rpmsg header", 0))?;
    let plen = hdr.len.get() as usize;
    if plen > len - RPMSG_HDR_SIZE {
        return Err(crate::error::protocol(
            "rpmsg payload length exceeds the buffer",
            plen as u64,
        ));
    }
    Ok((hdr.src.get(), hdr.dst.get(), plen))
}
