//! Conformance suites for the four traits a platform implements: [`shared_memory`],
//! [`doorbell`], [`cache_ops`] and [`device_address_map`].
//!
//! Each suite is written once, against the trait's documented contract, and run for every
//! implementation in the workspace (each crate's `tests/conformance.rs`) — the way iceoryx2
//! runs one generic test suite per concept over every backend. A new implementation (a
//! board's mailbox, a vendor's cache instructions, an IOMMU's address map) should be run
//! through its suite before it is used.
//!
//! A suite returns `Err(`[`Violation`]`)` naming the first rule the implementation broke;
//! a panic where the contract does not ask for one is reported the same way. Each suite is
//! itself tested against a deliberately broken implementation that it must reject.
//!
//! The suites are destructive: they write patterns over the whole region (or the rings and
//! counters of the doorbells) and expect nothing else to use what they are given while
//! they run.
#![allow(unsafe_code)]

use crate::dataplane::CacheOps;
use crate::{DevAddr, DeviceAddressMap, Doorbell, Error, SharedMemory};
use core::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// A rule of a trait's contract that an implementation broke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The rule, as the suite states it.
    pub rule: &'static str,
    /// What the suite saw instead.
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "contract violated: {} ({})", self.rule, self.detail)
    }
}

impl std::error::Error for Violation {}

/// What a suite returns.
pub type Outcome = Result<(), Violation>;

fn violation(rule: &'static str, detail: impl Into<String>) -> Violation {
    Violation {
        rule,
        detail: detail.into(),
    }
}

macro_rules! ensure {
    ($cond:expr, $rule:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(violation($rule, format!($($fmt)+)));
        }
    };
}

/// Whether `f` panics (the panic is caught).
fn panics(f: impl FnOnce()) -> bool {
    catch_unwind(AssertUnwindSafe(f)).is_err()
}

/// Runs a suite body, turning a panic the contract does not call for into a violation.
fn guarded(body: impl FnOnce() -> Outcome) -> Outcome {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(r) => r,
        Err(p) => {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            Err(violation(
                "no panic where the contract does not call for one",
                msg,
            ))
        }
    }
}

/// A byte pattern that differs per `seed` and per position.
fn pattern(seed: u8, n: usize) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ 0x5a)
        .collect()
}

fn first_difference(got: &[u8], want: &[u8]) -> String {
    match got.iter().zip(want).position(|(a, b)| a != b) {
        Some(i) => format!(
            "first difference at +{i:#x}: {:#04x}, expected {:#04x}",
            got[i], want[i]
        ),
        None => format!("lengths {} and {}", got.len(), want.len()),
    }
}

// ---------------------------------------------------------------------------------------
// SharedMemory

/// Checks a [`SharedMemory`] of at least 256 bytes (a multiple of 8) against the trait's contract: the base
/// is null or 8-aligned; bytes written are read back, at any offset and alignment, without
/// touching their neighbours; the atomic accessors agree with the byte accessors
/// (little-endian); every access that leaves the region, overflows or is misaligned panics
/// before touching memory, while empty accesses at the end are allowed; and a Release store
/// publishes earlier writes to an Acquire load on another thread.
pub fn shared_memory<M: SharedMemory + Sync + ?Sized>(mem: &M) -> Outcome {
    guarded(|| {
        let len = mem.len();
        ensure!(
            len >= 256 && len % 8 == 0,
            "the suite needs a region of at least 256 bytes, a multiple of 8",
            "len() is {len}"
        );
        ensure!(
            !mem.is_empty(),
            "is_empty() agrees with len()",
            "is_empty() is true for {len} bytes"
        );
        let p = mem.as_ptr();
        ensure!(
            p.is_null() || (p as usize) % 8 == 0,
            "as_ptr() is null or aligned to 8",
            "{p:p}"
        );
        shm_bytes(mem, len)?;
        shm_atomics(mem, len)?;
        shm_bounds(mem, len)?;
        shm_publication(mem)?;
        for order in [Ordering::Acquire, Ordering::Release, Ordering::SeqCst] {
            mem.fence(order);
        }
        Ok(())
    })
}

