//! `intercore rsc FILE [--json]`: the resource table of an ELF firmware, as remoteproc
//! would read it (the `.resource_table` section, checked), or the named problem.

use crate::error::CliError;
use crate::{EXIT_OK, RscArgs};
use intercore::wire::elf::{self, Elf, RscSection};
use intercore::wire::rsc::{FwRscCarveout, Resource};
use intercore::wire::vring::{VIRTIO_RING_F_EVENT_IDX, VIRTIO_RING_F_INDIRECT_DESC};
use intercore_linux::file::{FIRMWARE_MAX, read_regular_magic};
use serde_json::{Value, json};
use std::fmt::Write as _;

/// Prints the table: exit 0 printed, 1 the file is not readable firmware (not a regular
/// file, over 256 MiB, not ELF, no or a malformed table).
pub fn main(a: &RscArgs, json: bool) -> Result<u8, CliError> {
    let file = a.file.display().to_string();
    // Sniffed first: a large file that is not ELF is refused after 4 bytes, not read whole.
    let bytes = read_regular_magic(
        &a.file,
        FIRMWARE_MAX,
        b"\x7fELF",
        "ELF magic (not an ELF file) at offset 0x0",
    )?;
    let out =
        run(&file, &bytes, json).map_err(|e| CliError::at(&a.file, format!("{file}: {e}")))?;
    crate::out::text(format_args!("{out}"))?;
    Ok(EXIT_OK)
}

fn run(file: &str, bytes: &[u8], json: bool) -> Result<String, String> {
    let elf = Elf::parse(bytes).map_err(|e| e.to_string())?;
    for s in elf.segments() {
        s.map_err(|e| e.to_string())?;
    }
    let rsc = elf.resource_table().map_err(|e| e.to_string())?.ok_or(
        "no .resource_table section (the kernel would boot it with no resources: no vdevs, \
         no carveouts)",
    )?;
    Ok(if json {
        render_json(file, &elf, &rsc)
    } else {
        render_text(file, &elf, &rsc)
    })
}

fn name(field: &[u8; 32]) -> String {
    let end = field.iter().position(|&b| b == 0).unwrap_or(32);
    String::from_utf8_lossy(&field[..end]).into_owned()
}

/// The intercore vendor entry's offered ring features, named (` [in-order rings, inline
/// slots up to 112 B]`), or nothing when none is offered.
fn offered_names(features: u32, inline_max: u32) -> String {
    use intercore::wire::rsc::{INTERCORE_F_IN_ORDER, INTERCORE_F_INLINE, INTERCORE_F_INLINE_ASK};
    let mut names = Vec::new();
    if features & INTERCORE_F_IN_ORDER != 0 {
        names.push("in-order rings".to_string());
    }
    if features & INTERCORE_F_INLINE != 0 {
        names.push(format!("inline slots up to {inline_max} B"));
    }
    if features & INTERCORE_F_INLINE_ASK != 0 {
        names.push("ask flag".to_string());
    }
    if names.is_empty() {
        String::new()
    } else {
        format!(" [{}]", names.join(", "))
    }
}

fn feature_names(id: u32, f: u32) -> Vec<String> {
    (0..32)
        .filter(|b| f & (1 << b) != 0)
        .map(|b| match b {
            0 if id == intercore::wire::rpmsg::VIRTIO_ID_RPMSG => "VIRTIO_RPMSG_F_NS".into(),
            VIRTIO_RING_F_EVENT_IDX => "VIRTIO_RING_F_EVENT_IDX".into(),
            VIRTIO_RING_F_INDIRECT_DESC => "VIRTIO_RING_F_INDIRECT_DESC".into(),
            b => format!("bit{b}"),
        })
        .collect()
}

fn loaded_note(rsc: &RscSection<'_>) -> Option<String> {
    match rsc.loaded_in {
        Some(_) => None,
        None => Some(format!(
            "the table (address {:#x}) is not inside any loaded segment: the kernel cannot \
             write the negotiated vring addresses and status back to the firmware",
            rsc.section.addr
        )),
    }
}

