//! The wait policy: how a blocking call waits for the peer — spin, sleep on the
//! [`Doorbell`], or spin adaptively then sleep ([`WaitMode`]), and the adaptive spin budget
//! learnt per bus. The [`Doorbell`] trait itself is a platform trait
//! ([`crate::platform`]); this module only decides when to use it.

use crate::{Doorbell, PeerCpu};
use core::fmt;
use core::time::Duration;

/// How a blocking call waits for the peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitMode {
    /// Sleep on the doorbell at once: least CPU, a wake-up's latency per message.
    Event,
    /// Spin on the ring, never sleep and make no system call: lowest latency, burns a core.
    Poll,
    /// Spin for up to this long, then sleep on the doorbell: polling latency under
    /// back-to-back traffic, near-zero CPU when idle. How long each wait spins within this
    /// maximum is learnt per bus from the peer's observed response time and the cost of
    /// sleeping; while spins keep running out, long spins yield the CPU
    /// ([`Doorbell::yield_cpu`]), and spinning stops while it mostly fails (see
    /// `docs/ARCHITECTURE.md`).
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

/// The adaptive spin budget: how long an [`WaitMode::Adaptive`] blocking call spins before
/// it sleeps on the doorbell, learned from the peer's observed response time. One per bus,
/// kept across blocking calls; everything it knows comes from the doorbell's clock
/// ([`Doorbell::now`]), so it runs without `std` and is tested with a fake clock.
///
/// * **Estimate.** `est` is a running average (weight 1/[`EST_WEIGHT`]) of how long the
///   waits that ended *while spinning* took, from the first clock read to the last one
///   before the success (the clock is read every [`SPINS_PER_CLOCK`] spins, the first
///   time after that many misses, so that a wait which spins briefly — the common case —
///   reads no clock at all and counts 0; the estimate is a lower bound, by up to two
///   reads' distance). It starts at `max / SPIN_FACTOR`, so a fresh bus spins the whole configured
///   maximum and learns downwards.
/// * **Sleep cost.** `slept` is a running average (same weight) of how long the waits that
///   slept stayed asleep (from the decision to sleep until the call returned with its
///   result): what going to the doorbell costs on this machine, with this peer, now. It
///   starts at `max`.
/// * **Budget.** A wait spins up to `max(SPIN_FACTOR × est, slept)`, at least [`MIN_SPIN`]
///   and at most the configured maximum `max` (`adaptive:MICROS`): a few times the peer's
///   usual answer, and never less than a sleep would cost — spinning as long as blocking
///   costs is the classic rule for spin-then-block (it costs at most twice the better of
///   the two), and on a machine where a wake-up takes tens of µs it keeps a spinning side
///   spinning through short preemptions of its peer. While spins keep running out
///   (`fail` above [`YIELD_FAIL`]) the budget is at most `slept`: a spin that runs out then
///   costs at most twice a sleep, where `SPIN_FACTOR × est` (an estimate raised by spins
///   that succeeded late) made it several times one — the loaded, unpinned p99 (issue 24.5).
/// * **Giving up on spinning.** `fail` is a running average (weight 1/[`EST_WEIGHT`]) of
///   whether a spin ran out (1) or succeeded (0). Once it exceeds [`BYPASS_FAIL`] (most
///   recent spins failed: the peer is slow or not running — on a loaded machine it may be
///   waiting for the very CPU this side would burn), waits go straight to the doorbell.
///   Every [`PROBE_EVERY`]-th wait in that state spins the full `max` instead (a probe);
///   one that succeeds sets `fail` to the threshold (spinning resumes at once, successes
///   lower it as usual, and a single spin that runs out brings the bypass back), and
///   updates `est`.
/// * **Yielding.** Once a spin runs out with `fail` above [`YIELD_FAIL`] (several recent
///   spins ran out: the peer may share this CPU), waits yield the CPU while they spin past
///   [`YIELD_AFTER`] ([`Doorbell::yield_cpu`]). They stop once [`CALM_WAITS`] waits in a
///   row succeeded within [`YIELD_AFTER`] (the peer answers without needing this CPU), or
///   at once when a wait that yielded took longer than a sleep costs (`slept`): a yield can
///   hand the CPU to another busy process for a whole time slice, so it is paid only
///   where it helps.
/// * **Slow yields.** A yield after which the next clock read comes [`SLOW_YIELD`] or more
///   later gave a time slice away (to a busy process sharing this CPU, not to the peer):
///   that wait yields no more, yielding stops, and it cannot restart for the next
///   `backoff` waits — [`YIELD_BACKOFF_MIN`] after the first slow yield, doubling with
///   each one up to [`YIELD_BACKOFF_MAX`], halving each time yielding stops because the
///   peer answers quickly again. So a machine where yields keep giving slices away pays
///   one slice per `backoff` waits (at most 1 in 256 once it has happened twice: below a
///   p99), while one where they reach the peer keeps them (issue 24.5).
/// * **Sharing the peer's CPU.** A spin that runs out may be spinning on the very CPU its
///   peer (a process on this machine) needs: neither spinning (the peer cannot run) nor
///   sleeping (the wake-up path keeps the two together) nor yielding (another busy process
///   may take the slice) gets out of that. At most once per [`MOVE_CHECK_GAP`] waits, a
///   wait that runs out, is sent straight to the doorbell, or would yield asks the
///   doorbell to move it off the peer's CPU ([`Doorbell::move_off_peer_cpu`]); when it
///   moved, it spins the configured maximum again (without yielding), and the failures
///   seen so far are forgotten (they measured the shared CPU, not the peer): `fail` 0, no
///   yielding. When the peer is runnable on another CPU, a bypass ends as after a probe
///   that succeeded (`fail` at [`BYPASS_FAIL`]): the peer sharing this side's CPU was
///   what made spins fail, and the next spin tells (issue 24.5).
/// * Waits whose first try succeeds, and waits that end in an error other than a timeout,
///   teach nothing.
#[derive(Debug, Clone, Default)]
pub(crate) struct SpinPolicy {
    /// The configured maximum this state was learnt under; a different one resets it.
    max: Duration,
    /// Running estimate of a successful spin's length, ns.
    est_ns: u64,
    /// Running estimate of a sleep's length, ns.
    slept_ns: u64,
    /// Running failure ratio of recent spins, in 1/[`FAIL_ONE`].
    fail: u32,
    /// Waits sent straight to the doorbell since the last spin.
    skipped: u32,
    /// Whether spinning waits yield the CPU past [`YIELD_AFTER`].
    yielding: bool,
    /// Waits in a row that succeeded within [`YIELD_AFTER`].
    calm: u32,
    /// Waits for which yielding stays off after the next slow yield (0: none seen yet).
    backoff: u32,
    /// Waits left before yielding may start again (after a slow yield).
    quiet: u32,
    /// Waits since the last check for a shared CPU ([`Doorbell::move_off_peer_cpu`]).
    since_check: u32,
    /// The doorbell cannot tell where the peer runs: no more checks.
    no_peer_cpu: bool,
}

