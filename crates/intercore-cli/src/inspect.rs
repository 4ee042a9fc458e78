//! `intercore inspect`: decode a live or frozen link read-only and say what is wrong
//! (`intercore::inspect` does the decoding and the diagnosis; this is its command line).
//!
//! The memory is opened read-only: a POSIX shm object or any file a peer maps (`--shm`),
//! a raw dump (`--dump`), or the memory a board's link uses (`--board`) are read with
//! `pread` — for a sim or QEMU board the link owner's memfd, reached through
//! `/proc/PID/fd` of the owner, which keeps the link. A kernel or userspace board's link
//! is physical memory: the ranges the board file names (the userspace transport's
//! carveout; for the kernel transport the remote processor's `memory-region` entries in
//! the device tree) are mapped `PROT_READ` from `/dev/mem` opened `O_RDONLY`
//! (`intercore_linux::sys::ReadOnlyMap`; arm64's `/dev/mem` refuses `read()` of a `no-map`
//! range but maps it), each range on its own and nothing between them.

use clap::Args;
use intercore::inspect::{Flavor, Peek, Report, Target, VringSpec, inspect};
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// `--watch` ticks at most (a day at the shortest interval is under this).
pub const WATCH_COUNT_MAX: u64 = 100_000_000;

/// `intercore inspect`.
#[derive(Args, Debug, Clone)]
pub struct InspectArgs {
    /// The memory of this board's link: a sim/QEMU board's running link owner's memfd (the
    /// owner keeps the link); a userspace board's carveout, or a kernel board's remote
    /// processor's memory-region ranges, mapped read-only from /dev/mem (root). The
    /// resource table is found by scanning unless the board or --rsc-offset places it.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["shm", "dump"])]
    pub board: Option<PathBuf>,
    /// sysfs root, for --board (default /sys)
    #[arg(long, value_name = "DIR", requires = "board")]
    pub sysfs: Option<PathBuf>,
    /// Device-node root, for --board: where mem and remoteprocN are (default /dev)
    #[arg(long, value_name = "DIR", requires = "board")]
    pub dev: Option<PathBuf>,
    /// Device-tree root, for --board (default /proc/device-tree)
    #[arg(long, value_name = "DIR", requires = "board")]
    pub device_tree: Option<PathBuf>,
    /// A POSIX shared-memory object (a name, looked up in /dev/shm) or any file a peer
    /// maps, e.g. OpenAMP's generic machine's openamp.shm
    #[arg(long, value_name = "PATH", conflicts_with = "dump")]
    pub shm: Option<PathBuf>,
    /// A raw dump of the link's memory (give its device address with --base)
    #[arg(long, value_name = "FILE")]
    pub dump: Option<PathBuf>,
    /// Device address of the region's first byte (hex with 0x, or decimal; default 0,
    /// the board's da_base with --board)
    #[arg(long, value_name = "ADDR", value_parser = addr)]
    pub base: Option<Addr>,
    /// Where the region starts in the file (default 0)
    #[arg(long, value_name = "BYTES", value_parser = addr)]
    pub file_offset: Option<Addr>,
    /// Region length (default: the file's length from --file-offset)
    #[arg(long, value_name = "BYTES", value_parser = addr)]
    pub size: Option<Addr>,
    /// Region offset of the resource table (default: searched for at every 4 KiB
    /// boundary, unless vrings are given)
    #[arg(long, value_name = "OFFSET", value_parser = addr)]
    pub rsc_offset: Option<Addr>,
    /// vring 0 (remote -> host) as DA:NUM:ALIGN, for links without a table (RPMsg-Lite,
    /// host-placed rings) or to override it
    #[arg(long, value_name = "DA:NUM:ALIGN", value_parser = vring, requires = "vring1")]
    pub vring0: Option<VringSpec>,
    /// vring 1 (host -> remote) as DA:NUM:ALIGN
    #[arg(long, value_name = "DA:NUM:ALIGN", value_parser = vring, requires = "vring0")]
    pub vring1: Option<VringSpec>,
    /// The rings were laid out by RPMsg-Lite's master (its transmit buffers start in
    /// vring 1's used ring)
    #[arg(long)]
    pub rpmsg_lite: bool,
    /// EVENT_IDX is negotiated (for links without a table; a table's gfeatures decide)
    #[arg(long)]
    pub event_idx: bool,
    /// Last messages shown per direction [range: 1..=64]
    #[arg(long, value_name = "N", default_value = "4", allow_negative_numbers = true,
          value_parser = crate::count(1, 64))]
    pub history: u64,
    /// Re-read and print one line per read whose indices or findings changed, until
    /// interrupted (Ctrl-C) or the reader goes away
    #[arg(long)]
    pub watch: bool,
    /// Time between reads with --watch, in seconds [range: 0.01..=3600 s]
    #[arg(long, value_name = "SECS", default_value = "0.5", allow_negative_numbers = true,
          value_parser = crate::seconds(0.01, 3600.0))]
    pub interval: Duration,
    /// Stop --watch after this many reads [range: 1..=100000000]
    #[arg(long, value_name = "N", allow_negative_numbers = true,
          value_parser = crate::count(1, WATCH_COUNT_MAX))]
    pub count: Option<u64>,
}

