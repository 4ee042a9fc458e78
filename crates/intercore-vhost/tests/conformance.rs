//! The conformance suites (`intercore::testing::conformance`) for the vhost-user device's
//! implementations of the platform traits: `GuestMemory` (as `SharedMemory` and as the
//! guest-physical `DeviceAddressMap`) and `VhostBell` (as `Doorbell`, against a fake front
//! end that kicks and reads calls through eventfds as QEMU's does).

use intercore::testing::conformance::{
    self, BellPair, Window, device_address_map, doorbell, shared_memory,
};
use intercore::{DevAddr, Doorbell};
use intercore_linux::{EventFd, MemfdRegion};
use intercore_vhost::VhostBell;
use intercore_vhost::mem::{GuestMemory, Region};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn ok(r: conformance::Outcome) {
    if let Err(v) = r {
        panic!("{v}");
    }
}

const GPA: u64 = 0x4000_0000;
const HALF: u64 = 32 << 10;

/// Guest RAM in two regions (two memfds side by side), as a front end with two memory
/// slots shares it.
fn guest_memory() -> GuestMemory {
    let region = |i: u64| {
        let m = MemfdRegion::create("intercore-vhost-conformance", HALF as usize).unwrap();
        Region {
            guest_addr: GPA + i * HALF,
            size: HALF,
            user_addr: 0x7f00_0000_0000 + i * HALF,
            mmap_offset: 0,
            fd: m.fd().try_clone_to_owned().unwrap(),
        }
    };
    GuestMemory::map(vec![region(1), region(0)]).unwrap()
}

#[test]
fn guest_memory_conforms() {
    let m = guest_memory();
    ok(shared_memory(&m));
    // Guest RAM only: the private control page after it has no guest address.
    ok(device_address_map(
        &m,
        &[Window {
            da: DevAddr(GPA),
            offset: 0,
            len: m.span(),
        }],
    ));
    assert_eq!(m.span(), 2 * HALF as usize);
}

fn fd(e: &EventFd) -> Arc<OwnedFd> {
    Arc::new(e.as_fd().try_clone_to_owned().unwrap())
}

/// The front end's side: kicks queue `id` through its kick eventfd, and takes the device's
/// interrupts from the call eventfds, recording which queues they were for.
struct FrontEnd {
    kicks: [EventFd; 2],
    calls: [EventFd; 2],
    stop: EventFd,
    called: Arc<Mutex<Vec<u32>>>,
    epoch: Instant,
}

impl Doorbell for FrontEnd {
    fn ring(&self, id: u32) -> intercore::Result<()> {
        let k = self
            .kicks
            .get(id as usize)
            .ok_or(intercore::Error::Config("no such queue"))?;
        k.signal().map_err(|_| intercore::Error::PeerGone)
    }
    fn wait(&self, timeout: Option<Duration>) -> intercore::Result<bool> {
        let end = timeout.map(|t| Instant::now() + t);
        loop {
            let mut any = false;
            for (i, c) in self.calls.iter().enumerate() {
                if c.drain().map_err(|_| intercore::Error::PeerGone)? {
                    self.called.lock().unwrap().push(i as u32);
                    any = true;
                }
            }
            if any {
                return Ok(true);
            }
            if end.is_some_and(|e| Instant::now() >= e) {
                return Ok(false);
            }
            std::thread::sleep(Duration::from_micros(200));
        }
    }
    fn now(&self) -> Duration {
        self.epoch.elapsed()
    }
}

#[test]
fn vhost_bell_conforms() {
    let ev = || EventFd::new().unwrap();
    let front = FrontEnd {
        kicks: [ev(), ev()],
        calls: [ev(), ev()],
        stop: ev(),
        called: Arc::default(),
        epoch: Instant::now(),
    };
    let bell = VhostBell::new(
        [fd(&front.kicks[0]), fd(&front.kicks[1])],
        [fd(&front.calls[0]), fd(&front.calls[1])],
        fd(&front.stop),
    );
    let called = Arc::clone(&front.called);
    ok(doorbell(BellPair {
        ids_at_b: Some(Box::new(move || {
            std::mem::take(&mut *called.lock().unwrap())
        })),
        // The guest going away: the device's stop descriptor becomes readable.
        kill_b: Some(Box::new(|f: FrontEnd| f.stop.signal().unwrap())),
        ..BellPair::new(bell, front, vec![0, 1])
    }));
}
