//! A QEMU-backed SoC: the firmware is real ARM machine code on an emulated Cortex-R5F or
//! Cortex-M4F whose RAM is the memfd this process maps — the nearest thing to a board
//! these machines give.
//!
//! The host does remoteproc's part: it parses and checks the ELF with the project's
//! loader ([`intercore_wire::elf`]), writes every segment that falls in the shared RAM
//! (including `.resource_table`) into the memfd, and hands the segments outside it (the
//! M4F's code in SSRAM1) to QEMU as raw `-device loader` blobs, with the entry point set
//! explicitly (`-device loader,addr=ENTRY,cpu-num=0`). [`QemuSoc::load_plan`] says which
//! side loaded what. QEMU gets the memfd as its RAM (`memory-backend-file`,
//! `mem-path=/proc/self/fd/N`, inherited). The link is opened with [`HostBus`] and the
//! polling doorbell ([`intercore::pollbell`]) the firmware declares in its intercore
//! vendor resource entry; a firmware without that entry (any vendor's image: a vdev and a
//! trace entry) gets no doorbell at all — `-M none` has no interrupt controller — and both
//! sides poll the rings ([`PolledRings`]). intercore's images log and exit through
//! semihosting: a clean exit after the host goes away is 0, anything else is a
//! [`QemuError::FirmwareFault`]; a foreign firmware usually never exits.

use intercore::dataplane::{CacheOps, Coherent, DpHost, Pool, PoolConfig};
use intercore::pollbell::{PollDoorbell, PollPlatform, PollSide, PolledRings};
use intercore::rpmsg::Channel;
use intercore::rpmsg::rsc_table::DP_POOL_CARVEOUT;
use intercore::rpmsg::{HostBus, HostConfig, RscLocation};
use intercore::{DevAddr, LinearMap, SharedMemory};
use intercore_linux::{MemfdRegion, PidFd};
use intercore_wire::elf::{self, Elf, LoadTarget};
use intercore_wire::rsc::{FwRscIntercore, Resource, ResourceTable};
use std::fmt;
use std::io::{self, Read, Seek};
use std::os::fd::{AsRawFd, BorrowedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// Bytes of the shared RAM (mps2-an386 insists on 16 MiB for its PSRAM).
pub const SHARED_RAM_LEN: usize = 16 << 20;

/// The emulated remote core.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QemuCore {
    /// Cortex-R5F on `-M none -cpu cortex-r5f`: the shared RAM at 0 is all its memory.
    R5f,
    /// Cortex-M4F on `-M mps2-an386`: code in SSRAM1 (QEMU loads it), the shared RAM is
    /// the PSRAM at `0x2100_0000`.
    M4f,
}

impl QemuCore {
    /// `qemu-r5f` / `qemu-m4f`.
    pub fn name(self) -> &'static str {
        match self {
            QemuCore::R5f => "qemu-r5f",
            QemuCore::M4f => "qemu-m4f",
        }
    }
    /// Parses `qemu-r5f` or `qemu-m4f`.
    pub fn from_name(s: &str) -> Option<Self> {
        match s {
            "qemu-r5f" => Some(QemuCore::R5f),
            "qemu-m4f" => Some(QemuCore::M4f),
            _ => None,
        }
    }
    /// The Rust target the image is built for.
    pub fn target(self) -> &'static str {
        match self {
            QemuCore::R5f => "armv7r-none-eabihf",
            QemuCore::M4f => "thumbv7em-none-eabihf",
        }
    }
    /// Where the shared RAM starts on the core's bus.
    pub fn shared_base(self) -> u64 {
        match self {
            QemuCore::R5f => 0,
            QemuCore::M4f => 0x2100_0000,
        }
    }
    /// Memory outside the shared RAM that QEMU may load image segments into.
    fn qemu_loadable(self, da: u64, len: u64) -> bool {
        let inside = |base: u64, size: u64| da >= base && da.saturating_add(len) <= base + size;
        match self {
            QemuCore::R5f => false,
            // SSRAM1 (code) and SSRAM2 (data) of the AN386.
            QemuCore::M4f => inside(0, 4 << 20) || inside(0x2000_0000, 4 << 20),
        }
    }
}

