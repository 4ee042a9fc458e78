//! The remote role: the virtio device side of both rings, as firmware on the remote core
//! runs it. `no_std`, no allocation: endpoints live in a fixed table of `N` entries.

mod ready;
mod reply;

pub use reply::ReplyBuf;

use super::endpoints::{self, Core, EndpointAddr, Endpoints, Entry};
use super::{
    Channel, DevicePlacement, RPMSG_HDR_SIZE, RPMSG_NS_ADDR, RscLocation, TableInfo, VdevInfo,
    status,
};
use crate::error::protocol;
use crate::notify::{Next, Waiter};
use crate::virtq::DeviceQueue;
use crate::{DevAddr, Doorbell, Error, LinearMap, Result, SharedMemory, WaitMode};
use core::sync::atomic::Ordering::{Acquire, Relaxed};
use core::time::Duration;
use intercore_wire::rpmsg::{Name, NsKind};
use ready::{Ready, Rings};

/// A received message, borrowed in place from its buffer for the duration of a callback.
///
/// **Device memory.** On arm64, a region mapped from UIO or a `/dev/mem` no-map carveout
/// is Device memory: an unaligned access or `DC ZVA` there faults (SIGBUS), and
/// `copy_from_slice`, `fill` or `to_vec` on `payload` may compile to `memcpy`/`memset`,
/// which use both. On such a region copy with [`crate::copy_from_shared`] (as [`RemoteBus::recv`] does), which make naturally aligned
/// accesses only; do not `memcpy` the view with unaligned accesses.
#[derive(Debug, Clone, Copy)]
pub struct Msg<'a> {
    /// Sending endpoint (on the host).
    pub src: u32,
    /// Our endpoint it was sent to.
    pub dst: u32,
    /// The payload, in shared memory.
    pub payload: &'a [u8],
}

/// Counters of what the remote bus did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RemoteStats {
    /// Messages sent.
    pub sent: u64,
    /// Messages delivered to an endpoint.
    pub received: u64,
    /// Doorbells rung.
    pub kicks: u64,
    /// Messages for an address with no endpoint (returned unread).
    pub no_endpoint: u64,
    /// Messages that failed validation (returned unread).
    pub malformed: u64,
    /// Messages for an endpoint not being read that found `N` messages held already
    /// (returned unread; see [`RemoteBus::recv_with`]).
    pub held_dropped: u64,
}

/// Whether the remote notifies the host after filling its receive buffers (vring 0) when
/// the host said it need not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotifyPolicy {
    /// Follow the host's request (`VRING_AVAIL_F_NO_INTERRUPT`, or `used_event` with
    /// EVENT_IDX; virtio 1.x §2.7.7), as OpenAMP's remote does. Linux, OpenAMP and intercore
    /// hosts clear the flag whenever they want an interrupt.
    Honour,
    /// Notify after every published batch on vring 0 whatever the flag says, as RPMsg-Lite's
    /// remote does: RPMsg-Lite's master sets `VRING_AVAIL_F_NO_INTERRUPT` on both rings at
    /// init (`virtqueue_disable_cb`) and never clears it, yet receives only on
    /// notifications. Cost: one doorbell per batch that a polling host did not ask for.
    Always,
}

/// How the remote runs the link: [`RemoteConfig::default`], changed with the chained
/// setters (one per field, by value).
///
/// ```
/// use core::time::Duration;
/// use intercore::WaitMode;
/// use intercore::rpmsg::RemoteConfig;
///
/// let cfg = RemoteConfig::default()
///     .wait(WaitMode::Poll)
///     .announce_timeout(Some(Duration::from_secs(1)));
/// assert_eq!(cfg.buf_size, 512);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct RemoteConfig {
    /// How blocking calls wait.
    pub wait: WaitMode,
    /// Where host buffers may lie when the table has no `vdev0buffer` carveout (Linux
    /// allocates them from the device's DMA memory: memory-region 0 on TI K3). A carveout
    /// in the table takes precedence.
    pub buffers: Option<LinearMap>,
    /// The largest buffer the host may hand over, header included. The wire does not
    /// negotiate it: both ends are built with it (Linux: always 512).
    pub buf_size: usize,
    /// The firmware's own memory inside the shared window (region offset, length): no
    /// descriptor may reach into it.
    pub private: Option<(usize, usize)>,
    /// `None`: [`NotifyPolicy::Honour`] when the host has a status word (a resource table
    /// or a vhost-user front end), [`NotifyPolicy::Always`] without one (RPMsg-Lite).
    pub notify: Option<NotifyPolicy>,
    /// Where the firmware's data cache covers its resource table: invalidates the lines of
    /// `len` bytes at the given CPU address (on a Cortex-R5F, `DCIMVAC` by line), called
    /// before the table is read again at `DRIVER_OK` so the host's write-back of the vring
    /// addresses and notify ids is seen. `None` where the table is mapped non-cacheable
    /// (the usual MPU setting for the shared window) or the cores are coherent.
    pub invalidate_table: Option<fn(*const u8, usize)>,
    /// How long [`RemoteBus::announce`] and [`RemoteBus::destroy_endpoint`] wait for a
    /// host receive buffer to carry the name-service message (`None`: no limit). 15 s by
    /// default, the bound Linux's own blocking send has (`rpmsg_send_offchannel_raw` in
    /// `virtio_rpmsg_bus.c`): a host that sets `DRIVER_OK` and never posts a receive
    /// buffer must not stall the firmware for good.
    pub announce_timeout: Option<Duration>,
}

