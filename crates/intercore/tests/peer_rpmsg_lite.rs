//! The remote role under an RPMsg-Lite master, modelled on NXP's sources as they run
//! (nxp-mcuxpresso/rpmsg-lite, `lib/rpmsg_lite/rpmsg_lite.c` and `lib/virtio/virtqueue.c`,
//! read at commit a300ec8): no resource table and no status word; the master lays the rings
//! and buffers out from one shared base and initialises them in a fixed order, step by step
//! (`rpmsg_lite_master_init`):
//!
//! 1. for each vring: `env_memset` of the whole ring, `vq_ring_init`, `virtqueue_disable_cb`
//!    (`VRING_AVAIL_F_NO_INTERRUPT`, never cleared afterwards);
//! 2. vring 0: every receive buffer made available, one at a time
//!    (`virtqueue_fill_avail_buffers` → `vq_ring_update_avail`: avail.idx rises by one each);
//! 3. vring 1: every transmit buffer put into the **used** ring, one at a time
//!    (`virtqueue_fill_used_buffers` → `vq_ring_add_buffer`, `vq_ring_update_used`);
//! 4. the first notification, naming vring 0 (`virtqueue_kick(rvq)`).
//!
//! Every descriptor it writes carries `VRING_DESC_F_WRITE`, the transmit ring's included
//! (`vq_ring_add_buffer` and `virtqueue_fill_avail_buffers` both set `dp->flags =
//! VRING_DESC_F_WRITE`). RPMsg-Lite's own remote is up only when that notification arrives
//! (`rpmsg_lite_tx_callback` sets `link_state`), and reads the used index from shared
//! memory at every use (`vq_ring_update_used`), never caching it.

use intercore::rpmsg::{DeviceControl, DevicePlacement, NotifyPolicy, RemoteBus, RemoteConfig};
use intercore::testing::HeapMem;
use intercore::virtq::VringLayout;
use intercore::wire::rpmsg::RpmsgHdr;
use intercore::wire::vring::{VRING_AVAIL_F_NO_INTERRUPT, VRING_DESC_F_WRITE};
use intercore::{DevAddr, Doorbell, Error, LinearMap, SharedMemory, WaitMode};
use std::collections::VecDeque;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use zerocopy::IntoBytes;

const T: Option<Duration> = Some(Duration::from_secs(5));
const NS: u32 = 1 << intercore::wire::rpmsg::VIRTIO_RPMSG_F_NS;
const DA: u64 = 0xA000_0000;
const PAGE: usize = 4096;
/// The master's endpoint and the remote's (RPMsg-Lite's examples use static addresses).
const MASTER_EP: u32 = 0x400;
const REMOTE_EP: u32 = 30;

// ---------------------------------------------------------------------------------------
// A mailbox-like doorbell (each ring delivers its notify id, as the i.MX MU does) that can
// report the peer gone and come back (a new master on the same mailbox).

#[derive(Default)]
struct Wire {
    /// Notify ids rung to each side, not yet consumed: `[to master, to remote]`.
    pending: [VecDeque<u32>; 2],
    /// Every id each side has rung: `[by master, by remote]`.
    log: [Vec<u32>; 2],
    /// The master is gone (the remote's `wait` reports `PeerGone`).
    master_gone: bool,
}

#[derive(Clone)]
struct MailBell {
    wire: Arc<Mutex<Wire>>,
    side: usize,
    epoch: Instant,
}

impl MailBell {
    /// `(master side, remote side)`.
    fn pair() -> (MailBell, MailBell) {
        let wire = Arc::new(Mutex::new(Wire::default()));
        let epoch = Instant::now();
        let side = |side| MailBell {
            wire: Arc::clone(&wire),
            side,
            epoch,
        };
        (side(0), side(1))
    }
    /// Takes the ids rung to this side so far.
    fn take(&self) -> Vec<u32> {
        self.wire.lock().unwrap().pending[self.side]
            .drain(..)
            .collect()
    }
    /// Every id this side has rung.
    fn rung(&self) -> Vec<u32> {
        self.wire.lock().unwrap().log[self.side].clone()
    }
    fn set_master_gone(&self, gone: bool) {
        self.wire.lock().unwrap().master_gone = gone;
    }
}

