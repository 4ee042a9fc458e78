//! The mainline routes to a cacheable, physically contiguous buffer at a known device
//! address, against a real kernel, checked by a DMA engine that uses **physical**
//! addresses: QEMU's `edu` device in a guest **without an IOMMU**, driven through sysfs
//! (`resource0` mapped for its registers, `config` for bus mastering; no driver bound).
//! `scripts/vm-vfio-test.sh` boots such a guest (model `phys`, with huge pages reserved)
//! and runs this binary with `--ignored`; on any other machine the tests are ignored.
//!
//! * A **hugetlb memfd**: addresses from `/proc/self/pagemap` (root), contiguous across
//!   the 2 MiB huge page, reached by the device at `first + k * 4096` for pages spread over
//!   the whole buffer.
//! * A **dma-buf heap buffer**: its mmap is `VM_PFNMAP`, which pagemap reports as a hole —
//!   the route fails with an error naming that, on this kernel. The guest kernel (Debian's
//!   6.12 amd64) has no CMA (`# CONFIG_CMA is not set`, hence no
//!   `CONFIG_DMABUF_HEAPS_CMA` and no use for `cma=`), so the heap tried is `system`.
//! * Without `CAP_SYS_ADMIN` the kernel zeroes PFNs, and the route says so.
//!
//! edu registers: QEMU docs/specs/edu.rst and hw/misc/edu.c (as in intercore-linux's `edu`
//! module): `0x80` source, `0x88` destination, `0x90` count, `0x98` command (bit 0 run,
//! bit 1 device → RAM); the device buffer at `0x40000`. A 4-byte write to a DMA register
//! sets it to the zero-extended value (edu.c `dma_rw`), so addresses below 4 GiB — all of
//! this guest's RAM — are written with 32-bit stores. The script gives the device
//! `dma_mask=0xffffffff` (the default masks addresses to 28 bits).

use intercore::SharedMemory;
use intercore_linux::sys::{Mmap, MmioRegs, page_size};
use intercore_linux::{
    DmaHeapRegion, MemError, MemfdRegion, PrivateRegion, check_contiguous, contiguous_phys_addr,
    own_pagemap, phys_pages,
};
use std::os::fd::AsFd;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

const EDU_BUF: u32 = 0x40000;

struct Edu {
    regs: MmioRegs,
}

impl Edu {
    /// The first 1234:11e8 device: bus mastering on, BAR 0 mapped through sysfs.
    fn open() -> Edu {
        let mut found = None;
        for e in std::fs::read_dir("/sys/bus/pci/devices").unwrap() {
            let p = e.unwrap().path();
            let id = |f: &str| std::fs::read_to_string(p.join(f)).unwrap_or_default();
            if id("vendor").trim() == "0x1234" && id("device").trim() == "0x11e8" {
                found = Some(p);
            }
        }
        let p: PathBuf = found.expect("no edu device (1234:11e8) on the PCI bus");
        assert!(
            !p.join("iommu_group").exists(),
            "this test needs a guest without an IOMMU (edu must DMA to physical addresses)"
        );
        // PCI_COMMAND (offset 4): memory space (bit 1) and bus master (bit 2), linux/pci_regs.h.
        let cfg = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(p.join("config"))
            .unwrap();
        let mut cmd = [0u8; 2];
        cfg.read_exact_at(&mut cmd, 4).unwrap();
        let v = u16::from_le_bytes(cmd) | 0x2 | 0x4;
        cfg.write_all_at(&v.to_le_bytes(), 4).unwrap();
        let bar = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(p.join("resource0"))
            .unwrap();
        let map = Mmap::shared(bar.as_fd(), 1 << 20, 0).unwrap();
        let regs = MmioRegs::new(map, 0, 0x100).unwrap();
        assert_eq!(
            regs.read32(0).unwrap(),
            0x0100_00ed,
            "edu identification register"
        );
        Edu { regs }
    }

