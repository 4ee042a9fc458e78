//! Checks our layouts, flag values and ioctl numbers against the kernel's own uAPI headers
//! (`/usr/include/linux/virtio_ring.h`, `/usr/include/linux/rpmsg.h`), by compiling a small C
//! program with the system C compiler and comparing what it prints with our constants.

use intercore_wire::rpmsg::*;
use intercore_wire::uapi::*;
use intercore_wire::vring::*;
use std::collections::HashMap;
use std::mem::{offset_of, size_of};

const C_PROGRAM: &str = r#"
#include <stdio.h>
#include <stddef.h>
#include <sys/ioctl.h>
#include <linux/virtio_ring.h>
#include <linux/rpmsg.h>
#define P(k, v) printf("%s=%llu\n", k, (unsigned long long)(v))
int main(void) {
    P("desc.size", sizeof(struct vring_desc));
    P("desc.addr", offsetof(struct vring_desc, addr));
    P("desc.len", offsetof(struct vring_desc, len));
    P("desc.flags", offsetof(struct vring_desc, flags));
    P("desc.next", offsetof(struct vring_desc, next));
    P("used_elem.size", sizeof(struct vring_used_elem));
    P("used_elem.id", offsetof(struct vring_used_elem, id));
    P("used_elem.len", offsetof(struct vring_used_elem, len));
    P("avail.idx", offsetof(struct vring_avail, idx));
    P("avail.ring", offsetof(struct vring_avail, ring));
    P("used.idx", offsetof(struct vring_used, idx));
    P("used.ring", offsetof(struct vring_used, ring));
    P("F_NEXT", VRING_DESC_F_NEXT);
    P("F_WRITE", VRING_DESC_F_WRITE);
    P("F_INDIRECT", VRING_DESC_F_INDIRECT);
    P("USED_F_NO_NOTIFY", VRING_USED_F_NO_NOTIFY);
    P("AVAIL_F_NO_INTERRUPT", VRING_AVAIL_F_NO_INTERRUPT);
    P("RING_F_INDIRECT_DESC", VIRTIO_RING_F_INDIRECT_DESC);
    P("RING_F_EVENT_IDX", VIRTIO_RING_F_EVENT_IDX);
    P("vring_size.256.16", vring_size(256, 16));
    P("vring_size.256.4096", vring_size(256, 4096));
    P("vring_size.8.64", vring_size(8, 64));
    P("vring_size.1024.4", vring_size(1024, 4));
    P("ept_info.size", sizeof(struct rpmsg_endpoint_info));
    P("ept_info.name", offsetof(struct rpmsg_endpoint_info, name));
    P("ept_info.src", offsetof(struct rpmsg_endpoint_info, src));
    P("ept_info.dst", offsetof(struct rpmsg_endpoint_info, dst));
    P("RPMSG_ADDR_ANY", RPMSG_ADDR_ANY);
    P("CREATE_EPT", RPMSG_CREATE_EPT_IOCTL);
    P("DESTROY_EPT", RPMSG_DESTROY_EPT_IOCTL);
    P("CREATE_DEV", RPMSG_CREATE_DEV_IOCTL);
    P("RELEASE_DEV", RPMSG_RELEASE_DEV_IOCTL);
#ifdef RPMSG_GET_OUTGOING_FLOWCONTROL
    P("GET_OUTGOING_FLOWCONTROL", RPMSG_GET_OUTGOING_FLOWCONTROL);
    P("SET_INCOMING_FLOWCONTROL", RPMSG_SET_INCOMING_FLOWCONTROL);
#endif
    return 0;
}
"#;

#[path = "support/c_values.rs"]
mod c_values;

fn kernel_values() -> HashMap<String, u64> {
    c_values::c_values("layout", C_PROGRAM)
}

