//! The buffer-memory sources of `intercore-linux`, run for real where this machine has the
//! kernel feature and otherwise checked to fail with the error that says why; and discovery
//! of physical carveouts (device-tree `reserved-memory`, UIO sysfs) against a fake
//! `/dev` + `/sys` + `/proc/device-tree` tree built in a temporary directory (a regular
//! file stands in for `/dev/mem` or `/dev/uioN`: `mmap` of a regular file at an offset
//! reaches the same bytes a device node would).

use intercore::{DevAddr, DeviceAddressMap, SharedMemory};
use intercore_linux::*;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// The page size (4 KiB on x86-64; 4, 16 or 64 KiB on arm64).
fn page() -> usize {
    intercore_linux::sys::page_size()
}

/// A fake system root in a temporary directory, removed on drop.
struct FakeTree {
    root: PathBuf,
}

impl FakeTree {
    fn new(tag: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let root = std::env::temp_dir().join(format!(
            "intercore-fake-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("dev")).unwrap();
        Self { root }
    }
    fn roots(&self) -> SysRoots {
        SysRoots::under(&self.root)
    }
    fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }
    fn write(&self, rel: &str, bytes: &[u8]) {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }
    /// A sparse regular file of `len` bytes standing in for a device node.
    fn node(&self, rel: &str, len: u64) {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::File::create(&p).unwrap().set_len(len).unwrap();
    }
    fn read_at(&self, rel: &str, off: u64, n: usize) -> Vec<u8> {
        let f = std::fs::File::open(self.path(rel)).unwrap();
        let mut v = vec![0; n];
        f.read_exact_at(&mut v, off).unwrap();
        v
    }
    /// `/reserved-memory` with the given cell counts (None: property absent).
    fn reserved_memory(&self, ac: Option<&[u8]>, sc: Option<&[u8]>) {
        std::fs::create_dir_all(self.path("proc/device-tree/reserved-memory")).unwrap();
        if let Some(ac) = ac {
            self.write("proc/device-tree/reserved-memory/#address-cells", ac);
        }
        if let Some(sc) = sc {
            self.write("proc/device-tree/reserved-memory/#size-cells", sc);
        }
    }
    fn rm_node(&self, name: &str, reg: &[u8], no_map: bool) {
        let dir = format!("proc/device-tree/reserved-memory/{name}");
        self.write(&format!("{dir}/reg"), reg);
        self.write(&format!("{dir}/compatible"), b"shared-dma-pool\0");
        if no_map {
            self.write(&format!("{dir}/no-map"), b"");
        }
    }
    fn uio_map(&self, uio: &str, index: usize, name: &str, addr: &str, size: &str) {
        let dir = format!("sys/class/uio/{uio}/maps/map{index}");
        self.write(&format!("{dir}/name"), format!("{name}\n").as_bytes());
        self.write(&format!("{dir}/addr"), format!("{addr}\n").as_bytes());
        self.write(&format!("{dir}/size"), format!("{size}\n").as_bytes());
        self.write(&format!("{dir}/offset"), b"0x0\n");
    }
}

impl Drop for FakeTree {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// Big-endian cells, as a device-tree property stores them.
fn be(cells: &[u32]) -> Vec<u8> {
    cells.iter().flat_map(|c| c.to_be_bytes()).collect()
}

/// An ioctl on a node that does not know it: the kernel answers ENOTTY (and the hint names
/// the wrong node); qemu-user, which runs the aarch64 build here, answers ENOSYS for ioctls
/// it does not forward (and the hint says so).
fn assert_unknown_ioctl(source: &std::io::Error, hint: &str, enotty_hint: &str) {
    match source.raw_os_error() {
        Some(libc::ENOTTY) => assert!(hint.contains(enotty_hint), "{hint}"),
        Some(libc::ENOSYS) => assert!(hint.contains("qemu"), "{hint}"),
        other => panic!("expected ENOTTY (or ENOSYS under qemu-user), got {other:?}"),
    }
}

fn seals(fd: BorrowedFd<'_>) -> i32 {
    intercore_linux::sys::seals(fd).expect("F_GET_SEALS")
}

/// The memfd udmabuf needs, made for real (memfd_create(2), fcntl(2) F_ADD_SEALS):
/// `F_SEAL_SHRINK` set and `F_SEAL_WRITE` absent — udmabuf.c's SEALS_WANTED / SEALS_DENIED
/// — so it cannot shrink under a buffer (ftruncate fails with EPERM), stays writable, and
/// two MAP_SHARED mappings of it see each other's writes.
#[test]
fn sealed_memfd_for_udmabuf_works_here() {
    let fd = UdmabufRegion::sealed_memfd(2 * page()).unwrap();
    let s = seals(fd.as_fd());
    assert_ne!(s & libc::F_SEAL_SHRINK, 0, "F_SEAL_SHRINK missing: {s:#x}");
    assert_eq!(
        s & libc::F_SEAL_WRITE,
        0,
        "F_SEAL_WRITE must be absent: {s:#x}"
    );
    assert_ne!(
        s & libc::F_SEAL_SEAL,
        0,
        "F_SEAL_SEAL keeps F_SEAL_WRITE out later"
    );
    // Shrinking must fail (the shrink seal), and so must adding F_SEAL_WRITE (F_SEAL_SEAL).
    let e = intercore_linux::sys::ftruncate(fd.as_fd(), page() as u64).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EPERM), "{e}");
    assert!(intercore_linux::sys::add_seals(fd.as_fd(), libc::F_SEAL_WRITE).is_err());
    let a = MemfdRegion::from_fd(fd.try_clone().unwrap()).unwrap();
    let b = MemfdRegion::from_fd(fd).unwrap();
    assert_eq!(a.len(), 2 * page());
    a.store_u32(page() + 8, 0x1234_5678, Ordering::Release);
    assert_eq!(b.load_u32(page() + 8, Ordering::Acquire), 0x1234_5678);
    b.write(3, b"shared");
    let mut out = [0u8; 6];
    a.read(3, &mut out);
    assert_eq!(&out, b"shared");
}

