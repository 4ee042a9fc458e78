//! The driver side of a split virtqueue.

use super::{VringLayout, check_placement};
use crate::error::protocol;
use crate::{DevAddr, Error, Result, SharedMemory};
use core::sync::atomic::Ordering::{Acquire, Relaxed, Release, SeqCst};
use intercore_wire::vring::{VRING_AVAIL_F_NO_INTERRUPT, VRING_USED_F_NO_NOTIFY, vring_need_event};

/// The largest queue this driver implementation manages (its in-flight bitmap is fixed-size
/// so that the core needs no allocator). Linux's rpmsg uses 256.
pub const MAX_DRIVER_QUEUE: u16 = 1024;

/// What the driver keeps privately per descriptor slot.
#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    /// The descriptor as last written.
    desc: [u8; 16],
    /// In-order mode: the caller's buffer id and length.
    id: u16,
    len: u32,
}

#[cfg(feature = "alloc")]
type Slots = alloc::boxed::Box<[Slot]>;
#[cfg(not(feature = "alloc"))]
type Slots = [Slot; 0];

#[cfg(feature = "alloc")]
fn new_slots(num: u16) -> Slots {
    alloc::vec![Slot::default(); num as usize].into_boxed_slice()
}
#[cfg(not(feature = "alloc"))]
fn new_slots(_num: u16) -> Slots {
    []
}

/// The driver side of one split ring.
#[derive(Debug)]
pub struct DriverQueue {
    base: usize,
    layout: VringLayout,
    mask: u16,
    event_idx: bool,
    /// Our private copy of `avail.idx`: never read back from shared memory.
    next_avail: u16,
    /// The `avail.idx` value at the last publish (the "old" of `vring_need_event`).
    published: u16,
    /// The next used-ring entry to consume.
    last_used: u16,
    /// The device's `used.idx` as last loaded with Acquire (and checked): entries up to it
    /// are consumed without loading the index again, so a batch costs one index load.
    used_seen: u16,
    /// Per descriptor slot, private: what this side last wrote there (a descriptor is
    /// rewritten only when it changes, and never read back from shared memory: only the
    /// driver writes descriptors, a device that scribbles on them misleads only itself),
    /// and in in-order mode the caller's buffer id and length behind it. Empty without the
    /// `alloc` feature (descriptors are then compared by reading them, and in-order mode is
    /// unavailable).
    slots: Slots,
    /// Whether the "no interrupts" request (flag, or `used_event` half the index space
    /// ahead) is in shared memory as last written, so polling does not rewrite it.
    quiet_written: Option<u16>,
    /// In-order mode (`VIRTIO_F_IN_ORDER` semantics, negotiated outside virtio's feature
    /// words): descriptors are used in ring order and the device uses buffers in the order
    /// they were made available, so used elements are never read.
    in_order: bool,
    /// In-order mode: the entry `pop_used` returned last, whose used element the next
    /// call checks.
    unchecked: Option<u16>,
    /// Which buffer ids the device owns right now (the descriptor ids, unless in order).
    in_flight: [u64; MAX_DRIVER_QUEUE as usize / 64],
    num_in_flight: u16,
    interrupts: bool,
}

impl DriverQueue {
    /// A driver for the ring of `layout` at region offset `base`. Call [`Self::reset`]
    /// before the device starts using it.
    pub fn new<M: SharedMemory + ?Sized>(
        mem: &M,
        base: usize,
        layout: VringLayout,
        event_idx: bool,
    ) -> Result<Self> {
        check_placement(mem, base, &layout)?;
        if layout.num() > MAX_DRIVER_QUEUE {
            return Err(Error::Config("queue larger than MAX_DRIVER_QUEUE"));
        }
        Ok(Self {
            base,
            layout,
            mask: layout.num() - 1,
            event_idx,
            next_avail: 0,
            published: 0,
            last_used: 0,
            used_seen: 0,
            slots: new_slots(layout.num()),
            quiet_written: None,
            in_order: false,
            unchecked: None,
            in_flight: [0; MAX_DRIVER_QUEUE as usize / 64],
            num_in_flight: 0,
            interrupts: false,
        })
    }

