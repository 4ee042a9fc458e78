//! Firmware ELF images, as Linux's remoteproc ELF loader reads them
//! (`drivers/remoteproc/remoteproc_elf_loader.c`).
//!
//! * ELF32 and ELF64, little-endian only (the kernel loads only firmware of the host's
//!   endianness, and every supported host here is little-endian).
//! * Every `PT_LOAD` segment with `p_memsz > 0` is loaded at `p_paddr` — the address the
//!   *remote* core sees (its device address), not the virtual address — with its
//!   `p_filesz` bytes copied from the file and the rest up to `p_memsz` zero-filled;
//!   `p_filesz > p_memsz` is invalid.
//! * The resource table is the section named `.resource_table` (found through the section
//!   headers and the section-name string table); after loading, the kernel finds the
//!   firmware's own copy at the section's `sh_addr` and writes the negotiated values back
//!   into it, so the section must lie inside a loaded segment.
//! * The entry point (`e_entry`) is the boot address.
//!
//! Parsing is checked throughout and stricter than the kernel, which trusts several fields
//! (section-name offsets, `e_shstrndx`, the section table's extent): every malformed input
//! gives a [`WireError`] naming the offset in the file of the field or structure at fault.
//! Extended numbering (`e_phnum == PN_XNUM`, `e_shnum == 0`, `e_shstrndx == SHN_XINDEX`,
//! with the real values in section header 0) is understood.
//!
//! Loading writes through a [`LoadTarget`], which maps device addresses to byte buffers
//! and refuses ranges it does not hold; nothing is written for a segment unless the
//! whole `p_memsz` range is available.

use crate::WireError;
use crate::error::read_at;
use crate::rsc::ResourceTable;

mod headers;
pub use headers::*;

/// A program header, widened to 64 bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProgramHeader {
    /// Index in the program header table.
    pub index: usize,
    /// File offset of this header.
    pub header_offset: usize,
    /// `p_type`.
    pub p_type: u32,
    /// `p_flags`.
    pub flags: u32,
    /// `p_offset`.
    pub offset: u64,
    /// `p_vaddr`.
    pub vaddr: u64,
    /// `p_paddr`: the device address remoteproc loads the segment at.
    pub paddr: u64,
    /// `p_filesz`.
    pub filesz: u64,
    /// `p_memsz`.
    pub memsz: u64,
}

/// A loadable segment (`PT_LOAD`, `p_memsz > 0`), checked: its file bytes are inside the
/// image, `filesz <= memsz`, and `paddr + memsz` does not overflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment<'a> {
    /// The header it came from.
    pub header: ProgramHeader,
    /// The `p_filesz` bytes from the file.
    pub data: &'a [u8],
}

impl Segment<'_> {
    /// Device address of the first byte.
    pub fn da(&self) -> u64 {
        self.header.paddr
    }
    /// Bytes occupied in device memory.
    pub fn memsz(&self) -> u64 {
        self.header.memsz
    }
    /// Whether device range `da..da+len` lies inside this segment's memory image.
    pub fn contains(&self, da: u64, len: u64) -> bool {
        let end = self.da().checked_add(self.memsz());
        da >= self.da()
            && da
                .checked_add(len)
                .zip(end)
                .is_some_and(|(e, seg_end)| e <= seg_end)
    }
}

/// A section header, widened to 64 bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SectionHeader {
    /// Index in the section header table.
    pub index: usize,
    /// File offset of this header.
    pub header_offset: usize,
    /// `sh_name`.
    pub name_offset: u32,
    /// `sh_type`.
    pub sh_type: u32,
    /// `sh_flags`.
    pub flags: u64,
    /// `sh_addr`.
    pub addr: u64,
    /// `sh_offset`.
    pub offset: u64,
    /// `sh_size`.
    pub size: u64,
    /// `sh_link`.
    pub link: u32,
    /// `sh_info`.
    pub info: u32,
}

/// The firmware's resource table, found in its `.resource_table` section and validated.
#[derive(Debug, Clone, Copy)]
pub struct RscSection<'a> {
    /// The section's header.
    pub section: SectionHeader,
    /// The parsed table over the section's bytes.
    pub table: ResourceTable<'a>,
    /// The loadable segment the section lies in — where the kernel writes the negotiated
    /// values back (`None`: the kernel would not find the loaded copy, and the firmware
    /// would never see the host's vring addresses or status).
    pub loaded_in: Option<ProgramHeader>,
}

