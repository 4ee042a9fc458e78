//! The command line of `intercore`, as `clap` derive types, kept apart from what the
//! commands do so that tests can walk the whole [`clap::Command`] tree
//! (`Cli::command()`): every subcommand, every option, every numeric range.
//! Re-exported at the crate root.
//!
//! Conventions every command follows:
//!
//! * Exit status: [`EXIT_OK`] 0 done, [`EXIT_FAILED`] 1 failed (the message says why),
//!   [`EXIT_USAGE`] 2 a usage error (unknown option, bad or out-of-range value), plus
//!   command-specific codes listed in each command's help (`board check --strict`:
//!   [`EXIT_BOARD_UNOPENABLE`] 3).
//! * Every numeric option is range-checked by its parser; the help text states the range
//!   as `[range: LO..=HI]` (seconds for durations), and the error names the option, the
//!   value and the range. Counts are capped so that nothing allocates absurd memory or
//!   runs for days; durations are finite, positive and at most a day.
//! * `--json` (global, accepted by every command) prints results as JSON on stdout; an
//!   error is then exactly one line on stdout, `{"error":{"message":…,"path":…,"option":…}}`
//!   (`path` and `option` only when known), with the same exit status.

use clap::{Args, Parser, Subcommand, ValueEnum};
use intercore::WaitMode;
use intercore_sim::{CacheMode, Eviction};
use std::path::PathBuf;
use std::time::Duration;

/// Done.
pub const EXIT_OK: u8 = 0;
/// Failed; the message says why.
pub const EXIT_FAILED: u8 = 1;
/// Usage error: unknown command or option, missing or invalid value.
pub const EXIT_USAGE: u8 = 2;
/// `board check --strict`: the board file is valid but this machine cannot open it.
pub const EXIT_BOARD_UNOPENABLE: u8 = 3;

/// `demo --messages` at most: 10 million round trips (80 MB of latency samples, minutes
/// on a loaded machine).
pub const MESSAGES_MAX: u64 = 10_000_000;
/// `demo --bulk-mib` at most: 64 GiB through the data plane (tens of seconds).
pub const BULK_MIB_MAX: u64 = 64 << 10;
/// `bench --samples` bounds.
pub const SAMPLES_MIN: u64 = 100;
/// `bench --samples` at most.
pub const SAMPLES_MAX: u64 = 10_000_000;
/// Longest duration any option takes: one day.
pub const DURATION_MAX_S: f64 = 86_400.0;
/// Shortest duration any option takes: 1 ms.
pub const DURATION_MIN_S: f64 = 0.001;
/// `kernel-echo --messages` at most.
pub const ECHO_MESSAGES_MAX: u64 = 10_000_000;
/// Longest spin of `adaptive:MICROS`: one second.
pub const ADAPTIVE_MAX_US: u64 = 1_000_000;

