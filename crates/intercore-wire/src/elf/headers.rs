//! The raw ELF header, program-header and section-header layouts and constants (ELF32 and
//! ELF64, little-endian), as `zerocopy` types.

use crate::{Le16, Le32, Le64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// `EI_CLASS` value of a 32-bit image.
pub const ELFCLASS32: u8 = 1;
/// `EI_CLASS` value of a 64-bit image.
pub const ELFCLASS64: u8 = 2;
/// `EI_DATA` value of a little-endian image.
pub const ELFDATA2LSB: u8 = 1;
/// The only `EI_VERSION` / `e_version`.
pub const EV_CURRENT: u8 = 1;
/// Program header type of a loadable segment.
pub const PT_LOAD: u32 = 1;
/// Section type of a section without file contents (`.bss`).
pub const SHT_NOBITS: u32 = 8;
/// `e_phnum` value meaning "the count is in section header 0's `sh_info`".
pub const PN_XNUM: u16 = 0xffff;
/// `e_shstrndx` value meaning "the index is in section header 0's `sh_link`".
pub const SHN_XINDEX: u16 = 0xffff;
/// Name of the section holding the remoteproc resource table.
pub const RESOURCE_TABLE_SECTION: &[u8] = b".resource_table";

/// Machine numbers (`e_machine`) of the cores this project targets, for display.
pub mod machine {
    /// x86-64 (a host binary, e.g. the simulator's).
    pub const X86_64: u16 = 62;
    /// 32-bit Arm (Cortex-R5F, Cortex-M4F).
    pub const ARM: u16 = 40;
    /// AArch64.
    pub const AARCH64: u16 = 183;
    /// TI C6000 DSPs.
    pub const TI_C6000: u16 = 140;
    /// RISC-V.
    pub const RISCV: u16 = 243;
    /// Intel 80386.
    pub const I386: u16 = 3;

    /// A short name for `m`, if it is one of the above.
    pub fn name(m: u16) -> Option<&'static str> {
        Some(match m {
            X86_64 => "x86-64",
            ARM => "arm",
            AARCH64 => "aarch64",
            TI_C6000 => "ti-c6000",
            RISCV => "riscv",
            I386 => "i386",
            _ => return None,
        })
    }
}

/// `Elf32_Ehdr` (52 bytes).
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct Elf32Ehdr {
    /// Magic, class, data encoding, version, OS ABI, padding.
    pub e_ident: [u8; 16],
    /// Object file type.
    pub e_type: Le16,
    /// Machine.
    pub e_machine: Le16,
    /// Version (1).
    pub e_version: Le32,
    /// Entry point.
    pub e_entry: Le32,
    /// File offset of the program header table.
    pub e_phoff: Le32,
    /// File offset of the section header table.
    pub e_shoff: Le32,
    /// Processor flags.
    pub e_flags: Le32,
    /// Size of this header.
    pub e_ehsize: Le16,
    /// Size of one program header.
    pub e_phentsize: Le16,
    /// Number of program headers.
    pub e_phnum: Le16,
    /// Size of one section header.
    pub e_shentsize: Le16,
    /// Number of section headers.
    pub e_shnum: Le16,
    /// Index of the section-name string table.
    pub e_shstrndx: Le16,
}

impl Elf32Ehdr {
    /// The same header with every field widened to the ELF64 layout.
    pub fn widen(&self) -> Elf64Ehdr {
        Elf64Ehdr {
            e_ident: self.e_ident,
            e_type: self.e_type,
            e_machine: self.e_machine,
            e_version: self.e_version,
            e_entry: Le64::new(self.e_entry.get().into()),
            e_phoff: Le64::new(self.e_phoff.get().into()),
            e_shoff: Le64::new(self.e_shoff.get().into()),
            e_flags: self.e_flags,
            e_ehsize: self.e_ehsize,
            e_phentsize: self.e_phentsize,
            e_phnum: self.e_phnum,
            e_shentsize: self.e_shentsize,
            e_shnum: self.e_shnum,
            e_shstrndx: self.e_shstrndx,
        }
    }
}

