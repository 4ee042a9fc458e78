//! [`Board::open`]: from a board file to a live link, one [`Transport`] whatever the board.
//!
//! * `sim`: starts the simulated SoC (`intercore_sim::Soc`, the firmware in a child
//!   process) and opens the host bus over its memfd and eventfds;
//! * `qemu`: starts QEMU with the firmware image (`intercore_sim::qemu::QemuSoc`) and opens
//!   the host bus over the shared memfd with the polling doorbell;
//! * `kernel`: remoteproc installs the firmware (if the board names a `firmware_file`),
//!   starts or attaches to the core and waits until it is `running`/`attached`, then the
//!   rpmsg control device (`/dev/rpmsg_ctrlN`) is waited for and opened
//!   ([`KernelRpmsg`]);
//! * `userspace`: remoteproc as for `kernel` if the board has `[remoteproc]` (the kernel's
//!   `virtio_rpmsg_bus` must not claim the vdev: `board check` says when it does), then the
//!   carveout is mapped through `/dev/mem` (uncached), the resource table validated at
//!   `rsc_offset`, vrings the table leaves at `FW_RSC_ADDR_ANY` placed from
//!   `vring_offset`, and the doorbell picked: `poll` at the block the firmware's intercore
//!   vendor entry declares, or `uio` ([`UioDoorbell`](intercore_linux::UioDoorbell)).
//!
//! The [`Link`] owns what it needs: the child process, the regions, the doorbell. Dropping
//! it resets the device (host bus) and kills the child; [`Link::shut_down`] waits for the
//! firmware to exit by itself first and says how it ended.

// Async access (intercore-tokio): `Link::async_parts`, `LinkParts`.
mod parts;
#[cfg(feature = "qemu")]
mod qemu;
#[cfg(feature = "sim")]
mod sim;

use crate::model::{Board, Boot, TransportSpec};
use crate::pool::PoolCache;
use intercore::SharedMemory;
use intercore::dataplane::DpHost;
use intercore::pollbell::{PollDoorbell, PollSide, PolledRings};
use intercore::rpmsg::{Channel, HostBus, HostConfig, MessageIo, RscLocation, Transport};
use intercore::wire::dataplane::DP_SERVICE;
use intercore::wire::rsc::ResourceTable;
pub use intercore_linux::notify::LinuxPoll;
use intercore_linux::remoteproc::{Remoteproc, RprocPaths};
use intercore_linux::rpmsg_char::{KernelRpmsg, RpmsgCharError, RpmsgPaths};
use intercore_linux::{DevMemCaching, PhysCarveout, SysRoots, UioDoorbell};
pub use parts::{EventfdBus, LinkParts};
#[cfg(feature = "qemu")]
use qemu::QemuSoc;
#[cfg(feature = "qemu")]
pub use qemu::{NoQemuImage, QemuBus, QemuImageError, qemu_image};
pub use reactor::LinkMsg;
#[cfg(feature = "sim")]
pub use sim::SimBus;
#[cfg(feature = "sim")]
use sim::Soc;
use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The userspace transport's memory: the carveout mapped through `/dev/mem`.
pub type UserMem = Arc<PhysCarveout>;
/// The userspace transport's host bus with the polling doorbell.
pub type UserPollBus = HostBus<UserMem, PollDoorbell<UserMem, LinuxPoll>>;
/// The userspace transport's host bus for a firmware without intercore's vendor entry:
/// no doorbell, the rings polled.
pub type UserRingsBus = HostBus<UserMem, PolledRings<LinuxPoll>>;
/// The userspace transport's host bus with a UIO doorbell.
pub type UserUioBus = HostBus<UserMem, UioDoorbell>;

/// Opens the kernel transport's control device (tests pass the fake kernel's).
pub type KernelOpener = Box<dyn Fn(&RpmsgPaths) -> Result<KernelRpmsg, RpmsgCharError>>;