const EXIT_HELP: &str = "\
Exit status: 0 done; 1 failed (the message says why); 2 usage error (unknown option, bad or
out-of-range value); commands list their own further codes (board check --strict: 3).
With --json, results are JSON on stdout and an error is one line on stdout:
{\"error\":{\"message\":...,\"path\":...,\"option\":...}} (path and option when known).";

/// `intercore`: virtio-rpmsg and zero-copy shared memory between Linux and a remote core.
#[derive(Parser, Debug)]
#[command(
    name = "intercore",
    version,
    about = "virtio-rpmsg and zero-copy shared memory between Linux and a remote core",
    after_help = EXIT_HELP,
    subcommand_required = true,
    arg_required_else_help = true,
    propagate_version = true
)]
pub struct Cli {
    /// Print results as JSON on stdout; an error is then one JSON line on stdout.
    #[arg(long, global = true)]
    pub json: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Bring a board's core and link up (boards/*.toml).
    ///
    /// For sim, qemu and userspace boards the link lives in one process, the link owner:
    /// `up` starts it in the background (or stays in the foreground with --foreground),
    /// returns once the link is up, and ping/echo/bench --board reach it through its
    /// control socket ($XDG_RUNTIME_DIR/intercore/, else /tmp/intercore-UID/). For kernel
    /// boards the kernel owns the link: `up` starts (or attaches to) the core and waits for
    /// its rpmsg control device. An already-up board is reported and exits 0.
    Up(UpArgs),
    /// Stop a board's link owner and its core (a kernel board's core: stop or detach).
    Down(BoardArg),
    /// Verified round trips through a board's link; prints p50/p99/min/max.
    Ping(PingArgs),
    /// Verified echo of messages of every size from 1 byte to the largest payload.
    Echo(EchoArgs),
    /// Start the simulated SoC and exchange verified messages and bulk data with it.
    ///
    /// The offload firmware runs in its own process; an endpoint is opened through the
    /// name service and N verified messages of 1..496 bytes are exchanged, then N MiB are
    /// streamed through the zero-copy data plane in 1 MiB buffers, each CRC32C'd by the
    /// remote in place and checked. Prints percentiles and GB/s; --json ends with one JSON
    /// line. Progress shows on stderr when it is a terminal.
    Demo(DemoArgs),
    /// Measure intercore side by side with the machine's floor, a Unix socket and a pipe.
    ///
    /// Round trips (1/64/496 B; poll, event, adaptive), batched one-way throughput, bulk
    /// GB/s (4 KiB..4 MiB, coherent and non-coherent) against one write pass, and a soak.
    /// Prints ratios to the baselines; --json one object per row (each printed as it is
    /// measured) and a summary. The access counts per message are another program:
    /// `cargo run --release -p intercore-bench --bin accesses`.
    ///
    /// With --board FILE: rtt, throughput and bulk through that board's link, rows naming
    /// the board and transport; host-only baselines say n/a.
    Bench(BenchArgs),
    /// The simulator's own checks.
    #[command(subcommand)]
    Sim(SimCommand),
    /// Print the remoteproc resource table of an ELF firmware file.
    ///
    /// Its .resource_table section (carveouts, trace buffers, vdevs with features, status
    /// and vrings), as the kernel would read it; a malformed file is an error naming the
    /// offset (exit 1). This binary carries the offload firmware's table:
    /// intercore rsc $(which intercore).
    Rsc(RscArgs),
    /// Decode a live or frozen link read-only and say what is wrong.
    ///
    /// The resource table, vdev status and features, each vring's indices, flags and
    /// event indices, the buffers the remote holds, the last messages' headers each way,
    /// the name-service announcements, and a diagnosis of stuck states with the evidence.
    /// Input: a board's running link (--board), a shared-memory file (--shm) or a raw dump
    /// (--dump --base ADDR), opened read-only. Exit 4 if the link is stuck or broken.
    Inspect(crate::inspect::InspectArgs),
    /// Remote processors under /sys/class/remoteproc: list, start, stop, detach, load.
    #[command(subcommand)]
    Rproc(RprocCommand),
    /// Board files (boards/*.toml).
    #[command(subcommand)]
    Board(BoardCommand),
    /// Serve the remote role as a vhost-user virtio-rpmsg device on a Unix socket.
    ///
    /// Device id 7, two queues, name service, for one front end until it disconnects: a
    /// user-mode Linux guest (virtio_uml.device=PATH:7) binds it with its own
    /// virtio_rpmsg_bus. echo announces rpmsg-raw and echoes; sink announces
    /// intercore-sink and counts. Exit 1 if the firmware failed. An existing PATH is
    /// replaced only if it is a socket nobody listens on.
    VhostUser(VhostUserArgs),
    /// Echo messages through the kernel's /dev/rpmsg_ctrlN (the kernel transport).
    ///
    /// Finds an echo service, opens an endpoint to it, exchanges N verified messages and
    /// destroys the endpoint. For a guest talking to intercore vhost-user. Exit 1 on any
    /// mismatch.
    KernelEcho(KernelEchoArgs),
    /// Run the data plane through the kernel's /dev/rpmsg_ctrlN (the kernel transport).
    ///
    /// Finds the intercore-dp service, opens an endpoint to it, and streams N buffers of
    /// its own memory through the data plane (DpHost over KernelRpmsg): each is filled,
    /// handed over by its physical address (read from /proc/self/pagemap: needs root) for
    /// a CRC32C, and the CRC the device wrote in place is checked. For a guest talking to
    /// intercore vhost-user --firmware offload, which reaches the guest's RAM. Exit 1 on
    /// any mismatch.
    KernelBulk(KernelBulkArgs),
    /// Measure many endpoints through the kernel's /dev/rpmsg_ctrlN (bench scale's counts).
    ///
    /// For each count M: creates M endpoints to an echo service, keeps one 64-byte message
    /// in flight on each from one thread (epoll over the /dev/rpmsgN descriptors), checks
    /// every echo, and prints a row of bench scale's shape (kernel-rpmsg-1xM: msgs/s, CPU
    /// per round trip, p50/p99); then destroys the endpoints and checks their nodes are
    /// gone. For a guest talking to intercore vhost-user. Exit 1 on any wrong or lost echo.
    KernelScale(KernelScaleArgs),
}

