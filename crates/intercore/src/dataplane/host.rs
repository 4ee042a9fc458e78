//! The host side of the handoff protocol.

use super::pool::{Completed, Lease, Owner, Pool, WritableBuf};
use super::{CacheOps, MAX_DP_BATCH, line_span};

use crate::rpmsg::{Channel, MessageIo};
use crate::{Error, Result};
use alloc::vec::Vec;
use core::time::Duration;
use intercore_wire::dataplane::{
    DP_COMPLETE, DP_ENTRY_SIZE, DP_HDR_SIZE, DP_SUBMIT, DpComplete, DpHdr, DpSubmit,
    dp_entries_per_message, dp_entry,
};
use intercore_wire::{Le16, Le32, Le64};
use zerocopy::{FromBytes, IntoBytes};

/// A submit batch goes out once it holds this many bytes of work, even short of a full
/// message: batching saves a message per buffer, which matters for small buffers only,
/// while holding back large buffers starves the remote (and with it the pipeline).
pub const FLUSH_BYTES: usize = 64 << 10;

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
    /// Messages on our endpoint from an address other than the data-plane service's
    /// (dropped unread).
    pub foreign: u64,
    /// Completion entries refused (each one also breaks the data plane).
    pub refused: u64,
    /// Completion entries for submissions made before the last [`DpHost::reset`] (their
    /// sequence number is below the reset's fence): ignored, they name buffers that were
    /// reclaimed.
    pub stale: u64,
    /// In-flight buffers taken back by [`DpHost::reclaim`] / [`DpHost::reset`].
    pub reclaimed: u64,
}

struct Flight<C: CacheOps> {
    seq: u64,
    /// The submission has gone out to the remote ([`DpHost::flush`] sent its batch). Until
    /// then the remote cannot know the buffer, so a completion naming it is refused,
    /// however well it guesses the sequence number, id and address.
    sent: bool,
    /// The buffer's claim on the pool, moved here from its `WritableBuf` and on to its
    /// `Completed`.
    lease: Lease<C>,
}

