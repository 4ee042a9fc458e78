//! The remote core's view of the pool through an IOMMU: windows with permissions.

use crate::{DevAddr, DeviceAddressMap, LinearMap};

/// Access permissions of a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Perm {
    /// The remote may read.
    pub read: bool,
    /// The remote may write.
    pub write: bool,
}

impl Perm {
    /// Read only.
    pub const R: Perm = Perm {
        read: true,
        write: false,
    };
    /// Write only.
    pub const W: Perm = Perm {
        read: false,
        write: true,
    };
    /// Read and write.
    pub const RW: Perm = Perm {
        read: true,
        write: true,
    };
}

/// Why an access was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// No window covers (all of) the range.
    Unmapped,
    /// A window covers it but does not allow the access.
    Permission,
    /// The range lies outside the buffer the request named.
    OutsideBuffer,
}

/// A refused access, as an IOMMU reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fault {
    /// First device address of the access.
    pub da: DevAddr,
    /// Its length.
    pub len: usize,
    /// Whether it was a write.
    pub write: bool,
    /// Why it was refused.
    pub kind: FaultKind,
}

/// The host's control of the remote's IOMMU (VFIO or iommufd on Linux, the simulator's
/// table): which device addresses reach which bytes of the pool region, with which rights.
pub trait Iommu {
    /// Maps region bytes `off..off+len` at device address `da` with `perm`.
    fn map(&mut self, da: DevAddr, off: usize, len: usize, perm: Perm) -> crate::Result<()>;
    /// Removes the window that starts at `da` with length `len`.
    fn unmap(&mut self, da: DevAddr, len: usize) -> crate::Result<()>;
}

/// What every remote access to the pool goes through. An access outside a window or
/// against its permissions is a [`Fault`], never a silent read.
pub trait DataWindows {
    /// The region offset of `da..da+len` if the whole range may be accessed so.
    fn translate(&self, da: DevAddr, len: usize, write: bool) -> Result<usize, Fault>;
}

/// Without an IOMMU, a carveout seen at a fixed address is one read-write window.
impl DataWindows for LinearMap {
    fn translate(&self, da: DevAddr, len: usize, write: bool) -> Result<usize, Fault> {
        self.to_offset(da, len).ok_or(Fault {
            da,
            len,
            write,
            kind: FaultKind::Unmapped,
        })
    }
}

impl<W: DataWindows + ?Sized> DataWindows for &W {
    fn translate(&self, da: DevAddr, len: usize, write: bool) -> Result<usize, Fault> {
        (**self).translate(da, len, write)
    }
}
