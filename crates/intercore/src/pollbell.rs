//! A doorbell without interrupts: one counter per direction and notify id in shared
//! memory, polled with back-off.
//!
//! For cores and boards with no usable interrupt between the two sides (an emulated core
//! whose RAM is a file, a soft core, a board whose mailbox is owned by another OS). This
//! departs from the rule that blocking calls sleep on an interrupt-driven notifier (a
//! mailbox, an eventfd) and poll only when asked to — see ARCHITECTURE.md, "The polling
//! doorbell".
//!
//! The block's place is declared by the firmware in its resource table, in intercore's
//! vendor entry ([`FwRscIntercore`], type [`RSC_INTERCORE`]): `num_ids` little-endian u32
//! counters host → remote at offset 0, then `num_ids` counters remote → host at
//! [`FwRscIntercore::to_host_offset`] (a separate 64-byte line, so the two writers never
//! share a cache line). To ring notify id `i`, a side adds one to *its own* counter `i`:
//! it is the only writer of that word, so the new value is computed from its last store
//! and written with a plain store — no read-modify-write instruction, because exclusive
//! accesses are not guaranteed to work on Device or non-cacheable memory (ARM ARM, "Load-
//! Exclusive and Store-Exclusive instruction usage restrictions"), which is how such a
//! window is usually mapped. The waiting side compares the peer's counters with the values
//! it saw last (kept in its own memory): any change is a ring, and the changed ids are the
//! vrings named. Counters wrap; only inequality matters.
//!
//! [`FwRscIntercore`]: intercore_wire::rsc::FwRscIntercore
//! [`RSC_INTERCORE`]: intercore_wire::rsc::RSC_INTERCORE
//! [`FwRscIntercore::to_host_offset`]: intercore_wire::rsc::FwRscIntercore::to_host_offset

use crate::{DevAddr, DeviceAddressMap, Doorbell, Error, Result, SharedMemory};
use core::sync::atomic::{AtomicU32, Ordering};
use core::time::Duration;
use intercore_wire::rsc::{FW_RSC_ADDR_ANY, FwRscIntercore};

/// Most notify ids a [`PollDoorbell`] watches.
pub const MAX_POLL_IDS: usize = 8;

/// Empty polls between clock reads while waiting with a timeout (a clock read is slow on
/// an emulated core).
const POLLS_PER_CLOCK: u32 = 64;
/// Empty polls between liveness checks.
const POLLS_PER_PEER_CHECK: u32 = 256;

/// Which side of the link this doorbell is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollSide {
    /// The host: rings the host → remote counters, watches the remote → host ones.
    Host,
    /// The remote core: the other way round.
    Remote,
}

/// What the platform adds to a polling doorbell: a clock, how to back off while nothing
/// arrives, and (optionally) how to tell that the peer died.
pub trait PollPlatform {
    /// A monotonic clock.
    fn now(&self) -> Duration;
    /// Called after the `round`-th consecutive empty poll of one wait (0, 1, 2, …): spin a
    /// little longer each time, yield, or sleep — the longer the link has been idle, the
    /// less of a core it should burn.
    fn back_off(&self, round: u32);
    /// `Err(PeerGone)` once the peer is known dead (an exited process); the default says
    /// alive.
    fn check_peer(&self) -> Result<()> {
        Ok(())
    }
    /// Lets whatever else waits for this CPU run ([`Doorbell::yield_cpu`], which the
    /// polling doorbell forwards here); the default does nothing.
    fn yield_cpu(&self) {}
}

impl<P: PollPlatform + ?Sized> PollPlatform for &P {
    fn now(&self) -> Duration {
        (**self).now()
    }
    fn back_off(&self, round: u32) {
        (**self).back_off(round)
    }
    fn check_peer(&self) -> Result<()> {
        (**self).check_peer()
    }
    fn yield_cpu(&self) {
        (**self).yield_cpu()
    }
}

/// A [`Doorbell`] made of counters in shared memory (see the module docs).
pub struct PollDoorbell<M: SharedMemory, P: PollPlatform> {
    mem: M,
    block: usize,
    num_ids: u32,
    side: PollSide,
    /// The peer's counters as we last saw them (our own memory; only the waiting thread
    /// writes them).
    seen: [AtomicU32; MAX_POLL_IDS],
    platform: P,
}

