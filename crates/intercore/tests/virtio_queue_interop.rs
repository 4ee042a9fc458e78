//! Interoperability of our split virtqueue (virtio 1.2 §2.7) with rust-vmm's `virtio-queue`
//! 0.18, an independent implementation, over the same guest memory.
//!
//! * Our [`DriverQueue`] feeds `virtio_queue::Queue` acting as the device.
//! * A driver built from `virtio-queue`'s driver-side test utilities (`mock::DescriptorTable`,
//!   `mock::AvailRing`, `mock::UsedRing`) feeds our [`DeviceQueue`].
//!
//! Memory is one `vm-memory` mmap region at guest address 0, wrapped as an
//! [`intercore::SharedMemory`], so guest addresses, region offsets and [`DevAddr`]s are the same
//! numbers. The ring (`num` 256, legacy layout with `align` 4096) sits at offset 0 and is
//! described to `virtio-queue` through the three area addresses our [`VringLayout`] computes.
//!
//! Both sides run in one thread, interleaved by a seeded pseudo-random scheduler, so every
//! "should I notify?" decision can be compared exactly with what the peer asked for. The
//! notification model follows §2.7.7 (used buffer notification suppression: the driver's
//! `VRING_AVAIL_F_NO_INTERRUPT` / `used_event`) and §2.7.10 (available buffer notification
//! suppression: the device's `VRING_USED_F_NO_NOTIFY` / `avail_event`). A side that goes to
//! sleep (re-enabled notifications and found nothing pending) is only woken by a
//! notification, so a lost notification shows up as a deadlock and fails the test.

use intercore::virtq::{DescInfo, DeviceQueue, DriverQueue, VringLayout};
use intercore::{DevAddr, SharedMemory};
use std::collections::VecDeque;
use std::io::{Read, Write};
use std::sync::atomic::Ordering::{Acquire, Relaxed};
use virtio_queue::desc::RawDescriptor;
use virtio_queue::desc::split::Descriptor as SplitDescriptor;
use virtio_queue::mock::{AvailRing, DescriptorTable, UsedRing};
use virtio_queue::{Queue, QueueOwnedT, QueueT};
use vm_memory::{Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryMmap, GuestMemoryRegion};

/// Size of the guest memory region.
const REGION: usize = 1 << 20;
/// Queue size (what Linux's rpmsg uses).
const NUM: u16 = 256;
/// Used-ring alignment of the legacy layout (remoteproc's usual value).
const ALIGN: u32 = 4096;
/// Offset (= guest address) of the ring.
const RING_BASE: usize = 0;
/// Guest address of the first buffer slot; descriptor `id` owns one `BUF_STRIDE` slot.
const BUF_BASE: u64 = 0x4000;
/// Bytes per buffer slot.
const BUF_STRIDE: u64 = 1024;
/// Buffers (test 1) or chains (test 2) to pass: more than 65536, so that the available and
/// used indices of both sides wrap around.
const TOTAL: u32 = 70_000;
/// Byte the driver fills device-writable buffers with before handing them out.
const POISON: u8 = 0xee;
/// `VRING_USED_F_NO_NOTIFY` / `VRING_AVAIL_F_NO_INTERRUPT`.
const F_NO_NOTIFY: u16 = 1;
const F_NO_INTERRUPT: u16 = 1;
/// Descriptor flags (virtio 1.2 §2.7.5).
const F_NEXT: u16 = 1;
const F_WRITE: u16 = 2;

// ---------------------------------------------------------------------------------------
// Shared plumbing
// ---------------------------------------------------------------------------------------

/// The single region of a [`GuestMemoryMmap`] seen as `intercore` shared memory.
struct GuestShm<'m> {
    base: *mut u8,
    len: usize,
    _mem: &'m GuestMemoryMmap,
}

impl<'m> GuestShm<'m> {
    fn new(mem: &'m GuestMemoryMmap) -> Self {
        assert_eq!(mem.num_regions(), 1);
        let region = mem
            .find_region(GuestAddress(0))
            .expect("region at guest address 0");
        assert_eq!(region.start_addr(), GuestAddress(0));
        let len = usize::try_from(region.len()).unwrap();
        let base = mem
            .get_host_address(GuestAddress(0))
            .expect("host address of the region");
        assert!(
            !base.is_null() && base as usize % 8 == 0,
            "mmap base must be 8-aligned"
        );
        Self {
            base,
            len,
            _mem: mem,
        }
    }
}

// SAFETY: `base` is the host address of guest address 0 of the only region of the borrowed
// `GuestMemoryMmap`: an anonymous read/write mmap of `len` bytes (the region's length), so it
// is page-aligned, hence 8-aligned (`new` asserts it). The `'m` borrow keeps the
// `GuestMemoryMmap`, and with it the mapping, alive and unchanged for as long as this value
// exists (regions cannot be removed through a shared reference). Nothing creates `&[u8]`/`&mut`
// references into the mapping: vm-memory (and virtio-queue through it) accesses guest memory
// with volatile copies and atomic types, which tolerate concurrent mutation, our crate through
// the trait's accessors, and this test only through those two APIs.
unsafe impl SharedMemory for GuestShm<'_> {
    fn as_ptr(&self) -> *mut u8 {
        self.base
    }
    fn len(&self) -> usize {
        self.len
    }
}

/// A small deterministic PRNG (xorshift64*), so that failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next() % (hi - lo + 1) as u64) as usize
    }
    /// True with probability `num/den`.
    fn chance(&mut self, num: u64, den: u64) -> bool {
        self.next() % den < num
    }
    fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            v.swap(i, self.range(0, i));
        }
    }
    /// A batch size in `1..=room`: often the extremes (one buffer, a full ring), otherwise
    /// uniform.
    fn batch(&mut self, room: usize) -> usize {
        match self.next() % 10 {
            0 => 1,
            1 => room,
            _ => self.range(1, room),
        }
    }
}