/// What [`Board::open_with`] needs from its caller besides the board.
pub struct OpenEnv {
    /// The program hosting the simulated remote core (the `intercore` binary passes itself
    /// with its hidden subcommand); required for `sim` boards.
    #[cfg(feature = "sim")]
    pub sim_remote: Option<intercore_sim::RemoteProgram>,
    /// The firmwares that program ships (the simulator ships none): a `sim` board's
    /// `transport.firmware` names one of them.
    #[cfg(feature = "sim")]
    pub sim_firmwares: Vec<Arc<intercore_sim::SimFirmware>>,
    /// remoteproc's roots and firmware directory (`kernel` boards).
    pub rproc: RprocPaths,
    /// The rpmsg char devices' roots (`kernel` boards); `ctrl` is replaced by the board's
    /// `transport.ctrl` or the only control device found.
    pub rpmsg: RpmsgPaths,
    /// How long the core may take to come up, and its control device to appear.
    pub ready_timeout: Duration,
    /// How the host waits (`None`: the board's `rpmsg.wait`).
    pub wait: Option<intercore::WaitMode>,
    /// Opens the kernel transport (`None`: [`KernelRpmsg::open`]).
    pub kernel_opener: Option<KernelOpener>,
    /// `/dev`, `/sys`, `/proc/device-tree` for the userspace transport (`/dev/mem`, UIO,
    /// reserved-memory nodes).
    pub roots: SysRoots,
}

impl Default for OpenEnv {
    fn default() -> Self {
        Self {
            #[cfg(feature = "sim")]
            sim_remote: None,
            #[cfg(feature = "sim")]
            sim_firmwares: Vec::new(),
            rproc: RprocPaths::default(),
            rpmsg: RpmsgPaths::default(),
            ready_timeout: Duration::from_secs(30),
            wait: None,
            kernel_opener: None,
            roots: SysRoots::default(),
        }
    }
}

/// Why a board could not be opened. Each names the board key or the file concerned.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The board's configuration cannot be opened this way (`key`: the board key).
    #[error("{key}: {message}")]
    Config {
        /// The board key (`transport.kind`, `transport.fw_dir`).
        key: &'static str,
        /// What is wrong.
        message: String,
    },
    /// Starting or reaching the core failed.
    #[error("{what}: {message}")]
    Start {
        /// What was being done.
        what: String,
        /// The error.
        message: String,
    },
}

/// Why [`Link::open_data_plane`] could not open the data plane.
#[derive(Debug, thiserror::Error)]
pub enum DataPlaneError {
    /// The firmware does not announce the offload service ([`DP_SERVICE`]) in time: it
    /// has no data plane.
    #[error("{0}")]
    NoService(intercore::Error),
    /// The board's pool could not be opened ([`Board::open_pool`]).
    #[error("data-plane pool: {0}")]
    Pool(OpenError),
    /// The channel to the offload service could not be opened.
    #[error("data-plane channel: {0}")]
    Channel(intercore::Error),
    /// The data plane itself could not be set up.
    #[error("data plane: {0}")]
    Open(intercore::Error),
}

/// Why a live link is broken ([`Link::broken`]).
#[derive(Debug, thiserror::Error)]
pub enum Broken {
    /// The host bus saw the peer reset or die, or a protocol error (sticky).
    #[error("{0}")]
    Bus(intercore::Error),
    /// The emulated core's firmware faulted or exited (QEMU).
    #[cfg(feature = "qemu")]
    #[error("{0}")]
    Firmware(intercore_sim::qemu::QemuError),
}

/// The last `n` lines of a console, for an error message (`""` when empty).
pub fn console_tail(console: &str, n: usize) -> String {
    let lines: Vec<&str> = console
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty())
        .collect();
    if lines.is_empty() {
        return String::new();
    }
    let tail = &lines[lines.len().saturating_sub(n)..];
    format!("; firmware console: {}", tail.join(" | "))
}

/// Opening a `kind` board in a build without the feature that carries it.
#[cfg(not(all(feature = "sim", feature = "qemu")))]
pub(crate) fn feature_off(kind: &'static str) -> OpenError {
    OpenError::Config {
        key: "transport.kind",
        message: format!(
            "{kind:?} needs intercore-board built with its feature {kind:?} (this build has it off)"
        ),
    }
}

pub(crate) fn start_err(what: impl Into<String>) -> impl FnOnce(String) -> OpenError {
    let what = what.into();
    move |message| OpenError::Start { what, message }
}

enum Inner {
    // Field order is drop order: the bus (which resets the device and rings the firmware)
    // before the SoC (which kills a child still running).
    #[cfg(feature = "sim")]
    Sim {
        bus: SimBus,
        soc: Soc,
    },
    #[cfg(feature = "qemu")]
    Qemu {
        bus: QemuBus,
        soc: QemuSoc,
    },
    Kernel {
        rpmsg: KernelRpmsg,
    },
    UserPoll {
        bus: UserPollBus,
    },
    UserRings {
        bus: UserRingsBus,
    },
    UserUio {
        bus: UserUioBus,
    },
}