/// What can go wrong, by name.
#[derive(Debug)]
pub enum QemuError {
    /// `qemu-system-arm` could not be started.
    QemuMissing {
        /// The program tried.
        program: PathBuf,
        /// Why it could not run.
        error: io::Error,
    },
    /// The image is not firmware for this core.
    BadImage {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The firmware stopped with a non-zero exit (semihosting), or QEMU died under it.
    FirmwareFault {
        /// The core.
        core: QemuCore,
        /// The exit code (None: killed by a signal).
        code: Option<i32>,
        /// What the code means in the images' convention.
        meaning: &'static str,
        /// The last lines the firmware logged.
        log: String,
    },
    /// A system call of ours failed.
    Io {
        /// What we were doing.
        context: &'static str,
        /// The error.
        error: io::Error,
    },
}

impl fmt::Display for QemuError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QemuError::QemuMissing { program, error } => write!(
                f,
                "QEMU not available: cannot run {} ({error}); install qemu-system-arm (Debian: apt-get install qemu-system-arm) or set INTERCORE_QEMU",
                program.display()
            ),
            QemuError::BadImage { path, reason } => {
                write!(f, "bad firmware image {}: {reason}", path.display())
            }
            QemuError::FirmwareFault {
                core,
                code,
                meaning,
                log,
            } => {
                match code {
                    Some(c) => write!(
                        f,
                        "firmware fault on {}: exit code {c} ({meaning})",
                        core.name()
                    )?,
                    None => write!(
                        f,
                        "firmware fault on {}: QEMU was killed by a signal ({meaning})",
                        core.name()
                    )?,
                }
                let tail: Vec<&str> = log.lines().rev().take(4).collect();
                if !tail.is_empty() {
                    write!(f, "; firmware log: ")?;
                    for (i, l) in tail.iter().rev().enumerate() {
                        if i > 0 {
                            write!(f, " | ")?;
                        }
                        write!(f, "{l}")?;
                    }
                }
                Ok(())
            }
            QemuError::Io { context, error } => write!(f, "{context}: {error}"),
        }
    }
}

impl std::error::Error for QemuError {}

fn io_err(context: &'static str) -> impl FnOnce(io::Error) -> QemuError {
    move |error| QemuError::Io { context, error }
}

/// What the images' exit codes mean (`firmware/images/src/bsp/mod.rs`).
pub fn exit_meaning(code: i32) -> &'static str {
    match code {
        0 => "clean exit",
        1 => "semihosting exit without a code",
        2 => "link error",
        3 => "panic",
        4 => "CPU fault",
        _ => "unknown",
    }
}

/// Who loaded one segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loader {
    /// This process, into the shared RAM (as remoteproc would).
    Host,
    /// QEMU, from a raw blob (`-device loader,file=…,addr=…,force-raw=on`).
    Qemu,
}

/// One loaded segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadedSegment {
    /// Device (physical) address.
    pub da: u64,
    /// Bytes in memory (`p_memsz`).
    pub len: u64,
    /// Who loaded it.
    pub by: Loader,
}

/// How the image was loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadPlan {
    /// Every segment, in file order.
    pub segments: Vec<LoadedSegment>,
    /// The entry point given to QEMU.
    pub entry: u64,
    /// Where the resource table is (device address, bytes).
    pub rsc: (u64, usize),
}

impl fmt::Display for LoadPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for s in &self.segments {
            writeln!(
                f,
                "segment {:#010x}+{:#x}: loaded by {}",
                s.da,
                s.len,
                match s.by {
                    Loader::Host => "the host (shared RAM)",
                    Loader::Qemu => "QEMU (-device loader)",
                }
            )?;
        }
        write!(
            f,
            ".resource_table at {:#010x} ({} bytes); entry point {:#010x} (set by -device loader)",
            self.rsc.0, self.rsc.1, self.entry
        )
    }
}

/// The host's load target: the shared RAM image plus one buffer per segment QEMU loads.
struct SplitTarget {
    core: QemuCore,
    shared: Vec<u8>,
    outside: Vec<(u64, Vec<u8>)>,
}

