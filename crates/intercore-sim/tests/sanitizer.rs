//! The coherency sanitizer (a non-coherent write-back cache model) and the simulated
//! IOMMU, driven directly: the "peer" is played by writing the shared memfd (DRAM) the way
//! another core's write-back would. Each bug class must be reported with its buffer id and
//! byte range; the correct sequence must not be.

use intercore::dataplane::{CacheOps, DataWindows, FaultKind, Iommu, Perm, Pool, PoolConfig};
use intercore::{DevAddr, SharedMemory};
use intercore_linux::MemfdRegion;
use intercore_sim::coherency::SimCache;
use intercore_sim::ctrl::{Ctrl, SimIommu, SimWindows};
use intercore_sim::{Detection, Eviction, Side};
use std::sync::Arc;

const POOL_OFF: usize = 8192;

fn setup(per_mille: u32) -> (Arc<MemfdRegion>, Pool<SimCache>) {
    let dram = Arc::new(MemfdRegion::create("sanitizer-test", POOL_OFF + 8 * 4096).unwrap());
    let cache = SimCache::new(
        Arc::clone(&dram),
        Side::Host,
        Eviction { seed: 3, per_mille },
        None,
    )
    .unwrap();
    let cfg = PoolConfig {
        classes: vec![(4096, 8)],
        align: 4096,
    };
    (
        dram,
        Pool::new(cache, POOL_OFF, DevAddr(0xC000_0000), &cfg).unwrap(),
    )
}

fn kinds(pool: &Pool<SimCache>) -> Vec<(Detection, u32, usize, usize)> {
    pool.cache()
        .reports()
        .iter()
        .map(|r| (r.kind, r.buf, r.start, r.end))
        .collect()
}

/// Handing over a buffer whose written lines were not cleaned is reported as a missing
/// clean, naming the buffer and exactly the dirty bytes (rounded to lines), and DRAM still
/// holds the old bytes — what the peer would read.
#[test]
fn missing_clean_is_reported() {
    let (dram, pool) = setup(0);
    let mut b = pool.alloc(4096).unwrap();
    let (id, off) = (b.id(), pool.info(b.id()).unwrap().off);
    b[100..200].fill(0x5A);
    pool.cache().handoff(id, off, 4096);
    assert_eq!(kinds(&pool), vec![(Detection::MissingClean, id, 64, 256)]);
    let mut seen = [0u8; 1];
    dram.read(off + 150, &mut seen);
    assert_eq!(seen, [0], "the peer reads old data");
}

/// Reading lines the CPU still holds after the peer wrote DRAM (no invalidate) is reported
/// as a stale read; with the invalidate, the fresh data is read and nothing is reported.
#[test]
fn missing_invalidate_is_reported() {
    let (dram, pool) = setup(0);
    let b = pool.alloc(4096).unwrap();
    let (id, off) = (b.id(), pool.info(b.id()).unwrap().off);
    assert_eq!(b[0], 0);
    pool.cache().clean(id, off, 4096);
    pool.cache().handoff(id, off, 4096);
    dram.write(off + 64, &[7u8; 64]);
    pool.cache().cpu_access(id, off, 4096, false);
    assert_eq!(kinds(&pool), vec![(Detection::StaleRead, id, 64, 128)]);
    assert_eq!(b[64], 0, "the CPU really reads the stale value");

    let (dram, pool) = setup(0);
    let b = pool.alloc(4096).unwrap();
    let (id, off) = (b.id(), pool.info(b.id()).unwrap().off);
    pool.cache().handoff(id, off, 4096);
    dram.write(off + 64, &[7u8; 64]);
    pool.cache().invalidate(id, off, 4096);
    pool.cache().cpu_access(id, off, 4096, false);
    assert!(kinds(&pool).is_empty());
    assert_eq!(b[64], 7);
}

/// A dirty line written back after the peer wrote the same line in DRAM (here by the
/// clean+invalidate that ARM64 userspace must use) is reported, and the peer's data is
/// really lost.
#[test]
fn dirty_eviction_over_peer_data_is_reported() {
    let (dram, pool) = setup(0);
    let mut b = pool.alloc(4096).unwrap();
    let (id, off) = (b.id(), pool.info(b.id()).unwrap().off);
    b[4032] = 0xAA;
    dram.write(off + 4032, &[0x11; 4]);
    pool.cache().invalidate(id, off + 4032, 64);
    assert_eq!(
        kinds(&pool),
        vec![(Detection::DirtyEvictionOverPeerData, id, 4032, 4096)]
    );
    let mut seen = [0u8; 4];
    dram.read(off + 4032, &mut seen);
    assert_eq!(seen, [0xAA, 0, 0, 0], "the peer's bytes were overwritten");
}