/// The host's data plane on one rpmsg channel, talking to the remote's `intercore-dp`
/// service over any [`MessageIo`]: intercore's `HostBus`, the kernel's `/dev/rpmsg`
/// (`intercore-linux`'s `KernelRpmsg`), or another message pipe. The transport is passed
/// to each call that talks to the remote, so the application keeps it for its other
/// endpoints.
/// A buffer's round trip (the remote part, hidden here, is on [`DpRemote`](super::DpRemote)):
///
/// ```
/// use std::time::Duration;
/// use intercore::dataplane::{Coherent, DpHost, DpRemote, Pool, PoolConfig};
/// use intercore::rpmsg::{layout::CarveoutSpec, HostConfig, RPMSG_ADDR_ANY};
/// use intercore::testing::Carveout;
/// use intercore::wire::dataplane::{DP_OK, DP_OP_CRC32C, DP_SERVICE};
/// use intercore::{crc32c, DevAddr, LinearMap, WaitMode};
/// let t = Some(Duration::from_secs(5));
/// let spec = CarveoutSpec { vring_num: 16, buf_size: 512, event_idx: false, da_base: 0xA000_0000 };
/// let pool_cfg = PoolConfig { classes: vec![(4096, 4)], align: 4096 };
/// let c = Carveout::with_pool_area(spec, pool_cfg.region_len());
/// let (mut host, mut remote) = c.connect::<8>(HostConfig::default(), WaitMode::Event)?;
/// // Both cores see the pool at device address 0xC000_0000 (the remote's window onto it).
/// let iova = DevAddr(0xC000_0000);
/// let window = LinearMap { base: iova, offset: c.pool.0, len: c.pool.1 };
/// // The host: a pool, a channel to the remote's data-plane service, one buffer submitted.
/// let service = remote.open(DP_SERVICE, RPMSG_ADDR_ANY)?;
/// let pool = Pool::new(Coherent::new(c.mem.clone()), c.pool.0, iova, &pool_cfg)?;
/// let ch = host.connect(DP_SERVICE, t)?;
/// let mut dp = DpHost::new(pool, ch, host.max_payload())?;
/// let mut buf = dp.alloc(4096).unwrap();
/// buf[..100].fill(7);
/// dp.submit(&mut host, buf, 100, DP_OP_CRC32C)?;
/// dp.flush(&mut host)?;
/// # // The remote: computes the CRC32C of the input in place, right after it.
/// # let mut worker = DpRemote::new(Coherent::new(c.mem.clone()), window);
/// # remote.recv_with(&service, t, |m| {
/// #     worker.process(service.local, m.src, m.payload, |job| {
/// #         let crc = crc32c(job.input().map_err(|_| 1u32)?);
/// #         let n = job.len();
/// #         job.output(n, 4).map_err(|_| 1u32)?.copy_from_slice(&crc.to_le_bytes());
/// #         Ok(n + 4)
/// #     })
/// # })?;
/// # worker.flush(&mut remote, t)?;
/// // Back on the host: the same memory, with the result written in place.
/// let done = dp.wait_complete(&mut host, t)?;
/// assert_eq!(done.status(), DP_OK);
/// assert_eq!(done[100..104], crc32c(&[7; 100]).to_le_bytes());
/// # Ok::<(), intercore::Error>(())
/// ```
pub struct DpHost<C: CacheOps> {
    pool: Pool<C>,
    ch: Channel,
    next_seq: u64,
    /// The sequence number of the first submission after the last [`Self::reset`] /
    /// [`Self::recover`] (0: never): a completion with a lower sequence number for a buffer
    /// no longer in flight with it belongs to the time before, and is ignored (counted in
    /// [`DpHostStats::stale`]) instead of breaking the data plane again.
    fence: u64,
    flights: Vec<Option<Flight<C>>>,
    /// How many of `flights` are `Some` (kept, not counted: `wait_complete` asks for every
    /// completion message, and counting walked the whole pool).
    flying: usize,
    /// The next submit message, built in place as buffers are staged: the header's room,
    /// then one entry per staged buffer (so a flush copies the batch once, into the
    /// transport's buffer).
    msg: Vec<u8>,
    /// Ids of the staged buffers, in the order of their entries in `msg`.
    staged: Vec<u32>,
    per_msg: usize,
    /// Bytes of work in the staged submissions (their lengths summed).
    staged_bytes: usize,
    /// Completed buffers, in completion order: a ring of one slot per pool buffer (each
    /// buffer is completed at most once at a time), `done_len` of them from `done_head`.
    /// A completion is built in its empty slot in place: pushed onto a queue, it was built
    /// on the stack and copied in at once, with wide loads that wait for the narrow
    /// stores that built it (a failed store-to-load forward per buffer, issue 24.4).
    done: Vec<Option<Completed<C>>>,
    done_head: usize,
    done_len: usize,
    stats: DpHostStats,
    broken: Option<Error>,
    /// Where a completion message is received before it is parsed (`max_payload` bytes):
    /// parsing in place would read shared memory with unaligned loads, which fault on
    /// Device memory (`crate::copy_from_shared`), and a copy cannot change under the checks.
    scratch: Vec<u8>,
    /// How long a send waits for a transmit buffer.
    send_timeout: Option<Duration>,
}

impl<C: CacheOps> DpHost<C> {
    /// A data plane on an open channel `ch` (from `open`/`connect` on either bus, or
    /// [`Transport::open`](crate::rpmsg::Transport::open)) whose messages carry
    /// `max_payload` bytes ([`MessageIo::max_payload`]): a submit message carries as many
    /// entries as fit, at most [`MAX_DP_BATCH`].
    pub fn new(pool: Pool<C>, ch: Channel, max_payload: usize) -> Result<Self> {
        let per_msg = dp_entries_per_message(max_payload).min(MAX_DP_BATCH);
        if per_msg == 0 {
            return Err(Error::Config(
                "rpmsg payload too small for a data-plane entry",
            ));
        }
        let n = pool.len();
        Ok(Self {
            pool,
            ch,
            next_seq: 1,
            fence: 0,
            flights: (0..n).map(|_| None).collect(),
            flying: 0,
            msg: {
                let mut m = Vec::with_capacity(DP_HDR_SIZE + per_msg * DP_ENTRY_SIZE);
                m.resize(DP_HDR_SIZE, 0);
                m
            },
            staged: Vec::with_capacity(per_msg),
            per_msg,
            staged_bytes: 0,
            done: (0..n).map(|_| None).collect(),
            done_head: 0,
            done_len: 0,
            stats: DpHostStats::default(),
            broken: None,
            scratch: alloc::vec![0; max_payload.min(u16::MAX as usize)],
            send_timeout: Some(Duration::from_secs(1)),
        })
    }

