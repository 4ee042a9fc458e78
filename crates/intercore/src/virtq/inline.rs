//! Inline-slot rings: one direction of an rpmsg link whose slots carry the message itself
//! (issue 24), negotiated only between two intercore ends
//! ([`INTERCORE_F_INLINE`](intercore_wire::rsc::INTERCORE_F_INLINE)).
//!
//! A split virtqueue cannot move a small message in fewer than four lines (descriptor,
//! available or used ring, index, buffer). Here a slot of one or two 64-byte lines holds the
//! rpmsg header and the payload, and the header's `reserved` word is the slot's
//! **sequence word**, written last: the slot's own contents say that it is full (the
//! FastForward family of single-producer queues, Giacomoni et al., PPoPP 2008), so a message
//! costs one line transfer per direction when it fits in one line.
//!
//! Layout at `base` (64-byte aligned), all words little-endian u32:
//!
//! | offset | line | written by | word |
//! |---|---|---|---|
//! | 0 | consumer's | consumer | `progress`: messages released (published in batches) |
//! | 4 | consumer's | consumer | `wake_at`: the message number it sleeps for ([`DISARMED`] ahead when awake) |
//! | 8 | consumer's | consumer | `polls`: [`POLLS_DECLARED`] while the consumer has declared that it never sleeps, else anything |
//! | 64 | producer's | producer | `space_at`: the `progress` it sleeps for, when full |
//! | 128 + k·slot | slot k | producer | `src`, `dst`, `seq`, `len` (u16), `flags` (u16), payload |
//!
//! The producer loads `wake_at` after every message (the consumer writes that line only
//! once a batch and when it goes to sleep or wakes, so it stays in both caches) and
//! `progress`, in the same line, only when the slots it knows free run out. Before
//! that it loads `polls`: a consumer that declared it never sleeps
//! ([`InlineRx::declare_polling`], a bus in `WaitMode::Poll`) is never rung, so the
//! producer skips the store→load fence and the `wake_at` load — the fence is what a
//! message costs most beyond its line transfer (it waits for the slot line's ownership
//! before the producer goes on). A consumer that withdraws the declaration keeps polling
//! [`POLL_GRACE`] before its first sleep, for any message published by a producer that
//! had not yet seen the withdrawal to become visible.
//!
//! Message `n` (counted from 0 at reset, wrapping) goes into slot `n mod slots` with
//! `seq = n + 1`; a zeroed slot (the first lap) or one holding `n + 1 − slots` (the lap
//! before) is empty, **any other value is a protocol error**. The producer writes a slot
//! only once the consumer's published `progress` says message `n − slots` was released.
//! A message longer than a slot's payload goes **by reference**: the slot carries the
//! header with [`SLOT_F_BY_REF`] and the payload is in slot `k`'s companion buffer
//! ([`Companions`]: a fixed buffer per slot, located from the slot number, never from an
//! address the peer wrote, so no address read from the ring can point outside the region).
//!
//! Orderings (each with its reason at the access): payload and header are plain stores
//! before the `Release` store of `seq`; the consumer loads `seq` with `Acquire` before
//! reading header and payload; `progress` is stored `Release` (the consumer's reads of
//! the released slots happen before the producer may overwrite them) and loaded
//! `Acquire`; a `SeqCst` fence separates "publish" from "read the peer's wake request" on
//! both sides and "arm" from "re-check" (the store→load order of the kernel's
//! `virtio_mb`), so a sleeper is never missed (`tests/loom_inline`).

use crate::{Error, Result, SharedMemory};
use core::sync::atomic::Ordering::{Acquire, Relaxed, Release, SeqCst};
use core::time::Duration;

/// A cache line.
pub const LINE: usize = 64;
/// Bytes of the two control lines before the first slot.
pub const CTRL: usize = 2 * LINE;
/// Bytes of the slot header (the rpmsg header's layout, `reserved` = sequence word).
pub const SLOT_HDR: usize = 16;
/// Slot header flag: the payload is in the slot's companion buffer.
pub const SLOT_F_BY_REF: u16 = 1 << 15;
/// Slot header flag (host → remote, only where [`INTERCORE_F_INLINE_ASK`] was accepted):
/// publish progress as soon as this message is released, not at the end of the batch —
/// its sender waits for the credit it frees.
///
/// [`INTERCORE_F_INLINE_ASK`]: intercore_wire::rsc::INTERCORE_F_INLINE_ASK
pub const SLOT_F_ASK: u16 = 1 << 14;
/// Most bytes a slot (two lines) carries inline.
pub const MAX_INLINE: usize = 2 * LINE - SLOT_HDR;
/// How far ahead of the next message a disarmed wake word points (half the number space,
/// as the kernel's event index when notifications are off).
pub const DISARMED: u32 = 1 << 31;

const PROGRESS: usize = 0;
const WAKE: usize = 4;
/// The consumer's declaration that it never sleeps (in its own line).
const POLLS: usize = 8;
/// The value of `polls` while the consumer has declared it never sleeps ("POLL"); any
/// other value (a reset ring's zero) means it may sleep.
pub const POLLS_DECLARED: u32 = u32::from_le_bytes(*b"POLL");
/// How long a consumer that withdrew its polling declaration keeps polling before it may
/// sleep: a producer that read the declaration just before the withdrawal published
/// without the store→load fence, and its slot store must become visible first. Stores
/// drain from a store buffer (or a write buffer to uncached memory) within microseconds;
/// a millisecond, once per withdrawal, bounds that with a wide margin — the one place the
/// ring relies on a time bound rather than an ordering (see `docs/ARCHITECTURE.md`).
pub const POLL_GRACE: Duration = Duration::from_millis(1);
const SPACE: usize = LINE;
const SEQ: usize = 8;
/// `len` (u16) and `flags` (u16), accessed as one word.
const LEN: usize = 12;

/// `true` when `event` lies in `[old, new)` (mod 2³²): the kernel's `vring_need_event` on
/// 32-bit message numbers.
fn need_event(event: u32, new: u32, old: u32) -> bool {
    event.wrapping_sub(old) < new.wrapping_sub(old)
}

