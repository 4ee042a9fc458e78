/* rpmsglite-remote: a remote firmware that behaves, on the wire, as NXP's RPMsg-Lite in
 * the remote role (nxp-mcuxpresso/rpmsg-lite lib/rpmsg_lite/rpmsg_lite.c
 * rpmsg_lite_remote_init and the remote_vq_ops, lib/virtio/virtqueue.c) running the
 * MCUXpresso SDK's rpmsg_lite_str_echo_rtos example for i.MX8M (endpoint 30, announced as
 * "rpmsg-virtual-tty-channel-1"), with the i.MX rsc_table.c (one vdev, fixed vrings,
 * align 0x1000, 256 buffers, notify ids 0/1). Written for this project from reading those
 * sources; no NXP code is in it.
 *
 * RPMsg-Lite reads no vdev status and no features: the link comes up when the master
 * notifies vring 0 (rpmsg_lite_tx_callback sets link_state). There is no mailbox on QEMU's
 * -M none, so the polled stand-in for the i.MX MU (env_isr(vector)) treats a change of a
 * ring's avail index as that ring's notification; a fresh ring's index is 0, so a
 * notification that came before this firmware looked is still seen (the MU latches it). */
#include "../common/board.h"
#include "../common/rsc.h"
#include "../common/vring.h"
#include <string.h>

/* i.MX8M rpmsg_platform.h / rpmsg_config.h; the base is this port's choice. */
#ifndef VDEV0_VRING_BASE
#define VDEV0_VRING_BASE 0x00200000u
#endif
#define VRING_ALIGN 0x1000u
#define VRING_SIZE 0x8000u
#define RL_BUFFER_COUNT 256u
#define RL_BUFFER_PAYLOAD_SIZE 496u
/* rpmsg_lite_str_echo_rtos */
#define LOCAL_EPT_ADDR 30u
#define NS_ANNOUNCE_STRING "rpmsg-virtual-tty-channel-1"
#define RL_NS_EPT_ADDR 53u
#define LOGGED_MESSAGES 4u

/* rpmsg_std_hdr: the reserved word is {idx, totlen} */
struct rl_hdr {
    uint32_t src;
    uint32_t dst;
    uint16_t idx;
    uint16_t totlen;
    uint16_t len;
    uint16_t flags;
};

struct imx_rsc_table {
    struct rsc_hdr hdr;
    uint32_t offset[1];
    struct rsc_vdev user_vdev;
    struct rsc_vring vring0;
    struct rsc_vring vring1;
};

/* rsc_table.c (i.MX8M): "SRTM virtio device entry", RSC_VDEV_FEATURE_NS */
__attribute__((section(".resource_table"), used)) const struct imx_rsc_table resources = {
    .hdr = {1, 1, {0, 0}},
    .offset = {__builtin_offsetof(struct imx_rsc_table, user_vdev)},
    .user_vdev = {RSC_VDEV, VIRTIO_ID_RPMSG, 0, VIRTIO_RPMSG_F_NS, 0, 0, 0, 2, {0, 0}},
    .vring0 = {VDEV0_VRING_BASE, VRING_ALIGN, RL_BUFFER_COUNT, 0, 0},
    .vring1 = {VDEV0_VRING_BASE + VRING_SIZE, VRING_ALIGN, RL_BUFFER_COUNT, 1, 0},
};

/* rpmsg_lite_remote_init: tvq = vqs[0] at shmem_addr, rvq = vqs[1] at + VRING_SIZE; the
 * remote never writes the rings at init (vq_ring_init runs in the master only). */
static struct vq tvq, rvq;
static int link_state;
static uint16_t seen_avail[2]; /* the MU stand-in: last avail index seen per ring */

/* vq_tx_alloc_remote / vq_tx_remote: any available buffer, used length = the
 * descriptor's length (virtqueue_get_buffer_length), the index in hdr.reserved.idx. */
