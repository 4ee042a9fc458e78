//! The remote's link once it is up: the attached rings, and every operation that needs
//! them. A [`Ready`] view exists only while the bus is attached, so no call reaches a ring
//! through an `Option`.

use super::{Ept, Msg, RemoteConfig};
use crate::error::protocol;
use crate::rpmsg::endpoints::{Core, Endpoints};
use crate::rpmsg::{RPMSG_HDR_SIZE, RPMSG_NS_ADDR, VdevInfo, overlaps};
use crate::shm::OwnedRange;
use crate::virtq::inline::{InlineRx, InlineTx, TxAreas};
use crate::virtq::{DescChain, DescInfo, DeviceQueue};
use crate::{Doorbell, Error, Result, SharedMemory};
use intercore_wire::rpmsg::{Name, NsAnnouncement, NsKind, RPMSG_NS_MSG_SIZE};

/// Payload bytes a message held on an in-order ring can be copied into: the payload of
/// the default 512-byte buffer (Linux's, and `RemoteConfig::buf_size`'s default).
pub(super) const HELD_COPY: usize = intercore_wire::rpmsg::RPMSG_DEFAULT_BUF_SIZE - RPMSG_HDR_SIZE;

/// The two rings, attached at `DRIVER_OK`, and the messages taken off the receive ring
/// and kept for an endpoint that was not being read (at most `N`, oldest first). Held
/// buffers belong to this attachment: a reset of the device drops them with the rings.
///
/// On the standard ring a held message stays in its buffer (zero copy: the device may
/// return buffers in any order). On an in-order ring it may not — the used index cannot
/// pass a buffer still held, so one unread endpoint would hold back every buffer the host
/// sends after it, and with them the link — so a held message is copied into `copies`
/// (one slot per held entry) and its buffer returned at once.
pub(super) struct Rings<const N: usize> {
    /// vring 1: the host's transmit ring, our receive ring (unused with `inline`).
    pub rx: DeviceQueue,
    /// vring 0: the host's receive buffers, which we fill (unused with `inline`).
    pub tx: DeviceQueue,
    /// The inline-slot rings, when negotiated: they replace both split rings.
    pub inline: Option<Inline>,
    held: [Option<Taken>; N],
    /// In-order rings: the payloads of held messages ([`Taken::copy`] names the slot).
    copies: [[u8; HELD_COPY]; N],
}

/// Both inline-slot rings (`INTERCORE_F_INLINE`): `rx` in vring 1's area (host →
/// remote), `tx` in vring 0's. Messages are taken and released one at a time, in order
/// (held ones are copied out, as on an in-order ring).
pub(super) struct Inline {
    pub rx: InlineRx,
    pub tx: InlineTx,
    /// The host waits for space on `rx` and the last release said to ring it.
    pub kick: bool,
}

impl<const N: usize> Rings<N> {
    pub fn new(rx: DeviceQueue, tx: DeviceQueue, inline: Option<Inline>) -> Self {
        Self {
            rx,
            tx,
            inline,
            held: [None; N],
            copies: [[0; HELD_COPY]; N],
        }
    }

    /// Whether the driver wrote either used index since we last published it: the device
    /// is its only writer, so the driver rebuilt the rings (a new RPMsg-Lite master;
    /// [`DeviceQueue::used_idx_intact`]).
    pub fn rebuilt<M: SharedMemory>(&self, mem: &M) -> bool {
        // Inline rings are negotiated through a table's vendor entry, so a status word
        // says when the host goes; the split rings' indices are not there to look at.
        self.inline.is_none() && !self.tx.used_idx_intact(mem) || !self.rx.used_idx_intact(mem)
    }

    /// Returns every held buffer to the host unread and publishes (before attaching
    /// again over a link that is still up). Copied messages are forgotten: their buffers
    /// went back when they were copied.
    pub fn release_held<M: SharedMemory>(&mut self, mem: &M) {
        if self.inline.is_some() {
            // Held messages are copies, their slots released when copied.
            self.held = [None; N];
            return;
        }
        for t in self.held.iter_mut().filter_map(Option::take) {
            if t.copy.is_none() {
                self.rx.push_used(mem, t.head, t.desc_len);
            }
        }
        self.rx.publish(mem);
    }