/// Byte `i` of the payload for sequence number `seq`; `salt` tells driver data from device
/// data.
fn pattern(seq: u32, i: usize, salt: u8) -> u8 {
    let x = seq.wrapping_mul(0x9e37_79b9) ^ (i as u32).wrapping_mul(0x85eb_ca6b);
    (x >> 13) as u8 ^ (x >> 24) as u8 ^ salt
}
const DRIVER_SALT: u8 = 0x00;
const DEVICE_SALT: u8 = 0x5a;

fn fill(seq: u32, len: usize, salt: u8) -> Vec<u8> {
    (0..len).map(|i| pattern(seq, i, salt)).collect()
}

/// Whether the index `event` lies in the window `[old, new)` of wrapping u16 indices: the
/// condition of §2.7.7 / §2.7.10 for notifying when an index moves from `old` to `new`
/// ("the index reached `event`"), written independently of `vring_need_event`.
fn in_window(event: u16, old: u16, new: u16) -> bool {
    event.wrapping_sub(old) < new.wrapping_sub(old)
}

fn guest_memory() -> GuestMemoryMmap {
    GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), REGION)]).unwrap()
}

fn layout() -> VringLayout {
    let l = VringLayout::new(NUM.into(), ALIGN).unwrap();
    assert!(RING_BASE + l.size() <= BUF_BASE as usize);
    assert!(BUF_BASE + u64::from(NUM) * BUF_STRIDE <= REGION as u64);
    l
}

/// Guest addresses of the descriptor table, available ring and used ring of our layout.
fn areas(l: &VringLayout) -> (u64, u64, u64) {
    (
        (RING_BASE + l.desc(0)) as u64,
        (RING_BASE + l.avail_flags()) as u64,
        (RING_BASE + l.used_flags()) as u64,
    )
}

fn load16(mem: &GuestMemoryMmap, addr: u64) -> u16 {
    u16::from_le(mem.load(GuestAddress(addr), Relaxed).unwrap())
}

fn store16(mem: &GuestMemoryMmap, addr: u64, v: u16) {
    mem.store(v.to_le(), GuestAddress(addr), Relaxed).unwrap()
}

/// Counters, to show that every branch of the scenario was exercised.
#[derive(Debug, Default)]
struct Stats {
    kicks: u32,
    kicks_suppressed: u32,
    irqs: u32,
    irqs_suppressed: u32,
    /// Interrupts the device sent although the driver had asked not to get any.
    irqs_unrequested: u32,
    device_sleeps: u32,
    driver_sleeps: u32,
    full_ring_batches: u32,
    /// A publish of the available index crossed 0xffff → 0.
    avail_wrapped_in_batch: bool,
    /// The used index crossed 0xffff → 0 (inside one `needs_notification`/`publish` window).
    used_wrapped_in_batch: bool,
    out_of_order_completions: u32,
}

// ---------------------------------------------------------------------------------------
// Test 1: our DriverQueue, virtio-queue's Queue as the device
// ---------------------------------------------------------------------------------------

/// A buffer our driver handed to the device.
#[derive(Debug, Clone, Copy)]
struct Buf {
    seq: u32,
    addr: u64,
    len: u32,
    writable: bool,
}