/// `intercore up`.
#[derive(Args, Debug, Clone)]
pub struct UpArgs {
    /// The board file
    #[arg(long, value_name = "FILE")]
    pub board: PathBuf,
    /// The core to bring up, by its `[[core]]` name (default: every core of the file, one
    /// link owner each)
    #[arg(long, value_name = "NAME")]
    pub core: Option<String>,
    /// Stay in the foreground as the link owner (until `intercore down` or a signal)
    #[arg(long)]
    pub foreground: bool,
    /// (internal) run as the background owner `up` started: report readiness on stdout
    #[arg(long, hide = true, conflicts_with = "foreground")]
    pub daemon_child: bool,
    /// How long to wait for the core to come up and announce its service, in seconds
    /// (default: the board's transport.ready_timeout_ms, else 30) [range: 0.001..=3600 s]
    #[arg(long, value_name = "SECS", allow_negative_numbers = true,
          value_parser = seconds(DURATION_MIN_S, 3600.0))]
    pub timeout: Option<Duration>,
}

/// A command that needs only the board.
#[derive(Args, Debug, Clone)]
pub struct BoardArg {
    /// The board file
    #[arg(long, value_name = "FILE")]
    pub board: PathBuf,
    /// The core, by its `[[core]]` name (default: every core of the file)
    #[arg(long, value_name = "NAME")]
    pub core: Option<String>,
}

/// `ping --count` and `echo --messages` at most.
pub const LINK_COUNT_MAX: u64 = 10_000_000;

/// `intercore ping`.
#[derive(Args, Debug, Clone)]
pub struct PingArgs {
    /// The board file
    #[arg(long, value_name = "FILE")]
    pub board: PathBuf,
    /// The core, by its `[[core]]` name (default: every core of the file, in turn)
    #[arg(long, value_name = "NAME")]
    pub core: Option<String>,
    /// Round trips, each verified [range: 1..=10000000]
    #[arg(long, value_name = "N", default_value = "100", allow_negative_numbers = true,
          value_parser = count(1, LINK_COUNT_MAX))]
    pub count: u64,
}

/// `intercore echo`.
#[derive(Args, Debug, Clone)]
pub struct EchoArgs {
    /// The board file
    #[arg(long, value_name = "FILE")]
    pub board: PathBuf,
    /// The core, by its `[[core]]` name (default: every core of the file, in turn)
    #[arg(long, value_name = "NAME")]
    pub core: Option<String>,
    /// Messages, sizes 1, 2, ... up to the largest payload and round again [range:
    /// 1..=10000000] (default: one of each size)
    #[arg(long, value_name = "N", allow_negative_numbers = true,
          value_parser = count(1, LINK_COUNT_MAX))]
    pub messages: Option<u64>,
}

