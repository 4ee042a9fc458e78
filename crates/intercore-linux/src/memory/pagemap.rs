//! Physical addresses of mapped pages from `/proc/self/pagemap`, and the check that a
//! buffer is physically contiguous — the mainline route from a CMA dma-heap buffer to the
//! address a remote core without an IOMMU uses.
//!
//! `/proc/<pid>/pagemap` holds one little-endian 64-bit entry per virtual page, at file
//! offset `(vaddr / page_size) * 8`. Per the kernel's
//! Documentation/admin-guide/mm/pagemap.rst (and `pagemap_read` in fs/proc/task_mmu.c):
//! bits 0-54 are the page frame number when bit 63 ("page present") is set, bit 62 means
//! swapped (then bits 0-54 encode the swap entry, not a PFN); "since Linux 4.0 only users
//! with the CAP_SYS_ADMIN capability can get PFNs … starting from 4.2 the PFN field is
//! zeroed if the user does not have CAP_SYS_ADMIN". A zero PFN of a present page is
//! therefore read as "no CAP_SYS_ADMIN", never as physical page 0.
//!
//! **pagemap cannot see `VM_PFNMAP` mappings.** The page walker hands such a VMA to the
//! walk's `pte_hole` callback (mm/pagewalk.c, `walk_page_test`), so every entry reads "not
//! present" however often the page is touched. That is the case for a dma-buf heap's own
//! mmap on current mainline: the `system` heap maps with `remap_pfn_range`, and the CMA
//! heap inserts PFNs from its fault handler (`vmf_insert_pfn`, with `VM_PFNMAP` set in
//! `cma_heap_mmap`, since T.J. Mercier's 2024 patch "dma-buf: heaps: Don't track CMA
//! dma-buf pages under RssFile"; before it the CMA heap faulted in ordinary pages, which
//! pagemap shows). Seen in the QEMU guest of `scripts/vm-vfio-test.sh` (Linux 6.12): a
//! touched `system`-heap page reads `0x0080000000000000` (soft-dirty only). Such a
//! failure is reported as [`MemError::InvalidRequest`] naming `VM_PFNMAP`.
//!
//! What pagemap does show: ordinary and **hugetlb** pages. A hugetlbfs memfd
//! ([`MemfdRegion::create_hugetlb`](crate::MemfdRegion::create_hugetlb)) is cacheable,
//! physically contiguous within each huge page (2 MiB, or 1 GiB, on arm64 and x86-64 with
//! 4 KiB pages), never swapped, and its addresses come from here — the route DPDK's
//! "IOVA as PA" mode uses. A PFN is only worth knowing if it cannot change: hugetlb pages
//! stay put in normal operation (memory hot-remove, memory-failure handling and
//! `alloc_contig_range` users such as CMA can migrate them), while ordinary anonymous or
//! memfd pages can be migrated or swapped at any time: their addresses are reported here
//! but must not be handed to a device.

use super::*;
use std::os::unix::fs::FileExt;

/// Bit 63 of a pagemap entry: the page is present (pagemap.rst).
pub const PM_PRESENT: u64 = 1 << 63;
/// Bit 62 of a pagemap entry: the page is swapped (pagemap.rst).
pub const PM_SWAPPED: u64 = 1 << 62;
/// Bits 0-54 of a pagemap entry: the page frame number, if present (pagemap.rst).
pub const PM_PFN_MASK: u64 = (1 << 55) - 1;

const PAGEMAP_PERM: &str = "reading physical addresses needs CAP_SYS_ADMIN (run as root): without it the kernel zeroes every PFN in pagemap";
const PAGEMAP_MISSING: &str = "the kernel has no /proc/<pid>/pagemap (CONFIG_PROC_PAGE_MONITOR)";

/// Where the current process's pagemap is: `/proc/self/pagemap`.
pub fn own_pagemap() -> PathBuf {
    PathBuf::from("/proc/self/pagemap")
}

