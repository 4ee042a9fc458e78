//! VFIO, the IOMMU and dma-bufs against a real kernel, with QEMU's `edu` device as the DMA
//! engine of a "remote core" that reaches memory only through the windows the host maps.
//!
//! Every test here needs an `edu` device bound to `vfio-pci` behind an IOMMU, and root: they
//! are `#[ignore]`d on the host and run inside the QEMU guest that `scripts/vm-vfio-test.sh`
//! boots (Linux 6.12, `intel-iommu` and `virtio-iommu`), with `--ignored --test-threads=1`
//! (the VFIO group can be open only once at a time). Each `edu` transfer takes 100 ms of
//! virtual time; the whole file issues 21 of them (7 + 12 + 2).
//!
//! What "blocked" means is checked twice: the memory behind the address is unchanged, and
//! the kernel logged the IOMMU's fault for that address (`DMAR: ... fault addr 0x...` from
//! drivers/iommu/intel/dmar.c, `... fault from EP N at 0x...` from
//! drivers/iommu/virtio-iommu.c), read from `/dev/kmsg`.

use intercore::SharedMemory;
use intercore::dataplane::{
    Coherent, DataWindows, DpHost, DpRemote, FaultKind, Iommu, Perm, PoolConfig,
};
use intercore::rpmsg::Channel;
use intercore::rpmsg::HostConfig;
use intercore::testing::Carveout;
use intercore::wire::dataplane::{DP_FAULT, DP_OK, DP_SERVICE, DP_UNSUPPORTED};
use intercore::{DevAddr, Error, WaitMode};
use intercore_linux::edu::{Edu, EduDir, EduPci, find_edu};
use intercore_linux::uapi::{
    DMA_BUF_SYNC_END, DMA_BUF_SYNC_READ, DMA_BUF_SYNC_RW, DMA_BUF_SYNC_START, DMA_BUF_SYNC_WRITE,
};
use intercore_linux::{
    DmaBufCache, DmaHeapRegion, MemError, MemfdRegion, SysRoots, UdmabufRegion, VfioIommu,
};
use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Seek, SeekFrom};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const PAGE: usize = 4096;
/// One transfer: a full device buffer less one byte (QEMU 7.2's edu aborts on 4096).
const N: usize = 4095;
/// A transfer that the IOMMU is expected to block: short, because QEMU reports a blocked
/// transfer as one fault per 4-byte access and the kernel rate-limits fault messages (10
/// per 5 s) — a full page would hide the next test's line.
const BLOCKED: usize = 8;
const DMA_T: Duration = Duration::from_secs(10);
const T: Option<Duration> = Some(Duration::from_secs(30));

fn the_edu() -> EduPci {
    let all = find_edu(&SysRoots::default()).expect("sysfs PCI bus");
    all.into_iter().next().expect(
        "no edu device (1234:11e8) in an IOMMU group: start QEMU with an IOMMU and -device edu",
    )
}

/// New kernel log records since `open`, from `/dev/kmsg` (non-blocking reads; one record
/// per read, Documentation/ABI/testing/dev-kmsg).
struct Kmsg(File);

impl Kmsg {
    fn open() -> Self {
        let mut f = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open("/dev/kmsg")
            .expect("open /dev/kmsg");
        f.seek(SeekFrom::End(0)).expect("seek /dev/kmsg to its end");
        Kmsg(f)
    }

    /// Waits up to 3 s for a record that reports an IOMMU fault at `iova`; returns it.
    fn fault_at(&mut self, iova: u64) -> Option<String> {
        let addr = format!("{iova:#x}");
        let t0 = Instant::now();
        let mut buf = vec![0u8; 8192];
        while t0.elapsed() < Duration::from_secs(3) {
            match self.0.read(&mut buf) {
                Ok(n) => {
                    let rec = String::from_utf8_lossy(&buf[..n]).into_owned();
                    let msg = rec.split_once(';').map_or(rec.as_str(), |(_, m)| m);
                    let iommu = msg.contains("DMAR") || msg.contains("virtio_iommu");
                    if iommu && msg.contains("fault") && msg.contains(&addr) {
                        return Some(msg.trim_end().to_string());
                    }
                }
                // EPIPE: records were overwritten before we read them; keep reading.
                Err(e) if e.raw_os_error() == Some(libc::EPIPE) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Err(e) => panic!("read /dev/kmsg: {e}"),
            }
        }
        None
    }
}

