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

mod decode;
mod diagnose;
mod report;
mod text;

use crate::SharedMemory;
use crate::wire::rsc::FW_RSC_ADDR_ANY;
use decode::{Rd, announcements, read_ring, read_table, windows};
use serde::Serialize;
use std::sync::atomic::Ordering::Acquire;

pub(crate) use decode::{Fault, Ring};
pub use decode::{feature_names, status_names};
pub use diagnose::{Finding, Severity};
pub use report::{
    Announcement, Bits, DescReport, MsgReport, Report, RscEntry, RscReport, RscVring, VdevReport,
    VringReport,
};

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
