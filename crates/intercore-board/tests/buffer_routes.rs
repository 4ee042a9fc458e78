//! The board keys of the buffer routes (docs/PORTING.md §4): a CMA heap with
//! `device_address = "pagemap"`, a hugetlb pool, a u-dma-buf device with its sysfs cache
//! maintenance — validated from the file alone, then checked against a fake `/sys` +
//! `/dev` tree (and, for hugetlb and pagemap, this host's `/proc`).

use intercore_board::*;
use intercore_linux::remoteproc::fake::{FakeKernel, FakeRproc};

mod common;
use common::REAL;

/// The problems of an invalid configuration, as `key = value: message` lines.
fn problems(text: &str) -> Vec<String> {
    match Board::from_str(text) {
        Ok(b) => panic!("accepted:\n{b}"),
        Err(e) => e.problems().iter().map(|p| p.to_string()).collect(),
    }
}

/// Asserts one of `probs` names `key` and contains every `needle`.
fn has(probs: &[String], key: &str, needles: &[&str]) {
    let hit = probs
        .iter()
        .any(|p| p.starts_with(key) && needles.iter().all(|n| p.contains(n)));
    assert!(
        hit,
        "no problem naming {key} with {needles:?} in:\n{probs:#?}"
    );
}

/// An AM64x-like remoteproc tree with the kernel transport's control device (the memory
/// probes' device nodes are added per test).
fn fake_board() -> FakeKernel {
    let k = FakeKernel::new(&[FakeRproc::offline("78000000.r5f", "am64-main-r5f0_0-fw")]);
    std::fs::write(k.root().join("dev/rpmsg_ctrl0"), b"").unwrap();
    k
}

fn env(k: &FakeKernel, arch: &str) -> CheckEnv {
    CheckEnv {
        host_arch: arch.into(),
        ..CheckEnv::under(k.root())
    }
}

fn errors(f: &[Finding]) -> Vec<&Finding> {
    f.iter().filter(|f| f.level == Level::Error).collect()
}

fn render(f: &[Finding]) -> String {
    f.iter().map(|f| format!("{f}\n")).collect()
}

/// The mainline routes to a cacheable, contiguous buffer at a known address validate: a
/// CMA heap with `device_address = "pagemap"` and a u-dma-buf device, both with an
/// identity mapping by default; what cannot work is refused with the key and the reason.
#[test]
fn buffer_routes_validate() {
    let mem = "source = \"carveout\"\nreserved_memory = \"intercore-pool@a6000000\"";
    let cma = REAL
        .replace(
            mem,
            "source = \"dma-heap\"\nheap = \"linux,cma\"\nsize = 0x2000000\ndevice_address = \"pagemap\"",
        )
        .replace("\"coherent\"", "\"arm64-el0\"");
    let b = Board::from_str(&cma).unwrap();
    assert_eq!(b.mapping, MappingSpec::Identity);
    assert!(matches!(
        b.memory,
        MemorySpec::DmaHeap {
            device_address: Some(DeviceAddress::Pagemap),
            ..
        }
    ));
    assert!(b.to_string().contains("/proc/self/pagemap"), "{b}");
    let b = Board::from_str(&format!(
        "{cma}[mapping]\nkind = \"offset\"\noffset = -2147483648\n"
    ))
    .unwrap();
    assert_eq!(b.mapping, MappingSpec::Offset(-0x8000_0000));
    has(
        &problems(&cma.replace("linux,cma", "system")),
        "memory.device_address = \"pagemap\"",
        &["not physically contiguous", "CMA"],
    );
    has(
        &problems(&cma.replace("\"pagemap\"", "\"physical\"")),
        "memory.device_address = \"physical\"",
        &["\"pagemap\""],
    );
    has(
        &problems(&format!("{cma}[mapping]\nkind = \"ti-rproc-attach\"\n")),
        "mapping.kind = \"ti-rproc-attach\"",
        &["\"identity\" or \"offset\""],
    );
    has(
        &problems(&cma.replace("\"arm64-el0\"", "\"coherent\"")),
        "cache.mode = \"coherent\"",
        &["cacheable"],
    );
    has(
        &problems(&REAL.replace(mem, &format!("{mem}\ndevice_address = \"pagemap\""))),
        "memory.device_address",
        &["\"dma-heap\""],
    );

    let udb = REAL
        .replace(mem, "source = \"u-dma-buf\"\ndevice = \"udmabuf0\"")
        .replace("\"coherent\"", "\"u-dma-buf-sysfs\"");
    let b = Board::from_str(&udb).unwrap();
    assert_eq!(b.mapping, MappingSpec::Identity);
    assert_eq!(
        b.memory,
        MemorySpec::UDmaBuf {
            device: "udmabuf0".into(),
            size: None
        }
    );
    assert_eq!(b.cache.mode, CacheMaintenance::UDmaBufSysfs);
    assert!(b.to_string().contains("u-dma-buf /dev/udmabuf0"), "{b}");
    has(
        &problems(&udb.replace("device = \"udmabuf0\"", "")),
        "memory.device",
        &["missing", "udmabuf0"],
    );
    has(
        &problems(&udb.replace("\"udmabuf0\"", "\"../udmabuf0\"")),
        "memory.device",
        &["u-dma-buf device name"],
    );
    has(
        &problems(&format!(
            "{udb}[mapping]\nkind = \"vfio\"\ngroup = 1\niova = 0x100000\n"
        )),
        "mapping.kind = \"vfio\"",
        &["VFIO cannot pin"],
    );
    has(
        &problems(&REAL.replace("\"coherent\"", "\"u-dma-buf-sysfs\"")),
        "cache.mode = \"u-dma-buf-sysfs\"",
        &["needs memory.source = \"u-dma-buf\""],
    );
    has(
        &problems(&udb.replace("\"u-dma-buf-sysfs\"", "\"coherent\"")),
        "cache.mode = \"coherent\"",
        &["cacheable"],
    );
    has(
        &problems(&REAL.replace(mem, &format!("{mem}\ndevice = \"udmabuf0\""))),
        "memory.device",
        &["\"u-dma-buf\""],
    );
}