/// udmabuf on this machine: where `/dev/udmabuf` exists a buffer is created, written, read
/// back and given real `DMA_BUF_IOCTL_SYNC` maintenance; where it does not, `create` fails
/// with `Missing` naming the node and `CONFIG_UDMABUF` (drivers/dma-buf/udmabuf.c registers
/// the misc device "udmabuf").
#[test]
fn udmabuf_for_real_or_explained() {
    if Path::new("/dev/udmabuf").exists() {
        let r = UdmabufRegion::create(4 * page()).expect("udmabuf exists but cannot be used");
        assert_eq!(r.len(), 4 * page());
        r.write(100, b"udmabuf");
        let mut out = [0u8; 7];
        r.read(100, &mut out);
        assert_eq!(&out, b"udmabuf");
        let c = DmaBufCache::new(r).expect("udmabuf accepts DMA_BUF_IOCTL_SYNC");
        use intercore::dataplane::CacheOps;
        c.clean(0, 0, 64);
        c.invalidate(0, 0, 64);
        return;
    }
    match UdmabufRegion::create(4 * page()) {
        Err(MemError::Missing { path, hint }) => {
            assert_eq!(path, Path::new("/dev/udmabuf"));
            assert!(hint.contains("CONFIG_UDMABUF"), "{hint}");
        }
        other => panic!("expected Missing, got {other:?}"),
    }
    let msg = UdmabufRegion::create(4 * page()).unwrap_err().to_string();
    assert!(
        msg.contains("/dev/udmabuf") && msg.contains("modprobe udmabuf"),
        "{msg}"
    );
}

