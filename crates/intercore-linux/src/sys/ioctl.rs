//! ioctls: every request this crate issues, paired here with the type of its argument,
//! and the safe calls that issue them (retrying on `EINTR`).
//!
//! An [`Ioctl<T>`] can only be made with an `unsafe` promise that the request accesses at
//! most a `T` at its pointer; every such promise is in the table at the end of this file,
//! next to the uAPI header it comes from (the `kernel_uapi` test compares the numbers and
//! layouts with the headers). Callers elsewhere in the crate issue the requests without
//! `unsafe`.

use super::fd::{owned, retry_eintr};
use intercore::wire::uapi::{IOC_NONE, IOC_READ, IOC_WRITE};
#[cfg(feature = "vfio")]
use std::ffi::CStr;
use std::io;
use std::marker::PhantomData;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

/// Bits 30–31 of a request: the direction the kernel copies the argument.
const fn dir(req: u32) -> u32 {
    req >> 30
}
/// Bits 16–29 of a request: the size of the argument, for requests that encode it.
const fn size(req: u32) -> usize {
    ((req >> 16) & 0x3fff) as usize
}

/// An ioctl request whose argument is a pointer to a `T`.
#[derive(Debug)]
pub(crate) struct Ioctl<T> {
    req: u32,
    _arg: PhantomData<fn(&mut T)>,
}

impl<T> Clone for Ioctl<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Ioctl<T> {}

impl<T> Ioctl<T> {
    /// Pairs request `req` with argument type `T`. Fails to compile when the size encoded
    /// in `req` (if any) is not `T`'s size.
    ///
    /// # Safety
    ///
    /// On any descriptor it is issued on, `req` reads and/or writes at most
    /// `size_of::<T>()` bytes at the pointer, with `T`'s layout, only in the directions its
    /// encoding states when it encodes one, and writes only values that are valid `T`s
    /// (`T` is a plain C struct of integers); it neither keeps the pointer nor reaches other
    /// memory of this process through it.
    const unsafe fn new(req: u32) -> Self {
        assert!(size(req) == 0 || size(req) == size_of::<T>());
        Self {
            req,
            _arg: PhantomData,
        }
    }
}

/// An ioctl request whose argument is an integer passed by value.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IoctlVal {
    req: u32,
}

impl IoctlVal {
    /// # Safety
    ///
    /// `req` takes its argument by value: it reads and writes no memory of this process.
    const unsafe fn new(req: u32) -> Self {
        Self { req }
    }
}

/// Issues `req` with a pointer to `arg`; the non-negative result on success.
pub(crate) fn ioctl<T>(fd: BorrowedFd<'_>, req: Ioctl<T>, arg: &mut T) -> io::Result<libc::c_int> {
    let p: *mut T = arg;
    // SAFETY: `p` points to a live, exclusively borrowed `T`, and `Ioctl::new`'s contract
    // bounds what the request does with it.
    retry_eintr(|| unsafe { libc::ioctl(fd.as_raw_fd(), req.req as libc::Ioctl, p) })
}

/// Issues a request that only reads its argument (direction `_IOW`, checked) with a pointer
/// to `arg`.
pub(crate) fn ioctl_in<T>(fd: BorrowedFd<'_>, req: Ioctl<T>, arg: &T) -> io::Result<libc::c_int> {
    assert!(
        dir(req.req) == IOC_WRITE,
        "ioctl {:#x} is not write-only",
        req.req
    );
    let p: *const T = arg;
    // SAFETY: `p` points to a live `T`; `Ioctl::new`'s contract bounds the access to it,
    // and the request's encoded direction (checked above) says the kernel only reads it.
    retry_eintr(|| unsafe { libc::ioctl(fd.as_raw_fd(), req.req as libc::Ioctl, p) })
}

