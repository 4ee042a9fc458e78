//! Shared memory, as the core sees it: a byte range that another core (or process) reads
//! and writes concurrently.
//!
//! This is one of the two places in the core crate where `unsafe` is allowed. All other
//! modules reach shared memory only through the accessors here, which check bounds and
//! alignment, and through [`OwnedRange`], the proof that this side exclusively owns a byte
//! range (a buffer whose descriptor is not in any ring).
#![allow(unsafe_code)]

use core::sync::atomic::{AtomicU16, AtomicU32, Ordering};

/// A region of memory shared with the peer.
///
/// The provided methods implement every access on top of [`as_ptr`](Self::as_ptr) and
/// [`len`](Self::len); a model (for example a loom model of the rings) may override them
/// and return a null pointer, in which case zero-copy views are unavailable. An
/// implementation that overrides them keeps their behaviour, which
/// `intercore::testing::conformance::shared_memory` (feature `test-utils`) checks for every
/// implementation: bytes read back as written, touching nothing around them; the atomic
/// accessors agree with the byte accessors, little-endian; an access that leaves the region,
/// overflows or is misaligned panics before touching memory (an empty access at the end is
/// in bounds); a Release store publishes the writes before it to an Acquire load on another
/// thread.
///
/// # Safety
///
/// An implementor guarantees that, for as long as the value lives, `as_ptr()` is either
/// null or points to `len()` bytes that are valid for reads and writes (also through
/// atomic accesses), aligned to at least 8, and never referenced by Rust references created
/// outside this module. Overridden access methods must touch only offsets inside `0..len()`.
pub unsafe trait SharedMemory {
    /// Base address of the mapping, or null for a model without direct access.
    fn as_ptr(&self) -> *mut u8;
    /// Length of the region in bytes.
    fn len(&self) -> usize;

    /// Whether the region is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Atomically loads the u16 at `off` (little-endian on the wire; all supported targets
    /// are little-endian). Panics if `off` is out of range or unaligned: callers compute
    /// offsets from validated values, so that is a bug in this crate, never peer input.
    fn load_u16(&self, off: usize, order: Ordering) -> u16 {
        let p = checked_ptr(self, off, 2, 2);
        // SAFETY: `checked_ptr` proved `off..off+2` lies inside the mapping the trait's
        // contract makes valid, and that it is 2-aligned; shared memory is only ever accessed
        // atomically or through raw copies, never through `&`/`&mut` references.
        unsafe { AtomicU16::from_ptr(p.cast()) }.load(order)
    }
    /// Atomically stores a u16 at `off`.
    fn store_u16(&self, off: usize, v: u16, order: Ordering) {
        let p = checked_ptr(self, off, 2, 2);
        // SAFETY: as in `load_u16`.
        unsafe { AtomicU16::from_ptr(p.cast()) }.store(v, order)
    }
    /// Atomically loads the u32 at `off`.
    fn load_u32(&self, off: usize, order: Ordering) -> u32 {
        let p = checked_ptr(self, off, 4, 4);
        // SAFETY: as in `load_u16`, with 4-byte size and alignment checked.
        unsafe { AtomicU32::from_ptr(p.cast()) }.load(order)
    }
    /// Atomically stores a u32 at `off`.
    fn store_u32(&self, off: usize, v: u32, order: Ordering) {
        let p = checked_ptr(self, off, 4, 4);
        // SAFETY: as in `load_u32`.
        unsafe { AtomicU32::from_ptr(p.cast()) }.store(v, order)
    }
    /// Copies `dst.len()` bytes from `off` into `dst`. The peer may be writing the same
    /// bytes; the copy may then be torn, which is why callers validate what they copied.
    fn read(&self, off: usize, dst: &mut [u8]) {
        let p = checked_ptr(self, off, dst.len(), 1);
        // SAFETY: the source range is inside the mapping (checked) and cannot overlap `dst`,
        // a Rust reference, because the contract forbids references into the mapping.
        unsafe { core::ptr::copy_nonoverlapping(p, dst.as_mut_ptr(), dst.len()) }
    }
    /// Copies `src` into the region at `off`.
    fn write(&self, off: usize, src: &[u8]) {
        let p = checked_ptr(self, off, src.len(), 1);
        // SAFETY: as in `read`, with the roles of source and destination exchanged.
        unsafe { core::ptr::copy_nonoverlapping(src.as_ptr(), p, src.len()) }
    }
    /// A memory fence of the given ordering (a model replaces it with its own).
    fn fence(&self, order: Ordering) {
        core::sync::atomic::fence(order)
    }
}

fn checked_ptr<M: SharedMemory + ?Sized>(m: &M, off: usize, size: usize, align: usize) -> *mut u8 {
    let base = m.as_ptr();
    let end = off.checked_add(size);
    assert!(
        !base.is_null() && end.is_some_and(|e| e <= m.len()) && off % align == 0,
        "intercore bug: shared-memory access at {off:#x}+{size} outside a {:#x}-byte region or misaligned",
        m.len()
    );
    // Alignment of the base is part of the trait's contract; the offset keeps it.
    base.wrapping_add(off)
}

