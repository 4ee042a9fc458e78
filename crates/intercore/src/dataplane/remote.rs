//! The remote side of the handoff protocol (`no_std`, no allocation).

use super::{CacheOps, DataWindows, Fault, FaultKind, line_span};
use crate::rpmsg::{Channel, MessageIo};
use crate::shm::OwnedRange;
use crate::{DevAddr, Error, Result};
use intercore_wire::dataplane::{
    DP_BAD_REQUEST, DP_COMPLETE, DP_ENTRY_SIZE, DP_FAULT, DP_HDR_SIZE, DP_OK, DP_SUBMIT,
    DpComplete, DpHdr, DpSubmit, dp_entries_per_message, dp_entry, dp_parse,
};
use intercore_wire::{Le16, Le32};
use zerocopy::IntoBytes;

/// Most entries in one data-plane message: the host never batches more per submit
/// message, and the remote queues at most this many completions between two flushes.
///
/// A protocol bound, not a buffer size: how many entries a message carries is decided by
/// the transport's maximum payload ([`dp_entries_per_message`]: 15 with Linux's 512-byte
/// buffers, 64 from 2056 bytes of payload on). It exists because the remote has no
/// allocator: its completion queue is an array inside [`DpRemote`] — `8 + 64 × 32` =
/// 2056 bytes, in the firmware's static data or wherever it places the `DpRemote`, and
/// never on the stack (completion messages are built in place in that array) — and it
/// must hold the completions of one whole submit message, since a submit message is
/// processed in one go inside the bus's receive callback, where no send can happen.
pub const MAX_DP_BATCH: usize = 64;

/// The completion queue's bytes: room for a header in front of every run of entries sent
/// as one message (see [`DpRemote::flush`]).
const OUT_BYTES: usize = DP_HDR_SIZE + MAX_DP_BATCH * DP_ENTRY_SIZE;

// A message header must fit in the entry it overwrites in place (`DpRemote::flush`).
const _: () = assert!(DP_HDR_SIZE <= DP_ENTRY_SIZE);

/// Counters of the remote's data plane.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DpRemoteStats {
    /// Jobs completed with `DP_OK`.
    pub done: u64,
    /// Jobs refused because an access faulted.
    pub faults: u64,
    /// Jobs refused as invalid, and malformed submit messages.
    pub bad: u64,
}

/// One submitted buffer, while the remote works on it. Every access goes through the
/// windows (the IOMMU) and the cache maintenance the protocol needs: the input is
/// invalidated before it is read, what is written is cleaned at completion.
pub struct Job<'a, C: CacheOps, W: DataWindows> {
    cache: &'a C,
    windows: &'a W,
    sub: DpSubmit,
    written: Option<(usize, usize)>,
    input: Option<OwnedRange>,
    output: Option<OwnedRange>,
}

