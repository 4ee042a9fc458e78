//! The remote role: the virtio device side of both rings, as firmware on the remote core
//! runs it. `no_std`, no allocation: endpoints live in a fixed table of `N` entries.

use super::{
    DevicePlacement, RPMSG_ADDR_ANY, RPMSG_HDR_SIZE, RPMSG_NS_ADDR, RPMSG_RESERVED_ADDRESSES,
    RscLocation, TableInfo, VdevInfo, overlaps, status,
};
use crate::error::protocol;
use crate::notify::{Next, Waiter};
use crate::shm::OwnedRange;
use crate::virtq::{DescInfo, DeviceQueue};
use crate::{DevAddr, Doorbell, Error, LinearMap, Result, SharedMemory, WaitMode};
use core::sync::atomic::Ordering::{Acquire, Relaxed};
use core::time::Duration;
use intercore_wire::rpmsg::{Name, NsAnnouncement, NsKind, RPMSG_NS_MSG_SIZE};

/// A received message, borrowed in place from its buffer for the duration of a callback.
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

/// How the remote runs the link.
#[derive(Debug, Clone, Copy)]
pub struct RemoteConfig {
    /// How device addresses (in descriptors and the table) map to region offsets.
    pub map: LinearMap,
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
}

impl RemoteConfig {
    /// Defaults for a shared window mapped by `map`: buffers of up to 512 bytes, the
    /// default wait mode, the notification policy chosen by the kind of host.
    pub const fn new(map: LinearMap) -> Self {
        Self {
            map,
            wait: WaitMode::Adaptive(Duration::from_micros(50)),
            buffers: None,
            buf_size: intercore_wire::rpmsg::RPMSG_DEFAULT_BUF_SIZE,
            private: None,
            notify: None,
            invalidate_table: None,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Ept {
    addr: u32,
    name: Name,
    announced: bool,
}

struct Rings {
    /// vring 1: the host's transmit ring, our receive ring.
    rx: DeviceQueue,
    /// vring 0: the host's receive buffers, which we fill.
    tx: DeviceQueue,
}

/// The remote side of an rpmsg link, with room for `N` local endpoints and `N` host
/// services.
pub struct RemoteBus<M: SharedMemory, D: Doorbell, const N: usize = 8> {
    mem: M,
    bell: D,
    info: VdevInfo,
    /// The table as read at start (`None` for a placement): re-read at `DRIVER_OK`.
    table: Option<(RscLocation, TableInfo)>,
    cfg: RemoteConfig,
    rings: Option<Rings>,
    wait: WaitMode,
    endpoints: [Option<Ept>; N],
    host_services: [Option<(Name, u32)>; N],
    next_addr: u32,
    broken: Option<Error>,
    stats: RemoteStats,
}

impl<M: SharedMemory, D: Doorbell, const N: usize> RemoteBus<M, D, N> {
    /// Reads our resource table (at `rsc` in shared memory) and prepares the link with
    /// the defaults of [`RemoteConfig::new`]; call [`Self::wait_ready`] before using it.
    pub fn new(mem: M, map: &LinearMap, bell: D, rsc: RscLocation, wait: WaitMode) -> Result<Self> {
        let mut cfg = RemoteConfig::new(*map);
        cfg.wait = wait;
        Self::with_config(mem, bell, rsc, &cfg)
    }

    /// Reads our resource table (at `rsc` in shared memory) and prepares the link; call
    /// [`Self::wait_ready`] before using it. Vrings the table leaves at `FW_RSC_ADDR_ANY`
    /// are read again once the host has set `DRIVER_OK` (it writes their addresses first).
    pub fn with_config(mem: M, bell: D, rsc: RscLocation, cfg: &RemoteConfig) -> Result<Self> {
        let table = super::read_table(&mem, &cfg.map, rsc)?;
        // Until the host has placed every ring, keep a provisional placement: nothing is
        // read through it before `wait_ready` re-reads the table.
        let info = match table.resolve(&cfg.map, cfg.buffers, true) {
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
            },
        };
        Self::from_info(mem, bell, info, Some((rsc, table)), cfg)
    }

    /// Prepares the link from a placement given directly instead of a resource table (a
    /// vhost-user back end learns the rings from its front end; an RPMsg-Lite master lays
    /// them out itself); call [`Self::wait_ready`] before using it.
    pub fn with_placement(
        mem: M,
        bell: D,
        placement: &DevicePlacement,
        wait: WaitMode,
    ) -> Result<Self> {
        let mut cfg = RemoteConfig::new(placement.buffers);
        cfg.wait = wait;
        // A placement's buffers may be of any size inside the window.
        cfg.buf_size = usize::MAX;
        Self::with_placement_config(mem, bell, placement, &cfg)
    }

    /// [`Self::with_placement`] with a configuration (its `map` and `buffers` are unused:
    /// the placement says where buffers lie).
    pub fn with_placement_config(
        mem: M,
        bell: D,
        placement: &DevicePlacement,
        cfg: &RemoteConfig,
    ) -> Result<Self> {
        let info = super::place(&mem, placement)?;
        Self::from_info(mem, bell, info, None, cfg)
    }

    fn from_info(
        mem: M,
        bell: D,
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
        Ok(Self {
            mem,
            bell,
            info,
            table,
            cfg: *cfg,
            rings: None,
            wait: cfg.wait,
            endpoints: [None; N],
            host_services: [None; N],
            next_addr: RPMSG_RESERVED_ADDRESSES,
            broken: None,
            stats: RemoteStats::default(),
        })
    }

    /// Counters.
    pub fn stats(&self) -> RemoteStats {
        self.stats
    }
    /// Changes how blocking calls wait.
    pub fn set_wait_mode(&mut self, mode: WaitMode) {
        self.wait = mode;
    }
    /// The doorbell.
    pub fn doorbell(&self) -> &D {
        &self.bell
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

    /// Without a status word: whether the host has started the link — it notified us, or
    /// it has posted receive buffers on vring 0 (a notification sent before we were
    /// listening is not lost that way).
    fn host_started(&self) -> bool {
        let r0 = self.info.rings[0];
        // Relaxed: a hint; `pop` reads the index again with Acquire.
        self.mem.load_u16(r0.base + r0.layout.avail_idx(), Relaxed) != 0
    }

    fn fail(&mut self, e: Error) -> Error {
        if matches!(e, Error::Protocol { .. } | Error::PeerGone) {
            self.broken.get_or_insert(e);
        }
        e
    }

    /// Rings the host about vring `ring` (0: its receive buffers filled, 1: its transmit
    /// buffers returned).
    fn kick(&mut self, ring: usize) -> Result<()> {
        self.stats.kicks += 1;
        self.bell
            .ring(self.info.notify_ids[ring])
            .map_err(|e| self.fail(e))
    }

    /// Checks the link: set up, not broken, and the host still has `DRIVER_OK` (a host that
    /// resets the device has gone away).
    fn live(&mut self) -> Result<()> {
        if let Some(e) = self.broken {
            return Err(e);
        }
        if self.rings.is_none() {
            return Err(Error::NotReady("call wait_ready first"));
        }
        if self.status() & status::DRIVER_OK == 0 {
            return Err(self.fail(Error::PeerGone));
        }
        Ok(())
    }

    /// Waits until the host sets `DRIVER_OK` (or, with no status word, notifies us first),
    /// then checks the features it accepted, re-reads the vrings the host placed, and
    /// attaches to the rings at their current indices.
    pub fn wait_ready(&mut self, timeout: Option<Duration>) -> Result<()> {
        let mut w = Waiter::new(&self.bell, self.wait, timeout);
        if self.info.status_off.is_some() {
            loop {
                if self.status() & status::DRIVER_OK != 0 {
                    break;
                }
                if let Next::Sleep(t) = w.after_miss(&self.bell)? {
                    if self.status() & status::DRIVER_OK == 0 {
                        self.bell.wait(t)?;
                    }
                }
            }
        } else {
            loop {
                if self.host_started() {
                    break;
                }
                if let Next::Sleep(t) = w.after_miss(&self.bell)? {
                    if self.bell.wait(t)? {
                        break;
                    }
                }
            }
        }
        if let Some((rsc, _)) = self.table {
            if let Some(inv) = self.cfg.invalidate_table {
                inv(self.mem.as_ptr().wrapping_add(rsc.offset), rsc.len);
            }
            // The host wrote the vrings' `da` and `notifyid` before `DRIVER_OK` (Release,
            // paired with the Acquire in `status`): read the table again.
            let t = super::read_table(&self.mem, &self.cfg.map, rsc)?;
            self.info = t.resolve(&self.cfg.map, self.cfg.buffers, true)?;
            self.table = Some((rsc, t));
        }
        let g = match self.info.gfeatures_off {
            // Relaxed: ordered after the Acquire load of the status word.
            Some(off) => self.mem.load_u32(off, Relaxed),
            None => self.info.dfeatures,
        };
        if g & !self.info.dfeatures != 0 {
            return Err(self.fail(protocol(
                "host accepted features we did not offer",
                g as u64,
            )));
        }
        let event_idx = g & (1 << intercore_wire::vring::VIRTIO_RING_F_EVENT_IDX) != 0;
        let [r0, r1] = self.info.rings;
        let mut tx = DeviceQueue::attach(&self.mem, r0.base, r0.layout, event_idx)?;
        let mut rx = DeviceQueue::attach(&self.mem, r1.base, r1.layout, event_idx)?;
        let always = match self.cfg.notify {
            Some(p) => p == NotifyPolicy::Always,
            None => self.info.status_off.is_none(),
        };
        tx.set_always_notify(always);
        tx.disable_notify(&self.mem);
        rx.disable_notify(&self.mem);
        self.rings = Some(Rings { rx, tx });
        Ok(())
    }

    /// Whether [`Self::wait_ready`] has attached to the rings.
    pub fn is_ready(&self) -> bool {
        self.rings.is_some()
    }

    /// Creates a local endpoint (`addr` `None`: the next free address from 1024).
    pub fn create_endpoint(&mut self, name: &str, addr: Option<u32>) -> Result<u32> {
        let name = Name::new(name.as_bytes()).ok_or(Error::Config(
            "endpoint name longer than 31 bytes or with a NUL",
        ))?;
        let used = |a: u32, eps: &[Option<Ept>]| eps.iter().flatten().any(|e| e.addr == a);
        let addr = match addr {
            Some(a) if a == RPMSG_ADDR_ANY || a == RPMSG_NS_ADDR || used(a, &self.endpoints) => {
                return Err(Error::AddressInUse(a));
            }
            Some(a) => a,
            None => {
                let mut a = self.next_addr;
                while used(a, &self.endpoints) {
                    a += 1;
                }
                self.next_addr = a + 1;
                a
            }
        };
        let slot = self
            .endpoints
            .iter_mut()
            .find(|e| e.is_none())
            .ok_or(Error::Exhausted("endpoint table"))?;
        *slot = Some(Ept {
            addr,
            name,
            announced: false,
        });
        Ok(addr)
    }

    /// Announces endpoint `addr` to the host's name service.
    pub fn announce(&mut self, addr: u32) -> Result<()> {
        let ept = self
            .endpoints
            .iter_mut()
            .flatten()
            .find(|e| e.addr == addr)
            .ok_or(Error::NoSuchEndpoint(addr))?;
        ept.announced = true;
        let msg = NsAnnouncement {
            name: ept.name,
            addr,
            kind: NsKind::Create,
        }
        .emit();
        self.send(
            addr,
            RPMSG_NS_ADDR,
            zerocopy::IntoBytes::as_bytes(&msg),
            None,
        )
    }

    /// Destroys endpoint `addr`, withdrawing its announcement.
    pub fn destroy_endpoint(&mut self, addr: u32) -> Result<()> {
        let slot = self
            .endpoints
            .iter_mut()
            .find(|e| e.is_some_and(|e| e.addr == addr))
            .ok_or(Error::NoSuchEndpoint(addr))?;
        let ept = slot.take().expect("found above");
        if ept.announced {
            let msg = NsAnnouncement {
                name: ept.name,
                addr,
                kind: NsKind::Destroy,
            }
            .emit();
            // From the endpoint's own address, as Linux (`virtio_rpmsg_announce_destroy`)
            // and OpenAMP (`rpmsg_destroy_ept`) send it.
            self.send(
                addr,
                RPMSG_NS_ADDR,
                zerocopy::IntoBytes::as_bytes(&msg),
                None,
            )?;
        }
        Ok(())
    }

    /// Endpoints the host announced: its address for `name`.
    pub fn host_service(&self, name: &str) -> Option<u32> {
        self.host_services
            .iter()
            .flatten()
            .find(|(n, _)| n.as_bytes() == name.as_bytes())
            .map(|&(_, a)| a)
    }

    /// Checks a descriptor the host gave us on vring `ring`: at least a header, at most
    /// the configured buffer size, inside the buffer window, never over the resource
    /// table, a vring or the firmware's own memory; device-writable exactly on vring 0 (the
    /// host's receive buffers) and read-only on vring 1. Anything else breaks the protocol.
    fn buffer(&self, d: &DescInfo, ring: usize) -> Result<usize> {
        if d.writable != (ring == 0) {
            return Err(protocol(
                if ring == 0 {
                    "host receive buffer (vring 0) not device-writable"
                } else {
                    "host transmit buffer (vring 1) marked device-writable"
                },
                d.addr.0,
            ));
        }
        if d.len as usize > self.cfg.buf_size {
            return Err(protocol(
                "buffer longer than the configured buffer size",
                d.len as u64,
            ));
        }
        let off = self.buffer_in_window(d)?;
        let span = (off, d.len as usize);
        for r in &self.info.rings {
            if overlaps(span, (r.base, r.layout.size())) {
                return Err(protocol("buffer overlaps a vring", d.addr.0));
            }
        }
        if self.info.table.1 != 0 && overlaps(span, self.info.table) {
            return Err(protocol("buffer overlaps the resource table", d.addr.0));
        }
        if self.cfg.private.is_some_and(|p| overlaps(span, p)) {
            return Err(protocol(
                "buffer overlaps the firmware's own memory",
                d.addr.0,
            ));
        }
        Ok(off)
    }

    fn buffer_in_window(&self, d: &DescInfo) -> Result<usize> {
        let len = d.len as usize;
        if len < RPMSG_HDR_SIZE {
            return Err(protocol("buffer shorter than the rpmsg header", len as u64));
        }
        let rel = d.addr.0.checked_sub(self.info.buf_da.0).ok_or(protocol(
            "buffer address outside the buffer window",
            d.addr.0,
        ))?;
        match usize::try_from(rel)
            .ok()
            .and_then(|r| r.checked_add(len).map(|e| (r, e)))
        {
            Some((r, end)) if end <= self.info.buf_len => Ok(self.info.buf_off + r),
            _ => Err(protocol("buffer outside the buffer window", d.addr.0)),
        }
    }

    fn host_ns(&mut self, off: usize, len: usize) {
        if len != RPMSG_NS_MSG_SIZE {
            self.stats.malformed += 1;
            return;
        }
        let mut raw = [0u8; RPMSG_NS_MSG_SIZE];
        self.mem.read(off, &mut raw);
        match NsAnnouncement::parse(&raw) {
            Ok(a) => {
                for s in self.host_services.iter_mut() {
                    if s.is_some_and(|(n, _)| n == a.name) {
                        *s = None;
                    }
                }
                if a.kind == NsKind::Create {
                    match self.host_services.iter_mut().find(|s| s.is_none()) {
                        Some(s) => *s = Some((a.name, a.addr)),
                        None => self.stats.malformed += 1,
                    }
                }
            }
            Err(_) => self.stats.malformed += 1,
        }
    }

    /// Takes one buffer off the receive ring and returns it used (not yet published). A
    /// message for a local endpoint goes to `f` in place: `Some(true)`; one dropped
    /// (malformed, no recipient, a name-service announcement): `Some(false)`; ring empty:
    /// `None`. A descriptor that breaks the protocol is an error for the link.
    fn take_one(&mut self, f: &mut dyn FnMut(Msg<'_>)) -> Result<Option<bool>> {
        self.live()?;
        let popped = self.rings.as_mut().expect("live").rx.pop(&self.mem);
        let mut chain = match popped {
            Ok(Some(c)) => c,
            Ok(None) => return Ok(None),
            Err(e) => return Err(self.fail(e)),
        };
        let single = self
            .rings
            .as_ref()
            .expect("live")
            .rx
            .single(&self.mem, &mut chain);
        let d = single.map_err(|e| self.fail(e))?;
        let off = self.buffer(&d, 1).map_err(|e| self.fail(e))?;
        let head = chain.head();
        let delivered = match super::read_header(&self.mem, off, d.len as usize) {
            Err(_) => {
                self.stats.malformed += 1;
                false
            }
            Ok((_, RPMSG_NS_ADDR, plen)) => {
                self.host_ns(off + RPMSG_HDR_SIZE, plen);
                false
            }
            Ok((src, dst, plen)) if self.endpoints.iter().flatten().any(|e| e.addr == dst) => {
                // The chain is popped and not yet returned: the host does not touch the
                // buffer until we push it to the used ring below.
                let range = OwnedRange::claim(&self.mem, off + RPMSG_HDR_SIZE, plen)
                    .ok_or(Error::Config("memory without direct access"))?;
                self.stats.received += 1;
                f(Msg {
                    src,
                    dst,
                    payload: range.bytes(&self.mem),
                });
                true
            }
            Ok(_) => {
                self.stats.no_endpoint += 1;
                false
            }
        };
        // The used length is the descriptor's length, as OpenAMP's
        // (`rpmsg_virtio_release_rx_buffer`) and RPMsg-Lite's (`vq_rx_free_remote`) remotes
        // write: OpenAMP's host sizes the recycled transmit buffer from it
        // (`rpmsg_virtio_get_tx_buffer`), RPMsg-Lite's master reports it as the zero-copy
        // buffer's size. Linux ignores it (`get_a_tx_buf`).
        self.rings
            .as_mut()
            .expect("live")
            .rx
            .push_used(&self.mem, head, d.len);
        Ok(Some(delivered))
    }

    /// Publishes the receive buffers returned so far (one index store, at most one kick).
    fn publish_rx(&mut self) -> Result<()> {
        if let Some(rings) = self.rings.as_mut() {
            if rings.rx.publish(&self.mem) {
                self.kick(1)?;
            }
        }
        Ok(())
    }

    /// Delivers one message for a local endpoint to `f`, in place, without blocking.
    /// Messages for unknown addresses and malformed ones are returned to the host unread
    /// (and counted); a descriptor that breaks the protocol is an error for the link.
    pub fn try_recv_with<R>(&mut self, f: impl FnOnce(Msg<'_>) -> R) -> Result<Option<R>> {
        let mut f = Some(f);
        let mut out = None;
        let mut deliver = |m: Msg<'_>| out = f.take().map(|f| f(m));
        loop {
            match self.take_one(&mut deliver)? {
                Some(true) | None => break,
                Some(false) => {}
            }
        }
        self.publish_rx()?;
        Ok(out)
    }

    /// Delivers up to `max` messages to `f` without blocking and returns the buffers to the
    /// host together (one index update, at most one doorbell). Returns how many were
    /// delivered.
    pub fn try_recv_batch(&mut self, max: usize, mut f: impl FnMut(Msg<'_>)) -> Result<usize> {
        let mut n = 0;
        while n < max {
            match self.take_one(&mut f)? {
                Some(true) => n += 1,
                Some(false) => {}
                None => break,
            }
        }
        self.publish_rx()?;
        Ok(n)
    }

    /// [`Self::try_recv_with`], waiting up to `timeout` (`None`: forever).
    pub fn recv_with<R>(
        &mut self,
        timeout: Option<Duration>,
        f: impl FnOnce(Msg<'_>) -> R,
    ) -> Result<R> {
        let mut f = Some(f);
        self.block_on(timeout, false, |bus| {
            let mut out = None;
            let got = bus.try_recv_with(|m| out = Some((f.take().expect("called once"))(m)))?;
            Ok(got.and(out))
        })
    }

    /// Copies one message into `buf` without blocking: `(src, dst, length)`; `Truncated` if
    /// `buf` is too small (the message is consumed).
    pub fn try_recv(&mut self, buf: &mut [u8]) -> Result<Option<(u32, u32, usize)>> {
        match self.try_recv_with(|m| {
            let n = m.payload.len().min(buf.len());
            buf[..n].copy_from_slice(&m.payload[..n]);
            (m.src, m.dst, m.payload.len())
        })? {
            Some((_, _, len)) if len > buf.len() => Err(Error::Truncated { len }),
            r => Ok(r),
        }
    }

    /// Fills one of the host's receive buffers in place with `f` (which gets the payload
    /// area and returns the length it wrote) and sends it from `src` to `dst`, without
    /// blocking. `max` is the payload length needed; a host buffer too small for it is an
    /// error (`MessageTooLarge`) and the buffer stays available.
    pub fn try_send_with(
        &mut self,
        src: u32,
        dst: u32,
        max: usize,
        f: impl FnOnce(&mut [u8]) -> usize,
    ) -> Result<()> {
        self.live()?;
        let mut chain = match self.rings.as_mut().expect("live").tx.pop(&self.mem) {
            Ok(Some(c)) => c,
            Ok(None) => return Err(Error::WouldBlock),
            Err(e) => return Err(self.fail(e)),
        };
        let d = match self
            .rings
            .as_ref()
            .expect("live")
            .tx
            .single(&self.mem, &mut chain)
        {
            Ok(d) => d,
            Err(e) => return Err(self.fail(e)),
        };
        let off = self.buffer(&d, 0).map_err(|e| self.fail(e))?;
        let room = (d.len as usize - RPMSG_HDR_SIZE).min(u16::MAX as usize);
        if max > room {
            self.rings.as_mut().expect("live").tx.undo_pop();
            return Err(Error::MessageTooLarge {
                len: max,
                max: room,
            });
        }
        // The chain is popped and not yet returned: the host does not touch the buffer
        // until we push it to the used ring below.
        let mut range = OwnedRange::claim(&self.mem, off + RPMSG_HDR_SIZE, max)
            .ok_or(Error::Config("memory without direct access"))?;
        let len = f(range.bytes_mut(&self.mem)).min(max);
        let hdr = intercore_wire::rpmsg::RpmsgHdr::new(src, dst, len as u16);
        self.mem.write(off, zerocopy::IntoBytes::as_bytes(&hdr));
        let rings = self.rings.as_mut().expect("live");
        rings
            .tx
            .push_used(&self.mem, chain.head(), (RPMSG_HDR_SIZE + len) as u32);
        self.stats.sent += 1;
        if rings.tx.publish(&self.mem) {
            self.kick(0)?;
        }
        Ok(())
    }

    /// Sends a copy of `data` from `src` to `dst` without blocking.
    pub fn try_send(&mut self, src: u32, dst: u32, data: &[u8]) -> Result<()> {
        self.try_send_with(src, dst, data.len(), |buf| {
            buf.copy_from_slice(data);
            data.len()
        })
    }

    /// [`Self::try_send`], waiting up to `timeout` (`None`: forever) for a host buffer.
    pub fn send(
        &mut self,
        src: u32,
        dst: u32,
        data: &[u8],
        timeout: Option<Duration>,
    ) -> Result<()> {
        self.block_on(timeout, true, |bus| match bus.try_send(src, dst, data) {
            Err(Error::WouldBlock) => Ok(None),
            r => r.map(Some),
        })
    }

    fn block_on<T>(
        &mut self,
        timeout: Option<Duration>,
        want_tx: bool,
        attempt: impl FnMut(&mut Self) -> Result<Option<T>>,
    ) -> Result<T> {
        crate::notify::block_on(self, timeout, want_tx, attempt)
    }
}

impl<M: SharedMemory, D: Doorbell, const N: usize> crate::notify::Sleeper for RemoteBus<M, D, N> {
    type Bell = D;
    fn bell(&self) -> &D {
        &self.bell
    }
    fn wait_mode(&self) -> WaitMode {
        self.wait
    }
    fn arm(&mut self, want_tx: bool) -> Result<bool> {
        let rings = self
            .rings
            .as_mut()
            .ok_or(Error::NotReady("call wait_ready first"))?;
        let rx_ready = rings.rx.enable_notify(&self.mem);
        let tx_ready = want_tx && rings.tx.enable_notify(&self.mem);
        Ok(rx_ready || tx_ready)
    }
    fn disarm(&mut self) {
        if let Some(rings) = self.rings.as_mut() {
            rings.rx.disable_notify(&self.mem);
            rings.tx.disable_notify(&self.mem);
        }
    }
    fn fail(&mut self, e: Error) -> Error {
        RemoteBus::fail(self, e)
    }
}

impl DevAddr {
    /// The address `n` bytes further.
    pub const fn add(self, n: u64) -> Self {
        DevAddr(self.0 + n)
    }
}
