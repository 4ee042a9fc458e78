//! Shared memory backed by a memfd, and process-private anonymous memory.

use crate::sys::{self, Mmap, OwnsMmap};
use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

/// A memfd mapped read/write and shared: the simulated SoC's "DRAM carveout". Another
/// process maps the same pages through the file descriptor.
#[derive(Debug)]
pub struct MemfdRegion {
    fd: OwnedFd,
    map: Mmap,
}

impl MemfdRegion {
    /// Creates a zero-filled memfd of `len` bytes (`MFD_CLOEXEC | MFD_ALLOW_SEALING`) and maps it.
    pub fn create(name: &str, len: usize) -> io::Result<Self> {
        let cname = CString::new(name)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "name has a NUL"))?;
        let fd = sys::fd::memfd_create(&cname, libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING)?;
        sys::fd::ftruncate(fd.as_fd(), len as u64)?;
        Self::map(fd, len)
    }

    /// Creates a memfd on hugetlbfs (`MFD_HUGETLB`, the default huge page size: 2 MiB on
    /// x86-64 and on arm64 with 4 KiB pages) of `len` bytes — a multiple of the huge page
    /// size — and maps it shared. Its pages are cacheable, physically contiguous within
    /// each huge page and never swapped, and `/proc/self/pagemap` shows their physical
    /// addresses (as root): with [`contiguous_phys_addr`](crate::contiguous_phys_addr),
    /// the mainline route to a cacheable buffer at a known address for a core without an
    /// IOMMU (memfd_create(2), Documentation/admin-guide/mm/hugetlbpage.rst). The huge
    /// pages must be reserved first (`vm.nr_hugepages`, or `hugepages=` on the kernel
    /// command line); without them the mapping fails with `ENOMEM` and the error says so.
    pub fn create_hugetlb(name: &str, len: usize) -> io::Result<Self> {
        let cname = CString::new(name)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "name has a NUL"))?;
        let fd =
            sys::fd::memfd_create(&cname, libc::MFD_CLOEXEC | libc::MFD_HUGETLB).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("memfd_create(MFD_HUGETLB): {e} (the kernel needs CONFIG_HUGETLBFS)"),
                )
            })?;
        sys::fd::ftruncate(fd.as_fd(), len as u64).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("sizing a hugetlb memfd to {len:#x} bytes: {e} (the size must be a multiple of the huge page size, see Hugepagesize in /proc/meminfo)"),
            )
        })?;
        Self::map(fd, len).map_err(|e| {
            if e.raw_os_error() == Some(libc::ENOMEM) {
                io::Error::new(
                    e.kind(),
                    format!("mapping a {len:#x}-byte hugetlb memfd: {e}: not enough free huge pages (reserve them: `echo N > /proc/sys/vm/nr_hugepages`, or hugepages=N on the kernel command line; see HugePages_Free in /proc/meminfo)"),
                )
            } else if e.raw_os_error() == Some(libc::EINVAL) {
                // hugetlbfs refuses a mapping whose address or length is not a multiple of
                // the huge page size (fs/hugetlbfs/inode.c, hugetlbfs_file_mmap); an emulator
                // such as qemu-user chooses the address itself and meets this.
                io::Error::new(
                    e.kind(),
                    format!("mapping a {len:#x}-byte hugetlb memfd: {e}: address or length not a multiple of the huge page size (Hugepagesize in /proc/meminfo)"),
                )
            } else {
                io::Error::new(e.kind(), format!("mapping a {len:#x}-byte hugetlb memfd: {e}"))
            }
        })
    }

    /// Maps a memfd received from another process; its size is the file's size.
    pub fn from_fd(fd: OwnedFd) -> io::Result<Self> {
        let len = usize::try_from(sys::fd::file_size(fd.as_fd())?)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "memfd too large"))?;
        Self::map(fd, len)
    }

    fn map(fd: OwnedFd, len: usize) -> io::Result<Self> {
        if len == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "empty shared region",
            ));
        }
        let map = Mmap::shared(fd.as_fd(), len, 0)?;
        Ok(Self { fd, map })
    }

    /// The memfd, to pass to the peer.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsFd for MemfdRegion {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd()
    }
}

impl OwnsMmap for MemfdRegion {
    fn mmap(&self) -> &Mmap {
        &self.map
    }
    /// Page-cache (memfd/shmem) pages: Normal memory, so copies may use `memcpy`.
    fn mapping_is_device_memory(&self) -> bool {
        false
    }
}

/// Process-private anonymous memory (`MAP_PRIVATE | MAP_ANONYMOUS`), zero-filled and
/// populated lazily: the simulator's private cache images live here.
#[derive(Debug)]
pub struct PrivateRegion {
    map: Mmap,
}

impl PrivateRegion {
    /// `len` bytes of zeroed private memory.
    pub fn new(len: usize) -> io::Result<Self> {
        if len == 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "empty region"));
        }
        Ok(Self {
            map: Mmap::anonymous(len)?,
        })
    }
}

impl OwnsMmap for PrivateRegion {
    fn mmap(&self) -> &Mmap {
        &self.map
    }
    /// Anonymous pages: Normal memory, so copies may use `memcpy`.
    fn mapping_is_device_memory(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use intercore::SharedMemory;
    use std::sync::atomic::Ordering;

    /// Two mappings of one memfd see each other's writes (MAP_SHARED), which is what the
    /// simulated SoC relies on across processes.
    #[test]
    fn two_mappings_share_pages() {
        let a = MemfdRegion::create("intercore-test", 8192).unwrap();
        let b = MemfdRegion::from_fd(a.fd().try_clone_to_owned().unwrap()).unwrap();
        assert_eq!(b.len(), 8192);
        a.store_u32(4096, 0xdead_beef, Ordering::Release);
        assert_eq!(b.load_u32(4096, Ordering::Acquire), 0xdead_beef);
        b.write(10, b"hello");
        let mut out = [0u8; 5];
        a.read(10, &mut out);
        assert_eq!(&out, b"hello");
    }

    /// An access past the end is refused (a panic naming the bug), never a stray access.
    /// memfd and anonymous pages are Normal memory (copies may use `memcpy`); a bare
    /// mapping, which may be of `/dev/mem` or UIO, is treated as Device memory.
    #[test]
    fn memory_kinds() {
        assert!(
            !MemfdRegion::create("intercore-test", 4096)
                .unwrap()
                .device_memory()
        );
        assert!(!PrivateRegion::new(4096).unwrap().device_memory());
        assert!(crate::sys::Mmap::anonymous(4096).unwrap().device_memory());
    }

    #[test]
    #[should_panic(expected = "outside")]
    fn out_of_range_access_panics() {
        let a = MemfdRegion::create("intercore-test", 4096).unwrap();
        a.load_u16(4096, Ordering::Relaxed);
    }
}
