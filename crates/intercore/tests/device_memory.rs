//! Shared memory that behaves like arm64 Device memory at the trait's surface: every
//! access method that names a width panics with "unaligned access at offset X width W"
//! unless the offset is naturally aligned (Arm ARM B2.5.2: an unaligned access to Device
//! memory is an Alignment fault), and the region records the widths and copy calls it
//! saw. The byte copies themselves are the trait's provided ones, whose individual
//! accesses are checked from inside by the probe tests in `src/shm.rs` (a test outside
//! the crate cannot see them without instrumenting the mapping).
//!
//! Here: the `shared_memory` conformance suite on the region, and both rpmsg roles moving
//! odd-length payloads through their copy and zero-copy-helper paths over it.

#![allow(unsafe_code)] // implements `SharedMemory` for the test region

use intercore::rpmsg::Channel;
use intercore::rpmsg::RPMSG_ADDR_ANY;
use intercore::rpmsg::RemoteConfig;
use intercore::rpmsg::{HostBus, HostConfig, RemoteBus};
use intercore::testing::conformance::shared_memory;
use intercore::testing::{Carveout, HeapMem, ThreadBell};
use intercore::{SharedMemory, WaitMode};
use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

struct DeviceMem {
    inner: Arc<HeapMem>,
    /// Widths of the atomic accesses seen.
    widths: Mutex<BTreeSet<usize>>,
    /// Bytes moved by `read` and `write` calls.
    copied: Mutex<(usize, usize)>,
}

impl DeviceMem {
    fn new(inner: Arc<HeapMem>) -> Self {
        Self {
            inner,
            widths: Mutex::default(),
            copied: Mutex::default(),
        }
    }
    fn access(&self, off: usize, w: usize) {
        if off % w != 0 {
            panic!("unaligned access at offset {off:#x} width {w}");
        }
        self.widths.lock().unwrap().insert(w);
    }
    fn copied(&self) -> (usize, usize) {
        *self.copied.lock().unwrap()
    }
}

// SAFETY: every method forwards to `HeapMem`, which upholds the contract, after checks
// that only panic.
unsafe impl SharedMemory for DeviceMem {
    fn as_ptr(&self) -> *mut u8 {
        self.inner.as_ptr()
    }
    fn len(&self) -> usize {
        self.inner.len()
    }
    fn load_u16(&self, off: usize, order: Ordering) -> u16 {
        self.access(off, 2);
        self.inner.load_u16(off, order)
    }
    fn store_u16(&self, off: usize, v: u16, order: Ordering) {
        self.access(off, 2);
        self.inner.store_u16(off, v, order)
    }
    fn load_u32(&self, off: usize, order: Ordering) -> u32 {
        self.access(off, 4);
        self.inner.load_u32(off, order)
    }
    fn store_u32(&self, off: usize, v: u32, order: Ordering) {
        self.access(off, 4);
        self.inner.store_u32(off, v, order)
    }
    fn read(&self, off: usize, dst: &mut [u8]) {
        self.copied.lock().unwrap().0 += dst.len();
        self.inner.read(off, dst)
    }
    fn write(&self, off: usize, src: &[u8]) {
        self.copied.lock().unwrap().1 += src.len();
        self.inner.write(off, src)
    }
    fn fence(&self, order: Ordering) {
        self.inner.fence(order)
    }
}

#[test]
fn device_mem_conforms() {
    let mem = DeviceMem::new(Arc::new(HeapMem::new(4096)));
    if let Err(v) = shared_memory(&mem) {
        panic!("{v}");
    }
    // The suite's misaligned atomics panicked (it checks that), so the region did fault.
    assert!(mem.widths.lock().unwrap().contains(&4));
}

#[test]
#[should_panic(expected = "unaligned access at offset 0x3 width 4")]
fn device_mem_faults_on_an_unaligned_access() {
    DeviceMem::new(Arc::new(HeapMem::new(256))).load_u32(3, Ordering::Relaxed);
}

/// Both roles over the Device-memory region: copy send and receive on each side, then the
/// zero-copy views' copy helpers (`TxBuf::copy_from`, `ReplyBuf::send_copy`,
/// `RxBuf::copy_to`), with odd lengths so heads and tails are never whole words.
#[test]
fn rpmsg_both_roles_over_device_memory() {
    let link = Carveout::with_buffers(8);
    let mem = Arc::new(DeviceMem::new(Arc::clone(&link.mem)));
    let (hb, rb) = ThreadBell::pair();
    let mut host = HostBus::new(
        Arc::clone(&mem),
        hb,
        &link.map,
        link.rsc,
        HostConfig::default(),
    )
    .unwrap();
    let mut remote: RemoteBus<_, _, 4> = RemoteBus::new(
        Arc::clone(&mem),
        rb,
        &link.map,
        link.rsc,
        RemoteConfig::default().wait(WaitMode::Poll),
    )
    .unwrap();
    remote.wait_ready(Some(Duration::from_secs(5))).unwrap();
    let ep = host.create_endpoint("devmem", None).unwrap();
    let rep = remote.create_endpoint("echo", None).unwrap();
    for n in [1usize, 3, 7, 13, 61, 255] {
        let msg: Vec<u8> = (0..n).map(|i| (i * 13 + n) as u8).collect();
        let before = mem.copied();
        host.send_raw(ep, rep, &msg, Some(Duration::ZERO)).unwrap();
        assert!(
            mem.copied().1 >= before.1 + n,
            "host send went through write"
        );
        let mut got = vec![0u8; 512];
        assert_eq!(
            remote
                .recv_any_with(Some(Duration::ZERO), |m| (
                    m.src,
                    m.dst,
                    intercore::copy_from_shared(m.payload, &mut got)
                ))
                .unwrap()
                .2,
            n
        );
        assert_eq!(&got[..n], &msg[..]);
        remote
            .send_raw(rep, ep, &msg, Some(Duration::ZERO))
            .unwrap();
        let before = mem.copied();
        let mut back = vec![0u8; 512];
        assert_eq!(
            host.recv(
                &Channel::new(ep, RPMSG_ADDR_ANY),
                &mut back,
                Some(Duration::ZERO)
            )
            .unwrap(),
            n
        );
        assert!(
            mem.copied().0 >= before.0 + n,
            "host receive went through read"
        );
        assert_eq!(&back[..n], &msg[..]);

        let mut tx = host.tx_buf(Some(Duration::ZERO)).unwrap();
        assert_eq!(tx.copy_from(&msg), n);
        host.send_buf(&Channel::new(ep, rep), tx, n).unwrap();
        let seen = remote
            .recv_reply_any_with(Some(Duration::ZERO), |m, reply| {
                let mut copy = vec![0u8; m.payload.len()];
                intercore::copy_from_shared(m.payload, &mut copy);
                reply.send_copy(&copy).unwrap();
                copy
            })
            .unwrap();
        assert_eq!(seen, msg);
        let rx = host
            .recv_buf(&Channel::new(ep, RPMSG_ADDR_ANY), Some(Duration::ZERO))
            .unwrap();
        let mut out = vec![0u8; n];
        assert_eq!(rx.copy_to(&mut out), n);
        assert_eq!(out, msg);
    }
    let w = mem.widths.lock().unwrap().clone();
    assert!(w.iter().all(|&w| w == 2 || w == 4), "{w:?}");
}