fn pattern(seed: u8, n: usize) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 8) as u8)
        .collect()
}

fn bytes<M: SharedMemory>(m: &M, off: usize, n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    m.read(off, &mut v);
    v
}

/// The VFIO type1 round trip with the device doing the accesses: a transfer through a
/// read/write window works (RAM → device → RAM, the bytes arrive); a read-only window can
/// be read by the device; and a transfer into a never-mapped address, an address unmapped
/// again, or a read-only window is blocked — the memory stays as it was and the kernel logs
/// the IOMMU's fault for that address. Overlapping windows are refused before the kernel is
/// asked, and unmapping a window that was never mapped is refused.
#[test]
#[ignore = "needs an edu device bound to vfio-pci behind an IOMMU, as root: run by scripts/vm-vfio-test.sh in a QEMU guest"]
fn vfio_windows_let_through_and_block_device_dma() {
    let e = the_edu();
    let mem = MemfdRegion::create("intercore-vfio-guest", 8 * PAGE).unwrap();
    let mut iommu = VfioIommu::open(e.group, mem).expect("VfioIommu::open");
    let id = iommu.open_device(&e.bdf).unwrap();
    let edu = Edu::probe(iommu.device(id)).unwrap();
    let (a, b, c, d) = (0x10_0000u64, 0x10_1000u64, 0x10_2000u64, 0x10_3000u64);
    iommu.map(DevAddr(a), 0, PAGE, Perm::RW).unwrap();
    iommu.map(DevAddr(b), PAGE, PAGE, Perm::RW).unwrap();
    iommu.map(DevAddr(c), 2 * PAGE, PAGE, Perm::R).unwrap();
    iommu.map(DevAddr(d), 3 * PAGE, PAGE, Perm::RW).unwrap();
    // Overlaps (our check; the kernel would answer EEXIST) and bad unmaps.
    assert!(matches!(
        iommu.map(DevAddr(b), 4 * PAGE, PAGE, Perm::RW),
        Err(Error::Config(m)) if m.contains("overlaps")
    ));
    assert!(matches!(
        iommu.map(DevAddr(a - PAGE as u64), 4 * PAGE, 2 * PAGE, Perm::RW),
        Err(Error::Config(m)) if m.contains("overlaps")
    ));
    assert!(iommu.unmap(DevAddr(0x20_0000), PAGE).is_err());

    let m = iommu.memory();
    let src = pattern(7, N);
    m.write(0, &src);
    let ro = pattern(99, N);
    m.write(2 * PAGE, &ro);
    m.write(PAGE, &vec![0x5a; PAGE]);
    m.write(3 * PAGE, &vec![0x5a; PAGE]);
    let dev = iommu.device(id);

    // Through the windows.
    edu.dma(dev, EduDir::FromRam, a, N, DMA_T).unwrap();
    edu.dma(dev, EduDir::ToRam, b, N, DMA_T).unwrap();
    assert_eq!(
        bytes(m, PAGE, N),
        src,
        "RAM -> edu -> RAM through two windows"
    );

    // A read-only window: the device may not write it (checked before the device reads
    // it: QEMU's intel-iommu caches the read-only translation in its IOTLB, and a write
    // that hits the cached entry is dropped without a fault record)...
    let mut kmsg = Kmsg::open();
    edu.dma(dev, EduDir::ToRam, c, BLOCKED, DMA_T).unwrap();
    assert_eq!(bytes(m, 2 * PAGE, N), ro, "a read-only window was written");
    let line = kmsg
        .fault_at(c)
        .expect("no IOMMU fault logged for the write into the read-only window");
    println!("read-only window: {line}");
    // ...but may read it.
    edu.dma(dev, EduDir::FromRam, c, N, DMA_T).unwrap();
    edu.dma(dev, EduDir::ToRam, b, N, DMA_T).unwrap();
    assert_eq!(
        bytes(m, PAGE, N),
        ro,
        "the device read the read-only window"
    );

    // An address that was never mapped (the edu buffer now holds `ro`).
    edu.dma(dev, EduDir::ToRam, 0x20_0000, BLOCKED, DMA_T)
        .unwrap();
    let line = kmsg
        .fault_at(0x20_0000)
        .expect("no IOMMU fault logged for the never-mapped address");
    println!("never mapped: {line}");
    for (off, want) in [(0, &src), (2 * PAGE, &ro)] {
        assert_eq!(
            &bytes(m, off, N),
            want,
            "memory changed after a blocked transfer"
        );
    }
    assert_eq!(bytes(m, 3 * PAGE, PAGE), vec![0x5a; PAGE]);

    // An address unmapped again: its former pages stay untouched.
    iommu.unmap(DevAddr(d), PAGE).unwrap();
    let dev = iommu.device(id);
    edu.dma(dev, EduDir::ToRam, d, BLOCKED, DMA_T).unwrap();
    let line = kmsg
        .fault_at(d)
        .expect("no IOMMU fault logged for the unmapped-again address");
    println!("unmapped again: {line}");
    assert_eq!(
        bytes(iommu.memory(), 3 * PAGE, PAGE),
        vec![0x5a; PAGE],
        "the unmapped page was written"
    );
}