impl Default for RemoteConfig {
    /// Buffers of up to 512 bytes, the default wait mode, the notification policy chosen
    /// by the kind of host, 15 s for a name-service message.
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl RemoteConfig {
    /// [`RemoteConfig::default`], usable in a `const` (firmware keeps it in a static).
    pub const DEFAULT: Self = Self {
        wait: WaitMode::Adaptive(Duration::from_micros(50)),
        buffers: None,
        buf_size: intercore_wire::rpmsg::RPMSG_DEFAULT_BUF_SIZE,
        private: None,
        notify: None,
        invalidate_table: None,
        announce_timeout: Some(Duration::from_secs(15)),
    };

    /// Sets [`Self::wait`](RemoteConfig#structfield.wait).
    #[must_use]
    pub const fn wait(mut self, wait: WaitMode) -> Self {
        self.wait = wait;
        self
    }
    /// Sets [`Self::buffers`](RemoteConfig#structfield.buffers).
    #[must_use]
    pub const fn buffers(mut self, buffers: Option<LinearMap>) -> Self {
        self.buffers = buffers;
        self
    }
    /// Sets [`Self::buf_size`](RemoteConfig#structfield.buf_size).
    #[must_use]
    pub const fn buf_size(mut self, buf_size: usize) -> Self {
        self.buf_size = buf_size;
        self
    }
    /// Sets [`Self::private`](RemoteConfig#structfield.private).
    #[must_use]
    pub const fn private(mut self, private: Option<(usize, usize)>) -> Self {
        self.private = private;
        self
    }
    /// Sets [`Self::notify`](RemoteConfig#structfield.notify).
    #[must_use]
    pub const fn notify(mut self, notify: Option<NotifyPolicy>) -> Self {
        self.notify = notify;
        self
    }
    /// Sets [`Self::invalidate_table`](RemoteConfig#structfield.invalidate_table).
    #[must_use]
    pub const fn invalidate_table(
        mut self,
        invalidate_table: Option<fn(*const u8, usize)>,
    ) -> Self {
        self.invalidate_table = invalidate_table;
        self
    }
    /// Sets [`Self::announce_timeout`](RemoteConfig#structfield.announce_timeout).
    #[must_use]
    pub const fn announce_timeout(mut self, announce_timeout: Option<Duration>) -> Self {
        self.announce_timeout = announce_timeout;
        self
    }
}

/// How a remote finds its device: its resource table, or a placement given directly
/// (a vhost-user front end, an RPMsg-Lite master). Both convert into it, so
/// [`RemoteBus::new`] takes either.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoteSetup {
    /// The firmware's resource table, in shared memory.
    Table(RscLocation),
    /// Rings, buffers and control words placed without a table.
    Placement(DevicePlacement),
}

impl From<RscLocation> for RemoteSetup {
    fn from(r: RscLocation) -> Self {
        Self::Table(r)
    }
}

impl From<DevicePlacement> for RemoteSetup {
    fn from(p: DevicePlacement) -> Self {
        Self::Placement(p)
    }
}

impl From<&DevicePlacement> for RemoteSetup {
    fn from(p: &DevicePlacement) -> Self {
        Self::Placement(*p)
    }
}

/// A local endpoint: the shared table entry, with nothing added on the remote.
/// A local endpoint: the shared table entry and the last sender to it (`RPMSG_ADDR_ANY`
/// before the first message), where a channel opened to `RPMSG_ADDR_ANY` replies.
type Ept = Entry<u32>;

/// How often [`RemoteBus::wait_ready`] looks at the rings while a new RPMsg-Lite master
/// whose notification may have been taken is initialising them.
const REBUILT_POLL: Duration = Duration::from_millis(1);

/// Where the link is: waiting for the host's `DRIVER_OK`, or up with both rings attached.
#[allow(
    clippy::large_enum_variant,
    reason = "one per bus, inline on a no_std target without an allocator; the rings' in-order bitmaps are most of it"
)]
enum State<const N: usize> {
    /// Not attached. `gone`: it was up and the host reset the device (status back to 0),
    /// so calls report `PeerGone` until [`RemoteBus::wait_ready`] attaches again.
    Waiting {
        gone: bool,
    },
    Ready(Rings<N>),
}

/// The remote side of an rpmsg link, with room for `N` local endpoints and `N` host
/// services: built like [`HostBus`](super::HostBus) (`new(mem, bell, &map, rsc, cfg)`, see
/// [`RemoteBus::new`] for both roles at work), with the same endpoint and message calls
/// and, its own, [`Self::wait_ready`] and the reply path ([`Self::recv_reply_with`]).
pub struct RemoteBus<M: SharedMemory, D: Doorbell, const N: usize = 8> {
    mem: M,
    link: Core<D>,
    info: VdevInfo,
    /// The table as read at start (`None` for a placement): re-read at `DRIVER_OK`.
    table: Option<(RscLocation, TableInfo)>,
    cfg: RemoteConfig,
    state: State<N>,
    wait: WaitMode,
    /// How long blocking calls spin in adaptive mode (learnt across calls).
    spin: crate::notify::SpinPolicy,
    /// The blocking call in progress waits for a message and a host buffer together.
    want_both: bool,
    held_dropped: u64,
    /// The rings run in order (negotiated at the last fresh attach).
    in_order: bool,
    /// Inline-slot rings and their slot payload (negotiated at the last fresh attach).
    inline_max: Option<usize>,
    /// The last call found nothing to do or failed: the next one checks the status word.
    idle: bool,
    /// Without a status word: the link died because the master rebuilt the rings, so the
    /// one notification `rpmsg_lite_master_init` sends may already have been taken by the
    /// call that saw the rebuild. [`Self::wait_ready`] then attaches on the rings' state
    /// alone (looked at every millisecond), which is as `rpmsg_lite_master_init` leaves it
    /// only once the new master is done.
    rebuilt_seen: bool,
    /// Calls since attaching (every 64th checks the status word anyway).
    calls: u32,
    endpoints: Endpoints<u32, [Option<Ept>; N]>,
    /// How device addresses (in descriptors and the table) map to region offsets.
    map: LinearMap,
    host_services: [Option<(Name, u32)>; N],
}

