//! The host role: the virtio driver side of both rings (what Linux's `virtio_rpmsg_bus`
//! does), in userspace.

mod bufs;
mod config;
mod post;
mod recovery;

pub use bufs::{RxBuf, TxBuf};
pub use config::{CoherentPool, HostConfig, HostStats, LINUX_PAGE, VdevPlacement};

use super::endpoints::{self, Core, EndpointAddr, Endpoints, Indexed};
use super::{
    Channel, Msg, RPMSG_ADDR_ANY, RPMSG_HDR_SIZE, RPMSG_NS_ADDR, RscLocation, VdevInfo, status,
};
use crate::shm::OwnedRange;
use crate::virtq::DriverQueue;
use crate::virtq::inline::{InlineRx, InlineTx, LinkPlan};
use crate::{DevAddr, DeviceAddressMap, Doorbell, Error, Result, SharedMemory, WaitMode};
use alloc::boxed::Box;
use alloc::collections::{BTreeMap, VecDeque};
use alloc::sync::Arc;
use alloc::vec::Vec;
use bufs::{Returned, Shared};
use core::sync::atomic::Ordering::{Relaxed, Release};
use core::time::Duration;
use intercore_wire::rpmsg::{Name, NsAnnouncement, NsKind, RPMSG_NS_MSG_SIZE};

/// The default transmit credit (`HostConfig::tx_credit` unset) while another local
/// endpoint is active: a flood is held to this many messages in the transmit ring, so
/// another endpoint's message waits behind at most this many of its.
pub const SHARED_TX_CREDIT: u16 = 2;
/// An endpoint is active for the default credit while it sent one of the last this many
/// ring lengths of messages (a lone sender fills the whole ring once the others are quiet
/// that long).
const SHARED_WINDOW: u64 = 16;

/// One entry of an endpoint's queue, in arrival order.
#[derive(Debug)]
enum Pending {
    /// Held in place in receive buffer `id`.
    Ring { id: u16, src: u32, len: u16 },
    /// Copied out of the ring (the endpoint held its limit of buffers in place).
    Copied { src: u32, data: Box<[u8]> },
    /// This many messages were dropped here (the queue was full): the receive that reaches
    /// this entry returns `Error::Lost`.
    Lost(u64),
}

/// What the host keeps per endpoint beyond the shared table entry.
#[derive(Default)]
struct Inbox {
    queue: VecDeque<Pending>,
    /// Receive buffers this endpoint holds: queued in place, or lent out as `RxBuf`.
    held: u16,
    /// `Pending::Copied` entries in the queue.
    copied: usize,
    /// Listed in `HostBus::ready` (each endpoint at most once).
    listed: bool,
}

type Table = Endpoints<Inbox, Indexed<Inbox>>;

/// What [`HostBus::recv_slot_direct`] did.
enum Direct {
    /// Took a message of this length from this source (its payload copied, truncated to
    /// the buffer).
    Got(u32, usize),
    /// Nothing has arrived.
    Empty,
    /// Not taken that way: the general receive path follows.
    General,
}

/// Both inline-slot rings (negotiated with an intercore remote: `INTERCORE_F_INLINE`).
/// Messages come and go through the slots; the split rings are not used. A received
/// message is filed under its endpoint by slot number (the `id` of `Pending::Ring`,
/// `RxBuf` and `rx_holder`, below the number of slots), and released in order: a slot
/// whose message is done waits in `done` for the older ones.
struct Inline {
    rx: InlineRx,
    tx: InlineTx,
    /// Per slot of `rx`: the payload's region offset while taken.
    pay: Vec<usize>,
    /// Per slot of `rx`: taken, and done with (released once every older one is).
    done: Vec<bool>,
    /// The remote waits for space on `rx` and the last release said to ring it.
    kick: bool,
    /// The remote accepted the ask flag (`INTERCORE_F_INLINE_ASK`): a message that uses up
    /// its sender's transmit credit asks for its release to be published at once.
    ask: bool,
}

/// The host side of an rpmsg link: built like [`RemoteBus`](super::RemoteBus)
/// (`new(mem, bell, &map, rsc, cfg)`), with the same endpoint and message calls.
///
/// ```
/// use std::time::Duration;
/// use intercore::rpmsg::{HostBus, HostConfig};
/// use intercore::testing::{Carveout, ThreadBell};
///
/// // Shared memory holding the firmware's resource table, and a doorbell to the remote.
/// let c = Carveout::with_buffers(16);
/// let (bell, _remote_bell) = ThreadBell::pair();
/// let cfg = HostConfig::default().timeout(Some(Duration::from_millis(100)));
/// let mut host = HostBus::new(c.mem.clone(), bell, &c.map, c.rsc, cfg)?;
/// // No remote runs here: nothing was announced, and a look that does not wait says so.
/// let none = host.find_service("rpmsg-echo", Some(Duration::ZERO));
/// assert_eq!(none, Err(intercore::Error::Timeout));
/// // Messages wait in the host's transmit buffers until the remote takes them.
/// let ch = host.open("me", 1024)?;
/// host.send(&ch, b"for the remote", None)?;
/// assert_eq!(host.stats().sent, 1);
/// # Ok::<(), intercore::Error>(())
/// ```
pub struct HostBus<M: SharedMemory, D: Doorbell> {
    shared: Arc<Shared<M>>,
    link: Core<D>,
    cfg: HostConfig,
    info: VdevInfo,
    /// Region offset of the vdev's status word.
    status_off: usize,
    ns: bool,
    rx: DriverQueue,
    tx: DriverQueue,
    /// Inline-slot rings, when negotiated (`rx`/`tx` then unused).
    inline: Option<Inline>,
    nbufs: u16,
    tx_fresh: u16,
    tx_free: Vec<u16>,
    rx_unpublished: bool,
    endpoints: Table,
    /// Endpoints with messages queued, in the order they got them (each listed once; an
    /// endpoint that still has some after a receive goes to the back): what
    /// [`Self::next_ready`] and `recv_any_with` take from, O(1) per message.
    ready: VecDeque<u32>,
    services: BTreeMap<[u8; 32], u32>,
    /// Which endpoint holds each receive buffer (by id), if one does.
    rx_holder: Vec<Option<u32>>,
    held_limit: u16,
    /// Transmit credit in force (`HostConfig::tx_credit`).
    tx_credit: u16,
    /// Split ring: which local endpoint sent the message in each transmit buffer (by id)
    /// until the remote returns it on the used ring.
    tx_owner: Vec<Option<u32>>,
    /// Inline rings: the sender of each message in flight, oldest first (the remote
    /// releases slots in order).
    tx_order: VecDeque<u32>,
    /// Messages each local endpoint has in the transmit ring not yet consumed.
    tx_flight: BTreeMap<u32, u16>,
    /// A send waits for its endpoint's credit (not for a free buffer): blocking calls arm
    /// for the remote's progress on the inline ring.
    credit_wait: bool,
    /// Messages [`Self::post`] parked, per endpoint, sent by [`Self::poll`].
    parked: post::Parked,
    /// The last sender and the last other sender before it, with the send count at their
    /// last send: whether another endpoint sent recently, in O(1) (the default credit).
    senders: [(u32, u64); 2],
    /// Messages sent, counted for `senders`.
    sends: u64,
    /// Replaced by [`HostBus::reconnect`]: the device belongs to the new bus now.
    detached: bool,
    /// How long blocking calls spin in adaptive mode (learnt across calls).
    spin: crate::notify::SpinPolicy,
    sleeps: u64,
    ns_refused: u64,
    ns_overflow: u64,
    held_copied: u64,
    held_dropped: u64,
}