/// Where an [`Elf::load`] puts segments: device address → writable bytes.
pub trait LoadTarget {
    /// The `len` bytes of target memory starting at device address `da`, or `None` unless
    /// the whole range is mapped.
    fn region(&mut self, da: u64, len: usize) -> Option<&mut [u8]>;

    /// Writes one segment: `data` at device address `da`, then zeros up to `memsz` bytes;
    /// `false` unless the whole `da..da+memsz` is mapped. The default fills
    /// [`region`](Self::region) with `copy_from_slice` and `fill(0)`, which may compile to
    /// `memcpy`/`memset` — unaligned stores and `DC ZVA`, both of which fault on arm64
    /// Device memory (a UIO or `/dev/mem` map): a target over such memory overrides this
    /// with aligned stores (`intercore::AlignedLoad` does).
    fn load_segment(&mut self, da: u64, data: &[u8], memsz: usize) -> bool {
        match self.region(da, memsz) {
            Some(dst) if dst.len() >= data.len() => {
                let (file, rest) = dst.split_at_mut(data.len());
                file.copy_from_slice(data);
                rest.fill(0);
                true
            }
            _ => false,
        }
    }
}

/// One block of device memory for the slice implementation of [`LoadTarget`].
#[derive(Debug)]
pub struct Region<'m> {
    /// Device address of `mem[0]`.
    pub da: u64,
    /// The memory.
    pub mem: &'m mut [u8],
}

impl LoadTarget for [Region<'_>] {
    fn region(&mut self, da: u64, len: usize) -> Option<&mut [u8]> {
        self.iter_mut().find_map(|r| {
            let start = usize::try_from(da.checked_sub(r.da)?).ok()?;
            let end = start.checked_add(len)?;
            r.mem.get_mut(start..end)
        })
    }
}

/// What [`Elf::load`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// Segments loaded.
    pub segments: usize,
    /// Bytes copied from the file.
    pub copied: u64,
    /// Bytes zero-filled (`memsz - filesz`, summed).
    pub zeroed: u64,
}

/// A checked view of a little-endian ELF32/ELF64 image.
#[derive(Debug, Clone, Copy)]
pub struct Elf<'a> {
    bytes: &'a [u8],
    class: ElfClass,
    machine: u16,
    e_type: u16,
    entry: u64,
    phoff: usize,
    phnum: usize,
    shoff: usize,
    shnum: usize,
    shstrndx: usize,
}

fn bad(what: &'static str, offset: usize, value: u64) -> WireError {
    WireError::BadValue {
        what,
        offset,
        value,
    }
}

/// Checks that a table of `n` entries of `size` bytes at file offset `off` (read from the
/// header field at `field_at`) lies inside a file of `len` bytes; returns `off`.
fn table_at(
    field: &'static str,
    field_at: usize,
    table: &'static str,
    len: usize,
    off: u64,
    n: usize,
    size: usize,
) -> Result<usize, WireError> {
    let o = match usize::try_from(off) {
        Ok(o) if o <= len => o,
        _ => return Err(bad(field, field_at, off)),
    };
    let need = n.saturating_mul(size);
    if o.checked_add(need).is_none_or(|e| e > len) {
        return Err(WireError::Truncated {
            what: table,
            offset: o,
            need,
            have: len - o,
        });
    }
    Ok(o)
}