impl Doorbell for MailBell {
    const CARRIES_NOTIFY_ID: bool = true;
    fn ring(&self, notify_id: u32) -> intercore::Result<()> {
        let mut w = self.wire.lock().unwrap();
        w.pending[1 - self.side].push_back(notify_id);
        w.log[self.side].push(notify_id);
        Ok(())
    }
    /// Consumes what is pending (the doorbell contract); the master side uses `take`.
    fn wait(&self, timeout: Option<Duration>) -> intercore::Result<bool> {
        let end = Instant::now() + timeout.unwrap_or(Duration::from_secs(3600));
        loop {
            {
                let mut w = self.wire.lock().unwrap();
                if !w.pending[self.side].is_empty() {
                    w.pending[self.side].clear();
                    return Ok(true);
                }
                if self.side == 1 && w.master_gone {
                    return Err(Error::PeerGone);
                }
            }
            if Instant::now() >= end {
                return Ok(false);
            }
            std::thread::sleep(Duration::from_micros(100));
        }
    }
    fn now(&self) -> Duration {
        self.epoch.elapsed()
    }
    fn check_peer(&self) -> intercore::Result<()> {
        if self.side == 1 && self.wire.lock().unwrap().master_gone {
            return Err(Error::PeerGone);
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// The master.

fn msg_bytes(src: u32, dst: u32, payload: &[u8]) -> Vec<u8> {
    let mut v = RpmsgHdr::new(src, dst, payload.len() as u16)
        .as_bytes()
        .to_vec();
    v.extend_from_slice(payload);
    v
}

fn parse_msg(raw: &[u8]) -> (u32, u32, Vec<u8>) {
    let (h, rest) = RpmsgHdr::parse(raw).unwrap();
    (
        h.src.get(),
        h.dst.get(),
        rest[..h.len.get() as usize].to_vec(),
    )
}

fn payload(i: usize) -> Vec<u8> {
    (0..(i * 37) % 480 + 1).map(|b| (b ^ i) as u8).collect()
}

/// One RPMsg-Lite master instance over shared memory laid out as `rpmsg_lite_master_init`
/// lays it out: vring 0 at the base, vring 1 after it, then the buffers (vring 0's first).
struct LiteMaster {
    mem: Arc<HeapMem>,
    l: VringLayout,
    r: [usize; 2],
    bufs: usize,
    num: u16,
    /// vring 0: next avail entry to write; next used entry to read.
    rx_avail: u16,
    rx_used: u16,
    /// vring 1: next avail entry to write; next used entry to read.
    tx_avail: u16,
    tx_used: u16,
    bell: MailBell,
}

impl LiteMaster {
    const BUF: usize = 512;

    /// Fresh shared memory for a link of `num` buffers per direction, and the placement a
    /// remote is built with.
    fn memory(num: u16) -> (Arc<HeapMem>, DevicePlacement) {
        let l = VringLayout::new(num as u32, 4096).unwrap();
        let rb = l.size().div_ceil(PAGE) * PAGE;
        let bufs = 2 * rb;
        let mem = Arc::new(HeapMem::new(bufs + 2 * num as usize * Self::BUF));
        let placement = DevicePlacement {
            control: DeviceControl::FirstNotification { features: NS },
            rings: [(0, l), (rb, l)],
            notify_ids: [0, 1],
            buffers: LinearMap {
                base: DevAddr(DA + bufs as u64),
                offset: bufs,
                len: 2 * num as usize * Self::BUF,
            },
        };
        (mem, placement)
    }

    /// A master over `mem` (from [`Self::memory`]) that has not initialised anything yet.
    fn new(mem: Arc<HeapMem>, num: u16, bell: MailBell) -> LiteMaster {
        let l = VringLayout::new(num as u32, 4096).unwrap();
        let rb = l.size().div_ceil(PAGE) * PAGE;
        LiteMaster {
            mem,
            l,
            r: [0, rb],
            bufs: 2 * rb,
            num,
            rx_avail: 0,
            rx_used: 0,
            tx_avail: 0,
            tx_used: 0,
            bell,
        }
    }

    /// `rpmsg_lite_master_init`, in its order; `step` runs after each store that another
    /// core could observe half-done (each ring zeroed, each buffer posted, each transmit
    /// buffer put in the used ring), with the step's number.
    fn init(&mut self, step: &mut dyn FnMut(usize)) {
        let (mem, l) = (Arc::clone(&self.mem), self.l);
        let mut k = 0;
        let mut next = |step: &mut dyn FnMut(usize)| {
            step(k);
            k += 1;
        };
        for q in 0..2 {
            // env_memset(ring_info.phy_addr, 0, vring_size(..)); vq_ring_init (free chain);
            // virtqueue_disable_cb.
            mem.write(self.r[q], &vec![0u8; l.size()]);
            for id in 0..self.num {
                let next_id = if id + 1 == self.num { 0x8000 } else { id + 1 };
                mem.store_u16(self.r[q] + l.desc(id) + 14, next_id, Relaxed);
            }
            mem.store_u16(
                self.r[q] + l.avail_flags(),
                VRING_AVAIL_F_NO_INTERRUPT,
                Relaxed,
            );
            next(step);
        }
        // vring 0: virtqueue_fill_avail_buffers, one buffer at a time.
        for id in 0..self.num {
            self.write_desc(0, id);
            let idx = mem.load_u16(self.r[0] + l.avail_idx(), Relaxed);
            mem.store_u16(self.r[0] + l.avail_ring(idx % self.num), id, Relaxed);
            mem.store_u16(self.r[0] + l.avail_idx(), idx.wrapping_add(1), Release);
            next(step);
        }
        self.rx_avail = self.num;
        // vring 1: virtqueue_fill_used_buffers, one buffer at a time.
        for id in 0..self.num {
            self.write_desc(1, id);
            let idx = mem.load_u16(self.r[1] + l.used_idx(), Relaxed);
            let e = self.r[1] + l.used_ring(idx % self.num);
            mem.store_u32(e, id as u32, Relaxed);
            mem.store_u32(e + 4, Self::BUF as u32, Relaxed);
            mem.store_u16(self.r[1] + l.used_idx(), idx.wrapping_add(1), Release);
            next(step);
        }
        // virtqueue_kick(rvq): the master's receive ring is vring 0.
        self.bell.ring(0).unwrap();
    }

    /// `vq_ring_add_buffer` / `virtqueue_fill_avail_buffers`: address, full length, WRITE.
    fn write_desc(&self, q: usize, id: u16) {
        let d = self.r[q] + self.l.desc(id);
        self.mem
            .write(d, &(DA + self.buf(q, id) as u64).to_le_bytes());
        self.mem.store_u32(d + 8, Self::BUF as u32, Relaxed);
        self.mem.store_u16(d + 12, VRING_DESC_F_WRITE, Relaxed);
    }

    /// A master initialised at once.
    fn start(mem: Arc<HeapMem>, num: u16, bell: MailBell) -> LiteMaster {
        let mut m = LiteMaster::new(mem, num, bell);
        m.init(&mut |_| ());
        m
    }

    fn buf(&self, q: usize, id: u16) -> usize {
        self.bufs + (q * self.num as usize + id as usize) * Self::BUF
    }

    /// `rpmsg_lite_alloc_tx_buffer` (`vq_tx_alloc_master` → `virtqueue_get_buffer`): a free
    /// buffer from vring 1's used ring.
    fn alloc_tx(&mut self) -> Option<(u16, u32)> {
        let used = self.mem.load_u16(self.r[1] + self.l.used_idx(), Acquire);
        let ahead = used.wrapping_sub(self.tx_used);
        assert!(
            ahead <= self.num,
            "vring 1 used index moved backwards or jumped: used.idx {used}, master at {} (its transmit buffers are lost)",
            self.tx_used
        );
        if ahead == 0 {
            return None;
        }
        let e = self.r[1] + self.l.used_ring(self.tx_used % self.num);
        let id = self.mem.load_u32(e, Relaxed) as u16;
        let len = self.mem.load_u32(e + 4, Relaxed);
        self.tx_used = self.tx_used.wrapping_add(1);
        Some((id, len))
    }

    /// `rpmsg_lite_send`: a free transmit buffer (polling up to 5 s), the message, the
    /// buffer made available on vring 1 (`virtqueue_add_buffer`: the descriptor keeps the
    /// length and flags set at init), a notification naming vring 1. Returns the buffer id.
    fn send(&mut self, src: u32, dst: u32, data: &[u8]) -> u16 {
        let end = Instant::now() + Duration::from_secs(5);
        let (id, len) = loop {
            if let Some(b) = self.alloc_tx() {
                break b;
            }
            assert!(
                Instant::now() < end,
                "no free transmit buffer within 5 s (rpmsg_lite_send fails)"
            );
            std::thread::sleep(Duration::from_micros(100));
        };
        assert_eq!(
            len as usize,
            Self::BUF,
            "zero-copy TX buffer size (used length)"
        );
        self.mem.write(self.buf(1, id), &msg_bytes(src, dst, data));
        self.mem.store_u16(
            self.r[1] + self.l.avail_ring(self.tx_avail % self.num),
            id,
            Relaxed,
        );
        self.tx_avail = self.tx_avail.wrapping_add(1);
        self.mem
            .store_u16(self.r[1] + self.l.avail_idx(), self.tx_avail, Release);
        self.bell.ring(1).unwrap();
        id
    }

    /// `rpmsg_lite_rx_callback`, run only on a notification naming vring 0 (`env_isr`):
    /// takes one message and posts its buffer again (`vq_rx_free_master`).
    fn recv(&mut self) -> (u32, u32, Vec<u8>) {
        let end = Instant::now() + Duration::from_secs(5);
        let mut notified = false;
        loop {
            notified |= self.bell.take().contains(&0);
            if notified {
                let used = self.mem.load_u16(self.r[0] + self.l.used_idx(), Acquire);
                if used != self.rx_used {
                    let e = self.r[0] + self.l.used_ring(self.rx_used % self.num);
                    let id = self.mem.load_u32(e, Relaxed) as u16;
                    let len = self.mem.load_u32(e + 4, Relaxed) as usize;
                    self.rx_used = self.rx_used.wrapping_add(1);
                    let mut raw = vec![0u8; len];
                    self.mem.read(self.buf(0, id), &mut raw);
                    self.mem.store_u16(
                        self.r[0] + self.l.avail_ring(self.rx_avail % self.num),
                        id,
                        Relaxed,
                    );
                    self.rx_avail = self.rx_avail.wrapping_add(1);
                    self.mem
                        .store_u16(self.r[0] + self.l.avail_idx(), self.rx_avail, Release);
                    return parse_msg(&raw);
                }
                notified = false;
            }
            assert!(
                Instant::now() < end,
                "no notification naming vring 0 within 5 s (the master sleeps until one comes)"
            );
            std::thread::sleep(Duration::from_micros(100));
        }
    }
}

type Remote = RemoteBus<Arc<HeapMem>, MailBell, 4>;

fn remote(mem: &Arc<HeapMem>, bell: MailBell, p: &DevicePlacement) -> Remote {
    remote_waiting(mem, bell, p, WaitMode::Poll)
}

fn remote_waiting(
    mem: &Arc<HeapMem>,
    bell: MailBell,
    p: &DevicePlacement,
    wait: WaitMode,
) -> Remote {
    let cfg = RemoteConfig::default().wait(wait).buf_size(LiteMaster::BUF);
    let mut r = RemoteBus::new(Arc::clone(mem), bell, &(p).buffers, p, cfg).unwrap();
    r.create_endpoint("rpmsg-lite", Some(REMOTE_EP)).unwrap();
    r
}

/// One round trip, single-threaded: the master sends, the remote echoes, the master
/// checks the echo.
fn round_trip(master: &mut LiteMaster, r: &mut Remote, i: usize) -> Result<(), Error> {
    let p = payload(i);
    master.send(MASTER_EP, REMOTE_EP, &p);
    let mut buf = [0u8; 512];
    let (src, len) = r.recv_any_with(T, |m| {
        buf[..m.payload.len()].copy_from_slice(m.payload);
        (m.src, m.payload.len())
    })?;
    r.send_raw(REMOTE_EP, src, &buf[..len], T)?;
    assert_eq!(master.recv(), (REMOTE_EP, MASTER_EP, p), "echo {i}");
    Ok(())
}

/// `n` verified round trips.
fn echo(master: &mut LiteMaster, r: &mut Remote, n: usize) {
    for i in 0..n {
        round_trip(master, r, i).unwrap_or_else(|e| panic!("round trip {i}: {e:?}"));
    }
}

// ---------------------------------------------------------------------------------------

/// Issue 19.1: every descriptor of the master carries WRITE, the transmit ring's too. The
/// remote takes the master's messages from such descriptors and never writes into them:
/// the transmit buffers read back exactly as the master wrote them after the remote used
/// them. Before the fix: "host transmit buffer (vring 1) marked device-writable" at the
/// first message.
#[test]
fn remote_reads_rpmsg_lite_transmit_buffers_marked_writable_and_never_writes_them() {
    let num = 8;
    let (mem, p) = LiteMaster::memory(num);
    let (mb, rb) = MailBell::pair();
    let mut master = LiteMaster::start(Arc::clone(&mem), num, mb);
    let mut r = remote(&mem, rb, &p);
    r.wait_ready(T).unwrap();
    for i in 0..3 * num as usize {
        let before = {
            let data = payload(i);
            let id = master.send(MASTER_EP, REMOTE_EP, &data);
            let mut raw = vec![0u8; LiteMaster::BUF];
            mem.read(master.buf(1, id), &mut raw);
            (id, raw)
        };
        let got = r.recv_any_with(T, |m| m.payload.to_vec()).unwrap();
        assert_eq!(got, payload(i));
        let mut after = vec![0u8; LiteMaster::BUF];
        mem.read(master.buf(1, before.0), &mut after);
        assert_eq!(after, before.1, "the remote wrote into transmit buffer {i}");
    }
    assert!(r.broken().is_none());
}

/// The master's ordinary use: our remote (defaults but for polling and the 512-byte
/// buffers) keeps the master's pre-filled transmit buffers (vring 1's used index continues
/// from the count), notifies although NO_INTERRUPT stays set, and echoes more messages
/// than there are buffers, on a thread of its own. Doorbells name only vring 0 or 1.
#[test]
fn remote_under_rpmsg_lite_master() {
    let num = 16;
    let (mem, p) = LiteMaster::memory(num);
    let (mb, rb) = MailBell::pair();
    let mut master = LiteMaster::start(Arc::clone(&mem), num, mb);
    let mut r = remote(&mem, rb, &p);
    r.wait_ready(T).unwrap();
    let t = std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        for _ in 0..200 {
            let (src, len) = r
                .recv_any_with(T, |m| {
                    buf[..m.payload.len()].copy_from_slice(m.payload);
                    (m.src, m.payload.len())
                })
                .unwrap();
            r.send_raw(REMOTE_EP, src, &buf[..len], T).unwrap();
        }
        r
    });
    for i in 0..200 {
        let data = payload(i);
        master.send(MASTER_EP, REMOTE_EP, &data);
        assert_eq!(master.recv(), (REMOTE_EP, MASTER_EP, data), "echo {i}");
    }
    let r = t.join().unwrap();
    assert!(r.doorbell().rung().iter().all(|&id| id == 0 || id == 1));
}

/// Issue 19.2, deterministically: a remote that looks for the link at every step of the
/// master's initialisation (after each ring is zeroed, each receive buffer posted, each
/// transmit buffer put in the used ring) does not attach before the master's notification;
/// after it, it attaches and echoes three rounds of the ring. Before the fix the remote
/// attached as soon as vring 0's avail index was not 0, took vring 1's used index while
/// the master was still filling it, and the master's next `rpmsg_lite_send` found its
/// transmit buffers gone.
#[test]
fn remote_does_not_attach_during_the_masters_initialisation() {
    let num = 8;
    let (mem, p) = LiteMaster::memory(num);
    let (mb, rb) = MailBell::pair();
    let mut master = LiteMaster::new(Arc::clone(&mem), num, mb);
    let mut r = remote(&mem, rb, &p);
    let mut steps = 0;
    master.init(&mut |k| {
        steps += 1;
        let got = r.wait_ready(Some(Duration::ZERO));
        assert!(
            matches!(got, Err(Error::Timeout)),
            "step {k} of the master's init: {got:?}"
        );
    });
    assert_eq!(steps, 2 + 2 * num as usize);
    r.wait_ready(T).unwrap();
    echo(&mut master, &mut r, 3 * num as usize);
}

/// Issue 19.2 with real concurrency: the remote started before, during and after the
/// master's initialisation (the master yielding between its steps), 10 runs each in the
/// three wait modes in turn, every echo verified and more messages than buffers (so a lost
/// transmit buffer shows). Before the fix: "no free transmit buffer within 5 s".
#[test]
fn remote_comes_up_whenever_it_starts_against_rpmsg_lite_master() {
    let num = 16;
    for when in ["before", "during", "after"] {
        for run in 0..10 {
            let (mem, p) = LiteMaster::memory(num);
            let (mb, rb) = MailBell::pair();
            let mut master = LiteMaster::new(Arc::clone(&mem), num, mb);
            let start = Arc::new(std::sync::Barrier::new(2));
            let remote_side = {
                let (mem, p, start) = (Arc::clone(&mem), p, Arc::clone(&start));
                let wait = [
                    WaitMode::Poll,
                    WaitMode::Event,
                    WaitMode::Adaptive(Duration::from_micros(50)),
                ][run % 3];
                move || {
                    let mut r = remote_waiting(&mem, rb, &p, wait);
                    start.wait();
                    r.wait_ready(T).map(|()| r)
                }
            };
            let t = match when {
                "before" => {
                    let t = std::thread::spawn(remote_side);
                    start.wait();
                    master.init(&mut |_| std::thread::yield_now());
                    t
                }
                "during" => {
                    let t = std::thread::spawn(remote_side);
                    // Released at a different step each run: while the rings are
                    // zeroed, vring 0 filled or vring 1's used ring filled.
                    let at = (run * 7) % (2 + 2 * num as usize);
                    master.init(&mut |k| {
                        if k == at {
                            start.wait();
                        }
                        std::thread::yield_now();
                    });
                    t
                }
                _ => {
                    master.init(&mut |_| ());
                    let t = std::thread::spawn(remote_side);
                    start.wait();
                    t
                }
            };
            let mut r = t
                .join()
                .unwrap()
                .unwrap_or_else(|e| panic!("{when}, run {run}: wait_ready {e:?}"));
            echo(&mut master, &mut r, 3 * num as usize);
        }
    }
}

/// Issue 19.2, stale memory: a remote started over memory a previous master and remote
/// used (indices far from 0) does not attach to those rings; when a new master
/// initialises there, it attaches to the new rings and echoes. Before the fix it attached
/// at once to the stale indices.
#[test]
fn remote_ignores_rings_a_previous_master_left() {
    let num = 8;
    let (mem, p) = LiteMaster::memory(num);
    {
        let (mb, rb) = MailBell::pair();
        let mut old = LiteMaster::start(Arc::clone(&mem), num, mb);
        let mut r = remote(&mem, rb, &p);
        r.wait_ready(T).unwrap();
        echo(&mut old, &mut r, 3 * num as usize + 5);
    }
    // The remote core restarts: a new bus over the same memory, a fresh mailbox.
    let (mb, rb) = MailBell::pair();
    let mut r = remote(&mem, rb, &p);
    let got = r.wait_ready(Some(Duration::from_millis(50)));
    assert!(
        matches!(got, Err(Error::Timeout)),
        "attached to a previous link's rings: {got:?}"
    );
    let mut master = LiteMaster::start(Arc::clone(&mem), num, mb);
    r.wait_ready(T).unwrap();
    echo(&mut master, &mut r, 3 * num as usize);
}

/// A remote that served a first master (8-entry rings) for a few round trips, the master
/// gone: `(memory, the master's side of the mailbox, the remote)`.
fn after_a_first_master(wait: WaitMode) -> (Arc<HeapMem>, MailBell, Remote) {
    let (mem, p) = LiteMaster::memory(REBUILD_NUM);
    let (mb, rb) = MailBell::pair();
    let mut old = LiteMaster::start(Arc::clone(&mem), REBUILD_NUM, mb.clone());
    let mut r = remote_waiting(&mem, rb, &p, wait);
    r.wait_ready(T).unwrap();
    echo(&mut old, &mut r, REBUILD_NUM as usize + 3);
    drop(old);
    (mem, mb, r)
}

/// Ring size of the tests where a second master follows the first.
const REBUILD_NUM: u16 = 8;

/// Issue 19.3, a master that re-initialises the rings under a running remote (RPMsg-Lite
/// does not support it, and shows it only by zeroing and refilling the rings): the
/// remote's next call reports `PeerGone` (a used index it did not write), `wait_ready`
/// attaches to the new master's rings, and the link works. Before the fix: the error
/// stayed sticky after `wait_ready` returned `Ok`.
#[test]
fn remote_attaches_to_a_new_master_after_the_rings_were_rebuilt() {
    let num = REBUILD_NUM;
    let (mem, mb, mut r) = after_a_first_master(WaitMode::Poll);
    mb.take();
    let mut master = LiteMaster::start(Arc::clone(&mem), num, mb);
    // A busy remote looks at the used indices at its next idle call; the new master's
    // indices, met first, may surface as a protocol error on the way.
    let mut got = r.recv_any_with(Some(Duration::ZERO), |_| ()).err();
    if matches!(got, Some(Error::Protocol { .. })) {
        got = r.recv_any_with(Some(Duration::ZERO), |_| ()).err();
    }
    assert_eq!(got, Some(Error::PeerGone), "rebuilt rings not seen");
    assert!(!r.is_ready());
    r.wait_ready(T).unwrap();
    echo(&mut master, &mut r, 3 * num as usize);
}

/// Issue 19.3, the doorbell reports the master gone: calls fail with `PeerGone`,
/// `wait_ready` does not return `Ok` while the master is gone (it reports `PeerGone`),
/// and once a new master is on the mailbox and has initialised, `wait_ready` attaches and
/// the link works. Before the fix `wait_ready` returned `Ok` at once and every later call
/// failed with `PeerGone`.
#[test]
fn remote_waits_for_a_new_master_after_peer_gone() {
    let num = REBUILD_NUM;
    let (mem, mb, mut r) = after_a_first_master(WaitMode::Poll);
    mb.set_master_gone(true);
    let got = r.recv_any_with(Some(Duration::from_millis(20)), |_| ());
    assert_eq!(got.err(), Some(Error::PeerGone));
    let got = r.wait_ready(Some(Duration::from_millis(50)));
    assert_eq!(
        got.err(),
        Some(Error::PeerGone),
        "wait_ready on a dead link"
    );
    assert!(r.recv_any_with(Some(Duration::ZERO), |_| ()).is_err());
    // A new master on the same mailbox.
    mb.set_master_gone(false);
    let mut master = LiteMaster::start(Arc::clone(&mem), num, mb);
    r.wait_ready(T).unwrap();
    echo(&mut master, &mut r, 3 * num as usize);
}

/// With `NotifyPolicy::Honour` forced, a master that never clears NO_INTERRUPT gets no
/// notification — the failure the default avoids (documents the policy's effect).
#[test]
fn honouring_no_interrupt_starves_an_rpmsg_lite_master() {
    let num = 8;
    let (mem, p) = LiteMaster::memory(num);
    let (mb, rb) = MailBell::pair();
    let master = LiteMaster::start(Arc::clone(&mem), num, mb);
    let cfg = RemoteConfig::default()
        .notify(Some(NotifyPolicy::Honour))
        .buf_size(512);
    let mut r = RemoteBus::<_, _, 4>::new(Arc::clone(&mem), rb, &p.buffers, p, cfg).unwrap();
    r.wait_ready(T).unwrap();
    let ep = r.create_endpoint("x", Some(REMOTE_EP)).unwrap();
    r.send_raw(ep, MASTER_EP, b"hello", T).unwrap();
    assert!(
        !master.bell.take().contains(&0),
        "the remote honoured NO_INTERRUPT, so the master was not notified"
    );
}

/// A second master while the remote sleeps in a receive: the master's one notification
/// (`rpmsg_lite_master_init` sends it once, at its end) wakes that receive, which then
/// sees the rebuilt rings and reports `PeerGone` — the notification is taken. `wait_ready`
/// must still attach, on the rings' state. Before the fix it waited for a notification
/// that never came (seen against the real RPMsg-Lite master: "no new host after 496
/// messages").
#[test]
fn remote_attaches_to_a_new_master_whose_notification_a_receive_took() {
    let num = REBUILD_NUM;
    let (mem, mb, r) = after_a_first_master(WaitMode::Event);
    mb.take();
    let (mut r, mut master) = std::thread::scope(|s| {
        let receiver = s.spawn(move || {
            let mut r = r;
            let mut got = r.recv_any_with(T, |_| ()).err();
            if matches!(got, Some(Error::Protocol { .. })) {
                got = r.recv_any_with(Some(Duration::ZERO), |_| ()).err();
            }
            (r, got)
        });
        // The remote is asleep in its receive before the new master starts.
        std::thread::sleep(Duration::from_millis(50));
        let master = LiteMaster::start(Arc::clone(&mem), num, mb.clone());
        let (r, got) = receiver.join().unwrap();
        assert_eq!(got, Some(Error::PeerGone), "rebuilt rings not seen");
        (r, master)
    });
    assert!(!r.is_ready());
    r.wait_ready(Some(Duration::from_secs(2)))
        .expect("the new master's notification was taken by the receive");
    echo(&mut master, &mut r, 3 * num as usize);
}
