//! The device side of a split virtqueue.

use super::{DescInfo, VringLayout, check_placement};
use crate::error::protocol;
use crate::{DevAddr, Result, SharedMemory};
use core::sync::atomic::Ordering::{Acquire, Relaxed, Release, SeqCst};
use intercore_wire::vring::{
    Desc, VRING_AVAIL_F_NO_INTERRUPT, VRING_DESC_F_INDIRECT, VRING_DESC_F_NEXT, VRING_DESC_F_WRITE,
    VRING_USED_F_NO_NOTIFY, vring_need_event,
};

/// The device side of one split ring.
#[derive(Debug)]
pub struct DeviceQueue {
    base: usize,
    layout: VringLayout,
    mask: u16,
    event_idx: bool,
    /// Next available entry to take (private).
    last_avail: u16,
    /// The driver's `avail.idx` as last loaded with Acquire (and checked): entries up to it
    /// are taken without loading the index again, so a batch costs one index load.
    avail_seen: u16,
    /// Whether the "no notifications" request (flag, or `avail_event` half the index space
    /// ahead) is in shared memory as last written, so polling does not rewrite it.
    quiet_written: Option<u16>,
    /// Our private copy of `used.idx`.
    next_used: u16,
    /// `used.idx` at the last publish.
    published: u16,
    /// Notify after every publish, whatever the driver's flag says.
    always_notify: bool,
    /// In-order mode (see [`Self::set_in_order`]).
    in_order: bool,
    /// In-order mode: slots pushed used but not yet publishable, because an earlier slot is
    /// still held (bit per slot; the queue is at most [`super::MAX_DRIVER_QUEUE`] then).
    done: [u64; super::MAX_DRIVER_QUEUE as usize / 64],
    /// In-order mode: the last entry made publishable (head, length), the one element the
    /// next publish writes.
    last_elem: (u16, u32),
}

/// The descriptors of one available chain, read one at a time. The chain is bounded by the
/// queue size, so a descriptor loop is an error, never a hang.
#[derive(Debug)]
pub struct DescChain {
    head: u16,
    next: Option<u16>,
    seen: u16,
}

impl DescChain {
    /// The chain's head id (what goes back in the used ring).
    pub fn head(&self) -> u16 {
        self.head
    }

    /// Reads the next descriptor of the chain, validated: no indirect tables (not
    /// negotiated), `next` inside the queue, at most `num` descriptors.
    pub fn next_desc<M: SharedMemory + ?Sized>(
        &mut self,
        q: &DeviceQueue,
        mem: &M,
    ) -> Result<Option<DescInfo>> {
        let Some(id) = self.next else { return Ok(None) };
        if self.seen == q.layout.num() {
            return Err(protocol(
                "descriptor chain longer than the queue (a loop)",
                self.head as u64,
            ));
        }
        self.seen += 1;
        let mut raw = [0u8; 16];
        // Copy first, then validate the copy: the driver cannot change it under us.
        mem.read(q.base + q.layout.desc(id), &mut raw);
        let d = Desc::parse(&raw).map_err(crate::Error::from)?;
        let flags = d.flags.get();
        if flags & VRING_DESC_F_INDIRECT != 0 {
            return Err(protocol(
                "indirect descriptor (feature not negotiated)",
                id as u64,
            ));
        }
        self.next = if flags & VRING_DESC_F_NEXT != 0 {
            let n = d.next.get();
            if n >= q.layout.num() {
                return Err(protocol("descriptor next outside the queue", n as u64));
            }
            Some(n)
        } else {
            None
        };
        Ok(Some(DescInfo {
            addr: DevAddr(d.addr.get()),
            len: d.len.get(),
            writable: flags & VRING_DESC_F_WRITE != 0,
        }))
    }
}

