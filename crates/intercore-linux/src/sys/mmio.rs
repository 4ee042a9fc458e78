//! [`MmioRegs`]: 32-bit device registers inside a [`Mmap`], read and written with volatile
//! accesses only.

use super::Mmap;
use std::io;

/// A block of 32-bit registers: `len` bytes from byte `base` of a mapping this value owns
/// (a UIO map of a mailbox, or a memfd standing in for one in tests).
///
/// Every access is one aligned, volatile 32-bit load or store of a little-endian register,
/// as the kernel's `readl`/`writel` are: never merged, split, elided or reordered with other volatile
/// accesses by the compiler. No reference into the mapping is ever made. An offset outside
/// the block or not 4-aligned is refused with an error, never accessed.
#[derive(Debug)]
pub struct MmioRegs {
    map: Mmap,
    base: usize,
    len: usize,
}

impl MmioRegs {
    /// The registers at bytes `base..base + len` of `map` (`base`: where the device's
    /// block starts inside the mapping, a UIO map's `offset`). `base` must be 4-aligned
    /// and the range inside the mapping.
    pub fn new(map: Mmap, base: usize, len: usize) -> io::Result<Self> {
        if base % 4 != 0 || base.checked_add(len).is_none_or(|end| end > map.len()) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{len:#x} register bytes at {base:#x} are not 4-aligned inside the {:#x}-byte mapping",
                    map.len()
                ),
            ));
        }
        Ok(Self { map, base, len })
    }

    /// The block's length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the block is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn at(&self, off: usize) -> io::Result<*mut u32> {
        if off % 4 != 0 || off.checked_add(4).is_none_or(|end| end > self.len) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "register offset {off:#x} is not a 4-aligned word inside the {:#x}-byte block",
                    self.len
                ),
            ));
        }
        // `base + off + 4 <= base + len <= map.len()` (checked here and in `new`), so the
        // pointer stays inside the mapping; wrapping_add keeps this computation safe.
        Ok(self
            .map
            .as_ptr()
            .wrapping_add(self.base + off)
            .cast::<u32>())
    }

    /// One volatile 32-bit load of the register at byte `off`.
    pub fn read32(&self, off: usize) -> io::Result<u32> {
        let p = self.at(off)?;
        // SAFETY: `p` is 4-aligned (the mapping is page-aligned, `base` and `off` are
        // multiples of 4) and its 4 bytes lie inside the live mapping this value owns
        // (`at` checked the bounds); the mapping is never referenced as Rust data, so a
        // volatile load through a raw pointer aliases nothing.
        Ok(u32::from_le(unsafe { p.read_volatile() }))
    }

    /// One volatile 32-bit store of `v` to the register at byte `off`.
    pub fn write32(&self, off: usize, v: u32) -> io::Result<()> {
        let p = self.at(off)?;
        // SAFETY: as in `read32`: an aligned word inside the live, writable (PROT_WRITE)
        // mapping this value owns, accessed only through raw pointers.
        unsafe { p.write_volatile(v.to_le()) };
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Loads and stores reach the mapped file at `base + off`; unaligned or out-of-block
    /// offsets are refused, and so is a block outside the mapping.
    #[test]
    fn volatile_words_in_bounds_only() {
        let page = super::super::page_size();
        let m = crate::MemfdRegion::create("mmio", page).unwrap();
        let map = Mmap::shared(m.fd(), page, 0).unwrap();
        let r = MmioRegs::new(map, 0x100, 0x20).unwrap();
        r.write32(0x1c, 0xdead_beef).unwrap();
        assert_eq!(r.read32(0x1c).unwrap(), 0xdead_beef);
        let mut b = [0u8; 4];
        intercore::SharedMemory::read(&m, 0x11c, &mut b);
        assert_eq!(u32::from_le_bytes(b), 0xdead_beef);
        assert!(r.read32(0x20).is_err());
        assert!(r.write32(2, 0).is_err());
        assert!(r.read32(usize::MAX - 1).is_err());
        let map = Mmap::shared(m.fd(), page, 0).unwrap();
        assert!(MmioRegs::new(map, page - 4, 8).is_err());
        let map = Mmap::shared(m.fd(), page, 0).unwrap();
        assert!(MmioRegs::new(map, 2, 8).is_err());
    }
}