impl<M: SharedMemory, P: PollPlatform> PollDoorbell<M, P> {
    /// A doorbell over the block at region offset `block` with `num_ids` counters per
    /// direction (`1..=MAX_POLL_IDS`). The block must lie inside `mem` and be 64-byte
    /// aligned relative to the region. Counters the peer has already moved are taken as
    /// seen.
    pub fn new(mem: M, block: usize, num_ids: u32, side: PollSide, platform: P) -> Result<Self> {
        if num_ids == 0 || num_ids as usize > MAX_POLL_IDS {
            return Err(Error::Config("polling doorbell: num_ids must be 1..=8"));
        }
        let len = FwRscIntercore::block_len(num_ids) as usize;
        if block % 64 != 0 || block.checked_add(len).is_none_or(|e| e > mem.len()) {
            return Err(Error::Config(
                "polling doorbell: block misaligned or outside the shared memory",
            ));
        }
        let bell = Self {
            mem,
            block,
            num_ids,
            side,
            seen: core::array::from_fn(|_| AtomicU32::new(0)),
            platform,
        };
        for i in 0..num_ids {
            // Relaxed: a baseline only; what it guards is re-read after any change.
            let v = bell.mem.load_u32(bell.theirs(i), Ordering::Relaxed);
            bell.seen[i as usize].store(v, Ordering::Relaxed);
        }
        Ok(bell)
    }

    /// A doorbell where the firmware's intercore vendor entry says, its device address
    /// translated by `map`.
    pub fn from_entry<A: DeviceAddressMap>(
        mem: M,
        map: &A,
        entry: &FwRscIntercore,
        side: PollSide,
        platform: P,
    ) -> Result<Self> {
        let da = entry.doorbell_da.get();
        if da == FW_RSC_ADDR_ANY {
            return Err(Error::Config(
                "the firmware declares no polling doorbell block (doorbell_da is FW_RSC_ADDR_ANY)",
            ));
        }
        let n = entry.num_ids.get();
        let len = FwRscIntercore::block_len(n.min(MAX_POLL_IDS as u32)) as usize;
        let off = map.to_offset(DevAddr(da as u64), len).ok_or(Error::Config(
            "the polling doorbell block is outside the shared memory",
        ))?;
        Self::new(mem, off, n, side, platform)
    }

    fn counter(&self, to_host: bool, id: u32) -> usize {
        let base = if to_host {
            FwRscIntercore::to_host_offset(self.num_ids) as usize
        } else {
            0
        };
        self.block + base + 4 * id as usize
    }
    fn ours(&self, id: u32) -> usize {
        self.counter(self.side == PollSide::Remote, id)
    }
    fn theirs(&self, id: u32) -> usize {
        self.counter(self.side == PollSide::Host, id)
    }

    /// The platform part.
    pub fn platform(&self) -> &P {
        &self.platform
    }

    /// Checks the peer's counters once; true if any moved since we last looked (all
    /// changes are consumed).
    pub fn poll(&self) -> bool {
        let mut rung = false;
        for i in 0..self.num_ids {
            // Acquire: pairs with the ringer's Release store, so the ring updates made
            // before the ring are visible to what we do after seeing it.
            let v = self.mem.load_u32(self.theirs(i), Ordering::Acquire);
            let seen = &self.seen[i as usize];
            // Relaxed: `seen` is this side's private copy.
            if v != seen.load(Ordering::Relaxed) {
                seen.store(v, Ordering::Relaxed);
                rung = true;
            }
        }
        rung
    }

    /// How often this side has rung notify id `id` (its own counter).
    pub fn rung(&self, id: u32) -> u32 {
        // Relaxed: only this side writes the word.
        self.mem.load_u32(self.ours(id), Ordering::Relaxed)
    }
}

impl<M: SharedMemory, P: PollPlatform> Doorbell for PollDoorbell<M, P> {
    const CARRIES_NOTIFY_ID: bool = true;

    fn ring(&self, notify_id: u32) -> Result<()> {
        if notify_id >= self.num_ids {
            return Err(Error::Config(
                "notify id beyond the polling doorbell's counters",
            ));
        }
        let off = self.ours(notify_id);
        // Relaxed: we are the only writer of this word, so this reads our own last store.
        let v = self.mem.load_u32(off, Ordering::Relaxed);
        // Release: the ring updates before the ring are visible to a peer that sees it.
        self.mem
            .store_u32(off, v.wrapping_add(1), Ordering::Release);
        Ok(())
    }