impl DeviceQueue {
    /// The device side of the ring of `layout` at region offset `base`, starting from a
    /// freshly reset ring (indices 0).
    pub fn new<M: SharedMemory + ?Sized>(
        mem: &M,
        base: usize,
        layout: VringLayout,
        event_idx: bool,
    ) -> Result<Self> {
        check_placement(mem, base, &layout)?;
        Ok(Self {
            base,
            layout,
            mask: layout.num() - 1,
            event_idx,
            last_avail: 0,
            avail_seen: 0,
            quiet_written: None,
            next_used: 0,
            published: 0,
            always_notify: false,
            in_order: false,
            done: [0; super::MAX_DRIVER_QUEUE as usize / 64],
            last_elem: (0, 0),
        })
    }

    /// The device side of a ring whose driver may already have returned entries through
    /// the used ring: continues from the current `used.idx` instead of 0. RPMsg-Lite's
    /// master puts all its transmit buffers into vring 1's used ring itself at init
    /// (`virtqueue_fill_used_buffers`, used.idx = number of buffers) and takes free
    /// buffers from there; Linux and OpenAMP hosts reset the ring, so this reads 0. The
    /// available side always starts at 0 (every driver starts its available index there).
    pub fn attach<M: SharedMemory + ?Sized>(
        mem: &M,
        base: usize,
        layout: VringLayout,
        event_idx: bool,
    ) -> Result<Self> {
        let mut q = Self::new(mem, base, layout, event_idx)?;
        // Acquire: the entries the driver wrote before this index are its own business,
        // but nothing we write may be ordered before we read where to write.
        let used = mem.load_u16(base + layout.used_idx(), Acquire);
        q.next_used = used;
        q.published = used;
        Ok(q)
    }

    /// Makes [`Self::publish`] ask for a notification every time, ignoring
    /// `VRING_AVAIL_F_NO_INTERRUPT` and `used_event` (for drivers that set the flag and
    /// never clear it, yet wait for notifications: RPMsg-Lite's master).
    pub fn set_always_notify(&mut self, on: bool) {
        self.always_notify = on;
    }

    /// Switches in-order mode (`VIRTIO_F_IN_ORDER` semantics, agreed outside virtio's
    /// feature words): the driver makes descriptors available in ring order, so [`Self::pop`]
    /// takes descriptor `i mod num` for available entry `i` without reading the available
    /// ring; buffers are used in the order they were made available — one pushed out of
    /// order (a message held for an endpoint nobody reads yet) is published only once every
    /// earlier one is — and a publish writes one used element for the batch, the last
    /// (virtio 1.1+ "In-order use of descriptors"). Only on a fresh queue of at most
    /// [`super::MAX_DRIVER_QUEUE`] entries.
    pub fn set_in_order(&mut self, on: bool) -> Result<()> {
        if on && self.layout.num() > super::MAX_DRIVER_QUEUE {
            return Err(crate::Error::Config(
                "in-order mode on a queue larger than MAX_DRIVER_QUEUE",
            ));
        }
        if self.last_avail != 0 || self.next_used != self.published {
            return Err(crate::Error::Config(
                "in-order mode changed on a queue in use",
            ));
        }
        self.in_order = on;
        Ok(())
    }

    /// Whether `used.idx` in shared memory is still the value we published last. The device
    /// is the used index's only writer once attached, so a different value means the driver
    /// rebuilt the ring under us: RPMsg-Lite's master zeroes both rings and fills them again
    /// in `rpmsg_lite_master_init` (`env_memset`, `virtqueue_fill_avail_buffers`,
    /// `virtqueue_fill_used_buffers`), and that is all a link without a status word shows of
    /// a new master.
    pub fn used_idx_intact<M: SharedMemory + ?Sized>(&self, mem: &M) -> bool {
        // Relaxed: a hint that the link was reset; nothing is read on the strength of it.
        mem.load_u16(self.base + self.layout.used_idx(), Relaxed) == self.published
    }

    /// Queue size.
    pub fn num(&self) -> u16 {
        self.layout.num()
    }

    /// Whether the driver has made buffers available that we have not taken.
    pub fn has_avail<M: SharedMemory + ?Sized>(&self, mem: &M) -> bool {
        // Relaxed: a hint only; `pop` re-reads with Acquire.
        self.avail_seen != self.last_avail
            || mem.load_u16(self.base + self.layout.avail_idx(), Relaxed) != self.last_avail
    }

