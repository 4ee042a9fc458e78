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
///
/// ```
/// use intercore::platform::{DataWindows, DevAddr, FaultKind, Iommu, Perm};
///
/// /// A table of windows `(da, off, len, perm)`, as a simulator keeps one.
/// #[derive(Default)]
/// struct Table(Vec<(DevAddr, usize, usize, Perm)>);
///
/// impl Iommu for Table {
///     fn map(&mut self, da: DevAddr, off: usize, len: usize, perm: Perm) -> intercore::Result<()> {
///         self.0.push((da, off, len, perm));
///         Ok(())
///     }
///     fn unmap(&mut self, da: DevAddr, len: usize) -> intercore::Result<()> {
///         self.0.retain(|w| (w.0, w.2) != (da, len));
///         Ok(())
///     }
/// }
///
/// impl DataWindows for Table {
///     fn translate(&self, da: DevAddr, len: usize, write: bool) -> Result<usize, intercore::platform::Fault> {
///         let fault = |kind| intercore::platform::Fault { da, len, write, kind };
///         let rel = |w: &(DevAddr, usize, usize, Perm)| {
///             let rel = usize::try_from(da.0.checked_sub(w.0.0)?).ok()?;
///             (rel.checked_add(len)? <= w.2).then_some(rel)
///         };
///         let (w, rel) = self.0.iter().find_map(|w| Some((w, rel(w)?))).ok_or(fault(FaultKind::Unmapped))?;
///         let allowed = if write { w.3.write } else { w.3.read };
///         allowed.then_some(w.1 + rel).ok_or(fault(FaultKind::Permission))
///     }
/// }
///
/// let mut iommu = Table::default();
/// iommu.map(DevAddr(0x8000_0000), 0x4000, 0x1000, Perm::R)?;
/// assert_eq!(iommu.translate(DevAddr(0x8000_0010), 16, false), Ok(0x4010));
/// assert_eq!(iommu.translate(DevAddr(0x8000_0010), 16, true).unwrap_err().kind, FaultKind::Permission);
/// iommu.unmap(DevAddr(0x8000_0000), 0x1000)?;
/// assert_eq!(iommu.translate(DevAddr(0x8000_0010), 16, false).unwrap_err().kind, FaultKind::Unmapped);
/// # Ok::<(), intercore::Error>(())
/// ```
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
