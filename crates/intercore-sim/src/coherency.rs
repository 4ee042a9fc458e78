//! The coherency sanitizer: a non-coherent, write-back cache model of one simulated core.
//!
//! Each core gets a private cache image of the whole shared "DRAM" (the memfd). The CPU
//! reads and writes the image; DRAM changes only when a line is written back — by a clean,
//! by a clean+invalidate (ARM64 userspace's only invalidate), or by a seeded random
//! eviction at an arbitrary hook. For every line the model keeps the DRAM contents it last
//! saw (the fill snapshot), so it knows, without instrumenting the CPU's writes, whether a
//! line is dirty (image ≠ snapshot) and whether the peer changed DRAM since (DRAM ≠
//! snapshot). That is enough to catch, with buffer id and byte range:
//!
//! * **missing clean** — a buffer is handed to the peer with dirty lines in it (the peer
//!   reads old data);
//! * **missing invalidate** — the CPU reads a line it holds clean while DRAM has newer data
//!   from the peer (we read stale data);
//! * **dirty eviction over peer data** — a dirty line is written back over bytes the peer
//!   wrote since we filled it.
//!
//! The rpmsg rings and buffers are not modelled: like Linux's remoteproc, which maps them
//! uncached, the simulator keeps them coherent. The model is for the data plane.
//!
//! `unsafe` appears only to implement the `CacheOps` contract (no unsafe blocks).
#![allow(unsafe_code)]

use crate::ctrl::Ctrl;
use intercore::SharedMemory;
use intercore::dataplane::CacheOps;
use intercore_linux::{MemfdRegion, PrivateRegion};
use std::fmt;
use std::sync::{Arc, Mutex};

/// Line size of the model.
pub const LINE: usize = 64;

/// Which core a report comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The application core.
    Host,
    /// The remote core.
    Remote,
}

/// What the sanitizer caught.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detection {
    /// Dirty lines were handed to the peer: the peer reads old data.
    MissingClean,
    /// The CPU read lines older than what the peer wrote: a missing invalidate.
    StaleRead,
    /// A dirty line was written back over data the peer had written.
    DirtyEvictionOverPeerData,
}

impl Detection {
    fn code(self) -> u32 {
        match self {
            Detection::MissingClean => 1,
            Detection::StaleRead => 2,
            Detection::DirtyEvictionOverPeerData => 3,
        }
    }
    /// From the code used in the shared log.
    pub fn from_code(c: u32) -> Option<Self> {
        match c {
            1 => Some(Detection::MissingClean),
            2 => Some(Detection::StaleRead),
            3 => Some(Detection::DirtyEvictionOverPeerData),
            _ => None,
        }
    }
}

/// One finding: which core, what, which buffer and which bytes of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Report {
    /// The core whose cache misbehaved.
    pub side: Side,
    /// What happened.
    pub kind: Detection,
    /// The pool buffer id.
    pub buf: u32,
    /// First byte, relative to the buffer's start.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let side = match self.side {
            Side::Host => "host",
            Side::Remote => "remote",
        };
        let what = match self.kind {
            Detection::MissingClean => {
                "missing clean: dirty lines handed to the peer, which reads old data"
            }
            Detection::StaleRead => {
                "missing invalidate: CPU read stale lines the peer had overwritten"
            }
            Detection::DirtyEvictionOverPeerData => "dirty line evicted over data the peer wrote",
        };
        write!(
            f,
            "{side}: {what} — buffer {} bytes {:#x}..{:#x}",
            self.buf, self.start, self.end
        )
    }
}

/// How the model evicts on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Eviction {
    /// Seed of the eviction generator (runs are reproducible).
    pub seed: u64,
    /// Chance per hook, in thousandths, that a random line of a buffer the peer owns is
    /// evicted.
    pub per_mille: u32,
}

/// Seed 1, 50 evictions per thousand hooks: what `noncoherent` without parameters means on
/// the command line and `sim-noncoherent` without `seed` and `per_mille` in a board file.
impl Default for Eviction {
    fn default() -> Self {
        Self {
            seed: 1,
            per_mille: 50,
        }
    }
}