    /// How long [`Self::flush`] (and a [`Self::submit`] that fills the batch) waits for a
    /// transmit buffer when the remote holds them all (`None`: no limit). Default 1 s.
    pub fn set_send_timeout(&mut self, timeout: Option<Duration>) {
        self.send_timeout = timeout;
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
        self.flying
    }
    /// Buffers submitted and not yet taken back by the application: at the remote, or
    /// completed and waiting in [`Self::wait_complete`]'s queue.
    pub fn outstanding(&self) -> usize {
        self.in_flight() + self.done_len
    }
    /// Buffers per submit message.
    pub fn batch_size(&self) -> usize {
        self.per_msg
    }
    /// Submissions staged and not yet sent (at most [`Self::batch_size`]): an async submit
    /// (intercore-tokio) flushes a full batch before staging the next buffer.
    pub fn staged(&self) -> usize {
        self.staged.len()
    }
    /// Whether the staged batch is due to go out now: a whole message of entries
    /// ([`Self::batch_size`]), or [`FLUSH_BYTES`] of work staged (a large buffer goes out
    /// alone: held back to fill a message, it would leave the remote idle).
    pub fn batch_due(&self) -> bool {
        self.staged.len() >= self.per_msg || self.staged_bytes >= FLUSH_BYTES
    }
    /// Local endpoint and remote service address in use.
    pub fn addresses(&self) -> (u32, u32) {
        (self.ch.local, self.ch.remote)
    }
    /// The channel in use.
    pub fn channel(&self) -> Channel {
        self.ch
    }
    /// Why the data plane is broken, if it is: the first protocol error the remote made
    /// (every later call that needs the remote reports it too, as rpmsg's link errors do).
    pub fn broken(&self) -> Option<Error> {
        self.broken
    }

    fn check(&self) -> Result<()> {
        self.broken.map_or(Ok(()), Err)
    }

    /// Takes back every buffer the remote holds (and every submission not yet sent),
    /// returning each to the pool's free list; returns how many.
    ///
    /// Call this only once the remote is known dead (`PeerGone`, remoteproc `crashed`) or
    /// the link was reset: a live remote could still write into a buffer after the pool
    /// has lent it to someone else. Each buffer is invalidated whole first, so nothing the
    /// remote left in the cache is read later. Buffers the application holds
    /// ([`WritableBuf`], [`Completed`]) are not touched; they return when dropped. Afterwards
    /// `pool().counts()` is `[free, cpu, 0, completed]` with every buffer accounted for.
    pub fn reclaim(&mut self) -> usize {
        let shared = &self.pool.shared;
        let mut n = 0;
        for (id, f) in self.flights.iter_mut().enumerate() {
            if let Some(f) = f.take() {
                self.flying -= 1;
                let info = *shared.info(id as u32);
                shared.cache.invalidate(id as u32, info.off, info.cap);
                f.lease.free();
                n += 1;
            }
        }
        self.unstage();
        self.stats.reclaimed += n as u64;
        n
    }

    /// After a link reset (the remote restarted or the device was reset, so it holds
    /// nothing any more): reclaims every in-flight buffer ([`Self::reclaim`]), clears the
    /// sticky error, fences off the sequence numbers used so far and talks from local
    /// channel `ch` (re-created on the new link; on `/dev/rpmsgM` the device opened again). Returns
    /// how many buffers were reclaimed.
    ///
    /// Completions for earlier submissions that are still queued in the transport, or that
    /// a remote still sends, name reclaimed buffers or old sequence numbers: they are
    /// ignored and counted ([`DpHostStats::stale`]), so the data plane works at once. On a
    /// link that stayed up with the remote alive, use [`Self::recover`], which waits for
    /// the remote to return its buffers before any of them is lent out again.
    pub fn reset(&mut self, ch: Channel) -> usize {
        let n = self.reclaim();
        self.ch = ch;
        self.broken = None;
        self.fence = self.next_seq;
        n
    }

