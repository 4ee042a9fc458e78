//! A fake of the kernel's rpmsg character devices for tests (feature `test-utils`): a
//! temporary directory laid out like `/sys` and `/dev`, and an implementation of the
//! transport's system calls that behaves the way `rpmsg_ctrl.c`, `rpmsg_char.c`,
//! `rpmsg_core.c` and `virtio_rpmsg_bus.c` do.
//!
//! * The tree: `sys/devices/platform/fake-remote/virtio0/` holds the bus's control
//!   channel `virtio0.rpmsg_ctrl.0.0/` with the control device
//!   `rpmsg/rpmsg_ctrl0/` (linked from `sys/class/rpmsg/rpmsg_ctrl0`), the name service
//!   channel `virtio0.rpmsg_ns.53.53/`, and one channel directory per announced service
//!   `virtio0.<name>.-1.<addr>/` with `name`, `src` (`0xffffffff`: no kernel driver
//!   bound), `dst` (`0x%x`) and `announce`; every channel is linked from
//!   `sys/bus/rpmsg/devices/`. A second virtio device (`virtio1`, another remote core) can
//!   carry channels too ([`FakeRpmsgKernel::announce_on_other_core`]).
//! * `RPMSG_CREATE_EPT_IOCTL` on the control device creates `rpmsgM` (lowest free `M`,
//!   like the kernel's IDA) as a child directory of the control device with `name`, `src`
//!   and `dst` printed with `%d`, links it from `sys/class/rpmsg/`, and makes the node
//!   `dev/rpmsgM` (a plain file). Nothing is checked against the remote, as in the kernel.
//! * Opening `dev/rpmsgM` is exclusive (`EBUSY`), binds the local address (the lowest free
//!   from 1024 for `src = -1`, else `src`, `EINVAL` if taken — `rpmsg_eptdev_open`'s
//!   "failed to open") and returns one end of a `SOCK_SEQPACKET` socket pair, which keeps
//!   message boundaries like the character device: one message per read or write, a
//!   short read truncates the message and drops the rest. The other end is served by a
//!   thread playing the remote service at `dst`: [`Behavior::Echo`] sends every message
//!   back, [`Behavior::Stalled`] never reads (so the transmit side fills up and
//!   `O_NONBLOCK` writes fail with `EAGAIN`, as `rpmsg_trysendto` does when every buffer
//!   is with the remote), [`Behavior::External`] hands the remote end to the test as a
//!   [`FakeRemoteEnd`] (a [`MessageIo`](intercore::rpmsg::MessageIo) for remote-side code such as `DpRemote`: see
//!   [`FakeRpmsgKernel::announce_external`]), and an address nobody announced swallows
//!   messages (the remote drops messages for unbound addresses).
//! * Writes longer than the MTU (496) fail with `EMSGSIZE`; `poll` never reports
//!   `POLLOUT` (`virtio_rpmsg_bus` has no poll operation); once the endpoint is destroyed
//!   read and write fail with `EPIPE` and poll reports `POLLERR`, as `rpmsg_char.c` does
//!   when `eptdev->ept` is gone.
//! * `close` destroys the endpoint (the address is free again) but leaves the device;
//!   `RPMSG_DESTROY_EPT_IOCTL` removes the device; [`FakeRpmsgKernel::stop_remote`]
//!   removes everything, as unregistering the virtio device does
//!   (`rpmsg_ctrldev_remove` destroys every endpoint device of the control device).
//! * [`FakeRpmsgKernel::restart_remote`] is remoteproc's recovery: the remote's rpmsg
//!   device registers again as a new virtio device (`virtio2`, `virtio3`, … — `virtio1`
//!   is the other core's) under the same remoteproc parent, with a control device of a new
//!   number (`rpmsg_ctrl1`, …); ioctls on a descriptor of the old control device fail
//!   with `ENODEV`.
//!
//! The socket pair holds fewer messages than the kernel's 256 transmit buffers (its send
//! buffer is set to 16 KiB), which only makes "ring full" quicker to reach.
//!
//! What the code under test does that the kernel would refuse or mishandle is recorded in
//! [`FakeRpmsgKernel::log`]: oversized writes (`EMSGSIZE`) and a destroy of an endpoint
//! device the kernel already destroyed (`BUG: …`).

