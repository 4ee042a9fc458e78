//! Board files: one TOML file that says how to reach the remote core of a board —
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
//! kind = "kernel"                          # "sim" | "qemu" | "userspace" | "kernel"
//!
//! [memory]
//! source = "carveout"                      # "memfd" | "carveout" | "dma-heap" | "udmabuf" | "u-dma-buf" | "hugetlb"
//! reserved_memory = "intercore-pool@a6000000"
//!
//! [mapping]
//! kind = "identity"                        # "identity" | "offset" | "vfio" | "ti-rproc-attach" | "sim-iommu"
//!
//! [cache]
//! mode = "coherent"                        # "coherent" | "arm64-el0" | "dma-buf" | "u-dma-buf-sysfs" | "sim-noncoherent"
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
//! A board with several remote cores names each in a `[[core]]` table (its `name` and its
//! own `[core.remoteproc]`, `[core.transport]`, ... tables; a table a core omits is the
//! file's top-level one): [`BoardFile`] reads any file, core by core, and checks the cores
//! against each other (distinct names, remote processors and control devices; no
//! overlapping memory windows). A file without `[[core]]` is one core ([`DEFAULT_CORE`]),
//! and [`Board::from_file`] reads it as before.
//!
//! Every key of every table is listed in the [Keys](#keys) table below; an unknown key
//! is an error, and so is a key that does not apply to the kind chosen (`heap` with
//! `source = "carveout"`). [`Board::from_str`] collects **every** problem of a file, each
//! naming its key and what is allowed there (`cache.mode = "arm64-el0": needs an aarch64
//! host, and board.arch is "x86_64"`). Keywords are enums ([`TransportKind`],
//! [`MemorySource`], [`MappingKind`], [`CacheKind`], [`Arch`], [`Boot`], and the
//! simulator's and remoteproc's own), and a bad one is reported with the values allowed.
//!
//! Validation looks at the file alone. What only the machine can tell — whether the remote
//! processor exists, the reserved-memory node is in the device tree, `/dev/mem` may be
//! opened, the firmware file is loadable — is [`Board::check`]'s job: it reads sysfs and
//! the device tree and opens (never maps) the device nodes, and reports each finding with
//! the memory sources' and remoteproc control's own errors
//! ([`MemError`](intercore_linux::MemError), [`RprocError`](intercore_linux::RprocError)).
//! It also refuses set-ups that cannot work: overlapping regions (the userspace transport's
//! carveout, the pool, the core's own `memory-region` entries), a `firmware_file` built for
//! another instruction set than the core's device-tree `compatible` names ([`CoreIsa`],
//! which `intercore rproc load` uses too), an install onto a core that is not offline, a vdev
//! already bound to the kernel's `virtio_rpmsg_bus` for the userspace transport, and a
//! firmware that transport cannot drive.
//! A `mapping.kind = "vfio"` board can be opened only by a build with this crate's `vfio`
//! feature (intercore-linux's VFIO backend), and the check says so otherwise.
//! [`Board::open`] opens the link: one [`Link`] implementing `intercore::rpmsg::Transport`
//! whatever the board (`sim`, `qemu`, `kernel`, `userspace`), owning the
//! child process, regions and doorbell it needs.
//!
//! # Where it sits
//!
//! Above `intercore-linux` (the memory sources, remoteproc control and device-tree readers
//! that [`Board::check`] probes with). The simulated SoC and QEMU (`intercore-sim`) are
//! behind this crate's features `sim` and `qemu`, off by default: a board for a real core
//! links no simulator and no firmware. Without them a simulated board still loads (its
//! vocabulary, [`FirmwareName`], [`SimLayout`], [`Eviction`], [`DA_BASE`], [`POOL_IOVA`],
//! is this crate's) and opening or checking it says which feature it needs. With `sim`, the
//! firmware is the caller's ([`OpenEnv`]'s `sim_firmwares`, with the program hosting the
//! remote core). The command line (`intercore board check`, `intercore demo --board`)
//! enables both.
//!
//! # Modules
//!
//! * `model`: the typed [`Board`] and its parts;
//! * `raw`: the file as written (serde types) and where a syntax error is;
//! * `validate`: from the raw file to a [`Board`], one module per table, every problem
//!   collected;
//! * `check`: [`Board::check`], the probes of this machine, one module per part (and
//!   `regions`, the overlaps between them);
//! * `core_isa`: [`CoreIsa`], a remote core's ELF machine and class from its `compatible`;
//! * `display`: the one-aspect-per-line summary ([`Board`]'s `Display`).
//!
//! # Keys
//!
//! | table | key | applies to | meaning |
//! |---|---|---|---|
//! | `board` | `name` | all | free text (required) |
//! | `core` (array of tables) | `name`, `description`, and any of the tables below as `core.TABLE` | all | one remote core each (1..=16); a table it omits is the top-level one |
//! | | `description` | all | free text |
//! | | `arch` | all | the host's architecture: `aarch64`, `x86_64`, `any` (default `any`) |
//! | `remoteproc` | `name` / `index` | not `sim`, `qemu` | the remote processor, by its `name` attribute or N of `remoteprocN` (exactly one) |
//! | | `firmware` | | file name the kernel loads (no `/`) |
//! | | `firmware_file` | `boot = "load"` | local ELF to install as `firmware` (relative to the board file) |
//! | | `boot` | | `load` (default: the kernel boots it) or `attach` (started by the bootloader, IPC-only) |
//! | | `control` | | `sysfs` (default) or `cdev` (`/dev/remoteprocN`) |
//! | `transport` | `kind` | all | `sim`, `qemu` (the firmware as ARM code under QEMU), `userspace` (intercore's own virtio-rpmsg over a carveout), `kernel` (`/dev/rpmsg_ctrlN`) |
//! | | `firmware`, `da_base`, `event_idx`, `layout` | `sim` | the simulated firmware (`echo`, `offload`, `sink`), where the remote sees the carveout, whether the firmware offers EVENT_IDX (default false), the layout (`standard`, `ti-k3`) |
//! | | `core`, `fw_dir` | `qemu` | the emulated core (`r5f`, `m4f`); the directory of intercore's own firmware images (default `$INTERCORE_FW_DIR`, then `target/baremetal/images`, `firmware/images/target`; relative to the board file) |
//! | | `image` | `qemu` | any ELF firmware instead (relative to the board file; `$VAR`, `${VAR:-default}`, `~/` expanded); not with `fw_dir` |
//! | | `ready_timeout_ms` | all | how long `intercore up` waits for the core's service (default 30000; `up --timeout`) |
//! | | `ctrl` | `kernel` | `rpmsg_ctrlN` (default: the only one) |
//! | | `region` or `base` + `size`, `rsc_offset`, `vring_offset`, `doorbell` | `userspace` | the carveout with the resource table, vrings and `vdev0buffer` (reserved-memory node, or physical range); the table's offset in it; where the host places vrings left at `FW_RSC_ADDR_ANY` (to the carveout's end); `poll` (default) or `uio` |
//! | | `uio_device`, `mailbox` | `doorbell = "uio"` | `uioN`; `omap` (TI K3 mailbox: `mbox_map` default 0, `mbox_tx`, `mbox_rx`, `mbox_user`) or `zynqmp-ipi` (`ipi_regs_map` default 0, `ipi_buf_map` default 1, `ipi_req_offset`, `ipi_remote`) |
//! | `memory` | `source` | all | `memfd` (sim), `carveout`, `dma-heap`, `udmabuf` (the kernel's, memfd pages), `u-dma-buf` (the out-of-tree driver's `/dev/udmabufN`), `hugetlb` (a hugetlbfs memfd, its address from `/proc/self/pagemap`) |
//! | | `size` | | bytes (default: the pool's size; a carveout node's own size; required for `dma-heap`, `udmabuf`, `hugetlb`) |
//! | | `access` | `carveout` | `devmem` (default) or `uio` |
//! | | `reserved_memory` or `base` | `carveout`, `devmem` | the `/reserved-memory` node, or the physical base (then `size` is required) |
//! | | `uio_device` + `uio_map`, or `uio_map_name` | `carveout`, `uio` | `uioN` and its map index (default 0), or a map's name |
//! | | `heap` | `dma-heap` | the name under `/dev/dma_heap` |
//! | | `device_address` | `dma-heap` | `pagemap`: the buffer's physical address from `/proc/self/pagemap` (root), checked contiguous page by page — a CMA heap on a core without an IOMMU; then `mapping` is `identity` (default) or `offset` |
//! | | `device` | `u-dma-buf` | `udmabufN`: `/dev/udmabufN`, address and size from `/sys/class/u-dma-buf/udmabufN` (`size` may limit it); `mapping` `identity` (default) or `offset` |
//! | `mapping` | `kind` | all | `identity` (da = pa), `offset` (da = pa + `offset`), `vfio` (`group`, `iova`), `ti-rproc-attach`, `sim-iommu` (`iova`) |
//! | `cache` | `mode` | all | `coherent`, `arm64-el0`, `dma-buf`, `u-dma-buf-sysfs` (the u-dma-buf driver's `sync_for_device`/`sync_for_cpu`), `sim-noncoherent` (`seed`, `per_mille`) |
//! | | `io_coherent` | `coherent` | the interconnect snoops the CPU's caches for the remote core |
//! | `rpmsg` | `buffers`, `buffer_size`, `wait`, `timeout_ms`, `service` | all | buffers per direction, bytes per buffer (with the 16-byte header), how blocking calls wait, their default timeout, the channel to open |
//! | `pool` | `classes`, `align` | all | `[size, count]` per size class; buffer alignment |
//! | `vdev` | `pool_base` + `pool_size` | `qemu`, `userspace` | the vdev's DMA pool (device addresses): vrings at `FW_RSC_ADDR_ANY`, then the buffers, placed as Linux's coherent pool does |
//! | | `buffers_base` + `buffers_size` | `qemu`, `userspace` | a `vdev0buffer` region for the buffers |