/// Issues a request whose argument is the integer `arg`.
pub(crate) fn ioctl_val(
    fd: BorrowedFd<'_>,
    req: IoctlVal,
    arg: libc::c_ulong,
) -> io::Result<libc::c_int> {
    // SAFETY: by `IoctlVal::new`'s contract the request accesses no memory of ours.
    retry_eintr(|| unsafe { libc::ioctl(fd.as_raw_fd(), req.req as libc::Ioctl, arg) })
}

/// `UDMABUF_CREATE`: the new dma-buf's descriptor.
pub(crate) fn udmabuf_create(
    ctl: BorrowedFd<'_>,
    arg: &crate::uapi::UdmabufCreate,
) -> io::Result<OwnedFd> {
    ioctl_in(ctl, UDMABUF_CREATE, arg).map(owned)
}

/// `DMA_HEAP_IOCTL_ALLOC`: the new dma-buf's descriptor (also left in `arg.fd`).
pub(crate) fn dma_heap_alloc(
    heap: BorrowedFd<'_>,
    arg: &mut crate::uapi::DmaHeapAllocationData,
) -> io::Result<OwnedFd> {
    ioctl(heap, DMA_HEAP_IOCTL_ALLOC, arg)?;
    // On success the kernel installed a new descriptor and wrote its number to `fd`.
    let fd = libc::c_int::try_from(arg.fd).map_err(|_| {
        io::Error::other(format!(
            "DMA_HEAP_IOCTL_ALLOC returned descriptor {}",
            arg.fd
        ))
    })?;
    Ok(owned(fd))
}

// ---- The requests ------------------------------------------------------------------------

// SAFETY (each of the following): the request's argument is the named struct of the named
// header, whose layout the `uapi` type has (the `kernel_uapi` test checks it), and the
// request accesses that struct only, as described.

/// `_IOW('b', 0, struct dma_buf_sync)` (dma-buf.h): reads the flags.
pub(crate) const DMA_BUF_IOCTL_SYNC: Ioctl<crate::uapi::DmaBufSync> =
    // SAFETY: see above.
    unsafe { Ioctl::new(crate::uapi::DMA_BUF_IOCTL_SYNC) };
/// `_IOWR('H', 0, struct dma_heap_allocation_data)` (dma-heap.h): reads `len` and the
/// flags, writes `fd`.
const DMA_HEAP_IOCTL_ALLOC: Ioctl<crate::uapi::DmaHeapAllocationData> =
    // SAFETY: see above.
    unsafe { Ioctl::new(crate::uapi::DMA_HEAP_IOCTL_ALLOC) };
/// `_IOW('u', 0x42, struct udmabuf_create)` (udmabuf.h): reads it, returns a descriptor.
const UDMABUF_CREATE: Ioctl<crate::uapi::UdmabufCreate> =
    // SAFETY: see above.
    unsafe { Ioctl::new(crate::uapi::UDMABUF_CREATE) };
/// `_IOWR(0xb7, 0, struct rproc_dma_buf_attach_data)` (TI's remoteproc_cdev.h): reads
/// `fd`, writes `da`. A kernel without it rejects the number and touches nothing.
pub(crate) const RPROC_IOC_DMA_BUF_ATTACH: Ioctl<crate::uapi::RprocDmaBufAttachData> =
    // SAFETY: see above.
    unsafe { Ioctl::new(crate::uapi::RPROC_IOC_DMA_BUF_ATTACH) };
/// `_IOW(0xb5, 1, struct rpmsg_endpoint_info)` (rpmsg.h): reads it (40 bytes; the layout is
/// checked by intercore-wire's `kernel_headers` test).
pub(crate) const RPMSG_CREATE_EPT_IOCTL: Ioctl<intercore::wire::uapi::RpmsgEndpointInfo> =
    // SAFETY: see above.
    unsafe { Ioctl::new(intercore::wire::uapi::RPMSG_CREATE_EPT_IOCTL) };
