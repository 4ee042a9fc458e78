/* zephyr-rsc: a remote firmware that behaves, on the wire, as Zephyr's
 * samples/subsys/ipc/openamp_rsc_table (src/main_remote.c, lib/open-amp/resource_table.c
 * with the sample's prj.conf: CONFIG_OPENAMP_RSC_TABLE_NUM_RPMSG_BUFF=8, IPM RX/TX ids 0/1,
 * no RAM console) running OpenAMP's remote (device) role (lib/remoteproc/
 * remoteproc_virtio.c, lib/rpmsg/rpmsg_virtio.c, lib/virtio/virtqueue.c). Written for this
 * project from reading those sources; no Zephyr or OpenAMP code is in it. Polled: the
 * main loop does what the sample's IPM callback + rproc_virtio_notified(vdev, VRING1_ID) do.
 *
 * Where it differs from the sample, on purpose: the "rpmsg-client-sample" responder echoes
 * every message of up to 496 bytes for ever (the sample copies into a 20-byte buffer and
 * stops after 100 messages; build with -DSC_MSG_LIMIT=100 for the count), because that is
 * the raw echo a host test drives. "rpmsg-tty" is as the sample: "TTY 0x%04x: " + message. */
#include "../common/board.h"
#include "../common/rsc.h"
#include "../common/vring.h"
#include <string.h>

/* The sample's zephyr,ipc_shm window (DT_CHOSEN(zephyr_ipc_shm)): buffers must lie in it.
 * Here: 2 MiB .. 16 MiB of the shared file (the table page at 1 MiB is outside it). */
#ifndef SHM_START_ADDR
#define SHM_START_ADDR 0x00200000u
#endif
#ifndef SHM_SIZE
#define SHM_SIZE 0x00e00000u
#endif
#ifndef SC_MSG_LIMIT
#define SC_MSG_LIMIT 0u /* 0: no limit (the count never comes back to 0 before it wraps) */
#endif

#define RPMSG_RESERVED_ADDRESSES 1024u /* first dynamic address (rpmsg_core.c) */
#define RPMSG_ADDR_ANY 0xffffffffu
#define RPMSG_ERR_NO_BUFF (-2002)
#define RPMSG_ERR_BUFF_SIZE (-2003)
#define TX_WAIT_TICKS (15000000000ull / 64u) /* RPMSG_TICK_COUNT * RPMSG_TICKS_PER_INTERVAL: 15 s */

struct zephyr_rsc_table {
    struct rsc_hdr hdr;
    uint32_t offset[1];
    struct rsc_vdev vdev;
    struct rsc_vring vring0;
    struct rsc_vring vring1;
};

/* resource_table.c: VDEV notify id 0, RPMSG_IPU_C0_FEATURES = 1, vrings "allocated by
 * Master processor" (-1), VRING_ALIGNMENT 16, 8 buffers, ids IPM_RX_ID 0 / IPM_TX_ID 1. */
__attribute__((section(".resource_table"), used)) struct zephyr_rsc_table rsc_table = {
    .hdr = {1, 1, {0, 0}},
    .offset = {__builtin_offsetof(struct zephyr_rsc_table, vdev)},
    .vdev = {RSC_VDEV, VIRTIO_ID_RPMSG, 0, VIRTIO_RPMSG_F_NS, 0, 0, 0, 2, {0, 0}},
    .vring0 = {FW_RSC_ADDR_ANY, 16, 8, 0, 0},
    .vring1 = {FW_RSC_ADDR_ANY, 16, 8, 1, 0},
};

static struct vq svq, rvq; /* device role: sends on vring 0, receives on vring 1 */
static int support_ns;
static uint32_t refused;

struct ept {
    const char *name;
    uint32_t addr;
    uint32_t dest_addr;
    int alive;
};
static struct ept sc_ept = {"rpmsg-client-sample", RPMSG_ADDR_ANY, RPMSG_ADDR_ANY, 0};
static struct ept tty_ept = {"rpmsg-tty", RPMSG_ADDR_ANY, RPMSG_ADDR_ANY, 0};
static uint32_t next_addr = RPMSG_RESERVED_ADDRESSES;
static uint32_t sc_count;

/* metal_io_phys_to_virt on the sample's shm_io: NULL outside the window. */
static void *shm_phys_to_virt(uint64_t phys)
{
    if (phys < SHM_START_ADDR || phys - SHM_START_ADDR >= SHM_SIZE) {
        return NULL;
    }
    return (void *)(uintptr_t)phys;
}