/// `intercore demo`.
///
/// What the demo runs against is the simulated SoC today; options choosing another target
/// (a board file, a layout, a SoC) belong in [`DemoTarget`].
#[derive(Args, Debug, Clone)]
pub struct DemoArgs {
    /// What the demo runs against.
    #[command(flatten)]
    pub target: DemoTarget,
    /// Messages to exchange, each verified (default 100000; 2000 on an emulated core,
    /// --soc qemu-*) [range: 0..=10000000]
    #[arg(long, value_name = "N", allow_negative_numbers = true,
          value_parser = count(0, MESSAGES_MAX))]
    pub messages: Option<u64>,
    /// MiB to stream through the zero-copy data plane, 0 for none (default 256; 16 on an
    /// emulated core) [range: 0..=65536]
    #[arg(long, value_name = "MIB", allow_negative_numbers = true,
          value_parser = count(0, BULK_MIB_MAX))]
    pub bulk_mib: Option<u64>,
    /// Cache model of the bulk stage: coherent; or noncoherent, noncoherent:SEED or
    /// noncoherent:SEED:PER_MILLE (the coherency sanitizer; at each hook a random line
    /// the peer owns is evicted with a chance of PER_MILLE/1000, 0..=1000; default seed
    /// 1, 50 per mille)
    #[arg(long, value_name = "MODE", default_value = "coherent", value_parser = cache_mode)]
    pub cache: CacheMode,
    /// How the host waits: poll | event | adaptive | adaptive:MICROS (spin up to MICROS
    /// µs, 0..=1000000, then sleep)
    #[arg(long, value_name = "MODE", default_value = "adaptive:50", value_parser = wait_mode)]
    pub wait: WaitMode,
    /// How the remote waits (same choices as --wait)
    #[arg(long, value_name = "MODE", default_value = "adaptive:50", value_parser = wait_mode)]
    pub remote_wait: WaitMode,
    /// Seed of the message sizes and contents [range: 0..=18446744073709551615]
    #[arg(long, value_name = "S", default_value = "1", allow_negative_numbers = true,
          value_parser = count(0, u64::MAX))]
    pub seed: u64,
}

/// What `demo` runs against: the simulated SoC, described by a board file (`--board`) or
/// laid out as `--layout` says (`--layout ti-k3` is the same as `--board
/// boards/sim-ti-k3.toml`).
#[derive(Args, Debug, Clone, Default)]
pub struct DemoTarget {
    /// A board file whose transport is the simulated SoC (`kind = "sim"`): its firmware,
    /// device address, EVENT_IDX offer, layout, cache mode, rpmsg buffers and pool classes
    /// are used; the firmware must be "offload" for the bulk stage (or --bulk-mib 0)
    #[arg(long, value_name = "FILE", conflicts_with_all = ["layout", "soc"])]
    pub board: Option<PathBuf>,
    /// Which SoC: sim (the simulated SoC, default), or the firmware as ARM machine code on an
    /// emulated core under QEMU: qemu-r5f (Cortex-R5F) or qemu-m4f (Cortex-M4F)
    #[arg(long, value_name = "SOC", conflicts_with = "layout")]
    pub soc: Option<SocKind>,
    /// Where the QEMU firmware images are (default $INTERCORE_FW_DIR, then
    /// target/baremetal/images, then firmware/images/target)
    #[arg(long, value_name = "DIR")]
    pub fw_dir: Option<PathBuf>,
    /// How the simulated SoC lays out its shared memory: standard (one carveout, everything
    /// at fixed addresses) or ti-k3 (as on TI K3: the resource table at the start of the
    /// firmware's region, vrings placed by the host, buffers from the DMA region, the
    /// firmware started before the host attaches)
    #[arg(long, value_name = "LAYOUT")]
    pub layout: Option<Layout>,
}

/// `demo --soc`.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocKind {
    /// The simulated SoC (the firmware as a Linux process).
    Sim,
    /// QEMU's Cortex-R5F.
    QemuR5f,
    /// QEMU's Cortex-M4F (mps2-an386).
    QemuM4f,
}

/// The simulated SoC's shared-memory layouts (`intercore_sim::SimLayout`).
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Layout {
    /// One carveout: table, vrings and a `vdev0buffer` carveout at fixed addresses.
    #[default]
    Standard,
    /// TI K3: table in the firmware's region, vrings at FW_RSC_ADDR_ANY, no buffer carveout.
    TiK3,
}

impl Layout {
    /// The simulator's layout.
    pub fn sim(self) -> intercore_sim::SimLayout {
        match self {
            Layout::Standard => intercore_sim::SimLayout::Standard,
            Layout::TiK3 => intercore_sim::SimLayout::TiK3,
        }
    }
}

