//! A simulated SoC: the application core is this process, the remote core is a separate OS
//! process running firmware written against intercore's `no_std` remote API, and the
//! "DRAM carveout" between them is a shared memfd laid out as on a real board: a
//! remoteproc resource table, two vrings at the device addresses the table gives, and the
//! `vdev0buffer` carveout for the rpmsg buffers. Doorbells are eventfds in both directions.
//!
//! Device addresses are deliberately not region offsets (the carveout appears at
//! `da_base`, 0xA000_0000 by default), so any confusion of the two fails loudly.

#![deny(unsafe_code)]
#![warn(clippy::too_many_lines)]

mod anycache;
pub mod coherency;
pub mod ctrl;
pub mod faults;
pub mod qemu;
mod remote;

pub use anycache::{AnyCache, CacheMode};
pub use coherency::{Detection, Eviction, Report, Side};
pub use faults::{FaultInjection, FaultyCache};
pub use remote::remote_main;

use intercore::dataplane::{CacheOps, DpHost, Iommu, Perm, Pool, PoolConfig};
use intercore::rpmsg::Channel;
use intercore::rpmsg::layout::{CarveoutLayout, CarveoutSpec};
use intercore::rpmsg::rsc_table::IntercoreRpmsgTable;
use intercore::rpmsg::{HostBus, HostConfig, RscLocation};
use intercore::{DevAddr, LinearMap, SharedMemory, WaitMode};
use intercore_linux::{EventFd, EventfdDoorbell, MemfdRegion, PidFd};
use std::io;
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus};
use std::sync::Arc;
use std::time::Duration;

/// A firmware the simulated remote core runs: an [`intercore::firmware::Firmware`] over
/// the simulator's memory, doorbell, cache model and IOMMU windows. The simulator ships
/// none: whoever ships firmwares passes them, to [`SimConfig::firmware`] (the host side
/// "loads" its resource table and names it to the remote process) and to [`remote_main`]
/// (the remote process looks the name up and runs it).
pub type SimFirmware = dyn intercore::firmware::Firmware<
        Arc<MemfdRegion>,
        EventfdDoorbell,
        8,
        AnyCache,
        ctrl::SimWindows<MemfdRegion>,
    > + Send
    + Sync;

/// Device address at which the host maps the data-plane pool into the remote's IOMMU.
pub const POOL_IOVA: u64 = 0xC000_0000;

/// Where the remote sees the carveout by default ([`SimConfig::da_base`]): deliberately
/// not 0, so that a device address confused with a region offset fails loudly.
pub const DA_BASE: u64 = 0xA000_0000;

/// How the simulated SoC lays out its shared memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SimLayout {
    /// One carveout: resource table page, vring 0, vring 1 and a `vdev0buffer` carveout
    /// the table names, all at fixed addresses (what intercore's firmwares declare).
    #[default]
    Standard,
    /// As on TI K3 with Linux's `ti_k3_common.c` and TI's MCU+ SDK firmware: two
    /// reserved-memory regions. The first (the DMA pool) receives the vrings, which the
    /// table leaves at `FW_RSC_ADDR_ANY` for the host to place, and the rpmsg buffers; the
    /// second is the firmware's own memory with the resource table at its start (a trace
    /// entry and the vdev, no buffer carveout). Notify ids travel on the doorbell. The
    /// firmware is started before the host attaches (IPC-only mode).
    TiK3,
}

impl SimLayout {
    /// Every layout, in the order board files and help texts list them.
    pub const ALL: [SimLayout; 2] = [SimLayout::Standard, SimLayout::TiK3];
    /// The name used on the command line and in board files (`transport.layout`).
    pub fn name(self) -> &'static str {
        match self {
            SimLayout::Standard => "standard",
            SimLayout::TiK3 => "ti-k3",
        }
    }
    /// Parses a name.
    pub fn from_name(s: &str) -> Option<Self> {
        match s {
            "standard" => Some(SimLayout::Standard),
            "ti-k3" => Some(SimLayout::TiK3),
            _ => None,
        }
    }
}