impl LoadTarget for SplitTarget {
    fn region(&mut self, da: u64, len: usize) -> Option<&mut [u8]> {
        let base = self.core.shared_base();
        if da >= base && da.checked_add(len as u64)? <= base + SHARED_RAM_LEN as u64 {
            let off = (da - base) as usize;
            return self.shared.get_mut(off..off + len);
        }
        if !self.core.qemu_loadable(da, len as u64) {
            return None;
        }
        let i = match self
            .outside
            .iter()
            .position(|(d, b)| *d == da && b.len() == len)
        {
            Some(i) => i,
            None => {
                self.outside.push((da, vec![0; len]));
                self.outside.len() - 1
            }
        };
        Some(&mut self.outside[i].1)
    }
}

/// A checked, loaded image: the shared RAM contents, QEMU's blobs, the table's findings.
struct Image {
    shared: Vec<u8>,
    outside: Vec<(u64, Vec<u8>)>,
    plan: LoadPlan,
    rsc: RscLocation,
    doorbell: Option<FwRscIntercore>,
    pool: Option<(u64, usize)>,
}

/// What the host reads from an image before starting anything: the resource table as it
/// is loaded into the shared RAM, and where.
#[derive(Debug, Clone)]
pub struct ImageTable {
    /// The table's bytes.
    pub table: Vec<u8>,
    /// Where it is in the shared RAM.
    pub rsc: RscLocation,
    /// The shared RAM as the core sees it (device address of offset 0, its length).
    pub window: LinearMap,
}

/// Loads and checks `path` for `core` without starting QEMU (as [`QemuSoc::start`] does
/// first) and returns its resource table: `board check` and `Board::open` plan the link
/// from it.
pub fn read_table(core: QemuCore, path: &Path) -> Result<ImageTable, QemuError> {
    let img = load_image(core, path)?;
    let r = img.rsc;
    Ok(ImageTable {
        table: img.shared[r.offset..r.offset + r.len].to_vec(),
        rsc: r,
        window: LinearMap {
            base: DevAddr(core.shared_base()),
            offset: 0,
            len: SHARED_RAM_LEN,
        },
    })
}

fn load_image(core: QemuCore, path: &Path) -> Result<Image, QemuError> {
    let bad = |reason: String| QemuError::BadImage {
        path: path.to_path_buf(),
        reason,
    };
    let bytes = std::fs::read(path).map_err(|e| bad(format!("cannot read it: {e}")))?;
    let elf = Elf::parse(&bytes).map_err(|e| bad(e.to_string()))?;
    elf.validate().map_err(|e| bad(e.to_string()))?;
    if elf.machine() != elf::machine::ARM || elf.class().bits() != 32 {
        return Err(bad(format!(
            "ELF{} for machine {} ({}), not a 32-bit ARM image",
            elf.class().bits(),
            elf.machine(),
            elf::machine::name(elf.machine()).unwrap_or("unknown")
        )));
    }
    let rsc = elf
        .resource_table()
        .map_err(|e| bad(e.to_string()))?
        .ok_or_else(|| bad("no .resource_table section".into()))?;
    if rsc.loaded_in.is_none() {
        return Err(bad(format!(
            ".resource_table at {:#x} is in no loaded segment",
            rsc.section.addr
        )));
    }
    let base = core.shared_base();
    let (rsc_da, rsc_len) = (rsc.section.addr, rsc.section.size as usize);
    if rsc_da < base || rsc_da + rsc_len as u64 > base + SHARED_RAM_LEN as u64 {
        return Err(bad(format!(
            ".resource_table at {rsc_da:#x} is outside the shared RAM ({base:#x}+{SHARED_RAM_LEN:#x}): the host could not write it back"
        )));
    }
    let mut target = SplitTarget {
        core,
        shared: vec![0; SHARED_RAM_LEN],
        outside: Vec::new(),
    };
    elf.load(&mut target).map_err(|e| {
        bad(format!(
            "{e} (on {}, segments must lie in the shared RAM {base:#x}+{SHARED_RAM_LEN:#x}{})",
            core.name(),
            if core == QemuCore::M4f {
                ", SSRAM1 0x0+4M or SSRAM2 0x20000000+4M"
            } else {
                ""
            }
        ))
    })?;
    let mut segments = Vec::new();
    for s in elf.segments() {
        let s = s.map_err(|e| bad(e.to_string()))?;
        let in_shared = s.da() >= base && s.da() + s.memsz() <= base + SHARED_RAM_LEN as u64;
        segments.push(LoadedSegment {
            da: s.da(),
            len: s.memsz(),
            by: if in_shared {
                Loader::Host
            } else {
                Loader::Qemu
            },
        });
    }
    let off = (rsc_da - base) as usize;
    let (doorbell, pool) = scan_table(&target.shared[off..off + rsc_len]).map_err(bad)?;
    Ok(Image {
        shared: target.shared,
        outside: target.outside,
        plan: LoadPlan {
            segments,
            entry: elf.entry(),
            rsc: (rsc_da, rsc_len),
        },
        rsc: RscLocation {
            offset: off,
            len: rsc_len,
        },
        doorbell,
        pool,
    })
}