/// Decodes one pagemap entry of the page at virtual address `va`: its physical address.
fn entry_to_phys(pagemap: &Path, va: usize, entry: u64, page: usize) -> Result<u64, MemError> {
    if entry & PM_PRESENT == 0 {
        return Err(MemError::InvalidRequest(format!(
            "the page at {va:#x} is not present in {} (entry {entry:#018x}){}",
            pagemap.display(),
            if entry & PM_SWAPPED != 0 {
                ": it is swapped out, so it is not pinned memory a device may use"
            } else {
                ": not present although it was just read — the mapping is VM_PFNMAP (a dma-buf heap's or a driver's own mmap), which pagemap reports as a hole (mm/pagewalk.c); use a hugetlb memfd, the u-dma-buf driver or a carveout for a device address"
            }
        )));
    }
    let pfn = entry & PM_PFN_MASK;
    if pfn == 0 {
        return Err(MemError::PermissionDenied {
            path: pagemap.to_path_buf(),
            hint: PAGEMAP_PERM,
        });
    }
    pfn.checked_mul(page as u64)
        .ok_or_else(|| MemError::Malformed {
            path: pagemap.to_path_buf(),
            what: format!("PFN {pfn:#x} of the page at {va:#x} overflows a physical address"),
        })
}

/// The physical address of every page of `mem` (one per page, in order), read from the
/// pagemap file `pagemap` (normally [`own_pagemap`]). Each page is read once first, so a
/// lazily faulted mapping (the CMA heap's) has its pages present. `mem` must start on a
/// page.
pub fn phys_pages<M: SharedMemory + ?Sized>(pagemap: &Path, mem: &M) -> Result<Vec<u64>, MemError> {
    let page = page_size();
    let base = mem.as_ptr() as usize;
    if base % page != 0 || mem.is_empty() {
        return Err(MemError::InvalidRequest(format!(
            "a region at {base:#x} of {:#x} bytes: pagemap needs a non-empty page-aligned mapping",
            mem.len()
        )));
    }
    let pages = mem.len().div_ceil(page);
    // Fault every page in: an entry of a page never touched is "not present".
    for i in 0..pages {
        let _ = mem.load_u32(i * page, core::sync::atomic::Ordering::Relaxed);
    }
    let file = std::fs::File::open(pagemap)
        .map_err(|e| open_error(pagemap, e, PAGEMAP_MISSING, PAGEMAP_PERM))?;
    let mut raw = vec![0u8; pages * 8];
    let off = (base / page) as u64 * 8;
    file.read_exact_at(&mut raw, off)
        .map_err(|e| MemError::Os {
            op: format!(
                "reading {} entries at offset {off:#x} of {}",
                pages,
                pagemap.display()
            ),
            source: e,
            hint: "",
        })?;
    raw.chunks_exact(8)
        .enumerate()
        .map(|(i, c)| {
            let entry = u64::from_le_bytes(c.try_into().expect("8-byte chunk"));
            entry_to_phys(pagemap, base + i * page, entry, page)
        })
        .collect()
}

/// The physical address of the first byte of `mem`, after checking, page by page, that the
/// pages are physically contiguous (page `i` at `first + i * page_size`). A CMA heap buffer
/// is; a `system` heap buffer usually is not (it is built from chunks of up to 1 MiB), and
/// the error names the first break.
pub fn contiguous_phys_addr<M: SharedMemory + ?Sized>(
    pagemap: &Path,
    mem: &M,
) -> Result<u64, MemError> {
    let addrs = phys_pages(pagemap, mem)?;
    check_contiguous(&addrs, page_size()).map_err(MemError::InvalidRequest)
}