fn shm_bytes<M: SharedMemory + ?Sized>(mem: &M, len: usize) -> Outcome {
    let cases = [
        (0, 64),
        (1, 13),
        (7, 1),
        (len / 2 - 3, 37),
        (len - 64, 64),
        (len - 5, 5),
        (len - 1, 1),
    ];
    for (k, &(off, n)) in cases.iter().enumerate() {
        // Guard bytes around the range, then the payload.
        let lo = off.saturating_sub(16);
        let hi = (off + n + 16).min(len);
        mem.write(lo, &vec![0xEE; hi - lo]);
        let data = pattern(k as u8, n);
        mem.write(off, &data);
        let mut back = vec![0u8; n];
        mem.read(off, &mut back);
        ensure!(
            back == data,
            "read returns what write stored",
            "{n} bytes at {off:#x}: {}",
            first_difference(&back, &data)
        );
        let mut around = vec![0u8; hi - lo];
        mem.read(lo, &mut around);
        let mut want = vec![0xEE; hi - lo];
        want[off - lo..off - lo + n].copy_from_slice(&data);
        ensure!(
            around == want,
            "write touches only the bytes it is given",
            "{n} bytes at {off:#x}: {}",
            first_difference(&around, &want)
        );
    }
    // Empty accesses are in bounds anywhere up to and including the end.
    mem.read(len, &mut []);
    mem.write(len, &[]);
    mem.read(0, &mut []);
    Ok(())
}

fn shm_atomics<M: SharedMemory + ?Sized>(mem: &M, len: usize) -> Outcome {
    let last4 = (len - 4) & !3;
    for off in [0, 8, 100, last4] {
        mem.write(
            off.saturating_sub(4),
            &[0xEE; 12][..(12).min(len - off.saturating_sub(4))],
        );
        mem.store_u32(off, 0x0403_0201, Ordering::Release);
        let mut b = [0u8; 4];
        mem.read(off, &mut b);
        ensure!(
            b == [1, 2, 3, 4],
            "store_u32 stores little-endian bytes",
            "at {off:#x}: {b:02x?}"
        );
        mem.write(off, &[0x0a, 0x0b, 0x0c, 0x0d]);
        let v = mem.load_u32(off, Ordering::Acquire);
        ensure!(
            v == 0x0d0c_0b0a,
            "load_u32 reads what write stored, little-endian",
            "at {off:#x}: {v:#x}"
        );
        if off >= 4 {
            let mut before = [0u8; 4];
            mem.read(off - 4, &mut before);
            ensure!(
                before == [0xEE; 4],
                "store_u32 touches only its 4 bytes",
                "bytes before {off:#x}: {before:02x?}"
            );
        }
        if off + 8 <= len {
            let mut after = [0u8; 4];
            mem.read(off + 4, &mut after);
            ensure!(
                after == [0xEE; 4],
                "store_u32 touches only its 4 bytes",
                "bytes after {off:#x}: {after:02x?}"
            );
        }
    }
    let last2 = (len - 2) & !1;
    for off in [0, 2, 6, last2] {
        let g = off & !3;
        mem.write(g, &[0xEE; 4][..4.min(len - g)]);
        mem.store_u16(off, 0xB2A1, Ordering::Release);
        let mut b = [0u8; 2];
        mem.read(off, &mut b);
        ensure!(
            b == [0xA1, 0xB2],
            "store_u16 stores little-endian bytes",
            "at {off:#x}: {b:02x?}"
        );
        mem.write(off, &[0x34, 0x12]);
        let v = mem.load_u16(off, Ordering::Acquire);
        ensure!(
            v == 0x1234,
            "load_u16 reads what write stored, little-endian",
            "at {off:#x}: {v:#x}"
        );
        let other = if off % 4 == 0 { off + 2 } else { off - 2 };
        if other + 2 <= len {
            let mut o = [0u8; 2];
            mem.read(other, &mut o);
            ensure!(
                o == [0xEE; 2],
                "store_u16 touches only its 2 bytes",
                "bytes at {other:#x} after a store at {off:#x}: {o:02x?}"
            );
        }
    }
    Ok(())
}