    /// Zeroes the ring and forgets all buffers, as a driver does before `DRIVER_OK`.
    /// Interrupts start disabled (`NO_INTERRUPT`, or a `used_event` the device won't reach).
    pub fn reset<M: SharedMemory + ?Sized>(&mut self, mem: &M) {
        let zero = [0u8; 256];
        let mut off = 0;
        while off < self.layout.size() {
            let n = (self.layout.size() - off).min(zero.len());
            mem.write(self.base + off, &zero[..n]);
            off += n;
        }
        self.next_avail = 0;
        self.published = 0;
        self.last_used = 0;
        self.used_seen = 0;
        self.slots.iter_mut().for_each(|s| *s = Slot::default());
        self.quiet_written = None;
        self.unchecked = None;
        self.in_flight = [0; MAX_DRIVER_QUEUE as usize / 64];
        self.num_in_flight = 0;
        self.disable_interrupts(mem);
    }

    /// Switches in-order mode (`VIRTIO_F_IN_ORDER` semantics; virtio 1.1+ "In-order use of
    /// descriptors"): descriptors are made available in ring order (the descriptor of
    /// available entry `i` is `i mod num`, whatever buffer id the caller names), and the
    /// device, having agreed to use buffers in that order, takes descriptor `i mod num` for
    /// entry `i` without reading the available ring, and writes a used element for every buffer, which must name descriptor `i mod num` too —
    /// [`Self::pop_used`] returns the id and the length given to [`Self::add`] without
    /// waiting for that element, and checks it at its next call. Only with a device that
    /// agreed to it (it is not a virtio feature bit a resource table can carry), and only
    /// on a reset queue.
    pub fn set_in_order(&mut self, on: bool) -> Result<()> {
        if self.num_in_flight != 0 || self.next_avail != 0 {
            return Err(Error::Config("in-order mode changed on a queue in use"));
        }
        if on && self.slots.is_empty() {
            return Err(Error::Config("in-order mode needs the alloc feature"));
        }
        self.in_order = on;
        Ok(())
    }

    /// Whether in-order mode is on.
    pub fn is_in_order(&self) -> bool {
        self.in_order
    }

    /// Queue size.
    pub fn num(&self) -> u16 {
        self.layout.num()
    }
    /// The ring's layout.
    pub fn layout(&self) -> &VringLayout {
        &self.layout
    }
    /// Descriptors the device owns now.
    pub fn in_flight(&self) -> u16 {
        self.num_in_flight
    }
    /// Whether descriptor `id` is owned by the device.
    pub fn is_in_flight(&self, id: u16) -> bool {
        id < self.layout.num() && self.in_flight[id as usize / 64] & (1 << (id % 64)) != 0
    }

    /// Makes descriptor `id` describe one buffer and puts it in the available ring. It is
    /// not visible to the device until [`Self::publish`]. Adding a descriptor that is
    /// already in flight is refused (the "same buffer handed out twice" class of bug).
    pub fn add<M: SharedMemory + ?Sized>(
        &mut self,
        mem: &M,
        id: u16,
        addr: DevAddr,
        len: u32,
        device_writes: bool,
    ) -> Result<()> {
        if id >= self.layout.num() {
            return Err(Error::Config("descriptor id outside the queue"));
        }
        if self.is_in_flight(id) {
            return Err(Error::Config("descriptor is already in flight"));
        }
        let flags = if device_writes {
            intercore_wire::vring::VRING_DESC_F_WRITE
        } else {
            0
        };
        let desc = intercore_wire::vring::Desc::new(addr.0, len, flags, 0);
        let slot = if self.in_order {
            // Ring order: the slot of available entry `next_avail` is free, because the
            // device returns buffers in order and fewer than `num` are in flight.
            if self.num_in_flight >= self.layout.num() {
                return Err(Error::Config("queue full"));
            }
            let slot = self.next_avail & self.mask;
            let s = &mut self.slots[slot as usize];
            (s.id, s.len) = (id, len);
            slot
        } else {
            id
        };
        // Rewriting an unchanged descriptor (the common case: buffers keep their address and
        // a message size often repeats) would only pull its cache line away from the device,
        // a transfer per message; reading it back to compare would be a shared-memory load
        // (a DRAM round trip where the ring is uncached). Compare with what we wrote last.
        let bytes: [u8; 16] = zerocopy::transmute!(desc);
        let at = self.base + self.layout.desc(slot);
        match self.slots.get_mut(slot as usize) {
            Some(s) if s.desc == bytes => {}
            Some(s) => {
                mem.write(at, &bytes);
                s.desc = bytes;
            }
            None => {
                let mut cur = [0u8; 16];
                mem.read(at, &mut cur);
                if cur != bytes {
                    mem.write(at, &bytes);
                }
            }
        }
        // Relaxed: the slot becomes visible to the device through the Release store of
        // avail.idx in `publish`.
        mem.store_u16(
            self.base + self.layout.avail_ring(self.next_avail & self.mask),
            slot,
            Relaxed,
        );
        self.next_avail = self.next_avail.wrapping_add(1);
        self.in_flight[id as usize / 64] |= 1 << (id % 64);
        self.num_in_flight += 1;
        Ok(())
    }

