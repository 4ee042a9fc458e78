//! The conformance suites (`intercore::testing::conformance`) run for every implementation
//! of the platform traits in this crate: the memory sources as `SharedMemory`, the eventfd
//! doorbell and the UIO doorbell (both register layouts, over fake hardware) as
//! `Doorbell`, the cache maintenance backends as `CacheOps`.
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
    PidFd, PrivateRegion, SysRoots, UDmaBufCache, UDmaBufRegion, UdmabufRegion,
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

/// A fake u-dma-buf device (github.com/ikwzm/udmabuf): `/dev/udmabuf0` a regular file,
/// `/sys/class/u-dma-buf/udmabuf0/` the attributes its u-dma-buf.c creates, printed as it
/// prints them (`phys_addr` "%pad", `size` "%zu").
fn fake_u_dma_buf(s: &Scratch, sync_mode: &str) -> SysRoots {
    std::fs::File::create(s.0.join("dev/udmabuf0"))
        .unwrap()
        .set_len(LEN as u64)
        .unwrap();
    let d = s.0.join("sys/class/u-dma-buf/udmabuf0");
    std::fs::create_dir_all(&d).unwrap();
    for (attr, v) in [
        ("phys_addr", "0x0000000078000000\n".to_string()),
        ("size", format!("{LEN}\n")),
        ("sync_mode", format!("{sync_mode}\n")),
        ("dma_coherent", "0\n".into()),
        ("sync_offset", "0x0\n".into()),
        ("sync_size", "0\n".into()),
        ("sync_direction", "0\n".into()),
        ("sync_for_cpu", "0\n".into()),
        ("sync_for_device", "0\n".into()),
    ] {
        std::fs::write(d.join(attr), v).unwrap();
    }
    SysRoots::under(&s.0)
}

/// The u-dma-buf region and its sysfs cache maintenance pass the suites over the fake
/// tree (a regular file is coherent memory, so the suite checks the region, the span
/// arithmetic and that no range is refused; what the writes say is checked below).
#[test]
fn u_dma_buf_over_a_fake_tree_conforms() {
    let s = Scratch::new();
    let roots = fake_u_dma_buf(&s, "1");
    let r = UDmaBufRegion::open(&roots, "udmabuf0").unwrap();
    assert_eq!(r.phys_addr(), 0x7800_0000);
    assert_eq!(r.identity_map().base.0, 0x7800_0000);
    ok(shared_memory(&r));
    let c = UDmaBufCache::new(UDmaBufRegion::open(&roots, "udmabuf0").unwrap()).unwrap();
    ok(cache_ops(&c, c.memory()));
}

/// What the cache maintenance writes, per the driver's Readme ("Manual cache management"):
/// the line span as `sync_offset`/`sync_size`, direction 0 (bidirectional), then 1 to
/// `sync_for_device` for a clean; an invalidate also writes 1 to `sync_for_cpu`.
#[test]
fn u_dma_buf_cache_writes_the_line_span() {
    use intercore::dataplane::CacheOps;
    let s = Scratch::new();
    let roots = fake_u_dma_buf(&s, "1");
    let d = s.0.join("sys/class/u-dma-buf/udmabuf0");
    let c = UDmaBufCache::new(UDmaBufRegion::open(&roots, "udmabuf0").unwrap()).unwrap();
    let line = c.line_size();
    let reset = || {
        for a in [
            "sync_offset",
            "sync_size",
            "sync_direction",
            "sync_for_cpu",
            "sync_for_device",
        ] {
            std::fs::write(d.join(a), "").unwrap();
        }
    };
    let get = |a: &str| std::fs::read_to_string(d.join(a)).unwrap();
    reset();
    c.clean(0, line + 3, 2);
    assert_eq!(get("sync_offset"), line.to_string());
    assert_eq!(get("sync_size"), line.to_string());
    assert_eq!(get("sync_direction"), "0");
    assert_eq!(get("sync_for_device"), "1");
    assert_eq!(get("sync_for_cpu"), "", "a clean does not invalidate");
    reset();
    c.invalidate(0, 1, 2 * line);
    assert_eq!(get("sync_offset"), "0");
    assert_eq!(get("sync_size"), (3 * line).to_string());
    assert_eq!(
        get("sync_for_device"),
        "1",
        "clean first: no CPU write is lost"
    );
    assert_eq!(get("sync_for_cpu"), "1");
    reset();
    c.clean(0, 5, 0);
    assert_eq!(get("sync_for_device"), "", "an empty range does nothing");
}

