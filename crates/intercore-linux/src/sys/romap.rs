//! [`ReadOnlyMap`]: a file's pages mapped `PROT_READ` from a descriptor opened `O_RDONLY`,
//! read with volatile loads. For looking at memory another party owns (`intercore
//! inspect` over `/dev/mem`) without any way to store into it.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::ptr::NonNull;
use std::sync::atomic::{Ordering, fence};

/// A read-only shared mapping of `len` bytes of a file from `offset`, unmapped on drop.
///
/// Why a mapping and not `pread`: on arm64, `read()` of `/dev/mem` refuses a `no-map`
/// reserved-memory range (drivers/char/mem.c `read_mem` → `valid_phys_addr_range`, which
/// arch/arm64/mm/mmap.c restricts to memblock regions without `MEMBLOCK_NOMAP`), while
/// `mmap` of the same range is allowed (`valid_mmap_phys_addr_range`): remote-core
/// carveouts are `no-map`. The pages may be Device memory (`phys_mem_access_prot`), so
/// every load is naturally aligned: 4-byte words where offset and length allow, bytes
/// otherwise.
#[derive(Debug)]
pub struct ReadOnlyMap {
    /// The page-aligned start of the mapping.
    map: NonNull<u8>,
    /// Length of the mapping (`skip + len`).
    map_len: usize,
    /// Bytes between the mapping's start and `offset`.
    skip: usize,
    len: usize,
}

// SAFETY: the mapping is owned by this value and only ever read, through raw volatile
// loads that create no references; reading from several threads is fine.
unsafe impl Send for ReadOnlyMap {}
// SAFETY: as above.
unsafe impl Sync for ReadOnlyMap {}

impl ReadOnlyMap {
    /// Opens `path` `O_RDONLY` and maps `len` bytes from `offset` with `PROT_READ` and
    /// `MAP_SHARED` (the live pages, not a copy). A regular file must hold the whole
    /// range (a page beyond its end would fault on access); a device is the kernel's to
    /// refuse.
    pub fn open(path: &Path, offset: u64, len: usize) -> io::Result<Self> {
        if len == 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "empty mapping"));
        }
        let file = File::open(path)?;
        let meta = file.metadata()?;
        let end = offset.checked_add(len as u64).ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "offset + length overflows")
        })?;
        if meta.is_file() && end > meta.len() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "{:#x}..{end:#x} lies beyond the file's end ({:#x})",
                    offset,
                    meta.len()
                ),
            ));
        }
        let page = super::page_size() as u64;
        let start = offset - offset % page;
        let skip = (offset - start) as usize;
        let map_len = skip.checked_add(len).ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "mapping length overflows")
        })?;
        let off = libc::off_t::try_from(start).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("offset {start:#x} does not fit this platform's off_t"),
            )
        })?;
        // SAFETY: a new read-only mapping at an address the kernel picks (it replaces
        // nothing); the kernel validates the descriptor, the length and the page-aligned
        // offset. The descriptor may close after the call: the mapping keeps the file.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                off,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let map =
            NonNull::new(p.cast::<u8>()).ok_or_else(|| io::Error::other("mmap returned null"))?;
        Ok(Self {
            map,
            map_len,
            skip,
            len,
        })
    }

    /// Bytes mapped from `offset`.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it is empty (never: an empty mapping cannot be made).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Copies `dst.len()` bytes from `off` (relative to the `offset` given to
    /// [`open`](Self::open)), then an Acquire fence: what is read after an index is not
    /// older than the index. A range outside the mapping is an error.
    pub fn read(&self, off: usize, dst: &mut [u8]) -> io::Result<()> {
        if off.checked_add(dst.len()).is_none_or(|e| e > self.len) {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let at = self.skip + off;
        let mut i = 0;
        while i < dst.len() {
            let a = at + i;
            if a % 4 == 0 && dst.len() - i >= 4 {
                // SAFETY: `a..a + 4` lies inside the live mapping (checked above:
                // `skip + off + dst.len() <= map_len`) and is 4-aligned (the mapping is
                // page-aligned); a volatile load creates no reference.
                let w = unsafe { self.map.as_ptr().add(a).cast::<u32>().read_volatile() };
                dst[i..i + 4].copy_from_slice(&w.to_ne_bytes());
                i += 4;
            } else {
                // SAFETY: byte `a` lies inside the live mapping (as above).
                dst[i] = unsafe { self.map.as_ptr().add(a).read_volatile() };
                i += 1;
            }
        }
        // Acquire: later reads (the entries an index covers) are not satisfied earlier.
        fence(Ordering::Acquire);
        Ok(())
    }
}

impl Drop for ReadOnlyMap {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly the range this value mapped and owns; no reference into
        // it exists.
        unsafe { libc::munmap(self.map.as_ptr().cast(), self.map_len) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file's bytes at an unaligned offset read back through the mapping, including
    /// unaligned and odd-length reads; a range past the mapping or the file is an error;
    /// the descriptor is read-only, so the file's bytes cannot change through it.
    #[test]
    fn reads_a_file_range_read_only() {
        let d = std::env::temp_dir().join(format!("intercore-romap-{}", std::process::id()));
        let bytes: Vec<u8> = (0..3 * 4096u32).map(|i| (i * 7 + 3) as u8).collect();
        std::fs::write(&d, &bytes).unwrap();
        let m = ReadOnlyMap::open(&d, 4096 + 5, 5000).unwrap();
        assert_eq!(m.len(), 5000);
        let mut out = vec![0u8; 5000];
        m.read(0, &mut out).unwrap();
        assert_eq!(out, bytes[4101..9101]);
        let mut w = [0u8; 7];
        m.read(3, &mut w).unwrap();
        assert_eq!(w, bytes[4104..4111]);
        assert!(m.read(4999, &mut [0u8; 2]).is_err());
        assert!(m.read(usize::MAX, &mut [0u8; 2]).is_err());
        assert!(ReadOnlyMap::open(&d, 3 * 4096 - 10, 11).is_err());
        assert!(ReadOnlyMap::open(&d, 0, 0).is_err());
        drop(m);
        assert_eq!(std::fs::read(&d).unwrap(), bytes);
        std::fs::remove_file(&d).unwrap();
    }
}