fn our_driver_vs_virtio_queue_device(event_idx: bool, seed: u64) -> Stats {
    let mem = guest_memory();
    let shm = GuestShm::new(&mem);
    let l = layout();
    let mut rng = Rng(seed);
    let mut st = Stats::default();

    let mut drv = DriverQueue::new(&shm, RING_BASE, l, event_idx).unwrap();
    drv.reset(&shm);

    // The device learns the ring geometry as from a transport (queue size and the three area
    // addresses) and has negotiated EVENT_IDX (or not) like the driver.
    let (desc, avail, used) = areas(&l);
    let mut q = Queue::new(NUM).unwrap();
    q.set_size(NUM);
    q.set_desc_table_address(Some(desc as u32), Some((desc >> 32) as u32));
    q.set_avail_ring_address(Some(avail as u32), Some((avail >> 32) as u32));
    q.set_used_ring_address(Some(used as u32), Some((used >> 32) as u32));
    q.set_event_idx(event_idx);
    q.set_ready(true);
    assert!(q.is_valid(&mem), "virtio-queue rejects our ring placement");
    assert_eq!(
        (q.size(), q.desc_table(), q.avail_ring(), q.used_ring()),
        (NUM, desc, avail, used)
    );
    // Where virtio-queue (and the spec) put the two event fields, from the area addresses.
    let used_event_addr = avail + 4 + 2 * u64::from(NUM);
    let avail_event_addr = used + 4 + 8 * u64::from(NUM);
    assert_eq!(used_event_addr, (RING_BASE + l.used_event()) as u64);
    assert_eq!(avail_event_addr, (RING_BASE + l.avail_event()) as u64);

    // Driver-side bookkeeping.
    let mut free: VecDeque<u16> = (0..NUM).collect();
    let mut bufs: Vec<Option<Buf>> = vec![None; NUM.into()];
    let mut added: u32 = 0;
    let mut published: u16 = 0;
    let mut consumed: u16 = 0;
    // After `reset` our driver has interrupts off (NO_INTERRUPT, or used_event far away).
    let mut drv_irq_on = false;
    let mut drv_used_event: u16 = 0x8000;
    let mut drv_asleep = false;
    let mut drv_irq_pending = false;
    assert_eq!(
        load16(&mem, if event_idx { used_event_addr } else { avail }),
        if event_idx { 0x8000 } else { F_NO_INTERRUPT },
        "reset must start with interrupts suppressed"
    );

    // Device-side bookkeeping. The zeroed ring means "notify me" (flags 0, avail_event 0) and
    // the device waits for the first kick.
    let mut dev_seen = vec![false; NUM.into()];
    let mut dev_notify_on = true;
    let mut dev_avail_event: u16 = 0;
    let mut dev_asleep = true;
    let mut dev_kicked = false;
    let mut dev_used_checked: u16 = 0;
    let mut held: Vec<(u16, u32)> = Vec::new();
    // Used entries in the order virtio-queue wrote them: our driver must return them in it.
    let mut used_order: VecDeque<(u16, u32)> = VecDeque::new();
    let mut completion_seq: Vec<u32> = Vec::new();

    let mut steps = 0u32;
    while added < TOTAL || drv.in_flight() > 0 {
        steps += 1;
        assert!(steps < 1_000_000, "no progress");
        let can_add = added < TOTAL && !free.is_empty();
        let dev_ready = dev_kicked || !dev_asleep || !held.is_empty();
        let drv_ready = drv_irq_pending || !drv_asleep;
        assert!(
            can_add || dev_ready || drv_ready,
            "deadlock: both sides sleep with {} buffers in flight — a notification was lost \
             (event_idx {event_idx}, step {steps})",
            drv.in_flight()
        );
        let action = loop {
            match rng.next() % 3 {
                0 if can_add => break 0,
                1 if dev_ready => break 1,
                2 if drv_ready => break 2,
                _ => {}
            }
        };

        match action {
            // The driver adds a batch of buffers and publishes them (§2.7.13).
            0 => {
                let room = free.len().min((TOTAL - added) as usize);
                let k = rng.batch(room);
                if k == usize::from(NUM) {
                    st.full_ring_batches += 1;
                }
                for _ in 0..k {
                    let id = free.pop_front().unwrap();
                    let seq = added;
                    added += 1;
                    let writable = rng.chance(1, 2);
                    let off = rng.range(0, 7) as u64;
                    let len = rng.range(1, (BUF_STRIDE - off) as usize);
                    let addr = BUF_BASE + u64::from(id) * BUF_STRIDE + off;
                    let data = if writable {
                        vec![POISON; len]
                    } else {
                        fill(seq, len, DRIVER_SALT)
                    };
                    shm.write(addr as usize, &data);
                    let len = len as u32;
                    bufs[usize::from(id)] = Some(Buf {
                        seq,
                        addr,
                        len,
                        writable,
                    });
                    dev_seen[usize::from(id)] = false;
                    drv.add(&shm, id, DevAddr(addr), len, writable).unwrap();
                }
                // §2.7.13.3: nothing is available before the index moves.
                assert_eq!(q.avail_idx(&mem, Acquire).unwrap().0, published);
                let old = published;
                let new = old.wrapping_add(k as u16);
                let kick = drv.publish(&shm);
                assert_eq!(q.avail_idx(&mem, Acquire).unwrap().0, new);
                st.avail_wrapped_in_batch |= new < old;
                // §2.7.10: with EVENT_IDX notify iff the index passed the device's
                // avail_event (what virtio-queue stored in enable_notification; its
                // disable_notification leaves it alone); otherwise iff NO_NOTIFY is clear.
                let want = if event_idx {
                    in_window(dev_avail_event, old, new)
                } else {
                    dev_notify_on
                };
                assert_eq!(
                    kick, want,
                    "publish {old}→{new}: kick disagrees with the device's request \
                     (event_idx {event_idx}, avail_event {dev_avail_event}, notify_on {dev_notify_on})"
                );
                assert!(
                    kick || !dev_asleep,
                    "publish {old}→{new} did not kick a device that re-enabled notifications"
                );
                published = new;
                if kick {
                    st.kicks += 1;
                    dev_kicked = true;
                    dev_asleep = false;
                } else {
                    st.kicks_suppressed += 1;
                }
            }

            // The device (virtio-queue) runs: takes chains, checks them, uses some.
            1 => {
                dev_kicked = false;
                dev_asleep = false;
                q.disable_notification(&mem).unwrap();
                dev_notify_on = false;
                if event_idx {
                    // virtio-queue leaves avail_event where it was.
                    assert_eq!(shm.load_u16(l.avail_event(), Relaxed), dev_avail_event);
                } else {
                    assert_eq!(shm.load_u16(l.used_flags(), Relaxed), F_NO_NOTIFY);
                }
                let pending = published.wrapping_sub(q.next_avail());
                assert!(pending <= NUM);
                let budget = if rng.chance(1, 2) {
                    pending.into()
                } else {
                    rng.range(0, pending.into())
                };
                let chains: Vec<_> = if rng.chance(1, 2) {
                    q.iter(&mem).unwrap().take(budget).collect()
                } else {
                    (0..budget)
                        .map(|_| q.pop_descriptor_chain(&mem).expect("announced chain"))
                        .collect()
                };
                assert_eq!(chains.len(), budget);
                for chain in chains {
                    let head = chain.head_index();
                    let b = bufs[usize::from(head)]
                        .expect("device got a descriptor our driver has not handed out");
                    assert!(drv.is_in_flight(head));
                    assert!(
                        !dev_seen[usize::from(head)],
                        "descriptor {head} offered twice"
                    );
                    dev_seen[usize::from(head)] = true;
                    let descs: Vec<_> = chain.clone().collect();
                    assert_eq!(descs.len(), 1, "our driver adds single-descriptor chains");
                    let d = descs[0];
                    assert_eq!(d.addr().0, b.addr);
                    assert_eq!(d.len(), b.len);
                    assert_eq!(d.is_write_only(), b.writable);
                    assert!(!d.has_next() && !d.refers_to_indirect_table());
                    let wlen = if b.writable {
                        let mut w = chain.writer(&mem).unwrap();
                        assert_eq!(w.available_bytes(), b.len as usize);
                        let n = if rng.chance(1, 2) {
                            b.len as usize
                        } else {
                            rng.range(0, b.len as usize)
                        };
                        w.write_all(&fill(b.seq, n, DEVICE_SALT)).unwrap();
                        assert_eq!(w.bytes_written(), n);
                        n as u32
                    } else {
                        let mut r = chain.reader(&mem).unwrap();
                        assert_eq!(r.available_bytes(), b.len as usize);
                        let mut got = vec![0; b.len as usize];
                        r.read_exact(&mut got).unwrap();
                        assert!(
                            got == fill(b.seq, got.len(), DRIVER_SALT),
                            "payload of buffer #{} differs",
                            b.seq
                        );
                        0
                    };
                    held.push((head, wlen));
                }
                // Use a random subset of what the device holds, in random order (split
                // rings allow out-of-order use, §2.7.8).
                rng.shuffle(&mut held);
                let n = if rng.chance(2, 3) {
                    held.len()
                } else {
                    rng.range(0, held.len())
                };
                let old = dev_used_checked;
                for (head, wlen) in held.drain(..n) {
                    let seq = bufs[usize::from(head)].unwrap().seq;
                    if completion_seq.last().is_some_and(|&s| s > seq) {
                        st.out_of_order_completions += 1;
                    }
                    completion_seq.push(seq);
                    q.add_used(&mem, head, wlen).unwrap();
                    used_order.push_back((head, wlen));
                }
                let new = q.next_used();
                assert_eq!(q.used_idx(&mem, Acquire).unwrap().0, new);
                assert_eq!(shm.load_u16(l.used_idx(), Acquire), new);
                if n > 0 {
                    st.used_wrapped_in_batch |= new < old;
                    let irq = q.needs_notification(&mem).unwrap();
                    dev_used_checked = new;
                    // §2.7.7: with EVENT_IDX notify iff the used index passed the driver's
                    // used_event; otherwise unless NO_INTERRUPT is set.
                    if event_idx {
                        assert_eq!(
                            irq,
                            in_window(drv_used_event, old, new),
                            "used {old}→{new}: needs_notification disagrees with our \
                             used_event {drv_used_event}"
                        );
                    } else if irq && !drv_irq_on {
                        // virtio-queue 0.18 ignores VRING_AVAIL_F_NO_INTERRUPT ("isn't
                        // supported yet"); the spec says SHOULD NOT, so this is only a
                        // spurious interrupt.
                        st.irqs_unrequested += 1;
                    }
                    assert!(
                        event_idx || irq || !drv_irq_on,
                        "used {old}→{new}: no interrupt although our driver enabled them"
                    );
                    assert!(
                        irq || !drv_asleep,
                        "used {old}→{new}: sleeping driver not interrupted"
                    );
                    if irq {
                        st.irqs += 1;
                        drv_irq_pending = true;
                        drv_asleep = false;
                    } else {
                        st.irqs_suppressed += 1;
                    }
                }
                // Go to sleep (or keep polling with notifications off).
                if rng.chance(3, 4) {
                    let more = q.enable_notification(&mem).unwrap();
                    dev_notify_on = true;
                    if event_idx {
                        dev_avail_event = q.next_avail();
                        assert_eq!(shm.load_u16(l.avail_event(), Relaxed), dev_avail_event);
                    } else {
                        assert_eq!(shm.load_u16(l.used_flags(), Relaxed), 0);
                    }
                    assert_eq!(more, published != q.next_avail());
                    if !more {
                        dev_asleep = true;
                        st.device_sleeps += 1;
                    }
                }
            }

            // Our driver runs: takes used buffers, checks them, maybe sleeps.
            _ => {
                drv_irq_pending = false;
                drv_asleep = false;
                let budget = if rng.chance(1, 2) {
                    usize::MAX
                } else {
                    rng.range(0, NUM.into())
                };
                for _ in 0..budget {
                    let Some((id, len)) = drv.pop_used(&shm).unwrap() else {
                        assert!(used_order.is_empty(), "used entries the driver did not see");
                        break;
                    };
                    let (want_id, want_len) = used_order.pop_front().expect("phantom used entry");
                    assert_eq!((id, len), (want_id, want_len), "used ring order or content");
                    assert!(!drv.is_in_flight(id));
                    let b = bufs[usize::from(id)].take().unwrap();
                    assert!(dev_seen[usize::from(id)]);
                    if b.writable {
                        let mut got = vec![0; b.len as usize];
                        shm.read(b.addr as usize, &mut got);
                        let (written, rest) = got.split_at(len as usize);
                        assert!(written == fill(b.seq, len as usize, DEVICE_SALT));
                        assert!(rest.iter().all(|&x| x == POISON));
                    } else {
                        assert_eq!(len, 0);
                    }
                    free.push_back(id);
                    consumed = consumed.wrapping_add(1);
                    if event_idx && drv_irq_on {
                        // Our driver keeps used_event at its consumption point while
                        // interrupts are on.
                        drv_used_event = consumed;
                        assert_eq!(load16(&mem, used_event_addr), consumed);
                    }
                }
                assert_eq!(drv.in_flight() as usize, NUM as usize - free.len());
                match rng.next() % 4 {
                    0 | 1 => {
                        let pending = drv.enable_interrupts(&shm);
                        drv_irq_on = true;
                        if event_idx {
                            drv_used_event = consumed;
                            assert_eq!(load16(&mem, used_event_addr), consumed);
                        } else {
                            assert_eq!(load16(&mem, avail), 0);
                        }
                        assert_eq!(pending, q.next_used() != consumed);
                        if !pending {
                            drv_asleep = true;
                            st.driver_sleeps += 1;
                        }
                    }
                    2 => {
                        drv.disable_interrupts(&shm);
                        drv_irq_on = false;
                        if event_idx {
                            // Far ahead: written half the index space away, and not rewritten
                            // while still a quarter or more ahead (no store when polling).
                            drv_used_event = load16(&mem, used_event_addr);
                            let ahead = drv_used_event.wrapping_sub(consumed);
                            assert!(
                                (0x4000..=0x8000).contains(&ahead),
                                "used_event {ahead:#x} ahead"
                            );
                        } else {
                            assert_eq!(load16(&mem, avail), F_NO_INTERRUPT);
                        }
                    }
                    _ => {}
                }
            }
        }
    }

    let end = TOTAL as u16; // TOTAL mod 65536
    assert_eq!(q.next_avail(), end);
    assert_eq!(q.next_used(), end);
    assert_eq!((published, consumed), (end, end));
    assert!(held.is_empty() && used_order.is_empty() && free.len() == usize::from(NUM));
    assert!(
        st.avail_wrapped_in_batch && st.used_wrapped_in_batch,
        "{st:?}"
    );
    assert!(st.kicks > 0 && st.kicks_suppressed > 0, "{st:?}");
    if event_idx {
        assert!(st.irqs > 0 && st.irqs_suppressed > 0, "{st:?}");
    } else {
        // virtio-queue interrupts even when our driver set NO_INTERRUPT (see above).
        assert!(st.irqs > 0 && st.irqs_unrequested > 0, "{st:?}");
    }
    assert!(st.device_sleeps > 0 && st.driver_sleeps > 0, "{st:?}");
    assert!(
        st.full_ring_batches > 0 && st.out_of_order_completions > 0,
        "{st:?}"
    );
    st
}

