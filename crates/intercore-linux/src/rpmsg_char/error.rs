//! What can go wrong, and what the kernel's error numbers mean for the core.

use super::*;

/// Why the kernel transport cannot be set up or an endpoint not opened, with what to do.
#[derive(Debug)]
#[non_exhaustive]
pub enum RpmsgCharError {
    /// The control device does not exist (or no driver answers its node).
    NoCtrl {
        /// The node looked for.
        path: PathBuf,
        /// The control devices that do exist (`rpmsg_ctrlN`).
        available: Vec<String>,
    },
    /// The process may not open the node.
    PermissionDenied {
        /// The node.
        path: PathBuf,
        /// Whether we run as root.
        root: bool,
    },
    /// The node is not an rpmsg control device (`RPMSG_CREATE_EPT_IOCTL` refused).
    NotCtrl {
        /// The node.
        path: PathBuf,
        /// The kernel's answer.
        source: io::Error,
    },
    /// Another process holds the endpoint device open (exclusive open, `EBUSY`).
    Busy {
        /// The node.
        path: PathBuf,
    },
    /// The remote's rpmsg device went away (remote stopped or crashed).
    Gone {
        /// The node in use when it happened.
        path: PathBuf,
    },
    /// The ioctl succeeded but no matching endpoint device appeared in sysfs.
    NoEndpointDevice {
        /// The endpoint's name.
        name: String,
        /// Its remote address.
        remote: u32,
        /// Where it was looked for.
        dir: PathBuf,
    },
    /// The name cannot be an rpmsg name.
    BadName(String),
    /// An address that cannot be used.
    BadAddress {
        /// The address.
        addr: u32,
        /// Why not.
        why: &'static str,
    },
    /// The fixed local address is already bound.
    AddressInUse {
        /// The address.
        addr: u32,
        /// By what, as far as sysfs tells.
        by: String,
    },
    /// Any other I/O error.
    Io {
        /// What we were doing.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
}

impl fmt::Display for RpmsgCharError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RpmsgCharError::NoCtrl { path, available } => {
                write!(
                    f,
                    "{} does not exist: no rpmsg control device. The kernel needs \
                     CONFIG_RPMSG_CHAR (endpoint devices /dev/rpmsgN) and, on Linux 5.18 and \
                     later, CONFIG_RPMSG_CTRL (control devices /dev/rpmsg_ctrlN) — as modules: \
                     `modprobe rpmsg_ctrl rpmsg_char` — plus CONFIG_RPMSG_VIRTIO; and the remote \
                     processor must be running firmware whose resource table has an rpmsg vdev \
                     (the control device appears when the kernel probes that vdev: \
                     `intercore rproc start`)",
                    path.display()
                )?;
                if !available.is_empty() {
                    write!(
                        f,
                        ". Control devices present: {} — select one (RpmsgPaths::ctrl)",
                        available.join(", ")
                    )?;
                }
                Ok(())
            }
            RpmsgCharError::PermissionDenied { path, root: false } => write!(
                f,
                "permission denied on {} (EACCES): the rpmsg device nodes belong to root — run \
                 as root, or add a udev rule covering both the control and the endpoint devices, \
                 e.g. `SUBSYSTEM==\"rpmsg\", KERNEL==\"rpmsg*\", GROUP=\"<group>\", MODE=\"0660\"`, \
                 and put the user in that group",
                path.display()
            ),
            RpmsgCharError::PermissionDenied { path, root: true } => write!(
                f,
                "permission denied on {} (EACCES) although running as root: a security module \
                 (SELinux, AppArmor) or the container's device policy denies it",
                path.display()
            ),
            RpmsgCharError::NotCtrl { path, source } => write!(
                f,
                "{} is not an rpmsg control device (RPMSG_CREATE_EPT_IOCTL: {source}); \
                 RpmsgPaths::ctrl must name an rpmsg_ctrlN node",
                path.display()
            ),
            RpmsgCharError::Busy { path } => write!(
                f,
                "{} is already open (EBUSY): the kernel allows one open per endpoint device \
                 (rpmsg_eptdev_open) and another process holds it — close it there",
                path.display()
            ),
            RpmsgCharError::Gone { path } => write!(
                f,
                "{}: the remote's rpmsg device went away (the remote processor stopped or \
                 crashed, or its vdev was removed); start the remote again and reopen",
                path.display()
            ),
            RpmsgCharError::NoEndpointDevice { name, remote, dir } => write!(
                f,
                "RPMSG_CREATE_EPT_IOCTL succeeded but no endpoint device {name:?} with dst \
                 {remote} appeared under {} — is sysfs mounted at the configured root \
                 (RpmsgPaths::sys)?",
                dir.display()
            ),
            RpmsgCharError::BadName(n) => write!(
                f,
                "endpoint name {n:?} cannot be an rpmsg name: at most 31 bytes and no NUL \
                 (RPMSG_NAME_SIZE is 32 with the terminator)"
            ),
            RpmsgCharError::BadAddress { addr, why } => {
                write!(f, "address {addr:#x} cannot be used: {why}")
            }
            RpmsgCharError::AddressInUse { addr, by } => write!(
                f,
                "local address {addr} is already bound ({by}); choose another fixed address \
                 below 1024, or let the kernel choose one"
            ),
            RpmsgCharError::Io { op, path, source } => {
                write!(f, "{op} {}: {source}", path.display())
            }
        }
    }
}

impl std::error::Error for RpmsgCharError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RpmsgCharError::NotCtrl { source, .. } | RpmsgCharError::Io { source, .. } => {
                Some(source)
            }
            _ => None,
        }
    }
}

impl From<RpmsgCharError> for Error {
    /// The core's error for an open-time problem (the message is lost; call
    /// [`KernelRpmsg::open_endpoint`] directly to keep it).
    fn from(e: RpmsgCharError) -> Self {
        match e {
            RpmsgCharError::NoCtrl { .. } => Error::NotReady("no rpmsg control device"),
            RpmsgCharError::PermissionDenied { .. } => Error::Os(libc::EACCES),
            RpmsgCharError::NotCtrl { source, .. } => {
                Error::Os(source.raw_os_error().unwrap_or(libc::ENOTTY))
            }
            RpmsgCharError::Busy { .. } => Error::Os(libc::EBUSY),
            RpmsgCharError::Gone { .. } => Error::PeerGone,
            RpmsgCharError::NoEndpointDevice { .. } => {
                Error::NotReady("the kernel's endpoint device did not appear in sysfs")
            }
            RpmsgCharError::BadName(_) => {
                Error::Config("endpoint name longer than 31 bytes or with a NUL")
            }
            RpmsgCharError::BadAddress { why, .. } => Error::Config(why),
            RpmsgCharError::AddressInUse { addr, .. } => Error::AddressInUse(addr),
            RpmsgCharError::Io { source, .. } => {
                Error::Os(source.raw_os_error().unwrap_or(libc::EIO))
            }
        }
    }
}

pub(super) fn errno(e: &io::Error) -> i32 {
    e.raw_os_error().unwrap_or(libc::EIO)
}

/// The core's error for a failed `read`/`write`/`poll` on an endpoint device.
pub(super) fn link_error(e: &io::Error) -> Error {
    match errno(e) {
        libc::EPIPE | libc::ENODEV | libc::ENXIO | libc::ENETRESET | libc::ESHUTDOWN => {
            Error::PeerGone
        }
        libc::EAGAIN => Error::WouldBlock,
        libc::ETIMEDOUT | ERESTARTSYS => Error::Timeout,
        n => Error::Os(n),
    }
}