/// A second `VfioIommu` in the same process, after the first (with a device open) is
/// dropped, opens the group and the device again: the container closes its devices
/// (a device descriptor keeps the group busy, vfio_group_fops_release).
#[test]
#[ignore = "needs an edu device bound to vfio-pci behind an IOMMU, as root: run by scripts/vm-vfio-test.sh in a QEMU guest"]
fn vfio_reopens_in_one_process() {
    let e = the_edu();
    for round in 0..3 {
        let mem = MemfdRegion::create("intercore-vfio-reopen", PAGE).unwrap();
        let mut iommu =
            VfioIommu::open(e.group, mem).unwrap_or_else(|err| panic!("open #{round}: {err}"));
        let id = iommu.open_device(&e.bdf).unwrap();
        Edu::probe(iommu.device(id)).unwrap();
        iommu.map(DevAddr(0x40_0000), 0, PAGE, Perm::RW).unwrap();
        // Dropped with a window mapped and the device open.
    }
    let e2 = VfioIommu::open(e.group, MemfdRegion::create("x", PAGE).unwrap()).unwrap();
    let e3 = VfioIommu::open(e.group, MemfdRegion::create("y", PAGE).unwrap()).unwrap_err();
    assert!(
        e3.to_string().contains("open already"),
        "a second open while the first lives names the cause: {e3}"
    );
    drop(e2);
}

