//! Device addresses and their translation to region offsets.
//!
//! A [`DevAddr`] is what the remote core puts on the bus; it is a different type from a
//! byte offset inside a [`SharedMemory`](crate::SharedMemory) region, so one cannot be used
//! for the other by accident: the wire carries offsets and device addresses, never
//! pointers, and the two are kept apart by type.

use core::fmt;

/// An address as the remote core (or the device side of a vring) sees it.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct DevAddr(pub u64);

impl fmt::Debug for DevAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "da:{:#x}", self.0)
    }
}

/// Translates between device addresses and offsets in one shared region.
///
/// What is mapped is a set of windows, each a run of device addresses over an equally long
/// run of region offsets. The contract, checked for every implementation by
/// `intercore::testing::conformance::device_address_map` (feature `test-utils`): a range
/// translates only if it lies inside one window (a range that starts before, ends after, or
/// whose end overflows is `None` — never a wrapped or clamped offset); inside a window,
/// translation is linear both ways and `to_dev` inverts `to_offset`; neither method panics,
/// whatever the input. A zero-length range may translate or not.
///
/// ```
/// use intercore::platform::{DevAddr, DeviceAddressMap, LinearMap};
///
/// // The remote sees the region's bytes 0x1000.. at device address 0xa000_0000.
/// let map = LinearMap { base: DevAddr(0xa000_0000), offset: 0x1000, len: 0x8000 };
/// assert_eq!(map.to_offset(DevAddr(0xa000_0010), 16), Some(0x1010));
/// assert_eq!(map.to_offset(DevAddr(0xa000_7ff8), 16), None); // ends past the window
/// assert_eq!(map.to_dev(0x1010), Some(DevAddr(0xa000_0010)));
/// ```
pub trait DeviceAddressMap {
    /// The region offset of `da..da+len`, or `None` if any byte of it lies outside what is
    /// mapped.
    fn to_offset(&self, da: DevAddr, len: usize) -> Option<usize>;
    /// The device address of region offset `off`, or `None` if it is not mapped.
    fn to_dev(&self, off: usize) -> Option<DevAddr>;
}

/// A single linear window: device addresses `base..base+len` are region offsets
/// `offset..offset+len` (a carveout seen at a fixed address by the remote).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinearMap {
    /// Device address of the window's first byte.
    pub base: DevAddr,
    /// Region offset of the window's first byte.
    pub offset: usize,
    /// Window length in bytes.
    pub len: usize,
}

impl DeviceAddressMap for LinearMap {
    fn to_offset(&self, da: DevAddr, len: usize) -> Option<usize> {
        let rel = da.0.checked_sub(self.base.0)?;
        let rel = usize::try_from(rel).ok()?;
        let end = rel.checked_add(len)?;
        (end <= self.len).then(|| self.offset + rel)
    }
    fn to_dev(&self, off: usize) -> Option<DevAddr> {
        let rel = off.checked_sub(self.offset)?;
        (rel < self.len).then(|| DevAddr(self.base.0 + rel as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Translation refuses ranges that start before, end after, or overflow the window.
    #[test]
    fn linear_map_bounds() {
        let m = LinearMap {
            base: DevAddr(0xa000_0000),
            offset: 0x100,
            len: 0x1000,
        };
        assert_eq!(m.to_offset(DevAddr(0xa000_0000), 0x1000), Some(0x100));
        assert_eq!(m.to_offset(DevAddr(0xa000_0001), 0x1000), None);
        assert_eq!(m.to_offset(DevAddr(0x9fff_ffff), 1), None);
        assert_eq!(m.to_offset(DevAddr(u64::MAX), 2), None);
        assert_eq!(m.to_dev(0x100 + 0xfff), Some(DevAddr(0xa000_0fff)));
        assert_eq!(m.to_dev(0x100 + 0x1000), None);
    }
}