/// A live link to a board's core: a [`Transport`], and the child processes and regions it
/// needs (see [`Board::open_with`]).
pub struct Link {
    inner: Inner,
    name: String,
    /// The channels [`Link::service_channel`] opened, kept for the link's life.
    services: Vec<(String, Channel)>,
}

impl fmt::Debug for Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Link")
            .field("transport", &self.name)
            .finish()
    }
}

impl Link {
    /// The transport, as rows and messages name it: `sim`, `sim/ti-k3`, `qemu-r5f`,
    /// `qemu-m4f`, `kernel`.
    pub fn transport_name(&self) -> &str {
        &self.name
    }
    /// The pid of the child process running the core (simulated remote or QEMU).
    pub fn child_pid(&self) -> Option<u32> {
        match &self.inner {
            #[cfg(feature = "sim")]
            Inner::Sim { soc, .. } => Some(soc.remote_pid()),
            #[cfg(feature = "qemu")]
            Inner::Qemu { soc, .. } => Some(soc.qemu_pid()),
            _ => None,
        }
    }
    /// Opens the data plane to the firmware's offload service ([`DP_SERVICE`]) through
    /// this link, one type whatever the transport: the simulated SoC's pool (mapped into
    /// its IOMMU) or QEMU's window (laid out as the board's `[pool]` says), else the
    /// board's own pool ([`Board::open_pool`], with `env`'s roots) on a channel of this
    /// link. `timeout` bounds the wait for the service. Opening maps the pool into the
    /// remote's window, so a link opens it once and keeps it.
    #[allow(clippy::arc_with_non_send_sync)] // type erasure only, see PoolCache
    pub fn open_data_plane(
        &mut self,
        board: &Board,
        env: &OpenEnv,
        timeout: Option<Duration>,
    ) -> Result<DpHost<PoolCache>, DataPlaneError> {
        match &mut self.inner {
            #[cfg(feature = "sim")]
            Inner::Sim { bus, soc } => {
                return soc
                    .open_data_plane_with(bus, timeout, |c| Arc::new(c) as PoolCache)
                    .map_err(DataPlaneError::Open);
            }
            #[cfg(feature = "qemu")]
            Inner::Qemu { bus, soc } => {
                return soc
                    .open_data_plane_with(bus, &board.pool, timeout, |c| Arc::new(c) as PoolCache)
                    .map_err(DataPlaneError::Open);
            }
            _ => {}
        }
        let remote = self
            .find_service(DP_SERVICE, timeout)
            .map_err(DataPlaneError::NoService)?;
        let bp = board.open_pool(env).map_err(DataPlaneError::Pool)?;
        let ch = self
            .open("dp-host", remote)
            .map_err(DataPlaneError::Channel)?;
        let max = self.max_payload();
        DpHost::new(bp.pool, ch, max).map_err(DataPlaneError::Open)
    }
    /// The channel to `service`, opened (as `name`) the first time and kept for the link's
    /// life, as the kernel's rpmsg char driver keeps one endpoint per announced channel for
    /// every process that opens `/dev/rpmsgN`. A peer that binds an endpoint's reply
    /// address to its first sender (OpenAMP: `rpmsg_virtio.c`, Zephyr's samples) keeps
    /// answering it; a new endpoint per request would get no replies.
    pub fn service_channel(
        &mut self,
        service: &str,
        name: &str,
        timeout: Option<Duration>,
    ) -> intercore::Result<Channel> {
        if let Some((_, ch)) = self.services.iter().find(|(s, _)| s == service) {
            return Ok(*ch);
        }
        let remote = self.find_service(service, timeout)?;
        let ch = self.open(name, remote)?;
        self.services.push((service.to_string(), ch));
        Ok(ch)
    }
    /// What the core's firmware printed so far (QEMU: the semihosting console, with QEMU's
    /// own diagnostics); `None` where this host does not see the core's console.
    pub fn console(&self) -> Option<String> {
        match &self.inner {
            #[cfg(feature = "qemu")]
            Inner::Qemu { soc, .. } => Some(soc.console()),
            _ => None,
        }
    }
    /// Whether the link is broken (the peer reset or died), with why.
    pub fn broken(&mut self) -> Option<Broken> {
        match &mut self.inner {
            #[cfg(feature = "sim")]
            Inner::Sim { bus, .. } => bus.broken().map(Broken::Bus),
            #[cfg(feature = "qemu")]
            Inner::Qemu { bus, soc } => soc
                .fault_now()
                .map(Broken::Firmware)
                .or_else(|| bus.broken().map(Broken::Bus)),
            Inner::UserPoll { bus } => bus.broken().map(Broken::Bus),
            Inner::UserRings { bus } => bus.broken().map(Broken::Bus),
            Inner::UserUio { bus } => bus.broken().map(Broken::Bus),
            Inner::Kernel { .. } => None,
        }
    }
    /// Shuts the link down: resets the device, waits up to `timeout` for the firmware to
    /// exit by itself (killing it otherwise) and says how it ended. A kernel link only
    /// closes its endpoints: the core stays up.
    pub fn shut_down(self, timeout: Duration) -> Result<String, OpenError> {
        // Only the emulated cores' links wait.
        #[cfg(not(any(feature = "sim", feature = "qemu")))]
        let _ = timeout;
        match self.inner {
            #[cfg(feature = "sim")]
            Inner::Sim { bus, soc } => sim::close(bus, soc, timeout),
            #[cfg(feature = "qemu")]
            Inner::Qemu { bus, soc } => qemu::close(bus, soc, timeout),
            Inner::Kernel { rpmsg } => {
                drop(rpmsg);
                Ok("kernel endpoints closed; the core stays up".into())
            }
            Inner::UserPoll { bus } => {
                drop(bus);
                Ok("host bus reset; the core stays up".into())
            }
            Inner::UserRings { bus } => {
                drop(bus);
                Ok("host bus reset; the core stays up".into())
            }
            Inner::UserUio { bus } => {
                drop(bus);
                Ok("host bus reset; the core stays up".into())
            }
        }
    }
}