impl<'a> Elf<'a> {
    /// Checks the ELF header and that the program and section header tables lie inside
    /// the image (in the order the kernel's `rproc_elf_sanity_check` does, and more).
    pub fn parse(bytes: &'a [u8]) -> Result<Self, WireError> {
        let ident: [u8; 16] = read_at(bytes, 0, "ELF identification")?;
        if ident[..4] != *b"\x7fELF" {
            return Err(bad(
                "ELF magic (not an ELF file)",
                0,
                u32::from_be_bytes([ident[0], ident[1], ident[2], ident[3]]) as u64,
            ));
        }
        let class = match ident[4] {
            ELFCLASS32 => ElfClass::Elf32,
            ELFCLASS64 => ElfClass::Elf64,
            c => return Err(bad("ELF class (EI_CLASS must be 1 or 2)", 4, c as u64)),
        };
        if ident[5] != ELFDATA2LSB {
            return Err(bad(
                "ELF data encoding (EI_DATA: only little-endian firmware is supported)",
                5,
                ident[5] as u64,
            ));
        }
        if ident[6] != EV_CURRENT {
            return Err(bad("ELF version (EI_VERSION)", 6, ident[6] as u64));
        }
        let h: Elf64Ehdr = match class {
            ElfClass::Elf32 => read_at::<Elf32Ehdr>(bytes, 0, "ELF32 header")?.widen(),
            ElfClass::Elf64 => read_at(bytes, 0, "ELF64 header")?,
        };
        let (e_type, machine, version, entry) = (
            h.e_type.get(),
            h.e_machine.get(),
            h.e_version.get(),
            h.e_entry.get(),
        );
        let (phoff, shoff, ehsize) = (h.e_phoff.get(), h.e_shoff.get(), h.e_ehsize.get());
        let (phentsize, phnum) = (h.e_phentsize.get(), h.e_phnum.get());
        let (shentsize, shnum, shstrndx) =
            (h.e_shentsize.get(), h.e_shnum.get(), h.e_shstrndx.get());
        // Offsets of the header fields, for the errors.
        let (o_phoff, o_shoff, o_ehsize) = match class {
            ElfClass::Elf32 => (28, 32, 40),
            ElfClass::Elf64 => (32, 40, 52),
        };
        let (o_phentsize, o_phnum, o_shentsize, o_shnum, o_shstrndx) = (
            o_ehsize + 2,
            o_ehsize + 4,
            o_ehsize + 6,
            o_ehsize + 8,
            o_ehsize + 10,
        );
        if version != EV_CURRENT as u32 {
            return Err(bad("ELF e_version", 20, version as u64));
        }
        if ehsize as usize != class.ehdr_size() {
            return Err(bad("ELF e_ehsize", o_ehsize, ehsize as u64));
        }
        let len = bytes.len();

        // Section headers first: extended numbering keeps the real counts in header 0.
        let mut shnum = shnum as usize;
        let mut shstrndx = shstrndx as usize;
        let mut phnum_ext = None;
        let shoff_us = if shoff == 0 {
            if shnum != 0 {
                return Err(bad(
                    "ELF e_shnum without a section table (e_shoff is 0)",
                    o_shnum,
                    shnum as u64,
                ));
            }
            0
        } else {
            if shentsize as usize != class.shdr_size() {
                return Err(bad("ELF e_shentsize", o_shentsize, shentsize as u64));
            }
            const SHOFF: &str = "ELF e_shoff (past the end of the file)";
            let at = table_at(
                SHOFF,
                o_shoff,
                "ELF section header 0",
                len,
                shoff,
                1,
                class.shdr_size(),
            )?;
            let sh0 = Self::read_shdr(bytes, class, at, 0)?;
            if shnum == 0 {
                shnum = usize::try_from(sh0.size).unwrap_or(usize::MAX);
            }
            if shstrndx == SHN_XINDEX as usize {
                shstrndx = sh0.link as usize;
            }
            if phnum == PN_XNUM {
                phnum_ext = Some(sh0.info as usize);
            }
            table_at(
                SHOFF,
                o_shoff,
                "ELF section header table",
                len,
                shoff,
                shnum,
                class.shdr_size(),
            )?
        };
        if shnum > 0 && shstrndx >= shnum {
            return Err(bad(
                "ELF e_shstrndx (past the section table)",
                o_shstrndx,
                shstrndx as u64,
            ));
        }

        let phnum = phnum_ext.unwrap_or(phnum as usize);
        if phnum == 0 {
            return Err(bad("ELF e_phnum (no loadable segments)", o_phnum, 0));
        }
        if phentsize as usize != class.phdr_size() {
            return Err(bad("ELF e_phentsize", o_phentsize, phentsize as u64));
        }
        let phoff_us = table_at(
            "ELF e_phoff (past the end of the file)",
            o_phoff,
            "ELF program header table",
            len,
            phoff,
            phnum,
            class.phdr_size(),
        )?;
        Ok(Self {
            bytes,
            class,
            machine,
            e_type,
            entry,
            phoff: phoff_us,
            phnum,
            shoff: shoff_us,
            shnum,
            shstrndx,
        })
    }