/// Where the TI K3-like layout puts things (region offsets; device address = `da_base` +
/// offset).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct K3Regions {
    /// Memory-region 0, the vdev's DMA pool (offset 0): vrings and buffers, placed by the
    /// host as Linux's coherent allocator places them.
    pub dma_len: usize,
    /// Where that allocator puts vring 0, vring 1 and the buffers (receive half first)
    /// ([`intercore::rpmsg::CoherentPool::linux_vdev`]): with 256-entry vrings 0, 0x4000
    /// and 0x40000 — the offset TI's MCU+ SDK firmware rewrites vring 0 with
    /// (`RPMessage_vringResetLinux`).
    pub placement: intercore::rpmsg::VdevPlacement,
    /// Memory-region 1: the firmware's memory, the resource table at its start.
    pub fw_off: usize,
    /// Its length.
    pub fw_len: usize,
    /// The table's length.
    pub rsc_len: usize,
}

/// The firmware's own memory in the K3-like layout (code and data, stack, the table).
const K3_FW_LEN: usize = 256 << 10;

impl K3Regions {
    /// The regions for `num` entries per vring and `buf_size`-byte buffers (`num` per
    /// direction).
    pub fn new(num: u16, buf_size: usize) -> io::Result<Self> {
        let bad = |what: String| io::Error::new(io::ErrorKind::InvalidInput, what);
        let ring =
            intercore::virtq::VringLayout::new(num as u32, 4096).map_err(|e| bad(e.to_string()))?;
        let placement = intercore::rpmsg::CoherentPool::linux_vdev(
            usize::MAX,
            [ring; 2],
            2 * num as usize,
            buf_size,
        )
        .ok_or_else(|| bad("no room for the vrings and buffers".into()))?;
        let dma_len = placement.end;
        // TI's device trees put memory-region 1 right after region 0, 1 MiB-aligned.
        let fw_off = dma_len.div_ceil(1 << 20) * (1 << 20);
        Ok(Self {
            dma_len,
            placement,
            fw_off,
            fw_len: K3_FW_LEN,
            rsc_len: 1024,
        })
    }

    /// Writes the resource table TI's IPC firmware declares: a trace buffer in its own
    /// memory and the rpmsg vdev (NS only; vrings at `FW_RSC_ADDR_ANY` with notify ids 1
    /// and 2, which the host replaces), no buffer carveout.
    pub fn write_table<M: SharedMemory + ?Sized>(
        &self,
        mem: &M,
        da_base: u64,
        num: u16,
    ) -> io::Result<RscLocation> {
        use intercore::wire::Le32;
        use intercore::wire::rsc::{
            FW_RSC_ADDR_ANY, FwRscTrace, FwRscVdev, FwRscVdevVring, RscTableWriter,
        };
        let bad = |e: intercore::wire::WireError| {
            io::Error::new(io::ErrorKind::InvalidInput, e.to_string())
        };
        let mut buf = vec![0u8; self.rsc_len];
        let mut w = RscTableWriter::new(&mut buf, 2).map_err(bad)?;
        w.add_trace(&FwRscTrace {
            da: Le32::new((da_base + (self.fw_off + self.rsc_len) as u64) as u32),
            len: Le32::new(0x1000),
            reserved: Le32::new(0),
            name: intercore::rpmsg::rsc_table::name32(b"trace:r5fss0_0"),
        })
        .map_err(bad)?;
        let ring = |id: u32| FwRscVdevVring {
            da: Le32::new(FW_RSC_ADDR_ANY),
            align: Le32::new(4096),
            num: Le32::new(num as u32),
            notifyid: Le32::new(id),
            pa: Le32::new(0),
        };
        w.add_vdev(
            &FwRscVdev {
                id: Le32::new(intercore::wire::rpmsg::VIRTIO_ID_RPMSG),
                dfeatures: Le32::new(1 << intercore::wire::rpmsg::VIRTIO_RPMSG_F_NS),
                ..Default::default()
            },
            &[ring(1), ring(2)],
            &[],
        )
        .map_err(bad)?;
        w.finish();
        mem.write(self.fw_off, &buf);
        Ok(RscLocation {
            offset: self.fw_off,
            len: self.rsc_len,
        })
    }
}

