//! Why an operation failed, with what to do: the kernel's refusals and error numbers.

use super::*;

/// What went wrong, with what to do about it.
#[derive(Debug)]
pub enum RprocError {
    /// No remote processor matches the selector (`ENOENT`).
    NoSuchRproc {
        /// What was asked for.
        selector: String,
        /// What exists (`remoteprocN (name)`).
        available: Vec<String>,
    },
    /// The remote processor's sysfs directory went away (`ENOENT`).
    Gone {
        /// `remoteprocN`.
        rproc: String,
    },
    /// `/dev/remoteprocN` does not exist.
    NoCdev {
        /// The path.
        path: PathBuf,
    },
    /// Several remote processors and none selected.
    Ambiguous {
        /// What exists.
        available: Vec<String>,
    },
    /// The kernel (or the filesystem) refused access (`EACCES`/`EPERM`).
    NotPermitted {
        /// The file.
        path: PathBuf,
        /// Whether we run as root (then the attribute itself is read-only).
        root: bool,
    },
    /// The core is in the wrong state for the operation (`EBUSY`, or the `EINVAL` of
    /// `stop`/`detach`).
    WrongState {
        /// `remoteprocN`.
        rproc: String,
        /// What was attempted.
        op: &'static str,
        /// The state when it was refused.
        state: RprocState,
        /// The errno the kernel gives (or would give) for it.
        errno: &'static str,
        /// What to do.
        hint: &'static str,
    },
    /// The kernel's boot failed.
    StartFailed {
        /// `remoteprocN`.
        rproc: String,
        /// The firmware name it requested.
        firmware: String,
        /// The kernel's error.
        source: io::Error,
    },
    /// The state did not arrive in time.
    Timeout {
        /// `remoteprocN`.
        rproc: String,
        /// What was awaited.
        want: String,
        /// The last state read.
        last: RprocState,
        /// How long we waited.
        waited: Duration,
    },
    /// The firmware file is not a loadable ELF with a valid resource table.
    BadFirmware {
        /// The file.
        path: PathBuf,
        /// The problem, with its offset in the file.
        error: WireError,
    },
    /// A firmware name the kernel cannot take (empty, a path, a newline).
    BadName(String),
    /// The driver refused a write with `EPERM`: the sysfs controls are read-only
    /// (`sysfs_read_only`), or the driver refuses the operation in the core's current
    /// configuration (TI K3 R5F split mode: core 1 before core 0).
    DriverRefused {
        /// `remoteprocN`.
        rproc: String,
        /// What was attempted.
        op: &'static str,
        /// The file written.
        path: PathBuf,
        /// Whether it was `/dev/remoteprocN` (which `sysfs_read_only` does not affect).
        via_cdev: bool,
    },
    /// sysfs is not `/sys` (a test tree or another system's) and names no firmware
    /// directory: installing into this host's `/lib/firmware` would be wrong.
    NoFirmwareDir {
        /// The sysfs root.
        sys: PathBuf,
    },
    /// The firmware file is not a readable regular file of bounded size.
    File(crate::file::FileError),
    /// Any other I/O error on a file.
    Io {
        /// What we were doing.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
}

impl fmt::Display for RprocError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RprocError::NoSuchRproc {
                selector,
                available,
            } => {
                write!(f, "no remote processor {selector:?} (ENOENT); ")?;
                if available.is_empty() {
                    write!(
                        f,
                        "none exist: no remoteproc driver is bound (is CONFIG_REMOTEPROC enabled and the \
                         core's device-tree node enabled?)"
                    )
                } else {
                    write!(f, "there are: {}", available.join(", "))
                }
            }
            RprocError::Gone { rproc } => write!(
                f,
                "{rproc} disappeared (ENOENT): its driver was unbound or the device removed"
            ),
            RprocError::NoCdev { path } => write!(
                f,
                "{} does not exist (ENOENT): the kernel lacks CONFIG_REMOTEPROC_CDEV, or udev made \
                 no node; use --control sysfs",
                path.display()
            ),
            RprocError::Ambiguous { available } => write!(
                f,
                "several remote processors ({}); choose one with --rproc NAME|N",
                available.join(", ")
            ),
            RprocError::NotPermitted { path, root: false } => write!(
                f,
                "permission denied on {} (EACCES): remoteproc control needs root — run with sudo",
                path.display()
            ),
            RprocError::NotPermitted { path, root: true } => write!(
                f,
                "permission denied on {} (EACCES) although running as root: a security module \
                 (SELinux, AppArmor) or a read-only mount refuses it",
                path.display()
            ),
            RprocError::DriverRefused {
                rproc,
                op,
                path,
                via_cdev,
            } => {
                write!(
                    f,
                    "{rproc}: the kernel refused to {op} (EPERM on {}): not a file permission; the \
                     remoteproc driver said no. ",
                    path.display()
                )?;
                if !via_cdev {
                    write!(
                        f,
                        "Either the driver made the sysfs controls read-only (sysfs_read_only: use \
                         the character device instead, --control cdev), or it "
                    )?;
                } else {
                    write!(f, "The driver ")?;
                }
                write!(
                    f,
                    "refuses this core in the cluster's current configuration: TI K3 R5F clusters \
                     in split mode (AM64x, J721E, J7200) boot core 0 before core 1 and stop core 1 \
                     before core 0 (ti_k3_r5_remoteproc.c: \"can not start core 1 before core 0\"), \
                     so start the cluster's core 0 first (or stop core 1 first). The kernel log \
                     (dmesg) names the reason."
                )
            }
            RprocError::NoFirmwareDir { sys } => write!(
                f,
                "which firmware directory? sysfs is {} (not /sys) and its \
                 module/firmware_class/parameters/path is unset, so the kernel behind it searches \
                 its own /lib/firmware, not this host's; name the tree's firmware directory with \
                 --firmware-dir DIR (nothing was installed)",
                sys.display()
            ),
            RprocError::File(e) => write!(f, "{e}"),
            RprocError::WrongState {
                rproc,
                op,
                state,
                errno,
                hint,
            } => write!(
                f,
                "{rproc}: cannot {op} while the core is {state} ({errno}): {hint}"
            ),
            RprocError::StartFailed {
                rproc,
                firmware,
                source,
            } => {
                write!(
                    f,
                    "{rproc}: the kernel failed to boot firmware {firmware:?}: {source}"
                )?;
                match source.raw_os_error() {
                    Some(libc::ENOENT) => write!(
                        f,
                        " — the file is not in the kernel's firmware search path; install it with \
                         `intercore rproc load FILE`"
                    ),
                    _ => write!(f, " — the kernel log (dmesg) says why"),
                }
            }
            RprocError::Timeout {
                rproc,
                want,
                last,
                waited,
            } => write!(
                f,
                "{rproc}: still {last} after {:.1} s, waiting for {want}",
                waited.as_secs_f64()
            ),
            RprocError::BadFirmware { path, error } => {
                write!(f, "{} is not loadable firmware: {error}", path.display())
            }
            RprocError::BadName(n) => write!(
                f,
                "firmware name {n:?} is not a plain file name (non-empty, no '/', no newline)"
            ),
            RprocError::Io { op, path, source } => {
                write!(f, "{op} {}: {source}", path.display())
            }
        }
    }
}

impl std::error::Error for RprocError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RprocError::StartFailed { source, .. } | RprocError::Io { source, .. } => Some(source),
            RprocError::BadFirmware { error, .. } => Some(error),
            RprocError::File(e) => Some(e),
            _ => None,
        }
    }
}

pub(super) fn io_err(op: &'static str, path: &Path, e: io::Error) -> RprocError {
    match e.raw_os_error() {
        Some(libc::EACCES | libc::EPERM) => RprocError::NotPermitted {
            path: path.to_path_buf(),
            root: running_as_root(),
        },
        _ => RprocError::Io {
            op,
            path: path.to_path_buf(),
            source: e,
        },
    }
}