/// An address, size or offset option's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Addr(pub u64);

fn num(s: &str) -> Result<u64, String> {
    let t = s.trim().replace('_', "");
    let r = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16),
        None => t.parse(),
    };
    r.map_err(|_| format!("{s:?} is not an address (hex with 0x, or decimal, at most 64 bits)"))
}

/// Parses an address (`0xA0000000` or decimal).
pub fn addr(s: &str) -> Result<Addr, String> {
    num(s).map(Addr)
}

/// Parses `DA:NUM:ALIGN`.
pub fn vring(s: &str) -> Result<VringSpec, String> {
    let p: Vec<&str> = s.split(':').collect();
    let [da, n, a] = p.as_slice() else {
        return Err(format!("{s:?} is not DA:NUM:ALIGN"));
    };
    let n = num(n)?;
    let a = num(a)?;
    if !(1..=32768).contains(&n)
        || !n.is_power_of_two()
        || !(2..=1 << 20).contains(&a)
        || !a.is_power_of_two()
    {
        return Err(format!(
            "{s:?}: NUM must be a power of two in 1..=32768 and ALIGN a power of two in 2..=1048576"
        ));
    }
    Ok(VringSpec {
        da: num(da)?,
        num: n as u32,
        align: a as u32,
    })
}

/// A file region read with `pread`, opened read-only.
struct FileMem {
    file: File,
    start: u64,
    len: usize,
}

impl Peek for FileMem {
    fn len(&self) -> usize {
        self.len
    }
    fn peek(&self, off: usize, dst: &mut [u8]) -> std::io::Result<()> {
        let at = self
            .start
            .checked_add(off as u64)
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::UnexpectedEof))?;
        self.file.read_exact_at(dst, at)
    }
}

/// Physical ranges mapped read-only from `/dev/mem`, seen by the decoder as one region
/// from the lowest range's start to the highest's end; a read between ranges is an error
/// (nothing there is mapped, or read).
struct PhysMem {
    /// `(region offset, mapping)`, sorted, not overlapping.
    maps: Vec<(usize, intercore_linux::sys::ReadOnlyMap)>,
    len: usize,
}

impl Peek for PhysMem {
    fn len(&self) -> usize {
        self.len
    }
    fn peek(&self, off: usize, dst: &mut [u8]) -> std::io::Result<()> {
        let end = off
            .checked_add(dst.len())
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::UnexpectedEof))?;
        match self
            .maps
            .iter()
            .find(|(at, m)| *at <= off && end <= at + m.len())
        {
            Some((at, m)) => m.read(off - at, dst),
            None => Err(std::io::Error::new(
                std::io::ErrorKind::AddrNotAvailable,
                "not inside one of the board's memory ranges",
            )),
        }
    }
}