impl<M: SharedMemory, D: Doorbell, const N: usize> RemoteBus<M, D, N> {
    /// Prepares the link: reads our resource table (`rsc` a [`RscLocation`]) or checks a
    /// placement given directly ([`DevicePlacement`]: a vhost-user back end learns the
    /// rings from its front end, an RPMsg-Lite master lays them out itself); call
    /// [`Self::wait_ready`] before using it. `map` says how device addresses (in the table
    /// and in descriptors) map to region offsets; with a placement, whose `buffers` say
    /// where buffers lie, it is unused, as are [`RemoteConfig::buffers`]. Vrings a table
    /// leaves at `FW_RSC_ADDR_ANY` are read again once the host has set `DRIVER_OK` (it
    /// writes their addresses first). The same shape as
    /// [`HostBus::new`](super::HostBus::new).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// use intercore::rpmsg::{HostBus, HostConfig, RemoteBus, RemoteConfig};
    /// use intercore::testing::{Carveout, ThreadBell};
    ///
    /// let c = Carveout::with_buffers(16);
    /// let (host_bell, remote_bell) = ThreadBell::pair();
    /// let mut host = HostBus::new(c.mem.clone(), host_bell, &c.map, c.rsc, HostConfig::default())?;
    /// let mut remote: RemoteBus<_, _> =
    ///     RemoteBus::new(c.mem.clone(), remote_bell, &c.map, c.rsc, RemoteConfig::default())?;
    /// remote.wait_ready(Some(Duration::from_secs(1)))?;
    /// assert!(remote.is_ready());
    ///
    /// // Both roles: the same endpoint calls and the same message family.
    /// let timeout = Some(Duration::from_secs(1));
    /// let on_remote = remote.open("demo", intercore::rpmsg::RPMSG_ADDR_ANY)?;
    /// let on_host = host.connect("demo", timeout)?;
    /// host.send(&on_host, b"ping", timeout)?;
    /// let mut buf = [0u8; 64];
    /// let (from, n) = remote.recv_from(&on_remote, &mut buf, timeout)?;
    /// assert_eq!((from, &buf[..n]), (Some(on_host.local), &b"ping"[..]));
    /// remote.send(&on_remote, b"pong", timeout)?; // to the last sender
    /// assert_eq!(host.recv(&on_host, &mut buf, timeout)?, 4);
    /// # Ok::<(), intercore::Error>(())
    /// ```
    pub fn new(
        mem: M,
        bell: D,
        map: &LinearMap,
        rsc: impl Into<RemoteSetup>,
        cfg: RemoteConfig,
    ) -> Result<Self> {
        match rsc.into() {
            RemoteSetup::Table(rsc) => Self::from_table(mem, bell, *map, rsc, &cfg),
            RemoteSetup::Placement(p) => {
                let info = super::place(&mem, &p)?;
                Self::from_info(mem, bell, p.buffers, info, None, &cfg)
            }
        }
    }

    fn from_table(
        mem: M,
        bell: D,
        map: LinearMap,
        rsc: RscLocation,
        cfg: &RemoteConfig,
    ) -> Result<Self> {
        let table = super::read_table(&mem, &map, rsc)?;
        if table.buffers.is_none() && cfg.buffers.is_none() {
            // Known now, whoever places the rings: say so before the host comes (an error
            // at `DRIVER_OK` is the host's).
            return Err(Error::Config(
                "the resource table has no vdev0buffer carveout and no buffer region was configured",
            ));
        }
        // Until the host has placed every ring, keep a provisional placement: nothing is
        // read through it before `wait_ready` re-reads the table.
        let info = match table.resolve(&map, cfg.buffers, true) {
            Ok(info) => info,
            Err(e) if table.rings.iter().all(|r| r.da.is_some()) => return Err(e),
            Err(_) => VdevInfo {
                status_off: Some(table.status_off),
                status_rest: table.status_rest,
                gfeatures_off: Some(table.gfeatures_off),
                dfeatures: table.dfeatures,
                rings: [super::RingPlace {
                    base: 0,
                    layout: table.rings[0].layout,
                }; 2],
                notify_ids: [table.rings[0].notify_id, table.rings[1].notify_id],
                buf_da: DevAddr(0),
                buf_off: 0,
                buf_len: 0,
                table: table.table,
                intercore: table.intercore,
            },
        };
        Self::from_info(mem, bell, map, info, Some((rsc, table)), cfg)
    }

    fn from_info(
        mem: M,
        bell: D,
        map: LinearMap,
        info: VdevInfo,
        table: Option<(RscLocation, TableInfo)>,
        cfg: &RemoteConfig,
    ) -> Result<Self> {
        if cfg.buf_size < RPMSG_HDR_SIZE {
            return Err(Error::Config(
                "buffer size smaller than the 16-byte rpmsg header",
            ));
        }
        if let Some((off, len)) = cfg.private {
            if off.checked_add(len).is_none_or(|e| e > mem.len()) {
                return Err(Error::Config(
                    "the firmware's private memory is outside the shared region",
                ));
            }
        }
        // Rings known now (a placement, or a table with every vring fixed) must not reach
        // into the firmware's own memory: the device writes their used rings and flags.
        // Rings the host places are checked when it has placed them (`wait_ready`).
        let placed = table
            .as_ref()
            .is_none_or(|(_, t)| t.rings.iter().all(|r| r.da.is_some()));
        if placed && ring_over_private(&info, cfg).is_some() {
            return Err(Error::Config(
                "a vring lies in the firmware's private memory",
            ));
        }
        Ok(Self {
            mem,
            link: Core::new(bell, info.notify_ids),
            info,
            table,
            cfg: *cfg,
            state: State::Waiting { gone: false },
            wait: cfg.wait,
            spin: crate::notify::SpinPolicy::default(),
            want_both: false,
            held_dropped: 0,
            in_order: false,
            inline_max: None,
            idle: true,
            rebuilt_seen: false,
            calls: 0,
            endpoints: Endpoints::new([const { None }; N]),
            map,
            host_services: [None; N],
        })
    }

    /// Counters.
    pub fn stats(&self) -> RemoteStats {
        let c = self.link.count;
        RemoteStats {
            sent: c.sent,
            received: c.received,
            kicks: c.kicks,
            no_endpoint: c.no_endpoint,
            malformed: c.malformed,
            held_dropped: self.held_dropped,
        }
    }
    /// Changes how blocking calls wait (on inline rings, a change to or from
    /// `WaitMode::Poll` is told to the host, which then stops or starts checking whether to
    /// ring after each message).
    pub fn set_wait_mode(&mut self, mode: WaitMode) {
        self.wait = mode;
        self.declare_polling();
    }

    /// Tells the host whether our inline receive ring's consumer (this bus) polls without
    /// ever sleeping (`WaitMode::Poll`): it then skips its wake check per message
    /// (`InlineRx::declare_polling`).
    fn declare_polling(&mut self) {
        let polls = self.wait == WaitMode::Poll;
        let now = self.link.bell.now();
        if let State::Ready(rings) = &mut self.state {
            if let Some(i) = &mut rings.inline {
                i.rx.declare_polling(&self.mem, polls, now);
            }
        }
    }
    /// The doorbell.
    pub fn doorbell(&self) -> &D {
        &self.link.bell
    }
    /// Why the link is dead, if it is.
    pub fn broken(&self) -> Option<Error> {
        self.link.broken
    }
    /// Largest payload of one message: the configured buffer size less the 16-byte header
    /// ([`RemoteConfig::buf_size`]; at most the 16-bit length field's 65535). A placement
    /// that configures none allows any size: then only the host's buffer in hand bounds a
    /// message, and a send larger than it fails with `MessageTooLarge` naming its room.
    pub fn max_payload(&self) -> usize {
        self.cfg.buf_size.min(RPMSG_HDR_SIZE + u16::MAX as usize) - RPMSG_HDR_SIZE
    }

