//! An access-counting [`SharedMemory`]: a bus analyser for one side of a link.
//!
//! [`CountingMem`] forwards every access to the memory it wraps and records, between a
//! [`mark`](CountingMem::mark) and a [`take`](CountingMem::take), what one core would put
//! on its interconnect: loads, stores, fences, the distinct 32- and 64-byte lines touched,
//! and the longest chain of dependent loads ([`Counts`]). docs/BENCHMARKS.md ("Counting
//! shared-memory accesses") defines every number; in short:
//!
//! * an atomic access is one load or store; a copy ([`SharedMemory::read`]/
//!   [`write`](SharedMemory::write)) and a zero-copy view
//!   ([`SharedMemory::note_view`], counted as one pass over the view's bytes) are as many
//!   loads or stores as naturally aligned pieces of at most [`CountingMem::word`] bytes
//!   cover them — the accesses the aligned copies make on a core with that word size;
//! * a load *depends* on an earlier load of the window when its address is derived from
//!   the value that load returned; the [`chain`](Counts::chain) is the longest sequence of
//!   loads each depending on the one before. The wrapper finds the dependencies itself,
//!   from the values it returned and the memory map it was given ([`MemoryMap`]: where the
//!   vrings are, how big a buffer is, how device addresses translate) — never from
//!   anything the code under test tells it. An access to descriptor `j` of a ring depends
//!   on the latest load of that ring's index-bearing fields (available-ring entry, used
//!   element id, descriptor `next`) that returned `j`; an access inside a buffer depends
//!   on the latest load of a descriptor `addr` that points into it, or of an index `j`
//!   whose descriptor (as it stands in memory) points into it;
//! * the [`ordered_chain`](Counts::ordered_chain) also counts the ordering an Acquire
//!   load or fence imposes: a load after an Acquire (or SeqCst) load, or after an Acquire
//!   fence, cannot complete before the loads those order.
//!
//! Wrap each side of a link in its own `CountingMem` over the same inner memory: each
//! records only its own core's accesses. The counted path is the production path: the
//! wrapper only forwards, and the buses call it exactly as they call any other memory.
#![allow(unsafe_code)]

use crate::rpmsg::RemoteConfig;
use crate::rpmsg::layout::VRING_ALIGN;
use crate::wire::vring::{DESC_SIZE, USED_ELEM_SIZE, VringLayout};
use crate::{DevAddr, DeviceAddressMap, LinearMap, SharedMemory};
use core::sync::atomic::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, MutexGuard};

/// What a [`CountingMem`] counted in one window (between [`mark`](CountingMem::mark) and
/// [`take`](CountingMem::take)).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Loads (atomic loads, plus the pieces of copies and read views).
    pub loads: u64,
    /// Stores (atomic stores, plus the pieces of copies and write views).
    pub stores: u64,
    /// Fences.
    pub fences: u64,
    /// Distinct 32-byte lines touched by any access.
    pub lines32: u64,
    /// Distinct 64-byte lines touched by any access.
    pub lines64: u64,
    /// Longest chain of loads each of whose address derives from the value the one before
    /// it returned (1 for independent loads, 0 without loads).
    pub chain: u32,
    /// Longest chain when the ordering of Acquire loads and fences also counts as a
    /// dependency.
    pub ordered_chain: u32,
}

impl core::ops::Add for Counts {
    type Output = Counts;
    /// Sums the counters; the chains (which are not additive) take the maximum. Used to
    /// compare windows, not to join them.
    fn add(self, o: Counts) -> Counts {
        Counts {
            loads: self.loads + o.loads,
            stores: self.stores + o.stores,
            fences: self.fences + o.fences,
            lines32: self.lines32 + o.lines32,
            lines64: self.lines64 + o.lines64,
            chain: self.chain.max(o.chain),
            ordered_chain: self.ordered_chain.max(o.ordered_chain),
        }
    }
}

/// One vring in the region, as the memory map describes it.
#[derive(Debug, Clone, Copy)]
pub struct RingMap {
    /// Region offset of the descriptor table.
    pub base: usize,
    /// The ring's geometry.
    pub layout: VringLayout,
}