/// udmabuf's size rule (udmabuf.c: offset and size must be PAGE_SIZE aligned, size > 0) is
/// checked before any system call, and a node that is not udmabuf (here a regular file)
/// makes UDMABUF_CREATE fail with ENOTTY, reported as such.
#[test]
fn udmabuf_request_and_node_checks() {
    let t = FakeTree::new("udmabuf");
    assert!(matches!(
        UdmabufRegion::create_in(&t.roots(), 100),
        Err(MemError::InvalidRequest(_))
    ));
    assert!(matches!(
        UdmabufRegion::create_in(&t.roots(), 0),
        Err(MemError::InvalidRequest(_))
    ));
    t.node("dev/udmabuf", 0);
    match UdmabufRegion::create_in(&t.roots(), page()) {
        Err(MemError::Os { op, source, hint }) => {
            assert!(op.contains("UDMABUF_CREATE"), "{op}");
            assert_unknown_ioctl(&source, hint, "not a udmabuf");
        }
        other => panic!("expected Os(ENOTTY), got {other:?}"),
    }
}

/// dma-buf heaps on this machine: where `/dev/dma_heap` exists, every heap is listed and
/// one page is allocated from each and used (dma-heap.h DMA_HEAP_IOCTL_ALLOC); where it does
/// not, listing and allocating fail with `Missing` naming `/dev/dma_heap` and
/// `CONFIG_DMABUF_HEAPS`.
#[test]
fn dma_heaps_for_real_or_explained() {
    let roots = SysRoots::default();
    if Path::new("/dev/dma_heap").exists() {
        for heap in list_dma_heaps(&roots).unwrap() {
            match DmaHeapRegion::alloc(&heap, page()) {
                Ok(r) => {
                    r.write(0, b"heap");
                    let mut out = [0u8; 4];
                    r.read(0, &mut out);
                    assert_eq!(&out, b"heap");
                }
                // A CMA heap may be exhausted or too small: that must say so.
                Err(e @ MemError::OutOfMemory { .. }) => eprintln!("{heap}: {e}"),
                Err(e) => panic!("heap {heap}: {e}"),
            }
        }
        return;
    }
    for e in [
        list_dma_heaps(&roots).unwrap_err(),
        DmaHeapRegion::alloc("system", page()).unwrap_err(),
    ] {
        match e {
            MemError::Missing { path, hint } => {
                assert_eq!(path, Path::new("/dev/dma_heap"));
                assert!(hint.contains("CONFIG_DMABUF_HEAPS"), "{hint}");
            }
            other => panic!("expected Missing, got {other:?}"),
        }
    }
}

/// Heap lookup in a fake `/dev/dma_heap`: the names are listed sorted, an unknown heap is
/// `NotFound` listing what exists, a bad name is refused before any open, and a node that
/// is not a heap (a regular file) fails DMA_HEAP_IOCTL_ALLOC with ENOTTY.
#[test]
fn dma_heap_lookup_in_fake_tree() {
    let t = FakeTree::new("heap");
    std::fs::create_dir_all(t.path("dev/dma_heap")).unwrap();
    match DmaHeapRegion::alloc_in(&t.roots(), "system", page()) {
        Err(MemError::NotFound { what }) => assert!(what.contains("none"), "{what}"),
        other => panic!("expected NotFound, got {other:?}"),
    }
    t.node("dev/dma_heap/system", 0);
    t.node("dev/dma_heap/reserved", 0);
    assert_eq!(list_dma_heaps(&t.roots()).unwrap(), ["reserved", "system"]);
    match DmaHeapRegion::alloc_in(&t.roots(), "linux,cma", page()) {
        Err(MemError::NotFound { what }) => {
            assert!(
                what.contains("linux,cma") && what.contains("reserved, system"),
                "{what}"
            )
        }
        other => panic!("expected NotFound, got {other:?}"),
    }
    for bad in ["", "..", "a/b"] {
        assert!(matches!(
            DmaHeapRegion::alloc_in(&t.roots(), bad, page()),
            Err(MemError::InvalidRequest(_))
        ));
    }
    assert!(matches!(
        DmaHeapRegion::alloc_in(&t.roots(), "system", 0),
        Err(MemError::InvalidRequest(_))
    ));
    match DmaHeapRegion::alloc_in(&t.roots(), "system", page()) {
        Err(MemError::Os { source, hint, .. }) => {
            assert_unknown_ioctl(&source, hint, "not a dma-buf heap")
        }
        other => panic!("expected Os(ENOTTY), got {other:?}"),
    }
}