/// The inline-ring negotiation, in one place: the payload bytes a slot carries when both
/// ends are intercore and both offer inline rings, else `None` (the standard split ring).
/// `offered` and `inline_max` are the firmware's vendor entry (`None`: no entry — Linux's,
/// OpenAMP's, RPMsg-Lite's, TI's and Zephyr's tables); `host_offers` whether the host wants
/// them.
pub fn negotiate(entry: Option<(u32, u32)>, host_offers: bool) -> Option<usize> {
    use intercore_wire::rsc::{INTERCORE_F_INLINE, INTERCORE_INLINE_MAX};
    let (offered, inline_max) = entry?;
    (host_offers
        && offered & INTERCORE_F_INLINE != 0
        && (1..=INTERCORE_INLINE_MAX).contains(&inline_max))
    .then_some(inline_max as usize)
}

/// Where one direction's slots are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InlineLayout {
    /// Region offset of the progress line (64-byte aligned).
    pub base: usize,
    /// Slots (a power of two, at least 2).
    pub slots: u32,
    /// Bytes per slot: 64 or 128.
    pub slot_size: usize,
}

impl InlineLayout {
    /// The largest ring of slots sized for `max_inline` payload bytes (one line up to 48,
    /// two up to [`MAX_INLINE`]) that fits in `area` bytes at `base`, with at most
    /// `max_slots` slots (the companion buffers available).
    pub fn fit(base: usize, area: usize, max_inline: usize, max_slots: u32) -> Result<Self> {
        if base % LINE != 0 {
            return Err(Error::Config("inline ring must be 64-byte aligned"));
        }
        if max_inline == 0 || max_inline > MAX_INLINE {
            return Err(Error::Config("inline payload must be 1..=112 bytes"));
        }
        let slot_size = (SLOT_HDR + max_inline).div_ceil(LINE) * LINE;
        let room = area.saturating_sub(CTRL) / slot_size;
        let cap = room.min(max_slots as usize).min(1 << 15);
        if cap < 2 {
            return Err(Error::Config("inline ring area too small for two slots"));
        }
        // The largest power of two not above `cap` (slot = n mod slots with a mask).
        let slots = 1u32 << (usize::BITS - 1 - cap.leading_zeros());
        Ok(Self {
            base,
            slots,
            slot_size,
        })
    }

    /// Payload bytes a slot carries inline.
    pub fn max_inline(&self) -> usize {
        self.slot_size - SLOT_HDR
    }

    /// Bytes from `base` to the end of the last slot.
    pub fn size(&self) -> usize {
        CTRL + self.slots as usize * self.slot_size
    }

    /// Region offset of the slot message `n` goes to.
    pub fn slot(&self, n: u32) -> usize {
        self.base + CTRL + (n & (self.slots - 1)) as usize * self.slot_size
    }

    fn check<M: SharedMemory + ?Sized>(&self, mem: &M, c: &Companions) -> Result<()> {
        let ok = self.slots >= 2
            && self.slots.is_power_of_two()
            && (self.slot_size == LINE || self.slot_size == 2 * LINE)
            && self.base % LINE == 0
            && self
                .base
                .checked_add(self.size())
                .is_some_and(|e| e <= mem.len())
            && c.stride >= self.max_inline()
            && c.base % 4 == 0
            && (self.slots as usize)
                .checked_mul(c.stride)
                .and_then(|n| n.checked_add(c.base))
                .is_some_and(|e| e <= mem.len());
        if ok {
            Ok(())
        } else {
            Err(Error::Config(
                "inline ring or its companion buffers do not fit the region",
            ))
        }
    }

    /// Zeroes the control lines and every slot's sequence word and disarms both wake
    /// words: an empty ring. Done by the host, before `DRIVER_OK`, for both directions.
    pub fn reset<M: SharedMemory + ?Sized>(&self, mem: &M) {
        mem.store_u32(self.base + PROGRESS, 0, Relaxed);
        // Relaxed throughout: published by the host's Release store of DRIVER_OK.
        mem.store_u32(self.base + WAKE, DISARMED, Relaxed);
        mem.store_u32(self.base + SPACE, DISARMED, Relaxed);
        for k in 0..self.slots {
            mem.store_u32(self.slot(k) + SEQ, 0, Relaxed);
        }
    }
}

/// The buffers that carry messages too long for a slot: slot `k`'s is at
/// `base + k · stride` (region offsets), owned with the slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Companions {
    /// Region offset of slot 0's buffer.
    pub base: usize,
    /// Bytes per buffer (the longest by-reference payload).
    pub stride: usize,
}

/// A message taken from a slot; it stays there (the payload is a view) until
/// [`InlineRx::release`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotMsg {
    /// Source address.
    pub src: u32,
    /// Destination address.
    pub dst: u32,
    /// Region offset of the payload (in the slot, or in its companion buffer).
    pub off: usize,
    /// Payload bytes.
    pub len: usize,
    /// Whether the payload is in the slot itself.
    pub inline: bool,
}

/// Where the next message's payload may be written ([`InlineTx::reserve`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxAreas {
    /// Region offset of the slot's payload area ([`Self::max_inline`] bytes).
    pub inline_off: usize,
    /// Region offset of the slot's companion buffer.
    pub companion_off: usize,
    /// Payload bytes the slot carries inline.
    pub max_inline: usize,
}

/// Both directions of an rpmsg link on inline rings, as both ends compute them from what
/// both know: each direction's ring in its vring's area (`rings[0]`: remote → host, in
/// vring 0's; `rings[1]`: host → remote), at most half as many slots as the vring has
/// entries, and the host's buffers as companions — slot `k` of the remote → host ring has
/// receive buffer `k`, slot `k` of the host → remote ring transmit buffer `k` (the receive
/// half first, `num` buffers of `buf_size` bytes each way, as the host lays them out).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkPlan {
    /// remote → host, then host → remote.
    pub dirs: [(InlineLayout, Companions); 2],
}

