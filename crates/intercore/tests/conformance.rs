//! The conformance suites (`intercore::testing::conformance`) run for every implementation
//! of the four platform traits in this crate — and the forwarding impls for `&T` and
//! `Arc<T>` — and each suite is shown to reject a deliberately broken implementation.

#![allow(unsafe_code)] // implements `SharedMemory` for a deliberately broken test type

use intercore::dataplane::{CacheOps, Coherent};
use intercore::pollbell::{PollDoorbell, PollPlatform, PollSide};
use intercore::testing::conformance::{
    self, BellPair, Violation, Window, cache_ops, device_address_map, doorbell, shared_memory,
};
use intercore::testing::{HeapMem, ThreadBell};
use intercore::{DevAddr, DeviceAddressMap, Doorbell, LinearMap, SharedMemory};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

fn ok(r: conformance::Outcome) {
    if let Err(v) = r {
        panic!("{v}");
    }
}

fn rejected(r: conformance::Outcome) -> Violation {
    r.expect_err("the suite accepted a broken implementation")
}

// --- SharedMemory -------------------------------------------------------------------------

#[test]
fn heap_mem_conforms() {
    ok(shared_memory(&HeapMem::new(4096)));
    ok(shared_memory(&HeapMem::new(256)));
}

#[test]
fn shared_memory_forwarding_conforms() {
    let m = HeapMem::new(4096);
    ok(shared_memory(&&m));
    ok(shared_memory(&Arc::new(HeapMem::new(4096))));
}

/// A region that says it has `len` bytes but accepts accesses past them (they land in
/// slack behind the region, so the test itself stays sound).
struct IgnoresBounds {
    inner: HeapMem,
    len: usize,
}

// SAFETY: `inner` is valid for `len + 64` bytes; every access is forwarded to `inner`,
// whose own checks keep it inside those bytes.
unsafe impl SharedMemory for IgnoresBounds {
    fn as_ptr(&self) -> *mut u8 {
        self.inner.as_ptr()
    }
    fn len(&self) -> usize {
        self.len
    }
    fn load_u16(&self, off: usize, o: Ordering) -> u16 {
        self.inner.load_u16(off, o)
    }
    fn store_u16(&self, off: usize, v: u16, o: Ordering) {
        self.inner.store_u16(off, v, o)
    }
    fn load_u32(&self, off: usize, o: Ordering) -> u32 {
        self.inner.load_u32(off, o)
    }
    fn store_u32(&self, off: usize, v: u32, o: Ordering) {
        self.inner.store_u32(off, v, o)
    }
    fn read(&self, off: usize, dst: &mut [u8]) {
        self.inner.read(off, dst)
    }
    fn write(&self, off: usize, src: &[u8]) {
        self.inner.write(off, src)
    }
}

#[test]
fn shared_memory_suite_rejects_a_region_that_ignores_bounds() {
    let m = IgnoresBounds {
        inner: HeapMem::new(1024 + 64),
        len: 1024,
    };
    let v = rejected(shared_memory(&m));
    assert!(v.rule.contains("outside the region"), "{v}");
}

/// A region whose `write` drops the last byte.
struct ShortWrites(HeapMem);

// SAFETY: forwards to `HeapMem`, writing a prefix of what it is given.
unsafe impl SharedMemory for ShortWrites {
    fn as_ptr(&self) -> *mut u8 {
        self.0.as_ptr()
    }
    fn len(&self) -> usize {
        self.0.len()
    }
    fn write(&self, off: usize, src: &[u8]) {
        self.0.write(off, &src[..src.len().saturating_sub(1)])
    }
}

#[test]
fn shared_memory_suite_rejects_lossy_writes() {
    let v = rejected(shared_memory(&ShortWrites(HeapMem::new(1024))));
    assert!(v.rule.contains("read returns what write stored"), "{v}");
}

// --- Doorbell ---------------------------------------------------------------------------

fn thread_bells<'a>() -> BellPair<'a, ThreadBell, ThreadBell> {
    let (a, b) = ThreadBell::pair();
    BellPair {
        kill_b: Some(Box::new(drop)),
        ..BellPair::new(a, b, vec![0, 1])
    }
}

#[test]
fn thread_bell_conforms() {
    ok(doorbell(thread_bells()));
}

