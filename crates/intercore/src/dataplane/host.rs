//! The host side of the handoff protocol.

use super::pool::{Completed, Owner, Pool, WritableBuf};
use super::{CacheOps, MAX_DP_BATCH, line_span};
use crate::error::protocol;
use crate::rpmsg::HostBus;
use crate::{Doorbell, Error, Result, SharedMemory};
use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::time::Duration;
use intercore_wire::dataplane::{
    DP_COMPLETE, DP_ENTRY_SIZE, DP_HDR_SIZE, DP_SUBMIT, DpComplete, DpHdr, DpSubmit,
    dp_entries_per_message, dp_entry, dp_parse,
};
use intercore_wire::{Le16, Le32, Le64};
use zerocopy::IntoBytes;

/// The receipt for a submitted buffer. It gives no access to the bytes: while the remote
/// owns a buffer, the CPU cannot touch it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ticket {
    /// Sequence number of the submission.
    pub seq: u64,
    /// Buffer id.
    pub buf: u32,
}

/// Counters of the host's data plane.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DpHostStats {
    /// Buffers submitted.
    pub submitted: u64,
    /// Buffers completed.
    pub completed: u64,
    /// Completions with a status other than `DP_OK`.
    pub failed: u64,
    /// rpmsg messages sent (each carries a batch).
    pub messages: u64,
}

/// Deliberate bugs, for showing that the coherency sanitizer catches them. Never set
/// outside such a test.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultInjection {
    /// Do not clean written lines before handing a buffer to the remote.
    pub skip_clean: bool,
    /// Do not invalidate before reading a completed buffer.
    pub skip_invalidate: bool,
}

#[derive(Debug, Clone, Copy)]
struct Flight {
    seq: u64,
}

/// The host's data plane on one rpmsg endpoint, talking to the remote's `intercore-dp`
/// service.
pub struct DpHost<C: CacheOps> {
    pool: Pool<C>,
    ep: u32,
    remote: u32,
    next_seq: u64,
    flights: Vec<Option<Flight>>,
    batch: Vec<DpSubmit>,
    per_msg: usize,
    done: VecDeque<Completed<C>>,
    stats: DpHostStats,
    inject: FaultInjection,
}

impl<C: CacheOps> DpHost<C> {
    /// A data plane from local endpoint `ep` to the remote service at `remote`, for a bus
    /// whose messages carry `max_payload` bytes.
    pub fn new(pool: Pool<C>, ep: u32, remote: u32, max_payload: usize) -> Result<Self> {
        let per_msg = dp_entries_per_message(max_payload).min(MAX_DP_BATCH);
        if per_msg == 0 {
            return Err(Error::Config(
                "rpmsg payload too small for a data-plane entry",
            ));
        }
        let n = pool.len();
        Ok(Self {
            pool,
            ep,
            remote,
            next_seq: 1,
            flights: alloc::vec![None; n],
            batch: Vec::with_capacity(per_msg),
            per_msg,
            done: VecDeque::new(),
            stats: DpHostStats::default(),
            inject: FaultInjection::default(),
        })
    }

    /// The pool.
    pub fn pool(&self) -> &Pool<C> {
        &self.pool
    }
    /// A free buffer of at least `len` bytes.
    pub fn alloc(&self, len: usize) -> Option<WritableBuf<C>> {
        self.pool.alloc(len)
    }
    /// Counters.
    pub fn stats(&self) -> DpHostStats {
        self.stats
    }
    /// Buffers at the remote now.
    pub fn in_flight(&self) -> usize {
        self.flights.iter().filter(|f| f.is_some()).count()
    }
    /// Buffers submitted and not yet taken back by the application: at the remote, or
    /// completed and waiting in [`Self::wait_complete`]'s queue.
    pub fn outstanding(&self) -> usize {
        self.in_flight() + self.done.len()
    }
    /// Buffers per submit message.
    pub fn batch_size(&self) -> usize {
        self.per_msg
    }
    /// Sets deliberate bugs (sanitizer self-test only).
    pub fn set_fault_injection(&mut self, f: FaultInjection) {
        self.inject = f;
    }

    /// Hands `buf` to the remote for operation `op` on its first `len` bytes: cleans
    /// exactly those bytes (rounded out to cache lines), marks it in flight, and queues the
    /// submission; the batch goes out when full or at [`Self::flush`].
    pub fn submit<M: SharedMemory, D: Doorbell>(
        &mut self,
        bus: &mut HostBus<M, D>,
        mut buf: WritableBuf<C>,
        len: usize,
        op: u32,
    ) -> Result<Ticket> {
        if !alloc::sync::Arc::ptr_eq(&buf.shared, &self.pool.shared) {
            return Err(Error::Config("buffer belongs to another pool"));
        }
        let info = *buf.shared.info(buf.id);
        if len > info.cap {
            return Err(Error::MessageTooLarge { len, max: info.cap });
        }
        let cache = &self.pool.shared.cache;
        if !self.inject.skip_clean {
            let (start, n) = line_span(cache.line_size(), info.off, len);
            cache.clean(buf.id, start, n);
        }
        cache.handoff(buf.id, info.off, info.cap);
        buf.live = false;
        let ok = self
            .pool
            .shared
            .transfer(buf.id, Owner::Cpu, Owner::InFlight);
        debug_assert!(ok);
        let seq = self.next_seq;
        self.next_seq += 1;
        self.flights[buf.id as usize] = Some(Flight { seq });
        self.batch.push(DpSubmit {
            seq: Le64::new(seq),
            da: Le64::new(info.da.0),
            len: Le32::new(len as u32),
            cap: Le32::new(info.cap as u32),
            buf: Le32::new(buf.id),
            op: Le32::new(op),
        });
        self.stats.submitted += 1;
        let ticket = Ticket { seq, buf: buf.id };
        drop(buf);
        if self.batch.len() == self.per_msg {
            self.flush(bus)?;
        }
        Ok(ticket)
    }