/* virtqueue_get_first_avail_buffer: the avail index is consumed before the address is
 * translated, so a refused buffer is gone (never returned to the host). */
static void *take_buffer(struct vq *q, uint16_t *head, uint32_t *len, const char *ring)
{
    if (!vq_take(q, head)) {
        return NULL;
    }
    uint64_t phys = q->desc[*head].addr;
    *len = q->desc[*head].len;
    void *p = shm_phys_to_virt(phys);
    if (p == NULL) {
        refused++;
        con_printf("openamp: %s descriptor %u: buffer %08x%08x outside the shared-memory window "
                   "[%08x, %08x): refused\n",
                   ring, (unsigned)*head, (unsigned)(phys >> 32), (unsigned)phys, (unsigned)SHM_START_ADDR,
                   (unsigned)(SHM_START_ADDR + SHM_SIZE));
    }
    return p;
}

/* rpmsg_virtio_send_offchannel_raw → rpmsg_virtio_get_tx_payload_buffer (waits up to
 * 15 s for a buffer) → rpmsg_virtio_send_offchannel_nocopy: used length = the
 * descriptor's length (buff_len), not the message's. */
static int rpmsg_send_raw(uint32_t src, uint32_t dst, const void *data, uint32_t len)
{
    uint16_t head;
    uint32_t blen = 0;
    void *buf = NULL;
    uint64_t start = board_ticks64();
    for (;;) {
        buf = take_buffer(&svq, &head, &blen, "vring0");
        if (buf != NULL) {
            break;
        }
        if (board_ticks64() - start > TX_WAIT_TICKS) {
            return RPMSG_ERR_NO_BUFF;
        }
    }
    if (blen < RPMSG_HDR_LEN || len > blen - RPMSG_HDR_LEN) {
        /* the size check comes first in OpenAMP (rpmsg_virtio_get_buffer_size); the
         * buffer goes back unused */
        vq_give(&svq, head, blen);
        return RPMSG_ERR_BUFF_SIZE;
    }
    volatile struct rpmsg_hdr *h = buf;
    h->src = src;
    h->dst = dst;
    h->reserved = 0;
    h->len = (uint16_t)len;
    h->flags = 0;
    memcpy((uint8_t *)buf + RPMSG_HDR_LEN, data, len);
    vq_give(&svq, head, blen);
    return (int)len;
}

/* rpmsg_create_ept: address from the bitmap (1024 up), then the name-service message
 * when the host accepted VIRTIO_RPMSG_F_NS; on failure the endpoint is unregistered. */
static int create_ept(struct ept *e)
{
    e->addr = next_addr++;
    e->dest_addr = RPMSG_ADDR_ANY;
    if (support_ns) {
        struct rpmsg_ns_msg m;
        memset(&m, 0, sizeof m);
        strncpy(m.name, e->name, sizeof m.name);
        m.addr = e->addr;
        m.flags = RPMSG_NS_CREATE;
        int r = rpmsg_send_raw(e->addr, RPMSG_NS_ADDR, &m, sizeof m);
        if (r < 0) {
            return r;
        }
    }
    e->alive = 1;
    return 0;
}

static void destroy_ept(struct ept *e)
{
    if (support_ns) {
        struct rpmsg_ns_msg m;
        memset(&m, 0, sizeof m);
        strncpy(m.name, e->name, sizeof m.name);
        m.addr = e->addr;
        m.flags = RPMSG_NS_DESTROY;
        (void)rpmsg_send_raw(e->addr, RPMSG_NS_ADDR, &m, sizeof m);
    }
    e->alive = 0;
}

static void release_rx(uint16_t head)
{
    /* rpmsg_virtio_release_rx_buffer_nolock: used length = the descriptor's length */
    vq_give(&rvq, head, rvq.desc[head].len);
}

/* rpmsg_virtio_rx_callback: every filled buffer, the endpoint by destination address,
 * its destination bound to the first sender, the callback, then the buffer back. */