/// A reserved-memory carveout found in a fake device tree (`reg` = <0 base 0 size> with
/// #address-cells = #size-cells = 2, devicetree spec §2.3.6 and the reserved-memory
/// binding) is mapped through a fake `/dev/mem` at file offset = physical base, as
/// drivers/char/mem.c's mmap does: bytes written through the region land at byte `pa` of
/// the file. Its identity and fixed-offset device-address maps translate accordingly.
#[test]
fn carveout_from_device_tree_via_dev_mem() {
    let t = FakeTree::new("dt");
    let base: u64 = 0x10_0000;
    let len: u64 = 0x4000;
    t.reserved_memory(Some(&be(&[2])), Some(&be(&[2])));
    t.rm_node(
        "r5f-dma-memory@100000",
        &be(&[0, base as u32, 0, len as u32]),
        true,
    );
    t.node("dev/mem", base + len);
    let rm = reserved_memory(&t.roots(), "r5f-dma-memory").unwrap();
    assert_eq!(rm.node, "r5f-dma-memory@100000");
    assert_eq!(rm.regions, [(base, len)]);
    assert!(rm.no_map);
    assert_eq!(rm.compatible.as_deref(), Some("shared-dma-pool"));

    let c = PhysCarveout::from_device_tree(&t.roots(), "r5f-dma-memory", DevMemCaching::Uncached)
        .unwrap();
    assert_eq!(c.phys_addr(), base);
    assert_eq!(c.len(), len as usize);
    assert!(c.source().ends_with("dev/mem"));
    c.write(0x20, b"carveout");
    c.store_u32(0x3ffc, 0xfeed_f00d, Ordering::Release);
    assert_eq!(t.read_at("dev/mem", base + 0x20, 8), b"carveout");
    assert_eq!(
        t.read_at("dev/mem", base + 0x3ffc, 4),
        0xfeed_f00du32.to_le_bytes()
    );

    let id = c.identity_map();
    assert_eq!(id.to_offset(DevAddr(base + 0x20), 8), Some(0x20));
    assert_eq!(id.to_dev(0x20), Some(DevAddr(base + 0x20)));
    assert_eq!(id.to_offset(DevAddr(base + len - 4), 8), None);
    let alias = c.offset_map(0xa000_0000 - base as i64).unwrap();
    assert_eq!(alias.to_offset(DevAddr(0xa000_0020), 8), Some(0x20));
    assert_eq!(alias.to_dev(0), Some(DevAddr(0xa000_0000)));
    let down = c.offset_map(-(base as i64)).unwrap();
    assert_eq!(down.to_dev(0x10), Some(DevAddr(0x10)));
    assert!(matches!(
        c.offset_map(-(base as i64) - 1),
        Err(MemError::InvalidRequest(_))
    ));
}

/// One-cell addresses and sizes (#address-cells = #size-cells = 1, as on 32-bit SoCs), and
/// the 2/2 default when the reserved-memory node lacks the cell properties.
#[test]
fn device_tree_cell_counts() {
    let t = FakeTree::new("cells");
    t.reserved_memory(Some(&be(&[1])), Some(&be(&[1])));
    t.rm_node(
        "vdev0buffer@9c000000",
        &be(&[0x9c00_0000, 0x10_0000]),
        false,
    );
    let rm = reserved_memory(&t.roots(), "vdev0buffer@9c000000").unwrap();
    assert_eq!(rm.regions, [(0x9c00_0000, 0x10_0000)]);
    assert!(!rm.no_map);

    let t = FakeTree::new("cells-default");
    t.reserved_memory(None, None);
    t.rm_node(
        "ipc@8_00000000",
        &be(&[8, 0, 0, 0x20_0000, 8, 0x20_0000, 0, 0x1000]),
        true,
    );
    let rm = reserved_memory(&t.roots(), "ipc").unwrap();
    assert_eq!(
        rm.regions,
        [(0x8_0000_0000, 0x20_0000), (0x8_0020_0000, 0x1000)]
    );
}

