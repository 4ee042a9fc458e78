//! The two lock-free structures of the host-side code, in widths every target has.
//!
//! * [`IdSet`]: a bitmap of buffer ids handed back from any thread (the rpmsg host's
//!   returned receive and transmit buffers), drained by the bus.
//! * [`IdStack`]: a Treiber stack of buffer ids with an ABA tag (the data-plane pool's free
//!   lists).
//!
//! Both were written on `AtomicU64`, which 32-bit MCUs (Cortex-M4F/M7, Cortex-R5F) do not
//! have. Targets with `target_has_atomic = "64"` keep the 64-bit words; the others use
//! 32-bit words: the bitmap just has twice as many words, and the stack's head packs a
//! 16-bit tag with a 16-bit id (so at most `0xFFFF` buffers per pool, checked by the
//! pool, and an ABA needs 65 536 pushes by other threads between one thread's load and its
//! compare-and-swap instead of 2³²).
//!
//! The atomics come from `super::lf_atomic`: `core::sync::atomic` in the crate, loom's in
//! `tests/loom.rs`, which includes this file as it is and model-checks the 32-bit forms
//! ([`IdSet`] with [`Word32`], [`Narrow`]) on the host.
#![allow(dead_code)] // each build uses one width; the loom model uses the other pieces

#[cfg(target_has_atomic = "64")]
use super::lf_atomic::AtomicU64;
use super::lf_atomic::{AtomicBool, AtomicU32, Ordering};
use Ordering::{AcqRel, Acquire, Relaxed, Release};

/// A word of an [`IdSet`].
pub(crate) trait Word: Sized {
    /// Bits per word.
    const BITS: usize;
    /// A zero word.
    fn zero() -> Self;
    /// Sets bit `b` (`fetch_or`).
    fn set(&self, b: usize, order: Ordering);
    /// Whether any bit is set.
    fn any(&self, order: Ordering) -> bool;
    /// Takes all bits (`swap(0)`), as a u64.
    fn take(&self, order: Ordering) -> u64;
}

/// 32-bit words (every target with atomics has them).
pub(crate) struct Word32(AtomicU32);

impl Word for Word32 {
    const BITS: usize = 32;
    fn zero() -> Self {
        Self(AtomicU32::new(0))
    }
    fn set(&self, b: usize, order: Ordering) {
        self.0.fetch_or(1 << b, order);
    }
    fn any(&self, order: Ordering) -> bool {
        self.0.load(order) != 0
    }
    fn take(&self, order: Ordering) -> u64 {
        self.0.swap(0, order) as u64
    }
}

/// 64-bit words.
#[cfg(target_has_atomic = "64")]
pub(crate) struct Word64(AtomicU64);

#[cfg(target_has_atomic = "64")]
impl Word for Word64 {
    const BITS: usize = 64;
    fn zero() -> Self {
        Self(AtomicU64::new(0))
    }
    fn set(&self, b: usize, order: Ordering) {
        self.0.fetch_or(1 << b, order);
    }
    fn any(&self, order: Ordering) -> bool {
        self.0.load(order) != 0
    }
    fn take(&self, order: Ordering) -> u64 {
        self.0.swap(0, order)
    }
}

/// The word this target uses.
#[cfg(target_has_atomic = "64")]
pub(crate) type NativeWord = Word64;
/// The word this target uses.
#[cfg(not(target_has_atomic = "64"))]
pub(crate) type NativeWord = Word32;

/// A set of ids below `W::BITS * WORDS`: `put` from any thread, `take` drains.
pub(crate) struct IdSet<W: Word, const WORDS: usize> {
    bits: [W; WORDS],
    any: AtomicBool,
}

impl<W: Word, const WORDS: usize> IdSet<W, WORDS> {
    /// Ids the set can hold.
    pub(crate) const CAPACITY: usize = W::BITS * WORDS;

    /// An empty set.
    pub(crate) fn new() -> Self {
        Self {
            bits: core::array::from_fn(|_| W::zero()),
            any: AtomicBool::new(false),
        }
    }

    /// Adds `id` (below [`Self::CAPACITY`]).
    pub(crate) fn put(&self, id: u16) {
        // Release: our last access to the buffer happens before the taker reuses it.
        self.bits[id as usize / W::BITS].set(id as usize % W::BITS, Release);
        // Release, and a read-modify-write: a plain store here would end the release
        // sequence of another thread's earlier `put`, so a taker whose swap reads our flag
        // would not synchronise with that thread and could miss its bit (found by the loom
        // model `word32_id_set_takes_each_once` with two putters).
        self.any.swap(true, Release);
    }

    /// Whether any id may be waiting (a cheap check before `take`).
    pub(crate) fn pending(&self) -> bool {
        self.any.load(Relaxed)
    }