fn shm_bounds<M: SharedMemory + ?Sized>(mem: &M, len: usize) -> Outcome {
    let tail = len - 8;
    mem.write(tail, &[0x11; 8]);
    let far = usize::MAX & !3;
    type Access<'a> = (&'a str, Box<dyn Fn() + 'a>);
    let cases: Vec<Access<'_>> = vec![
        (
            "read past the end",
            Box::new(|| mem.read(len - 3, &mut [0; 4])),
        ),
        (
            "write past the end",
            Box::new(|| mem.write(len - 4, &[0xFF; 8])),
        ),
        (
            "empty read beyond the end",
            Box::new(|| mem.read(len + 1, &mut [])),
        ),
        (
            "read whose end overflows",
            Box::new(|| mem.read(usize::MAX, &mut [0; 2])),
        ),
        (
            "write whose end overflows",
            Box::new(|| mem.write(usize::MAX - 1, &[0xFF; 4])),
        ),
        (
            "load_u16 of the last byte",
            Box::new(|| {
                let _ = mem.load_u16(len - 1, Ordering::Relaxed);
            }),
        ),
        (
            "load_u16 at the end",
            Box::new(|| {
                let _ = mem.load_u16(len, Ordering::Relaxed);
            }),
        ),
        (
            "store_u16 at the end",
            Box::new(|| mem.store_u16(len, 0xFFFF, Ordering::Relaxed)),
        ),
        (
            "load_u32 of the last 2 bytes",
            Box::new(|| {
                let _ = mem.load_u32(len - 2, Ordering::Relaxed);
            }),
        ),
        (
            "store_u32 across the end",
            Box::new(|| mem.store_u32(len - 2, u32::MAX, Ordering::Relaxed)),
        ),
        (
            "load_u32 whose end overflows",
            Box::new(|| {
                let _ = mem.load_u32(far, Ordering::Relaxed);
            }),
        ),
        (
            "misaligned load_u16",
            Box::new(|| {
                let _ = mem.load_u16(1, Ordering::Relaxed);
            }),
        ),
        (
            "misaligned store_u16",
            Box::new(|| mem.store_u16(len - 3, 0xFFFF, Ordering::Relaxed)),
        ),
        (
            "misaligned load_u32",
            Box::new(|| {
                let _ = mem.load_u32(2, Ordering::Relaxed);
            }),
        ),
        (
            "misaligned store_u32",
            Box::new(|| mem.store_u32(len - 6, u32::MAX, Ordering::Relaxed)),
        ),
    ];
    for (what, f) in cases {
        ensure!(
            panics(f),
            "an access outside the region, overflowing or misaligned panics",
            "{what} of a {len:#x}-byte region returned normally"
        );
    }
    let mut t = [0u8; 8];
    mem.read(tail, &mut t);
    ensure!(
        t == [0x11; 8],
        "a refused access touches no memory",
        "the last 8 bytes became {t:02x?}"
    );
    Ok(())
}

fn shm_publication<M: SharedMemory + Sync + ?Sized>(mem: &M) -> Outcome {
    const ROUNDS: u32 = 200;
    const FLAG: usize = 0;
    const ACK: usize = 4;
    const DATA: usize = 64;
    const N: usize = 128;
    mem.store_u32(FLAG, 0, Ordering::Relaxed);
    mem.store_u32(ACK, 0, Ordering::Relaxed);
    let deadline = Instant::now() + Duration::from_secs(20);
    let gave_up = AtomicBool::new(false);
    let spin_until = |off: usize, v: u32| -> bool {
        while mem.load_u32(off, Ordering::Acquire) != v {
            if gave_up.load(Ordering::Relaxed) || Instant::now() > deadline {
                gave_up.store(true, Ordering::Relaxed);
                return false;
            }
            std::hint::spin_loop();
        }
        true
    };
    std::thread::scope(|s| {
        let reader = s.spawn(|| -> Outcome {
            let mut buf = [0u8; N];
            for seq in 1..=ROUNDS {
                if !spin_until(FLAG, seq) {
                    return Err(violation(
                        "a Release store becomes visible to Acquire loads on another thread",
                        format!("round {seq} never arrived"),
                    ));
                }
                mem.read(DATA, &mut buf);
                let want = pattern(seq as u8, N);
                if buf[..] != want[..] {
                    gave_up.store(true, Ordering::Relaxed);
                    return Err(violation(
                        "writes before a Release store are visible after the Acquire load that sees it",
                        format!("round {seq}: {}", first_difference(&buf, &want)),
                    ));
                }
                mem.store_u32(ACK, seq, Ordering::Release);
            }
            Ok(())
        });
        for seq in 1..=ROUNDS {
            if !spin_until(ACK, seq - 1) {
                break;
            }
            mem.write(DATA, &pattern(seq as u8, N));
            mem.store_u32(FLAG, seq, Ordering::Release);
        }
        reader.join().unwrap_or_else(|_| {
            Err(violation(
                "no panic where the contract does not call for one",
                "the reading thread panicked",
            ))
        })
    })
}