    /// Recovers a broken data plane on a link that is still up, the remote alive: drains
    /// the completion messages the remote sends (each waited for up to `timeout`, at most
    /// one per buffer at the remote plus 16 — a remote that keeps talking cannot keep us
    /// here), completing every buffer a good entry names as usual (bad entries are counted
    /// in `refused` and skipped); takes back the submissions staged but never sent; fences
    /// the sequence numbers used so far (as [`Self::reset`]) and clears the sticky error.
    /// Returns how many buffers the remote still holds: they stay in flight — a live remote
    /// may still write them — and complete normally if it returns them later;
    /// [`Self::reclaim`] takes them back once the remote is known dead or the link reset.
    /// A dead transport (`PeerGone`) ends the drain early, not in an error.
    pub fn recover<T: MessageIo + ?Sized>(
        &mut self,
        bus: &mut T,
        timeout: Option<Duration>,
    ) -> usize {
        // Submissions that never left: the remote cannot know them.
        let shared = &self.pool.shared;
        let mut unsent = 0u64;
        for (id, f) in self.flights.iter_mut().enumerate() {
            if let Some(f) = f.take_if(|f| !f.sent) {
                self.flying -= 1;
                let info = *shared.info(id as u32);
                shared.cache.invalidate(id as u32, info.off, info.cap);
                f.lease.free();
                unsent += 1;
            }
        }
        self.unstage();
        self.stats.reclaimed += unsent;
        let at_remote = |dp: &Self| dp.flying;
        let mut budget = at_remote(self) + 16;
        while at_remote(self) > 0 && budget > 0 {
            budget -= 1;
            let ch = self.ch;
            match bus.recv_from(&ch, &mut self.scratch, timeout) {
                Ok((src, len)) => {
                    // Bad entries are counted (`refused`); good ones complete.
                    let _ = self.absorb_scratch(src, len);
                }
                Err(Error::Truncated { .. }) => self.stats.refused += 1,
                Err(_) => break,
            }
        }
        self.broken = None;
        self.fence = self.next_seq;
        at_remote(self)
    }

    /// Hands `buf` to the remote for operation `op` on its first `len` bytes: cleans
    /// exactly those bytes (rounded out to cache lines), marks it in flight, and queues the
    /// submission; the batch goes out when [`Self::batch_due`] (a full message, or
    /// [`FLUSH_BYTES`] of work) or at [`Self::flush`].
    pub fn submit<T: MessageIo + ?Sized>(
        &mut self,
        bus: &mut T,
        buf: WritableBuf<C>,
        len: usize,
        op: u32,
    ) -> Result<Ticket> {
        let ticket = self.stage(buf, len, op)?;
        if self.batch_due() {
            self.flush(bus)?;
        }
        Ok(ticket)
    }