/// One `bench` suite.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Suite {
    /// Round trips.
    Rtt,
    /// Batched one-way throughput.
    Throughput,
    /// Zero-copy bulk GB/s.
    Bulk,
    /// A soak of --duration seconds.
    Soak,
    /// Many remotes × endpoints through one reactor thread (not in the default run).
    Scale,
    /// The spin floor and the inline-slot rings' round trips only: the first rows of rtt
    /// (not in the default run)
    RttInline,
}

impl Suite {
    /// The suite's name.
    pub fn name(self) -> &'static str {
        match self {
            Suite::Rtt => "rtt",
            Suite::Throughput => "throughput",
            Suite::Bulk => "bulk",
            Suite::Soak => "soak",
            Suite::Scale => "scale",
            Suite::RttInline => "rtt-inline",
        }
    }
}

/// `intercore bench`.
#[derive(Args, Debug, Clone)]
pub struct BenchArgs {
    /// Suites to run (default: all; a few minutes)
    #[arg(value_enum)]
    pub suites: Vec<Suite>,
    /// Soak duration in seconds; the soak reports one row per second [range: 1..=86400 s]
    #[arg(long, value_name = "SECS", default_value = "5", allow_negative_numbers = true,
          value_parser = seconds(1.0, DURATION_MAX_S))]
    pub duration: Duration,
    /// Round-trip samples per row [range: 100..=10000000]
    #[arg(long, value_name = "N", default_value = "20000", allow_negative_numbers = true,
          value_parser = count(SAMPLES_MIN, SAMPLES_MAX))]
    pub samples: u64,
    /// Also write an SVG plot to FILE (a new file, or an earlier plot; never through a
    /// symbolic link, nor into a FIFO or device)
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
    /// Let --plot replace an existing regular file that is not an earlier plot
    #[arg(long, requires = "plot")]
    pub force: bool,
    /// Measure through this board's link instead (rtt, throughput, bulk; the board's core
    /// is the peer; `intercore up --board FILE` first for sim/qemu/userspace boards)
    #[arg(long, value_name = "FILE", conflicts_with = "plot")]
    pub board: Option<PathBuf>,
    /// With --board: the core to measure, by its `[[core]]` name (required when the file
    /// names several)
    #[arg(long, value_name = "NAME", requires = "board")]
    pub core: Option<String>,
}

/// `intercore sim ...`.
#[derive(Subcommand, Debug, Clone)]
pub enum SimCommand {
    /// Inject each cache-maintenance bug class and IOMMU violation; show each is caught.
    ///
    /// Missing clean, missing invalidate, dirty eviction over peer data, unmapped and
    /// read-only IOMMU windows; then a correct run under random eviction that must be
    /// clean. Exit 1 if any is missed.
    Selftest,
}

/// `intercore rsc`.
#[derive(Args, Debug, Clone)]
pub struct RscArgs {
    /// The ELF firmware file (symbolic links followed; a regular file of at most 256 MiB)
    pub file: PathBuf,
}

/// Roots of the remoteproc interface (a fake tree in tests).
#[derive(Args, Debug, Clone)]
pub struct RprocRoots {
    /// sysfs root (class/remoteproc, module/firmware_class)
    #[arg(long, value_name = "DIR", default_value = "/sys")]
    pub sysfs: PathBuf,
    /// Device node root (remoteprocN)
    #[arg(long, value_name = "DIR", default_value = "/dev")]
    pub dev: PathBuf,
    /// Where to install firmware (default: firmware_class.path, else /lib/firmware; required
    /// with another --sysfs whose firmware_class.path is unset)
    #[arg(long, value_name = "DIR")]
    pub firmware_dir: Option<PathBuf>,
}

/// Which interface carries start/stop/detach.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlArg {
    /// /sys/class/remoteproc/remoteprocN/state
    Sysfs,
    /// /dev/remoteprocN (CONFIG_REMOTEPROC_CDEV)
    Cdev,
}