#[test]
fn doorbell_forwarding_conforms() {
    let (a, b) = ThreadBell::pair();
    ok(doorbell(BellPair::new(&a, &b, vec![1])));
}

struct Clock(Instant);

impl PollPlatform for Clock {
    fn now(&self) -> Duration {
        self.0.elapsed()
    }
    fn back_off(&self, round: u32) {
        if round > 16 {
            std::thread::yield_now();
        }
    }
}

/// The ids whose counter at `base` (one u32 per id) moved since the last look: what the
/// receiving core sees of a polling doorbell.
fn counter_probe(mem: Arc<HeapMem>, base: usize, n: u32) -> conformance::IdProbe<'static> {
    let mut seen = vec![0u32; n as usize];
    Box::new(move || {
        (0..n)
            .filter(|&i| {
                let v = mem.load_u32(base + 4 * i as usize, Ordering::Acquire);
                std::mem::replace(&mut seen[i as usize], v) != v
            })
            .collect()
    })
}

#[test]
fn poll_doorbell_conforms() {
    let mem = Arc::new(HeapMem::new(4096));
    let (block, n) = (128, 4);
    let bell = |side| PollDoorbell::new(Arc::clone(&mem), block, n, side, Clock(Instant::now()));
    let (h, r) = (
        bell(PollSide::Host).unwrap(),
        bell(PollSide::Remote).unwrap(),
    );
    let to_host = block + intercore::wire::rsc::FwRscIntercore::to_host_offset(n) as usize;
    ok(doorbell(BellPair {
        ids_at_b: Some(counter_probe(Arc::clone(&mem), block, n)),
        ids_at_a: Some(counter_probe(Arc::clone(&mem), to_host, n)),
        ..BellPair::new(&h, &r, vec![0, 1, 3])
    }));
    // The same bells by value (`&D` forwards `CARRIES_NOTIFY_ID`: the probes ran above).
    ok(doorbell(BellPair {
        ids_at_b: Some(counter_probe(Arc::clone(&mem), block, n)),
        ids_at_a: Some(counter_probe(Arc::clone(&mem), to_host, n)),
        ..BellPair::new(h, r, vec![2])
    }));
}

/// A doorbell that loses every ring.
struct DropsRings(ThreadBell);

impl Doorbell for DropsRings {
    fn ring(&self, _notify_id: u32) -> intercore::Result<()> {
        Ok(())
    }
    fn wait(&self, timeout: Option<Duration>) -> intercore::Result<bool> {
        self.0.wait(timeout)
    }
    fn now(&self) -> Duration {
        self.0.now()
    }
}

#[test]
fn doorbell_suite_rejects_a_bell_that_drops_rings() {
    let (a, b) = ThreadBell::pair();
    let v = rejected(doorbell(BellPair::new(DropsRings(a), b, vec![0])));
    assert!(v.rule.contains("wakes"), "{v}");
}

/// A doorbell that says it carries notify ids but always rings id 0.
struct LosesIds<'a>(PollDoorbell<Arc<HeapMem>, &'a Clock>);

impl Doorbell for LosesIds<'_> {
    const CARRIES_NOTIFY_ID: bool = true;
    fn ring(&self, _notify_id: u32) -> intercore::Result<()> {
        self.0.ring(0)
    }
    fn wait(&self, timeout: Option<Duration>) -> intercore::Result<bool> {
        self.0.wait(timeout)
    }
    fn now(&self) -> Duration {
        self.0.now()
    }
}

#[test]
fn doorbell_suite_rejects_a_bell_that_loses_notify_ids() {
    let mem = Arc::new(HeapMem::new(4096));
    let clock = Clock(Instant::now());
    let bell = |side| PollDoorbell::new(Arc::clone(&mem), 0, 2, side, &clock).unwrap();
    let to_host = intercore::wire::rsc::FwRscIntercore::to_host_offset(2) as usize;
    let v = rejected(doorbell(BellPair {
        ids_at_b: Some(counter_probe(Arc::clone(&mem), 0, 2)),
        ids_at_a: Some(counter_probe(Arc::clone(&mem), to_host, 2)),
        ..BellPair::new(
            LosesIds(bell(PollSide::Host)),
            bell(PollSide::Remote),
            vec![1],
        )
    }));
    assert!(v.rule.contains("delivers the id"), "{v}");
}

// --- CacheOps -----------------------------------------------------------------------------

