//! The data-plane workload shared by `demo`, `sim selftest` and `kernel-bulk`: fill a
//! buffer with a sequence-dependent pattern, submit it for CRC32C, and check the result
//! the remote wrote in place. Generic over the message transport ([`MessageIo`]): the
//! same code drives `HostBus` and the kernel's `/dev/rpmsg` (`KernelRpmsg`).

use intercore::crc32c;
use intercore::dataplane::{CacheOps, Completed, DpHost, WritableBuf};
use intercore::rpmsg::MessageIo;
use intercore::wire::dataplane::{DP_OK, DP_OP_CRC32C};
use std::collections::HashMap;
use std::time::Duration;

/// Fills `buf[..len]` with a pattern that depends on `seq` and returns its CRC32C.
pub fn fill(buf: &mut [u8], seq: u64) -> u32 {
    let mut x = seq.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for chunk in buf.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let v = x.to_le_bytes();
        chunk.copy_from_slice(&v[..chunk.len()]);
    }
    crc32c(buf)
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
        let crc = fill(&mut buf[..len], seq_hint);
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
