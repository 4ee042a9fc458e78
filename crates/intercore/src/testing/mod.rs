//! Test kit (feature `test-utils`): heap-backed shared memory, a doorbell pair for two
//! threads, a ready-made link layout and its bring-up ([`Carveout::connect`]), so both roles
//! can run in one process; hand-driven peers for hostile-peer tests ([`mock`]); and the
//! conformance suites every implementation of the platform traits runs ([`conformance`]).
//!
//! The real cross-process setup is `intercore-sim`; these are for fast, deterministic
//! tests of the protocol logic and for firmware authors' unit tests.
#![allow(unsafe_code)]

/// Fills `buf` with a pseudo-random pattern that depends on `seed` (xorshift64), so a
/// test can tell one buffer's bytes from another's, and a misplaced or stale copy fails.
pub fn pattern(buf: &mut [u8], seed: u64) {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for v in buf.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *v = x as u8;
    }
}

pub mod conformance;
pub mod counting;
pub mod mock;

use crate::rpmsg::layout::{CarveoutLayout, CarveoutSpec};
use crate::rpmsg::rsc_table::RpmsgTable;
use crate::rpmsg::{HostBus, HostConfig, RemoteBus, RemoteConfig, RscLocation};
use crate::{DevAddr, Doorbell, Error, LinearMap, SharedMemory, WaitMode};
use core::cell::UnsafeCell;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};
use zerocopy::IntoBytes;

/// One 64-byte line of [`HeapMem`]: the memory is aligned like a cache line, as a mapping
/// would be.
#[repr(C, align(64))]
struct Line([UnsafeCell<u64>; 8]);

/// Zeroed heap memory, aligned to 64 bytes, shared between threads.
pub struct HeapMem {
    lines: Box<[Line]>,
    len: usize,
}

impl HeapMem {
    /// `len` bytes (rounded up to 8).
    pub fn new(len: usize) -> Self {
        let lines = (0..len.div_ceil(64))
            .map(|_| Line(core::array::from_fn(|_| UnsafeCell::new(0))))
            .collect();
        Self {
            lines,
            len: len.div_ceil(8) * 8,
        }
    }
}

// SAFETY: all access goes through the `SharedMemory` accessors (atomics and raw copies);
// the bus code only hands out views of ranges it owns exclusively.
unsafe impl Sync for HeapMem {}
// SAFETY: the box moves with the value; nothing is tied to the creating thread.
unsafe impl Send for HeapMem {}

// SAFETY: the boxed slice lives as long as the value, is 64-aligned (`Line`) and at least
// `len()` bytes long (`len` rounds up to 8, the lines to 64); `UnsafeCell` permits
// mutation through `&self`.
unsafe impl SharedMemory for HeapMem {
    fn as_ptr(&self) -> *mut u8 {
        if self.lines.is_empty() {
            // A dangling but aligned base for an empty region (no access is ever in range).
            return core::ptr::NonNull::<Line>::dangling().as_ptr().cast();
        }
        self.lines.as_ptr() as *mut u8
    }
    fn len(&self) -> usize {
        self.len
    }
}

#[derive(Default)]
struct BellState {
    pending: [bool; 2],
    gone: [bool; 2],
}

/// One side of a doorbell pair between two threads.
pub struct ThreadBell {
    shared: Arc<(Mutex<BellState>, Condvar)>,
    side: usize,
    epoch: Instant,
}

impl ThreadBell {
    /// A connected pair `(host side, remote side)`.
    pub fn pair() -> (ThreadBell, ThreadBell) {
        let shared = Arc::new((Mutex::new(BellState::default()), Condvar::new()));
        let epoch = Instant::now();
        (
            ThreadBell {
                shared: Arc::clone(&shared),
                side: 0,
                epoch,
            },
            ThreadBell {
                shared,
                side: 1,
                epoch,
            },
        )
    }