/// The region must fit in memory the decoder can index: 1 TiB is more than any link.
const REGION_MAX: u64 = 1 << 40;

fn open(path: &Path, start: u64, size: Option<u64>) -> Result<FileMem, String> {
    let file = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let flen = file
        .metadata()
        .map_err(|e| format!("{}: {e}", path.display()))?
        .len();
    let len = match size {
        Some(s) => s,
        None => flen.checked_sub(start).filter(|l| *l > 0).ok_or_else(|| {
            format!(
                "{}: {flen} bytes, nothing from offset {start:#x} (give --size for a device)",
                path.display()
            )
        })?,
    };
    if len == 0 || len > REGION_MAX {
        return Err(format!(
            "region size {len:#x} is not in 1..={REGION_MAX:#x}"
        ));
    }
    Ok(FileMem {
        file,
        start,
        len: len as usize,
    })
}

/// A POSIX shm name (no slash) lives in /dev/shm.
fn shm_path(p: &Path) -> PathBuf {
    if p.components().count() == 1 && !p.exists() {
        Path::new("/dev/shm").join(p)
    } else {
        p.to_path_buf()
    }
}

/// The first 4 KiB boundary (within the first 16 MiB) holding a resource table with an
/// rpmsg vdev.
fn find_table(mem: &dyn Peek) -> Option<usize> {
    find_table_in(mem, 0, mem.len())
}

/// As [`find_table`], within `start..start + len` of the region (`start` 4 KiB-aligned).
fn find_table_in(mem: &dyn Peek, start: usize, len: usize) -> Option<usize> {
    let end = start.saturating_add(len.min(16 << 20)).min(mem.len());
    (start..end).step_by(4096).find(|&off| {
        // A table starts with version 1, 1..=256 entries and two reserved zero words.
        let mut h = [0u8; 16];
        if off + 16 > mem.len() || mem.peek(off, &mut h).is_err() {
            return false;
        }
        let w = |i: usize| u32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
        if w(0) != 1 || !(1..=256).contains(&w(4)) || w(8) != 0 || w(12) != 0 {
            return false;
        }
        let r = inspect(
            mem,
            &Target {
                rsc_offset: Some(off),
                ..Target::default()
            },
        );
        r.resource_table.as_ref().is_some_and(|t| t.vdev.is_some())
    })
}

/// What `--board` reads: the memory, the device address of its first byte, where the
/// board puts the resource table (if it says), and the device-address ranges it names.
struct BoardMem {
    mem: Box<dyn Peek>,
    base: u64,
    rsc_offset: Option<usize>,
    windows: Vec<(u64, u64)>,
}

/// The link memory `board` names: a sim/QEMU board's running owner's memfd, or a
/// kernel/userspace board's physical ranges.
fn board_memory(file: &Path, a: &InspectArgs) -> Result<BoardMem, String> {
    let b = intercore_board::Board::from_file(file).map_err(|e| e.to_string())?;
    use intercore_board::TransportSpec as Tr;
    let base = match &b.transport {
        Tr::Sim { da_base, .. } => *da_base,
        Tr::Qemu { core, .. } => core.core().shared_base(),
        Tr::Userspace { .. } | Tr::Kernel { .. } => return phys_board_memory(file, &b, a),
    };
    let (mem, base) = owner_memory(file, base)?;
    Ok(BoardMem {
        mem: Box::new(mem),
        base,
        rsc_offset: None,
        windows: Vec::new(),
    })
}

/// `/dev`, `/sys`, `/proc/device-tree` as the options give them.
fn roots(a: &InspectArgs) -> intercore_linux::SysRoots {
    let mut r = intercore_linux::SysRoots::default();
    if let Some(d) = &a.sysfs {
        r.sys = d.clone();
    }
    if let Some(d) = &a.dev {
        r.dev = d.clone();
    }
    if let Some(d) = &a.device_tree {
        r.device_tree = d.clone();
    }
    r
}

