//! The Linux kernel's rpmsg character devices behind intercore's endpoint API
//! ([`Transport`]), so an application switches between intercore's userspace bus
//! ([`HostBus`](intercore::rpmsg::HostBus)) and the kernel's `virtio_rpmsg_bus` by
//! configuration.
//!
//! What the kernel offers (`drivers/rpmsg/rpmsg_ctrl.c`, `rpmsg_char.c`, `rpmsg_core.c`,
//! `virtio_rpmsg_bus.c`), and what [`KernelRpmsg`] does with it:
//!
//! * **`/dev/rpmsg_ctrlN`**, one per virtio rpmsg device (`CONFIG_RPMSG_CTRL` from Linux
//!   5.18; before that part of `CONFIG_RPMSG_CHAR`). `RPMSG_CREATE_EPT_IOCTL` with a
//!   `struct rpmsg_endpoint_info {name, src, dst}` creates an *endpoint device* `rpmsgM`
//!   and returns 0 — not `M`. The endpoint device is a child of the control device, so
//!   it appears as `/sys/class/rpmsg/rpmsg_ctrlN/rpmsgM` (and `/sys/class/rpmsg/rpmsgM`)
//!   with the attributes `name` (`"%s\n"`), `src` and `dst` (`"%d\n"`: signed decimal, so
//!   `RPMSG_ADDR_ANY` reads `-1`). [`KernelRpmsg::open_endpoint`] lists the endpoint
//!   devices before and after the ioctl and opens the new one whose three attributes
//!   match what it asked for.
//! * **`/dev/rpmsgM`**: the endpoint itself is created at `open(2)` and destroyed at
//!   `close(2)`; the *device* stays until `RPMSG_DESTROY_EPT_IOCTL` (or until the remote
//!   goes away), so [`Transport::close`] and `Drop` issue that ioctl. Only one open at a
//!   time (`EBUSY`). One message per `read(2)`/`write(2)`; a read shorter than the
//!   message truncates it and the kernel drops the rest; `O_NONBLOCK` gives `EAGAIN`;
//!   once the endpoint is gone every call gives `EPIPE` and `poll(2)` gives `POLLERR`.
//! * **The local address** of an endpoint created with `src = RPMSG_ADDR_ANY` is picked
//!   by `virtio_rpmsg_bus` (the lowest free one from 1024) at `open(2)` and reported
//!   **nowhere**: the `src` attribute prints what was requested (`-1`). Such a channel's
//!   [`Channel::local`] is therefore [`LOCAL_UNKNOWN`]` | M` — at or above 2³¹, which no
//!   real address reaches (the bus allocates addresses with an `idr`, i.e. below 2³¹) —
//!   and identifies the channel only. An application whose remote must be *told* the
//!   host's address asks for a fixed one with [`KernelRpmsg::open_endpoint`]`(name,
//!   Some(addr), remote)`; addresses below 1024 are never handed out dynamically, so one
//!   there collides only with other fixed users, which are visible in sysfs and checked.
//! * **Channels** announced by the remote (name service) are the devices
//!   `/sys/bus/rpmsg/devices/<virtioN>.<name>.<src>.<dst>` with `name` (`"%s\n"`), `src`
//!   and `dst` (`"0x%x\n"`). [`Transport::find_service`] reads them, keeping only those
//!   of the same virtio device as the control device (a board with several remote cores
//!   has one `rpmsg_ctrlN` and one set of channels per core).
//!
//! Waiting, and why each wait is done the way it is:
//!
//! * **Receive**: `ppoll(POLLIN)` with the caller's timeout, then one `read(2)` into a
//!   64 KiB scratch buffer (more than any rpmsg message: the header's length is 16 bits),
//!   so a message larger than the caller's buffer is reported as
//!   `Error::Truncated { len }` with its real length, which `read(2)` alone cannot tell.
//! * **Send**: the descriptor is `O_NONBLOCK`, so `write(2)` uses the kernel's
//!   `rpmsg_trysendto` and fails with `EAGAIN` when all transmit buffers are with the
//!   remote. A blocking `write(2)` would instead sleep up to the kernel's fixed 15 s,
//!   whatever the caller's timeout, and `virtio_rpmsg_bus` has no poll operation (through
//!   at least Linux 6.12), so `POLLOUT` is never reported and `poll(2)` cannot wait for a
//!   free buffer either. So a full ring is waited out with `ppoll(POLLOUT)` in short
//!   slices (100 µs, doubling to 2 ms, never past the deadline) between write attempts:
//!   the slice is a sleep on kernels without `POLLOUT`, and returns at once on kernels
//!   that report it. It costs one system call per slice, only while the ring is full.
//! * **Service discovery**: sysfs gives no notification for a new channel — `poll(2)` on
//!   sysfs wakes only for attributes a driver `sysfs_notify()`s, and inotify does not
//!   report directories the kernel adds — so [`Transport::find_service`] re-reads
//!   `/sys/bus/rpmsg/devices` with short sleeps (1 ms doubling to 20 ms) until the
//!   deadline. The kernel's uevent netlink socket would be the event-driven alternative;
//!   a service appears once per remote boot, so the re-reading costs nothing that
//!   matters.
//!
//! Maximum payload: `virtio_rpmsg_bus` uses 512-byte buffers, 16 bytes of header, so 496
//! ([`DEFAULT_MAX_PAYLOAD`]). The kernel knows its MTU (`rpmsg_get_mtu`) but exposes it
//! neither through the character device nor sysfs; vendor kernels built with larger
//! buffers are configured with [`KernelRpmsg::set_max_payload`]. A write the kernel still
//! refuses (`EMSGSIZE`) is reported as `MessageTooLarge`.
//!
//! Every system call goes through a small internal trait; `rpmsg_char::fake` (feature
//! `test-utils`) implements it as a model of the kernel's side (a fake sysfs tree and
//! `SOCK_SEQPACKET` endpoint "devices"), so all of this runs in tests without a kernel
//! that has rpmsg.