/// The shape of the simulated SoC.
#[derive(Clone)]
pub struct SimConfig {
    /// Entries per vring (and rpmsg buffers per direction).
    pub vring_num: u16,
    /// rpmsg buffer size.
    pub buf_size: usize,
    /// Whether the firmware offers `VIRTIO_RING_F_EVENT_IDX`.
    pub event_idx: bool,
    /// Where the remote sees the carveout.
    pub da_base: u64,
    /// Which firmware runs on the remote core (the remote process must be given it too:
    /// [`remote_main`]).
    pub firmware: Arc<SimFirmware>,
    /// How the remote waits.
    pub remote_wait: WaitMode,
    /// Coherent caches, or the non-coherent model with its sanitizer.
    pub cache: CacheMode,
    /// The data-plane pool (placed after the control page).
    pub pool: PoolConfig,
    /// Seed of the host's eviction generator (the remote uses the mode's own seed).
    pub host_seed: u64,
    /// How the shared memory is laid out.
    pub layout: SimLayout,
}

impl std::fmt::Debug for SimConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimConfig")
            .field("vring_num", &self.vring_num)
            .field("buf_size", &self.buf_size)
            .field("event_idx", &self.event_idx)
            .field("da_base", &self.da_base)
            .field("firmware", &self.firmware.name())
            .field("remote_wait", &self.remote_wait)
            .field("cache", &self.cache)
            .field("pool", &self.pool)
            .field("host_seed", &self.host_seed)
            .field("layout", &self.layout)
            .finish()
    }
}

impl SimConfig {
    /// The default shape running `firmware`: 256-entry vrings of 512-byte buffers, the
    /// carveout at [`DA_BASE`], coherent caches, a pool of 4 KiB, 64 KiB and 1 MiB buffers.
    pub fn new(firmware: Arc<SimFirmware>) -> Self {
        Self {
            vring_num: 256,
            buf_size: intercore::wire::rpmsg::RPMSG_DEFAULT_BUF_SIZE,
            event_idx: false,
            da_base: DA_BASE,
            firmware,
            remote_wait: WaitMode::default(),
            cache: CacheMode::Coherent,
            pool: PoolConfig {
                classes: vec![(4096, 64), (64 << 10, 16), (1 << 20, 16)],
                align: 4096,
            },
            host_seed: 0x5EED,
            layout: SimLayout::Standard,
        }
    }

    /// The carveout this configuration describes.
    pub fn carveout(&self) -> CarveoutSpec {
        CarveoutSpec {
            vring_num: self.vring_num,
            buf_size: self.buf_size,
            event_idx: self.event_idx,
            da_base: self.da_base,
        }
    }
}

/// The program that hosts the remote core: `program args… --key value…`.
#[derive(Debug, Clone)]
pub struct RemoteProgram {
    /// Executable.
    pub program: PathBuf,
    /// Arguments before the simulator's own (for example a hidden subcommand).
    pub args: Vec<String>,
}

impl RemoteProgram {
    /// This executable, re-run with `subcommand` (how the `intercore` binary hosts the remote).
    pub fn current_exe(subcommand: &str) -> io::Result<Self> {
        Ok(Self {
            program: std::env::current_exe()?,
            args: vec![subcommand.to_string()],
        })
    }
}

/// A running simulated SoC.
pub struct Soc {
    mem: Arc<MemfdRegion>,
    layout: CarveoutLayout,
    map: LinearMap,
    to_remote: EventFd,
    to_host: EventFd,
    child: Child,
    pidfd: PidFd,
    ctrl: ctrl::Ctrl<MemfdRegion>,
    pool_off: usize,
    pool_len: usize,
    ctrl_off: usize,
    program: RemoteProgram,
    cfg: SimConfig,
}

/// "Loads the firmware": its resource table into the carveout. The firmware's own table
/// (its `.resource_table` static) when it is built for this carveout: one source of truth.
/// A geometry it was not built for (a test setup) gets the standard table for that
/// geometry, built by the same const fn.
fn load_table(mem: &MemfdRegion, layout: &CarveoutLayout, cfg: &SimConfig) -> io::Result<()> {
    match cfg.layout {
        // The firmware's own table (its `.resource_table` static) when it is built for this
        // carveout: one source of truth. A geometry it was not built for (a test setup)
        // gets the standard table for that geometry, built by the same const fn.
        SimLayout::Standard => {
            let spec = cfg.carveout();
            let table = match cfg.firmware.resource_table() {
                Some((fw_spec, fw_table)) if fw_spec == spec => fw_table,
                _ => IntercoreRpmsgTable::standard(&spec, intercore::wire::rsc::INTERCORE_FEATURES),
            };
            mem.write(
                layout.rsc.offset,
                intercore_wire::IntoBytes::as_bytes(&table),
            );
        }
        // The bootloader loaded the firmware, table included (IPC-only mode).
        SimLayout::TiK3 => {
            K3Regions::new(cfg.vring_num, cfg.buf_size)?.write_table(
                mem,
                cfg.da_base,
                cfg.vring_num,
            )?;
        }
    }
    Ok(())
}

