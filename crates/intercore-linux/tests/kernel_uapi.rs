//! Checks our uAPI structures, flag values and ioctl numbers against the kernel's own headers
//! (`/usr/include/linux/{dma-buf.h,dma-heap.h,udmabuf.h,vfio.h,remoteproc_cdev.h}`), by
//! compiling a small C program with the system C compiler and comparing what it prints with
//! our constants (the pattern of `intercore-wire`'s `kernel_headers` test).
//!
//! TI's `RPROC_IOC_DMA_BUF_ATTACH` is not in mainline headers; the C program carries a
//! transcription of TI's declaration (`include/uapi/linux/remoteproc_cdev.h` in TI-derived
//! trees such as beagleboard/linux) and the test checks our encoding against the C
//! compiler's `_IOWR` and layout of it, plus `RPROC_MAGIC` against the mainline header.

use intercore_linux::uapi::*;
use std::collections::HashMap;
use std::mem::{offset_of, size_of};

const C_PROGRAM: &str = r#"
#include <stdio.h>
#include <stddef.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <linux/types.h>
#include <linux/dma-buf.h>
#include <linux/dma-heap.h>
#include <linux/udmabuf.h>
#include <linux/vfio.h>
#include <linux/remoteproc_cdev.h>

/* TI kernels only (not in mainline): transcribed from TI's remoteproc_cdev.h. */
struct ti_rproc_dma_buf_attach_data {
	__u32 fd;
	__u64 da;
};
#define TI_RPROC_IOC_DMA_BUF_ATTACH _IOWR(RPROC_MAGIC, 0, struct ti_rproc_dma_buf_attach_data)