use crate::sys::{self, running_as_root};
use intercore::Error;
use intercore::rpmsg::{Channel, Transport};
use intercore::wire::Le32;
use intercore::wire::rpmsg::{Name, RPMSG_ADDR_ANY, RPMSG_NS_ADDR};
use intercore::wire::uapi::RpmsgEndpointInfo;
use std::collections::{BTreeSet, HashMap};
use std::ffi::CString;
use std::fmt;
use std::fs;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
pub(crate) use sys::fd::ppoll_one;

/// The payload limit of mainline `virtio_rpmsg_bus`: 512-byte buffers minus the 16-byte
/// header.
pub const DEFAULT_MAX_PAYLOAD: usize = 496;

/// Marks a [`Channel::local`] that is not an address: the kernel chose the endpoint's
/// address and does not report it. The low bits are `M` of `/dev/rpmsgM`.
pub const LOCAL_UNKNOWN: u32 = 0x8000_0000;

/// One read's scratch space: more than the largest rpmsg payload (16-bit length).
const SCRATCH: usize = 64 * 1024;
/// `ERESTARTSYS`: what the kernel's blocking send returns after 15 s without a buffer;
/// it reaches userspace when no signal is pending.
const ERESTARTSYS: i32 = 512;
/// How long a just-created endpoint device node may take to appear (no devtmpfs) or to
/// get its permissions (udev rule).
const NODE_SETTLE: Duration = Duration::from_secs(1);

/// The filesystem roots and the control device the kernel transport works with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpmsgPaths {
    /// Device nodes (`/dev`): `rpmsg_ctrlN`, `rpmsgM`.
    pub dev: PathBuf,
    /// sysfs (`/sys`): `class/rpmsg/`, `bus/rpmsg/devices/`.
    pub sys: PathBuf,
    /// The control device's name (`rpmsg_ctrl0`): one per remote core's rpmsg device.
    pub ctrl: String,
}

impl Default for RpmsgPaths {
    fn default() -> Self {
        Self {
            dev: "/dev".into(),
            sys: "/sys".into(),
            ctrl: "rpmsg_ctrl0".into(),
        }
    }
}

impl RpmsgPaths {
    /// `root/dev` and `root/sys`, control device `rpmsg_ctrl0`.
    pub fn under(root: &Path) -> Self {
        Self {
            dev: root.join("dev"),
            sys: root.join("sys"),
            ctrl: "rpmsg_ctrl0".into(),
        }
    }
    /// `dev/<ctrl>`.
    pub fn ctrl_dev(&self) -> PathBuf {
        self.dev.join(&self.ctrl)
    }
    /// `sys/class/rpmsg`: control and endpoint devices.
    pub fn class_dir(&self) -> PathBuf {
        self.sys.join("class/rpmsg")
    }
    /// `sys/bus/rpmsg/devices`: the channels.
    pub fn bus_dir(&self) -> PathBuf {
        self.sys.join("bus/rpmsg/devices")
    }
}

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

