//! [`Board::check`]: what opening a board on this machine would do, and why it could not.
//! Reads sysfs and the device tree, opens (never maps) device nodes, reads the firmware
//! file; one module per part of the board. Never changes anything.

mod cache;
mod mapping;
mod memory;
mod regions;
mod remoteproc;
mod transport;

use crate::model::{Arch, Board};
use intercore_linux::remoteproc::RprocPaths;
use intercore_linux::{MemError, SysRoots};
use std::fmt;
use std::fs::OpenOptions;
use std::path::Path;

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
pub(super) fn probe_node(path: &Path, write: bool, missing: &'static str) -> Result<(), MemError> {
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

pub(super) struct Findings(Vec<Finding>);

impl Findings {
    pub(super) fn push(&mut self, level: Level, topic: &'static str, message: impl Into<String>) {
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
        self.check_transport(env, rproc.as_ref(), &mut f);
        let phys = self.check_memory(env, &mut f);
        self.check_overlaps(env, rproc.as_ref(), phys, &mut f);
        self.check_mapping(env, rproc.as_ref(), phys, &mut f);
        self.check_cache(env, phys, &mut f);
        f.0
    }
}