impl LinkPlan {
    /// The plan for vring areas `rings` (region offset, bytes, entries), the buffer area at
    /// `buf_off` (`buf_len` bytes) and buffers of `buf_size`, slots sized for
    /// `max_inline`. Refused when the buffers do not fit the area or a ring area is too
    /// small.
    pub fn new(
        rings: [(usize, usize, u32); 2],
        buf_off: usize,
        buf_len: usize,
        buf_size: usize,
        max_inline: usize,
    ) -> Result<Self> {
        let num = rings[0].2;
        if rings[1].2 != num || num < 4 || buf_size == 0 {
            return Err(Error::Config(
                "inline rings need two vrings of the same size, at least 4 entries",
            ));
        }
        let half = (num as usize).checked_mul(buf_size);
        if half
            .and_then(|h| h.checked_mul(2))
            .is_none_or(|all| all > buf_len)
        {
            return Err(Error::Config(
                "inline rings: the buffer area is smaller than the host's buffers",
            ));
        }
        let half = half.unwrap_or(0);
        let comp = [
            Companions {
                base: buf_off,
                stride: buf_size,
            },
            Companions {
                base: buf_off + half,
                stride: buf_size,
            },
        ];
        let mut dirs = [(
            InlineLayout::fit(rings[0].0, rings[0].1, max_inline, num / 2)?,
            comp[0],
        ); 2];
        dirs[1] = (
            InlineLayout::fit(rings[1].0, rings[1].1, max_inline, num / 2)?,
            comp[1],
        );
        Ok(Self { dirs })
    }
}

/// The producing end of one inline ring.
#[derive(Debug, Clone)]
pub struct InlineTx {
    layout: InlineLayout,
    comp: Companions,
    /// Messages published.
    produced: u32,
    /// The consumer's `progress` as last loaded.
    seen: u32,
    /// Whether `space_at` is armed (written only when that changes).
    space_armed: bool,
}

impl InlineTx {
    /// The producer of a ring at `layout` whose long messages go to `comp`; starts at
    /// message 0 (after [`InlineLayout::reset`]).
    pub fn new<M: SharedMemory + ?Sized>(
        mem: &M,
        layout: InlineLayout,
        comp: Companions,
    ) -> Result<Self> {
        layout.check(mem, &comp)?;
        Ok(Self {
            layout,
            comp,
            produced: 0,
            seen: 0,
            space_armed: false,
        })
    }

    /// The ring's layout.
    pub fn layout(&self) -> &InlineLayout {
        &self.layout
    }

    /// The longest payload: a companion buffer.
    pub fn max_payload(&self) -> usize {
        self.comp.stride
    }

    /// Whether a slot is free. Loads the consumer's progress line only when the slots
    /// known free are used up (once per published batch, not per message).
    pub fn has_space<M: SharedMemory + ?Sized>(&mut self, mem: &M) -> Result<bool> {
        if self.produced.wrapping_sub(self.seen) < self.layout.slots {
            return Ok(true);
        }
        self.load_progress(mem)?;
        Ok(self.produced.wrapping_sub(self.seen) < self.layout.slots)
    }

    fn load_progress<M: SharedMemory + ?Sized>(&mut self, mem: &M) -> Result<()> {
        // Acquire: the consumer's reads of the released slots happened before we reuse them.
        let p = mem.load_u32(self.layout.base + PROGRESS, Acquire);
        // Progress may only move forward, and never past what was produced.
        if p.wrapping_sub(self.seen) > self.produced.wrapping_sub(self.seen) {
            return Err(Error::Protocol {
                what: "inline ring progress outside the messages produced",
                value: u64::from(p),
            });
        }
        self.seen = p;
        Ok(())
    }

    /// Writes one message (inline when it fits, else by reference) and publishes it.
    /// Returns whether the consumer asked to be woken for it (ring its doorbell).
    /// `WouldBlock` when every slot is in use; `MessageTooLarge` past a companion buffer.
    pub fn try_send<M: SharedMemory + ?Sized>(
        &mut self,
        mem: &M,
        src: u32,
        dst: u32,
        payload: &[u8],
    ) -> Result<bool> {
        self.try_send_with(mem, src, dst, payload.len(), |m, off| m.write(off, payload))
    }

    /// As [`try_send`](Self::try_send), the payload written in place by `fill(mem, off)`
    /// (exactly `len` bytes at region offset `off`).
    pub fn try_send_with<M: SharedMemory + ?Sized>(
        &mut self,
        mem: &M,
        src: u32,
        dst: u32,
        len: usize,
        fill: impl FnOnce(&M, usize),
    ) -> Result<bool> {
        self.check_len(len)?;
        let a = self.reserve(mem)?.ok_or(Error::WouldBlock)?;
        let inline = len <= a.max_inline;
        fill(
            mem,
            if inline {
                a.inline_off
            } else {
                a.companion_off
            },
        );
        self.publish(mem, src, dst, len, inline)
    }

    fn check_len(&self, len: usize) -> Result<()> {
        if len > self.comp.stride || len > usize::from(u16::MAX) {
            return Err(Error::MessageTooLarge {
                len,
                max: self.comp.stride.min(usize::from(u16::MAX)),
            });
        }
        Ok(())
    }

    /// Where the next message goes, when a slot is free (`None`: every slot is in use):
    /// its payload area in the slot and its companion buffer, both the producer's until
    /// [`publish`](Self::publish). Writes nothing.
    pub fn reserve<M: SharedMemory + ?Sized>(&mut self, mem: &M) -> Result<Option<TxAreas>> {
        if !self.has_space(mem)? {
            return Ok(None);
        }
        let n = self.produced;
        let k = (n & (self.layout.slots - 1)) as usize;
        Ok(Some(TxAreas {
            inline_off: self.layout.slot(n) + SLOT_HDR,
            companion_off: self.comp.base + k * self.comp.stride,
            max_inline: self.layout.max_inline(),
        }))
    }