impl<C: CacheOps, W: DataWindows> Job<'_, C, W> {
    /// The operation the host asked for (`DP_OP_*`).
    pub fn op(&self) -> u32 {
        self.sub.op.get()
    }
    /// Bytes of input.
    pub fn len(&self) -> usize {
        self.sub.len.get() as usize
    }
    /// Whether the input is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Bytes the job may touch.
    pub fn cap(&self) -> usize {
        self.sub.cap.get() as usize
    }
    /// The host's buffer id.
    pub fn buf(&self) -> u32 {
        self.sub.buf.get()
    }

    fn window(&self, at: usize, n: usize, write: bool) -> Result<usize, Fault> {
        let da = DevAddr(self.sub.da.get().wrapping_add(at as u64));
        if at.checked_add(n).is_none_or(|end| end > self.cap()) {
            return Err(Fault {
                da,
                len: n,
                write,
                kind: FaultKind::OutsideBuffer,
            });
        }
        self.windows.translate(da, n, write)
    }

    /// The device address of bytes `at..at+n` of the buffer, for a DMA engine of the remote
    /// to read (`write == false`) or write: checked against the buffer's bounds and the
    /// windows exactly as a CPU access is, but with no cache maintenance and no CPU view
    /// (the engine moves memory, not this core's cache lines).
    pub fn dma_addr(&self, at: usize, n: usize, write: bool) -> Result<DevAddr, Fault> {
        self.window(at, n, write)?;
        Ok(DevAddr(self.sub.da.get().wrapping_add(at as u64)))
    }

    /// The input bytes, read in place after invalidation. On Device memory copy them with
    /// [`crate::copy_from_shared`], never with a `memcpy` (see [`crate::copy_from_shared`]).
    pub fn input(&mut self) -> Result<&[u8], Fault> {
        if self.input.is_none() {
            let n = self.len();
            let off = self.window(0, n, false)?;
            self.output = None;
            let (start, span) = line_span(self.cache.line_size(), off, n);
            self.cache.invalidate(self.buf(), start, span);
            self.cache.cpu_access(self.buf(), off, n, false);
            // The buffer is in flight to us: the host does not touch it until we complete.
            self.input = OwnedRange::claim_cpu(self.cache, off, n);
        }
        match &self.input {
            Some(r) => Ok(r.cpu_bytes(self.cache)),
            None => Err(Fault {
                da: DevAddr(self.sub.da.get()),
                len: self.len(),
                write: false,
                kind: FaultKind::Unmapped,
            }),
        }
    }

    /// Bytes `at..at+n` of the buffer to write in place; cleaned at completion. On Device
    /// memory fill them with [`crate::copy_to_shared`] or [`crate::fill_shared`], never with
    /// `copy_from_slice`/`fill` (`memcpy`/`memset`).
    pub fn output(&mut self, at: usize, n: usize) -> Result<&mut [u8], Fault> {
        let off = self.window(at, n, true)?;
        self.input = None;
        self.cache.cpu_access(self.buf(), off, n, true);
        self.written = Some(match self.written {
            None => (off, off + n),
            Some((s, e)) => (s.min(off), e.max(off + n)),
        });
        // In flight to us, as for `input`; the previous view (if any) was dropped above, so
        // this is the only one.
        self.output = OwnedRange::claim_cpu(self.cache, off, n);
        match &mut self.output {
            Some(r) => Ok(r.cpu_bytes_mut(self.cache)),
            None => Err(Fault {
                da: DevAddr(self.sub.da.get()),
                len: n,
                write: true,
                kind: FaultKind::Unmapped,
            }),
        }
    }
}

