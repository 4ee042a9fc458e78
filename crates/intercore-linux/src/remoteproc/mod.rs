//! remoteproc control: find the remote cores, install firmware, start / stop / detach them
//! (Linux `drivers/remoteproc/remoteproc_sysfs.c`, `remoteproc_cdev.c`,
//! `Documentation/ABI/testing/sysfs-class-remoteproc`).
//!
//! The kernel's interface, and what this module does with it:
//!
//! * `/sys/class/remoteproc/remoteprocN/` has `name` (read-only), `state` (reads `offline`,
//!   `suspended`, `running`, `crashed`, `deleted`, `attached`, `detached` or `invalid`;
//!   write `start`, `stop`, `detach`) and `firmware` (the file name the kernel requests
//!   from its firmware search path on the next start).
//! * `/dev/remoteprocN` (`CONFIG_REMOTEPROC_CDEV`) takes the same three commands, written
//!   without a newline (the kernel compares with `strncmp(cmd, "start", len)`, so
//!   `"start\n"` is refused); [`Control::Cdev`] uses it.
//! * The kernel refuses a firmware change unless the core is `offline` (`EBUSY`), a `stop`
//!   unless it is `running` or `attached` (`EINVAL`), a `detach` unless it is `attached`
//!   (`EINVAL`). A `start` of a running core is `EBUSY` up to Linux 6.3; from 6.4 on the
//!   sysfs write *succeeds* and only takes another power reference, after which one
//!   `stop` no longer stops the core. So every operation here reads `state` first and
//!   refuses what the kernel would refuse (or silently mis-count), with an error that
//!   names the current state and what to do; errors the kernel still returns (a race with
//!   another writer, a failed boot) are mapped the same way ([`RprocError`]).
//! * Firmware files are looked up in `firmware_class.path`
//!   (`/sys/module/firmware_class/parameters/path`, when set), then under `/lib/firmware`;
//!   [`firmware_dir`] picks the first, and [`Remoteproc::load`] installs a validated ELF
//!   there atomically (write, then rename) before naming it in `firmware`.
//!
//! Every root (`/sys`, `/dev`, the firmware directory) comes from [`RprocPaths`], so all of
//! this runs against a fake tree; `remoteproc::fake` (feature `test-utils`) is a small
//! model of the kernel's side that reacts to writes in such a tree.
//!
//! Waiting for a state ([`Remoteproc::wait_for`]) re-reads `state` with short sleeps
//! (1 ms, doubling up to 20 ms) until a deadline. That is the one bounded poll loop in the
//! project, for a reason: remoteproc never calls `sysfs_notify()` on `state`, so `poll()`
//! on the attribute never wakes for a change; inotify sees only writes made through the
//! VFS, not the kernel changing the value it will report; and no uevent is sent for state
//! changes. The loop is short in practice — the kernel's `start`/`stop`/`detach` writes
//! return only after the transition — and matters only for asynchronous changes
//! (auto-boot, crash and recovery) and for implementations that act later.

use crate::sys::running_as_root;
use intercore::wire::WireError;
use intercore::wire::elf::Elf;
use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

mod error;
mod firmware;

pub use error::RprocError;
use error::io_err;
pub use firmware::{LIB_FIRMWARE, firmware_dir, install_firmware, validate_firmware};

/// The filesystem roots remoteproc control works under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RprocPaths {
    /// sysfs (`/sys`): `class/remoteproc/` and `module/firmware_class/parameters/path`.
    pub sys: PathBuf,
    /// Device nodes (`/dev`): `remoteprocN`.
    pub dev: PathBuf,
    /// Where to install firmware; `None`: the kernel's first search directory
    /// ([`firmware_dir`]).
    pub firmware_dir: Option<PathBuf>,
}

impl Default for RprocPaths {
    fn default() -> Self {
        Self {
            sys: "/sys".into(),
            dev: "/dev".into(),
            firmware_dir: None,
        }
    }
}