    /// A copy slot no held message uses.
    fn free_copy(&self) -> Option<usize> {
        (0..N).find(|&k| !self.held.iter().flatten().any(|t| t.copy == Some(k)))
    }
}

/// The bus with its rings attached, borrowed field by field.
pub(super) struct Ready<'a, M, D, const N: usize> {
    pub mem: &'a M,
    pub rings: &'a mut Rings<N>,
    pub link: &'a mut Core<D>,
    pub info: &'a VdevInfo,
    pub cfg: &'a RemoteConfig,
    pub endpoints: &'a mut Endpoints<u32, [Option<Ept>; N]>,
    pub host_services: &'a mut [Option<(Name, u32)>; N],
    pub held_dropped: &'a mut u64,
}

/// A message taken off the receive ring: its chain head and descriptor length (for the
/// used ring), and the header as copied and checked (addresses and payload length are
/// never read from the buffer again).
#[derive(Debug, Clone, Copy)]
pub(super) struct Taken {
    pub head: u16,
    pub desc_len: u32,
    pub off: usize,
    /// Region offset of the payload (in the buffer after the header, or in a slot).
    pub pay: usize,
    pub src: u32,
    pub dst: u32,
    pub plen: usize,
    /// Held on an in-order ring: the payload was copied into this slot of
    /// `Rings::copies` and the buffer is back with the host (`head`, `desc_len` and `off`
    /// name nothing any more).
    pub copy: Option<usize>,
}

/// A host receive buffer (vring 0) popped for us to fill.
pub(super) struct TxSlot {
    pub head: u16,
    pub off: usize,
    pub desc_len: u32,
    /// Payload room: the descriptor's length less the header, at most 65535.
    pub room: usize,
    /// Inline: the next slot's payload area and companion buffer (`off`, `head` and
    /// `desc_len` name nothing then).
    pub areas: Option<TxAreas>,
    /// Where [`Ready::claim_tx`] put the payload (region offset).
    pub pay: usize,
}