    /// [`Self::submit`] without sending: the buffer is cleaned, marked in flight and
    /// queued; it goes out with the next [`Self::flush`] (or a submit that fills the batch).
    /// `Exhausted` when a whole batch is already queued.
    pub fn stage(&mut self, buf: WritableBuf<C>, len: usize, op: u32) -> Result<Ticket> {
        self.check()?;
        if self.staged.len() >= self.per_msg {
            return Err(Error::Exhausted("a full batch is queued: flush first"));
        }
        if !alloc::sync::Arc::ptr_eq(&buf.lease.shared, &self.pool.shared) {
            return Err(Error::Config("buffer belongs to another pool"));
        }
        let info = buf.info;
        if len > info.cap {
            return Err(Error::MessageTooLarge { len, max: info.cap });
        }
        let id = buf.id();
        let cache = &self.pool.shared.cache;
        let (start, n) = line_span(cache.line_size(), info.off, len);
        cache.clean(id, start, n);
        cache.handoff(id, info.off, info.cap);
        // The handle ends here; its claim on the pool moves to the in-flight record.
        let lease = buf.lease;
        let ok = lease.pass(Owner::Cpu, Owner::InFlight);
        debug_assert!(ok);
        let seq = self.next_seq;
        self.next_seq += 1;
        // The slot is empty (the buffer was the CPU's, not in flight). Filled in its `None`
        // arm, with no old value to drop first, the record is written in place rather than
        // built on the stack and copied with loads that wait on the buffer's fill.
        let slot = &mut self.flights[id as usize];
        debug_assert!(slot.is_none(), "buffer {id} staged while in flight");
        if slot.is_none() {
            *slot = Some(Flight {
                seq,
                sent: false,
                lease,
            });
        }
        self.flying += 1;
        let entry = DpSubmit {
            seq: Le64::new(seq),
            da: Le64::new(info.da.0),
            len: Le32::new(len as u32),
            cap: Le32::new(info.cap as u32),
            buf: Le32::new(id),
            op: Le32::new(op),
        };
        self.msg.extend_from_slice(entry.as_bytes());
        self.staged.push(id);
        self.staged_bytes += len;
        self.stats.submitted += 1;
        Ok(Ticket { seq, buf: id })
    }

    /// Sends the queued submissions (one rpmsg message, one doorbell at most). Blocks up to
    /// [`Self::set_send_timeout`]'s timeout (1 s unless set, `HostConfig`'s default) when
    /// the remote holds every transmit buffer (backpressure).
    pub fn flush<T: MessageIo + ?Sized>(&mut self, bus: &mut T) -> Result<()> {
        self.check()?;
        if self.staged.is_empty() {
            return Ok(());
        }
        let hdr = DpHdr {
            kind: Le16::new(DP_SUBMIT),
            count: Le16::new(self.staged.len() as u16),
            reserved: Le32::new(0),
        };
        self.msg[..DP_HDR_SIZE].copy_from_slice(hdr.as_bytes());
        bus.send(&self.ch, &self.msg, self.send_timeout)?;
        // Only now may the remote complete these buffers.
        for &id in &self.staged {
            if let Some(f) = self.flights[id as usize].as_mut() {
                f.sent = true;
            }
        }
        self.unstage();
        self.stats.messages += 1;
        Ok(())
    }

    /// Empties the next submit message (its buffers were sent or taken back).
    fn unstage(&mut self) {
        self.msg.truncate(DP_HDR_SIZE);
        self.staged.clear();
        self.staged_bytes = 0;
    }

    /// Judges one completion message from `src`. A message from any address but the
    /// service's is counted and ignored. Every entry is checked on its own against our
    /// records — buffer id in range and in flight with that sequence number, device address
    /// equal to the buffer's, length within its capacity — and a good entry completes its
    /// buffer whatever its neighbours are; a bad one is refused and the first refusal
    /// breaks the data plane (sticky) with an error naming the entry. A count that
    /// disagrees with the message length is also an error, but the entries actually present
    /// (up to the count) are still judged.
    ///
    /// `src` is `None` on a transport that does not report the sender (`/dev/rpmsgM`: the
    /// kernel delivers to the endpoint whatever the source).
    fn absorb(&mut self, src: Option<u32>, payload: &[u8]) -> Result<()> {
        if src.is_some_and(|s| s != self.ch.remote) {
            self.stats.foreign += 1;
            return Ok(());
        }
        let mut first: Option<Error> = None;
        let hdr = match DpHdr::read_from_prefix(payload) {
            Ok((h, _)) => h,
            Err(_) => {
                return Err(self.refuse(Error::DataPlane {
                    what: "completion message shorter than its header",
                    entry: None,
                    buf: None,
                    seq: None,
                    value: payload.len() as u64,
                }));
            }
        };
        if hdr.kind.get() != DP_COMPLETE {
            return Err(self.refuse(Error::DataPlane {
                what: "message kind is not a completion",
                entry: None,
                buf: None,
                seq: None,
                value: hdr.kind.get() as u64,
            }));
        }
        let count = hdr.count.get() as usize;
        let present = (payload.len() - DP_HDR_SIZE) / DP_ENTRY_SIZE;
        if DP_HDR_SIZE + count * DP_ENTRY_SIZE != payload.len() {
            first = Some(Error::DataPlane {
                what: "entry count disagrees with the message length",
                entry: None,
                buf: None,
                seq: None,
                value: count as u64,
            });
        }
        let entries = &payload[DP_HDR_SIZE..];
        for i in 0..count.min(present) {
            let Ok(c) = dp_entry::<DpComplete>(entries, i) else {
                break;
            };
            if let Err(e) = self.complete_entry(i, &c) {
                self.stats.refused += 1;
                first.get_or_insert(e);
            }
        }
        match first {
            Some(e) => Err(self.refuse(e)),
            None => Ok(()),
        }
    }

