//! The typed board: what a validated board file says, part by part.

use crate::keyword::keyword_enum;
use intercore::WaitMode;
use intercore::dataplane::PoolConfig;
use intercore::rpmsg::HostConfig;
use intercore_linux::remoteproc::Control;
use std::path::{Path, PathBuf};
use std::time::Duration;

keyword_enum! {
    /// The host architecture a board is for (`board.arch`).
    pub enum Arch {
        /// 64-bit Arm (the application cores of TI K3, ZynqMP, i.MX 8, STM32MP2).
        Aarch64 = "aarch64",
        /// x86-64.
        X86_64 = "x86_64",
        /// Any (the simulated SoC).
        Any = "any",
    }
}

impl Arch {
    /// Whether a host whose `std::env::consts::ARCH` is `host` fits (the configuration's
    /// spelling is `std::env::consts::ARCH`'s).
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
    /// The selector as [`Remoteproc::open`](intercore_linux::Remoteproc::open) takes it.
    pub fn as_arg(&self) -> String {
        match self {
            RprocSelector::Name(n) => n.clone(),
            RprocSelector::Index(i) => i.to_string(),
        }
    }
}

keyword_enum! {
    /// How the remote core gets its firmware (`remoteproc.boot`).
    pub enum Boot {
        /// The kernel loads `firmware` and boots the core (`intercore rproc load/start`).
        Load = "load",
        /// Another entity (the bootloader) started the core; the kernel attaches to it (TI K3
        /// "IPC-only" mode). The firmware is not changed.
        Attach = "attach",
    }
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

keyword_enum! {
    /// `transport.firmware` of a simulated board: the name of the firmware the simulated
    /// remote core runs. A name only: the firmware itself is a parameter of the simulator,
    /// supplied with the program that hosts the remote core ([`crate::OpenEnv`]).
    pub enum FirmwareName {
        /// `firmware/echo`: echoes every message.
        Echo = "echo",
        /// `firmware/offload`: CRC32C on the data plane, plus the echo service.
        Offload = "offload",
        /// `firmware/echo`'s sink: counts messages (one-way throughput).
        Sink = "sink",
    }
}

keyword_enum! {
    /// `transport.layout` of a simulated board: how the simulated SoC lays out its shared
    /// memory (the simulator's `SimLayout`, by the same names).
    pub enum SimLayout {
        /// One carveout: resource table, vrings and `vdev0buffer` at fixed addresses.
        Standard = "standard",
        /// As on TI K3: the table in the firmware's region, vrings placed by the host,
        /// buffers from the DMA region, the firmware started first.
        TiK3 = "ti-k3",
    }
}

/// How the simulator's non-coherent cache model evicts on its own (`cache.seed`,
/// `cache.per_mille`; the simulator's `Eviction`, field for field).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Eviction {
    /// Seed of the eviction generator (runs are reproducible).
    pub seed: u64,
    /// Chance per hook, in thousandths, that a random line of a buffer the peer owns is
    /// evicted.
    pub per_mille: u32,
}

/// Seed 1, 50 evictions per thousand hooks: `sim-noncoherent` without `seed` and
/// `per_mille`.
impl Default for Eviction {
    fn default() -> Self {
        Self {
            seed: 1,
            per_mille: 50,
        }
    }
}

/// Where a simulated board's remote sees the carveout by default (`transport.da_base`):
/// the simulator's `DA_BASE`.
pub const DA_BASE: u64 = 0xA000_0000;

/// Device address at which the simulated SoC's data-plane pool is mapped into the remote's
/// IOMMU: the simulator's `POOL_IOVA`.
pub const POOL_IOVA: u64 = 0xC000_0000;