impl<M: SharedMemory, D: Doorbell, const N: usize> Ready<'_, M, D, N> {
    /// Checks a descriptor the host gave us on vring `ring`: at least a header, at most
    /// the configured buffer size, inside the buffer window, never over the resource
    /// table, a vring or the firmware's own memory, and device-writable on vring 0 (the
    /// host's receive buffers, which we fill). Anything else breaks the protocol.
    ///
    /// On vring 1 the `WRITE` flag is not looked at: RPMsg-Lite's master sets it on every
    /// descriptor it creates, its transmit buffers included (`lib/virtio/virtqueue.c`
    /// `vq_ring_add_buffer`, from `virtqueue_fill_used_buffers` in
    /// `rpmsg_lite_master_init`), while Linux (`virtqueue_add_outbuf`) and OpenAMP
    /// (`virtqueue_add_buffer` with the buffer readable) clear it. The bus only ever reads
    /// a vring-1 buffer, so the flag grants nothing there. Every real host marks its
    /// receive buffers writable (Linux `virtqueue_add_inbuf`, OpenAMP `rpmsg_init_vdev`,
    /// RPMsg-Lite `virtqueue_fill_avail_buffers`), so one that does not on vring 0 is refused.
    fn buffer(&self, d: &DescInfo, ring: usize) -> Result<usize> {
        if ring == 0 && !d.writable {
            return Err(protocol(
                "host receive buffer (vring 0) not device-writable",
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
            self.link.count.malformed += 1;
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
                        None => self.link.count.malformed += 1,
                    }
                }
            }
            Err(_) => self.link.count.malformed += 1,
        }
    }

    /// Pops one chain of vring `ring` and checks it is a single buffer the host may give
    /// us there; `None` when the ring is empty. Errors are the link's (sticky).
    fn pop(&mut self, ring: usize) -> Result<Option<(DescChain, DescInfo, usize)>> {
        let q = if ring == 0 {
            &mut self.rings.tx
        } else {
            &mut self.rings.rx
        };
        let mut chain = match q.pop(self.mem) {
            Ok(Some(c)) => c,
            Ok(None) => return Ok(None),
            Err(e) => return Err(self.link.fail(e)),
        };
        let d = q
            .single(self.mem, &mut chain)
            .map_err(|e| self.link.fail(e))?;
        let off = self.buffer(&d, ring).map_err(|e| self.link.fail(e))?;
        Ok(Some((chain, d, off)))
    }

    /// Takes buffers off the receive ring until one carries a message for a local
    /// endpoint (returned, not yet given back) or the ring is empty (`None`). Malformed
    /// messages, messages for no endpoint and name-service announcements are consumed on
    /// the way and returned to the host (not yet published). A descriptor that breaks the
    /// protocol is an error for the link.
    pub fn take(&mut self) -> Result<Option<Taken>> {
        if self.rings.inline.is_some() {
            return self.take_inline();
        }
        loop {
            let Some((chain, d, off)) = self.pop(1)? else {
                return Ok(None);
            };
            let head = chain.head();
            match crate::rpmsg::read_header(self.mem, off, d.len as usize) {
                Err(_) => self.link.count.malformed += 1,
                Ok((_, RPMSG_NS_ADDR, plen)) => self.host_ns(off + RPMSG_HDR_SIZE, plen),
                Ok((src, dst, plen)) if self.endpoints.contains(dst) => {
                    return Ok(Some(Taken {
                        head,
                        desc_len: d.len,
                        off,
                        pay: off + RPMSG_HDR_SIZE,
                        src,
                        dst,
                        plen,
                        copy: None,
                    }));
                }
                Ok(_) => self.link.count.no_endpoint += 1,
            }
            self.give_back(head, d.len);
        }
    }

    /// [`Self::take`] on the inline ring: the slot's header is checked by the ring
    /// (sequence word, length within the slot or its companion buffer, flags), so a
    /// message never names memory outside them.
    fn take_inline(&mut self) -> Result<Option<Taken>> {
        loop {
            let Some(i) = &mut self.rings.inline else {
                return Ok(None);
            };
            let m = match i.rx.try_recv(self.mem) {
                Ok(Some(m)) => m,
                Ok(None) => return Ok(None),
                Err(e) => return Err(self.link.fail(e)),
            };
            if m.dst == RPMSG_NS_ADDR {
                self.host_ns(m.off, m.len);
            } else if self.endpoints.contains(m.dst) {
                return Ok(Some(Taken {
                    head: 0,
                    desc_len: 0,
                    off: m.off,
                    pay: m.off,
                    src: m.src,
                    dst: m.dst,
                    plen: m.len,
                    copy: None,
                }));
            } else {
                self.link.count.no_endpoint += 1;
            }
            self.give_back(0, 0);
        }
    }

    /// The next message for endpoint `ep` (`None`: for any local endpoint), held ones
    /// first, oldest first. Messages for other endpoints taken off the ring on the way are
    /// held for them; when `N` are held already, the message is returned to the host
    /// unread and counted (`held_dropped`), so an endpoint nobody reads cannot stall the
    /// others — the host's per-endpoint limit, on the remote.
    pub fn take_for(&mut self, ep: Option<u32>) -> Result<Option<Taken>> {
        let held = &mut self.rings.held;
        if let Some(i) = held
            .iter()
            .position(|h| h.is_some_and(|t| ep.is_none_or(|e| t.dst == e)))
        {
            let t = held[i].take();
            held[i..].rotate_left(1);
            return Ok(t);
        }
        loop {
            let Some(t) = self.take()? else {
                return Ok(None);
            };
            if ep.is_none_or(|e| t.dst == e) {
                return Ok(Some(t));
            }
            self.hold(t);
        }
    }

    /// Keeps `t` for its endpoint. On an in-order ring the payload is copied out and the
    /// buffer returned at once (see [`Rings`]); a payload larger than [`HELD_COPY`] (a
    /// firmware configured for buffers over 512 bytes) cannot be, and is returned unread
    /// and counted like a message that finds `N` held already (`held_dropped`).
    fn hold(&mut self, mut t: Taken) {
        let Some(i) = self.rings.held.iter().position(Option::is_none) else {
            *self.held_dropped += 1;
            self.give_back(t.head, t.desc_len);
            return;
        };
        if self.rings.rx.is_in_order() || self.rings.inline.is_some() {
            let k = match self.rings.free_copy() {
                Some(k) if t.plen <= HELD_COPY => k,
                _ => {
                    *self.held_dropped += 1;
                    self.give_back(t.head, t.desc_len);
                    return;
                }
            };
            // The chain is popped and not yet returned: the host does not touch the
            // buffer until we push it to the used ring below. Aligned copy (`read`).
            self.mem.read(t.pay, &mut self.rings.copies[k][..t.plen]);
            self.give_back(t.head, t.desc_len);
            t.copy = Some(k);
        }
        self.rings.held[i] = Some(t);
    }

    /// Whether a message may be there for `ep` (`None`: any endpoint): one is held for it,
    /// or the receive ring has entries not taken yet (which may turn out to be for others).
    /// Costs no shared-memory access while entries already seen are pending, else one
    /// index load (kept for the pop that follows).
    pub fn rx_pending(&mut self, ep: Option<u32>) -> Result<bool> {
        if self
            .rings
            .held
            .iter()
            .any(|h| h.is_some_and(|t| ep.is_none_or(|e| t.dst == e)))
        {
            return Ok(true);
        }
        if let Some(i) = &self.rings.inline {
            return i.rx.pending(self.mem).map_err(|e| self.link.fail(e));
        }
        // The index loaded here is kept: the pop that follows loads nothing more.
        self.rings
            .rx
            .poll_avail(self.mem)
            .map_err(|e| self.link.fail(e))
    }

    /// Returns the messages held for endpoint `ep` to the host unread (it is being
    /// destroyed), then publishes.
    pub fn drop_held(&mut self, ep: u32) -> Result<()> {
        for i in 0..N {
            if let Some(t) = self.rings.held[i].filter(|t| t.dst == ep) {
                self.rings.held[i] = None;
                self.finish(&t);
            }
        }
        let held = &mut self.rings.held;
        let mut k = 0;
        for i in 0..N {
            if held[i].is_some() {
                held.swap(i, k);
                k += 1;
            }
        }
        self.publish_rx()
    }

    /// Returns a receive buffer to the host (not yet published). The used length is the
    /// descriptor's length, as OpenAMP's (`rpmsg_virtio_release_rx_buffer`) and
    /// RPMsg-Lite's (`vq_rx_free_remote`) remotes write: OpenAMP's host sizes the recycled
    /// transmit buffer from it (`rpmsg_virtio_get_tx_buffer`), RPMsg-Lite's master reports
    /// it as the zero-copy buffer's size. Linux ignores it (`get_a_tx_buf`).
    pub fn give_back(&mut self, head: u16, desc_len: u32) {
        if let Some(i) = &mut self.rings.inline {
            // Inline: messages are given back one at a time in the order taken (the
            // oldest is released); a release only fails with none taken.
            if let Ok(k) = i.rx.release(self.mem) {
                i.kick |= k;
            }
            return;
        }
        self.rings.rx.push_used(self.mem, head, desc_len);
    }

    /// Returns a taken message's buffer to the host (not yet published), unless it was
    /// copied out (its buffer went back then).
    pub fn finish(&mut self, t: &Taken) {
        if t.copy.is_none() {
            self.give_back(t.head, t.desc_len);
        }
    }

    /// The payload of a held message copied out on an in-order ring (`None`: it is in its
    /// buffer).
    pub fn copied(&self, t: &Taken) -> Option<&[u8]> {
        t.copy.map(|k| &self.rings.copies[k][..t.plen])
    }

    /// Delivers a taken message to `f` in place (or from its copy), then returns its
    /// buffer to the host (not yet published).
    pub fn deliver<R>(&mut self, t: &Taken, f: impl FnOnce(Msg<'_>) -> R) -> Result<R> {
        let range = match t.copy {
            Some(_) => None,
            // The chain is popped and not yet returned: the host does not touch the
            // buffer until we push it to the used ring.
            None => Some(
                OwnedRange::claim(self.mem, t.pay, t.plen)
                    .ok_or(Error::Config("memory without direct access"))?,
            ),
        };
        self.link.count.received += 1;
        self.note_sender(t);
        let payload = match &range {
            Some(r) => r.bytes(self.mem),
            None => self.copied(t).unwrap_or(&[]),
        };
        let r = f(Msg {
            src: t.src,
            dst: t.dst,
            payload,
        });
        self.finish(t);
        Ok(r)
    }

    /// Records `t`'s sender as the last one to its endpoint (where a channel opened to
    /// `RPMSG_ADDR_ANY` replies).
    pub fn note_sender(&mut self, t: &Taken) {
        if let Ok(e) = self.endpoints.get_mut(t.dst) {
            e.ext = t.src;
        }
    }

    /// Publishes the receive buffers returned so far (one index store, at most one kick).
    pub fn publish_rx(&mut self) -> Result<()> {
        if let Some(i) = &mut self.rings.inline {
            if core::mem::take(&mut i.kick) {
                self.link.kick(1)?;
            }
            return Ok(());
        }
        if self.rings.rx.publish(self.mem) {
            self.link.kick(1)?;
        }
        Ok(())
    }

    /// Pops one of the host's receive buffers (vring 0) to fill; `None` when the host has
    /// posted none.
    pub fn tx_slot(&mut self) -> Result<Option<TxSlot>> {
        if let Some(i) = &mut self.rings.inline {
            let a = match i.tx.reserve(self.mem) {
                Ok(a) => a,
                Err(e) => return Err(self.link.fail(e)),
            };
            let room = self
                .cfg
                .buf_size
                .saturating_sub(RPMSG_HDR_SIZE)
                .min(i.tx.max_payload())
                .min(u16::MAX as usize);
            return Ok(a.map(|a| TxSlot {
                head: 0,
                off: a.companion_off,
                desc_len: 0,
                room,
                areas: Some(a),
                pay: a.companion_off,
            }));
        }
        Ok(self.pop(0)?.map(|(chain, d, off)| TxSlot {
            head: chain.head(),
            off,
            desc_len: d.len,
            room: (d.len as usize - RPMSG_HDR_SIZE).min(u16::MAX as usize),
            areas: None,
            pay: off + RPMSG_HDR_SIZE,
        }))
    }

    /// Puts a popped, unused host buffer back (it was the last one popped on vring 0).
    pub fn untake_tx(&mut self) {
        if self.rings.inline.is_some() {
            // `reserve` took nothing.
            return;
        }
        self.rings.tx.undo_pop();
    }

    /// Sends `len` payload bytes already written at `slot` from `src` to `dst`: writes the
    /// header from these values, returns the buffer used and publishes it (at most one
    /// kick).
    pub fn submit(&mut self, slot: &TxSlot, src: u32, dst: u32, len: usize) -> Result<()> {
        if let (Some(a), Some(i)) = (slot.areas, &mut self.rings.inline) {
            let mut inline = slot.pay == a.inline_off;
            if !inline && len <= a.max_inline {
                // Written in the companion buffer (the length was not known): a message
                // that fits the slot goes in it.
                let mut tmp = [0u8; crate::virtq::inline::MAX_INLINE];
                self.mem.read(a.companion_off, &mut tmp[..len]);
                self.mem.write(a.inline_off, &tmp[..len]);
                inline = true;
            }
            let wake =
                i.tx.publish(self.mem, src, dst, len, inline)
                    .map_err(|e| self.link.fail(e))?;
            self.link.count.sent += 1;
            if wake {
                self.link.kick(0)?;
            }
            return Ok(());
        }
        let hdr = intercore_wire::rpmsg::RpmsgHdr::new(src, dst, len as u16);
        self.mem
            .write(slot.off, zerocopy::IntoBytes::as_bytes(&hdr));
        self.rings
            .tx
            .push_used(self.mem, slot.head, (RPMSG_HDR_SIZE + len) as u32);
        self.link.count.sent += 1;
        if self.rings.tx.publish(self.mem) {
            self.link.kick(0)?;
        }
        Ok(())
    }

    /// The payload area of a popped host buffer, `len` bytes of it.
    pub fn claim_tx(&self, slot: &mut TxSlot, len: usize) -> Result<OwnedRange> {
        if let Some(a) = slot.areas {
            // Inline: in the slot when `len` fits it, else in its companion buffer; both
            // are ours until the slot's sequence word is published.
            slot.pay = if len <= a.max_inline {
                a.inline_off
            } else {
                a.companion_off
            };
        }
        // The chain is popped and not yet returned: the host does not touch the buffer
        // until we push it to the used ring.
        OwnedRange::claim(self.mem, slot.pay, len)
            .ok_or(Error::Config("memory without direct access"))
    }
}