use super::{KernelRpmsg, RpmsgCharError, RpmsgOs, RpmsgPaths, ppoll_one};
use crate::sys::fd::set_nonblock;
use crate::sys::socket::{self, recv, send, seqpacket_pair as socketpair, set_sndbuf};
use intercore::rpmsg::Channel;
use intercore::wire::rpmsg::{Name, RPMSG_ADDR_ANY};
use intercore::wire::uapi::RpmsgEndpointInfo;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex, MutexGuard};

mod remote_end;
pub use remote_end::FakeRemoteEnd;
use std::thread::JoinHandle;
use std::time::Duration;

/// What the fake remote does with messages sent to a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behavior {
    /// Sends every message back unchanged.
    Echo,
    /// Never reads: the host's transmit side fills up.
    Stalled,
    /// The remote end of each endpoint opened to the service goes to the test
    /// ([`FakeRpmsgKernel::announce_external`]), which plays the remote itself.
    External,
}

/// The payload limit the fake enforces (mainline's 512-byte buffers).
pub const FAKE_MTU: usize = 496;

struct Remote {
    stop: Arc<AtomicBool>,
    /// The remote end (or a duplicate of it, when a thread serves it).
    end: OwnedFd,
    thread: Option<JoinHandle<()>>,
}

impl Remote {
    fn shut(mut self) {
        self.stop.store(true, Ordering::Release);
        // Wakes the thread blocked in recv on it.
        socket::shutdown(self.end.as_fd());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Holder {
    Nobody,
    Us(RawFd),
    /// Opened by "another process" ([`FakeRpmsgKernel::steal_next_endpoint`]).
    Other,
}

struct Ept {
    name: String,
    src: u32,
    dst: u32,
    holder: Holder,
    destroyed: bool,
    /// The bound local address while open.
    addr: Option<u32>,
    remote: Option<Remote>,
}

struct State {
    root: PathBuf,
    running: bool,
    services: Vec<(String, u32, Behavior)>,
    epts: BTreeMap<u32, Ept>,
    fds: HashMap<RawFd, u32>,
    /// Open control devices and the generation (`N` of `rpmsg_ctrlN`) each belongs to.
    ctrl_fds: HashMap<RawFd, u32>,
    /// The current rpmsg device: `virtio<vdev_n>`, `rpmsg_ctrl<ctrl_n>`.
    vdev_n: u32,
    ctrl_n: u32,
    steal_next: bool,
    deny: bool,
    log: Vec<String>,
    /// Where the remote ends of [`Behavior::External`] services go, by service address.
    external: HashMap<u32, Sender<FakeRemoteEnd>>,
}

impl State {
    fn paths(&self) -> RpmsgPaths {
        RpmsgPaths::under(&self.root)
    }
    fn vdev(&self, n: u32) -> PathBuf {
        self.root
            .join(format!("sys/devices/platform/fake-remote/virtio{n}"))
    }
    fn ctrl_dir(&self) -> PathBuf {
        self.vdev(self.vdev_n).join(format!(
            "virtio{}.rpmsg_ctrl.0.0/rpmsg/rpmsg_ctrl{}",
            self.vdev_n, self.ctrl_n
        ))
    }
    fn ctrl_name(&self) -> String {
        format!("rpmsg_ctrl{}", self.ctrl_n)
    }
    /// `virtio_rpmsg_probe`: the bus's own channels and the control device.
    fn register_device(&self) {
        let p = self.paths();
        let v = self.vdev_n;
        // The bus's own devices: the control channel (src = dst = 0) and the name
        // service (53.53), as virtio_rpmsg_bus registers them.
        for (dev, name, addr) in [
            (format!("virtio{v}.rpmsg_ctrl.0.0"), "rpmsg_ctrl", 0u32),
            (format!("virtio{v}.rpmsg_ns.53.53"), "rpmsg_ns", 53),
        ] {
            let dir = self.vdev(v).join(&dev);
            write_attrs(
                &dir,
                &[
                    ("name", name.into()),
                    ("src", format!("{addr:#x}")),
                    ("dst", format!("{addr:#x}")),
                    ("announce", "false".into()),
                ],
            );
            symlink(&dir, &p.bus_dir().join(dev));
        }
        fs::create_dir_all(self.ctrl_dir()).expect("fake control device");
        symlink(&self.ctrl_dir(), &p.class_dir().join(self.ctrl_name()));
        fs::write(p.dev.join(self.ctrl_name()), b"").expect("fake /dev node");
    }
    /// Removes endpoint device `m` from sysfs and /dev (`cdev_device_del`).
    fn unlink_ept(&self, m: u32) {
        let p = self.paths();
        let _ = fs::remove_dir_all(self.ctrl_dir().join(format!("rpmsg{m}")));
        let _ = fs::remove_file(p.class_dir().join(format!("rpmsg{m}")));
        let _ = fs::remove_file(p.dev.join(format!("rpmsg{m}")));
    }
    /// `rpmsg_chrdev_eptdev_destroy`.
    fn destroy(&mut self, m: u32) {
        self.unlink_ept(m);
        let e = self.epts.get_mut(&m).expect("endpoint device");
        e.destroyed = true;
        e.addr = None;
        if let Some(r) = e.remote.take() {
            r.shut();
        }
        // The IDA number is freed when the last reference (an open file) goes.
        if e.holder == Holder::Nobody {
            self.epts.remove(&m);
        }
    }
}

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn write_attrs(dir: &Path, attrs: &[(&str, String)]) {
    fs::create_dir_all(dir).expect("fake sysfs directory");
    for (a, v) in attrs {
        fs::write(dir.join(a), format!("{v}\n")).expect("fake sysfs attribute");
    }
}

fn symlink(target: &Path, link: &Path) {
    let _ = fs::remove_file(link);
    std::os::unix::fs::symlink(target, link).expect("fake sysfs link");
}

static SEQ: AtomicU64 = AtomicU64::new(0);

/// The fake tree and the kernel model. Dropping it stops the remote threads and removes
/// the tree; transports made from it keep working on their descriptors, and report the
/// remote as gone.
pub struct FakeRpmsgKernel {
    root: PathBuf,
    state: Arc<Mutex<State>>,
}

impl Default for FakeRpmsgKernel {
    fn default() -> Self {
        Self::new()
    }
}

impl FakeRpmsgKernel {
    /// A running remote with its rpmsg device `virtio0`, control device `rpmsg_ctrl0` and
    /// no services yet.
    pub fn new() -> Self {
        let root = std::env::temp_dir().join(format!(
            "intercore-fake-rpmsg-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&root);
        let st = State {
            root: root.clone(),
            running: true,
            services: Vec::new(),
            epts: BTreeMap::new(),
            fds: HashMap::new(),
            ctrl_fds: HashMap::new(),
            vdev_n: 0,
            ctrl_n: 0,
            steal_next: false,
            deny: false,
            log: Vec::new(),
            external: HashMap::new(),
        };
        let p = st.paths();
        for d in [p.dev.clone(), p.class_dir(), p.bus_dir(), st.vdev(1)] {
            fs::create_dir_all(&d).expect("fake tree");
        }
        st.register_device();
        Self {
            root,
            state: Arc::new(Mutex::new(st)),
        }
    }

    /// The tree's root.
    pub fn root(&self) -> &Path {
        &self.root
    }
    /// The roots and control device of the fake tree.
    pub fn paths(&self) -> RpmsgPaths {
        RpmsgPaths::under(&self.root)
    }
    /// A [`KernelRpmsg`] on the fake kernel's control device.
    pub fn transport(&self) -> Result<KernelRpmsg, RpmsgCharError> {
        self.transport_with(&self.paths())
    }
    /// A [`KernelRpmsg`] on the fake kernel with other paths (a missing control device).
    pub fn transport_with(&self, paths: &RpmsgPaths) -> Result<KernelRpmsg, RpmsgCharError> {
        KernelRpmsg::with_os(
            paths,
            Box::new(FakeOs {
                state: Arc::clone(&self.state),
            }),
        )
    }

    fn add_channel(&self, vdev: u32, name: &str, addr: u32) {
        let st = lock(&self.state);
        let dev = format!("virtio{vdev}.{name}.-1.{addr}");
        let dir = st.vdev(vdev).join(&dev);
        write_attrs(
            &dir,
            &[
                ("name", name.into()),
                ("src", format!("{RPMSG_ADDR_ANY:#x}")),
                ("dst", format!("{addr:#x}")),
                ("announce", "false".into()),
            ],
        );
        symlink(&dir, &st.paths().bus_dir().join(dev));
    }

    /// The remote announces service `name` at `addr` (`rpmsg_ns_cb` → a channel device).
    pub fn announce(&self, name: &str, addr: u32, behavior: Behavior) {
        let v = {
            let mut st = lock(&self.state);
            st.services.push((name.into(), addr, behavior));
            st.vdev_n
        };
        self.add_channel(v, name, addr);
    }

    /// The remote announces service `name` at `addr` and lets the test play it: every
    /// endpoint the host opens to `addr` delivers its remote end, a [`FakeRemoteEnd`], on
    /// the returned receiver (at `open(2)` of `/dev/rpmsgM`, when the kernel binds the
    /// endpoint). The end carries what the remote's rpmsg stack would: messages of at most
    /// [`FAKE_MTU`] bytes each way, and `PeerGone` once the endpoint is destroyed.
    pub fn announce_external(&self, name: &str, addr: u32) -> Receiver<FakeRemoteEnd> {
        let (tx, rx) = channel();
        lock(&self.state).external.insert(addr, tx);
        self.announce(name, addr, Behavior::External);
        rx
    }

    /// Another remote core (`virtio1`, with no control device here) announces `name`.
    pub fn announce_on_other_core(&self, name: &str, addr: u32) {
        self.add_channel(1, name, addr);
    }

    /// The remote withdraws service `name` (name-service destroy message).
    pub fn withdraw(&self, name: &str) {
        let mut st = lock(&self.state);
        st.services.retain(|(n, _, _)| n != name);
        let p = st.paths();
        let prefix = format!("virtio{}.", st.vdev_n);
        if let Ok(it) = fs::read_dir(p.bus_dir()) {
            for e in it.filter_map(|e| e.ok()) {
                let f = e.file_name().to_string_lossy().into_owned();
                if f.starts_with(&prefix) && f.split('.').nth(1) == Some(name) {
                    let _ = fs::remove_dir_all(st.vdev(st.vdev_n).join(&f));
                    let _ = fs::remove_file(e.path());
                }
            }
        }
    }

    /// The remote processor stops: the virtio device is unregistered, which removes every
    /// channel, destroys every endpoint device (open ones report `EPIPE` / `POLLERR`) and
    /// removes the control device.
    pub fn stop_remote(&self) {
        let mut st = lock(&self.state);
        st.running = false;
        let live: Vec<u32> = st
            .epts
            .iter()
            .filter(|(_, e)| !e.destroyed)
            .map(|(&m, _)| m)
            .collect();
        for m in live {
            st.destroy(m);
        }
        st.services.clear();
        let p = st.paths();
        let _ = fs::remove_dir_all(st.vdev(st.vdev_n));
        let _ = fs::remove_file(p.class_dir().join(st.ctrl_name()));
        let _ = fs::remove_file(p.dev.join(st.ctrl_name()));
        let prefix = format!("virtio{}.", st.vdev_n);
        if let Ok(it) = fs::read_dir(p.bus_dir()) {
            for e in it.filter_map(|e| e.ok()) {
                if e.file_name().to_string_lossy().starts_with(&prefix) {
                    let _ = fs::remove_file(e.path());
                }
            }
        }
        st.log
            .push("remote stopped: every endpoint device destroyed".into());
    }

    /// remoteproc's recovery: the remote stops (if it still runs, as [`Self::stop_remote`])
    /// and its rpmsg device registers again as a new virtio device with a control device
    /// of a new number; services must be announced again ([`Self::announce`]). Returns the
    /// new control device's name.
    pub fn restart_remote(&self) -> String {
        if lock(&self.state).running {
            self.stop_remote();
        }
        let mut st = lock(&self.state);
        st.vdev_n = if st.vdev_n == 0 { 2 } else { st.vdev_n + 1 };
        st.ctrl_n += 1;
        st.running = true;
        st.register_device();
        let line = format!(
            "remote restarted: virtio{} with {}",
            st.vdev_n,
            st.ctrl_name()
        );
        st.log.push(line);
        st.ctrl_name()
    }

    /// The next endpoint device created is opened at once by "another process", as in a
    /// race between two processes creating the same endpoint.
    pub fn steal_next_endpoint(&self) {
        lock(&self.state).steal_next = true;
    }

    /// Every open of a node fails with `EACCES` (nodes owned by root, no udev rule).
    pub fn deny_access(&self, deny: bool) {
        lock(&self.state).deny = deny;
    }

    /// The endpoint devices that exist: `(M, name, requested src, dst, open)`.
    pub fn endpoint_devices(&self) -> Vec<(u32, String, u32, u32, bool)> {
        lock(&self.state)
            .epts
            .iter()
            .filter(|(_, e)| !e.destroyed)
            .map(|(&m, e)| (m, e.name.clone(), e.src, e.dst, e.holder != Holder::Nobody))
            .collect()
    }

    /// The local address the kernel bound for open endpoint device `rpmsgM` (what
    /// userspace cannot read on a real kernel).
    pub fn bound_address(&self, m: u32) -> Option<u32> {
        lock(&self.state).epts.get(&m).and_then(|e| e.addr)
    }

    /// Everything the fake kernel did, oldest first.
    pub fn log(&self) -> Vec<String> {
        lock(&self.state).log.clone()
    }

    /// The log entries for calls the kernel refuses or mishandles.
    pub fn refusals(&self) -> Vec<String> {
        self.log()
            .into_iter()
            .filter(|l| l.contains("EMSGSIZE") || l.starts_with("BUG"))
            .collect()
    }
}

impl Drop for FakeRpmsgKernel {
    fn drop(&mut self) {
        let mut st = lock(&self.state);
        let live: Vec<u32> = st
            .epts
            .iter()
            .filter(|(_, e)| !e.destroyed)
            .map(|(&m, _)| m)
            .collect();
        for m in live {
            st.destroy(m);
        }
        st.running = false;
        let _ = fs::remove_dir_all(&self.root);
    }
}

/// The fake's system calls.
struct FakeOs {
    state: Arc<Mutex<State>>,
}

fn err(n: i32) -> io::Error {
    io::Error::from_raw_os_error(n)
}

/// The remote side of one endpoint.
fn serve(behavior: Option<Behavior>, end: OwnedFd) -> io::Result<Remote> {
    let stop = Arc::new(AtomicBool::new(false));
    if behavior == Some(Behavior::Stalled) {
        return Ok(Remote {
            stop,
            end,
            thread: None,
        });
    }
    let ctl = end.try_clone()?;
    let echo = behavior == Some(Behavior::Echo);
    let flag = Arc::clone(&stop);
    let thread = std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match recv(end.as_fd(), &mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return,
            };
            // A zero-length read is an empty message unless we were told to stop.
            if flag.load(Ordering::Acquire) {
                return;
            }
            if echo && send(end.as_fd(), &buf[..n]).is_err() {
                return;
            }
        }
    });
    Ok(Remote {
        stop,
        end: ctl,
        thread: Some(thread),
    })
}

impl FakeOs {
    /// The endpoint device open on `fd`, and whether the kernel destroyed it.
    fn ept_of(&self, fd: BorrowedFd<'_>) -> io::Result<bool> {
        let st = lock(&self.state);
        let m = *st
            .fds
            .get(&fd.as_raw_fd())
            .ok_or_else(|| err(libc::EBADF))?;
        Ok(st.epts.get(&m).is_none_or(|e| e.destroyed))
    }
}

impl RpmsgOs for FakeOs {
    fn open(&self, path: &Path, nonblock: bool) -> io::Result<OwnedFd> {
        let mut st = lock(&self.state);
        let p = st.paths();
        if !path.exists() {
            return Err(err(libc::ENOENT));
        }
        if st.deny {
            return Err(err(libc::EACCES));
        }
        if path == p.dev.join(st.ctrl_name()) {
            if !st.running {
                return Err(err(libc::ENODEV));
            }
            let fd: OwnedFd = fs::File::open(path)?.into();
            let n = st.ctrl_n;
            st.ctrl_fds.insert(fd.as_raw_fd(), n);
            return Ok(fd);
        }
        let m = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(super::ept_index)
            .filter(|_| path.parent() == Some(p.dev.as_path()))
            .ok_or_else(|| err(libc::ENXIO))?;
        let used: HashSet<u32> = st.epts.values().filter_map(|e| e.addr).collect();
        let behaviors = st.services.clone();
        let behaviors_external = st.external.clone();
        let e = st
            .epts
            .get_mut(&m)
            .filter(|e| !e.destroyed)
            .ok_or_else(|| err(libc::ENOENT))?;
        if e.holder != Holder::Nobody {
            return Err(err(libc::EBUSY));
        }
        // rpmsg_create_ept → idr_alloc: the fixed address, or the lowest free from 1024.
        let addr = if e.src == RPMSG_ADDR_ANY {
            (1024..).find(|a| !used.contains(a)).expect("free address")
        } else if used.contains(&e.src) {
            let line = format!("open rpmsg{m}: src {} taken -> EINVAL", e.src);
            st.log.push(line);
            return Err(err(libc::EINVAL));
        } else {
            e.src
        };
        let (ours, theirs) = socketpair()?;
        set_sndbuf(ours.as_fd(), 16 * 1024);
        if nonblock {
            set_nonblock(ours.as_fd())?;
        }
        let behavior = behaviors
            .iter()
            .find(|(_, a, _)| *a == e.dst)
            .map(|&(_, _, b)| b);
        e.remote = Some(if behavior == Some(Behavior::External) {
            let ctl = theirs.try_clone()?;
            set_nonblock(theirs.as_fd())?;
            let end = FakeRemoteEnd {
                fd: theirs,
                ch: Channel {
                    local: e.dst,
                    remote: addr,
                },
                scratch: vec![0; 64 * 1024],
            };
            // A test that dropped its receiver gets an endpoint nobody serves.
            if let Some(tx) = behaviors_external.get(&e.dst) {
                let _ = tx.send(end);
            }
            Remote {
                stop: Arc::new(AtomicBool::new(false)),
                end: ctl,
                thread: None,
            }
        } else {
            serve(behavior, theirs)?
        });
        e.addr = Some(addr);
        e.holder = Holder::Us(ours.as_raw_fd());
        let line = format!("open rpmsg{m}: bound {addr} -> {}", e.dst);
        st.fds.insert(ours.as_raw_fd(), m);
        st.log.push(line);
        Ok(ours)
    }