/// Refusals: no driver (naming the module), the "always" bit of sync_mode (uncached
/// mappings), a malformed phys_addr.
#[test]
fn u_dma_buf_refusals_say_why() {
    let s = Scratch::new();
    let e = UDmaBufRegion::open(&SysRoots::under(&s.0), "udmabuf0")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("u-dma-buf") && e.contains("ikwzm/udmabuf"),
        "{e}"
    );
    let roots = fake_u_dma_buf(&s, "5");
    let e = UDmaBufRegion::open(&roots, "udmabuf0")
        .unwrap_err()
        .to_string();
    assert!(e.contains("sync_mode is 5") && e.contains("always"), "{e}");
    std::fs::write(s.0.join("sys/class/u-dma-buf/udmabuf0/sync_mode"), "1\n").unwrap();
    std::fs::write(s.0.join("sys/class/u-dma-buf/udmabuf0/phys_addr"), "zz\n").unwrap();
    let e = UDmaBufRegion::open(&roots, "udmabuf0")
        .unwrap_err()
        .to_string();
    assert!(e.contains("phys_addr") && e.contains("hexadecimal"), "{e}");
    let e = UDmaBufRegion::open(&roots, "../x").unwrap_err().to_string();
    assert!(e.contains("not a u-dma-buf device name"), "{e}");
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

mod fake_uio;

/// The UIO doorbell over fake hardware (`tests/fake_uio`): the register block a memfd
/// both sides map, each UIO device a socket whose other end the fake's thread holds.
mod uio_bells {
    use super::fake_uio::{EMPTY, FakeHw, Irq, Lane, probe, settle};
    use super::*;
    use intercore::SharedMemory;
    use intercore_linux::notify::uio::{OmapMailbox, ZynqmpIpi, ipi, omap};
    use intercore_linux::sys::{Mmap, MmioRegs, page_size};
    use intercore_linux::{UioDoorbell, UioLayout};
    use std::os::fd::OwnedFd;
    use std::os::unix::net::UnixStream;
    use std::sync::{Arc, Mutex};

    fn device() -> (UnixStream, OwnedFd) {
        let (hw, dev) = UnixStream::pair().unwrap();
        dev.set_nonblocking(true).unwrap();
        (hw, dev.into())
    }

    fn regs(m: &MemfdRegion, base: usize, len: usize) -> MmioRegs {
        MmioRegs::new(Mmap::shared(m.fd(), page_size(), 0).unwrap(), base, len).unwrap()
    }

    fn clone(m: &MemfdRegion) -> MemfdRegion {
        MemfdRegion::from_fd(m.fd().try_clone_to_owned().unwrap()).unwrap()
    }

    type Ids = Arc<Mutex<Vec<u32>>>;