static void send(uint32_t src, uint32_t dst, const void *data, uint32_t len)
{
    uint16_t head;
    while (!vq_take(&tvq, &head)) {
        /* rpmsg_lite_alloc_tx_buffer(RL_BLOCK): sleeps RL_MS_PER_INTERVAL and retries */
    }
    uint32_t addr = (uint32_t)tvq.desc[head].addr;
    volatile struct rl_hdr *h = (volatile struct rl_hdr *)(uintptr_t)addr;
    h->idx = head;
    h->dst = dst;
    h->src = src;
    h->len = (uint16_t)len;
    h->flags = 0;
    memcpy((void *)(uintptr_t)(addr + RPMSG_HDR_LEN), data, len);
    vq_give(&tvq, head, tvq.desc[head].len);
    /* virtqueue_kick → platform_notify: no MU here, the master polls */
}

static void poll_mailbox(void)
{
    uint16_t a0 = tvq.avail->idx;
    if (a0 != seen_avail[0]) {
        seen_avail[0] = a0;
        if (!link_state) {
            con_puts("RPMsg-Lite: vring 0 notified: link up\n");
        }
        link_state = 1; /* rpmsg_lite_tx_callback */
    }
}

int main(void)
{
    static uint8_t app_buf[512];
    static uint32_t count;
    con_puts("\r\nRPMSG String Echo FreeRTOS RTOS API Demo...\r\n");
    vq_attach(&tvq, VDEV0_VRING_BASE, RL_BUFFER_COUNT, VRING_ALIGN);
    vq_attach(&rvq, VDEV0_VRING_BASE + VRING_SIZE, RL_BUFFER_COUNT, VRING_ALIGN);

    while (!link_state) { /* rpmsg_lite_is_link_up */
        poll_mailbox();
    }
    /* rpmsg_lite_create_ept(30) + rpmsg_ns_announce(RL_NS_CREATE) */
    struct rpmsg_ns_msg m;
    memset(&m, 0, sizeof m);
    strncpy(m.name, NS_ANNOUNCE_STRING, sizeof m.name);
    m.addr = LOCAL_EPT_ADDR;
    m.flags = RPMSG_NS_CREATE;
    send(LOCAL_EPT_ADDR, RL_NS_EPT_ADDR, &m, sizeof m);
    con_puts("\r\nNameservice sent, ready for incoming messages...\r\n");

    for (;;) {
        uint16_t head;
        poll_mailbox();
        /* rpmsg_lite_rx_callback: every available buffer; vq_rx_remote */
        if (!vq_take(&rvq, &head)) {
            continue;
        }
        uint32_t addr = (uint32_t)rvq.desc[head].addr;
        uint32_t desc_len = rvq.desc[head].len;
        volatile struct rl_hdr *h = (volatile struct rl_hdr *)(uintptr_t)addr;
        uint32_t dst = h->dst, src = h->src, len = h->len;
        if (dst != LOCAL_EPT_ADDR) {
            vq_give(&rvq, head, desc_len); /* no endpoint: RL_RELEASE */
            continue;
        }
        h->idx = head; /* RL_HOLD: rpmsg_queue_rx_cb */
        if (len >= sizeof app_buf) {
            fatal(3, "ASSERT: len < sizeof(app_buf) (a %u-byte message)\n", (unsigned)len);
        }
        memcpy(app_buf, (const void *)(uintptr_t)(addr + RPMSG_HDR_LEN), len);
        if (count++ < LOGGED_MESSAGES) {
            app_buf[len] = 0;
            con_printf("Get Message From Master Side : [len : %u]\r\n", (unsigned)len);
        }
        if (len > RL_BUFFER_PAYLOAD_SIZE) {
            /* rpmsg_lite_send_nocopy returns RL_ERR_BUFF_SIZE; the example asserts */
            fatal(3, "ASSERT: rpmsg_lite_send_nocopy: RL_ERR_BUFF_SIZE (%u bytes)\n", (unsigned)len);
        }
        send(LOCAL_EPT_ADDR, src, app_buf, len);
        /* rpmsg_queue_nocopy_free → vq_rx_free_remote: used length = descriptor length */
        vq_give(&rvq, head, desc_len);
    }
}
