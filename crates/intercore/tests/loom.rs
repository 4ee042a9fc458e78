//! Loom models of the split ring's index / notification protocol (built only with `--cfg loom`).
#![cfg(loom)]
//! They run the real [`DriverQueue`] and [`DeviceQueue`] code (not a copy) on a model of
//! shared memory.
//!
//! (The `#![cfg(loom)]` comes after the first doc line so that the ordinary, empty build of
//! this test still has crate documentation for the workspace's `missing_docs` lint.)
//!
//! What is checked, each for both notification-suppression schemes (`VIRTIO_RING_F_EVENT_IDX`
//! with `avail_event`/`used_event`, and the `VRING_USED_F_NO_NOTIFY` /
//! `VRING_AVAIL_F_NO_INTERRUPT` flags; virtio 1.x §2.7.7 "Used Buffer Notification
//! Suppression" and §2.7.10 "Available Buffer Notification Suppression"):
//!
//! * **No lost wakeup, driver → device** (`avail_notify_*`): the driver adds and publishes
//!   buffers one at a time and rings the device whenever [`DriverQueue::publish`] says so;
//!   the device takes buffers the way `RemoteBus::block_on` does (pop; when empty,
//!   [`DeviceQueue::enable_notify`], and sleep only if that re-check says nothing is
//!   pending; `disable_notify` once it got one). This is the kernel's
//!   `virtqueue_kick_prepare` (store `avail.idx`, `virtio_mb`, read `avail_event` /
//!   `used.flags`) against the device re-enabling notifications and re-reading `avail.idx`.
//! * **No lost wakeup, device → driver** (`used_notify_*`): the same for used buffers,
//!   [`DeviceQueue::publish`] against [`DriverQueue::enable_interrupts`], which is the
//!   kernel's `virtqueue_enable_cb` (write `used_event` / clear `NO_INTERRUPT`,
//!   `virtio_mb`, re-read `used.idx`), with the driver waiting like `HostBus::block_on`.
//! * **Both directions at once on a reused ring** (`duplex_*`): three request/reply round
//!   trips through a two-entry ring, so the driver must sleep for a descriptor to come back
//!   before it can send the third message, and slots and descriptors are reused.
//! * **Data visibility**: the side that takes a buffer sees the descriptor (a distinct
//!   address and length per message, the flags) and the payload the other side wrote before
//!   publishing (the `Release` index stores and `Acquire` index loads: `virtio_wmb` /
//!   `virtio_rmb`).
//!
//! A side "sleeps" on its doorbell (a mailbox interrupt / eventfd, modelled as a latched
//! flag under a loom `Mutex`, with a `Condvar` to wait on). Each side declares when it has
//! finished ringing. A side that is about to sleep with no ring pending while its peer has
//! finished, or is itself asleep with no ring pending, would sleep forever: the model
//! panics with `LOST WAKEUP` (rather than leaving loom to find a deadlock).
//!
//! The store→load ordering both sides rely on is the `SeqCst` fence between storing one's
//! own index (or notification request) and loading the peer's: the kernel's `virtio_mb`.
//! Loom orders `fence(SeqCst)`s totally, and these models notice when one is missing. When
//! this file was written the following changes to `src/virtq` were each tried (and then
//! reverted) and each made the models fail:
//!
//! * `DriverQueue::publish`: `mem.fence(SeqCst)` → `mem.fence(Release)`, or the fence
//!   removed: `avail_notify_*` and `duplex_*` fail with a lost wakeup of the device;
//! * `DeviceQueue::enable_notify`'s fence → `Release`: `avail_notify_*`, `duplex_*`;
//! * `DeviceQueue::publish`'s fence → `Release`: `used_notify_*`, `duplex_*`;
//! * `DriverQueue::enable_interrupts`'s fence → `Release`: `used_notify_*`, `duplex_*`;
//! * the `avail.idx` store in `DriverQueue::publish`, or its load in `DeviceQueue::pop`, →
//!   `Relaxed`: "descriptor address not visible"; the `used.idx` store in
//!   `DeviceQueue::publish` → `Relaxed`: "reply payload not visible".
//!
//! Shared memory is `LoomMem`: a [`SharedMemory`] that overrides every access method with
//! loom atomics on 16-bit words (every ring field is 16-bit aligned) and whose `as_ptr()` is
//! null. The ring is tiny (`num` = 2, `align` = 4) to keep the state space small.
//!
//! Run with (the preemption bound is 3 unless `LOOM_MAX_PREEMPTIONS` says otherwise):
//!
//! ```text
//! RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=3 \
//!     cargo test -p intercore --test loom --release --target-dir target/loom
//! ```
//!
//! With bound 3 the eight ring models (two of them on in-order rings) take about 6 s after the build on a 2-core machine (the
//! `duplex_*` ones about 60 000 executions each); bound 4 passes in about a minute, bound 5
//! in about 7 minutes (`--nocapture` prints the execution counts). The two models of
//! `src/lockfree.rs` (32-bit free list and returned-buffer set) take well under a second.