/// Options of the commands that change a core's state.
#[derive(Args, Debug, Clone)]
pub struct RprocControl {
    /// The remote processor: N, remoteprocN or its name (default: the only one)
    #[arg(long, value_name = "NAME|N")]
    pub rproc: Option<String>,
    /// Interface for the command
    #[arg(long, value_enum, default_value = "sysfs")]
    pub control: ControlArg,
    /// How long to wait for the new state, in seconds [range: 0.001..=3600 s]
    #[arg(long, value_name = "SECS", default_value = "10", allow_negative_numbers = true,
          value_parser = seconds(DURATION_MIN_S, 3600.0))]
    pub timeout: Duration,
    /// Filesystem roots.
    #[command(flatten)]
    pub roots: RprocRoots,
}

/// `intercore rproc ...`.
#[derive(Subcommand, Debug, Clone)]
#[command(
    after_help = "Exit status: 0 done; 1 refused or failed (the message says why and \
                        what to do); 2 usage error."
)]
pub enum RprocCommand {
    /// List the remote processors: index, name, state, firmware (an unreadable attribute
    /// shows as unreadable).
    List {
        /// Filesystem roots.
        #[command(flatten)]
        roots: RprocRoots,
    },
    /// Start (or attach to) a remote processor and wait until it is up.
    Start(RprocControl),
    /// Stop a remote processor and wait until it is offline.
    Stop(RprocControl),
    /// Detach from an attached remote processor (it keeps running).
    Detach(RprocControl),
    /// Install a checked ELF firmware where the kernel looks, and select it.
    ///
    /// Installed in firmware_class.path (else /lib/firmware) atomically, then written to
    /// `firmware`. Refused with the reason when the state does not allow it (the kernel
    /// changes firmware only while offline).
    Load(RprocLoad),
}

/// `intercore rproc load`.
#[derive(Args, Debug, Clone)]
pub struct RprocLoad {
    /// The ELF firmware file (symbolic links followed; a regular file of at most 256 MiB)
    pub file: PathBuf,
    /// Install under this name (default: the file's name)
    #[arg(long)]
    pub name: Option<String>,
    /// Start the core after loading
    #[arg(long)]
    pub start: bool,
    /// Core selection, control interface, timeout and roots.
    #[command(flatten)]
    pub control: RprocControl,
}

/// `intercore board ...`.
#[derive(Subcommand, Debug, Clone)]
pub enum BoardCommand {
    /// Validate board files, print what each describes and what opening it here would do.
    ///
    /// Reads the board file (remote processor and firmware, transport, data-plane memory,
    /// device-address mapping, cache mode, rpmsg parameters), prints it, then what opening
    /// it on this machine would open and why it cannot, mapping nothing.
    #[command(
        after_help = "Exit status: 0 valid; 1 invalid file (each problem named by \
                            key); 2 usage error; 3 valid but this machine cannot open it \
                            (only with --strict). With several files, one verdict each \
                            and the worst status (1 over 3 over 0)."
    )]
    Check(BoardCheck),
}

/// `intercore board check`.
#[derive(Args, Debug, Clone)]
pub struct BoardCheck {
    /// The board files (TOML, at most 1 MiB each): `board check boards/*.toml`
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Exit 3 when this machine cannot open a valid board
    #[arg(long)]
    pub strict: bool,
    /// Check as if the host were ARCH (aarch64, x86_64; default: this host's)
    #[arg(long)]
    pub arch: Option<String>,
    /// sysfs root
    #[arg(long, value_name = "DIR")]
    pub sysfs: Option<PathBuf>,
    /// Device node root
    #[arg(long, value_name = "DIR")]
    pub dev: Option<PathBuf>,
    /// Device-tree root (/proc/device-tree)
    #[arg(long, value_name = "DIR")]
    pub device_tree: Option<PathBuf>,
    /// Firmware directory
    #[arg(long, value_name = "DIR")]
    pub firmware_dir: Option<PathBuf>,
}

/// Which firmware `vhost-user` runs.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum FirmwareArg {
    /// Announces rpmsg-raw and echoes.
    Echo,
    /// Announces intercore-sink and counts.
    Sink,
    /// firmware/offload: rpmsg-raw (echo), intercore-stats and the data plane's
    /// intercore-dp over buffers in the guest's RAM.
    Offload,
}