// ---------------------------------------------------------------------------------------
// Doorbell

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

// ---------------------------------------------------------------------------------------
// CacheOps

/// Checks a [`CacheOps`] against the trait's contract, with `peer` the same region as the
/// peer (the device) sees memory — the region itself for a coherent or real cache, the
/// "DRAM" behind a model's private image. Following the data plane's protocol (CPU access
/// bracketed by `cpu_access`, `clean` then `handoff` before the peer reads, `invalidate`
/// before the CPU reads what the peer wrote), it checks: the line size is a power of two
/// and the CPU view is line-aligned and as long as the region; after `clean` the peer reads
/// every byte the CPU wrote, for ranges of one byte, whole lines, unaligned spans and the
/// region's last bytes; after `invalidate` the CPU reads every byte the peer wrote; an
/// `invalidate` loses none of the CPU's not yet cleaned writes next to its range; a `clean`
/// writes back nothing over data the peer wrote next to its range; empty ranges are
/// accepted. The region must hold at least 16 lines.
pub fn cache_ops<C: CacheOps + ?Sized, P: SharedMemory + ?Sized>(cache: &C, peer: &P) -> Outcome {
    guarded(|| {
        let line = cache.line_size();
        ensure!(
            line.is_power_of_two() && line >= 4,
            "line_size() is a power of two",
            "{line}"
        );
        let len = cache.region_len();
        ensure!(
            len == peer.len(),
            "region_len() is the length of the region",
            "{len} against the peer's {}",
            peer.len()
        );
        ensure!(
            len >= 16 * line,
            "the suite needs a region of at least 16 lines",
            "{len} bytes, {line}-byte lines"
        );
        let cpu = cache.cpu_ptr();
        ensure!(
            !cpu.is_null() && (cpu as usize) % line == 0,
            "cpu_ptr() is non-null and aligned to the line size",
            "{cpu:p} with {line}-byte lines"
        );
        let v = CpuView { cache, cpu, len };

        // CPU to peer, and back, over ranges of every shape.
        let ranges = [
            (line, line),
            (2 * line + 3, 2 * line),
            (5, 1),
            (8 * line - 1, 2),
            (len - 3 * line, 3 * line),
            (len - 1, 1),
        ];
        for (i, &(off, n)) in ranges.iter().enumerate() {
            let buf = i as u32;
            let data = pattern(buf as u8, n);
            v.write(buf, off, &data);
            cache.clean(buf, off, n);
            cache.handoff(buf, off, n);
            let mut seen = vec![0u8; n];
            peer.read(off, &mut seen);
            ensure!(
                seen == data,
                "after clean, the peer reads what the CPU wrote",
                "{n} bytes at {off:#x}: {}",
                first_difference(&seen, &data)
            );
            let reply = pattern(buf as u8 ^ 0x80, n);
            peer.write(off, &reply);
            cache.invalidate(buf, off, n);
            let got = v.read(buf, off, n);
            ensure!(
                got == reply,
                "after invalidate, the CPU reads what the peer wrote",
                "{n} bytes at {off:#x}: {}",
                first_difference(&got, &reply)
            );
        }

        // Empty ranges.
        cache.clean(100, 4 * line, 0);
        cache.invalidate(100, 4 * line, 0);

        // `invalidate` keeps the CPU's pending writes on both sides of its range.
        let (before, mid, after) = (9 * line, 10 * line, 11 * line);
        v.write(20, mid, &pattern(1, line));
        cache.clean(20, mid, line);
        cache.handoff(20, mid, line);
        let (x, y) = (pattern(2, line), pattern(3, line));
        v.write(21, before, &x);
        v.write(22, after, &y);
        let z = pattern(4, line);
        peer.write(mid, &z);
        cache.invalidate(20, mid, line);
        let got = v.read(20, mid, line);
        ensure!(
            got == z,
            "after invalidate, the CPU reads what the peer wrote",
            "the line at {mid:#x}: {}",
            first_difference(&got, &z)
        );
        for (buf, off, want) in [(21, before, &x), (22, after, &y)] {
            let got = v.read(buf, off, line);
            ensure!(
                got == *want,
                "invalidate of a range loses none of the CPU's writes outside its lines",
                "the line at {off:#x}, next to the invalidated line at {mid:#x}: {}",
                first_difference(&got, want)
            );
            cache.clean(buf, off, line);
            cache.handoff(buf, off, line);
            let mut seen = vec![0u8; line];
            peer.read(off, &mut seen);
            ensure!(
                seen == *want,
                "after clean, the peer reads what the CPU wrote",
                "the line at {off:#x}: {}",
                first_difference(&seen, want)
            );
        }

        // `clean` writes back nothing over what the peer wrote next to its range.
        let (ours, theirs) = (13 * line, 14 * line);
        v.write(30, theirs, &pattern(5, line));
        cache.clean(30, theirs, line);
        cache.handoff(30, theirs, line);
        let fresh = pattern(6, line);
        peer.write(theirs, &fresh);
        v.write(31, ours + 1, &pattern(7, line - 2));
        cache.clean(31, ours + 1, line - 2);
        cache.handoff(31, ours + 1, line - 2);
        let mut seen = vec![0u8; line];
        peer.read(theirs, &mut seen);
        ensure!(
            seen == fresh,
            "clean of a range writes back nothing outside its lines",
            "the peer's line at {theirs:#x}, next to the cleaned {ours:#x}: {}",
            first_difference(&seen, &fresh)
        );
        Ok(())
    })
}