    fn wait(&self, timeout: Option<Duration>) -> Result<bool> {
        let mut start = None;
        let mut round: u32 = 0;
        loop {
            if self.poll() {
                return Ok(true);
            }
            if round % POLLS_PER_PEER_CHECK == POLLS_PER_PEER_CHECK - 1 {
                self.platform.check_peer()?;
            }
            if let Some(t) = timeout {
                if t.is_zero() {
                    return Ok(false);
                }
                if round % POLLS_PER_CLOCK == 0 {
                    let now = self.platform.now();
                    let s = *start.get_or_insert(now);
                    if now.saturating_sub(s) >= t {
                        return Ok(false);
                    }
                }
            }
            self.platform.back_off(round);
            round = round.saturating_add(1);
        }
    }

    fn now(&self) -> Duration {
        self.platform.now()
    }

    fn check_peer(&self) -> Result<()> {
        self.platform.check_peer()
    }

    fn yield_cpu(&self) {
        self.platform.yield_cpu()
    }
}

/// How long one [`PolledRings::wait`] looks away before the caller re-reads its rings.
pub const RING_POLL_TICK: Duration = Duration::from_micros(100);

/// The "doorbell" of a link that has none: a firmware whose resource table has no
/// intercore vendor entry (stock TI MCU+ SDK, Zephyr, RPMsg-Lite tables) on a board whose
/// interrupt between the cores this host cannot use (QEMU's `-M none` has no interrupt
/// controller; a mailbox the kernel owns). Both sides poll the rings themselves:
/// [`Doorbell::ring`] does nothing, and [`Doorbell::wait`] backs off for at most
/// [`RING_POLL_TICK`] (the platform's spin, yield, sleep) and then returns `Ok(true)` —
/// "look at the rings again" — because a change of the rings is the only ring there is.
/// The bus's blocking calls re-check their ring after every wait, so a wake-up with
/// nothing new costs one look. The liveness check is the platform's.
pub struct PolledRings<P: PollPlatform> {
    platform: P,
}

impl<P: PollPlatform> PolledRings<P> {
    /// Polling with `platform`'s clock, back-off and liveness check.
    pub fn new(platform: P) -> Self {
        Self { platform }
    }
    /// The platform part.
    pub fn platform(&self) -> &P {
        &self.platform
    }
}

impl<P: PollPlatform> Doorbell for PolledRings<P> {
    fn ring(&self, _notify_id: u32) -> Result<()> {
        // Nothing to ring: the peer polls its rings.
        Ok(())
    }

    fn wait(&self, timeout: Option<Duration>) -> Result<bool> {
        self.platform.check_peer()?;
        if timeout.is_some_and(|t| t.is_zero()) {
            return Ok(false);
        }
        let tick = timeout.map_or(RING_POLL_TICK, |t| t.min(RING_POLL_TICK));
        let start = self.platform.now();
        let mut round = 0u32;
        while self.platform.now().saturating_sub(start) < tick {
            self.platform.back_off(round);
            round = round.saturating_add(1);
        }
        // A wait as long as the whole timeout is a timeout; a tick is "look again".
        Ok(timeout.is_none_or(|t| t > RING_POLL_TICK))
    }

    fn now(&self) -> Duration {
        self.platform.now()
    }

    fn check_peer(&self) -> Result<()> {
        self.platform.check_peer()
    }

    fn yield_cpu(&self) {
        self.platform.yield_cpu()
    }
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use super::*;
    use crate::testing::HeapMem;
    use std::sync::Arc;
    use std::time::Instant;

    struct Clock(Instant);
    impl PollPlatform for Clock {
        fn now(&self) -> Duration {
            self.0.elapsed()
        }
        fn back_off(&self, round: u32) {
            if round > 16 {
                std::thread::yield_now();
            }
        }
    }

    fn pair(
        mem: &Arc<HeapMem>,
    ) -> (
        PollDoorbell<Arc<HeapMem>, Clock>,
        PollDoorbell<Arc<HeapMem>, Clock>,
    ) {
        let h =
            PollDoorbell::new(mem.clone(), 128, 4, PollSide::Host, Clock(Instant::now())).unwrap();
        let r = PollDoorbell::new(mem.clone(), 128, 4, PollSide::Remote, Clock(Instant::now()))
            .unwrap();
        (h, r)
    }