/// Runs `$body` with `$bus` bound to the link's host bus, or `$kernel` with the kernel
/// transport bound to `$k` (their types differ: the reactor's messages, `reactor.rs`).
macro_rules! on_link {
    ($inner:expr, $bus:ident => $body:expr, $k:ident => $kernel:expr) => {
        match $inner {
            #[cfg(feature = "sim")]
            Inner::Sim { bus: $bus, .. } => $body,
            #[cfg(feature = "qemu")]
            Inner::Qemu { bus: $bus, .. } => $body,
            Inner::UserPoll { bus: $bus } => $body,
            Inner::UserRings { bus: $bus } => $body,
            Inner::UserUio { bus: $bus } => $body,
            Inner::Kernel { rpmsg: $k } => $kernel,
        }
    };
}

/// Runs `$body` with `$bus` bound to whichever transport the link holds.
macro_rules! with_bus {
    ($inner:expr, $bus:ident => $body:expr) => {
        on_link!($inner, $bus => $body, $bus => $body)
    };
}

// A board's links in one reactor: `impl ReactorLink for Link`, `LinkMsg` (declared after
// `on_link!`, which it uses).
mod reactor;

/// The messaging methods, inherent with the traits' names and signatures (as on
/// `HostBus`/`RemoteBus`), so a caller needs no trait in scope and no qualified call.
impl Link {
    /// [`MessageIo::send`] on whichever transport the link holds.
    pub fn send(
        &mut self,
        ch: &Channel,
        data: &[u8],
        timeout: Option<Duration>,
    ) -> intercore::Result<()> {
        with_bus!(&mut self.inner, bus => bus.send(ch, data, timeout))
    }
    /// [`MessageIo::recv`] on whichever transport the link holds.
    pub fn recv(
        &mut self,
        ch: &Channel,
        buf: &mut [u8],
        timeout: Option<Duration>,
    ) -> intercore::Result<usize> {
        with_bus!(&mut self.inner, bus => bus.recv(ch, buf, timeout))
    }
    /// [`MessageIo::recv_from`] on whichever transport the link holds.
    pub fn recv_from(
        &mut self,
        ch: &Channel,
        buf: &mut [u8],
        timeout: Option<Duration>,
    ) -> intercore::Result<(Option<u32>, usize)> {
        with_bus!(&mut self.inner, bus => bus.recv_from(ch, buf, timeout))
    }
    /// [`MessageIo::max_payload`] of whichever transport the link holds.
    pub fn max_payload(&self) -> usize {
        with_bus!(&self.inner, bus => bus.max_payload())
    }
    /// [`Transport::find_service`] on whichever transport the link holds.
    pub fn find_service(
        &mut self,
        name: &str,
        timeout: Option<Duration>,
    ) -> intercore::Result<u32> {
        with_bus!(&mut self.inner, bus => bus.find_service(name, timeout))
    }
    /// [`Transport::open`] on whichever transport the link holds.
    pub fn open(&mut self, name: &str, remote: u32) -> intercore::Result<Channel> {
        with_bus!(&mut self.inner, bus => bus.open(name, remote))
    }
    /// [`Transport::close`] on whichever transport the link holds: closes one channel
    /// (the link stays up; [`Link::shut_down`] ends it).
    pub fn close(&mut self, ch: Channel) -> intercore::Result<()> {
        with_bus!(&mut self.inner, bus => bus.close(ch))
    }
    /// [`Transport::connect`]: [`Link::find_service`] then [`Link::open`].
    pub fn connect(&mut self, name: &str, timeout: Option<Duration>) -> intercore::Result<Channel> {
        let remote = self.find_service(name, timeout)?;
        self.open(name, remote)
    }
}

