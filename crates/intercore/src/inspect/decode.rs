//! Reading a link's structures out of memory, each read bounded and checked.

use super::{
    Announcement, Bits, DescReport, MsgReport, Peek, RscEntry, RscReport, RscVring, VdevReport,
    VringReport, VringSpec,
};
use crate::wire::rpmsg::{NsAnnouncement, NsKind, RPMSG_HDR_SIZE, RPMSG_NS_ADDR, VIRTIO_ID_RPMSG};
use crate::wire::rsc::{FW_RSC_ADDR_ANY, RSC_INTERCORE, Resource, ResourceTable};
use crate::wire::vring::{Desc, VringLayout};

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
    pub(super) mem: &'a dyn Peek,
    pub(super) base: u64,
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

pub(super) fn read_table(rd: &Rd<'_>, off: usize) -> Result<RscReport, Fault> {
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

pub(super) fn read_ring(
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
        let payload = d.addr.get().checked_add(RPMSG_HDR_SIZE as u64);
        if let Some(poff) = payload.and_then(|a| rd.off_of(a, u64::from(len))) {
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
pub(super) fn announcements(rd: &Rd<'_>, rings: &[Ring]) -> Vec<Announcement> {
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
pub(super) fn windows(
    rd: &Rd<'_>,
    rsc: Option<&RscReport>,
    extra: &[(u64, u64)],
) -> Vec<(u64, u64)> {
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