    /// Removes every id in the set, calling `f` with each.
    pub(crate) fn take(&self, mut f: impl FnMut(u16)) {
        // Acquire pairs with `put`; the flag is only a hint to skip the scan. It is cleared
        // before the words are read, so an id put after a word was read sets it again.
        if !self.any.load(Relaxed) || !self.any.swap(false, Acquire) {
            return;
        }
        for (w, word) in self.bits.iter().enumerate() {
            // Relaxed peek: most words are empty; only those with bits are swapped.
            if !word.any(Relaxed) {
                continue;
            }
            let mut v = word.take(Acquire);
            while v != 0 {
                let b = v.trailing_zeros();
                v &= v - 1;
                f((w * W::BITS) as u16 + b as u16);
            }
        }
    }
}

/// A Treiber stack of ids whose head is a 32-bit word: `(tag << 16) | (id + 1)`, 0 empty.
/// Ids must be below [`Narrow::MAX_IDS`].
pub(crate) struct Narrow {
    head: AtomicU32,
}

impl Narrow {
    /// Most ids a narrow stack holds (`id + 1` must fit 16 bits).
    pub(crate) const MAX_IDS: usize = 0xFFFF;

    /// An empty stack.
    pub(crate) fn new() -> Self {
        Self {
            head: AtomicU32::new(0),
        }
    }

    /// Pushes `id`; `next[id]` becomes its link.
    pub(crate) fn push(&self, next: &[AtomicU32], id: u32) {
        debug_assert!((id as usize) < Self::MAX_IDS);
        let mut h = self.head.load(Relaxed);
        loop {
            next[id as usize].store(h & 0xFFFF, Relaxed);
            let new = ((h >> 16).wrapping_add(1) << 16) | (id + 1);
            // Release: the `next` link (and the buffer's release to FREE) are visible to
            // whoever pops this id.
            match self.head.compare_exchange_weak(h, new, Release, Relaxed) {
                Ok(_) => return,
                Err(cur) => h = cur,
            }
        }
    }

    /// Pops an id, if any.
    pub(crate) fn pop(&self, next: &[AtomicU32]) -> Option<u32> {
        let mut h = self.head.load(Acquire);
        loop {
            let top = h & 0xFFFF;
            if top == 0 {
                return None;
            }
            let id = top - 1;
            let link = next[id as usize].load(Relaxed) & 0xFFFF;
            let new = ((h >> 16).wrapping_add(1) << 16) | link;
            // AcqRel: acquire the pusher's link; the tag makes a stale `next` fail the CAS.
            match self.head.compare_exchange_weak(h, new, AcqRel, Acquire) {
                Ok(_) => return Some(id),
                Err(cur) => h = cur,
            }
        }
    }
}

/// A Treiber stack of ids whose head is a 64-bit word: `(tag << 32) | (id + 1)`, 0 empty.
#[cfg(target_has_atomic = "64")]
pub(crate) struct Wide {
    head: AtomicU64,
}

#[cfg(target_has_atomic = "64")]
impl Wide {
    /// Most ids a wide stack holds.
    pub(crate) const MAX_IDS: usize = u32::MAX as usize - 1;

    /// An empty stack.
    pub(crate) fn new() -> Self {
        Self {
            head: AtomicU64::new(0),
        }
    }

    /// Pushes `id`; `next[id]` becomes its link.
    pub(crate) fn push(&self, next: &[AtomicU32], id: u32) {
        let mut h = self.head.load(Relaxed);
        loop {
            next[id as usize].store(h as u32, Relaxed);
            let new = ((h >> 32).wrapping_add(1) << 32) | (id as u64 + 1);
            // Release: as in `Narrow::push`.
            match self.head.compare_exchange_weak(h, new, Release, Relaxed) {
                Ok(_) => return,
                Err(cur) => h = cur,
            }
        }
    }

    /// Pops an id, if any.
    pub(crate) fn pop(&self, next: &[AtomicU32]) -> Option<u32> {
        let mut h = self.head.load(Acquire);
        loop {
            let top = h as u32;
            if top == 0 {
                return None;
            }
            let id = top - 1;
            let link = next[id as usize].load(Relaxed);
            let new = ((h >> 32).wrapping_add(1) << 32) | link as u64;
            // AcqRel: as in `Narrow::pop`.
            match self.head.compare_exchange_weak(h, new, AcqRel, Acquire) {
                Ok(_) => return Some(id),
                Err(cur) => h = cur,
            }
        }
    }
}

/// The stack this target uses.
#[cfg(target_has_atomic = "64")]
pub(crate) type IdStack = Wide;
/// The stack this target uses.
#[cfg(not(target_has_atomic = "64"))]
pub(crate) type IdStack = Narrow;