/// The budget is this many times the estimate.
pub(crate) const SPIN_FACTOR: u64 = 4;
/// The least budget (unless the configured maximum is smaller), whatever sleeps cost: a
/// few scheduler-free microseconds, so that a peer delayed by an interrupt does not send
/// this side to sleep.
pub(crate) const MIN_SPIN: Duration = Duration::from_micros(2);
/// Weight of a new observation in the running averages: 1/8.
pub(crate) const EST_WEIGHT: u64 = 8;
/// The failure ratio's unit.
pub(crate) const FAIL_ONE: u32 = 1024;
/// Above this failure ratio (3/4), waits skip spinning.
pub(crate) const BYPASS_FAIL: u32 = FAIL_ONE * 3 / 4;
/// While skipping, every this-many-th wait spins the full maximum as a probe: rarely
/// enough that the probes that fail (they spin the whole maximum, then sleep) stay below
/// 1% of the waits, out of the p99 (with every 16th, p99 under load was the maximum spin
/// plus a wake-up: issue 24.5); a peer that is fast again is found within 256 sleeps.
pub(crate) const PROBE_EVERY: u32 = 256;
/// Above this failure ratio (1/4: about three of the last eight spins ran out), a spin that
/// runs out turns yielding on.
pub(crate) const YIELD_FAIL: u32 = FAIL_ONE / 4;
/// Waits in a row that succeed within [`YIELD_AFTER`] after which spinning stops yielding.
pub(crate) const CALM_WAITS: u32 = 64;
/// A yield whose next clock read comes this much later or more gave a time slice away:
/// far above a switch to the peer and back (µs), far below a scheduler slice (ms).
pub(crate) const SLOW_YIELD: Duration = Duration::from_micros(100);
/// Waits without yielding after the first slow yield.
pub(crate) const YIELD_BACKOFF_MIN: u32 = 128;
/// The most waits without yielding after a slow yield.
pub(crate) const YIELD_BACKOFF_MAX: u32 = 8192;
/// An adaptive wait that spins in vain (runs out, skips its spin, or would yield) checks
/// whether it shares its peer's CPU ([`Doorbell::move_off_peer_cpu`]: on Linux a read of
/// `/proc/<pid>/stat`) at most once per this many waits. Only waits that already missed a
/// spin pay for it; on one CPU with the peer (round trips at wake-up latency, ≈ 6 µs
/// loaded), the pair is apart again within 16 round trips — with 128, the wake-up path
/// pulled the two together again often enough that the waits before each move made up
/// more than 1% of the loaded, unpinned round trips (issue 24.5).
pub const MOVE_CHECK_GAP: u32 = 16;

/// How a wait under [`SpinPolicy`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// It succeeded while spinning, this long after its first miss.
    Spun(Duration),
    /// Its spin budget ran out (it then slept, or timed out); how long it slept, when it
    /// returned with a result.
    RanOut(Option<Duration>),
    /// It was sent straight to the doorbell; how long it slept, when it returned with a
    /// result.
    Skipped(Option<Duration>),
    /// It found itself on its peer's CPU and moved off it
    /// ([`Doorbell::move_off_peer_cpu`]).
    Moved,
}

impl SpinPolicy {
    /// The spin budget for the next wait under the maximum `max`.
    pub(crate) fn budget(&mut self, max: Duration) -> Duration {
        if max != self.max {
            *self = SpinPolicy {
                max,
                est_ns: (max.as_nanos() as u64) / SPIN_FACTOR,
                slept_ns: max.as_nanos() as u64,
                fail: 0,
                skipped: 0,
                yielding: false,
                calm: 0,
                backoff: 0,
                quiet: 0,
                since_check: MOVE_CHECK_GAP,
                no_peer_cpu: false,
            };
        }
        self.quiet = self.quiet.saturating_sub(1);
        self.since_check = self.since_check.saturating_add(1);
        if self.fail > BYPASS_FAIL {
            self.skipped += 1;
            if self.skipped < PROBE_EVERY {
                return Duration::ZERO;
            }
            return max;
        }
        let spin = self.est_ns.saturating_mul(SPIN_FACTOR).max(self.slept_ns);
        // While spins keep running out, no longer than a sleep costs: past that a spin that
        // runs out pays for both (under load, unpinned, `SPIN_FACTOR` × an estimate inflated
        // by late successes was the p99: issue 24.5).
        let spin = if self.fail > YIELD_FAIL {
            spin.min(self.slept_ns)
        } else {
            spin
        };
        Duration::from_nanos(spin).max(MIN_SPIN).min(max)
    }