    /// The host's virtio status; without a status word (RPMsg-Lite) the link counts as
    /// `DRIVER_OK` once up.
    fn status(&self) -> u8 {
        match self.info.status_off {
            // Acquire: once DRIVER_OK is seen, the rings and features the host set up
            // before storing it (with Release) are visible.
            Some(off) => self.mem.load_u32(off, Acquire) as u8,
            None => status::DRIVER_OK,
        }
    }

    /// Without a status word: whether the rings are as an RPMsg-Lite master leaves them at
    /// the end of its initialisation, before the remote has taken anything
    /// (`rpmsg_lite_master_init`: both rings zeroed with `env_memset`, then every receive
    /// buffer made available on vring 0 one at a time (`virtqueue_fill_avail_buffers`),
    /// then as many transmit buffers put into vring 1's used ring
    /// (`virtqueue_fill_used_buffers`), then the notification). vring 0's used index is
    /// written by the device alone, so it is 0 only over rings a master has just rebuilt;
    /// vring 1's used index equal to vring 0's available index (and not 0) says both fills
    /// are complete. A master still filling, and rings a previous link left behind, do not
    /// match.
    fn master_ready(&self) -> bool {
        let [r0, r1] = self.info.rings;
        // Acquire: the master's index stores come after its ring writes (`env_wmb` in
        // `vq_ring_update_avail`/`vq_ring_update_used`); `attach` loads them again.
        let used0 = self.mem.load_u16(r0.base + r0.layout.used_idx(), Acquire);
        let avail0 = self.mem.load_u16(r0.base + r0.layout.avail_idx(), Acquire);
        let used1 = self.mem.load_u16(r1.base + r1.layout.used_idx(), Acquire);
        used0 == 0 && avail0 != 0 && used1 == avail0
    }

