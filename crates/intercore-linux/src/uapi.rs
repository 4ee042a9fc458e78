//! Kernel uAPI structures and ioctl numbers used by the buffer-memory and cache backends.
//!
//! Mainline values come from `/usr/include/linux/{dma-buf.h,dma-heap.h,udmabuf.h,vfio.h}`;
//! the `kernel_uapi` test compiles a C program against those headers and compares every
//! size, offset, flag and ioctl number here with what the headers say.
//!
//! [`RprocDmaBufAttachData`] and [`RPROC_IOC_DMA_BUF_ATTACH`] are **not** in mainline: they
//! come from TI's kernel (`include/uapi/linux/remoteproc_cdev.h` of TI-derived trees such as
//! beagleboard/linux). The test checks them against a C transcription of that header.

use core::mem::size_of;
use intercore::wire::uapi::{IOC_NONE, IOC_READ, IOC_WRITE, ioc};

// ---- dma-buf (`linux/dma-buf.h`) ---------------------------------------------------------

/// `struct dma_buf_sync`: the argument of [`DMA_BUF_IOCTL_SYNC`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(C)]
pub struct DmaBufSync {
    /// `DMA_BUF_SYNC_{START,END}` or'ed with `DMA_BUF_SYNC_{READ,WRITE,RW}`.
    pub flags: u64,
}

/// `DMA_BUF_SYNC_READ`: the CPU reads through its mapping.
pub const DMA_BUF_SYNC_READ: u64 = 1;
/// `DMA_BUF_SYNC_WRITE`: the CPU writes through its mapping.
pub const DMA_BUF_SYNC_WRITE: u64 = 2;
/// `DMA_BUF_SYNC_RW`: both.
pub const DMA_BUF_SYNC_RW: u64 = DMA_BUF_SYNC_READ | DMA_BUF_SYNC_WRITE;
/// `DMA_BUF_SYNC_START`: start of CPU access (the kernel's `begin_cpu_access`).
pub const DMA_BUF_SYNC_START: u64 = 0;
/// `DMA_BUF_SYNC_END`: end of CPU access (the kernel's `end_cpu_access`).
pub const DMA_BUF_SYNC_END: u64 = 4;
/// `_IOW('b', 0, struct dma_buf_sync)`.
pub const DMA_BUF_IOCTL_SYNC: u32 = ioc(IOC_WRITE, b'b' as u32, 0, size_of::<DmaBufSync>());

// ---- dma-heap (`linux/dma-heap.h`) -------------------------------------------------------

/// `struct dma_heap_allocation_data`: the argument of [`DMA_HEAP_IOCTL_ALLOC`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(C)]
pub struct DmaHeapAllocationData {
    /// Bytes to allocate (the heap rounds up to pages).
    pub len: u64,
    /// Out: the new dma-buf's file descriptor.
    pub fd: u32,
    /// Flags of the new descriptor (`O_CLOEXEC | O_RDWR`).
    pub fd_flags: u32,
    /// Heap-specific flags (none are defined: 0).
    pub heap_flags: u64,
}

/// `_IOWR('H', 0x0, struct dma_heap_allocation_data)`.
pub const DMA_HEAP_IOCTL_ALLOC: u32 = ioc(
    IOC_READ | IOC_WRITE,
    b'H' as u32,
    0,
    size_of::<DmaHeapAllocationData>(),
);

// ---- udmabuf (`linux/udmabuf.h`) ---------------------------------------------------------

/// `struct udmabuf_create`: the argument of [`UDMABUF_CREATE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(C)]
pub struct UdmabufCreate {
    /// The memfd whose pages back the buffer (sealed `F_SEAL_SHRINK`, not `F_SEAL_WRITE`).
    pub memfd: u32,
    /// [`UDMABUF_FLAGS_CLOEXEC`] or 0.
    pub flags: u32,
    /// Page-aligned offset in the memfd.
    pub offset: u64,
    /// Page-aligned size.
    pub size: u64,
}

