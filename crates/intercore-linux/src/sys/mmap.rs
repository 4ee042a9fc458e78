//! [`Mmap`]: the one owned memory mapping of this crate (and of `intercore-vhost`), and the
//! one place that vouches for `SharedMemory` over such mappings.

use intercore::SharedMemory;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::ptr::NonNull;

/// A read/write memory mapping this value owns, unmapped when it drops.
///
/// It implements [`SharedMemory`]: the mapping is page-aligned, lives exactly as long as
/// the value, and no Rust reference into it is ever made (access goes through the
/// core's atomic and raw-copy accessors).
#[derive(Debug)]
pub struct Mmap {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain memory owned by this value; all access goes through the
// `SharedMemory` accessors (atomics and raw copies) and the core's views, which are valid
// from any thread.
unsafe impl Send for Mmap {}
// SAFETY: as above; `&Mmap` exposes no references into the mapping.
unsafe impl Sync for Mmap {}

fn empty() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, "empty mapping")
}

fn file_offset(offset: u64) -> io::Result<libc::off_t> {
    libc::off_t::try_from(offset).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("offset {offset:#x} does not fit this platform's off_t"),
        )
    })
}

impl Mmap {
    /// A fresh mapping of `len` bytes at an address the kernel chooses (so no existing
    /// mapping is replaced).
    fn new(len: usize, flags: libc::c_int, fd: libc::c_int, off: libc::off_t) -> io::Result<Self> {
        if len == 0 {
            return Err(empty());
        }
        // SAFETY: a new mapping at an address the kernel picks: it replaces nothing, and
        // the kernel validates `fd` and `off`.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                flags,
                fd,
                off,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr =
            NonNull::new(p.cast::<u8>()).ok_or_else(|| io::Error::other("mmap returned null"))?;
        Ok(Self { ptr, len })
    }

    /// `mmap(len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, offset)`: the file's pages,
    /// shared with every other mapping of them.
    pub fn shared(fd: BorrowedFd<'_>, len: usize, offset: u64) -> io::Result<Self> {
        Self::new(len, libc::MAP_SHARED, fd.as_raw_fd(), file_offset(offset)?)
    }

    /// `len` bytes of zeroed, process-private anonymous memory, populated lazily.
    pub fn anonymous(len: usize) -> io::Result<Self> {
        Self::new(len, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1, 0)
    }