impl RprocPaths {
    /// `root/sys` and `root/dev`, the firmware directory from the (fake) sysfs.
    pub fn under(root: &Path) -> Self {
        Self {
            sys: root.join("sys"),
            dev: root.join("dev"),
            firmware_dir: None,
        }
    }
    /// `sys/class/remoteproc`.
    pub fn class_dir(&self) -> PathBuf {
        self.sys.join("class/remoteproc")
    }
    /// `sys/module/firmware_class/parameters/path`.
    pub fn firmware_class_path_param(&self) -> PathBuf {
        self.sys.join("module/firmware_class/parameters/path")
    }
}

/// A remote processor's state, as `state` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RprocState {
    /// Powered off.
    Offline,
    /// Suspended; must be woken to receive messages.
    Suspended,
    /// Booted by the kernel and running.
    Running,
    /// A crash was detected (recovery may follow).
    Crashed,
    /// Being removed.
    Deleted,
    /// Started by another entity (bootloader) and attached to by the kernel.
    Attached,
    /// Started by another entity; the kernel is not attached.
    Detached,
    /// The kernel's "unknown state".
    Invalid,
    /// Something else (a newer kernel's state, or a file being rewritten).
    Unknown(String),
}

impl RprocState {
    /// Parses the attribute's contents (a trailing newline is ignored).
    pub fn parse(s: &str) -> Self {
        match s.strip_suffix('\n').unwrap_or(s) {
            "offline" => Self::Offline,
            "suspended" => Self::Suspended,
            "running" => Self::Running,
            "crashed" => Self::Crashed,
            "deleted" => Self::Deleted,
            "attached" => Self::Attached,
            "detached" => Self::Detached,
            "invalid" => Self::Invalid,
            other => Self::Unknown(other.to_string()),
        }
    }
    /// The kernel's string.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Offline => "offline",
            Self::Suspended => "suspended",
            Self::Running => "running",
            Self::Crashed => "crashed",
            Self::Deleted => "deleted",
            Self::Attached => "attached",
            Self::Detached => "detached",
            Self::Invalid => "invalid",
            Self::Unknown(s) => s,
        }
    }
    /// Running under the kernel's control (booted or attached).
    pub fn is_up(&self) -> bool {
        matches!(self, Self::Running | Self::Attached)
    }
}

impl fmt::Display for RprocState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A command written to `state` or `/dev/remoteprocN`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Boot (or attach to a detached core).
    Start,
    /// Shut down.
    Stop,
    /// Leave an attached core running without the kernel.
    Detach,
}

impl Command {
    /// The word the kernel expects.
    pub fn as_str(self) -> &'static str {
        match self {
            Command::Start => "start",
            Command::Stop => "stop",
            Command::Detach => "detach",
        }
    }
}

/// Which interface carries commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Control {
    /// `/sys/class/remoteproc/remoteprocN/state`.
    #[default]
    Sysfs,
    /// `/dev/remoteprocN` (works where a driver made the sysfs controls read-only).
    Cdev,
}

/// Why the kernel refuses `op` in `state`, if it does (`remoteproc_sysfs.c`,
/// `remoteproc_core.c`): `(errno, hint)`.
pub fn refusal(op: Op, state: &RprocState) -> Option<(&'static str, &'static str)> {
    match op {
        Op::SetFirmware | Op::Load if *state != RprocState::Offline => Some((
            "EBUSY",
            "the kernel changes the firmware only while the core is offline; stop it first \
             (intercore rproc stop)",
        )),
        Op::Command(Command::Start) if state.is_up() => Some((
            "EBUSY",
            "it is already running; stop it first to restart it",
        )),
        Op::Command(Command::Start) if *state == RprocState::Deleted => {
            Some(("ENODEV", "the remote processor is being removed"))
        }
        Op::Command(Command::Stop) if !state.is_up() => {
            Some(("EINVAL", "only a running or attached core can be stopped"))
        }
        Op::Command(Command::Detach) if *state != RprocState::Attached => Some((
            "EINVAL",
            "only a core the kernel attached to (started by another entity) can be detached",
        )),
        _ => None,
    }
}

