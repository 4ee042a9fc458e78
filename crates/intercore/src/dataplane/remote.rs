//! The remote side of the handoff protocol (`no_std`, no allocation).

use super::{CacheOps, DataWindows, Fault, FaultKind, line_span};
use crate::rpmsg::RemoteBus;
use crate::shm::OwnedRange;
use crate::{DevAddr, Doorbell, Result, SharedMemory};
use intercore_wire::dataplane::{
    DP_BAD_REQUEST, DP_COMPLETE, DP_ENTRY_SIZE, DP_FAULT, DP_HDR_SIZE, DP_OK, DP_SUBMIT,
    DpComplete, DpHdr, DpSubmit, dp_entry, dp_parse,
};
use intercore_wire::{Le16, Le32};
use zerocopy::IntoBytes;

/// Most entries in one data-plane message (the host never batches more).
pub const MAX_DP_BATCH: usize = 64;

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

/// The remote's data plane: turns submit messages into jobs and batches completions.
pub struct DpRemote<C: CacheOps, W: DataWindows> {
    cache: C,
    windows: W,
    out: [DpComplete; MAX_DP_BATCH],
    n_out: usize,
    reply_to: Option<(u32, u32)>,
    stats: DpRemoteStats,
}

impl<C: CacheOps, W: DataWindows> DpRemote<C, W> {
    /// A data plane over `cache` (the pool region as this core sees it) and `windows`.
    pub fn new(cache: C, windows: W) -> Self {
        Self {
            cache,
            windows,
            out: [DpComplete::default(); MAX_DP_BATCH],
            n_out: 0,
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
        self.reply_to = Some((ep, src));
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
            self.out[self.n_out] = DpComplete {
                seq: sub.seq,
                da: sub.da,
                buf: sub.buf,
                len: Le32::new(len as u32),
                status: Le32::new(status),
                reserved: Le32::new(0),
            };
            self.n_out += 1;
        }
    }

    /// Sends the queued completions to the host (one message per batch that fits a host
    /// buffer), waiting up to `timeout` for host buffers.
    pub fn flush<M: SharedMemory, D: Doorbell, const N: usize>(
        &mut self,
        bus: &mut RemoteBus<M, D, N>,
        timeout: Option<core::time::Duration>,
    ) -> Result<()> {
        let Some((ep, host)) = self.reply_to else {
            return Ok(());
        };
        let mut sent = 0;
        while sent < self.n_out {
            let n = (self.n_out - sent).min(15);
            let mut msg = [0u8; DP_HDR_SIZE + 15 * DP_ENTRY_SIZE];
            let hdr = DpHdr {
                kind: Le16::new(DP_COMPLETE),
                count: Le16::new(n as u16),
                reserved: Le32::new(0),
            };
            msg[..DP_HDR_SIZE].copy_from_slice(hdr.as_bytes());
            for (i, c) in self.out[sent..sent + n].iter().enumerate() {
                let at = DP_HDR_SIZE + i * DP_ENTRY_SIZE;
                msg[at..at + DP_ENTRY_SIZE].copy_from_slice(c.as_bytes());
            }
            bus.send(ep, host, &msg[..DP_HDR_SIZE + n * DP_ENTRY_SIZE], timeout)?;
            sent += n;
        }
        self.n_out = 0;
        Ok(())
    }
}
