//! The host's buffer pool: size classes, lock-free allocation, an owner per buffer, and
//! the CPU-side handles whose types say who may touch the bytes.

use super::CacheOps;
use crate::shm::OwnedRange;
use crate::{DevAddr, Error, Result};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::ops::{Deref, DerefMut};
use core::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use core::sync::atomic::{AtomicU8, AtomicU32};

/// Buffer sizes and counts of a pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolConfig {
    /// `(buffer size, count)` per class, smallest first. Sizes are rounded up to `align`.
    pub classes: Vec<(usize, usize)>,
    /// Alignment of every buffer (at least the cache line; a page suits IOMMU windows).
    pub align: usize,
}

impl PoolConfig {
    /// Bytes the pool occupies.
    pub fn region_len(&self) -> usize {
        self.classes
            .iter()
            .map(|&(size, n)| size.div_ceil(self.align) * self.align * n)
            .sum()
    }
}

/// Who holds a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// In the pool.
    Free,
    /// The application, through a [`WritableBuf`].
    Cpu,
    /// The remote (submitted, not completed).
    InFlight,
    /// The application, through a [`Completed`].
    Completed,
}

const FREE: u8 = 0;
const CPU: u8 = 1;
const IN_FLIGHT: u8 = 2;
const COMPLETED: u8 = 3;

fn owner_of(v: u8) -> Owner {
    match v {
        CPU => Owner::Cpu,
        IN_FLIGHT => Owner::InFlight,
        COMPLETED => Owner::Completed,
        _ => Owner::Free,
    }
}

/// Where a buffer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BufInfo {
    /// Region offset of its first byte.
    pub off: usize,
    /// Its size.
    pub cap: usize,
    /// The device address the remote uses for it.
    pub da: DevAddr,
    /// Its size class.
    pub class: usize,
}

/// A lock-free stack of buffer ids (Treiber) with an ABA tag, 64- or 32-bit by target
/// (`crate::lockfree`).
use crate::lockfree::IdStack as Stack;

pub(crate) struct Shared<C> {
    pub(crate) cache: C,
    bufs: Vec<BufInfo>,
    owner: Vec<AtomicU8>,
    next: Vec<AtomicU32>,
    stacks: Vec<Stack>,
    /// Classes by buffer size, smallest first, with that size: allocation walks this.
    by_size: Vec<(usize, usize)>,
}

impl<C: CacheOps> Shared<C> {
    fn push(&self, id: u32) {
        self.stacks[self.bufs[id as usize].class].push(&self.next, id);
    }

    fn pop(&self, class: usize) -> Option<u32> {
        self.stacks[class].pop(&self.next)
    }

    pub(crate) fn info(&self, id: u32) -> &BufInfo {
        &self.bufs[id as usize]
    }

    /// Moves buffer `id` from `from` to `to`; false (and nothing changed) if it was not in
    /// `from`.
    ///
    /// A load and a store, not a compare-and-swap: a buffer's owner word is only written
    /// by whoever holds the buffer — its one [`Lease`] (inside a [`WritableBuf`], a
    /// [`Completed`] or the `DpHost`'s record while it is in flight), or the allocator that
    /// popped it from the free list — and each holder got it from the previous one by a
    /// move or through the free list's own Release/Acquire, so two writers never race. A
    /// locked read-modify-write here (three per buffer cycle) stalled the host behind the
    /// stores of the write it had just made to the buffer (issue 24.4).
    pub(crate) fn transfer(&self, id: u32, from: Owner, to: Owner) -> bool {
        let enc = |o| match o {
            Owner::Free => FREE,
            Owner::Cpu => CPU,
            Owner::InFlight => IN_FLIGHT,
            Owner::Completed => COMPLETED,
        };
        let word = &self.owner[id as usize];
        // Acquire/Release: a reader of the owner (`Pool::owner`, `owners`) that sees the new
        // owner also sees what the old one did before handing the buffer on.
        if word.load(Acquire) != enc(from) {
            return false;
        }
        word.store(enc(to), Release);
        true
    }

    pub(crate) fn release(&self, id: u32, from: Owner) {
        let ok = self.transfer(id, from, Owner::Free);
        debug_assert!(ok, "buffer {id} released from the wrong state");
        self.push(id);
    }

    /// The owner word of buffer `id`, as its holder left it.
    fn holder(&self, id: u32) -> Owner {
        // Relaxed: only the holder writes the word, and the holder is the one asking.
        owner_of(self.owner[id as usize].load(Relaxed))
    }
}

