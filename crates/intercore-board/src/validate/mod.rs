//! From the file as written to a [`Board`]: one module per table, and the checks between
//! tables here. Validation looks at the file alone and goes on past a table it could not
//! build, so that every problem of a file is reported at once.

mod cache;
mod mapping;
mod memory;
mod pool;
pub use pool::MAX_POOL_BUFFERS;
mod remoteproc;
mod rpmsg;
mod transport;
mod vdev;

use crate::cores::{BoardFile, Core, DEFAULT_CORE, MAX_CORES};
use crate::error::{BoardError, Problem};
use crate::keyword::Keyword;
use crate::model::{
    Arch, Board, CacheSpec, MemorySource, MemorySpec, RpmsgSpec, TransportKind, TransportSpec,
};
use crate::raw::{RawBoard, RawBoardInfo, RawCache, RawTables, syntax_problem};
use intercore::dataplane::PoolConfig;
use intercore::rpmsg::layout::{CarveoutLayout, CarveoutSpec};
use std::io;
use std::path::Path;

pub(crate) fn quoted(s: &str) -> String {
    format!("{s:?}")
}

pub(crate) fn hex(v: u64) -> String {
    format!("{v:#x}")
}

/// Collects problems.
#[derive(Default)]
pub(crate) struct Check {
    problems: Vec<Problem>,
}

impl Check {
    pub(crate) fn err(&mut self, key: &str, value: Option<String>, message: impl Into<String>) {
        self.problems.push(Problem {
            key: key.to_string(),
            value,
            message: message.into(),
            line: None,
        });
    }

    /// `value` must spell one of `K`'s keywords; `None` (and a problem listing them) if not.
    pub(crate) fn one_of<K: Keyword>(&mut self, key: &str, value: &str) -> Option<K> {
        let k = K::parse(value);
        if k.is_none() {
            self.err(
                key,
                Some(quoted(value)),
                format!("expected one of {}", K::allowed()),
            );
        }
        k
    }

    /// An optional keyword: `default` when absent, `None` (and a problem) when misspelt.
    pub(crate) fn one_of_or<K: Keyword>(
        &mut self,
        key: &str,
        value: Option<&str>,
        default: K,
    ) -> Option<K> {
        match value {
            None => Some(default),
            Some(v) => self.one_of(key, v),
        }
    }

    /// A key given where it does not apply.
    pub(crate) fn not_here<T>(&mut self, key: &str, v: &Option<T>, applies: &str) {
        if v.is_some() {
            self.err(key, None, format!("applies only to {applies}; remove it"));
        }
    }

    pub(crate) fn require<T: Clone>(&mut self, key: &str, v: &Option<T>, why: &str) -> Option<T> {
        if v.is_none() {
            self.err(key, None, format!("missing: {why}"));
        }
        v.clone()
    }
}

/// A plain file name the kernel can request: non-empty, no `/`, no newline, not `.`/`..`.
pub(crate) fn plain_file_name(n: &str) -> bool {
    !n.is_empty() && !n.contains('/') && !n.contains('\n') && n != "." && n != ".."
}

/// A device node name under `/dev` or `/sys/class/...`.
pub(crate) fn plain_node_name(n: &str) -> bool {
    plain_file_name(n) && !n.contains('\0')
}

pub(crate) fn check_page(key: &str, base: u64, c: &mut Check) {
    if base % 4096 != 0 {
        c.err(
            key,
            Some(hex(base)),
            "must start on a page (a multiple of 4096; 16 or 64 KiB on kernels with larger pages)",
        );
    }
}

/// Parses and validates a board file's text: every core it names.
pub(crate) fn parse_file(text: &str) -> Result<BoardFile, BoardError> {
    crate::raw::prescan(text).map_err(|problem| BoardError::Syntax {
        path: None,
        problem,
    })?;
    let raw: RawBoard = toml::from_str(text).map_err(|e| BoardError::Syntax {
        path: None,
        problem: syntax_problem(text, &e),
    })?;
    let mut c = Check::default();
    let file = validate_file(raw, &mut c);
    match file {
        Some(f) if c.problems.is_empty() => Ok(f),
        _ => Err(BoardError::Invalid {
            path: None,
            problems: c.problems,
        }),
    }
}

/// Parses and validates a board file that names one core (a file without `[[core]]`, or
/// with exactly one): several are an error naming them.
pub(crate) fn parse(text: &str) -> Result<Board, BoardError> {
    parse_file(text)?.into_single()
}