/// The operations on the kernel's devices, so tests can put a model of the kernel behind
/// them (`rpmsg_char::fake`). Every descriptor this returns is handed back to
/// [`RpmsgOs::close`].
pub(crate) trait RpmsgOs: Send {
    /// `open(path, O_RDWR | O_CLOEXEC [| O_NONBLOCK])`.
    fn open(&self, path: &Path, nonblock: bool) -> io::Result<OwnedFd>;
    /// `RPMSG_CREATE_EPT_IOCTL` on a control device.
    fn create_ept(&self, ctrl: BorrowedFd<'_>, info: &RpmsgEndpointInfo) -> io::Result<()>;
    /// `RPMSG_DESTROY_EPT_IOCTL` on an endpoint device.
    fn destroy_ept(&self, ep: BorrowedFd<'_>) -> io::Result<()>;
    /// One `read(2)`.
    fn read(&self, ep: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize>;
    /// One `write(2)`.
    fn write(&self, ep: BorrowedFd<'_>, buf: &[u8]) -> io::Result<usize>;
    /// `ppoll` on one descriptor (`None`: no limit); returns `revents`. `EINTR` is
    /// returned, not retried.
    fn poll(
        &self,
        fd: BorrowedFd<'_>,
        events: libc::c_short,
        timeout: Option<Duration>,
    ) -> io::Result<libc::c_short>;
    /// `close(2)`.
    fn close(&self, fd: OwnedFd) {
        drop(fd);
    }
}

/// The real system calls.
struct LinuxOs;

impl RpmsgOs for LinuxOs {
    fn open(&self, path: &Path, nonblock: bool) -> io::Result<OwnedFd> {
        let c = CString::new(path.as_os_str().as_bytes())
            .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        let flags = libc::O_RDWR | libc::O_CLOEXEC | if nonblock { libc::O_NONBLOCK } else { 0 };
        sys::fd::open(&c, flags)
    }

    fn create_ept(&self, ctrl: BorrowedFd<'_>, info: &RpmsgEndpointInfo) -> io::Result<()> {
        sys::ioctl::ioctl_in(ctrl, sys::ioctl::RPMSG_CREATE_EPT_IOCTL, info).map(|_| ())
    }

    fn destroy_ept(&self, ep: BorrowedFd<'_>) -> io::Result<()> {
        sys::ioctl::ioctl_val(ep, sys::ioctl::RPMSG_DESTROY_EPT_IOCTL, 0).map(|_| ())
    }

    fn read(&self, ep: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
        sys::fd::read(ep, buf)
    }

    fn write(&self, ep: BorrowedFd<'_>, buf: &[u8]) -> io::Result<usize> {
        sys::fd::write(ep, buf)
    }

    fn poll(
        &self,
        fd: BorrowedFd<'_>,
        events: libc::c_short,
        timeout: Option<Duration>,
    ) -> io::Result<libc::c_short> {
        ppoll_one(fd, events, timeout)
    }
}

/// A channel the remote announced (`/sys/bus/rpmsg/devices/*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RpmsgService {
    /// The service name (`name`).
    pub name: String,
    /// The remote's address (`dst`).
    pub remote: u32,
    /// The local address of the kernel driver bound to the channel (`src`), if any.
    pub local: Option<u32>,
    /// The device (`virtio0.name.-1.1024`).
    pub device: String,
}

struct Endpoint {
    /// The name it was opened with.
    name: String,
    fd: Option<OwnedFd>,
    /// `rpmsgM`.
    dev: String,
    remote: u32,
    /// The kernel destroyed the endpoint (EPIPE / POLLERR seen).
    gone: bool,
}

/// The kernel's rpmsg character devices as a [`Transport`]: one control device
/// (`/dev/rpmsg_ctrlN`) and one endpoint device per open channel. See the module
/// documentation for how each call maps onto the kernel.
pub struct KernelRpmsg {
    os: Box<dyn RpmsgOs>,
    paths: RpmsgPaths,
    ctrl: Option<OwnedFd>,
    /// Identity of the control device's node when it was opened.
    ctrl_node: Option<(u64, u64)>,
    /// `sys/class/rpmsg/<ctrl>`.
    ctrl_sys: PathBuf,
    /// The virtio device directory the control device belongs to (canonical), when the
    /// sysfs layout is the expected one.
    vdev: Option<PathBuf>,
    eps: HashMap<u32, Endpoint>,
    scratch: Vec<u8>,
    max_payload: usize,
}

impl fmt::Debug for KernelRpmsg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KernelRpmsg")
            .field("ctrl", &self.paths.ctrl_dev())
            .field("vdev", &self.vdev)
            .field("endpoints", &self.eps.len())
            .field("max_payload", &self.max_payload)
            .finish()
    }
}

fn errno(e: &io::Error) -> i32 {
    e.raw_os_error().unwrap_or(libc::EIO)
}

/// The core's error for a failed `read`/`write`/`poll` on an endpoint device.
fn link_error(e: &io::Error) -> Error {
    match errno(e) {
        libc::EPIPE | libc::ENODEV | libc::ENXIO | libc::ENETRESET | libc::ESHUTDOWN => {
            Error::PeerGone
        }
        libc::EAGAIN => Error::WouldBlock,
        libc::ETIMEDOUT | ERESTARTSYS => Error::Timeout,
        n => Error::Os(n),
    }
}

/// Parses an address attribute: `rpmsg_core.c` prints `0x%x`, `rpmsg_char.c` prints `%d`
/// (so `RPMSG_ADDR_ANY` is `-1`).
pub fn parse_addr(s: &str) -> Option<u32> {
    let s = s.trim();
    if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        u32::from_str_radix(hex, 16).ok()
    } else if s.starts_with('-') {
        s.parse::<i32>().ok().map(|v| v as u32)
    } else {
        s.parse::<u32>().ok()
    }
}

fn read_attr(dir: &Path, attr: &str) -> Option<String> {
    let s = fs::read_to_string(dir.join(attr)).ok()?;
    Some(s.strip_suffix('\n').unwrap_or(&s).to_string())
}

/// `M` of `rpmsgM`.
fn ept_index(name: &str) -> Option<u32> {
    let n = name.strip_prefix("rpmsg")?;
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    n.parse().ok()
}

/// The attributes of one endpoint device.
struct EptAttrs {
    name: String,
    src: u32,
    dst: u32,
}

fn ept_attrs(dir: &Path) -> Option<EptAttrs> {
    Some(EptAttrs {
        name: read_attr(dir, "name")?,
        src: parse_addr(&read_attr(dir, "src")?)?,
        dst: parse_addr(&read_attr(dir, "dst")?)?,
    })
}

