//! Doorbells: how one side tells the other that a ring changed, and how it sleeps.

use crate::Result;
use core::fmt;
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
}

/// How a blocking call waits for the peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitMode {
    /// Sleep on the doorbell at once: least CPU, a wake-up's latency per message.
    Event,
    /// Spin on the ring, never sleep and make no system call: lowest latency, burns a core.
    Poll,
    /// Spin for up to this long, then sleep on the doorbell: polling latency under
    /// back-to-back traffic, near-zero CPU when idle.
    Adaptive(Duration),
}

impl Default for WaitMode {
    fn default() -> Self {
        WaitMode::Adaptive(Duration::from_micros(50))
    }
}

/// The spelling of a wait mode on command lines and in board files: `event`, `poll`,
/// `adaptive` (the default spin, 50 µs) or `adaptive:MICROS`. [`fmt::Display`] writes the
/// same syntax (an adaptive mode always with its microseconds), so the two round-trip.
impl core::str::FromStr for WaitMode {
    type Err = ParseWaitModeError;
    fn from_str(s: &str) -> core::result::Result<Self, Self::Err> {
        match s {
            "event" => Ok(WaitMode::Event),
            "poll" => Ok(WaitMode::Poll),
            "adaptive" => Ok(WaitMode::default()),
            _ => s
                .strip_prefix("adaptive:")
                .and_then(|us| us.parse().ok())
                .map(|us| WaitMode::Adaptive(Duration::from_micros(us)))
                .ok_or(ParseWaitModeError),
        }
    }
}

impl fmt::Display for WaitMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WaitMode::Event => f.write_str("event"),
            WaitMode::Poll => f.write_str("poll"),
            WaitMode::Adaptive(d) => write!(f, "adaptive:{}", d.as_micros()),
        }
    }
}

/// A string that is not a [`WaitMode`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseWaitModeError;

impl fmt::Display for ParseWaitModeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("expected \"event\", \"poll\", \"adaptive\" or \"adaptive:MICROS\"")
    }
}

impl core::error::Error for ParseWaitModeError {}

/// What a blocking loop does after a try found nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Next {
    /// Try again at once (spinning).
    Retry,
    /// Arm notifications, re-check, then sleep at most this long (`None`: no limit).
    Sleep(Option<Duration>),
}

/// The state of one blocking call: its deadline and where it is in spin-then-sleep. The
/// clock is first read at the first miss that needs it, not on entry, so a call that spins
/// briefly pays for no clock read at all.
#[derive(Debug)]
pub(crate) struct Waiter {
    mode: WaitMode,
    timeout: Option<Duration>,
    deadline: Option<Duration>,
    spin_end: Option<Duration>,
    started: bool,
    spinning: bool,
    spins: u32,
}

/// Spins between clock reads (a clock read is a vDSO call, ~20 ns).
const SPINS_PER_CLOCK: u32 = 64;
/// Spins between liveness checks (may be a system call).
const SPINS_PER_PEER_CHECK: u32 = 1 << 14;

impl Waiter {
    pub(crate) fn new<D: Doorbell + ?Sized>(
        _bell: &D,
        mode: WaitMode,
        timeout: Option<Duration>,
    ) -> Self {
        let spinning = !matches!(mode, WaitMode::Event);
        Self {
            mode,
            timeout,
            deadline: None,
            spin_end: None,
            started: false,
            spinning,
            spins: 0,
        }
    }

    fn start(&mut self, now: Duration) {
        if !self.started {
            self.started = true;
            self.deadline = self.timeout.map(|t| now.saturating_add(t));
            self.spin_end = match self.mode {
                WaitMode::Adaptive(d) => Some(now.saturating_add(d)),
                _ => None,
            };
        }
    }

    /// Decides what to do after a try found nothing: spin again, sleep, or give up with
    /// `Timeout` (or `PeerGone` when the liveness check says so).
    pub(crate) fn after_miss<D: Doorbell + ?Sized>(&mut self, bell: &D) -> crate::Result<Next> {
        if self.spinning {
            self.spins = self.spins.wrapping_add(1);
            if self.spins % SPINS_PER_PEER_CHECK == 0 {
                bell.check_peer()?;
            }
            if self.spins % SPINS_PER_CLOCK != 0 {
                core::hint::spin_loop();
                return Ok(Next::Retry);
            }
        }
        let now = bell.now();
        self.start(now);
        if self.deadline.is_some_and(|d| now >= d) {
            bell.check_peer()?;
            return Err(crate::Error::Timeout);
        }
        if self.spinning && self.spin_end.is_none_or(|end| now < end) {
            core::hint::spin_loop();
            return Ok(Next::Retry);
        }
        self.spinning = false;
        Ok(Next::Sleep(self.deadline.map(|d| d - now)))
    }
}

/// What a bus provides so that [`block_on`] can run its blocking calls.
pub(crate) trait Sleeper {
    /// The doorbell type.
    type Bell: Doorbell;
    /// The doorbell to sleep on.
    fn bell(&self) -> &Self::Bell;
    /// How blocking calls wait.
    fn wait_mode(&self) -> WaitMode;
    /// Asks the peer to notify us (of received messages, and with `want_tx` of returned
    /// transmit buffers); `Ok(true)` when work is already pending (do not sleep).
    fn arm(&mut self, want_tx: bool) -> crate::Result<bool>;
    /// Withdraws the request (we are spinning again).
    fn disarm(&mut self);
    /// Counts a sleep.
    fn note_sleep(&mut self) {}
    /// Records a link-fatal error.
    fn fail(&mut self, e: crate::Error) -> crate::Error;
}

/// Runs `attempt` until it yields, spinning and sleeping on the doorbell between tries as
/// the wait mode says; notifications are armed only around a sleep (the arm re-checks, so
/// a message that raced the decision is never slept through).
pub(crate) fn block_on<S: Sleeper, T>(
    s: &mut S,
    timeout: Option<Duration>,
    want_tx: bool,
    mut attempt: impl FnMut(&mut S) -> crate::Result<Option<T>>,
) -> crate::Result<T> {
    let mut w = Waiter::new(s.bell(), s.wait_mode(), timeout);
    let mut armed = false;
    let r = loop {
        match attempt(s) {
            Ok(Some(v)) => break Ok(v),
            Ok(None) => {}
            Err(e) => break Err(e),
        }
        match w.after_miss(s.bell()) {
            Ok(Next::Retry) => {}
            Ok(Next::Sleep(t)) => {
                armed = true;
                match s.arm(want_tx) {
                    Ok(true) => continue,
                    Ok(false) => {}
                    Err(e) => break Err(e),
                }
                s.note_sleep();
                if let Err(e) = s.bell().wait(t) {
                    break Err(s.fail(e));
                }
            }
            Err(e) => break Err(s.fail(e)),
        }
    };
    if armed {
        s.disarm();
    }
    r
}