#![forbid(unsafe_code)]
#![warn(clippy::too_many_lines)]

mod check;
mod core_isa;
mod cores;
mod display;
mod error;
mod keyword;
mod model;
mod open;
mod pool;
mod raw;
mod validate;
mod vdev;

pub use check::{CheckEnv, Finding, Level};
pub use core_isa::{CoreIsa, ElfKind, WrongCore};
pub use cores::{BoardFile, Core, CoreError, DEFAULT_CORE, MAX_CORE_NAME, MAX_CORES};
pub use error::{BoardError, Problem};
pub use model::{
    Arch, Board, Boot, CacheKind, CacheMaintenance, CacheSpec, DA_BASE, DEFAULT_READY_TIMEOUT,
    DeviceAddress, DoorbellSpec, Eviction, FirmwareName, KERNEL_RPMSG_BUF_SIZE,
    KERNEL_RPMSG_MAX_BUFS, MailboxKind, MappingKind, MappingSpec, MemorySource, MemorySpec,
    POOL_IOVA, PoolCarveout, QemuCoreName, RegionSpec, RpmsgSpec, RprocSelector, RprocSpec,
    SimLayout, TransportKind, TransportSpec, default_pool,
};
#[cfg(feature = "sim")]
pub use open::SimBus;
pub use open::{
    Broken, DataPlaneError, EventfdBus, KernelOpener, Link, LinkMsg, LinkParts, LinuxPoll, OpenEnv,
    OpenError, UserMem, UserPollBus, UserRingsBus, UserUioBus, console_tail, expand_path,
};
#[cfg(feature = "qemu")]
pub use open::{NoQemuImage, QemuBus, QemuImageError, qemu_image};
pub use pool::{BoardPool, PoolCache};
pub use raw::{MAX_NESTING, MAX_STRUCTURE};
pub use validate::MAX_POOL_BUFFERS;
pub use vdev::{DaRange, VdevPlan, VdevSpec, Wake};