/// `UDMABUF_FLAGS_CLOEXEC`: the returned dma-buf descriptor is close-on-exec.
pub const UDMABUF_FLAGS_CLOEXEC: u32 = 1;
/// `_IOW('u', 0x42, struct udmabuf_create)`.
pub const UDMABUF_CREATE: u32 = ioc(IOC_WRITE, b'u' as u32, 0x42, size_of::<UdmabufCreate>());

// ---- VFIO type1 (`linux/vfio.h`) ---------------------------------------------------------
//
// Every VFIO ioctl is declared `_IO(VFIO_TYPE, VFIO_BASE + n)` — no direction and size 0,
// whatever its comment says — and takes `argsz` inside the structure instead.

const VFIO_TYPE: u32 = b';' as u32;
const VFIO_BASE: u32 = 100;
const fn vfio_io(n: u32) -> u32 {
    ioc(IOC_NONE, VFIO_TYPE, VFIO_BASE + n, 0)
}

/// `VFIO_API_VERSION`: what `VFIO_GET_API_VERSION` returns.
pub const VFIO_API_VERSION: i32 = 0;
/// `VFIO_TYPE1_IOMMU`: the type1 IOMMU backend.
pub const VFIO_TYPE1_IOMMU: u32 = 1;
/// `VFIO_TYPE1v2_IOMMU`: type1 with the v2 semantics (whole-mapping unmaps).
pub const VFIO_TYPE1V2_IOMMU: u32 = 3;
/// `VFIO_GET_API_VERSION` (on the container).
pub const VFIO_GET_API_VERSION: u32 = vfio_io(0);
/// `VFIO_CHECK_EXTENSION` (on the container; the argument is passed by value).
pub const VFIO_CHECK_EXTENSION: u32 = vfio_io(1);
/// `VFIO_SET_IOMMU` (on the container; the IOMMU type is passed by value).
pub const VFIO_SET_IOMMU: u32 = vfio_io(2);
/// `VFIO_GROUP_GET_STATUS` (on the group; argument [`VfioGroupStatus`]).
pub const VFIO_GROUP_GET_STATUS: u32 = vfio_io(3);
/// `VFIO_GROUP_SET_CONTAINER` (on the group; argument a pointer to the container's fd).
pub const VFIO_GROUP_SET_CONTAINER: u32 = vfio_io(4);
/// `VFIO_GROUP_UNSET_CONTAINER` (on the group).
pub const VFIO_GROUP_UNSET_CONTAINER: u32 = vfio_io(5);
/// `VFIO_IOMMU_MAP_DMA` (on the container; argument [`VfioIommuType1DmaMap`]).
pub const VFIO_IOMMU_MAP_DMA: u32 = vfio_io(13);
/// `VFIO_IOMMU_UNMAP_DMA` (on the container; argument [`VfioIommuType1DmaUnmap`]).
pub const VFIO_IOMMU_UNMAP_DMA: u32 = vfio_io(14);
/// `VFIO_GROUP_GET_DEVICE_FD` (on the group; argument the device's name, a C string).
pub const VFIO_GROUP_GET_DEVICE_FD: u32 = vfio_io(6);
/// `VFIO_DEVICE_GET_REGION_INFO` (on a device; argument [`VfioRegionInfo`]).
pub const VFIO_DEVICE_GET_REGION_INFO: u32 = vfio_io(8);
/// `VFIO_REGION_INFO_FLAG_READ`: the region supports `pread`.
pub const VFIO_REGION_INFO_FLAG_READ: u32 = 1;
/// `VFIO_REGION_INFO_FLAG_WRITE`: the region supports `pwrite`.
pub const VFIO_REGION_INFO_FLAG_WRITE: u32 = 2;
/// `VFIO_REGION_INFO_FLAG_MMAP`: the region can be mapped.
pub const VFIO_REGION_INFO_FLAG_MMAP: u32 = 4;
/// `VFIO_PCI_BAR0_REGION_INDEX`: a vfio-pci device's BAR 0.
pub const VFIO_PCI_BAR0_REGION_INDEX: u32 = 0;
/// `VFIO_PCI_CONFIG_REGION_INDEX`: a vfio-pci device's PCI configuration space.
pub const VFIO_PCI_CONFIG_REGION_INDEX: u32 = 7;
/// `VFIO_GROUP_FLAGS_VIABLE`: every device of the group is bound to a VFIO driver.
pub const VFIO_GROUP_FLAGS_VIABLE: u32 = 1;
/// `VFIO_GROUP_FLAGS_CONTAINER_SET`.
pub const VFIO_GROUP_FLAGS_CONTAINER_SET: u32 = 2;
/// `VFIO_DMA_MAP_FLAG_READ`: the device may read the mapping.
pub const VFIO_DMA_MAP_FLAG_READ: u32 = 1;
/// `VFIO_DMA_MAP_FLAG_WRITE`: the device may write the mapping.
pub const VFIO_DMA_MAP_FLAG_WRITE: u32 = 2;