/// `intercore vhost-user`.
#[derive(Args, Debug, Clone)]
pub struct VhostUserArgs {
    /// The Unix socket to listen on (an existing path is replaced only if it is a socket
    /// nobody listens on)
    #[arg(long, value_name = "PATH")]
    pub socket: PathBuf,
    /// The firmware to run
    #[arg(long, value_enum, default_value = "echo")]
    pub firmware: FirmwareArg,
    /// Log each vhost-user message on stderr
    #[arg(long)]
    pub verbose: bool,
}

/// `intercore kernel-echo`.
#[derive(Args, Debug, Clone)]
pub struct KernelEchoArgs {
    /// The rpmsg control device under /dev
    #[arg(long, value_name = "rpmsg_ctrlN", default_value = "rpmsg_ctrl0")]
    pub ctrl: String,
    /// The echo service's name
    #[arg(long, value_name = "NAME", default_value = intercore_fw_echo::SERVICE)]
    pub service: String,
    /// Messages to exchange [range: 1..=10000000]
    #[arg(long, value_name = "N", default_value = "100", allow_negative_numbers = true,
          value_parser = count(1, ECHO_MESSAGES_MAX))]
    pub messages: u64,
}

/// `intercore kernel-bulk`.
#[derive(Args, Debug, Clone)]
pub struct KernelBulkArgs {
    /// The rpmsg control device under /dev
    #[arg(long, value_name = "rpmsg_ctrlN", default_value = "rpmsg_ctrl0")]
    pub ctrl: String,
    /// The data-plane service's name
    #[arg(long, value_name = "NAME", default_value = intercore::wire::dataplane::DP_SERVICE)]
    pub service: String,
    /// Buffers to stream through the data plane [range: 1..=10000000]
    #[arg(long, value_name = "N", default_value = "1000", allow_negative_numbers = true,
          value_parser = count(1, ECHO_MESSAGES_MAX))]
    pub buffers: u64,
    /// Pages in the pool (one buffer each) [range: 1..=4096]
    #[arg(long, value_name = "N", default_value = "32", allow_negative_numbers = true,
          value_parser = count(1, 4096))]
    pub pages: u64,
}

/// `intercore kernel-scale`.
#[derive(Args, Debug, Clone)]
pub struct KernelScaleArgs {
    /// The rpmsg control device under /dev
    #[arg(long, value_name = "rpmsg_ctrlN", default_value = "rpmsg_ctrl0")]
    pub ctrl: String,
    /// The echo service's name
    #[arg(long, value_name = "NAME", default_value = intercore_fw_echo::SERVICE)]
    pub service: String,
    /// Endpoint counts, one row each [range: 1..=1024 each]
    #[arg(long, value_name = "M,M,...", value_delimiter = ',', default_value = "1,16,64,256",
          allow_negative_numbers = true, value_parser = count(1, 1024))]
    pub endpoints: Vec<u64>,
    /// Warm-up before each row's window, in seconds [range: 0.001..=60 s]
    #[arg(long, value_name = "SECS", default_value = "0.2", allow_negative_numbers = true,
          value_parser = seconds(DURATION_MIN_S, 60.0))]
    pub warm_up: Duration,
    /// Each row's measured window, in seconds [range: 0.001..=60 s]
    #[arg(long, value_name = "SECS", default_value = "1", allow_negative_numbers = true,
          value_parser = seconds(DURATION_MIN_S, 60.0))]
    pub window: Duration,
}

/// A parser for an integer in `lo..=hi`; the error states the range.
pub fn count(lo: u64, hi: u64) -> impl Fn(&str) -> Result<u64, String> + Clone + Send + Sync {
    move |s: &str| {
        let range = || format!("an integer in {lo}..={hi}");
        let v: u64 = s.trim().parse().map_err(|_| {
            if s.trim().is_empty() {
                format!("empty; expected {}", range())
            } else {
                format!("not {}", range())
            }
        })?;
        if v < lo || v > hi {
            return Err(format!("out of range; expected {}", range()));
        }
        Ok(v)
    }
}