    fn create_ept(&self, ctrl: BorrowedFd<'_>, info: &RpmsgEndpointInfo) -> io::Result<()> {
        let mut st = lock(&self.state);
        let Some(&n) = st.ctrl_fds.get(&ctrl.as_raw_fd()) else {
            return Err(err(libc::ENOTTY));
        };
        if !st.running || n != st.ctrl_n {
            return Err(err(libc::ENODEV));
        }
        // rpmsg_ctrldev_ioctl forces the last name byte to NUL.
        let name = Name::from_field(&info.name);
        let name = String::from_utf8_lossy(name.as_bytes()).into_owned();
        let (src, dst) = (info.src.get(), info.dst.get());
        let m = (0..).find(|m| !st.epts.contains_key(m)).expect("free id");
        let dir = st.ctrl_dir().join(format!("rpmsg{m}"));
        write_attrs(
            &dir,
            &[
                ("name", name.clone()),
                ("src", (src as i32).to_string()),
                ("dst", (dst as i32).to_string()),
            ],
        );
        let p = st.paths();
        symlink(&dir, &p.class_dir().join(format!("rpmsg{m}")));
        fs::write(p.dev.join(format!("rpmsg{m}")), b"")?;
        let holder = if std::mem::take(&mut st.steal_next) {
            Holder::Other
        } else {
            Holder::Nobody
        };
        st.epts.insert(
            m,
            Ept {
                name: name.clone(),
                src,
                dst,
                holder,
                destroyed: false,
                addr: None,
                remote: None,
            },
        );
        st.log.push(format!(
            "create rpmsg{m}: {name:?} src {} dst {}",
            src as i32, dst as i32
        ));
        Ok(())
    }