/// The data plane with a real IOMMU enforcing its windows: a `Pool` in a memfd whose
/// buffers are mapped at I/O virtual addresses through `VfioIommu` (six read/write, two
/// read-only), the `DpHost` handing the remote those addresses over rpmsg, and a remote
/// whose "core" is the edu device: for each job it checks the addresses against the same
/// windows (`VfioIommu` as `DataWindows`) and has the device copy the input into the
/// buffer's second half. The copies arrive intact (corrupted = 0); the jobs in read-only
/// buffers complete with DP_FAULT, no transfer issued; every buffer comes back.
#[test]
#[ignore = "needs an edu device bound to vfio-pci behind an IOMMU, as root: run by scripts/vm-vfio-test.sh in a QEMU guest"]
fn dataplane_through_iommu_windows_with_edu_remote() {
    const OP_EDU_COPY: u32 = 0x4544_5501;
    const POOL_IOVA: u64 = 0x0400_0000;
    const BUFS: usize = 8;
    let e = the_edu();
    let cfg = PoolConfig {
        classes: vec![(PAGE, BUFS)],
        align: PAGE,
    };
    let mem = Arc::new(MemfdRegion::create("intercore-dp-vfio", cfg.region_len()).unwrap());
    let mut iommu = VfioIommu::open(e.group, Arc::clone(&mem)).unwrap();
    let id = iommu.open_device(&e.bdf).unwrap();
    let edu = Edu::probe(iommu.device(id)).unwrap();
    let rw = (BUFS - 2) * PAGE;
    iommu.map(DevAddr(POOL_IOVA), 0, rw, Perm::RW).unwrap();
    iommu
        .map(DevAddr(POOL_IOVA + rw as u64), rw, 2 * PAGE, Perm::R)
        .unwrap();
    assert_eq!(
        iommu
            .translate(DevAddr(POOL_IOVA + rw as u64), 8, true)
            .unwrap_err()
            .kind,
        FaultKind::Permission
    );
    let pool = intercore::dataplane::Pool::new(
        Coherent::new(Arc::clone(&mem)),
        0,
        DevAddr(POOL_IOVA),
        &cfg,
    )
    .unwrap();

    let link = Carveout::with_buffers(16);
    let (mut host, mut rbus) = link
        .connect::<8>(HostConfig::default(), WaitMode::Event)
        .unwrap();
    let errors = Mutex::new(Vec::<String>::new());
    let iommu_ref = &iommu;

    let (corrupted, done, stats) = std::thread::scope(|s| {
        let remote = s.spawn(|| {
            let dev = iommu_ref.device(id);
            let mut dp = DpRemote::new(Coherent::new(Arc::clone(&mem)), iommu_ref);
            let ep = rbus.create_endpoint(DP_SERVICE, None).unwrap();
            rbus.announce(ep).unwrap();
            loop {
                let r = rbus.recv_any_with(None, |msg| {
                    dp.process(ep, msg.src, msg.payload, |job| {
                        if job.op() != OP_EDU_COPY {
                            return Err(DP_UNSUPPORTED);
                        }
                        let n = job.len();
                        let src = job.dma_addr(0, n, false).map_err(|_| DP_FAULT)?;
                        let dst = job.dma_addr(n, n, true).map_err(|_| DP_FAULT)?;
                        let run = edu
                            .dma(dev, EduDir::FromRam, src.0, n, DMA_T)
                            .and_then(|()| edu.dma(dev, EduDir::ToRam, dst.0, n, DMA_T));
                        match run {
                            Ok(()) => Ok(2 * n),
                            Err(err) => {
                                errors.lock().unwrap().push(err.to_string());
                                Err(DP_FAULT)
                            }
                        }
                    })
                });
                match r {
                    Ok(()) => dp.flush(&mut rbus, T).unwrap(),
                    Err(Error::PeerGone) => return dp.stats(),
                    Err(err) => panic!("remote: {err}"),
                }
            }
        });
        let dst = host.find_service(DP_SERVICE, T).unwrap();
        let ep = host.create_endpoint("dp", None).unwrap();
        let max = host.max_payload();
        let mut dp = DpHost::new(pool, Channel::new(ep, dst), max).unwrap();
        let mut sent = std::collections::HashMap::new();
        let mut held = Vec::new();
        for i in 0..BUFS {
            let mut b = dp.alloc(PAGE).expect("a free buffer");
            let n = 1024 + 128 * i;
            let p = pattern(i as u8, n);
            b[..n].copy_from_slice(&p);
            b[n..2 * n].fill(0);
            held.push((b, n, p));
        }
        for (b, n, p) in held {
            let da = b.da();
            let t = dp.submit(&mut host, b, n, OP_EDU_COPY).unwrap();
            sent.insert(t.seq, (da, n, p));
        }
        let (mut corrupted, mut done, mut faulted) = (0, 0, 0);
        while dp.outstanding() > 0 {
            let c = dp.wait_complete(&mut host, T).unwrap();
            let (da, n, p) = sent.remove(&c.seq()).unwrap();
            let read_only = da.0 >= POOL_IOVA + rw as u64;
            if read_only {
                assert_eq!(
                    c.status(),
                    DP_FAULT,
                    "a job in a read-only window must fault"
                );
                faulted += 1;
                continue;
            }
            assert_eq!(
                c.status(),
                DP_OK,
                "job at {da:?}: {:?}",
                errors.lock().unwrap()
            );
            assert_eq!(c.len(), 2 * n);
            if c[..n] != p[..] || c[n..2 * n] != p[..] {
                corrupted += 1;
            }
            done += 1;
        }
        assert_eq!(faulted, 2);
        assert_eq!(
            dp.pool().counts(),
            [BUFS, 0, 0, 0],
            "every buffer is back in the pool"
        );
        drop(dp);
        drop(host);
        (corrupted, done, remote.join().unwrap())
    });
    println!(
        "dataplane over VFIO: moved = {done}, corrupted = {corrupted}, remote stats {stats:?}"
    );
    assert_eq!(corrupted, 0);
    assert_eq!(done, BUFS - 2);
    assert_eq!((stats.done, stats.faults), ((BUFS - 2) as u64, 2));
    drop(iommu);
}