/// The loaded image's resource table: its intercore vendor entry (`None`: a foreign
/// firmware, whose rings the link polls: no interrupt on `-M none`) and its data-plane
/// pool carveout (device address, length), if any.
#[allow(clippy::type_complexity)]
fn scan_table(bytes: &[u8]) -> Result<(Option<FwRscIntercore>, Option<(u64, usize)>), String> {
    let table = ResourceTable::validate(bytes).map_err(|e| e.to_string())?;
    if table
        .find_vdev(intercore_wire::rpmsg::VIRTIO_ID_RPMSG)
        .map_err(|e| e.to_string())?
        .is_none()
    {
        return Err("the resource table has no rpmsg vdev".into());
    }
    let doorbell = table
        .find_intercore()
        .map_err(|e| e.to_string())?
        .map(|(_, e)| e);
    let mut pool = None;
    for e in table.iter() {
        if let Resource::Carveout(c) = e.map_err(|e| e.to_string())? {
            if c.name.starts_with(DP_POOL_CARVEOUT) && c.name[DP_POOL_CARVEOUT.len()] == 0 {
                pool = Some((c.da.get() as u64, c.len.get() as usize));
            }
        }
    }
    Ok((doorbell, pool))
}

/// The QEMU SoC's set-up.
#[derive(Debug, Clone)]
pub struct QemuConfig {
    /// The core.
    pub core: QemuCore,
    /// The ELF image.
    pub image: PathBuf,
    /// The QEMU program (`qemu-system-arm` on the PATH by default).
    pub qemu: PathBuf,
}

impl QemuConfig {
    /// `core` running `image`, with QEMU from `INTERCORE_QEMU` or `qemu-system-arm`.
    pub fn new(core: QemuCore, image: PathBuf) -> Self {
        Self {
            core,
            image,
            qemu: std::env::var_os("INTERCORE_QEMU")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("qemu-system-arm")),
        }
    }
}

/// The host's side of the polling doorbell: the monotonic clock, a back-off that spins
/// briefly, then yields, then sleeps up to 200 µs, and QEMU's liveness.
pub struct HostPoll {
    qemu: Arc<PidFd>,
}

impl PollPlatform for HostPoll {
    fn now(&self) -> Duration {
        intercore_linux::notify::LinuxPoll.now()
    }
    fn back_off(&self, round: u32) {
        intercore_linux::notify::LinuxPoll.back_off(round)
    }
    fn yield_cpu(&self) {
        intercore_linux::notify::LinuxPoll.yield_cpu()
    }
    fn check_peer(&self) -> intercore::Result<()> {
        match self.qemu.exited() {
            Ok(true) => Err(intercore::Error::PeerGone),
            _ => Ok(()),
        }
    }
}

/// The doorbell of the host's bus: the counters the firmware's intercore vendor entry
/// declares, or (no entry) none, the rings polled.
pub enum HostBell {
    /// intercore's polling doorbell.
    Counters(PollDoorbell<Arc<MemfdRegion>, HostPoll>),
    /// No doorbell: the host polls the rings.
    Rings(PolledRings<HostPoll>),
}

impl intercore::Doorbell for HostBell {
    fn ring(&self, notify_id: u32) -> intercore::Result<()> {
        match self {
            HostBell::Counters(b) => b.ring(notify_id),
            HostBell::Rings(b) => b.ring(notify_id),
        }
    }
    fn wait(&self, timeout: Option<Duration>) -> intercore::Result<bool> {
        match self {
            HostBell::Counters(b) => b.wait(timeout),
            HostBell::Rings(b) => b.wait(timeout),
        }
    }
    fn now(&self) -> Duration {
        intercore_linux::notify::LinuxPoll.now()
    }
    fn check_peer(&self) -> intercore::Result<()> {
        match self {
            HostBell::Counters(b) => intercore::Doorbell::check_peer(b),
            HostBell::Rings(b) => intercore::Doorbell::check_peer(b),
        }
    }
    fn yield_cpu(&self) {
        std::thread::yield_now()
    }
}

