//! Deliberate bugs in cache maintenance, for showing that the coherency sanitizer catches
//! them (`intercore sim selftest`): a [`CacheOps`] wrapper that skips `clean` or
//! `invalidate` on demand. The bugs live in this wrapper only — neither the data plane nor
//! the cache model carries a fault flag or checks one on its path.
#![allow(unsafe_code)] // implements the CacheOps contract by forwarding (no unsafe blocks)

use intercore::dataplane::CacheOps;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

/// Which maintenance a [`FaultyCache`] skips.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultInjection {
    /// `clean` does nothing: written lines are not written back before a handoff.
    pub skip_clean: bool,
    /// `invalidate` does nothing: completed buffers are read through stale lines.
    pub skip_invalidate: bool,
}

/// Cache maintenance that forwards to `C` until told to skip a kind of it.
#[derive(Debug)]
pub struct FaultyCache<C> {
    inner: C,
    skip_clean: AtomicBool,
    skip_invalidate: AtomicBool,
}

impl<C: CacheOps> FaultyCache<C> {
    /// Wraps `inner`, injecting nothing yet.
    pub fn new(inner: C) -> Self {
        Self {
            inner,
            skip_clean: AtomicBool::new(false),
            skip_invalidate: AtomicBool::new(false),
        }
    }

    /// From now on, skips what `f` says (and performs everything else).
    pub fn inject(&self, f: FaultInjection) {
        // Relaxed: a test switch, read by the same thread that drives the data plane.
        self.skip_clean.store(f.skip_clean, Relaxed);
        self.skip_invalidate.store(f.skip_invalidate, Relaxed);
    }

    /// The wrapped cache.
    pub fn inner(&self) -> &C {
        &self.inner
    }
}

// SAFETY: every method forwards to `inner`, which upholds the contract; skipping a clean
// or an invalidate changes which data each side sees, never which memory the CPU view is.
unsafe impl<C: CacheOps> CacheOps for FaultyCache<C> {
    fn line_size(&self) -> usize {
        self.inner.line_size()
    }
    fn region_len(&self) -> usize {
        self.inner.region_len()
    }
    fn cpu_ptr(&self) -> *mut u8 {
        self.inner.cpu_ptr()
    }
    fn clean(&self, buf: u32, off: usize, len: usize) {
        if !self.skip_clean.load(Relaxed) {
            self.inner.clean(buf, off, len)
        }
    }
    fn invalidate(&self, buf: u32, off: usize, len: usize) {
        if !self.skip_invalidate.load(Relaxed) {
            self.inner.invalidate(buf, off, len)
        }
    }
    fn cpu_access(&self, buf: u32, off: usize, len: usize, write: bool) {
        self.inner.cpu_access(buf, off, len, write)
    }
    fn handoff(&self, buf: u32, off: usize, len: usize) {
        self.inner.handoff(buf, off, len)
    }
}