/// `addrs[0]` if `addrs[i] == addrs[0] + i * page` for every page, else where it breaks.
pub fn check_contiguous(addrs: &[u64], page: usize) -> Result<u64, String> {
    let first = *addrs
        .first()
        .ok_or_else(|| "no pages to check".to_string())?;
    for (i, &pa) in addrs.iter().enumerate() {
        let want = (i as u64)
            .checked_mul(page as u64)
            .and_then(|d| first.checked_add(d));
        if Some(pa) != want {
            return Err(format!(
                "the buffer is not physically contiguous: page {i} of {} is at {pa:#x}, not {:#x} (page 0 at {first:#x}); use a CMA heap (`linux,cma`, `reserved`) or a carveout heap, not `system`",
                addrs.len(),
                want.unwrap_or(0)
            ));
        }
    }
    Ok(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: usize = 4096;

    #[test]
    fn contiguous_pages_give_the_first_address() {
        assert_eq!(
            check_contiguous(&[0x8000_0000, 0x8000_1000, 0x8000_2000], P),
            Ok(0x8000_0000)
        );
        assert_eq!(check_contiguous(&[0x1000], P), Ok(0x1000));
    }

    #[test]
    fn a_break_names_the_page() {
        let e = check_contiguous(&[0x8000_0000, 0x8000_1000, 0x9000_0000], P).unwrap_err();
        assert!(
            e.contains("page 2 of 3") && e.contains("0x90000000") && e.contains("0x80002000"),
            "{e}"
        );
        // Same pages, wrong order: not contiguous either.
        assert!(check_contiguous(&[0x8000_1000, 0x8000_0000], P).is_err());
        assert!(check_contiguous(&[], P).is_err());
    }

    /// The entry layout of pagemap.rst: PFN in bits 0-54, present bit 63, swapped bit 62;
    /// a zeroed PFN means no CAP_SYS_ADMIN.
    #[test]
    fn entries_decode_as_pagemap_rst_says() {
        let p = Path::new("/proc/self/pagemap");
        assert_eq!(
            entry_to_phys(p, 0, PM_PRESENT | 0x12345, P).unwrap(),
            0x12345 * 4096
        );
        // Bits 55-61 (soft-dirty, exclusive, uffd-wp, file) do not leak into the PFN.
        assert_eq!(
            entry_to_phys(p, 0, PM_PRESENT | (0x7f << 55) | 7, P).unwrap(),
            7 * 4096
        );
        assert!(matches!(
            entry_to_phys(p, 0, PM_PRESENT, P),
            Err(MemError::PermissionDenied { .. })
        ));
        let e = entry_to_phys(p, 0x7000, PM_SWAPPED | 5, P)
            .unwrap_err()
            .to_string();
        assert!(e.contains("swapped") && e.contains("0x7000"), "{e}");
        let e = entry_to_phys(p, 0, 1 << 55, P).unwrap_err().to_string();
        assert!(e.contains("VM_PFNMAP"), "{e}");
    }

    /// A fake pagemap file (sparse, entries at the region's own virtual page numbers).
    #[test]
    fn phys_pages_reads_the_entries_of_the_region() {
        let page = page_size();
        let mem = PrivateRegion::new(3 * page).unwrap();
        let dir = std::env::temp_dir().join(format!("intercore-pagemap-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fake = dir.join("pagemap");
        let f = std::fs::File::create(&fake).unwrap();
        let vpn = mem.as_ptr() as u64 / page as u64;
        for (i, pfn) in [0x9_0000u64, 0x9_0001, 0x9_0002].iter().enumerate() {
            f.write_all_at(&(PM_PRESENT | pfn).to_le_bytes(), (vpn + i as u64) * 8)
                .unwrap();
        }
        assert_eq!(
            phys_pages(&fake, &mem).unwrap(),
            vec![
                0x9_0000 * page as u64,
                0x9_0001 * page as u64,
                0x9_0002 * page as u64
            ]
        );
        assert_eq!(
            contiguous_phys_addr(&fake, &mem).unwrap(),
            0x9_0000 * page as u64
        );
        f.write_all_at(&(PM_PRESENT | 0x5_0000).to_le_bytes(), (vpn + 1) * 8)
            .unwrap();
        let e = contiguous_phys_addr(&fake, &mem).unwrap_err().to_string();
        assert!(e.contains("page 1 of 3"), "{e}");
        // A file that ends before the region's entries: a read error naming the file.
        let short = dir.join("short");
        std::fs::write(&short, [0u8; 8]).unwrap();
        let e = phys_pages(&short, &mem).unwrap_err().to_string();
        assert!(e.contains("short"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The real pagemap: as root the pages of a private mapping are present with non-zero
    /// PFNs; without CAP_SYS_ADMIN the kernel zeroes them and the error says so.
    #[test]
    fn own_pagemap_for_real() {
        let mem = PrivateRegion::new(4 * page_size()).unwrap();
        // Written, so each page is a page of its own (a read maps the shared zero page).
        for i in 0..4 {
            mem.write(i * page_size(), &[i as u8 + 1]);
        }
        match phys_pages(&own_pagemap(), &mem) {
            Ok(pas) => {
                assert_eq!(pas.len(), 4);
                assert!(
                    pas.iter()
                        .all(|&pa| pa != 0 && pa % page_size() as u64 == 0)
                );
            }
            Err(MemError::PermissionDenied { hint, .. }) => {
                assert!(hint.contains("CAP_SYS_ADMIN"))
            }
            Err(e) => panic!("{e}"),
        }
    }
}
