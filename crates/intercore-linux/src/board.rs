//! Board configuration: one TOML file that says how to reach the remote core of a board —
//! which remote processor and firmware, which transport, which memory the data-plane pool
//! lives in, how the remote core addresses it, and which cache maintenance it needs.
//!
//! ```toml
//! [board]
//! name = "TI AM64x EVM, R5FSS0 core 0"
//! arch = "aarch64"                         # "aarch64" | "x86_64" | "any"
//!
//! [remoteproc]
//! name = "78000000.r5f"                    # or index = 0
//! firmware = "am64-main-r5f0_0-fw"         # the name the kernel requests
//! # firmware_file = "build/echo.elf"       # an ELF to install under that name
//! # boot = "load"                          # "load" | "attach" (started by the bootloader)
//! # control = "sysfs"                      # "sysfs" | "cdev"
//!
//! [transport]
//! kind = "kernel"                          # "sim" | "userspace" | "kernel"
//!
//! [memory]
//! source = "carveout"                      # "memfd" | "carveout" | "dma-heap" | "udmabuf"
//! reserved_memory = "intercore-pool@a6000000"
//!
//! [mapping]
//! kind = "identity"                        # "identity" | "offset" | "vfio" | "ti-rproc-attach" | "sim-iommu"
//!
//! [cache]
//! mode = "coherent"                        # "coherent" | "arm64-el0" | "dma-buf" | "sim-noncoherent"
//!
//! [rpmsg]
//! buffers = 256
//! buffer_size = 512
//! wait = "adaptive:50"                     # "event" | "poll" | "adaptive" | "adaptive:MICROS"
//! timeout_ms = 1000
//! service = "rpmsg-raw"
//!
//! [pool]
//! classes = [[4096, 64], [65536, 16], [1048576, 16]]   # [buffer size, count]
//! align = 4096
//! ```
//!
//! Every key of every table is listed in the [Keys](#keys) table below; an unknown key
//! is an error, and so is a key that does not apply to the kind chosen (`heap` with
//! `source = "carveout"`). [`Board::from_str`] collects **every** problem of a file, each
//! naming its key and what is allowed there (`cache.mode = "arm64-el0": needs an aarch64
//! host, and board.arch is "x86_64"`).
//!
//! Validation looks at the file alone. What only the machine can tell — whether the remote
//! processor exists, the reserved-memory node is in the device tree, `/dev/mem` may be
//! opened, the firmware file is loadable — is [`Board::check`]'s job: it reads sysfs and
//! the device tree and opens (never maps) the device nodes, and reports each finding with
//! the memory sources' and remoteproc control's own errors ([`MemError`], [`RprocError`]).
//! Opening the board for real is not here: the transports, memory sources and cache
//! backends each have their own constructors, and this module only says which to use.
//!
//! # Keys
//!
//! | table | key | applies to | meaning |
//! |---|---|---|---|
//! | `board` | `name` | all | free text (required) |
//! | | `description` | all | free text |
//! | | `arch` | all | the host's architecture: `aarch64`, `x86_64`, `any` (default `any`) |
//! | `remoteproc` | `name` / `index` | not `sim` | the remote processor, by its `name` attribute or N of `remoteprocN` (exactly one) |
//! | | `firmware` | | file name the kernel loads (no `/`) |
//! | | `firmware_file` | `boot = "load"` | local ELF to install as `firmware` (relative to the board file) |
//! | | `boot` | | `load` (default: the kernel boots it) or `attach` (started by the bootloader, IPC-only) |
//! | | `control` | | `sysfs` (default) or `cdev` (`/dev/remoteprocN`) |
//! | `transport` | `kind` | all | `sim`, `userspace` (intercore's own virtio-rpmsg over a carveout), `kernel` (`/dev/rpmsg_ctrlN`) |
//! | | `firmware`, `da_base`, `event_idx`, `layout` | `sim` | the simulated firmware (`echo`, `offload`, `sink`), where the remote sees the carveout, whether the firmware offers EVENT_IDX (default false), the layout (`standard`, `ti-k3`) |
//! | | `ctrl` | `kernel` | `rpmsg_ctrlN` (default: the only one) |
//! | | `region` or `base` + `size`, `rsc_offset`, `doorbell` | `userspace` | the carveout with the resource table, vrings and `vdev0buffer` (reserved-memory node, or physical range); the table's offset in it; `poll` (the only doorbell built) |
//! | `memory` | `source` | all | `memfd` (sim), `carveout`, `dma-heap`, `udmabuf` |
//! | | `size` | | bytes (default: the pool's size; a carveout node's own size) |
//! | | `access` | `carveout` | `devmem` (default) or `uio` |
//! | | `reserved_memory` or `base` | `carveout`, `devmem` | the `/reserved-memory` node, or the physical base (then `size` is required) |
//! | | `uio_device` + `uio_map`, or `uio_map_name` | `carveout`, `uio` | `uioN` and its map index (default 0), or a map's name |
//! | | `heap` | `dma-heap` | the name under `/dev/dma_heap` |
//! | `mapping` | `kind` | all | `identity` (da = pa), `offset` (da = pa + `offset`), `vfio` (`group`, `iova`), `ti-rproc-attach`, `sim-iommu` (`iova`) |
//! | `cache` | `mode` | all | `coherent`, `arm64-el0`, `dma-buf`, `sim-noncoherent` (`seed`, `per_mille`) |
//! | | `io_coherent` | `coherent` | the interconnect snoops the CPU's caches for the remote core |
//! | `rpmsg` | `buffers`, `buffer_size`, `wait`, `timeout_ms`, `service` | all | buffers per direction, bytes per buffer (with the 16-byte header), how blocking calls wait, their default timeout, the channel to open |
//! | `pool` | `classes`, `align` | all | `[size, count]` per size class; buffer alignment |

use crate::memory::{MemError, SysRoots, list_dma_heaps, reserved_memory, uio_device, uio_devices};
use crate::remoteproc::{Control, Remoteproc, RprocError, RprocPaths, RprocState, firmware_dir};
use crate::sys::page_size;
use intercore::WaitMode;
use intercore::dataplane::PoolConfig;
use intercore::rpmsg::HostConfig;
use intercore::rpmsg::layout::{CarveoutLayout, CarveoutSpec};
use serde::Deserialize;
use std::fmt;
use std::fs::OpenOptions;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

// ---- the typed configuration -------------------------------------------------------------

/// The host architecture a board is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    /// 64-bit Arm (the application cores of TI K3, ZynqMP, i.MX 8, STM32MP2).
    Aarch64,
    /// x86-64.
    X86_64,
    /// Any (the simulated SoC).
    Any,
}

impl Arch {
    /// The configuration's (and `std::env::consts::ARCH`'s) spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Arch::Aarch64 => "aarch64",
            Arch::X86_64 => "x86_64",
            Arch::Any => "any",
        }
    }
    /// Whether a host whose `std::env::consts::ARCH` is `host` fits.
    pub fn fits(self, host: &str) -> bool {
        self == Arch::Any || self.as_str() == host
    }
}

/// Which remote processor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RprocSelector {
    /// By its `name` attribute (the platform device, e.g. `78000000.r5f`).
    Name(String),
    /// By N of `remoteprocN` (the probe order decides it; a name is stabler).
    Index(u32),
}

impl RprocSelector {
    /// The selector as [`Remoteproc::open`] takes it.
    pub fn as_arg(&self) -> String {
        match self {
            RprocSelector::Name(n) => n.clone(),
            RprocSelector::Index(i) => i.to_string(),
        }
    }
}

/// How the remote core gets its firmware.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Boot {
    /// The kernel loads `firmware` and boots the core (`intercore rproc load/start`).
    Load,
    /// Another entity (the bootloader) started the core; the kernel attaches to it (TI K3
    /// "IPC-only" mode). The firmware is not changed.
    Attach,
}

/// The `[remoteproc]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RprocSpec {
    /// Which remote processor.
    pub selector: RprocSelector,
    /// The firmware file name the kernel requests (`None`: leave `firmware` as it is).
    pub firmware: Option<String>,
    /// A local ELF to install under `firmware` (resolved against the board file's directory).
    pub firmware_file: Option<PathBuf>,
    /// Where commands go.
    pub control: Control,
    /// Loaded by the kernel, or attached to.
    pub boot: Boot,
}

/// A physical range given by a device-tree node or by address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegionSpec {
    /// The first `reg` entry of `/reserved-memory/<node>`; `size` limits it.
    ReservedMemory {
        /// The node's name (`r5f-dma-memory@a0000000`, or without the unit address if unique).
        node: String,
        /// Use only the first `size` bytes.
        size: Option<u64>,
    },
    /// An explicit physical range.
    Range {
        /// Physical base (page-aligned).
        base: u64,
        /// Bytes.
        size: u64,
    },
}

/// The `[transport]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransportSpec {
    /// The simulated SoC (`intercore-sim`): the firmware runs as a child process.
    Sim {
        /// `echo`, `offload` or `sink`.
        firmware: String,
        /// Where the remote sees the carveout.
        da_base: u64,
        /// Whether the firmware offers `VIRTIO_RING_F_EVENT_IDX`.
        event_idx: bool,
        /// How the shared memory is laid out: `standard` (one carveout, everything at
        /// fixed addresses) or `ti-k3` (table in the firmware's region, vrings placed by
        /// the host, buffers from the DMA region, firmware started first).
        layout: String,
    },
    /// intercore's own virtio-rpmsg host (`HostBus`) over the carveout that holds the
    /// resource table, the vrings and `vdev0buffer`, mapped from userspace.
    Userspace {
        /// The carveout.
        region: RegionSpec,
        /// Offset of the resource table in it.
        rsc_offset: u64,
    },
    /// The kernel's rpmsg char devices (`/dev/rpmsg_ctrlN`, then `/dev/rpmsgM`).
    Kernel {
        /// `rpmsg_ctrlN`; `None`: the only one there is.
        ctrl: Option<String>,
    },
}

impl TransportSpec {
    /// `sim`, `userspace` or `kernel`.
    pub fn kind(&self) -> &'static str {
        match self {
            TransportSpec::Sim { .. } => "sim",
            TransportSpec::Userspace { .. } => "userspace",
            TransportSpec::Kernel { .. } => "kernel",
        }
    }
}

/// A physical carveout for the data-plane pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PoolCarveout {
    /// Through `/dev/mem`.
    DevMem(RegionSpec),
    /// Map `map` of the UIO device `device` (`uio0`).
    Uio {
        /// `uioN`.
        device: String,
        /// The map index.
        map: u32,
    },
    /// The UIO map with this name, on whichever UIO device has it.
    UioNamed(String),
}

/// The `[memory]` table: where the data-plane pool lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemorySpec {
    /// A memfd (the simulated SoC).
    Memfd {
        /// Bytes (`None`: the pool's size).
        size: Option<u64>,
    },
    /// A physical carveout.
    Carveout(PoolCarveout),
    /// A dma-buf heap allocation.
    DmaHeap {
        /// The heap's name under `/dev/dma_heap`.
        heap: String,
        /// Bytes.
        size: u64,
    },
    /// A udmabuf made of memfd pages.
    Udmabuf {
        /// Bytes.
        size: u64,
    },
}