    fn destroy_ept(&self, ep: BorrowedFd<'_>) -> io::Result<()> {
        let mut st = lock(&self.state);
        let m = *st
            .fds
            .get(&ep.as_raw_fd())
            .ok_or_else(|| err(libc::EINVAL))?;
        if st.epts.get(&m).is_none_or(|e| e.destroyed) {
            st.log.push(format!(
                "BUG: RPMSG_DESTROY_EPT_IOCTL on rpmsg{m}, which the kernel already destroyed \
                 (rpmsg_chrdev_eptdev_destroy would run twice)"
            ));
            return Ok(());
        }
        st.destroy(m);
        st.log.push(format!("destroy rpmsg{m}"));
        Ok(())
    }

    fn read(&self, ep: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
        if self.ept_of(ep)? {
            return Err(err(libc::EPIPE));
        }
        recv(ep, buf)
    }

    fn write(&self, ep: BorrowedFd<'_>, buf: &[u8]) -> io::Result<usize> {
        if self.ept_of(ep)? {
            return Err(err(libc::EPIPE));
        }
        if buf.len() > FAKE_MTU {
            lock(&self.state)
                .log
                .push(format!("write of {} bytes -> EMSGSIZE", buf.len()));
            return Err(err(libc::EMSGSIZE));
        }
        match send(ep, buf) {
            // The remote end was shut: the endpoint is being destroyed.
            Err(e) if e.raw_os_error() == Some(libc::ECONNRESET) => Err(err(libc::EPIPE)),
            r => r,
        }
    }

