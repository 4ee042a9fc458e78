//! Unit tests of the memory sources.

use super::devtree::*;
use super::udmabuf::*;
use super::uio::*;
use super::*;

fn test_memfd(seals: i32, sealing: bool) -> OwnedFd {
    let name = CString::new("intercore-einval").unwrap();
    let flags = libc::MFD_CLOEXEC | if sealing { libc::MFD_ALLOW_SEALING } else { 0 };
    let fd = sys::fd::memfd_create(&name, flags).unwrap();
    sys::fd::ftruncate(fd.as_fd(), 4096).unwrap();
    if seals != 0 {
        sys::fd::add_seals(fd.as_fd(), seals).unwrap();
    }
    fd
}

/// The EINVAL diagnosis names the rule of drivers/dma-buf/udmabuf.c that a memfd
/// breaks: no F_SEAL_SHRINK, F_SEAL_WRITE, above size_limit_mb (read from sysfs, here a
/// fake tree), smaller than asked.
#[test]
fn udmabuf_einval_names_the_rule() {
    let dir = std::env::temp_dir().join(format!("intercore-einval-{}", std::process::id()));
    let roots = SysRoots::under(&dir);
    let (why, _) = udmabuf_einval(&roots, test_memfd(0, true).as_fd(), 4096);
    assert!(why.contains("F_SEAL_SHRINK"), "{why}");
    let (why, _) = udmabuf_einval(&roots, test_memfd(0, false).as_fd(), 4096);
    assert!(why.contains("F_SEAL_SHRINK"), "not sealable: {why}");
    let w = test_memfd(libc::F_SEAL_SHRINK | libc::F_SEAL_WRITE, true);
    let (why, detail) = udmabuf_einval(&roots, w.as_fd(), 4096);
    assert!(
        why.contains("F_SEAL_WRITE") && detail.contains("seals"),
        "{why}"
    );
    let ok = test_memfd(libc::F_SEAL_SHRINK, true);
    let (why, _) = udmabuf_einval(&roots, ok.as_fd(), 8192);
    assert!(why.contains("smaller"), "{why}");
    let p = dir.join("sys/module/udmabuf/parameters");
    std::fs::create_dir_all(&p).unwrap();
    std::fs::write(p.join("size_limit_mb"), "1\n").unwrap();
    let (why, detail) = udmabuf_einval(&roots, ok.as_fd(), 2 << 20);
    assert!(
        why.contains("size_limit_mb") && detail.contains("= 1"),
        "{why} {detail}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Sizes above the cap are refused before any device node is opened (here none
/// exists), and the refusal names the cap; DEFAULT_MAX_ALLOC applies without one.
#[test]
fn allocation_cap_comes_first() {
    let dir = std::env::temp_dir().join(format!("intercore-cap-{}", std::process::id()));
    let roots = SysRoots::under(&dir);
    let e = DmaHeapRegion::alloc_in(&roots, "system", 1 << 40).unwrap_err();
    assert!(matches!(e, MemError::InvalidRequest(_)), "{e:?}");
    assert!(e.to_string().contains("cap of 0x10000000"), "{e}");
    let e = DmaHeapRegion::alloc_capped(&roots, "system", 8192, 4096).unwrap_err();
    assert!(e.to_string().contains("cap of 0x1000"), "{e}");
    let e = UdmabufRegion::create_capped(&roots, 8192, 4096).unwrap_err();
    assert!(e.to_string().contains("cap of 0x1000"), "{e}");
    // Under the cap, the missing node is what is reported.
    assert!(matches!(
        DmaHeapRegion::alloc_capped(&roots, "system", 4096, 4096),
        Err(MemError::Missing { .. })
    ));
}

/// `reg` decoding follows the device-tree spec: big-endian cells, `#address-cells`
/// then `#size-cells` per entry, one or two cells per number.
#[test]
fn reg_cells_decode() {
    let two_two = [
        0, 0, 0, 0, 0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, 0, 0, // a0000000 + 100000
        0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, // 8_00000000 + 1_00000000
    ];
    assert_eq!(
        parse_reg(&two_two, 2, 2).unwrap(),
        [(0xa000_0000, 0x10_0000), (0x8_0000_0000, 0x1_0000_0000)]
    );
    let one_one = [0x9c, 0, 0, 0, 0, 0x80, 0, 0];
    assert_eq!(
        parse_reg(&one_one, 1, 1).unwrap(),
        [(0x9c00_0000, 0x80_0000)]
    );
    let two_one = [0, 0, 0, 1, 0, 0, 0x10, 0, 0, 0, 0x20, 0];
    assert_eq!(
        parse_reg(&two_one, 2, 1).unwrap(),
        [(0x1_0000_1000, 0x2000)]
    );
}

/// Malformed `reg` values are refused with a message naming the problem.
#[test]
fn reg_cells_malformed() {
    assert!(
        parse_reg(&[0; 12], 2, 2)
            .unwrap_err()
            .contains("16-byte entry")
    );
    assert!(parse_reg(&[], 2, 2).unwrap_err().contains("0 bytes"));
    assert!(
        parse_reg(&[0; 12], 3, 0)
            .unwrap_err()
            .contains("#address-cells = 3")
    );
    assert!(
        parse_reg(&[0; 8], 1, 0)
            .unwrap_err()
            .contains("#size-cells = 0")
    );
}

/// UIO prints addresses and sizes as `0x%pa` (zero-padded hex); decimal is accepted.
#[test]
fn sysfs_numbers() {
    let p = Path::new("x");
    assert_eq!(
        parse_sysfs_u64(p, "0x00000000a0000000\n").unwrap(),
        0xa000_0000
    );
    assert_eq!(parse_sysfs_u64(p, "4096").unwrap(), 4096);
    assert!(matches!(
        parse_sysfs_u64(p, "0xzz"),
        Err(MemError::Malformed { .. })
    ));
    assert!(matches!(
        parse_sysfs_u64(p, ""),
        Err(MemError::Malformed { .. })
    ));
}

/// Errors convert to `io::Error` with a matching kind and the full message.
#[test]
fn errors_convert_to_io() {
    let e: io::Error = MemError::Missing {
        path: "/dev/udmabuf".into(),
        hint: UDMABUF_MISSING,
    }
    .into();
    assert_eq!(e.kind(), io::ErrorKind::NotFound);
    assert!(e.to_string().contains("/dev/udmabuf"));
    assert!(e.to_string().contains("CONFIG_UDMABUF"));
    let e: io::Error = MemError::PermissionDenied {
        path: "/dev/udmabuf".into(),
        hint: UDEV_HINT,
    }
    .into();
    assert_eq!(e.kind(), io::ErrorKind::PermissionDenied);
    assert!(e.to_string().contains("udev rule"));
}

/// A hugetlb memfd: mapped when huge pages are free; otherwise the error says how to
/// reserve them (this host's /proc/meminfo decides which branch must hold).
#[test]
fn hugetlb_memfd_maps_or_names_nr_hugepages() {
    let free = std::fs::read_to_string("/proc/meminfo")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("HugePages_Free:"))
        .map(|v| v.trim().parse::<u64>().unwrap())
        .unwrap_or(0);
    match MemfdRegion::create_hugetlb("intercore-huge", 2 << 20) {
        Ok(m) => {
            assert!(free > 0, "mapped with no free huge pages?");
            assert_eq!(intercore::SharedMemory::len(&m), 2 << 20);
        }
        // No free huge pages: the error says how to reserve them. Under qemu-user (the
        // aarch64 run) the emulator picks a mapping address hugetlbfs refuses (EINVAL): the
        // error must say so rather than be a bare "Invalid argument".
        Err(e)
            if e.raw_os_error() == Some(libc::EINVAL)
                || e.kind() == io::ErrorKind::InvalidInput =>
        {
            assert!(e.to_string().contains("huge page size"), "{e}");
        }
        Err(e) => {
            assert_eq!(free, 0, "huge pages are free, yet: {e}");
            assert!(e.to_string().contains("nr_hugepages"), "{e}");
        }
    }
}