/// What the analyser knows of the region: where the vrings are, how device addresses
/// translate to region offsets, and how long a buffer a descriptor points to is — what a
/// harness knows because it laid the link out, never what the code under test reports.
#[derive(Debug, Clone)]
pub struct MemoryMap {
    /// The vrings.
    pub rings: Vec<RingMap>,
    /// Device address translation the link is configured with.
    pub translate: LinearMap,
    /// Bytes a buffer extends from the address its descriptor holds.
    pub buf_size: usize,
}

impl MemoryMap {
    /// The map of a [`Carveout`](super::Carveout)'s carveout: its two vrings, its device-address
    /// window and its buffer size.
    pub fn for_link(link: &super::Carveout) -> Self {
        let layout =
            VringLayout::new(u32::from(link.spec.vring_num), VRING_ALIGN).expect("laid out");
        MemoryMap {
            rings: vec![
                RingMap {
                    base: link.layout.vring0,
                    layout,
                },
                RingMap {
                    base: link.layout.vring1,
                    layout,
                },
            ],
            translate: link.map,
            buf_size: link.spec.buf_size,
        }
    }
}

/// What an access is, for the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A load (or a read view) of `len` bytes.
    Load,
    /// A store (or a write view).
    Store,
    /// A fence (`off` and `len` are 0).
    Fence,
}

/// One recorded access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Access {
    /// Load, store or fence.
    pub kind: Kind,
    /// Region offset.
    pub off: usize,
    /// Bytes.
    pub len: usize,
    /// Machine accesses it counts as.
    pub pieces: u64,
    /// For a load: its position in the longest address-dependency chain ending in it.
    pub depth: u32,
    /// For a load: the same with ordering dependencies.
    pub ordered_depth: u32,
}

/// A value of an index-bearing field a load returned.
#[derive(Debug, Clone, Copy)]
struct IndexValue {
    seq: u64,
    ring: usize,
    value: u16,
    depth: u32,
    ordered: u32,
}

/// A descriptor address a load returned, translated.
#[derive(Debug, Clone, Copy)]
struct AddrValue {
    seq: u64,
    off: usize,
    depth: u32,
    ordered: u32,
}

#[derive(Default)]
struct State {
    counts: Counts,
    lines32: BTreeSet<usize>,
    lines64: BTreeSet<usize>,
    /// Per byte loaded in this window: (value, depth, ordered depth) of the latest load.
    loaded: BTreeMap<usize, (u8, u32, u32)>,
    /// Index values loaded, oldest first.
    indices: Vec<IndexValue>,
    /// Descriptor addresses loaded, oldest first.
    addrs: Vec<AddrValue>,
    /// Ordered depth every later load is ordered after (Acquire loads, Acquire fences).
    barrier: u32,
    /// Greatest ordered depth of any load so far (what an Acquire fence orders).
    max_ordered: u32,
    log: Vec<Access>,
    /// Loads so far (orders index and address values).
    seq: u64,
}

/// An access-counting wrapper around the shared memory `M` (see the module).
pub struct CountingMem<M> {
    inner: M,
    map: MemoryMap,
    word: usize,
    state: Mutex<State>,
}

impl<M: SharedMemory> CountingMem<M> {
    /// Wraps `inner`, whose layout is `map`, counting copies in 8-byte words (a 64-bit
    /// core such as the Cortex-A53).
    pub fn new(inner: M, map: MemoryMap) -> Self {
        Self {
            inner,
            map,
            word: 8,
            state: Mutex::new(State::default()),
        }
    }

    /// Counts copies and views in `word`-byte pieces (4 for a 32-bit core such as the
    /// Cortex-R5F). `word` must be a power of two from 1 to 8.
    pub fn with_word(mut self, word: usize) -> Self {
        assert!(word.is_power_of_two() && word <= 8, "word size {word}");
        self.word = word;
        self
    }

    /// The word size copies are counted in.
    pub fn word(&self) -> usize {
        self.word
    }

    /// The memory wrapped.
    pub fn inner(&self) -> &M {
        &self.inner
    }

    /// The memory map.
    pub fn map(&self) -> &MemoryMap {
        &self.map
    }

    /// Starts a window: forgets all counts, every loaded value and the log.
    pub fn mark(&self) {
        *self.state() = State::default();
    }

