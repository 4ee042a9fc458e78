//! Property tests of the split virtqueue (virtio 1.x §2.7): our driver and device sides,
//! driven through random sequences of add / publish / pop / complete over one memory,
//! across the u16 index wrap-around, must hand every buffer over exactly once.

use intercore::testing::HeapMem;
use intercore::virtq::{DeviceQueue, DriverQueue, VringLayout};
use intercore::{DevAddr, Error, SharedMemory};
use proptest::prelude::*;
use std::collections::VecDeque;

#[derive(Debug, Clone)]
enum Op {
    /// Driver adds up to n free buffers.
    Add(u8),
    /// Driver publishes.
    Publish,
    /// Device pops up to n chains.
    Pop(u8),
    /// Device completes the held chain at this position (mod held count).
    Complete(u8),
    /// Device publishes.
    DevPublish,
    /// Driver takes up to n used buffers.
    Take(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (1u8..8).prop_map(Op::Add),
        Just(Op::Publish),
        (1u8..8).prop_map(Op::Pop),
        any::<u8>().prop_map(Op::Complete),
        Just(Op::DevPublish),
        (1u8..8).prop_map(Op::Take),
    ]
}

struct Rig {
    mem: HeapMem,
    drv: DriverQueue,
    dev: DeviceQueue,
    num: u16,
    free: VecDeque<u16>,
    /// Published or not yet, in the order the driver added them.
    added: VecDeque<u16>,
    published_upto: usize,
    held: Vec<(u16, u64)>,
    completed: VecDeque<(u16, u32)>,
    completed_published: usize,
    serial: u64,
}

impl Rig {
    fn new(num: u16, event_idx: bool) -> Self {
        let layout = VringLayout::new(num as u32, 64).unwrap();
        let mem = HeapMem::new(layout.size() + 64);
        let mut drv = DriverQueue::new(&mem, 0, layout, event_idx).unwrap();
        drv.reset(&mem);
        let dev = DeviceQueue::new(&mem, 0, layout, event_idx).unwrap();
        Rig {
            mem,
            drv,
            dev,
            num,
            free: (0..num).collect(),
            added: VecDeque::new(),
            published_upto: 0,
            held: vec![],
            completed: VecDeque::new(),
            completed_published: 0,
            serial: 0,
        }
    }

    fn apply(&mut self, op: &Op) {
        match *op {
            Op::Add(n) => {
                for _ in 0..n {
                    let Some(id) = self.free.pop_front() else {
                        break;
                    };
                    self.serial += 1;
                    // The address encodes the id and a serial, so the device can check it
                    // reads the descriptor that was written for this hand-over.
                    let addr = (self.serial << 16) | id as u64;
                    self.drv
                        .add(&self.mem, id, DevAddr(addr), id as u32 + 1, id % 2 == 0)
                        .unwrap();
                    assert_eq!(
                        self.drv.add(&self.mem, id, DevAddr(0), 1, false),
                        Err(Error::Config("descriptor is already in flight"))
                    );
                    self.added.push_back(id);
                }
            }
            Op::Publish => {
                self.drv.publish(&self.mem);
                self.published_upto = self.added.len();
            }
            Op::Pop(n) => {
                for _ in 0..n {
                    match self.dev.pop(&self.mem).unwrap() {
                        None => {
                            assert_eq!(
                                self.published_upto, 0,
                                "device saw nothing but buffers were published"
                            );
                            break;
                        }
                        Some(mut chain) => {
                            let want = self
                                .added
                                .pop_front()
                                .expect("device popped an unpublished buffer");
                            self.published_upto -= 1;
                            assert_eq!(chain.head(), want, "avail ring order");
                            let d = self.dev.single(&self.mem, &mut chain).unwrap();
                            assert_eq!(d.addr.0 & 0xffff, want as u64);
                            assert_eq!(d.len, want as u32 + 1);
                            assert_eq!(d.writable, want % 2 == 0);
                            self.held.push((want, d.addr.0));
                        }
                    }
                }
            }
            Op::Complete(i) => {
                if !self.held.is_empty() {
                    let (id, _) = self.held.remove(i as usize % self.held.len());
                    let len = id as u32 * 3;
                    self.dev.push_used(&self.mem, id, len);
                    self.completed.push_back((id, len));
                }
            }
            Op::DevPublish => {
                self.dev.publish(&self.mem);
                self.completed_published = self.completed.len();
            }
            Op::Take(n) => {
                for _ in 0..n {
                    match self.drv.pop_used(&self.mem).unwrap() {
                        None => {
                            assert_eq!(
                                self.completed_published, 0,
                                "driver missed published used entries"
                            );
                            break;
                        }
                        Some((id, len)) => {
                            assert!(
                                self.completed_published > 0,
                                "driver saw an unpublished used entry"
                            );
                            assert_eq!(
                                Some((id, len)),
                                self.completed.pop_front(),
                                "used ring order"
                            );
                            self.completed_published -= 1;
                            assert!(!self.drv.is_in_flight(id));
                            self.free.push_back(id);
                        }
                    }
                }
            }
        }
        let in_flight = self.num as usize - self.free.len();
        assert_eq!(
            self.drv.in_flight() as usize,
            in_flight,
            "driver's in-flight count"
        );
    }

