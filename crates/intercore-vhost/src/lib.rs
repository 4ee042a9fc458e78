//! Serves intercore's remote role as a vhost-user virtio-rpmsg device (virtio id 7, two
//! queues, `VIRTIO_RPMSG_F_NS`), so a virtual machine's own `virtio_rpmsg_bus` driver talks
//! to firmware written against the `no_std` [`RemoteBus`] API.
//!
//! The front end (user-mode Linux's `virtio_uml`, or QEMU) shares the guest's RAM as file
//! descriptors and tells the device where each ring is; [`mem::GuestMemory`] maps the RAM
//! in one piece with a private control page after it (vhost-user keeps the virtio status
//! in the front end, so the device keeps its own `DRIVER_OK`), and the firmware runs on a
//! [`RemoteBus::new`] with a `DevicePlacement` whose buffer window is the guest's RAM: every address the
//! guest puts in a descriptor is translated and bounds-checked by the bus.
//!
//! The protocol handling is this crate's own rather than rust-vmm's `vhost` crate: that
//! crate's `SET_MEM_TABLE` check (payload exactly `8 + 32 × num` bytes) rejects user-mode
//! Linux, whose message always carries room for two regions (72 bytes with one region),
//! and the rejection closes the connection, so the guest's probe fails with `-EIO`.
//!
//! No `unsafe` here: the system calls (descriptor reads and writes, polling, messages with
//! descriptors attached) are `intercore-linux`'s safe [`sys`]
//! functions, and the guest memory mapping is its `GuestMemory`.
#![deny(unsafe_code)]

pub mod mem;
pub mod proto;

use intercore::dataplane::{Coherent, DpRemote};
use intercore::rpmsg::{DeviceControl, DevicePlacement, RemoteBus, RemoteConfig};
use intercore::virtq::VringLayout;
use intercore::{DevAddr, Doorbell, LinearMap, WaitMode};
use intercore_linux::sys;
pub use mem::GuestRam;
use mem::{GuestMemory, Region};
use proto::{FLAG_NEED_REPLY, Msg, req};
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::Ordering::{Relaxed, Release};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// virtio feature bits offered: `VIRTIO_RPMSG_F_NS` (0), `EVENT_IDX` (29), `VERSION_1` (32).
pub const DEVICE_FEATURES: u64 = 1 | 1 << 29 | 1 << 32;
/// `VHOST_USER_F_PROTOCOL_FEATURES`.
pub const F_PROTOCOL_FEATURES: u64 = 1 << 30;
/// Protocol features offered: `REPLY_ACK` (3) and `BACKEND_REQ` (5). The device never sends
/// a back-end request, but user-mode Linux 6.1 allocates its interrupt for the device's
/// rings only while setting up that channel: without it the rings get IRQ 0, which clashes
/// with the timer, and `virtio_rpmsg_bus`'s probe fails with `-EBUSY`.
pub const PROTOCOL_FEATURES: u64 = 1 << 3 | 1 << 5;
/// Largest queue accepted.
pub const MAX_QUEUE: u32 = 1024;

/// The firmware a device runs: an [`intercore::firmware::Firmware`] over the guest's
/// memory, the device's doorbell, [`Coherent`] cache operations (x86-64 hosts and guests
/// are cache-coherent) and the guest's RAM as the data plane's windows ([`GuestRam`]: a
/// job's device address is a guest physical address, translated and bounds-checked
/// against the RAM the front end shared, as a DMA-capable device without an IOMMU sees
/// it; the guest finds its buffers' physical addresses itself, `intercore kernel-bulk`:
/// `/proc/self/pagemap`). The device ships none: whoever ships firmwares passes one to
/// [`Device::new`] (the `intercore` command: `firmware/echo`'s echo and sink,
/// `firmware/offload`).
pub type DeviceFirmware = dyn intercore::firmware::Firmware<
        Arc<GuestMemory>,
        VhostBell,
        8,
        Coherent<Arc<GuestMemory>>,
        GuestRam,
    > + Send
    + Sync;