fn sleep_until(pause: &mut Duration, deadline: Option<Instant>, max: Duration) {
    let mut d = *pause;
    if let Some(end) = deadline {
        d = d.min(end.saturating_duration_since(Instant::now()));
    }
    std::thread::sleep(d);
    *pause = (*pause * 2).min(max);
}

impl KernelRpmsg {
    /// Opens the control device `paths.dev/paths.ctrl`.
    pub fn open(paths: &RpmsgPaths) -> Result<Self, RpmsgCharError> {
        Self::with_os(paths, Box::new(LinuxOs))
    }

    pub(crate) fn with_os(
        paths: &RpmsgPaths,
        os: Box<dyn RpmsgOs>,
    ) -> Result<Self, RpmsgCharError> {
        let (ctrl, ctrl_node) = Self::open_ctrl(&*os, paths)?;
        let ctrl_sys = paths.class_dir().join(&paths.ctrl);
        Ok(Self {
            vdev: vdev_of_ctrl(&ctrl_sys),
            os,
            paths: paths.clone(),
            ctrl: Some(ctrl),
            ctrl_node,
            ctrl_sys,
            eps: HashMap::new(),
            scratch: vec![0; SCRATCH],
            max_payload: DEFAULT_MAX_PAYLOAD,
        })
    }

    /// Opens the control device `paths.ctrl`, with its node's identity.
    fn open_ctrl(
        os: &dyn RpmsgOs,
        paths: &RpmsgPaths,
    ) -> Result<(OwnedFd, Option<(u64, u64)>), RpmsgCharError> {
        let path = paths.ctrl_dev();
        let node = node_id(&path);
        let ctrl = os.open(&path, false).map_err(|e| match errno(&e) {
            libc::ENOENT | libc::ENODEV | libc::ENXIO => RpmsgCharError::NoCtrl {
                available: list_ctrls(&paths.dev),
                path: path.clone(),
            },
            libc::EACCES | libc::EPERM => RpmsgCharError::PermissionDenied {
                path: path.clone(),
                root: running_as_root(),
            },
            _ => RpmsgCharError::Io {
                op: "opening",
                path: path.clone(),
                source: e,
            },
        })?;
        Ok((ctrl, node))
    }

    /// The roots and control device in use.
    pub fn paths(&self) -> &RpmsgPaths {
        &self.paths
    }

    /// Sets the payload limit (for kernels built with buffers other than 512 bytes).
    pub fn set_max_payload(&mut self, n: usize) {
        self.max_payload = n;
    }

    /// The endpoint device node of an open channel (`/dev/rpmsgM`).
    pub fn endpoint_device(&self, ch: &Channel) -> Option<PathBuf> {
        self.eps.get(&ch.local).map(|e| self.paths.dev.join(&e.dev))
    }