fn render_text(file: &str, elf: &Elf<'_>, rsc: &RscSection<'_>) -> String {
    let mut o = String::new();
    let machine = elf::machine::name(elf.machine())
        .map(str::to_string)
        .unwrap_or_else(|| format!("machine {}", elf.machine()));
    let _ = writeln!(
        o,
        "{file}: ELF{} {machine}, entry {:#x}",
        elf.class().bits(),
        elf.entry()
    );
    let s = &rsc.section;
    let _ = write!(
        o,
        ".resource_table: file offset {:#x}, address {:#x}, {} bytes",
        s.offset, s.addr, s.size
    );
    match rsc.loaded_in {
        Some(p) => {
            let _ = writeln!(o, ", in loaded segment {} at {:#x}", p.index, p.paddr);
        }
        None => o.push('\n'),
    }
    let t = &rsc.table;
    let _ = writeln!(o, "resource table version 1, {} entries", t.len());
    for i in 0..t.len() {
        let off = t.entry_offset(i).unwrap_or(0);
        let _ = write!(o, "  [{i}] @{off:#x} ");
        match t.entry(i) {
            Ok(Resource::Carveout(c)) => carveout_line(&mut o, "carveout", &c),
            Ok(Resource::Devmem(c)) => carveout_line(&mut o, "devmem", &c),
            Ok(Resource::Trace(tr)) => {
                let _ = writeln!(
                    o,
                    "trace    {:?} da {:#x} len {:#x}",
                    name(&tr.name),
                    tr.da.get(),
                    tr.len.get()
                );
            }
            Ok(Resource::Vdev(v)) => vdev_lines(&mut o, &v),
            Ok(Resource::Vendor { ty, body }) => match intercore_entry(t, ty) {
                Some(Ok(e)) => {
                    let _ = writeln!(
                        o,
                        "vendor   type {ty:#x} intercore v{}: polling doorbell at da {:#x} len {:#x}, {} notify ids per direction, features offered {:#x}{}, accepted {:#x}",
                        e.version.get(),
                        e.doorbell_da.get(),
                        e.doorbell_len.get(),
                        e.num_ids.get(),
                        e.features.get(),
                        offered_names(e.features.get(), e.inline_max.get()),
                        e.accepted.get()
                    );
                }
                Some(Err(err)) => {
                    let _ = writeln!(o, "vendor   type {ty:#x} intercore: error: {err}");
                }
                None => {
                    let _ = writeln!(o, "vendor   type {ty}, {} bytes", body.len());
                }
            },
            Err(e) => {
                let _ = writeln!(o, "error: {e}");
            }
        }
    }
    if let Some(n) = loaded_note(rsc) {
        let _ = writeln!(o, "warning: {n}");
    }
    o
}

/// The intercore vendor entry, checked, when `ty` is its type (`None` for other vendors'
/// entries).
fn intercore_entry(
    t: &intercore::wire::rsc::ResourceTable<'_>,
    ty: u32,
) -> Option<Result<intercore::wire::rsc::FwRscIntercore, intercore::wire::WireError>> {
    (ty == intercore::wire::rsc::RSC_INTERCORE).then(|| {
        t.find_intercore().and_then(|e| {
            e.map(|(_, e)| e)
                .ok_or(intercore::wire::WireError::BadValue {
                    what: "intercore vendor entry",
                    offset: 0,
                    value: ty as u64,
                })
        })
    })
}

/// A vdev entry and its vrings, as text.
fn vdev_lines(o: &mut String, v: &intercore::wire::rsc::VdevEntry<'_>) {
    let d = &v.vdev;
    let id = d.id.get();
    let kind = if id == intercore::wire::rpmsg::VIRTIO_ID_RPMSG {
        " (rpmsg)"
    } else {
        ""
    };
    let _ = writeln!(
        o,
        "vdev     id {id}{kind} notifyid {} dfeatures {:#x} [{}] gfeatures {:#x} status {:#x} config_len {}",
        d.notifyid.get(),
        d.dfeatures.get(),
        feature_names(id, d.dfeatures.get()).join(", "),
        d.gfeatures.get(),
        d.status,
        d.config_len.get()
    );
    for r in 0..v.num_vrings() {
        if let Some(vr) = v.vring(r) {
            let _ = writeln!(
                o,
                "         vring{r} da {:#x} align {} num {} notifyid {} pa {:#x}",
                vr.da.get(),
                vr.align.get(),
                vr.num.get(),
                vr.notifyid.get(),
                vr.pa.get()
            );
        }
    }
}

