//! Loom model of the inline-slot ring's protocol (`intercore::virtq::inline`), run with the
//! other ring models by `tests/loom.rs` (which includes this module).
//!
//! The real `InlineTx` / `InlineRx` code runs on `LoomMem32` (in `tests/loom.rs`, the
//! home of this test's `unsafe`: one loom `AtomicU32` per
//! 32-bit word: every inline-ring word is a single-copy-atomic u32 on hardware, so the
//! 16-bit model of `loom.rs`, which splits u32 accesses, would tear the sequence word).
//! A two-slot ring carries three messages each way of a request/reply exchange, so both
//! ends wait — the consumer for data (`arm`, sleep), the producer for space (`arm_space`,
//! sleep) — and slots are reused. Checked:
//!
//! * **no lost wakeup** in either direction (a side sleeping forever is a loom deadlock);
//! * **data visibility**: each message's header and payload (distinct per message) are
//!   what the producer wrote, seen after the `Acquire` load of the slot's sequence word;
//! * **no protocol error** between two correct ends (a torn or early sequence word would
//!   be refused as "neither the next message nor empty").
//!
//! When this was written, each of these changes to `src/virtq/inline.rs` was tried and
//! made the model fail: the `seq` store in `try_send_with` → `Relaxed` (a reply read with
//! the previous lap's payload: 1000 where 1002 was sent); the `SeqCst` fence in
//! `try_send_with` → `Release` (deadlock: a lost wakeup of the consumer); the fence in
//! `InlineRx::arm` removed (deadlock, both ends asleep); and, for the batched model, a
//! batch published one release late (`>` for `>=` in `release`) together with `arm` no
//! longer publishing what is left before sleeping (deadlock: the producer waits for space
//! that was released but never published).

use super::LoomMem32;
use intercore::SharedMemory;
use intercore::virtq::inline::{Companions, InlineLayout, InlineRx, InlineTx};
use loom::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// A doorbell: a latched flag and a condition variable.
#[derive(Default)]
struct Bell {
    rung: Mutex<bool>,
    cv: Condvar,
}

impl Bell {
    fn ring(&self) {
        *self.rung.lock().unwrap() = true;
        self.cv.notify_one();
    }
    fn sleep(&self) {
        let mut r = self.rung.lock().unwrap();
        while !*r {
            r = self.cv.wait(r).unwrap();
        }
        *r = false;
    }
}

/// One direction: its ring and the bells of its two ends.
struct Dir {
    layout: InlineLayout,
    comp: Companions,
    /// Rung by the producer, slept on by the consumer.
    data: Bell,
    /// Rung by the consumer, slept on by the producer.
    space: Bell,
}

fn send(mem: &LoomMem32, d: &Dir, tx: &mut InlineTx, v: u32) {
    loop {
        match tx.try_send(mem, v, v + 100, &v.to_le_bytes()) {
            Ok(kick) => {
                if kick {
                    d.data.ring();
                }
                break;
            }
            Err(intercore::Error::WouldBlock) => {
                if !tx.arm_space(mem).unwrap() {
                    d.space.sleep();
                }
            }
            Err(e) => panic!("send: {e}"),
        }
    }
    tx.disarm_space(mem);
}

fn recv(mem: &LoomMem32, d: &Dir, rx: &mut InlineRx) -> u32 {
    loop {
        if let Some(m) = rx.try_recv(mem).unwrap() {
            let mut b = [0u8; 4];
            assert_eq!(m.len, 4, "header not visible");
            mem.read(m.off, &mut b);
            let v = u32::from_le_bytes(b);
            assert_eq!((m.src, m.dst), (v, v + 100), "payload not visible");
            if rx.release(mem).unwrap() {
                d.space.ring();
            }
            rx.disarm(mem);
            return v;
        }
        let (ready, kick) = rx.arm(mem, Duration::ZERO).unwrap();
        if kick {
            d.space.ring();
        }
        if !ready {
            d.data.sleep();
        }
    }
}

/// Runs `f` under loom with the preemption bound `LOOM_MAX_PREEMPTIONS` (default 2).
fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut b = loom::model::Builder::new();
    b.preemption_bound = Some(
        std::env::var("LOOM_MAX_PREEMPTIONS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(2),
    );
    b.check(f);
}