    /// The channels the remote announced on this control device's virtio device, sorted
    /// by name and address. No rpmsg bus in sysfs means none.
    pub fn services(&self) -> Result<Vec<RpmsgService>, RpmsgCharError> {
        let dir = self.paths.bus_dir();
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => {
                return Err(RpmsgCharError::Io {
                    op: "listing",
                    path: dir,
                    source: e,
                });
            }
        };
        let mut out = Vec::new();
        for entry in entries.filter_map(|e| e.ok()) {
            let path = entry.path();
            if let Some(vdev) = &self.vdev {
                // Channels of another remote core's virtio device are not reachable
                // through this control device.
                let parent = fs::canonicalize(&path)
                    .ok()
                    .and_then(|p| p.parent().map(Path::to_path_buf));
                if parent.as_deref() != Some(vdev.as_path()) {
                    continue;
                }
            }
            // A channel removed while we read it is skipped.
            let (Some(name), Some(dst)) = (
                read_attr(&path, "name"),
                read_attr(&path, "dst").and_then(|s| parse_addr(&s)),
            ) else {
                continue;
            };
            // The bus's own devices: the name service (53) and the control device.
            if dst == RPMSG_ADDR_ANY || name == "rpmsg_ns" || name == "rpmsg_ctrl" {
                continue;
            }
            let local = read_attr(&path, "src")
                .and_then(|s| parse_addr(&s))
                .filter(|&a| a != RPMSG_ADDR_ANY);
            out.push(RpmsgService {
                name,
                remote: dst,
                local,
                device: entry.file_name().to_string_lossy().into_owned(),
            });
        }
        out.sort_by(|a, b| (&a.name, a.remote).cmp(&(&b.name, b.remote)));
        Ok(out)
    }

    /// The remote address of service `name` (the lowest, if announced several times),
    /// re-reading sysfs until `timeout` (`None`: no limit).
    pub fn wait_service(&mut self, name: &str, timeout: Option<Duration>) -> Result<u32, Error> {
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        let mut pause = Duration::from_millis(1);
        loop {
            let found = self.services().map_err(Error::from)?;
            if let Some(s) = found.iter().find(|s| s.name == name) {
                return Ok(s.remote);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(Error::Timeout);
            }
            sleep_until(&mut pause, deadline, Duration::from_millis(20));
        }
    }

    /// `rpmsgM` entries under `dir`.
    fn ept_devices(dir: &Path) -> BTreeSet<u32> {
        fs::read_dir(dir)
            .map(|it| {
                it.filter_map(|e| e.ok())
                    .filter_map(|e| ept_index(e.file_name().to_str()?))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Who, visible in sysfs, uses local address `addr` on this control device's
    /// virtio device.
    fn address_user(&self, addr: u32) -> Option<String> {
        for m in Self::ept_devices(&self.ctrl_sys) {
            let dir = self.ctrl_sys.join(format!("rpmsg{m}"));
            if ept_attrs(&dir).is_some_and(|a| a.src == addr) {
                return Some(format!("endpoint device rpmsg{m}"));
            }
        }
        self.services().ok().and_then(|all| {
            all.into_iter()
                .find(|s| s.local == Some(addr))
                .map(|s| format!("channel {}", s.device))
        })
    }

    /// Opens a local endpoint named `name` talking to `remote`, at the fixed local
    /// address `local` or (`None`) one the kernel chooses — then [`Channel::local`] is
    /// [`LOCAL_UNKNOWN`]` | M` (module documentation).
    pub fn open_endpoint(
        &mut self,
        name: &str,
        local: Option<u32>,
        remote: u32,
    ) -> Result<Channel, RpmsgCharError> {
        let nm = Name::new(name.as_bytes()).ok_or_else(|| RpmsgCharError::BadName(name.into()))?;
        if remote == RPMSG_ADDR_ANY {
            return Err(RpmsgCharError::BadAddress {
                addr: remote,
                why: "the remote address must be an address (the kernel refuses to send to \
                      RPMSG_ADDR_ANY)",
            });
        }
        let src = match local {
            None | Some(RPMSG_ADDR_ANY) => RPMSG_ADDR_ANY,
            Some(RPMSG_NS_ADDR) => {
                return Err(RpmsgCharError::BadAddress {
                    addr: RPMSG_NS_ADDR,
                    why: "address 53 is the name service's",
                });
            }
            Some(a) if a >= LOCAL_UNKNOWN => {
                return Err(RpmsgCharError::BadAddress {
                    addr: a,
                    why: "the kernel binds local addresses below 2^31 only",
                });
            }
            Some(a) => {
                if let Some(by) = self.address_user(a) {
                    return Err(RpmsgCharError::AddressInUse { addr: a, by });
                }
                a
            }
        };
        let mut info = RpmsgEndpointInfo {
            name: [0; 32],
            src: Le32::new(src),
            dst: Le32::new(remote),
        };
        info.name[..nm.as_bytes().len()].copy_from_slice(nm.as_bytes());

        let class = self.paths.class_dir();
        let before = Self::ept_devices(&class);
        // None only after a reconnect that found no control device.
        let Some(ctrl) = self.ctrl.as_ref() else {
            return Err(RpmsgCharError::Gone {
                path: self.paths.ctrl_dev(),
            });
        };
        self.os.create_ept(ctrl.as_fd(), &info).map_err(|e| {
            let path = self.paths.ctrl_dev();
            match errno(&e) {
                libc::EACCES | libc::EPERM => RpmsgCharError::PermissionDenied {
                    path,
                    root: running_as_root(),
                },
                libc::ENOTTY | libc::EINVAL => RpmsgCharError::NotCtrl { path, source: e },
                libc::ENODEV | libc::ENXIO | libc::ENETRESET => RpmsgCharError::Gone { path },
                _ => RpmsgCharError::Io {
                    op: "RPMSG_CREATE_EPT_IOCTL on",
                    path,
                    source: e,
                },
            }
        })?;

        // Candidates: endpoint devices matching what we asked for, the new ones first.
        // Identical endpoints are interchangeable, so if another process races us with
        // the same request and opens ours, we open its (the kernel's exclusive open
        // decides); an old unopened one can also be taken if the kernel reused a number.
        let held: BTreeSet<&str> = self.eps.values().map(|e| e.dev.as_str()).collect();
        let mut fresh = Vec::new();
        let mut old = Vec::new();
        for m in Self::ept_devices(&class) {
            let dev = format!("rpmsg{m}");
            if held.contains(dev.as_str()) {
                continue;
            }
            let Some(a) = ept_attrs(&class.join(&dev)) else {
                continue;
            };
            if a.name != name || a.dst != remote || a.src != src {
                continue;
            }
            // A child of another control device belongs to another remote core.
            let ours = self.ctrl_sys.join(&dev).exists();
            if !ours && self.vdev.is_some() {
                continue;
            }
            if before.contains(&m) {
                old.push(m);
            } else {
                fresh.push(m);
            }
        }
        let mut busy = None;
        for m in fresh.into_iter().chain(old) {
            let dev = format!("rpmsg{m}");
            match self.open_node(&dev, &class) {
                Ok(fd) => return Ok(self.adopt(fd, dev, m, name, remote)),
                Err(RpmsgCharError::Busy { path }) => busy = Some(path),
                Err(RpmsgCharError::Io { source, .. })
                    if source.raw_os_error() == Some(libc::ENOENT) => {}
                Err(e) => return Err(e),
            }
        }
        Err(match busy {
            Some(path) => RpmsgCharError::Busy { path },
            None => RpmsgCharError::NoEndpointDevice {
                name: name.into(),
                remote,
                dir: self.ctrl_sys.clone(),
            },
        })
    }

    /// Opens `/dev/rpmsgM`, giving the node a moment to appear or get its permissions
    /// while its sysfs entry exists.
    fn open_node(&self, dev: &str, class: &Path) -> Result<OwnedFd, RpmsgCharError> {
        let path = self.paths.dev.join(dev);
        let end = Instant::now() + NODE_SETTLE;
        let mut pause = Duration::from_millis(1);
        loop {
            let e = match self.os.open(&path, true) {
                Ok(fd) => return Ok(fd),
                Err(e) => e,
            };
            let n = errno(&e);
            let settling = matches!(n, libc::ENOENT | libc::EACCES)
                && class.join(dev).exists()
                && Instant::now() < end;
            if settling {
                sleep_until(&mut pause, Some(end), Duration::from_millis(20));
                continue;
            }
            return Err(match n {
                libc::EBUSY => RpmsgCharError::Busy { path },
                libc::EACCES | libc::EPERM => RpmsgCharError::PermissionDenied {
                    path,
                    root: running_as_root(),
                },
                libc::ENODEV | libc::ENXIO | libc::ENETRESET => RpmsgCharError::Gone { path },
                // rpmsg_eptdev_open: the endpoint could not be created — for a fixed
                // address, because it is bound (the bus's idr_alloc failed).
                libc::EINVAL => RpmsgCharError::AddressInUse {
                    addr: ept_attrs(&class.join(dev)).map_or(RPMSG_ADDR_ANY, |a| a.src),
                    by: format!(
                        "the kernel refused to bind it when {dev} was opened; {dev} stays \
                         until the remote's rpmsg device goes away, as it cannot be destroyed \
                         unopened"
                    ),
                },
                _ => RpmsgCharError::Io {
                    op: "opening",
                    path,
                    source: e,
                },
            });
        }
    }

    fn adopt(&mut self, fd: OwnedFd, dev: String, m: u32, name: &str, remote: u32) -> Channel {
        let requested = ept_attrs(&self.paths.class_dir().join(&dev)).map(|a| a.src);
        let local = match requested {
            Some(a) if a < LOCAL_UNKNOWN => a,
            _ => LOCAL_UNKNOWN | m,
        };
        self.eps.insert(
            local,
            Endpoint {
                name: name.into(),
                fd: Some(fd),
                dev,
                remote,
                gone: false,
            },
        );
        Channel { local, remote }
    }

    fn endpoint(&mut self, ch: &Channel) -> Result<&mut Endpoint, Error> {
        let ep = self
            .eps
            .get_mut(&ch.local)
            .ok_or(Error::NoSuchEndpoint(ch.local))?;
        if ep.remote != ch.remote {
            return Err(Error::Config(
                "a kernel rpmsg endpoint sends only to the remote address it was opened with",
            ));
        }
        if ep.gone {
            return Err(Error::PeerGone);
        }
        Ok(ep)
    }

    /// Destroys the endpoint device (unless the kernel already did) and closes it.
    fn destroy(os: &dyn RpmsgOs, mut ep: Endpoint) -> Result<(), Error> {
        let Some(fd) = ep.fd.take() else {
            return Ok(());
        };
        // After the remote went away the kernel has run rpmsg_chrdev_eptdev_destroy for
        // this device already; the ioctl would run it a second time on a deleted device.
        // While we hold it open, POLLERR means exactly that (`!eptdev->ept`).
        let already = ep.gone
            || os
                .poll(fd.as_fd(), libc::POLLIN, Some(Duration::ZERO))
                .is_ok_and(|r| r & libc::POLLERR != 0);
        let r = if already {
            Ok(())
        } else {
            match os.destroy_ept(fd.as_fd()) {
                Ok(()) => Ok(()),
                Err(e) => match link_error(&e) {
                    Error::PeerGone => Ok(()),
                    other => Err(other),
                },
            }
        };
        os.close(fd);
        r
    }

    /// Closes channel `ch`: `RPMSG_DESTROY_EPT_IOCTL`, then `close(2)`.
    pub fn close_endpoint(&mut self, ch: Channel) -> Result<(), Error> {
        let ep = self
            .eps
            .remove(&ch.local)
            .ok_or(Error::NoSuchEndpoint(ch.local))?;
        Self::destroy(&*self.os, ep)
    }

    /// Sends one message (one `write(2)`), waiting up to `timeout` (`None`: no limit)
    /// for a transmit buffer.
    pub fn send_timeout(
        &mut self,
        ch: &Channel,
        data: &[u8],
        timeout: Option<Duration>,
    ) -> Result<(), Error> {
        let max = self.max_payload;
        if data.len() > max {
            return Err(Error::MessageTooLarge {
                len: data.len(),
                max,
            });
        }
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        self.endpoint(ch)?;
        let Self { os, eps, .. } = self;
        let ep = eps.get_mut(&ch.local).expect("checked above");
        let fd = ep.fd.as_ref().expect("open endpoint has a descriptor");
        let mut pause = Duration::from_micros(100);
        loop {
            let e = match os.write(fd.as_fd(), data) {
                Ok(n) if n == data.len() => return Ok(()),
                // rpmsg_eptdev_write_iter returns the whole length or an error.
                Ok(_) => return Err(Error::Os(libc::EIO)),
                Err(e) => e,
            };
            match errno(&e) {
                libc::EINTR => continue,
                libc::EMSGSIZE => {
                    // The kernel's buffers are smaller than configured.
                    return Err(Error::MessageTooLarge {
                        len: data.len(),
                        max: data.len().saturating_sub(1).min(max),
                    });
                }
                libc::EAGAIN => {}
                _ => {
                    let err = link_error(&e);
                    if err == Error::PeerGone {
                        ep.gone = true;
                    }
                    return Err(err);
                }
            }
            // Every transmit buffer is with the remote (see the module documentation).
            let mut slice = pause;
            if let Some(d) = deadline {
                let now = Instant::now();
                if now >= d {
                    return Err(Error::Timeout);
                }
                slice = slice.min(d - now);
            }
            match os.poll(fd.as_fd(), libc::POLLOUT, Some(slice)) {
                // POLLERR: the next write reports why (EPIPE).
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(link_error(&e)),
            }
            pause = (pause * 2).min(Duration::from_millis(2));
        }
    }

    /// Receives one message (one `read(2)`) into `buf`, waiting up to `timeout` (`None`:
    /// no limit). A message longer than `buf` is consumed: `buf` gets its start and the
    /// result is `Error::Truncated` with its full length.
    pub fn recv_timeout(
        &mut self,
        ch: &Channel,
        buf: &mut [u8],
        timeout: Option<Duration>,
    ) -> Result<usize, Error> {
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        self.endpoint(ch)?;
        let Self {
            os, eps, scratch, ..
        } = self;
        let ep = eps.get_mut(&ch.local).expect("checked above");
        let fd = ep.fd.as_ref().expect("open endpoint has a descriptor");
        loop {
            let e = match os.read(fd.as_fd(), scratch) {
                Ok(n) => {
                    let k = n.min(buf.len());
                    buf[..k].copy_from_slice(&scratch[..k]);
                    return if k < n {
                        Err(Error::Truncated { len: n })
                    } else {
                        Ok(n)
                    };
                }
                Err(e) => e,
            };
            match errno(&e) {
                libc::EINTR => continue,
                libc::EAGAIN => {}
                _ => {
                    let err = link_error(&e);
                    if err == Error::PeerGone {
                        ep.gone = true;
                    }
                    return Err(err);
                }
            }
            let left = match deadline {
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return Err(Error::Timeout);
                    }
                    Some(d - now)
                }
                None => None,
            };
            match os.poll(fd.as_fd(), libc::POLLIN, left) {
                // Readable, POLLERR (the read says EPIPE) or the deadline (checked above).
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(link_error(&e)),
            }
        }
    }
}

