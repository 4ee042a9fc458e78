//! The [`Doorbell`] suite.

use super::*;

/// The ids that reached one side, as that side's hardware (or fake of it) records them:
/// each call returns the distinct ids rung since the previous call, in any order.
pub type IdProbe<'a> = Box<dyn FnMut() -> Vec<u32> + 'a>;

/// Two connected doorbells, `a` and `b` (each rings the other), and what the
/// [`doorbell`] suite needs to know about them.
pub struct BellPair<'a, A, B> {
    /// One side.
    pub a: A,
    /// The other side.
    pub b: B,
    /// Notify ids both sides may ring (at least one).
    pub ids: Vec<u32>,
    /// For a doorbell that carries notify ids: the ids that reached `b` (required when
    /// `A::CARRIES_NOTIFY_ID`).
    pub ids_at_b: Option<IdProbe<'a>>,
    /// The same for `a` (required when `B::CARRIES_NOTIFY_ID`).
    pub ids_at_a: Option<IdProbe<'a>>,
    /// Makes `b`'s side die (drops it, ends its process, signals its stop descriptor), for
    /// a doorbell that detects a dead peer; `None` for one that cannot.
    pub kill_b: Option<Box<dyn FnOnce(B) + 'a>>,
    /// For a doorbell played by a fake whose hardware moves rings on its own thread (plain
    /// memory cannot make a register write reach the peer at once): returns once every
    /// ring made so far has reached the receiver. Called after the rings the suite
    /// expects one wait to consume together; `None` for real descriptors and memory.
    pub settle: Option<Box<dyn FnMut() + 'a>>,
}

impl<'a, A, B> BellPair<'a, A, B> {
    /// A pair ringing `ids`, carrying no notify ids and detecting no dead peer.
    pub fn new(a: A, b: B, ids: Vec<u32>) -> Self {
        Self {
            a,
            b,
            ids,
            ids_at_b: None,
            ids_at_a: None,
            kill_b: None,
            settle: None,
        }
    }
}

const QUIET: Duration = Duration::from_millis(20);
const ARRIVES: Duration = Duration::from_secs(5);

/// Checks two connected [`Doorbell`]s against the trait's contract: an unrung doorbell
/// times out (and not early; a zero timeout polls), a ring made before the wait is kept
/// and wakes it, one wait consumes every pending ring, a side's ring never wakes itself, a
/// ring from another thread wakes a sleeping waiter (bounded and unbounded waits), both
/// directions work, the clock is monotonic, the notify id reaches the peer when the
/// doorbell says it carries ids (and an id it cannot deliver is refused, ringing nothing),
/// a live peer is reported alive and (with `kill_b`) a dead one as [`Error::PeerGone`].
pub fn doorbell<A: Doorbell + Sync, B: Doorbell + Sync>(pair: BellPair<'_, A, B>) -> Outcome {
    guarded(move || {
        let BellPair {
            a,
            b,
            ids,
            mut ids_at_b,
            mut ids_at_a,
            kill_b,
            mut settle,
        } = pair;
        ensure!(
            !ids.is_empty(),
            "the suite needs a notify id to ring",
            "none given"
        );
        if (A::CARRIES_NOTIFY_ID && ids_at_b.is_none())
            || (B::CARRIES_NOTIFY_ID && ids_at_a.is_none())
        {
            return Err(violation(
                "a doorbell that carries notify ids comes with a probe of the ids delivered",
                "ids_at_a/ids_at_b missing",
            ));
        }
        for (probe, carries) in [
            (&mut ids_at_b, A::CARRIES_NOTIFY_ID),
            (&mut ids_at_a, B::CARRIES_NOTIFY_ID),
        ] {
            if carries {
                if let Some(p) = probe.as_mut() {
                    p();
                }
            }
        }
        ensure!(
            a.check_peer() == Ok(()) && b.check_peer() == Ok(()),
            "check_peer reports a live peer as alive",
            "a: {:?}, b: {:?}",
            a.check_peer(),
            b.check_peer()
        );
        quiet(&b, "b, before any ring")?;
        quiet(&a, "a, before any ring")?;
        let z = b.wait(Some(Duration::ZERO));
        ensure!(
            z == Ok(false),
            "a zero timeout polls",
            "wait(0) with nothing rung: {z:?}"
        );

        for &id in &ids {
            one_way(&a, &b, id, "a to b", A::CARRIES_NOTIFY_ID, &mut ids_at_b)?;
            one_way(&b, &a, id, "b to a", B::CARRIES_NOTIFY_ID, &mut ids_at_a)?;
        }
        let id = ids[0];
        // Several rings before one wait: consumed together.
        a.ring(id)
            .map_err(|e| violation("ring succeeds", format!("{e:?}")))?;
        a.ring(id)
            .map_err(|e| violation("ring succeeds", format!("{e:?}")))?;
        if let Some(s) = settle.as_mut() {
            s();
        }
        let r = b.wait(Some(ARRIVES));
        ensure!(r == Ok(true), "a pending ring wakes the next wait", "{r:?}");
        quiet(&b, "b, after a wait consumed two rings")?;

        wakes_sleeper(&a, &b, id, Some(Duration::from_secs(10)))?;
        wakes_sleeper(&b, &a, id, Some(Duration::from_secs(10)))?;
        wakes_sleeper(&a, &b, id, None)?;

        if A::CARRIES_NOTIFY_ID {
            let bad = u32::MAX;
            if !ids.contains(&bad) {
                let r = a.ring(bad);
                ensure!(
                    r.is_err(),
                    "a doorbell carrying ids refuses an id it cannot deliver",
                    "ring({bad:#x}) returned {r:?}"
                );
                quiet(&b, "b, after a refused ring")?;
            }
        }

        let t0 = a.now();
        std::thread::sleep(Duration::from_millis(10));
        let t1 = a.now();
        ensure!(
            t1 >= t0 + Duration::from_millis(10),
            "now() is a monotonic clock",
            "{t0:?} then {t1:?} across a 10 ms sleep"
        );

        if let Some(kill) = kill_b {
            kill(b);
            let r = a.wait(Some(ARRIVES));
            ensure!(
                r == Err(Error::PeerGone),
                "wait reports a dead peer as PeerGone",
                "{r:?}"
            );
            let r = a.check_peer();
            ensure!(
                r == Err(Error::PeerGone),
                "check_peer reports a dead peer as PeerGone",
                "{r:?}"
            );
        }
        Ok(())
    })
}