/// What one firmware run did.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// Messages echoed (or counted by the sink).
    pub messages: u64,
    /// How the firmware stopped: `Ok` when the guest went away.
    pub result: Result<(), String>,
    /// The data plane's counters, for a firmware that serves one (`Offload`).
    pub data_plane: Option<intercore::dataplane::DpRemoteStats>,
}

/// The doorbell of a vhost-user device: the guest kicks through one eventfd per ring (we
/// wait on both), we interrupt it through one call descriptor per ring (eventfd under QEMU,
/// a pipe under user-mode Linux; we signal both, and the guest ignores an interrupt for a
/// ring with nothing new). A stop eventfd makes the guest's disappearance `PeerGone`.
#[derive(Debug)]
pub struct VhostBell {
    kicks: [Arc<OwnedFd>; 2],
    calls: [Arc<OwnedFd>; 2],
    stop: Arc<OwnedFd>,
    epoch: Instant,
}

fn write_u64(fd: &OwnedFd) -> io::Result<()> {
    match sys::write(fd.as_fd(), &1u64.to_ne_bytes()) {
        Ok(8) => Ok(()),
        Ok(n) => Err(io::Error::new(
            io::ErrorKind::WriteZero,
            format!("short write of an 8-byte counter: {n} bytes"),
        )),
        // A full pipe or a saturated eventfd still means "interrupt pending".
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
        Err(e) => Err(e),
    }
}

fn drain(fd: &OwnedFd) {
    let mut b = [0u8; 64];
    while sys::read(fd.as_fd(), &mut b).is_ok_and(|n| n > 0) {}
}

/// Polls `fds` for input; the readiness of each, or all false on timeout.
fn poll_in(fds: &[&OwnedFd], timeout: Option<Duration>) -> io::Result<Vec<bool>> {
    let fds: Vec<_> = fds.iter().map(|f| f.as_fd()).collect();
    sys::poll_readable_any(&fds, timeout)
}

impl VhostBell {
    /// A doorbell over a device's descriptors: `kicks`, the guest's notifications per queue
    /// (`SET_VRING_KICK`, non-blocking); `calls`, ours to the guest per queue
    /// (`SET_VRING_CALL`); and `stop`, which, once readable, means the guest is gone.
    pub fn new(kicks: [Arc<OwnedFd>; 2], calls: [Arc<OwnedFd>; 2], stop: Arc<OwnedFd>) -> Self {
        Self {
            kicks,
            calls,
            stop,
            epoch: Instant::now(),
        }
    }
}

impl Doorbell for VhostBell {
    /// Each vring has its own call eventfd (vhost-user `SET_VRING_CALL`), so the notify id
    /// (the queue index, see `placement`) selects the one to signal.
    const CARRIES_NOTIFY_ID: bool = true;
    fn ring(&self, notify_id: u32) -> intercore::Result<()> {
        let call = self
            .calls
            .get(notify_id as usize)
            .ok_or(intercore::Error::Config(
                "vhost-user notify id is not a queue index",
            ))?;
        write_u64(call).map_err(|_| intercore::Error::PeerGone)
    }
    fn wait(&self, timeout: Option<Duration>) -> intercore::Result<bool> {
        let r = poll_in(&[&self.stop, &self.kicks[0], &self.kicks[1]], timeout)
            .map_err(|_| intercore::Error::PeerGone)?;
        if r[0] {
            return Err(intercore::Error::PeerGone);
        }
        for k in &self.kicks {
            drain(k);
        }
        Ok(r[1] || r[2])
    }
    fn now(&self) -> Duration {
        self.epoch.elapsed()
    }
    fn check_peer(&self) -> intercore::Result<()> {
        match poll_in(&[&self.stop], Some(Duration::ZERO)) {
            Ok(r) if r[0] => Err(intercore::Error::PeerGone),
            _ => Ok(()),
        }
    }
}

#[derive(Debug, Default)]
struct Vring {
    num: u32,
    /// desc, used, avail: front-end virtual addresses.
    addr: Option<(u64, u64, u64)>,
    kick: Option<Arc<OwnedFd>>,
    call: Option<Arc<OwnedFd>>,
}

