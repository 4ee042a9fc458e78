//! Which instruction set a remote core runs, from its device-tree `compatible`, and whether
//! a firmware ELF declares it (`e_machine`, `EI_CLASS`).
//!
//! The kernel's ELF loader (`remoteproc_elf_loader.c`, `rproc_elf_sanity_check`) checks
//! only the class against the platform's expectation, not the machine: an x86-64 binary
//! with a `.resource_table` boots garbage on an R5F. So `board check` and `intercore rproc
//! load` compare the file with the core the device tree describes.

use intercore::wire::elf::{Elf, ElfClass, machine};
use intercore_linux::remoteproc::Remoteproc;
use std::fmt;
use std::path::{Path, PathBuf};

/// The instruction set a remote core's firmware must be built for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoreIsa {
    /// The core, for messages (`Cortex-R5F`).
    pub core: &'static str,
    /// The `e_machine` its firmware has.
    pub machine: u16,
    /// The ELF class its firmware has.
    pub class: ElfClass,
    /// The `compatible` string it was recognised by.
    pub compatible: String,
}

/// `compatible` strings of remote-core nodes, the core, and its firmware's machine and class
/// (all 32-bit cores: ELF32). From the kernel's bindings,
/// `Documentation/devicetree/bindings/remoteproc/`: `ti,k3-r5f-rproc.yaml` (the R5F core
/// nodes), `ti,k3-m4f-rproc.yaml`, `xlnx,zynqmp-r5fss.yaml` (the core nodes),
/// `ti,k3-dsp-rproc.yaml` (C66x; the C7x's ELF machine is not checked here: unknown),
/// `fsl,imx-rproc.yaml`, `st,stm32-rproc.yaml`. Cortex-R/M firmware is `EM_ARM`; TI C6000
/// DSP firmware is `EM_TI_C6000`.
const KNOWN: &[(&str, &str, u16)] = &[
    ("ti,am654-r5f", "Cortex-R5F", machine::ARM),
    ("ti,j721e-r5f", "Cortex-R5F", machine::ARM),
    ("ti,j7200-r5f", "Cortex-R5F", machine::ARM),
    ("ti,am64-r5f", "Cortex-R5F", machine::ARM),
    ("ti,am62-r5f", "Cortex-R5F", machine::ARM),
    ("ti,j721s2-r5f", "Cortex-R5F", machine::ARM),
    ("ti,am64-m4fss", "Cortex-M4F", machine::ARM),
    ("xlnx,zynqmp-r5f", "Cortex-R5F", machine::ARM),
    ("xlnx,versal-r5f", "Cortex-R5F", machine::ARM),
    ("xlnx,versal-net-r52f", "Cortex-R52", machine::ARM),
    ("ti,j721e-c66-dsp", "C66x DSP", machine::TI_C6000),
    ("fsl,imx8mq-cm4", "Cortex-M4", machine::ARM),
    ("fsl,imx8mm-cm4", "Cortex-M4", machine::ARM),
    ("fsl,imx8mn-cm7", "Cortex-M7", machine::ARM),
    ("fsl,imx8mp-cm7", "Cortex-M7", machine::ARM),
    ("fsl,imx93-cm33", "Cortex-M33", machine::ARM),
    ("st,stm32mp1-m4", "Cortex-M4", machine::ARM),
];

impl CoreIsa {
    /// The core a `compatible` property (its strings, most specific first) names, if known.
    pub fn from_compatible<'a>(compatible: impl IntoIterator<Item = &'a str>) -> Option<Self> {
        compatible.into_iter().find_map(|c| {
            KNOWN
                .iter()
                .find(|(k, _, _)| *k == c)
                .map(|&(k, core, machine)| CoreIsa {
                    core,
                    machine,
                    class: ElfClass::Elf32,
                    compatible: k.to_string(),
                })
        })
    }

    /// The core of a remote processor, from its device-tree node's `compatible`
    /// (`/sys/class/remoteproc/remoteprocN/device/of_node/compatible`: NUL-separated
    /// strings). `None` when sysfs has no device-tree node for it or the core is not known.
    pub fn of_rproc(r: &Remoteproc) -> Option<Self> {
        let raw = std::fs::read(r.sysfs_dir().join("device/of_node/compatible")).ok()?;
        let strings: Vec<&str> = raw
            .split(|&b| b == 0)
            .filter_map(|s| std::str::from_utf8(s).ok())
            .filter(|s| !s.is_empty())
            .collect();
        Self::from_compatible(strings)
    }

    /// Whether the ELF `bytes` (read from `path`) is built for this core; the error names
    /// the file, the machine and class found and those expected. A file that is not ELF is
    /// left to the firmware validation (`Ok`).
    pub fn check_elf(&self, path: &Path, bytes: &[u8]) -> Result<(), WrongCore> {
        let Ok(elf) = Elf::parse(bytes) else {
            return Ok(());
        };
        if elf.machine() == self.machine && elf.class() == self.class {
            return Ok(());
        }
        Err(WrongCore {
            path: path.to_path_buf(),
            found: ElfKind(elf.machine(), elf.class()),
            core: self.core,
            compatible: self.compatible.clone(),
            expected: ElfKind(self.machine, self.class),
        })
    }
}

/// A firmware ELF built for another core than the remote processor's
/// ([`CoreIsa::check_elf`]).
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "{} is {found}; the {core} ({compatible}) runs {expected}: build the firmware for the remote core's target",
    .path.display()
)]
pub struct WrongCore {
    /// The firmware file.
    pub path: PathBuf,
    /// What it is built for.
    pub found: ElfKind,
    /// The remote's core (`Cortex-R5F`).
    pub core: &'static str,
    /// The `compatible` string the core was recognised by.
    pub compatible: String,
    /// What the core runs.
    pub expected: ElfKind,
}

/// An ELF's `e_machine` and class, shown as `an ELF32 arm (e_machine 40)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ElfKind(pub u16, pub ElfClass);

impl fmt::Display for ElfKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "an ELF{} {} (e_machine {})",
            self.1.bits(),
            machine::name(self.0).unwrap_or("unknown machine"),
            self.0
        )
    }
}