    /// Publishes the message whose `len` payload bytes were written where
    /// [`reserve`](Self::reserve) said: in the slot (`inline`) or its companion buffer.
    /// Returns whether the consumer asked to be woken for it (ring its doorbell).
    pub fn publish<M: SharedMemory + ?Sized>(
        &mut self,
        mem: &M,
        src: u32,
        dst: u32,
        len: usize,
        inline: bool,
    ) -> Result<bool> {
        self.publish_asking(mem, src, dst, len, inline, false)
    }

    /// [`publish`](Self::publish), with `ask`: the slot carries [`SLOT_F_ASK`], so the
    /// consumer publishes its progress as soon as it releases this message (only where the
    /// consumer accepted the flag, [`InlineRx::with_ask`]; any other consumer refuses it).
    pub fn publish_asking<M: SharedMemory + ?Sized>(
        &mut self,
        mem: &M,
        src: u32,
        dst: u32,
        len: usize,
        inline: bool,
        ask: bool,
    ) -> Result<bool> {
        self.check_len(len)?;
        if inline && len > self.layout.max_inline() {
            return Err(Error::MessageTooLarge {
                len,
                max: self.layout.max_inline(),
            });
        }
        if self.produced.wrapping_sub(self.seen) >= self.layout.slots {
            return Err(Error::WouldBlock);
        }
        let n = self.produced;
        let slot = self.layout.slot(n);
        let flags = if inline { 0 } else { SLOT_F_BY_REF } | if ask { SLOT_F_ASK } else { 0 };
        let mut hdr = [0u8; 8];
        hdr[..4].copy_from_slice(&src.to_le_bytes());
        hdr[4..].copy_from_slice(&dst.to_le_bytes());
        mem.write(slot, &hdr);
        // Relaxed: published with the slot by the Release store of `seq` below.
        mem.store_u32(slot + LEN, len as u32 | u32::from(flags) << 16, Relaxed);
        // Release, written last: header and payload are visible before the slot is full.
        mem.store_u32(slot + SEQ, n.wrapping_add(1), Release);
        self.produced = n.wrapping_add(1);
        // Relaxed: a consumer that declared it polls is never rung; one that withdrew the
        // declaration polls on for POLL_GRACE first, so this message is seen either way.
        if mem.load_u32(self.layout.base + POLLS, Relaxed) == POLLS_DECLARED {
            return Ok(false);
        }
        // SeqCst fence: the seq store is ordered before the load of the consumer's wake
        // request (store→load; otherwise both may decide the other is awake).
        mem.fence(SeqCst);
        let wake = mem.load_u32(self.layout.base + WAKE, Relaxed);
        Ok(need_event(wake, self.produced, n))
    }

    /// Asks the consumer to ring when it releases enough for one more slot, then looks
    /// again: `true` when a slot is free now (do not sleep).
    pub fn arm_space<M: SharedMemory + ?Sized>(&mut self, mem: &M) -> Result<bool> {
        let want = self
            .produced
            .wrapping_sub(self.layout.slots)
            .wrapping_add(1);
        // Relaxed: ordered before the re-check by the SeqCst fence.
        mem.store_u32(self.layout.base + SPACE, want, Relaxed);
        self.space_armed = true;
        // SeqCst fence: arm before re-reading progress (store→load).
        mem.fence(SeqCst);
        self.load_progress(mem)?;
        Ok(self.produced.wrapping_sub(self.seen) < self.layout.slots)
    }

    /// Asks the consumer to ring when it releases any message not yet known released,
    /// then looks again: `true` when progress moved (do not sleep). For a producer waiting
    /// for its own earlier messages to be consumed rather than for a free slot (the host's
    /// per-endpoint transmit credit).
    pub fn arm_progress<M: SharedMemory + ?Sized>(&mut self, mem: &M) -> Result<bool> {
        let old = self.seen;
        // Relaxed: ordered before the re-check by the SeqCst fence.
        // The consumer rings when its progress reaches the value asked for: one past it.
        mem.store_u32(self.layout.base + SPACE, old.wrapping_add(1), Relaxed);
        self.space_armed = true;
        // SeqCst fence: arm before re-reading progress (store→load).
        mem.fence(SeqCst);
        self.load_progress(mem)?;
        Ok(self.seen != old)
    }

    /// Loads the consumer's progress now: [`Self::in_flight`] is then current.
    pub fn refresh<M: SharedMemory + ?Sized>(&mut self, mem: &M) -> Result<()> {
        self.load_progress(mem)
    }

    /// Withdraws a space request (only writes when one is armed).
    pub fn disarm_space<M: SharedMemory + ?Sized>(&mut self, mem: &M) {
        if self.space_armed {
            self.space_armed = false;
            // Relaxed: a late wake-up is harmless, only a missed one is not.
            mem.store_u32(
                self.layout.base + SPACE,
                self.seen.wrapping_add(DISARMED),
                Relaxed,
            );
        }
    }

    /// Messages published and not yet known released.
    pub fn in_flight(&self) -> u32 {
        self.produced.wrapping_sub(self.seen)
    }
}

/// The consuming end of one inline ring.
#[derive(Debug, Clone)]
pub struct InlineRx {
    layout: InlineLayout,
    comp: Companions,
    /// The next message number to take.
    next: u32,
    /// Messages released (in order).
    released: u32,
    /// `progress` as last stored.
    published: u32,
    /// Release progress every this many messages.
    batch: u32,
    /// Whether `next` has gone round the ring once (a zero `seq` is no longer empty).
    lapped: bool,
    /// Whether `wake_at` is armed (written only when that changes).
    armed: bool,
    /// Whether the producer may set [`SLOT_F_ASK`] (negotiated); else the flag is unknown.
    ask: bool,
    /// The number of the latest message taken that asked for its release to be published,
    /// not yet released (an earlier one's release is then published with it).
    ask_upto: Option<u32>,
    /// Whether `polls` says [`POLLS_DECLARED`] (written only when that changes).
    polling: bool,
    /// When a withdrawn declaration's grace ends (clock of the caller's doorbell): no
    /// sleep before it.
    grace_until: Option<Duration>,
}