/// Our [`DriverQueue`] against `virtio_queue::Queue` as the device, with
/// `VIRTIO_F_EVENT_IDX`: split-ring layout and buffer hand-over (virtio 1.2 §2.7, §2.7.13,
/// §2.7.14), available-buffer notification suppression through `avail_event` (§2.7.10) and
/// used-buffer notification suppression through `used_event` (§2.7.7).
///
/// 70 000 single-descriptor buffers (readable with a known payload, or writable and
/// poisoned), in batches of 1..=256, so both sides' u16 indices wrap. The device checks each
/// descriptor's address, length, flags and payload, writes into writable buffers, and uses
/// buffers out of order; our driver checks ids, lengths, order and written bytes. Every
/// `publish()` result must equal `vring_need_event` over the `avail_event` virtio-queue's
/// `enable_notification` stored, and every `needs_notification()` result must equal it over
/// the `used_event` our driver stored; a side that re-enabled notifications with nothing
/// pending must be notified by the peer's next publish/use.
#[test]
fn our_driver_with_virtio_queue_device_event_idx() {
    let st = our_driver_vs_virtio_queue_device(true, 0x1234_5678_9abc_def1);
    eprintln!("event_idx: {st:?}");
}

/// As [`our_driver_with_virtio_queue_device_event_idx`], without `VIRTIO_F_EVENT_IDX`: the
/// notification suppression is the `VRING_USED_F_NO_NOTIFY` flag (§2.7.10) and the
/// `VRING_AVAIL_F_NO_INTERRUPT` flag (§2.7.7) of virtio 1.2 §2.7. Our `publish()` must kick
/// exactly when virtio-queue's device left `NO_NOTIFY` clear, and virtio-queue must interrupt
/// whenever our driver enabled interrupts (it never honours `NO_INTERRUPT`, which the spec
/// allows: the device only SHOULD NOT notify then).
#[test]
fn our_driver_with_virtio_queue_device_no_event_idx() {
    let st = our_driver_vs_virtio_queue_device(false, 0x0fed_cba9_8765_4321);
    eprintln!("no event_idx: {st:?}");
}