    /// Whether the driver has made buffers available that we have not taken, as
    /// [`Self::has_avail`] but loading the index with Acquire and keeping it (checked), so
    /// the [`Self::pop`] that follows loads nothing more: one index load per batch.
    pub fn poll_avail<M: SharedMemory + ?Sized>(&mut self, mem: &M) -> Result<bool> {
        if self.avail_seen != self.last_avail {
            return Ok(true);
        }
        self.load_avail(mem).map(|n| n != 0)
    }

    /// Loads `avail.idx` (Acquire), checks it and keeps it; returns how many entries it
    /// makes available beyond those taken.
    fn load_avail<M: SharedMemory + ?Sized>(&mut self, mem: &M) -> Result<u16> {
        // Acquire: ring slots and descriptors the driver wrote before publishing this index
        // are read after it (pairs with the Release in `DriverQueue::publish`). Entries up
        // to it are taken without loading the index again (the kernel's vhost keeps
        // `avail_idx` the same way, `vhost_get_vq_desc`).
        let avail = mem.load_u16(self.base + self.layout.avail_idx(), Acquire);
        let ahead = avail.wrapping_sub(self.last_avail);
        if ahead > self.layout.num() {
            return Err(protocol(
                "available index runs more than the queue size ahead",
                ahead as u64,
            ));
        }
        self.avail_seen = avail;
        Ok(ahead)
    }

    /// Takes the next available chain. The available index may not run more than `num`
    /// ahead of what we took, and the head must be inside the queue.
    pub fn pop<M: SharedMemory + ?Sized>(&mut self, mem: &M) -> Result<Option<DescChain>> {
        if self.avail_seen == self.last_avail && self.load_avail(mem)? == 0 {
            return Ok(None);
        }
        let head = if self.in_order {
            // Ring order: entry `i`'s descriptor is `i mod num`; the ring is not read.
            self.last_avail & self.mask
        } else {
            // Relaxed: ordered by the Acquire load above.
            mem.load_u16(
                self.base + self.layout.avail_ring(self.last_avail & self.mask),
                Relaxed,
            )
        };
        if head >= self.layout.num() {
            return Err(protocol(
                "available ring names a descriptor outside the queue",
                head as u64,
            ));
        }
        self.last_avail = self.last_avail.wrapping_add(1);
        Ok(Some(DescChain {
            head,
            next: Some(head),
            seen: 0,
        }))
    }

    /// Puts back the chain [`Self::pop`] returned last, before anything was pushed for it.
    pub fn undo_pop(&mut self) {
        // `avail_seen` stays: the entry given back is still below it.
        self.last_avail = self.last_avail.wrapping_sub(1);
    }

    /// Reads a chain that must be one descriptor (as rpmsg buffers are).
    pub fn single<M: SharedMemory + ?Sized>(
        &self,
        mem: &M,
        chain: &mut DescChain,
    ) -> Result<DescInfo> {
        let d = chain
            .next_desc(self, mem)?
            .ok_or(protocol("empty descriptor chain", chain.head as u64))?;
        if chain.next.is_some() {
            return Err(protocol(
                "chained descriptor where one buffer was expected",
                chain.head as u64,
            ));
        }
        Ok(d)
    }