/// `_IO(0xb5, 2)` (rpmsg.h): no argument is read or written.
pub(crate) const RPMSG_DESTROY_EPT_IOCTL: IoctlVal =
    // SAFETY: see above; the request ignores its argument.
    unsafe { IoctlVal::new(intercore::wire::uapi::RPMSG_DESTROY_EPT_IOCTL) };

/// The VFIO requests (vfio.h). They are all `_IO(';', 100 + n)`: the header, not the
/// number, says what each argument is, and several arguments carry a size (`argsz`) or
/// flags that make the kernel reach further memory, so each request has its own function,
/// which sets those fields itself.
#[cfg(feature = "vfio")]
pub(crate) mod vfio {
    use super::{Ioctl, IoctlVal, ioctl, owned, retry_eintr};
    use crate::uapi as u;
    use intercore::SharedMemory;
    use std::io;
    use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

    /// `VFIO_GET_API_VERSION`: no argument.
    pub(crate) const GET_API_VERSION: IoctlVal =
        // SAFETY: takes no argument.
        unsafe { IoctlVal::new(u::VFIO_GET_API_VERSION) };
    /// `VFIO_CHECK_EXTENSION`: the extension number, by value.
    pub(crate) const CHECK_EXTENSION: IoctlVal =
        // SAFETY: the argument is an integer passed by value.
        unsafe { IoctlVal::new(u::VFIO_CHECK_EXTENSION) };
    /// `VFIO_SET_IOMMU`: the IOMMU type, by value.
    pub(crate) const SET_IOMMU: IoctlVal =
        // SAFETY: the argument is an integer passed by value.
        unsafe { IoctlVal::new(u::VFIO_SET_IOMMU) };
    /// `VFIO_GROUP_SET_CONTAINER`: reads one int, the container's descriptor.
    pub(crate) const GROUP_SET_CONTAINER: Ioctl<libc::c_int> =
        // SAFETY: reads one int at the pointer.
        unsafe { Ioctl::new(u::VFIO_GROUP_SET_CONTAINER) };
    /// `VFIO_GROUP_GET_STATUS` with `argsz` the struct's size.
    const GROUP_GET_STATUS: Ioctl<u::VfioGroupStatus> =
        // SAFETY: reads `argsz`, writes `flags` of one `struct vfio_group_status` (checked
        // layout); `group_status` sets `argsz` to that struct's size.
        unsafe { Ioctl::new(u::VFIO_GROUP_GET_STATUS) };
    /// `VFIO_DEVICE_GET_REGION_INFO` with `argsz` the fixed part's size.
    const DEVICE_GET_REGION_INFO: Ioctl<u::VfioRegionInfo> =
        // SAFETY: writes at most `argsz` bytes of `struct vfio_region_info` (checked
        // layout); `region_info` sets `argsz` to the fixed part, so no capability chain is
        // written past it.
        unsafe { Ioctl::new(u::VFIO_DEVICE_GET_REGION_INFO) };
    /// `VFIO_IOMMU_UNMAP_DMA` with flags 0.
    const IOMMU_UNMAP_DMA: Ioctl<u::VfioIommuType1DmaUnmap> =
        // SAFETY: with flags 0 (set by `unmap_dma`) the kernel reads the 24-byte
        // `struct vfio_iommu_type1_dma_unmap` (checked layout) without its flexible
        // `data[]` (a dirty bitmap only with GET_DIRTY_BITMAP) and writes back `size`.
        unsafe { Ioctl::new(u::VFIO_IOMMU_UNMAP_DMA) };

    /// `VFIO_GROUP_GET_STATUS`: the group's flags.
    pub(crate) fn group_status(group: BorrowedFd<'_>) -> io::Result<u32> {
        let mut status = u::VfioGroupStatus {
            argsz: size_of::<u::VfioGroupStatus>() as u32,
            flags: 0,
        };
        ioctl(group, GROUP_GET_STATUS, &mut status)?;
        Ok(status.flags)
    }