/// A parser for a duration in seconds within `lo..=hi` (finite, positive).
pub fn seconds(
    lo: f64,
    hi: f64,
) -> impl Fn(&str) -> Result<Duration, String> + Clone + Send + Sync {
    move |s: &str| {
        let range = || format!("a number of seconds in {lo}..={hi}");
        let v: f64 = s.trim().parse().map_err(|_| {
            if s.trim().is_empty() {
                format!("empty; expected {}", range())
            } else {
                format!("not {}", range())
            }
        })?;
        if !v.is_finite() || v < lo || v > hi {
            return Err(format!("out of range; expected {}", range()));
        }
        Ok(Duration::from_secs_f64(v))
    }
}

/// Parses `poll | event | adaptive | adaptive:MICROS` (MICROS in 0..=1000000).
pub fn wait_mode(s: &str) -> Result<WaitMode, String> {
    match s {
        "poll" => Ok(WaitMode::Poll),
        "event" => Ok(WaitMode::Event),
        "adaptive" => Ok(WaitMode::default()),
        _ => {
            let us = s
                .strip_prefix("adaptive:")
                .ok_or_else(|| "expected poll, event, adaptive or adaptive:MICROS".to_string())?;
            let us = count(0, ADAPTIVE_MAX_US)(us).map_err(|e| format!("adaptive:MICROS: {e}"))?;
            Ok(WaitMode::Adaptive(Duration::from_micros(us)))
        }
    }
}

/// The text of a wait mode, as [`wait_mode`] parses it.
pub fn wait_mode_name(w: WaitMode) -> String {
    w.to_string()
}

/// Parses `coherent | noncoherent[:SEED[:PER_MILLE]]` (PER_MILLE in 0..=1000).
pub fn cache_mode(s: &str) -> Result<CacheMode, String> {
    let mut it = s.split(':');
    match it.next() {
        Some("coherent") if it.next().is_none() => Ok(CacheMode::Coherent),
        Some("noncoherent") => {
            let d = Eviction::default();
            let seed = it.next().map_or(Ok(d.seed), |v| {
                count(0, u64::MAX)(v).map_err(|e| format!("noncoherent:SEED: {e}"))
            })?;
            let per_mille = it.next().map_or(Ok(d.per_mille.into()), |v| {
                count(0, 1000)(v).map_err(|e| format!("noncoherent:SEED:PER_MILLE: {e}"))
            })? as u32;
            if it.next().is_some() {
                return Err("expected noncoherent[:SEED[:PER_MILLE]]".into());
            }
            Ok(CacheMode::NonCoherent(Eviction { seed, per_mille }))
        }
        _ => Err("expected coherent or noncoherent[:SEED[:PER_MILLE]]".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// clap's own consistency checks over the whole tree (duplicate names, bad defaults:
    /// every default is parsed by its value parser here).
    #[test]
    fn command_tree_is_consistent() {
        Cli::command().debug_assert();
        let c = Cli::try_parse_from(["intercore", "demo"]).unwrap();
        let Command::Demo(d) = c.command else {
            panic!()
        };
        assert_eq!((d.messages, d.bulk_mib, d.seed), (None, None, 1));
        assert_eq!(d.wait, WaitMode::default());
    }

    /// Parsers refuse what would overflow or run forever, and state the range.
    #[test]
    fn parsers_state_ranges() {
        assert!(count(0, 10)("11").unwrap_err().contains("0..=10"));
        assert!(count(0, 10)("").unwrap_err().contains("empty"));
        assert!(count(0, 10)("-1").is_err());
        for bad in ["NaN", "inf", "-1", "0", "1e300", "-inf", ""] {
            assert!(seconds(0.001, 10.0)(bad).is_err(), "{bad}");
        }
        assert_eq!(
            seconds(0.001, 10.0)("2.5").unwrap(),
            Duration::from_millis(2500)
        );
        assert!(wait_mode("adaptive:18446744073709551615").is_err());
        assert_eq!(
            wait_mode("adaptive:7").unwrap(),
            WaitMode::Adaptive(Duration::from_micros(7))
        );
        assert!(cache_mode("noncoherent:1:1001").is_err());
        assert!(cache_mode("noncoherent:1:2:3").is_err());
        assert_eq!(cache_mode("noncoherent").unwrap().name(), "noncoherent");
    }
}