/// A file without `[[core]]` is one core named [`DEFAULT_CORE`]; with `[[core]]`, each core
/// is validated as a single-core file made of its own tables and the top-level ones it
/// omits, its problems' keys prefixed `core.NAME.`, then the cores against each other.
fn validate_file(raw: RawBoard, c: &mut Check) -> Option<BoardFile> {
    let top = raw.tables();
    let Some(raw_cores) = raw.core.as_ref() else {
        let board = validate(&raw.board, top, c)?;
        return Some(BoardFile {
            name: raw.board.name.clone(),
            description: raw.board.description.clone(),
            cores: vec![Core {
                name: DEFAULT_CORE.to_string(),
                description: None,
                board,
            }],
            file: None,
        });
    };
    if raw_cores.is_empty() || raw_cores.len() > MAX_CORES {
        c.err(
            "core",
            Some(raw_cores.len().to_string()),
            format!("a board file names 1 to {MAX_CORES} cores ([[core]] tables)"),
        );
    }
    let mut cores = Vec::new();
    let mut complete = true;
    for (i, rc) in raw_cores.iter().take(MAX_CORES).enumerate() {
        let prefix = format!("core.{}.", rc.name);
        let mut cc = Check::default();
        crate::cores::check_core_name(&rc.name, &mut cc);
        let b = validate(&raw.board, rc.tables(&top), &mut cc);
        for mut p in cc.problems {
            // `[board]` is the file's: its problems are reported once, as they are.
            if p.key.starts_with("board.") {
                if i == 0 {
                    c.problems.push(p);
                }
                continue;
            }
            p.key = format!("{prefix}{}", p.key);
            c.problems.push(p);
        }
        match b {
            Some(board) => cores.push(Core {
                name: rc.name.clone(),
                description: rc.description.clone(),
                board,
            }),
            None => complete = false,
        }
    }
    crate::cores::check_between(&cores, c);
    complete.then(|| BoardFile {
        name: raw.board.name.clone(),
        description: raw.board.description.clone(),
        cores,
        file: None,
    })
}

/// A missing table that every core needs.
fn table<T>(t: Option<T>, name: &str, c: &mut Check) -> Option<T> {
    if t.is_none() {
        c.err(
            name,
            None,
            format!("missing table [{name}] (every core needs one)"),
        );
    }
    t
}

fn validate(info: &RawBoardInfo, raw: RawTables, c: &mut Check) -> Option<Board> {
    // [board]
    if info.name.trim().is_empty() {
        c.err("board.name", Some("\"\"".into()), "must not be empty");
    }
    // A misspelt arch is reported; validation goes on as for any host.
    let arch = c
        .one_of_or("board.arch", info.arch.as_deref(), Arch::Any)
        .unwrap_or(Arch::Any);
    let raw_transport = table(raw.transport, "transport", c);
    let raw_memory = table(raw.memory, "memory", c);
    let raw_cache = table(raw.cache, "cache", c);
    let (raw_transport, raw_memory, raw_cache) = (raw_transport?, raw_memory?, raw_cache?);

    // [transport]
    let (kind, transport) = transport::validate(&raw_transport, c);
    let is_sim = kind == Some(TransportKind::Sim);
    let is_qemu = kind == Some(TransportKind::Qemu);
    // The simulated SoC and QEMU: a child process of this host, no remote processor, a memfd.
    let emulated = is_sim || is_qemu;

    // [remoteproc]
    let remoteproc = remoteproc::validate(raw.remoteproc.as_ref(), emulated, c);

    // [rpmsg]
    let rpmsg = rpmsg::validate(
        raw.rpmsg.as_ref(),
        kind,
        raw_transport.doorbell.as_deref() == Some("uio"),
        c,
    );

    // [pool]
    let pool = pool::validate(raw.pool.as_ref(), c);

    // [memory]
    let memory = memory::validate(&raw_memory, c);
    check_memory(memory.as_ref(), &pool, emulated, c);

    // [mapping]
    let mapping = memory.as_ref().and_then(|m| {
        if is_qemu {
            mapping::validate_qemu(raw.mapping.as_ref(), c)
        } else {
            mapping::validate(raw.mapping.as_ref(), m, remoteproc.as_ref(), c)
        }
    });

    // [cache]
    let cache = validate_cache(&raw_cache, arch, memory.as_ref(), is_qemu, emulated, c);

    check_sim_carveout(transport.as_ref(), &rpmsg, c);

    // [vdev] and how long `up` waits.
    let vdev = vdev::validate(raw.vdev.as_ref(), kind, c);
    if vdev.pool.is_some() && raw_transport.vring_offset.is_some() {
        c.err(
            "transport.vring_offset",
            None,
            "give either transport.vring_offset or vdev.pool_base + vdev.pool_size, not both",
        );
    }
    let ready_timeout = ready_timeout(raw_transport.ready_timeout_ms, c);

    Some(Board {
        name: info.name.clone(),
        description: info.description.clone(),
        arch,
        remoteproc,
        transport: transport?,
        memory: memory?,
        mapping: mapping?,
        cache: cache?,
        rpmsg,
        pool,
        vdev,
        ready_timeout,
        file: None,
    })
}

