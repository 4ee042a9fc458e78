//! `intercore inspect`: decodes a link from the outside, read-only, and says what is wrong
//! (feature `inspect`).
//!
//! The decoder reads shared memory through [`Peek`], a trait with no store at all: a live
//! link ([`Loads`] over any [`SharedMemory`], which calls only its loads), a file or POSIX
//! shm object read with `pread` (the command line's), or a raw dump (`[u8]`). It never
//! trusts what it reads: every offset comes from the region's own words and is checked
//! against the region before the read, so a garbage dump gives findings and errors, never a
//! panic or an access outside the region.
//!
//! What it produces is a [`Report`] (serde `Serialize`, for `--json`; `Display` for text):
//! the resource table and the vdev's status and features with named bits, each vring's
//! indices, flags and event words, the descriptors the remote holds, the last messages'
//! rpmsg headers in each direction, the name-service announcements still visible in the
//! rings, and a [`diagnosis`](Report::diagnosis): the stuck states users meet, each in
//! words a firmware engineer reads, with the numbers that show it.
//!
//! A live link moves while it is read: the indices of one ring are read first (each with
//! an Acquire load), the entries after, so a report is one consistent-enough snapshot per
//! ring; a finding that holds across several reads (`--watch`) is the one to believe.

mod diagnose;
mod text;

use crate::SharedMemory;
use crate::wire::rpmsg::{NsAnnouncement, NsKind, RPMSG_HDR_SIZE, RPMSG_NS_ADDR, VIRTIO_ID_RPMSG};
use crate::wire::rsc::{FW_RSC_ADDR_ANY, RSC_INTERCORE, Resource, ResourceTable};
use crate::wire::vring::{Desc, VringLayout};
use serde::Serialize;
use std::sync::atomic::Ordering::Acquire;

pub use diagnose::{Finding, Severity};

/// Read-only access to the memory of a link: the only thing the decoder needs, and all it
/// can do. The decoder checks `off + dst.len() <= len()` before every call.
pub trait Peek {
    /// Length of the region in bytes.
    fn len(&self) -> usize;
    /// Whether the region is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Copies `dst.len()` bytes from region offset `off`. An I/O failure (a file that
    /// shrank) is an error the decoder reports.
    fn peek(&self, off: usize, dst: &mut [u8]) -> std::io::Result<()>;
}

impl Peek for [u8] {
    fn len(&self) -> usize {
        <[u8]>::len(self)
    }
    fn peek(&self, off: usize, dst: &mut [u8]) -> std::io::Result<()> {
        let src = off
            .checked_add(dst.len())
            .and_then(|end| self.get(off..end))
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::UnexpectedEof))?;
        dst.copy_from_slice(src);
        Ok(())
    }
}

impl Peek for Vec<u8> {
    fn len(&self) -> usize {
        self.as_slice().len()
    }
    fn peek(&self, off: usize, dst: &mut [u8]) -> std::io::Result<()> {
        self.as_slice().peek(off, dst)
    }
}

/// A live link's [`SharedMemory`], read with its loads only: naturally aligned u16 and
/// u32 words with Acquire loads (the orderings the peers publish indices with), anything
/// else with [`SharedMemory::read`]. Nothing here can store.
pub struct Loads<'a, M: ?Sized>(pub &'a M);

impl<M: SharedMemory + ?Sized> Peek for Loads<'_, M> {
    fn len(&self) -> usize {
        self.0.len()
    }
    fn peek(&self, off: usize, dst: &mut [u8]) -> std::io::Result<()> {
        if off.checked_add(dst.len()).is_none_or(|e| e > self.0.len()) {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        match dst.len() {
            // Acquire: a word read after an index must not be older than the index.
            2 if off % 2 == 0 => dst.copy_from_slice(&self.0.load_u16(off, Acquire).to_le_bytes()),
            4 if off % 4 == 0 => dst.copy_from_slice(&self.0.load_u32(off, Acquire).to_le_bytes()),
            _ => self.0.read(off, dst),
        }
        Ok(())
    }
}