/// The inline-slot ring's model (issue 24).
mod loom_inline;

use intercore::virtq::{DescChain, DeviceQueue, DriverQueue, VringLayout};
use intercore::{DevAddr, SharedMemory};
use loom::sync::atomic::{AtomicU16, AtomicU32, Ordering, fence};
use loom::sync::{Arc, Condvar, Mutex};

/// Preemption bound used when `LOOM_MAX_PREEMPTIONS` is not set.
const PREEMPTIONS: usize = 3;
/// Queue size: the smallest ring that still has more than one slot.
const NUM: u32 = 2;
/// Used-ring alignment: the smallest that keeps every field 16-bit aligned.
const ALIGN: u32 = 4;
/// Region offset of the ring.
const RING: usize = 0;
/// Bytes per message buffer: a request half-word the driver writes at 0, a reply half-word
/// the device writes at 2, room to give each message a different descriptor length.
const BUF_SIZE: usize = 8;

/// Shared memory made of loom atomics, one per 16-bit word.
struct LoomMem {
    words: Vec<AtomicU16>,
}

impl LoomMem {
    fn new(len: usize) -> Self {
        Self {
            words: (0..len.div_ceil(2)).map(|_| AtomicU16::new(0)).collect(),
        }
    }

    /// The word holding bytes `off..off+2`, for a checked 16-bit-aligned access of `size`.
    fn word(&self, off: usize, size: usize) -> &AtomicU16 {
        assert!(
            off % size == 0 && off.checked_add(size).is_some_and(|e| e <= self.len()),
            "access at {off:#x}+{size} outside a {:#x}-byte region or misaligned",
            self.len()
        );
        &self.words[off / 2]
    }

    /// Words covering `off..off+len`, as `(word index, first byte in word, bytes in word,
    /// position in the caller's buffer)`.
    fn span(&self, off: usize, len: usize) -> impl Iterator<Item = (usize, usize, usize, usize)> {
        assert!(
            off.checked_add(len).is_some_and(|e| e <= self.len()),
            "copy at {off:#x}+{len} outside a {:#x}-byte region",
            self.len()
        );
        let mut pos = 0;
        core::iter::from_fn(move || {
            (pos < len).then(|| {
                let a = off + pos;
                let (w, first) = (a / 2, a % 2);
                let n = (2 - first).min(len - pos);
                let item = (w, first, n, pos);
                pos += n;
                item
            })
        })
    }
}