/// The `[transport]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransportSpec {
    /// The simulated SoC (`intercore-sim`): the firmware runs as a child process.
    Sim {
        /// The firmware the simulated remote core runs.
        firmware: FirmwareName,
        /// Where the remote sees the carveout.
        da_base: u64,
        /// Whether the firmware offers `VIRTIO_RING_F_EVENT_IDX`.
        event_idx: bool,
        /// How the shared memory is laid out: `standard` (one carveout, everything at
        /// fixed addresses) or `ti-k3` (table in the firmware's region, vrings placed by
        /// the host, buffers from the DMA region, firmware started first).
        layout: SimLayout,
    },
    /// intercore's own virtio-rpmsg host (`HostBus`) over the carveout that holds the
    /// resource table, the vrings and `vdev0buffer`, mapped from userspace.
    Userspace {
        /// The carveout.
        region: RegionSpec,
        /// Offset of the resource table in it.
        rsc_offset: u64,
        /// Where in the carveout the host places vrings the table leaves at
        /// `FW_RSC_ADDR_ANY` (from this offset to the carveout's end); `None`: the table
        /// must place them.
        vring_offset: Option<u64>,
        /// How each side wakes the other.
        doorbell: DoorbellSpec,
    },
    /// The firmware as ARM machine code on an emulated core (`intercore_sim::qemu`): QEMU
    /// runs as a child process, the shared memory is a memfd, the doorbell polls.
    Qemu {
        /// Which emulated core.
        core: QemuCoreName,
        /// Where intercore's own firmware images are (`None`: `$INTERCORE_FW_DIR`, then
        /// `target/baremetal/images`, then `firmware/images/target`).
        fw_dir: Option<PathBuf>,
        /// `transport.image`: any ELF firmware, as written (`$VAR`, `${VAR:-default}` and
        /// a leading `~/` are expanded when the board is opened; relative to the board
        /// file). Excludes `fw_dir`.
        image: Option<String>,
    },
    /// The kernel's rpmsg char devices (`/dev/rpmsg_ctrlN`, then `/dev/rpmsgM`).
    Kernel {
        /// `rpmsg_ctrlN`; `None`: the only one there is.
        ctrl: Option<String>,
    },
}

/// `transport.doorbell` of the userspace transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DoorbellSpec {
    /// The polling doorbell (`intercore::pollbell`) at the block the firmware's intercore
    /// vendor entry declares; nothing sleeps on an interrupt.
    Poll,
    /// A mailbox or IPI through UIO (`intercore_linux::UioDoorbell`): the interrupt of
    /// `/dev/<device>` to sleep on, the register layout to ring with.
    Uio {
        /// `uioN`.
        device: String,
        /// The registers.
        layout: intercore_linux::UioLayout,
    },
}

keyword_enum! {
    /// `transport.mailbox`: the register layout of a UIO doorbell.
    pub enum MailboxKind {
        /// TI's OMAP mailbox (K3): `mbox_map`, `mbox_tx`, `mbox_rx`, `mbox_user`.
        Omap = "omap",
        /// AMD/Xilinx ZynqMP IPI: `ipi_regs_map`, `ipi_buf_map`, `ipi_req_offset`,
        /// `ipi_remote`.
        ZynqmpIpi = "zynqmp-ipi",
    }
}

keyword_enum! {
    /// `transport.kind`.
    pub enum TransportKind {
        /// [`TransportSpec::Sim`].
        Sim = "sim",
        /// [`TransportSpec::Qemu`].
        Qemu = "qemu",
        /// [`TransportSpec::Userspace`].
        Userspace = "userspace",
        /// [`TransportSpec::Kernel`].
        Kernel = "kernel",
    }
}

keyword_enum! {
    /// `transport.core` of a QEMU board: which emulated core runs the firmware.
    pub enum QemuCoreName {
        /// Cortex-R5F (QEMU's `-M none -cpu cortex-r5f`).
        R5f = "r5f",
        /// Cortex-M4F (QEMU's `mps2-an386`).
        M4f = "m4f",
    }
}

impl TransportSpec {
    /// Which kind it is.
    pub fn kind(&self) -> TransportKind {
        match self {
            TransportSpec::Sim { .. } => TransportKind::Sim,
            TransportSpec::Userspace { .. } => TransportKind::Userspace,
            TransportSpec::Kernel { .. } => TransportKind::Kernel,
            TransportSpec::Qemu { .. } => TransportKind::Qemu,
        }
    }
    /// Whether the remote core runs on this host (a child process: the simulated SoC or
    /// QEMU), with no remote processor to control.
    pub fn is_emulated(&self) -> bool {
        matches!(self, TransportSpec::Sim { .. } | TransportSpec::Qemu { .. })
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
        /// How the buffer's device address is learnt (`memory.device_address`); `None`:
        /// from the mapping (an IOMMU, TI's attach ioctl).
        device_address: Option<DeviceAddress>,
    },
    /// A udmabuf made of memfd pages.
    Udmabuf {
        /// Bytes.
        size: u64,
    },
    /// A hugetlbfs memfd: cacheable, contiguous within each huge page, its physical
    /// address from `/proc/self/pagemap` (root), checked contiguous page by page.
    Hugetlb {
        /// Bytes (a multiple of the huge page size).
        size: u64,
    },
    /// A buffer of the out-of-tree u-dma-buf driver (`/dev/udmabufN`): physically
    /// contiguous and cacheable, its physical address in sysfs.
    UDmaBuf {
        /// The device name (`udmabuf0`).
        device: String,
        /// Use only the first `size` bytes (`None`: all of it, as sysfs says).
        size: Option<u64>,
    },
}

