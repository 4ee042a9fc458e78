//! Cache maintenance over byte ranges of a shared region.
//!
//! `unsafe` is allowed here only to declare and implement the `CacheOps` contract (the
//! CPU view pointer); the views themselves are made in [`shm`](super::shm).
#![allow(unsafe_code)]

use crate::SharedMemory;
use core::sync::atomic::Ordering;

/// Cache maintenance for one region shared with a peer that does not snoop our caches.
///
/// Offsets are offsets in the region (as for [`SharedMemory`]). `buf` names the pool
/// buffer a call is about, so a checking implementation can report problems per buffer.
/// Callers pass ranges inside the region (an implementation may panic on one outside, and
/// must never touch memory outside the region); an empty range is allowed and does nothing.
///
/// The contract, checked for every implementation by
/// `intercore::testing::conformance::cache_ops` (feature `test-utils`): after `clean` the
/// peer reads every byte of the range the CPU wrote; after `invalidate` the CPU reads every
/// byte of the range the peer wrote; maintenance works on whole lines holding the range and
/// on nothing else the caller could notice — `invalidate` never loses a CPU write outside
/// the range (ARM64 userspace's clean+invalidate cannot; the dma-buf ioctl, which covers
/// the whole buffer, must clean first) and `clean` never writes back over data the peer
/// wrote outside the range's lines.
///
/// ```
/// use intercore::platform::{CacheOps, Coherent, line_span};
/// use intercore::testing::HeapMem;
///
/// // Coherent memory needs fences only; a non-coherent platform cleans and invalidates
/// // the whole lines holding a range.
/// let cache = Coherent::new(HeapMem::new(4096));
/// assert_eq!(cache.region_len(), 4096);
/// cache.clean(0, 100, 8); // before the peer reads bytes 100..108
/// cache.invalidate(0, 100, 8); // before we read what the peer wrote there
/// assert_eq!(line_span(cache.line_size(), 100, 8), (64, 64));
/// ```
///
/// # Safety
///
/// `cpu_ptr()` must point to `region_len()` bytes that stay valid for reads and writes for
/// the value's lifetime, aligned to at least the line size, and that nothing outside this
/// crate's views references. It is where the CPU reads and writes the region: the region's
/// own mapping for real caches, a private cache image in a simulator.
pub unsafe trait CacheOps {
    /// Cache line size in bytes (a power of two).
    fn line_size(&self) -> usize;
    /// Bytes in the region.
    fn region_len(&self) -> usize;
    /// The CPU's view of the region's first byte.
    fn cpu_ptr(&self) -> *mut u8;
    /// Writes dirty lines of `off..off+len` back to memory, so the peer reads what we
    /// wrote (ARM64: DC CVAC per line, then DSB).
    fn clean(&self, buf: u32, off: usize, len: usize);
    /// Makes the next CPU reads of `off..off+len` come from memory, so we read what the peer
    /// wrote (ARM64 userspace: DC CIVAC — clean *and* invalidate; DC IVAC is EL1-only).
    fn invalidate(&self, buf: u32, off: usize, len: usize);
    /// The CPU is about to access `off..off+len` (`write`: may also write). Real caches need
    /// nothing; a model fills its lines here and checks for stale data.
    fn cpu_access(&self, buf: u32, off: usize, len: usize, write: bool) {
        let _ = (buf, off, len, write);
    }
    /// The buffer `off..off+len` now belongs to the peer. A model checks that no dirty
    /// line is left behind in it.
    fn handoff(&self, buf: u32, off: usize, len: usize) {
        let _ = (buf, off, len);
    }
}

/// The smallest line-aligned span covering `off..off+len`: `(start, len)`.
pub fn line_span(line: usize, off: usize, len: usize) -> (usize, usize) {
    if len == 0 {
        return (off, 0);
    }
    let start = off & !(line - 1);
    let end = (off + len).div_ceil(line) * line;
    (start, end - start)
}

/// Cache maintenance for memory that is coherent with the peer (x86, a coherent
/// interconnect, the simulator's fast path): fences only.
#[derive(Debug)]
pub struct Coherent<M> {
    mem: M,
}

impl<M: SharedMemory> Coherent<M> {
    /// Wraps a region.
    pub fn new(mem: M) -> Self {
        Self { mem }
    }
    /// The region.
    pub fn memory(&self) -> &M {
        &self.mem
    }
}

// SAFETY: the CPU's view is the region's own mapping, which `SharedMemory`'s contract
// keeps valid for `mem`'s lifetime. Its alignment is the region's: the contract promises 8;
// every mapping is page-aligned and `testing::HeapMem` 64-aligned, which the conformance
// suite checks for each; with coherent memory no maintenance depends on it.
unsafe impl<M: SharedMemory> CacheOps for Coherent<M> {
    fn line_size(&self) -> usize {
        64
    }
    fn region_len(&self) -> usize {
        self.mem.len()
    }
    fn cpu_ptr(&self) -> *mut u8 {
        self.mem.as_ptr()
    }
    fn clean(&self, _buf: u32, _off: usize, _len: usize) {
        // Release: our writes to the buffer are ordered before the handoff message.
        self.mem.fence(Ordering::Release);
    }
    fn invalidate(&self, _buf: u32, _off: usize, _len: usize) {
        // Acquire: reads of the buffer are ordered after the completion that returned it.
        self.mem.fence(Ordering::Acquire);
    }
}

macro_rules! forward_cache_ops {
    ($($t:ty),*) => {$(
        // SAFETY: forwarding keeps the implementation's guarantees.
        unsafe impl<C: CacheOps + ?Sized> CacheOps for $t {
            fn line_size(&self) -> usize { (**self).line_size() }
            fn region_len(&self) -> usize { (**self).region_len() }
            fn cpu_ptr(&self) -> *mut u8 { (**self).cpu_ptr() }
            fn clean(&self, b: u32, o: usize, l: usize) { (**self).clean(b, o, l) }
            fn invalidate(&self, b: u32, o: usize, l: usize) { (**self).invalidate(b, o, l) }
            fn cpu_access(&self, b: u32, o: usize, l: usize, w: bool) { (**self).cpu_access(b, o, l, w) }
            fn handoff(&self, b: u32, o: usize, l: usize) { (**self).handoff(b, o, l) }
        }
    )*};
}
forward_cache_ops!(&C);
#[cfg(feature = "alloc")]
forward_cache_ops!(alloc::sync::Arc<C>);

#[cfg(test)]
mod tests {
    use super::*;

    /// Spans round out to whole lines.
    #[test]
    fn spans() {
        assert_eq!(line_span(64, 0, 1), (0, 64));
        assert_eq!(line_span(64, 63, 2), (0, 128));
        assert_eq!(line_span(64, 128, 64), (128, 64));
        assert_eq!(line_span(64, 100, 0), (100, 0));
    }
}