/// Starts the remote core's process on the carveout and doorbells.
fn spawn_remote(
    cfg: &SimConfig,
    remote: &RemoteProgram,
    mem: &MemfdRegion,
    layout: &CarveoutLayout,
    ctrl_off: usize,
    to_remote: &EventFd,
    to_host: &EventFd,
) -> io::Result<Child> {
    let raw = |fd: std::os::fd::BorrowedFd<'_>| std::os::fd::AsRawFd::as_raw_fd(&fd).to_string();
    let mut cmd = Command::new(&remote.program);
    cmd.args(&remote.args)
        .args(["--fw", cfg.firmware.name()])
        .args(["--mem-fd", &raw(mem.fd())])
        .args(["--bell-fd", &raw(to_remote.as_fd())])
        .args(["--peer-bell-fd", &raw(to_host.as_fd())])
        .args(["--host-pid", &std::process::id().to_string()])
        .args(["--rsc-off", &layout.rsc.offset.to_string()])
        .args(["--rsc-len", &layout.rsc.len.to_string()])
        .args(["--da-base", &cfg.da_base.to_string()])
        .args(["--wait", &cfg.remote_wait.to_string()])
        .args(["--cache", &cfg.cache.arg()])
        .args(["--ctrl-off", &ctrl_off.to_string()])
        .args(["--buf-size", &cfg.buf_size.to_string()]);
    if cfg.layout == SimLayout::TiK3 {
        // The firmware knows its memory map: buffers may come from region 0 only, and
        // nothing may reach into its own region past the table.
        let k = K3Regions::new(cfg.vring_num, cfg.buf_size)?;
        cmd.args(["--buf-window", &format!("0:{}", k.dma_len)])
            .args([
                "--private",
                &format!("{}:{}", k.fw_off + k.rsc_len, k.fw_len - k.rsc_len),
            ]);
    }
    intercore_linux::spawn_inheriting(&mut cmd, &[mem.fd(), to_remote.as_fd(), to_host.as_fd()])
}

impl Soc {
    /// Lays out the carveout, "loads" the firmware's resource table into it and starts the
    /// remote core's process.
    pub fn start(cfg: &SimConfig, remote: &RemoteProgram) -> io::Result<Soc> {
        let spec = cfg.carveout();
        let k3 = match cfg.layout {
            SimLayout::Standard => None,
            SimLayout::TiK3 => Some(K3Regions::new(cfg.vring_num, cfg.buf_size)?),
        };
        let layout = match k3 {
            None => CarveoutLayout::new(&spec)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?,
            // Where the host will place the rings and buffers, and where the table is.
            Some(k) => CarveoutLayout {
                rsc: RscLocation {
                    offset: k.fw_off,
                    len: k.rsc_len,
                },
                vring0: k.placement.vrings[0],
                vring1: k.placement.vrings[1],
                buffers: k.placement.buffers,
                buffers_len: k.placement.buffers_len,
                total: k.fw_off + k.fw_len,
            },
        };
        let ctrl_off = layout.total;
        let pool_off = ctrl_off + ctrl::CTRL_LEN.max(cfg.pool.align);
        let pool_off = pool_off.div_ceil(cfg.pool.align) * cfg.pool.align;
        let pool_len = cfg.pool.region_len();
        let mem = Arc::new(MemfdRegion::create(
            "intercore-sim-carveout",
            pool_off + pool_len,
        )?);
        let map = LinearMap {
            base: DevAddr(cfg.da_base),
            offset: 0,
            len: layout.total,
        };
        load_table(&mem, &layout, cfg)?;
        let to_remote = EventFd::new()?;
        let to_host = EventFd::new()?;
        let child = spawn_remote(cfg, remote, &mem, &layout, ctrl_off, &to_remote, &to_host)?;
        let pidfd = PidFd::open(child.id() as i32)?;
        let ctrl = ctrl::Ctrl::new(Arc::clone(&mem), ctrl_off);
        Ok(Soc {
            mem,
            layout,
            map,
            to_remote,
            to_host,
            child,
            pidfd,
            ctrl,
            pool_off,
            pool_len,
            ctrl_off,
            program: remote.clone(),
            cfg: cfg.clone(),
        })
    }