    /// The counts since the last [`mark`](Self::mark), and starts a new window.
    pub fn take(&self) -> Counts {
        let c = self.counts();
        self.mark();
        c
    }

    /// The counts since the last [`mark`](Self::mark), without starting a new window.
    pub fn counts(&self) -> Counts {
        let st = self.state();
        let mut c = st.counts;
        c.lines32 = st.lines32.len() as u64;
        c.lines64 = st.lines64.len() as u64;
        c
    }

    /// Every access of the window, in order.
    pub fn log(&self) -> Vec<Access> {
        self.state().log.clone()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Naturally aligned pieces of at most `word` bytes covering `off..off+len`.
    fn pieces(&self, off: usize, len: usize) -> u64 {
        let (mut pos, mut n) = (off, 0);
        let end = off + len;
        while pos < end {
            let mut w = self.word;
            while w > 1 && (pos % w != 0 || pos + w > end) {
                w /= 2;
            }
            pos += w;
            n += 1;
        }
        n
    }

    /// The ring and descriptor index `off` lies in, if it is in a descriptor table.
    fn desc_at(&self, off: usize) -> Option<(usize, u16)> {
        self.map.rings.iter().enumerate().find_map(|(r, ring)| {
            let rel = off.checked_sub(ring.base)?;
            let idx = rel / DESC_SIZE;
            (idx < usize::from(ring.layout.num())).then_some((r, idx as u16))
        })
    }

    /// Region offset of the buffer descriptor `j` of ring `r` points to, as it stands in
    /// memory now (read without counting: the analyser's own view).
    fn buffer_of(&self, r: usize, j: u16) -> Option<usize> {
        let ring = self.map.rings.get(r)?;
        if j >= ring.layout.num() {
            return None;
        }
        let mut a = [0u8; 8];
        self.inner.read(ring.base + ring.layout.desc(j), &mut a);
        self.translate(u64::from_le_bytes(a))
    }

    fn translate(&self, da: u64) -> Option<usize> {
        self.map.translate.to_offset(DevAddr(da), 1)
    }

    fn in_buffer(&self, start: usize, off: usize) -> bool {
        off >= start && off - start < self.map.buf_size
    }

    /// (depth, ordered depth) of the latest value `off`'s address derives from, 0 if none.
    fn producer(&self, st: &State, off: usize) -> (u32, u32) {
        if let Some((r, j)) = self.desc_at(off) {
            return st
                .indices
                .iter()
                .rev()
                .find(|v| v.ring == r && v.value == j)
                .map_or((0, 0), |v| (v.depth, v.ordered));
        }
        if self
            .map
            .rings
            .iter()
            .any(|ring| off >= ring.base && off < ring.base + ring.layout.size())
        {
            // Ring indices, entries and event fields: their slot is the reader's own
            // counter (virtio 1.x §2.7: last_avail_idx / last_used_idx are private).
            return (0, 0);
        }
        // In a buffer: the latest descriptor address pointing into it, or the latest index
        // whose descriptor points into it, whichever came later.
        let by_addr = st
            .addrs
            .iter()
            .rev()
            .find(|a| self.in_buffer(a.off, off))
            .map(|a| (a.seq, a.depth, a.ordered));
        let by_index = st
            .indices
            .iter()
            .rev()
            .find(|v| {
                self.buffer_of(v.ring, v.value)
                    .is_some_and(|b| self.in_buffer(b, off))
            })
            .map(|v| (v.seq, v.depth, v.ordered));
        match (by_addr, by_index) {
            (Some(a), Some(v)) if v.0 > a.0 => (v.1, v.2),
            (Some(a), _) | (None, Some(a)) => (a.1, a.2),
            (None, None) => (0, 0),
        }
    }

    fn touch(st: &mut State, off: usize, len: usize) {
        let end = off + len.max(1);
        for l in off / 32..end.div_ceil(32) {
            st.lines32.insert(l);
        }
        for l in off / 64..end.div_ceil(64) {
            st.lines64.insert(l);
        }
    }

    /// Records a load of `bytes` at `off` with `order`.
    fn on_load(&self, off: usize, bytes: &[u8], order: Ordering, view: bool) {
        let mut st = self.state();
        st.seq += 1;
        let (pd, po) = self.producer(&st, off);
        let depth = pd + 1;
        let ordered = po.max(st.barrier) + 1;
        let pieces = self.pieces(off, bytes.len());
        st.counts.loads += pieces;
        st.counts.chain = st.counts.chain.max(depth);
        st.counts.ordered_chain = st.counts.ordered_chain.max(ordered);
        st.max_ordered = st.max_ordered.max(ordered);
        if matches!(
            order,
            Ordering::Acquire | Ordering::AcqRel | Ordering::SeqCst
        ) {
            st.barrier = st.barrier.max(ordered);
        }
        Self::touch(&mut st, off, bytes.len());
        st.log.push(Access {
            kind: Kind::Load,
            off,
            len: bytes.len(),
            pieces,
            depth,
            ordered_depth: ordered,
        });
        if view {
            return;
        }
        for (i, b) in bytes.iter().enumerate() {
            st.loaded.insert(off + i, (*b, depth, ordered));
        }
        self.produce(&mut st, off, bytes.len());
    }

    /// Records the index and address values a load covering `off..off+len` completed.
    fn produce(&self, st: &mut State, off: usize, len: usize) {
        let end = off + len;
        // A field counts once all its bytes have been loaded in this window; its depth is
        // that of the deepest load that supplied one of them.
        let field = |st: &State, at: usize, n: usize| -> Option<(u64, u32, u32)> {
            let (mut v, mut d, mut o) = (0u64, 0, 0);
            for i in (0..n).rev() {
                let &(b, bd, bo) = st.loaded.get(&(at + i))?;
                v = v << 8 | u64::from(b);
                d = d.max(bd);
                o = o.max(bo);
            }
            Some((v, d, o))
        };
        let overlaps = |at: usize, n: usize| at < end && off < at + n;
        for (r, ring) in self.map.rings.iter().enumerate() {
            let l = &ring.layout;
            let num = l.num();
            if !overlaps(ring.base, l.size()) {
                continue;
            }
            let index = |at: usize, n: usize, st: &mut State| {
                if overlaps(at, n) {
                    if let Some((v, depth, ordered)) = field(st, at, n) {
                        st.indices.push(IndexValue {
                            seq: st.seq,
                            ring: r,
                            value: v as u16,
                            depth,
                            ordered,
                        });
                    }
                }
            };
            // Only the entries this load overlaps.
            let first = |base: usize, stride: usize| off.saturating_sub(base) / stride;
            let d0 = first(ring.base, DESC_SIZE);
            for j in d0..usize::from(num) {
                let at = ring.base + l.desc(j as u16);
                if at >= end {
                    break;
                }
                index(at + 14, 2, st);
                if overlaps(at, 8)
                    && let Some((v, depth, ordered)) = field(st, at, 8)
                    && let Some(b) = self.translate(v)
                {
                    st.addrs.push(AddrValue {
                        seq: st.seq,
                        off: b,
                        depth,
                        ordered,
                    });
                }
            }
            let a0 = first(ring.base + l.avail_ring(0), 2);
            for k in a0..usize::from(num) {
                let at = ring.base + l.avail_ring(k as u16);
                if at >= end {
                    break;
                }
                index(at, 2, st);
            }
            let u0 = first(ring.base + l.used_ring(0), USED_ELEM_SIZE);
            for k in u0..usize::from(num) {
                let at = ring.base + l.used_ring(k as u16);
                if at >= end {
                    break;
                }
                index(at, 4, st);
            }
        }
    }

    fn on_store(&self, off: usize, len: usize) {
        let mut st = self.state();
        let pieces = self.pieces(off, len);
        st.counts.stores += pieces;
        Self::touch(&mut st, off, len);
        // A store replaces what this side loaded there: later addresses cannot derive from
        // the old value through memory.
        for i in off..off + len {
            st.loaded.remove(&i);
        }
        st.log.push(Access {
            kind: Kind::Store,
            off,
            len,
            pieces,
            depth: 0,
            ordered_depth: 0,
        });
    }
}

// SAFETY: the mapping, its length and every access are `M`'s, which keeps the contract;
// the wrapper only records what passes through.
unsafe impl<M: SharedMemory> SharedMemory for CountingMem<M> {
    fn as_ptr(&self) -> *mut u8 {
        self.inner.as_ptr()
    }
    fn len(&self) -> usize {
        self.inner.len()
    }
    fn device_memory(&self) -> bool {
        self.inner.device_memory()
    }
    fn load_u16(&self, off: usize, order: Ordering) -> u16 {
        let v = self.inner.load_u16(off, order);
        self.on_load(off, &v.to_le_bytes(), order, false);
        v
    }
    fn store_u16(&self, off: usize, v: u16, order: Ordering) {
        self.inner.store_u16(off, v, order);
        self.on_store(off, 2);
    }
    fn load_u32(&self, off: usize, order: Ordering) -> u32 {
        let v = self.inner.load_u32(off, order);
        self.on_load(off, &v.to_le_bytes(), order, false);
        v
    }
    fn store_u32(&self, off: usize, v: u32, order: Ordering) {
        self.inner.store_u32(off, v, order);
        self.on_store(off, 4);
    }
    fn read(&self, off: usize, dst: &mut [u8]) {
        self.inner.read(off, dst);
        if !dst.is_empty() {
            self.on_load(off, dst, Ordering::Relaxed, false);
        }
    }
    fn write(&self, off: usize, src: &[u8]) {
        self.inner.write(off, src);
        if !src.is_empty() {
            self.on_store(off, src.len());
        }
    }
    fn fence(&self, order: Ordering) {
        self.inner.fence(order);
        let mut st = self.state();
        st.counts.fences += 1;
        if matches!(
            order,
            Ordering::Acquire | Ordering::AcqRel | Ordering::SeqCst
        ) {
            st.barrier = st.barrier.max(st.max_ordered);
        }
        st.log.push(Access {
            kind: Kind::Fence,
            off: 0,
            len: 0,
            pieces: 0,
            depth: 0,
            ordered_depth: 0,
        });
    }
    fn note_view(&self, off: usize, len: usize, write: bool) {
        self.inner.note_view(off, len, write);
        if len == 0 {
            return;
        }
        if write {
            self.on_store(off, len);
        } else {
            self.on_load(off, &vec![0; len], Ordering::Relaxed, true);
        }
    }
}

impl<M> core::fmt::Debug for CountingMem<M> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("CountingMem")
            .field("map", &self.map)
            .field("word", &self.word)
            .finish_non_exhaustive()
    }
}