    /// As [`anonymous`](Self::anonymous), without reserving swap (`MAP_NORESERVE`): a
    /// reservation of address space whose parts [`map_shared_at`](Self::map_shared_at)
    /// then replaces.
    pub fn reserve(len: usize) -> io::Result<Self> {
        Self::new(
            len,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    }

    /// Replaces bytes `at..at + len` of this mapping with a `MAP_SHARED` mapping of `len`
    /// bytes of `fd` from `offset` (`MAP_FIXED`), so several files can sit side by side in
    /// one contiguous range. `at` and `len` must be page multiples inside the mapping.
    ///
    /// Takes `&mut self`: nothing can be reading the pages being replaced.
    pub fn map_shared_at(
        &mut self,
        at: usize,
        len: usize,
        fd: BorrowedFd<'_>,
        offset: u64,
    ) -> io::Result<()> {
        let page = super::page_size();
        if len == 0 {
            return Err(empty());
        }
        if at % page != 0 || len % page != 0 || at.checked_add(len).is_none_or(|e| e > self.len) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{len:#x} bytes at {at:#x} are not whole pages inside the {:#x}-byte mapping",
                    self.len
                ),
            ));
        }
        let off = file_offset(offset)?;
        // SAFETY: `at..at + len` is inside our own mapping (checked above) and page-aligned,
        // so MAP_FIXED replaces only pages this value owns; `&mut self` excludes any access
        // to them during the call, and the new pages stay inside the range `drop` unmaps.
        let p = unsafe {
            libc::mmap(
                self.ptr.as_ptr().add(at).cast(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_FIXED,
                fd.as_raw_fd(),
                off,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// The first byte of the mapping.
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// Its length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it is empty (never: an empty mapping cannot be made).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Drop for Mmap {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly the range this value mapped (and owns); no reference
        // into it exists (the `SharedMemory` contract), and borrows of `self` have ended.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

// SAFETY: `ptr..ptr + len` is a live read/write mapping for as long as the value lives
// (unmapped only in `drop`), page-aligned (so 8-aligned), and this type creates no
// references into it.
unsafe impl SharedMemory for Mmap {
    fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }
    fn len(&self) -> usize {
        self.len
    }
}

/// A type of this crate whose memory is one [`Mmap`] it owns, set when the value is made
/// and never replaced. [`SharedMemory`] for these types is implemented below, once, by
/// forwarding to that mapping.
pub(crate) trait OwnsMmap {
    /// The mapping: always the same one for a given value.
    fn mmap(&self) -> &Mmap;
    /// [`SharedMemory::device_memory`]: true (aligned copies) unless the type knows its
    /// pages are Normal memory. On arm64, `/dev/mem` maps a no-map pfn with
    /// `pgprot_noncached` (arch/arm64/mm/mmu.c, `phys_mem_access_prot`), and UIO maps
    /// physical regions with `pgprot_noncached` too (drivers/uio/uio.c,
    /// `uio_mmap_physical`); arch/arm64/include/asm/pgtable.h defines that as
    /// `MT_DEVICE_nGnRnE`.
    fn mapping_is_device_memory(&self) -> bool {
        true
    }
}

macro_rules! shared_memory_via_mmap {
    ($($(#[$attr:meta])* $t:ty),* $(,)?) => {$(
        $(#[$attr])*
        // SAFETY: forwards to the `Mmap` the value owns from construction to drop (the
        // contract of `OwnsMmap`, which each of these types keeps by holding it in a
        // private field it never reassigns), so the mapping's guarantees hold for as long
        // as the value lives.
        unsafe impl SharedMemory for $t {
            fn as_ptr(&self) -> *mut u8 {
                OwnsMmap::mmap(self).as_ptr()
            }
            fn len(&self) -> usize {
                OwnsMmap::mmap(self).len()
            }
            fn device_memory(&self) -> bool {
                OwnsMmap::mapping_is_device_memory(self)
            }
        }
    )*};
}

shared_memory_via_mmap!(
    crate::memory::MemfdRegion,
    crate::memory::PrivateRegion,
    crate::memory::UdmabufRegion,
    crate::memory::DmaHeapRegion,
    crate::memory::PhysCarveout,
    crate::memory::UDmaBufRegion,
    crate::memory::GuestMemory,
);

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    /// Two files mapped side by side in one reservation: each range shows its own file,
    /// and a range outside the mapping or not on pages is refused.
    #[test]
    fn files_side_by_side_in_a_reservation() {
        let page = crate::sys::page_size();
        let a = crate::MemfdRegion::create("mmap-a", page).unwrap();
        let b = crate::MemfdRegion::create("mmap-b", page).unwrap();
        a.store_u32(0, 0xaaaa, Ordering::Relaxed);
        b.store_u32(0, 0xbbbb, Ordering::Relaxed);
        let mut m = Mmap::reserve(3 * page).unwrap();
        m.map_shared_at(0, page, a.fd(), 0).unwrap();
        m.map_shared_at(page, page, b.fd(), 0).unwrap();
        assert_eq!(m.load_u32(0, Ordering::Relaxed), 0xaaaa);
        assert_eq!(m.load_u32(page, Ordering::Relaxed), 0xbbbb);
        assert_eq!(
            m.load_u32(2 * page, Ordering::Relaxed),
            0,
            "reservation is zeroed"
        );
        m.store_u32(page + 8, 7, Ordering::Relaxed);
        assert_eq!(b.load_u32(8, Ordering::Relaxed), 7, "MAP_SHARED");
        assert!(m.map_shared_at(2 * page, 2 * page, a.fd(), 0).is_err());
        assert!(m.map_shared_at(1, page, a.fd(), 0).is_err());
        assert!(Mmap::anonymous(0).is_err());
    }
}