struct State {
    valid: Vec<u64>,
    /// Buffer id and buffer start offset last seen for each line (for reports).
    owner: Vec<(u32, u32)>,
    /// Recently handed-off ranges (buffer, offset, length): eviction candidates, since no
    /// CPU view of them exists.
    peer_owned: std::collections::VecDeque<(u32, usize, usize)>,
    rng: u64,
    reports: Vec<Report>,
    evictions: u64,
}

/// One core's cache model over the shared memfd; implements [`CacheOps`].
pub struct SimCache {
    dram: Arc<MemfdRegion>,
    image: PrivateRegion,
    snapshot: PrivateRegion,
    side: Side,
    eviction: Eviction,
    log: Option<Ctrl<MemfdRegion>>,
    state: Mutex<State>,
}

fn line_eq<A: SharedMemory + ?Sized, B: SharedMemory + ?Sized>(a: &A, b: &B, off: usize) -> bool {
    let (mut x, mut y) = ([0u8; LINE], [0u8; LINE]);
    a.read(off, &mut x);
    b.read(off, &mut y);
    x == y
}

fn copy_line<A: SharedMemory + ?Sized, B: SharedMemory + ?Sized>(from: &A, to: &B, off: usize) {
    let mut x = [0u8; LINE];
    from.read(off, &mut x);
    to.write(off, &x);
}