#define P(k, v) printf("%s=%llu\n", k, (unsigned long long)(v))
int main(void) {
    P("dma_buf_sync.size", sizeof(struct dma_buf_sync));
    P("dma_buf_sync.flags", offsetof(struct dma_buf_sync, flags));
    P("DMA_BUF_SYNC_READ", DMA_BUF_SYNC_READ);
    P("DMA_BUF_SYNC_WRITE", DMA_BUF_SYNC_WRITE);
    P("DMA_BUF_SYNC_RW", DMA_BUF_SYNC_RW);
    P("DMA_BUF_SYNC_START", DMA_BUF_SYNC_START);
    P("DMA_BUF_SYNC_END", DMA_BUF_SYNC_END);
    P("DMA_BUF_IOCTL_SYNC", DMA_BUF_IOCTL_SYNC);

    P("heap_alloc.size", sizeof(struct dma_heap_allocation_data));
    P("heap_alloc.len", offsetof(struct dma_heap_allocation_data, len));
    P("heap_alloc.fd", offsetof(struct dma_heap_allocation_data, fd));
    P("heap_alloc.fd_flags", offsetof(struct dma_heap_allocation_data, fd_flags));
    P("heap_alloc.heap_flags", offsetof(struct dma_heap_allocation_data, heap_flags));
    P("DMA_HEAP_IOCTL_ALLOC", DMA_HEAP_IOCTL_ALLOC);

    P("udmabuf_create.size", sizeof(struct udmabuf_create));
    P("udmabuf_create.memfd", offsetof(struct udmabuf_create, memfd));
    P("udmabuf_create.flags", offsetof(struct udmabuf_create, flags));
    P("udmabuf_create.offset", offsetof(struct udmabuf_create, offset));
    P("udmabuf_create.size_field", offsetof(struct udmabuf_create, size));
    P("UDMABUF_FLAGS_CLOEXEC", UDMABUF_FLAGS_CLOEXEC);
    P("UDMABUF_CREATE", UDMABUF_CREATE);

    P("VFIO_API_VERSION", VFIO_API_VERSION);
    P("VFIO_TYPE1_IOMMU", VFIO_TYPE1_IOMMU);
    P("VFIO_TYPE1v2_IOMMU", VFIO_TYPE1v2_IOMMU);
    P("VFIO_GET_API_VERSION", VFIO_GET_API_VERSION);
    P("VFIO_CHECK_EXTENSION", VFIO_CHECK_EXTENSION);
    P("VFIO_SET_IOMMU", VFIO_SET_IOMMU);
    P("VFIO_GROUP_GET_STATUS", VFIO_GROUP_GET_STATUS);
    P("VFIO_GROUP_SET_CONTAINER", VFIO_GROUP_SET_CONTAINER);
    P("VFIO_GROUP_UNSET_CONTAINER", VFIO_GROUP_UNSET_CONTAINER);
    P("VFIO_IOMMU_MAP_DMA", VFIO_IOMMU_MAP_DMA);
    P("VFIO_IOMMU_UNMAP_DMA", VFIO_IOMMU_UNMAP_DMA);
    P("VFIO_GROUP_FLAGS_VIABLE", VFIO_GROUP_FLAGS_VIABLE);
    P("VFIO_GROUP_FLAGS_CONTAINER_SET", VFIO_GROUP_FLAGS_CONTAINER_SET);
    P("VFIO_DMA_MAP_FLAG_READ", VFIO_DMA_MAP_FLAG_READ);
    P("VFIO_DMA_MAP_FLAG_WRITE", VFIO_DMA_MAP_FLAG_WRITE);
    P("VFIO_GROUP_GET_DEVICE_FD", VFIO_GROUP_GET_DEVICE_FD);
    P("VFIO_DEVICE_GET_REGION_INFO", VFIO_DEVICE_GET_REGION_INFO);
    P("VFIO_REGION_INFO_FLAG_READ", VFIO_REGION_INFO_FLAG_READ);
    P("VFIO_REGION_INFO_FLAG_WRITE", VFIO_REGION_INFO_FLAG_WRITE);
    P("VFIO_REGION_INFO_FLAG_MMAP", VFIO_REGION_INFO_FLAG_MMAP);
    P("VFIO_PCI_BAR0_REGION_INDEX", VFIO_PCI_BAR0_REGION_INDEX);
    P("VFIO_PCI_CONFIG_REGION_INDEX", VFIO_PCI_CONFIG_REGION_INDEX);
    P("region_info.size", sizeof(struct vfio_region_info));
    P("region_info.argsz", offsetof(struct vfio_region_info, argsz));
    P("region_info.flags", offsetof(struct vfio_region_info, flags));
    P("region_info.index", offsetof(struct vfio_region_info, index));
    P("region_info.cap_offset", offsetof(struct vfio_region_info, cap_offset));
    P("region_info.size_field", offsetof(struct vfio_region_info, size));
    P("region_info.offset", offsetof(struct vfio_region_info, offset));
    P("group_status.size", sizeof(struct vfio_group_status));
    P("group_status.argsz", offsetof(struct vfio_group_status, argsz));
    P("group_status.flags", offsetof(struct vfio_group_status, flags));
    P("dma_map.size", sizeof(struct vfio_iommu_type1_dma_map));
    P("dma_map.argsz", offsetof(struct vfio_iommu_type1_dma_map, argsz));
    P("dma_map.flags", offsetof(struct vfio_iommu_type1_dma_map, flags));
    P("dma_map.vaddr", offsetof(struct vfio_iommu_type1_dma_map, vaddr));
    P("dma_map.iova", offsetof(struct vfio_iommu_type1_dma_map, iova));
    P("dma_map.size_field", offsetof(struct vfio_iommu_type1_dma_map, size));
    P("dma_unmap.size", sizeof(struct vfio_iommu_type1_dma_unmap));
    P("dma_unmap.argsz", offsetof(struct vfio_iommu_type1_dma_unmap, argsz));
    P("dma_unmap.flags", offsetof(struct vfio_iommu_type1_dma_unmap, flags));
    P("dma_unmap.iova", offsetof(struct vfio_iommu_type1_dma_unmap, iova));
    P("dma_unmap.size_field", offsetof(struct vfio_iommu_type1_dma_unmap, size));

    P("RPROC_MAGIC", RPROC_MAGIC);
    P("ti_attach.size", sizeof(struct ti_rproc_dma_buf_attach_data));
    P("ti_attach.fd", offsetof(struct ti_rproc_dma_buf_attach_data, fd));
    P("ti_attach.da", offsetof(struct ti_rproc_dma_buf_attach_data, da));
    P("TI_RPROC_IOC_DMA_BUF_ATTACH", TI_RPROC_IOC_DMA_BUF_ATTACH);
    return 0;
}
"#;

#[path = "../../intercore-wire/tests/support/c_values.rs"]
mod c_values;

fn kernel_values() -> HashMap<String, u64> {
    c_values::c_values("uapi", C_PROGRAM)
}