/// In a reactor (`intercore_linux::reactor`): no wake descriptor, so the link is served on
/// the reactor's tick; QEMU's pidfd reports its death at once.
impl intercore_linux::reactor::ReactorDoorbell for HostBell {
    fn wake_fd(&self) -> Option<BorrowedFd<'_>> {
        None
    }
    fn peer_fd(&self) -> Option<BorrowedFd<'_>> {
        let p = match self {
            HostBell::Counters(b) => b.platform(),
            HostBell::Rings(b) => b.platform(),
        };
        Some(std::os::fd::AsFd::as_fd(&*p.qemu))
    }
    fn take_wake(&self) -> intercore::Result<()> {
        Ok(())
    }
}

/// Output of a child's stream, collected by a thread (bounded: the last 1 MiB).
struct Collector {
    buf: Arc<Mutex<Vec<u8>>>,
    thread: Option<JoinHandle<()>>,
}

impl Collector {
    fn new(mut r: impl Read + Send + 'static) -> Self {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let b = Arc::clone(&buf);
        let thread = std::thread::spawn(move || {
            let mut chunk = [0u8; 4096];
            while let Ok(n) = r.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                let mut v = b.lock().unwrap_or_else(|e| e.into_inner());
                v.extend_from_slice(&chunk[..n]);
                if v.len() > 1 << 20 {
                    let cut = v.len() - (1 << 20);
                    v.drain(..cut);
                }
            }
        });
        Self {
            buf,
            thread: Some(thread),
        }
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.buf.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
    }
    fn finish(&mut self) -> String {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.text()
    }
}

/// A running QEMU SoC.
pub struct QemuSoc {
    core: QemuCore,
    mem: Arc<MemfdRegion>,
    map: LinearMap,
    rsc: RscLocation,
    doorbell: Option<FwRscIntercore>,
    pool: Option<(u64, usize)>,
    plan: LoadPlan,
    child: Child,
    pidfd: Arc<PidFd>,
    console: Collector,
    stderr: Collector,
    uart: Option<MemfdRegion>,
    _blobs: Vec<MemfdRegion>,
}

/// QEMU's command line for `img` on `cfg.core`: the shared RAM as its memory backend, the
/// segments outside it as raw loader blobs, the entry point, and (M4F) the UART log it
/// returns with the command.
fn qemu_command(
    cfg: &QemuConfig,
    img: &Image,
    mem: &MemfdRegion,
    blobs: &[(u64, MemfdRegion)],
) -> Result<(Command, Option<MemfdRegion>), QemuError> {
    let core = cfg.core;
    let path = |fd: BorrowedFd<'_>| format!("/proc/self/fd/{}", fd.as_raw_fd());
    let mut cmd = Command::new(&cfg.qemu);
    cmd.args(["-nodefaults", "-display", "none", "-monitor", "none"])
        .args(["-semihosting-config", "enable=on,target=native"])
        .arg("-object")
        .arg(format!(
            "memory-backend-file,id=shm,mem-path={},size={}M,share=on",
            path(mem.fd()),
            SHARED_RAM_LEN >> 20
        ));
    let mut uart = None;
    match core {
        QemuCore::R5f => {
            cmd.args(["-M", "none,memory-backend=shm", "-cpu", "cortex-r5f"]);
        }
        QemuCore::M4f => {
            cmd.args(["-M", "mps2-an386,memory-backend=shm"]);
            let u = MemfdRegion::create("intercore-qemu-uart", 4096)
                .map_err(io_err("creating the UART log"))?;
            cmd.arg("-serial").arg(format!("file:{}", path(u.fd())));
            uart = Some(u);
        }
    }
    for (da, m) in blobs {
        cmd.arg("-device").arg(format!(
            "loader,file={},addr={da:#x},force-raw=on",
            path(m.fd())
        ));
    }
    cmd.arg("-device")
        .arg(format!("loader,addr={:#x},cpu-num=0", img.plan.entry));
    Ok((cmd, uart))
}