macro_rules! forward_shared_memory {
    ($($(#[$attr:meta])* $t:ty),*) => {$(
        $(#[$attr])*
        // SAFETY: forwarding to the implementation behind the pointer keeps its guarantees.
        unsafe impl<M: SharedMemory + ?Sized> SharedMemory for $t {
            fn as_ptr(&self) -> *mut u8 { (**self).as_ptr() }
            fn len(&self) -> usize { (**self).len() }
            fn load_u16(&self, off: usize, order: Ordering) -> u16 { (**self).load_u16(off, order) }
            fn store_u16(&self, off: usize, v: u16, order: Ordering) { (**self).store_u16(off, v, order) }
            fn load_u32(&self, off: usize, order: Ordering) -> u32 { (**self).load_u32(off, order) }
            fn store_u32(&self, off: usize, v: u32, order: Ordering) { (**self).store_u32(off, v, order) }
            fn read(&self, off: usize, dst: &mut [u8]) { (**self).read(off, dst) }
            fn write(&self, off: usize, src: &[u8]) { (**self).write(off, src) }
            fn fence(&self, order: Ordering) { (**self).fence(order) }
        }
    )*};
}
forward_shared_memory!(&M, #[cfg(feature = "alloc")] alloc::sync::Arc<M>);

/// Proof that this side owns `off..off+len` of a region exclusively: the buffer's
/// descriptor is in no ring (rpmsg), or the buffer is not in flight (data plane), so by the
/// protocol the peer does not access it.
///
/// Only the bus and data-plane code of this crate create these, and never two for
/// overlapping ranges (each is tied to one buffer id whose ownership that code tracks). A
/// peer that breaks the protocol and writes a buffer it does not own changes bytes under
/// our view but cannot make us access memory outside the region.
#[derive(Debug)]
pub(crate) struct OwnedRange {
    off: usize,
    len: usize,
}

/// The one place a slice pointer into peer-shared memory is made.
///
/// # Safety
/// `base..base+total` must be a valid allocation and `off + len <= total`; turning the
/// result into a reference is the caller's responsibility (exclusivity, lifetime).
unsafe fn slice(base: *mut u8, off: usize, len: usize) -> *mut [u8] {
    // SAFETY: the caller guarantees `off + len` lies inside the valid allocation.
    core::ptr::slice_from_raw_parts_mut(unsafe { base.add(off) }, len)
}

impl OwnedRange {
    /// Claims a range of shared memory. The caller guarantees exclusivity as above.
    pub(crate) fn claim<M: SharedMemory + ?Sized>(m: &M, off: usize, len: usize) -> Option<Self> {
        Self::check(m.as_ptr(), m.len(), off, len)
    }

    /// Claims a range of a data-plane region as the CPU sees it (`CacheOps::cpu_ptr`).
    pub(crate) fn claim_cpu<C: crate::dataplane::CacheOps + ?Sized>(
        c: &C,
        off: usize,
        len: usize,
    ) -> Option<Self> {
        Self::check(c.cpu_ptr(), c.region_len(), off, len)
    }

    fn check(base: *mut u8, total: usize, off: usize, len: usize) -> Option<Self> {
        let end = off.checked_add(len)?;
        (!base.is_null() && end <= total).then_some(Self { off, len })
    }

    /// Bytes of this range.
    #[cfg_attr(not(feature = "alloc"), allow(dead_code))]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The bytes, for reading.
    pub(crate) fn bytes<'a, M: SharedMemory + ?Sized>(&'a self, m: &'a M) -> &'a [u8] {
        // SAFETY: `claim` checked the range is in the mapping, valid for `'a`; we own it
        // exclusively (see the type), and a `&mut` view needs `&mut self`, so none exists
        // while this borrow lives.
        unsafe { &*slice(m.as_ptr(), self.off, self.len) }
    }

    /// The bytes, for writing.
    pub(crate) fn bytes_mut<'a, M: SharedMemory + ?Sized>(&'a mut self, m: &'a M) -> &'a mut [u8] {
        // SAFETY: as in `bytes`; `&mut self` makes this the only view of the range.
        unsafe { &mut *slice(m.as_ptr(), self.off, self.len) }
    }

    /// The bytes as the CPU sees them, for reading.
    pub(crate) fn cpu_bytes<'a, C: crate::dataplane::CacheOps + ?Sized>(
        &'a self,
        c: &'a C,
    ) -> &'a [u8] {
        // SAFETY: `claim_cpu` checked the range against `region_len`, which the
        // `CacheOps` contract makes valid behind `cpu_ptr` for the value's lifetime;
        // exclusivity as in `bytes`.
        unsafe { &*slice(c.cpu_ptr(), self.off, self.len) }
    }

    /// The bytes as the CPU sees them, for writing.
    pub(crate) fn cpu_bytes_mut<'a, C: crate::dataplane::CacheOps + ?Sized>(
        &'a mut self,
        c: &'a C,
    ) -> &'a mut [u8] {
        // SAFETY: as in `cpu_bytes`; `&mut self` makes this the only view of the range.
        unsafe { &mut *slice(c.cpu_ptr(), self.off, self.len) }
    }
}