/// One buffer's claim on the pool: the pool reference and the buffer's id; which owner
/// state the holder keeps it in is the buffer's owner word itself, which only the holder
/// writes (a copy in the lease was a byte stored into the lease just before the lease was
/// moved with wider loads, a store-to-load forward that fails and waits for every store
/// before it — the buffer's fill — to drain: issue 24.4). It travels with the buffer — `WritableBuf` → the `DpHost`'s in-flight
/// record → `Completed` → `WritableBuf` — by moves, so a buffer cycle updates no reference
/// count (each update is a locked read-modify-write, which waits for the stores of the
/// write just made to the buffer: issue 24.4). Dropped while the CPU holds the buffer
/// (`Cpu`, `Completed`), it returns the buffer to the free list; in flight it does not
/// (a live remote may still write it: `DpHost::reclaim` decides).
pub(crate) struct Lease<C: CacheOps> {
    pub(crate) shared: Arc<Shared<C>>,
    pub(crate) id: u32,
}

impl<C: CacheOps> Lease<C> {
    /// Moves the buffer from owner `from` to `to`; false (nothing changed) if it was not
    /// in `from`.
    pub(crate) fn pass(&self, from: Owner, to: Owner) -> bool {
        self.shared.transfer(self.id, from, to)
    }

    /// Returns the buffer to the free list now, whoever holds it (reclaim).
    pub(crate) fn free(self) {
        let from = self.shared.holder(self.id);
        if from != Owner::Free {
            self.shared.release(self.id, from);
        }
        // Dropped now: the word says `Free`, so the drop releases nothing more.
    }
}

impl<C: CacheOps> Drop for Lease<C> {
    fn drop(&mut self) {
        let from = self.shared.holder(self.id);
        if matches!(from, Owner::Cpu | Owner::Completed) {
            self.shared.release(self.id, from);
        }
    }
}

/// The pool of data-plane buffers (host side).
pub struct Pool<C: CacheOps> {
    pub(crate) shared: Arc<Shared<C>>,
}

impl<C: CacheOps> Pool<C> {
    /// Lays out the buffers of `cfg` from region offset `off` (device address `da`) in the
    /// region `cache` covers. Every buffer starts on a multiple of `cfg.align`.
    pub fn new(cache: C, off: usize, da: DevAddr, cfg: &PoolConfig) -> Result<Self> {
        Self::with_addresses(cache, off, cfg, |rel, _| Ok(DevAddr(da.0 + rel as u64)))
    }

    /// [`Self::new`] for a pool whose device addresses are not one linear range: `da_of(rel,
    /// cap)` gives the device address of the buffer `rel` bytes into the pool, of `cap`
    /// bytes. The caller vouches that the device reaches those `cap` bytes contiguously
    /// from that address — e.g. page-sized buffers, each in its own page, at the physical
    /// addresses `/proc/self/pagemap` reports for pages that cannot move. Each address
    /// must be aligned to `cfg.align` and the range must not wrap.
    pub fn with_addresses(
        cache: C,
        off: usize,
        cfg: &PoolConfig,
        mut da_of: impl FnMut(usize, usize) -> Result<DevAddr>,
    ) -> Result<Self> {
        let line = cache.line_size();
        if !cfg.align.is_power_of_two() || cfg.align < line || off % cfg.align != 0 {
            return Err(Error::Config(
                "pool alignment must be a power of two >= the cache line, with offset and address aligned",
            ));
        }
        if off
            .checked_add(cfg.region_len())
            .is_none_or(|end| end > cache.region_len())
        {
            return Err(Error::Config("pool does not fit in the region"));
        }
        let mut bufs = Vec::new();
        let mut at = off;
        for (class, &(size, n)) in cfg.classes.iter().enumerate() {
            if size == 0 || size > u32::MAX as usize {
                return Err(Error::Config("buffer size must be in 1..=u32::MAX"));
            }
            let cap = size.div_ceil(cfg.align) * cfg.align;
            for _ in 0..n {
                let da = da_of(at - off, cap)?;
                if da.0 % cfg.align as u64 != 0 || da.0.checked_add(cap as u64).is_none() {
                    return Err(Error::Config(
                        "pool alignment must be a power of two >= the cache line, with offset and address aligned",
                    ));
                }
                bufs.push(BufInfo {
                    off: at,
                    cap,
                    da,
                    class,
                });
                at += cap;
            }
        }
        if bufs.len() > Stack::MAX_IDS {
            return Err(Error::Config(
                "too many buffers for this target's free lists (65535 without 64-bit atomics)",
            ));
        }
        let n = bufs.len();
        let mut by_size: Vec<(usize, usize)> = cfg
            .classes
            .iter()
            .enumerate()
            .map(|(c, &(size, _))| (size.div_ceil(cfg.align) * cfg.align, c))
            .collect();
        by_size.sort_unstable();
        let shared = Shared {
            by_size,
            cache,
            owner: (0..n).map(|_| AtomicU8::new(FREE)).collect(),
            next: (0..n).map(|_| AtomicU32::new(0)).collect(),
            stacks: cfg.classes.iter().map(|_| Stack::new()).collect(),
            bufs,
        };
        for id in (0..n as u32).rev() {
            shared.push(id);
        }
        Ok(Self {
            shared: Arc::new(shared),
        })
    }