    fn poll(
        &self,
        fd: BorrowedFd<'_>,
        events: libc::c_short,
        timeout: Option<Duration>,
    ) -> io::Result<libc::c_short> {
        if self.ept_of(fd)? {
            return Ok(libc::POLLERR);
        }
        // No POLLOUT: virtio_rpmsg_bus has no poll operation, so rpmsg_poll adds nothing.
        let r = ppoll_one(fd, events & !libc::POLLOUT, timeout)?;
        if r & (libc::POLLHUP | libc::POLLERR) != 0 && self.ept_of(fd)? {
            return Ok(libc::POLLERR);
        }
        Ok(r & (libc::POLLIN | libc::POLLERR))
    }

    fn close(&self, fd: OwnedFd) {
        let mut st = lock(&self.state);
        let raw = fd.as_raw_fd();
        st.ctrl_fds.remove(&raw);
        if let Some(m) = st.fds.remove(&raw) {
            // rpmsg_eptdev_release: the endpoint goes, the device stays.
            if let Some(e) = st.epts.get_mut(&m) {
                e.holder = Holder::Nobody;
                e.addr = None;
                if let Some(r) = e.remote.take() {
                    r.shut();
                }
                if e.destroyed {
                    st.epts.remove(&m);
                }
            }
            st.log.push(format!("close rpmsg{m}"));
        }
        drop(fd);
    }
}
