/* ti-echo: a remote firmware that behaves, on the wire, as TI MCU+ SDK's
 * ipc_rpmsg_echo_linux example (examples/drivers/ipc/ipc_rpmsg_echo_linux/
 * ipc_rpmsg_echo.c) over TI's ipc_rpmsg driver (source/drivers/ipc_rpmsg/ipc_rpmsg.c,
 * ipc_rpmsg_vring.c) as of TexasInstruments/mcupsdk-core d0ccb3c. Written for this project
 * from reading those sources; no TI code is in it. Polled: QEMU's -M none has no mailbox,
 * so the main loop does what TI's mailbox interrupt (RPMessage_notifyCallback) does. */
#include "../common/board.h"
#include "../common/rsc.h"
#include "../common/vring.h"
#include <string.h>

/* ipc_rpmsg_echo.c */
#define SERVICE_PING "ti.ipc4.ping-pong"
#define ENDPT_PING 13u
#define SERVICE_CHRDEV "rpmsg_chrdev"
#define ENDPT_CHRDEV 14u
#define MAX_MSG_SIZE 496u
/* ipc_rpmsg_priv.h */
#define LINUX_MSG_SIZE 512u       /* RPMESSAGE_LINUX_MSG_SIZE */
#define MAX_LOCAL_ENDPT 64u       /* RPMESSAGE_MAX_LOCAL_ENDPT */
#define CTRL_ENDPT 53u            /* RPMESSAGE_CTRL_ENDPOINT_ID */
#define SELF_CORE_ID 1u           /* AM64x CSL_CORE_ID_R5FSS0_0, written into "srcCoreId" */
#define TRACE_LEN 4096u           /* DebugP_MEM_LOG_SIZE */
#define RAM_END 0x01000000u       /* the shared file: 16 MiB at 0 */

/* The memory log Linux reads through the trace entry (TI: gDebugMemLog). */
static char trace_buf[TRACE_LEN] __attribute__((aligned(128)));
static uint32_t trace_pos;

/* The table of TI's doc sample IpcRPMessage_linux_sample.c (RPMessage_ResourceTable in
 * source/drivers/ipc_rpmsg/include/ipc_rpmsg_linux_resource_table.h): vdev + trace. */
struct ti_rsc_table {
    struct rsc_hdr hdr;
    uint32_t offset[2];
    struct rsc_vdev vdev;
    struct rsc_vring vring0;
    struct rsc_vring vring1;
    struct rsc_trace trace;
};

__attribute__((section(".resource_table"), aligned(4096), used)) struct ti_rsc_table rsc_table = {
    .hdr = {1, 2, {0, 0}},
    .offset = {__builtin_offsetof(struct ti_rsc_table, vdev), __builtin_offsetof(struct ti_rsc_table, trace)},
    .vdev = {RSC_VDEV, VIRTIO_ID_RPMSG, 0, VIRTIO_RPMSG_F_NS, 0, 0, 0, 2, {0, 0}},
    .vring0 = {FW_RSC_ADDR_ANY, 4096, 256, 1, 0},
    .vring1 = {FW_RSC_ADDR_ANY, 4096, 256, 2, 0},
    .trace = {RSC_TRACE, 0 /* set below: the linker places trace_buf */, TRACE_LEN, 0, "trace:r5fss0_0"},
};

static void log_line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void log_line(const char *fmt, ...)
{
    char line[160];
    va_list ap;
    va_start(ap, fmt);
    fmt_vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    con_puts(line);
    /* DebugP's memory log wraps around its buffer (DebugP_memLogWriterPutChar) */
    for (const char *c = line; *c; c++) {
        trace_buf[trace_pos] = *c;
        trace_pos = (trace_pos + 1u) % TRACE_LEN;
    }
}

/* TI's ring state: tx = vring 0 (we fill, Linux receives), rx = vring 1. */
static struct vq tx, rx;

static uint32_t ti_align(uint32_t value, uint32_t align)
{
    return (value + align - 1u) & ~(align - 1u); /* RPMessage_align */
}