/// How the rings were laid out, which changes what a healthy ring looks like.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Flavor {
    /// virtio/remoteproc (Linux, OpenAMP, intercore, TI, Zephyr): the host posts
    /// transmit buffers into vring 1's available ring as it sends.
    #[default]
    Virtio,
    /// RPMsg-Lite's master (`rpmsg_lite_master_init`): all transmit buffers start in
    /// vring 1's **used** ring (used.idx = number of buffers while avail.idx = 0), and
    /// `VRING_AVAIL_F_NO_INTERRUPT` stays set on both rings.
    RpmsgLite,
}

/// A vring given by hand (no resource table, or to override it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct VringSpec {
    /// Device address of the ring.
    pub da: u64,
    /// Entries.
    pub num: u32,
    /// Used-ring alignment.
    pub align: u32,
}

/// What to decode: where the region sits in device addresses and where the link is in it.
#[derive(Debug, Clone, Default)]
pub struct Target {
    /// Device address of region offset 0.
    pub base: u64,
    /// Region offset of the resource table, if the link has one.
    pub rsc_offset: Option<usize>,
    /// Vrings by hand: vring 0 (remote → host), vring 1 (host → remote). Overrides the
    /// table's.
    pub vrings: Vec<VringSpec>,
    /// Whether `VIRTIO_RING_F_EVENT_IDX` is negotiated, for a link without a table (a
    /// table's `gfeatures` decides otherwise).
    pub event_idx: bool,
    /// The layout's flavor.
    pub flavor: Flavor,
    /// Further device-address windows the remote can reach (start, length), besides the
    /// region and the table's carveouts.
    pub windows: Vec<(u64, u64)>,
    /// How many of the last messages to show per direction (0: the default, 4).
    pub history: usize,
}

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

/// What the decoder read, for the diagnosis (internal).
pub(crate) struct Ring {
    pub(crate) layout: VringLayout,
    pub(crate) prefill: u16,
    pub(crate) report: VringReport,
    /// Every descriptor, as read (`None`: unreadable).
    pub(crate) descs: Vec<Desc>,
    /// Bad entries seen, described.
    pub(crate) bad_entries: Vec<String>,
    /// Every descriptor the remote holds (the listing stops at 64).
    pub(crate) held_ids: Vec<u16>,
}

/// A failed read: always a problem with the input, never a reason to stop decoding the
/// rest.
#[derive(Debug, Clone)]
pub(crate) struct Fault(pub(crate) String);

pub(crate) struct Rd<'a> {
    mem: &'a dyn Peek,
    base: u64,
}

impl Rd<'_> {
    fn bytes(&self, off: usize, dst: &mut [u8]) -> Result<(), Fault> {
        let len = self.mem.len();
        if off.checked_add(dst.len()).is_none_or(|e| e > len) {
            return Err(Fault(format!(
                "{} bytes at region offset {off:#x} lie outside the {len:#x}-byte region",
                dst.len()
            )));
        }
        self.mem
            .peek(off, dst)
            .map_err(|e| Fault(format!("reading {} bytes at {off:#x}: {e}", dst.len())))
    }
    fn u16(&self, off: usize) -> Result<u16, Fault> {
        let mut b = [0u8; 2];
        self.bytes(off, &mut b)?;
        Ok(u16::from_le_bytes(b))
    }
    /// The region offset of device-address range `da..da+len`, if it lies in the region.
    pub(crate) fn off_of(&self, da: u64, len: u64) -> Option<usize> {
        let off = da.checked_sub(self.base)?;
        let end = off.checked_add(len)?;
        (end <= self.mem.len() as u64).then_some(off as usize)
    }
}

/// Names of the vdev status bits (virtio 1.x §2.1).
pub fn status_names(s: u8) -> Vec<String> {
    let names = [
        (1, "ACKNOWLEDGE"),
        (2, "DRIVER"),
        (4, "DRIVER_OK"),
        (8, "FEATURES_OK"),
        (0x40, "NEEDS_RESET"),
        (0x80, "FAILED"),
    ];
    let mut v: Vec<String> = names
        .iter()
        .filter(|(b, _)| s & b != 0)
        .map(|(_, n)| (*n).to_string())
        .collect();
    for b in [0x10u8, 0x20] {
        if s & b != 0 {
            v.push(format!("bit {}", b.trailing_zeros()));
        }
    }
    v
}