/// The counting memory of one side of a [`Carveout`](super::Carveout).
pub type Counter = CountingMem<std::sync::Arc<super::HeapMem>>;
/// A host bus whose accesses are counted.
pub type CountedHost = crate::rpmsg::HostBus<std::sync::Arc<Counter>, super::ThreadBell>;
/// A remote bus whose accesses are counted, with room for `N` endpoints.
pub type CountedRemote<const N: usize = 8> =
    crate::rpmsg::RemoteBus<std::sync::Arc<Counter>, super::ThreadBell, N>;

/// Both roles of a link, each reaching the memory through its own [`CountingMem`]: the
/// host's counts copies in 8-byte words (a Cortex-A53), the remote's in 4-byte words (a
/// Cortex-R5F).
pub struct Counted<const N: usize = 8> {
    /// The host bus.
    pub host: CountedHost,
    /// The remote bus, ready.
    pub remote: CountedRemote<N>,
    /// What the host side accessed.
    pub host_mem: std::sync::Arc<Counter>,
    /// What the remote side accessed.
    pub remote_mem: std::sync::Arc<Counter>,
}

/// Brings up both roles over `link` as [`Carveout::connect`](super::Carveout::connect) does, each
/// through a counting memory built from [`MemoryMap::for_link`]. Nothing is marked: call
/// [`CountingMem::mark`] before what is to be counted.
pub fn connect<const N: usize>(
    link: &super::Carveout,
    cfg: crate::rpmsg::HostConfig,
    wait: crate::WaitMode,
) -> crate::Result<Counted<N>> {
    use std::sync::Arc;
    let map = MemoryMap::for_link(link);
    let host_mem = Arc::new(CountingMem::new(Arc::clone(&link.mem), map.clone()));
    let remote_mem = Arc::new(CountingMem::new(Arc::clone(&link.mem), map).with_word(4));
    let (hb, rb) = super::ThreadBell::pair();
    let host = crate::rpmsg::HostBus::new(Arc::clone(&host_mem), hb, &link.map, link.rsc, cfg)?;
    let mut remote = crate::rpmsg::RemoteBus::new(
        Arc::clone(&remote_mem),
        rb,
        &link.map,
        link.rsc,
        RemoteConfig::default().wait(wait),
    )?;
    remote.wait_ready(Some(std::time::Duration::from_secs(5)))?;
    Ok(Counted {
        host,
        remote,
        host_mem,
        remote_mem,
    })
}