impl<M: SharedMemory, D: Doorbell> HostBus<M, D> {
    /// Sets up the link the resource table at `rsc` describes, with device addresses
    /// mapped to region offsets by `map`: negotiates features, resets both rings, posts
    /// every receive buffer and sets `DRIVER_OK`, then rings the remote. The same shape as
    /// [`RemoteBus::new`](super::RemoteBus::new).
    pub fn new<A: DeviceAddressMap>(
        mem: M,
        bell: D,
        map: &A,
        rsc: RscLocation,
        cfg: HostConfig,
    ) -> Result<Self> {
        let mut table = super::read_table(&mem, map, rsc)?;
        if cfg.buf_size < RPMSG_HDR_SIZE + 16
            || cfg.buf_size > RPMSG_HDR_SIZE + u16::MAX as usize
            || cfg.buf_size % 8 != 0
        {
            return Err(Error::Config(
                "buffer size must be a multiple of 8 in 32..=65551",
            ));
        }
        // Everything is planned and checked on private copies first: a failed open leaves
        // shared memory as it found it.
        let nbufs = cfg
            .num_bufs
            .min(table.rings[0].layout.num())
            .min(table.rings[1].layout.num());
        if nbufs == 0 {
            return Err(Error::Config("no buffers"));
        }
        let buf_bytes = 2 * nbufs as usize * cfg.buf_size;
        let from_pool = (table.buffers.is_none() && cfg.buffers.is_none()).then_some(buf_bytes);
        let pooled = config::plan(mem.len(), &mut table, cfg.vring_region, from_pool)?;
        let info = table.resolve(map, cfg.buffers.or(pooled), false)?;
        let status_off = table.status_off;
        let gfeatures_off = table.gfeatures_off;
        let event_idx = info.dfeatures & (1 << intercore_wire::vring::VIRTIO_RING_F_EVENT_IDX) != 0;
        let ns = info.dfeatures & (1 << intercore_wire::rpmsg::VIRTIO_RPMSG_F_NS) != 0;
        let mut rx = DriverQueue::new(&mem, info.rings[0].base, info.rings[0].layout, event_idx)?;
        let mut tx = DriverQueue::new(&mem, info.rings[1].base, info.rings[1].layout, event_idx)?;
        if buf_bytes > info.buf_len {
            return Err(Error::Config(
                "the buffer area (vdev0buffer) is too small for the configured buffers",
            ));
        }
        // In-order and inline rings only with a firmware that offered them in its intercore
        // vendor entry (an intercore remote); any other table gets the standard split
        // ring. Inline rings need a buffer per vring entry each way (the slots' companion
        // buffers are located from the slot number: `LinkPlan`).
        let plan = match info.intercore {
            Some(e)
                if cfg.inline
                    && nbufs == info.rings[0].layout.num()
                    && crate::virtq::inline::negotiate(Some((e.offered, e.inline_max)), true)
                        .is_some() =>
            {
                let ring = |i: usize| {
                    let r = info.rings[i];
                    (r.base, r.layout.size(), u32::from(r.layout.num()))
                };
                LinkPlan::new(
                    [ring(0), ring(1)],
                    info.buf_off,
                    info.buf_len,
                    cfg.buf_size,
                    e.inline_max as usize,
                )
                .ok()
            }
            _ => None,
        };
        let mut want = 0;
        if plan.is_some() {
            want |= intercore_wire::rsc::INTERCORE_F_INLINE
                | intercore_wire::rsc::INTERCORE_F_INLINE_ASK;
        } else if cfg.in_order {
            want |= intercore_wire::rsc::INTERCORE_F_IN_ORDER;
        }
        let accepted = match info.intercore {
            Some(e) => e.offered & intercore_wire::rsc::INTERCORE_FEATURES & want,
            None => 0,
        };
        let in_order = accepted & intercore_wire::rsc::INTERCORE_F_IN_ORDER != 0;
        rx.set_in_order(in_order)?;
        tx.set_in_order(in_order)?;
        let inline = match plan {
            Some(p) => {
                let [(lr, cr), (lt, ct)] = p.dirs;
                let slots = lr.slots as usize;
                Some(Inline {
                    rx: InlineRx::new(&mem, lr, cr)?,
                    tx: InlineTx::new(&mem, lt, ct)?,
                    pay: alloc::vec![0; slots],
                    done: alloc::vec![false; slots],
                    kick: false,
                    ask: accepted & intercore_wire::rsc::INTERCORE_F_INLINE_ASK != 0,
                })
            }
            None => None,
        };
        // From here on only writes. The device is reset first (status 0: the remote reads
        // nothing until the Release store of DRIVER_OK below).
        mem.store_u32(status_off, info.status_rest, Release);
        config::write_rings(&mem, &table);
        match &inline {
            // Each direction's ring in its vring's area, empty and disarmed.
            Some(i) => {
                i.rx.layout().reset(&mem);
                i.tx.layout().reset(&mem);
            }
            None => {
                rx.reset(&mem);
                tx.reset(&mem);
            }
        }
        // The acceptance word is written either way, so a stale one never outlives this
        // host. Relaxed: published to the remote by the Release store of DRIVER_OK.
        if let Some(e) = info.intercore {
            mem.store_u32(e.accepted_off, accepted, Relaxed);
        }
        mem.store_u32(
            gfeatures_off,
            info.dfeatures & super::SUPPORTED_FEATURES,
            Relaxed,
        );
        // The status Linux writes for a remoteproc vdev: ACKNOWLEDGE, DRIVER, then
        // DRIVER_OK — never FEATURES_OK. `virtio_dev_probe` → `virtio_features_ok()` sets
        // FEATURES_OK only when the device offers VIRTIO_F_VERSION_1 (bit 32), which the
        // table's 32-bit `dfeatures` cannot; TI's MCU+ SDK firmware waits for status == 0x7
        // exactly (`RPMessage_waitForLinuxReady`). Our remote checks DRIVER_OK alone.
        let status_word = |s: u8| info.status_rest | u32::from(s);
        mem.store_u32(
            status_off,
            status_word(status::ACKNOWLEDGE | status::DRIVER),
            Relaxed,
        );
        let shared = Arc::new(Shared {
            mem,
            rx_returned: Returned::new(),
            tx_returned: Returned::new(),
        });
        // What the transmit ring holds: the slots on inline rings, else the buffers.
        let cap = inline
            .as_ref()
            .map_or(nbufs, |i| i.tx.layout().slots as u16);
        let tx_credit = cfg.tx_credit.unwrap_or(SHARED_TX_CREDIT).clamp(1, cap);
        let mut bus = Self {
            shared,
            link: Core::new(bell, info.notify_ids),
            cfg,
            info,
            status_off,
            ns,
            rx,
            tx,
            // Inline: transmit buffers from the first past the slots' companions are lent
            // as `TxBuf`s.
            tx_fresh: inline.as_ref().map_or(0, |i| i.tx.layout().slots as u16),
            inline,
            nbufs,
            tx_free: Vec::with_capacity(nbufs as usize),
            rx_unpublished: false,
            endpoints: Endpoints::new(Indexed::default()),
            ready: VecDeque::new(),
            services: BTreeMap::new(),
            rx_holder: alloc::vec![None; nbufs as usize],
            held_limit: cfg
                .max_held_per_endpoint
                .unwrap_or(nbufs - nbufs / 4)
                .clamp(1, nbufs),
            tx_credit,
            tx_owner: alloc::vec![None; nbufs as usize],
            tx_order: VecDeque::new(),
            tx_flight: BTreeMap::new(),
            credit_wait: false,
            parked: post::Parked::default(),
            senders: [(RPMSG_ADDR_ANY, 0); 2],
            sends: 0,
            detached: false,
            spin: crate::notify::SpinPolicy::default(),
            sleeps: 0,
            ns_refused: 0,
            ns_overflow: 0,
            held_copied: 0,
            held_dropped: 0,
        };
        if bus.inline.is_none() {
            for id in 0..nbufs {
                bus.repost(id)?;
            }
        }
        let mem = &bus.shared.mem;
        if bus.inline.is_none() {
            bus.rx.publish(mem);
        }
        bus.rx_unpublished = false;
        // Release: rings, features and posted buffers are visible before DRIVER_OK.
        mem.store_u32(
            bus.status_off,
            status_word(status::ACKNOWLEDGE | status::DRIVER | status::DRIVER_OK),
            Release,
        );
        bus.kick(0)?;
        bus.declare_polling();
        Ok(bus)
    }