/// Names of the rpmsg vdev feature bits.
pub fn feature_names(f: u32) -> Vec<String> {
    (0..32)
        .filter(|b| f & (1 << b) != 0)
        .map(|b| match b {
            0 => "VIRTIO_RPMSG_F_NS".to_string(),
            28 => "VIRTIO_RING_F_INDIRECT_DESC".to_string(),
            29 => "VIRTIO_RING_F_EVENT_IDX".to_string(),
            b => format!("bit {b}"),
        })
        .collect()
}

fn flag_bits(v: u16, names: &[(u16, &str)]) -> Bits {
    let mut n: Vec<String> = Vec::new();
    for b in 0..16 {
        if v & (1 << b) != 0 {
            match names.iter().find(|(m, _)| *m == 1 << b) {
                Some((_, s)) => n.push((*s).to_string()),
                None => n.push(format!("bit {b}")),
            }
        }
    }
    Bits {
        value: u32::from(v),
        names: n,
    }
}

fn desc_flags(v: u16) -> Bits {
    flag_bits(v, &[(1, "NEXT"), (2, "WRITE"), (4, "INDIRECT")])
}

fn cstr(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

/// The most a resource table is read for (a table is a few hundred bytes).
const RSC_MAX_READ: usize = 64 * 1024;
/// At most this many descriptors are listed per ring.
const LIST_MAX: usize = 64;

/// Decodes the link `t` describes in `mem`. Never panics and never reads outside `mem`;
/// what cannot be read becomes a finding.
pub fn inspect(mem: &dyn Peek, t: &Target) -> Report {
    let rd = Rd { mem, base: t.base };
    let mut faults: Vec<Finding> = Vec::new();
    let rsc = t.rsc_offset.map(|off| read_table(&rd, off));
    let rsc = match rsc {
        Some(Ok(r)) => Some(r),
        Some(Err(f)) => {
            faults.push(diagnose::unreadable(
                "resource-table-unreadable",
                "the resource table",
                f,
            ));
            None
        }
        None => None,
    };
    let gfeatures = rsc
        .as_ref()
        .and_then(|r| r.vdev.as_ref())
        .map(|v| v.gfeatures.value);
    let event_idx = gfeatures.map_or(t.event_idx, |g| {
        g & (1 << crate::wire::vring::VIRTIO_RING_F_EVENT_IDX) != 0
    });
    let specs: Vec<VringSpec> = if !t.vrings.is_empty() {
        t.vrings.clone()
    } else {
        rsc.as_ref()
            .and_then(|r| r.vdev.as_ref())
            .map(|v| {
                v.vrings
                    .iter()
                    .filter(|r| r.da != FW_RSC_ADDR_ANY)
                    .map(|r| VringSpec {
                        da: u64::from(r.da),
                        num: r.num,
                        align: r.align,
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let history = if t.history == 0 { 4 } else { t.history.min(64) };
    let mut rings = Vec::new();
    for (i, s) in specs.iter().enumerate().take(2) {
        let prefill = if i == 1 && t.flavor == Flavor::RpmsgLite {
            s.num.min(u32::from(u16::MAX)) as u16
        } else {
            0
        };
        match read_ring(&rd, i, s, prefill, history) {
            Ok(r) => rings.push(r),
            Err(f) => faults.push(diagnose::unreadable(
                "vring-unreadable",
                if i == 0 { "vring 0" } else { "vring 1" },
                f,
            )),
        }
    }
    let announcements = announcements(&rd, &rings);
    let windows = windows(&rd, rsc.as_ref(), &t.windows);
    let mut diagnosis = diagnose::diagnose(&diagnose::Input {
        rsc: rsc.as_ref(),
        rings: &rings,
        event_idx,
        flavor: t.flavor,
        announcements: &announcements,
        windows: &windows,
        specs_given: !specs.is_empty(),
    });
    diagnosis.extend(faults);
    diagnosis.sort_by_key(|f| f.severity);
    Report {
        base: t.base,
        len: mem.len() as u64,
        flavor: t.flavor,
        resource_table: rsc,
        vrings: rings.into_iter().map(|r| r.report).collect(),
        announcements,
        diagnosis,
    }
}

fn read_table(rd: &Rd<'_>, off: usize) -> Result<RscReport, Fault> {
    let avail = rd.mem.len().saturating_sub(off).min(RSC_MAX_READ);
    if off >= rd.mem.len() {
        return Err(Fault(format!(
            "offset {off:#x} is outside the {:#x}-byte region",
            rd.mem.len()
        )));
    }
    let mut raw = vec![0u8; avail];
    rd.bytes(off, &mut raw)?;
    let t = ResourceTable::parse(&raw).map_err(|e| Fault(format!("not a resource table: {e}")))?;
    let mut entries = Vec::new();
    let mut vdev = None;
    for e in t.iter() {
        let e = e.map_err(|e| Fault(format!("bad entry: {e}")))?;
        entries.push(match e {
            Resource::Carveout(c) | Resource::Devmem(c) => RscEntry::Carveout {
                devmem: matches!(e, Resource::Devmem(_)),
                da: c.da.get(),
                pa: c.pa.get(),
                len: c.len.get(),
                name: cstr(&c.name),
            },
            Resource::Trace(tr) => RscEntry::Trace {
                da: tr.da.get(),
                len: tr.len.get(),
                name: cstr(&tr.name),
            },
            Resource::Vdev(v) => {
                let id = v.vdev.id.get();
                if id == VIRTIO_ID_RPMSG && vdev.is_none() {
                    let d = v.vdev.dfeatures.get();
                    let g = v.vdev.gfeatures.get();
                    vdev = Some(VdevReport {
                        notifyid: v.vdev.notifyid.get(),
                        dfeatures: Bits {
                            value: d,
                            names: feature_names(d),
                        },
                        gfeatures: Bits {
                            value: g,
                            names: feature_names(g),
                        },
                        status: Bits {
                            value: u32::from(v.vdev.status),
                            names: status_names(v.vdev.status),
                        },
                        vrings: (0..v.num_vrings())
                            .filter_map(|i| v.vring(i))
                            .map(|r| RscVring {
                                da: r.da.get(),
                                align: r.align.get(),
                                num: r.num.get(),
                                notifyid: r.notifyid.get(),
                            })
                            .collect(),
                    });
                }
                RscEntry::Vdev { id }
            }
            Resource::Vendor { ty, .. } => RscEntry::Vendor {
                ty,
                intercore: ty == RSC_INTERCORE,
            },
        });
    }
    Ok(RscReport {
        offset: off as u64,
        entries,
        vdev,
    })
}

fn read_ring(
    rd: &Rd<'_>,
    index: usize,
    s: &VringSpec,
    prefill: u16,
    history: usize,
) -> Result<Ring, Fault> {
    let layout = VringLayout::new(s.num, s.align).map_err(|e| {
        Fault(format!(
            "bad geometry (num {}, align {}): {e}",
            s.num, s.align
        ))
    })?;
    let off = rd.off_of(s.da, layout.size() as u64).ok_or_else(|| {
        Fault(format!(
            "the ring at device address {:#x} ({} bytes) is not inside the region {:#x}..{:#x}",
            s.da,
            layout.size(),
            rd.base,
            rd.base.saturating_add(rd.mem.len() as u64)
        ))
    })?;
    let num = layout.num();
    // Indices first (the peers publish them with Release), entries after.
    let avail_idx = rd.u16(off + layout.avail_idx())?;
    let used_idx = rd.u16(off + layout.used_idx())?;
    let avail_flags = rd.u16(off + layout.avail_flags())?;
    let used_flags = rd.u16(off + layout.used_flags())?;
    let used_event = rd.u16(off + layout.used_event())?;
    let avail_event = rd.u16(off + layout.avail_event())?;
    let mut descs = Vec::with_capacity(num as usize);
    for i in 0..num {
        let mut b = [0u8; 16];
        rd.bytes(off + layout.desc(i), &mut b)?;
        descs.push(Desc::parse(&b).map_err(|e| Fault(e.to_string()))?);
    }
    let held = avail_idx.wrapping_sub(used_idx).wrapping_add(prefill);
    let mut bad_entries = Vec::new();
    let mut remote_holds = Vec::new();
    let mut held_ids = Vec::new();
    if held <= num {
        for k in (1..=held).rev() {
            let slot = avail_idx.wrapping_sub(k);
            let id = rd.u16(off + layout.avail_ring(slot % num))?;
            if id >= num {
                bad_entries.push(format!(
                    "avail.ring[{}] = {id} names no descriptor (the ring has {num})",
                    slot % num
                ));
                continue;
            }
            held_ids.push(id);
            if remote_holds.len() < LIST_MAX {
                let d = descs[id as usize];
                remote_holds.push(DescReport {
                    id,
                    addr: d.addr.get(),
                    len: d.len.get(),
                    flags: desc_flags(d.flags.get()),
                });
            }
        }
    }
    // The last messages: vring 0's in its used ring (the remote filled them), vring 1's in
    // its available ring (the host filled them).
    let mut last_messages = Vec::new();
    let (top, what) = if index == 0 {
        (used_idx, "used")
    } else {
        (avail_idx, "avail")
    };
    let seen = (top as usize).min(num as usize).min(history);
    for k in 1..=seen as u16 {
        let slot = top.wrapping_sub(k);
        let id = if index == 0 {
            let mut b = [0u8; 4];
            rd.bytes(off + layout.used_ring(slot % num), &mut b)?;
            u32::from_le_bytes(b)
        } else {
            u32::from(rd.u16(off + layout.avail_ring(slot % num))?)
        };
        if id >= u32::from(num) {
            bad_entries.push(format!(
                "{what}.ring[{}] = {id} names no descriptor (the ring has {num})",
                slot % num
            ));
            continue;
        }
        if let Some(m) = read_msg(rd, &descs[id as usize], slot, id as u16) {
            last_messages.push(m);
        }
    }
    let direction = if index == 0 {
        "remote -> host"
    } else {
        "host -> remote"
    };
    let report = VringReport {
        index,
        direction,
        da: s.da,
        offset: off as u64,
        num,
        align: s.align,
        avail_flags: flag_bits(avail_flags, &[(1, "NO_INTERRUPT")]),
        avail_idx,
        used_flags: flag_bits(used_flags, &[(1, "NO_NOTIFY")]),
        used_idx,
        used_event,
        avail_event,
        held_by_remote: held,
        held_by_host: num.saturating_sub(held),
        remote_holds,
        last_messages,
    };
    Ok(Ring {
        layout,
        prefill,
        report,
        descs,
        bad_entries,
        held_ids,
    })
}

/// The rpmsg header (and, for the name service, the announcement) in descriptor `d`'s
/// buffer, if the buffer is in the region.
fn read_msg(rd: &Rd<'_>, d: &Desc, ring_idx: u16, id: u16) -> Option<MsgReport> {
    let blen = d.len.get();
    let off = rd.off_of(d.addr.get(), RPMSG_HDR_SIZE as u64)?;
    let mut h = [0u8; RPMSG_HDR_SIZE];
    rd.bytes(off, &mut h).ok()?;
    let w = |i: usize| u32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
    let (src, dst) = (w(0), w(4));
    let len = u16::from_le_bytes([h[12], h[13]]);
    let flags = u16::from_le_bytes([h[14], h[15]]);
    let mut note = None;
    if RPMSG_HDR_SIZE as u64 + u64::from(len) > u64::from(blen) {
        note = Some(format!(
            "payload length {len} does not fit the {blen}-byte buffer"
        ));
    } else if dst == RPMSG_NS_ADDR {
        let mut p = vec![0u8; len as usize];
        if let Some(poff) = rd.off_of(d.addr.get() + RPMSG_HDR_SIZE as u64, u64::from(len)) {
            if rd.bytes(poff, &mut p).is_ok() {
                note = Some(match ns_of(&p) {
                    Ok(a) => format!(
                        "name service: {} \"{}\" at {:#x}",
                        if a.destroy { "destroy" } else { "create" },
                        a.name,
                        a.addr
                    ),
                    Err(e) => format!("malformed name-service message: {e}"),
                });
            }
        }
    }
    Some(MsgReport {
        ring_idx,
        desc: id,
        src,
        dst,
        len,
        flags,
        note,
    })
}

/// A name-service payload, decoded: unlike the host's parser, an address of
/// `RPMSG_ADDR_ANY` is kept (a diagnosis names it).
fn ns_of(p: &[u8]) -> Result<Announcement, String> {
    if p.len() != crate::wire::rpmsg::RPMSG_NS_MSG_SIZE {
        return Err(format!("{} bytes, not 40", p.len()));
    }
    let addr = u32::from_le_bytes([p[32], p[33], p[34], p[35]]);
    let flags = u32::from_le_bytes([p[36], p[37], p[38], p[39]]);
    if flags > 1 {
        return Err(format!(
            "flags {flags:#x} are neither create (0) nor destroy (1)"
        ));
    }
    if addr != crate::wire::rpmsg::RPMSG_ADDR_ANY {
        // The same checks the host makes (name, reserved addresses).
        let a = NsAnnouncement::parse(p).map_err(|e| e.to_string())?;
        return Ok(Announcement {
            vring: 0,
            name: String::from_utf8_lossy(a.name.as_bytes()).into_owned(),
            addr: a.addr,
            destroy: a.kind == NsKind::Destroy,
        });
    }
    Ok(Announcement {
        vring: 0,
        name: cstr(&p[..32]),
        addr,
        destroy: flags == 1,
    })
}

/// Every name-service message still in the rings' history (up to `num` entries each),
/// oldest first, without repeats.
fn announcements(rd: &Rd<'_>, rings: &[Ring]) -> Vec<Announcement> {
    let mut out: Vec<Announcement> = Vec::new();
    for r in rings {
        let i = r.report.index;
        let l = r.layout;
        let num = l.num();
        let off = r.report.offset as usize;
        let top = if i == 0 {
            r.report.used_idx
        } else {
            r.report.avail_idx
        };
        let seen = (top as usize).min(num as usize) as u16;
        for k in (1..=seen).rev() {
            let slot = top.wrapping_sub(k) % num;
            let id = if i == 0 {
                let mut b = [0u8; 4];
                if rd.bytes(off + l.used_ring(slot), &mut b).is_err() {
                    continue;
                }
                u32::from_le_bytes(b)
            } else {
                match rd.u16(off + l.avail_ring(slot)) {
                    Ok(v) => u32::from(v),
                    Err(_) => continue,
                }
            };
            let Some(d) = r.descs.get(id as usize) else {
                continue;
            };
            let Some(hoff) = rd.off_of(d.addr.get(), 56) else {
                continue;
            };
            let mut b = [0u8; 56];
            if rd.bytes(hoff, &mut b).is_err() || d.len.get() < 56 {
                continue;
            }
            let dst = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
            let len = u16::from_le_bytes([b[12], b[13]]);
            if dst != RPMSG_NS_ADDR || len != 40 {
                continue;
            }
            if let Ok(mut a) = ns_of(&b[16..]) {
                a.vring = i;
                if !out.contains(&a) {
                    out.push(a);
                }
            }
        }
    }
    out
}

/// Device-address windows the remote can reach: the region, the table's carveouts and
/// trace buffers, and the ones given.
fn windows(rd: &Rd<'_>, rsc: Option<&RscReport>, extra: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let mut w = vec![(rd.base, rd.mem.len() as u64)];
    if let Some(r) = rsc {
        for e in &r.entries {
            if let RscEntry::Carveout { da, len, .. } = e {
                if *da != FW_RSC_ADDR_ANY {
                    w.push((u64::from(*da), u64::from(*len)));
                }
            }
        }
    }
    w.extend_from_slice(extra);
    w
}