    /// Learns from how the wait that asked for the last budget ended.
    pub(crate) fn record(&mut self, outcome: Outcome) {
        let w = EST_WEIGHT as u32;
        match outcome {
            Outcome::Spun(t) => {
                let t = t.as_nanos().min(u64::MAX as u128) as u64;
                // est += (t - est) / W, in integers and without overflow.
                self.est_ns = self.est_ns - self.est_ns / EST_WEIGHT + t / EST_WEIGHT;
                self.fail = if self.fail > BYPASS_FAIL {
                    // A probe that succeeds ends the bypass, just: one more spin that runs
                    // out brings it back.
                    BYPASS_FAIL
                } else {
                    self.fail - self.fail / w
                };
                self.skipped = 0;
                if self.yielding && t > self.slept_ns.max(YIELD_AFTER.as_nanos() as u64) {
                    // Yielding cost more than a sleep would have: something else had the CPU.
                    self.yielding = false;
                    self.calm = 0;
                } else if t >= YIELD_AFTER.as_nanos() as u64 {
                    self.calm = 0;
                } else {
                    self.calm += 1;
                    if self.calm >= CALM_WAITS && self.yielding {
                        // The peer answers without this CPU again: slow yields seen
                        // before weigh half as much.
                        self.yielding = false;
                        self.backoff /= 2;
                    }
                }
            }
            Outcome::RanOut(slept) => {
                self.fail += (FAIL_ONE - self.fail) / w;
                self.skipped = 0;
                if self.fail > YIELD_FAIL && self.quiet == 0 {
                    self.yielding = true;
                    self.calm = 0;
                }
                self.learn_sleep(slept);
            }
            Outcome::Skipped(slept) => self.learn_sleep(slept),
            Outcome::Moved => {
                // The failures measured the shared CPU, not the peer.
                self.fail = 0;
                self.skipped = 0;
                self.yielding = false;
                self.calm = 0;
            }
        }
    }

    /// Whether the next wait may check for a shared CPU if its spin runs out (or it skips
    /// the spin): once [`MOVE_CHECK_GAP`] waits have passed since the last check.
    pub(crate) fn may_move(&self) -> bool {
        !self.no_peer_cpu && self.since_check >= MOVE_CHECK_GAP
    }

    /// A wait checked for a shared CPU ([`Doorbell::move_off_peer_cpu`]) and found this.
    pub(crate) fn record_check(&mut self, found: PeerCpu) {
        self.since_check = 0;
        // A doorbell that cannot tell once never can (a peer on another core).
        self.no_peer_cpu |= found == PeerCpu::Unknown;
        if found == PeerCpu::Elsewhere && self.fail > BYPASS_FAIL {
            // The peer runs on a CPU of its own: spin again, as after a probe that met it.
            self.fail = BYPASS_FAIL;
            self.skipped = 0;
        }
    }

    /// A wait's yield gave a time slice away ([`SLOW_YIELD`]): stop yielding, and keep it
    /// off for the next `backoff` waits (doubled each time).
    pub(crate) fn record_slow_yield(&mut self) {
        self.yielding = false;
        self.calm = 0;
        self.backoff = (self.backoff.saturating_mul(2)).clamp(YIELD_BACKOFF_MIN, YIELD_BACKOFF_MAX);
        self.quiet = self.backoff;
    }

    /// Waits left before yielding may start again.
    #[cfg(test)]
    pub(crate) fn quiet(&self) -> u32 {
        self.quiet
    }

    fn learn_sleep(&mut self, slept: Option<Duration>) {
        if let Some(t) = slept {
            let t = t.as_nanos().min(u64::MAX as u128) as u64;
            self.slept_ns = self.slept_ns - self.slept_ns / EST_WEIGHT + t / EST_WEIGHT;
        }
    }

    /// Whether spinning waits yield the CPU past [`YIELD_AFTER`].
    pub(crate) fn yields(&self) -> bool {
        self.yielding
    }

    /// The current estimate of a successful spin's length.
    #[cfg(test)]
    pub(crate) fn estimate(&self) -> Duration {
        Duration::from_nanos(self.est_ns)
    }

    /// The current estimate of a sleep's length.
    #[cfg(test)]
    pub(crate) fn slept(&self) -> Duration {
        Duration::from_nanos(self.slept_ns)
    }

    /// Whether waits currently skip spinning.
    #[cfg(test)]
    pub(crate) fn bypassing(&self) -> bool {
        self.fail > BYPASS_FAIL
    }
}

/// What a blocking loop does after a try found nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Next {
    /// Try again at once (spinning).
    Retry,
    /// Arm notifications, re-check, then sleep at most this long (`None`: no limit).
    Sleep(Option<Duration>),
}

/// The state of one blocking call: its deadline and where it is in spin-then-sleep. The
/// clock is first read at the first miss that needs it, not on entry: in `Poll` mode after
/// [`SPINS_PER_CLOCK`] misses in `Poll` and `Adaptive` mode (a call that spins briefly
/// pays for no clock read at all; the adaptive spin budget and the [`SpinPolicy`]'s
/// measurement start there), at the first miss in `Event` mode and when the policy says
/// not to spin.
#[derive(Debug)]
pub(crate) struct Waiter {
    mode: WaitMode,
    timeout: Option<Duration>,
    deadline: Option<Duration>,
    spin_end: Option<Duration>,
    started: bool,
    spinning: bool,
    spins: u32,
    /// Adaptive: the spin budget the policy granted (set at the first miss).
    budget: Option<Duration>,
    /// Adaptive: whether the policy lets this call yield the CPU past [`YIELD_AFTER`].
    may_yield: bool,
    /// Adaptive: the clock read just before the last yield (`None`: the last read did not
    /// yield).
    yielded_at: Option<Duration>,
    /// Adaptive: a yield of this call gave a time slice away ([`SLOW_YIELD`]).
    slow_yield: bool,
    /// Adaptive: whether the policy lets this call check for a shared CPU when its spin
    /// runs out ([`Doorbell::move_off_peer_cpu`]).
    may_move: bool,
    /// Adaptive: what the call's check for a shared CPU found (`None`: no check).
    checked: Option<PeerCpu>,
    /// Adaptive: the call moved off its peer's CPU.
    moved: bool,
    /// Adaptive: the budget ran out (the call then slept or timed out).
    ran_out: bool,
    /// Adaptive: the clock at the first miss and at the latest read.
    first: Duration,
    last: Duration,
    /// Adaptive: the clock when the call decided to sleep.
    slept_at: Option<Duration>,
}

