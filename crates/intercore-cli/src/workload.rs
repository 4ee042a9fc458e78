//! The one workload every command drives: a sequence-dependent pattern ([`fill`]), the
//! data-plane CRC32C check ([`Checker`]: fill a buffer, submit it, check the CRC the remote
//! wrote in place), latency statistics through hdrhistogram ([`Recorder`], [`Lat`]), the
//! message-size generator ([`Rng`]) and the one progress line ([`Progress`]). Used by
//! `demo`, `bench`, `sim selftest`, `kernel-bulk` and the link owner's jobs. Generic over
//! the message transport ([`MessageIo`]): the same code drives `HostBus` and the kernel's
//! `/dev/rpmsg` (`KernelRpmsg`).

use hdrhistogram::Histogram;
use intercore::crc32c;
use intercore::dataplane::{CacheOps, Completed, DpHost, WritableBuf};
use intercore::rpmsg::MessageIo;
use intercore::wire::dataplane::{DP_OK, DP_OP_CRC32C};
use serde::Serialize;
use std::collections::HashMap;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

/// Fills `buf` with a pattern that depends on `seq` (xorshift64, 8 bytes a step), so a
/// message or buffer that comes back altered, or another's, is told apart.
pub fn fill(buf: &mut [u8], seq: u64) {
    let mut x = seq.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for chunk in buf.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let v = x.to_le_bytes();
        chunk.copy_from_slice(&v[..chunk.len()]);
    }
}

/// [`fill`], returning the CRC32C of what was written.
pub fn fill_crc(buf: &mut [u8], seq: u64) -> u32 {
    fill(buf, seq);
    crc32c(buf)
}

/// A small deterministic generator (xorshift64*), so a failing run can be repeated by seed.
pub struct Rng(u64);

impl Rng {
    /// Seeds the generator (0 is replaced by a fixed odd constant).
    pub fn new(seed: u64) -> Self {
        Self(if seed == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            seed
        })
    }
    /// Next value.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// Latency percentiles of a set of samples, in nanoseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Lat {
    /// Samples recorded.
    pub samples: u64,
    /// Median.
    pub p50: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Smallest.
    pub min: u64,
    /// Largest.
    pub max: u64,
    /// Mean.
    pub mean: f64,
}

/// Records latencies in nanoseconds, 1 ns to 1 hour, 3 significant digits (hdrhistogram;
/// a value above an hour counts as an hour).
pub struct Recorder {
    h: Histogram<u64>,
}

impl Default for Recorder {
    fn default() -> Self {
        Self::new()
    }
}

impl Recorder {
    /// An empty recorder.
    pub fn new() -> Self {
        Self {
            h: Histogram::new_with_bounds(1, 3_600_000_000_000, 3).expect("valid bounds"),
        }
    }
    /// Records one latency.
    pub fn record(&mut self, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.h.saturating_record(ns.max(1));
    }
    /// Number of samples recorded.
    pub fn count(&self) -> u64 {
        self.h.len()
    }
    /// The percentiles (all 0 when nothing was recorded).
    pub fn lat(&self) -> Lat {
        if self.h.is_empty() {
            return Lat::default();
        }
        Lat {
            samples: self.h.len(),
            p50: self.h.value_at_quantile(0.50),
            p99: self.h.value_at_quantile(0.99),
            p999: self.h.value_at_quantile(0.999),
            min: self.h.min(),
            max: self.h.max(),
            mean: self.h.mean(),
        }
    }
}

/// The one-line progress indicator on stderr, shown only when stderr is a terminal (and
/// not under `--json`): a bar of steps ([`Self::step`]) or free text redrawn at most every
/// 100 ms ([`Self::show`]).
pub struct Progress {
    on: bool,
    last: Instant,
    total: usize,
    done: usize,
}