// SAFETY: `as_ptr()` is null, which the contract allows, so no code ever dereferences a
// pointer into this region; every access method is overridden and checks that it touches
// only offsets inside `0..len()` (`word` and `span` assert it).
unsafe impl SharedMemory for LoomMem {
    fn as_ptr(&self) -> *mut u8 {
        core::ptr::null_mut()
    }
    fn len(&self) -> usize {
        self.words.len() * 2
    }
    fn load_u16(&self, off: usize, order: Ordering) -> u16 {
        self.word(off, 2).load(order)
    }
    fn store_u16(&self, off: usize, v: u16, order: Ordering) {
        self.word(off, 2).store(v, order)
    }
    // 32-bit accesses are two 16-bit accesses with the same ordering (low word first): not
    // single-copy atomic as a whole, which the ring code does not need (it uses no 32-bit
    // atomics; used elements are copied with `read` and validated).
    fn load_u32(&self, off: usize, order: Ordering) -> u32 {
        let lo = self.word(off, 4).load(order);
        let hi = self.word(off + 2, 2).load(order);
        u32::from(lo) | u32::from(hi) << 16
    }
    fn store_u32(&self, off: usize, v: u32, order: Ordering) {
        self.word(off, 4).store(v as u16, order);
        self.word(off + 2, 2).store((v >> 16) as u16, order);
    }
    // Copies are Relaxed word accesses, ordered by the index stores/loads and fences around
    // them, as on hardware. A copy that covers only one byte of a word merges it in with an
    // atomic read-modify-write, so it cannot clobber the other byte.
    fn read(&self, off: usize, dst: &mut [u8]) {
        for (w, first, n, pos) in self.span(off, dst.len()) {
            let bytes = self.words[w].load(Ordering::Relaxed).to_le_bytes();
            dst[pos..pos + n].copy_from_slice(&bytes[first..first + n]);
        }
    }
    fn write(&self, off: usize, src: &[u8]) {
        for (w, first, n, pos) in self.span(off, src.len()) {
            let part = &src[pos..pos + n];
            if n == 2 {
                self.words[w].store(u16::from_le_bytes([part[0], part[1]]), Ordering::Relaxed);
            } else {
                let merge = |old: u16| {
                    let mut b = old.to_le_bytes();
                    b[first..first + n].copy_from_slice(part);
                    Some(u16::from_le_bytes(b))
                };
                let _ = self.words[w].fetch_update(Ordering::Relaxed, Ordering::Relaxed, merge);
            }
        }
    }
    fn fence(&self, order: Ordering) {
        fence(order)
    }
}

/// Who rings or sleeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Driver = 0,
    Device = 1,
}

impl Side {
    fn peer(self) -> Side {
        match self {
            Side::Driver => Side::Device,
            Side::Device => Side::Driver,
        }
    }
}

/// The two doorbells of a link (a mailbox interrupt or an eventfd each way): ringing one
/// latches it, sleeping waits for one's own and clears it.
///
/// Each side says when it will never ring again (`done`), and the doorbells know which
/// side is asleep: a side that is about to sleep with no ring pending while its peer has
/// finished, or is asleep itself with no ring pending, would sleep forever, and `sleep`
/// reports that instead of letting the model deadlock.
struct Doorbells {
    state: Mutex<[BellState; 2]>,
    cv: Condvar,
}

#[derive(Default)]
struct BellState {
    pending: bool,
    asleep: bool,
    done: bool,
}

/// Why a side would never be woken.
#[derive(Debug)]
enum Stuck {
    /// The peer has finished without ringing after we asked for a notification.
    PeerDone,
    /// The peer is asleep too, with no ring pending for either side: a deadlock.
    PeerAsleep,
}

impl Doorbells {
    fn new() -> Self {
        Self {
            state: Mutex::new(Default::default()),
            cv: Condvar::new(),
        }
    }

    fn ring(&self, to: Side) {
        let mut s = self.state.lock().unwrap();
        s[to as usize].pending = true;
        self.cv.notify_all();
    }

    /// `who` has published everything it ever will and will never ring again.
    fn done(&self, who: Side) {
        self.state.lock().unwrap()[who as usize].done = true;
        self.cv.notify_all();
    }

    /// Sleeps until `who`'s doorbell rings (the ring is consumed), or returns why nothing
    /// will ever ring it. The lock makes everything the peer did before ringing, finishing
    /// or falling asleep visible to the caller.
    fn sleep(&self, who: Side) -> Result<(), Stuck> {
        let (me, peer) = (who as usize, who.peer() as usize);
        let mut s = self.state.lock().unwrap();
        loop {
            if s[me].pending {
                s[me].pending = false;
                return Ok(());
            }
            if s[peer].done {
                return Err(Stuck::PeerDone);
            }
            if s[peer].asleep && !s[peer].pending {
                return Err(Stuck::PeerAsleep);
            }
            s[me].asleep = true;
            s = self.cv.wait(s).unwrap();
            s[me].asleep = false;
        }
    }
}