    /// Makes everything added since the last publish visible to the device and says
    /// whether the device asked to be notified of it (EVENT_IDX `avail_event`, or the
    /// absence of `NO_NOTIFY`). One publish covers a whole batch.
    pub fn publish<M: SharedMemory + ?Sized>(&mut self, mem: &M) -> bool {
        let (old, new) = (self.published, self.next_avail);
        if old == new {
            return false;
        }
        // Release: descriptors and ring slots written in `add` are visible before the index
        // that hands them over (virtio 1.x §2.7.13, the kernel's virtio_wmb).
        mem.store_u16(self.base + self.layout.avail_idx(), new, Release);
        self.published = new;
        // SeqCst: our index store must be ordered before the load of the device's
        // notification request below (store→load), pairing with the device's fence in
        // `enable_notify`; otherwise both sides can miss each other (the kernel's virtio_mb).
        mem.fence(SeqCst);
        if self.event_idx {
            // Relaxed: ordered by the fence above; a stale value only costs a spurious kick.
            let event = mem.load_u16(self.base + self.layout.avail_event(), Relaxed);
            vring_need_event(event, new, old)
        } else {
            mem.load_u16(self.base + self.layout.used_flags(), Relaxed) & VRING_USED_F_NO_NOTIFY
                == 0
        }
    }

    /// Whether the device has returned buffers we have not consumed yet.
    pub fn has_used<M: SharedMemory + ?Sized>(&self, mem: &M) -> bool {
        // Relaxed: a hint only; `pop_used` re-reads with Acquire before using entries.
        self.used_seen != self.last_used
            || mem.load_u16(self.base + self.layout.used_idx(), Relaxed) != self.last_used
    }

    /// Whether used entries already seen (below the last loaded `used.idx`) remain to be
    /// taken: a batch loop that stops when this is false takes a whole batch with one
    /// index load, without a final load to find the ring empty.
    pub fn has_seen_used(&self) -> bool {
        self.used_seen != self.last_used
    }

    /// Takes the next used buffer: `(descriptor id, bytes the device wrote)`. The id is
    /// checked to be in range and in flight, and the used index not to run ahead of the
    /// buffers the device holds. In in-order mode: `(the id given to add, the length given
    /// to add)`, from private state (callers bound what they read by the buffer's length,
    /// as for any used length); the device's used element for it is checked to name the
    /// descriptor in ring order at the next call, which reports a mismatch.
    pub fn pop_used<M: SharedMemory + ?Sized>(&mut self, mem: &M) -> Result<Option<(u16, u32)>> {
        self.check_in_order(mem)?;
        if self.used_seen == self.last_used {
            // Acquire: the used elements the device wrote before publishing this index are
            // read after it (the kernel's virtio_rmb). Entries up to it stay valid to read
            // without loading the index again (the kernel's `last_used_idx` against a
            // fresh `used->idx` only when it has caught up).
            let used = mem.load_u16(self.base + self.layout.used_idx(), Acquire);
            if used == self.last_used {
                return Ok(None);
            }
            let ahead = used.wrapping_sub(self.last_used);
            if ahead > self.num_in_flight {
                return Err(protocol(
                    "used index runs ahead of the buffers in flight",
                    ahead as u64,
                ));
            }
            self.used_seen = used;
        }
        let (id, len) = if self.in_order {
            // The device used this slot's buffer (it uses them in order): which buffer that
            // is, and its length, are ours to know, not the device's to say. Its used
            // element is checked at the next call (`check_in_order`), after the caller has
            // read the buffer, so the buffer's address never waits for that load.
            let slot = self.last_used & self.mask;
            self.unchecked = Some(self.last_used);
            let s = &self.slots[slot as usize];
            (u32::from(s.id), s.len)
        } else {
            let mut elem = [0u8; 8];
            mem.read(
                self.base + self.layout.used_ring(self.last_used & self.mask),
                &mut elem,
            );
            (
                u32::from_le_bytes([elem[0], elem[1], elem[2], elem[3]]),
                u32::from_le_bytes([elem[4], elem[5], elem[6], elem[7]]),
            )
        };
        if id >= u32::from(self.layout.num()) {
            return Err(protocol(
                "used element names a descriptor outside the queue",
                id as u64,
            ));
        }
        let id = id as u16;
        if !self.is_in_flight(id) {
            return Err(protocol(
                "used element names a descriptor that is not in flight",
                id as u64,
            ));
        }
        self.in_flight[id as usize / 64] &= !(1 << (id % 64));
        self.num_in_flight -= 1;
        self.last_used = self.last_used.wrapping_add(1);
        if self.event_idx && self.interrupts {
            // Relaxed: a request for the next interrupt; `enable_interrupts` is what orders
            // it against sleeping.
            mem.store_u16(
                self.base + self.layout.used_event(),
                self.last_used,
                Relaxed,
            );
        }
        Ok(Some((id, len)))
    }