impl Progress {
    /// A progress line of `total` steps (0 for free text only).
    pub fn new(json: bool, total: usize) -> Self {
        let now = Instant::now();
        Self {
            on: !json && std::io::stderr().is_terminal(),
            // The first `show` draws at once.
            last: now.checked_sub(Duration::from_millis(100)).unwrap_or(now),
            total,
            done: 0,
        }
    }
    /// Whether anything is drawn.
    pub fn on(&self) -> bool {
        self.on
    }
    /// The next step, named `what`, drawn with a bar of the steps done.
    pub fn step(&mut self, what: &str) {
        if self.on {
            let w = 30;
            let filled = (self.done * w / self.total.max(1)).min(w);
            diag!(
                "\r[{}{}] {:<60}",
                "#".repeat(filled),
                " ".repeat(w - filled),
                what
            );
        }
        self.done += 1;
    }
    /// Free text, redrawn at most every 100 ms (`what` is called only then).
    pub fn show(&mut self, what: impl FnOnce() -> String) {
        if self.on && self.last.elapsed() >= Duration::from_millis(100) {
            self.last = Instant::now();
            diag!("\r{:<100}", what());
        }
    }
    /// Clears the line.
    pub fn clear(&self) {
        if self.on {
            diag!("\r{:<100}\r", "");
        }
    }
}

/// What one completed buffer turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The CRC the remote wrote matches.
    Good,
    /// Status not OK (e.g. an IOMMU fault).
    Failed(u32),
    /// Wrong length or wrong CRC: the data the remote saw, or the result we read, is not
    /// what was written.
    Corrupted,
}

/// Tracks what was submitted so completions can be checked.
#[derive(Default)]
pub struct Checker {
    expected: HashMap<u64, (usize, u32)>,
}

impl Checker {
    /// Fills `buf` (input `len` bytes) and submits it for CRC32C.
    pub fn submit<C: CacheOps, T: MessageIo + ?Sized>(
        &mut self,
        dp: &mut DpHost<C>,
        bus: &mut T,
        buf: WritableBuf<C>,
        len: usize,
        seq_hint: u64,
    ) -> intercore::Result<u64> {
        self.submit_with(dp, bus, buf, len, seq_hint, |_| {})
    }

    /// As [`Self::submit`], letting `tamper` touch the whole buffer after the fill (the
    /// self-test uses it to write where it must not).
    pub fn submit_with<C: CacheOps, T: MessageIo + ?Sized>(
        &mut self,
        dp: &mut DpHost<C>,
        bus: &mut T,
        mut buf: WritableBuf<C>,
        len: usize,
        seq_hint: u64,
        tamper: impl FnOnce(&mut [u8]),
    ) -> intercore::Result<u64> {
        let crc = fill_crc(&mut buf[..len], seq_hint);
        tamper(&mut buf);
        let t = dp.submit(bus, buf, len, DP_OP_CRC32C)?;
        self.expected.insert(t.seq, (len, crc));
        Ok(t.seq)
    }

    /// Checks a completed buffer.
    pub fn check<C: CacheOps>(&mut self, c: &Completed<C>) -> Outcome {
        let Some((len, crc)) = self.expected.remove(&c.seq()) else {
            return Outcome::Corrupted;
        };
        if c.status() != DP_OK {
            return Outcome::Failed(c.status());
        }
        if c.len() != len + 4 || c[len..len + 4] != crc.to_le_bytes() {
            return Outcome::Corrupted;
        }
        Outcome::Good
    }
}

/// Every free buffer of exactly `size` bytes the data plane's pool hands out (allocation
/// stops at the first buffer of another size, which goes back to the pool).
pub fn alloc_all<C: CacheOps>(dp: &mut DpHost<C>, size: usize) -> Vec<WritableBuf<C>> {
    let mut free = Vec::new();
    while let Some(b) = dp.alloc(size) {
        if b.cap() != size {
            break;
        }
        free.push(b);
    }
    free
}

/// Bytes per buffer used for input when the buffer holds `cap`: the CRC goes in the last
/// cache line, on its own, so the host never shares a line with what the remote writes.
pub fn input_len(cap: usize) -> usize {
    cap - 64
}

/// Default wait for one completion.
pub const COMPLETION_TIMEOUT: Option<Duration> = Some(Duration::from_secs(10));