/// One ring and its buffers in one region; `in_order`: both sides in in-order mode.
fn setup(event_idx: bool, in_order: bool) -> (Arc<LoomMem>, DriverQueue, DeviceQueue) {
    let layout = VringLayout::new(NUM, ALIGN).unwrap();
    let mem = Arc::new(LoomMem::new(buf_base(&layout) + 3 * BUF_SIZE));
    let mut drv = DriverQueue::new(&*mem, RING, layout, event_idx).unwrap();
    // Zeroes the ring and disables used-buffer notifications, as before DRIVER_OK.
    drv.reset(&*mem);
    let mut dev = DeviceQueue::new(&*mem, RING, layout, event_idx).unwrap();
    drv.set_in_order(in_order).unwrap();
    dev.set_in_order(in_order).unwrap();
    // The remote starts with available-buffer notifications off (`RemoteBus` setup).
    dev.disable_notify(&*mem);
    (mem, drv, dev)
}

fn buf_base(layout: &VringLayout) -> usize {
    RING + layout.size().next_multiple_of(16)
}

/// Message `i` uses descriptor `i % num` (reused once it comes back) and its own buffer, so
/// every message has a distinct address.
fn desc_id(i: usize) -> u16 {
    (i % NUM as usize) as u16
}
fn buf_addr(i: usize) -> DevAddr {
    let layout = VringLayout::new(NUM, ALIGN).unwrap();
    DevAddr((buf_base(&layout) + i * BUF_SIZE) as u64)
}
fn desc_len(i: usize) -> u32 {
    (BUF_SIZE - i) as u32
}
fn request(i: usize) -> u16 {
    0xa000 + i as u16
}
fn reply(i: usize) -> u16 {
    0xb000 + i as u16
}

/// Driver: fills in message `i`'s buffer, adds it and publishes it, ringing the device
/// if `publish` asks for it.
fn driver_send(
    mem: &LoomMem,
    drv: &mut DriverQueue,
    bells: &Doorbells,
    i: usize,
    device_writes: bool,
) {
    mem.write(buf_addr(i).0 as usize, &request(i).to_le_bytes());
    drv.add(mem, desc_id(i), buf_addr(i), desc_len(i), device_writes)
        .unwrap();
    if drv.publish(mem) {
        bells.ring(Side::Device);
    }
}

/// Device: takes the next chain the way `RemoteBus::block_on` waits for one: pop; if the
/// ring is empty, re-enable notifications and re-check; sleep only if that found nothing.
fn device_wait_avail(
    mem: &LoomMem,
    dev: &mut DeviceQueue,
    bells: &Doorbells,
    i: usize,
) -> DescChain {
    let mut armed = false;
    let chain = loop {
        if let Some(chain) = dev.pop(mem).unwrap() {
            break chain;
        }
        armed = true;
        if dev.enable_notify(mem) {
            continue;
        }
        if let Err(why) = bells.sleep(Side::Device) {
            panic!(
                "LOST WAKEUP: the device sleeps forever waiting for message {i} ({why:?}); \
                 available but not notified: {}",
                dev.has_avail(mem)
            );
        }
    };
    if armed {
        dev.disable_notify(mem);
    }
    chain
}

/// Device: checks that message `i` arrived intact (descriptor and request payload).
fn device_check(mem: &LoomMem, dev: &DeviceQueue, chain: &mut DescChain, i: usize, writable: bool) {
    assert_eq!(chain.head(), desc_id(i), "message {i}: head");
    let d = dev.single(mem, chain).unwrap();
    assert_eq!(
        d.addr,
        buf_addr(i),
        "message {i}: descriptor address not visible"
    );
    assert_eq!(
        d.len,
        desc_len(i),
        "message {i}: descriptor length not visible"
    );
    assert_eq!(
        d.writable, writable,
        "message {i}: descriptor flags not visible"
    );
    let mut req = [0; 2];
    mem.read(d.addr.0 as usize, &mut req);
    assert_eq!(
        u16::from_le_bytes(req),
        request(i),
        "message {i}: request payload not visible"
    );
}

/// Device: writes message `i`'s reply into its buffer, returns it and publishes it,
/// interrupting the driver if `publish` asks for it.
fn device_reply(mem: &LoomMem, dev: &mut DeviceQueue, bells: &Doorbells, head: u16, i: usize) {
    mem.write(buf_addr(i).0 as usize + 2, &reply(i).to_le_bytes());
    dev.push_used(mem, head, 4);
    if dev.publish(mem) {
        bells.ring(Side::Driver);
    }
}