/// udmabuf + VFIO: the device reaches a udmabuf's pages through a window (its CPU view
/// maps the backing memfd, which type1 can pin), the bytes the device writes are seen
/// after a DMA_BUF_IOCTL_SYNC START|READ, and the dma-buf stays usable for sync.
#[test]
#[ignore = "needs an edu device bound to vfio-pci behind an IOMMU, as root: run by scripts/vm-vfio-test.sh in a QEMU guest"]
fn udmabuf_pages_are_reachable_through_vfio() {
    let e = the_edu();
    let buf = UdmabufRegion::create(4 * PAGE).expect("/dev/udmabuf");
    let cache = DmaBufCache::new(buf).expect("udmabuf accepts DMA_BUF_IOCTL_SYNC");
    let src = pattern(42, N);
    cache.sync(DMA_BUF_SYNC_START | DMA_BUF_SYNC_WRITE).unwrap();
    cache.memory().write(0, &src);
    cache.memory().write(PAGE, &vec![0u8; N]);
    cache.sync(DMA_BUF_SYNC_END | DMA_BUF_SYNC_WRITE).unwrap();
    let mut iommu = VfioIommu::open(e.group, cache.memory()).expect("udmabuf + VFIO");
    let id = iommu.open_device(&e.bdf).unwrap();
    let edu = Edu::probe(iommu.device(id)).unwrap();
    iommu
        .map(DevAddr(0x80_0000), 0, 4 * PAGE, Perm::RW)
        .unwrap();
    edu.dma(iommu.device(id), EduDir::FromRam, 0x80_0000, N, DMA_T)
        .unwrap();
    edu.dma(iommu.device(id), EduDir::ToRam, 0x80_1000, N, DMA_T)
        .unwrap();
    drop(iommu);
    cache.sync(DMA_BUF_SYNC_START | DMA_BUF_SYNC_READ).unwrap();
    assert_eq!(
        bytes(cache.memory(), PAGE, N),
        src,
        "the device's copy, seen through the udmabuf"
    );
    cache.sync(DMA_BUF_SYNC_END | DMA_BUF_SYNC_READ).unwrap();
}