impl QemuSoc {
    /// Loads the image and starts QEMU.
    pub fn start(cfg: &QemuConfig) -> Result<QemuSoc, QemuError> {
        let core = cfg.core;
        let img = load_image(core, &cfg.image)?;
        let mem = Arc::new(
            MemfdRegion::create("intercore-qemu-ram", SHARED_RAM_LEN)
                .map_err(io_err("creating the shared RAM"))?,
        );
        mem.write(0, &img.shared);
        let mut blobs = Vec::new();
        for (da, bytes) in &img.outside {
            if bytes.is_empty() {
                continue;
            }
            let m = MemfdRegion::create("intercore-qemu-segment", bytes.len())
                .map_err(io_err("creating a segment blob"))?;
            m.write(0, bytes);
            blobs.push((*da, m));
        }
        let (mut cmd, uart) = qemu_command(cfg, &img, &mem, &blobs)?;
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut keep: Vec<BorrowedFd<'_>> = vec![mem.fd()];
        keep.extend(blobs.iter().map(|(_, m)| m.fd()));
        if let Some(u) = &uart {
            keep.push(u.fd());
        }
        let mut child = intercore_linux::spawn_inheriting(&mut cmd, &keep).map_err(|error| {
            QemuError::QemuMissing {
                program: cfg.qemu.clone(),
                error,
            }
        })?;
        let pidfd = Arc::new(PidFd::open(child.id() as i32).map_err(io_err("pidfd_open(qemu)"))?);
        // QEMU writes the semihosting console (without a chardev) to its stderr, next to
        // its own diagnostics; stdout carries nothing of ours.
        let console = Collector::new(child.stderr.take().expect("piped"));
        let stderr = Collector::new(child.stdout.take().expect("piped"));
        Ok(QemuSoc {
            core,
            map: LinearMap {
                base: DevAddr(core.shared_base()),
                offset: 0,
                len: SHARED_RAM_LEN,
            },
            rsc: img.rsc,
            doorbell: img.doorbell,
            pool: img.pool,
            plan: img.plan,
            child,
            pidfd,
            console,
            stderr,
            uart,
            mem,
            _blobs: blobs.into_iter().map(|(_, m)| m).collect(),
        })
    }

    /// The core.
    pub fn core(&self) -> QemuCore {
        self.core
    }
    /// Which side loaded what.
    pub fn load_plan(&self) -> &LoadPlan {
        &self.plan
    }
    /// QEMU's process id.
    pub fn qemu_pid(&self) -> u32 {
        self.child.id()
    }
    /// The shared RAM.
    pub fn memory(&self) -> &Arc<MemfdRegion> {
        &self.mem
    }
    /// Where the doorbell counters are, as the firmware declared (`None`: a firmware
    /// without intercore's vendor entry; the rings are polled).
    pub fn doorbell_entry(&self) -> Option<FwRscIntercore> {
        self.doorbell
    }
    /// Where the resource table is in the shared RAM.
    pub fn rsc(&self) -> RscLocation {
        self.rsc
    }
    /// The shared RAM as the core sees it.
    pub fn window(&self) -> LinearMap {
        self.map
    }

    /// The host's doorbell: the polling doorbell over the firmware's block, or (no vendor
    /// entry) none, the rings polled.
    pub fn host_doorbell(&self) -> intercore::Result<HostBell> {
        let platform = HostPoll {
            qemu: Arc::clone(&self.pidfd),
        };
        match &self.doorbell {
            Some(entry) => PollDoorbell::from_entry(
                Arc::clone(&self.mem),
                &self.map,
                entry,
                PollSide::Host,
                platform,
            )
            .map(HostBell::Counters),
            None => Ok(HostBell::Rings(PolledRings::new(platform))),
        }
    }

    /// A host bus over the firmware's resource table, with the polling doorbell.
    pub fn host_bus(
        &self,
        cfg: HostConfig,
    ) -> intercore::Result<HostBus<Arc<MemfdRegion>, HostBell>> {
        HostBus::new(
            Arc::clone(&self.mem),
            self.host_doorbell()?,
            &self.map,
            self.rsc,
            cfg,
        )
    }

