//! The conformance suites (`intercore::testing::conformance`) run for every implementation
//! of the platform traits in this crate: the memory sources as `SharedMemory`, the eventfd
//! doorbell as `Doorbell`, the cache maintenance backends as `CacheOps`.
//!
//! What needs hardware runs against a fake where a fake is faithful (`/dev/mem` as a
//! regular file: `mmap` of a file at the physical address as offset is exactly what the
//! driver's mapping is to this code), and is `#[ignore]`d with the reason where it is not
//! (udmabuf and dma-buf heaps need their kernel devices: `scripts/vm-vfio-test.sh` runs
//! this binary with `--include-ignored` in its QEMU guest). The ARM64 EL0 cache
//! instructions are compiled and run on aarch64 only (`scripts/test-aarch64.sh`).

use intercore::testing::conformance::{self, BellPair, cache_ops, doorbell, shared_memory};
use intercore_linux::{
    DevMemCaching, DmaBufCache, DmaHeapRegion, EventFd, EventfdDoorbell, MemfdRegion, PhysCarveout,
    PidFd, PrivateRegion, SysRoots, UdmabufRegion,
};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

fn ok(r: conformance::Outcome) {
    if let Err(v) = r {
        panic!("{v}");
    }
}

const LEN: usize = 64 << 10;

#[test]
fn memfd_region_conforms() {
    ok(shared_memory(
        &MemfdRegion::create("intercore-conformance", LEN).unwrap(),
    ));
}

/// A second mapping of the same memfd is the same memory: what one writes, the other
/// reads (the property the simulator's two processes rely on), and it conforms too.
#[test]
fn memfd_region_remapped_conforms() {
    let a = MemfdRegion::create("intercore-conformance", LEN).unwrap();
    let b = MemfdRegion::from_fd(a.fd().try_clone_to_owned().unwrap()).unwrap();
    ok(shared_memory(&b));
    let mut x = [0u8; 64];
    intercore::SharedMemory::read(&a, 64, &mut x);
    let mut y = [0u8; 64];
    intercore::SharedMemory::read(&b, 64, &mut y);
    assert_eq!(x, y);
}

/// `sys::Mmap` itself (every region above forwards to one), as an anonymous mapping and
/// as a shared mapping of a memfd.
#[test]
fn sys_mmap_conforms() {
    ok(shared_memory(
        &intercore_linux::sys::Mmap::anonymous(LEN).unwrap(),
    ));
    let m = MemfdRegion::create("intercore-conformance", LEN).unwrap();
    ok(shared_memory(
        &intercore_linux::sys::Mmap::shared(m.fd(), LEN, 0).unwrap(),
    ));
}

#[test]
fn private_region_conforms() {
    ok(shared_memory(&PrivateRegion::new(LEN).unwrap()));
}

/// A scratch directory standing in for `/` (a fake `/dev/mem`).
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "intercore-conformance-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(p.join("dev")).unwrap();
        Scratch(p)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn phys_carveout_over_a_fake_dev_mem_conforms() {
    let s = Scratch::new();
    let pa = 0x10_0000u64;
    std::fs::File::create(s.0.join("dev/mem"))
        .unwrap()
        .set_len(pa + LEN as u64)
        .unwrap();
    let c = PhysCarveout::devmem(&SysRoots::under(&s.0), pa, LEN, DevMemCaching::Cached).unwrap();
    ok(shared_memory(&c));
}

#[test]
#[ignore = "needs /dev/udmabuf (root): run by scripts/vm-vfio-test.sh in its QEMU guest"]
fn udmabuf_region_and_its_cache_conform() {
    ok(shared_memory(&UdmabufRegion::create(LEN).unwrap()));
    let c = DmaBufCache::new(UdmabufRegion::create(LEN).unwrap()).unwrap();
    ok(cache_ops(&c, c.memory()));
}

#[test]
#[ignore = "needs /dev/dma_heap/system (root): run by scripts/vm-vfio-test.sh in its QEMU guest"]
fn dma_heap_region_and_its_cache_conform() {
    ok(shared_memory(&DmaHeapRegion::alloc("system", LEN).unwrap()));
    let c = DmaBufCache::new(DmaHeapRegion::alloc("system", LEN).unwrap()).unwrap();
    ok(cache_ops(&c, c.memory()));
}

/// The ARM64 instructions over a memfd (a board, or qemu-aarch64 via
/// `scripts/test-aarch64.sh`): the CPU's view is the mapping itself, so the peer's view is
/// the same region.
#[cfg(target_arch = "aarch64")]
#[test]
fn arm64_el0_cache_conforms() {
    let c = intercore_linux::Arm64El0Cache::new(
        MemfdRegion::create("intercore-conformance", LEN).unwrap(),
    )
    .unwrap();
    ok(cache_ops(&c, c.memory()));
}

/// Two eventfd doorbells wired to each other; `a` watches a child process standing in for
/// `b`'s side, which the suite kills to check `PeerGone`.
#[test]
fn eventfd_doorbell_conforms() {
    let (x, y) = (EventFd::new().unwrap(), EventFd::new().unwrap());
    let dup = |e: &EventFd| EventFd::from_fd(e.as_fd().try_clone_to_owned().unwrap());
    let mut child = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .unwrap();
    let pidfd = PidFd::open(child.id() as i32).unwrap();
    let a = EventfdDoorbell::new(dup(&x), dup(&y), Some(pidfd));
    let b = EventfdDoorbell::new(y, x, None);
    let r = doorbell(BellPair {
        kill_b: Some(Box::new(move |b| {
            drop(b);
            child.kill().unwrap();
            child.wait().unwrap();
        })),
        ..BellPair::new(a, b, vec![0, 1, 7])
    });
    ok(r);
}