impl MessageIo for Link {
    fn send(
        &mut self,
        ch: &Channel,
        data: &[u8],
        timeout: Option<Duration>,
    ) -> intercore::Result<()> {
        Link::send(self, ch, data, timeout)
    }
    fn recv(
        &mut self,
        ch: &Channel,
        buf: &mut [u8],
        timeout: Option<Duration>,
    ) -> intercore::Result<usize> {
        Link::recv(self, ch, buf, timeout)
    }
    fn max_payload(&self) -> usize {
        Link::max_payload(self)
    }
    fn recv_from(
        &mut self,
        ch: &Channel,
        buf: &mut [u8],
        timeout: Option<Duration>,
    ) -> intercore::Result<(Option<u32>, usize)> {
        Link::recv_from(self, ch, buf, timeout)
    }
}

impl Transport for Link {
    fn find_service(&mut self, name: &str, timeout: Option<Duration>) -> intercore::Result<u32> {
        Link::find_service(self, name, timeout)
    }
    fn open(&mut self, name: &str, remote: u32) -> intercore::Result<Channel> {
        Link::open(self, name, remote)
    }
    fn close(&mut self, ch: Channel) -> intercore::Result<()> {
        Link::close(self, ch)
    }
    fn connect(&mut self, name: &str, timeout: Option<Duration>) -> intercore::Result<Channel> {
        Link::connect(self, name, timeout)
    }
}

impl Board {
    /// The host bus configuration: the board's `[rpmsg]` (with `wait` overriding its wait
    /// mode) and the plan's placement.
    pub(crate) fn host_config(
        &self,
        wait: intercore::WaitMode,
        plan: Option<&crate::vdev::VdevPlan>,
    ) -> HostConfig {
        let mut host = self.rpmsg.host_config();
        host.wait = wait;
        if let Some(p) = plan {
            host.vring_region = p.vring_region;
            host.buffers = p.buffers;
        }
        host
    }

    /// Opens the board with default roots ([`OpenEnv::default`]).
    pub fn open(&self) -> Result<Link, OpenError> {
        self.open_with(OpenEnv::default())
    }

    /// Opens the board: starts or attaches to its core and opens the link.
    ///
    /// * `sim`: starts the simulated SoC (the firmware in a child process) and its host bus;
    /// * `qemu`: starts QEMU with the firmware image and the host bus over the shared memfd,
    ///   with the polling doorbell the firmware declares;
    /// * `kernel`: remoteproc installs `firmware_file` (or selects `firmware`), starts or
    ///   attaches to the core and waits for `running`/`attached` (a core already up is left
    ///   alone), then waits for and opens `/dev/rpmsg_ctrlN` ([`KernelRpmsg`]);
    /// * `userspace`: remoteproc as for `kernel` if the board has `[remoteproc]`, then maps
    ///   the carveout through `/dev/mem`, validates the table at `rsc_offset`, places vrings
    ///   left at `FW_RSC_ADDR_ANY` from `vring_offset`, and picks the doorbell (`poll` from
    ///   the firmware's intercore vendor entry, or `uio`).
    ///
    /// Errors name the board key ([`OpenError::Config`]) or what was being done.
    pub fn open_with(&self, env: OpenEnv) -> Result<Link, OpenError> {
        let wait = env.wait.unwrap_or(self.rpmsg.wait);
        let host = HostConfig {
            wait,
            timeout: Some(self.rpmsg.timeout),
            // As `RpmsgSpec::host_config`: board links keep the split rings, which
            // `intercore inspect` decodes (it does not decode inline slots yet).
            inline: false,
            ..HostConfig::default()
        };

        match &self.transport {
            #[cfg(feature = "sim")]
            TransportSpec::Sim { .. } => self.open_sim(env, host),
            #[cfg(feature = "qemu")]
            TransportSpec::Qemu { .. } => self.open_qemu(wait),
            #[cfg(not(feature = "sim"))]
            TransportSpec::Sim { .. } => Err(feature_off("sim")),
            #[cfg(not(feature = "qemu"))]
            TransportSpec::Qemu { .. } => Err(feature_off("qemu")),
            TransportSpec::Kernel { ctrl } => {
                self.bring_up(&env)?;
                let mut paths = env.rpmsg.clone();
                paths.ctrl = wait_ctrl(&paths, ctrl.as_deref(), env.ready_timeout)?;
                let mut rpmsg = match &env.kernel_opener {
                    Some(open) => open(&paths),
                    None => KernelRpmsg::open(&paths),
                }
                .map_err(|e| {
                    start_err(format!("transport.ctrl: {}", paths.ctrl_dev().display()))(
                        e.to_string(),
                    )
                })?;
                // One descriptor for a reactor to wait on, whatever the endpoints.
                rpmsg
                    .watch()
                    .map_err(|e| start_err("epoll over the endpoint devices")(e.to_string()))?;
                Ok(Link {
                    inner: Inner::Kernel { rpmsg },
                    name: "kernel".into(),
                    services: Vec::new(),
                })
            }
            TransportSpec::Userspace { .. } => {
                self.bring_up(&env)?;
                self.open_userspace(&env, host)
            }
        }
    }