/// The remote's data plane: turns submit messages into jobs and batches completions, over
/// any [`MessageIo`] ([`RemoteBus`](crate::rpmsg::RemoteBus), or another message pipe).
/// Serving one submitted buffer (the host part, hidden here, is on
/// [`DpHost`](super::DpHost)):
///
/// ```
/// # use std::time::Duration;
/// # use intercore::dataplane::{Coherent, DpHost, DpRemote, Pool, PoolConfig};
/// # use intercore::rpmsg::{layout::CarveoutSpec, HostConfig, RPMSG_ADDR_ANY};
/// # use intercore::testing::Carveout;
/// # use intercore::wire::dataplane::{DP_OK, DP_OP_CRC32C, DP_SERVICE};
/// # use intercore::{crc32c, DevAddr, LinearMap, WaitMode};
/// # let t = Some(Duration::from_secs(5));
/// # let spec = CarveoutSpec { vring_num: 16, buf_size: 512, event_idx: false, da_base: 0xA000_0000 };
/// # let pool_cfg = PoolConfig { classes: vec![(4096, 4)], align: 4096 };
/// # let c = Carveout::with_pool_area(spec, pool_cfg.region_len());
/// # let (mut host, mut remote) = c.connect::<8>(HostConfig::default(), WaitMode::Event)?;
/// # // Both cores see the pool at device address 0xC000_0000 (the remote's window onto it).
/// # let iova = DevAddr(0xC000_0000);
/// # let window = LinearMap { base: iova, offset: c.pool.0, len: c.pool.1 };
/// # // The host: a pool, a channel to the remote's data-plane service, one buffer submitted.
/// # let service = remote.open(DP_SERVICE, RPMSG_ADDR_ANY)?;
/// # let pool = Pool::new(Coherent::new(c.mem.clone()), c.pool.0, iova, &pool_cfg)?;
/// # let ch = host.connect(DP_SERVICE, t)?;
/// # let mut dp = DpHost::new(pool, ch, host.max_payload())?;
/// # let mut buf = dp.alloc(4096).unwrap();
/// # buf[..100].fill(7);
/// # dp.submit(&mut host, buf, 100, DP_OP_CRC32C)?;
/// # dp.flush(&mut host)?;
/// // The remote: computes the CRC32C of the input in place, right after it.
/// let mut worker = DpRemote::new(Coherent::new(c.mem.clone()), window);
/// remote.recv_with(&service, t, |m| {
///     worker.process(service.local, m.src, m.payload, |job| {
///         let crc = crc32c(job.input().map_err(|_| 1u32)?);
///         let n = job.len();
///         job.output(n, 4).map_err(|_| 1u32)?.copy_from_slice(&crc.to_le_bytes());
///         Ok(n + 4)
///     })
/// })?;
/// worker.flush(&mut remote, t)?;
/// // Back on the host: the same memory, with the result written in place.
/// let done = dp.wait_complete(&mut host, t)?;
/// assert_eq!(done.status(), DP_OK);
/// assert_eq!(done[100..104], crc32c(&[7; 100]).to_le_bytes());
/// # Ok::<(), intercore::Error>(())
/// ```
pub struct DpRemote<C: CacheOps, W: DataWindows> {
    cache: C,
    windows: W,
    /// Queued completions: entry `i` at `DP_HDR_SIZE + i * DP_ENTRY_SIZE`, so that each
    /// message's header is written in place just before its first entry.
    out: [u8; OUT_BYTES],
    n_out: usize,
    /// Completions of `out` already sent (a flush that failed part way resumes here).
    sent: usize,
    reply_to: Option<Channel>,
    stats: DpRemoteStats,
}

impl<C: CacheOps, W: DataWindows> DpRemote<C, W> {
    /// A data plane over `cache` (the pool region as this core sees it) and `windows`.
    pub fn new(cache: C, windows: W) -> Self {
        Self {
            cache,
            windows,
            out: [0; OUT_BYTES],
            n_out: 0,
            sent: 0,
            reply_to: None,
            stats: DpRemoteStats::default(),
        }
    }
    /// Counters.
    pub fn stats(&self) -> DpRemoteStats {
        self.stats
    }
    /// The cache maintenance in use.
    pub fn cache(&self) -> &C {
        &self.cache
    }