/// Malformed or missing device-tree data gives a named error, never a guess: a `reg` whose
/// length is not a whole number of entries, a zero-size entry, a 3-byte `#address-cells`,
/// an unsupported cell count, an absent node (listing what exists), a name matching two
/// nodes, a node without `reg`, no `/reserved-memory`, and no `/dev/mem` (CONFIG_DEVMEM).
#[test]
fn device_tree_malformed_inputs() {
    let t = FakeTree::new("bad-dt");
    match reserved_memory(&t.roots(), "x") {
        Err(MemError::Missing { path, .. }) => assert!(path.ends_with("reserved-memory")),
        other => panic!("expected Missing, got {other:?}"),
    }
    t.reserved_memory(Some(&be(&[2])), Some(&be(&[2])));
    t.rm_node("short@0", &[0; 12], false);
    t.rm_node("empty@1000", &be(&[0, 0x1000, 0, 0]), false);
    t.rm_node("buf@2000", &be(&[0, 0x2000, 0, 0x1000]), false);
    t.rm_node("buf@3000", &be(&[0, 0x3000, 0, 0x1000]), false);
    std::fs::create_dir_all(t.path("proc/device-tree/reserved-memory/noreg@4000")).unwrap();

    match reserved_memory(&t.roots(), "short@0") {
        Err(MemError::Malformed { path, what }) => {
            assert!(path.ends_with("short@0/reg"), "{path:?}");
            assert!(what.contains("16-byte entry"), "{what}");
        }
        other => panic!("expected Malformed, got {other:?}"),
    }
    match reserved_memory(&t.roots(), "empty") {
        Err(MemError::Malformed { what, .. }) => assert!(what.contains("size 0"), "{what}"),
        other => panic!("expected Malformed, got {other:?}"),
    }
    match reserved_memory(&t.roots(), "buf") {
        Err(MemError::Ambiguous { what }) => {
            assert!(
                what.contains("buf@2000") && what.contains("buf@3000"),
                "{what}"
            )
        }
        other => panic!("expected Ambiguous, got {other:?}"),
    }
    assert_eq!(
        reserved_memory(&t.roots(), "buf@3000").unwrap().regions,
        [(0x3000, 0x1000)]
    );
    match reserved_memory(&t.roots(), "nothere") {
        Err(MemError::NotFound { what }) => assert!(what.contains("buf@2000"), "{what}"),
        other => panic!("expected NotFound, got {other:?}"),
    }
    match reserved_memory(&t.roots(), "noreg") {
        Err(MemError::Missing { path, hint }) => {
            assert!(path.ends_with("noreg@4000/reg"));
            assert!(hint.contains("no reg"), "{hint}");
        }
        other => panic!("expected Missing, got {other:?}"),
    }
    t.write(
        "proc/device-tree/reserved-memory/#address-cells",
        &[0, 0, 2],
    );
    match reserved_memory(&t.roots(), "buf@2000") {
        Err(MemError::Malformed { path, what }) => {
            assert!(path.ends_with("#address-cells"));
            assert!(what.contains("3 bytes"), "{what}");
        }
        other => panic!("expected Malformed, got {other:?}"),
    }
    t.write("proc/device-tree/reserved-memory/#address-cells", &be(&[3]));
    match reserved_memory(&t.roots(), "buf@2000") {
        Err(MemError::Malformed { what, .. }) => {
            assert!(what.contains("#address-cells = 3"), "{what}")
        }
        other => panic!("expected Malformed, got {other:?}"),
    }
    t.write("proc/device-tree/reserved-memory/#address-cells", &be(&[2]));
    match PhysCarveout::from_device_tree(&t.roots(), "buf@2000", DevMemCaching::Cached) {
        Err(MemError::Missing { path, hint }) => {
            assert!(path.ends_with("dev/mem"));
            assert!(hint.contains("CONFIG_DEVMEM"), "{hint}");
        }
        other => panic!("expected Missing, got {other:?}"),
    }
}