    fn open_userspace(&self, env: &OpenEnv, host: HostConfig) -> Result<Link, OpenError> {
        let mut host = self.host_config(host.wait, None);
        let TransportSpec::Userspace {
            region,
            rsc_offset,
            vring_offset,
            doorbell,
        } = &self.transport
        else {
            unreachable!("a userspace transport");
        };
        let (key, carveout) = match region {
            crate::model::RegionSpec::Range { base, size } => (
                "transport.base",
                usize::try_from(*size)
                    .map_err(|_| intercore_linux::MemError::InvalidRequest("size".into()))
                    .and_then(|len| {
                        PhysCarveout::devmem(&env.roots, *base, len, DevMemCaching::Uncached)
                    }),
            ),
            crate::model::RegionSpec::ReservedMemory { node, .. } => (
                "transport.region",
                PhysCarveout::from_device_tree(&env.roots, node, DevMemCaching::Uncached),
            ),
        };
        let mem = Arc::new(carveout.map_err(|e| OpenError::Config {
            key,
            message: e.to_string(),
        })?);
        let map = mem.identity_map();
        let off = *rsc_offset as usize;
        let rsc_err = |message: String| OpenError::Config {
            key: "transport.rsc_offset",
            message,
        };
        let len = mem
            .len()
            .saturating_sub(off)
            .min(intercore::rpmsg::RSC_MAX_LEN);
        let mut bytes = vec![0u8; len];
        mem.read(off, &mut bytes);
        let table = ResourceTable::validate(&bytes).map_err(|e| {
            rsc_err(format!(
                "no valid resource table at +{off:#x} of the carveout: {e} (is the firmware loaded and running?)"
            ))
        })?;
        let rsc = RscLocation { offset: off, len };
        // The same plan `board check` makes from the firmware file: vrings and buffers the
        // table leaves to the host from [vdev] (or vring_offset), the doorbell from the
        // vendor entry (none: the rings are polled).
        let _ = vring_offset;
        let plan = self.plan_vdev(&table, &map, "transport.rsc_offset")?;
        host.vring_region = plan.vring_region;
        host.buffers = plan.buffers;
        userspace_link(mem, &map, rsc, host, doorbell, &plan.wake, env)
    }

    /// The board's remote processor (`kernel`/`userspace` boards with `[remoteproc]`).
    pub fn remoteproc_handle(&self, paths: &RprocPaths) -> Result<Option<Remoteproc>, OpenError> {
        let Some(r) = &self.remoteproc else {
            return Ok(None);
        };
        Remoteproc::open(paths, Some(&r.selector.as_arg()))
            .map(Some)
            .map_err(|e| OpenError::Config {
                key: "remoteproc.name",
                message: e.to_string(),
            })
    }

