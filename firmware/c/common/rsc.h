/* Resource-table and virtio/rpmsg wire structures, written from the Linux kernel's
 * published layouts (include/linux/remoteproc.h, include/uapi/linux/virtio_ring.h,
 * drivers/rpmsg/virtio_rpmsg_bus.c). Written for this project. */
#ifndef FW_RSC_H
#define FW_RSC_H

#include <stdint.h>

#define RSC_CARVEOUT 0u
#define RSC_TRACE 2u
#define RSC_VDEV 3u
#define FW_RSC_ADDR_ANY 0xffffffffu
#define VIRTIO_ID_RPMSG 7u
#define VIRTIO_RPMSG_F_NS 1u

#define VIRTIO_STATUS_ACKNOWLEDGE 1u
#define VIRTIO_STATUS_DRIVER 2u
#define VIRTIO_STATUS_DRIVER_OK 4u
#define VIRTIO_STATUS_FEATURES_OK 8u

struct rsc_hdr {
    uint32_t ver;
    uint32_t num;
    uint32_t reserved[2];
};

struct rsc_vring {
    uint32_t da;
    uint32_t align;
    uint32_t num;
    uint32_t notifyid;
    uint32_t pa;
};

struct rsc_vdev {
    uint32_t type;
    uint32_t id;
    uint32_t notifyid;
    uint32_t dfeatures;
    uint32_t gfeatures;
    uint32_t config_len;
    uint8_t status;
    uint8_t num_of_vrings;
    uint8_t reserved[2];
};

struct rsc_trace {
    uint32_t type;
    uint32_t da;
    uint32_t len;
    uint32_t reserved;
    char name[32];
};

/* virtio split ring */
#define VRING_DESC_F_NEXT 1u
#define VRING_DESC_F_WRITE 2u
#define VRING_USED_F_NO_NOTIFY 1u
#define VRING_AVAIL_F_NO_INTERRUPT 1u

struct vring_desc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags;
    uint16_t next;
};

struct vring_avail {
    uint16_t flags;
    uint16_t idx;
    uint16_t ring[];
};

struct vring_used_elem {
    uint32_t id;
    uint32_t len;
};

struct vring_used {
    uint16_t flags;
    uint16_t idx;
    struct vring_used_elem ring[];
};

/* rpmsg */
#define RPMSG_NS_ADDR 53u
#define RPMSG_NS_CREATE 0u
#define RPMSG_NS_DESTROY 1u
#define RPMSG_HDR_LEN 16u

struct rpmsg_hdr {
    uint32_t src;
    uint32_t dst;
    uint32_t reserved;
    uint16_t len;
    uint16_t flags;
};

struct rpmsg_ns_msg {
    char name[32];
    uint32_t addr;
    uint32_t flags;
};

#endif