/// `/dev/mem` requests are checked before any system call: the base must be page-aligned
/// (mmap's offset rule), the length non-zero, and the range must not wrap.
#[test]
fn dev_mem_request_checks() {
    let t = FakeTree::new("devmem");
    let p = page();
    t.node("dev/mem", 3 * p as u64);
    let r = t.roots();
    for (pa, len) in [
        (p as u64 + 1, p),
        (p as u64, 0),
        (u64::MAX - (p as u64 - 1), 2 * p),
    ] {
        assert!(
            matches!(
                PhysCarveout::devmem(&r, pa, len, DevMemCaching::Cached),
                Err(MemError::InvalidRequest(_))
            ),
            "{pa:#x}+{len:#x}"
        );
    }
    let c = PhysCarveout::devmem(&r, p as u64, 2 * p, DevMemCaching::Cached).unwrap();
    c.write(0, b"ok");
    assert_eq!(t.read_at("dev/mem", p as u64, 2), b"ok");
}

/// A UIO carveout: sysfs `maps/mapN/{name,addr,size,offset}` (drivers/uio/uio.c prints
/// addr and size as `0x%pa`) are parsed, and map N is mmapped at offset N × page size of
/// `/dev/uioX` (uio.c's mmap selects the map by `vm_pgoff`). Bytes written through map 1
/// land at file offset one page; the map can also be found by name; the identity map uses
/// the sysfs physical address.
#[test]
fn uio_carveout_in_fake_tree() {
    let t = FakeTree::new("uio");
    t.write("sys/class/uio/uio0/name", b"uio_pdrv_genirq\n");
    t.uio_map(
        "uio0",
        0,
        "regs",
        "0x00000000ff000000",
        "0x0000000000001000",
    );
    t.uio_map(
        "uio0",
        1,
        "r5f-dma",
        "0x00000000a0000000",
        "0x0000000000002000",
    );
    t.write("sys/class/uio/uio1/name", b"other\n");
    t.node("dev/uio0", (page() + 0x2000) as u64);

    let devs = uio_devices(&t.roots()).unwrap();
    assert_eq!(devs.len(), 2);
    assert_eq!(devs[0].node, "uio0");
    assert_eq!(devs[0].name, "uio_pdrv_genirq");
    assert_eq!(
        devs[0].maps[1],
        UioMap {
            index: 1,
            name: "r5f-dma".into(),
            addr: 0xa000_0000,
            size: 0x2000,
            offset: 0
        }
    );
    assert!(devs[1].maps.is_empty());

    let c = PhysCarveout::uio(&t.roots(), "uio0", 1).unwrap();
    assert_eq!(c.phys_addr(), 0xa000_0000);
    assert_eq!(c.len(), 0x2000);
    c.write(0x10, b"uio map 1");
    assert_eq!(t.read_at("dev/uio0", page() as u64 + 0x10, 9), b"uio map 1");
    assert_eq!(
        c.identity_map().to_offset(DevAddr(0xa000_0010), 9),
        Some(0x10)
    );
    drop(c);

    let c = PhysCarveout::uio_named(&t.roots(), "r5f-dma").unwrap();
    let mut out = [0u8; 9];
    c.read(0x10, &mut out);
    assert_eq!(&out, b"uio map 1");
}