keyword_enum! {
    /// `memory.device_address`: where a dma-heap buffer's device address comes from.
    pub enum DeviceAddress {
        /// The physical address of each page from `/proc/self/pagemap` (root), the pages
        /// checked contiguous: a CMA heap on a core without an IOMMU.
        Pagemap = "pagemap",
    }
}

keyword_enum! {
    /// `memory.source`.
    pub enum MemorySource {
        /// [`MemorySpec::Memfd`].
        Memfd = "memfd",
        /// [`MemorySpec::Carveout`].
        Carveout = "carveout",
        /// [`MemorySpec::DmaHeap`].
        DmaHeap = "dma-heap",
        /// [`MemorySpec::Udmabuf`].
        Udmabuf = "udmabuf",
        /// [`MemorySpec::UDmaBuf`].
        UDmaBuf = "u-dma-buf",
        /// [`MemorySpec::Hugetlb`].
        Hugetlb = "hugetlb",
    }
}

impl MemorySpec {
    /// Which source it is.
    pub fn source(&self) -> MemorySource {
        match self {
            MemorySpec::Memfd { .. } => MemorySource::Memfd,
            MemorySpec::Carveout(_) => MemorySource::Carveout,
            MemorySpec::DmaHeap { .. } => MemorySource::DmaHeap,
            MemorySpec::Udmabuf { .. } => MemorySource::Udmabuf,
            MemorySpec::UDmaBuf { .. } => MemorySource::UDmaBuf,
            MemorySpec::Hugetlb { .. } => MemorySource::Hugetlb,
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
            MemorySpec::UDmaBuf { size, .. } => *size,
            MemorySpec::Hugetlb { size } => Some(*size),
        }
    }
    /// Whether the pool has a physical address userspace can learn (so `identity` and
    /// `offset` mappings apply): a carveout, a dma-heap buffer with
    /// `device_address = "pagemap"`, a u-dma-buf buffer.
    pub fn has_phys_addr(&self) -> bool {
        matches!(
            self,
            MemorySpec::Carveout(_)
                | MemorySpec::UDmaBuf { .. }
                | MemorySpec::Hugetlb { .. }
                | MemorySpec::DmaHeap {
                    device_address: Some(DeviceAddress::Pagemap),
                    ..
                }
        )
    }
    /// Whether userspace maps it cacheable (Normal memory): dma-buf heaps, udmabuf,
    /// u-dma-buf opened without `O_SYNC`.
    pub fn is_cacheable(&self) -> bool {
        matches!(
            self,
            MemorySpec::DmaHeap { .. }
                | MemorySpec::Udmabuf { .. }
                | MemorySpec::UDmaBuf { .. }
                | MemorySpec::Hugetlb { .. }
        )
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

keyword_enum! {
    /// `mapping.kind`.
    pub enum MappingKind {
        /// [`MappingSpec::Identity`].
        Identity = "identity",
        /// [`MappingSpec::Offset`].
        Offset = "offset",
        /// [`MappingSpec::Vfio`].
        Vfio = "vfio",
        /// [`MappingSpec::TiRprocAttach`].
        TiRprocAttach = "ti-rproc-attach",
        /// [`MappingSpec::SimIommu`].
        SimIommu = "sim-iommu",
    }
}

impl MappingSpec {
    /// Which kind it is.
    pub fn kind(&self) -> MappingKind {
        match self {
            MappingSpec::Identity => MappingKind::Identity,
            MappingSpec::Offset(_) => MappingKind::Offset,
            MappingSpec::Vfio { .. } => MappingKind::Vfio,
            MappingSpec::TiRprocAttach => MappingKind::TiRprocAttach,
            MappingSpec::SimIommu { .. } => MappingKind::SimIommu,
        }
    }
}

/// The cache maintenance the data plane uses (`[cache]`'s `mode` and its parameters).
///
/// Not the simulator's `CacheMode`, which says only whether the simulated SoC's caches are
/// coherent: this one also names the real backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheMaintenance {
    /// Fences only: coherent hardware, or an uncached mapping.
    Coherent,
    /// `DC CVAC` / `DC CIVAC` at EL0 (`Arm64El0Cache`).
    Arm64El0,
    /// `DMA_BUF_IOCTL_SYNC` (`DmaBufCache`).
    DmaBuf,
    /// The u-dma-buf driver's sysfs `sync_for_device` / `sync_for_cpu` (`UDmaBufCache`).
    UDmaBufSysfs,
    /// The simulator's non-coherent cache model with the coherency sanitizer, evicting as
    /// this says.
    SimNoncoherent(Eviction),
}

keyword_enum! {
    /// `cache.mode`: which [`CacheMaintenance`], without its parameters.
    pub enum CacheKind {
        /// [`CacheMaintenance::Coherent`].
        Coherent = "coherent",
        /// [`CacheMaintenance::Arm64El0`].
        Arm64El0 = "arm64-el0",
        /// [`CacheMaintenance::DmaBuf`].
        DmaBuf = "dma-buf",
        /// [`CacheMaintenance::UDmaBufSysfs`].
        UDmaBufSysfs = "u-dma-buf-sysfs",
        /// [`CacheMaintenance::SimNoncoherent`].
        SimNoncoherent = "sim-noncoherent",
    }
}

impl CacheMaintenance {
    /// Which kind it is.
    pub fn kind(&self) -> CacheKind {
        match self {
            CacheMaintenance::Coherent => CacheKind::Coherent,
            CacheMaintenance::Arm64El0 => CacheKind::Arm64El0,
            CacheMaintenance::DmaBuf => CacheKind::DmaBuf,
            CacheMaintenance::UDmaBufSysfs => CacheKind::UDmaBufSysfs,
            CacheMaintenance::SimNoncoherent(_) => CacheKind::SimNoncoherent,
        }
    }
    /// The configuration's spelling.
    pub fn as_str(&self) -> &'static str {
        self.kind().as_str()
    }
}