static void poll_rx(void)
{
    static uint8_t tx_buff[512];
    uint16_t head;
    uint32_t blen;
    for (;;) {
        uint8_t *buf;
        if (vq_pending(&rvq) == 0) {
            return;
        }
        buf = take_buffer(&rvq, &head, &blen, "vring1");
        if (buf == NULL) {
            return; /* "No more filled rx buffers": the loop ends, the entry is lost */
        }
        volatile struct rpmsg_hdr *h = (volatile struct rpmsg_hdr *)buf;
        h->reserved = head; /* rp_hdr->reserved = idx */
        uint32_t dst = h->dst, src = h->src, len = h->len;
        const uint8_t *data = buf + RPMSG_HDR_LEN;
        struct ept *e = NULL;
        if (sc_ept.alive && dst == sc_ept.addr) {
            e = &sc_ept;
        } else if (tty_ept.alive && dst == tty_ept.addr) {
            e = &tty_ept;
        }
        if (e != NULL && e->dest_addr == RPMSG_ADDR_ANY) {
            e->dest_addr = src;
        }
        if (e == &sc_ept) {
            /* rpmsg_recv_cs_callback copies; app_rpmsg_client_sample sends it back */
            static uint8_t msg[512];
            uint32_t n = len < sizeof msg ? len : sizeof msg;
            memcpy(msg, data, n);
            release_rx(head);
            sc_count++;
            (void)rpmsg_send_raw(sc_ept.addr, sc_ept.dest_addr, msg, n);
            if (sc_count == (uint32_t)SC_MSG_LIMIT) {
                destroy_ept(&sc_ept);
                con_puts("OpenAMP Linux sample client responder ended\n");
            }
        } else if (e == &tty_ept) {
            /* rpmsg_recv_tty_callback holds the buffer; app_rpmsg_tty answers
             * "TTY 0x%04x: " + message (12 + len bytes; too long → rpmsg_send fails,
             * unchecked) and releases it */
            if (len != 0) {
                uint32_t n = len <= sizeof tx_buff - 12u ? len : sizeof tx_buff - 12u;
                fmt_snprintf((char *)tx_buff, 13, "TTY 0x%04x: ", (unsigned)tty_ept.addr);
                memcpy(&tx_buff[12], data, n);
                (void)rpmsg_send_raw(tty_ept.addr, tty_ept.dest_addr, tx_buff, len + 12u);
            }
            release_rx(head);
        } else if (dst == RPMSG_NS_ADDR) {
            /* rpmsg_virtio_ns_callback → the sample's new_service_cb */
            if (len == sizeof(struct rpmsg_ns_msg)) {
                con_printf("new_service_cb: unexpected ns service receive for name %.32s\n", (const char *)data);
            }
            release_rx(head);
        } else {
            release_rx(head); /* no endpoint: returned, dropped */
        }
    }
}

int main(void)
{
    volatile struct zephyr_rsc_table *t = &rsc_table;
    con_puts("Starting application threads!\n");
    con_puts("OpenAMP[remote] Linux responder demo started\n");

    /* rproc_virtio_wait_remote_ready: only the DRIVER_OK bit counts */
    while ((t->vdev.status & VIRTIO_STATUS_DRIVER_OK) == 0) {
    }
    dmb();
    /* rproc_virtio_init_vring after DRIVER_OK: da, num and align as the host left them */
    for (int i = 0; i < 2; i++) {
        const volatile struct rsc_vring *v = i == 0 ? &t->vring0 : &t->vring1;
        if (v->da == FW_RSC_ADDR_ANY || v->num == 0 || (v->num & (v->num - 1u)) != 0 || v->align == 0 ||
            v->da >= 0x01000000u || 0x01000000u - v->da < vring_size(v->num, v->align)) {
            fatal(2, "failed to init vring %d (da %08x num %u align %u)\n", i, (unsigned)v->da, (unsigned)v->num,
                  (unsigned)v->align);
        }
        vq_attach(i == 0 ? &svq : &rvq, v->da, (uint16_t)v->num, v->align);
    }
    /* rpmsg_init_vdev: features = dfeatures & gfeatures */
    support_ns = (t->vdev.dfeatures & t->vdev.gfeatures & VIRTIO_RPMSG_F_NS) != 0;

    con_puts("OpenAMP[remote] Linux sample client responder started\n");
    int r = create_ept(&sc_ept);
    if (r != 0) {
        con_printf("[Linux sample client] Could not create endpoint: %d\n", r);
        con_puts("OpenAMP Linux sample client responder ended\n");
    }
    con_puts("OpenAMP[remote] Linux TTY responder started\n");
    r = create_ept(&tty_ept);
    if (r != 0) {
        con_printf("[Linux TTY] Could not create endpoint: %d\n", r);
        con_puts("OpenAMP Linux TTY responder ended\n");
    }
    for (;;) {
        poll_rx();
    }
}