/// dma-heap + VFIO is refused before the kernel is asked, naming VM_PFNMAP (the system
/// heap maps with remap_pfn_range; type1's pin_user_pages refuses such mappings).
#[test]
#[ignore = "needs an edu device bound to vfio-pci behind an IOMMU, as root: run by scripts/vm-vfio-test.sh in a QEMU guest"]
fn dma_heap_with_vfio_is_refused_naming_vm_pfnmap() {
    let e = the_edu();
    let heap = DmaHeapRegion::alloc("system", 4 * PAGE).expect("/dev/dma_heap/system");
    let err = VfioIommu::open(e.group, &heap).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, MemError::InvalidRequest(_)), "{err:?}");
    assert!(
        msg.contains("VM_PFNMAP") && msg.contains("UdmabufRegion"),
        "{msg}"
    );
    println!("dma-heap + VFIO: {msg}");
}

/// DMA_BUF_IOCTL_SYNC on both dma-buf kinds against the kernel: every START/END with
/// READ, WRITE and RW is accepted (dma-buf.c `dma_buf_ioctl`), and flags outside
/// DMA_BUF_SYNC_VALID_FLAGS_MASK are refused (EINVAL), as an error.
#[test]
#[ignore = "needs /dev/udmabuf and /dev/dma_heap/system, as root: run by scripts/vm-vfio-test.sh in a QEMU guest"]
fn dma_buf_sync_against_the_kernel() {
    let heap = DmaHeapRegion::alloc("system", 4 * PAGE).unwrap();
    let udma = UdmabufRegion::create(4 * PAGE).unwrap();
    let hc = DmaBufCache::new(heap).unwrap();
    let uc = DmaBufCache::new(udma).unwrap();
    for dir in [DMA_BUF_SYNC_READ, DMA_BUF_SYNC_WRITE, DMA_BUF_SYNC_RW] {
        for c in [
            &hc.sync(DMA_BUF_SYNC_START | dir),
            &hc.sync(DMA_BUF_SYNC_END | dir),
        ] {
            c.as_ref().unwrap();
        }
        uc.sync(DMA_BUF_SYNC_START | dir).unwrap();
        uc.sync(DMA_BUF_SYNC_END | dir).unwrap();
    }
    use intercore::dataplane::CacheOps;
    uc.clean(0, 0, 4 * PAGE);
    uc.invalidate(0, 0, 4 * PAGE);
    hc.clean(0, 0, PAGE);
    hc.invalidate(0, 0, PAGE);
    let bad = uc.sync(0x100).unwrap_err();
    assert_eq!(bad.raw_os_error(), Some(libc::EINVAL), "{bad}");
    let bad = hc.sync(DMA_BUF_SYNC_START).unwrap_err();
    assert_eq!(
        bad.raw_os_error(),
        Some(libc::EINVAL),
        "no direction: {bad}"
    );
}

fn memfd(len: usize, sealing: bool) -> OwnedFd {
    let flags = libc::MFD_CLOEXEC | if sealing { libc::MFD_ALLOW_SEALING } else { 0 };
    let fd = intercore_linux::sys::memfd_create(c"intercore-refusal", flags).expect("memfd_create");
    intercore_linux::sys::ftruncate(fd.as_fd(), len as u64).expect("ftruncate");
    fd
}

fn seal(fd: &OwnedFd, seals: i32) {
    intercore_linux::sys::add_seals(fd.as_fd(), seals).expect("F_ADD_SEALS");
}