/// Every dma-buf, dma-heap, udmabuf and VFIO type1 struct size, field offset, flag value
/// and ioctl number we use equals what the installed kernel uAPI headers say; TI's
/// `RPROC_IOC_DMA_BUF_ATTACH` equals the C compiler's encoding of TI's declaration.
#[test]
fn layouts_flags_and_ioctls_match_kernel_headers() {
    let k = kernel_values();
    let ours: Vec<(&str, u64)> = vec![
        ("dma_buf_sync.size", size_of::<DmaBufSync>() as u64),
        ("dma_buf_sync.flags", offset_of!(DmaBufSync, flags) as u64),
        ("DMA_BUF_SYNC_READ", DMA_BUF_SYNC_READ),
        ("DMA_BUF_SYNC_WRITE", DMA_BUF_SYNC_WRITE),
        ("DMA_BUF_SYNC_RW", DMA_BUF_SYNC_RW),
        ("DMA_BUF_SYNC_START", DMA_BUF_SYNC_START),
        ("DMA_BUF_SYNC_END", DMA_BUF_SYNC_END),
        ("DMA_BUF_IOCTL_SYNC", DMA_BUF_IOCTL_SYNC as u64),
        ("heap_alloc.size", size_of::<DmaHeapAllocationData>() as u64),
        (
            "heap_alloc.len",
            offset_of!(DmaHeapAllocationData, len) as u64,
        ),
        (
            "heap_alloc.fd",
            offset_of!(DmaHeapAllocationData, fd) as u64,
        ),
        (
            "heap_alloc.fd_flags",
            offset_of!(DmaHeapAllocationData, fd_flags) as u64,
        ),
        (
            "heap_alloc.heap_flags",
            offset_of!(DmaHeapAllocationData, heap_flags) as u64,
        ),
        ("DMA_HEAP_IOCTL_ALLOC", DMA_HEAP_IOCTL_ALLOC as u64),
        ("udmabuf_create.size", size_of::<UdmabufCreate>() as u64),
        (
            "udmabuf_create.memfd",
            offset_of!(UdmabufCreate, memfd) as u64,
        ),
        (
            "udmabuf_create.flags",
            offset_of!(UdmabufCreate, flags) as u64,
        ),
        (
            "udmabuf_create.offset",
            offset_of!(UdmabufCreate, offset) as u64,
        ),
        (
            "udmabuf_create.size_field",
            offset_of!(UdmabufCreate, size) as u64,
        ),
        ("UDMABUF_FLAGS_CLOEXEC", UDMABUF_FLAGS_CLOEXEC as u64),
        ("UDMABUF_CREATE", UDMABUF_CREATE as u64),
        ("VFIO_API_VERSION", VFIO_API_VERSION as u64),
        ("VFIO_TYPE1_IOMMU", VFIO_TYPE1_IOMMU as u64),
        ("VFIO_TYPE1v2_IOMMU", VFIO_TYPE1V2_IOMMU as u64),
        ("VFIO_GET_API_VERSION", VFIO_GET_API_VERSION as u64),
        ("VFIO_CHECK_EXTENSION", VFIO_CHECK_EXTENSION as u64),
        ("VFIO_SET_IOMMU", VFIO_SET_IOMMU as u64),
        ("VFIO_GROUP_GET_STATUS", VFIO_GROUP_GET_STATUS as u64),
        ("VFIO_GROUP_SET_CONTAINER", VFIO_GROUP_SET_CONTAINER as u64),
        (
            "VFIO_GROUP_UNSET_CONTAINER",
            VFIO_GROUP_UNSET_CONTAINER as u64,
        ),
        ("VFIO_IOMMU_MAP_DMA", VFIO_IOMMU_MAP_DMA as u64),
        ("VFIO_IOMMU_UNMAP_DMA", VFIO_IOMMU_UNMAP_DMA as u64),
        ("VFIO_GROUP_FLAGS_VIABLE", VFIO_GROUP_FLAGS_VIABLE as u64),
        (
            "VFIO_GROUP_FLAGS_CONTAINER_SET",
            VFIO_GROUP_FLAGS_CONTAINER_SET as u64,
        ),
        ("VFIO_DMA_MAP_FLAG_READ", VFIO_DMA_MAP_FLAG_READ as u64),
        ("VFIO_DMA_MAP_FLAG_WRITE", VFIO_DMA_MAP_FLAG_WRITE as u64),
        ("VFIO_GROUP_GET_DEVICE_FD", VFIO_GROUP_GET_DEVICE_FD as u64),
        (
            "VFIO_DEVICE_GET_REGION_INFO",
            VFIO_DEVICE_GET_REGION_INFO as u64,
        ),
        (
            "VFIO_REGION_INFO_FLAG_READ",
            VFIO_REGION_INFO_FLAG_READ as u64,
        ),
        (
            "VFIO_REGION_INFO_FLAG_WRITE",
            VFIO_REGION_INFO_FLAG_WRITE as u64,
        ),
        (
            "VFIO_REGION_INFO_FLAG_MMAP",
            VFIO_REGION_INFO_FLAG_MMAP as u64,
        ),
        (
            "VFIO_PCI_BAR0_REGION_INDEX",
            VFIO_PCI_BAR0_REGION_INDEX as u64,
        ),
        (
            "VFIO_PCI_CONFIG_REGION_INDEX",
            VFIO_PCI_CONFIG_REGION_INDEX as u64,
        ),
        ("region_info.size", size_of::<VfioRegionInfo>() as u64),
        (
            "region_info.argsz",
            offset_of!(VfioRegionInfo, argsz) as u64,
        ),
        (
            "region_info.flags",
            offset_of!(VfioRegionInfo, flags) as u64,
        ),
        (
            "region_info.index",
            offset_of!(VfioRegionInfo, index) as u64,
        ),
        (
            "region_info.cap_offset",
            offset_of!(VfioRegionInfo, cap_offset) as u64,
        ),
        (
            "region_info.size_field",
            offset_of!(VfioRegionInfo, size) as u64,
        ),
        (
            "region_info.offset",
            offset_of!(VfioRegionInfo, offset) as u64,
        ),
        ("group_status.size", size_of::<VfioGroupStatus>() as u64),
        (
            "group_status.argsz",
            offset_of!(VfioGroupStatus, argsz) as u64,
        ),
        (
            "group_status.flags",
            offset_of!(VfioGroupStatus, flags) as u64,
        ),
        ("dma_map.size", size_of::<VfioIommuType1DmaMap>() as u64),
        (
            "dma_map.argsz",
            offset_of!(VfioIommuType1DmaMap, argsz) as u64,
        ),
        (
            "dma_map.flags",
            offset_of!(VfioIommuType1DmaMap, flags) as u64,
        ),
        (
            "dma_map.vaddr",
            offset_of!(VfioIommuType1DmaMap, vaddr) as u64,
        ),
        (
            "dma_map.iova",
            offset_of!(VfioIommuType1DmaMap, iova) as u64,
        ),
        (
            "dma_map.size_field",
            offset_of!(VfioIommuType1DmaMap, size) as u64,
        ),
        ("dma_unmap.size", size_of::<VfioIommuType1DmaUnmap>() as u64),
        (
            "dma_unmap.argsz",
            offset_of!(VfioIommuType1DmaUnmap, argsz) as u64,
        ),
        (
            "dma_unmap.flags",
            offset_of!(VfioIommuType1DmaUnmap, flags) as u64,
        ),
        (
            "dma_unmap.iova",
            offset_of!(VfioIommuType1DmaUnmap, iova) as u64,
        ),
        (
            "dma_unmap.size_field",
            offset_of!(VfioIommuType1DmaUnmap, size) as u64,
        ),
        ("RPROC_MAGIC", RPROC_MAGIC as u64),
        ("ti_attach.size", size_of::<RprocDmaBufAttachData>() as u64),
        ("ti_attach.fd", offset_of!(RprocDmaBufAttachData, fd) as u64),
        ("ti_attach.da", offset_of!(RprocDmaBufAttachData, da) as u64),
        (
            "TI_RPROC_IOC_DMA_BUF_ATTACH",
            RPROC_IOC_DMA_BUF_ATTACH as u64,
        ),
    ];
    for (key, val) in &ours {
        let kv = *k
            .get(*key)
            .unwrap_or_else(|| panic!("the C program did not print {key}"));
        assert_eq!(*val, kv, "{key}: ours {val:#x}, kernel header {kv:#x}");
    }
    assert_eq!(ours.len(), k.len(), "every printed value is compared");
}
