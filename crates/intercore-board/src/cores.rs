//! Board files that name several cores: `[[core]]` tables, one per remote core, each with
//! its name and the tables a single-core file has (`[remoteproc]`, `[transport]`,
//! `[memory]`, ...). A core that omits a table inherits the file's top-level one (the
//! whole table, never key by key), so the tables every core shares are written once.
//!
//! ```toml
//! [board]
//! name = "simulated SoC, four remotes"
//!
//! [transport]            # every core's, unless it gives its own
//! kind = "sim"
//! firmware = "offload"
//! [memory]
//! source = "memfd"
//! [cache]
//! mode = "coherent"
//!
//! [[core]]
//! name = "r0"
//! [[core]]
//! name = "r1"
//! [core.rpmsg]           # r1's own [rpmsg]
//! buffers = 64
//! ```
//!
//! A file without `[[core]]` is one core named [`DEFAULT_CORE`]: today's single-core
//! files mean what they meant. Each core is validated as a single-core file (its
//! problems' keys prefixed `core.NAME.`), then the cores against each other
//! ([`check_between`]): distinct names, distinct remote processors and rpmsg control
//! devices, and no physical memory window (`[memory]`'s carveout, the userspace
//! transport's) of one core overlapping another's.

use crate::error::{BoardError, Problem};
use crate::model::{Board, MemorySpec, PoolCarveout, RegionSpec, RprocSelector, TransportSpec};
use crate::validate::{Check, hex, quoted};
use std::path::PathBuf;

/// Most cores a board file may name (an AM64x has five remote cores, a J784S4 eleven).
pub const MAX_CORES: usize = 16;

/// The name of the one core of a file without `[[core]]` tables.
pub const DEFAULT_CORE: &str = "core0";

/// Longest core name (it is part of the link owner's socket name).
pub const MAX_CORE_NAME: usize = 32;

/// A validated board file: its cores, in the file's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoardFile {
    /// `board.name`.
    pub name: String,
    /// `board.description`.
    pub description: Option<String>,
    /// One per `[[core]]` table, or the one core of a single-core file.
    pub cores: Vec<Core>,
    /// The file it was read from, if any.
    pub file: Option<PathBuf>,
}

/// One core of a [`BoardFile`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Core {
    /// `core.name` ([`DEFAULT_CORE`] in a single-core file).
    pub name: String,
    /// `core.description`.
    pub description: Option<String>,
    /// Everything a single-core file says, for this core.
    pub board: Board,
}

/// [`BoardFile::core`] found no core of that name, or was not told which.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CoreError {
    /// No core has this name.
    #[error("board {board:?} has no core {name:?}; its cores: {cores}")]
    Unknown {
        /// `board.name`.
        board: String,
        /// The name asked for.
        name: String,
        /// The cores there are, comma-separated.
        cores: String,
    },
    /// Several cores and none named.
    #[error("board {board:?} has {count} cores ({cores}): name one with --core NAME")]
    Ambiguous {
        /// `board.name`.
        board: String,
        /// How many.
        count: usize,
        /// The cores there are, comma-separated.
        cores: String,
    },
}

impl BoardFile {
    /// Whether the file names several cores.
    pub fn is_multi(&self) -> bool {
        self.cores.len() > 1
    }