    /// A free buffer of at least `len` bytes, from the smallest class that has one.
    pub fn alloc(&self, len: usize) -> Option<WritableBuf<C>> {
        let s = &self.shared;
        for &(cap, class) in &s.by_size {
            if cap >= len {
                if let Some(id) = s.pop(class) {
                    let lease = Lease {
                        shared: Arc::clone(s),
                        id,
                    };
                    let ok = lease.pass(Owner::Free, Owner::Cpu);
                    debug_assert!(ok, "popped buffer {id} was not free");
                    return Some(WritableBuf::new(lease));
                }
            }
        }
        None
    }

    /// Number of buffers.
    pub fn len(&self) -> usize {
        self.shared.bufs.len()
    }
    /// Whether the pool has no buffers.
    pub fn is_empty(&self) -> bool {
        self.shared.bufs.is_empty()
    }
    /// Where buffer `id` is.
    pub fn info(&self, id: u32) -> Option<BufInfo> {
        self.shared.bufs.get(id as usize).copied()
    }
    /// The owner of buffer `id` now.
    pub fn owner(&self, id: u32) -> Option<Owner> {
        self.shared
            .owner
            .get(id as usize)
            .map(|o| owner_of(o.load(Acquire)))
    }
    /// Every buffer's owner, by id.
    pub fn owners(&self) -> Vec<Owner> {
        self.shared
            .owner
            .iter()
            .map(|o| owner_of(o.load(Acquire)))
            .collect()
    }
    /// How many buffers each owner holds: `[free, cpu, in flight, completed]`.
    pub fn counts(&self) -> [usize; 4] {
        let mut c = [0; 4];
        for o in &self.shared.owner {
            c[o.load(Relaxed) as usize & 3] += 1;
        }
        c
    }
    /// The cache maintenance in use.
    pub fn cache(&self) -> &C {
        &self.shared.cache
    }
}

/// A buffer the CPU owns: read and write it in place, then submit it.
///
/// **Device memory.** On arm64, a region mapped from UIO or a `/dev/mem` no-map carveout
/// is Device memory: an unaligned access or `DC ZVA` there faults (SIGBUS), and
/// `copy_from_slice`, `fill` or `to_vec` on this view may compile to `memcpy`/`memset`,
/// which use both. On such a region copy with [`Self::copy_from`], [`crate::copy_to_shared`], [`crate::copy_from_shared`] or
/// [`crate::fill_shared`], which make naturally aligned
/// accesses only; do not `memcpy` the view with unaligned accesses.
pub struct WritableBuf<C: CacheOps> {
    /// Returns the buffer to the pool when the handle is dropped.
    pub(crate) lease: Lease<C>,
    pub(crate) info: BufInfo,
    range: OwnedRange,
}

impl<C: CacheOps> WritableBuf<C> {
    fn new(lease: Lease<C>) -> Self {
        let (shared, id) = (&lease.shared, lease.id);
        let info = *shared.info(id);
        shared.cache.cpu_access(id, info.off, info.cap, true);
        // The buffer is ours (state CPU): no other handle and not the peer.
        let range = OwnedRange::claim_cpu(&shared.cache, info.off, info.cap)
            .expect("pool checked its layout");
        Self { lease, info, range }
    }
    /// Buffer id.
    pub fn id(&self) -> u32 {
        self.lease.id
    }
    /// Capacity in bytes.
    pub fn cap(&self) -> usize {
        self.range.len()
    }
    /// Device address.
    pub fn da(&self) -> DevAddr {
        self.info.da
    }
}