/// The CPU's accesses to a region, through `CacheOps::cpu_ptr`, bracketed by `cpu_access`.
struct CpuView<'a, C: CacheOps + ?Sized> {
    cache: &'a C,
    cpu: *mut u8,
    len: usize,
}

impl<C: CacheOps + ?Sized> CpuView<'_, C> {
    fn write(&self, buf: u32, off: usize, data: &[u8]) {
        assert!(off + data.len() <= self.len);
        self.cache.cpu_access(buf, off, data.len(), true);
        // SAFETY: `off..off+len` lies inside the `region_len()` bytes the `CacheOps`
        // contract keeps valid behind `cpu_ptr()` (checked above); the suite makes no
        // reference into the region and is its only user while it runs.
        unsafe { core::ptr::copy_nonoverlapping(data.as_ptr(), self.cpu.add(off), data.len()) }
    }

    fn read(&self, buf: u32, off: usize, n: usize) -> Vec<u8> {
        assert!(off + n <= self.len);
        self.cache.cpu_access(buf, off, n, false);
        let mut out = vec![0u8; n];
        // SAFETY: as in `write`, with the copy's direction reversed.
        unsafe { core::ptr::copy_nonoverlapping(self.cpu.add(off), out.as_mut_ptr(), n) }
        out
    }
}

// ---------------------------------------------------------------------------------------
// DeviceAddressMap

/// One window of a [`DeviceAddressMap`]: device addresses `da..da+len` are region offsets
/// `offset..offset+len`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Device address of the first byte.
    pub da: DevAddr,
    /// Region offset of the first byte.
    pub offset: usize,
    /// Length in bytes (non-zero).
    pub len: usize,
}