#[cfg(test)]
mod tests {
    //! The analyser against hand-built access sequences whose chains are known (the rules
    //! of docs/BENCHMARKS.md, "Counting shared-memory accesses"). Each expected chain is
    //! longer than 1, so a wrapper that tracked no dependency would fail them.
    use super::*;
    use crate::testing::HeapMem;
    use Ordering::{Acquire, Relaxed};
    use std::time::Duration;

    const DA: u64 = 0x1000_0000;
    const BUFS: usize = 0x2000;

    /// One ring of 4 entries at offset 0, buffers of 64 bytes at 0x2000; device address
    /// `DA` is offset 0.
    fn setup() -> (CountingMem<HeapMem>, VringLayout) {
        let layout = VringLayout::new(4, 16).unwrap();
        let map = MemoryMap {
            rings: vec![RingMap { base: 0, layout }],
            translate: LinearMap {
                base: DevAddr(DA),
                offset: 0,
                len: 0x4000,
            },
            buf_size: 64,
        };
        let mem = CountingMem::new(HeapMem::new(0x4000), map);
        // Descriptor j points to buffer j (written behind the analyser's back).
        for j in 0..4u16 {
            let da = DA + (BUFS + 64 * j as usize) as u64;
            mem.inner().write(layout.desc(j), &da.to_le_bytes());
        }
        (mem, layout)
    }

