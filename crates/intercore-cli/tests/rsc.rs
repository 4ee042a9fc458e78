//! `intercore rsc` on real files: the `intercore` binary itself (it links the offload
//! firmware, whose resource table is in its `.resource_table` section) and corrupted
//! copies of it, which must be refused with the problem and its file offset, as the
//! kernel's `find_table` refuses them (here with more precise reasons).

use intercore::wire::IntoBytes;
use intercore::wire::elf::Elf;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_intercore");

fn rsc(args: &[&str]) -> Output {
    Command::new(BIN).arg("rsc").args(args).output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// File offset of the binary's `.resource_table` section.
fn table_offset(bytes: &[u8]) -> usize {
    let elf = Elf::parse(bytes).unwrap();
    elf.resource_table().unwrap().unwrap().section.offset as usize
}

fn corrupted_copy(tag: &str, edit: impl FnOnce(&mut Vec<u8>)) -> PathBuf {
    let mut bytes = std::fs::read(BIN).unwrap();
    edit(&mut bytes);
    let p = std::env::temp_dir().join(format!("intercore-rsc-{}-{tag}", std::process::id()));
    std::fs::write(&p, bytes).unwrap();
    p
}

fn refused(p: &Path) -> String {
    let out = rsc(&[p.to_str().unwrap()]);
    let _ = std::fs::remove_file(p);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(out.stdout.is_empty());
    text(&out.stderr)
}

/// remoteproc (`rproc_elf_load_rsc_table`): the firmware's table is the `.resource_table`
/// section. The `intercore` binary carries the offload firmware's table — a
/// `vdev0buffer` carveout and an rpmsg vdev (id 7, NS only: EVENT_IDX is not offered by
/// default, since OpenAMP's and RPMsg-Lite's hosts do not implement it) with two 256-entry
/// vrings aligned to 4096 — byte for byte what the firmware declares, in a loaded
/// segment (where the kernel writes back).
#[test]
fn shows_the_binarys_own_table() {
    let out = rsc(&[BIN]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    for needle in [
        "carveout \"vdev0buffer\" da 0xa0007000",
        "vdev     id 7 (rpmsg)",
        "dfeatures 0x1 [VIRTIO_RPMSG_F_NS]",
        "vring0 da 0xa0001000 align 4096 num 256 notifyid 1",
        "vring1 da 0xa0004000 align 4096 num 256 notifyid 2",
        "in loaded segment",
    ] {
        assert!(stdout.contains(needle), "{needle:?} missing in\n{stdout}");
    }
    let bytes = std::fs::read(BIN).unwrap();
    let elf = Elf::parse(&bytes).unwrap();
    let section = elf.resource_table().unwrap().unwrap();
    let declared = intercore_fw_offload::RESOURCE_TABLE.snapshot();
    assert_eq!(section.table.bytes(), declared.as_bytes());

    let out = rsc(&["--json", BIN]);
    assert!(out.status.success());
    let json = text(&out.stdout);
    assert_eq!(json.lines().count(), 1);
    for needle in [
        "\"type\":\"carveout\"",
        "\"name\":\"vdev0buffer\"",
        &format!("\"type\":\"vdev\",\"offset\":{VDEV},\"id\":7"),
        "\"status\":0",
        "{\"da\":2684358656,\"align\":4096,\"num\":256,\"notifyid\":1,\"pa\":0}",
        "\"loaded\":true",
    ] {
        assert!(json.contains(needle), "{needle:?} missing in {json}");
    }
}

/// Offset of the rpmsg vdev entry in the firmware's table (after the `vdev0buffer`
/// carveout; the intercore vendor entry comes last).
const VDEV: usize = core::mem::offset_of!(intercore::rpmsg::rsc_table::IntercoreRpmsgTable, vdev);

/// find_table's checks, on a corrupted copy of the binary: an unsupported table version
/// ("unsupported fw ver"), an entry offset outside the table, a vring size that is not a
/// power of two — each refused (exit 1) with the file offset of the bad field.
#[test]
fn refuses_corrupted_tables_with_the_offset() {
    let at = table_offset(&std::fs::read(BIN).unwrap());
    let p = corrupted_copy("ver", |b| b[at] = 2);
    let err = refused(&p);
    assert!(
        err.contains(&format!(
            "resource table version at offset {at:#x} has invalid value 0x2"
        )),
        "{err}"
    );
    let p = corrupted_copy("off", |b| {
        b[at + 16..at + 20].copy_from_slice(&0x1000u32.to_le_bytes())
    });
    let err = refused(&p);
    assert!(
        err.contains(&format!("resource entry offset at offset {:#x}", at + 16)),
        "{err}"
    );
    // vring 0's num: the vdev entry, its body +4, vrings after 24 bytes, num at +8.
    let num_at = at + VDEV + 4 + 24 + 8;
    let p = corrupted_copy("num", |b| {
        b[num_at..num_at + 4].copy_from_slice(&3u32.to_le_bytes())
    });
    let err = refused(&p);
    assert!(
        err.contains(&format!(
            "vring num at offset {num_at:#x} has invalid value 0x3"
        )),
        "{err}"
    );
}

/// rproc_elf_sanity_check's checks: not an ELF file (bad magic), an unknown class, an
/// image shorter than its section table says ("Image is too small") — refused (exit 1)
/// naming the offset of the field.
#[test]
fn refuses_broken_elf_files() {
    let p = corrupted_copy("magic", |b| b[1] = b'X');
    let err = refused(&p);
    assert!(
        err.contains("ELF magic (not an ELF file) at offset 0x0"),
        "{err}"
    );
    let p = corrupted_copy("trunc", |b| b.truncate(100));
    let err = refused(&p);
    assert!(
        err.contains("ELF e_shoff (past the end of the file) at offset 0x28"),
        "{err}"
    );
    let p = corrupted_copy("class", |b| b[4] = 9);
    let err = refused(&p);
    assert!(err.contains("at offset 0x4"), "{err}");
}

/// Usage errors are exit 2 with a message; a missing file is exit 1.
#[test]
fn usage_errors() {
    for args in [&[][..], &["--frob", BIN], &[BIN, BIN]] {
        let out = rsc(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(!out.stderr.is_empty());
    }
    let out = rsc(&["/nonexistent/firmware.elf"]);
    assert_eq!(out.status.code(), Some(1));
}