    /// Brings a dead (or killed) remote core back, as remoteproc's recovery does: reaps the
    /// old process, "reloads the firmware" (writes its pristine resource table over the one
    /// the old link used) and starts a new remote process on the same carveout, doorbells
    /// and IOMMU windows. The host then calls [`Self::reconnect`].
    pub fn restart_remote(&mut self) -> io::Result<()> {
        if let Ok(None) = self.child.try_wait() {
            self.child.kill()?;
            let _ = self.signal(libc::SIGCONT);
        }
        self.child.wait()?;
        load_table(&self.mem, &self.layout, &self.cfg)?;
        let child = spawn_remote(
            &self.cfg,
            &self.program,
            &self.mem,
            &self.layout,
            self.ctrl_off,
            &self.to_remote,
            &self.to_host,
        )?;
        self.pidfd = PidFd::open(child.id() as i32)?;
        self.child = child;
        Ok(())
    }

    /// Re-establishes `bus` with the restarted remote ([`HostBus::reconnect`]) through a
    /// doorbell that watches the new process.
    pub fn reconnect(
        &self,
        bus: &mut HostBus<Arc<MemfdRegion>, EventfdDoorbell>,
    ) -> intercore::Result<()> {
        let bell = self
            .host_doorbell()
            .map_err(|e| intercore::Error::Os(e.raw_os_error().unwrap_or(libc::EIO)))?;
        bus.reconnect(&self.map, bell, self.layout.rsc)
    }

    /// A host bus over this SoC's carveout and doorbells.
    pub fn host_bus(
        &self,
        cfg: HostConfig,
    ) -> intercore::Result<HostBus<Arc<MemfdRegion>, EventfdDoorbell>> {
        let bell = self
            .host_doorbell()
            .map_err(|e| intercore::Error::Os(e.raw_os_error().unwrap_or(libc::EIO)))?;
        let mut cfg = cfg;
        if self.cfg.layout == SimLayout::TiK3 {
            // Linux on K3: vrings (`rproc_alloc_vring`) and buffers (`rpmsg_probe`) from
            // memory-region 0, the vdev's DMA pool, where its coherent allocator puts them.
            let k = K3Regions::new(self.cfg.vring_num, self.cfg.buf_size)
                .map_err(|_| intercore::Error::Config("no TI K3 layout for this geometry"))?;
            cfg.vring_region.get_or_insert(LinearMap {
                base: DevAddr(self.cfg.da_base),
                offset: 0,
                len: k.dma_len,
            });
        }
        HostBus::new(Arc::clone(&self.mem), bell, &self.map, self.layout.rsc, cfg)
    }

    /// The host's handle on the remote's (simulated) IOMMU.
    pub fn iommu(&self) -> ctrl::SimIommu<MemfdRegion> {
        ctrl::SimIommu::new(self.ctrl.clone(), self.mem.len())
    }

    /// IOMMU faults the remote's accesses raised: the total and the latest ones.
    pub fn iommu_faults(&self) -> (u32, Vec<intercore::dataplane::Fault>) {
        self.ctrl.faults()
    }

    /// What the remote core's coherency sanitizer caught.
    pub fn remote_reports(&self) -> Vec<Report> {
        self.ctrl
            .reports()
            .1
            .into_iter()
            .filter_map(|[k, buf, start, end]| {
                Some(Report {
                    side: Side::Remote,
                    kind: Detection::from_code(k)?,
                    buf,
                    start: start as usize,
                    end: end as usize,
                })
            })
            .collect()
    }

    /// Region offset and length of the data-plane pool.
    pub fn pool_region(&self) -> (usize, usize) {
        (self.pool_off, self.pool_len)
    }