/// Finds the placement of a ring given its three parts' guest addresses: the legacy
/// contiguous layout (avail right after the descriptors, used at the next multiple of some
/// power-of-two alignment), which Linux's `vring_create_virtqueue` produces.
pub fn ring_layout(num: u32, desc: u64, used: u64, avail: u64) -> Result<VringLayout, String> {
    if avail != desc.wrapping_add(16 * num as u64) {
        return Err(format!(
            "avail ring at {avail:#x} does not follow the descriptors at {desc:#x}: only the contiguous vring layout is supported"
        ));
    }
    for shift in 1..=16 {
        let l = VringLayout::new(num, 1 << shift).map_err(|e| e.to_string())?;
        if desc.wrapping_add(l.used_flags() as u64) == used {
            return Ok(l);
        }
    }
    Err(format!(
        "used ring at {used:#x} is not at a power-of-two alignment after the avail ring at {avail:#x}"
    ))
}

/// One vhost-user connection: the device state and, once the guest has set up both rings,
/// the firmware thread.
pub struct Device {
    firmware: Arc<DeviceFirmware>,
    features: u64,
    protocol: u64,
    mem: Option<Arc<GuestMemory>>,
    vrings: [Vring; 2],
    stop: Option<Arc<OwnedFd>>,
    backend_req: Option<OwnedFd>,
    thread: Option<JoinHandle<RunReport>>,
    /// Reports of finished firmware runs.
    pub reports: Vec<RunReport>,
    /// Log of the requests seen (code names), for diagnostics.
    pub verbose: bool,
}

fn invalid(what: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.into())
}

impl Device {
    /// A device that will run `firmware`.
    pub fn new(firmware: Arc<DeviceFirmware>) -> Self {
        Self {
            firmware,
            features: 0,
            protocol: 0,
            mem: None,
            vrings: Default::default(),
            stop: None,
            backend_req: None,
            thread: None,
            reports: Vec::new(),
            verbose: false,
        }
    }

    /// Serves one front end until it disconnects.
    pub fn serve(&mut self, mut sock: UnixStream) -> io::Result<()> {
        let r = loop {
            let msg = match proto::recv(&mut sock) {
                Ok(Some(m)) => m,
                Ok(None) => break Ok(()),
                Err(e) => break Err(e),
            };
            let code = msg.request;
            let want_ack = msg.flags & FLAG_NEED_REPLY != 0;
            if self.verbose {
                log::info!(
                    "request {code} flags {:#x} size {} fds {}",
                    msg.flags,
                    msg.payload.len(),
                    msg.fds.len()
                );
            }
            let handled = self.handle(msg);
            // After handling: SET_PROTOCOL_FEATURES negotiating REPLY_ACK already asks for
            // its own acknowledgement (user-mode Linux does this), as rust-vmm's `vhost`
            // crate also decides.
            let need_ack = want_ack && self.protocol & (1 << 3) != 0;
            match handled {
                Ok(Some(reply)) => proto::reply(&mut sock, code, &reply)?,
                Ok(None) if need_ack => proto::reply(&mut sock, code, &0u64.to_le_bytes())?,
                Ok(None) => {}
                Err(e) => {
                    log::warn!("request {code} refused: {e}");
                    if need_ack {
                        proto::reply(&mut sock, code, &1u64.to_le_bytes())?;
                    } else if matches!(
                        code,
                        req::GET_FEATURES
                            | req::GET_PROTOCOL_FEATURES
                            | req::GET_QUEUE_NUM
                            | req::GET_VRING_BASE
                    ) {
                        break Err(e);
                    }
                }
            }
        };
        self.stop_firmware();
        r
    }