    /// remoteproc's part of opening a kernel board: a core already `running`/`attached` is
    /// left as it is; otherwise the board's `firmware_file` is installed (or `firmware`
    /// selected) and the core started (`boot = "load"`) or attached to (`boot =
    /// "attach"`), and waited for.
    pub fn bring_up(&self, env: &OpenEnv) -> Result<(), OpenError> {
        let (Some(spec), Some(rp)) = (&self.remoteproc, self.remoteproc_handle(&env.rproc)?) else {
            return Ok(());
        };
        let rerr = |what: &str| {
            let what = format!("remoteproc {}: {what}", rp.id());
            move |e: intercore_linux::RprocError| OpenError::Start {
                what,
                message: e.to_string(),
            }
        };
        let state = rp.state().map_err(rerr("reading its state"))?;
        if state.is_up() {
            return Ok(());
        }
        if spec.boot == Boot::Load {
            if let Some(file) = self.firmware_path() {
                rp.load(&file, spec.firmware.as_deref())
                    .map_err(rerr("remoteproc.firmware_file"))?;
            } else if let Some(fw) = &spec.firmware {
                if rp.firmware().ok().as_deref() != Some(fw.as_str()) {
                    rp.set_firmware(fw).map_err(rerr("remoteproc.firmware"))?;
                }
            }
        }
        rp.start(spec.control, env.ready_timeout)
            .map_err(rerr(if spec.boot == Boot::Load {
                "starting"
            } else {
                "attaching"
            }))?;
        Ok(())
    }
}

/// Expands a board file's path as a shell would, without running one: `$NAME` and
/// `${NAME}` (an unset variable is an error naming it), `${NAME:-default}` (the default
/// when unset or empty; itself expanded), a leading `~/` (`$HOME`); a relative result is
/// taken relative to `base` (the board file's directory). `env` reads a variable.
pub fn expand_path(
    text: &str,
    base: &Path,
    env: &dyn Fn(&str) -> Option<OsString>,
) -> Result<PathBuf, String> {
    fn expand(
        t: &str,
        env: &dyn Fn(&str) -> Option<OsString>,
        depth: u32,
    ) -> Result<String, String> {
        if depth > 4 {
            return Err("defaults nested too deeply".into());
        }
        let mut out = String::new();
        let mut rest = t;
        while let Some(i) = rest.find('$') {
            out.push_str(&rest[..i]);
            rest = &rest[i + 1..];
            let (name, default, after) = if let Some(r) = rest.strip_prefix('{') {
                let end = r.find('}').ok_or("unclosed ${")?;
                let inner = &r[..end];
                match inner.split_once(":-") {
                    Some((n, d)) => (n, Some(d), &r[end + 1..]),
                    None => (inner, None, &r[end + 1..]),
                }
            } else {
                let end = rest
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(rest.len());
                (&rest[..end], None, &rest[end..])
            };
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!("${name:?} is not a variable name"));
            }
            let val = env(name)
                .map(|v| v.to_string_lossy().into_owned())
                .filter(|v| !(default.is_some() && v.is_empty()));
            match (val, default) {
                (Some(v), _) => out.push_str(&v),
                (None, Some(d)) => out.push_str(&expand(d, env, depth + 1)?),
                (None, None) => {
                    return Err(format!(
                        "${name} is not set (set it, or write ${{{name}:-DEFAULT}})"
                    ));
                }
            }
            rest = after;
        }
        out.push_str(rest);
        Ok(out)
    }
    let mut s = expand(text, env, 0)?;
    if let Some(r) = s.strip_prefix("~/") {
        let home = env("HOME").ok_or("~/: $HOME is not set")?;
        s = Path::new(&home).join(r).to_string_lossy().into_owned();
    }
    let p = PathBuf::from(s);
    Ok(if p.is_absolute() { p } else { base.join(p) })
}

