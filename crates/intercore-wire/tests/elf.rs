//! The firmware ELF parser and loader against synthetic images (a tiny ELF writer below),
//! against a real ELF32 image made by GNU binutils, and against arbitrary bytes.
//!
//! Each test follows what Linux's `drivers/remoteproc/remoteproc_elf_loader.c` does with
//! the same input: `rproc_elf_sanity_check` (header), `rproc_elf_load_segments` (PT_LOAD at
//! p_paddr, filesz > memsz rejected, zero fill) and `find_table` (the `.resource_table`
//! section, checked header and offsets).

use intercore_wire::Le32;
use intercore_wire::WireError;
use intercore_wire::elf::{Elf, ElfClass, LoadTarget, PT_LOAD, Region, SHT_NOBITS};
use intercore_wire::rsc::{FwRscCarveout, FwRscVdev, FwRscVdevVring, Resource, RscTableWriter};
use proptest::prelude::*;

// ---------------------------------------------------------------------------------------
// A tiny ELF writer: header, program headers, segment contents, section contents, the
// section-name table, then the section headers.

#[derive(Clone)]
struct Seg {
    p_type: u32,
    paddr: u64,
    vaddr: u64,
    data: Vec<u8>,
    memsz: u64,
}

impl Seg {
    fn load(paddr: u64, data: &[u8], memsz: u64) -> Self {
        Seg {
            p_type: PT_LOAD,
            paddr,
            vaddr: paddr,
            data: data.to_vec(),
            memsz,
        }
    }
}

#[derive(Clone)]
enum SecData {
    /// Contents of their own, not loaded.
    Own(Vec<u8>),
    /// `len` bytes at `off` inside segment `seg` (address = the segment's paddr + off).
    InSegment { seg: usize, off: u64, len: u64 },
    /// `SHT_NOBITS` of this size.
    NoBits(u64),
}

#[derive(Clone)]
struct Sec {
    name: &'static str,
    addr: u64,
    data: SecData,
}

struct Image {
    bytes: Vec<u8>,
    /// File offset of each program header.
    phdr_at: Vec<usize>,
    /// File offset of each segment's contents.
    seg_at: Vec<usize>,
    /// File offset of each section header (index 0 is the null section).
    shdr_at: Vec<usize>,
    /// File offset of each section's contents (for `Own`, `InSegment`).
    sec_at: Vec<usize>,
}

fn put(v: &mut Vec<u8>, at: usize, b: &[u8]) {
    if v.len() < at + b.len() {
        v.resize(at + b.len(), 0);
    }
    v[at..at + b.len()].copy_from_slice(b);
}