/// Checks a [`DeviceAddressMap`] against `windows`, the complete list of what it maps
/// (windows that do not alias one another): every sampled address of a window translates
/// to its offset and back, the whole window translates as one range, and ranges that start
/// before, end after, or overflow past a window are refused, as are device addresses and
/// offsets outside every window; zero-length ranges do not panic.
pub fn device_address_map<A: DeviceAddressMap + ?Sized>(map: &A, windows: &[Window]) -> Outcome {
    guarded(|| {
        ensure!(
            !windows.is_empty(),
            "the suite needs a window",
            "none given"
        );
        let da_mapped = |da: u64| {
            windows
                .iter()
                .any(|w| da >= w.da.0 && da - w.da.0 < w.len as u64)
        };
        let off_mapped = |off: usize| {
            windows
                .iter()
                .any(|w| off >= w.offset && off - w.offset < w.len)
        };
        for w in windows {
            ensure!(w.len > 0, "the suite needs non-empty windows", "{w:?}");
            let whole = map.to_offset(w.da, w.len);
            ensure!(
                whole == Some(w.offset),
                "a whole window translates to its offset",
                "to_offset({:?}, {:#x}) = {whole:?}, expected {:#x}",
                w.da,
                w.len,
                w.offset
            );
            let mut rels = vec![0, 1, w.len / 2, w.len.saturating_sub(2), w.len - 1];
            rels.retain(|&r| r < w.len);
            for rel in rels {
                let da = DevAddr(w.da.0 + rel as u64);
                let off = w.offset + rel;
                let to = map.to_offset(da, 1);
                ensure!(
                    to == Some(off),
                    "to_offset translates every address of a window",
                    "to_offset({da:?}, 1) = {to:?}, expected {off:#x}"
                );
                let back = map.to_dev(off);
                ensure!(
                    back == Some(da),
                    "to_dev translates every offset of a window back",
                    "to_dev({off:#x}) = {back:?}, expected {da:?}"
                );
                let rest = w.len - rel;
                let to = map.to_offset(da, rest);
                ensure!(
                    to == Some(off),
                    "a range ending at the window's end translates",
                    "to_offset({da:?}, {rest:#x}) = {to:?}"
                );
            }
            let end = w.da.0.checked_add(w.len as u64);
            if let Some(end) = end.filter(|&e| !da_mapped(e)) {
                for (da, n) in [(end - 1, 2), (end, 1), (w.da.0, w.len + 1)] {
                    let r = map.to_offset(DevAddr(da), n);
                    ensure!(
                        r.is_none(),
                        "a range running past what is mapped is refused",
                        "to_offset({:?}, {n:#x}) = {r:?} (the window ends at {end:#x})",
                        DevAddr(da)
                    );
                }
            }
            if w.da.0 > 0 && !da_mapped(w.da.0 - 1) {
                for n in [1, 2] {
                    let r = map.to_offset(DevAddr(w.da.0 - 1), n);
                    ensure!(
                        r.is_none(),
                        "a range starting before what is mapped is refused",
                        "to_offset({:?}, {n}) = {r:?}",
                        DevAddr(w.da.0 - 1)
                    );
                }
            }
            let r = map.to_offset(w.da, usize::MAX);
            ensure!(
                r.is_none(),
                "a range whose end overflows is refused",
                "to_offset({:?}, usize::MAX) = {r:?}",
                w.da
            );
            let off_end = w.offset + w.len;
            if !off_mapped(off_end) {
                let r = map.to_dev(off_end);
                ensure!(
                    r.is_none(),
                    "an offset outside every window has no device address",
                    "to_dev({off_end:#x}) = {r:?}"
                );
            }
            if w.offset > 0 && !off_mapped(w.offset - 1) {
                let r = map.to_dev(w.offset - 1);
                ensure!(
                    r.is_none(),
                    "an offset outside every window has no device address",
                    "to_dev({:#x}) = {r:?}",
                    w.offset - 1
                );
            }
            // Zero-length ranges: either answer, but no panic.
            let _ = map.to_offset(w.da, 0);
            if let Some(end) = end {
                let _ = map.to_offset(DevAddr(end), 0);
            }
        }
        if !da_mapped(u64::MAX) {
            for n in [1, 2] {
                let r = map.to_offset(DevAddr(u64::MAX), n);
                ensure!(
                    r.is_none(),
                    "a range outside every window is refused",
                    "to_offset(da:0xffffffffffffffff, {n}) = {r:?}"
                );
            }
        }
        if !off_mapped(usize::MAX) {
            let r = map.to_dev(usize::MAX);
            ensure!(
                r.is_none(),
                "an offset outside every window has no device address",
                "to_dev(usize::MAX) = {r:?}"
            );
        }
        Ok(())
    })
}