/// Driver: takes the next used buffer the way `HostBus::block_on` waits for one: pop; if
/// there is none, enable interrupts and re-check; sleep only if that found nothing. Checks
/// that it is message `i`, with the device's reply visible (in order, the length is the
/// one posted: the driver does not wait for the used element).
fn driver_wait_used(mem: &LoomMem, drv: &mut DriverQueue, bells: &Doorbells, i: usize) {
    let mut armed = false;
    let (id, len) = loop {
        if let Some(used) = drv.pop_used(mem).unwrap() {
            break used;
        }
        armed = true;
        if drv.enable_interrupts(mem) {
            continue;
        }
        if let Err(why) = bells.sleep(Side::Driver) {
            panic!(
                "LOST WAKEUP: the driver sleeps forever waiting for message {i} to come back \
                 ({why:?}); used but not notified: {}",
                drv.has_used(mem)
            );
        }
    };
    if armed {
        drv.disable_interrupts(mem);
    }
    assert_eq!(id, desc_id(i), "message {i}: used id");
    let posted = if drv.is_in_order() { desc_len(i) } else { 4 };
    assert_eq!(len, posted, "message {i}: used length");
    let mut rep = [0; 2];
    mem.read(buf_addr(i).0 as usize + 2, &mut rep);
    assert_eq!(
        u16::from_le_bytes(rep),
        reply(i),
        "message {i}: reply payload not visible"
    );
}

/// Explores `model` under the preemption bound and reports how many executions that took
/// (visible with `--nocapture`).
fn check(name: &str, model: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(PREEMPTIONS);
    }
    let runs = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = runs.clone();
    builder.check(move || {
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        model()
    });
    eprintln!(
        "{name}: {} executions, preemption bound {:?}",
        runs.load(std::sync::atomic::Ordering::Relaxed),
        builder.preemption_bound
    );
}

/// Driver → device: the driver (main thread) sends `NUM` messages one at a time while the
/// device (spawned) takes them, sleeping on its doorbell when the ring is empty.
fn avail_model(event_idx: bool) {
    check(&format!("avail, event_idx = {event_idx}"), move || {
        const K: usize = NUM as usize;
        let (mem, mut drv, mut dev) = setup(event_idx, false);
        let bells = Arc::new(Doorbells::new());
        let device = {
            let (mem, bells) = (mem.clone(), bells.clone());
            loom::thread::spawn(move || {
                for i in 0..K {
                    let mut chain = device_wait_avail(&mem, &mut dev, &bells, i);
                    device_check(&mem, &dev, &mut chain, i, false);
                }
                bells.done(Side::Device);
            })
        };
        for i in 0..K {
            driver_send(&mem, &mut drv, &bells, i, false);
        }
        bells.done(Side::Driver);
        device.join().unwrap();
    });
}

/// Device → driver: `NUM` buffers are available before the device starts; the device
/// (spawned) returns them one at a time while the driver (main thread) consumes them,
/// sleeping on its interrupt when none is used.
fn used_model(event_idx: bool) {
    check(&format!("used, event_idx = {event_idx}"), move || {
        const K: usize = NUM as usize;
        let (mem, mut drv, mut dev) = setup(event_idx, false);
        let bells = Arc::new(Doorbells::new());
        for i in 0..K {
            driver_send(&mem, &mut drv, &bells, i, true);
        }
        bells.done(Side::Driver);
        let device = {
            let (mem, bells) = (mem.clone(), bells.clone());
            loom::thread::spawn(move || {
                for i in 0..K {
                    let mut chain = dev.pop(&*mem).unwrap().expect("published before spawn");
                    device_check(&mem, &dev, &mut chain, i, true);
                    device_reply(&mem, &mut dev, &bells, chain.head(), i);
                }
                bells.done(Side::Device);
            })
        };
        for i in 0..K {
            driver_wait_used(&mem, &mut drv, &bells, i);
        }
        device.join().unwrap();
    });
}

/// virtio 1.x §2.7.10 with EVENT_IDX (`avail_event`): no lost kick.
#[test]
fn avail_notify_event_idx() {
    avail_model(true);
}

/// virtio 1.x §2.7.10 without EVENT_IDX (`VRING_USED_F_NO_NOTIFY`): no lost kick.
#[test]
fn avail_notify_flags() {
    avail_model(false);
}

/// virtio 1.x §2.7.7 with EVENT_IDX (`used_event`): no lost interrupt.
#[test]
fn used_notify_event_idx() {
    used_model(true);
}