    fn dma(&self, src: u32, dst: u32, len: u32, to_ram: bool) {
        let r = &self.regs;
        r.write32(0x80, src).unwrap();
        r.write32(0x88, dst).unwrap();
        r.write32(0x90, len).unwrap();
        r.write32(0x98, 1 | if to_ram { 2 } else { 0 }).unwrap();
        let t0 = Instant::now();
        while r.read32(0x98).unwrap() & 1 != 0 {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "edu DMA did not complete"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Copies one page's first 4 KiB from physical `from` to physical `to` through the
    /// device's buffer.
    fn copy(&self, from: u64, to: u64) {
        let f = u32::try_from(from).expect("RAM below 4 GiB");
        let t = u32::try_from(to).expect("RAM below 4 GiB");
        self.dma(f, EDU_BUF, 4096, false);
        self.dma(EDU_BUF, t, 4096, true);
    }
}

fn pattern(seed: u8) -> Vec<u8> {
    (0..4096u32)
        .map(|i| (i as u8).wrapping_mul(7).wrapping_add(seed))
        .collect()
}

/// A 2 MiB hugetlb memfd: contiguous by pagemap, and the device reaches page k at
/// `first + k * 4096`: page a's pattern, copied by the device from page a's address to page
/// b's, appears at page b of the mapping, for pages spread over the buffer.
#[test]
#[ignore = "needs root and a QEMU guest without an IOMMU, with an edu device and huge pages: run by scripts/vm-vfio-test.sh (model phys)"]
fn hugetlb_pagemap_addresses_are_what_a_device_reaches() {
    let page = page_size();
    assert_eq!(page, 4096);
    let len = 2 << 20;
    let buf = MemfdRegion::create_hugetlb("intercore-pagemap", len).unwrap();
    let first = contiguous_phys_addr(&own_pagemap(), &buf).unwrap();
    let pas = phys_pages(&own_pagemap(), &buf).unwrap();
    assert_eq!(pas.len(), len / page);
    assert_eq!(check_contiguous(&pas, page), Ok(first));
    assert_eq!(first % len as u64, 0, "a 2 MiB huge page starts on 2 MiB");
    println!("pagemap: hugetlb memfd of 2 MiB at physical {first:#x}, contiguous");
    // The region also passes the SharedMemory conformance suite (as every memory source).
    if let Err(v) = intercore::testing::conformance::shared_memory(&buf) {
        panic!("{v}");
    }
    let edu = Edu::open();
    let sel = [0usize, 1, 17, 256, 300, 511];
    for &k in &sel {
        buf.write(k * page, &pattern(k as u8));
    }
    for w in sel.windows(2).rev() {
        let (a, b) = (w[0], w[1]);
        edu.copy(first + (a * page) as u64, first + (b * page) as u64);
        let mut got = vec![0u8; page];
        buf.read(b * page, &mut got);
        assert!(
            got == pattern(a as u8),
            "the device copied first + {a} pages to first + {b} pages, and page {b} of the mapping does not show page {a}'s data (wrong physical address)"
        );
    }
    println!(
        "pagemap: the device reached pages {sel:?} at first + k * 4096 ({} copies checked)",
        sel.len() - 1
    );
}

/// A dma-buf heap's own mapping is VM_PFNMAP: pagemap shows it as a hole, and the route
/// says so rather than returning an address (mm/pagewalk.c `walk_page_test`).
#[test]
#[ignore = "needs root and /dev/dma_heap/system in the QEMU guest: run by scripts/vm-vfio-test.sh (model phys)"]
fn heap_mapping_is_a_pagemap_hole() {
    let buf = DmaHeapRegion::alloc("system", 16 * page_size()).unwrap();
    match buf.phys_addr_from_pagemap(&own_pagemap()) {
        Err(MemError::InvalidRequest(why)) => {
            assert!(why.contains("VM_PFNMAP"), "{why}");
            println!("pagemap: system heap mapping refused: {why}");
        }
        other => panic!("pagemap on a dma-heap mapping gave {other:?}"),
    }
}

/// Without CAP_SYS_ADMIN the kernel zeroes PFNs: the route says so instead of returning
/// address 0. Run as root in the guest, the check runs in a child as uid/gid 65534.
#[test]
#[ignore = "needs root in the QEMU guest: run by scripts/vm-vfio-test.sh (model phys)"]
fn pagemap_without_cap_sys_admin_is_refused() {
    if std::env::var_os("INTERCORE_PAGEMAP_CHILD").is_some() {
        let mem = PrivateRegion::new(4 * page_size()).unwrap();
        for i in 0..4 {
            mem.write(i * page_size(), &[1]);
        }
        match phys_pages(&own_pagemap(), &mem) {
            Err(MemError::PermissionDenied { hint, .. }) => {
                assert!(hint.contains("CAP_SYS_ADMIN"));
                return;
            }
            other => panic!("unprivileged pagemap read gave {other:?}"),
        }
    }
    use std::os::unix::process::CommandExt;
    let st = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "pagemap_without_cap_sys_admin_is_refused",
        ])
        .env("INTERCORE_PAGEMAP_CHILD", "1")
        .uid(65534)
        .gid(65534)
        .status()
        .unwrap();
    assert!(st.success(), "the unprivileged child failed");
    println!("pagemap: without CAP_SYS_ADMIN the PFNs are zeroed and the route says so");
}