/// How long an adaptive wait spins (from its first clock read) before it yields the CPU at
/// every clock read ([`Doorbell::yield_cpu`]), while its [`SpinPolicy`] says to yield
/// (since a spin ran out): past this, the peer is late — on a loaded
/// machine most likely because it, or what it waits on, cannot get a CPU — and a yield
/// (a system call when nothing else is runnable here, ≈ 0.1–0.5 µs) costs little next to
/// the wait so far.
pub(crate) const YIELD_AFTER: Duration = Duration::from_micros(2);
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
            budget: None,
            may_yield: false,
            yielded_at: None,
            slow_yield: false,
            may_move: false,
            checked: None,
            moved: false,
            ran_out: false,
            first: Duration::ZERO,
            last: Duration::ZERO,
            slept_at: None,
        }
    }

    /// The adaptive maximum when this call still needs its spin budget (its first miss).
    pub(crate) fn wants_budget(&self) -> Option<Duration> {
        match self.mode {
            WaitMode::Adaptive(max) if self.budget.is_none() => Some(max),
            _ => None,
        }
    }

    /// The sleep [`Waiter::after_miss`] asked for did not happen (arming found work):
    /// there is no sleep to learn from (yet).
    pub(crate) fn no_sleep(&mut self) {
        self.slept_at = None;
    }

    /// Whether a yield of this call gave a time slice away ([`SLOW_YIELD`]). A call whose
    /// last clock read yielded and which then ended reads the clock once more to tell.
    pub(crate) fn slow_yield<D: Doorbell + ?Sized>(&mut self, bell: &D) -> bool {
        if let Some(t) = self.yielded_at.take() {
            self.slow_yield |= bell.now().saturating_sub(t) >= SLOW_YIELD;
        }
        self.slow_yield
    }

    /// Gives the call its spin budget, whether it yields the CPU past [`YIELD_AFTER`] and
    /// whether it may check for a shared CPU when the budget runs out (before its first
    /// [`Waiter::after_miss`]).
    pub(crate) fn set_budget(&mut self, budget: Duration, may_yield: bool, may_move: bool) {
        self.budget = Some(budget);
        self.may_yield = may_yield;
        self.may_move = may_move;
    }

    /// What the call's check for a shared CPU found ([`Doorbell::move_off_peer_cpu`]).
    pub(crate) fn checked(&self) -> Option<PeerCpu> {
        self.checked
    }

    /// Checks (once per call, when the policy allows) whether the peer waits for this
    /// CPU, and moves off it; after a move the call spins up to `max` again, without
    /// yielding. Returns whether it moved.
    fn check_cpu<D: Doorbell + ?Sized>(&mut self, bell: &D, now: Duration) -> bool {
        let WaitMode::Adaptive(max) = self.mode else {
            return false;
        };
        if !self.may_move {
            return false;
        }
        self.may_move = false;
        let found = bell.move_off_peer_cpu();
        self.checked = Some(found);
        if found != PeerCpu::Moved {
            return false;
        }
        self.moved = true;
        self.may_yield = false;
        self.spin_end = Some(now.saturating_add(max));
        true
    }

    /// What the [`SpinPolicy`] should learn from this call, given whether it ended in
    /// success (`None`: nothing — not adaptive, no miss, or a timeout before the budget
    /// ran out). A call that slept and succeeded reads the clock once more, to learn how
    /// long it slept.
    pub(crate) fn outcome<D: Doorbell + ?Sized>(
        &self,
        bell: &D,
        succeeded: bool,
    ) -> Option<Outcome> {
        let budget = self.budget?;
        if self.moved {
            return Some(Outcome::Moved);
        }
        let slept = match self.slept_at {
            Some(t) if succeeded => Some(bell.now().saturating_sub(t)),
            _ => None,
        };
        match budget {
            b if b.is_zero() => Some(Outcome::Skipped(slept)),
            _ if self.ran_out => Some(Outcome::RanOut(slept)),
            // Before the first clock read, `last` and `first` are both zero: it counts 0.
            _ if succeeded => Some(Outcome::Spun(self.last.saturating_sub(self.first))),
            _ => None,
        }
    }

    fn start(&mut self, now: Duration) {
        if !self.started {
            self.started = true;
            self.first = now;
            self.deadline = self.timeout.map(|t| now.saturating_add(t));
            self.spin_end = match self.mode {
                WaitMode::Adaptive(d) => Some(now.saturating_add(self.budget.unwrap_or(d))),
                _ => None,
            };
        }
    }

    /// Decides what to do after a try found nothing: spin again, sleep, or give up with
    /// `Timeout` (or `PeerGone` when the liveness check says so).
    pub(crate) fn after_miss<D: Doorbell + ?Sized>(&mut self, bell: &D) -> crate::Result<Next> {
        // Spinning calls read the clock every SPINS_PER_CLOCK spins (the first time after
        // that many misses); a call told to skip spinning goes to the clock at once.
        if self.spinning && (self.started || self.budget != Some(Duration::ZERO)) {
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
        if self.spinning {
            self.last = now;
        }
        if let Some(t) = self.yielded_at.take() {
            if now.saturating_sub(t) >= SLOW_YIELD {
                // That yield gave a slice away: no more yields in this call.
                self.slow_yield = true;
                self.may_yield = false;
            }
        }
        if self.deadline.is_some_and(|d| now >= d) {
            bell.check_peer()?;
            return Err(crate::Error::Timeout);
        }
        if self.spinning && self.spin_end.is_none_or(|end| now < end) {
            if self.may_yield && now.saturating_sub(self.first) >= YIELD_AFTER {
                if self.check_cpu(bell, now) {
                    // Moved off the peer's CPU: no yield needed.
                    core::hint::spin_loop();
                    return Ok(Next::Retry);
                }
                bell.yield_cpu();
                self.yielded_at = Some(now);
            } else {
                core::hint::spin_loop();
            }
            return Ok(Next::Retry);
        }
        // The spin ran out (or was skipped): is the peer waiting for this very CPU? On
        // another CPU now, with the peer free to run on the old one, spin again.
        if self.spinning && self.check_cpu(bell, now) {
            core::hint::spin_loop();
            return Ok(Next::Retry);
        }
        if self.budget.is_some() {
            self.ran_out |= self.spinning;
            self.slept_at.get_or_insert(now);
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
    /// The adaptive spin budget's state, kept across calls.
    fn spin_policy(&mut self) -> &mut SpinPolicy;
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
        if let Some(max) = w.wants_budget() {
            let p = s.spin_policy();
            let b = p.budget(max);
            let y = p.yields();
            let m = p.may_move();
            w.set_budget(b, y, m);
        }
        match w.after_miss(s.bell()) {
            Ok(Next::Retry) => {}
            Ok(Next::Sleep(t)) => {
                armed = true;
                match s.arm(want_tx) {
                    Ok(true) => {
                        w.no_sleep();
                        continue;
                    }
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
    let slow_yield = w.slow_yield(s.bell());
    if let Some(o) = w.outcome(s.bell(), r.is_ok()) {
        s.spin_policy().record(o);
    }
    if let Some(found) = w.checked() {
        s.spin_policy().record_check(found);
    }
    if slow_yield {
        s.spin_policy().record_slow_yield();
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::cell::Cell;

    const US: Duration = Duration::from_micros(1);

    /// A fresh policy spins the whole configured maximum; the budget then follows a few
    /// times the peer's response time, never below what a sleep costs (nor [`MIN_SPIN`]),
    /// never above the maximum.
    #[test]
    fn budget_follows_the_estimates() {
        let max = 50 * US;
        let mut p = SpinPolicy::default();
        assert_eq!(p.budget(max), max);
        // Fast answers alone do not shorten the spin: a sleep is still thought to cost max.
        for _ in 0..64 {
            p.record(Outcome::Spun(Duration::from_nanos(300)));
        }
        assert!(p.estimate() < US, "{:?}", p.estimate());
        assert_eq!(p.budget(max), max);
        // Cheap sleeps do.
        for _ in 0..64 {
            p.record(Outcome::Skipped(Some(US)));
        }
        assert!(p.slept() < 2 * US, "{:?}", p.slept());
        assert_eq!(p.budget(max), MIN_SPIN);
        // A slower peer: four times its answer.
        for _ in 0..64 {
            p.record(Outcome::Spun(3 * US));
        }
        let b = p.budget(max);
        assert!(b > 10 * US && b <= 12 * US, "{b:?}");
        // Dearer sleeps: as long as a sleep.
        for _ in 0..64 {
            p.record(Outcome::Skipped(Some(20 * US)));
        }
        let b = p.budget(max);
        assert!(b > 18 * US && b <= 20 * US, "{b:?}");
        for _ in 0..64 {
            p.record(Outcome::Spun(40 * US));
        }
        assert_eq!(p.budget(max), max);
        // A smaller maximum bounds everything; a new maximum starts afresh.
        assert_eq!(p.budget(US), US);
        assert_eq!(p.estimate(), US / 4);
        assert_eq!(p.slept(), US);
        assert_eq!(p.budget(Duration::ZERO), Duration::ZERO);
    }

    /// While spins keep running out, the budget is no longer than a sleep costs, however
    /// long the successful spins took (the loaded, unpinned tail: issue 24.5); calm again,
    /// it is `SPIN_FACTOR` × the estimate.
    #[test]
    fn contended_spins_last_no_longer_than_a_sleep() {
        let max = 50 * US;
        let mut p = SpinPolicy::default();
        p.budget(max);
        // A peer that answers in 5 µs when it answers while we spin; sleeps cost 6 µs.
        for _ in 0..64 {
            p.record(Outcome::Spun(5 * US));
            p.record(Outcome::Skipped(Some(6 * US)));
        }
        let calm = p.budget(max);
        assert!(calm > 18 * US && calm <= 21 * US, "{calm:?}");
        // Three spins in a row run out: contended.
        for _ in 0..3 {
            p.budget(max);
            p.record(Outcome::RanOut(Some(6 * US)));
        }
        assert!(!p.bypassing());
        let b = p.budget(max);
        assert_eq!(b, p.slept(), "at most a sleep's cost");
        assert!(b < 7 * US, "{b:?}");
        // Calm again (spins succeed): the estimate's budget returns.
        for _ in 0..64 {
            p.budget(max);
            p.record(Outcome::Spun(5 * US));
        }
        assert!(p.budget(max) > 18 * US);
    }

    /// Spins that mostly run out send waits straight to the doorbell, with a full-length
    /// probe every `PROBE_EVERY` waits; a probe that succeeds resumes spinning, and one
    /// failure brings the bypass back, two successes keep it away.
    #[test]
    fn failures_bypass_the_spin_and_probes_resume_it() {
        let max = 50 * US;
        let mut p = SpinPolicy::default();
        let mut ran_out = 0;
        while !p.bypassing() {
            p.budget(max);
            p.record(Outcome::RanOut(None));
            ran_out += 1;
        }
        // (7/8)^n < 1/4 first at n = 11.
        assert_eq!(ran_out, 11);
        for round in 0..3 {
            for i in 1..PROBE_EVERY {
                assert_eq!(p.budget(max), Duration::ZERO, "round {round}, wait {i}");
                p.record(Outcome::Skipped(None));
            }
            assert_eq!(p.budget(max), max, "the probe spins the maximum");
            p.record(Outcome::RanOut(None));
            assert!(p.bypassing());
        }
        // The estimate learnt nothing from failures or skips.
        assert_eq!(p.estimate(), max / SPIN_FACTOR as u32);
        for _ in 1..PROBE_EVERY {
            p.budget(max);
            p.record(Outcome::Skipped(None));
        }
        assert_eq!(p.budget(max), max);
        p.record(Outcome::Spun(US));
        assert!(!p.bypassing());
        assert!(p.budget(max) > Duration::ZERO);
        let mut again = 0;
        while !p.bypassing() {
            p.budget(max);
            p.record(Outcome::RanOut(None));
            again += 1;
        }
        assert_eq!(again, 1);
        for _ in 0..PROBE_EVERY {
            p.budget(max);
            p.record(Outcome::Skipped(None));
        }
        p.record(Outcome::Spun(US));
        p.budget(max);
        p.record(Outcome::Spun(US));
        p.budget(max);
        p.record(Outcome::RanOut(None));
        assert!(!p.bypassing());
    }

    /// A fake link for `block_on`: a clock that advances 1 µs per read, a reply that
    /// appears on the `ready_at`-th try (or once the doorbell is slept on), and counts of
    /// what the loop did.
    struct Fake {
        clock: Cell<Duration>,
        rung: Cell<bool>,
        tries: u32,
        ready_at: u32,
        sleeps: u32,
        pending_on_arm: bool,
        mode: WaitMode,
        policy: SpinPolicy,
        yields: Cell<u32>,
        /// How far the clock moves during a yield (the time slice it gave away).
        yield_cost: Cell<Duration>,
        /// The peer waits for this side's CPU: no reply while spinning, until a move.
        shared: Cell<bool>,
        /// What a check finds when the peer does not share this side's CPU.
        found: Cell<PeerCpu>,
        /// Calls of `move_off_peer_cpu`, and how many moved.
        checks: Cell<u32>,
        moves: Cell<u32>,
    }

    impl Doorbell for Fake {
        fn ring(&self, _: u32) -> crate::Result<()> {
            Ok(())
        }
        fn wait(&self, _: Option<Duration>) -> crate::Result<bool> {
            self.clock.set(self.clock.get() + 100 * US);
            self.rung.set(true);
            Ok(true)
        }
        fn now(&self) -> Duration {
            self.clock.set(self.clock.get() + US);
            self.clock.get()
        }
        fn yield_cpu(&self) {
            self.yields.set(self.yields.get() + 1);
            self.clock.set(self.clock.get() + self.yield_cost.get());
        }
        fn move_off_peer_cpu(&self) -> PeerCpu {
            self.checks.set(self.checks.get() + 1);
            if self.shared.replace(false) {
                self.moves.set(self.moves.get() + 1);
                PeerCpu::Moved
            } else {
                self.found.get()
            }
        }
    }

    impl Sleeper for Fake {
        type Bell = Fake;
        fn bell(&self) -> &Fake {
            self
        }
        fn wait_mode(&self) -> WaitMode {
            self.mode
        }
        fn spin_policy(&mut self) -> &mut SpinPolicy {
            &mut self.policy
        }
        fn arm(&mut self, _: bool) -> crate::Result<bool> {
            // With `pending_on_arm`, the reply turns out to be there when arming re-checks.
            self.rung.set(self.pending_on_arm);
            Ok(self.pending_on_arm)
        }
        fn disarm(&mut self) {}
        fn note_sleep(&mut self) {
            self.sleeps += 1;
        }
        fn fail(&mut self, e: crate::Error) -> crate::Error {
            e
        }
    }

    impl Fake {
        fn new(mode: WaitMode) -> Self {
            Fake {
                clock: Cell::new(Duration::ZERO),
                rung: Cell::new(false),
                tries: 0,
                ready_at: 0,
                sleeps: 0,
                pending_on_arm: false,
                mode,
                policy: SpinPolicy::default(),
                yields: Cell::new(0),
                yield_cost: Cell::new(Duration::ZERO),
                shared: Cell::new(false),
                found: Cell::new(PeerCpu::Stays),
                checks: Cell::new(0),
                moves: Cell::new(0),
            }
        }
        /// One blocking call whose reply comes on try `ready_at` (1: at once).
        fn call(&mut self, ready_at: u32) -> crate::Result<u32> {
            self.tries = 0;
            self.ready_at = ready_at;
            self.rung.set(false);
            block_on(self, Some(Duration::from_secs(1)), false, |f| {
                f.tries += 1;
                let spun = f.tries >= f.ready_at && !f.shared.get();
                Ok((spun || f.rung.get()).then_some(f.tries))
            })
        }
    }

    /// Through `block_on`: a reply found while spinning teaches the estimate (the time from
    /// the first clock read to the last, 64 spins apart); a call answered at once
    /// teaches nothing; a spin that runs out sleeps and counts as a failure; once spins
    /// mostly fail, a call sleeps after a single try.
    #[test]
    fn block_on_feeds_the_policy() {
        let mut f = Fake::new(WaitMode::Adaptive(50 * US));
        assert_eq!(f.call(1), Ok(1));
        assert_eq!(
            f.policy.max,
            Duration::ZERO,
            "no miss: the policy was not asked"
        );
        // Reply on try 200: misses 1..199; the clock is read after spins 64, 128 and 192
        // (one more microsecond each), so the spin took 2 µs from the first read.
        assert_eq!(f.call(200), Ok(200));
        assert_eq!(f.sleeps, 0);
        let est0 = 50 * US / SPIN_FACTOR as u32;
        assert_eq!(f.policy.estimate(), est0 - est0 / 8 + 2 * US / 8);
        // A reply within the first 64 spins reads no clock and counts 0.
        f.call(50).unwrap();
        let est1 = est0 - est0 / 8 + 2 * US / 8;
        assert_eq!(f.policy.estimate(), est1 - est1 / 8);
        assert_eq!(f.clock.get(), 3 * US, "three clock reads in all");
        // A reply that never comes while spinning: the budget runs out, the call sleeps
        // (100 µs, plus the clock read after it), and that is a failure.
        let before = f.policy.fail;
        assert!(f.call(u32::MAX).is_ok());
        assert_eq!(f.sleeps, 1);
        assert!(f.policy.fail > before);
        let slept = 50 * US - 50 * US / 8 + 101 * US / 8;
        assert_eq!(f.policy.slept(), slept);
        // A reply found by arming's re-check: a failed spin, but no sleep to learn from.
        f.pending_on_arm = true;
        let fail = f.policy.fail;
        assert!(f.call(u32::MAX).is_ok());
        assert_eq!(f.sleeps, 1);
        assert!(f.policy.fail > fail);
        assert_eq!(f.policy.slept(), slept);
        f.pending_on_arm = false;
        while !f.policy.bypassing() {
            f.call(u32::MAX).unwrap();
        }
        let sleeps = f.sleeps;
        // Bypassing: one try, then straight to sleep.
        assert_eq!(f.call(u32::MAX), Ok(2));
        assert_eq!(f.sleeps, sleeps + 1);
        // Poll and event modes leave the policy alone.
        for mode in [WaitMode::Poll, WaitMode::Event] {
            let mut f = Fake::new(mode);
            f.call(500).unwrap();
            assert_eq!(f.policy.max, Duration::ZERO);
        }
    }

    /// After a spin ran out, an adaptive wait yields the CPU at each clock read once it
    /// has spun [`YIELD_AFTER`] (2 µs) since its first one, and not before; [`CALM_WAITS`]
    /// quick answers in a row stop the yielding; poll and event waits never yield.
    #[test]
    fn long_adaptive_spins_yield_the_cpu() {
        let mut f = Fake::new(WaitMode::Adaptive(50 * US));
        // Before spins ran out: no yield, however long the spin; a spin that runs out now
        // and then does not start yielding, three in a row do.
        f.call(1000).unwrap();
        assert_eq!(f.yields.get(), 0);
        f.call(u32::MAX).unwrap();
        f.call(u32::MAX).unwrap();
        assert!(!f.policy.yields());
        f.call(u32::MAX).unwrap();
        assert_eq!(f.sleeps, 3);
        assert!(f.policy.yields());
        assert_eq!(f.yields.get(), 0);
        // Reads after spins 64 (1 µs, the first), 128 (2 µs) and 192 (3 µs: 2 µs after the
        // first): one yield.
        f.call(200).unwrap();
        assert_eq!(f.yields.get(), 1);
        // Within the first 64 spins: no clock read, no yield.
        f.call(50).unwrap();
        assert_eq!(f.yields.get(), 1);
        // 1000 tries: reads at 64, 128, ..., 960 (15 reads), yields from the third on.
        f.call(1000).unwrap();
        assert_eq!(f.yields.get(), 1 + 13);
        assert_eq!(f.sleeps, 3);
        // Quick answers (within 2 µs of the first read) stop the yielding after CALM_WAITS
        // in a row; a slow one in between starts the count again.
        for _ in 0..CALM_WAITS - 1 {
            f.call(100).unwrap();
        }
        f.call(1000).unwrap();
        for _ in 0..CALM_WAITS - 1 {
            f.call(100).unwrap();
        }
        assert!(f.policy.yields());
        f.call(100).unwrap();
        assert!(!f.policy.yields());
        let y = f.yields.get();
        f.call(1000).unwrap();
        assert_eq!(f.yields.get(), y);
        // A yielding wait is contended (spins ran out): it spins no longer than a sleep
        // costs, then sleeps.
        let mut f = Fake::new(WaitMode::Adaptive(200 * US));
        for _ in 0..3 {
            f.call(u32::MAX).unwrap();
        }
        assert!(f.policy.yields());
        // 101 µs per sleep learnt from a start at 200 µs: `slept` is about 167 µs, and so
        // is the budget (the estimate's 200 µs is capped); a reply after 180 µs (181 reads
        // after the first) is met asleep.
        assert!(f.policy.slept() < 180 * US, "{:?}", f.policy.slept());
        f.call(64 * 182).unwrap();
        assert_eq!(f.sleeps, 4);
        // A spin that runs out yields at every read past 2 µs, then sleeps; it yields
        // nothing more once asleep.
        let mut f = Fake::new(WaitMode::Adaptive(10 * US));
        for _ in 0..3 {
            f.call(u32::MAX).unwrap();
        }
        f.yields.set(0);
        f.call(u32::MAX).unwrap();
        assert_eq!(f.sleeps, 4);
        let y = f.yields.get();
        // Reads at 1..=11 µs: spinning while now < 1 + 10 µs, yielding from 3 µs: 3..=10.
        assert_eq!(y, 8);
        for mode in [WaitMode::Poll, WaitMode::Event] {
            let mut f = Fake::new(mode);
            f.call(5000).unwrap();
            assert_eq!(f.yields.get(), 0, "{mode}");
        }
    }

    /// Issue 24.5: a yield that gives a time slice away (the next clock read comes
    /// [`SLOW_YIELD`] or more later) ends yielding in that wait and for the next
    /// [`YIELD_BACKOFF_MIN`] waits, doubling with each slow yield up to
    /// [`YIELD_BACKOFF_MAX`] and halving when yielding stops because the peer answers
    /// quickly again; spins that run out during the back-off do not restart yielding.
    #[test]
    fn slow_yields_back_off() {
        let mut f = Fake::new(WaitMode::Adaptive(50 * US));
        let start_yielding = |f: &mut Fake| {
            let mut n = 0;
            while !f.policy.yields() {
                f.call(u32::MAX).unwrap();
                n += 1;
                assert!(n <= 3, "three spins that run out start yielding");
            }
        };
        start_yielding(&mut f);
        // A fast yield (the peer ran) changes nothing.
        f.call(200).unwrap();
        assert_eq!(f.yields.get(), 1);
        assert!(f.policy.yields());
        assert_eq!(f.policy.quiet(), 0);
        // A yield that takes 500 µs: found at the end of the call (its last read yielded).
        f.yield_cost.set(500 * US);
        f.call(200).unwrap();
        assert_eq!(f.yields.get(), 2);
        assert!(!f.policy.yields());
        assert_eq!(f.policy.quiet(), YIELD_BACKOFF_MIN);
        // During the back-off, spins that run out do not turn yielding on, and nothing
        // yields; every wait counts down.
        for _ in 0..5 {
            f.call(u32::MAX).unwrap();
        }
        assert!(!f.policy.yields());
        assert_eq!(f.yields.get(), 2);
        assert_eq!(f.policy.quiet(), YIELD_BACKOFF_MIN - 5);
        while f.policy.quiet() > 0 {
            f.call(100).unwrap();
        }
        // Afterwards yielding can start again; a slow yield in the middle of a wait stops
        // that wait's yields at once (one yield, then spinning until the budget runs out),
        // and doubles the back-off.
        start_yielding(&mut f);
        let y = f.yields.get();
        f.call(u32::MAX).unwrap();
        assert_eq!(f.yields.get(), y + 1);
        assert_eq!(f.policy.quiet(), 2 * YIELD_BACKOFF_MIN);
        // Yielding that stops because the peer answers quickly halves it.
        f.yield_cost.set(Duration::ZERO);
        while f.policy.quiet() > 0 {
            f.call(100).unwrap();
        }
        start_yielding(&mut f);
        for _ in 0..CALM_WAITS {
            f.call(100).unwrap();
        }
        assert!(!f.policy.yields());
        start_yielding(&mut f);
        f.yield_cost.set(500 * US);
        f.call(200).unwrap();
        assert_eq!(
            f.policy.quiet(),
            2 * YIELD_BACKOFF_MIN,
            "halved to 128, doubled"
        );
        // Never more than the maximum.
        for _ in 0..20 {
            f.policy.record_slow_yield();
        }
        assert_eq!(f.policy.quiet(), YIELD_BACKOFF_MAX);
        // Poll and event waits never yield, so never back off.
        for mode in [WaitMode::Poll, WaitMode::Event] {
            let mut f = Fake::new(mode);
            f.yield_cost.set(500 * US);
            f.call(5000).unwrap();
            assert_eq!(f.policy.quiet(), 0, "{mode}");
        }
    }

    /// Issue 24.5: host and peer on one CPU. A spin that runs out checks (at most once per
    /// [`MOVE_CHECK_GAP`] waits) whether the peer waits for this CPU; when the doorbell
    /// moved this side off it, the wait spins the maximum again (and meets the reply
    /// instead of sleeping), and the failures seen on the shared CPU are forgotten —
    /// also while waits were sent straight to the doorbell.
    #[test]
    fn a_spin_on_the_peers_cpu_moves_off_it() {
        let mut f = Fake::new(WaitMode::Adaptive(50 * US));
        f.shared.set(true);
        // The first spin runs out (3200 tries, 50 clock reads), checks, moves, spins on
        // and meets the reply: no sleep.
        assert!(f.call(200).unwrap() > 3200);
        assert_eq!((f.checks.get(), f.moves.get(), f.sleeps), (1, 1, 0));
        assert_eq!(f.policy.fail, 0);
        // Shared again at once: no check before MOVE_CHECK_GAP waits; the spins run out
        // and sleep, and soon go straight to the doorbell.
        f.shared.set(true);
        let mut n = 0;
        while !f.policy.bypassing() {
            f.call(200).unwrap();
            n += 1;
        }
        assert_eq!(f.checks.get(), 1, "no check within the gap");
        assert_eq!(f.sleeps, n);
        while f.checks.get() == 1 {
            f.call(200).unwrap();
            n += 1;
        }
        // The first wait after the gap checks (a skipped one: bypassing), moves and spins.
        assert_eq!(n, MOVE_CHECK_GAP);
        assert_eq!(f.moves.get(), 2);
        assert_eq!(f.sleeps, n - 1, "the moved wait did not sleep");
        assert!(!f.policy.bypassing());
        assert!(!f.policy.yields());
        // A check that finds the peer elsewhere (it does not move) sleeps as before, and
        // the gap starts again.
        for _ in 0..MOVE_CHECK_GAP {
            f.call(200).unwrap();
        }
        let (c, s) = (f.checks.get(), f.sleeps);
        f.call(u32::MAX).unwrap();
        assert_eq!((f.checks.get(), f.moves.get(), f.sleeps), (c + 1, 2, s + 1));
        f.call(u32::MAX).unwrap();
        assert_eq!(f.checks.get(), c + 1);
        // Poll and event waits never check.
        for mode in [WaitMode::Poll, WaitMode::Event] {
            let mut f = Fake::new(mode);
            f.call(5000).unwrap();
            assert_eq!(f.checks.get(), 0, "{mode}");
        }
    }

    /// Issue 24.5: a contended spin that would yield on the peer's CPU (where a yield may
    /// hand the slice to another busy process) checks first, moves off it and spins on
    /// without yielding; yielding stops.
    #[test]
    fn a_yielding_spin_on_the_peers_cpu_moves_instead() {
        let mut f = Fake::new(WaitMode::Adaptive(50 * US));
        for _ in 0..3 {
            f.call(u32::MAX).unwrap();
        }
        assert!(f.policy.yields());
        assert_eq!(f.checks.get(), 1, "the first spin that ran out checked");
        f.policy.since_check = MOVE_CHECK_GAP;
        f.shared.set(true);
        let y = f.yields.get();
        // Reads after spins 64 (the first), 128 and 192 (2 µs on: it would yield there).
        f.call(1000).unwrap();
        assert_eq!((f.checks.get(), f.moves.get()), (2, 1));
        assert_eq!(f.yields.get(), y, "no yield");
        assert_eq!(f.sleeps, 3, "no sleep");
        assert!(!f.policy.yields());
    }

    /// Issue 24.5: while waits go straight to the doorbell, a check that finds the peer
    /// runnable on another CPU resumes spinning (as a probe that met the peer would); one
    /// that finds it asleep changes nothing.
    #[test]
    fn a_peer_running_elsewhere_ends_the_bypass() {
        let mut f = Fake::new(WaitMode::Adaptive(50 * US));
        while !f.policy.bypassing() {
            f.call(u32::MAX).unwrap();
        }
        f.policy.since_check = MOVE_CHECK_GAP;
        f.call(u32::MAX).unwrap();
        assert_eq!(f.checks.get(), 2);
        assert!(f.policy.bypassing(), "the peer sleeps: still bypassing");
        f.found.set(PeerCpu::Elsewhere);
        f.policy.since_check = MOVE_CHECK_GAP;
        f.call(u32::MAX).unwrap();
        assert_eq!(f.checks.get(), 3);
        assert!(!f.policy.bypassing());
        let s = f.sleeps;
        f.call(200).unwrap();
        assert_eq!(f.sleeps, s, "the next wait spun and met the reply");
        assert_eq!(f.moves.get(), 0);
    }

    /// A doorbell that cannot tell where the peer runs is asked once, never again.
    #[test]
    fn a_doorbell_that_cannot_tell_is_asked_once() {
        let mut f = Fake::new(WaitMode::Adaptive(50 * US));
        f.found.set(PeerCpu::Unknown);
        for _ in 0..4 * MOVE_CHECK_GAP {
            f.call(u32::MAX).unwrap();
        }
        assert_eq!(f.checks.get(), 1);
    }
}
