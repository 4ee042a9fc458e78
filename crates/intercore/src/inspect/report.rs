//! The report's types: what `inspect` decoded, as serde `Serialize` data.

use super::{Finding, Flavor};
use serde::Serialize;

/// Everything decoded, and the diagnosis.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Device address of region offset 0.
    pub base: u64,
    /// Region length.
    pub len: u64,
    /// The layout's flavor.
    pub flavor: Flavor,
    /// The resource table, if one was given and could be read.
    pub resource_table: Option<RscReport>,
    /// The rings (0: remote → host, 1: host → remote).
    pub vrings: Vec<VringReport>,
    /// Name-service announcements still visible in the rings, oldest first.
    pub announcements: Vec<Announcement>,
    /// What is wrong, most serious first (empty: nothing found).
    pub diagnosis: Vec<Finding>,
}

/// A feature or status word with its bits named.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Bits {
    /// The raw value.
    pub value: u32,
    /// The names of the bits set (unknown ones as `bit N`).
    pub names: Vec<String>,
}

/// The resource table.
#[derive(Debug, Clone, Serialize)]
pub struct RscReport {
    /// Region offset.
    pub offset: u64,
    /// Its entries in order.
    pub entries: Vec<RscEntry>,
    /// The rpmsg vdev (id 7), if there is one.
    pub vdev: Option<VdevReport>,
}

/// One resource-table entry.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum RscEntry {
    /// `RSC_CARVEOUT` or `RSC_DEVMEM`.
    Carveout {
        /// Devmem rather than carveout.
        devmem: bool,
        /// Device address.
        da: u32,
        /// Physical address.
        pa: u32,
        /// Length.
        len: u32,
        /// Name.
        name: String,
    },
    /// `RSC_TRACE`.
    Trace {
        /// Device address.
        da: u32,
        /// Length.
        len: u32,
        /// Name.
        name: String,
    },
    /// `RSC_VDEV`.
    Vdev {
        /// virtio device id.
        id: u32,
    },
    /// A vendor entry (intercore's own is named).
    Vendor {
        /// Type word.
        ty: u32,
        /// Whether it is intercore's (`RSC_INTERCORE`).
        intercore: bool,
    },
}

/// The rpmsg vdev entry.
#[derive(Debug, Clone, Serialize)]
pub struct VdevReport {
    /// Notify id.
    pub notifyid: u32,
    /// Features the firmware offers.
    pub dfeatures: Bits,
    /// Features the host accepted.
    pub gfeatures: Bits,
    /// Status byte, bits named.
    pub status: Bits,
    /// The vrings as the table gives them.
    pub vrings: Vec<RscVring>,
}

/// A vring as the table gives it.
#[derive(Debug, Clone, Serialize)]
pub struct RscVring {
    /// Device address (`0xffffffff`: not allocated by the host yet).
    pub da: u32,
    /// Alignment.
    pub align: u32,
    /// Entries.
    pub num: u32,
    /// Notify id.
    pub notifyid: u32,
}

/// One vring.
#[derive(Debug, Clone, Serialize)]
pub struct VringReport {
    /// 0 or 1.
    pub index: usize,
    /// Which way its messages go.
    pub direction: &'static str,
    /// Device address and region offset.
    pub da: u64,
    /// Region offset.
    pub offset: u64,
    /// Entries.
    pub num: u16,
    /// Alignment.
    pub align: u32,
    /// Available ring flags (written by the host, the driver).
    pub avail_flags: Bits,
    /// Available index.
    pub avail_idx: u16,
    /// Used ring flags (written by the remote, the device).
    pub used_flags: Bits,
    /// Used index.
    pub used_idx: u16,
    /// `used_event` (host-written, meaningful with EVENT_IDX).
    pub used_event: u16,
    /// `avail_event` (remote-written, meaningful with EVENT_IDX).
    pub avail_event: u16,
    /// Buffers offered to the remote and not returned (in use by the remote).
    pub held_by_remote: u16,
    /// Buffers on the host's side (free, or being read by the host).
    pub held_by_host: u16,
    /// The descriptors the remote holds (at most 64 listed).
    pub remote_holds: Vec<DescReport>,
    /// The last messages on this ring, newest first.
    pub last_messages: Vec<MsgReport>,
}

/// A descriptor.
#[derive(Debug, Clone, Serialize)]
pub struct DescReport {
    /// Its index in the table.
    pub id: u16,
    /// Buffer device address.
    pub addr: u64,
    /// Buffer length.
    pub len: u32,
    /// Flags, named.
    pub flags: Bits,
}

/// An rpmsg header found in a buffer.
#[derive(Debug, Clone, Serialize)]
pub struct MsgReport {
    /// The ring index it was found at.
    pub ring_idx: u16,
    /// The descriptor.
    pub desc: u16,
    /// Source endpoint.
    pub src: u32,
    /// Destination endpoint.
    pub dst: u32,
    /// Payload length.
    pub len: u16,
    /// Header flags.
    pub flags: u16,
    /// What it is, when that is known (a name-service announcement) or wrong.
    pub note: Option<String>,
}

/// A name-service announcement seen in a ring.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Announcement {
    /// 0: from the remote; 1: from the host.
    pub vring: usize,
    /// Service name.
    pub name: String,
    /// Endpoint address.
    pub addr: u32,
    /// Create or destroy.
    pub destroy: bool,
}