    /// With no doorbell, a wait is a bounded look-away: `Some(0)` only looks (false), a
    /// timeout shorter than a tick waits it out and reports false (never earlier), a longer
    /// or no timeout returns "look again" (true) after at most about a tick; ringing does
    /// nothing and cannot fail.
    #[test]
    fn polled_rings_wait_is_a_bounded_look_away() {
        let b = PolledRings::new(Clock(Instant::now()));
        b.ring(0).unwrap();
        b.ring(7).unwrap();
        assert_eq!(b.wait(Some(Duration::ZERO)), Ok(false));
        let t = Instant::now();
        assert_eq!(b.wait(Some(Duration::from_micros(30))), Ok(false));
        assert!(t.elapsed() >= Duration::from_micros(30));
        let t = Instant::now();
        assert_eq!(b.wait(None), Ok(true));
        assert_eq!(b.wait(Some(Duration::from_secs(5))), Ok(true));
        assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
    }

    /// Each side writes only its own direction's words (host → remote at the block's
    /// start, remote → host one 64-byte line later, per `FwRscIntercore`), one counter per
    /// notify id, and a ring is seen exactly once by the other side only.
    #[test]
    fn counters_per_direction_and_id() {
        let mem = Arc::new(HeapMem::new(4096));
        let (h, r) = pair(&mem);
        const { assert!(PollDoorbell::<Arc<HeapMem>, Clock>::CARRIES_NOTIFY_ID) };
        h.ring(1).unwrap();
        h.ring(1).unwrap();
        r.ring(3).unwrap();
        assert_eq!(mem.load_u32(128 + 4, Ordering::Relaxed), 2);
        assert_eq!(mem.load_u32(128 + 64 + 12, Ordering::Relaxed), 1);
        for off in (0..4096).step_by(4) {
            if off != 132 && off != 128 + 64 + 12 {
                assert_eq!(mem.load_u32(off, Ordering::Relaxed), 0, "{off}");
            }
        }
        assert!(r.poll());
        assert!(!r.poll(), "a ring is consumed once");
        assert!(h.poll());
        assert!(!h.poll());
        assert_eq!((h.rung(1), r.rung(3)), (2, 1));
        assert!(h.ring(4).is_err(), "notify id beyond the block");
    }

    /// A wait with nothing rung times out; a ring from another thread wakes it.
    #[test]
    fn wait_times_out_and_wakes() {
        let mem = Arc::new(HeapMem::new(4096));
        let (h, r) = pair(&mem);
        assert!(!r.wait(Some(Duration::from_millis(20))).unwrap());
        assert!(!r.wait(Some(Duration::ZERO)).unwrap());
        std::thread::scope(|s| {
            s.spawn(|| {
                std::thread::sleep(Duration::from_millis(10));
                h.ring(0).unwrap();
            });
            assert!(r.wait(Some(Duration::from_secs(10))).unwrap());
        });
        // A counter that wraps still rings.
        mem.store_u32(128, u32::MAX, Ordering::Relaxed);
        assert!(r.poll());
        h.ring(0).unwrap();
        assert_eq!(mem.load_u32(128, Ordering::Relaxed), 0);
        assert!(r.poll());
    }

    /// Blocks outside the memory, misaligned blocks, zero or too many ids, and a vendor
    /// entry without a block are refused.
    #[test]
    fn bad_blocks_are_refused() {
        let mem = Arc::new(HeapMem::new(4096));
        let c = || Clock(Instant::now());
        assert!(PollDoorbell::new(mem.clone(), 4096 - 64, 4, PollSide::Host, c()).is_err());
        assert!(PollDoorbell::new(mem.clone(), 4, 4, PollSide::Host, c()).is_err());
        assert!(PollDoorbell::new(mem.clone(), 0, 0, PollSide::Host, c()).is_err());
        assert!(PollDoorbell::new(mem.clone(), 0, 9, PollSide::Host, c()).is_err());
        let map = crate::LinearMap {
            base: DevAddr(0x1000),
            offset: 0,
            len: 4096,
        };
        let mut e = FwRscIntercore {
            doorbell_da: intercore_wire::Le32::new(FW_RSC_ADDR_ANY),
            num_ids: intercore_wire::Le32::new(4),
            ..Default::default()
        };
        assert!(PollDoorbell::from_entry(mem.clone(), &map, &e, PollSide::Host, c()).is_err());
        e.doorbell_da = intercore_wire::Le32::new(0x1000 + 256);
        let b = PollDoorbell::from_entry(mem.clone(), &map, &e, PollSide::Host, c()).unwrap();
        b.ring(2).unwrap();
        assert_eq!(mem.load_u32(256 + 8, Ordering::Relaxed), 1);
        e.doorbell_da = intercore_wire::Le32::new(0x1000 + 4096 - 64);
        assert!(PollDoorbell::from_entry(mem, &map, &e, PollSide::Host, c()).is_err());
    }
}