    /// A K3-style cluster: side a sends on mailbox 0 and receives on 1 as user 0, side b
    /// the reverse as user 1 (the kernel's `ti,mbox-tx`/`ti,mbox-rx` pairs for one core).
    #[test]
    fn uio_doorbell_omap_mailbox_conforms() {
        let m = MemfdRegion::create("omap-mbox", page_size()).unwrap();
        for mb in 0..omap::FIFOS {
            m.store_u32(omap::message(mb), EMPTY, Ordering::SeqCst);
        }
        let (hw_a, dev_a) = device();
        let (hw_b, dev_b) = device();
        let side = |dev, tx, rx, user| {
            UioDoorbell::from_parts(
                dev,
                format!("fake-uio{user}").into(),
                UioLayout::OmapMailbox(OmapMailbox {
                    map: 0,
                    tx,
                    rx,
                    user,
                }),
                regs(&m, 0, 0x200),
                None,
            )
            .unwrap()
        };
        let (to_a, to_b): (Ids, Ids) = Default::default();
        let _hw = FakeHw::start(
            clone(&m),
            vec![
                Lane {
                    msg: omap::message(0),
                    trig: None,
                    to: 1,
                    ids: to_b.clone(),
                },
                Lane {
                    msg: omap::message(1),
                    trig: None,
                    to: 0,
                    ids: to_a.clone(),
                },
            ],
            vec![
                Irq {
                    status: omap::irq_status(0),
                    bit: omap::irq_newmsg(1),
                    sock: hw_a,
                },
                Irq {
                    status: omap::irq_status(1),
                    bit: omap::irq_newmsg(0),
                    sock: hw_b,
                },
            ],
        );
        let a = side(dev_a, 0, 1, 0);
        let b = side(dev_b, 1, 0, 1);
        ok(doorbell(BellPair {
            ids_at_b: Some(probe(&to_b)),
            ids_at_a: Some(probe(&to_a)),
            settle: Some(settle(
                clone(&m),
                vec![(omap::message(0), None), (omap::message(1), None)],
            )),
            ..BellPair::new(a, b, vec![0, 1, 7, 0xfffe])
        }));
    }

    /// ZynqMP: side a is the APU (buffer index 2, bit 0), side b RPU0 (index 0, bit 8);
    /// one page holds a's agent registers at 0, b's at 0x100 and the buffer RAM at 0x800.
    #[test]
    fn uio_doorbell_zynqmp_ipi_conforms() {
        const A: usize = 0;
        const B: usize = 0x100;
        const BUF: usize = 0x800;
        let m = MemfdRegion::create("zynqmp-ipi", page_size()).unwrap();
        let (hw_a, dev_a) = device();
        let (hw_b, dev_b) = device();
        let a_req = ipi::request_buffer(2, 0);
        let b_req = ipi::request_buffer(0, 2);
        let side = |dev, at, req_offset, remote| {
            UioDoorbell::from_parts(
                dev,
                format!("fake-uio-{at:#x}").into(),
                UioLayout::ZynqmpIpi(ZynqmpIpi {
                    regs_map: 0,
                    buf_map: 1,
                    req_offset,
                    remote,
                }),
                regs(&m, at, ipi::LEN),
                Some(regs(&m, BUF, 0x800)),
            )
            .unwrap()
        };
        let (to_a, to_b): (Ids, Ids) = Default::default();
        let _hw = FakeHw::start(
            clone(&m),
            vec![
                Lane {
                    msg: BUF + a_req,
                    trig: Some((A + ipi::TRIG, ipi::RPU0)),
                    to: 1,
                    ids: to_b.clone(),
                },
                Lane {
                    msg: BUF + b_req,
                    trig: Some((B + ipi::TRIG, ipi::APU)),
                    to: 0,
                    ids: to_a.clone(),
                },
            ],
            vec![
                Irq {
                    status: A + ipi::ISR,
                    bit: ipi::RPU0,
                    sock: hw_a,
                },
                Irq {
                    status: B + ipi::ISR,
                    bit: ipi::APU,
                    sock: hw_b,
                },
            ],
        );
        let a = side(dev_a, A, a_req, ipi::RPU0);
        let b = side(dev_b, B, b_req, ipi::APU);
        ok(doorbell(BellPair {
            ids_at_b: Some(probe(&to_b)),
            ids_at_a: Some(probe(&to_a)),
            settle: Some(settle(
                clone(&m),
                vec![
                    (BUF + a_req, Some((A + ipi::TRIG, ipi::RPU0))),
                    (BUF + b_req, Some((B + ipi::TRIG, ipi::APU))),
                ],
            )),
            ..BellPair::new(a, b, vec![0, 1, 7, 0xfffe])
        }));
    }
}