// ---------------------------------------------------------------------------------------
// Test 2: virtio-queue's mock driver structures, our DeviceQueue
// ---------------------------------------------------------------------------------------

/// One descriptor of a chain the mock driver made available.
#[derive(Debug, Clone, Copy)]
struct Seg {
    id: u16,
    addr: u64,
    len: u32,
    writable: bool,
}

/// A chain the mock driver made available.
#[derive(Debug, Clone)]
struct Chain {
    seq: u32,
    segs: Vec<Seg>,
}

impl Chain {
    fn readable_len(&self) -> usize {
        self.segs
            .iter()
            .filter(|s| !s.writable)
            .map(|s| s.len as usize)
            .sum()
    }
    fn writable_len(&self) -> usize {
        self.segs
            .iter()
            .filter(|s| s.writable)
            .map(|s| s.len as usize)
            .sum()
    }
}

fn mock_driver_vs_our_device(event_idx: bool, seed: u64) -> Stats {
    let mem = guest_memory();
    let shm = GuestShm::new(&mem);
    let l = layout();
    let mut rng = Rng(seed);
    let mut st = Stats::default();

    // `MockSplitQueue` itself cannot drive this ring. It lays the rings out its own way: the
    // available ring right after the table, the used ring 4-aligned after what it takes for
    // the available ring's end (`ring start + num`, counting entries as bytes), which is not
    // the legacy `align` layout; for 256 entries its used ring starts at 0x1104, inside its
    // own available ring (0x1000..0x1206). And it indexes the available ring with the
    // unreduced idx, so it cannot pass more than `num` chains in total. Its building blocks
    // work at any address, so the driver here places them where our layout says and does the
    // index arithmetic itself.
    let (desc, avail, used) = areas(&l);
    let table = DescriptorTable::new(&mem, GuestAddress(desc), NUM);
    let avail_ring = AvailRing::new(&mem, GuestAddress(avail), NUM);
    let used_ring = UsedRing::new(&mem, GuestAddress(used), NUM);
    // `UsedRing::new` zeroes a u16 at `used + 4 + 2·num`, inside the used ring: harmless now,
    // before anything is used. The real event fields, per §2.7.6 / §2.7.8:
    let used_event_addr = avail + 4 + 2 * u64::from(NUM);
    let avail_event_addr = used + 4 + 8 * u64::from(NUM);
    store16(&mem, avail_event_addr, 0);

    let mut dev = DeviceQueue::new(&shm, RING_BASE, l, event_idx).unwrap();

    // Mock-driver bookkeeping.
    let mut free: VecDeque<u16> = (0..NUM).collect();
    let mut chains: Vec<Option<Chain>> = vec![None; NUM.into()]; // by head id
    let mut added: u32 = 0;
    let mut avail_idx: u16 = 0;
    let mut last_used: u16 = 0;
    let mut drv_irq_on = true; // zeroed ring: flags 0, used_event 0
    let mut drv_used_event: u16 = 0;
    let mut drv_asleep = false;
    let mut drv_irq_pending = false;

    // Our device's bookkeeping.
    let mut dev_notify_on = true;
    let mut dev_avail_event: u16 = 0;
    let mut dev_asleep = true;
    let mut dev_kicked = false;
    let mut dev_taken: u16 = 0;
    let mut dev_published: u16 = 0;
    let mut held: Vec<(u16, u32)> = Vec::new();
    let mut used_order: VecDeque<(u16, u32)> = VecDeque::new();
    let mut completion_seq: Vec<u32> = Vec::new();

    let mut steps = 0u32;
    while added < TOTAL || free.len() < NUM.into() {
        steps += 1;
        assert!(steps < 1_000_000, "no progress");
        let can_add = added < TOTAL && !free.is_empty();
        let dev_ready = dev_kicked || !dev_asleep || !held.is_empty();
        let drv_ready = drv_irq_pending || !drv_asleep;
        assert!(
            can_add || dev_ready || drv_ready,
            "deadlock: both sides sleep with {} descriptors in flight — a notification was \
             lost (event_idx {event_idx}, step {steps})",
            usize::from(NUM) - free.len()
        );
        let action = loop {
            match rng.next() % 3 {
                0 if can_add => break 0,
                1 if dev_ready => break 1,
                2 if drv_ready => break 2,
                _ => {}
            }
        };

        match action {
            // The mock driver adds chains of 1..=4 descriptors (readable ones first, §2.7.5.2)
            // and publishes them.
            0 => {
                let old = avail_idx;
                let mut k = 0u16;
                let want = rng.batch(free.len());
                while k < want as u16 && added < TOTAL && !free.is_empty() {
                    let n = rng.range(1, free.len().min(4));
                    let n_read = rng.range(0, n);
                    let seq = added;
                    added += 1;
                    let mut segs = Vec::with_capacity(n);
                    for j in 0..n {
                        let id = free.pop_front().unwrap();
                        let off = rng.range(0, 7) as u64;
                        let len = rng.range(1, (BUF_STRIDE - off) as usize);
                        let addr = BUF_BASE + u64::from(id) * BUF_STRIDE + off;
                        segs.push(Seg {
                            id,
                            addr,
                            len: len as u32,
                            writable: j >= n_read,
                        });
                    }
                    // Payload across the readable segments, poison in the writable ones.
                    let mut pos = 0;
                    for (j, s) in segs.iter().enumerate() {
                        let data: Vec<u8> = if s.writable {
                            vec![POISON; s.len as usize]
                        } else {
                            (pos..pos + s.len as usize)
                                .map(|i| pattern(seq, i, DRIVER_SALT))
                                .collect()
                        };
                        if !s.writable {
                            pos += s.len as usize;
                        }
                        mem.write_slice(&data, GuestAddress(s.addr)).unwrap();
                        let (flags, next) = match segs.get(j + 1) {
                            Some(n) => (F_NEXT, n.id),
                            None => (0, 0),
                        };
                        let flags = flags | if s.writable { F_WRITE } else { 0 };
                        let d = SplitDescriptor::new(s.addr, s.len, flags, next);
                        table.store(s.id, RawDescriptor::from(d)).unwrap();
                    }
                    let head = segs[0].id;
                    avail_ring
                        .ring()
                        .ref_at(usize::from(avail_idx.wrapping_add(k) % NUM))
                        .unwrap()
                        .store(head.to_le());
                    chains[usize::from(head)] = Some(Chain { seq, segs });
                    k += 1;
                }
                if free.is_empty() {
                    // Every descriptor is now with the device.
                    st.full_ring_batches += 1;
                }
                // Our device sees nothing of this batch before the index moves.
                assert_eq!(dev.has_avail(&shm), old != dev_taken);
                let new = old.wrapping_add(k);
                avail_ring.idx().store(new.to_le());
                avail_idx = new;
                st.avail_wrapped_in_batch |= new < old;
                // The driver's side of §2.7.10, from what our device wrote.
                let kick = if event_idx {
                    in_window(load16(&mem, avail_event_addr), old, new)
                } else {
                    load16(&mem, used) & F_NO_NOTIFY == 0
                };
                let want = if event_idx {
                    in_window(dev_avail_event, old, new)
                } else {
                    dev_notify_on
                };
                assert_eq!(
                    kick, want,
                    "our device's avail_event/NO_NOTIFY is not what it meant"
                );
                assert!(
                    kick || !dev_asleep,
                    "avail {old}→{new}: our sleeping device asked not to be kicked"
                );
                if kick {
                    st.kicks += 1;
                    dev_kicked = true;
                    dev_asleep = false;
                } else {
                    st.kicks_suppressed += 1;
                }
            }

            // Our device runs.
            1 => {
                dev_kicked = false;
                dev_asleep = false;
                dev.disable_notify(&shm);
                dev_notify_on = false;
                if event_idx {
                    // Far ahead, as the driver's used_event above.
                    dev_avail_event = load16(&mem, avail_event_addr);
                    let ahead = dev_avail_event.wrapping_sub(dev_taken);
                    assert!(
                        (0x4000..=0x8000).contains(&ahead),
                        "avail_event {ahead:#x} ahead"
                    );
                } else {
                    assert_eq!(load16(&mem, used), F_NO_NOTIFY);
                }
                let pending = avail_idx.wrapping_sub(dev_taken);
                assert_eq!(dev.has_avail(&shm), pending > 0);
                let budget = if rng.chance(1, 2) {
                    pending
                } else {
                    rng.range(0, pending.into()) as u16
                };
                for _ in 0..budget {
                    let mut c = dev.pop(&shm).unwrap().expect("announced chain");
                    dev_taken = dev_taken.wrapping_add(1);
                    let head = c.head();
                    let ch = chains[usize::from(head)]
                        .clone()
                        .expect("our device popped a head the driver did not make available");
                    // A one-descriptor chain is read with `single` half of the time (the
                    // rpmsg path), otherwise every chain is walked with `next_desc`.
                    let descs: Vec<DescInfo> = if ch.segs.len() == 1 && rng.chance(1, 2) {
                        vec![dev.single(&shm, &mut c).unwrap()]
                    } else {
                        std::iter::from_fn(|| c.next_desc(&dev, &shm).unwrap()).collect()
                    };
                    assert_eq!(
                        descs.len(),
                        ch.segs.len(),
                        "chain {head} has the wrong length"
                    );
                    let mut readable = Vec::new();
                    let mut written = 0usize;
                    // The device fills the writable segments in order, up to a total that
                    // varies per chain (0 ..= all of it).
                    let goal = (ch.seq as usize).wrapping_mul(7919) % (ch.writable_len() + 1);
                    for (d, s) in descs.iter().zip(&ch.segs) {
                        assert_eq!(
                            (d.addr, d.len, d.writable),
                            (DevAddr(s.addr), s.len, s.writable)
                        );
                        let mut buf = vec![0u8; d.len as usize];
                        shm.read(d.addr.0 as usize, &mut buf);
                        if d.writable {
                            assert!(buf.iter().all(|&x| x == POISON));
                            let n = goal.saturating_sub(written).min(buf.len());
                            let data: Vec<u8> = (written..written + n)
                                .map(|i| pattern(ch.seq, i, DEVICE_SALT))
                                .collect();
                            shm.write(d.addr.0 as usize, &data);
                            written += n;
                        } else {
                            readable.extend_from_slice(&buf);
                        }
                    }
                    assert_eq!(readable.len(), ch.readable_len());
                    assert!(
                        readable == fill(ch.seq, readable.len(), DRIVER_SALT),
                        "payload of chain #{} differs",
                        ch.seq
                    );
                    held.push((head, written as u32));
                }
                rng.shuffle(&mut held);
                let n = if rng.chance(2, 3) {
                    held.len()
                } else {
                    rng.range(0, held.len())
                };
                for (head, len) in held.drain(..n) {
                    let seq = chains[usize::from(head)].as_ref().unwrap().seq;
                    if completion_seq.last().is_some_and(|&s| s > seq) {
                        st.out_of_order_completions += 1;
                    }
                    completion_seq.push(seq);
                    dev.push_used(&shm, head, len);
                    used_order.push_back((head, len));
                }
                // §2.7.8: nothing is used before the index moves.
                assert_eq!(u16::from_le(used_ring.idx().load()), dev_published);
                let old = dev_published;
                let new = old.wrapping_add(n as u16);
                let irq = dev.publish(&shm);
                assert_eq!(u16::from_le(used_ring.idx().load()), new);
                dev_published = new;
                if n == 0 {
                    assert!(!irq, "publish of nothing notified");
                } else {
                    st.used_wrapped_in_batch |= new < old;
                    // §2.7.7, from what the mock driver asked for.
                    let want = if event_idx {
                        in_window(drv_used_event, old, new)
                    } else {
                        drv_irq_on
                    };
                    assert_eq!(
                        irq, want,
                        "used {old}→{new}: our publish() ignores the driver's request"
                    );
                    assert!(
                        irq || !drv_asleep,
                        "used {old}→{new}: sleeping driver not interrupted"
                    );
                    if irq {
                        st.irqs += 1;
                        drv_irq_pending = true;
                        drv_asleep = false;
                    } else {
                        st.irqs_suppressed += 1;
                    }
                }
                if rng.chance(3, 4) {
                    let more = dev.enable_notify(&shm);
                    dev_notify_on = true;
                    if event_idx {
                        dev_avail_event = dev_taken;
                        assert_eq!(load16(&mem, avail_event_addr), dev_taken);
                    } else {
                        assert_eq!(load16(&mem, used), 0);
                    }
                    assert_eq!(more, avail_idx != dev_taken);
                    if !more {
                        dev_asleep = true;
                        st.device_sleeps += 1;
                    }
                }
            }

            // The mock driver consumes used entries through `UsedRing`.
            _ => {
                drv_irq_pending = false;
                drv_asleep = false;
                let budget = if rng.chance(1, 2) {
                    usize::MAX
                } else {
                    rng.range(0, NUM.into())
                };
                for _ in 0..budget {
                    let used_idx = u16::from_le(used_ring.idx().load());
                    if used_idx == last_used {
                        assert!(used_order.is_empty());
                        break;
                    }
                    assert!(used_idx.wrapping_sub(last_used) <= NUM);
                    let e = used_ring
                        .ring()
                        .ref_at(usize::from(last_used % NUM))
                        .unwrap()
                        .load();
                    let (want_id, want_len) = used_order.pop_front().unwrap();
                    assert_eq!((e.id(), e.len()), (u32::from(want_id), want_len));
                    let ch = chains[usize::from(want_id)].take().unwrap();
                    // Collect what the device wrote across the writable segments.
                    let mut got = Vec::new();
                    for s in ch.segs.iter().filter(|s| s.writable) {
                        let mut b = vec![0u8; s.len as usize];
                        mem.read_slice(&mut b, GuestAddress(s.addr)).unwrap();
                        got.extend_from_slice(&b);
                    }
                    let (written, rest) = got.split_at(e.len() as usize);
                    assert!(written == fill(ch.seq, written.len(), DEVICE_SALT));
                    assert!(rest.iter().all(|&x| x == POISON));
                    free.extend(ch.segs.iter().map(|s| s.id));
                    last_used = last_used.wrapping_add(1);
                    if event_idx && drv_irq_on {
                        // Like Linux: keep used_event at the consumption point.
                        drv_used_event = last_used;
                        store16(&mem, used_event_addr, last_used);
                    }
                }
                match rng.next() % 4 {
                    0 | 1 => {
                        drv_irq_on = true;
                        if event_idx {
                            drv_used_event = last_used;
                            store16(&mem, used_event_addr, last_used);
                        } else {
                            store16(&mem, avail, 0);
                        }
                        let pending = u16::from_le(used_ring.idx().load()) != last_used;
                        assert_eq!(pending, dev_published != last_used);
                        if !pending {
                            drv_asleep = true;
                            st.driver_sleeps += 1;
                        }
                    }
                    2 => {
                        drv_irq_on = false;
                        if event_idx {
                            drv_used_event = last_used.wrapping_add(0x8000);
                            store16(&mem, used_event_addr, drv_used_event);
                        } else {
                            store16(&mem, avail, F_NO_INTERRUPT);
                        }
                    }
                    _ => {}
                }
            }
        }
    }

    let end = TOTAL as u16;
    assert_eq!(
        (avail_idx, dev_taken, dev_published, last_used),
        (end, end, end, end)
    );
    assert!(held.is_empty() && used_order.is_empty());
    assert!(
        st.avail_wrapped_in_batch && st.used_wrapped_in_batch,
        "{st:?}"
    );
    assert!(st.kicks > 0 && st.kicks_suppressed > 0, "{st:?}");
    assert!(st.irqs > 0 && st.irqs_suppressed > 0, "{st:?}");
    assert!(st.device_sleeps > 0 && st.driver_sleeps > 0, "{st:?}");
    assert!(
        st.full_ring_batches > 0 && st.out_of_order_completions > 0,
        "{st:?}"
    );
    st
}