/// `[memory]` against the pool (it must hold it) and the transport (an emulated core
/// shares a memfd, a real one cannot reach one).
fn check_memory(memory: Option<&MemorySpec>, pool: &PoolConfig, emulated: bool, c: &mut Check) {
    if let Some(size) = memory.and_then(MemorySpec::size) {
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
    match (memory.map(MemorySpec::source), emulated) {
        (Some(MemorySource::Memfd), false) => c.err(
            "memory.source",
            Some("\"memfd\"".into()),
            "a memfd is reachable only by the simulated remote core; a real one needs \"carveout\", \"dma-heap\", \"udmabuf\" or \"u-dma-buf\"",
        ),
        (Some(s), true) if s != MemorySource::Memfd => c.err(
            "memory.source",
            Some(quoted(s.as_str())),
            "the simulated SoC and QEMU share a memfd with their child process; use \"memfd\"",
        ),
        _ => {}
    }
}

/// `[cache]`, checked against the memory when it is valid (QEMU's core is coherent),
/// else only its mode.
fn validate_cache(
    r: &RawCache,
    arch: Arch,
    memory: Option<&MemorySpec>,
    is_qemu: bool,
    emulated: bool,
    c: &mut Check,
) -> Option<CacheSpec> {
    match memory {
        Some(m) => {
            let spec = cache::validate(r, arch, m, emulated, c);
            if is_qemu && spec.is_some_and(|s| s.mode != crate::model::CacheMaintenance::Coherent) {
                c.err(
                    "cache.mode",
                    Some(quoted(&r.mode)),
                    "QEMU's emulated core and this host share one coherent memfd: use \"coherent\"",
                );
            }
            spec
        }
        None => {
            // The mode alone, without the checks against the memory.
            let _ = c.one_of::<crate::model::CacheKind>("cache.mode", &r.mode);
            None
        }
    }
}

/// The simulated carveout must fit 32-bit device addresses.
fn check_sim_carveout(transport: Option<&TransportSpec>, rpmsg: &RpmsgSpec, c: &mut Check) {
    if let Some(TransportSpec::Sim {
        da_base, event_idx, ..
    }) = transport
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
}

/// `transport.ready_timeout_ms`: how long `up` waits for the core's service.
fn ready_timeout(ms: Option<u64>, c: &mut Check) -> std::time::Duration {
    match ms {
        None => crate::model::DEFAULT_READY_TIMEOUT,
        Some(ms) if (1..=3_600_000).contains(&ms) => std::time::Duration::from_millis(ms),
        Some(ms) => {
            c.err(
                "transport.ready_timeout_ms",
                Some(ms.to_string()),
                "expected 1..=3600000 (milliseconds `intercore up` waits for the core to announce its service)",
            );
            crate::model::DEFAULT_READY_TIMEOUT
        }
    }
}

/// Reading a board: the file or the text, parsed and validated here (the model knows
/// nothing of validation).
impl Board {
    /// Reads and validates the board file `path`, which must name one core (see
    /// [`BoardFile::from_file`] for files with several).
    pub fn from_file(path: impl AsRef<Path>) -> Result<Board, BoardError> {
        let path = path.as_ref();
        let mut b = BoardFile::from_file(path)?
            .into_single()
            .map_err(|e| with_path(e, path))?;
        b.file = Some(path.to_path_buf());
        Ok(b)
    }

    /// Parses and validates a board configuration held in memory.
    #[allow(clippy::should_implement_trait)] // also offered as `FromStr`
    pub fn from_str(text: &str) -> Result<Board, BoardError> {
        parse(text)
    }
}

impl std::str::FromStr for Board {
    type Err = BoardError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse(s)
    }
}

/// The error, naming `path`.
fn with_path(e: BoardError, path: &Path) -> BoardError {
    match e {
        BoardError::Syntax { problem, .. } => BoardError::Syntax {
            path: Some(path.to_path_buf()),
            problem,
        },
        BoardError::Invalid { problems, .. } => BoardError::Invalid {
            path: Some(path.to_path_buf()),
            problems,
        },
        other => other,
    }
}

impl BoardFile {
    /// Reads and validates the board file `path`: every core it names.
    pub fn from_file(path: impl AsRef<Path>) -> Result<BoardFile, BoardError> {
        let path = path.as_ref();
        let text =
            intercore_linux::file::read_regular_text(path, intercore_linux::file::CONFIG_MAX)
                .map_err(|e| BoardError::Io {
                    path: path.to_path_buf(),
                    source: match e {
                        intercore_linux::file::FileError::Io { source, .. } => source,
                        other => io::Error::new(io::ErrorKind::InvalidInput, other.reason()),
                    },
                })?;
        let mut f = parse_file(&text).map_err(|e| with_path(e, path))?;
        f.file = Some(path.to_path_buf());
        for core in &mut f.cores {
            core.board.file = Some(path.to_path_buf());
        }
        Ok(f)
    }

    /// Parses and validates a board file held in memory.
    #[allow(clippy::should_implement_trait)] // also offered as `FromStr`
    pub fn from_str(text: &str) -> Result<BoardFile, BoardError> {
        parse_file(text)
    }
}

impl std::str::FromStr for BoardFile {
    type Err = BoardError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_file(s)
    }
}