#[test]
fn coherent_conforms() {
    let mem = Arc::new(HeapMem::new(16 << 10));
    let c = Coherent::new(Arc::clone(&mem));
    ok(cache_ops(&c, &*mem));
}

#[test]
fn cache_ops_forwarding_conforms() {
    let mem = Arc::new(HeapMem::new(16 << 10));
    let c = Coherent::new(Arc::clone(&mem));
    ok(cache_ops(&&c, &*mem));
    ok(cache_ops(&Arc::new(Coherent::new(Arc::clone(&mem))), &*mem));
}

/// Cache operations whose CPU view is not where the memory is (a region of its own).
struct WrongView {
    real: Coherent<Arc<HeapMem>>,
    elsewhere: HeapMem,
}

// SAFETY: `cpu_ptr` points to `elsewhere`, a live 64-aligned region of `region_len` bytes.
unsafe impl CacheOps for WrongView {
    fn line_size(&self) -> usize {
        self.real.line_size()
    }
    fn region_len(&self) -> usize {
        self.real.region_len()
    }
    fn cpu_ptr(&self) -> *mut u8 {
        self.elsewhere.as_ptr()
    }
    fn clean(&self, b: u32, o: usize, l: usize) {
        self.real.clean(b, o, l)
    }
    fn invalidate(&self, b: u32, o: usize, l: usize) {
        self.real.invalidate(b, o, l)
    }
}

/// (A cache that cleans one line short is rejected in `intercore-sim`'s conformance tests,
/// over the non-coherent model, where a missing clean is observable.)
#[test]
fn cache_ops_suite_rejects_a_cpu_view_the_peer_never_sees() {
    let mem = Arc::new(HeapMem::new(16 << 10));
    let c = WrongView {
        real: Coherent::new(Arc::clone(&mem)),
        elsewhere: HeapMem::new(16 << 10),
    };
    let v = rejected(cache_ops(&c, &*mem));
    assert!(v.rule.contains("the peer reads what the CPU wrote"), "{v}");
}

// --- DeviceAddressMap ---------------------------------------------------------------------

fn window(m: &LinearMap) -> Window {
    Window {
        da: m.base,
        offset: m.offset,
        len: m.len,
    }
}

#[test]
fn linear_map_conforms() {
    for m in [
        LinearMap {
            base: DevAddr(0xA000_0000),
            offset: 0,
            len: 0x10_0000,
        },
        LinearMap {
            base: DevAddr(0x10_0000),
            offset: 0x4000,
            len: 0x1000,
        },
        LinearMap {
            base: DevAddr(0),
            offset: 0,
            len: 1,
        },
        LinearMap {
            base: DevAddr(u64::MAX - 0xfff),
            offset: 0x1000,
            len: 0x1000,
        },
    ] {
        ok(device_address_map(&m, &[window(&m)]));
    }
}

/// A map that translates one byte too far.
struct OffByOne(LinearMap);

impl DeviceAddressMap for OffByOne {
    fn to_offset(&self, da: DevAddr, len: usize) -> Option<usize> {
        self.0.to_offset(da, len).map(|o| o + 1)
    }
    fn to_dev(&self, off: usize) -> Option<DevAddr> {
        self.0.to_dev(off.checked_sub(1)?)
    }
}

#[test]
fn device_address_map_suite_rejects_an_off_by_one_map() {
    let m = LinearMap {
        base: DevAddr(0xA000_0000),
        offset: 0,
        len: 0x1000,
    };
    let v = rejected(device_address_map(&OffByOne(m), &[window(&m)]));
    assert!(v.rule.contains("translates to its offset"), "{v}");
}

/// A map whose window check forgets the length of the range.
struct IgnoresLength(LinearMap);

impl DeviceAddressMap for IgnoresLength {
    fn to_offset(&self, da: DevAddr, _len: usize) -> Option<usize> {
        self.0.to_offset(da, 1)
    }
    fn to_dev(&self, off: usize) -> Option<DevAddr> {
        self.0.to_dev(off)
    }
}

#[test]
fn device_address_map_suite_rejects_a_map_that_ignores_lengths() {
    let m = LinearMap {
        base: DevAddr(0xA000_0000),
        offset: 0,
        len: 0x1000,
    };
    let v = rejected(device_address_map(&IgnoresLength(m), &[window(&m)]));
    assert!(v.rule.contains("running past"), "{v}");
}