    /// `VFIO_DEVICE_GET_REGION_INFO` for region `index` (fixed part only).
    pub(crate) fn region_info(device: BorrowedFd<'_>, index: u32) -> io::Result<u::VfioRegionInfo> {
        let mut info = u::VfioRegionInfo {
            argsz: size_of::<u::VfioRegionInfo>() as u32,
            index,
            ..Default::default()
        };
        ioctl(device, DEVICE_GET_REGION_INFO, &mut info)?;
        Ok(info)
    }

    /// `VFIO_IOMMU_UNMAP_DMA` of `iova..+size`: the number of bytes unmapped.
    pub(crate) fn unmap_dma(container: BorrowedFd<'_>, iova: u64, size: u64) -> io::Result<u64> {
        let mut arg = u::VfioIommuType1DmaUnmap {
            argsz: size_of::<u::VfioIommuType1DmaUnmap>() as u32,
            flags: 0,
            iova,
            size,
        };
        ioctl(container, IOMMU_UNMAP_DMA, &mut arg)?;
        Ok(arg.size)
    }

    /// `VFIO_GROUP_GET_DEVICE_FD`: the descriptor of the group's device `name`.
    pub(crate) fn group_get_device_fd(
        group: BorrowedFd<'_>,
        name: &super::CStr,
    ) -> io::Result<OwnedFd> {
        let p = name.as_ptr();
        // SAFETY: VFIO_GROUP_GET_DEVICE_FD reads the NUL-terminated name at the pointer
        // (which lives across the call) and returns a new descriptor.
        retry_eintr(|| unsafe {
            libc::ioctl(
                group.as_raw_fd(),
                u::VFIO_GROUP_GET_DEVICE_FD as libc::Ioctl,
                p,
            )
        })
        .map(owned)
    }

    /// `VFIO_IOMMU_MAP_DMA`: lets the device reach bytes `off..off + size` of `mem` at I/O
    /// address `iova`, with `flags` (`VFIO_DMA_MAP_FLAG_READ` / `_WRITE`).
    ///
    /// The device then writes memory of this process behind the compiler's back, which is
    /// sound only where a peer may write anyway: inside a [`SharedMemory`] region, whose
    /// contract forbids Rust references into it (checked here: the range must lie inside
    /// `mem`). The kernel pins the physical pages, so even if `mem` is unmapped before the
    /// window the device reaches those pages only, never whatever is mapped there later.
    pub(crate) fn map_dma<M: SharedMemory + ?Sized>(
        container: BorrowedFd<'_>,
        mem: &M,
        off: usize,
        size: usize,
        iova: u64,
        flags: u32,
    ) -> io::Result<()> {
        let base = mem.as_ptr();
        if base.is_null() || off.checked_add(size).is_none_or(|e| e > mem.len()) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "DMA window outside the region",
            ));
        }
        let arg = u::VfioIommuType1DmaMap {
            argsz: size_of::<u::VfioIommuType1DmaMap>() as u32,
            flags,
            vaddr: base.wrapping_add(off) as u64,
            iova,
            size: size as u64,
        };
        let p: *const u::VfioIommuType1DmaMap = &arg;
        // SAFETY: reads one `struct vfio_iommu_type1_dma_map` (checked layout) from a live
        // value; the memory it names is inside `mem` (checked above), see the doc comment.
        retry_eintr(|| unsafe {
            libc::ioctl(
                container.as_raw_fd(),
                u::VFIO_IOMMU_MAP_DMA as libc::Ioctl,
                p,
            )
        })
        .map(|_| ())
    }
}

const _: () = {
    // The encodings `ioctl_in` relies on.
    assert!(dir(crate::uapi::UDMABUF_CREATE) == IOC_WRITE);
    assert!(dir(crate::uapi::DMA_HEAP_IOCTL_ALLOC) == IOC_READ | IOC_WRITE);
    assert!(dir(intercore::wire::uapi::RPMSG_DESTROY_EPT_IOCTL) == IOC_NONE);
};