    /// Opens the data plane: waits for the remote's `intercore-dp` service, creates our
    /// endpoint, lays out the pool over the host's cache (coherent or the model, per the
    /// configuration), and maps the whole pool read-write into the remote's IOMMU at
    /// [`POOL_IOVA`].
    pub fn open_data_plane<D: intercore::Doorbell>(
        &self,
        bus: &mut HostBus<Arc<MemfdRegion>, D>,
        timeout: Option<Duration>,
    ) -> intercore::Result<DpHost<AnyCache>> {
        self.open_data_plane_with(bus, timeout, |c| c)
    }

    /// As [`open_data_plane`](Self::open_data_plane), with the host's cache wrapped by
    /// `wrap` (e.g. in a [`FaultyCache`], to commit cache-maintenance bugs on purpose).
    pub fn open_data_plane_with<D: intercore::Doorbell, C: CacheOps>(
        &self,
        bus: &mut HostBus<Arc<MemfdRegion>, D>,
        timeout: Option<Duration>,
        wrap: impl FnOnce(AnyCache) -> C,
    ) -> intercore::Result<DpHost<C>> {
        let remote = bus.find_service(intercore::wire::dataplane::DP_SERVICE, timeout)?;
        let ep = bus.create_endpoint("intercore-dp-host", None)?;
        let mode = match self.cfg.cache {
            CacheMode::NonCoherent(e) => CacheMode::NonCoherent(Eviction {
                seed: self.cfg.host_seed,
                ..e
            }),
            m => m,
        };
        let os = |e: io::Error| intercore::Error::Os(e.raw_os_error().unwrap_or(libc::EIO));
        let cache = AnyCache::new(Arc::clone(&self.mem), mode, Side::Host, None).map_err(os)?;
        let pool = Pool::new(
            wrap(cache),
            self.pool_off,
            DevAddr(POOL_IOVA),
            &self.cfg.pool,
        )?;
        self.iommu()
            .map(DevAddr(POOL_IOVA), self.pool_off, self.pool_len, Perm::RW)?;
        DpHost::new(pool, Channel::new(ep, remote), bus.max_payload())
    }

    /// A doorbell for the host side: rings the remote, sleeps on the host's eventfd,
    /// watches the remote's process.
    pub fn host_doorbell(&self) -> io::Result<EventfdDoorbell> {
        let dup = |fd: &EventFd| fd.as_fd().try_clone_to_owned().map(EventFd::from_fd);
        let pidfd = PidFd::open(self.child.id() as i32)?;
        Ok(EventfdDoorbell::new(
            dup(&self.to_remote)?,
            dup(&self.to_host)?,
            Some(pidfd),
        ))
    }

    /// The shared carveout.
    pub fn memory(&self) -> &Arc<MemfdRegion> {
        &self.mem
    }
    /// Where everything is in the carveout.
    pub fn layout(&self) -> &CarveoutLayout {
        &self.layout
    }
    /// The device-address map of the carveout.
    pub fn map(&self) -> &LinearMap {
        &self.map
    }
    /// Where the resource table is.
    pub fn rsc(&self) -> RscLocation {
        self.layout.rsc
    }
    /// The remote core's process id.
    pub fn remote_pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the remote core's process at once (SIGKILL), as a crash would.
    pub fn kill_remote(&mut self) -> io::Result<()> {
        self.child.kill()
    }

    /// Freezes the remote core (SIGSTOP): it stops answering but does not die.
    pub fn freeze_remote(&self) -> io::Result<()> {
        self.signal(libc::SIGSTOP)
    }

    /// Resumes a frozen remote core (SIGCONT).
    pub fn thaw_remote(&self) -> io::Result<()> {
        self.signal(libc::SIGCONT)
    }

    fn signal(&self, sig: libc::c_int) -> io::Result<()> {
        // Through the pidfd we hold, a signal cannot hit a recycled pid.
        self.pidfd.send_signal(sig)
    }

    /// Waits up to `timeout` for the remote to exit by itself (after the host bus was
    /// dropped, which resets the device), killing it otherwise. Returns its exit status.
    pub fn shutdown(mut self, timeout: Duration) -> io::Result<ExitStatus> {
        if !self.pidfd.wait_exit(Some(timeout))? {
            self.child.kill()?;
        }
        self.child.wait()
    }
}

impl Drop for Soc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.signal(libc::SIGCONT);
        }
        let _ = self.child.wait();
    }
}