/// Three request/reply round trips over two-slot rings, so the requests' producer must
/// wait for space before the third, and each end sleeps for data.
#[test]
fn inline_duplex_no_lost_wakeup() {
    model(|| {
        // Two rings (128 + 2 × 64 bytes each) and their companions (2 × 48 each).
        let ring = |base: usize, comp: usize| Dir {
            layout: InlineLayout::fit(base, 256, 48, 2).unwrap(),
            comp: Companions {
                base: comp,
                stride: 48,
            },
            data: Bell::default(),
            space: Bell::default(),
        };
        let mem = Arc::new(LoomMem32::new(704));
        let dirs = Arc::new([ring(0, 512), ring(256, 608)]);
        for d in dirs.iter() {
            d.layout.reset(&*mem);
        }
        let (m2, d2) = (Arc::clone(&mem), Arc::clone(&dirs));
        let remote = loom::thread::spawn(move || {
            let (req, rep) = (&d2[0], &d2[1]);
            let mut rx = InlineRx::new(&*m2, req.layout, req.comp).unwrap();
            let mut tx = InlineTx::new(&*m2, rep.layout, rep.comp).unwrap();
            for i in 0..3 {
                let v = recv(&m2, req, &mut rx);
                assert_eq!(v, i, "request out of order");
                send(&m2, rep, &mut tx, v + 1000);
            }
        });
        let (req, rep) = (&dirs[0], &dirs[1]);
        let mut tx = InlineTx::new(&*mem, req.layout, req.comp).unwrap();
        let mut rx = InlineRx::new(&*mem, rep.layout, rep.comp).unwrap();
        // Two requests in flight, then one per reply: the third waits for space.
        send(&mem, req, &mut tx, 0);
        send(&mem, req, &mut tx, 1);
        assert_eq!(recv(&mem, rep, &mut rx), 1000);
        send(&mem, req, &mut tx, 2);
        assert_eq!(recv(&mem, rep, &mut rx), 1001);
        assert_eq!(recv(&mem, rep, &mut rx), 1002);
        remote.join().unwrap();
    });
}

/// One direction of `slots` one-line slots at offset 0, its companions (48 bytes each)
/// right after it, reset: the memory and the ring.
fn one_way(slots: u32) -> (Arc<LoomMem32>, Arc<Dir>) {
    let ring = 128 + 64 * slots as usize;
    let mem = Arc::new(LoomMem32::new(ring + 48 * slots as usize));
    let d = Dir {
        layout: InlineLayout::fit(0, ring, 48, slots).unwrap(),
        comp: Companions {
            base: ring,
            stride: 48,
        },
        data: Bell::default(),
        space: Bell::default(),
    };
    d.layout.reset(&*mem);
    (mem, Arc::new(d))
}

/// One way, batched progress: a two-slot ring whose consumer publishes progress only every
/// second release (`with_batch(2)`), four messages, so the producer waits for space while
/// the consumer holds an unpublished release — the case the batching argument covers.
#[test]
fn inline_batched_progress_no_lost_wakeup() {
    model(|| {
        let (mem, d) = one_way(2);
        let (m2, d2) = (Arc::clone(&mem), Arc::clone(&d));
        let consumer = loom::thread::spawn(move || {
            let mut rx = InlineRx::new(&*m2, d2.layout, d2.comp)
                .unwrap()
                .with_batch(2);
            for i in 0..4 {
                assert_eq!(recv(&m2, &d2, &mut rx), i, "out of order");
            }
        });
        let mut tx = InlineTx::new(&*mem, d.layout, d.comp).unwrap();
        for i in 0..4 {
            send(&mem, &d, &mut tx, i);
        }
        consumer.join().unwrap();
    });
}

/// Credit-bound producer (the host's per-endpoint transmit credit of 1): each message
/// carries the ask flag (`SLOT_F_ASK`) and the producer waits for it to be consumed
/// (`arm_progress`, sleep) before the next, on a ring whose consumer batch (4) never
/// completes within the three messages: every credit comes back through the flagged
/// release's publish (or the consumer's `arm` before it sleeps). Checked: no lost wakeup
/// of the producer (loom deadlock), in order, data visible. The flag alone carries it: with
/// `arm` no longer publishing the model still passes; with the flag also ignored it
/// deadlocks.
#[test]
fn inline_ask_flag_credit_wait_no_lost_wakeup() {
    model(|| {
        let (mem, d) = one_way(4);
        let (m2, d2) = (Arc::clone(&mem), Arc::clone(&d));
        let consumer = loom::thread::spawn(move || {
            let mut rx = InlineRx::new(&*m2, d2.layout, d2.comp)
                .unwrap()
                .with_batch(4)
                .with_ask(true);
            for i in 0..3 {
                assert_eq!(recv(&m2, &d2, &mut rx), i, "out of order");
            }
        });
        let mut tx = InlineTx::new(&*mem, d.layout, d.comp).unwrap();
        for i in 0..3u32 {
            let a = tx
                .reserve(&*mem)
                .unwrap()
                .expect("credit 1: a slot is free");
            mem.write(a.inline_off, &i.to_le_bytes());
            if tx.publish_asking(&*mem, i, i + 100, 4, true, true).unwrap() {
                d.data.ring();
            }
            // Credit 1: wait until this message is consumed.
            loop {
                tx.refresh(&*mem).unwrap();
                if tx.in_flight() == 0 {
                    break;
                }
                if !tx.arm_progress(&*mem).unwrap() {
                    d.space.sleep();
                }
            }
            tx.disarm_space(&*mem);
        }
        consumer.join().unwrap();
    });
}