/// Malformed or missing UIO data gives a named error: an address that is not a number
/// (naming the sysfs file), a missing map index, a zero-size map, a map name used twice,
/// no such UIO device, no `/dev/uioX` node, and a map that does not start on a page.
#[test]
fn uio_malformed_inputs() {
    let t = FakeTree::new("bad-uio");
    match PhysCarveout::uio(&t.roots(), "uio0", 0) {
        Err(MemError::Missing { path, hint }) => {
            assert!(path.ends_with("uio0/name"), "{path:?}");
            assert!(hint.contains("CONFIG_UIO"), "{hint}");
        }
        other => panic!("expected Missing, got {other:?}"),
    }
    t.write("sys/class/uio/uio0/name", b"x\n");
    t.uio_map("uio0", 0, "a", "0xzz", "0x1000");
    match uio_device(&t.roots(), "uio0") {
        Err(MemError::Malformed { path, what }) => {
            assert!(path.ends_with("map0/addr"), "{path:?}");
            assert!(what.contains("0xzz"), "{what}");
        }
        other => panic!("expected Malformed, got {other:?}"),
    }
    t.uio_map("uio0", 0, "a", "0x1000", "0x0");
    match PhysCarveout::uio(&t.roots(), "uio0", 0) {
        Err(MemError::Malformed { path, what }) => {
            assert!(path.ends_with("map0/size"));
            assert!(what.contains("size is 0"), "{what}");
        }
        other => panic!("expected Malformed, got {other:?}"),
    }
    match PhysCarveout::uio(&t.roots(), "uio0", 3) {
        Err(MemError::NotFound { what }) => assert!(what.contains("map3"), "{what}"),
        other => panic!("expected NotFound, got {other:?}"),
    }
    let p = page();
    t.uio_map("uio0", 0, "a", &format!("{:#x}", p + p / 2), "0x1000");
    assert!(matches!(
        PhysCarveout::uio(&t.roots(), "uio0", 0),
        Err(MemError::InvalidRequest(_))
    ));
    t.uio_map("uio0", 0, "a", &format!("{p:#x}"), "0x1000");
    match PhysCarveout::uio(&t.roots(), "uio0", 0) {
        Err(MemError::Missing { path, .. }) => assert!(path.ends_with("dev/uio0")),
        other => panic!("expected Missing, got {other:?}"),
    }
    t.write("sys/class/uio/uio1/name", b"y\n");
    t.uio_map("uio1", 0, "a", "0x2000", "0x1000");
    match PhysCarveout::uio_named(&t.roots(), "a") {
        Err(MemError::Ambiguous { what }) => {
            assert!(
                what.contains("uio0/map0") && what.contains("uio1/map0"),
                "{what}"
            )
        }
        other => panic!("expected Ambiguous, got {other:?}"),
    }
    assert!(matches!(
        PhysCarveout::uio_named(&t.roots(), "b"),
        Err(MemError::NotFound { .. })
    ));
    assert!(matches!(
        uio_device(&t.roots(), "../etc"),
        Err(MemError::InvalidRequest(_))
    ));
}

/// A memfd mapping with its descriptor: something that is not a dma-buf, to offer the
/// dma-buf consumers.
type NotADmaBuf = MemfdRegion;

/// TI's `RPROC_IOC_DMA_BUF_ATTACH` (TI's remoteproc_cdev.h, not mainline): without
/// `/dev/remoteprocN` the error names the node and CONFIG_REMOTEPROC_CDEV; against a node
/// that does not know the ioctl (a regular file: ENOTTY; mainline's cdev: EINVAL) the error
/// says it exists only on TI kernels.
#[test]
fn rproc_dma_buf_attach_explained() {
    let t = FakeTree::new("rproc");
    let region = MemfdRegion::create("intercore-rproc", page()).unwrap();
    match RprocDmaBufAttach::attach_in(&t.roots(), 0, &region) {
        Err(MemError::Missing { path, hint }) => {
            assert!(path.ends_with("dev/remoteproc0"));
            assert!(hint.contains("CONFIG_REMOTEPROC_CDEV"), "{hint}");
        }
        other => panic!("expected Missing, got {other:?}"),
    }
    t.node("dev/remoteproc0", 0);
    match RprocDmaBufAttach::attach_in(&t.roots(), 0, &region) {
        Err(MemError::Os { op, hint, .. }) => {
            assert!(op.contains("RPROC_IOC_DMA_BUF_ATTACH"), "{op}");
            assert!(hint.contains("TI kernels"), "{hint}");
        }
        other => panic!("expected Os, got {other:?}"),
    }
}

/// `DmaBufCache` refuses a descriptor that is not a dma-buf: the real kernel answers
/// DMA_BUF_IOCTL_SYNC on a memfd with ENOTTY (dma-buf.h; dma_buf_ioctl() is reached only
/// through a dma-buf file); under qemu-user (ENOSYS) the error says so.
#[test]
fn dma_buf_cache_needs_a_dma_buf() {
    let region: NotADmaBuf = MemfdRegion::create("intercore-notdmabuf", page()).unwrap();
    let e = DmaBufCache::new(region).unwrap_err().to_string();
    assert!(
        e.contains("not a dma-buf") || e.contains("qemu"),
        "unexpected error: {e}"
    );
}