/// `virtio-queue`'s driver-side test structures (`mock::DescriptorTable`, `AvailRing`,
/// `UsedRing`, placed at our legacy layout) against our [`DeviceQueue`], with
/// `VIRTIO_F_EVENT_IDX` (virtio 1.2 §2.7).
///
/// 70 000 chains of 1..=4 descriptors (readable ones before writable ones, §2.7.5.2,
/// non-contiguous descriptor ids) in batches, so both u16 indices wrap. Our device walks
/// each chain (`next_desc`, or `single` for one-descriptor chains), checks addresses,
/// lengths, flags and the payload, writes into the writable part and uses chains out of
/// order. The used ring is read back through virtio-queue's `VirtqUsedElem`. Our
/// `DeviceQueue::publish()` must interrupt exactly when the used index passes the driver's
/// `used_event` (§2.7.7), and the `avail_event` our device writes must make the driver kick
/// exactly when it meant to (§2.7.10), in particular after our device re-enabled
/// notifications with nothing pending.
#[test]
fn virtio_queue_mock_driver_with_our_device_event_idx() {
    let st = mock_driver_vs_our_device(true, 0x9e37_79b9_7f4a_7c15);
    eprintln!("mock driver, event_idx: {st:?}");
}

/// As [`virtio_queue_mock_driver_with_our_device_event_idx`], without `VIRTIO_F_EVENT_IDX`:
/// our device's `publish()` must interrupt exactly when the driver left
/// `VRING_AVAIL_F_NO_INTERRUPT` clear (§2.7.7), and its `VRING_USED_F_NO_NOTIFY` must be
/// clear exactly while it waits for kicks (§2.7.10) (virtio 1.2 §2.7).
#[test]
fn virtio_queue_mock_driver_with_our_device_no_event_idx() {
    let st = mock_driver_vs_our_device(false, 0xd1b5_4a32_d192_ed03);
    eprintln!("mock driver, no event_idx: {st:?}");
}