impl<C: CacheOps> WritableBuf<C> {
    /// Copies `data` (up to the capacity) to the start of the buffer with aligned accesses
    /// only ([`crate::copy_to_shared`]); returns the bytes copied.
    pub fn copy_from(&mut self, data: &[u8]) -> usize {
        crate::copy_to_shared(self, data)
    }
}

impl<C: CacheOps> Deref for WritableBuf<C> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.range.cpu_bytes(&self.lease.shared.cache)
    }
}

impl<C: CacheOps> DerefMut for WritableBuf<C> {
    fn deref_mut(&mut self) -> &mut [u8] {
        self.range.cpu_bytes_mut(&self.lease.shared.cache)
    }
}

/// A buffer the remote has handed back: invalidated, readable in place, not writable.
///
/// **What this view is.** The bytes are in the shared pool. The protocol says the remote
/// is done with the buffer, but a remote that breaks it can still write there while you
/// read (and on a non-coherent SoC your cache may hold older lines than memory), so a
/// value checked in the view may change before it is used again. That cannot make this
/// process access memory outside the pool, but it can defeat validation: for untrusted
/// results copy first ([`Self::copy_to`], or `to_vec()`), then validate and use the copy.
/// After a remote death, in-flight buffers come back through `DpHost::reclaim`.
///
/// **Device memory.** On arm64, a region mapped from UIO or a `/dev/mem` no-map carveout
/// is Device memory: an unaligned access or `DC ZVA` there faults (SIGBUS), and
/// `copy_from_slice`, `fill` or `to_vec` on this view may compile to `memcpy`/`memset`,
/// which use both. On such a region copy with [`Self::copy_to`] or [`crate::copy_from_shared`] (not `to_vec()`), which make naturally aligned
/// accesses only; do not `memcpy` the view with unaligned accesses.
pub struct Completed<C: CacheOps> {
    /// Returns the buffer to the pool when the handle is dropped.
    lease: Lease<C>,
    range: OwnedRange,
    status: u32,
    seq: u64,
}

impl<C: CacheOps> Completed<C> {
    /// A handle for the buffer of `lease`, which the caller has moved to `Completed`.
    pub(crate) fn new(lease: Lease<C>, len: usize, status: u32, seq: u64) -> Self {
        let (shared, id) = (&lease.shared, lease.id);
        let off = shared.info(id).off;
        shared.cache.cpu_access(id, off, len, false);
        // The buffer is ours again (state COMPLETED), and was invalidated by the caller.
        let range = OwnedRange::claim_cpu(&shared.cache, off, len)
            .expect("length checked against capacity");
        Self {
            lease,
            range,
            status,
            seq,
        }
    }
    /// Buffer id.
    pub fn id(&self) -> u32 {
        self.lease.id
    }
    /// The submission's sequence number.
    pub fn seq(&self) -> u64 {
        self.seq
    }
    /// The remote's status (`DP_OK`, `DP_FAULT`, …).
    pub fn status(&self) -> u32 {
        self.status
    }
    /// Copies the result (up to `out.len()` bytes) out of the shared pool, once; returns
    /// the bytes copied. Validate the copy, not the view (see the type's documentation).
    pub fn copy_to(&self, out: &mut [u8]) -> usize {
        // Aligned accesses only: the pool may be Device memory (`crate::copy_from_shared`).
        crate::copy_from_shared(self, out)
    }
    /// Takes the buffer back for writing (to fill and submit again).
    pub fn into_writable(self) -> WritableBuf<C> {
        let lease = self.lease;
        let ok = lease.pass(Owner::Completed, Owner::Cpu);
        debug_assert!(ok, "completed buffer {} was not COMPLETED", lease.id);
        WritableBuf::new(lease)
    }
}

impl<C: CacheOps> Deref for Completed<C> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.range.cpu_bytes(&self.lease.shared.cache)
    }
}

impl<C: CacheOps> core::fmt::Debug for WritableBuf<C> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("WritableBuf")
            .field("id", &self.id())
            .field("cap", &self.cap())
            .finish()
    }
}

impl<C: CacheOps> core::fmt::Debug for Completed<C> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Completed")
            .field("id", &self.id())
            .field("seq", &self.seq)
            .field("status", &self.status)
            .field("len", &self.range.len())
            .finish()
    }
}