    /// A device taking a buffer: avail.idx (Acquire) → avail.ring[0] = 2 → desc[2] →
    /// buffer 2. The ring slot's address is the reader's own counter (no dependency), the
    /// descriptor's derives from the slot's value, the buffer's from the descriptor's.
    #[test]
    fn device_path_chain() {
        let (mem, l) = setup();
        mem.inner().store_u16(l.avail_ring(0), 2, Relaxed);
        mem.inner().store_u16(l.avail_idx(), 1, Relaxed);
        mem.mark();
        assert_eq!(mem.load_u16(l.avail_idx(), Acquire), 1);
        assert_eq!(mem.load_u16(l.avail_ring(0), Relaxed), 2);
        let mut d = [0u8; 16];
        mem.read(l.desc(2), &mut d);
        let mut b = [0u8; 16];
        mem.read(BUFS + 128, &mut b);
        let depths: Vec<_> = mem.log().iter().map(|a| a.depth).collect();
        assert_eq!(depths, [1, 1, 2, 3]);
        let ordered: Vec<_> = mem.log().iter().map(|a| a.ordered_depth).collect();
        assert_eq!(ordered, [1, 2, 3, 4]);
        let c = mem.take();
        assert_eq!((c.chain, c.ordered_chain), (3, 4));
        // 2 + 2 atomic loads, two 16-byte copies of 2 words each.
        assert_eq!((c.loads, c.stores, c.fences), (6, 0, 0));
        // Lines: avail (idx and ring[0] share one), desc[2], buffer 2.
        assert_eq!((c.lines32, c.lines64), (3, 3));
        assert_eq!(mem.counts(), Counts::default(), "take starts a new window");
    }