/// An operation, for [`refusal`] and errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Writing `firmware`.
    SetFirmware,
    /// Installing and selecting a firmware file.
    Load,
    /// A command.
    Command(Command),
    /// Writing `recover` to `recovery` (recovery of a crashed core).
    Recover,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::SetFirmware => "change the firmware",
            Op::Load => "load new firmware",
            Op::Command(Command::Start) => "start",
            Op::Command(Command::Stop) => "stop",
            Op::Command(Command::Detach) => "detach",
            Op::Recover => "recover",
        }
    }
}

/// One remote processor's attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RprocInfo {
    /// N of `remoteprocN`.
    pub index: u32,
    /// `name` (the platform device, e.g. `78000000.r5f`).
    pub name: String,
    /// `state`.
    pub state: RprocState,
    /// `firmware` (`unknown` for a core started by another entity).
    pub firmware: String,
}

/// What [`Remoteproc::load`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    /// Where the file was installed.
    pub installed: PathBuf,
    /// The name written to `firmware`.
    pub name: String,
}

/// A handle on `/sys/class/remoteproc/remoteprocN`.
#[derive(Debug, Clone)]
pub struct Remoteproc {
    paths: RprocPaths,
    index: u32,
}

fn rproc_index(file_name: &str) -> Option<u32> {
    let n = file_name.strip_prefix("remoteproc")?;
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    n.parse().ok()
}