    fn state(&self) -> std::sync::MutexGuard<'_, BellState> {
        self.shared.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Doorbell for ThreadBell {
    fn ring(&self, _notify_id: u32) -> crate::Result<()> {
        self.state().pending[1 - self.side] = true;
        self.shared.1.notify_all();
        Ok(())
    }

    fn wait(&self, timeout: Option<Duration>) -> crate::Result<bool> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut st = self.state();
        loop {
            if st.pending[self.side] {
                st.pending[self.side] = false;
                return Ok(true);
            }
            if st.gone[1 - self.side] {
                return Err(Error::PeerGone);
            }
            st = match deadline {
                None => self.shared.1.wait(st).unwrap_or_else(|p| p.into_inner()),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return Ok(false);
                    }
                    self.shared
                        .1
                        .wait_timeout(st, d - now)
                        .unwrap_or_else(|p| p.into_inner())
                        .0
                }
            };
        }
    }

    fn now(&self) -> Duration {
        self.epoch.elapsed()
    }

    fn check_peer(&self) -> crate::Result<()> {
        if self.state().gone[1 - self.side] {
            Err(Error::PeerGone)
        } else {
            Ok(())
        }
    }
}

impl Drop for ThreadBell {
    fn drop(&mut self) {
        self.state().gone[self.side] = true;
        self.shared.1.notify_all();
    }
}

/// The host bus [`Carveout::connect`] brings up.
pub type TestHost = HostBus<Arc<HeapMem>, ThreadBell>;
/// The remote bus [`Carveout::connect`] brings up, with room for `N` endpoints.
pub type TestRemote<const N: usize = 8> = RemoteBus<Arc<HeapMem>, ThreadBell, N>;

/// A carveout in heap memory with the resource table written: what a host bus and a
/// remote bus need to find each other.
pub struct Carveout {
    /// The memory.
    pub mem: Arc<HeapMem>,
    /// Device addresses of the carveout.
    pub map: LinearMap,
    /// Where the resource table is.
    pub rsc: RscLocation,
    /// Where everything else is.
    pub layout: CarveoutLayout,
    /// Region offset and length of a data-plane pool area after the carveout (0 if none).
    pub pool: (usize, usize),
    /// What the carveout was laid out from.
    pub spec: CarveoutSpec,
}

impl Carveout {
    /// Lays out `spec` in fresh memory.
    pub fn new(spec: CarveoutSpec) -> Self {
        Self::with_pool_area(spec, 0)
    }

    /// Lays out `spec`, followed by `pool_len` bytes (page-aligned) for a data-plane pool.
    pub fn with_pool_area(spec: CarveoutSpec, pool_len: usize) -> Self {
        let layout = CarveoutLayout::new(&spec).expect("valid spec");
        let pool_off = layout.total.div_ceil(4096) * 4096;
        let mem = Arc::new(HeapMem::new(pool_off + pool_len));
        mem.write(layout.rsc.offset, RpmsgTable::standard(&spec).as_bytes());
        let map = LinearMap {
            base: DevAddr(spec.da_base),
            offset: 0,
            len: layout.total,
        };
        Carveout {
            mem,
            map,
            rsc: layout.rsc,
            layout,
            pool: (pool_off, pool_len),
            spec,
        }
    }

    /// A link with `num` buffers per direction of 512 bytes, EVENT_IDX off (the default a
    /// firmware should offer: OpenAMP's and RPMsg-Lite's hosts do not implement it).
    pub fn with_buffers(num: u16) -> Self {
        Self::new(CarveoutSpec {
            vring_num: num,
            buf_size: 512,
            event_idx: false,
            da_base: 0xA000_0000,
        })
    }

    /// The same link with an intercore firmware's table: the vendor entry offering
    /// `features` (`INTERCORE_FEATURES`: in-order and inline-slot rings, which an
    /// intercore host accepts by default).
    pub fn offering(self, features: u32) -> Self {
        let t = crate::rpmsg::rsc_table::IntercoreRpmsgTable::standard(&self.spec, features);
        self.mem.write(self.rsc.offset, t.as_bytes());
        self
    }

    /// Brings up both roles over this link, as every in-process test of the two buses
    /// does: a [`ThreadBell`] pair, a host bus configured by `cfg` (which sets
    /// `DRIVER_OK`), and a remote bus waiting as `wait`, returned ready (its
    /// `wait_ready` has run).
    pub fn connect<const N: usize>(
        &self,
        cfg: HostConfig,
        wait: WaitMode,
    ) -> crate::Result<(TestHost, TestRemote<N>)> {
        let (hb, rb) = ThreadBell::pair();
        let host = HostBus::new(Arc::clone(&self.mem), hb, &self.map, self.rsc, cfg)?;
        let mut remote = RemoteBus::new(
            Arc::clone(&self.mem),
            rb,
            &self.map,
            self.rsc,
            RemoteConfig::default().wait(wait),
        )?;
        remote.wait_ready(Some(Duration::from_secs(5)))?;
        Ok((host, remote))
    }
}