    fn refuse(&mut self, e: Error) -> Error {
        *self.broken.get_or_insert(e)
    }

    fn complete_entry(&mut self, i: usize, c: &DpComplete) -> Result<()> {
        let id = c.buf.get();
        let seq = c.seq.get();
        let bad = |what: &'static str, value: u64| Error::DataPlane {
            what,
            entry: Some(i as u16),
            buf: Some(id),
            seq: Some(seq),
            value,
        };
        let info = self
            .pool
            .info(id)
            .ok_or(bad("buffer id outside the pool", id as u64))?;
        match &self.flights[id as usize] {
            Some(f) if f.seq == seq && f.sent => {}
            // From before the last reset: that submission's buffer was reclaimed (it may
            // be in flight again under a newer sequence number).
            _ if seq < self.fence => {
                self.stats.stale += 1;
                return Ok(());
            }
            Some(f) if f.seq == seq => {
                return Err(bad("buffer staged but its submission not sent yet", seq));
            }
            Some(f) => return Err(bad("sequence differs from the buffer's in flight", f.seq)),
            None => return Err(bad("buffer not in flight", id as u64)),
        }
        if c.da.get() != info.da.0 {
            return Err(bad("device address differs from the buffer's", c.da.get()));
        }
        let len = c.len.get() as usize;
        if len > info.cap {
            return Err(bad("length beyond the buffer's capacity", len as u64));
        }
        let Some(f) = self.flights[id as usize].take() else {
            return Err(bad("buffer not in flight", id as u64));
        };
        self.flying -= 1;
        let lease = f.lease;
        let ok = lease.pass(Owner::InFlight, Owner::Completed);
        debug_assert!(ok);
        let cache = &self.pool.shared.cache;
        let (start, n) = line_span(cache.line_size(), info.off, len);
        cache.invalidate(id, start, n);
        self.stats.completed += 1;
        if c.status.get() != intercore_wire::dataplane::DP_OK {
            self.stats.failed += 1;
        }
        self.push_done(lease, len, c.status.get(), seq);
        Ok(())
    }

    /// Queues a completed buffer (its lease already passed to `Completed`).
    fn push_done(&mut self, lease: Lease<C>, len: usize, status: u32, seq: u64) {
        let n = self.done.len();
        // One slot per buffer, and a buffer is queued once at a time: never full.
        debug_assert!(self.done_len < n);
        let slot = &mut self.done[(self.done_head + self.done_len) % n];
        debug_assert!(slot.is_none(), "completion queue full");
        // Filled in its `None` arm (no old value to drop first): built in place.
        if slot.is_none() {
            *slot = Some(Completed::new(lease, len, status, seq));
            self.done_len += 1;
        }
    }

    /// The oldest completed buffer queued.
    fn pop_done(&mut self) -> Option<Completed<C>> {
        if self.done_len == 0 {
            return None;
        }
        let c = self.done[self.done_head].take();
        self.done_head = (self.done_head + 1) % self.done.len();
        self.done_len -= 1;
        c
    }

    /// Feeds one completion message from `src` straight to the checks (no bus): for fuzzing
    /// and hostile-peer tests. What it completes is queued as from [`Self::poll`]. Only
    /// with the `test-utils` feature: production builds have no way in but the bus.
    #[doc(hidden)]
    #[cfg(feature = "test-utils")]
    pub fn absorb_for_test(&mut self, src: u32, payload: &[u8]) -> Result<()> {
        self.absorb(Some(src), payload)
    }

    /// A received message's length checked: one longer than the transport's maximum payload
    /// (our scratch) cannot be a completion message we asked for.
    fn received(&mut self, got: Result<(Option<u32>, usize)>) -> Result<(Option<u32>, usize)> {
        match got {
            Err(Error::Truncated { len }) => Err(self.refuse(Error::DataPlane {
                what: "completion message longer than the transport's maximum payload",
                entry: None,
                buf: None,
                seq: None,
                value: len as u64,
            })),
            r => r,
        }
    }

    /// Parses the message received into the scratch buffer.
    fn absorb_scratch(&mut self, src: Option<u32>, n: usize) -> Result<()> {
        let msg = core::mem::take(&mut self.scratch);
        let got = self.absorb(src, &msg[..n]);
        self.scratch = msg;
        got
    }

    /// Takes every completion message that has arrived, without blocking.
    pub fn poll<T: MessageIo + ?Sized>(&mut self, bus: &mut T) -> Result<usize> {
        self.check()?;
        let mut n = 0;
        loop {
            let ch = self.ch;
            // Don't wait: one look (expiry is `Timeout`, the convention of `MessageIo`).
            let got = match bus.recv_from(&ch, &mut self.scratch, Some(Duration::ZERO)) {
                Err(Error::Timeout) => return Ok(n),
                got => got,
            };
            let (src, len) = self.received(got)?;
            self.absorb_scratch(src, len)?;
            n += 1;
        }
    }

    /// A buffer already completed and queued, without touching the bus.
    pub fn take_completed(&mut self) -> Option<Completed<C>> {
        self.pop_done()
    }

    /// A completed buffer, if one is there (non-blocking). Staged submissions are flushed
    /// unless a completion message had already arrived (see [`Self::wait_complete`]).
    pub fn try_complete<T: MessageIo + ?Sized>(
        &mut self,
        bus: &mut T,
    ) -> Result<Option<Completed<C>>> {
        if let Some(c) = self.take_arrived(bus)? {
            return Ok(Some(c));
        }
        self.flush(bus)?;
        self.poll(bus)?;
        Ok(self.pop_done())
    }

    /// The next completed buffer already queued, or from a completion message that has
    /// already arrived (one non-blocking receive, tried only while submissions that went
    /// out are outstanding).
    fn take_arrived<T: MessageIo + ?Sized>(&mut self, bus: &mut T) -> Result<Option<Completed<C>>> {
        if self.done_len == 0 && self.flying > self.staged.len() {
            self.check()?;
            let ch = self.ch;
            // Don't wait: one look (expiry is `Timeout`, the convention of `MessageIo`).
            let got = match bus.recv_from(&ch, &mut self.scratch, Some(Duration::ZERO)) {
                Err(Error::Timeout) => return Ok(None),
                got => got,
            };
            let (src, len) = self.received(got)?;
            self.absorb_scratch(src, len)?;
        }
        Ok(self.pop_done())
    }

    /// Waits up to `timeout` for the next completed buffer. `Timeout` if the remote
    /// returns nothing in time; a dead remote is `PeerGone`. Buffers completed before the
    /// data plane broke are still handed out, then the sticky error.
    ///
    /// Staged submissions are flushed before waiting, but not when a completion message
    /// has already arrived: an application that resubmits each buffer as it comes back
    /// then fills whole submit messages instead of sending a short one at every
    /// completion message (fewer messages per buffer, issue 24.4).
    pub fn wait_complete<T: MessageIo + ?Sized>(
        &mut self,
        bus: &mut T,
        timeout: Option<Duration>,
    ) -> Result<Completed<C>> {
        if let Some(c) = self.take_arrived(bus)? {
            return Ok(c);
        }
        self.flush(bus)?;
        loop {
            if let Some(c) = self.pop_done() {
                return Ok(c);
            }
            if self.in_flight() == 0 {
                return Err(Error::NotReady("no buffer in flight"));
            }
            let ch = self.ch;
            let got = bus.recv_from(&ch, &mut self.scratch, timeout);
            let (src, len) = self.received(got)?;
            self.absorb_scratch(src, len)?;
        }
    }
}