/// A fake u-dma-buf device (github.com/ikwzm/udmabuf): `/dev/udmabuf0` and the sysfs
/// attributes its u-dma-buf.c prints (`phys_addr` "%pad", `size` "%zu", `sync_mode` "%d").
fn fake_u_dma_buf(k: &FakeKernel, phys: &str, size: u64, sync_mode: u32) {
    let d = k.root().join("sys/class/u-dma-buf/udmabuf0");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("phys_addr"), format!("{phys}\n")).unwrap();
    std::fs::write(d.join("size"), format!("{size}\n")).unwrap();
    std::fs::write(d.join("sync_mode"), format!("{sync_mode}\n")).unwrap();
    std::fs::write(d.join("dma_coherent"), "0\n").unwrap();
    std::fs::write(k.root().join("dev/udmabuf0"), b"").unwrap();
}

/// `board check` on a u-dma-buf board reads the device's sysfs: its physical range (which
/// takes part in the overlap checks), a size larger than the device (and than the pool
/// needs), the "always" bit of
/// `sync_mode`, and a missing device (listing those that exist).
#[test]
fn check_u_dma_buf() {
    let k = fake_board();
    let udb = REAL
        .replace(
            "source = \"carveout\"\nreserved_memory = \"intercore-pool@a6000000\"",
            "source = \"u-dma-buf\"\ndevice = \"udmabuf0\"",
        )
        .replace("\"coherent\"", "\"u-dma-buf-sysfs\"");
    let b = Board::from_str(&udb).unwrap();
    let f = b.check(&env(&k, "aarch64"));
    let out = render(&f);
    assert!(
        f.iter()
            .any(|x| x.level == Level::Error && x.message.contains("u-dma-buf")),
        "no device: {out}"
    );
    fake_u_dma_buf(&k, "0x000000007c000000", 0x400_0000, 1);
    let f = b.check(&env(&k, "aarch64"));
    let out = render(&f);
    assert!(errors(&f).is_empty(), "{out}");
    assert!(
        out.contains("would map /dev/udmabuf0 cacheable: 0x7c000000+0x4000000"),
        "{out}"
    );
    assert!(out.contains("sync_for_device"), "{out}");
    fake_u_dma_buf(&k, "0x7c000000", 0x400_0000, 5);
    let f = b.check(&env(&k, "aarch64"));
    assert!(
        f.iter()
            .any(|x| x.level == Level::Error && x.message.contains("sync_mode is 5")),
        "{}",
        render(&f)
    );
    fake_u_dma_buf(&k, "0x7c000000", 0x100_0000, 1);
    let big = Board::from_str(&udb.replace(
        "device = \"udmabuf0\"",
        "device = \"udmabuf0\"\nsize = 0x2000000",
    ))
    .unwrap();
    let f = big.check(&env(&k, "aarch64"));
    assert!(
        f.iter()
            .any(|x| x.level == Level::Error && x.message.contains("larger than udmabuf0")),
        "{}",
        render(&f)
    );
    let other = Board::from_str(&udb.replace("\"udmabuf0\"", "\"udmabuf3\"")).unwrap();
    let f = other.check(&env(&k, "aarch64"));
    assert!(
        f.iter()
            .any(|x| x.level == Level::Error && x.message.contains("this system has: udmabuf0")),
        "{}",
        render(&f)
    );
}