/// `rpmsg_ctrlN` nodes under `dev`.
fn list_ctrls(dev: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dev)
        .map(|it| {
            it.filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().to_str().map(str::to_string))
                .filter(|n| {
                    n.strip_prefix("rpmsg_ctrl")
                        .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// The virtio device of a control device: `…/virtioN/virtioN.rpmsg_ctrl.0.0/rpmsg/
/// rpmsg_ctrlN` (a class device whose parent is a bus device lives in a `rpmsg` glue
/// directory of the parent; the parent is the bus's control channel, a child of the
/// virtio device).
fn vdev_of_ctrl(ctrl_sys: &Path) -> Option<PathBuf> {
    let real = fs::canonicalize(ctrl_sys).ok()?;
    let glue = real.parent()?;
    if glue.file_name()? != "rpmsg" {
        return None;
    }
    Some(glue.parent()?.parent()?.to_path_buf())
}

impl Drop for KernelRpmsg {
    fn drop(&mut self) {
        // Endpoint devices outlive close(2); destroy ours so they do not pile up.
        for (_, ep) in self.eps.drain() {
            let _ = Self::destroy(&*self.os, ep);
        }
        if let Some(fd) = self.ctrl.take() {
            self.os.close(fd);
        }
    }
}

impl Transport for KernelRpmsg {
    fn find_service(&mut self, name: &str, timeout: Option<Duration>) -> intercore::Result<u32> {
        self.wait_service(name, timeout)
    }
    fn open(&mut self, name: &str, remote: u32) -> intercore::Result<Channel> {
        self.open_endpoint(name, None, remote).map_err(Error::from)
    }
    fn close(&mut self, ch: Channel) -> intercore::Result<()> {
        self.close_endpoint(ch)
    }
    fn send(
        &mut self,
        ch: &Channel,
        data: &[u8],
        timeout: Option<Duration>,
    ) -> intercore::Result<()> {
        self.send_timeout(ch, data, timeout)
    }
    fn recv(
        &mut self,
        ch: &Channel,
        buf: &mut [u8],
        timeout: Option<Duration>,
    ) -> intercore::Result<usize> {
        self.recv_timeout(ch, buf, timeout)
    }
    fn max_payload(&self) -> usize {
        self.max_payload
    }
}

/// Identity of a device node: a node the kernel removed and made again is another inode.
fn node_id(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// Recovery.
impl KernelRpmsg {
    /// Re-attaches after the remote went away and came back (remoteproc's `crashed`, then
    /// its recovery, or a stop and start): the kernel unregistered the remote's rpmsg
    /// device — every endpoint gives `EPIPE`, `/dev/rpmsg_ctrlN` disappeared — and
    /// registers it again when the firmware is back, as a new virtio device whose control
    /// device may carry another number.
    ///
    /// Closes every open channel (destroying the endpoint devices the kernel did not),
    /// then waits up to `timeout` for a *new* control device of the same remote: one whose
    /// virtio device has the same parent (the remoteproc device) as the old one, and
    /// which is not the old node itself (not the same inode under the same name). Without
    /// a known parent (an unexpected sysfs layout) the old name coming back, or else the
    /// only control device there is, is taken. Returns the channels that were open as
    /// `(name, remote address)`, for the caller to open again once the services are
    /// re-announced ([`Self::wait_service`]; the remote's addresses may have changed).
    pub fn reconnect(
        &mut self,
        timeout: Option<Duration>,
    ) -> Result<Vec<(String, u32)>, RpmsgCharError> {
        let mut was_open: Vec<(String, u32)> = Vec::new();
        for (_, ep) in self.eps.drain() {
            was_open.push((ep.name.clone(), ep.remote));
            let _ = Self::destroy(&*self.os, ep);
        }
        was_open.sort();
        let old_node = node_id(&self.paths.ctrl_dev());
        let old_name = self.paths.ctrl.clone();
        let old_parent = self
            .vdev
            .as_ref()
            .and_then(|v| v.parent().map(Path::to_path_buf));
        let old_ctrl_node = self.ctrl_node.take();
        if let Some(fd) = self.ctrl.take() {
            self.os.close(fd);
        }
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        let mut pause = Duration::from_millis(1);
        loop {
            let ctrls = list_ctrls(&self.paths.dev);
            let pick = ctrls.iter().find(|c| {
                let node = node_id(&self.paths.dev.join(c));
                if node.is_none() || (**c == old_name && node == old_ctrl_node.or(old_node)) {
                    return false;
                }
                match &old_parent {
                    Some(parent) => vdev_of_ctrl(&self.paths.class_dir().join(c))
                        .is_some_and(|v| v.parent() == Some(parent.as_path())),
                    None => **c == old_name || ctrls.len() == 1,
                }
            });
            if let Some(c) = pick.cloned() {
                let mut paths = self.paths.clone();
                paths.ctrl = c;
                match Self::open_ctrl(&*self.os, &paths) {
                    Ok((fd, node)) => {
                        self.ctrl_sys = paths.class_dir().join(&paths.ctrl);
                        self.vdev = vdev_of_ctrl(&self.ctrl_sys);
                        self.paths = paths;
                        self.ctrl = Some(fd);
                        self.ctrl_node = node;
                        return Ok(was_open);
                    }
                    // Still being torn down or set up: try again until the deadline.
                    Err(RpmsgCharError::NoCtrl { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                // Without a control device: later calls report the link as gone.
                return Err(RpmsgCharError::NoCtrl {
                    path: self.paths.ctrl_dev(),
                    available: ctrls,
                });
            }
            sleep_until(&mut pause, deadline, Duration::from_millis(20));
        }
    }
}

#[cfg(any(test, feature = "test-utils"))]
pub mod fake;

#[cfg(test)]
mod tests {
    use super::*;

    /// rpmsg_core.c prints channel addresses with `0x%x`, rpmsg_char.c endpoint-device
    /// addresses with `%d` (RPMSG_ADDR_ANY as `-1`); both parse to the same `u32`.
    #[test]
    fn address_attributes_parse_both_formats() {
        assert_eq!(parse_addr("0x400\n"), Some(1024));
        assert_eq!(parse_addr("0xffffffff\n"), Some(RPMSG_ADDR_ANY));
        assert_eq!(parse_addr("1024\n"), Some(1024));
        assert_eq!(parse_addr("-1\n"), Some(RPMSG_ADDR_ANY));
        assert_eq!(parse_addr("53"), Some(53));
        assert_eq!(parse_addr("zz"), None);
        assert_eq!(parse_addr(""), None);
    }

    /// Only `rpmsgM` names are endpoint devices (`dev_set_name(dev, "rpmsg%d", id)`);
    /// `rpmsg_ctrlN` is not.
    #[test]
    fn endpoint_device_names() {
        assert_eq!(ept_index("rpmsg0"), Some(0));
        assert_eq!(ept_index("rpmsg17"), Some(17));
        assert_eq!(ept_index("rpmsg_ctrl0"), None);
        assert_eq!(ept_index("rpmsg"), None);
    }

    /// Errors of read/write on /dev/rpmsgM: EPIPE (endpoint gone, rpmsg_eptdev_read_iter
    /// and _write_iter), ENETRESET (open after the remote went, 6.x) and ENODEV/ENXIO are
    /// the peer going away; ERESTARTSYS leaking after the 15 s send wait is a timeout.
    #[test]
    fn errno_mapping() {
        let m = |n| link_error(&io::Error::from_raw_os_error(n));
        assert_eq!(m(libc::EPIPE), Error::PeerGone);
        assert_eq!(m(libc::ENETRESET), Error::PeerGone);
        assert_eq!(m(libc::ENODEV), Error::PeerGone);
        assert_eq!(m(libc::ENXIO), Error::PeerGone);
        assert_eq!(m(libc::EAGAIN), Error::WouldBlock);
        assert_eq!(m(ERESTARTSYS), Error::Timeout);
        assert_eq!(m(libc::EFAULT), Error::Os(libc::EFAULT));
    }
}