fn build(class: ElfClass, entry: u64, segs: &[Seg], secs: &[Sec]) -> Image {
    let w64 = class == ElfClass::Elf64;
    let (eh, ph, sh) = if w64 { (64, 56, 64) } else { (52, 32, 40) };
    let word = |v: &mut Vec<u8>, at: usize, x: u64| {
        if w64 {
            put(v, at, &x.to_le_bytes())
        } else {
            put(v, at, &(x as u32).to_le_bytes())
        }
    };
    let mut out = vec![0u8; eh];
    let phoff = eh;
    let mut at = phoff + ph * segs.len();
    let mut seg_at = Vec::new();
    for s in segs {
        at = at.next_multiple_of(8);
        seg_at.push(at);
        put(&mut out, at, &s.data);
        at += s.data.len();
    }
    // Section names.
    let mut strtab = vec![0u8];
    let mut name_off = Vec::new();
    for s in secs.iter().map(|s| s.name).chain([".shstrtab"]) {
        name_off.push(strtab.len() as u32);
        strtab.extend_from_slice(s.as_bytes());
        strtab.push(0);
    }
    let mut sec_at = Vec::new();
    for s in secs {
        match &s.data {
            SecData::Own(d) => {
                at = at.next_multiple_of(8);
                sec_at.push(at);
                put(&mut out, at, d);
                at += d.len();
            }
            SecData::InSegment { seg, off, .. } => sec_at.push(seg_at[*seg] + *off as usize),
            SecData::NoBits(_) => sec_at.push(at),
        }
    }
    let strtab_at = at;
    put(&mut out, at, &strtab);
    at += strtab.len();
    let shoff = at.next_multiple_of(8);
    let shnum = secs.len() + 2;
    out.resize(shoff + sh * shnum, 0);

    // ELF header.
    put(&mut out, 0, b"\x7fELF");
    out[4] = if w64 { 2 } else { 1 };
    out[5] = 1;
    out[6] = 1;
    put(&mut out, 16, &2u16.to_le_bytes()); // ET_EXEC
    put(&mut out, 18, &40u16.to_le_bytes()); // EM_ARM
    put(&mut out, 20, &1u32.to_le_bytes());
    word(&mut out, 24, entry);
    let (o_phoff, o_shoff, o_ehsize) = if w64 { (32, 40, 52) } else { (28, 32, 40) };
    word(&mut out, o_phoff, phoff as u64);
    word(&mut out, o_shoff, shoff as u64);
    for (i, v) in [eh, ph, segs.len(), sh, shnum, shnum - 1]
        .iter()
        .enumerate()
    {
        put(&mut out, o_ehsize + 2 * i, &(*v as u16).to_le_bytes());
    }
    // Program headers.
    let mut phdr_at = Vec::new();
    for (i, s) in segs.iter().enumerate() {
        let p = phoff + i * ph;
        phdr_at.push(p);
        put(&mut out, p, &s.p_type.to_le_bytes());
        let filesz = s.data.len() as u64;
        if w64 {
            put(&mut out, p + 4, &7u32.to_le_bytes());
            for (k, v) in [seg_at[i] as u64, s.vaddr, s.paddr, filesz, s.memsz, 8]
                .iter()
                .enumerate()
            {
                put(&mut out, p + 8 + 8 * k, &v.to_le_bytes());
            }
        } else {
            for (k, v) in [seg_at[i] as u64, s.vaddr, s.paddr, filesz, s.memsz, 7, 8]
                .iter()
                .enumerate()
            {
                put(&mut out, p + 4 + 4 * k, &(*v as u32).to_le_bytes());
            }
        }
    }
    // Section headers: null, the given ones, .shstrtab.
    let mut shdr_at = vec![shoff];
    let section =
        |out: &mut Vec<u8>, i: usize, name: u32, ty: u32, addr: u64, off: u64, size: u64| {
            let p = shoff + i * sh;
            put(out, p, &name.to_le_bytes());
            put(out, p + 4, &ty.to_le_bytes());
            if w64 {
                put(out, p + 16, &addr.to_le_bytes());
                put(out, p + 24, &off.to_le_bytes());
                put(out, p + 32, &size.to_le_bytes());
            } else {
                put(out, p + 12, &(addr as u32).to_le_bytes());
                put(out, p + 16, &(off as u32).to_le_bytes());
                put(out, p + 20, &(size as u32).to_le_bytes());
            }
            p
        };
    for (i, s) in secs.iter().enumerate() {
        let (ty, size) = match &s.data {
            SecData::Own(d) => (1, d.len() as u64),
            SecData::InSegment { len, .. } => (1, *len),
            SecData::NoBits(n) => (SHT_NOBITS, *n),
        };
        let p = section(
            &mut out,
            i + 1,
            name_off[i],
            ty,
            s.addr,
            sec_at[i] as u64,
            size,
        );
        shdr_at.push(p);
    }
    let p = section(
        &mut out,
        shnum - 1,
        name_off[secs.len()],
        3,
        0,
        strtab_at as u64,
        strtab.len() as u64,
    );
    shdr_at.push(p);
    Image {
        bytes: out,
        phdr_at,
        seg_at,
        shdr_at,
        sec_at,
    }
}