/// Every split-ring and rpmsg uAPI fact we rely on equals what the installed kernel headers say.
#[test]
fn layouts_flags_and_ioctls_match_kernel_headers() {
    let k = kernel_values();
    let l256 = VringLayout::new(256, 16).unwrap();
    let ours: Vec<(&str, u64)> = vec![
        ("desc.size", size_of::<Desc>() as u64),
        ("desc.addr", offset_of!(Desc, addr) as u64),
        ("desc.len", offset_of!(Desc, len) as u64),
        ("desc.flags", offset_of!(Desc, flags) as u64),
        ("desc.next", offset_of!(Desc, next) as u64),
        ("used_elem.size", size_of::<UsedElem>() as u64),
        ("used_elem.id", offset_of!(UsedElem, id) as u64),
        ("used_elem.len", offset_of!(UsedElem, len) as u64),
        ("avail.idx", (l256.avail_idx() - l256.avail_flags()) as u64),
        (
            "avail.ring",
            (l256.avail_ring(0) - l256.avail_flags()) as u64,
        ),
        ("used.idx", (l256.used_idx() - l256.used_flags()) as u64),
        ("used.ring", (l256.used_ring(0) - l256.used_flags()) as u64),
        ("F_NEXT", VRING_DESC_F_NEXT as u64),
        ("F_WRITE", VRING_DESC_F_WRITE as u64),
        ("F_INDIRECT", VRING_DESC_F_INDIRECT as u64),
        ("USED_F_NO_NOTIFY", VRING_USED_F_NO_NOTIFY as u64),
        ("AVAIL_F_NO_INTERRUPT", VRING_AVAIL_F_NO_INTERRUPT as u64),
        ("RING_F_INDIRECT_DESC", VIRTIO_RING_F_INDIRECT_DESC as u64),
        ("RING_F_EVENT_IDX", VIRTIO_RING_F_EVENT_IDX as u64),
        (
            "vring_size.256.16",
            VringLayout::new(256, 16).unwrap().size() as u64,
        ),
        (
            "vring_size.256.4096",
            VringLayout::new(256, 4096).unwrap().size() as u64,
        ),
        (
            "vring_size.8.64",
            VringLayout::new(8, 64).unwrap().size() as u64,
        ),
        (
            "vring_size.1024.4",
            VringLayout::new(1024, 4).unwrap().size() as u64,
        ),
        ("ept_info.size", size_of::<RpmsgEndpointInfo>() as u64),
        ("ept_info.name", offset_of!(RpmsgEndpointInfo, name) as u64),
        ("ept_info.src", offset_of!(RpmsgEndpointInfo, src) as u64),
        ("ept_info.dst", offset_of!(RpmsgEndpointInfo, dst) as u64),
        ("RPMSG_ADDR_ANY", RPMSG_ADDR_ANY as u64),
        ("CREATE_EPT", RPMSG_CREATE_EPT_IOCTL as u64),
        ("DESTROY_EPT", RPMSG_DESTROY_EPT_IOCTL as u64),
        ("CREATE_DEV", RPMSG_CREATE_DEV_IOCTL as u64),
        ("RELEASE_DEV", RPMSG_RELEASE_DEV_IOCTL as u64),
        (
            "GET_OUTGOING_FLOWCONTROL",
            RPMSG_GET_OUTGOING_FLOWCONTROL as u64,
        ),
        (
            "SET_INCOMING_FLOWCONTROL",
            RPMSG_SET_INCOMING_FLOWCONTROL as u64,
        ),
    ];
    let mut checked = 0;
    for (key, val) in ours {
        match k.get(key) {
            Some(&kv) => {
                assert_eq!(val, kv, "{key}: ours {val:#x}, kernel header {kv:#x}");
                checked += 1;
            }
            // The flow-control ioctls arrived in Linux 6.4 headers; older headers lack them.
            None if key.ends_with("FLOWCONTROL") => {}
            None => panic!("the C program did not print {key}"),
        }
    }
    assert!(checked >= 32, "only {checked} values were compared");
}