    /// Handles one request; `Some(payload)` for requests that have a reply.
    pub fn handle(&mut self, m: Msg) -> io::Result<Option<Vec<u8>>> {
        let u64_reply = |v: u64| Ok(Some(v.to_le_bytes().to_vec()));
        match m.request {
            req::GET_FEATURES => u64_reply(DEVICE_FEATURES | F_PROTOCOL_FEATURES),
            req::SET_FEATURES => {
                let f = m.u64_at(0)?;
                if f & !(DEVICE_FEATURES | F_PROTOCOL_FEATURES) != 0 {
                    return Err(invalid(format!("features {f:#x} not offered")));
                }
                self.features = f;
                Ok(None)
            }
            req::GET_PROTOCOL_FEATURES => u64_reply(PROTOCOL_FEATURES),
            req::SET_PROTOCOL_FEATURES => {
                self.protocol = m.u64_at(0)? & PROTOCOL_FEATURES;
                Ok(None)
            }
            req::SET_OWNER => Ok(None),
            req::RESET_OWNER | req::RESET_DEVICE => {
                self.stop_firmware();
                self.vrings = Default::default();
                Ok(None)
            }
            req::GET_QUEUE_NUM => u64_reply(2),
            req::SET_MEM_TABLE => {
                self.stop_firmware();
                let num = m.u32_at(0)? as usize;
                // User-mode Linux always sends room for two regions: accept a payload
                // longer than `num` regions, never a shorter one.
                if num == 0 || num > proto::MAX_FDS || m.payload.len() < 8 + 32 * num {
                    return Err(invalid("SET_MEM_TABLE: bad region count or payload size"));
                }
                if m.fds.len() != num {
                    return Err(invalid(
                        "SET_MEM_TABLE: file descriptor count differs from regions",
                    ));
                }
                let mut regions = Vec::new();
                for (i, fd) in m.fds.into_iter().enumerate() {
                    let at = 8 + 32 * i;
                    let field = |k: usize| {
                        let b = &m.payload[at + 8 * k..at + 8 * k + 8];
                        u64::from_le_bytes(b.try_into().expect("8 bytes"))
                    };
                    regions.push(Region {
                        guest_addr: field(0),
                        size: field(1),
                        user_addr: field(2),
                        mmap_offset: field(3),
                        fd,
                    });
                }
                self.mem = Some(Arc::new(GuestMemory::map(regions)?));
                Ok(None)
            }
            req::SET_VRING_NUM => {
                let (i, num) = (self.index(&m)?, m.u32_at(4)?);
                if num == 0 || !num.is_power_of_two() || num > MAX_QUEUE {
                    return Err(invalid(format!("queue size {num}")));
                }
                self.vrings[i].num = num;
                Ok(None)
            }
            req::SET_VRING_ADDR => {
                let i = self.index(&m)?;
                self.vrings[i].addr = Some((m.u64_at(8)?, m.u64_at(16)?, m.u64_at(24)?));
                Ok(None)
            }
            req::SET_VRING_BASE => {
                self.index(&m)?;
                if m.u32_at(4)? != 0 {
                    return Err(invalid("SET_VRING_BASE: only a fresh ring (base 0)"));
                }
                Ok(None)
            }
            req::GET_VRING_BASE => {
                // The front end stops the ring: the guest is resetting or going away. The
                // firmware returns every chain it takes at once, so the used index is where
                // the ring would resume.
                let i = self.index(&m)?;
                let next = self.used_idx(i);
                self.stop_firmware();
                let mut out = (i as u32).to_le_bytes().to_vec();
                out.extend_from_slice(&u32::from(next).to_le_bytes());
                Ok(Some(out))
            }
            req::SET_VRING_KICK | req::SET_VRING_CALL => {
                let v = m.u64_at(0)?;
                let i = (v & 0xff) as usize;
                if i >= 2 {
                    return Err(invalid(format!("ring index {i}")));
                }
                if v & 0x100 != 0 {
                    return Err(invalid(
                        "polling mode (no file descriptor) is not supported",
                    ));
                }
                let fd = m
                    .fds
                    .into_iter()
                    .next()
                    .ok_or_else(|| invalid("kick/call without a file descriptor"))?;
                sys::set_nonblock(fd.as_fd())?;
                let fd = Some(Arc::new(fd));
                if m.request == req::SET_VRING_KICK {
                    self.vrings[i].kick = fd;
                    self.maybe_start()?;
                } else {
                    self.vrings[i].call = fd;
                }
                Ok(None)
            }
            req::SET_VRING_ERR => Ok(None),
            req::SET_BACKEND_REQ_FD => {
                // Kept open (closing it would look like a dead back end) but never used.
                self.backend_req = m.fds.into_iter().next();
                Ok(None)
            }
            req::SET_VRING_ENABLE => {
                self.index(&m)?;
                Ok(None)
            }
            other => Err(invalid(format!("request {other} not supported"))),
        }
    }