    /// Returns chain `head` to the driver with `len` bytes written. Not visible until
    /// [`Self::publish`].
    pub fn push_used<M: SharedMemory + ?Sized>(&mut self, mem: &M, head: u16, len: u32) {
        if self.in_order {
            // Mark the slot done, then advance over the done prefix: the used index never
            // passes a buffer still held, so the driver's "everything below used.idx" is
            // true. Heads come from `pop` (in range); one not popped is ignored.
            let taken = self.last_avail.wrapping_sub(self.next_used);
            let ahead = head.wrapping_sub(self.next_used) & self.mask;
            if head >= self.layout.num() || ahead >= taken {
                return;
            }
            self.done[head as usize / 64] |= 1 << (head % 64);
            if ahead == 0 {
                self.last_elem = (head, len);
            }
            loop {
                let slot = self.next_used & self.mask;
                let bit = 1u64 << (slot % 64);
                if self.done[slot as usize / 64] & bit == 0 {
                    break;
                }
                self.done[slot as usize / 64] &= !bit;
                if slot != head {
                    self.last_elem = (slot, 0);
                }
                self.next_used = self.next_used.wrapping_add(1);
            }
            return;
        }
        let mut elem = [0u8; 8];
        elem[..4].copy_from_slice(&u32::from(head).to_le_bytes());
        elem[4..].copy_from_slice(&len.to_le_bytes());
        mem.write(
            self.base + self.layout.used_ring(self.next_used & self.mask),
            &elem,
        );
        self.next_used = self.next_used.wrapping_add(1);
    }

    /// Publishes the used entries pushed since the last publish and says whether the
    /// driver asked to be notified.
    pub fn publish<M: SharedMemory + ?Sized>(&mut self, mem: &M) -> bool {
        let (old, new) = (self.published, self.next_used);
        if old == new {
            return false;
        }
        if self.in_order {
            // One element for the batch: the last buffer's (virtio 1.1+ "In-order use of
            // descriptors"); an earlier buffer's length is not reported (an intercore host
            // uses the lengths it posted).
            let (head, len) = self.last_elem;
            let mut elem = [0u8; 8];
            elem[..4].copy_from_slice(&u32::from(head).to_le_bytes());
            elem[4..].copy_from_slice(&len.to_le_bytes());
            mem.write(
                self.base + self.layout.used_ring(new.wrapping_sub(1) & self.mask),
                &elem,
            );
        }
        // Release: used elements written in `push_used` (and the buffer contents written
        // before them) are visible before the index that hands them back.
        mem.store_u16(self.base + self.layout.used_idx(), new, Release);
        self.published = new;
        // SeqCst: store→load ordering between our index and the driver's request, pairing
        // with the fence in `DriverQueue::enable_interrupts`.
        mem.fence(SeqCst);
        if self.always_notify {
            true
        } else if self.event_idx {
            let event = mem.load_u16(self.base + self.layout.used_event(), Relaxed);
            vring_need_event(event, new, old)
        } else {
            mem.load_u16(self.base + self.layout.avail_flags(), Relaxed)
                & VRING_AVAIL_F_NO_INTERRUPT
                == 0
        }
    }

    /// Asks the driver to notify us of the next available buffer and says whether one is
    /// already there (`true`: do not sleep).
    pub fn enable_notify<M: SharedMemory + ?Sized>(&mut self, mem: &M) -> bool {
        self.quiet_written = None;
        if self.event_idx {
            mem.store_u16(
                self.base + self.layout.avail_event(),
                self.last_avail,
                Relaxed,
            );
        } else {
            mem.store_u16(self.base + self.layout.used_flags(), 0, Relaxed);
        }
        // SeqCst: the request must be visible before we re-check avail.idx (store→load),
        // pairing with the fence in `DriverQueue::publish`.
        mem.fence(SeqCst);
        mem.load_u16(self.base + self.layout.avail_idx(), Acquire) != self.last_avail
    }

    /// Asks the driver not to notify us (polling). Written only when the request is not in
    /// shared memory already, as [`super::DriverQueue::disable_interrupts`].
    pub fn disable_notify<M: SharedMemory + ?Sized>(&mut self, mem: &M) {
        if self.event_idx {
            if self
                .quiet_written
                .is_some_and(|w| w.wrapping_sub(self.last_avail) >= 0x4000)
            {
                return;
            }
            let w = self.last_avail.wrapping_add(0x8000);
            mem.store_u16(self.base + self.layout.avail_event(), w, Relaxed);
            self.quiet_written = Some(w);
        } else {
            if self.quiet_written.is_some() {
                return;
            }
            mem.store_u16(
                self.base + self.layout.used_flags(),
                VRING_USED_F_NO_NOTIFY,
                Relaxed,
            );
            self.quiet_written = Some(0);
        }
    }
}