impl InlineRx {
    /// The consumer of a ring at `layout` whose long messages are in `comp`; starts at
    /// message 0 (after [`InlineLayout::reset`]). Progress is published every
    /// `slots / 4` releases (at least 1).
    pub fn new<M: SharedMemory + ?Sized>(
        mem: &M,
        layout: InlineLayout,
        comp: Companions,
    ) -> Result<Self> {
        layout.check(mem, &comp)?;
        Ok(Self {
            layout,
            comp,
            next: 0,
            released: 0,
            published: 0,
            batch: (layout.slots / 4).max(1),
            lapped: false,
            armed: false,
            ask: false,
            ask_upto: None,
            polling: false,
            grace_until: None,
        })
    }

    /// Declares (`true`) that this consumer never sleeps on its doorbell — it polls — so the
    /// producer skips the wake check after each message (its store→load fence), or
    /// withdraws that (`false`): [`Self::arm`] then says "look again" until
    /// [`POLL_GRACE`] after `now` has passed. `now`: the doorbell's clock
    /// ([`Doorbell::now`](crate::Doorbell::now)). Writes only when the declaration changes.
    pub fn declare_polling<M: SharedMemory + ?Sized>(
        &mut self,
        mem: &M,
        polling: bool,
        now: Duration,
    ) {
        if self.polling == polling {
            return;
        }
        self.polling = polling;
        if polling {
            self.grace_until = None;
            // Relaxed: a producer that misses it for a while only checks the wake word.
            mem.store_u32(self.layout.base + POLLS, POLLS_DECLARED, Relaxed);
        } else {
            // Relaxed: producers that still read the declaration are covered by the grace.
            mem.store_u32(self.layout.base + POLLS, 0, Relaxed);
            self.grace_until = Some(now.saturating_add(POLL_GRACE));
        }
    }

    /// Whether this consumer has declared it polls ([`Self::declare_polling`]).
    pub fn polling(&self) -> bool {
        self.polling
    }

    /// Accepts [`SLOT_F_ASK`] from the producer (`INTERCORE_F_INLINE_ASK` negotiated):
    /// the release of a message carrying it publishes progress at once. Without this the
    /// flag is unknown, a protocol error.
    pub fn with_ask(mut self, on: bool) -> Self {
        self.ask = on;
        self
    }

    /// The ring's layout.
    pub fn layout(&self) -> &InlineLayout {
        &self.layout
    }

    /// Publishes progress every `batch` releases instead (clamped to `1..=slots`; a
    /// producer waiting for space is never stranded: once every slot is released a whole
    /// batch is, and `arm` publishes what is left before sleeping).
    pub fn with_batch(mut self, batch: u32) -> Self {
        self.batch = batch.clamp(1, self.layout.slots);
        self
    }

    /// Whether a message is waiting (its sequence word says full), without taking it:
    /// one load of the next slot's sequence word.
    pub fn pending<M: SharedMemory + ?Sized>(&self, mem: &M) -> Result<bool> {
        self.ready(mem)
    }

    /// The number of the next message [`try_recv`](Self::try_recv) takes.
    pub fn next_number(&self) -> u32 {
        self.next
    }

    /// The number of the oldest message taken and not yet released.
    pub fn oldest_held(&self) -> u32 {
        self.released
    }

    /// Messages taken and not yet released.
    pub fn held(&self) -> u32 {
        self.next.wrapping_sub(self.released)
    }

    /// What the sequence word says about message `self.next`: `Ok(true)` full, `Ok(false)`
    /// empty, or the protocol error.
    fn ready<M: SharedMemory + ?Sized>(&self, mem: &M) -> Result<bool> {
        if self.held() >= self.layout.slots {
            // Every slot is ours until we release: nothing more can be there.
            return Ok(false);
        }
        let n = self.next;
        let slot = self.layout.slot(n);
        if self.layout.slot_size > LINE {
            // A two-line slot: touch its second line first (value unused; Relaxed, it
            // orders nothing), so both lines' transfers are in flight at once instead of the
            // second starting only after the sequence word arrived.
            let _ = mem.load_u32(slot + LINE, Relaxed);
        }
        // Acquire: header and payload written before `seq` are visible after it.
        let seq = mem.load_u32(slot + SEQ, Acquire);
        let empty = if self.lapped {
            n.wrapping_add(1).wrapping_sub(self.layout.slots)
        } else {
            0
        };
        if seq == n.wrapping_add(1) {
            Ok(true)
        } else if seq == empty {
            Ok(false)
        } else {
            Err(Error::Protocol {
                what: "inline slot sequence word is neither the next message nor empty",
                value: u64::from(seq),
            })
        }
    }

    /// Takes the next message, checked, leaving it in its slot (a view until
    /// [`release`](Self::release)). `Ok(None)` when the ring is empty.
    pub fn try_recv<M: SharedMemory + ?Sized>(&mut self, mem: &M) -> Result<Option<SlotMsg>> {
        if !self.ready(mem)? {
            return Ok(None);
        }
        let n = self.next;
        let slot = self.layout.slot(n);
        let mut hdr = [0u8; 8];
        mem.read(slot, &mut hdr);
        let src = u32::from_le_bytes([hdr[0], hdr[1], hdr[2], hdr[3]]);
        let dst = u32::from_le_bytes([hdr[4], hdr[5], hdr[6], hdr[7]]);
        // Relaxed: ordered after the Acquire load of `seq`.
        let lf = mem.load_u32(slot + LEN, Relaxed);
        let (len, mut flags) = ((lf & 0xFFFF) as usize, (lf >> 16) as u16);
        let asked = self.ask && flags & SLOT_F_ASK != 0;
        if asked {
            flags &= !SLOT_F_ASK;
        }
        let msg = match flags {
            0 if len <= self.layout.max_inline() => SlotMsg {
                src,
                dst,
                off: slot + SLOT_HDR,
                len,
                inline: true,
            },
            SLOT_F_BY_REF if len <= self.comp.stride => {
                let k = (n & (self.layout.slots - 1)) as usize;
                SlotMsg {
                    src,
                    dst,
                    off: self.comp.base + k * self.comp.stride,
                    len,
                    inline: false,
                }
            }
            0 | SLOT_F_BY_REF => {
                return Err(Error::Protocol {
                    what: "inline slot length exceeds its slot or companion buffer",
                    value: len as u64,
                });
            }
            _ => {
                return Err(Error::Protocol {
                    what: "inline slot flags unknown",
                    value: u64::from(flags),
                });
            }
        };
        self.next = n.wrapping_add(1);
        if self.next == self.layout.slots {
            self.lapped = true;
        }
        if asked {
            self.ask_upto = Some(n);
        }
        Ok(Some(msg))
    }