    /// Opens the data plane in the window the firmware declares (`intercore-dp`): waits
    /// for its service, lays the pool out there (no IOMMU: the remote reaches exactly that
    /// window, the host's view is coherent with the emulated core's memory).
    pub fn open_data_plane<D: intercore::Doorbell>(
        &self,
        bus: &mut HostBus<Arc<MemfdRegion>, D>,
        pool: &PoolConfig,
        timeout: Option<Duration>,
    ) -> intercore::Result<DpHost<Coherent<Arc<MemfdRegion>>>> {
        self.open_data_plane_with(bus, pool, timeout, |c| c)
    }

    /// As [`open_data_plane`](Self::open_data_plane), with the host's cache operations
    /// wrapped by `wrap` (a caller that keeps one data-plane type for every transport).
    pub fn open_data_plane_with<D: intercore::Doorbell, C: CacheOps>(
        &self,
        bus: &mut HostBus<Arc<MemfdRegion>, D>,
        pool: &PoolConfig,
        timeout: Option<Duration>,
        wrap: impl FnOnce(Coherent<Arc<MemfdRegion>>) -> C,
    ) -> intercore::Result<DpHost<C>> {
        let (da, len) = self.pool.ok_or(intercore::Error::Config(
            "the firmware declares no intercore-dp window",
        ))?;
        if pool.region_len() > len {
            return Err(intercore::Error::Config(
                "the pool is larger than the firmware's intercore-dp window",
            ));
        }
        let remote = bus.find_service(intercore::wire::dataplane::DP_SERVICE, timeout)?;
        let ep = bus.create_endpoint("intercore-dp-host", None)?;
        let off = (da - self.core.shared_base()) as usize;
        let cache = wrap(Coherent::new(Arc::clone(&self.mem)));
        let pool = Pool::new(cache, off, DevAddr(da), pool)?;
        DpHost::new(pool, Channel::new(ep, remote), bus.max_payload())
    }

    /// What the firmware wrote to the semihosting console so far (QEMU's stderr: its own
    /// diagnostics appear here too).
    pub fn console(&self) -> String {
        self.console.text()
    }

    /// Waits up to `timeout` for the firmware to exit by itself (after the host bus was
    /// dropped, which resets the device and rings it), killing QEMU otherwise. Returns the
    /// firmware's console (semihosting, then the UART's, if any) on a clean exit, and a
    /// [`QemuError::FirmwareFault`] otherwise.
    pub fn shutdown(mut self, timeout: Duration) -> Result<Exit, QemuError> {
        let exited = self
            .pidfd
            .wait_exit(Some(timeout))
            .map_err(io_err("waiting for QEMU"))?;
        let timed_out = !exited;
        if timed_out {
            let _ = self.child.kill();
        }
        let status = self.child.wait().map_err(io_err("waiting for QEMU"))?;
        self.exit_report(status, timed_out)
    }

    /// The firmware's state now: `Some(fault)` if QEMU already exited with a non-zero code
    /// (for reporting the cause of a broken link).
    pub fn fault_now(&mut self) -> Option<QemuError> {
        match self.child.try_wait() {
            Ok(Some(status)) if !status.success() => self.exit_report(status, false).err(),
            _ => None,
        }
    }

    fn exit_report(&mut self, status: ExitStatus, timed_out: bool) -> Result<Exit, QemuError> {
        let console = self.console.finish();
        let stderr = self.stderr.finish();
        // Read through a new descriptor: QEMU truncated and grew the file, so the mapping
        // made at creation is not used.
        let uart = self.uart.as_ref().and_then(|u| {
            let mut f = std::fs::File::from(u.fd().try_clone_to_owned().ok()?);
            let mut s = String::new();
            f.rewind().ok()?;
            f.read_to_string(&mut s).ok()?;
            Some(s)
        });
        let mut log = console.clone();
        if !stderr.trim().is_empty() {
            log.push_str(&stderr);
        }
        if timed_out {
            return Err(QemuError::FirmwareFault {
                core: self.core,
                code: status.code(),
                meaning: "did not exit after the host went away (killed)",
                log,
            });
        }
        match status.code() {
            Some(0) => Ok(Exit { console, uart }),
            code => Err(QemuError::FirmwareFault {
                core: self.core,
                code,
                meaning: code.map_or("killed by a signal", exit_meaning),
                log,
            }),
        }
    }
}

/// A clean exit: what the firmware logged.
#[derive(Debug, Clone)]
pub struct Exit {
    /// The semihosting console.
    pub console: String,
    /// The UART's output (mps2), if the machine has one.
    pub uart: Option<String>,
}