/// `Elf64_Ehdr` (64 bytes).
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct Elf64Ehdr {
    /// Magic, class, data encoding, version, OS ABI, padding.
    pub e_ident: [u8; 16],
    /// Object file type.
    pub e_type: Le16,
    /// Machine.
    pub e_machine: Le16,
    /// Version (1).
    pub e_version: Le32,
    /// Entry point.
    pub e_entry: Le64,
    /// File offset of the program header table.
    pub e_phoff: Le64,
    /// File offset of the section header table.
    pub e_shoff: Le64,
    /// Processor flags.
    pub e_flags: Le32,
    /// Size of this header.
    pub e_ehsize: Le16,
    /// Size of one program header.
    pub e_phentsize: Le16,
    /// Number of program headers.
    pub e_phnum: Le16,
    /// Size of one section header.
    pub e_shentsize: Le16,
    /// Number of section headers.
    pub e_shnum: Le16,
    /// Index of the section-name string table.
    pub e_shstrndx: Le16,
}

/// `Elf32_Phdr` (32 bytes).
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct Elf32Phdr {
    /// Segment type.
    pub p_type: Le32,
    /// File offset of the contents.
    pub p_offset: Le32,
    /// Virtual address.
    pub p_vaddr: Le32,
    /// Physical (device) address.
    pub p_paddr: Le32,
    /// Bytes in the file.
    pub p_filesz: Le32,
    /// Bytes in memory.
    pub p_memsz: Le32,
    /// `PF_X | PF_W | PF_R`.
    pub p_flags: Le32,
    /// Alignment.
    pub p_align: Le32,
}

/// `Elf64_Phdr` (56 bytes).
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct Elf64Phdr {
    /// Segment type.
    pub p_type: Le32,
    /// `PF_X | PF_W | PF_R`.
    pub p_flags: Le32,
    /// File offset of the contents.
    pub p_offset: Le64,
    /// Virtual address.
    pub p_vaddr: Le64,
    /// Physical (device) address.
    pub p_paddr: Le64,
    /// Bytes in the file.
    pub p_filesz: Le64,
    /// Bytes in memory.
    pub p_memsz: Le64,
    /// Alignment.
    pub p_align: Le64,
}

/// `Elf32_Shdr` (40 bytes).
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct Elf32Shdr {
    /// Offset of the name in the section-name string table.
    pub sh_name: Le32,
    /// Section type.
    pub sh_type: Le32,
    /// Flags.
    pub sh_flags: Le32,
    /// Address in memory.
    pub sh_addr: Le32,
    /// File offset of the contents.
    pub sh_offset: Le32,
    /// Size.
    pub sh_size: Le32,
    /// Linked section.
    pub sh_link: Le32,
    /// Extra information.
    pub sh_info: Le32,
    /// Alignment.
    pub sh_addralign: Le32,
    /// Entry size of a table section.
    pub sh_entsize: Le32,
}

/// `Elf64_Shdr` (64 bytes).
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct Elf64Shdr {
    /// Offset of the name in the section-name string table.
    pub sh_name: Le32,
    /// Section type.
    pub sh_type: Le32,
    /// Flags.
    pub sh_flags: Le64,
    /// Address in memory.
    pub sh_addr: Le64,
    /// File offset of the contents.
    pub sh_offset: Le64,
    /// Size.
    pub sh_size: Le64,
    /// Linked section.
    pub sh_link: Le32,
    /// Extra information.
    pub sh_info: Le32,
    /// Alignment.
    pub sh_addralign: Le64,
    /// Entry size of a table section.
    pub sh_entsize: Le64,
}

/// 32- or 64-bit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElfClass {
    /// ELF32 (Cortex-R/M firmware).
    Elf32,
    /// ELF64.
    Elf64,
}

impl ElfClass {
    pub(super) fn ehdr_size(self) -> usize {
        match self {
            ElfClass::Elf32 => 52,
            ElfClass::Elf64 => 64,
        }
    }
    pub(super) fn phdr_size(self) -> usize {
        match self {
            ElfClass::Elf32 => 32,
            ElfClass::Elf64 => 56,
        }
    }
    pub(super) fn shdr_size(self) -> usize {
        match self {
            ElfClass::Elf32 => 40,
            ElfClass::Elf64 => 64,
        }
    }
    /// `32` or `64`.
    pub fn bits(self) -> u32 {
        match self {
            ElfClass::Elf32 => 32,
            ElfClass::Elf64 => 64,
        }
    }
}