/// A CMA heap with `device_address = "pagemap"`: the heap is looked for, and the
/// capability pagemap needs is reported (ok as root, a warning otherwise) — never an error
/// at check time, since `up` may run with other privileges.
#[test]
fn check_pagemap_heap() {
    let k = fake_board();
    std::fs::create_dir_all(k.root().join("dev/dma_heap")).unwrap();
    std::fs::write(k.root().join("dev/dma_heap/linux,cma"), b"").unwrap();
    let cma = REAL
        .replace(
            "source = \"carveout\"\nreserved_memory = \"intercore-pool@a6000000\"",
            "source = \"dma-heap\"\nheap = \"linux,cma\"\nsize = 0x2000000\ndevice_address = \"pagemap\"",
        )
        .replace("\"coherent\"", "\"arm64-el0\"");
    let f = Board::from_str(&cma).unwrap().check(&env(&k, "aarch64"));
    let out = render(&f);
    assert!(errors(&f).is_empty(), "{out}");
    assert!(out.contains("/proc/self/pagemap"), "{out}");
    assert!(out.contains("CAP_SYS_ADMIN"), "{out}");
    assert!(
        f.iter()
            .any(|x| x.level == Level::Warn && x.message.contains("VM_PFNMAP")),
        "{out}"
    );
}

/// A hugetlb pool: validated with an identity mapping by default, checked against this
/// host's /proc/meminfo (huge page size, free pages: an error only for a size that is not
/// a multiple of the huge page), with the pagemap capability reported.
#[test]
fn hugetlb_pool() {
    let k = fake_board();
    let huge = REAL
        .replace(
            "source = \"carveout\"\nreserved_memory = \"intercore-pool@a6000000\"",
            "source = \"hugetlb\"\nsize = 0x2000000",
        )
        .replace("\"coherent\"", "\"arm64-el0\"");
    let b = Board::from_str(&huge).unwrap();
    assert_eq!(b.mapping, MappingSpec::Identity);
    assert_eq!(b.memory, MemorySpec::Hugetlb { size: 0x200_0000 });
    assert!(b.to_string().contains("hugetlb memfd"), "{b}");
    let f = b.check(&env(&k, "aarch64"));
    let out = render(&f);
    assert!(errors(&f).is_empty(), "{out}");
    assert!(out.contains("huge page"), "{out}");
    assert!(out.contains("pagemap"), "{out}");
    let odd = Board::from_str(&huge.replace("0x2000000", "0x2001000")).unwrap();
    let f = odd.check(&env(&k, "aarch64"));
    assert!(
        f.iter()
            .any(|x| x.level == Level::Error && x.message.contains("huge page size")),
        "{}",
        render(&f)
    );
    has(
        &problems(&huge.replace("size = 0x2000000", "")),
        "memory.size",
        &["missing", "huge page"],
    );
    has(
        &problems(&format!(
            "{huge}[mapping]\nkind = \"vfio\"\ngroup = 1\niova = 0x100000\n"
        )),
        "mapping.kind = \"vfio\"",
        &["\"identity\" or \"offset\""],
    );
    has(
        &problems(&huge.replace("\"arm64-el0\"", "\"coherent\"")),
        "cache.mode = \"coherent\"",
        &["cacheable"],
    );
}