    fn read_shdr(
        bytes: &[u8],
        class: ElfClass,
        at: usize,
        index: usize,
    ) -> Result<SectionHeader, WireError> {
        Ok(match class {
            ElfClass::Elf32 => {
                let s: Elf32Shdr = read_at(bytes, at, "ELF32 section header")?;
                SectionHeader {
                    index,
                    header_offset: at,
                    name_offset: s.sh_name.get(),
                    sh_type: s.sh_type.get(),
                    flags: s.sh_flags.get() as u64,
                    addr: s.sh_addr.get() as u64,
                    offset: s.sh_offset.get() as u64,
                    size: s.sh_size.get() as u64,
                    link: s.sh_link.get(),
                    info: s.sh_info.get(),
                }
            }
            ElfClass::Elf64 => {
                let s: Elf64Shdr = read_at(bytes, at, "ELF64 section header")?;
                SectionHeader {
                    index,
                    header_offset: at,
                    name_offset: s.sh_name.get(),
                    sh_type: s.sh_type.get(),
                    flags: s.sh_flags.get(),
                    addr: s.sh_addr.get(),
                    offset: s.sh_offset.get(),
                    size: s.sh_size.get(),
                    link: s.sh_link.get(),
                    info: s.sh_info.get(),
                }
            }
        })
    }

    /// The whole image.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }
    /// ELF32 or ELF64.
    pub fn class(&self) -> ElfClass {
        self.class
    }
    /// `e_machine`.
    pub fn machine(&self) -> u16 {
        self.machine
    }
    /// `e_type` (2: executable, 3: shared object / position-independent executable).
    pub fn e_type(&self) -> u16 {
        self.e_type
    }
    /// The entry point: where the remote core starts (`rproc_elf_get_boot_addr`).
    pub fn entry(&self) -> u64 {
        self.entry
    }
    /// Number of program headers.
    pub fn phnum(&self) -> usize {
        self.phnum
    }
    /// Number of section headers.
    pub fn shnum(&self) -> usize {
        self.shnum
    }

    /// Program header `i` (any type), unchecked beyond being inside the table.
    pub fn program_header(&self, i: usize) -> Result<ProgramHeader, WireError> {
        if i >= self.phnum {
            return Err(bad("program header index", self.phoff, i as u64));
        }
        let at = self.phoff + i * self.class.phdr_size();
        Ok(match self.class {
            ElfClass::Elf32 => {
                let p: Elf32Phdr = read_at(self.bytes, at, "ELF32 program header")?;
                ProgramHeader {
                    index: i,
                    header_offset: at,
                    p_type: p.p_type.get(),
                    flags: p.p_flags.get(),
                    offset: p.p_offset.get() as u64,
                    vaddr: p.p_vaddr.get() as u64,
                    paddr: p.p_paddr.get() as u64,
                    filesz: p.p_filesz.get() as u64,
                    memsz: p.p_memsz.get() as u64,
                }
            }
            ElfClass::Elf64 => {
                let p: Elf64Phdr = read_at(self.bytes, at, "ELF64 program header")?;
                ProgramHeader {
                    index: i,
                    header_offset: at,
                    p_type: p.p_type.get(),
                    flags: p.p_flags.get(),
                    offset: p.p_offset.get(),
                    vaddr: p.p_vaddr.get(),
                    paddr: p.p_paddr.get(),
                    filesz: p.p_filesz.get(),
                    memsz: p.p_memsz.get(),
                }
            }
        })
    }