impl Drop for QemuSoc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// The image of `core` under `dir`: `DIR/<target>/release/offload` (a cargo target
/// directory of `firmware/images`) or `DIR/<core name>.elf`.
pub fn find_image(dir: &Path, core: QemuCore) -> Option<PathBuf> {
    [
        dir.join(core.target()).join("release").join("offload"),
        dir.join(format!("{}.elf", core.name())),
    ]
    .into_iter()
    .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The host's loader refuses what is not 32-bit ARM firmware before QEMU is started,
    /// naming the file and the reason (this test binary is an x86-64 ELF).
    #[test]
    fn non_arm_and_missing_images_are_named() {
        let me = std::env::current_exe().unwrap();
        let cfg = QemuConfig {
            core: QemuCore::R5f,
            image: me.clone(),
            qemu: PathBuf::from("/nonexistent/qemu-system-arm"),
        };
        let e = QemuSoc::start(&cfg).err().unwrap().to_string();
        assert!(
            e.contains("bad firmware image") && e.contains("not a 32-bit ARM image"),
            "{e}"
        );
        let cfg = QemuConfig {
            image: PathBuf::from("/nonexistent/fw.elf"),
            ..cfg
        };
        let e = QemuSoc::start(&cfg).err().unwrap().to_string();
        assert!(e.contains("cannot read it"), "{e}");
    }

    /// The split loader: segments inside the shared RAM go to the host's image of it,
    /// segments in the M4F's SSRAM1/SSRAM2 to QEMU blobs, anything else is refused (the
    /// loader then names the segment), and the R5F has no memory outside the shared RAM.
    #[test]
    fn split_target_places_segments() {
        let mut t = SplitTarget {
            core: QemuCore::M4f,
            shared: vec![0; SHARED_RAM_LEN],
            outside: Vec::new(),
        };
        assert_eq!(t.region(0x2100_0000, 16).map(|s| s.len()), Some(16));
        assert!(
            t.region(0x2100_0000 + SHARED_RAM_LEN as u64 - 8, 16)
                .is_none()
        );
        assert_eq!(t.region(0x100, 32).map(|s| s.len()), Some(32));
        assert_eq!(t.region(0x100, 32).map(|s| s.len()), Some(32));
        assert_eq!(
            t.outside.len(),
            1,
            "the same segment asked twice is one blob"
        );
        assert!(t.region(0x2000_0000, 64).is_some());
        assert!(t.region(0x4000_0000, 4).is_none(), "peripheral space");
        assert!(t.region(0x3F_FFF0, 32).is_none(), "across SSRAM1's end");
        let mut r = SplitTarget {
            core: QemuCore::R5f,
            shared: vec![0; SHARED_RAM_LEN],
            outside: Vec::new(),
        };
        assert!(r.region(0, 64).is_some());
        assert!(r.region(SHARED_RAM_LEN as u64, 4).is_none());
    }

    /// Exit codes of the images map to names; a fault's message carries the core, the code
    /// and the firmware's last log lines.
    #[test]
    fn firmware_fault_is_named() {
        assert_eq!(exit_meaning(4), "CPU fault");
        assert_eq!(exit_meaning(3), "panic");
        let e = QemuError::FirmwareFault {
            core: QemuCore::M4f,
            code: Some(4),
            meaning: exit_meaning(4),
            log: "a\nb\n[fw] CPU fault: HardFault at pc 0x100\n".into(),
        };
        let s = e.to_string();
        assert!(
            s.starts_with("firmware fault on qemu-m4f: exit code 4 (CPU fault)"),
            "{s}"
        );
        assert!(s.contains("CPU fault: HardFault at pc 0x100"), "{s}");
        // Killed because it never exited: the reason is in the message (it was dropped:
        // "QEMU was killed by a signal" alone).
        let e = QemuError::FirmwareFault {
            core: QemuCore::R5f,
            code: None,
            meaning: "did not exit after the host went away (killed)",
            log: String::new(),
        };
        assert!(
            e.to_string()
                .contains("did not exit after the host went away"),
            "{e}"
        );
        assert_eq!(QemuCore::from_name("qemu-r5f"), Some(QemuCore::R5f));
        assert_eq!(QemuCore::from_name("r5f"), None);
    }
}