static void check_ring(const char *name, const volatile struct rsc_vring *v, uint32_t extra)
{
    if (v->da == FW_RSC_ADDR_ANY || v->num == 0 || (v->num & (v->num - 1u)) != 0 || v->align == 0 ||
        (v->align & (v->align - 1u)) != 0 || v->da >= RAM_END || RAM_END - v->da < extra) {
        /* TI would use these values as they are and fault; say why instead */
        fatal(2, "FATAL: %s da %08x num %u align %u: unusable after status 0x7\n", name, (unsigned)v->da,
              (unsigned)v->num, (unsigned)v->align);
    }
}

/* RPMessage_vringResetLinux (ipc_rpmsg_vring.c): the ring pointers from the table, with
 * TI's own arithmetic; for vring 0 (isTx) also RPMessage_vringResetInternal's rewrite of
 * every descriptor to a buffer at vring0.da + offset_buf, the avail ring filled with all
 * of them and the used ring cleared. */
static void reset_linux(struct vq *q, const volatile struct rsc_vring *v, int is_tx)
{
    uint32_t base = v->da, align = v->align, num = v->num;
    uint32_t offset_avail = 16u * num;
    uint32_t offset_used = offset_avail + ti_align(2u * (2u + num), align);
    uint32_t offset_buf = offset_used + ti_align(4u + 8u * num, align);
    /* "buffer offset is aligned to numBuf*msgSize*2, eg, 512*256*2 = 256KB" */
    offset_buf = ti_align(offset_buf, num * LINUX_MSG_SIZE * 2u);

    check_ring(is_tx ? "vring0" : "vring1", v, is_tx ? offset_buf + num * LINUX_MSG_SIZE : offset_used + 4u + 8u * num);
    q->base = base;
    q->num = (uint16_t)num;
    q->last_avail = 0;
    q->desc = (volatile struct vring_desc *)(uintptr_t)base;
    q->avail = (volatile struct vring_avail *)(uintptr_t)(base + offset_avail);
    q->used = (volatile struct vring_used *)(uintptr_t)(base + offset_used);
    if (!is_tx) {
        return; /* "RX buffers are initialized by Linux side" */
    }
    for (uint32_t i = 0; i < num; i++) {
        q->desc[i].addr = base + offset_buf + i * LINUX_MSG_SIZE;
        q->desc[i].len = LINUX_MSG_SIZE;
        q->desc[i].flags = 0;
        q->desc[i].next = 0;
    }
    q->avail->idx = 0;
    q->avail->flags = 0;
    for (uint32_t i = 0; i < num; i++) {
        q->avail->ring[i] = (uint16_t)i;
        q->avail->idx++;
    }
    q->used->idx = 0;
    q->used->flags = 0;
    for (uint32_t i = 0; i < num; i++) {
        q->used->ring[i].id = 0;
        q->used->ring[i].len = 0;
    }
    dmb();
    log_line("[IPC RPMSG ECHO] vring0 at %08x rewritten: %u buffers at %08x\n", (unsigned)base, (unsigned)num,
             (unsigned)(base + offset_buf));
}

/* RPMessage_send: a free TX buffer (RPMessage_vringGetEmptyTxBuf, waiting as long as it
 * takes: SystemP_WAIT_FOREVER), the header with TI's srcCoreId in the reserved word, the
 * payload truncated to the descriptor's length, used length = header + payload. */
static void ti_send(uint32_t local, uint32_t remote, const void *data, uint32_t len)
{
    uint16_t head;
    while (!vq_take(&tx, &head)) {
        tx.used->flags &= (uint16_t)~VRING_USED_F_NO_NOTIFY;
    }
    uint32_t addr = (uint32_t)tx.desc[head].addr;
    uint32_t buf_len = tx.desc[head].len;
    if (len > buf_len - RPMSG_HDR_LEN) {
        log_line("WARNING: [IPC RPMSG] Message send to remote core 5 @ %u end point truncated due to lack of space "
                 "in vring buffer !!!\n",
                 (unsigned)remote);
        len = buf_len - RPMSG_HDR_LEN;
    }
    volatile struct rpmsg_hdr *h = (volatile struct rpmsg_hdr *)(uintptr_t)addr;
    h->src = local;
    h->dst = remote;
    h->reserved = SELF_CORE_ID;
    h->flags = 0;
    h->len = (uint16_t)len;
    memcpy((void *)(uintptr_t)(addr + RPMSG_HDR_LEN), data, len);
    vq_give(&tx, head, len + RPMSG_HDR_LEN);
    /* IpcNotify_sendMsg(..., RPMESSAGE_LINUX_TX_VRING_ID): no mailbox here, the host polls */
}

