//! The virtio split virtqueue layout (virtio 1.x §2.7, Linux `include/uapi/linux/virtio_ring.h`).
//!
//! A split ring of `num` entries is three areas placed back to back in one allocation:
//! the descriptor table (`16·num` bytes), the available ring (`6 + 2·num` bytes, written
//! by the driver) and, after padding to `align`, the used ring (`6 + 8·num` bytes, written by
//! the device). This is the "legacy" contiguous layout that remoteproc uses: the resource
//! table gives one device address and an alignment per vring.

use crate::{Le16, Le32, Le64, WireError};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// Descriptor flag: the buffer continues in the descriptor named by `next`.
pub const VRING_DESC_F_NEXT: u16 = 1;
/// Descriptor flag: the device writes this buffer (otherwise it only reads it).
pub const VRING_DESC_F_WRITE: u16 = 2;
/// Descriptor flag: the buffer holds a table of indirect descriptors.
pub const VRING_DESC_F_INDIRECT: u16 = 4;
/// Used-ring flag: the device asks the driver not to notify it (ignored with EVENT_IDX).
pub const VRING_USED_F_NO_NOTIFY: u16 = 1;
/// Available-ring flag: the driver asks the device not to interrupt it (ignored with EVENT_IDX).
pub const VRING_AVAIL_F_NO_INTERRUPT: u16 = 1;
/// Feature bit: indirect descriptors.
pub const VIRTIO_RING_F_INDIRECT_DESC: u32 = 28;
/// Feature bit: `used_event` / `avail_event` notification suppression.
pub const VIRTIO_RING_F_EVENT_IDX: u32 = 29;
/// Feature bit: virtio 1.0 compliance (not offered by remoteproc vdevs, which use only 32 bits).
pub const VIRTIO_F_VERSION_1: u32 = 32;
/// The largest queue size a split ring allows.
pub const VIRTQUEUE_MAX_SIZE: u16 = 32768;

/// One entry of the descriptor table (16 bytes).
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    FromBytes,
    IntoBytes,
    KnownLayout,
    Immutable,
    Unaligned,
)]
#[repr(C)]
pub struct Desc {
    /// Device (guest-physical) address of the buffer.
    pub addr: Le64,
    /// Length of the buffer in bytes.
    pub len: Le32,
    /// `VRING_DESC_F_*`.
    pub flags: Le16,
    /// Next descriptor of the chain when `flags` has `VRING_DESC_F_NEXT`.
    pub next: Le16,
}

/// One entry of the used ring (8 bytes).
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    FromBytes,
    IntoBytes,
    KnownLayout,
    Immutable,
    Unaligned,
)]
#[repr(C)]
pub struct UsedElem {
    /// Head descriptor index of the chain that was used.
    pub id: Le32,
    /// Bytes the device wrote into the chain.
    pub len: Le32,
}

/// Size of a descriptor.
pub const DESC_SIZE: usize = 16;
/// Size of a used-ring element.
pub const USED_ELEM_SIZE: usize = 8;

/// Where each field of a split ring lies, relative to the ring's start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VringLayout {
    num: u16,
    align: u32,
}

impl VringLayout {
    /// Checks a geometry: `num` a power of two in 1..=32768, `align` a power of two ≥ 2.
    pub fn new(num: u32, align: u32) -> Result<Self, WireError> {
        if num == 0 || !num.is_power_of_two() || num > u32::from(VIRTQUEUE_MAX_SIZE) {
            return Err(WireError::BadGeometry {
                what: "queue size must be a power of two in 1..=32768",
                value: num as u64,
            });
        }
        if align < 2 || !align.is_power_of_two() {
            return Err(WireError::BadGeometry {
                what: "alignment must be a power of two >= 2",
                value: align as u64,
            });
        }
        Ok(Self {
            num: num as u16,
            align,
        })
    }