    /// In-order mode: checks the used element of the entry [`Self::pop_used`] returned
    /// last. The device writes one for every buffer (`DeviceQueue::set_in_order`), and
    /// entry `i`'s must name descriptor `i mod num`, the only one it may have used there.
    /// An element rewritten since for entry `i + num` names the same descriptor, so a
    /// device that kept going cannot make this fail; a scribbled one does.
    fn check_in_order<M: SharedMemory + ?Sized>(&mut self, mem: &M) -> Result<()> {
        let Some(entry) = self.unchecked.take() else {
            return Ok(());
        };
        let slot = entry & self.mask;
        // Relaxed: ordered after the Acquire load of `used.idx` that announced the entry.
        // Only the id: the length is the one given to `add`.
        let id = mem.load_u32(self.base + self.layout.used_ring(slot), Relaxed);
        if id != u32::from(slot) {
            return Err(protocol(
                "used element names another descriptor than the next in order",
                id as u64,
            ));
        }
        Ok(())
    }

    /// Asks the device to notify us when it uses the next buffer, and says whether it
    /// already has (`true`: do not sleep, consume first).
    pub fn enable_interrupts<M: SharedMemory + ?Sized>(&mut self, mem: &M) -> bool {
        self.interrupts = true;
        self.quiet_written = None;
        if self.event_idx {
            mem.store_u16(
                self.base + self.layout.used_event(),
                self.last_used,
                Relaxed,
            );
        } else {
            mem.store_u16(self.base + self.layout.avail_flags(), 0, Relaxed);
        }
        // SeqCst: the request above must be visible before we re-check the used index
        // (store→load), pairing with the device's fence in `DeviceQueue::publish`.
        mem.fence(SeqCst);
        mem.load_u16(self.base + self.layout.used_idx(), Acquire) != self.last_used
    }

    /// Asks the device not to notify us (polling). The request is written only when it is
    /// not in shared memory already (the kernel's `avail_flags_shadow`): a polling loop that
    /// disarms after every wake-up writes nothing.
    pub fn disable_interrupts<M: SharedMemory + ?Sized>(&mut self, mem: &M) {
        self.interrupts = false;
        if self.event_idx {
            // Half the index space away: the device's used index cannot reach it before we
            // move it again. Rewritten once a quarter of the space has been consumed.
            if self
                .quiet_written
                .is_some_and(|w| w.wrapping_sub(self.last_used) >= 0x4000)
            {
                return;
            }
            let w = self.last_used.wrapping_add(0x8000);
            mem.store_u16(self.base + self.layout.used_event(), w, Relaxed);
            self.quiet_written = Some(w);
        } else {
            if self.quiet_written.is_some() {
                return;
            }
            mem.store_u16(
                self.base + self.layout.avail_flags(),
                VRING_AVAIL_F_NO_INTERRUPT,
                Relaxed,
            );
            self.quiet_written = Some(0);
        }
    }
}