    /// Releases the oldest taken message (its slot may be reused); publishes progress once
    /// a batch is released, or at once when the message asked for it ([`SLOT_F_ASK`]).
    /// Returns whether the producer asked to be woken (ring it).
    pub fn release<M: SharedMemory + ?Sized>(&mut self, mem: &M) -> Result<bool> {
        if self.held() == 0 {
            return Err(Error::Config("inline release without a message taken"));
        }
        let m = self.released;
        self.released = m.wrapping_add(1);
        let asked = self.ask_upto == Some(m);
        if asked {
            self.ask_upto = None;
        }
        if asked || self.released.wrapping_sub(self.published) >= self.batch {
            return Ok(self.publish(mem));
        }
        Ok(false)
    }

    /// Publishes progress now if any release is unpublished (before sleeping, or when the
    /// caller knows the producer waits). Returns whether to ring the producer.
    pub fn flush<M: SharedMemory + ?Sized>(&mut self, mem: &M) -> bool {
        if self.released != self.published {
            self.publish(mem)
        } else {
            false
        }
    }

    fn publish<M: SharedMemory + ?Sized>(&mut self, mem: &M) -> bool {
        let old = self.published;
        self.published = self.released;
        // Release: our reads of the released slots complete before the producer reuses them.
        mem.store_u32(self.layout.base + PROGRESS, self.published, Release);
        // SeqCst fence: publish before reading the producer's request (store→load).
        mem.fence(SeqCst);
        let want = mem.load_u32(self.layout.base + SPACE, Relaxed);
        need_event(want.wrapping_sub(1), self.published, old)
    }

    /// Asks the producer to ring for the next message, then looks again: `true` when one
    /// is there now (do not sleep). Publishes unpublished progress first (a producer
    /// waiting for space must not wait on a sleeping consumer).
    ///
    /// A consumer that declared it polls withdraws the declaration here (it is about to
    /// sleep), and until [`POLL_GRACE`] after that (`now`, the doorbell's clock) `arm`
    /// answers `true` without arming: keep polling.
    pub fn arm<M: SharedMemory + ?Sized>(
        &mut self,
        mem: &M,
        now: Duration,
    ) -> Result<(bool, bool)> {
        if self.polling {
            self.declare_polling(mem, false, now);
        }
        if let Some(end) = self.grace_until {
            if now < end {
                return Ok((true, self.flush(mem)));
            }
            self.grace_until = None;
        }
        let kick = self.flush(mem);
        // Relaxed: ordered before the re-check by the SeqCst fence.
        mem.store_u32(self.layout.base + WAKE, self.next, Relaxed);
        self.armed = true;
        // SeqCst fence: arm before re-reading the slot (store→load).
        mem.fence(SeqCst);
        Ok((self.ready(mem)?, kick))
    }