/// `struct vfio_group_status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(C)]
pub struct VfioGroupStatus {
    /// `sizeof(struct vfio_group_status)`.
    pub argsz: u32,
    /// Out: `VFIO_GROUP_FLAGS_*`.
    pub flags: u32,
}

/// `struct vfio_region_info` (the fixed part; capability chains are not read).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(C)]
pub struct VfioRegionInfo {
    /// `sizeof(struct vfio_region_info)`.
    pub argsz: u32,
    /// Out: `VFIO_REGION_INFO_FLAG_*`.
    pub flags: u32,
    /// In: the region index (`VFIO_PCI_*_REGION_INDEX`).
    pub index: u32,
    /// Out: offset of the first capability (0 here: argsz leaves no room for any).
    pub cap_offset: u32,
    /// Out: bytes of the region.
    pub size: u64,
    /// Out: the region's offset in the device descriptor (for `pread`/`pwrite`/`mmap`).
    pub offset: u64,
}

/// `struct vfio_iommu_type1_dma_map`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(C)]
pub struct VfioIommuType1DmaMap {
    /// `sizeof(struct vfio_iommu_type1_dma_map)`.
    pub argsz: u32,
    /// `VFIO_DMA_MAP_FLAG_READ` / `_WRITE`.
    pub flags: u32,
    /// Process virtual address of the first byte.
    pub vaddr: u64,
    /// The I/O virtual address the device will use.
    pub iova: u64,
    /// Bytes (a multiple of the IOMMU page size).
    pub size: u64,
}

/// `struct vfio_iommu_type1_dma_unmap` (without its flexible `data[]`, unused here).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(C)]
pub struct VfioIommuType1DmaUnmap {
    /// `sizeof(struct vfio_iommu_type1_dma_unmap)`.
    pub argsz: u32,
    /// 0 (no dirty bitmap, not all, not vaddr).
    pub flags: u32,
    /// First I/O virtual address.
    pub iova: u64,
    /// In: bytes to unmap; out: bytes unmapped.
    pub size: u64,
}

// ---- TI remoteproc cdev (TI kernels only) ------------------------------------------------

/// `struct rproc_dma_buf_attach_data` of TI's `remoteproc_cdev.h` (not in mainline). In C
/// the `u64` after the `u32` leaves four bytes of implicit padding; here they are the
/// explicit, zeroed field `pad`, so the kernel never reads uninitialised bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(C)]
pub struct RprocDmaBufAttachData {
    /// The dma-buf to attach (a physically contiguous one, e.g. from a carveout heap).
    pub fd: u32,
    /// Padding (C's implicit padding before `da`); zero.
    pub pad: u32,
    /// Out: the device address at which the remote processor sees the buffer.
    pub da: u64,
}

/// `RPROC_MAGIC` (TI's and mainline's `remoteproc_cdev.h`).
pub const RPROC_MAGIC: u32 = 0xB7;
/// `_IOWR(RPROC_MAGIC, 0, struct rproc_dma_buf_attach_data)` (TI kernels only; a mainline
/// kernel answers `EINVAL`, "Unsupported ioctl").
pub const RPROC_IOC_DMA_BUF_ATTACH: u32 = ioc(
    IOC_READ | IOC_WRITE,
    RPROC_MAGIC,
    0,
    size_of::<RprocDmaBufAttachData>(),
);