/// The userspace transport's host bus over the mapped carveout, with the doorbell the board
/// names: `poll` at the block the firmware's vendor entry declares (none: the rings
/// polled), or `uio`.
fn userspace_link(
    mem: UserMem,
    map: &intercore::LinearMap,
    rsc: RscLocation,
    host: HostConfig,
    doorbell: &crate::model::DoorbellSpec,
    wake: &crate::vdev::Wake,
    env: &OpenEnv,
) -> Result<Link, OpenError> {
    let bus_err = |e: intercore::Error| OpenError::Start {
        what: "transport: the host bus over the carveout".into(),
        message: e.to_string(),
    };
    match doorbell {
        crate::model::DoorbellSpec::Poll => {
            let crate::vdev::Wake::Counters(entry) = wake else {
                let bus = HostBus::new(mem, PolledRings::new(LinuxPoll), map, rsc, host)
                    .map_err(bus_err)?;
                return Ok(Link {
                    inner: Inner::UserRings { bus },
                    name: "userspace/polled-rings".into(),
                    services: Vec::new(),
                });
            };
            let bell =
                PollDoorbell::from_entry(Arc::clone(&mem), map, entry, PollSide::Host, LinuxPoll)
                    .map_err(|e| OpenError::Config {
                    key: "transport.doorbell",
                    message: e.to_string(),
                })?;
            let bus = HostBus::new(mem, bell, map, rsc, host).map_err(bus_err)?;
            Ok(Link {
                inner: Inner::UserPoll { bus },
                name: "userspace/poll".into(),
                services: Vec::new(),
            })
        }
        crate::model::DoorbellSpec::Uio { device, layout } => {
            let bell =
                UioDoorbell::open(&env.roots, device, *layout).map_err(|e| OpenError::Config {
                    key: "transport.uio_device",
                    message: e.to_string(),
                })?;
            let bus = HostBus::new(mem, bell, map, rsc, host).map_err(bus_err)?;
            Ok(Link {
                inner: Inner::UserUio { bus },
                name: "userspace/uio".into(),
                services: Vec::new(),
            })
        }
    }
}

/// The rpmsg control devices (`rpmsg_ctrl*`) under `dev`, sorted.
pub(crate) fn ctrl_devices(dev: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dev)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| n.starts_with("rpmsg_ctrl"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Waits up to `timeout` for the rpmsg control device: `ctrl` (the board's
/// `transport.ctrl`), or the only `rpmsg_ctrl*` under `paths.dev`. Returns its name.
fn wait_ctrl(
    paths: &RpmsgPaths,
    ctrl: Option<&str>,
    timeout: Duration,
) -> Result<String, OpenError> {
    let start = Instant::now();
    let mut pause = Duration::from_millis(1);
    loop {
        let found: Vec<String> = match ctrl {
            Some(c) => {
                if paths.dev.join(c).exists() {
                    vec![c.to_string()]
                } else {
                    vec![]
                }
            }
            None => ctrl_devices(&paths.dev),
        };
        match found.as_slice() {
            [one] => return Ok(one.clone()),
            [] => {}
            many => {
                return Err(OpenError::Config {
                    key: "transport.ctrl",
                    message: format!(
                        "several rpmsg control devices ({}): one per remote core's vdev; choose one with transport.ctrl",
                        many.join(", ")
                    ),
                });
            }
        }
        if start.elapsed() >= timeout {
            return Err(OpenError::Start {
                what: format!(
                    "transport.ctrl: {}",
                    paths.dev.join(ctrl.unwrap_or("rpmsg_ctrl*")).display()
                ),
                message: format!(
                    "did not appear within {:.1} s: the kernel needs CONFIG_RPMSG_CHAR and CONFIG_RPMSG_CTRL, virtio_rpmsg_bus bound to the core's vdev, and a firmware whose resource table has an rpmsg vdev",
                    timeout.as_secs_f64()
                ),
            });
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `transport.image` expands as a shell would: `$X`, `${X}`, `${X:-default}` (also when
    /// set but empty), a leading `~/`; relative results are under the board's directory;
    /// an unset variable without a default is an error naming it.
    #[test]
    fn image_paths_expand_like_a_shell() {
        let env = |k: &str| -> Option<OsString> {
            match k {
                "P" => Some("/peers".into()),
                "EMPTY" => Some("".into()),
                "HOME" => Some("/home/u".into()),
                _ => None,
            }
        };
        let b = Path::new("/boards");
        let x = |s: &str| expand_path(s, b, &env);
        assert_eq!(x("$P/fw/a.elf").unwrap(), PathBuf::from("/peers/fw/a.elf"));
        assert_eq!(x("${P}/a.elf").unwrap(), PathBuf::from("/peers/a.elf"));
        assert_eq!(
            x("${UNSET:-~/.cache/p}/fw/a.elf").unwrap(),
            PathBuf::from("/home/u/.cache/p/fw/a.elf")
        );
        assert_eq!(x("${EMPTY:-/d}/a").unwrap(), PathBuf::from("/d/a"));
        assert_eq!(x("fw/a.elf").unwrap(), PathBuf::from("/boards/fw/a.elf"));
        let e = x("$UNSET/a.elf").unwrap_err();
        assert!(e.contains("$UNSET is not set"), "{e}");
        assert!(x("${P").is_err());
    }
}