impl MemorySpec {
    /// `memfd`, `carveout`, `dma-heap` or `udmabuf`.
    pub fn source(&self) -> &'static str {
        match self {
            MemorySpec::Memfd { .. } => "memfd",
            MemorySpec::Carveout(_) => "carveout",
            MemorySpec::DmaHeap { .. } => "dma-heap",
            MemorySpec::Udmabuf { .. } => "udmabuf",
        }
    }
    /// The size the file gives, if it gives one.
    pub fn size(&self) -> Option<u64> {
        match self {
            MemorySpec::Memfd { size } => *size,
            MemorySpec::Carveout(PoolCarveout::DevMem(RegionSpec::ReservedMemory {
                size, ..
            })) => *size,
            MemorySpec::Carveout(PoolCarveout::DevMem(RegionSpec::Range { size, .. })) => {
                Some(*size)
            }
            MemorySpec::Carveout(_) => None,
            MemorySpec::DmaHeap { size, .. } | MemorySpec::Udmabuf { size } => Some(*size),
        }
    }
}

/// The `[mapping]` table: how the remote core addresses the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MappingSpec {
    /// Device address = physical address.
    Identity,
    /// Device address = physical address + this (an alias window).
    Offset(i64),
    /// The remote's IOMMU through VFIO type1: the pool at `iova`.
    Vfio {
        /// `/dev/vfio/<group>`.
        group: u32,
        /// The I/O virtual address of the pool's first byte.
        iova: u64,
    },
    /// TI kernels' `RPROC_IOC_DMA_BUF_ATTACH`: the kernel pins the dma-buf and says where
    /// the remote sees it.
    TiRprocAttach,
    /// The simulator's IOMMU model, the pool at `iova`.
    SimIommu {
        /// The device address of the pool's first byte.
        iova: u64,
    },
}

impl MappingSpec {
    /// The configuration's spelling of the kind.
    pub fn kind(&self) -> &'static str {
        match self {
            MappingSpec::Identity => "identity",
            MappingSpec::Offset(_) => "offset",
            MappingSpec::Vfio { .. } => "vfio",
            MappingSpec::TiRprocAttach => "ti-rproc-attach",
            MappingSpec::SimIommu { .. } => "sim-iommu",
        }
    }
}

/// The cache maintenance the data plane uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheMode {
    /// Fences only: coherent hardware, or an uncached mapping.
    Coherent,
    /// `DC CVAC` / `DC CIVAC` at EL0 (`Arm64El0Cache`).
    Arm64El0,
    /// `DMA_BUF_IOCTL_SYNC` (`DmaBufCache`).
    DmaBuf,
    /// The simulator's non-coherent cache model with the coherency sanitizer.
    SimNoncoherent {
        /// Seed of the random eviction.
        seed: u64,
        /// Lines evicted per thousand accesses.
        per_mille: u32,
    },
}

impl CacheMode {
    /// The configuration's spelling.
    pub fn as_str(&self) -> &'static str {
        match self {
            CacheMode::Coherent => "coherent",
            CacheMode::Arm64El0 => "arm64-el0",
            CacheMode::DmaBuf => "dma-buf",
            CacheMode::SimNoncoherent { .. } => "sim-noncoherent",
        }
    }
}

/// The `[cache]` table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheSpec {
    /// The maintenance.
    pub mode: CacheMode,
    /// The remote core snoops the CPU's caches (so `coherent` is right over cached memory).
    pub io_coherent: bool,
}

/// The `[rpmsg]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpmsgSpec {
    /// Buffers per direction.
    pub buffers: u16,
    /// Bytes per buffer, with the 16-byte header.
    pub buffer_size: usize,
    /// How blocking calls wait.
    pub wait: WaitMode,
    /// Default timeout of blocking calls.
    pub timeout: Duration,
    /// The channel (name-service name) to open.
    pub service: String,
}

impl RpmsgSpec {
    /// The host bus configuration these values describe.
    pub fn host_config(&self) -> HostConfig {
        HostConfig {
            num_bufs: self.buffers,
            buf_size: self.buffer_size,
            timeout: Some(self.timeout),
            wait: self.wait,
            ..HostConfig::default()
        }
    }
}

/// A parsed and validated board file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Board {
    /// `board.name`.
    pub name: String,
    /// `board.description`.
    pub description: Option<String>,
    /// `board.arch`.
    pub arch: Arch,
    /// `[remoteproc]` (`None` for the simulator).
    pub remoteproc: Option<RprocSpec>,
    /// `[transport]`.
    pub transport: TransportSpec,
    /// `[memory]`.
    pub memory: MemorySpec,
    /// `[mapping]`.
    pub mapping: MappingSpec,
    /// `[cache]`.
    pub cache: CacheSpec,
    /// `[rpmsg]`.
    pub rpmsg: RpmsgSpec,
    /// `[pool]`.
    pub pool: PoolConfig,
    /// The file it was read from, if any (relative `firmware_file`s resolve against its
    /// directory).
    pub file: Option<PathBuf>,
}

// ---- errors ------------------------------------------------------------------------------

/// One problem with a board file: the key, the value found (as TOML), and what is allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Dotted key (`memory.heap`).
    pub key: String,
    /// The value as written (`"arm64-el0"`, `0x1000`), when there is one.
    pub value: Option<String>,
    /// What is wrong and what is allowed.
    pub message: String,
    /// 1-based line in the file, when known.
    pub line: Option<usize>,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(line) = self.line {
            write!(f, "line {line}: ")?;
        }
        match &self.value {
            Some(v) => write!(f, "{} = {v}: {}", self.key, self.message),
            None => write!(f, "{}: {}", self.key, self.message),
        }
    }
}

/// Why a board file was refused.
#[derive(Debug)]
pub enum BoardError {
    /// The file could not be read.
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// Not valid TOML, an unknown key, or a value of the wrong type.
    Syntax {
        /// The file, if read from one.
        path: Option<PathBuf>,
        /// The problem.
        problem: Problem,
    },
    /// Valid TOML that does not describe a usable board.
    Invalid {
        /// The file, if read from one.
        path: Option<PathBuf>,
        /// Every problem found.
        problems: Vec<Problem>,
    },
}

impl BoardError {
    /// Every problem (one for a syntax error, none for an I/O error).
    pub fn problems(&self) -> Vec<&Problem> {
        match self {
            BoardError::Io { .. } => Vec::new(),
            BoardError::Syntax { problem, .. } => vec![problem],
            BoardError::Invalid { problems, .. } => problems.iter().collect(),
        }
    }
}