/// The rpmsg table the simulator uses: a `vdev0buffer` carveout and a vdev with 2 vrings.
fn rsc_table() -> Vec<u8> {
    let mut buf = vec![0u8; 256];
    let mut w = RscTableWriter::new(&mut buf, 2).unwrap();
    let mut name = [0u8; 32];
    name[..11].copy_from_slice(b"vdev0buffer");
    w.add_carveout(&FwRscCarveout {
        da: Le32::new(0xA004_3000),
        pa: Le32::new(0xA004_3000),
        len: Le32::new(0x4_0000),
        name,
        ..Default::default()
    })
    .unwrap();
    let ring = |da| FwRscVdevVring {
        da: Le32::new(da),
        align: Le32::new(4096),
        num: Le32::new(256),
        notifyid: Le32::new(1),
        pa: Le32::new(0),
    };
    w.add_vdev(
        &FwRscVdev {
            id: Le32::new(7),
            dfeatures: Le32::new(1 | 1 << 29),
            ..Default::default()
        },
        &[ring(0xA000_1000), ring(0xA002_2000)],
        &[],
    )
    .unwrap();
    let n = w.finish();
    buf.truncate(n);
    buf
}

/// A firmware: code at 0x0 (with .bss past its file bytes), data at 0xA000_0000 whose
/// first bytes are the resource table.
fn firmware(class: ElfClass) -> Image {
    let table = rsc_table();
    let mut data = table.clone();
    data.extend_from_slice(b"initialised data");
    let code: Vec<u8> = (0..100u8).collect();
    build(
        class,
        0x40,
        &[
            Seg::load(0, &code, 0x200),
            Seg {
                p_type: 4, // PT_NOTE: not loaded
                paddr: 0x5000,
                vaddr: 0x5000,
                data: vec![9; 8],
                memsz: 8,
            },
            Seg::load(0xA000_0000, &data, data.len() as u64),
            Seg::load(0xB000_0000, &[], 0), // memsz 0: skipped
        ],
        &[
            Sec {
                name: ".text",
                addr: 0,
                data: SecData::InSegment {
                    seg: 0,
                    off: 0,
                    len: 100,
                },
            },
            Sec {
                name: ".resource_table",
                addr: 0xA000_0000,
                data: SecData::InSegment {
                    seg: 2,
                    off: 0,
                    len: table.len() as u64,
                },
            },
            Sec {
                name: ".bss",
                addr: 100,
                data: SecData::NoBits(0x200 - 100),
            },
        ],
    )
}

struct Mem {
    itcm: Vec<u8>,
    ddr: Vec<u8>,
}

impl Mem {
    fn new() -> Self {
        Mem {
            itcm: vec![0xEE; 0x1000],
            ddr: vec![0xEE; 0x1000],
        }
    }
    fn load(&mut self, elf: &Elf<'_>) -> Result<intercore_wire::elf::LoadReport, WireError> {
        let mut regions = [
            Region {
                da: 0,
                mem: &mut self.itcm,
            },
            Region {
                da: 0xA000_0000,
                mem: &mut self.ddr,
            },
        ];
        elf.load(&mut regions[..])
    }
}