impl Remoteproc {
    /// Every remote processor, by index. No remoteproc class directory means none.
    pub fn list(paths: &RprocPaths) -> Result<Vec<Remoteproc>, RprocError> {
        let dir = paths.class_dir();
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err("listing", &dir, e)),
        };
        let mut out: Vec<Remoteproc> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| rproc_index(e.file_name().to_str()?))
            .map(|index| Remoteproc {
                paths: paths.clone(),
                index,
            })
            .collect();
        out.sort_by_key(|r| r.index);
        Ok(out)
    }

    /// Selects a remote processor by `N`, `remoteprocN` or its `name`; `None` selects the
    /// only one there is.
    pub fn open(paths: &RprocPaths, selector: Option<&str>) -> Result<Remoteproc, RprocError> {
        let all = Self::list(paths)?;
        let describe = |all: &[Remoteproc]| -> Vec<String> {
            all.iter()
                .map(|r| match r.name() {
                    Ok(n) => format!("remoteproc{} ({n})", r.index),
                    Err(_) => format!("remoteproc{}", r.index),
                })
                .collect()
        };
        let Some(sel) = selector else {
            return match all.len() {
                1 => Ok(all.into_iter().next().expect("one")),
                0 => Err(RprocError::NoSuchRproc {
                    selector: "any".into(),
                    available: Vec::new(),
                }),
                _ => Err(RprocError::Ambiguous {
                    available: describe(&all),
                }),
            };
        };
        let by_index = sel
            .parse::<u32>()
            .ok()
            .or_else(|| rproc_index(sel))
            .and_then(|i| all.iter().position(|r| r.index == i));
        let found = by_index.or_else(|| all.iter().position(|r| r.name().is_ok_and(|n| n == sel)));
        match found {
            Some(i) => Ok(all[i].clone()),
            None => Err(RprocError::NoSuchRproc {
                selector: sel.to_string(),
                available: describe(&all),
            }),
        }
    }

    /// N of `remoteprocN`.
    pub fn index(&self) -> u32 {
        self.index
    }
    /// `remoteprocN`.
    pub fn id(&self) -> String {
        format!("remoteproc{}", self.index)
    }
    /// The sysfs directory.
    pub fn sysfs_dir(&self) -> PathBuf {
        self.paths.class_dir().join(self.id())
    }
    /// `/dev/remoteprocN`.
    pub fn dev_path(&self) -> PathBuf {
        self.paths.dev.join(self.id())
    }
    /// The roots this handle uses.
    pub fn paths(&self) -> &RprocPaths {
        &self.paths
    }

    fn read_attr(&self, attr: &str) -> Result<String, RprocError> {
        let path = self.sysfs_dir().join(attr);
        match fs::read_to_string(&path) {
            Ok(s) => Ok(s.strip_suffix('\n').unwrap_or(&s).to_string()),
            Err(e) if e.kind() == io::ErrorKind::NotFound && !self.sysfs_dir().exists() => {
                Err(RprocError::Gone { rproc: self.id() })
            }
            Err(e) => Err(io_err("reading", &path, e)),
        }
    }

    /// `name`.
    pub fn name(&self) -> Result<String, RprocError> {
        self.read_attr("name")
    }
    /// `state`.
    pub fn state(&self) -> Result<RprocState, RprocError> {
        self.read_attr("state").map(|s| RprocState::parse(&s))
    }
    /// `firmware`.
    pub fn firmware(&self) -> Result<String, RprocError> {
        self.read_attr("firmware")
    }
    /// All three.
    pub fn info(&self) -> Result<RprocInfo, RprocError> {
        Ok(RprocInfo {
            index: self.index,
            name: self.name()?,
            state: self.state()?,
            firmware: self.firmware()?,
        })
    }

    /// Refuses `op` if the current state does not allow it.
    fn check(&self, op: Op) -> Result<RprocState, RprocError> {
        let state = self.state()?;
        match refusal(op, &state) {
            Some((errno, hint)) => Err(RprocError::WrongState {
                rproc: self.id(),
                op: op.name(),
                state,
                errno,
                hint,
            }),
            None => Ok(state),
        }
    }

    /// One `write()` of `data` to `path`, as `echo -n data > path` does; a kernel error is
    /// mapped with the state read right after it.
    fn write_attr(&self, op: Op, path: &Path, data: &[u8]) -> Result<(), RprocError> {
        let res = OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(path)
            .and_then(|mut f| match f.write(data)? {
                n if n == data.len() => Ok(()),
                n => Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    format!("short write: {n} of {} bytes", data.len()),
                )),
            });
        let Err(e) = res else { return Ok(()) };
        let state = self.state().unwrap_or(RprocState::Unknown("?".into()));
        Err(self.kernel_error(op, path, e, state))
    }

    /// Maps the error of a write to `state`, `firmware` or the char device.
    pub fn kernel_error(&self, op: Op, path: &Path, e: io::Error, state: RprocState) -> RprocError {
        match e.raw_os_error() {
            Some(libc::ENOENT) if !path.exists() => {
                if !self.sysfs_dir().exists() {
                    RprocError::Gone { rproc: self.id() }
                } else if path == self.dev_path() {
                    RprocError::NoCdev {
                        path: path.to_path_buf(),
                    }
                } else {
                    io_err("writing", path, e)
                }
            }
            Some(libc::EPERM) => RprocError::DriverRefused {
                rproc: self.id(),
                op: op.name(),
                path: path.to_path_buf(),
                via_cdev: path == self.dev_path(),
            },
            Some(errno @ (libc::EBUSY | libc::EINVAL | libc::ENODEV)) => {
                if let Some((name, hint)) = refusal(op, &state) {
                    return RprocError::WrongState {
                        rproc: self.id(),
                        op: op.name(),
                        state,
                        errno: name,
                        hint,
                    };
                }
                match (op, errno) {
                    (Op::Command(Command::Start), _) => RprocError::StartFailed {
                        rproc: self.id(),
                        firmware: self.firmware().unwrap_or_default(),
                        source: e,
                    },
                    (_, libc::EBUSY) => RprocError::WrongState {
                        rproc: self.id(),
                        op: op.name(),
                        state,
                        errno: "EBUSY",
                        hint: "another user holds the remote processor; retry when it is offline",
                    },
                    _ => io_err("writing", path, e),
                }
            }
            Some(_)
                if op == Op::Command(Command::Start)
                    && e.kind() != io::ErrorKind::PermissionDenied =>
            {
                RprocError::StartFailed {
                    rproc: self.id(),
                    firmware: self.firmware().unwrap_or_default(),
                    source: e,
                }
            }
            _ => io_err("writing", path, e),
        }
    }

    /// Names the firmware file the kernel loads on the next start. Refused unless the
    /// core is offline (the kernel's `EBUSY`).
    pub fn set_firmware(&self, name: &str) -> Result<(), RprocError> {
        check_name(name)?;
        self.check(Op::SetFirmware)?;
        self.write_attr(
            Op::SetFirmware,
            &self.sysfs_dir().join("firmware"),
            name.as_bytes(),
        )
    }

    /// Sends `cmd` through `via` after checking that the state allows it.
    pub fn command(&self, cmd: Command, via: Control) -> Result<(), RprocError> {
        self.check(Op::Command(cmd))?;
        let path = match via {
            Control::Sysfs => self.sysfs_dir().join("state"),
            Control::Cdev => self.dev_path(),
        };
        self.write_attr(Op::Command(cmd), &path, cmd.as_str().as_bytes())
    }

    /// Starts the core (or attaches to a detached one) and waits until it is up.
    pub fn start(&self, via: Control, timeout: Duration) -> Result<RprocState, RprocError> {
        self.command(Command::Start, via)?;
        self.wait_for("running or attached", timeout, RprocState::is_up)
    }

    /// Stops the core and waits until it is offline.
    pub fn stop(&self, via: Control, timeout: Duration) -> Result<RprocState, RprocError> {
        self.command(Command::Stop, via)?;
        self.wait_for("offline", timeout, |s| *s == RprocState::Offline)
    }

    /// `recovery`: `enabled` (the kernel restarts a crashed core by itself), `disabled`.
    pub fn recovery(&self) -> Result<String, RprocError> {
        self.read_attr("recovery")
    }

    /// Brings a crashed core back and waits up to `timeout` until it runs again: with
    /// recovery enabled the kernel restarts it by itself (`rproc_crash_handler_work` →
    /// `rproc_trigger_recovery`: stop, reload the firmware, start); with recovery disabled
    /// this writes `recover` to `recovery` (`recovery_store`), which triggers the same once.
    /// A core already running is returned at once. What runs on top (an rpmsg link)
    /// reconnects afterwards: `HostBus::reconnect`, `KernelRpmsg::reconnect`.
    pub fn recover(&self, timeout: Duration) -> Result<RprocState, RprocError> {
        let st = self.state()?;
        if st == RprocState::Crashed && self.recovery()? == "disabled" {
            self.write_attr(Op::Recover, &self.sysfs_dir().join("recovery"), b"recover")?;
        }
        self.wait_for("running after recovery", timeout, |s| {
            *s == RprocState::Running
        })
    }

    /// Detaches from an attached core (it keeps running) and waits until it is detached.
    pub fn detach(&self, via: Control, timeout: Duration) -> Result<RprocState, RprocError> {
        self.command(Command::Detach, via)?;
        self.wait_for("detached", timeout, |s| *s == RprocState::Detached)
    }

    /// Re-reads `state` until `done` holds or `timeout` passes (why a bounded re-read and
    /// not `poll()`/inotify: see the module documentation).
    pub fn wait_for(
        &self,
        want: &str,
        timeout: Duration,
        done: impl Fn(&RprocState) -> bool,
    ) -> Result<RprocState, RprocError> {
        let start = Instant::now();
        let mut pause = Duration::from_millis(1);
        loop {
            let s = self.state()?;
            if done(&s) {
                return Ok(s);
            }
            let waited = start.elapsed();
            if waited >= timeout {
                return Err(RprocError::Timeout {
                    rproc: self.id(),
                    want: want.to_string(),
                    last: s,
                    waited,
                });
            }
            std::thread::sleep(pause.min(timeout - waited));
            pause = (pause * 2).min(Duration::from_millis(20));
        }
    }

    /// Installs `file` in the kernel's firmware directory under `name` (default: its file
    /// name) and selects it: checks the core is offline first (the kernel would refuse the
    /// change, and a running core's file must not be replaced under it — recovery reloads
    /// it), checks the file is ELF firmware with a valid resource table, writes it
    /// atomically (temporary file, then rename), then writes `firmware`.
    pub fn load(&self, file: &Path, name: Option<&str>) -> Result<Loaded, RprocError> {
        let name = match name {
            Some(n) => n.to_string(),
            None => file
                .file_name()
                .and_then(|n| n.to_str())
                .ok_or_else(|| RprocError::BadName(file.display().to_string()))?
                .to_string(),
        };
        check_name(&name)?;
        self.check(Op::Load)?;
        let bytes =
            crate::file::read_regular(file, crate::file::FIRMWARE_MAX).map_err(RprocError::File)?;
        validate_firmware(&bytes).map_err(|error| RprocError::BadFirmware {
            path: file.to_path_buf(),
            error,
        })?;
        let installed = install_firmware(&self.paths, &name, &bytes)?;
        self.set_firmware(&name)?;
        Ok(Loaded { installed, name })
    }
}