fn quiet<D: Doorbell>(d: &D, who: &str) -> Outcome {
    let t0 = Instant::now();
    let r = d.wait(Some(QUIET));
    let took = t0.elapsed();
    ensure!(
        r == Ok(false),
        "wait returns Ok(false) when nothing rang before the timeout",
        "{who}: {r:?}"
    );
    ensure!(
        took >= QUIET - Duration::from_millis(2),
        "wait sleeps for its timeout when nothing rings",
        "{who}: returned after {took:?} of {QUIET:?}"
    );
    Ok(())
}

fn one_way<X: Doorbell, Y: Doorbell>(
    from: &X,
    to: &Y,
    id: u32,
    dir: &str,
    carries: bool,
    probe: &mut Option<IdProbe<'_>>,
) -> Outcome {
    from.ring(id)
        .map_err(|e| violation("ring succeeds", format!("{dir}, id {id}: {e:?}")))?;
    let r = to.wait(Some(ARRIVES));
    ensure!(
        r == Ok(true),
        "a ring made before the wait is kept and wakes it",
        "{dir}, id {id}: {r:?}"
    );
    if carries {
        if let Some(p) = probe.as_mut() {
            let mut got = p();
            got.sort_unstable();
            got.dedup();
            ensure!(
                got == [id],
                "a doorbell carrying ids delivers the id it was rung with",
                "{dir}: rang {id}, the peer saw {got:?}"
            );
        }
    }
    quiet(from, &format!("{dir}: the ringing side"))?;
    quiet(to, &format!("{dir}: after the ring was consumed"))
}

fn wakes_sleeper<X: Doorbell + Sync, Y: Doorbell + Sync>(
    from: &X,
    to: &Y,
    id: u32,
    timeout: Option<Duration>,
) -> Outcome {
    let woken = AtomicBool::new(false);
    let (r, took) = std::thread::scope(|s| {
        s.spawn(|| {
            // Ring once after the waiter has gone to sleep; keep ringing (bounded) so a
            // doorbell that loses rings cannot hang the suite in an unbounded wait.
            std::thread::sleep(Duration::from_millis(30));
            let end = Instant::now() + Duration::from_secs(10);
            while !woken.load(Ordering::Acquire) && Instant::now() < end {
                let _ = from.ring(id);
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        let t0 = Instant::now();
        let r = to.wait(timeout);
        let took = t0.elapsed();
        woken.store(true, Ordering::Release);
        (r, took)
    });
    ensure!(
        r == Ok(true),
        "a ring from another thread wakes a sleeping waiter",
        "wait({timeout:?}): {r:?}"
    );
    ensure!(
        took >= Duration::from_millis(25) && took < Duration::from_secs(5),
        "the waiter sleeps until the ring, and the first ring wakes it",
        "woke after {took:?} (rung after 30 ms)"
    );
    // A second ring may have landed while the waiter was waking: let it go.
    let _ = to.wait(Some(QUIET));
    Ok(())
}