    /// Cycles one buffer through both sides `n` times (to move the indices near a wrap).
    fn cycle(&mut self, n: u32) {
        for _ in 0..n {
            for op in [
                Op::Add(1),
                Op::Publish,
                Op::Pop(1),
                Op::Complete(0),
                Op::DevPublish,
                Op::Take(1),
            ] {
                self.apply(&op);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Random interleavings hand every buffer over exactly once, in ring order, with the
    /// descriptor contents and used lengths intact, starting just before the u16 indices
    /// wrap (§2.7.6: idx "wraps naturally at 65536").
    #[test]
    fn random_sequences_across_wraparound(
        num_log in 0u32..5,
        event_idx: bool,
        lead in 65_500u32..65_536,
        ops in proptest::collection::vec(op(), 1..300),
    ) {
        let mut rig = Rig::new(1 << num_log, event_idx);
        rig.cycle(lead);
        for op in &ops {
            rig.apply(op);
        }
        // Drain: everything added eventually comes back.
        rig.apply(&Op::Publish);
        rig.apply(&Op::Pop(255));
        while !rig.held.is_empty() { rig.apply(&Op::Complete(0)); }
        rig.apply(&Op::DevPublish);
        rig.apply(&Op::Take(255));
        prop_assert_eq!(rig.free.len(), rig.num as usize);
    }
}

/// A chain of NEXT descriptors that loops is cut off after `num` descriptors with a
/// protocol error (§2.7.5.1: the chain length is bounded by the queue size).
#[test]
fn descriptor_loop_is_an_error_not_a_hang() {
    let layout = VringLayout::new(8, 64).unwrap();
    let mem = HeapMem::new(layout.size());
    let mut dev = DeviceQueue::new(&mem, 0, layout, false).unwrap();
    for i in 0..8u16 {
        let d = intercore::wire::vring::Desc::new(
            0x1000,
            16,
            intercore::wire::vring::VRING_DESC_F_NEXT,
            (i + 1) % 8,
        );
        mem.write(layout.desc(i), zerocopy::IntoBytes::as_bytes(&d));
    }
    mem.store_u16(
        layout.avail_ring(0),
        3,
        std::sync::atomic::Ordering::Relaxed,
    );
    mem.store_u16(layout.avail_idx(), 1, std::sync::atomic::Ordering::Release);
    let mut chain = dev.pop(&mem).unwrap().unwrap();
    let mut n = 0;
    let err = loop {
        match chain.next_desc(&dev, &mem) {
            Ok(Some(_)) => n += 1,
            Ok(None) => panic!("loop ended"),
            Err(e) => break e,
        }
    };
    assert_eq!(n, 8);
    assert!(matches!(err, Error::Protocol { .. }));
}

/// §2.7.10 with EVENT_IDX: once the device re-enables notifications with nothing pending,
/// the driver's next publish asks for a notification; while the device polls (disabled),
/// publishes do not.
#[test]
fn event_idx_notification_decisions() {
    for event_idx in [true, false] {
        let layout = VringLayout::new(4, 64).unwrap();
        let mem = HeapMem::new(layout.size());
        let mut drv = DriverQueue::new(&mem, 0, layout, event_idx).unwrap();
        drv.reset(&mem);
        let mut dev = DeviceQueue::new(&mem, 0, layout, event_idx).unwrap();
        dev.disable_notify(&mem);
        drv.add(&mem, 0, DevAddr(0x10), 1, false).unwrap();
        assert!(
            !drv.publish(&mem),
            "device polling: no kick (event_idx={event_idx})"
        );
        let mut c = dev.pop(&mem).unwrap().unwrap();
        dev.single(&mem, &mut c).unwrap();
        assert!(!dev.enable_notify(&mem), "nothing pending");
        drv.add(&mem, 1, DevAddr(0x20), 1, false).unwrap();
        assert!(
            drv.publish(&mem),
            "device asleep: kick (event_idx={event_idx})"
        );
        // Interrupts: the driver starts with them off (reset); the device's publish then
        // does not ask to notify until the driver enables them.
        dev.push_used(&mem, 0, 0);
        assert!(!dev.publish(&mem));
        assert!(
            drv.enable_interrupts(&mem),
            "a used entry is already pending"
        );
        assert_eq!(drv.pop_used(&mem).unwrap(), Some((0, 0)));
        assert!(!drv.enable_interrupts(&mem));
        dev.push_used(&mem, 1, 0);
        assert!(
            dev.publish(&mem),
            "driver asleep: interrupt (event_idx={event_idx})"
        );
    }
}

/// A ring that does not fit the region, or sits misaligned, is refused up front.
#[test]
fn placement_is_checked() {
    let layout = VringLayout::new(16, 64).unwrap();
    let mem = HeapMem::new(layout.size());
    assert!(DriverQueue::new(&mem, 8, layout, true).is_err());
    assert!(DriverQueue::new(&mem, 16, layout, true).is_err());
    assert!(DeviceQueue::new(&mem, 0, layout, true).is_ok());
    let _ = mem.len();
}