    /// Runs `work` on every buffer of a submit message that arrived on our endpoint `ep`
    /// from `src`. `work` returns the output length (`DP_OK`) or a status. Completions are
    /// queued for [`Self::flush`]. A malformed message is counted and dropped. `payload` is
    /// parsed in place with unaligned loads: if it is a view of Device memory, copy it out
    /// first with [`crate::copy_from_shared`].
    pub fn process(
        &mut self,
        ep: u32,
        src: u32,
        payload: &[u8],
        mut work: impl FnMut(&mut Job<'_, C, W>) -> Result<usize, u32>,
    ) {
        let Ok(entries) = dp_parse(payload, DP_SUBMIT) else {
            self.stats.bad += 1;
            return;
        };
        self.reply_to = Some(Channel {
            local: ep,
            remote: src,
        });
        for i in 0..entries.len() / DP_ENTRY_SIZE {
            let Ok(sub) = dp_entry::<DpSubmit>(entries, i) else {
                break;
            };
            if self.n_out == MAX_DP_BATCH {
                self.stats.bad += 1;
                break;
            }
            let mut job = Job {
                cache: &self.cache,
                windows: &self.windows,
                sub,
                written: None,
                input: None,
                output: None,
            };
            let (status, len) = if job.len() > job.cap() {
                (DP_BAD_REQUEST, 0)
            } else {
                match work(&mut job) {
                    Ok(n) if n <= job.cap() => (DP_OK, n),
                    Ok(_) => (DP_BAD_REQUEST, 0),
                    Err(s) => (s, 0),
                }
            };
            if let Some((s, e)) = job.written {
                let (start, span) = line_span(self.cache.line_size(), s, e - s);
                self.cache.clean(job.buf(), start, span);
                self.cache.handoff(job.buf(), s, e - s);
            }
            match status {
                DP_OK => self.stats.done += 1,
                DP_FAULT => self.stats.faults += 1,
                _ => self.stats.bad += 1,
            }
            let c = DpComplete {
                seq: sub.seq,
                da: sub.da,
                buf: sub.buf,
                len: Le32::new(len as u32),
                status: Le32::new(status),
                reserved: Le32::new(0),
            };
            let at = DP_HDR_SIZE + self.n_out * DP_ENTRY_SIZE;
            self.out[at..at + DP_ENTRY_SIZE].copy_from_slice(c.as_bytes());
            self.n_out += 1;
        }
    }

    /// Receives one message on `ch` into `scratch` (waiting up to `timeout`) and
    /// [`Self::process`]es it: the copying counterpart of a firmware's zero-copy receive,
    /// for a remote whose transport hands messages out by copy (a Linux process serving
    /// `/dev/rpmsgM`'s other end, a test's fake kernel). `scratch` should hold
    /// [`MessageIo::max_payload`] bytes; a longer message is counted as malformed.
    pub fn recv_process<T: MessageIo + ?Sized>(
        &mut self,
        bus: &mut T,
        ch: &Channel,
        scratch: &mut [u8],
        timeout: Option<core::time::Duration>,
        work: impl FnMut(&mut Job<'_, C, W>) -> Result<usize, u32>,
    ) -> Result<()> {
        match bus.recv_from(ch, scratch, timeout) {
            Ok((src, n)) => {
                self.process(ch.local, src.unwrap_or(ch.remote), &scratch[..n], work);
                Ok(())
            }
            Err(Error::Truncated { .. }) => {
                self.stats.bad += 1;
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Sends the queued completions to the host, as many per message as the transport's
    /// maximum payload holds ([`MessageIo::max_payload`], at most [`MAX_DP_BATCH`]),
    /// waiting up to `timeout` for each message's room. Each message is built in place in
    /// the queue (its header written over the tail of the previous, already sent, message),
    /// so a flush copies nothing and uses no stack buffer. A host buffer smaller than the
    /// maximum payload (`MessageTooLarge` naming its room) is met with smaller messages. A
    /// flush that fails part way keeps what is unsent for the next one.
    pub fn flush<T: MessageIo + ?Sized>(
        &mut self,
        bus: &mut T,
        timeout: Option<core::time::Duration>,
    ) -> Result<()> {
        let Some(ch) = self.reply_to else {
            return Ok(());
        };
        let mut per_msg = dp_entries_per_message(bus.max_payload()).min(MAX_DP_BATCH);
        while self.sent < self.n_out {
            if per_msg == 0 {
                return Err(Error::Config(
                    "rpmsg payload too small for a data-plane entry",
                ));
            }
            let n = (self.n_out - self.sent).min(per_msg);
            // The header goes in the DP_HDR_SIZE bytes before entry `sent`: the reserved
            // space in front of entry 0, else the tail of an entry already sent.
            let at = self.sent * DP_ENTRY_SIZE;
            let hdr = DpHdr {
                kind: Le16::new(DP_COMPLETE),
                count: Le16::new(n as u16),
                reserved: Le32::new(0),
            };
            self.out[at..at + DP_HDR_SIZE].copy_from_slice(hdr.as_bytes());
            let msg = &self.out[at..at + DP_HDR_SIZE + n * DP_ENTRY_SIZE];
            match bus.send(&ch, msg, timeout) {
                Ok(()) => self.sent += n,
                Err(Error::MessageTooLarge { max, .. })
                    if dp_entries_per_message(max) < per_msg =>
                {
                    per_msg = dp_entries_per_message(max);
                }
                Err(e) => return Err(e),
            }
        }
        self.n_out = 0;
        self.sent = 0;
        Ok(())
    }
}
