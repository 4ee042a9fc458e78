//! The text form of a [`Report`]: what `intercore inspect` prints without `--json`.

use super::{Bits, Report, RscEntry, VringReport};
use core::fmt;

fn bits(b: &Bits) -> String {
    if b.names.is_empty() {
        format!("{:#x}", b.value)
    } else {
        format!("{:#x} ({})", b.value, b.names.join("|"))
    }
}

fn ring(f: &mut fmt::Formatter<'_>, v: &VringReport) -> fmt::Result {
    writeln!(
        f,
        "vring {} ({}): da {:#x} (offset {:#x}), num {}, align {}",
        v.index, v.direction, v.da, v.offset, v.num, v.align
    )?;
    writeln!(
        f,
        "  avail: idx {:>5}  flags {:<20} used_event {}",
        v.avail_idx,
        bits(&v.avail_flags),
        v.used_event
    )?;
    writeln!(
        f,
        "  used:  idx {:>5}  flags {:<20} avail_event {}",
        v.used_idx,
        bits(&v.used_flags),
        v.avail_event
    )?;
    write!(
        f,
        "  buffers: {} with the remote, {} with the host",
        v.held_by_remote, v.held_by_host
    )?;
    if !v.remote_holds.is_empty() {
        let ids: Vec<String> = v
            .remote_holds
            .iter()
            .take(16)
            .map(|d| d.id.to_string())
            .collect();
        let more = if v.remote_holds.len() > 16 || usize::from(v.held_by_remote) > 16 {
            ", ..."
        } else {
            ""
        };
        write!(f, " (descriptors {}{more})", ids.join(" "))?;
    }
    writeln!(f)?;
    for m in &v.last_messages {
        write!(
            f,
            "  [{:>5}] desc {:>3}  src {:#x} -> dst {:#x}  len {}  flags {:#x}",
            m.ring_idx, m.desc, m.src, m.dst, m.len, m.flags
        )?;
        match &m.note {
            Some(n) => writeln!(f, "  ({n})")?,
            None => writeln!(f)?,
        }
    }
    Ok(())
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "region {:#x}..{:#x} ({} bytes), {} layout",
            self.base,
            self.base.saturating_add(self.len),
            self.len,
            match self.flavor {
                super::Flavor::Virtio => "virtio/remoteproc",
                super::Flavor::RpmsgLite => "RPMsg-Lite",
            }
        )?;
        if let Some(t) = &self.resource_table {
            writeln!(
                f,
                "resource table at offset {:#x}: {} entries",
                t.offset,
                t.entries.len()
            )?;
            for e in &t.entries {
                match e {
                    RscEntry::Carveout {
                        devmem,
                        da,
                        pa,
                        len,
                        name,
                    } => writeln!(
                        f,
                        "  {} \"{name}\": da {da:#x} pa {pa:#x} len {len:#x}",
                        if *devmem { "devmem" } else { "carveout" }
                    )?,
                    RscEntry::Trace { da, len, name } => {
                        writeln!(f, "  trace \"{name}\": da {da:#x} len {len:#x}")?
                    }
                    RscEntry::Vdev { id } => writeln!(f, "  vdev (virtio id {id})")?,
                    RscEntry::Vendor { ty, intercore } => writeln!(
                        f,
                        "  vendor entry {ty:#x}{}",
                        if *intercore { " (intercore)" } else { "" }
                    )?,
                }
            }
            if let Some(v) = &t.vdev {
                writeln!(f, "  rpmsg vdev: status {}", bits(&v.status))?;
                writeln!(f, "    dfeatures {}", bits(&v.dfeatures))?;
                writeln!(f, "    gfeatures {}", bits(&v.gfeatures))?;
                for (i, r) in v.vrings.iter().enumerate() {
                    writeln!(
                        f,
                        "    vring {i}: da {:#x} align {} num {} notifyid {}",
                        r.da, r.align, r.num, r.notifyid
                    )?;
                }
            }
        }
        for v in &self.vrings {
            ring(f, v)?;
        }
        if !self.announcements.is_empty() {
            writeln!(f, "name service:")?;
            for a in &self.announcements {
                writeln!(
                    f,
                    "  {} \"{}\" at {:#x} (from the {})",
                    if a.destroy { "destroy" } else { "create" },
                    a.name,
                    a.addr,
                    if a.vring == 0 { "remote" } else { "host" }
                )?;
            }
        }
        if self.diagnosis.is_empty() {
            writeln!(f, "diagnosis: nothing wrong found")?;
        } else {
            writeln!(f, "diagnosis:")?;
            for d in &self.diagnosis {
                writeln!(f, "  [{}] {}: {}", d.severity.as_str(), d.code, d.summary)?;
                writeln!(f, "      {}", d.explanation)?;
                for e in &d.evidence {
                    writeln!(f, "      - {e}")?;
                }
            }
        }
        Ok(())
    }
}