impl fmt::Display for BoardError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = |p: &Option<PathBuf>| match p {
            Some(p) => p.display().to_string(),
            None => "board configuration".to_string(),
        };
        match self {
            BoardError::Io { path, source } => {
                write!(f, "cannot read board file {}: {source}", path.display())
            }
            BoardError::Syntax { path, problem } => write!(f, "{}: {problem}", name(path)),
            BoardError::Invalid { path, problems } => {
                write!(f, "{}: {} problem(s)", name(path), problems.len())?;
                for p in problems {
                    write!(f, "\n  {p}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for BoardError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BoardError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

// ---- the file as written -----------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBoard {
    board: RawBoardInfo,
    remoteproc: Option<RawRproc>,
    transport: RawTransport,
    memory: RawMemory,
    mapping: Option<RawMapping>,
    cache: RawCache,
    rpmsg: Option<RawRpmsg>,
    pool: Option<RawPool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBoardInfo {
    name: String,
    description: Option<String>,
    arch: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRproc {
    name: Option<String>,
    index: Option<u32>,
    firmware: Option<String>,
    firmware_file: Option<String>,
    control: Option<String>,
    boot: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTransport {
    kind: String,
    firmware: Option<String>,
    da_base: Option<u64>,
    event_idx: Option<bool>,
    layout: Option<String>,
    ctrl: Option<String>,
    region: Option<String>,
    base: Option<u64>,
    size: Option<u64>,
    rsc_offset: Option<u64>,
    doorbell: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMemory {
    source: String,
    size: Option<u64>,
    access: Option<String>,
    reserved_memory: Option<String>,
    base: Option<u64>,
    uio_device: Option<String>,
    uio_map: Option<u32>,
    uio_map_name: Option<String>,
    heap: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMapping {
    kind: String,
    offset: Option<i64>,
    iova: Option<u64>,
    group: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCache {
    mode: String,
    io_coherent: Option<bool>,
    seed: Option<u64>,
    per_mille: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRpmsg {
    buffers: Option<u32>,
    buffer_size: Option<u32>,
    wait: Option<String>,
    timeout_ms: Option<u64>,
    service: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPool {
    classes: Vec<[u64; 2]>,
    align: Option<u64>,
}

// ---- parsing -----------------------------------------------------------------------------

/// The simulated SoC's device address of the pool (`intercore_sim::POOL_IOVA`).
pub const SIM_POOL_IOVA: u64 = 0xC000_0000;
/// The simulated SoC's carveout device address (`SimConfig::default().da_base`).
pub const SIM_DA_BASE: u64 = 0xA000_0000;
/// The kernel's rpmsg buffer size (`MAX_RPMSG_BUF_SIZE` in `virtio_rpmsg_bus.c`).
pub const KERNEL_RPMSG_BUF_SIZE: usize = 512;
/// The kernel's largest buffer count per direction (`MAX_RPMSG_NUM_BUFS / 2`).
pub const KERNEL_RPMSG_MAX_BUFS: usize = 256;
/// The simulator's firmware programs.
pub const SIM_FIRMWARE: [&str; 3] = ["echo", "offload", "sink"];
/// The simulated SoC's layouts (`intercore_sim::SimLayout` names).
pub const SIM_LAYOUTS: [&str; 2] = ["standard", "ti-k3"];

/// The default pool: what the simulated SoC uses (64 × 4 KiB, 16 × 64 KiB, 16 × 1 MiB).
pub fn default_pool() -> PoolConfig {
    PoolConfig {
        classes: vec![(4096, 64), (64 << 10, 16), (1 << 20, 16)],
        align: 4096,
    }
}

/// Parses `event`, `poll`, `adaptive` or `adaptive:MICROS` (the command line's syntax).
pub fn parse_wait(s: &str) -> Option<WaitMode> {
    match s {
        "event" => Some(WaitMode::Event),
        "poll" => Some(WaitMode::Poll),
        "adaptive" => Some(WaitMode::default()),
        _ => s
            .strip_prefix("adaptive:")?
            .parse()
            .ok()
            .map(|us| WaitMode::Adaptive(Duration::from_micros(us))),
    }
}

/// The syntax [`parse_wait`] reads, for a wait mode.
pub fn wait_str(m: WaitMode) -> String {
    match m {
        WaitMode::Event => "event".into(),
        WaitMode::Poll => "poll".into(),
        WaitMode::Adaptive(d) => format!("adaptive:{}", d.as_micros()),
    }
}

fn quoted(s: &str) -> String {
    format!("{s:?}")
}

fn hex(v: u64) -> String {
    format!("{v:#x}")
}

fn list(allowed: &[&str]) -> String {
    allowed
        .iter()
        .map(|a| quoted(a))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Collects problems.
#[derive(Default)]
struct Check {
    problems: Vec<Problem>,
}

impl Check {
    fn err(&mut self, key: &str, value: Option<String>, message: impl Into<String>) {
        self.problems.push(Problem {
            key: key.to_string(),
            value,
            message: message.into(),
            line: None,
        });
    }

    /// `value` must be one of `allowed`; returns its index.
    fn one_of(&mut self, key: &str, value: &str, allowed: &[&str]) -> Option<usize> {
        let i = allowed.iter().position(|a| *a == value);
        if i.is_none() {
            self.err(
                key,
                Some(quoted(value)),
                format!("expected one of {}", list(allowed)),
            );
        }
        i
    }

    /// A key given where it does not apply.
    fn not_here<T>(&mut self, key: &str, v: &Option<T>, applies: &str) {
        if v.is_some() {
            self.err(key, None, format!("applies only to {applies}; remove it"));
        }
    }

    fn require<T: Clone>(&mut self, key: &str, v: &Option<T>, why: &str) -> Option<T> {
        if v.is_none() {
            self.err(key, None, format!("missing: {why}"));
        }
        v.clone()
    }
}

/// A plain file name the kernel can request: non-empty, no `/`, no newline, not `.`/`..`.
fn plain_file_name(n: &str) -> bool {
    !n.is_empty() && !n.contains('/') && !n.contains('\n') && n != "." && n != ".."
}

/// A device node name under `/dev` or `/sys/class/...`.
fn plain_node_name(n: &str) -> bool {
    plain_file_name(n) && !n.contains('\0')
}

impl Board {
    /// Reads and validates the board file `path`.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Board, BoardError> {
        let path = path.as_ref();
        let text = crate::file::read_regular_text(path, crate::file::CONFIG_MAX).map_err(|e| {
            BoardError::Io {
                path: path.to_path_buf(),
                source: match e {
                    crate::file::FileError::Io { source, .. } => source,
                    other => io::Error::new(io::ErrorKind::InvalidInput, other.reason()),
                },
            }
        })?;
        let mut b = parse(&text).map_err(|e| match e {
            BoardError::Syntax { problem, .. } => BoardError::Syntax {
                path: Some(path.to_path_buf()),
                problem,
            },
            BoardError::Invalid { problems, .. } => BoardError::Invalid {
                path: Some(path.to_path_buf()),
                problems,
            },
            other => other,
        })?;
        b.file = Some(path.to_path_buf());
        Ok(b)
    }

    /// Parses and validates a board configuration held in memory.
    #[allow(clippy::should_implement_trait)] // also offered as `FromStr`
    pub fn from_str(text: &str) -> Result<Board, BoardError> {
        parse(text)
    }

    /// `firmware_file`, resolved against the board file's directory.
    pub fn firmware_path(&self) -> Option<PathBuf> {
        let f = self.remoteproc.as_ref()?.firmware_file.as_ref()?;
        if f.is_absolute() {
            return Some(f.clone());
        }
        let dir = self
            .file
            .as_ref()
            .and_then(|p| p.parent())
            .unwrap_or(Path::new(""));
        Some(dir.join(f))
    }
}

impl std::str::FromStr for Board {
    type Err = BoardError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse(s)
    }
}

/// 1-based line of byte offset `at`.
fn line_of(text: &str, at: usize) -> usize {
    text[..at.min(text.len())].matches('\n').count() + 1
}

/// The `[table]` header in force at byte offset `at` (the header on that line counts).
fn table_at(text: &str, at: usize) -> Option<String> {
    let end = text[at.min(text.len())..]
        .find('\n')
        .map_or(text.len(), |i| at + i);
    text[..end].lines().rev().find_map(|l| {
        let t = l.trim();
        let inner = t.strip_prefix('[')?.trim_start_matches('[');
        let name = inner.split(']').next()?.trim();
        (!name.is_empty()).then(|| name.to_string())
    })
}

/// The key on the line of byte offset `at` (`key = value`), if that line has one.
fn key_on_line(text: &str, at: usize) -> Option<String> {
    let at = at.min(text.len());
    let start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let line = text[start..].lines().next()?;
    let (k, _) = line.split_once('=')?;
    let k = k.trim().trim_matches('"');
    (!k.is_empty() && !k.starts_with('[') && !k.starts_with('#')).then(|| k.to_string())
}

/// Turns toml's error into a [`Problem`] that names the dotted key: serde's messages
/// (`unknown field \`x\`, expected one of ...`, `missing field \`x\``, `invalid type: ...`)
/// name only the last component, so the table is recovered from the text around the span.
fn syntax_problem(text: &str, e: &toml::de::Error) -> Problem {
    let msg = e.message().trim().to_string();
    let at = e.span().map(|s| s.start);
    let table = at.and_then(|a| table_at(text, a));
    let join = |k: &str| match &table {
        Some(t) if !k.contains('.') => format!("{t}.{k}"),
        _ => k.to_string(),
    };
    let backticked = |prefix: &str| -> Option<String> {
        let rest = msg.strip_prefix(prefix)?;
        let rest = rest.strip_prefix('`')?;
        Some(rest[..rest.find('`')?].to_string())
    };
    let line = at.map(|a| line_of(text, a));
    if let Some(field) = backticked("unknown field ") {
        let allowed = msg
            .split_once(", expected ")
            .map(|(_, a)| a.replace('`', "\""))
            .unwrap_or_else(|| "nothing here".into());
        return Problem {
            key: join(&field),
            value: None,
            message: format!("unknown key; expected {allowed}"),
            line,
        };
    }
    if let Some(field) = backticked("missing field ") {
        // The span covers the table that lacks the key; for a missing top-level table it is
        // empty at 0 (or the whole document).
        let whole = e
            .span()
            .is_none_or(|s| s.start == 0 && (s.end == 0 || s.end >= text.trim_end().len()));
        return Problem {
            key: if whole { field } else { join(&field) },
            value: None,
            message: "missing (required)".into(),
            line: if whole { None } else { line },
        };
    }
    let key = at
        .and_then(|a| key_on_line(text, a))
        .map(|k| join(&k))
        .or(table)
        .unwrap_or_else(|| "(file)".into());
    Problem {
        key,
        value: None,
        message: msg,
        line,
    }
}

fn parse(text: &str) -> Result<Board, BoardError> {
    let raw: RawBoard = toml::from_str(text).map_err(|e| BoardError::Syntax {
        path: None,
        problem: syntax_problem(text, &e),
    })?;
    let mut c = Check::default();
    let board = validate(raw, &mut c);
    match board {
        Some(b) if c.problems.is_empty() => Ok(b),
        _ => Err(BoardError::Invalid {
            path: None,
            problems: c.problems,
        }),
    }
}

fn validate(raw: RawBoard, c: &mut Check) -> Option<Board> {
    // [board]
    if raw.board.name.trim().is_empty() {
        c.err("board.name", Some("\"\"".into()), "must not be empty");
    }
    let arch = match raw.board.arch.as_deref() {
        None => Arch::Any,
        Some(a) => match c.one_of("board.arch", a, &["aarch64", "x86_64", "any"]) {
            Some(0) => Arch::Aarch64,
            Some(1) => Arch::X86_64,
            _ => Arch::Any,
        },
    };

    // [transport]
    let kinds = ["sim", "userspace", "kernel"];
    let kind = c.one_of("transport.kind", &raw.transport.kind, &kinds);
    let t = &raw.transport;
    let sim_keys = "transport.kind = \"sim\"";
    let user_keys = "transport.kind = \"userspace\"";
    if kind != Some(0) {
        c.not_here("transport.firmware", &t.firmware, sim_keys);
        c.not_here("transport.da_base", &t.da_base, sim_keys);
        c.not_here("transport.event_idx", &t.event_idx, sim_keys);
        c.not_here("transport.layout", &t.layout, sim_keys);
    }
    if kind != Some(1) {
        c.not_here("transport.region", &t.region, user_keys);
        c.not_here("transport.base", &t.base, user_keys);
        c.not_here("transport.size", &t.size, user_keys);
        c.not_here("transport.rsc_offset", &t.rsc_offset, user_keys);
        c.not_here("transport.doorbell", &t.doorbell, user_keys);
    }
    if kind != Some(2) {
        c.not_here("transport.ctrl", &t.ctrl, "transport.kind = \"kernel\"");
    }
    // Validation goes on past a table it could not build, so that every problem of the
    // file is reported at once.
    let transport = match kind {
        Some(0) => {
            let firmware = t.firmware.clone().unwrap_or_else(|| "offload".into());
            c.one_of("transport.firmware", &firmware, &SIM_FIRMWARE);
            let layout = t.layout.clone().unwrap_or_else(|| "standard".into());
            c.one_of("transport.layout", &layout, &SIM_LAYOUTS);
            Some(TransportSpec::Sim {
                firmware,
                da_base: t.da_base.unwrap_or(SIM_DA_BASE),
                event_idx: t.event_idx.unwrap_or(false),
                layout,
            })
        }
        Some(1) => {
            let region = match (&t.region, t.base, t.size) {
                (Some(node), None, size) => Some(RegionSpec::ReservedMemory {
                    node: node.clone(),
                    size,
                }),
                (None, Some(base), Some(size)) => Some(RegionSpec::Range { base, size }),
                (None, Some(_), None) => {
                    c.err(
                        "transport.size",
                        None,
                        "missing: transport.base needs a size",
                    );
                    None
                }
                (Some(_), Some(_), _) => {
                    c.err(
                        "transport.base",
                        None,
                        "give either transport.region (a reserved-memory node) or transport.base + transport.size, not both",
                    );
                    None
                }
                (None, None, _) => {
                    c.err(
                        "transport.region",
                        None,
                        "missing: the carveout holding the resource table, vrings and vdev0buffer (a reserved-memory node name, or transport.base + transport.size)",
                    );
                    None
                }
            };
            if let Some(d) = &t.doorbell {
                if d != "poll" {
                    c.err(
                        "transport.doorbell",
                        Some(quoted(d)),
                        "expected \"poll\": no userspace doorbell (mailbox or UIO interrupt) is built yet, so both sides spin",
                    );
                }
            }
            let rsc_offset = t.rsc_offset.unwrap_or(0);
            if let Some(RegionSpec::Range { base, size }) = &region {
                check_page("transport.base", *base, c);
                if rsc_offset >= *size {
                    c.err(
                        "transport.rsc_offset",
                        Some(hex(rsc_offset)),
                        format!("must lie inside the region (size {})", hex(*size)),
                    );
                }
            }
            region.map(|region| TransportSpec::Userspace { region, rsc_offset })
        }
        Some(2) => {
            if let Some(ctrl) = &t.ctrl {
                if !(ctrl.starts_with("rpmsg_ctrl") && plain_node_name(ctrl)) {
                    c.err(
                        "transport.ctrl",
                        Some(quoted(ctrl)),
                        "expected a device name like \"rpmsg_ctrl0\" (under /dev)",
                    );
                }
            }
            Some(TransportSpec::Kernel {
                ctrl: t.ctrl.clone(),
            })
        }
        _ => None,
    };
    let is_sim = kind == Some(0);

    // [remoteproc]
    let remoteproc = match (&raw.remoteproc, is_sim) {
        (Some(_), true) => {
            c.err(
                "remoteproc",
                None,
                "the simulated SoC has no remote processor to control; remove the table (the simulated firmware is transport.firmware)",
            );
            None
        }
        (None, false) => {
            c.err(
                "remoteproc",
                None,
                "missing: a real board needs [remoteproc] with name or index",
            );
            None
        }
        (None, true) => None,
        (Some(r), false) => validate_rproc(r, c),
    };

    // [rpmsg]
    let rpmsg = validate_rpmsg(raw.rpmsg.as_ref(), kind, c);

    // [pool]
    let pool = match &raw.pool {
        None => default_pool(),
        Some(p) => validate_pool(p, c),
    };

    // [memory]
    let memory = validate_memory(&raw.memory, c);
    if let Some(size) = memory.as_ref().and_then(MemorySpec::size) {
        let need = pool.region_len() as u64;
        if need > size {
            c.err(
                "pool.classes",
                None,
                format!(
                    "the pool needs {} bytes ({}), more than memory.size = {}",
                    need,
                    hex(need),
                    hex(size)
                ),
            );
        }
    }
    match (&memory, is_sim) {
        (Some(MemorySpec::Memfd { .. }), false) => c.err(
            "memory.source",
            Some("\"memfd\"".into()),
            "a memfd is reachable only by the simulated remote core; a real one needs \"carveout\", \"dma-heap\" or \"udmabuf\"",
        ),
        (Some(m), true) if !matches!(m, MemorySpec::Memfd { .. }) => c.err(
            "memory.source",
            Some(quoted(m.source())),
            "the simulated SoC shares a memfd with its remote process; use \"memfd\"",
        ),
        _ => {}
    }

    // [mapping]
    let mapping = memory
        .as_ref()
        .and_then(|m| validate_mapping(raw.mapping.as_ref(), m, remoteproc.as_ref(), c));

    // [cache]
    let cache = match &memory {
        Some(m) => validate_cache(&raw.cache, arch, m, is_sim, c),
        None => {
            // The mode alone, without the checks against the memory.
            c.one_of("cache.mode", &raw.cache.mode, &CACHE_MODES);
            None
        }
    };

    // The simulated carveout must fit 32-bit device addresses.
    if let Some(TransportSpec::Sim {
        da_base, event_idx, ..
    }) = &transport
    {
        let spec = CarveoutSpec {
            vring_num: rpmsg.buffers,
            buf_size: rpmsg.buffer_size,
            event_idx: *event_idx,
            da_base: *da_base,
        };
        if let Err(e) = CarveoutLayout::new(&spec) {
            c.err(
                "transport.da_base",
                Some(hex(*da_base)),
                format!("the simulated carveout does not fit: {e}"),
            );
        }
    }

    Some(Board {
        name: raw.board.name,
        description: raw.board.description,
        arch,
        remoteproc,
        transport: transport?,
        memory: memory?,
        mapping: mapping?,
        cache: cache?,
        rpmsg,
        pool,
        file: None,
    })
}

fn check_page(key: &str, base: u64, c: &mut Check) {
    if base % 4096 != 0 {
        c.err(
            key,
            Some(hex(base)),
            "must start on a page (a multiple of 4096; 16 or 64 KiB on kernels with larger pages)",
        );
    }
}

fn validate_rproc(r: &RawRproc, c: &mut Check) -> Option<RprocSpec> {
    let selector = match (&r.name, r.index) {
        (Some(n), None) => {
            if n.is_empty() || n.contains('\n') {
                c.err(
                    "remoteproc.name",
                    Some(quoted(n)),
                    "expected the remote processor's name attribute, e.g. \"78000000.r5f\"",
                );
            }
            Some(RprocSelector::Name(n.clone()))
        }
        (None, Some(i)) => Some(RprocSelector::Index(i)),
        (Some(_), Some(_)) => {
            c.err(
                "remoteproc.index",
                None,
                "give remoteproc.name or remoteproc.index, not both (the name is stable across boots; the index follows probe order)",
            );
            None
        }
        (None, None) => {
            c.err(
                "remoteproc.name",
                None,
                "missing: name the remote processor (its sysfs name, e.g. \"78000000.r5f\") or give remoteproc.index",
            );
            None
        }
    };
    let control = match r.control.as_deref() {
        None => Control::Sysfs,
        Some(v) => match c.one_of("remoteproc.control", v, &["sysfs", "cdev"]) {
            Some(1) => Control::Cdev,
            _ => Control::Sysfs,
        },
    };
    let boot = match r.boot.as_deref() {
        None => Boot::Load,
        Some(v) => match c.one_of("remoteproc.boot", v, &["load", "attach"]) {
            Some(1) => Boot::Attach,
            _ => Boot::Load,
        },
    };
    if let Some(f) = &r.firmware {
        if !plain_file_name(f) {
            c.err(
                "remoteproc.firmware",
                Some(quoted(f)),
                "expected a plain file name (the kernel looks it up in its firmware directories); put a path in remoteproc.firmware_file",
            );
        }
    }
    if r.firmware_file.is_some() {
        if boot == Boot::Attach {
            c.err(
                "remoteproc.firmware_file",
                None,
                "applies only to boot = \"load\": the kernel loads no firmware into a core it attaches to",
            );
        }
        if r.firmware.is_none() {
            c.err(
                "remoteproc.firmware",
                None,
                "missing: firmware_file is installed under this name",
            );
        }
    }
    Some(RprocSpec {
        selector: selector?,
        firmware: r.firmware.clone(),
        firmware_file: r.firmware_file.as_ref().map(PathBuf::from),
        control,
        boot,
    })
}

/// `kind`: the index of transport.kind in `["sim", "userspace", "kernel"]`.
fn validate_rpmsg(r: Option<&RawRpmsg>, kind: Option<usize>, c: &mut Check) -> RpmsgSpec {
    let empty = RawRpmsg {
        buffers: None,
        buffer_size: None,
        wait: None,
        timeout_ms: None,
        service: None,
    };
    let r = r.unwrap_or(&empty);
    let (sim, userspace, kernel) = (kind == Some(0), kind == Some(1), kind == Some(2));
    let mut out = RpmsgSpec {
        buffers: intercore::wire::rpmsg::RPMSG_DEFAULT_NUM_BUFS as u16,
        buffer_size: intercore::wire::rpmsg::RPMSG_DEFAULT_BUF_SIZE,
        wait: WaitMode::default(),
        timeout: Duration::from_secs(1),
        service: "rpmsg-raw".into(),
    };
    if let Some(n) = r.buffers {
        let max = intercore::virtq::MAX_DRIVER_QUEUE as u32;
        if n == 0 || n > max {
            c.err(
                "rpmsg.buffers",
                Some(n.to_string()),
                format!("expected 1..={max} buffers per direction"),
            );
        } else if kernel && n as usize > KERNEL_RPMSG_MAX_BUFS {
            c.err(
                "rpmsg.buffers",
                Some(n.to_string()),
                format!(
                    "the kernel transport uses at most {KERNEL_RPMSG_MAX_BUFS} per direction (virtio_rpmsg_bus's MAX_RPMSG_NUM_BUFS / 2); the firmware's vring size decides"
                ),
            );
        } else if sim && !n.is_power_of_two() {
            c.err(
                "rpmsg.buffers",
                Some(n.to_string()),
                "the simulated SoC's vrings have this many entries, which must be a power of two",
            );
        } else {
            out.buffers = n as u16;
        }
    }
    if let Some(s) = r.buffer_size {
        let hdr = intercore::wire::rpmsg::RPMSG_HDR_SIZE as u32;
        if kernel && s as usize != KERNEL_RPMSG_BUF_SIZE {
            c.err(
                "rpmsg.buffer_size",
                Some(s.to_string()),
                format!(
                    "the kernel transport uses virtio_rpmsg_bus's fixed {KERNEL_RPMSG_BUF_SIZE}-byte buffers; remove the key or use transport.kind = \"userspace\""
                ),
            );
        } else if s < hdr + 16 || s > hdr + u16::MAX as u32 || s % 8 != 0 {
            c.err(
                "rpmsg.buffer_size",
                Some(s.to_string()),
                format!(
                    "expected a multiple of 8 in {}..={} (the {hdr}-byte header plus the payload, whose length is a u16)",
                    hdr + 16,
                    hdr + u16::MAX as u32
                ),
            );
        } else {
            out.buffer_size = s as usize;
        }
    }
    if let Some(w) = &r.wait {
        match parse_wait(w) {
            Some(m) => out.wait = m,
            None => c.err(
                "rpmsg.wait",
                Some(quoted(w)),
                "expected \"event\", \"poll\", \"adaptive\" or \"adaptive:MICROS\"",
            ),
        }
    }
    if userspace && out.wait != WaitMode::Poll {
        c.err(
            "rpmsg.wait",
            Some(quoted(&wait_str(out.wait))),
            "transport.doorbell = \"poll\" rings no doorbell, so nothing would wake a sleeper: use wait = \"poll\"",
        );
    }
    if let Some(ms) = r.timeout_ms {
        if !(1..=3_600_000).contains(&ms) {
            c.err(
                "rpmsg.timeout_ms",
                Some(ms.to_string()),
                "expected 1..=3600000 milliseconds (intercore never waits forever: a silent peer must become a timeout)",
            );
        } else {
            out.timeout = Duration::from_millis(ms);
        }
    }
    if let Some(s) = &r.service {
        let max = intercore::wire::rpmsg::RPMSG_NAME_SIZE - 1;
        if s.is_empty() || s.len() > max || s.contains('\0') {
            c.err(
                "rpmsg.service",
                Some(quoted(s)),
                format!(
                    "expected 1..={max} bytes without NUL (rpmsg names are {} bytes with the terminator)",
                    max + 1
                ),
            );
        } else {
            out.service = s.clone();
        }
    }
    out
}

fn validate_pool(p: &RawPool, c: &mut Check) -> PoolConfig {
    let align = p.align.unwrap_or(4096);
    if !align.is_power_of_two() || !(64..=1 << 30).contains(&align) {
        c.err(
            "pool.align",
            Some(align.to_string()),
            "expected a power of two from 64 (a cache line) to 1 GiB; a page (4096) suits IOMMU windows",
        );
    }
    if p.classes.is_empty() {
        c.err(
            "pool.classes",
            Some("[]".into()),
            "expected at least one [size, count] class",
        );
    }
    let mut classes = Vec::new();
    let mut total: u128 = 0;
    for (i, &[size, count]) in p.classes.iter().enumerate() {
        if size == 0 || size > u32::MAX as u64 {
            c.err(
                &format!("pool.classes[{i}]"),
                Some(format!("[{size}, {count}]")),
                "buffer size must be in 1..=4294967295 (descriptor lengths are 32-bit)",
            );
        }
        if count == 0 {
            c.err(
                &format!("pool.classes[{i}]"),
                Some(format!("[{size}, {count}]")),
                "count must be at least 1",
            );
        }
        if i > 0 && size <= p.classes[i - 1][0] {
            c.err(
                &format!("pool.classes[{i}]"),
                Some(format!("[{size}, {count}]")),
                "classes go smallest first, each larger than the one before",
            );
        }
        total +=
            (size as u128).div_ceil(align.max(1) as u128) * align.max(1) as u128 * count as u128;
        classes.push((size as usize, count as usize));
    }
    if total > (1u128 << 40) {
        c.err(
            "pool.classes",
            None,
            format!("the pool would take {total} bytes; at most 1 TiB"),
        );
        classes.clear();
    }
    PoolConfig {
        classes,
        align: align as usize,
    }
}

fn validate_memory(m: &RawMemory, c: &mut Check) -> Option<MemorySpec> {
    let sources = ["memfd", "carveout", "dma-heap", "udmabuf"];
    let source = c.one_of("memory.source", &m.source, &sources)?;
    if source != 1 {
        let carve = "memory.source = \"carveout\"";
        c.not_here("memory.access", &m.access, carve);
        c.not_here("memory.reserved_memory", &m.reserved_memory, carve);
        c.not_here("memory.base", &m.base, carve);
        c.not_here("memory.uio_device", &m.uio_device, carve);
        c.not_here("memory.uio_map", &m.uio_map, carve);
        c.not_here("memory.uio_map_name", &m.uio_map_name, carve);
    }
    if source != 2 {
        c.not_here("memory.heap", &m.heap, "memory.source = \"dma-heap\"");
    }
    if let Some(size) = m.size {
        if size == 0 || size % 4096 != 0 {
            c.err(
                "memory.size",
                Some(hex(size)),
                "expected a non-zero multiple of the page size (4096)",
            );
        }
    }
    match source {
        0 => Some(MemorySpec::Memfd { size: m.size }),
        1 => {
            let access = match m.access.as_deref() {
                None => 0,
                Some(a) => c.one_of("memory.access", a, &["devmem", "uio"])?,
            };
            if access == 0 {
                let uio = "memory.access = \"uio\"";
                c.not_here("memory.uio_device", &m.uio_device, uio);
                c.not_here("memory.uio_map", &m.uio_map, uio);
                c.not_here("memory.uio_map_name", &m.uio_map_name, uio);
                let region = match (&m.reserved_memory, m.base) {
                    (Some(node), None) => {
                        if !plain_node_name(node) {
                            c.err(
                                "memory.reserved_memory",
                                Some(quoted(node)),
                                "expected a node name under /reserved-memory, e.g. \"intercore-pool@a6000000\"",
                            );
                        }
                        RegionSpec::ReservedMemory {
                            node: node.clone(),
                            size: m.size,
                        }
                    }
                    (None, Some(base)) => {
                        check_page("memory.base", base, c);
                        let size = c.require("memory.size", &m.size, "memory.base needs a size")?;
                        if base.checked_add(size).is_none() {
                            c.err(
                                "memory.size",
                                Some(hex(size)),
                                "base + size wraps the physical address space",
                            );
                        }
                        RegionSpec::Range { base, size }
                    }
                    (Some(_), Some(_)) => {
                        c.err(
                            "memory.base",
                            None,
                            "give either memory.reserved_memory or memory.base + memory.size, not both",
                        );
                        return None;
                    }
                    (None, None) => {
                        c.err(
                            "memory.reserved_memory",
                            None,
                            "missing: the carveout's /reserved-memory node (or memory.base + memory.size)",
                        );
                        return None;
                    }
                };
                Some(MemorySpec::Carveout(PoolCarveout::DevMem(region)))
            } else {
                let devmem = "memory.access = \"devmem\"";
                c.not_here("memory.reserved_memory", &m.reserved_memory, devmem);
                c.not_here("memory.base", &m.base, devmem);
                c.not_here(
                    "memory.size",
                    &m.size,
                    "memory.access = \"devmem\" (a UIO map's size comes from sysfs)",
                );
                match (&m.uio_device, &m.uio_map_name) {
                    (Some(d), None) => {
                        if !(d.starts_with("uio") && plain_node_name(d)) {
                            c.err(
                                "memory.uio_device",
                                Some(quoted(d)),
                                "expected a UIO device name like \"uio0\"",
                            );
                        }
                        Some(MemorySpec::Carveout(PoolCarveout::Uio {
                            device: d.clone(),
                            map: m.uio_map.unwrap_or(0),
                        }))
                    }
                    (None, Some(n)) => {
                        c.not_here(
                            "memory.uio_map",
                            &m.uio_map,
                            "memory.uio_device (a named map is found by its name)",
                        );
                        Some(MemorySpec::Carveout(PoolCarveout::UioNamed(n.clone())))
                    }
                    (Some(_), Some(_)) => {
                        c.err(
                            "memory.uio_map_name",
                            None,
                            "give either memory.uio_device (+ uio_map) or memory.uio_map_name, not both",
                        );
                        None
                    }
                    (None, None) => {
                        c.err(
                            "memory.uio_device",
                            None,
                            "missing: the UIO device (\"uio0\") or memory.uio_map_name",
                        );
                        None
                    }
                }
            }
        }
        2 => {
            let heap = c.require(
                "memory.heap",
                &m.heap,
                "the dma-buf heap's name under /dev/dma_heap",
            );
            if let Some(h) = &heap {
                if !plain_node_name(h) {
                    c.err(
                        "memory.heap",
                        Some(quoted(h)),
                        "expected a heap name under /dev/dma_heap, e.g. \"system\" or \"linux,cma\"",
                    );
                }
            }
            let size = c.require("memory.size", &m.size, "bytes to allocate from the heap");
            Some(MemorySpec::DmaHeap {
                heap: heap?,
                size: size?,
            })
        }
        _ => {
            let size = c.require("memory.size", &m.size, "bytes of the udmabuf")?;
            Some(MemorySpec::Udmabuf { size })
        }
    }
}

fn validate_mapping(
    m: Option<&RawMapping>,
    memory: &MemorySpec,
    rproc: Option<&RprocSpec>,
    c: &mut Check,
) -> Option<MappingSpec> {
    let Some(m) = m else {
        return match memory {
            MemorySpec::Memfd { .. } => Some(MappingSpec::SimIommu {
                iova: SIM_POOL_IOVA,
            }),
            MemorySpec::Carveout(_) => Some(MappingSpec::Identity),
            other => {
                c.err(
                    "mapping",
                    None,
                    format!(
                        "missing: a {} buffer has no physical address the remote could use; give mapping.kind = \"vfio\"{}",
                        other.source(),
                        if matches!(other, MemorySpec::DmaHeap { .. }) {
                            " or \"ti-rproc-attach\""
                        } else {
                            ""
                        }
                    ),
                );
                None
            }
        };
    };
    let kinds = ["identity", "offset", "vfio", "ti-rproc-attach", "sim-iommu"];
    let kind = c.one_of("mapping.kind", &m.kind, &kinds)?;
    if kind != 1 {
        c.not_here("mapping.offset", &m.offset, "mapping.kind = \"offset\"");
    }
    if kind != 2 && kind != 4 {
        c.not_here(
            "mapping.iova",
            &m.iova,
            "mapping.kind = \"vfio\" or \"sim-iommu\"",
        );
    }
    if kind != 2 {
        c.not_here("mapping.group", &m.group, "mapping.kind = \"vfio\"");
    }
    let is_carveout = matches!(memory, MemorySpec::Carveout(_));
    let value = Some(quoted(&m.kind));
    let spec = match kind {
        0 | 1 => {
            if !is_carveout {
                c.err(
                    "mapping.kind",
                    value,
                    format!(
                        "needs memory.source = \"carveout\": a {} buffer has no physical address userspace can learn",
                        memory.source()
                    ),
                );
            }
            if kind == 0 {
                MappingSpec::Identity
            } else {
                let off = c.require(
                    "mapping.offset",
                    &m.offset,
                    "device address = physical address + offset",
                )?;
                if let MemorySpec::Carveout(PoolCarveout::DevMem(RegionSpec::Range {
                    base,
                    size,
                })) = memory
                {
                    let ok = base
                        .checked_add_signed(off)
                        .and_then(|b| b.checked_add(*size))
                        .is_some();
                    if !ok {
                        c.err(
                            "mapping.offset",
                            Some(off.to_string()),
                            format!(
                                "moves the carveout {}+{} out of the 64-bit address space",
                                hex(*base),
                                hex(*size)
                            ),
                        );
                    }
                }
                MappingSpec::Offset(off)
            }
        }
        2 => {
            if matches!(memory, MemorySpec::Memfd { .. }) {
                c.err(
                    "mapping.kind",
                    value,
                    "the simulated SoC's IOMMU is \"sim-iommu\"",
                );
            }
            let group = c.require(
                "mapping.group",
                &m.group,
                "the VFIO group of the remote core's IOMMU (/dev/vfio/<group>)",
            );
            let iova = c.require(
                "mapping.iova",
                &m.iova,
                "the I/O virtual address the remote sees the pool at",
            );
            if let Some(iova) = iova {
                check_page("mapping.iova", iova, c);
            }
            MappingSpec::Vfio {
                group: group?,
                iova: iova?,
            }
        }
        3 => {
            if !matches!(memory, MemorySpec::DmaHeap { .. }) {
                c.err(
                    "mapping.kind",
                    value,
                    format!(
                        "needs memory.source = \"dma-heap\" (a physically contiguous dma-buf); not {}",
                        quoted(memory.source())
                    ),
                );
            }
            if rproc.is_none() {
                c.err(
                    "mapping.kind",
                    Some(quoted(&m.kind)),
                    "needs [remoteproc]: the buffer is attached through /dev/remoteprocN",
                );
            }
            MappingSpec::TiRprocAttach
        }
        _ => {
            if !matches!(memory, MemorySpec::Memfd { .. }) {
                c.err(
                    "mapping.kind",
                    value,
                    "the simulator's IOMMU exists only with memory.source = \"memfd\"",
                );
            }
            let iova = m.iova.unwrap_or(SIM_POOL_IOVA);
            check_page("mapping.iova", iova, c);
            MappingSpec::SimIommu { iova }
        }
    };
    if matches!(memory, MemorySpec::Memfd { .. }) && kind != 4 {
        c.err(
            "mapping.kind",
            Some(quoted(&m.kind)),
            "memory.source = \"memfd\" is reached through the simulator's IOMMU: use \"sim-iommu\"",
        );
    }
    if matches!(memory, MemorySpec::Udmabuf { .. }) && kind != 2 {
        c.err(
            "mapping.kind",
            Some(quoted(&m.kind)),
            "a udmabuf's pages are scattered: the remote reaches them only through an IOMMU (\"vfio\")",
        );
    }
    Some(spec)
}

const CACHE_MODES: [&str; 4] = ["coherent", "arm64-el0", "dma-buf", "sim-noncoherent"];

fn validate_cache(
    r: &RawCache,
    arch: Arch,
    memory: &MemorySpec,
    is_sim: bool,
    c: &mut Check,
) -> Option<CacheSpec> {
    let mode = c.one_of("cache.mode", &r.mode, &CACHE_MODES)?;
    let value = Some(quoted(&r.mode));
    if mode != 3 {
        let sim = "cache.mode = \"sim-noncoherent\"";
        c.not_here("cache.seed", &r.seed, sim);
        c.not_here("cache.per_mille", &r.per_mille, sim);
    }
    if mode != 0 {
        c.not_here(
            "cache.io_coherent",
            &r.io_coherent,
            "cache.mode = \"coherent\"",
        );
    }
    let io_coherent = r.io_coherent.unwrap_or(false);
    let mode = match mode {
        0 => {
            let cached = matches!(
                memory,
                MemorySpec::DmaHeap { .. } | MemorySpec::Udmabuf { .. }
            );
            if cached && !is_sim && arch != Arch::X86_64 && !io_coherent {
                c.err(
                    "cache.mode",
                    value,
                    format!(
                        "a {} mapping is cacheable and the remote core does not snoop the CPU's caches: use \"arm64-el0\" (or \"dma-buf\"), or set cache.io_coherent = true if this SoC's interconnect really is coherent for it",
                        memory.source()
                    ),
                );
            }
            CacheMode::Coherent
        }
        1 => {
            if arch != Arch::Aarch64 {
                c.err(
                    "cache.mode",
                    value,
                    format!(
                        "needs an aarch64 host (DC CVAC / DC CIVAC are ARM64 instructions), and board.arch is {}",
                        quoted(arch.as_str())
                    ),
                );
            }
            if is_sim {
                c.err(
                    "cache.mode",
                    Some(quoted(&r.mode)),
                    "the simulated SoC models caches itself: use \"coherent\" or \"sim-noncoherent\"",
                );
            }
            CacheMode::Arm64El0
        }
        2 => {
            if !matches!(
                memory,
                MemorySpec::DmaHeap { .. } | MemorySpec::Udmabuf { .. }
            ) {
                c.err(
                    "cache.mode",
                    value,
                    format!(
                        "needs a dma-buf (memory.source = \"dma-heap\" or \"udmabuf\"), not {}",
                        quoted(memory.source())
                    ),
                );
            }
            CacheMode::DmaBuf
        }
        _ => {
            if !is_sim {
                c.err(
                    "cache.mode",
                    value,
                    "the cache model exists only in the simulated SoC (transport.kind = \"sim\")",
                );
            }
            let per_mille = r.per_mille.unwrap_or(50);
            if per_mille > 1000 {
                c.err(
                    "cache.per_mille",
                    Some(per_mille.to_string()),
                    "expected 0..=1000 evictions per thousand accesses",
                );
            }
            CacheMode::SimNoncoherent {
                seed: r.seed.unwrap_or(1),
                per_mille,
            }
        }
    };
    Some(CacheSpec { mode, io_coherent })
}

// ---- description -------------------------------------------------------------------------

fn size_str(n: u64) -> String {
    const K: u64 = 1024;
    if n >= K * K && n % (K * K) == 0 {
        format!("{} MiB", n / (K * K))
    } else if n >= K * K {
        format!("{:.2} MiB", n as f64 / (K * K) as f64)
    } else if n >= K && n % K == 0 {
        format!("{} KiB", n / K)
    } else {
        format!("{n} B")
    }
}

fn region_str(r: &RegionSpec) -> String {
    match r {
        RegionSpec::ReservedMemory { node, size: None } => {
            format!("/reserved-memory/{node}")
        }
        RegionSpec::ReservedMemory {
            node,
            size: Some(s),
        } => format!("the first {} of /reserved-memory/{node}", size_str(*s)),
        RegionSpec::Range { base, size } => {
            format!("{}..{} ({})", hex(*base), hex(base + size), size_str(*size))
        }
    }
}

impl fmt::Display for Board {
    /// A summary, one aspect per line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "board      {} (host: {})", self.name, self.arch.as_str())?;
        if let Some(d) = &self.description {
            writeln!(f, "           {d}")?;
        }
        if let Some(r) = &self.remoteproc {
            let which = match &r.selector {
                RprocSelector::Name(n) => format!("remote processor named {n:?}"),
                RprocSelector::Index(i) => format!("remoteproc{i}"),
            };
            let boot = match (r.boot, &r.firmware) {
                (Boot::Attach, _) => "attached to (started by the bootloader)".to_string(),
                (Boot::Load, Some(fw)) => format!("boots firmware {fw:?}"),
                (Boot::Load, None) => "boots the firmware it has selected".to_string(),
            };
            let control = match r.control {
                Control::Sysfs => "sysfs",
                Control::Cdev => "/dev/remoteprocN",
            };
            writeln!(f, "remoteproc {which}, {boot}; control through {control}")?;
            if let Some(p) = self.firmware_path() {
                writeln!(f, "           installs {}", p.display())?;
            }
        }
        match &self.transport {
            TransportSpec::Sim {
                firmware,
                da_base,
                event_idx,
                layout,
            } => writeln!(
                f,
                "transport  simulated SoC: firmware {firmware:?} in its own process, carveout at device address {}{}, {layout} layout",
                hex(*da_base),
                if *event_idx { ", EVENT_IDX" } else { "" }
            )?,
            TransportSpec::Userspace { region, rsc_offset } => writeln!(
                f,
                "transport  intercore's userspace virtio-rpmsg over {} (resource table at +{}), polling",
                region_str(region),
                hex(*rsc_offset)
            )?,
            TransportSpec::Kernel { ctrl } => writeln!(
                f,
                "transport  kernel rpmsg char devices through /dev/{}",
                ctrl.as_deref().unwrap_or("rpmsg_ctrlN (the only one)")
            )?,
        }
        let mem = match &self.memory {
            MemorySpec::Memfd { size } => format!(
                "memfd of {}",
                size_str(size.unwrap_or(self.pool.region_len() as u64))
            ),
            MemorySpec::Carveout(PoolCarveout::DevMem(r)) => {
                format!("carveout {} through /dev/mem", region_str(r))
            }
            MemorySpec::Carveout(PoolCarveout::Uio { device, map }) => {
                format!("carveout: map{map} of /dev/{device} (UIO)")
            }
            MemorySpec::Carveout(PoolCarveout::UioNamed(n)) => {
                format!("carveout: the UIO map named {n:?}")
            }
            MemorySpec::DmaHeap { heap, size } => {
                format!("{} from dma-buf heap /dev/dma_heap/{heap}", size_str(*size))
            }
            MemorySpec::Udmabuf { size } => format!("{} udmabuf", size_str(*size)),
        };
        writeln!(f, "memory     {mem}")?;
        let map = match self.mapping {
            MappingSpec::Identity => "identity (device address = physical address)".to_string(),
            MappingSpec::Offset(o) => {
                format!("device address = physical address {o:+#x}")
            }
            MappingSpec::Vfio { group, iova } => {
                format!(
                    "VFIO group {group}: the pool at I/O virtual address {}",
                    hex(iova)
                )
            }
            MappingSpec::TiRprocAttach => {
                "RPROC_IOC_DMA_BUF_ATTACH on /dev/remoteprocN (TI kernels)".to_string()
            }
            MappingSpec::SimIommu { iova } => {
                format!("the simulator's IOMMU: the pool at {}", hex(iova))
            }
        };
        writeln!(f, "mapping    {map}")?;
        let cache = match self.cache.mode {
            CacheMode::Coherent if self.cache.io_coherent => {
                "coherent: fences only (the interconnect snoops for the remote)".to_string()
            }
            CacheMode::Coherent => "coherent: fences only".to_string(),
            CacheMode::Arm64El0 => {
                "arm64-el0: DC CVAC to clean, DC CIVAC to invalidate, DSB SY".to_string()
            }
            CacheMode::DmaBuf => "dma-buf: DMA_BUF_IOCTL_SYNC around each handoff".to_string(),
            CacheMode::SimNoncoherent { seed, per_mille } => format!(
                "sim-noncoherent: the coherency sanitizer, eviction seed {seed}, {per_mille}‰"
            ),
        };
        writeln!(f, "cache      {cache}")?;
        writeln!(
            f,
            "rpmsg      {} × {} B per direction, wait {}, timeout {} ms, service {:?}",
            self.rpmsg.buffers,
            self.rpmsg.buffer_size,
            wait_str(self.rpmsg.wait),
            self.rpmsg.timeout.as_millis(),
            self.rpmsg.service
        )?;
        let classes = self
            .pool
            .classes
            .iter()
            .map(|&(s, n)| format!("{n} × {}", size_str(s as u64)))
            .collect::<Vec<_>>()
            .join(", ");
        write!(
            f,
            "pool       {classes} ({}, buffers aligned to {})",
            size_str(self.pool.region_len() as u64),
            self.pool.align
        )
    }
}

// ---- checking against this machine -------------------------------------------------------

/// How serious a [`Finding`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Found and usable.
    Ok,
    /// What would be done, or something to know.
    Info,
    /// Usable, with a caveat.
    Warn,
    /// This machine cannot open the board as configured.
    Error,
}

impl Level {
    /// `ok`, `info`, `warn`, `error`.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Ok => "ok",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }
}

/// One thing [`Board::check`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// How serious.
    pub level: Level,
    /// Which part of the board (`remoteproc`, `memory`, ...).
    pub topic: &'static str,
    /// What was found, and what to do.
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "[{:>5}] {:<10} {}",
            self.level.as_str(),
            self.topic,
            self.message
        )
    }
}

/// Where [`Board::check`] looks: the system's roots (or a fake tree's) and the host's
/// architecture.
#[derive(Debug, Clone)]
pub struct CheckEnv {
    /// `/dev`, `/sys`, `/proc/device-tree`.
    pub roots: SysRoots,
    /// remoteproc's roots (and the firmware directory).
    pub rproc: RprocPaths,
    /// `std::env::consts::ARCH` of the host (overridable for tests).
    pub host_arch: String,
}

impl Default for CheckEnv {
    fn default() -> Self {
        Self {
            roots: SysRoots::default(),
            rproc: RprocPaths::default(),
            host_arch: std::env::consts::ARCH.to_string(),
        }
    }
}

impl CheckEnv {
    /// Everything under `root` (`root/sys`, `root/dev`, `root/proc/device-tree`), with this
    /// host's architecture.
    pub fn under(root: &Path) -> Self {
        Self {
            roots: SysRoots::under(root),
            rproc: RprocPaths::under(root),
            host_arch: std::env::consts::ARCH.to_string(),
        }
    }
}

const UDEV_HINT: &str = "run as root or add a udev rule giving this user read/write access";

/// Opens (and closes) a device node the way its memory source would, mapping nothing, and
/// classifies a failure as the memory sources do.
fn probe_node(path: &Path, write: bool, missing: &'static str) -> Result<(), MemError> {
    OpenOptions::new()
        .read(true)
        .write(write)
        .open(path)
        .map(drop)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ENOENT | libc::ENODEV | libc::ENXIO) => MemError::Missing {
                path: path.to_path_buf(),
                hint: missing,
            },
            Some(libc::EACCES | libc::EPERM) => MemError::PermissionDenied {
                path: path.to_path_buf(),
                hint: UDEV_HINT,
            },
            _ => MemError::Os {
                op: format!("open {}", path.display()),
                source: e,
                hint: "",
            },
        })
}

struct Findings(Vec<Finding>);

impl Findings {
    fn push(&mut self, level: Level, topic: &'static str, message: impl Into<String>) {
        self.0.push(Finding {
            level,
            topic,
            message: message.into(),
        });
    }
}

impl Board {
    /// What opening this board on the machine `env` describes would do, and why it could
    /// not: reads sysfs and the device tree, opens (never maps) the device nodes, reads
    /// and validates the firmware file, and reports each step. Never changes anything.
    pub fn check(&self, env: &CheckEnv) -> Vec<Finding> {
        let mut f = Findings(Vec::new());
        if self.arch == Arch::Any {
            f.push(
                Level::Ok,
                "board",
                format!("runs on any host (this one is {})", env.host_arch),
            );
        } else if self.arch.fits(&env.host_arch) {
            f.push(
                Level::Ok,
                "board",
                format!("for {} hosts, as this one is", self.arch.as_str()),
            );
        } else {
            f.push(
                Level::Error,
                "board",
                format!(
                    "this board is for an {} host; this one is {}: run the check on the board itself",
                    self.arch.as_str(),
                    env.host_arch
                ),
            );
        }
        let rproc = self.check_rproc(env, &mut f);
        self.check_transport(env, &mut f);
        let phys = self.check_memory(env, &mut f);
        self.check_mapping(env, rproc.as_ref(), phys, &mut f);
        self.check_cache(env, phys, &mut f);
        f.0
    }

    fn check_rproc(&self, env: &CheckEnv, f: &mut Findings) -> Option<Remoteproc> {
        let spec = self.remoteproc.as_ref()?;
        let found = Remoteproc::open(&env.rproc, Some(&spec.selector.as_arg()));
        let rproc = match found {
            Err(e) => {
                f.push(Level::Error, "remoteproc", e.to_string());
                None
            }
            Ok(r) => match r.info() {
                Err(e) => {
                    f.push(Level::Error, "remoteproc", e.to_string());
                    None
                }
                Ok(info) => {
                    f.push(
                        Level::Ok,
                        "remoteproc",
                        format!(
                            "{} ({}): {}, firmware {:?}",
                            r.id(),
                            info.name,
                            info.state,
                            info.firmware
                        ),
                    );
                    match spec.boot {
                        Boot::Attach => {
                            if !matches!(info.state, RprocState::Attached | RprocState::Detached)
                            {
                                f.push(
                                    Level::Warn,
                                    "remoteproc",
                                    format!(
                                        "boot = \"attach\" expects a core started by the bootloader (state attached or detached); {} is {}",
                                        r.id(),
                                        info.state
                                    ),
                                );
                            }
                        }
                        Boot::Load => match &spec.firmware {
                            Some(fw) if *fw != info.firmware => f.push(
                                Level::Info,
                                "remoteproc",
                                format!(
                                    "would select firmware {fw:?} (now {:?}){}",
                                    info.firmware,
                                    if info.state == RprocState::Offline {
                                        String::new()
                                    } else {
                                        format!(
                                            "; the kernel changes it only while the core is offline, and it is {}: intercore rproc stop first",
                                            info.state
                                        )
                                    }
                                ),
                            ),
                            _ => {}
                        },
                    }
                    if spec.control == Control::Cdev && !r.dev_path().exists() {
                        f.push(
                            Level::Error,
                            "remoteproc",
                            RprocError::NoCdev { path: r.dev_path() }.to_string(),
                        );
                    }
                    Some(r)
                }
            },
        };
        self.check_firmware(spec, env, f);
        rproc
    }

    fn check_firmware(&self, spec: &RprocSpec, env: &CheckEnv, f: &mut Findings) {
        if spec.boot == Boot::Attach {
            return;
        }
        if let Some(path) = self.firmware_path() {
            let bytes = match crate::file::read_regular(&path, crate::file::FIRMWARE_MAX) {
                Ok(b) => b,
                Err(e) => {
                    f.push(Level::Error, "firmware", format!("cannot read {e}"));
                    return;
                }
            };
            if let Err(e) = crate::remoteproc::validate_firmware(&bytes) {
                f.push(
                    Level::Error,
                    "firmware",
                    format!("{} is not loadable firmware: {e}", path.display()),
                );
                return;
            }
            f.push(
                Level::Ok,
                "firmware",
                format!(
                    "{} is an ELF with a valid resource table; would install it in {} as {:?}",
                    path.display(),
                    firmware_dir(&env.rproc).map_or_else(
                        |_| "the firmware directory (which one: --firmware-dir)".to_string(),
                        |d| d.display().to_string()
                    ),
                    spec.firmware.as_deref().unwrap_or("?")
                ),
            );
            self.check_vdev(&bytes, &path, f);
        } else if let Some(fw) = &spec.firmware {
            let dir = match firmware_dir(&env.rproc) {
                Ok(d) => d,
                Err(e) => {
                    f.push(Level::Warn, "firmware", e.to_string());
                    return;
                }
            };
            if dir.join(fw).exists() {
                f.push(
                    Level::Ok,
                    "firmware",
                    format!("{fw:?} is installed in {}", dir.display()),
                );
            } else {
                f.push(
                    Level::Warn,
                    "firmware",
                    format!(
                        "{fw:?} is not in {} (the kernel also searches /lib/firmware/updates and /lib/firmware/<release>): install it with intercore rproc load FILE --name {fw}",
                        dir.display()
                    ),
                );
            }
        }
    }

    /// The firmware's rpmsg vdev against `[rpmsg]`.
    fn check_vdev(&self, bytes: &[u8], path: &Path, f: &mut Findings) {
        use intercore::wire::elf::Elf;
        let table = Elf::parse(bytes).and_then(|e| e.resource_table());
        let vdev = match table {
            Ok(Some(s)) => s.table.find_vdev(intercore::wire::rpmsg::VIRTIO_ID_RPMSG),
            Ok(None) => return,
            Err(_) => return,
        };
        match vdev {
            Ok(Some(v)) => {
                let num = v.vring(0).map(|r| r.num.get());
                match num {
                    Some(n) if n as u64 != self.rpmsg.buffers as u64 => f.push(
                        Level::Warn,
                        "firmware",
                        format!(
                            "the firmware's vrings have {n} entries, rpmsg.buffers is {}: the host uses min({n}, {}) buffers per direction",
                            self.rpmsg.buffers, self.rpmsg.buffers
                        ),
                    ),
                    Some(n) => f.push(
                        Level::Ok,
                        "firmware",
                        format!("rpmsg vdev with {n}-entry vrings, as rpmsg.buffers says"),
                    ),
                    None => {}
                }
            }
            Ok(None) => f.push(
                Level::Error,
                "firmware",
                format!(
                    "{}'s resource table has no rpmsg vdev (virtio id 7): no transport can reach it",
                    path.display()
                ),
            ),
            Err(e) => f.push(Level::Error, "firmware", e.to_string()),
        }
    }

    fn check_transport(&self, env: &CheckEnv, f: &mut Findings) {
        match &self.transport {
            TransportSpec::Sim { firmware, .. } => f.push(
                Level::Ok,
                "transport",
                format!(
                    "the simulated SoC runs firmware {firmware:?} as a child process of this host (intercore demo)"
                ),
            ),
            TransportSpec::Kernel { ctrl } => {
                let missing = "no rpmsg control device: the kernel needs CONFIG_RPMSG_CHAR and CONFIG_RPMSG_CTRL, virtio_rpmsg_bus bound to the core's vdev, and a running core whose resource table has an rpmsg vdev";
                match ctrl {
                    Some(c) => {
                        let p = env.roots.dev.join(c);
                        match probe_node(&p, true, missing) {
                            Ok(()) => f.push(
                                Level::Ok,
                                "transport",
                                format!("{} opens (the kernel transport)", p.display()),
                            ),
                            Err(e) => f.push(Level::Error, "transport", e.to_string()),
                        }
                    }
                    None => {
                        let mut found: Vec<String> = std::fs::read_dir(&env.roots.dev)
                            .map(|rd| {
                                rd.filter_map(|e| e.ok())
                                    .filter_map(|e| e.file_name().into_string().ok())
                                    .filter(|n| n.starts_with("rpmsg_ctrl"))
                                    .collect()
                            })
                            .unwrap_or_default();
                        found.sort();
                        match found.as_slice() {
                            [] => f.push(
                                Level::Error,
                                "transport",
                                format!("{}/rpmsg_ctrl*: {missing}", env.roots.dev.display()),
                            ),
                            [one] => f.push(
                                Level::Ok,
                                "transport",
                                format!("would use /dev/{one} (the kernel transport)"),
                            ),
                            many => f.push(
                                Level::Error,
                                "transport",
                                format!(
                                    "several rpmsg control devices ({}): one per remote core's vdev; choose one with transport.ctrl",
                                    many.join(", ")
                                ),
                            ),
                        }
                    }
                }
            }
            TransportSpec::Userspace { region, .. } => {
                f.push(
                    Level::Info,
                    "transport",
                    "intercore's host bus takes the vdev's rings: the kernel's virtio_rpmsg_bus must not drive the same vdev (unbind it or do not load the module), and both sides poll",
                );
                match self.region_phys(region, env) {
                    Ok((base, len, no_map)) => f.push(
                        Level::Ok,
                        "transport",
                        format!(
                            "rings and buffers at {}+{}{}",
                            hex(base),
                            hex(len),
                            if no_map { " (no-map)" } else { "" }
                        ),
                    ),
                    Err(e) => f.push(Level::Error, "transport", e.to_string()),
                }
                if let Err(e) = probe_node(
                    &env.roots.dev.join("mem"),
                    true,
                    "the kernel has no /dev/mem (CONFIG_DEVMEM)",
                ) {
                    f.push(Level::Error, "transport", e.to_string());
                }
            }
        }
    }

    /// Physical base, length and `no-map` of a region, from the device tree if named.
    fn region_phys(&self, r: &RegionSpec, env: &CheckEnv) -> Result<(u64, u64, bool), MemError> {
        match r {
            RegionSpec::Range { base, size } => Ok((*base, *size, false)),
            RegionSpec::ReservedMemory { node, size } => {
                let rm = reserved_memory(&env.roots, node)?;
                let (base, len) = rm.regions[0];
                if let Some(s) = size {
                    if *s > len {
                        return Err(MemError::InvalidRequest(format!(
                            "size {} is larger than /reserved-memory/{} ({})",
                            hex(*s),
                            rm.node,
                            hex(len)
                        )));
                    }
                }
                let page = page_size() as u64;
                if base % page != 0 {
                    return Err(MemError::InvalidRequest(format!(
                        "/reserved-memory/{} starts at {}, not on a {page}-byte page",
                        rm.node,
                        hex(base)
                    )));
                }
                Ok((base, size.unwrap_or(len), rm.no_map))
            }
        }
    }

    /// Returns the pool's physical base and length and whether it is `no-map`, when known.
    fn check_memory(&self, env: &CheckEnv, f: &mut Findings) -> Option<(u64, u64, bool)> {
        let pool = self.pool.region_len() as u64;
        let fits = |f: &mut Findings, len: u64| {
            if pool > len {
                f.push(
                    Level::Error,
                    "memory",
                    format!(
                        "the pool needs {} bytes; the memory has {}",
                        hex(pool),
                        hex(len)
                    ),
                );
            }
        };
        match &self.memory {
            MemorySpec::Memfd { .. } => {
                f.push(Level::Ok, "memory", "memfd (always available)");
                None
            }
            MemorySpec::Carveout(PoolCarveout::DevMem(r)) => {
                let found = self.region_phys(r, env);
                let phys = match found {
                    Err(e) => {
                        f.push(Level::Error, "memory", e.to_string());
                        None
                    }
                    Ok((base, len, no_map)) => {
                        f.push(
                            Level::Ok,
                            "memory",
                            format!(
                                "would map {}+{} through /dev/mem{}",
                                hex(base),
                                hex(len),
                                if no_map { " (no-map)" } else { "" }
                            ),
                        );
                        fits(f, len);
                        if no_map {
                            f.push(
                                Level::Info,
                                "memory",
                                "a no-map region through /dev/mem is Device-nGnRnE memory on arm64: uncached (no maintenance needed), slow, and an unaligned access raises SIGBUS",
                            );
                        } else {
                            f.push(
                                Level::Warn,
                                "memory",
                                "the region is in the kernel's linear map (no no-map): CONFIG_STRICT_DEVMEM keeps /dev/mem from mapping it; mark it no-map, or export it as a dma-buf heap",
                            );
                        }
                        Some((base, len, no_map))
                    }
                };
                if let Err(e) = probe_node(
                    &env.roots.dev.join("mem"),
                    true,
                    "the kernel has no /dev/mem (CONFIG_DEVMEM)",
                ) {
                    f.push(Level::Error, "memory", e.to_string());
                }
                phys
            }
            MemorySpec::Carveout(PoolCarveout::Uio { device, map }) => {
                match uio_device(&env.roots, device) {
                    Err(e) => f.push(Level::Error, "memory", e.to_string()),
                    Ok(d) => match d.maps.iter().find(|m| m.index == *map as usize) {
                        None => f.push(
                            Level::Error,
                            "memory",
                            format!(
                                "{device} ({}) has no map{map}: it has {} map(s)",
                                d.name,
                                d.maps.len()
                            ),
                        ),
                        Some(m) => {
                            f.push(
                                Level::Ok,
                                "memory",
                                format!(
                                    "would map {device} map{map} ({}+{}, UIO: uncached Device memory)",
                                    hex(m.addr),
                                    hex(m.size)
                                ),
                            );
                            fits(f, m.size);
                            if let Err(e) = probe_node(
                                &env.roots.dev.join(device),
                                true,
                                "no such UIO device node",
                            ) {
                                f.push(Level::Error, "memory", e.to_string());
                            }
                            return Some((m.addr, m.size, true));
                        }
                    },
                }
                None
            }
            MemorySpec::Carveout(PoolCarveout::UioNamed(name)) => {
                let devs = match uio_devices(&env.roots) {
                    Ok(d) => d,
                    Err(e) => {
                        f.push(Level::Error, "memory", e.to_string());
                        return None;
                    }
                };
                let hits: Vec<_> = devs
                    .iter()
                    .flat_map(|d| d.maps.iter().map(move |m| (d, m)))
                    .filter(|(_, m)| m.name == *name)
                    .collect();
                match hits.as_slice() {
                    [(d, m)] => {
                        f.push(
                            Level::Ok,
                            "memory",
                            format!(
                                "UIO map {name:?} is {} map{} ({}+{})",
                                d.node,
                                m.index,
                                hex(m.addr),
                                hex(m.size)
                            ),
                        );
                        fits(f, m.size);
                        Some((m.addr, m.size, true))
                    }
                    [] => {
                        f.push(
                            Level::Error,
                            "memory",
                            MemError::NotFound {
                                what: format!("a UIO map named {name:?}"),
                            }
                            .to_string(),
                        );
                        None
                    }
                    _ => {
                        f.push(
                            Level::Error,
                            "memory",
                            format!("several UIO maps are named {name:?}: use memory.uio_device"),
                        );
                        None
                    }
                }
            }
            MemorySpec::DmaHeap { heap, size } => {
                match list_dma_heaps(&env.roots) {
                    Err(e) => f.push(Level::Error, "memory", e.to_string()),
                    Ok(names) if !names.contains(heap) => f.push(
                        Level::Error,
                        "memory",
                        MemError::NotFound {
                            what: format!(
                                "dma-buf heap {heap:?} (this system has: {})",
                                if names.is_empty() {
                                    "none".to_string()
                                } else {
                                    names.join(", ")
                                }
                            ),
                        }
                        .to_string(),
                    ),
                    Ok(_) => {
                        let node = env.roots.dev.join("dma_heap").join(heap);
                        match probe_node(&node, false, "no such heap") {
                            Ok(()) => f.push(
                                Level::Ok,
                                "memory",
                                format!("would allocate {} from {}", hex(*size), node.display()),
                            ),
                            Err(e) => f.push(Level::Error, "memory", e.to_string()),
                        }
                    }
                }
                if heap == "system" {
                    f.push(
                        Level::Warn,
                        "memory",
                        "the system heap's pages are not contiguous: the remote reaches them only through an IOMMU",
                    );
                }
                None
            }
            MemorySpec::Udmabuf { size } => {
                match probe_node(
                    &env.roots.dev.join("udmabuf"),
                    true,
                    "the kernel has no udmabuf driver (CONFIG_UDMABUF; try `modprobe udmabuf`)",
                ) {
                    Ok(()) => f.push(
                        Level::Ok,
                        "memory",
                        format!("would create a {} udmabuf", hex(*size)),
                    ),
                    Err(e) => f.push(Level::Error, "memory", e.to_string()),
                }
                let limit = std::fs::read_to_string(
                    env.roots
                        .sys
                        .join("module/udmabuf/parameters/size_limit_mb"),
                )
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .unwrap_or(64);
                if *size > limit << 20 {
                    f.push(
                        Level::Error,
                        "memory",
                        format!(
                            "{} exceeds udmabuf's size_limit_mb ({limit} MiB): raise the module parameter",
                            hex(*size)
                        ),
                    );
                }
                None
            }
        }
    }

    fn check_mapping(
        &self,
        env: &CheckEnv,
        rproc: Option<&Remoteproc>,
        phys: Option<(u64, u64, bool)>,
        f: &mut Findings,
    ) {
        match self.mapping {
            MappingSpec::Identity | MappingSpec::Offset(_) => {
                let Some((base, len, _)) = phys else { return };
                let delta = match self.mapping {
                    MappingSpec::Offset(d) => d,
                    _ => 0,
                };
                match base.checked_add_signed(delta) {
                    None => f.push(
                        Level::Error,
                        "mapping",
                        format!("{} {delta:+#x} leaves the address space", hex(base)),
                    ),
                    Some(da) => {
                        let end = da.saturating_add(len);
                        f.push(
                            Level::Ok,
                            "mapping",
                            format!("the remote sees the pool at {}..{}", hex(da), hex(end)),
                        );
                        if end > 1 << 32 {
                            f.push(
                                Level::Warn,
                                "mapping",
                                "the pool ends above 4 GiB: a 32-bit remote core (Cortex-R5F, Cortex-M4F) cannot address it",
                            );
                        }
                    }
                }
            }
            MappingSpec::Vfio { group, iova } => {
                if !cfg!(feature = "vfio") {
                    f.push(
                        Level::Error,
                        "mapping",
                        "this build has no VFIO backend: build intercore-linux with feature \"vfio\"",
                    );
                }
                let missing = "no VFIO (CONFIG_VFIO, CONFIG_VFIO_IOMMU_TYPE1) or no such group: bind the remote core's IOMMU device to a VFIO driver";
                for node in [
                    env.roots.dev.join("vfio/vfio"),
                    env.roots.dev.join(format!("vfio/{group}")),
                ] {
                    match probe_node(&node, true, missing) {
                        Ok(()) => f.push(Level::Ok, "mapping", format!("{} opens", node.display())),
                        Err(e) => f.push(Level::Error, "mapping", e.to_string()),
                    }
                }
                f.push(
                    Level::Info,
                    "mapping",
                    format!(
                        "would map the pool at I/O virtual address {} (VFIO has no cache maintenance: the cache mode does it)",
                        hex(iova)
                    ),
                );
            }
            MappingSpec::TiRprocAttach => {
                f.push(
                    Level::Info,
                    "mapping",
                    "RPROC_IOC_DMA_BUF_ATTACH exists only in TI's kernels (mainline answers EINVAL)",
                );
                if let Some(r) = rproc {
                    if !r.dev_path().exists() {
                        f.push(
                            Level::Error,
                            "mapping",
                            MemError::Missing {
                                path: r.dev_path(),
                                hint: "no remoteproc character device (CONFIG_REMOTEPROC_CDEV)",
                            }
                            .to_string(),
                        );
                    }
                }
            }
            MappingSpec::SimIommu { iova } => f.push(
                Level::Ok,
                "mapping",
                format!("the simulator's IOMMU maps the pool at {}", hex(iova)),
            ),
        }
    }

    fn check_cache(&self, env: &CheckEnv, phys: Option<(u64, u64, bool)>, f: &mut Findings) {
        match self.cache.mode {
            CacheMode::Arm64El0 => {
                if env.host_arch == "aarch64" {
                    f.push(
                        Level::Ok,
                        "cache",
                        format!(
                            "DC CVAC / DC CIVAC at EL0, {}-byte lines (CTR_EL0)",
                            crate::cache::native_line_size()
                        ),
                    );
                } else {
                    f.push(
                        Level::Error,
                        "cache",
                        format!(
                            "cache.mode = \"arm64-el0\" needs an aarch64 host; this one is {}",
                            env.host_arch
                        ),
                    );
                }
                if let Some((_, _, true)) = phys {
                    f.push(
                        Level::Info,
                        "cache",
                        "the pool is uncached Device memory: the maintenance is harmless but does nothing; \"coherent\" suffices",
                    );
                }
            }
            CacheMode::DmaBuf => {
                if matches!(self.memory, MemorySpec::DmaHeap { .. }) {
                    f.push(
                        Level::Warn,
                        "cache",
                        "mainline system and CMA heaps sync only for kernel devices attached to the buffer: with the remote core as its only user, DMA_BUF_IOCTL_SYNC may do no cache maintenance at all. Prefer \"arm64-el0\" unless this heap is known to sync",
                    );
                } else {
                    f.push(
                        Level::Ok,
                        "cache",
                        "udmabuf's DMA_BUF_IOCTL_SYNC really cleans and invalidates on arm64 (whole buffer per call)",
                    );
                }
            }
            CacheMode::Coherent => match phys {
                Some((_, _, false)) if !self.cache.io_coherent => f.push(
                    Level::Error,
                    "cache",
                    "cache.mode = \"coherent\" over a region the kernel maps cacheable (no no-map): the remote core would read stale lines; mark the node no-map (uncached Device memory), or use \"arm64-el0\"",
                ),
                _ => f.push(Level::Ok, "cache", "fences only"),
            },
            CacheMode::SimNoncoherent { .. } => f.push(
                Level::Ok,
                "cache",
                "the coherency sanitizer checks every handoff",
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// toml's errors name only the last key component; the table is recovered from the
    /// header in force at the error's position, and the key from the line.
    #[test]
    fn table_and_key_recovery() {
        let text = "[board]\nname = \"x\"\n\n[memory]\nsource = 5\n";
        let at = text.find("5").unwrap();
        assert_eq!(table_at(text, at).as_deref(), Some("memory"));
        assert_eq!(key_on_line(text, at).as_deref(), Some("source"));
        assert_eq!(line_of(text, at), 5);
        let hdr = text.find("[memory]").unwrap();
        assert_eq!(table_at(text, hdr).as_deref(), Some("memory"));
        assert_eq!(key_on_line(text, hdr), None);
    }

    /// The wait syntax is the command line's: event, poll, adaptive, adaptive:MICROS.
    #[test]
    fn wait_modes_round_trip() {
        for s in ["event", "poll", "adaptive:50", "adaptive:0"] {
            assert_eq!(wait_str(parse_wait(s).unwrap()), s);
        }
        assert_eq!(parse_wait("adaptive"), Some(WaitMode::default()));
        assert_eq!(parse_wait("adaptive:x"), None);
        assert_eq!(parse_wait("spin"), None);
    }
}