fn carveout_line(o: &mut String, kind: &str, c: &FwRscCarveout) {
    let _ = writeln!(
        o,
        "{kind:<8} {:?} da {:#x} pa {:#x} len {:#x} flags {:#x}",
        name(&c.name),
        c.da.get(),
        c.pa.get(),
        c.len.get(),
        c.flags.get()
    );
}

fn carveout_json(kind: &str, off: usize, c: &FwRscCarveout) -> Value {
    json!({
        "type": kind, "offset": off, "name": name(&c.name), "da": c.da.get(),
        "pa": c.pa.get(), "len": c.len.get(), "flags": c.flags.get(),
    })
}

fn entry_json(t: &intercore::wire::rsc::ResourceTable<'_>, i: usize) -> Value {
    let off = t.entry_offset(i).unwrap_or(0);
    let error = |e: String| json!({ "type": "error", "offset": off, "error": e });
    match t.entry(i) {
        Ok(Resource::Carveout(c)) => carveout_json("carveout", off, &c),
        Ok(Resource::Devmem(c)) => carveout_json("devmem", off, &c),
        Ok(Resource::Trace(tr)) => json!({
            "type": "trace", "offset": off, "name": name(&tr.name), "da": tr.da.get(),
            "len": tr.len.get(),
        }),
        Ok(Resource::Vdev(v)) => {
            let d = &v.vdev;
            let vrings: Vec<Value> = (0..v.num_vrings())
                .filter_map(|r| v.vring(r))
                .map(|vr| {
                    json!({
                        "da": vr.da.get(), "align": vr.align.get(), "num": vr.num.get(),
                        "notifyid": vr.notifyid.get(), "pa": vr.pa.get(),
                    })
                })
                .collect();
            json!({
                "type": "vdev", "offset": off, "id": d.id.get(), "notifyid": d.notifyid.get(),
                "dfeatures": d.dfeatures.get(),
                "dfeature_names": feature_names(d.id.get(), d.dfeatures.get()),
                "gfeatures": d.gfeatures.get(), "status": d.status,
                "config_len": d.config_len.get(), "vrings": vrings,
            })
        }
        Ok(Resource::Vendor { ty, body }) => match intercore_entry(t, ty) {
            Some(Ok(e)) => json!({
                "type": "intercore", "offset": off, "vendor_type": ty,
                "version": e.version.get(), "features": e.features.get(),
                "doorbell_da": e.doorbell_da.get(), "doorbell_len": e.doorbell_len.get(),
                "num_ids": e.num_ids.get(), "accepted": e.accepted.get(),
            }),
            Some(Err(err)) => error(err.to_string()),
            None => {
                json!({ "type": "vendor", "offset": off, "vendor_type": ty, "len": body.len() })
            }
        },
        Err(e) => error(e.to_string()),
    }
}

fn render_json(file: &str, elf: &Elf<'_>, rsc: &RscSection<'_>) -> String {
    let t = &rsc.table;
    let entries: Vec<Value> = (0..t.len()).map(|i| entry_json(t, i)).collect();
    let s = &rsc.section;
    let v = json!({
        "file": file, "class": elf.class().bits(), "machine": elf.machine(),
        "entry": elf.entry(),
        "section": { "offset": s.offset, "addr": s.addr, "size": s.size,
                     "loaded": rsc.loaded_in.is_some() },
        "version": 1, "entries": entries,
    });
    format!("{v}\n")
}

#[cfg(test)]
mod tests {
    use super::offered_names;
    use intercore::wire::rsc::{INTERCORE_F_IN_ORDER, INTERCORE_F_INLINE};

    #[test]
    fn offered_ring_features_are_named() {
        assert_eq!(offered_names(0, 0), "");
        assert_eq!(offered_names(INTERCORE_F_IN_ORDER, 0), " [in-order rings]");
        assert_eq!(
            offered_names(INTERCORE_F_IN_ORDER | INTERCORE_F_INLINE, 112),
            " [in-order rings, inline slots up to 112 B]"
        );
        assert_eq!(
            offered_names(intercore::wire::rsc::INTERCORE_FEATURES, 112),
            " [in-order rings, inline slots up to 112 B, ask flag]"
        );
    }
}