/// The `[cache]` table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheSpec {
    /// The maintenance.
    pub mode: CacheMaintenance,
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
            // Board links keep the split rings for now: `intercore inspect` decodes the
            // vrings (announcements, in-flight messages), not inline slots (issue 24).
            inline: false,
            ..HostConfig::default()
        }
    }
}

/// A parsed and validated board file.
///
/// Read one ([`Board::from_file`], [`Board::from_str`]), check it against this machine
/// ([`Board::check`]), open the link ([`Board::open`]). A board whose memory is a
/// carveout given by address, read and checked:
///
/// ```
/// use intercore_board::{Board, CheckEnv, Level, TransportKind};
///
/// let board = Board::from_str(r#"
///     [board]
///     name = "my-board"
///     arch = "aarch64"
///     [remoteproc]
///     name = "78000000.r5f"
///     firmware = "am64-main-r5f0_0-fw"
///     [transport]
///     kind = "kernel"
///     [memory]
///     source = "carveout"
///     base = 0xa5000000
///     size = 0x800000
///     [mapping]
///     kind = "identity"
///     [cache]
///     mode = "coherent"
///     [pool]
///     classes = [[4096, 64], [65536, 16]]
/// "#)?;
/// assert_eq!(board.transport.kind(), TransportKind::Kernel);
/// // What this machine lacks for it, each finding naming the part concerned.
/// for f in board.check(&CheckEnv::default()) {
///     if f.level == Level::Error {
///         println!("{}: {}", f.topic, f.message);
///     }
/// }
/// // A key in the wrong place is an error naming it.
/// let e = Board::from_str("[board]\nname = \"b\"\ncolour = \"red\"\n").unwrap_err();
/// assert!(e.to_string().contains("colour"), "{e}");
/// # Ok::<(), intercore_board::BoardError>(())
/// ```
///
/// Opening a simulated board needs the feature `sim` and the firmwares: the example
/// `open_board` (`cargo run -p intercore-board --features sim --example open_board`).
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
    /// `[vdev]`: where the host places the vrings and buffers the firmware's table leaves
    /// to it (`qemu`, `userspace`).
    pub vdev: crate::vdev::VdevSpec,
    /// `transport.ready_timeout_ms`: how long `intercore up` waits for the core to come up
    /// and announce its service (default [`DEFAULT_READY_TIMEOUT`]).
    pub ready_timeout: Duration,
    /// The file it was read from, if any (relative `firmware_file`s resolve against its
    /// directory).
    pub file: Option<PathBuf>,
}

/// How long `intercore up` waits for a core to announce its service when the board does
/// not say (`transport.ready_timeout_ms`).
pub const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(30);

/// The kernel's rpmsg buffer size (`MAX_RPMSG_BUF_SIZE` in `virtio_rpmsg_bus.c`).
pub const KERNEL_RPMSG_BUF_SIZE: usize = 512;
/// The kernel's largest buffer count per direction (`MAX_RPMSG_NUM_BUFS / 2`).
pub const KERNEL_RPMSG_MAX_BUFS: usize = 256;

/// The default pool: the simulated SoC's (64 × 4 KiB, 16 × 64 KiB, 16 × 1 MiB).
pub fn default_pool() -> PoolConfig {
    PoolConfig {
        classes: vec![(4096, 64), (64 << 10, 16), (1 << 20, 16)],
        align: 4096,
    }
}

impl Board {
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