    /// The link, checked: attached, not broken, and the host still has `DRIVER_OK`. A host
    /// that resets the device (status back to 0) has gone away: the bus returns to waiting
    /// (its sticky error and the host's announcements, which belonged to that link,
    /// cleared) and reports `PeerGone`; [`Self::wait_ready`] attaches to the next
    /// negotiation. Endpoints are kept.
    fn ready(&mut self) -> Result<Ready<'_, M, D, N>> {
        // The status word is looked at when the last call found nothing to do (or failed),
        // and every 64th call: a busy link pays no status load per message, an idle or
        // broken one notices the reset at its next poll. Relaxed: only the host's going
        // away is looked for, and nothing is read on the strength of it (`status` orders
        // the rings after DRIVER_OK for `wait_ready`).
        self.calls = self.calls.wrapping_add(1);
        let look = self.idle || self.calls % 64 == 0;
        self.idle = true;
        let gone = match (self.info.status_off, &self.state) {
            (Some(off), _) if look => {
                self.mem.load_u32(off, Relaxed) as u8 & status::DRIVER_OK == 0
            }
            // No status word: a used index we did not write is a master that rebuilt the
            // rings (`Rings::rebuilt`).
            (None, State::Ready(rings)) if look => {
                let rebuilt = rings.rebuilt(&self.mem);
                self.rebuilt_seen |= rebuilt;
                rebuilt
            }
            _ => false,
        };
        if matches!(self.state, State::Ready(_)) && gone {
            self.state = State::Waiting { gone: true };
            self.link.broken = None;
            // What that host announced went with it; the next one announces again.
            self.host_services = [None; N];
            return Err(Error::PeerGone);
        }
        self.link.check()?;
        match &mut self.state {
            State::Waiting { gone: true } => Err(Error::PeerGone),
            State::Waiting { gone: false } => Err(Error::NotReady("call wait_ready first")),
            State::Ready(rings) => Ok(Ready {
                mem: &self.mem,
                rings,
                link: &mut self.link,
                info: &self.info,
                cfg: &self.cfg,
                endpoints: &mut self.endpoints,
                host_services: &mut self.host_services,
                held_dropped: &mut self.held_dropped,
            }),
        }
    }

    /// Waits until the host sets `DRIVER_OK` (or, with no status word, until the master has
    /// initialised both rings and notified us), then checks the features it accepted,
    /// re-reads and checks the vrings the host placed, and attaches to the rings at their
    /// current indices.
    ///
    /// With a status word, a link that is still up is attached again (held buffers given
    /// back first). Without one (RPMsg-Lite), a link that is up and healthy is left as it
    /// is (`Ok` at once); a dead one — a sticky error, `PeerGone` from the doorbell, or a
    /// master that rebuilt the rings — is dropped (held buffers, the host's announcements
    /// and the error with it) and the call waits for a new master's initialisation: a
    /// notification with the rings as `rpmsg_lite_master_init` leaves them. It never
    /// returns `Ok` while the link is dead: with the doorbell reporting the peer gone it
    /// returns `PeerGone`.
    pub fn wait_ready(&mut self, timeout: Option<Duration>) -> Result<()> {
        if self.info.status_off.is_none() {
            return self.wait_master(timeout);
        }
        // Attaching again over a link that is still up: give back the buffers held for
        // endpoints first (after a reset they belong to a ring the host rebuilt: dropped).
        let up = self.status() & status::DRIVER_OK != 0;
        let mut again = false;
        if let State::Ready(rings) = &mut self.state {
            if up {
                rings.release_held(&self.mem);
                again = true;
            }
        }
        let mut w = Waiter::new(&self.link.bell, self.wait, timeout);
        loop {
            if self.status() & status::DRIVER_OK != 0 {
                break;
            }
            if let Next::Sleep(t) = w.after_miss(&self.link.bell)? {
                if self.status() & status::DRIVER_OK == 0 {
                    self.link.bell.wait(t)?;
                }
            }
        }
        if let Some((rsc, _)) = self.table {
            if let Some(inv) = self.cfg.invalidate_table {
                inv(self.mem.as_ptr().wrapping_add(rsc.offset), rsc.len);
            }
            // The host wrote the vrings' `da` and `notifyid` before `DRIVER_OK` (Release,
            // paired with the Acquire in `status`): read the table again. The table was
            // sound when the bus was built, so what fails now is the host's writing: a
            // sticky protocol error, as for a bad descriptor.
            let t = match super::read_table(&self.mem, &self.map, rsc)
                .and_then(|t| t.resolve(&self.map, self.cfg.buffers, true).map(|i| (t, i)))
            {
                Ok(r) => r,
                Err(Error::Config(what)) => return Err(self.link.fail(protocol(what, 0))),
                Err(e) => return Err(self.link.fail(e)),
            };
            if let Some(i) = ring_over_private(&t.1, &self.cfg) {
                let da = t.0.rings[i].da.map_or(0, |d| d.0);
                return Err(self.link.fail(protocol(
                    "host placed a vring in the firmware's private memory",
                    da,
                )));
            }
            (self.table, self.info) = (Some((rsc, t.0)), t.1);
            self.link.notify_ids = self.info.notify_ids;
        }
        if !again {
            // A fresh attach: an error that belonged to an earlier attempt (a refused
            // placement, features) is the previous negotiation's.
            self.link.broken = None;
        }
        self.attach(again)
    }

    /// [`Self::wait_ready`] without a status word (an RPMsg-Lite master). RPMsg-Lite's own
    /// remote is up at the master's first notification (`rpmsg_lite_tx_callback` sets
    /// `link_state`), which `rpmsg_lite_master_init` sends only once both rings are
    /// complete; the doorbell keeps a ring made before we wait, so a remote started after
    /// the master still sees it. The rings are checked too ([`Self::master_ready`]): a
    /// notification left from an earlier link, or one over rings still being filled, does
    /// not attach, nor do stale indices in memory a previous master used.
    fn wait_master(&mut self, timeout: Option<Duration>) -> Result<()> {
        if let State::Ready(rings) = &self.state {
            let rebuilt = rings.rebuilt(&self.mem);
            if self.link.broken.is_none() && !rebuilt {
                return Ok(());
            }
            self.rebuilt_seen |= rebuilt;
        }
        if !matches!(self.state, State::Waiting { gone: false }) {
            // The link died (or the master rebuilt the rings): what it held and what its
            // master announced went with it.
            self.state = State::Waiting { gone: true };
            self.host_services = [None; N];
        }
        self.link.broken = None;
        let mut w = Waiter::new(&self.link.bell, self.wait, timeout);
        // After a rebuild the master's notification may be gone (`rebuilt_seen`): the
        // rings alone decide, looked at at least every millisecond while sleeping.
        let rings_alone = self.rebuilt_seen;
        loop {
            // Only looks (a zero timeout): polling modes never sleep in `after_miss`.
            let rung = self.link.bell.wait(Some(Duration::ZERO))?;
            if (rung || rings_alone) && self.master_ready() {
                break;
            }
            if let Next::Sleep(t) = w.after_miss(&self.link.bell)? {
                let t = if rings_alone {
                    Some(t.map_or(REBUILT_POLL, |t| t.min(REBUILT_POLL)))
                } else {
                    t
                };
                let rung = self.link.bell.wait(t)?;
                if (rung || rings_alone) && self.master_ready() {
                    break;
                }
            }
        }
        self.rebuilt_seen = false;
        self.attach(false)
    }

    /// Attaches to both rings at their current indices (the common end of both
    /// [`Self::wait_ready`] paths; `again`: over a link still up, in-order mode kept).
    fn attach(&mut self, again: bool) -> Result<()> {
        let g = match self.info.gfeatures_off {
            // Relaxed: ordered after the Acquire load of the status word.
            Some(off) => self.mem.load_u32(off, Relaxed),
            None => self.info.dfeatures,
        };
        if g & !self.info.dfeatures != 0 {
            return Err(self.link.fail(protocol(
                "host accepted features we did not offer",
                g as u64,
            )));
        }
        let event_idx = g & (1 << intercore_wire::vring::VIRTIO_RING_F_EVENT_IDX) != 0;
        // In-order rings: what an intercore host accepted in the vendor entry (the table
        // parser refused an acceptance of features not offered). The word is consumed —
        // written back to 0 — so a later host that never writes it (Linux) cannot inherit
        // it; attaching again over a link still up keeps the mode in force.
        if again && self.inline_max.is_some() {
            // Attaching again over a link still up: the inline rings' positions live only
            // in the two ends' state, so they are kept as they are.
            return Ok(());
        }
        let mut inline = false;
        let in_order = if again {
            self.in_order
        } else {
            match self.info.intercore {
                Some(e) => {
                    if e.accepted & !intercore_wire::rsc::INTERCORE_FEATURES != 0 {
                        return Err(self.link.fail(protocol(
                            "host accepted intercore entry features we do not implement",
                            e.accepted as u64,
                        )));
                    }
                    // Relaxed: the host wrote it before DRIVER_OK and does not read it.
                    self.mem.store_u32(e.accepted_off, 0, Relaxed);
                    inline = e.accepted & intercore_wire::rsc::INTERCORE_F_INLINE != 0;
                    e.accepted & intercore_wire::rsc::INTERCORE_F_IN_ORDER != 0
                }
                None => false,
            }
        };
        let [r0, r1] = self.info.rings;
        if inline {
            let rings = self.attach_inline().map_err(|e| self.link.fail(e))?;
            self.in_order = false;
            self.state = State::Ready(rings);
            self.declare_polling();
            return Ok(());
        }
        self.inline_max = None;
        let mut tx = DeviceQueue::attach(&self.mem, r0.base, r0.layout, event_idx)?;
        let mut rx = DeviceQueue::attach(&self.mem, r1.base, r1.layout, event_idx)?;
        tx.set_in_order(in_order).map_err(|e| self.link.fail(e))?;
        rx.set_in_order(in_order).map_err(|e| self.link.fail(e))?;
        self.in_order = in_order;
        let always = match self.cfg.notify {
            Some(p) => p == NotifyPolicy::Always,
            None => self.info.status_off.is_none(),
        };
        tx.set_always_notify(always);
        tx.disable_notify(&self.mem);
        rx.disable_notify(&self.mem);
        self.state = State::Ready(Rings::new(rx, tx, None));
        Ok(())
    }

    /// The inline-slot rings the host accepted, laid out as it laid them out
    /// ([`LinkPlan`](crate::virtq::inline::LinkPlan): the table's vrings and its
    /// `vdev0buffer` carveout, our buffer size). The host reset both before `DRIVER_OK`.
    /// A layout that cannot hold them is the host's protocol error.
    fn attach_inline(&mut self) -> Result<Rings<N>> {
        use crate::virtq::inline::{InlineRx, InlineTx, LinkPlan, negotiate};
        let e = self
            .info
            .intercore
            .ok_or(protocol("inline rings without a vendor entry", 0))?;
        let max = negotiate(Some((e.offered, e.inline_max)), true).ok_or(protocol(
            "inline rings accepted with no valid inline_max",
            e.inline_max as u64,
        ))?;
        if self.table.as_ref().is_none_or(|(_, t)| t.buffers.is_none()) {
            return Err(protocol(
                "inline rings accepted without a vdev0buffer carveout",
                0,
            ));
        }
        let [r0, r1] = self.info.rings;
        let ring = |r: super::RingPlace| (r.base, r.layout.size(), u32::from(r.layout.num()));
        let plan = LinkPlan::new(
            [ring(r0), ring(r1)],
            self.info.buf_off,
            self.info.buf_len,
            self.cfg.buf_size,
            max,
        )
        .map_err(|_| protocol("inline rings accepted that the layout cannot hold", 0))?;
        let [(lt, ct), (lr, cr)] = plan.dirs;
        let inline = ready::Inline {
            // The host's ask flag (publish progress on the release of a message that used
            // up its sender's credit), where it accepted the bit we offered.
            rx: InlineRx::new(&self.mem, lr, cr)?
                .with_ask(e.accepted & intercore_wire::rsc::INTERCORE_F_INLINE_ASK != 0),
            tx: InlineTx::new(&self.mem, lt, ct)?,
            kick: false,
        };
        // Placeholders, never used while `inline` is set (no memory is read or written).
        let tx = DeviceQueue::new(&self.mem, r0.base, r0.layout, false)?;
        let rx = DeviceQueue::new(&self.mem, r1.base, r1.layout, false)?;
        self.inline_max = Some(lr.max_inline());
        Ok(Rings::new(rx, tx, Some(inline)))
    }

    /// The payload bytes a slot carries when the link runs on inline-slot rings
    /// (negotiated with an intercore host through the vendor entry), `None` on the split
    /// ring. Meaningful once attached.
    pub fn inline_max(&self) -> Option<usize> {
        self.inline_max
    }

    /// Whether the rings run in order (negotiated with an intercore host through the
    /// vendor entry; `false`: the standard split ring). Meaningful once attached.
    pub fn in_order(&self) -> bool {
        self.in_order
    }

    /// Whether [`Self::wait_ready`] has attached to the rings (and no reset of the device
    /// has been seen since).
    pub fn is_ready(&self) -> bool {
        matches!(self.state, State::Ready(_))
    }

    /// Creates a local endpoint (`addr` `None`: the next free dynamic address from 1024,
    /// wrapping before `RPMSG_ADDR_ANY`, as on the host).
    pub fn create_endpoint(&mut self, name: &str, addr: Option<u32>) -> Result<u32> {
        self.endpoints.create(name, addr, super::RPMSG_ADDR_ANY)
    }

    /// Announces endpoint `addr` to the host's name service, waiting at most
    /// [`RemoteConfig::announce_timeout`] for a host receive buffer (`Timeout` then, and
    /// the endpoint counts as not announced).
    pub fn announce(&mut self, addr: impl Into<EndpointAddr>) -> Result<()> {
        let addr = addr.into().get();
        let name = self.endpoints.get(addr)?.name;
        let msg = endpoints::ns_message(name, addr, NsKind::Create);
        self.send_raw(addr, RPMSG_NS_ADDR, &msg, self.cfg.announce_timeout)?;
        self.endpoints.get_mut(addr)?.announced = true;
        Ok(())
    }

    /// Destroys endpoint `addr`, withdrawing its announcement (from its own address, as
    /// both roles do). The endpoint is gone locally at once; the withdrawal waits at most
    /// [`RemoteConfig::announce_timeout`] for a host receive buffer (`Timeout` then: the
    /// host was not told).
    pub fn destroy_endpoint(&mut self, addr: impl Into<EndpointAddr>) -> Result<()> {
        let ept = self.endpoints.remove(addr.into().get())?;
        if let Ok(mut rd) = self.ready() {
            rd.drop_held(ept.addr)?;
        }
        if ept.announced {
            let msg = endpoints::ns_message(ept.name, ept.addr, NsKind::Destroy);
            self.send_raw(ept.addr, RPMSG_NS_ADDR, &msg, self.cfg.announce_timeout)?;
        }
        Ok(())
    }

    /// Changes how long [`Self::announce`] and [`Self::destroy_endpoint`] wait for a host
    /// buffer ([`RemoteConfig::announce_timeout`]).
    pub fn set_announce_timeout(&mut self, timeout: Option<Duration>) {
        self.cfg.announce_timeout = timeout;
    }

    /// Endpoints the host announced: its address for `name`.
    pub fn host_service(&self, name: &str) -> Option<u32> {
        self.host_services
            .iter()
            .flatten()
            .find(|(n, _)| n.as_bytes() == name.as_bytes())
            .map(|&(_, a)| a)
    }

    /// The address of the service `name` the host announced, waiting up to `timeout` for
    /// the announcement ([`MessageIo`](super::MessageIo) has the timeout convention).
    /// Messages for local endpoints that arrive meanwhile are held for them (as a receive
    /// on one endpoint holds the others').
    pub fn find_service(&mut self, name: &str, timeout: Option<Duration>) -> Result<u32> {
        self.block_on(timeout, Want::Rx, |bus| {
            if let Some(a) = bus.host_service(name) {
                return Ok(Some(a));
            }
            bus.take_announcements()?;
            Ok(bus.host_service(name))
        })
    }

    /// Takes what the receive ring holds: name-service messages are read, messages for
    /// local endpoints held for them.
    fn take_announcements(&mut self) -> Result<()> {
        let mut rd = self.ready()?;
        // No endpoint has the address RPMSG_ADDR_ANY: every message is held or consumed.
        let r = rd.take_for(Some(super::RPMSG_ADDR_ANY));
        if let Ok(Some(t)) = &r {
            rd.finish(t);
        }
        rd.publish_rx()?;
        r.map(|_| ())
    }

    /// Opens a local endpoint named `name` (at the next free dynamic address) and announces
    /// it to the host's name service (waiting at most [`RemoteConfig::announce_timeout`]
    /// for a host buffer; the endpoint is removed again if the announcement fails).
    /// `remote` is the host address it talks to, or `RPMSG_ADDR_ANY`: then a send on the
    /// channel goes to the last sender to the endpoint (a service answering whoever calls).
    pub fn open(&mut self, name: &str, remote: u32) -> Result<Channel> {
        let local = self.create_endpoint(name, None)?;
        if let Err(e) = self.announce(local) {
            let _ = self.endpoints.remove(local);
            return Err(e);
        }
        Ok(Channel { local, remote })
    }

    /// [`Self::find_service`] then [`Self::open`]: a channel to the host's service `name`.
    pub fn connect(&mut self, name: &str, timeout: Option<Duration>) -> Result<Channel> {
        let remote = self.find_service(name, timeout)?;
        self.open(name, remote)
    }

    /// Closes a channel: its local endpoint is destroyed and its announcement withdrawn
    /// ([`Self::destroy_endpoint`]).
    pub fn close(&mut self, ch: Channel) -> Result<()> {
        self.destroy_endpoint(ch.local)
    }

    /// Where a send on `ch` goes: its remote address, or for `RPMSG_ADDR_ANY` the last
    /// sender to its local endpoint.
    fn destination(&self, ch: &Channel) -> Result<u32> {
        if ch.remote != super::RPMSG_ADDR_ANY {
            return Ok(ch.remote);
        }
        match self.endpoints.get(ch.local)?.ext {
            super::RPMSG_ADDR_ANY => Err(Error::NotReady(
                "channel to RPMSG_ADDR_ANY: no message received yet to reply to",
            )),
            last => Ok(last),
        }
    }

    /// Sends a copy of `data` on `ch`, waiting up to `timeout` for a host receive buffer
    /// (`MessageTooLarge` beyond [`Self::max_payload`] or the host buffer in hand).
    pub fn send(&mut self, ch: &Channel, data: &[u8], timeout: Option<Duration>) -> Result<()> {
        let dst = self.destination(ch)?;
        self.send_raw(ch.local, dst, data, timeout)
    }

    /// Receives one message for `ch`'s local endpoint into `buf`, waiting up to `timeout`:
    /// its length (`Truncated` with the full length, and the message consumed, when `buf`
    /// is too small). Copies with aligned accesses where the memory is Device memory.
    pub fn recv(
        &mut self,
        ch: &Channel,
        buf: &mut [u8],
        timeout: Option<Duration>,
    ) -> Result<usize> {
        self.recv_from(ch, buf, timeout).map(|(_, n)| n)
    }

    /// [`Self::recv`], also returning the sender's address (always `Some` on this bus).
    pub fn recv_from(
        &mut self,
        ch: &Channel,
        buf: &mut [u8],
        timeout: Option<Duration>,
    ) -> Result<(Option<u32>, usize)> {
        let device = self.mem.device_memory();
        let (src, len) = self.recv_with(ch, timeout, |m| {
            // Aligned accesses only if the payload may be Device memory.
            crate::shm::copy_out_of(device, m.payload, buf);
            (m.src, m.payload.len())
        })?;
        if len > buf.len() {
            return Err(Error::Truncated { len });
        }
        Ok((Some(src), len))
    }

    /// Sends on `ch` a message written in place in a host receive buffer (zero copy):
    /// `fill` gets the payload area (the host buffer's room, at most
    /// [`Self::max_payload`]) and returns the length it wrote. Waits up to `timeout` for a
    /// host buffer. The header is written from the channel and the returned length, never
    /// read back.
    pub fn send_with(
        &mut self,
        ch: &Channel,
        timeout: Option<Duration>,
        fill: impl FnOnce(&mut [u8]) -> usize,
    ) -> Result<()> {
        let dst = self.destination(ch)?;
        let src = ch.local;
        let mut fill = Some(fill);
        self.block_on(timeout, Want::Tx, |bus| {
            endpoints::pending(bus.try_send_in_place(src, dst, None, &mut fill))
        })
    }

    /// Receives one message for `ch`'s local endpoint and hands it to `f` in place (zero
    /// copy), waiting up to `timeout`; its buffer goes back to the host afterwards.
    /// Messages for the bus's other endpoints that arrive first are held for them, in
    /// their buffers (up to `N`, then returned unread and counted in
    /// [`RemoteStats::held_dropped`]); [`Self::recv_any_with`] delivers held messages
    /// first.
    pub fn recv_with<R>(
        &mut self,
        ch: &Channel,
        timeout: Option<Duration>,
        f: impl FnOnce(Msg<'_>) -> R,
    ) -> Result<R> {
        let ep = ch.local;
        self.endpoints.get(ep)?;
        let mut f = Some(f);
        self.block_on(timeout, Want::Rx, |bus| {
            let mut out = None;
            let got = bus.try_recv_for(Some(ep), |m| out = f.take().map(|f| f(m)));
            endpoints::pending(got).map(|g| g.and(out))
        })
    }

    /// Receives one message for any local endpoint and hands it to `f` in place (`m.dst`
    /// names the endpoint), waiting up to `timeout`: the raw form of [`Self::recv_with`].
    /// Messages for unknown addresses and malformed ones are returned to the host unread
    /// (and counted); a descriptor that breaks the protocol is an error for the link.
    pub fn recv_any_with<R>(
        &mut self,
        timeout: Option<Duration>,
        f: impl FnOnce(Msg<'_>) -> R,
    ) -> Result<R> {
        let mut f = Some(f);
        self.block_on(timeout, Want::Rx, |bus| {
            let mut out = None;
            let got = bus.try_recv_for(None, |m| out = f.take().map(|f| f(m)));
            endpoints::pending(got).map(|g| g.and(out))
        })
    }

    fn try_recv_for<R>(&mut self, ep: Option<u32>, f: impl FnOnce(Msg<'_>) -> R) -> Result<R> {
        let r = self.recv_for(ep, f);
        self.idle = r.is_err();
        r
    }

    fn recv_for<R>(&mut self, ep: Option<u32>, f: impl FnOnce(Msg<'_>) -> R) -> Result<R> {
        let mut rd = self.ready()?;
        let r = match rd.take_for(ep)? {
            Some(t) => rd.deliver(&t, f).map(Some),
            None => Ok(None),
        };
        rd.publish_rx()?;
        r?.ok_or(Error::WouldBlock)
    }

    /// Delivers up to `max` messages to `f` without blocking and returns the buffers to the
    /// host together (one index update, at most one doorbell). Returns how many were
    /// delivered (0 when none was there).
    pub fn try_recv_batch(&mut self, max: usize, mut f: impl FnMut(Msg<'_>)) -> Result<usize> {
        let mut rd = self.ready()?;
        let mut n = 0;
        let mut r = Ok(());
        while n < max {
            match rd.take_for(None) {
                Ok(Some(t)) => {
                    if let Err(e) = rd.deliver(&t, &mut f) {
                        r = Err(e);
                        break;
                    }
                    n += 1;
                }
                Ok(None) => break,
                Err(e) => {
                    r = Err(e);
                    break;
                }
            }
        }
        rd.publish_rx()?;
        self.idle = n == 0 || r.is_err();
        r.map(|()| n)
    }

    /// Fills one of the host's receive buffers in place with `fill` (which gets the
    /// payload area and returns the length it wrote) and sends it from `src` to `dst`,
    /// without blocking (`WouldBlock` when the host has no receive buffer posted). `max`
    /// is the payload length needed (`None`: the buffer's room, at most
    /// [`Self::max_payload`]); a host buffer too small for it is an error
    /// (`MessageTooLarge`) and the buffer stays available. `fill` is taken only once a
    /// buffer is in hand.
    fn try_send_in_place(
        &mut self,
        src: u32,
        dst: u32,
        max: Option<usize>,
        fill: &mut Option<impl FnOnce(&mut [u8]) -> usize>,
    ) -> Result<()> {
        let r = self.send_in_place(src, dst, max, fill);
        self.idle = r.is_err();
        r
    }

    fn send_in_place(
        &mut self,
        src: u32,
        dst: u32,
        max: Option<usize>,
        fill: &mut Option<impl FnOnce(&mut [u8]) -> usize>,
    ) -> Result<()> {
        let limit = self.max_payload();
        let mut rd = self.ready()?;
        let mut slot = rd.tx_slot()?.ok_or(Error::WouldBlock)?;
        let max = match max {
            Some(m) if m > slot.room => {
                rd.untake_tx();
                return Err(Error::MessageTooLarge {
                    len: m,
                    max: slot.room,
                });
            }
            Some(m) => m,
            None => slot.room.min(limit),
        };
        let Some(f) = fill.take() else {
            rd.untake_tx();
            return Err(Error::WouldBlock);
        };
        let mut range = rd.claim_tx(&mut slot, max)?;
        let len = f(range.bytes_mut(rd.mem)).min(max);
        rd.submit(&slot, src, dst, len)
    }

    /// Sends a copy of `data` from `src` to `dst`, waiting up to `timeout` for a host
    /// receive buffer: the raw form of [`Self::send`], for a source or destination no
    /// channel names (the name service, a reply to a given sender).
    pub fn send_raw(
        &mut self,
        src: impl Into<EndpointAddr>,
        dst: impl Into<EndpointAddr>,
        data: &[u8],
        timeout: Option<Duration>,
    ) -> Result<()> {
        let (src, dst) = (src.into().get(), dst.into().get());
        // Aligned accesses only if the host's buffer may be Device memory.
        let device = self.mem.device_memory();
        self.block_on(timeout, Want::Tx, |bus| {
            let mut fill = Some(|buf: &mut [u8]| crate::shm::copy_into(device, buf, data));
            endpoints::pending(bus.try_send_in_place(src, dst, Some(data.len()), &mut fill))
        })
    }

    /// Runs `attempt` until it returns something, waiting as the timeout convention of
    /// [`MessageIo`](super::MessageIo) says (`Some(ZERO)`: one attempt; expiry `Timeout`).
    fn block_on<T>(
        &mut self,
        timeout: Option<Duration>,
        want: Want,
        mut attempt: impl FnMut(&mut Self) -> Result<Option<T>>,
    ) -> Result<T> {
        if timeout == Some(Duration::ZERO) {
            return attempt(self)?.ok_or(Error::Timeout);
        }
        self.want_both = want == Want::Both;
        crate::notify::block_on(self, timeout, want != Want::Rx, attempt)
    }
}

/// The first vring (index) that overlaps the firmware's private memory, with its full
/// extent.
fn ring_over_private(info: &VdevInfo, cfg: &RemoteConfig) -> Option<usize> {
    let p = cfg.private?;
    info.rings
        .iter()
        .position(|r| super::overlaps((r.base, r.layout.size()), p))
}

/// What a blocking call waits for: a message, a host buffer to fill, or both at once
/// (the reply path).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    Rx,
    Tx,
    Both,
}

impl<M: SharedMemory, D: Doorbell, const N: usize> crate::notify::Sleeper for RemoteBus<M, D, N> {
    type Bell = D;
    fn bell(&self) -> &D {
        &self.link.bell
    }
    fn wait_mode(&self) -> WaitMode {
        self.wait
    }
    fn spin_policy(&mut self) -> &mut crate::notify::SpinPolicy {
        &mut self.spin
    }
    fn arm(&mut self, want_tx: bool) -> Result<bool> {
        let State::Ready(rings) = &mut self.state else {
            return Err(Error::NotReady("call wait_ready first"));
        };
        let now = self.link.bell.now();
        let (rx_ready, tx_ready) = match &mut rings.inline {
            Some(i) => {
                let (rx_ready, kick) = i.rx.arm(&self.mem, now).map_err(|e| self.link.fail(e))?;
                let tx_ready =
                    want_tx && i.tx.arm_space(&self.mem).map_err(|e| self.link.fail(e))?;
                if kick {
                    self.link.kick(1)?;
                }
                (rx_ready, tx_ready)
            }
            None => (
                rings.rx.enable_notify(&self.mem),
                want_tx && rings.tx.enable_notify(&self.mem),
            ),
        };
        // The reply path needs a message and a host buffer together: with one of them
        // there, sleep until the other is notified.
        Ok(if self.want_both {
            rx_ready && tx_ready
        } else {
            rx_ready || tx_ready
        })
    }
    fn disarm(&mut self) {
        if let State::Ready(rings) = &mut self.state {
            if let Some(i) = &mut rings.inline {
                i.rx.disarm(&self.mem);
                i.tx.disarm_space(&self.mem);
                return;
            }
            rings.rx.disable_notify(&self.mem);
            rings.tx.disable_notify(&self.mem);
        }
    }
    fn fail(&mut self, e: Error) -> Error {
        self.link.fail(e)
    }
}

impl DevAddr {
    /// The address `n` bytes further.
    pub const fn add(self, n: u64) -> Self {
        DevAddr(self.0 + n)
    }
}