    /// Withdraws the wake request (only writes when one is armed).
    pub fn disarm<M: SharedMemory + ?Sized>(&mut self, mem: &M) {
        if self.armed {
            self.armed = false;
            // Relaxed: a late wake-up is harmless, only a missed one is not.
            mem.store_u32(
                self.layout.base + WAKE,
                self.next.wrapping_add(DISARMED),
                Relaxed,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::HeapMem as MemcpyMem;

    const NUM: u32 = 4;

    fn ring() -> (MemcpyMem, InlineLayout, Companions) {
        let mem = MemcpyMem::new(8192);
        let l = InlineLayout::fit(0, CTRL + NUM as usize * 128, 64, NUM).unwrap();
        let c = Companions {
            base: 4096,
            stride: 512,
        };
        l.reset(&mem);
        (mem, l, c)
    }

    /// Inline only when both ends offer it: a host against a firmware without the bit (or
    /// without the entry at all, as every non-intercore peer's table), and a host that does
    /// not offer it against one that does, both fall back to the split ring.
    #[test]
    fn negotiation_needs_both_ends() {
        use intercore_wire::rsc::{INTERCORE_F_IN_ORDER, INTERCORE_F_INLINE};
        let both = INTERCORE_F_IN_ORDER | INTERCORE_F_INLINE;
        assert_eq!(negotiate(Some((both, 48)), true), Some(48));
        assert_eq!(negotiate(Some((INTERCORE_F_IN_ORDER, 0)), true), None);
        assert_eq!(negotiate(None, true), None);
        assert_eq!(negotiate(Some((both, 48)), false), None);
        assert_eq!(negotiate(Some((both, 0)), true), None);
        assert_eq!(negotiate(Some((both, 113)), true), None);
    }

    #[test]
    fn slot_size_follows_the_inline_maximum() {
        let l = InlineLayout::fit(0, 4096, 48, 256).unwrap();
        assert_eq!((l.slot_size, l.max_inline()), (64, 48));
        let l = InlineLayout::fit(0, 4096, 49, 256).unwrap();
        assert_eq!((l.slot_size, l.max_inline()), (128, 112));
        assert_eq!(l.slots, 16); // (4096 - 128) / 128 = 31 → 16
        assert!(InlineLayout::fit(32, 4096, 48, 256).is_err());
        assert!(InlineLayout::fit(0, 4096, 113, 256).is_err());
        assert!(InlineLayout::fit(0, CTRL + 64, 48, 256).is_err());
    }

    /// Messages of every size cross, inline or by reference, through several laps.
    #[test]
    fn messages_cross_inline_and_by_reference_over_laps() {
        let (mem, l, c) = ring();
        let mut tx = InlineTx::new(&mem, l, c).unwrap();
        let mut rx = InlineRx::new(&mem, l, c).unwrap();
        for i in 0..40u32 {
            let len = [0, 1, 16, 48, 64, 112, 113, 496, 512][i as usize % 9];
            let data: Vec<u8> = (0..len).map(|b| (b as u32 + i) as u8).collect();
            tx.try_send(&mem, 1024 + i, 53 + i, &data).unwrap();
            let m = rx.try_recv(&mem).unwrap().unwrap();
            assert_eq!(
                (m.src, m.dst, m.len, m.inline),
                (1024 + i, 53 + i, len, len <= 112)
            );
            let mut got = vec![0; len];
            mem.read(m.off, &mut got);
            assert_eq!(got, data);
            rx.release(&mem).unwrap();
            assert_eq!(rx.try_recv(&mem).unwrap(), None);
        }
    }

    /// Message numbers wrap (at 3 M messages/s, u32 wraps in 24 minutes): both ends started
    /// just below 2³², as a ring left after that many messages would be, carry several laps
    /// across the wrap (where a sequence word of 0 means "full"), with the wake words.
    #[test]
    fn message_numbers_wrap() {
        let (mem, l, c) = ring();
        let start = u32::MAX - 5;
        for i in 0..NUM {
            let n = start.wrapping_add(i);
            mem.store_u32(
                l.slot(n) + SEQ,
                n.wrapping_add(1).wrapping_sub(NUM),
                Relaxed,
            );
        }
        mem.store_u32(l.base + PROGRESS, start, Relaxed);
        let mut tx = InlineTx::new(&mem, l, c).unwrap();
        let mut rx = InlineRx::new(&mem, l, c).unwrap();
        (tx.produced, tx.seen) = (start, start);
        (rx.next, rx.released, rx.published, rx.lapped) = (start, start, start, true);
        for i in 0..5 * NUM {
            assert_eq!(rx.try_recv(&mem).unwrap(), None, "message {i}: empty");
            assert_eq!(rx.arm(&mem, Duration::ZERO).unwrap(), (false, false));
            assert!(
                tx.try_send(&mem, i, 0, &i.to_le_bytes()).unwrap(),
                "armed: ring"
            );
            rx.disarm(&mem);
            let m = rx.try_recv(&mem).unwrap().expect("crossed");
            assert_eq!(m.src, i);
            rx.release(&mem).unwrap();
        }
        assert!(tx.produced < 100, "wrapped");
    }

    /// The producer stops at a full ring, reads progress only when its slots run out, and
    /// the consumer's batched progress frees them.
    #[test]
    fn full_ring_and_batched_progress() {
        let (mem, l, c) = ring();
        let mut tx = InlineTx::new(&mem, l, c).unwrap();
        let mut rx = InlineRx::new(&mem, l, c).unwrap();
        for _ in 0..NUM {
            tx.try_send(&mem, 1, 2, b"x").unwrap();
        }
        assert_eq!(tx.try_send(&mem, 1, 2, b"x"), Err(Error::WouldBlock));
        for _ in 0..NUM {
            rx.try_recv(&mem).unwrap().unwrap();
        }
        assert_eq!(rx.try_recv(&mem).unwrap(), None, "all slots held");
        // batch = NUM / 4 = 1: each release publishes.
        rx.release(&mem).unwrap();
        tx.try_send(&mem, 1, 2, b"y").unwrap();
        assert_eq!(tx.try_send(&mem, 1, 2, b"x"), Err(Error::WouldBlock));
        // The producer asks for space; the consumer's next publish says to ring it.
        assert!(!tx.arm_space(&mem).unwrap());
        assert!(rx.release(&mem).unwrap(), "producer waiting: ring it");
        assert!(tx.has_space(&mem).unwrap());
    }

    /// The ask flag: a message published with `ask` is refused by a consumer that did not
    /// accept the flag (unknown flags), and with it accepted its release publishes progress
    /// at once, where an unflagged one waits for the end of the batch.
    #[test]
    fn ask_flag_publishes_its_release_at_once() {
        let publish = |tx: &mut InlineTx, mem: &MemcpyMem, ask: bool| {
            let a = tx.reserve(mem).unwrap().unwrap();
            mem.write(a.inline_off, b"m");
            tx.publish_asking(mem, 1, 2, 1, true, ask).unwrap();
        };
        let (mem, l, c) = ring();
        let mut tx = InlineTx::new(&mem, l, c).unwrap();
        let mut rx = InlineRx::new(&mem, l, c).unwrap();
        publish(&mut tx, &mem, true);
        assert!(matches!(
            rx.try_recv(&mem),
            Err(Error::Protocol {
                what: "inline slot flags unknown",
                ..
            })
        ));
        let (mem, l, c) = ring();
        let mut tx = InlineTx::new(&mem, l, c).unwrap();
        let mut rx = InlineRx::new(&mem, l, c)
            .unwrap()
            .with_batch(4)
            .with_ask(true);
        // Unflagged: released, not published (batch of 4).
        publish(&mut tx, &mem, false);
        let m = rx.try_recv(&mem).unwrap().unwrap();
        assert_eq!((m.src, m.dst, m.len, m.inline), (1, 2, 1, true));
        rx.release(&mem).unwrap();
        tx.refresh(&mem).unwrap();
        assert_eq!(tx.in_flight(), 1, "batched");
        // Flagged: its release publishes both.
        publish(&mut tx, &mem, true);
        rx.try_recv(&mem).unwrap().unwrap();
        rx.release(&mem).unwrap();
        tx.refresh(&mem).unwrap();
        assert_eq!(tx.in_flight(), 0, "asked: published at its release");
        // Two taken, the later one asked: the earlier release waits, the later publishes.
        publish(&mut tx, &mem, false);
        publish(&mut tx, &mem, true);
        rx.try_recv(&mem).unwrap().unwrap();
        rx.try_recv(&mem).unwrap().unwrap();
        rx.release(&mem).unwrap();
        tx.refresh(&mem).unwrap();
        assert_eq!(tx.in_flight(), 2);
        rx.release(&mem).unwrap();
        tx.refresh(&mem).unwrap();
        assert_eq!(tx.in_flight(), 0);
    }

    /// Notification suppression: a consumer that is awake is never rung; an armed one is
    /// rung exactly for the message it waits for.
    #[test]
    fn wake_only_when_armed() {
        let (mem, l, c) = ring();
        let mut tx = InlineTx::new(&mem, l, c).unwrap();
        let mut rx = InlineRx::new(&mem, l, c).unwrap();
        assert!(!tx.try_send(&mem, 1, 2, b"a").unwrap(), "reset disarms");
        assert_eq!(
            rx.arm(&mem, Duration::ZERO).unwrap(),
            (true, false),
            "re-check sees it"
        );
        rx.try_recv(&mem).unwrap().unwrap();
        rx.release(&mem).unwrap();
        assert_eq!(rx.arm(&mem, Duration::ZERO).unwrap(), (false, false));
        assert!(tx.try_send(&mem, 1, 2, b"b").unwrap(), "armed: ring");
        rx.disarm(&mem);
        assert!(!tx.try_send(&mem, 1, 2, b"c").unwrap(), "disarmed: no ring");
    }

    /// A consumer that declared it polls is never rung, armed or not (the producer skips
    /// the wake check); withdrawing (at `arm`, or `declare_polling(false)`) keeps it
    /// polling — `arm` answers "look again" without arming — until `POLL_GRACE` has
    /// passed; after that it arms, and the producer rings it again.
    #[test]
    fn a_polling_consumer_is_not_rung_and_withdraws_after_a_grace() {
        let (mem, l, c) = ring();
        let mut tx = InlineTx::new(&mem, l, c).unwrap();
        let mut rx = InlineRx::new(&mem, l, c).unwrap();
        let ms = Duration::from_millis;
        rx.declare_polling(&mem, true, ms(10));
        assert!(rx.polling());
        assert_eq!(mem.load_u32(l.base + POLLS, Relaxed), POLLS_DECLARED);
        // Armed before declaring (a stale wake request): still not rung.
        mem.store_u32(l.base + WAKE, 0, Relaxed);
        assert!(!tx.try_send(&mem, 1, 2, b"a").unwrap(), "declared: no ring");
        // Going to sleep withdraws: look again, not armed, for POLL_GRACE.
        assert_eq!(rx.arm(&mem, ms(10)).unwrap(), (true, false));
        assert!(!rx.polling());
        assert_eq!(mem.load_u32(l.base + POLLS, Relaxed), 0);
        rx.try_recv(&mem).unwrap().unwrap();
        rx.release(&mem).unwrap();
        let end = ms(10) + POLL_GRACE;
        assert!(
            rx.arm(&mem, end - Duration::from_nanos(1)).unwrap().0,
            "in the grace"
        );
        assert_eq!(
            rx.arm(&mem, end).unwrap(),
            (false, false),
            "grace over: armed"
        );
        assert!(tx.try_send(&mem, 1, 2, b"b").unwrap(), "armed: ring");
        rx.try_recv(&mem).unwrap().unwrap();
        rx.release(&mem).unwrap();
        rx.disarm(&mem);
        // Declaring again ends any grace at once; withdrawing by call starts one.
        rx.declare_polling(&mem, true, ms(20));
        assert!(!tx.try_send(&mem, 1, 2, b"c").unwrap());
        rx.try_recv(&mem).unwrap().unwrap();
        rx.release(&mem).unwrap();
        rx.declare_polling(&mem, false, ms(30));
        assert!(rx.arm(&mem, ms(30)).unwrap().0, "in the grace");
        assert!(!rx.arm(&mem, ms(30) + POLL_GRACE).unwrap().0, "grace over");
        assert!(tx.try_send(&mem, 1, 2, b"d").unwrap(), "armed: ring");
    }

    /// Hostile producer: a bad sequence word, length or flags is refused with a named
    /// protocol error, never read outside the slot or its companion.
    #[test]
    fn hostile_slots_are_refused() {
        type Break = fn(&MemcpyMem, usize);
        let cases: [(Break, &str); 4] = [
            (|m, s| m.store_u32(s + SEQ, 7, Relaxed), "sequence"),
            (|m, s| m.store_u32(s + LEN, 113, Relaxed), "length"),
            (
                |m, s| m.store_u32(s + LEN, 513 | u32::from(SLOT_F_BY_REF) << 16, Relaxed),
                "length",
            ),
            (|m, s| m.store_u32(s + LEN, 1 | 1 << 16, Relaxed), "flags"),
        ];
        for (brk, word) in cases {
            let (mem, l, c) = ring();
            let mut tx = InlineTx::new(&mem, l, c).unwrap();
            let mut rx = InlineRx::new(&mem, l, c).unwrap();
            tx.try_send(&mem, 1, 2, b"ok").unwrap();
            brk(&mem, l.slot(0));
            match rx.try_recv(&mem) {
                Err(Error::Protocol { what, .. }) => assert!(what.contains(word), "{what}"),
                other => panic!("{word}: {other:?}"),
            }
        }
    }

    /// Hostile consumer: progress beyond what was produced is refused.
    #[test]
    fn hostile_progress_is_refused() {
        let (mem, l, c) = ring();
        let mut tx = InlineTx::new(&mem, l, c).unwrap();
        for _ in 0..NUM {
            tx.try_send(&mem, 1, 2, b"x").unwrap();
        }
        mem.store_u32(l.base + PROGRESS, NUM + 1, Relaxed);
        assert!(matches!(
            tx.try_send(&mem, 1, 2, b"x"),
            Err(Error::Protocol { .. })
        ));
    }

    #[test]
    fn layouts_outside_the_region_are_refused() {
        let mem = MemcpyMem::new(1024);
        let l = InlineLayout::fit(0, 4096, 48, 64).unwrap();
        let c = Companions {
            base: 0,
            stride: 64,
        };
        assert!(InlineTx::new(&mem, l, c).is_err());
        let l = InlineLayout::fit(0, 1024, 48, 8).unwrap();
        let c = Companions {
            base: 1024 - 64,
            stride: 64,
        };
        assert!(InlineRx::new(&mem, l, c).is_err());
    }
}