    /// Checks a `PT_LOAD` header with `memsz > 0` and returns its segment.
    fn segment_of(&self, h: ProgramHeader) -> Result<Segment<'a>, WireError> {
        // Field offsets inside the header, for the errors.
        let (o_offset, o_paddr, o_filesz, o_memsz) = match self.class {
            ElfClass::Elf32 => (4, 12, 16, 20),
            ElfClass::Elf64 => (8, 24, 32, 40),
        };
        let at = h.header_offset;
        if h.filesz > h.memsz {
            return Err(bad(
                "PT_LOAD p_filesz greater than p_memsz",
                at + o_filesz,
                h.filesz,
            ));
        }
        if usize::try_from(h.memsz).is_err() {
            return Err(bad(
                "PT_LOAD p_memsz (does not fit in memory)",
                at + o_memsz,
                h.memsz,
            ));
        }
        if h.paddr.checked_add(h.memsz).is_none() {
            return Err(bad(
                "PT_LOAD p_paddr + p_memsz overflows",
                at + o_paddr,
                h.paddr,
            ));
        }
        let len = self.bytes.len();
        let start = match usize::try_from(h.offset) {
            Ok(s) if s <= len => s,
            _ => {
                return Err(bad(
                    "PT_LOAD p_offset (past the end of the file)",
                    at + o_offset,
                    h.offset,
                ));
            }
        };
        // filesz <= memsz, which fits in usize (checked above).
        let filesz = h.filesz as usize;
        if start.checked_add(filesz).is_none_or(|e| e > len) {
            return Err(WireError::Truncated {
                what: "PT_LOAD segment contents (p_offset + p_filesz past the end of the file)",
                offset: start,
                need: filesz,
                have: len - start,
            });
        }
        let data = &self.bytes[start..start + filesz];
        Ok(Segment { header: h, data })
    }

    /// The loadable segments (`PT_LOAD` with `p_memsz > 0`), each checked.
    pub fn segments(&self) -> impl Iterator<Item = Result<Segment<'a>, WireError>> + '_ {
        (0..self.phnum).filter_map(move |i| match self.program_header(i) {
            Err(e) => Some(Err(e)),
            Ok(h) if h.p_type != PT_LOAD || h.memsz == 0 => None,
            Ok(h) => Some(self.segment_of(h)),
        })
    }

    /// Section header `i`.
    pub fn section_header(&self, i: usize) -> Result<SectionHeader, WireError> {
        if i >= self.shnum {
            return Err(bad("section header index", self.shoff, i as u64));
        }
        Self::read_shdr(
            self.bytes,
            self.class,
            self.shoff + i * self.class.shdr_size(),
            i,
        )
    }

    /// The contents of a section that has file contents, checked to lie inside the file.
    pub fn section_data(&self, s: &SectionHeader) -> Result<&'a [u8], WireError> {
        let o_offset = match self.class {
            ElfClass::Elf32 => 16,
            ElfClass::Elf64 => 24,
        };
        if s.sh_type == SHT_NOBITS {
            return Err(bad(
                "section type SHT_NOBITS (no contents in the file)",
                s.header_offset + 4,
                s.sh_type as u64,
            ));
        }
        let len = self.bytes.len();
        let start = match usize::try_from(s.offset) {
            Ok(st) if st <= len => st,
            _ => {
                return Err(bad(
                    "sh_offset (past the end of the file)",
                    s.header_offset + o_offset,
                    s.offset,
                ));
            }
        };
        match usize::try_from(s.size) {
            Ok(size) if start.checked_add(size).is_some_and(|e| e <= len) => {
                Ok(&self.bytes[start..start + size])
            }
            _ => Err(WireError::Truncated {
                what: "section contents (sh_offset + sh_size past the end of the file)",
                offset: start,
                need: usize::try_from(s.size).unwrap_or(usize::MAX),
                have: len - start,
            }),
        }
    }

    /// The name of section `s`, from the section-name string table.
    pub fn section_name(&self, s: &SectionHeader) -> Result<&'a [u8], WireError> {
        if self.shnum == 0 {
            return Err(bad("section name without a section table", 0, 0));
        }
        let strtab_hdr = self.section_header(self.shstrndx)?;
        let strtab = self.section_data(&strtab_hdr)?;
        let tail = strtab.get(s.name_offset as usize..).ok_or(bad(
            "sh_name (past the end of the section-name table)",
            s.header_offset,
            s.name_offset as u64,
        ))?;
        let nul = tail.iter().position(|&b| b == 0).ok_or(bad(
            "sh_name (not NUL-terminated inside the section-name table)",
            s.header_offset,
            s.name_offset as u64,
        ))?;
        Ok(&tail[..nul])
    }

    /// The first section named `name`.
    pub fn section_by_name(&self, name: &[u8]) -> Result<Option<SectionHeader>, WireError> {
        for i in 0..self.shnum {
            let s = self.section_header(i)?;
            if i == 0 && s.sh_type == 0 {
                continue; // SHN_UNDEF
            }
            if self.section_name(&s)? == name {
                return Ok(Some(s));
            }
        }
        Ok(None)
    }

    /// The `.resource_table` section, its table validated with
    /// [`ResourceTable::validate`] (`None`: the firmware has no resource table, which the
    /// kernel accepts — the core then gets no vdevs or carveouts).
    pub fn resource_table(&self) -> Result<Option<RscSection<'a>>, WireError> {
        let Some(section) = self.section_by_name(RESOURCE_TABLE_SECTION)? else {
            return Ok(None);
        };
        let data = self.section_data(&section)?;
        let table =
            ResourceTable::validate(data).map_err(|e| rebase(e, section.offset as usize))?;
        let mut loaded_in = None;
        for seg in self.segments() {
            let seg = seg?;
            if seg.contains(section.addr, section.size) {
                loaded_in = Some(seg.header);
                break;
            }
        }
        Ok(Some(RscSection {
            section,
            table,
            loaded_in,
        }))
    }

    /// Checks every loadable segment and the resource table, without loading anything.
    pub fn validate(&self) -> Result<(), WireError> {
        for s in self.segments() {
            s?;
        }
        self.resource_table().map(|_| ())
    }

    /// Loads every `PT_LOAD` segment with `p_memsz > 0` at its `p_paddr` in `target`: copies
    /// `p_filesz` bytes and zero-fills the rest. Every segment is checked (and its whole
    /// device range looked up) before the first byte is written, so a bad image leaves
    /// the target untouched.
    pub fn load<T: LoadTarget + ?Sized>(&self, target: &mut T) -> Result<LoadReport, WireError> {
        for s in self.segments() {
            let s = s?;
            if target.region(s.da(), s.memsz() as usize).is_none() {
                return Err(self.unmapped(&s));
            }
        }
        let mut report = LoadReport::default();
        for s in self.segments() {
            let s = s?;
            let memsz = s.memsz() as usize;
            if !target.load_segment(s.da(), s.data, memsz) {
                return Err(self.unmapped(&s));
            }
            report.segments += 1;
            report.copied += s.data.len() as u64;
            report.zeroed += (memsz - s.data.len()) as u64;
        }
        Ok(report)
    }

    fn unmapped(&self, s: &Segment<'_>) -> WireError {
        let o_paddr = match self.class {
            ElfClass::Elf32 => 12,
            ElfClass::Elf64 => 24,
        };
        bad(
            "PT_LOAD p_paddr (device range p_paddr..p_paddr+p_memsz is not in the target's memory)",
            s.header.header_offset + o_paddr,
            s.da(),
        )
    }
}