    /// Tells the remote whether our inline receive ring's consumer (this bus) polls
    /// without ever sleeping (`WaitMode::Poll`): it then skips its wake check per message
    /// (`InlineRx::declare_polling`).
    fn declare_polling(&mut self) {
        let polls = self.cfg.wait == WaitMode::Poll;
        let now = self.link.bell.now();
        if let Some(i) = &mut self.inline {
            i.rx.declare_polling(&self.shared.mem, polls, now);
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &HostConfig {
        &self.cfg
    }
    /// Changes how blocking calls wait (on inline rings, a change to or from
    /// `WaitMode::Poll` is told to the remote, which then stops or starts checking
    /// whether to ring after each message).
    pub fn set_wait_mode(&mut self, mode: WaitMode) {
        self.cfg.wait = mode;
        self.declare_polling();
    }
    /// Changes the default timeout of blocking calls.
    pub fn set_timeout(&mut self, timeout: Option<Duration>) {
        self.cfg.timeout = timeout;
    }
    /// Counters.
    pub fn stats(&self) -> HostStats {
        let c = self.link.count;
        HostStats {
            sent: c.sent,
            received: c.received,
            kicks: c.kicks,
            sleeps: self.sleeps,
            no_endpoint: c.no_endpoint,
            malformed: c.malformed,
            ns_refused: self.ns_refused,
            ns_overflow: self.ns_overflow,
            held_copied: self.held_copied,
            held_dropped: self.held_dropped,
        }
    }
    /// Largest payload a message can carry.
    pub fn max_payload(&self) -> usize {
        self.cfg.buf_size - RPMSG_HDR_SIZE
    }
    /// Whether the rings run in order (negotiated with an intercore remote through the
    /// vendor entry; `false`: the standard split ring).
    pub fn in_order(&self) -> bool {
        self.inline.is_none() && self.rx.is_in_order()
    }
    /// The payload bytes a slot carries when the link runs on inline-slot rings
    /// (negotiated with an intercore remote through the vendor entry; larger messages go
    /// by reference in the buffers), `None` on the split ring.
    pub fn inline_max(&self) -> Option<usize> {
        self.inline.as_ref().map(|i| i.rx.layout().max_inline())
    }
    /// Buffers per direction.
    pub fn num_bufs(&self) -> u16 {
        self.nbufs
    }
    /// The doorbell.
    pub fn doorbell(&self) -> &D {
        &self.link.bell
    }
    /// For event loops that wait on the doorbell themselves (an async runtime's reactor,
    /// epoll): asks the remote to ring for the next received message, and with `want_tx`
    /// for the next returned transmit buffer, as a blocking call does before it sleeps.
    /// `Ok(true)` when something is pending already (try again instead of waiting): a
    /// message that raced the request is never slept through. The request stays in force
    /// (each message taken off the ring renews it) until a blocking call's wait ends; call
    /// it again before every wait.
    pub fn arm_notify(&mut self, want_tx: bool) -> Result<bool> {
        self.check()?;
        crate::notify::Sleeper::arm(self, want_tx)
    }
    /// Why the link is dead, if it is.
    pub fn broken(&self) -> Option<Error> {
        self.link.broken
    }

    fn mem(&self) -> &M {
        &self.shared.mem
    }

    fn check(&self) -> Result<()> {
        self.link.check()
    }

    /// Records link-fatal errors so every later call reports them too.
    fn fail(&mut self, e: Error) -> Error {
        self.link.fail(e)
    }

    /// Rings the remote about vring `ring` (0: receive buffers posted, 1: messages sent).
    fn kick(&mut self, ring: usize) -> Result<()> {
        self.link.kick(ring)
    }

    fn rx_off(&self, id: u16) -> usize {
        self.info.buf_off + id as usize * self.cfg.buf_size
    }
    fn tx_off(&self, id: u16) -> usize {
        self.info.buf_off + (self.nbufs as usize + id as usize) * self.cfg.buf_size
    }
    fn da(&self, off: usize) -> DevAddr {
        DevAddr(self.info.buf_da.0 + (off - self.info.buf_off) as u64)
    }

    /// Region offset of the payload of received message `id` (a receive buffer, or an
    /// inline slot's message).
    fn rx_pay(&self, id: u16) -> usize {
        match &self.inline {
            Some(i) => i.pay[id as usize],
            None => self.rx_off(id) + RPMSG_HDR_SIZE,
        }
    }

    fn repost(&mut self, id: u16) -> Result<()> {
        self.unhold(id);
        if self.inline.is_some() {
            return self.release_slot(id);
        }
        let off = self.rx_off(id);
        let da = self.da(off);
        let r = self
            .rx
            .add(&self.shared.mem, id, da, self.cfg.buf_size as u32, true);
        self.rx_unpublished = true;
        r
    }

    /// Inline: slot `id`'s message is done with; releases every message done with from the
    /// oldest taken on (in order: a slot waits for the older ones).
    fn release_slot(&mut self, id: u16) -> Result<()> {
        let Some(i) = &mut self.inline else {
            return Ok(());
        };
        if let Some(d) = i.done.get_mut(id as usize) {
            *d = true;
        }
        let mask = i.rx.layout().slots - 1;
        let mem = &self.shared.mem;
        while i.rx.held() > 0 {
            let k = (i.rx.oldest_held() & mask) as usize;
            if !i.done[k] {
                break;
            }
            i.done[k] = false;
            i.kick |= i.rx.release(mem)?;
        }
        Ok(())
    }

    fn publish_rx(&mut self) -> Result<()> {
        if let Some(i) = &mut self.inline {
            if core::mem::take(&mut i.kick) {
                self.kick(0)?;
            }
            return Ok(());
        }
        if self.rx_unpublished {
            self.rx_unpublished = false;
            if self.rx.publish(&self.shared.mem) {
                self.kick(0)?;
            }
        }
        Ok(())
    }

    /// Takes every arrived message off the receive ring and files it under its endpoint;
    /// handles name-service announcements. Returns how many buffers arrived. Never blocks.
    /// Then sends what [`Self::post`] parked, as credit and buffers allow.
    pub fn poll(&mut self) -> Result<usize> {
        let n = self.poll_rx(true, None)?;
        if !self.parked.is_empty() {
            self.send_parked()?;
        }
        Ok(n)
    }

    /// [`Self::poll`]; on inline rings `compact` copies queued messages out when every
    /// slot is taken (a receive for one endpoint first looks whether it has a message),
    /// and `until` stops at the first message for that endpoint (the next slot is not
    /// looked at only to find it empty: one line fewer per message).
    fn poll_rx(&mut self, compact: bool, until: Option<u32>) -> Result<usize> {
        self.check()?;
        if self.shared.rx_returned.pending() {
            let shared = Arc::clone(&self.shared);
            let mut r = Ok(());
            shared.rx_returned.take(|id| {
                if r.is_ok() {
                    r = self.repost(id);
                }
            });
            r?;
        }
        if self.inline.is_some() {
            let n = self.poll_inline(compact, until)?;
            self.publish_rx()?;
            return Ok(n);
        }
        let mut n = 0;
        loop {
            let used = self
                .rx
                .pop_used(&self.shared.mem)
                .map_err(|e| self.fail(e))?;
            let Some((id, len)) = used else { break };
            n += 1;
            self.dispatch(id, len as usize)?;
            // The batch the last index load announced is taken: the next call looks again
            // (no load only to find the ring empty).
            if !self.rx.has_seen_used() {
                break;
            }
        }
        self.publish_rx()?;
        Ok(n)
    }

    /// Inline: takes every message in the slots and files it. A slot that breaks the
    /// protocol (sequence word, length, flags) is an error for the link. When every slot
    /// is taken and the oldest waits in an endpoint's queue, the queued messages are
    /// copied out so the remote can go on (the in-order release cannot pass them).
    fn poll_inline(&mut self, compact: bool, until: Option<u32>) -> Result<usize> {
        let mut n = 0;
        loop {
            let Some(i) = &mut self.inline else {
                return Ok(n);
            };
            let k = (i.rx.next_number() & (i.rx.layout().slots - 1)) as u16;
            let m = match i.rx.try_recv(&self.shared.mem) {
                Ok(Some(m)) => m,
                Ok(None) => break,
                Err(e) => return Err(self.fail(e)),
            };
            i.pay[k as usize] = m.off;
            n += 1;
            self.file(k, m.src, m.dst, m.off, m.len)?;
            if until.is_some_and(|ep| ep == m.dst) {
                break;
            }
        }
        if compact && self.rx_full() {
            self.copy_out_queued()?;
        }
        Ok(n)
    }

    /// Inline, the copying receive's fast path: when nothing is queued for endpoint `ep`
    /// and every slot taken so far is released, the next slot's message — if it is for
    /// `ep` — is copied into `buf` and its slot released at once, never queued: what
    /// `poll_rx`, `next_pending` and `try_recv_copy` do for it, with one endpoint lookup.
    /// A message for anyone else is filed as [`Self::poll`] files it, and the general
    /// path follows ([`Direct::General`]), as it does whenever the conditions do not hold.
    fn recv_slot_direct(&mut self, ep: u32, buf: &mut [u8]) -> Result<Direct> {
        self.check()?;
        // `NoSuchEndpoint` first, as `next_pending`.
        if !self.endpoints.get_mut(ep)?.ext.queue.is_empty() {
            return Ok(Direct::General);
        }
        let Some(i) = &mut self.inline else {
            return Ok(Direct::General);
        };
        if i.rx.held() != 0 || i.kick || self.shared.rx_returned.pending() {
            return Ok(Direct::General);
        }
        let k = (i.rx.next_number() & (i.rx.layout().slots - 1)) as u16;
        let m = match i.rx.try_recv(&self.shared.mem) {
            Ok(Some(m)) => m,
            Ok(None) => return Ok(Direct::Empty),
            Err(e) => return Err(self.fail(e)),
        };
        if m.dst != ep {
            i.pay[k as usize] = m.off;
            self.file(k, m.src, m.dst, m.off, m.len)?;
            return Ok(Direct::General);
        }
        let n = m.len.min(buf.len());
        self.shared.mem.read(m.off, &mut buf[..n]);
        // The only slot taken: released now, in order.
        let kick = match i.rx.release(&self.shared.mem) {
            Ok(k) => k,
            Err(e) => return Err(self.fail(e)),
        };
        if kick {
            self.kick(0)?;
        }
        self.link.count.received += 1;
        Ok(Direct::Got(m.src, m.len))
    }

    /// Inline: every slot of the receive ring is taken (the remote cannot send).
    fn rx_full(&self) -> bool {
        self.inline
            .as_ref()
            .is_some_and(|i| i.rx.held() == i.rx.layout().slots)
    }

    /// Inline, every slot taken: the messages queued in their slots are copied into their
    /// endpoints' queues and their slots released (views lent out as `RxBuf` stay).
    fn copy_out_queued(&mut self) -> Result<()> {
        let addrs: Vec<u32> = self.endpoints.iter().map(|e| e.addr).collect();
        let mut freed = Vec::new();
        for a in addrs {
            let Ok(ep) = self.endpoints.get_mut(a) else {
                continue;
            };
            for p in ep.ext.queue.iter_mut() {
                if let Pending::Ring { id, src, len } = *p {
                    let mut data = alloc::vec![0u8; len as usize].into_boxed_slice();
                    let off = self.inline.as_ref().map_or(0, |i| i.pay[id as usize]);
                    self.shared.mem.read(off, &mut data);
                    *p = Pending::Copied { src, data };
                    ep.ext.copied += 1;
                    freed.push(id);
                }
            }
        }
        self.held_copied += freed.len() as u64;
        for id in freed {
            self.repost(id)?;
        }
        Ok(())
    }

    fn dispatch(&mut self, id: u16, len: usize) -> Result<()> {
        if len > self.cfg.buf_size {
            self.link.count.malformed += 1;
            return self.repost(id);
        }
        let off = self.rx_off(id);
        let (src, dst, plen) = match super::read_header(self.mem(), off, len) {
            Ok(h) => h,
            Err(_) => {
                self.link.count.malformed += 1;
                return self.repost(id);
            }
        };
        self.file(id, src, dst, off + RPMSG_HDR_SIZE, plen)
    }

    /// Files received message `id` (payload at region offset `pay`, `plen` bytes, header
    /// checked): the name service's, held in place for its endpoint, copied out, or
    /// dropped and counted.
    fn file(&mut self, id: u16, src: u32, dst: u32, pay: usize, plen: usize) -> Result<()> {
        if dst == RPMSG_NS_ADDR {
            self.name_service(pay, plen);
            return self.repost(id);
        }
        let limit = self.held_limit;
        let copy_limit = self.cfg.max_copied_per_endpoint;
        let Some((held, copied)) = self
            .endpoints
            .get_mut(dst)
            .ok()
            .map(|e| (e.ext.held, e.ext.copied))
        else {
            self.link.count.no_endpoint += 1;
            return self.repost(id);
        };
        let entry = if held < limit {
            self.rx_holder[id as usize] = Some(dst);
            Pending::Ring {
                id,
                src,
                len: plen as u16,
            }
        } else if copied < copy_limit {
            // Past the in-place limit: copy out (as Linux copies every message into an
            // skb queue) so the buffer goes back to the ring at once.
            let mut data = alloc::vec![0u8; plen].into_boxed_slice();
            self.mem().read(pay, &mut data);
            self.held_copied += 1;
            Pending::Copied { src, data }
        } else {
            self.held_dropped += 1;
            Pending::Lost(1)
        };
        let ep = &mut self.endpoints.get_mut(dst)?.ext;
        match (entry, ep.queue.back_mut()) {
            (Pending::Lost(_), Some(Pending::Lost(n))) => *n += 1,
            (e, _) => {
                match e {
                    Pending::Ring { .. } => ep.held += 1,
                    Pending::Copied { .. } => ep.copied += 1,
                    Pending::Lost(_) => {}
                }
                ep.queue.push_back(e);
            }
        }
        self.list_ready(dst);
        if held < limit {
            Ok(())
        } else {
            self.repost(id)
        }
    }

    /// The buffer `id` goes back to the ring: its endpoint holds one fewer.
    fn unhold(&mut self, id: u16) {
        if let Some(addr) = self.rx_holder.get_mut(id as usize).and_then(Option::take) {
            if let Ok(ep) = self.endpoints.get_mut(addr) {
                ep.ext.held = ep.ext.held.saturating_sub(1);
            }
        }
    }

    /// One name-service message. Refused (counted in `ns_refused`): announcements for
    /// address 53 (the name service itself) and 0xFFFFFFFF (`RPMSG_ADDR_ANY`). Accepted:
    /// every other address, including the reserved 0..1023 (TI's firmware announces
    /// there; Linux's `rpmsg_ns_cb` accepts any address) and 0, which has no special
    /// meaning on the wire — our own dynamic endpoints never use 0..1023. The table is
    /// indexed by name and bounded by `max_services`.
    fn name_service(&mut self, off: usize, len: usize) {
        if len != RPMSG_NS_MSG_SIZE {
            self.link.count.malformed += 1;
            return;
        }
        let mut raw = [0u8; RPMSG_NS_MSG_SIZE];
        self.mem().read(off, &mut raw);
        let addr = u32::from_le_bytes([raw[32], raw[33], raw[34], raw[35]]);
        if addr == RPMSG_NS_ADDR || addr == RPMSG_ADDR_ANY {
            self.ns_refused += 1;
            return;
        }
        match NsAnnouncement::parse(&raw) {
            Ok(a) => {
                let key = a.name.field();
                if a.kind == NsKind::Create {
                    if self.services.len() >= self.cfg.max_services
                        && !self.services.contains_key(&key)
                    {
                        self.ns_overflow += 1;
                    } else {
                        self.services.insert(key, a.addr);
                    }
                } else {
                    self.services.remove(&key);
                }
            }
            Err(_) => self.link.count.malformed += 1,
        }
    }

    /// Services the remote has announced and not withdrawn: `(name, address)`, by name.
    pub fn services(&self) -> Vec<(Name, u32)> {
        self.services
            .iter()
            .map(|(k, &a)| (Name::from_field(k), a))
            .collect()
    }

    /// The address of the remote service `name`, if announced.
    pub fn service(&self, name: &str) -> Option<u32> {
        let key = Name::new(name.as_bytes())?.field();
        self.services.get(&key).copied()
    }

    /// The address of the service `name` the remote announced, waiting up to `timeout`
    /// for the announcement ([`MessageIo`](super::MessageIo) has the timeout convention).
    /// When the wait ends without it and the table has dropped announcements (it holds
    /// `HostConfig::max_services`), the error is `Exhausted` instead of `Timeout`: the
    /// name may have been among the dropped ones.
    pub fn find_service(&mut self, name: &str, timeout: Option<Duration>) -> Result<u32> {
        let r = self.block_on(timeout, false, |bus| {
            bus.poll()?;
            Ok(bus.service(name))
        });
        match r {
            Err(Error::Timeout) if self.ns_overflow > 0 => Err(Error::Exhausted(
                "name-service table full (HostConfig::max_services): announcements were dropped",
            )),
            r => r,
        }
    }

    /// Opens a local endpoint named `name` (at the next free dynamic address) talking to
    /// the remote address `remote` (usually from [`Self::find_service`]).
    pub fn open(&mut self, name: &str, remote: u32) -> Result<Channel> {
        Ok(Channel {
            local: self.create_endpoint(name, None)?,
            remote,
        })
    }

    /// [`Self::find_service`] then [`Self::open`]: a channel to the remote's service `name`.
    pub fn connect(&mut self, name: &str, timeout: Option<Duration>) -> Result<Channel> {
        let remote = self.find_service(name, timeout)?;
        self.open(name, remote)
    }

    /// Closes a channel: its local endpoint is destroyed ([`Self::destroy_endpoint`]).
    pub fn close(&mut self, ch: Channel) -> Result<()> {
        self.destroy_endpoint(ch.local)
    }

    /// Sends `data` on `ch`, waiting up to `timeout` for a transmit buffer
    /// (`MessageTooLarge` beyond [`Self::max_payload`]).
    pub fn send(&mut self, ch: &Channel, data: &[u8], timeout: Option<Duration>) -> Result<()> {
        self.send_raw(ch.local, ch.remote, data, timeout)
    }

    /// Receives one message for `ch`'s local endpoint into `buf`, waiting up to `timeout`:
    /// its length (`Truncated` with the full length, and the message consumed, when `buf`
    /// is too small; `Lost` once where messages were dropped because the endpoint's queue
    /// was full, `HostConfig::max_copied_per_endpoint`). Messages from any sender are
    /// delivered ([`Self::recv_from`] says which).
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
        self.recv_deferred(ch.local, buf, timeout)
            .map(|(src, n)| (Some(src), n))
    }

    /// Sends on `ch` a message written in place (zero copy): `fill` gets a transmit
    /// buffer's payload area ([`Self::max_payload`] bytes) and returns the length it wrote.
    /// Waits up to `timeout` for a transmit buffer.
    pub fn send_with(
        &mut self,
        ch: &Channel,
        timeout: Option<Duration>,
        fill: impl FnOnce(&mut [u8]) -> usize,
    ) -> Result<()> {
        let mut buf = self.tx_buf(timeout)?;
        let len = fill(&mut buf).min(buf.len());
        self.send_buf(ch, buf, len)
    }

    /// Receives one message for `ch`'s local endpoint and hands it to `f` in place (zero
    /// copy), waiting up to `timeout`; its buffer goes back to the remote afterwards.
    pub fn recv_with<R>(
        &mut self,
        ch: &Channel,
        timeout: Option<Duration>,
        f: impl FnOnce(Msg<'_>) -> R,
    ) -> Result<R> {
        let buf = self.recv_buf(ch, timeout)?;
        Ok(f(Msg {
            src: buf.src(),
            dst: buf.dst(),
            payload: &buf,
        }))
    }

    /// Receives one message for any local endpoint and hands it to `f` in place (`m.dst`
    /// names the endpoint), waiting up to `timeout`: the raw form of [`Self::recv_with`].
    pub fn recv_any_with<R>(
        &mut self,
        timeout: Option<Duration>,
        f: impl FnOnce(Msg<'_>) -> R,
    ) -> Result<R> {
        let mut f = Some(f);
        self.block_on(timeout, false, |bus| {
            let Some(ep) = bus.endpoint_with_mail()? else {
                return Ok(None);
            };
            let buf = bus.try_recv_buf(ep)?;
            Ok(f.take().map(|f| {
                f(Msg {
                    src: buf.src(),
                    dst: buf.dst(),
                    payload: &buf,
                })
            }))
        })
    }

    /// A local endpoint with something queued (polling the ring once when none has).
    fn endpoint_with_mail(&mut self) -> Result<Option<u32>> {
        self.check()?;
        if let Some(ep) = self.next_ready() {
            return Ok(Some(ep));
        }
        self.poll()?;
        Ok(self.next_ready())
    }

    /// The next local endpoint with messages queued, round robin: endpoints are listed in
    /// the order they got mail, and one that still has some after a receive goes back to
    /// the end of the list, so a caller that takes a bounded number of messages from each
    /// endpoint it is handed serves every endpoint in turn (an event loop's fairness).
    /// Does not poll the ring ([`Self::poll`] files what arrived); O(1) per call.
    pub fn next_ready(&mut self) -> Option<u32> {
        while let Some(ep) = self.ready.pop_front() {
            if let Ok(e) = self.endpoints.get_mut(ep) {
                e.ext.listed = false;
                if !e.ext.queue.is_empty() {
                    return Some(ep);
                }
            }
        }
        None
    }

    /// Lists `ep` in `ready` if it has mail and is not listed yet.
    fn list_ready(&mut self, ep: u32) {
        if let Ok(e) = self.endpoints.get_mut(ep) {
            if !e.ext.listed && !e.ext.queue.is_empty() {
                e.ext.listed = true;
                self.ready.push_back(ep);
            }
        }
    }

    /// Creates a local endpoint named `name` at `addr` (`None`: the next free dynamic
    /// address from 1024, wrapping before `RPMSG_ADDR_ANY`). Returns its address.
    pub fn create_endpoint(&mut self, name: &str, addr: Option<u32>) -> Result<u32> {
        self.endpoints.create(name, addr, Inbox::default())
    }

    /// Announces endpoint `addr` to the remote's name service (when it offered one).
    pub fn announce(&mut self, addr: impl Into<EndpointAddr>) -> Result<()> {
        let addr = addr.into().get();
        let ep = self.endpoints.get_mut(addr)?;
        if !self.ns {
            return Err(Error::Config("the remote did not offer VIRTIO_RPMSG_F_NS"));
        }
        ep.announced = true;
        let msg = endpoints::ns_message(ep.name, addr, NsKind::Create);
        self.send_raw(addr, RPMSG_NS_ADDR, &msg, self.cfg.timeout)
    }

    /// Destroys endpoint `addr`: withdraws its announcement (from its own address, as
    /// both roles do) and gives back the buffers still queued for it.
    pub fn destroy_endpoint(&mut self, addr: impl Into<EndpointAddr>) -> Result<()> {
        let addr = addr.into().get();
        let ep = self.endpoints.get(addr)?;
        let sent = if ep.announced && self.link.broken.is_none() {
            let msg = endpoints::ns_message(ep.name, addr, NsKind::Destroy);
            self.send_raw(addr, RPMSG_NS_ADDR, &msg, self.cfg.timeout)
        } else {
            Ok(())
        };
        let ep = self.endpoints.remove(addr)?;
        // What it posted and is still parked was never sent: it goes with its sender.
        self.parked.discard(addr);
        if ep.ext.listed {
            self.ready.retain(|&a| a != addr);
        }
        // Buffers it lent out as `RxBuf` come back later with no holder.
        for h in &mut self.rx_holder {
            if *h == Some(addr) {
                *h = None;
            }
        }
        for p in ep.ext.queue {
            if let Pending::Ring { id, .. } = p {
                self.repost(id)?;
            }
        }
        self.publish_rx()?;
        sent
    }

    /// The next entry of endpoint `ep`'s queue (polling the ring once when it is empty);
    /// `Lost` entries come back as `Error::Lost`.
    fn next_pending(&mut self, ep: u32) -> Result<Pending> {
        self.check()?;
        let mut p = self.endpoints.get_mut(ep)?.ext.queue.pop_front();
        if p.is_none() {
            self.poll_rx(false, Some(ep))?;
            p = self.endpoints.get_mut(ep)?.ext.queue.pop_front();
            if p.is_none() && self.rx_full() {
                // Nothing for `ep` and every slot taken by others' messages: copy those
                // out so the remote can go on (a view lent out stays in its slot).
                self.copy_out_queued()?;
                self.publish_rx()?;
            }
        }
        match p {
            None => Err(Error::WouldBlock),
            Some(Pending::Lost(count)) => {
                self.list_ready(ep);
                Err(Error::Lost { count })
            }
            Some(p) => {
                if let Pending::Copied { .. } = p {
                    let e = &mut self.endpoints.get_mut(ep)?.ext;
                    e.copied = e.copied.saturating_sub(1);
                }
                self.list_ready(ep);
                Ok(p)
            }
        }
    }

    /// Receives one message for endpoint `ep` into `buf` without blocking, its buffer
    /// reposted at once (memory without direct access): `(source address, payload
    /// length)`. `WouldBlock` when none is there; `Truncated` (and the message consumed)
    /// when `buf` is too small; `Lost` (once, at their place in the order) when messages
    /// for `ep` were dropped because its queue was full
    /// (`HostConfig::max_copied_per_endpoint`).
    fn try_recv_copy(&mut self, ep: u32, buf: &mut [u8]) -> Result<(u32, usize)> {
        let (src, len) = match self.next_pending(ep)? {
            Pending::Ring { id, src, len } => {
                let len = len as usize;
                let n = len.min(buf.len());
                self.shared.mem.read(self.rx_pay(id), &mut buf[..n]);
                self.repost(id)?;
                self.publish_rx()?;
                (src, len)
            }
            Pending::Copied { src, data } => {
                let n = data.len().min(buf.len());
                buf[..n].copy_from_slice(&data[..n]);
                (src, data.len())
            }
            Pending::Lost(count) => return Err(Error::Lost { count }),
        };
        self.link.count.received += 1;
        if buf.len() < len {
            Err(Error::Truncated { len })
        } else {
            Ok((src, len))
        }
    }

    /// Receives one message for local endpoint `ep` in place, without blocking (zero copy;
    /// a message that was copied out of the ring — its endpoint held its limit of buffers
    /// in place — comes in its copy): what an event loop calls for the endpoint
    /// [`Self::next_ready`] named. `WouldBlock` when none is queued (the ring is polled
    /// once first); `Lost` (once, at their place in the order) when messages for `ep` were
    /// dropped because its queue was full.
    pub fn try_recv_buf(&mut self, ep: u32) -> Result<RxBuf<M>> {
        let (src, slot) = match self.next_pending(ep)? {
            Pending::Ring { id, src, len } => {
                let off = self.rx_pay(id);
                // The buffer left the ring (`pop_used`) and is owned by this handle alone
                // until it is dropped and reposted.
                let range = OwnedRange::claim(&self.shared.mem, off, len as usize)
                    .ok_or(Error::Config("memory without direct access"))?;
                (src, bufs::Slot::Ring { id, range })
            }
            Pending::Copied { src, data } => (src, bufs::Slot::Copied(data)),
            Pending::Lost(count) => return Err(Error::Lost { count }),
        };
        self.link.count.received += 1;
        Ok(RxBuf {
            shared: Arc::clone(&self.shared),
            slot,
            src,
            dst: ep,
        })
    }

    /// Receives one message for `ch`'s local endpoint in place, as an owned handle that
    /// gives its buffer back to the remote when dropped (zero copy; a message that was
    /// copied out of the ring — its endpoint held its limit of buffers in place — comes in
    /// its copy), waiting up to `timeout`. `Lost` (once, at their place in the order) when
    /// messages for the endpoint were dropped because its queue was full
    /// (`HostConfig::max_copied_per_endpoint`).
    pub fn recv_buf(&mut self, ch: &Channel, timeout: Option<Duration>) -> Result<RxBuf<M>> {
        let ep = ch.local;
        self.block_on(timeout, false, |bus| {
            endpoints::pending(bus.try_recv_buf(ep))
        })
    }

    /// Gives a held receive buffer back to the remote at once.
    pub fn release(&mut self, buf: RxBuf<M>) -> Result<()> {
        drop(buf);
        self.poll().map(|_| ())
    }

    fn take_tx(&mut self) -> Result<Option<u16>> {
        if self.shared.tx_returned.pending() {
            let shared = Arc::clone(&self.shared);
            shared.tx_returned.take(|id| self.tx_free.push(id));
        }
        if let Some(id) = self.tx_free.pop() {
            return Ok(Some(id));
        }
        if self.tx_fresh < self.nbufs {
            self.tx_fresh += 1;
            return Ok(Some(self.tx_fresh - 1));
        }
        if self.inline.is_some() {
            // Lent buffers only (past the slots' companions): all are out.
            return Ok(None);
        }
        // Reclaim every buffer the remote has returned at once: the used ring's lines are
        // read in one go instead of one message at a time.
        loop {
            match self.tx.pop_used(&self.shared.mem) {
                Ok(Some((id, _))) => {
                    self.consumed(id);
                    self.tx_free.push(id)
                }
                Ok(None) => break,
                Err(e) => return Err(self.fail(e)),
            }
            if !self.tx.has_seen_used() {
                break;
            }
        }
        Ok(self.tx_free.pop())
    }

    /// The transmit credit in force: most messages one endpoint may have in the transmit
    /// ring not yet consumed by the remote ([`HostConfig::tx_credit`]).
    pub fn tx_credit(&self) -> u16 {
        self.tx_credit
    }

    /// Messages `ep` has in the transmit ring that the remote has not been seen to consume.
    pub fn tx_in_flight(&self, ep: impl Into<EndpointAddr>) -> u16 {
        self.tx_flight.get(&ep.into().get()).copied().unwrap_or(0)
    }

    /// The split ring's buffer `id` came back from the remote: its sender's credit returns.
    fn consumed(&mut self, id: u16) {
        if let Some(ep) = self.tx_owner.get_mut(id as usize).and_then(Option::take) {
            self.uncount(ep);
        }
    }

    fn uncount(&mut self, ep: u32) {
        if let Some(n) = self.tx_flight.get_mut(&ep) {
            *n -= 1;
            if *n == 0 {
                self.tx_flight.remove(&ep);
            }
        }
    }

    fn count_sent(&mut self, ep: u32) {
        *self.tx_flight.entry(ep).or_insert(0) += 1;
        self.sends += 1;
        if self.senders[0].0 != ep {
            self.senders[1] = self.senders[0];
        }
        self.senders[0] = (ep, self.sends);
    }

    /// Whether an endpoint other than `src` sent one of the last [`SHARED_WINDOW`] ring
    /// lengths of messages (O(1): the last two distinct senders are kept).
    fn others_active(&self, src: u32) -> bool {
        let other = if self.senders[0].0 != src {
            self.senders[0]
        } else {
            self.senders[1]
        };
        let cap = match &self.inline {
            Some(i) => i.tx.layout().slots as u64,
            None => u64::from(self.nbufs),
        };
        other.0 != RPMSG_ADDR_ANY && self.sends - other.1 < SHARED_WINDOW * cap
    }

    /// Whether `src` may put one more message in the transmit ring: under its credit, or
    /// under it once what the remote consumed is taken back (the used ring drained, the
    /// inline ring's progress loaded).
    fn credit(&mut self, src: u32) -> Result<bool> {
        if self.under_credit(src) {
            self.credit_wait = false;
            return Ok(true);
        }
        if let Some(i) = &mut self.inline {
            i.tx.refresh(&self.shared.mem)
                .map_err(|e| self.link.fail(e))?;
            let left = i.tx.in_flight() as usize;
            while self.tx_order.len() > left {
                if let Some(ep) = self.tx_order.pop_front() {
                    self.uncount(ep);
                }
            }
        } else {
            loop {
                match self.tx.pop_used(&self.shared.mem) {
                    Ok(Some((id, _))) => {
                        self.consumed(id);
                        self.tx_free.push(id);
                    }
                    Ok(None) => break,
                    Err(e) => return Err(self.fail(e)),
                }
            }
        }
        let ok = self.under_credit(src);
        self.credit_wait = !ok;
        Ok(ok)
    }

    /// Whether one more message from `src` leaves it at (or past) its credit while the
    /// credit binds: its sender will then wait for the remote's progress.
    fn last_credit(&self, src: u32) -> bool {
        self.held_at(src, self.tx_in_flight(src).saturating_add(1))
    }

    /// Under its credit as last counted.
    fn under_credit(&self, src: u32) -> bool {
        !self.held_at(src, self.tx_in_flight(src))
    }

    /// Whether `src` with `n` messages in flight is held by its credit. The default credit
    /// (`HostConfig::tx_credit` unset) is a fair share: it binds only while another
    /// endpoint has messages in flight (or sent lately), so a lone sender may still fill
    /// the ring.
    fn held_at(&self, src: u32, n: u16) -> bool {
        if n < self.tx_credit {
            return false;
        }
        let others = self.tx_flight.len() - usize::from(self.tx_in_flight(src) > 0);
        !(self.cfg.tx_credit.is_none() && others == 0 && !self.others_active(src))
    }

    fn check_src(&self, src: u32) -> Result<()> {
        if src == RPMSG_NS_ADDR || self.endpoints.contains(src) {
            Ok(())
        } else {
            Err(Error::NoSuchEndpoint(src))
        }
    }

    fn submit(&mut self, id: u16, src: u32, dst: u32, len: usize, hdr: bool) -> Result<()> {
        let off = self.tx_off(id);
        if hdr {
            let h = intercore_wire::rpmsg::RpmsgHdr::new(src, dst, len as u16);
            self.shared
                .mem
                .write(off, zerocopy::IntoBytes::as_bytes(&h));
        }
        let da = self.da(off);
        self.tx.add(
            &self.shared.mem,
            id,
            da,
            (RPMSG_HDR_SIZE + len) as u32,
            false,
        )?;
        self.tx_owner[id as usize] = Some(src);
        self.count_sent(src);
        self.link.count.sent += 1;
        if self.tx.publish(&self.shared.mem) {
            self.kick(1)?;
        }
        Ok(())
    }

    /// Sends as many of `msgs` as there are free transmit buffers, without blocking, and
    /// publishes them together: one index update and at most one doorbell for the batch.
    /// Returns how many were sent (0 when every buffer is with the remote).
    pub fn try_send_batch(
        &mut self,
        src: impl Into<EndpointAddr>,
        dst: impl Into<EndpointAddr>,
        msgs: &[&[u8]],
    ) -> Result<usize> {
        let src = src.into().get();
        let dst = dst.into().get();
        self.check()?;
        if let Some(m) = msgs.iter().find(|m| m.len() > self.max_payload()) {
            return Err(Error::MessageTooLarge {
                len: m.len(),
                max: self.max_payload(),
            });
        }
        self.check_src(src)?;
        if self.inline.is_some() {
            let mut n = 0;
            let mut wake = false;
            for m in msgs {
                if !self.credit(src)? {
                    break;
                }
                match self.send_inline(src, dst, m.len(), |mem, off| mem.write(off, m)) {
                    Ok(w) => wake |= w,
                    Err(Error::WouldBlock) => break,
                    Err(e) => return Err(e),
                }
                n += 1;
            }
            if wake {
                self.kick(1)?;
            }
            return Ok(n);
        }
        let mut n = 0;
        for m in msgs {
            if !self.credit(src)? {
                break;
            }
            let Some(id) = self.take_tx()? else { break };
            let off = self.tx_off(id);
            super::write_message(&self.shared.mem, off, src, dst, m);
            let da = self.da(off);
            self.tx.add(
                &self.shared.mem,
                id,
                da,
                (RPMSG_HDR_SIZE + m.len()) as u32,
                false,
            )?;
            self.tx_owner[id as usize] = Some(src);
            self.count_sent(src);
            n += 1;
        }
        self.link.count.sent += n as u64;
        if n > 0 && self.tx.publish(&self.shared.mem) {
            self.kick(1)?;
        }
        Ok(n)
    }

    /// Sends `data` from local endpoint `src` to remote address `dst` without blocking
    /// (`WouldBlock` when every transmit buffer is with the remote).
    fn try_send(&mut self, src: u32, dst: u32, data: &[u8]) -> Result<()> {
        self.check()?;
        if data.len() > self.max_payload() {
            return Err(Error::MessageTooLarge {
                len: data.len(),
                max: self.max_payload(),
            });
        }
        self.check_src(src)?;
        if !self.credit(src)? {
            return Err(Error::WouldBlock);
        }
        if self.inline.is_some() {
            if self.send_inline(src, dst, data.len(), |mem, off| mem.write(off, data))? {
                self.kick(1)?;
            }
            return Ok(());
        }
        let id = self.take_tx()?.ok_or(Error::WouldBlock)?;
        super::write_message(&self.shared.mem, self.tx_off(id), src, dst, data);
        self.submit(id, src, dst, data.len(), false)
    }

    /// Inline: one message into the next slot (in it when it fits, else in its companion
    /// buffer), `fill` writing its `len` payload bytes at the region offset given.
    /// `WouldBlock` when every slot is with the remote. Returns whether to ring it.
    fn send_inline(
        &mut self,
        src: u32,
        dst: u32,
        len: usize,
        fill: impl FnOnce(&M, usize),
    ) -> Result<bool> {
        // This message uses up its sender's credit: ask the remote to publish its release
        // at once, so the credit comes back per message rather than per batch.
        let ask = self.inline.as_ref().is_some_and(|i| i.ask) && self.last_credit(src);
        let mut a = None;
        for round in 0..2 {
            let Some(i) = &mut self.inline else {
                return Err(Error::Config("inline rings not negotiated"));
            };
            match i.tx.reserve(&self.shared.mem) {
                Ok(Some(r)) => {
                    a = Some(r);
                    break;
                }
                Ok(None) if round == 0 => {
                    // Every slot is with the remote, which may itself wait for room to
                    // answer: take what it sent (filed, copied out when every slot is
                    // taken) so it can go on, then look again (not `poll`: it sends what
                    // is parked, and this send may be one of those).
                    self.poll_rx(true, None)?;
                }
                Ok(None) => {}
                Err(e) => return Err(self.fail(e)),
            }
        }
        let (Some(a), Some(i)) = (a, &mut self.inline) else {
            return Err(Error::WouldBlock);
        };
        let mem = &self.shared.mem;
        let inline = len <= a.max_inline;
        fill(
            mem,
            if inline {
                a.inline_off
            } else {
                a.companion_off
            },
        );
        let wake = i.tx.publish_asking(mem, src, dst, len, inline, ask)?;
        // Senders of messages the remote is known to have released (as far as the progress
        // last loaded says: no extra load here) get their credit back.
        let left = i.tx.in_flight() as usize;
        self.tx_order.push_back(src);
        self.count_sent(src);
        while self.tx_order.len() > left {
            if let Some(ep) = self.tx_order.pop_front() {
                self.uncount(ep);
            }
        }
        self.link.count.sent += 1;
        Ok(wake)
    }

    /// Sends `data` from local endpoint `src` to address `dst`, waiting up to `timeout` for
    /// a transmit buffer: the raw form of [`Self::send`], for peers that need a source or
    /// destination no channel names (the name service, a reply to any sender).
    pub fn send_raw(
        &mut self,
        src: impl Into<EndpointAddr>,
        dst: impl Into<EndpointAddr>,
        data: &[u8],
        timeout: Option<Duration>,
    ) -> Result<()> {
        let src = src.into().get();
        let dst = dst.into().get();
        self.block_on(timeout, true, |bus| {
            endpoints::pending(bus.try_send(src, dst, data))
        })
    }

    /// Borrows a transmit buffer to fill in place, without blocking.
    fn try_tx_buf(&mut self) -> Result<TxBuf<M>> {
        self.check()?;
        let id = self.take_tx()?.ok_or(Error::WouldBlock)?;
        let off = self.tx_off(id) + RPMSG_HDR_SIZE;
        // The buffer is out of the ring (fresh, reclaimed or popped from the used ring) and
        // owned by this handle alone until it is sent or dropped.
        let range = OwnedRange::claim(&self.shared.mem, off, self.max_payload())
            .ok_or(Error::Config("memory without direct access"))?;
        Ok(TxBuf {
            shared: Arc::clone(&self.shared),
            id,
            range,
            live: true,
        })
    }

    /// Borrows a transmit buffer to fill in place, as an owned handle (sent with
    /// [`Self::send_buf`], or given back when dropped), waiting up to `timeout` for one.
    pub fn tx_buf(&mut self, timeout: Option<Duration>) -> Result<TxBuf<M>> {
        self.block_on(timeout, true, |bus| endpoints::pending(bus.try_tx_buf()))
    }

    /// Sends the first `len` payload bytes of a filled buffer on `ch`.
    pub fn send_buf(&mut self, ch: &Channel, mut buf: TxBuf<M>, len: usize) -> Result<()> {
        let (src, dst) = (ch.local, ch.remote);
        if !Arc::ptr_eq(&buf.shared, &self.shared) {
            return Err(Error::Config("transmit buffer belongs to another bus"));
        }
        if len > self.max_payload() {
            return Err(Error::MessageTooLarge {
                len,
                max: self.max_payload(),
            });
        }
        self.check_src(src)?;
        self.check()?;
        if self.inline.is_some() {
            // The lent buffer is not a slot's: its payload is copied into the next slot (or
            // its companion), waiting for one as a send does; the buffer goes back to the
            // pool either way (dropped).
            let from = self.tx_off(buf.id) + RPMSG_HDR_SIZE;
            let timeout = self.cfg.timeout;
            return self.block_on(timeout, true, |bus| {
                if !bus.credit(src)? {
                    return Ok(None);
                }
                let r = bus.send_inline(src, dst, len, |mem, off| {
                    let mut tmp = alloc::vec![0u8; len];
                    mem.read(from, &mut tmp);
                    mem.write(off, &tmp);
                });
                match endpoints::pending(r)? {
                    Some(true) => bus.kick(1).map(Some),
                    Some(false) => Ok(Some(())),
                    None => Ok(None),
                }
            });
        }
        // The buffer is this handle's already; the message waits for its endpoint's credit
        // (on expiry the buffer goes back to the pool, dropped).
        let timeout = self.cfg.timeout;
        self.block_on(timeout, true, |bus| Ok(bus.credit(src)?.then_some(())))?;
        buf.live = false;
        let id = buf.id;
        drop(buf);
        self.submit(id, src, dst, len, true)
    }

    /// Runs `attempt` until it returns something, waiting as the timeout convention of
    /// [`MessageIo`](super::MessageIo) says (`Some(ZERO)`: one attempt; expiry `Timeout`).
    fn block_on<T>(
        &mut self,
        timeout: Option<Duration>,
        want_tx: bool,
        mut attempt: impl FnMut(&mut Self) -> Result<Option<T>>,
    ) -> Result<T> {
        if timeout == Some(Duration::ZERO) {
            return attempt(self)?.ok_or(Error::Timeout);
        }
        crate::notify::block_on(self, timeout, want_tx, attempt)
    }
}

impl<M: SharedMemory, D: Doorbell> crate::notify::Sleeper for HostBus<M, D> {
    type Bell = D;
    fn bell(&self) -> &D {
        &self.link.bell
    }
    fn wait_mode(&self) -> WaitMode {
        self.cfg.wait
    }
    fn spin_policy(&mut self) -> &mut crate::notify::SpinPolicy {
        &mut self.spin
    }
    fn arm(&mut self, want_tx: bool) -> Result<bool> {
        // Parked messages wait for credit or a buffer: ask to hear of the remote's progress.
        let parked = !self.parked.is_empty();
        let want_tx = want_tx || parked;
        if self.rx_full() {
            // About to sleep with every slot taken: the remote may wait for one.
            self.copy_out_queued()?;
            self.publish_rx()?;
        }
        let mem = &self.shared.mem;
        let now = self.link.bell.now();
        if let Some(i) = &mut self.inline {
            let (rx_ready, kick) = i.rx.arm(mem, now).map_err(|e| self.link.fail(e))?;
            let tx_ready = want_tx
                && if self.credit_wait || parked {
                    // Waiting for this endpoint's own messages to be consumed, not for a
                    // free slot: any progress may return its credit.
                    i.tx.arm_progress(mem)
                } else {
                    i.tx.arm_space(mem)
                }
                .map_err(|e| self.link.fail(e))?;
            if kick {
                self.kick(0)?;
            }
            return Ok(rx_ready || tx_ready);
        }
        let rx_ready = self.rx.enable_interrupts(mem);
        let tx_ready = want_tx && self.tx.enable_interrupts(mem);
        Ok(rx_ready || tx_ready)
    }
    fn disarm(&mut self) {
        if let Some(i) = &mut self.inline {
            i.rx.disarm(&self.shared.mem);
            i.tx.disarm_space(&self.shared.mem);
            return;
        }
        self.rx.disable_interrupts(&self.shared.mem);
        self.tx.disable_interrupts(&self.shared.mem);
    }
    fn note_sleep(&mut self) {
        self.sleeps += 1;
    }
    fn fail(&mut self, e: Error) -> Error {
        HostBus::fail(self, e)
    }
}

impl<M: SharedMemory, D: Doorbell> Drop for HostBus<M, D> {
    /// Resets the device (status 0), as Linux does when the driver goes away, and rings the
    /// remote so it notices.
    fn drop(&mut self) {
        if self.detached {
            return;
        }
        self.shared
            .mem
            .store_u32(self.status_off, self.info.status_rest, Release);
        let _ = self.link.bell.ring(self.info.notify_ids[1]);
    }
}