/// udmabuf's rules, enforced by the kernel (drivers/dma-buf/udmabuf.c), come back as
/// errors that name the broken rule: a memfd without F_SEAL_SHRINK, one with F_SEAL_WRITE,
/// a size above `size_limit_mb` (asked with the cap raised, so the kernel decides); an
/// unaligned size and one above our own cap are refused before the kernel is asked, and the
/// cap's refusal names the cap.
#[test]
#[ignore = "needs /dev/udmabuf, as root: run by scripts/vm-vfio-test.sh in a QEMU guest"]
fn udmabuf_refusals_name_the_rule() {
    let roots = SysRoots::default();
    let unsealed = memfd(PAGE, true);
    let e = UdmabufRegion::from_memfd(&roots, unsealed, PAGE)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("EINVAL") || e.contains("Invalid argument"),
        "{e}"
    );
    assert!(e.contains("F_SEAL_SHRINK"), "unsealed: {e}");
    println!("unsealed memfd: {e}");

    let write_sealed = memfd(PAGE, true);
    seal(&write_sealed, libc::F_SEAL_SHRINK | libc::F_SEAL_WRITE);
    let e = UdmabufRegion::from_memfd(&roots, write_sealed, PAGE)
        .unwrap_err()
        .to_string();
    assert!(e.contains("F_SEAL_WRITE"), "write-sealed: {e}");
    println!("F_SEAL_WRITE: {e}");

    let limit: usize = std::fs::read_to_string("/sys/module/udmabuf/parameters/size_limit_mb")
        .expect("udmabuf's size_limit_mb parameter")
        .trim()
        .parse()
        .unwrap();
    let big = (limit << 20) + PAGE;
    let fd = memfd(big, true);
    seal(&fd, libc::F_SEAL_SHRINK);
    let e = UdmabufRegion::from_memfd_capped(&roots, fd, big, usize::MAX)
        .unwrap_err()
        .to_string();
    assert!(e.contains("size_limit_mb"), "over the limit: {e}");
    println!("over size_limit_mb: {e}");

    let e = UdmabufRegion::from_memfd(&roots, memfd(PAGE, true), 100).unwrap_err();
    assert!(matches!(e, MemError::InvalidRequest(_)), "unaligned: {e}");
    let e = UdmabufRegion::create_capped(&roots, 8 * PAGE, 4 * PAGE).unwrap_err();
    assert!(e.to_string().contains("cap of 0x4000"), "{e}");
}

/// A dma-heap allocation above the cap is refused before the kernel is asked (a mainline
/// heap would reclaim and may OOM-kill the caller in a small guest), naming the cap; with
/// the cap raised the kernel's own answer comes back as an error, not a killed process
/// (asked here for less than the guest has, and for far more than a 32-bit length).
#[test]
#[ignore = "needs /dev/dma_heap/system, as root: run by scripts/vm-vfio-test.sh in a QEMU guest"]
fn dma_heap_allocation_cap() {
    let roots = SysRoots::default();
    let e = DmaHeapRegion::alloc("system", 1 << 40).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, MemError::InvalidRequest(_)), "{e:?}");
    assert!(msg.contains("cap of 0x10000000"), "{msg}");
    println!("1 TiB from the system heap: {msg}");
    let e = DmaHeapRegion::alloc_capped(&roots, "system", 8 * PAGE, 4 * PAGE).unwrap_err();
    assert!(e.to_string().contains("cap of 0x4000"), "{e}");
    let r = DmaHeapRegion::alloc_capped(&roots, "system", 1 << 20, 1 << 20).unwrap();
    assert_eq!(r.len(), 1 << 20);
}

/// Without interrupt remapping (virtio-iommu) vfio_iommu_type1 refuses VFIO_SET_IOMMU with
/// EPERM unless `allow_unsafe_interrupts` is set (vfio_iommu_type1.c
/// `vfio_iommu_type1_attach_group`); the error names that parameter. Run by the guest
/// script under virtio-iommu before it sets the parameter.
#[test]
#[ignore = "needs virtio-iommu with vfio_iommu_type1 allow_unsafe_interrupts=N: run by scripts/vm-vfio-test.sh in a QEMU guest"]
fn vfio_set_iommu_eperm_names_allow_unsafe_interrupts() {
    let p = "/sys/module/vfio_iommu_type1/parameters/allow_unsafe_interrupts";
    let v = std::fs::read_to_string(p).expect("vfio_iommu_type1 loaded");
    assert_eq!(v.trim(), "N", "the check needs allow_unsafe_interrupts=N");
    let e = the_edu();
    let err = VfioIommu::open(e.group, MemfdRegion::create("eperm", PAGE).unwrap()).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("VFIO_SET_IOMMU") && msg.contains("allow_unsafe_interrupts"),
        "{msg}"
    );
    println!("virtio-iommu without allow_unsafe_interrupts: {msg}");
}