/// The protocol done right — write, clean, hand over, peer writes, invalidate, read —
/// under heavy random eviction is clean, and the CPU reads what the peer wrote.
#[test]
fn correct_sequence_is_clean_under_random_eviction() {
    let (dram, pool) = setup(1000);
    for round in 0..50u8 {
        let mut b = pool.alloc(4096).unwrap();
        let (id, off) = (b.id(), pool.info(b.id()).unwrap().off);
        b[..4032].fill(round);
        pool.cache().clean(id, off, 4032);
        pool.cache().handoff(id, off, 4096);
        let mut got = [0u8; 4032];
        dram.read(off, &mut got);
        assert!(
            got.iter().all(|&x| x == round),
            "the peer sees what was cleaned"
        );
        dram.write(off + 4032, &[round ^ 0xFF; 4]);
        pool.cache().invalidate(id, off, 4096);
        pool.cache().cpu_access(id, off, 4096, false);
        assert_eq!(b[4032], round ^ 0xFF);
    }
    assert!(kinds(&pool).is_empty(), "{:?}", pool.cache().reports());
    assert!(pool.cache().evictions() > 0, "random eviction ran");
}

/// The same seed evicts the same lines: runs are reproducible.
#[test]
fn eviction_is_seeded() {
    let run = || {
        let (_dram, pool) = setup(500);
        for _ in 0..20 {
            let b = pool.alloc(4096).unwrap();
            let (id, off) = (b.id(), pool.info(b.id()).unwrap().off);
            pool.cache().handoff(id, off, 4096);
            pool.cache().clean(id, off, 4096);
        }
        pool.cache().evictions()
    };
    assert_eq!(run(), run());
}

/// The simulated IOMMU: accesses inside a window with the right permission translate;
/// anything else faults and is logged for the host, with address, length and kind.
#[test]
fn iommu_windows_and_faults() {
    let mem = Arc::new(MemfdRegion::create("iommu-test", 64 << 10).unwrap());
    let ctrl = Ctrl::new(Arc::clone(&mem), 0);
    let mut iommu = SimIommu::new(ctrl.clone(), mem.len());
    let win = SimWindows::new(ctrl.clone());
    iommu
        .map(DevAddr(0xC000_0000), 8192, 4096, Perm::R)
        .unwrap();
    iommu
        .map(DevAddr(0xC000_1000), 12288, 4096, Perm::RW)
        .unwrap();
    assert!(
        iommu.map(DevAddr(0xC000_0800), 0, 4096, Perm::RW).is_err(),
        "overlapping windows are refused"
    );
    assert!(
        iommu
            .map(DevAddr(0xD000_0000), 60 << 10, 8192, Perm::RW)
            .is_err(),
        "window past the region"
    );
    assert_eq!(
        win.translate(DevAddr(0xC000_0010), 16, false),
        Ok(8192 + 16)
    );
    assert_eq!(win.translate(DevAddr(0xC000_1000), 4096, true), Ok(12288));
    let f = win.translate(DevAddr(0xC000_0010), 16, true).unwrap_err();
    assert_eq!(f.kind, FaultKind::Permission);
    let f = win
        .translate(DevAddr(0xC000_0F00), 0x200, false)
        .unwrap_err();
    assert_eq!(
        f.kind,
        FaultKind::Unmapped,
        "a range straddling two windows is not covered by one"
    );
    iommu.unmap(DevAddr(0xC000_1000), 4096).unwrap();
    assert_eq!(
        win.translate(DevAddr(0xC000_1000), 4, true)
            .unwrap_err()
            .kind,
        FaultKind::Unmapped
    );
    let (n, log) = ctrl.faults();
    assert_eq!(n, 3);
    assert_eq!(log[0].da, DevAddr(0xC000_0010));
    assert!(log[0].write);
    assert!(
        iommu.unmap(DevAddr(0xC000_1000), 4096).is_err(),
        "unmapping twice"
    );
}