fn check_name(name: &str) -> Result<(), RprocError> {
    if name.is_empty() || name.contains('/') || name.contains('\n') || name == "." || name == ".." {
        return Err(RprocError::BadName(name.to_string()));
    }
    Ok(())
}

#[cfg(any(test, feature = "test-utils"))]
pub mod fake;

#[cfg(test)]
mod tests {
    use super::*;

    /// remoteproc_sysfs.c's state strings (with the newline `state_show` appends) parse to
    /// the matching state and print back unchanged.
    #[test]
    fn state_strings_round_trip() {
        for s in [
            "offline",
            "suspended",
            "running",
            "crashed",
            "deleted",
            "attached",
            "detached",
            "invalid",
        ] {
            let st = RprocState::parse(&format!("{s}\n"));
            assert!(!matches!(st, RprocState::Unknown(_)), "{s}");
            assert_eq!(st.as_str(), s);
        }
        assert_eq!(
            RprocState::parse("start"),
            RprocState::Unknown("start".into())
        );
    }

    /// The kernel's refusals: firmware changes only while offline (`rproc_set_firmware`:
    /// EBUSY), stop only while running/attached (`rproc_shutdown`: EINVAL), detach only
    /// while attached (`rproc_detach`: EINVAL), start not while up (EBUSY up to 6.3).
    #[test]
    fn refusals_follow_the_kernel() {
        use RprocState::*;
        let fw = Op::SetFirmware;
        assert_eq!(refusal(fw, &Offline), None);
        for s in [Running, Attached, Crashed, Detached, Suspended] {
            assert_eq!(refusal(fw, &s).unwrap().0, "EBUSY", "{s}");
        }
        let start = Op::Command(Command::Start);
        assert_eq!(refusal(start, &Running).unwrap().0, "EBUSY");
        assert_eq!(refusal(start, &Offline), None);
        assert_eq!(refusal(start, &Detached), None);
        let stop = Op::Command(Command::Stop);
        assert_eq!(refusal(stop, &Offline).unwrap().0, "EINVAL");
        assert_eq!(refusal(stop, &Attached), None);
        let detach = Op::Command(Command::Detach);
        assert_eq!(refusal(detach, &Running).unwrap().0, "EINVAL");
        assert_eq!(refusal(detach, &Attached), None);
    }