    fn index(&self, m: &Msg) -> io::Result<usize> {
        let i = m.u32_at(0)? as usize;
        if i >= 2 {
            return Err(invalid(format!("ring index {i}")));
        }
        Ok(i)
    }

    fn used_idx(&self, i: usize) -> u16 {
        let Some(mem) = &self.mem else { return 0 };
        let Ok(p) = self.placement(mem) else { return 0 };
        let (base, l) = p.rings[i];
        intercore::SharedMemory::load_u16(&**mem, base + l.used_idx(), Relaxed)
    }

    /// The placement of both rings in guest memory, checked.
    fn placement(&self, mem: &GuestMemory) -> io::Result<DevicePlacement> {
        let mut rings = [(0usize, VringLayout::new(1, 16).expect("valid")); 2];
        for (i, v) in self.vrings.iter().enumerate() {
            let (desc, used, avail) = v.addr.ok_or_else(|| invalid("ring address not set"))?;
            let t = |ua: u64| {
                mem.user_to_guest(ua, 1)
                    .ok_or_else(|| invalid(format!("ring address {ua:#x} outside guest memory")))
            };
            let (d, u, a) = (t(desc)?, t(used)?, t(avail)?);
            let layout = ring_layout(v.num, d, u, a).map_err(invalid)?;
            let base = intercore::DeviceAddressMap::to_offset(mem, DevAddr(d), layout.size())
                .ok_or_else(|| invalid("ring outside guest memory"))?;
            rings[i] = (base, layout);
        }
        Ok(DevicePlacement {
            control: DeviceControl::StatusWords {
                status_off: mem.status_off(),
                gfeatures_off: mem.gfeatures_off(),
                dfeatures: DEVICE_FEATURES as u32,
            },
            rings,
            notify_ids: [0, 1],
            buffers: LinearMap {
                base: DevAddr(mem.base()),
                offset: 0,
                len: mem.span(),
            },
        })
    }

    /// Starts the firmware once memory, both rings and all descriptors are set.
    fn maybe_start(&mut self) -> io::Result<()> {
        if self.thread.is_some() {
            return Ok(());
        }
        let Some(mem) = self.mem.clone() else {
            return Ok(());
        };
        let ready = self
            .vrings
            .iter()
            .all(|v| v.addr.is_some() && v.kick.is_some() && v.call.is_some() && v.num > 0);
        if !ready {
            return Ok(());
        }
        let placement = self.placement(&mem)?;
        let stop = Arc::new(
            intercore_linux::EventFd::new()?
                .as_fd()
                .try_clone_to_owned()?,
        );
        let bell = VhostBell::new(
            [0, 1].map(|i| self.vrings[i].kick.clone().expect("ready")),
            [0, 1].map(|i| self.vrings[i].call.clone().expect("ready")),
            Arc::clone(&stop),
        );
        self.stop = Some(stop);
        let gfeatures = (self.features & DEVICE_FEATURES) as u32;
        let fw = Arc::clone(&self.firmware);
        self.thread = Some(std::thread::spawn(move || {
            run_firmware(mem, bell, placement, gfeatures, fw)
        }));
        Ok(())
    }

    /// Tells the firmware the guest has gone (status cleared, stop signalled) and waits for it.
    fn stop_firmware(&mut self) {
        if let Some(mem) = &self.mem {
            intercore::SharedMemory::store_u32(&**mem, mem.status_off(), 0, Release);
        }
        if let Some(stop) = self.stop.take() {
            let _ = write_u64(&stop);
        }
        if let Some(t) = self.thread.take() {
            let report = t.join().unwrap_or_else(|_| RunReport {
                messages: 0,
                result: Err("firmware thread panicked".into()),
                data_plane: None,
            });
            log::info!(
                "firmware stopped after {} messages: {:?}",
                report.messages,
                report.result
            );
            self.reports.push(report);
        }
    }
}