/// virtio 1.x §2.7.7 without EVENT_IDX (`VRING_AVAIL_F_NO_INTERRUPT`): no lost interrupt.
#[test]
fn used_notify_flags() {
    used_model(false);
}

/// Both directions at once: three request/reply round trips through a two-entry ring
/// (descriptor and slot reuse, indices past `num`), each side sleeping on its doorbell.
/// `in_order`: both sides in in-order mode — the device writes a used element per buffer,
/// which the driver checks at its next `pop_used` (a last one at the end checks the last
/// element).
fn duplex_model(event_idx: bool, in_order: bool) {
    let name = format!("duplex, event_idx = {event_idx}, in order = {in_order}");
    check(&name, move || {
        const K: usize = 3;
        let (mem, mut drv, mut dev) = setup(event_idx, in_order);
        let bells = Arc::new(Doorbells::new());
        let device = {
            let (mem, bells) = (mem.clone(), bells.clone());
            loom::thread::spawn(move || {
                for i in 0..K {
                    let mut chain = device_wait_avail(&mem, &mut dev, &bells, i);
                    device_check(&mem, &dev, &mut chain, i, true);
                    device_reply(&mem, &mut dev, &bells, chain.head(), i);
                }
                bells.done(Side::Device);
            })
        };
        for i in 0..K {
            if i >= NUM as usize {
                // Descriptor `desc_id(i)` is still in flight: wait for it to come back.
                driver_wait_used(&mem, &mut drv, &bells, i - NUM as usize);
            }
            driver_send(&mem, &mut drv, &bells, i, true);
        }
        bells.done(Side::Driver);
        for i in K - NUM as usize..K {
            driver_wait_used(&mem, &mut drv, &bells, i);
        }
        // In order: checks the last entry's used element (nothing more is used).
        assert_eq!(drv.pop_used(&*mem), Ok(None), "last used element");
        device.join().unwrap();
    });
}

/// Both directions with EVENT_IDX.
#[test]
fn duplex_event_idx() {
    duplex_model(true, false);
}

/// Both directions with the notification flags.
#[test]
fn duplex_flags() {
    duplex_model(false, false);
}

/// Both directions on in-order rings with EVENT_IDX: the used-element check the in-order
/// driver keeps off its dependent loads (issue 20.3) sees what the device wrote, under
/// every interleaving explored.
#[test]
fn duplex_in_order_event_idx() {
    duplex_model(true, true);
}

/// Both directions on in-order rings with the notification flags.
#[test]
fn duplex_in_order_flags() {
    duplex_model(false, true);
}

/// The host-side lock-free structures (`src/lockfree.rs`), included as they are with loom's
/// atomics in place of `core`'s: the 32-bit forms that targets without 64-bit atomics
/// (Cortex-M4F/M7, Cortex-R5F) build.
mod lf_atomic {
    pub use loom::sync::atomic::*;
}
#[allow(dead_code, unused_imports)]
#[path = "../src/lockfree.rs"]
mod lockfree;

/// The pool's free list with a 32-bit head (16-bit tag): the classic ABA interleaving —
/// one thread pops while another pops twice and pushes the first id back — never hands
/// out an id twice nor loses one (Treiber stack; the tag makes the stale CAS fail).
#[test]
fn narrow_id_stack_no_aba() {
    check("narrow id stack", || {
        let next: Arc<Vec<loom::sync::atomic::AtomicU32>> = Arc::new(
            (0..3)
                .map(|_| loom::sync::atomic::AtomicU32::new(0))
                .collect(),
        );
        let stack = Arc::new(lockfree::Narrow::new());
        for id in (0..3).rev() {
            stack.push(&next, id);
        }
        let t = {
            let (stack, next) = (stack.clone(), next.clone());
            loom::thread::spawn(move || stack.pop(&next))
        };
        let a = stack.pop(&next).unwrap();
        let b = stack.pop(&next);
        stack.push(&next, a);
        let x = t.join().unwrap();
        let mut all: Vec<u32> = [x, b].into_iter().flatten().collect();
        while let Some(id) = stack.pop(&next) {
            all.push(id);
        }
        all.sort_unstable();
        assert_eq!(all, [0, 1, 2], "an id was handed out twice or lost");
    });
}