    /// The cores' names, comma-separated.
    pub fn core_names(&self) -> String {
        self.cores
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The core named `name`; with `None`, the only core (an error naming the cores when
    /// there are several).
    pub fn core(&self, name: Option<&str>) -> Result<&Core, CoreError> {
        match name {
            Some(n) => self
                .cores
                .iter()
                .find(|c| c.name == n)
                .ok_or_else(|| CoreError::Unknown {
                    board: self.name.clone(),
                    name: n.to_string(),
                    cores: self.core_names(),
                }),
            None if self.cores.len() == 1 => Ok(&self.cores[0]),
            None => Err(CoreError::Ambiguous {
                board: self.name.clone(),
                count: self.cores.len(),
                cores: self.core_names(),
            }),
        }
    }

    /// The board of a file that names one core; several are an error naming them.
    pub(crate) fn into_single(mut self) -> Result<Board, BoardError> {
        if self.cores.len() == 1 {
            return Ok(self.cores.remove(0).board);
        }
        Err(BoardError::Invalid {
            path: self.file.clone(),
            problems: vec![Problem {
                key: "core".into(),
                value: None,
                message: format!(
                    "this file names {} cores ({}); open it as a BoardFile and pick one (`--core NAME` on the command line)",
                    self.cores.len(),
                    self.core_names()
                ),
                line: None,
            }],
        })
    }
}

/// A core name: 1 to [`MAX_CORE_NAME`] ASCII letters, digits, `-` and `_` (it names the
/// link owner's files).
pub(crate) fn check_core_name(name: &str, c: &mut Check) {
    let ok = !name.is_empty()
        && name.len() <= MAX_CORE_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !ok {
        c.err(
            "name",
            Some(quoted(name)),
            format!("expected 1 to {MAX_CORE_NAME} ASCII letters, digits, '-' or '_'"),
        );
    }
}

/// A physical window a core's link uses, as far as the file tells it.
struct Window {
    key: &'static str,
    node: Option<String>,
    range: Option<(u64, u64)>,
}

/// The unit address of a device-tree node name (`intercore-pool@a6000000`).
fn unit_address(node: &str) -> Option<u64> {
    u64::from_str_radix(node.rsplit_once('@')?.1, 16).ok()
}

fn window(key: &'static str, r: &RegionSpec) -> Window {
    match r {
        RegionSpec::Range { base, size } => Window {
            key,
            node: None,
            range: Some((*base, *size)),
        },
        RegionSpec::ReservedMemory { node, size } => Window {
            key,
            node: Some(node.clone()),
            range: unit_address(node).zip(*size),
        },
    }
}

/// The physical windows of one core's link that the file locates.
fn windows(b: &Board) -> Vec<Window> {
    let mut w = Vec::new();
    if let MemorySpec::Carveout(PoolCarveout::DevMem(r)) = &b.memory {
        w.push(window("memory", r));
    }
    if let TransportSpec::Userspace { region, .. } = &b.transport {
        w.push(window("transport.region", region));
    }
    w
}

/// The cores against each other: distinct names, remote processors and rpmsg control
/// devices; no window of one core's overlapping another's, nor naming the same
/// reserved-memory node. (Windows the file does not locate — a node without `size`, a
/// dma-heap buffer — are `Board::check`'s to find on the machine.)
pub(crate) fn check_between(cores: &[Core], c: &mut Check) {
    for (i, a) in cores.iter().enumerate() {
        for b in &cores[..i] {
            let key = |k: &str| format!("core.{}.{k}", a.name);
            if a.name == b.name {
                c.err(
                    "core.name",
                    Some(quoted(&a.name)),
                    "two cores have this name; each needs its own",
                );
                continue;
            }
            let (ra, rb) = (&a.board.remoteproc, &b.board.remoteproc);
            if ra
                .as_ref()
                .zip(rb.as_ref())
                .is_some_and(|(ra, rb)| same_rproc(&ra.selector, &rb.selector))
            {
                let ra = ra.as_ref().map(|r| r.selector.as_arg()).unwrap_or_default();
                c.err(
                    &key("remoteproc"),
                    Some(quoted(&ra)),
                    format!("core {:?} names the same remote processor", b.name),
                );
            }
            if let (TransportSpec::Kernel { ctrl: ca }, TransportSpec::Kernel { ctrl: cb }) =
                (&a.board.transport, &b.board.transport)
            {
                match (ca, cb) {
                    (Some(x), Some(y)) if x == y => c.err(
                        &key("transport.ctrl"),
                        Some(quoted(x)),
                        format!("core {:?} uses the same rpmsg control device", b.name),
                    ),
                    (None, _) | (_, None) => c.err(
                        &key("transport.ctrl"),
                        None,
                        format!(
                            "with several kernel-transport cores (here and {:?}) each names its rpmsg_ctrlN: \"the only one\" is not unique",
                            b.name
                        ),
                    ),
                    _ => {}
                }
            }
            for wa in windows(&a.board) {
                for wb in windows(&b.board) {
                    overlap(a, &wa, b, &wb, c);
                }
            }
        }
    }
}

fn same_rproc(a: &RprocSelector, b: &RprocSelector) -> bool {
    match (a, b) {
        (RprocSelector::Name(x), RprocSelector::Name(y)) => x == y,
        (RprocSelector::Index(x), RprocSelector::Index(y)) => x == y,
        _ => false,
    }
}

fn overlap(a: &Core, wa: &Window, b: &Core, wb: &Window, c: &mut Check) {
    let key = format!("core.{}.{}", a.name, wa.key);
    if let (Some(na), Some(nb)) = (&wa.node, &wb.node) {
        if na != nb {
            return overlap_range(a, wa, b, wb, c);
        }
        c.err(
            &key,
            Some(quoted(na)),
            format!(
                "core {:?} ({}) uses the same reserved-memory node: each core needs its own window",
                b.name, wb.key
            ),
        );
        return;
    }
    overlap_range(a, wa, b, wb, c);
}

fn overlap_range(a: &Core, wa: &Window, b: &Core, wb: &Window, c: &mut Check) {
    let key = format!("core.{}.{}", a.name, wa.key);
    if let (Some((ba, sa)), Some((bb, sb))) = (wa.range, wb.range) {
        let (ea, eb) = (ba.saturating_add(sa), bb.saturating_add(sb));
        if ba < eb && bb < ea {
            c.err(
                &key,
                Some(format!("{}..{}", hex(ba), hex(ea))),
                format!(
                    "overlaps core {:?}'s {} {}..{}: each core needs its own window",
                    b.name,
                    wb.key,
                    hex(bb),
                    hex(eb)
                ),
            );
        }
    }
}