/// The firmware thread: waits for the guest's first kick of vring 0 (its driver posts
/// every receive buffer and registers its name service before that kick), then marks the
/// device `DRIVER_OK` and runs the firmware until the guest goes away.
fn run_firmware(
    mem: Arc<GuestMemory>,
    bell: VhostBell,
    placement: DevicePlacement,
    gfeatures: u32,
    fw: Arc<DeviceFirmware>,
) -> RunReport {
    let fail = |e: String| RunReport {
        messages: 0,
        result: Err(e),
        data_plane: None,
    };
    loop {
        match poll_in(&[&bell.stop, &bell.kicks[0]], None) {
            Ok(r) if r[0] => return fail("stopped before the guest's first kick".into()),
            Ok(r) if r[1] => break,
            Ok(_) => {}
            Err(e) => return fail(e.to_string()),
        }
    }
    drain(&bell.kicks[0]);
    use intercore::SharedMemory as _;
    let DeviceControl::StatusWords {
        status_off,
        gfeatures_off,
        ..
    } = placement.control
    else {
        return fail("placement without status words".into());
    };
    mem.store_u32(gfeatures_off, gfeatures, Relaxed);
    mem.store_u32(
        status_off,
        u32::from(intercore::rpmsg::status::DRIVER_OK),
        Release,
    );
    let mut cfg = RemoteConfig::default().wait(WaitMode::Event);
    // A placement's buffers may be of any size inside the window (as `with_placement`)...
    cfg.buf_size = usize::MAX;
    if fw.serves_data_plane() {
        // ...but the data plane sizes its completion batches from the largest message, and
        // the guest is Linux's virtio_rpmsg_bus, whose buffers are MAX_RPMSG_BUF_SIZE = 512
        // bytes (drivers/rpmsg/virtio_rpmsg_bus.c): 496 bytes of payload.
        cfg.buf_size = intercore::wire::rpmsg::RPMSG_DEFAULT_BUF_SIZE;
    }
    let ram = GuestRam(Arc::clone(&mem));
    let pool_view = Arc::clone(&mem);
    let mut bus = match RemoteBus::<_, _, 8>::new(mem, bell, &placement.buffers, placement, cfg) {
        Ok(b) => b,
        Err(e) => return fail(e.to_string()),
    };
    let mut dp = DpRemote::new(Coherent::new(pool_view), ram);
    let r = fw.run(&mut bus, &mut dp);
    let mut data_plane = None;
    if fw.serves_data_plane() {
        let st = dp.stats();
        log::info!(
            "data plane: {} jobs done, {} faults, {} refused",
            st.done,
            st.faults,
            st.bad
        );
        data_plane = Some(st);
    }
    let (messages, r) = match r {
        Ok(n) => (n, Ok(())),
        Err(e) => (0, Err(e)),
    };
    RunReport {
        messages,
        result: r.map_err(|e| e.to_string()),
        data_plane,
    }
}

/// Listens on `path` (replacing only a stale socket: [`clear_stale_socket`]) and serves one
/// front end until it disconnects; removes the socket it created (and nothing else) afterwards.
pub fn serve_socket(
    path: &std::path::Path,
    firmware: Arc<DeviceFirmware>,
    verbose: bool,
) -> io::Result<Vec<RunReport>> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let at = |e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", path.display()));
    clear_stale_socket(path)?;
    let listener = std::os::unix::net::UnixListener::bind(path).map_err(at)?;
    // What we created, so that only it is removed afterwards.
    let ours = std::fs::symlink_metadata(path).map_err(at)?;
    let accepted = listener.accept().map_err(at);
    let r = accepted.and_then(|(sock, _)| {
        let mut dev = Device::new(firmware);
        dev.verbose = verbose;
        dev.serve(sock).map(|()| dev.reports)
    });
    if let Ok(m) = std::fs::symlink_metadata(path) {
        if m.file_type().is_socket() && m.dev() == ours.dev() && m.ino() == ours.ino() {
            let _ = std::fs::remove_file(path);
        }
    }
    r
}

