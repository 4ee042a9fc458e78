//! The doorbell: how one side tells the other that a ring changed.

use crate::Result;
use core::time::Duration;

/// A two-way doorbell between this side and the peer (an eventfd pair in the simulator,
/// a mailbox on hardware).
///
/// Every ring names the vring it is about by that vring's `notifyid` (from the resource
/// table or the placement), as Linux's remoteproc does (`rproc->ops->kick(rproc, notifyid)`):
/// TI's K3 driver sends it as the mailbox message, and NXP's i.MX RPMsg-Lite port runs only
/// the virtqueue named in each message. A doorbell that cannot deliver the id (an eventfd
/// carries only "something changed") says so with [`Doorbell::CARRIES_NOTIFY_ID`] `= false`;
/// a peer that needs ids cannot be driven through it.
///
/// The contract, checked for every implementation by
/// `intercore::testing::conformance::doorbell` (feature `test-utils`):
///
/// * A ring is never lost: one made while the peer is not waiting stays pending and wakes
///   its next [`wait`](Doorbell::wait); one made while it sleeps wakes it. Rings pending
///   together may be delivered as one wake-up (the bus re-checks its rings after every
///   wake-up, so coalescing loses nothing).
/// * A side's own ring never wakes that side.
/// * A doorbell that carries ids delivers exactly the id it was rung with, and refuses (with
///   an error, ringing nothing) an id it cannot deliver; one that does not carry ids ignores
///   the id.
/// * Once the peer is known dead, `wait` and `check_peer` say [`PeerGone`](crate::Error::PeerGone)
///   (a doorbell that cannot tell never does).
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use std::time::{Duration, Instant};
/// use intercore::platform::Doorbell;
///
/// /// A polled flag per direction (an interrupt-less pair of threads).
/// struct Flags { mine: Arc<AtomicBool>, peer: Arc<AtomicBool>, t0: Instant }
///
/// impl Doorbell for Flags {
///     fn ring(&self, _notify_id: u32) -> intercore::Result<()> {
///         // Release: the ring changes made before it are visible to the woken side.
///         self.peer.store(true, Ordering::Release);
///         Ok(())
///     }
///     fn wait(&self, timeout: Option<Duration>) -> intercore::Result<bool> {
///         let end = timeout.map(|t| self.now() + t);
///         loop {
///             // Acquire: pairs with the ringing side's Release.
///             if self.mine.swap(false, Ordering::Acquire) {
///                 return Ok(true);
///             }
///             if end.is_some_and(|e| self.now() >= e) {
///                 return Ok(false);
///             }
///             std::thread::yield_now();
///         }
///     }
///     fn now(&self) -> Duration {
///         self.t0.elapsed()
///     }
/// }
///
/// let (a, b) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
/// let t0 = Instant::now();
/// let host = Flags { mine: a.clone(), peer: b.clone(), t0 };
/// let remote = Flags { mine: b, peer: a, t0 };
/// host.ring(0)?;
/// assert!(!host.wait(Some(Duration::ZERO))?); // our own ring never wakes us
/// assert!(remote.wait(Some(Duration::from_secs(1)))?);
/// assert!(!remote.wait(Some(Duration::ZERO))?); // the ring was consumed
/// # Ok::<(), intercore::Error>(())
/// ```
pub trait Doorbell {
    /// Whether [`Doorbell::ring`] delivers its notify id to the peer.
    const CARRIES_NOTIFY_ID: bool = false;
    /// Rings the peer's doorbell for the vring whose notify id is `notify_id`.
    fn ring(&self, notify_id: u32) -> Result<()>;
    /// Sleeps until our doorbell rings or `timeout` passes (`None`: no limit; `Some(0)`:
    /// only looks). Returns `Ok(true)` when rung, `Ok(false)` once the timeout has passed
    /// with no ring (never earlier), `Err(PeerGone)` when the peer died. Consumes every
    /// ring pending when it returns `Ok(true)`: a later wait wakes only for a later ring.
    fn wait(&self, timeout: Option<Duration>) -> Result<bool>;
    /// A monotonic clock, for deadlines while spinning.
    fn now(&self) -> Duration;
    /// Cheap liveness check used while spinning: `Err(PeerGone)` once the peer is known
    /// dead. The default knows nothing and says alive.
    fn check_peer(&self) -> Result<()> {
        Ok(())
    }
    /// Lets whatever else waits for this CPU run before a long spin goes on: an
    /// [`WaitMode::Adaptive`](crate::WaitMode::Adaptive) wait calls it at each of its clock reads once it has spun
    /// 2 µs, so that a peer (or the process it waits on) sharing this CPU is not
    /// kept off it by the spin. The default does nothing (bare metal: nothing else to run);
    /// on Linux it is `sched_yield(2)`.
    fn yield_cpu(&self) {}
    /// Moves this thread off the peer's CPU when the peer is a process on this machine that
    /// is runnable on the very CPU this thread spins on (it cannot answer until this thread
    /// leaves the CPU), and this thread may run on another CPU; says where the peer was.
    /// An [`WaitMode::Adaptive`](crate::WaitMode::Adaptive) wait that spins in vain (its
    /// spin ran out, was skipped, or would yield) calls it now and then (at most once per
    /// [`MOVE_CHECK_GAP`](crate::wait::MOVE_CHECK_GAP) waits): sleeping instead lets the
    /// wake-up path keep the two on one CPU, spinning cannot reach the peer, and yielding
    /// may hand a whole time slice to another busy process. The default (a peer on another
    /// core) knows nothing; on Linux, the eventfd doorbell reads the watched peer's
    /// `/proc/<pid>/stat` and moves with a brief `sched_setaffinity(2)` that excludes the
    /// peer's CPU, restoring the mask at once.
    fn move_off_peer_cpu(&self) -> PeerCpu {
        PeerCpu::Unknown
    }
}

impl<D: Doorbell + ?Sized> Doorbell for &D {
    const CARRIES_NOTIFY_ID: bool = D::CARRIES_NOTIFY_ID;
    fn ring(&self, notify_id: u32) -> Result<()> {
        (**self).ring(notify_id)
    }
    fn wait(&self, timeout: Option<Duration>) -> Result<bool> {
        (**self).wait(timeout)
    }
    fn now(&self) -> Duration {
        (**self).now()
    }
    fn check_peer(&self) -> Result<()> {
        (**self).check_peer()
    }
    fn yield_cpu(&self) {
        (**self).yield_cpu()
    }
    fn move_off_peer_cpu(&self) -> PeerCpu {
        (**self).move_off_peer_cpu()
    }
}

/// Where [`Doorbell::move_off_peer_cpu`] found the peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerCpu {
    /// Nothing known: a peer on another core, or no way to tell.
    Unknown,
    /// The peer was runnable on this thread's CPU, and this thread moved to another one.
    Moved,
    /// The peer is runnable on another CPU: a spin can meet its answer.
    Elsewhere,
    /// The peer sleeps, or shares this CPU and this thread may run on no other.
    Stays,
}
