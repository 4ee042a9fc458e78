//! The `CacheOps` conformance suite (`intercore::testing::conformance::cache_ops`) for the
//! simulator's caches — the non-coherent model, its random eviction, the per-core
//! `AnyCache` and the fault-injecting wrapper — with the memfd "DRAM" as the peer's view.
//! Over the model a missing or short clean is observable, so this is where the suite is
//! shown to reject broken cache maintenance.

#![allow(unsafe_code)] // implements `CacheOps` for a deliberately broken test type

use intercore::dataplane::CacheOps;
use intercore::testing::conformance::{self, Violation, cache_ops};
use intercore_linux::MemfdRegion;
use intercore_sim::coherency::SimCache;
use intercore_sim::{AnyCache, CacheMode, Eviction, FaultInjection, FaultyCache, Side};
use std::sync::Arc;

const LEN: usize = 64 << 10;

fn ok(r: conformance::Outcome) {
    if let Err(v) = r {
        panic!("{v}");
    }
}

fn rejected(r: conformance::Outcome) -> Violation {
    r.expect_err("the suite accepted a broken implementation")
}

fn dram() -> Arc<MemfdRegion> {
    Arc::new(MemfdRegion::create("intercore-sim-conformance", LEN).unwrap())
}

fn model(dram: &Arc<MemfdRegion>, per_mille: u32) -> SimCache {
    SimCache::new(
        Arc::clone(dram),
        Side::Host,
        Eviction { seed: 7, per_mille },
        None,
    )
    .unwrap()
}

/// The model conforms, with and without random eviction, and the suite (which follows
/// the data plane's protocol) leaves the sanitizer nothing to report.
#[test]
fn sim_cache_conforms() {
    for per_mille in [0, 500, 1000] {
        let d = dram();
        let c = model(&d, per_mille);
        ok(cache_ops(&c, &*d));
        assert_eq!(c.reports(), [], "eviction {per_mille}‰");
    }
}

#[test]
fn any_cache_conforms() {
    for mode in [
        CacheMode::Coherent,
        CacheMode::NonCoherent(Eviction {
            seed: 3,
            per_mille: 200,
        }),
    ] {
        let d = dram();
        let c = AnyCache::new(Arc::clone(&d), mode, Side::Remote, None).unwrap();
        ok(cache_ops(&c, &*d));
        assert_eq!(c.reports(), [], "{}", mode.name());
    }
}

#[test]
fn sim_cache_forwarding_conforms() {
    let d = dram();
    let c = model(&d, 0);
    ok(cache_ops(&&c, &*d));
    let d = dram();
    ok(cache_ops(&Arc::new(model(&d, 0)), &*d));
}

/// With nothing injected the wrapper is the cache it wraps.
#[test]
fn faulty_cache_without_faults_conforms() {
    let d = dram();
    let c = FaultyCache::new(model(&d, 0));
    ok(cache_ops(&c, &*d));
    assert_eq!(c.inner().reports(), []);
}

/// Each injected fault is a contract violation the suite names.
#[test]
fn cache_ops_suite_rejects_injected_faults() {
    for (f, rule) in [
        (
            FaultInjection {
                skip_clean: true,
                ..Default::default()
            },
            "after clean, the peer reads what the CPU wrote",
        ),
        (
            FaultInjection {
                skip_invalidate: true,
                ..Default::default()
            },
            "after invalidate, the CPU reads what the peer wrote",
        ),
    ] {
        let d = dram();
        let c = FaultyCache::new(model(&d, 0));
        c.inject(f);
        let v = rejected(cache_ops(&c, &*d));
        assert_eq!(v.rule, rule, "{f:?}: {v}");
    }
}

/// Cache maintenance that cleans one line short of the range it is given.
struct OneLineShort(SimCache);

// SAFETY: forwards to `SimCache`, which upholds the contract; a short clean changes what
// the peer sees, never the CPU view.
unsafe impl CacheOps for OneLineShort {
    fn line_size(&self) -> usize {
        self.0.line_size()
    }
    fn region_len(&self) -> usize {
        self.0.region_len()
    }
    fn cpu_ptr(&self) -> *mut u8 {
        self.0.cpu_ptr()
    }
    fn clean(&self, buf: u32, off: usize, len: usize) {
        let line = self.0.line_size();
        self.0.clean(buf, off, len.saturating_sub(line))
    }
    fn invalidate(&self, buf: u32, off: usize, len: usize) {
        self.0.invalidate(buf, off, len)
    }
    fn cpu_access(&self, buf: u32, off: usize, len: usize, write: bool) {
        self.0.cpu_access(buf, off, len, write)
    }
    fn handoff(&self, buf: u32, off: usize, len: usize) {
        self.0.handoff(buf, off, len)
    }
}

#[test]
fn cache_ops_suite_rejects_a_clean_one_line_short() {
    let d = dram();
    let v = rejected(cache_ops(&OneLineShort(model(&d, 0)), &*d));
    assert_eq!(
        v.rule, "after clean, the peer reads what the CPU wrote",
        "{v}"
    );
}