    /// A driver reclaiming a buffer: used.ring[0].id = 1 → buffer 1 (through the
    /// descriptor as it stands in memory, without loading it) and a follow-on `next`
    /// chain: desc[1].next = 3 → desc[3].
    #[test]
    fn index_to_buffer_and_next_chain() {
        let (mem, l) = setup();
        mem.inner().store_u32(l.used_ring(0), 1, Relaxed);
        mem.inner().store_u16(l.desc(1) + 14, 3, Relaxed);
        mem.mark();
        assert_eq!(mem.load_u32(l.used_ring(0), Acquire), 1);
        let mut b = [0u8; 8];
        mem.read(BUFS + 64 + 8, &mut b); // inside buffer 1: depends on the id
        assert_eq!(mem.load_u16(l.desc(1) + 14, Relaxed), 3); // depends on the id
        mem.read(l.desc(3), &mut b); // depends on `next`
        let depths: Vec<_> = mem.log().iter().map(|a| a.depth).collect();
        assert_eq!(depths, [1, 2, 2, 3]);
        assert_eq!(mem.take().chain, 3);
    }

    /// No dependency by accident: a value that does not name what is accessed, a store
    /// over a loaded value, and buffers nothing loaded points to.
    #[test]
    fn no_false_dependencies() {
        let (mem, l) = setup();
        mem.inner().store_u16(l.avail_ring(0), 2, Relaxed);
        mem.mark();
        mem.load_u16(l.avail_ring(0), Relaxed);
        mem.load_u16(l.desc(1) + 12, Relaxed); // desc 1, not 2
        mem.load_u32(BUFS + 3 * 64, Relaxed); // buffer 3: nothing points there
        mem.load_u32(BUFS + 2 * 64, Relaxed); // buffer 2: the index named it
        let depths: Vec<_> = mem.log().iter().map(|a| a.depth).collect();
        assert_eq!(depths, [1, 1, 1, 2]);
        assert_eq!(
            mem.counts().ordered_chain,
            2,
            "no Acquire: only the address"
        );
        // A fence orders what came before: the next load is deeper in the ordered chain.
        mem.fence(Acquire);
        mem.load_u16(l.used_idx(), Relaxed);
        let c = mem.take();
        assert_eq!((c.chain, c.ordered_chain, c.fences), (2, 3, 1));
    }

    /// Copies and views are counted in word pieces, lines by address.
    #[test]
    fn pieces_lines_and_views() {
        let (mem, _) = setup();
        mem.mark();
        mem.write(BUFS + 1, &[0; 16]); // 1 + 2 + 4 + 8 + 1 at 8-byte words
        mem.note_view(BUFS + 64, 64, false); // 8 loads, 2 lines of 32, 1 of 64
        let c = mem.take();
        assert_eq!((c.loads, c.stores), (8, 5));
        assert_eq!((c.lines32, c.lines64), (3, 2));
        let mem = mem.with_word(4);
        mem.note_view(BUFS, 496, true);
        let c = mem.take();
        assert_eq!((c.loads, c.stores, c.lines32, c.lines64), (0, 124, 16, 8));
    }

    /// Through both buses: the remote's receive is the device path (avail entry →
    /// descriptor → buffer, at least 3 deep), and a message arrives intact.
    #[test]
    fn buses_through_the_wrapper() {
        let link = crate::testing::Carveout::with_buffers(8);
        let mut c: Counted = connect(&link, Default::default(), crate::WaitMode::Poll).unwrap();
        let ep = c.remote.create_endpoint("count", None).unwrap();
        let hep = c.host.create_endpoint("h", None).unwrap();
        c.host_mem.mark();
        c.host
            .send_raw(hep, ep, b"hello", Some(Duration::ZERO))
            .unwrap();
        let sent = c.host_mem.take();
        assert!(sent.stores > 0 && sent.lines64 > 0, "{sent:?}");
        c.remote_mem.mark();
        let got = c
            .remote
            .recv_any_with(Some(Duration::ZERO), |m| m.payload.to_vec())
            .unwrap();
        assert_eq!(got, b"hello");
        if std::env::var_os("COUNT_TRACE").is_some() {
            std::eprintln!("{:#x?}", c.remote_mem.log());
        }
        let recv = c.remote_mem.take();
        assert!(recv.chain >= 3, "{recv:?}");
    }

    /// The wrapper keeps the `SharedMemory` contract (the conformance suite).
    #[test]
    fn conforms() {
        let (mem, _) = setup();
        crate::testing::conformance::shared_memory(&mem).unwrap();
    }
}