    /// Errors a real kernel returns from the write are mapped to what to do: EBUSY on
    /// `firmware` names the state and says to stop first; EACCES says root (or, as root,
    /// the read-only attribute and the char device); a failed boot's ENOENT says the
    /// firmware file is missing from the search path.
    #[test]
    fn kernel_errors_say_what_to_do() {
        let dir = std::env::temp_dir().join(format!("intercore-rproc-map-{}", std::process::id()));
        let r = Remoteproc {
            paths: RprocPaths::under(&dir),
            index: 3,
        };
        let f = r.sysfs_dir().join("firmware");
        let e = r.kernel_error(
            Op::SetFirmware,
            &f,
            io::Error::from_raw_os_error(libc::EBUSY),
            RprocState::Running,
        );
        let msg = e.to_string();
        assert!(
            msg.contains("remoteproc3") && msg.contains("running") && msg.contains("EBUSY"),
            "{msg}"
        );
        assert!(msg.contains("stop it first"), "{msg}");
        let e = r.kernel_error(
            Op::Command(Command::Start),
            &f,
            io::Error::from_raw_os_error(libc::EACCES),
            RprocState::Offline,
        );
        assert!(matches!(e, RprocError::NotPermitted { .. }), "{e:?}");
        let msg = e.to_string();
        assert!(msg.contains("root") || msg.contains("read-only"), "{msg}");
        let e = r.kernel_error(
            Op::Command(Command::Start),
            &r.sysfs_dir().join("state"),
            io::Error::from_raw_os_error(libc::ENOENT),
            RprocState::Offline,
        );
        // The state file does not exist in this tree: the remote processor is gone.
        assert!(matches!(e, RprocError::Gone { .. }), "{e:?}");
        let e = r.kernel_error(
            Op::Command(Command::Start),
            Path::new("/"),
            io::Error::from_raw_os_error(libc::ENOENT),
            RprocState::Offline,
        );
        assert!(e.to_string().contains("intercore rproc load"), "{e}");
        // EPERM from the write is the driver's refusal (sysfs_read_only, or TI K3 R5F
        // split mode: ti_k3_r5_remoteproc.c refuses core 1 before core 0), not a file
        // permission: the advice names both and the cluster order.
        let e = r.kernel_error(
            Op::Command(Command::Start),
            &r.sysfs_dir().join("state"),
            io::Error::from_raw_os_error(libc::EPERM),
            RprocState::Offline,
        );
        assert!(
            matches!(
                e,
                RprocError::DriverRefused {
                    via_cdev: false,
                    ..
                }
            ),
            "{e:?}"
        );
        let msg = e.to_string();
        assert!(
            msg.contains("EPERM") && msg.contains("core 0 first"),
            "{msg}"
        );
        assert!(
            msg.contains("sysfs_read_only") && !msg.contains("sudo"),
            "{msg}"
        );
        let e = r.kernel_error(
            Op::Command(Command::Start),
            &r.dev_path(),
            io::Error::from_raw_os_error(libc::EPERM),
            RprocState::Offline,
        );
        assert!(!e.to_string().contains("sysfs_read_only"), "{e}");
        let e = r.kernel_error(
            Op::Command(Command::Stop),
            Path::new("/"),
            io::Error::from_raw_os_error(libc::EINVAL),
            RprocState::Offline,
        );
        assert!(
            matches!(
                e,
                RprocError::WrongState {
                    errno: "EINVAL",
                    ..
                }
            ),
            "{e:?}"
        );
    }