/// A kernel or userspace board's link memory: physical ranges, read through `/dev/mem`
/// mapped read-only. The device sees them at their physical addresses (the remoteproc
/// carveouts of TI K3 and ZynqMP R5F DDR, and what the userspace transport assumes:
/// `PhysCarveout::identity_map`); `--base` says otherwise.
///
/// * userspace: the transport's carveout (`transport.base`/`size` or
///   `transport.region`), the table at `transport.rsc_offset`, plus the `[vdev]` pool and
///   buffer ranges if the board gives them;
/// * kernel: the remote processor's `memory-region` entries (its device-tree node's
///   phandles, resolved through `/reserved-memory`, as `board check` reads them), where
///   Linux allocated the vrings and buffers (the first: TI K3's DMA pool) and the firmware
///   keeps its table; the table is searched for.
fn phys_board_memory(
    file: &Path,
    b: &intercore_board::Board,
    a: &InspectArgs,
) -> Result<BoardMem, String> {
    let roots = roots(a);
    let (ranges, rsc_at) = board_ranges(file, b, &roots)?;
    let start = ranges[0].0;
    let mem = map_ranges(&roots, &ranges)?;
    let rsc_offset = match rsc_at {
        Some(pa) => Some((pa - start) as usize),
        None => ranges
            .iter()
            .find_map(|&(pa, len)| find_table_in(&mem, (pa - start) as usize, len as usize)),
    };
    if rsc_offset.is_none() && a.rsc_offset.is_none() && a.vring0.is_none() {
        return Err(format!(
            "no resource table with an rpmsg vdev at any 4 KiB boundary of {}: is the firmware loaded? (or give --rsc-offset, or the rings with --vring0/--vring1)",
            ranges
                .iter()
                .map(|(p, l)| format!("{p:#x}+{l:#x}"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    Ok(BoardMem {
        mem: Box::new(mem),
        base: start,
        rsc_offset,
        windows: ranges,
    })
}

/// Physical `(base, length)` ranges.
type Ranges = Vec<(u64, u64)>;

/// The physical ranges a kernel or userspace board names (sorted, not empty, not
/// overlapping), and the table's physical address if the board gives it.
fn board_ranges(
    file: &Path,
    b: &intercore_board::Board,
    roots: &intercore_linux::SysRoots,
) -> Result<(Ranges, Option<u64>), String> {
    use intercore_board::{RegionSpec, TransportSpec as Tr};
    let where_ = file.display();
    let mut ranges: Vec<(u64, u64)> = Vec::new();
    let mut rsc_at: Option<u64> = None;
    match &b.transport {
        Tr::Userspace {
            region, rsc_offset, ..
        } => {
            let (pa, len) = match region {
                RegionSpec::Range { base, size } => (*base, *size),
                RegionSpec::ReservedMemory { node, size } => {
                    let m = intercore_linux::reserved_memory(roots, node)
                        .map_err(|e| format!("{where_}: transport.region: {e}"))?;
                    let &(pa, len) = m.regions.first().ok_or_else(|| {
                        format!("{where_}: transport.region: /reserved-memory/{node} has no reg")
                    })?;
                    (pa, size.map_or(len, |s| s.min(len)))
                }
            };
            ranges.push((pa, len));
            rsc_at = Some(pa.saturating_add(*rsc_offset));
            for r in [b.vdev.pool, b.vdev.buffers].into_iter().flatten() {
                ranges.push((r.base, r.size));
            }
        }
        Tr::Kernel { .. } => {
            let spec = b.remoteproc.as_ref().ok_or_else(|| {
                format!("{where_}: a kernel board without [remoteproc] names no memory: give it with --shm /dev/mem --file-offset PHYS --size LEN")
            })?;
            let paths = intercore_linux::RprocPaths {
                sys: roots.sys.clone(),
                dev: roots.dev.clone(),
                firmware_dir: None,
            };
            let rp = intercore_linux::Remoteproc::open(&paths, Some(&spec.selector.as_arg()))
                .map_err(|e| format!("{where_}: remoteproc.name: {e}"))?;
            ranges = memory_regions(roots, &rp.sysfs_dir())?;
            if ranges.is_empty() {
                return Err(format!(
                    "{}: its device-tree node names no memory-region ({}): give the memory with --shm /dev/mem --file-offset PHYS --size LEN",
                    rp.id(),
                    rp.sysfs_dir()
                        .join("device/of_node/memory-region")
                        .display()
                ));
            }
        }
        _ => unreachable!("physical boards only"),
    }
    ranges.retain(|r| r.1 > 0);
    if ranges.is_empty() {
        return Err(format!("{where_}: the board's memory ranges are empty"));
    }
    ranges.sort();
    ranges.dedup();
    for w in ranges.windows(2) {
        if w[0].0.saturating_add(w[0].1) > w[1].0 {
            return Err(format!(
                "{where_}: the memory ranges {:#x}+{:#x} and {:#x}+{:#x} overlap",
                w[0].0, w[0].1, w[1].0, w[1].1
            ));
        }
    }
    Ok((ranges, rsc_at))
}

/// `ranges` (as [`board_ranges`] returns them) mapped read-only from `/dev/mem`, each on
/// its own, as one region from the first range's start.
fn map_ranges(roots: &intercore_linux::SysRoots, ranges: &[(u64, u64)]) -> Result<PhysMem, String> {
    let start = ranges[0].0;
    let last = ranges[ranges.len() - 1];
    let span = last
        .0
        .checked_add(last.1)
        .map(|e| e - start)
        .filter(|s| *s <= REGION_MAX)
        .ok_or_else(|| format!("the memory ranges span more than {REGION_MAX:#x} bytes"))?;
    let devmem = roots.dev.join("mem");
    let mut maps = Vec::new();
    for &(pa, len) in ranges {
        let m =
            intercore_linux::sys::ReadOnlyMap::open(&devmem, pa, len as usize).map_err(|e| {
                format!(
                    "{}: mapping {pa:#x}+{len:#x} read-only: {e}{}",
                    devmem.display(),
                    if e.kind() == std::io::ErrorKind::PermissionDenied {
                        " (needs root, and a kernel that lets /dev/mem map reserved memory)"
                    } else {
                        ""
                    }
                )
            })?;
        maps.push(((pa - start) as usize, m));
    }
    Ok(PhysMem {
        maps,
        len: span as usize,
    })
}

/// The `memory-region` entries of a remote processor's device-tree node
/// (`<sysfs dir>/device/of_node/memory-region`: big-endian u32 phandles,
/// `reserved-memory.yaml`), resolved through the `phandle` property of each
/// `/reserved-memory` child, in the order the node lists them.
fn memory_regions(
    roots: &intercore_linux::SysRoots,
    rproc_dir: &Path,
) -> Result<Vec<(u64, u64)>, String> {
    let Ok(raw) = std::fs::read(rproc_dir.join("device/of_node/memory-region")) else {
        return Ok(Vec::new());
    };
    let wanted: Vec<u32> = raw
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let rm = roots.device_tree.join("reserved-memory");
    let mut nodes: Vec<(usize, String)> = std::fs::read_dir(&rm)
        .map_err(|e| format!("{}: {e}", rm.display()))?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let p: [u8; 4] = std::fs::read(e.path().join("phandle"))
                .ok()?
                .as_slice()
                .try_into()
                .ok()?;
            let at = wanted.iter().position(|&w| w == u32::from_be_bytes(p))?;
            Some((at, name))
        })
        .collect();
    nodes.sort();
    let mut out = Vec::new();
    for (_, name) in nodes {
        let m = intercore_linux::reserved_memory(roots, &name).map_err(|e| e.to_string())?;
        out.extend(m.regions);
    }
    Ok(out)
}

/// The memfd a running link owner of `board` uses, and the board's device address base.
fn owner_memory(file: &Path, base: u64) -> Result<(FileMem, u64), String> {
    let pid = owner_pid(file)?;
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map_err(|e| format!("link owner pid {pid}: /proc/{pid}/fd: {e}"))?;
    let mut best: Option<(PathBuf, u64)> = None;
    for fd in fds.flatten() {
        let Ok(target) = std::fs::read_link(fd.path()) else {
            continue;
        };
        if !target.to_string_lossy().starts_with("/memfd:") {
            continue;
        }
        let Ok(f) = File::open(fd.path()) else {
            continue;
        };
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        // The first memfd holding a resource table is the link's (the pool's has none).
        let m = FileMem {
            file: f,
            start: 0,
            len: len.min(REGION_MAX) as usize,
        };
        if len > 0 && find_table(&m).is_some() {
            return Ok((m, base));
        }
        best.get_or_insert((fd.path(), len));
    }
    Err(format!(
        "link owner pid {pid} has no memfd holding a resource table{}: give the memory with --shm or --dump",
        best.map_or(String::new(), |(p, _)| format!(
            " (looked at {})",
            p.display()
        ))
    ))
}

/// The pid of `intercore up`'s link owner for `board`, from its pid file. The name is
/// the owner's (`link.rs`, `place`: the runtime directory, then `<stem>-<fnv1a of the
/// canonical path>.pid`), found the same way but never created.
fn owner_pid(board: &Path) -> Result<u32, String> {
    use std::os::unix::fs::MetadataExt;
    let var = |k: &str| std::env::var_os(k).filter(|d| !d.is_empty());
    let dir = match (var("XDG_RUNTIME_DIR"), var("HOME")) {
        (Some(d), _) => PathBuf::from(d).join("intercore"),
        (None, Some(h)) => PathBuf::from(h).join(".cache/intercore/run"),
        (None, None) => std::env::temp_dir().join(format!(
            "intercore-{}",
            std::fs::metadata("/proc/self").map_or(0, |m| m.uid())
        )),
    };
    let canon = board
        .canonicalize()
        .map_err(|e| format!("{}: {e}", board.display()))?;
    let stem: String = canon
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .take(32)
        .collect();
    let hash = canon
        .as_os_str()
        .as_encoded_bytes()
        .iter()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
        });
    let file = dir.join(format!("{stem}-{hash:016x}.pid"));
    std::fs::read_to_string(&file)
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .filter(|p| Path::new(&format!("/proc/{p}")).exists())
        .ok_or_else(|| {
            format!(
                "no link owner is up for {} (no live pid in {}): start one with intercore up, or give a frozen link's memory with --shm or --dump",
                board.display(),
                file.display()
            )
        })
}

/// Runs `intercore inspect`; the exit status: 0 nothing found, 1 failed, 4 findings of
/// severity error or stuck (the first read, or any read with --watch).
pub fn main(a: &InspectArgs, json: bool) -> Result<u8, String> {
    let bm = if let Some(b) = &a.board {
        board_memory(b, a)?
    } else if let Some(p) = a.shm.as_ref().map(|p| shm_path(p)).or(a.dump.clone()) {
        BoardMem {
            mem: Box::new(open(
                &p,
                a.file_offset.map_or(0, |o| o.0),
                a.size.map(|s| s.0),
            )?),
            base: 0,
            rsc_offset: None,
            windows: Vec::new(),
        }
    } else {
        return Err("give the memory: --board FILE, --shm PATH or --dump FILE".into());
    };
    let mem = &*bm.mem;
    let mut t = Target {
        base: a.base.map_or(bm.base, |b| b.0),
        rsc_offset: a.rsc_offset.map(|o| o.0 as usize).or(bm.rsc_offset),
        vrings: a.vring0.iter().chain(a.vring1.iter()).copied().collect(),
        event_idx: a.event_idx,
        flavor: if a.rpmsg_lite {
            Flavor::RpmsgLite
        } else {
            Flavor::Virtio
        },
        windows: bm.windows.clone(),
        history: a.history as usize,
    };
    if t.rsc_offset.is_none() && t.vrings.is_empty() {
        t.rsc_offset = Some(find_table(mem).ok_or(
            "no resource table with an rpmsg vdev at any 4 KiB boundary: give --rsc-offset, or the rings with --vring0/--vring1",
        )?);
    }
    let mut out = std::io::stdout().lock();
    if !a.watch {
        let r = inspect(mem, &t);
        let w = if json {
            writeln!(
                out,
                "{}",
                serde_json::to_string(&r).map_err(|e| e.to_string())?
            )
        } else {
            write!(out, "{r}")
        };
        return match w {
            Ok(()) => Ok(status(&r)),
            Err(_) => Ok(crate::EXIT_FAILED),
        };
    }
    watch(mem, &t, a, json, &mut out)
}

/// Exit status 4: the link is stuck or broken.
pub const EXIT_LINK_FAULT: u8 = 4;

fn status(r: &Report) -> u8 {
    if r.diagnosis
        .iter()
        .any(|f| f.severity <= intercore::inspect::Severity::Stuck)
    {
        EXIT_LINK_FAULT
    } else {
        crate::EXIT_OK
    }
}

/// One compact line per read whose rings or findings changed: the indices moving.
fn watch(
    mem: &dyn Peek,
    t: &Target,
    a: &InspectArgs,
    json: bool,
    out: &mut impl Write,
) -> Result<u8, String> {
    let start = Instant::now();
    let mut last: Option<String> = None;
    let mut worst = crate::EXIT_OK;
    let mut n = 0u64;
    loop {
        let r = inspect(mem, t);
        worst = worst.max(status(&r));
        let key = summary(&r);
        if last.as_ref() != Some(&key) {
            let ms = start.elapsed().as_millis();
            let line = if json {
                let rings: Vec<serde_json::Value> = r
                    .vrings
                    .iter()
                    .map(|v| {
                        serde_json::json!({
                            "vring": v.index, "avail_idx": v.avail_idx, "used_idx": v.used_idx,
                            "avail_flags": v.avail_flags.value, "used_flags": v.used_flags.value,
                            "used_event": v.used_event, "avail_event": v.avail_event,
                            "held_by_remote": v.held_by_remote,
                        })
                    })
                    .collect();
                let codes: Vec<&str> = r.diagnosis.iter().map(|f| f.code).collect();
                serde_json::json!({"ms": ms, "vrings": rings, "findings": codes}).to_string()
            } else {
                format!("{:>9.3} s  {key}", ms as f64 / 1000.0)
            };
            if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
                return Ok(worst); // the reader went away (EPIPE): stop quietly
            }
            last = Some(key);
        }
        n += 1;
        if a.count.is_some_and(|c| n >= c) {
            return Ok(worst);
        }
        std::thread::sleep(a.interval);
    }
}

fn summary(r: &Report) -> String {
    let mut s = String::new();
    for v in &r.vrings {
        s.push_str(&format!(
            "vring{} avail {:>5} used {:>5} (remote holds {:>3}) flags {}/{} ev {}/{}  ",
            v.index,
            v.avail_idx,
            v.used_idx,
            v.held_by_remote,
            v.avail_flags.value,
            v.used_flags.value,
            v.used_event,
            v.avail_event
        ));
    }
    if let Some(st) = r
        .resource_table
        .as_ref()
        .and_then(|t| t.vdev.as_ref())
        .map(|v| v.status.value)
    {
        s.push_str(&format!("status {st:#x}  "));
    }
    let codes: Vec<&str> = r.diagnosis.iter().map(|f| f.code).collect();
    if codes.is_empty() {
        s.push_str("ok");
    } else {
        s.push_str(&codes.join(","));
    }
    s
}