    /// Sends the queued submissions (one rpmsg message, one doorbell at most). Blocks up to
    /// the bus timeout when the remote holds every transmit buffer (backpressure).
    pub fn flush<M: SharedMemory, D: Doorbell>(&mut self, bus: &mut HostBus<M, D>) -> Result<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let mut msg = [0u8; DP_HDR_SIZE + MAX_DP_BATCH * DP_ENTRY_SIZE];
        let n = self.batch.len();
        let hdr = DpHdr {
            kind: Le16::new(DP_SUBMIT),
            count: Le16::new(n as u16),
            reserved: Le32::new(0),
        };
        msg[..DP_HDR_SIZE].copy_from_slice(hdr.as_bytes());
        for (i, s) in self.batch.iter().enumerate() {
            let at = DP_HDR_SIZE + i * DP_ENTRY_SIZE;
            msg[at..at + DP_ENTRY_SIZE].copy_from_slice(s.as_bytes());
        }
        bus.send(
            self.ep,
            self.remote,
            &msg[..DP_HDR_SIZE + n * DP_ENTRY_SIZE],
        )?;
        self.batch.clear();
        self.stats.messages += 1;
        Ok(())
    }

    /// Checks one completion message against our own records — buffer id in range and in
    /// flight with that sequence number, device address equal to the buffer's, length
    /// within its capacity — then invalidates the written bytes and files the buffer as
    /// completed. Anything else is a protocol error.
    fn absorb(&mut self, payload: &[u8]) -> Result<()> {
        let entries = dp_parse(payload, DP_COMPLETE)?;
        for i in 0..entries.len() / DP_ENTRY_SIZE {
            let c: DpComplete = dp_entry(entries, i)?;
            let id = c.buf.get();
            let info = self.pool.info(id).ok_or(protocol(
                "completion names a buffer outside the pool",
                id as u64,
            ))?;
            match self.flights[id as usize] {
                Some(f) if f.seq == c.seq.get() => {}
                _ => {
                    return Err(protocol(
                        "completion for a buffer not in flight with that sequence",
                        c.seq.get(),
                    ));
                }
            }
            if c.da.get() != info.da.0 {
                return Err(protocol(
                    "completion device address differs from the buffer's",
                    c.da.get(),
                ));
            }
            let len = c.len.get() as usize;
            if len > info.cap {
                return Err(protocol("completion length beyond the buffer", len as u64));
            }
            self.flights[id as usize] = None;
            let shared = &self.pool.shared;
            let ok = shared.transfer(id, Owner::InFlight, Owner::Completed);
            debug_assert!(ok);
            if !self.inject.skip_invalidate {
                let (start, n) = line_span(shared.cache.line_size(), info.off, len);
                shared.cache.invalidate(id, start, n);
            }
            self.stats.completed += 1;
            if c.status.get() != intercore_wire::dataplane::DP_OK {
                self.stats.failed += 1;
            }
            self.done.push_back(Completed::new(
                alloc::sync::Arc::clone(shared),
                id,
                len,
                c.status.get(),
                c.seq.get(),
            ));
        }
        Ok(())
    }

    /// Takes every completion message that has arrived, without blocking.
    pub fn poll<M: SharedMemory, D: Doorbell>(&mut self, bus: &mut HostBus<M, D>) -> Result<usize> {
        let mut n = 0;
        loop {
            match bus.try_recv_buf(self.ep) {
                Ok(rx) => {
                    self.absorb(&rx)?;
                    n += 1;
                }
                Err(Error::WouldBlock) => return Ok(n),
                Err(e) => return Err(e),
            }
        }
    }

    /// A completed buffer, if one is there (non-blocking; flushes first).
    pub fn try_complete<M: SharedMemory, D: Doorbell>(
        &mut self,
        bus: &mut HostBus<M, D>,
    ) -> Result<Option<Completed<C>>> {
        self.flush(bus)?;
        if self.done.is_empty() {
            self.poll(bus)?;
        }
        Ok(self.done.pop_front())
    }

    /// Waits up to `timeout` for the next completed buffer (flushes first). `Timeout` if
    /// the remote returns nothing in time; a dead remote is `PeerGone`.
    pub fn wait_complete<M: SharedMemory, D: Doorbell>(
        &mut self,
        bus: &mut HostBus<M, D>,
        timeout: Option<Duration>,
    ) -> Result<Completed<C>> {
        self.flush(bus)?;
        loop {
            if let Some(c) = self.done.pop_front() {
                return Ok(c);
            }
            if self.in_flight() == 0 {
                return Err(Error::NotReady("no buffer in flight"));
            }
            let rx = bus.recv_buf_timeout(self.ep, timeout)?;
            self.absorb(&rx)?;
        }
    }
}
