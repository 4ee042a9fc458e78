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
use intercore::rpmsg::{Channel, MessageIo, Transport};
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

mod data;
mod error;
mod os;
mod ready;
mod recover;
mod sysfs;

pub use error::RpmsgCharError;
use error::{errno, link_error};
use os::LinuxOs;
pub(crate) use os::RpmsgOs;
pub use ready::MAX_PARKED;
pub use sysfs::parse_addr;
use sysfs::*;

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
    /// Serving from one wait ([`KernelRpmsg::watch`]), once asked for.
    watch: Option<Box<ready::Watch>>,
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
            watch: None,
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

    /// The payload limit in use ([`DEFAULT_MAX_PAYLOAD`] unless set).
    pub fn max_payload(&self) -> usize {
        self.max_payload
    }

    /// The endpoint device node of an open channel (`/dev/rpmsgM`).
    pub fn endpoint_device(&self, ch: &Channel) -> Option<PathBuf> {
        self.eps.get(&ch.local).map(|e| self.paths.dev.join(&e.dev))
    }

    /// The descriptor of an open channel's endpoint device (non-blocking; readable while a
    /// message is queued, `POLLERR` once the kernel destroyed the endpoint): for event
    /// loops that wait on it themselves (an async runtime's reactor) and then call
    /// [`Self::recv_timeout`] with `Some(Duration::ZERO)`. The kernel never reports it
    /// writable (`virtio_rpmsg_bus` has no poll for transmit buffers).
    pub fn endpoint_fd(&self, ch: &Channel) -> Option<BorrowedFd<'_>> {
        self.eps.get(&ch.local)?.fd.as_ref().map(AsFd::as_fd)
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
        if let Some(w) = self.watch.as_mut() {
            w.add(fd.as_fd(), local);
        }
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
}

/// The base of [`Transport`]: what the data plane (`intercore::dataplane::DpHost`) runs
/// over. `/dev/rpmsgM` does not report a message's source, so
/// [`MessageIo::recv_from`] gives `None` for it.
impl MessageIo for KernelRpmsg {
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
