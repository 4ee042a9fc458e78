#![allow(unsafe_code)] // implements the CacheOps contract (no unsafe blocks)
//! The cache maintenance a simulated core uses: the coherent fast path or the model.

use crate::coherency::{Eviction, Report, Side, SimCache};
use crate::ctrl::Ctrl;
use intercore::dataplane::{CacheOps, Coherent};
use intercore_linux::MemfdRegion;
use std::sync::Arc;

/// Whether the simulated SoC's caches are coherent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheMode {
    /// Coherent memory: fences only (the fast path).
    Coherent,
    /// Non-coherent write-back caches under the coherency sanitizer, with seeded random
    /// eviction.
    NonCoherent(Eviction),
}

impl CacheMode {
    /// `coherent` or `noncoherent`.
    pub fn name(&self) -> &'static str {
        match self {
            CacheMode::Coherent => "coherent",
            CacheMode::NonCoherent(_) => "noncoherent",
        }
    }
    /// Command-line form: `coherent` or `noncoherent:SEED:PER_MILLE`.
    pub fn arg(&self) -> String {
        match self {
            CacheMode::Coherent => "coherent".into(),
            CacheMode::NonCoherent(e) => format!("noncoherent:{}:{}", e.seed, e.per_mille),
        }
    }
    /// Parses `coherent`, `noncoherent` or `noncoherent:SEED:PER_MILLE`.
    pub fn parse(s: &str) -> Option<Self> {
        let mut it = s.split(':');
        match it.next()? {
            "coherent" => Some(CacheMode::Coherent),
            "noncoherent" => {
                let d = Eviction::default();
                let seed = it.next().map_or(Some(d.seed), |v| v.parse().ok())?;
                let per_mille = it.next().map_or(Some(d.per_mille), |v| v.parse().ok())?;
                Some(CacheMode::NonCoherent(Eviction { seed, per_mille }))
            }
            _ => None,
        }
    }
}

/// One core's cache maintenance in the simulator.
pub enum AnyCache {
    /// Coherent memory.
    Coherent(Coherent<Arc<MemfdRegion>>),
    /// The non-coherent model (boxed: it is far larger than the coherent variant).
    Model(Box<SimCache>),
}

impl AnyCache {
    /// The cache of `side` over `dram` in `mode`; remote reports also go to `log`.
    pub fn new(
        dram: Arc<MemfdRegion>,
        mode: CacheMode,
        side: Side,
        log: Option<Ctrl<MemfdRegion>>,
    ) -> std::io::Result<Self> {
        Ok(match mode {
            CacheMode::Coherent => AnyCache::Coherent(Coherent::new(dram)),
            CacheMode::NonCoherent(e) => {
                AnyCache::Model(Box::new(SimCache::new(dram, side, e, log)?))
            }
        })
    }
    /// The sanitizer's findings (none in coherent mode).
    pub fn reports(&self) -> Vec<Report> {
        match self {
            AnyCache::Coherent(_) => Vec::new(),
            AnyCache::Model(m) => m.reports(),
        }
    }
    /// The model, if this is one.
    pub fn model(&self) -> Option<&SimCache> {
        match self {
            AnyCache::Coherent(_) => None,
            AnyCache::Model(m) => Some(m.as_ref()),
        }
    }
}

// SAFETY: forwards to the variant, each of which upholds the contract itself.
unsafe impl CacheOps for AnyCache {
    fn line_size(&self) -> usize {
        match self {
            AnyCache::Coherent(c) => c.line_size(),
            AnyCache::Model(m) => m.line_size(),
        }
    }
    fn region_len(&self) -> usize {
        match self {
            AnyCache::Coherent(c) => c.region_len(),
            AnyCache::Model(m) => m.region_len(),
        }
    }
    fn cpu_ptr(&self) -> *mut u8 {
        match self {
            AnyCache::Coherent(c) => c.cpu_ptr(),
            AnyCache::Model(m) => m.cpu_ptr(),
        }
    }
    fn clean(&self, b: u32, o: usize, l: usize) {
        match self {
            AnyCache::Coherent(c) => c.clean(b, o, l),
            AnyCache::Model(m) => m.clean(b, o, l),
        }
    }
    fn invalidate(&self, b: u32, o: usize, l: usize) {
        match self {
            AnyCache::Coherent(c) => c.invalidate(b, o, l),
            AnyCache::Model(m) => m.invalidate(b, o, l),
        }
    }
    fn cpu_access(&self, b: u32, o: usize, l: usize, w: bool) {
        if let AnyCache::Model(m) = self {
            m.cpu_access(b, o, l, w)
        }
    }
    fn handoff(&self, b: u32, o: usize, l: usize) {
        if let AnyCache::Model(m) = self {
            m.handoff(b, o, l)
        }
    }
}