/// Makes `path` free for the vhost-user socket: [`intercore_linux::file::clear_stale_socket`]
/// (a stale socket nobody listens on is removed; anything else is an error naming the path).
pub fn clear_stale_socket(path: &std::path::Path) -> io::Result<()> {
    intercore_linux::file::clear_stale_socket(path, "choose another --socket path")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `clear_stale_socket` removes only a socket nobody listens on (connect gives
    /// ECONNREFUSED); a regular file keeps its contents, a live socket stays, and both are
    /// errors naming the path.
    #[test]
    fn only_stale_sockets_are_replaced() {
        let dir = std::env::temp_dir().join(format!("intercore-vhost-sock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("file");
        std::fs::write(&file, b"precious").unwrap();
        let e = clear_stale_socket(&file).unwrap_err();
        assert!(e.to_string().contains("a regular file"), "{e}");
        assert_eq!(std::fs::read(&file).unwrap(), b"precious");
        let live = dir.join("live");
        let l = std::os::unix::net::UnixListener::bind(&live).unwrap();
        let e = clear_stale_socket(&live).unwrap_err();
        assert!(e.to_string().contains("listening"), "{e}");
        assert!(live.exists());
        drop(l);
        // The listener is closed, its file stays: a stale socket.
        clear_stale_socket(&live).unwrap();
        assert!(!live.exists());
        clear_stale_socket(&dir.join("none")).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Linux's contiguous ring layout is recognised at any power-of-two alignment; parts
    /// placed elsewhere are refused.
    #[test]
    fn ring_layout_recognises_contiguous_rings() {
        for align in [4u32, 64, 4096] {
            let l = VringLayout::new(256, align).unwrap();
            let d = 0x8000_0000u64;
            let got = ring_layout(256, d, d + l.used_flags() as u64, d + 16 * 256).unwrap();
            assert_eq!(got.used_flags(), l.used_flags());
        }
        assert!(ring_layout(256, 0x1000, 0x9000, 0x5000).is_err());
        let l = VringLayout::new(256, 4096).unwrap();
        assert!(ring_layout(256, 0x1000, 0x1000 + l.used_flags() as u64 + 8, 0x2000).is_err());
    }

    /// Guest memory: adjacent regions become one range; translation stays inside RAM and
    /// never reaches the control page.
    #[test]
    fn guest_memory_maps_adjacent_regions() {
        let mk = |gpa: u64, ua: u64| {
            let r = intercore_linux::MemfdRegion::create("r", 8192).unwrap();
            Region {
                guest_addr: gpa,
                size: 8192,
                user_addr: ua,
                mmap_offset: 0,
                fd: r.fd().try_clone_to_owned().unwrap(),
            }
        };
        let m = GuestMemory::map(vec![mk(0x4000, 0x9000_0000), mk(0x2000, 0x7000_0000)]).unwrap();
        assert_eq!((m.base(), m.span()), (0x2000, 16384));
        use intercore::DeviceAddressMap as _;
        assert_eq!(m.to_offset(DevAddr(0x2000), 16384), Some(0));
        assert_eq!(m.to_offset(DevAddr(0x2000), 16385), None);
        assert_eq!(m.to_offset(DevAddr(0x1fff), 1), None);
        assert_eq!(m.to_offset(DevAddr(u64::MAX), 2), None);
        assert_eq!(m.to_dev(m.status_off()), None);
        assert_eq!(m.user_to_guest(0x9000_0010, 16), Some(0x4010));
        assert_eq!(m.user_to_guest(0x7000_1ff8, 16), None);
        // The control page after the RAM is mapped and private.
        use intercore::SharedMemory as _;
        m.store_u32(8192, 0xfeed, Relaxed);
        assert_eq!(m.load_u32(8192, Relaxed), 0xfeed);
        assert!(GuestMemory::map(vec![mk(0x2000, 0), mk(0x6000, 0)]).is_err());
        assert!(GuestMemory::map(vec![mk(0x2000, 0), mk(0x3000, 0)]).is_err());
    }
}