/* RPMessage_announce: 40 bytes from the control endpoint to the control endpoint. */
static void announce(uint32_t endpt, const char *name)
{
    struct rpmsg_ns_msg m;
    memset(&m, 0, sizeof m);
    strncpy(m.name, name, sizeof m.name - 1u);
    m.addr = endpt;
    m.flags = 0;
    ti_send(CTRL_ENDPT, CTRL_ENDPT, &m, sizeof m);
}

/* RPMessage_vringPutEmptyRxBuf for Linux: used length = the descriptor's length. */
static void rx_done(uint16_t head)
{
    vq_give(&rx, head, rx.desc[head].len);
}

/* RPMessage_notifyCallback(msgValue = RPMESSAGE_LINUX_RX_VRING_ID) → RPMessage_recvHandler
 * for every full buffer, then the echo task's RPMessage_recv + RPMessage_send. */
static void poll_rx(void)
{
    static uint8_t msg[MAX_MSG_SIZE + 1];
    uint16_t head;
    while (vq_take(&rx, &head)) {
        uint32_t addr = (uint32_t)rx.desc[head].addr;
        volatile struct rpmsg_hdr *h = (volatile struct rpmsg_hdr *)(uintptr_t)addr;
        uint32_t dst = h->dst, src = h->src, len = h->len;
        if (dst >= MAX_LOCAL_ENDPT || (dst != ENDPT_PING && dst != ENDPT_CHRDEV)) {
            /* no object at that endpoint (or the control endpoint, whose user callback is
             * not set in the example): the buffer goes straight back, message dropped */
            rx_done(head);
            continue;
        }
        if (len > MAX_MSG_SIZE) {
            log_line("WARNING: [IPC RPMSG] Message recv @ %u local end point truncated due to insufficient user "
                     "buffer size !!!\n",
                     (unsigned)dst);
            len = MAX_MSG_SIZE;
        }
        memcpy(msg, (const void *)(uintptr_t)(addr + RPMSG_HDR_LEN), len);
        rx_done(head);
        if (len == 0) {
            /* RPMessage_send refuses dataLen 0, and the echo task asserts on its status:
             * TI's DebugP_assert stops the core there. */
            fatal(3, "ASSERT: ipc_recv_task_main: status==SystemP_SUCCESS (a 0-byte message to endpoint %u)\n",
                  (unsigned)dst);
        }
        ti_send(dst, src, msg, len);
    }
}

int main(void)
{
    rsc_table.trace.da = (uint32_t)(uintptr_t)trace_buf;
    log_line("[IPC RPMSG ECHO] ti-echo: behaves as TI MCU+ SDK ipc_rpmsg_echo_linux (own code)\n");

    /* RPMessage_waitForLinuxReady: the vdev status must be exactly 0x7 */
    volatile struct ti_rsc_table *t = &rsc_table;
    uint8_t seen = 0;
    for (;;) {
        uint8_t s = t->vdev.status;
        if (s == 0x7u) {
            break;
        }
        if (s != seen) {
            log_line("[IPC RPMSG ECHO] vdev status 0x%x: waiting for exactly 0x7 (RPMessage_waitForLinuxReady)\n",
                     (unsigned)s);
            seen = s;
        }
    }
    dmb();
    reset_linux(&rx, &t->vring1, 0);
    reset_linux(&tx, &t->vring0, 1);

    /* ipc_rpmsg_create_recv_tasks: endpoints 13 and 14, then the two announcements */
    announce(ENDPT_PING, SERVICE_PING);
    announce(ENDPT_CHRDEV, SERVICE_CHRDEV);
    log_line("[IPC RPMSG ECHO] Remote Core waiting for messages at end point %u and %u ... !!!\n",
             (unsigned)ENDPT_PING, (unsigned)ENDPT_CHRDEV);
    for (;;) {
        poll_rx();
    }
}