    /// The kernel's firmware search order: firmware_class.path first when set, else
    /// /lib/firmware; an explicit directory overrides both. A sysfs tree other than /sys
    /// that sets no firmware_class.path gets no directory at all (never this host's real
    /// /lib/firmware).
    #[test]
    fn firmware_dir_follows_firmware_class_path() {
        let dir =
            std::env::temp_dir().join(format!("intercore-rproc-fwdir-{}", std::process::id()));
        let paths = RprocPaths::under(&dir);
        let e = firmware_dir(&paths).unwrap_err();
        assert!(matches!(e, RprocError::NoFirmwareDir { .. }), "{e:?}");
        assert!(e.to_string().contains("--firmware-dir"), "{e}");
        let real = RprocPaths::default();
        if !real.firmware_class_path_param().exists() {
            assert_eq!(firmware_dir(&real).unwrap(), PathBuf::from("/lib/firmware"));
        }
        let param = paths.firmware_class_path_param();
        fs::create_dir_all(param.parent().unwrap()).unwrap();
        fs::write(&param, "\n").unwrap();
        assert!(firmware_dir(&paths).is_err());
        fs::write(&param, "/opt/fw\n").unwrap();
        assert_eq!(firmware_dir(&paths).unwrap(), PathBuf::from("/opt/fw"));
        let over = RprocPaths {
            firmware_dir: Some("/x".into()),
            ..paths
        };
        assert_eq!(firmware_dir(&over).unwrap(), PathBuf::from("/x"));
        fs::remove_dir_all(&dir).unwrap();
    }
}