    /// Number of entries.
    pub const fn num(&self) -> u16 {
        self.num
    }
    /// Alignment of the used ring.
    pub const fn align(&self) -> u32 {
        self.align
    }
    /// Offset of descriptor `i`.
    pub const fn desc(&self, i: u16) -> usize {
        i as usize * DESC_SIZE
    }
    /// Offset of the available ring's `flags`.
    pub const fn avail_flags(&self) -> usize {
        self.num as usize * DESC_SIZE
    }
    /// Offset of the available ring's `idx`.
    pub const fn avail_idx(&self) -> usize {
        self.avail_flags() + 2
    }
    /// Offset of available-ring slot `slot` (already reduced modulo `num`).
    pub const fn avail_ring(&self, slot: u16) -> usize {
        self.avail_flags() + 4 + 2 * slot as usize
    }
    /// Offset of `used_event` (after the available ring; written by the driver).
    pub const fn used_event(&self) -> usize {
        self.avail_ring(self.num)
    }
    /// Offset of the used ring's `flags`.
    pub const fn used_flags(&self) -> usize {
        let end = self.used_event() + 2;
        let a = self.align as usize;
        (end + a - 1) & !(a - 1)
    }
    /// Offset of the used ring's `idx`.
    pub const fn used_idx(&self) -> usize {
        self.used_flags() + 2
    }
    /// Offset of used-ring slot `slot` (already reduced modulo `num`).
    pub const fn used_ring(&self, slot: u16) -> usize {
        self.used_flags() + 4 + USED_ELEM_SIZE * slot as usize
    }
    /// Offset of `avail_event` (after the used ring; written by the device).
    pub const fn avail_event(&self) -> usize {
        self.used_ring(self.num)
    }
    /// Total bytes: `align_up(16·num + 2·(3+num), align) + 6 + 8·num`.
    pub const fn size(&self) -> usize {
        self.avail_event() + 2
    }
}

/// The ring size formula of virtio 1.x §2.7 / `vring_size()` in `virtio_ring.h`.
pub const fn vring_size(num: u32, align: u32) -> usize {
    let a = align as usize;
    let n = num as usize;
    (DESC_SIZE * n + 2 * (3 + n)).div_ceil(a) * a + 6 + USED_ELEM_SIZE * n
}

/// `vring_need_event()` from `virtio_ring.h`: with EVENT_IDX, notify when the index moved
/// from `old` to `new` past the `event` index the other side asked for.
pub const fn vring_need_event(event: u16, new: u16, old: u16) -> bool {
    new.wrapping_sub(event).wrapping_sub(1) < new.wrapping_sub(old)
}

impl Desc {
    /// Builds a descriptor.
    pub fn new(addr: u64, len: u32, flags: u16, next: u16) -> Self {
        Self {
            addr: Le64::new(addr),
            len: Le32::new(len),
            flags: Le16::new(flags),
            next: Le16::new(next),
        }
    }
    /// Reads a descriptor from untrusted bytes.
    pub fn parse(bytes: &[u8]) -> Result<Self, WireError> {
        crate::error::read_at(bytes, 0, "vring descriptor")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// virtio 1.x §2.7: the legacy layout formula and `vring_size()` agree with the offsets.
    #[test]
    fn layout_matches_vring_size_formula() {
        for num in [1u32, 2, 4, 16, 256, 1024, 32768] {
            for align in [4u32, 16, 64, 4096] {
                let l = VringLayout::new(num, align).unwrap();
                assert_eq!(l.size(), vring_size(num, align), "num {num} align {align}");
                assert_eq!(l.used_flags() % align as usize, 0);
                assert_eq!(l.avail_idx(), 16 * num as usize + 2);
            }
        }
    }

    /// virtio 1.x §2.7: queue size must be a power of two no larger than 32768.
    #[test]
    fn bad_geometry_is_rejected() {
        assert!(VringLayout::new(0, 16).is_err());
        assert!(VringLayout::new(3, 16).is_err());
        assert!(VringLayout::new(65536, 16).is_err());
        assert!(VringLayout::new(16, 3).is_err());
        assert!(VringLayout::new(16, 0).is_err());
    }

    /// `vring_need_event` follows the kernel's definition, including across u16 wrap-around.
    #[test]
    fn need_event_wraps() {
        assert!(vring_need_event(0, 1, 0));
        assert!(!vring_need_event(1, 1, 0));
        assert!(vring_need_event(65535, 0, 65535));
        assert!(vring_need_event(65534, 1, 65533));
        assert!(!vring_need_event(5, 3, 1));
    }
}