impl SimCache {
    /// A cold cache over `dram` for `side`. Reports of the remote also go to `log` (the
    /// control page) so the host can read them.
    pub fn new(
        dram: Arc<MemfdRegion>,
        side: Side,
        eviction: Eviction,
        log: Option<Ctrl<MemfdRegion>>,
    ) -> std::io::Result<Self> {
        let len = dram.len();
        let lines = len / LINE;
        Ok(Self {
            image: PrivateRegion::new(len)?,
            snapshot: PrivateRegion::new(len)?,
            dram,
            side,
            eviction,
            log,
            state: Mutex::new(State {
                valid: vec![0; lines.div_ceil(64)],
                owner: vec![(u32::MAX, 0); lines],
                peer_owned: Default::default(),
                rng: eviction.seed | 1,
                reports: Vec::new(),
                evictions: 0,
            }),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Everything caught so far on this core.
    pub fn reports(&self) -> Vec<Report> {
        self.lock().reports.clone()
    }

    /// Lines evicted at random so far.
    pub fn evictions(&self) -> u64 {
        self.lock().evictions
    }

    /// Evicts every valid line (writing dirty ones back), as a cache under pressure
    /// eventually does.
    pub fn evict_all(&self) {
        let mut st = self.lock();
        for line in 0..st.owner.len() {
            if is_valid(&st, line) {
                self.evict(&mut st, line);
            }
        }
    }

    fn report(&self, st: &mut State, kind: Detection, line: usize) {
        let (buf, base) = st.owner[line];
        let start = line * LINE - base as usize;
        // Merge with the previous report if it is the same finding on the next line.
        if let Some(last) = st.reports.last_mut() {
            if last.kind == kind && last.buf == buf && last.end == start {
                last.end = start + LINE;
                return;
            }
        }
        let r = Report {
            side: self.side,
            kind,
            buf,
            start,
            end: start + LINE,
        };
        st.reports.push(r);
        if let Some(log) = &self.log {
            log.push_report([kind.code(), buf, start as u32, (start + LINE) as u32]);
        }
    }

    fn fill(&self, st: &mut State, line: usize) {
        let off = line * LINE;
        copy_line(&*self.dram, &self.image, off);
        copy_line(&*self.dram, &self.snapshot, off);
        st.valid[line / 64] |= 1 << (line % 64);
    }

    fn dirty(&self, line: usize) -> bool {
        !line_eq(&self.image, &self.snapshot, line * LINE)
    }

    fn write_back(&self, st: &mut State, line: usize) {
        let off = line * LINE;
        if self.dirty(line) {
            if !line_eq(&*self.dram, &self.snapshot, off) {
                self.report(st, Detection::DirtyEvictionOverPeerData, line);
            }
            copy_line(&self.image, &*self.dram, off);
            copy_line(&self.image, &self.snapshot, off);
        }
    }

    fn evict(&self, st: &mut State, line: usize) {
        self.write_back(st, line);
        st.valid[line / 64] &= !(1 << (line % 64));
    }

    fn lines(&self, st: &mut State, buf: u32, off: usize, len: usize) -> std::ops::Range<usize> {
        let (first, end) = (off / LINE, (off + len).div_ceil(LINE).min(st.owner.len()));
        if buf != u32::MAX {
            let base = st
                .owner
                .get(first)
                .filter(|o| o.0 == buf)
                .map_or(off as u32, |o| o.1.min(off as u32));
            for l in first..end {
                st.owner[l] = (buf, base);
            }
        }
        first..end
    }

    /// At an arbitrary hook: with the configured chance, evicts a random line of a buffer
    /// the peer owns now.
    fn maybe_evict(&self, st: &mut State) {
        if self.eviction.per_mille == 0 || st.peer_owned.is_empty() {
            return;
        }
        st.rng ^= st.rng << 13;
        st.rng ^= st.rng >> 7;
        st.rng ^= st.rng << 17;
        if (st.rng % 1000) as u32 >= self.eviction.per_mille {
            return;
        }
        let (_, off, len) = st.peer_owned[(st.rng >> 10) as usize % st.peer_owned.len()];
        let line = (off + (st.rng >> 20) as usize % len.max(1)) / LINE;
        if is_valid(st, line) {
            st.evictions += 1;
            self.evict(st, line);
        }
    }

    fn forget_peer_owned(st: &mut State, buf: u32) {
        st.peer_owned.retain(|&(b, _, _)| b != buf);
    }
}

fn is_valid(st: &State, line: usize) -> bool {
    st.valid[line / 64] & (1 << (line % 64)) != 0
}

// SAFETY: the CPU view is `image`, a private mapping of exactly `dram.len()` bytes that
// lives as long as `self`, page-aligned; the model itself touches it only through raw
// copies of whole lines of buffers that have no CPU view at that moment (the hooks run
// before a view is made or after it is given up).
unsafe impl CacheOps for SimCache {
    fn line_size(&self) -> usize {
        LINE
    }
    fn region_len(&self) -> usize {
        self.dram.len()
    }
    fn cpu_ptr(&self) -> *mut u8 {
        self.image.as_ptr()
    }

    fn clean(&self, buf: u32, off: usize, len: usize) {
        let mut st = self.lock();
        for line in self.lines(&mut st, buf, off, len) {
            if is_valid(&st, line) {
                self.write_back(&mut st, line);
            }
        }
        self.maybe_evict(&mut st);
    }

    fn invalidate(&self, buf: u32, off: usize, len: usize) {
        let mut st = self.lock();
        Self::forget_peer_owned(&mut st, buf);
        for line in self.lines(&mut st, buf, off, len) {
            if is_valid(&st, line) {
                // ARM64 EL0 has only DC CIVAC: a dirty line is written back first.
                self.evict(&mut st, line);
            }
        }
        self.maybe_evict(&mut st);
    }

    fn cpu_access(&self, buf: u32, off: usize, len: usize, write: bool) {
        let mut st = self.lock();
        Self::forget_peer_owned(&mut st, buf);
        self.maybe_evict(&mut st);
        for line in self.lines(&mut st, buf, off, len) {
            if !is_valid(&st, line) {
                self.fill(&mut st, line);
            } else if !write && !self.dirty(line) && !line_eq(&*self.dram, &self.image, line * LINE)
            {
                self.report(&mut st, Detection::StaleRead, line);
            }
        }
    }

    fn handoff(&self, buf: u32, off: usize, len: usize) {
        let mut st = self.lock();
        for line in self.lines(&mut st, buf, off, len) {
            if is_valid(&st, line) && self.dirty(line) {
                self.report(&mut st, Detection::MissingClean, line);
            }
        }
        st.peer_owned.push_back((buf, off, len));
        if st.peer_owned.len() > 64 {
            st.peer_owned.pop_front();
        }
        self.maybe_evict(&mut st);
    }
}