fn bad_value(e: WireError) -> (&'static str, usize, u64) {
    match e {
        WireError::BadValue {
            what,
            offset,
            value,
        } => (what, offset, value),
        other => panic!("expected BadValue, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------

/// remoteproc_elf_loader.c, both classes: the header gives the class and the entry point
/// (`rproc_elf_get_boot_addr`); PT_LOAD segments with memsz > 0 are loaded at p_paddr,
/// their file bytes copied and the rest up to memsz zero-filled (`rproc_elf_load_segments`);
/// other segment types and memsz == 0 are skipped; `.resource_table` is found through the
/// section headers and shstrtab (`find_table`) and lies in a loaded segment, where
/// `rproc_elf_find_loaded_rsc_table` finds it at sh_addr.
#[test]
fn loads_elf32_and_elf64_like_the_kernel() {
    for class in [ElfClass::Elf32, ElfClass::Elf64] {
        let img = firmware(class);
        let elf = Elf::parse(&img.bytes).unwrap();
        assert_eq!(elf.class(), class);
        assert_eq!(elf.entry(), 0x40);
        assert_eq!(elf.machine(), 40);
        let segs: Vec<_> = elf.segments().map(Result::unwrap).collect();
        assert_eq!(segs.len(), 2, "PT_NOTE and memsz 0 are not loaded");
        assert_eq!(segs[0].da(), 0);
        assert_eq!(segs[1].da(), 0xA000_0000);

        let mut mem = Mem::new();
        let report = mem.load(&elf).unwrap();
        assert_eq!(report.segments, 2);
        assert_eq!(report.zeroed, 0x200 - 100);
        assert!(
            mem.itcm[..100]
                .iter()
                .enumerate()
                .all(|(i, &b)| b == i as u8)
        );
        assert!(
            mem.itcm[100..0x200].iter().all(|&b| b == 0),
            "zero-filled past filesz"
        );
        assert!(
            mem.itcm[0x200..].iter().all(|&b| b == 0xEE),
            "nothing past memsz"
        );
        let table = rsc_table();
        assert_eq!(&mem.ddr[..table.len()], &table[..]);

        let rsc = elf.resource_table().unwrap().unwrap();
        assert_eq!(rsc.section.addr, 0xA000_0000);
        assert_eq!(rsc.table.bytes(), &table[..]);
        assert_eq!(rsc.loaded_in.unwrap().paddr, 0xA000_0000);
        let v = rsc.table.find_vdev(7).unwrap().unwrap();
        assert_eq!(v.num_vrings(), 2);
        assert!(matches!(rsc.table.entry(0).unwrap(), Resource::Carveout(_)));
        elf.validate().unwrap();
    }
}

/// rproc_elf_sanity_check: bad magic, an unknown class, big-endian data, a truncated
/// header and no program headers are refused — each error names the offset of the field.
#[test]
fn header_errors_name_the_field() {
    let good = firmware(ElfClass::Elf32).bytes;
    let with = |at: usize, b: &[u8]| {
        let mut v = good.clone();
        v[at..at + b.len()].copy_from_slice(b);
        v
    };
    let e = |v: &[u8]| Elf::parse(v).unwrap_err();
    assert_eq!(bad_value(e(&with(0, b"\x7fELG"))).1, 0);
    assert_eq!(
        bad_value(e(&with(4, &[3]))),
        ("ELF class (EI_CLASS must be 1 or 2)", 4, 3)
    );
    let (what, at, _) = bad_value(e(&with(5, &[2])));
    assert!(what.contains("little-endian"), "{what}");
    assert_eq!(at, 5);
    assert!(matches!(
        e(&good[..40]),
        WireError::Truncated {
            what: "ELF32 header",
            offset: 0,
            need: 52,
            have: 40
        }
    ));
    // e_phnum = 0 at offset 44 in ELF32 ("No loadable segments").
    assert_eq!(bad_value(e(&with(44, &[0, 0]))).1, 44);
    // e_phoff past the end of the file (field at 28).
    assert_eq!(bad_value(e(&with(28, &0xFFFF_0000u32.to_le_bytes()))).1, 28);
    // A program header table that runs off the end of the file.
    let len = good.len() as u32;
    assert!(matches!(
        e(&with(28, &(len - 8).to_le_bytes())),
        WireError::Truncated {
            what: "ELF program header table",
            ..
        }
    ));
    // A wrong e_phentsize (field at 42).
    assert_eq!(bad_value(e(&with(42, &[31, 0]))).1, 42);
    // e_shstrndx past the section table (field at 50).
    assert_eq!(bad_value(e(&with(50, &[99, 0]))).1, 50);
    // e_shoff past the end (field at 32).
    assert_eq!(bad_value(e(&with(32, &0xFFFF_FFF0u32.to_le_bytes()))).1, 32);
    // The same checks in ELF64 name the ELF64 offsets.
    let good64 = firmware(ElfClass::Elf64).bytes;
    let mut v = good64.clone();
    v[56..58].copy_from_slice(&[0, 0]);
    assert_eq!(bad_value(Elf::parse(&v).unwrap_err()).1, 56);
    assert!(matches!(
        Elf::parse(&good64[..63]).unwrap_err(),
        WireError::Truncated {
            what: "ELF64 header",
            ..
        }
    ));
}

/// rproc_elf_load_segments: "bad phdr filesz" (filesz > memsz) and "truncated fw"
/// (offset + filesz past the end of the file) are refused, naming the program header's
/// field or the segment's file offset.
#[test]
fn segment_errors_name_the_offset() {
    for class in [ElfClass::Elf32, ElfClass::Elf64] {
        let img = firmware(class);
        let (o_filesz, o_memsz, o_offset, w) = match class {
            ElfClass::Elf32 => (16, 20, 4, 4),
            ElfClass::Elf64 => (32, 40, 8, 8),
        };
        let set = |at: usize, x: u64| {
            let mut v = img.bytes.clone();
            v[at..at + w].copy_from_slice(&x.to_le_bytes()[..w]);
            v
        };
        // filesz > memsz on segment 0.
        let v = set(img.phdr_at[0] + o_memsz, 50);
        let elf = Elf::parse(&v).unwrap();
        let err = elf.segments().find_map(Result::err).unwrap();
        assert_eq!(
            bad_value(err),
            (
                "PT_LOAD p_filesz greater than p_memsz",
                img.phdr_at[0] + o_filesz,
                100
            )
        );
        assert!(Mem::new().load(&elf).is_err());
        // Contents running past the end of the file.
        let v = set(img.phdr_at[2] + o_filesz, 0x10_0000);
        let v = {
            let mut v = v;
            let at = img.phdr_at[2] + o_memsz;
            v[at..at + w].copy_from_slice(&0x20_0000u64.to_le_bytes()[..w]);
            v
        };
        let elf = Elf::parse(&v).unwrap();
        match elf.segments().find_map(Result::err).unwrap() {
            WireError::Truncated { offset, need, .. } => {
                assert_eq!((offset, need), (img.seg_at[2], 0x10_0000))
            }
            e => panic!("{e:?}"),
        }
        // p_offset past the end of the file names the p_offset field.
        let v = set(img.phdr_at[0] + o_offset, 0xFFFF_FFF0);
        let elf = Elf::parse(&v).unwrap();
        assert_eq!(
            bad_value(elf.segments().find_map(Result::err).unwrap()).1,
            img.phdr_at[0] + o_offset
        );
    }
}

/// rproc_elf_load_segments: a segment whose device range is not memory of the remote
/// core ("bad phdr da") is refused before anything is written — the target is untouched.
#[test]
fn unmapped_device_address_is_refused_before_writing() {
    let img = build(
        ElfClass::Elf32,
        0,
        &[
            Seg::load(0, &[1; 16], 16),
            Seg::load(0xA000_0FF0, &[2; 8], 0x20), // runs past the 4 KiB of "ddr"
        ],
        &[],
    );
    let elf = Elf::parse(&img.bytes).unwrap();
    let mut mem = Mem::new();
    let (what, at, value) = bad_value(mem.load(&elf).unwrap_err());
    assert!(what.contains("not in the target's memory"), "{what}");
    assert_eq!((at, value), (img.phdr_at[1] + 12, 0xA000_0FF0));
    assert!(
        mem.itcm.iter().all(|&b| b == 0xEE),
        "segment 0 was not loaded either"
    );
}

/// find_table: a corrupted table (version 2: "unsupported fw ver") is refused with the
/// file offset of the bad field; a section name pointing outside shstrtab, and a
/// `.resource_table` without file contents, are errors too (the kernel would read past
/// the buffer in the first case).
#[test]
fn resource_table_errors_name_the_file_offset() {
    for class in [ElfClass::Elf32, ElfClass::Elf64] {
        let img = firmware(class);
        let table_at = img.sec_at[1];
        let mut v = img.bytes.clone();
        v[table_at] = 2;
        let elf = Elf::parse(&v).unwrap();
        assert_eq!(
            elf.resource_table().unwrap_err(),
            WireError::BadValue {
                what: "resource table version",
                offset: table_at,
                value: 2
            }
        );
        // An entry offset pointing past the table: named at the offset word's file offset.
        let mut v = img.bytes.clone();
        v[table_at + 16..table_at + 20].copy_from_slice(&0x4000u32.to_le_bytes());
        let e = Elf::parse(&v).unwrap().resource_table().unwrap_err();
        assert_eq!(bad_value(e).1, table_at + 16);
        // sh_name of section 2 out of range.
        let mut v = img.bytes.clone();
        v[img.shdr_at[2]..img.shdr_at[2] + 4].copy_from_slice(&0x7000u32.to_le_bytes());
        let e = Elf::parse(&v).unwrap().resource_table().unwrap_err();
        assert_eq!(bad_value(e).1, img.shdr_at[2]);
        // A NOBITS .resource_table.
        let img2 = build(
            class,
            0,
            &[Seg::load(0, &[0; 4], 4)],
            &[Sec {
                name: ".resource_table",
                addr: 0,
                data: SecData::NoBits(64),
            }],
        );
        let e = Elf::parse(&img2.bytes)
            .unwrap()
            .resource_table()
            .unwrap_err();
        assert_eq!(bad_value(e).1, img2.shdr_at[1] + 4);
    }
}

/// A firmware without `.resource_table` is valid (the kernel boots it with no resources);
/// a table outside every loaded segment is reported (`loaded_in: None`: the kernel's
/// rproc_elf_find_loaded_rsc_table would find nothing to copy the negotiated table to).
#[test]
fn missing_or_unloaded_tables() {
    let img = build(ElfClass::Elf32, 0, &[Seg::load(0, &[0; 4], 4)], &[]);
    assert!(
        Elf::parse(&img.bytes)
            .unwrap()
            .resource_table()
            .unwrap()
            .is_none()
    );
    let img = build(
        ElfClass::Elf64,
        0,
        &[Seg::load(0, &[0; 4], 4)],
        &[Sec {
            name: ".resource_table",
            addr: 0x9000_0000,
            data: SecData::Own(rsc_table()),
        }],
    );
    let rsc = Elf::parse(&img.bytes)
        .unwrap()
        .resource_table()
        .unwrap()
        .unwrap();
    assert!(rsc.loaded_in.is_none());
}

/// ELF extended numbering (gABI): e_shnum == 0 with the count in section 0's sh_size and
/// e_shstrndx == SHN_XINDEX with the index in its sh_link are understood.
#[test]
fn extended_section_numbering() {
    let img = firmware(ElfClass::Elf32);
    let mut v = img.bytes.clone();
    let shnum = u16::from_le_bytes([v[48], v[49]]);
    let shstrndx = u16::from_le_bytes([v[50], v[51]]);
    v[48..50].copy_from_slice(&0u16.to_le_bytes());
    v[50..52].copy_from_slice(&0xFFFFu16.to_le_bytes());
    let sh0 = img.shdr_at[0];
    v[sh0 + 20..sh0 + 24].copy_from_slice(&u32::from(shnum).to_le_bytes());
    v[sh0 + 24..sh0 + 28].copy_from_slice(&u32::from(shstrndx).to_le_bytes());
    let elf = Elf::parse(&v).unwrap();
    assert_eq!(elf.shnum(), shnum as usize);
    assert!(elf.resource_table().unwrap().is_some());
}

/// A real ELF32 executable made by GNU binutils (objcopy + ld -m elf_i386): the table
/// placed in `.resource_table` at 0xA0000000 is found, lies in a loaded segment and loads
/// at its device address. Skipped (with a message) where binutils is not installed, except
/// under CI (`CI` set), which installs it and fails without it.
#[test]
fn binutils_elf32_interop() {
    use std::process::Command;
    let dir = std::env::temp_dir().join(format!("intercore-elf-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let table = rsc_table();
    std::fs::write(dir.join("table.bin"), &table).unwrap();
    let run = |cmd: &mut Command| {
        cmd.current_dir(&dir)
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    };
    let ok = run(Command::new("objcopy").args([
        "-I",
        "binary",
        "-O",
        "elf32-i386",
        "--rename-section",
        ".data=.resource_table,alloc,load,data,contents",
        "table.bin",
        "table.o",
    ])) && run(Command::new("ld").args([
        "-m",
        "elf_i386",
        "--section-start=.resource_table=0xA0000000",
        "-e",
        "0xA0000000",
        "-o",
        "fw.elf",
        "table.o",
    ]));
    if !ok {
        let _ = std::fs::remove_dir_all(&dir);
        // binutils comes with the C compiler the README already asks for (Debian's gcc
        // depends on it) and .ci/run installs it: a missing tool is a failure, never a
        // skip, because this test is the only backing for the README's binutils claim.
        panic!(
            "binutils (objcopy, ld with the elf_i386 emulation) are needed by this test: \
             install them (Debian: apt-get install binutils)"
        );
    }
    let bytes = std::fs::read(dir.join("fw.elf")).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let elf = Elf::parse(&bytes).unwrap();
    assert_eq!(elf.class(), ElfClass::Elf32);
    assert_eq!(elf.entry(), 0xA000_0000);
    let rsc = elf.resource_table().unwrap().unwrap();
    assert_eq!(rsc.section.addr, 0xA000_0000);
    assert_eq!(rsc.table.bytes(), &table[..]);
    assert!(rsc.loaded_in.is_some());
    // GNU ld puts the ELF headers' page in the same segment (at 0x9fff_f000 here).
    let mut ddr = vec![0u8; 0x2_0000];
    let base = 0x9FFF_0000u64;
    let mut regions = [Region {
        da: base,
        mem: &mut ddr,
    }];
    elf.load(&mut regions[..]).unwrap();
    let at = (0xA000_0000 - base) as usize;
    assert_eq!(&ddr[at..at + table.len()], &table[..]);
}

/// Runs every accessor on `bytes`, loading into a small target; must never panic.
fn exercise(bytes: &[u8]) {
    if let Ok(elf) = Elf::parse(bytes) {
        for s in elf.segments() {
            let _ = s;
        }
        for i in 0..elf.shnum().min(64) {
            if let Ok(s) = elf.section_header(i) {
                let _ = elf.section_name(&s);
                let _ = elf.section_data(&s);
            }
        }
        let _ = elf.resource_table();
        let _ = elf.validate();
        let mut a = vec![0u8; 0x400];
        let mut b = vec![0u8; 0x1000];
        let mut regions = [
            Region { da: 0, mem: &mut a },
            Region {
                da: 0xA000_0000,
                mem: &mut b,
            },
        ];
        let _ = elf.load(&mut regions[..]);
        let t: &mut [Region<'_>] = &mut regions;
        let _ = t.region(u64::MAX, usize::MAX);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// Arbitrary bytes (with a valid magic and class half of the time, so the parser gets
    /// past the first checks) never panic the parser or the loader.
    #[test]
    fn arbitrary_bytes_never_panic(mut bytes in proptest::collection::vec(any::<u8>(), 0..600), class in 1u8..3, fix in any::<bool>()) {
        if fix && bytes.len() >= 7 {
            bytes[..4].copy_from_slice(b"\x7fELF");
            bytes[4] = class;
            bytes[5] = 1;
            bytes[6] = 1;
        }
        exercise(&bytes);
    }

    /// Corrupting up to 8 bytes of a valid firmware (either class) gives a valid image or
    /// an error, never a panic; a successful load writes only inside the target.
    #[test]
    fn corrupted_firmware_never_panics(
        elf64 in any::<bool>(),
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
    ) {
        let class = if elf64 { ElfClass::Elf64 } else { ElfClass::Elf32 };
        let mut v = firmware(class).bytes;
        for (pos, val) in edits {
            let n = v.len();
            v[pos % n] = val;
        }
        exercise(&v);
    }
}
