//! Shared memory backed by a memfd.

use crate::sys::cvt;
use intercore::SharedMemory;
use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;

/// A memfd mapped read/write and shared: the simulated SoC's "DRAM carveout". Another
/// process maps the same pages through the file descriptor.
#[derive(Debug)]
pub struct MemfdRegion {
    fd: OwnedFd,
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain shared memory; all access goes through the `SharedMemory`
// accessors (atomics and raw copies), which are safe to use from any thread.
unsafe impl Send for MemfdRegion {}
// SAFETY: as above; `&MemfdRegion` exposes no references into the mapping.
unsafe impl Sync for MemfdRegion {}

impl MemfdRegion {
    /// Creates a zero-filled memfd of `len` bytes (`MFD_CLOEXEC | MFD_ALLOW_SEALING`) and maps it.
    pub fn create(name: &str, len: usize) -> io::Result<Self> {
        let cname = CString::new(name)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "name has a NUL"))?;
        // SAFETY: `cname` is a valid NUL-terminated string; flags are plain integers.
        let fd = cvt(unsafe {
            libc::memfd_create(cname.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING)
        })?;
        // SAFETY: `fd` was just returned by memfd_create and is owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: ftruncate on a descriptor we own.
        cvt(unsafe { libc::ftruncate(fd.as_raw_fd(), len as libc::off_t) })?;
        Self::map(fd, len)
    }

    /// Maps a memfd received from another process; its size is the file's size.
    pub fn from_fd(fd: OwnedFd) -> io::Result<Self> {
        // SAFETY: an all-zero `stat` is a valid value to be overwritten by fstat.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: `st` is a valid, writable stat buffer and `fd` is open.
        cvt(unsafe { libc::fstat(fd.as_raw_fd(), &mut st) })?;
        Self::map(fd, st.st_size as usize)
    }

    fn map(fd: OwnedFd, len: usize) -> io::Result<Self> {
        if len == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "empty shared region",
            ));
        }
        // SAFETY: a fresh shared mapping of `len` bytes of an open file; the kernel picks
        // the address, so no existing mapping is replaced.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr =
            NonNull::new(p.cast::<u8>()).ok_or_else(|| io::Error::other("mmap returned null"))?;
        Ok(Self { fd, ptr, len })
    }

    /// The memfd, to pass to the peer.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

// SAFETY: `ptr..ptr+len` is a live MAP_SHARED mapping until `drop` unmaps it, page-aligned
// (so 8-aligned), and this type never hands out references into it.
unsafe impl SharedMemory for MemfdRegion {
    fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }
    fn len(&self) -> usize {
        self.len
    }
}

impl Drop for MemfdRegion {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly the mapping created in `map`; no references into it
        // outlive `self` (borrows of the region end before it can be dropped).
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
    #[test]
    #[should_panic(expected = "outside")]
    fn out_of_range_access_panics() {
        let a = MemfdRegion::create("intercore-test", 4096).unwrap();
        a.load_u16(4096, Ordering::Relaxed);
    }
}

/// Process-private anonymous memory (`MAP_PRIVATE | MAP_ANONYMOUS`), zero-filled and
/// populated lazily: the simulator's private cache images live here.
#[derive(Debug)]
pub struct PrivateRegion {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: plain private memory; all access goes through the `SharedMemory` accessors or the
// views the core makes from ranges it owns.
unsafe impl Send for PrivateRegion {}
// SAFETY: as above.
unsafe impl Sync for PrivateRegion {}

impl PrivateRegion {
    /// `len` bytes of zeroed private memory.
    pub fn new(len: usize) -> io::Result<Self> {
        if len == 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "empty region"));
        }
        // SAFETY: a fresh anonymous private mapping; the kernel chooses the address.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr =
            NonNull::new(p.cast::<u8>()).ok_or_else(|| io::Error::other("mmap returned null"))?;
        Ok(Self { ptr, len })
    }
}

// SAFETY: `ptr..ptr+len` is a live private mapping until `drop`, page-aligned, and this type
// hands out no references into it.
unsafe impl SharedMemory for PrivateRegion {
    fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }
    fn len(&self) -> usize {
        self.len
    }
}

impl Drop for PrivateRegion {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly the mapping made in `new`; borrows of it end before drop.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}