/// The rpmsg host's returned-buffer set with 32-bit words: ids put from two threads (in
/// two different words, as `RxBuf`s dropped on two threads) while the bus drains are each
/// taken exactly once — the drain after both puts finds everything the first one missed.
/// (With a plain store of the `any` flag this fails: C++20 [intro.races] release
/// sequences; see `IdSet::put`.)
#[test]
fn word32_id_set_takes_each_once() {
    check("word32 id set", || {
        let set = Arc::new(lockfree::IdSet::<lockfree::Word32, 2>::new());
        let putter = |id| {
            let set = set.clone();
            loom::thread::spawn(move || set.put(id))
        };
        let (a, b) = (putter(1), putter(33));
        let mut seen = Vec::new();
        set.take(|id| seen.push(id));
        let first = seen.clone();
        a.join().unwrap();
        b.join().unwrap();
        set.take(|id| seen.push(id));
        seen.sort_unstable();
        assert_eq!(seen, [1, 33], "first drain took {first:?}");
        assert!(!set.pending());
    });
}

/// For the inline-slot ring's model (`loom_inline`): its 32-bit words must not tear.
/// Shared memory made of loom atomics, one per 32-bit word.
pub(crate) struct LoomMem32 {
    words: Vec<AtomicU32>,
}

impl LoomMem32 {
    pub(crate) fn new(len: usize) -> Self {
        Self {
            words: (0..len.div_ceil(4)).map(|_| AtomicU32::new(0)).collect(),
        }
    }

    fn word(&self, off: usize) -> &AtomicU32 {
        assert!(
            off % 4 == 0 && off + 4 <= self.len(),
            "access at {off:#x} misaligned or outside {:#x}",
            self.len()
        );
        &self.words[off / 4]
    }

    /// Bytes of `off..off+len` word by word: (word, first byte in it, bytes, position).
    fn span(&self, off: usize, len: usize) -> Vec<(usize, usize, usize, usize)> {
        assert!(
            off + len <= self.len(),
            "copy at {off:#x}+{len} outside the region"
        );
        let mut v = Vec::new();
        let mut pos = 0;
        while pos < len {
            let a = off + pos;
            let n = (4 - a % 4).min(len - pos);
            v.push((a / 4, a % 4, n, pos));
            pos += n;
        }
        v
    }
}

// SAFETY: `as_ptr()` is null, which the contract allows, so no code dereferences a pointer
// into this region; every access method is overridden and checks its offsets (`word`,
// `span` assert them).
unsafe impl SharedMemory for LoomMem32 {
    fn as_ptr(&self) -> *mut u8 {
        core::ptr::null_mut()
    }
    fn len(&self) -> usize {
        self.words.len() * 4
    }
    fn load_u16(&self, off: usize, order: Ordering) -> u16 {
        let w = self.word(off & !3).load(order);
        (w >> (8 * (off % 4))) as u16
    }
    fn store_u16(&self, off: usize, v: u16, order: Ordering) {
        let sh = 8 * (off % 4);
        let _ = self
            .word(off & !3)
            .fetch_update(order, Ordering::Relaxed, |w| {
                Some(w & !(0xFFFF << sh) | u32::from(v) << sh)
            });
    }
    fn load_u32(&self, off: usize, order: Ordering) -> u32 {
        self.word(off).load(order)
    }
    fn store_u32(&self, off: usize, v: u32, order: Ordering) {
        self.word(off).store(v, order)
    }
    // Copies are Relaxed word accesses, ordered by the sequence/progress words and fences.
    fn read(&self, off: usize, dst: &mut [u8]) {
        for (w, first, n, pos) in self.span(off, dst.len()) {
            let b = self.words[w].load(Ordering::Relaxed).to_le_bytes();
            dst[pos..pos + n].copy_from_slice(&b[first..first + n]);
        }
    }
    fn write(&self, off: usize, src: &[u8]) {
        for (w, first, n, pos) in self.span(off, src.len()) {
            let part = &src[pos..pos + n];
            let _ = self.words[w].fetch_update(Ordering::Relaxed, Ordering::Relaxed, |old| {
                let mut b = old.to_le_bytes();
                b[first..first + n].copy_from_slice(part);
                Some(u32::from_le_bytes(b))
            });
        }
    }
    fn fence(&self, order: Ordering) {
        fence(order)
    }
}