/// Makes a table-relative error offset file-relative.
fn rebase(e: WireError, base: usize) -> WireError {
    match e {
        WireError::Truncated {
            what,
            offset,
            need,
            have,
        } => WireError::Truncated {
            what,
            offset: offset.saturating_add(base),
            need,
            have,
        },
        WireError::BadValue {
            what,
            offset,
            value,
        } => WireError::BadValue {
            what,
            offset: offset.saturating_add(base),
            value,
        },
        e => e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The header structs have the sizes of `<elf.h>`'s `Elf{32,64}_{Ehdr,Phdr,Shdr}`.
    #[test]
    fn struct_sizes_match_elf_h() {
        assert_eq!(core::mem::size_of::<Elf32Ehdr>(), 52);
        assert_eq!(core::mem::size_of::<Elf64Ehdr>(), 64);
        assert_eq!(core::mem::size_of::<Elf32Phdr>(), 32);
        assert_eq!(core::mem::size_of::<Elf64Phdr>(), 56);
        assert_eq!(core::mem::size_of::<Elf32Shdr>(), 40);
        assert_eq!(core::mem::size_of::<Elf64Shdr>(), 64);
    }

    /// The slice target finds a range only when one region holds all of it.
    #[test]
    fn region_slice_target_bounds() {
        let mut a = [0u8; 16];
        let mut b = [0u8; 16];
        let mut regions = [
            Region {
                da: 0x1000,
                mem: &mut a,
            },
            Region {
                da: 0x2000,
                mem: &mut b,
            },
        ];
        let t: &mut [Region<'_>] = &mut regions;
        assert_eq!(t.region(0x1000, 16).map(|r| r.len()), Some(16));
        assert!(t.region(0x1001, 16).is_none());
        assert!(t.region(0x0fff, 1).is_none());
        assert_eq!(t.region(0x200f, 1).map(|r| r.len()), Some(1));
        assert!(t.region(u64::MAX, 2).is_none());
        assert_eq!(t.region(0x2010, 0).map(|r| r.len()), Some(0));
    }
}
