/* ffi-offload: a C firmware serving intercore's zero-copy data plane and an echo service
 * through intercore's C ABI (crates/intercore-ffi, include/intercore.h), built for the
 * emulated Cortex-R5F (QEMU -M none) and the emulated Cortex-M4F (QEMU mps2-an386; board
 * support in ../ffi-m4f). Written for this project. The C side is what a BSP and an
 * application write: the resource table (an rpmsg vdev with host-placed vrings and the
 * "intercore-dp" carveout the host lays its buffer pool in), the platform hooks (no
 * doorbell on these machines: the rings are polled; the clock; cache hooks that QEMU's
 * coherent memory does not need but that are called on every buffer and counted), and
 * the services:
 *   "rpmsg-raw"    answers every message with the same bytes, to its sender;
 *   "intercore-dp" computes the CRC32C of each submitted buffer's input and writes it
 *                  (4 bytes, little-endian) right after it, in place.
 * Both are received by one intercore_remote_recv_any loop; the data-plane completions are
 * flushed after each message. When the host goes away (`intercore down`) it prints what
 * it did and exits with 0; any other failure prints the status and exits with 2. */
#include "../common/board.h"
#include "../common/rsc.h"
#include "intercore.h"
#include <string.h>

#if defined(__ARM_ARCH_7EM__)
#define CORE_NAME "cortex-m4f"
/* mps2-an386: the shared file is the PSRAM at 0x21000000 (16 MiB); code and data are in
 * SSRAM1/SSRAM2, so the whole file is the window. */
#define SHM_BASE 0x21000000u
#define SHM_LEN 0x01000000u
#define VDEV_POOL 0x21200000u /* boards/qemu-m4f-ffi-offload.toml [vdev] pool_base */
#define DP_POOL 0x21400000u
#else
#define CORE_NAME "cortex-r5f"
/* -M none: the file is all RAM, from 0; code and data below 1 MiB, the window above. */
#define SHM_BASE 0x00100000u
#define SHM_LEN 0x00f00000u
#define VDEV_POOL 0x00200000u /* boards/qemu-r5f-ffi-offload.toml [vdev] pool_base */
#define DP_POOL 0x00400000u
#endif
#define VDEV_POOL_LEN 0x00100000u /* vrings and rpmsg buffers, placed by the host */
#define DP_POOL_LEN 0x00400000u   /* the data-plane window: 4 MiB */

struct rsc_carveout {
    uint32_t type;
    uint32_t da;
    uint32_t pa;
    uint32_t len;
    uint32_t flags;
    uint32_t reserved;
    char name[32];
};

struct offload_rsc_table {
    struct rsc_hdr hdr;
    uint32_t offset[2];
    struct rsc_vdev vdev;
    struct rsc_vring vring0;
    struct rsc_vring vring1;
    struct rsc_carveout pool;
};

/* One rpmsg vdev (name service, vrings placed by the host, 256 entries) and the pool
 * carveout, named as the host looks for it (intercore's DP_POOL_CARVEOUT). */
__attribute__((section(".resource_table"), used)) struct offload_rsc_table rsc_table = {
    .hdr = {1, 2, {0, 0}},
    .offset = {__builtin_offsetof(struct offload_rsc_table, vdev),
               __builtin_offsetof(struct offload_rsc_table, pool)},
    .vdev = {RSC_VDEV, VIRTIO_ID_RPMSG, 0, VIRTIO_RPMSG_F_NS, 0, 0, 0, 2, {0, 0}},
    .vring0 = {FW_RSC_ADDR_ANY, 4096, 256, 0, 0},
    .vring1 = {FW_RSC_ADDR_ANY, 4096, 256, 1, 0},
    .pool = {RSC_CARVEOUT, DP_POOL, DP_POOL, DP_POOL_LEN, 0, 0, "intercore-dp"},
};

static intercore_remote bus; /* the library's state: ours, in .bss */
static intercore_dp dp;

void intercore_panic(void)
{
    con_puts("[ffi-offload] intercore_panic: internal error in the library\n");
    board_exit(3);
}

static int32_t ring_host(void *ctx, uint32_t notify_id)
{
    (void)ctx;
    (void)notify_id;
    return 0; /* no doorbell on these machines: the host polls the rings */
}

static uint64_t now_us(void *ctx)
{
    (void)ctx;
#if defined(__ARM_ARCH_7EM__)
    return board_ticks64() / 25u; /* SysTick at 25 MHz */
#else
    return board_ticks64() * 64u / 1000u; /* ticks of 64 cycles at about 1 GHz */
#endif
}

/* The cache hooks a BSP with a data cache fills with its maintenance (an R5F's
 * DCIMVAC/DCCMVAC per line, an M7's SCB->DCIMVAC/DCCMVAC). QEMU models no cache: these
 * check that every range lies in the data-plane window (or is the resource table, which
 * the library invalidates once when the host sets DRIVER_OK) and count the calls. */
static struct {
    uint32_t invalidated, cleaned, table, outside;
} cache;

static void in_window(const void *p, size_t len)
{
    uintptr_t a = (uintptr_t)p;
    if (a < DP_POOL || len > DP_POOL_LEN || a - DP_POOL > DP_POOL_LEN - len) {
        cache.outside++;
    }
}

static void cache_invalidate(void *ctx, const void *p, size_t len)
{
    (void)ctx;
    if (p == (const void *)&rsc_table && len == sizeof rsc_table) {
        cache.table++;
        return;
    }
    in_window(p, len);
    cache.invalidated++;
}

static void cache_clean(void *ctx, const void *p, size_t len)
{
    (void)ctx;
    in_window(p, len);
    cache.cleaned++;
}

/* The work on one buffer. */
static uint32_t crc_work(void *ctx, intercore_dp_job *job, size_t *out_len)
{
    (void)ctx;
    switch (intercore_dp_job_op(job)) {
    case INTERCORE_DP_OP_CRC32C:
        break;
    case INTERCORE_DP_OP_NOP:
        *out_len = 0;
        return INTERCORE_DP_OK;
    default:
        return INTERCORE_DP_UNSUPPORTED;
    }
    size_t n = intercore_dp_job_len(job);
    const uint8_t *in;
    if (intercore_dp_job_input(job, &in) != INTERCORE_OK) {
        return INTERCORE_DP_FAULT;
    }
    uint32_t crc = intercore_crc32c(in, n);
    uint8_t *out;
    if (intercore_dp_job_output(job, n, 4, &out) != INTERCORE_OK) {
        return INTERCORE_DP_FAULT;
    }
    for (int i = 0; i < 4; i++) {
        out[i] = (uint8_t)(crc >> (8 * i));
    }
    *out_len = n + 4;
    return INTERCORE_DP_OK;
}

static void check(int32_t st, const char *what);

static struct {
    intercore_channel echo, dp;
    uint8_t buf[512];
    size_t len;
    uint32_t src;
    int pending;
    uint32_t echoed, dp_msgs, dropped;
} svc;

/* One message for any endpoint, in place: a data-plane submit is processed here (its
 * completions are queued for the flush); an echo request is copied out to be answered
 * after the callback (no send may happen inside it). */
static void on_msg(void *ctx, const intercore_msg *m)
{
    (void)ctx;
    if (m->dst == svc.dp.local) {
        svc.dp_msgs++;
        check(intercore_dp_process(&dp, m->dst, m->src, m->data, m->len, crc_work, NULL), "dp_process");
    } else if (m->dst == svc.echo.local && m->len <= sizeof svc.buf) {
        memcpy(svc.buf, m->data, m->len);
        svc.len = m->len;
        svc.src = m->src;
        svc.pending = 1;
    } else {
        svc.dropped++;
    }
}

static void fpu_on(void)
{
#if !defined(__ARM_ARCH_7EM__)
    /* CPACR: full access to cp10/cp11; FPEXC.EN. Before any library code (built for
     * armv7r-none-eabihf, it may use the VFP registers). The M4F's reset code does it. */
    uint32_t cpacr;
    __asm__ volatile("mrc p15, 0, %0, c1, c0, 2" : "=r"(cpacr));
    cpacr |= 0xfu << 20;
    __asm__ volatile("mcr p15, 0, %0, c1, c0, 2\n isb" ::"r"(cpacr));
    __asm__ volatile("vmsr fpexc, %0" ::"r"(0x40000000u));
#endif
}

static void check(int32_t st, const char *what)
{
    if (st == INTERCORE_E_PEER_GONE) {
        intercore_dp_stats s = intercore_dp_get_stats(&dp);
        con_printf("[ffi-offload] host went away: echoed %u, data-plane messages %u, jobs done %u "
                   "faults %u bad %u, cache invalidate %u clean %u table %u outside %u, dropped %u\n",
                   (unsigned)svc.echoed, (unsigned)svc.dp_msgs, (unsigned)s.done, (unsigned)s.faults,
                   (unsigned)s.bad, (unsigned)cache.invalidated, (unsigned)cache.cleaned,
                   (unsigned)cache.table, (unsigned)cache.outside, (unsigned)svc.dropped);
        board_exit(cache.outside == 0 ? 0 : 2);
    }
    if (st != INTERCORE_OK) {
        fatal(2, "[ffi-offload] %s: %s (%ld)\n", what, intercore_status_str(st), (long)st);
    }
}

int main(void)
{
    fpu_on();
    const intercore_platform platform = {
        .ctx = NULL,
        .ring_host = ring_host,
        .host_rang = NULL, /* polled */
        .now_us = now_us,
        .cache_invalidate = cache_invalidate,
        .cache_clean = cache_clean,
    };
    const intercore_remote_config config = {
        .shm_base = (void *)SHM_BASE,
        .shm_len = SHM_LEN,
        .shm_da = SHM_BASE,
        .rsc = &rsc_table,
        .rsc_len = sizeof rsc_table,
        .private_offset = 0,
        .private_len = 0,
        .buffers_da = VDEV_POOL, /* no vdev0buffer carveout in the table */
        .buffers_len = VDEV_POOL_LEN,
        .buf_size = 0,
    };
    const intercore_dp_config dp_config = {
        .pool_base = (void *)DP_POOL,
        .pool_len = DP_POOL_LEN,
        .pool_da = DP_POOL,
        .line_size = 32,
    };
    con_printf("[ffi-offload] up on " CORE_NAME ": table at %p, intercore_remote %u bytes, "
               "intercore_dp %u bytes\n",
               (void *)&rsc_table, (unsigned)sizeof bus, (unsigned)sizeof dp);
    check(intercore_remote_attach(&bus, &platform, &config), "attach");
    check(intercore_dp_init(&dp, &platform, &dp_config), "dp_init");
    check(intercore_remote_wait_ready(&bus, INTERCORE_FOREVER), "wait_ready");
    check(intercore_remote_open(&bus, "rpmsg-raw", INTERCORE_ADDR_ANY, &svc.echo), "open rpmsg-raw");
    check(intercore_remote_open(&bus, "intercore-dp", INTERCORE_ADDR_ANY, &svc.dp), "open intercore-dp");
    con_printf("[ffi-offload] rpmsg-raw at %lu, intercore-dp at %lu, max payload %u\n",
               (unsigned long)svc.echo.local, (unsigned long)svc.dp.local,
               (unsigned)intercore_remote_max_payload(&bus));
    for (;;) {
        check(intercore_remote_recv_any(&bus, INTERCORE_FOREVER, on_msg, NULL), "recv_any");
        if (svc.pending) {
            intercore_channel to = {svc.echo.local, svc.src};
            svc.pending = 0;
            check(intercore_remote_send(&bus, to, svc.buf, svc.len, 5000), "send");
            svc.echoed++;
        }
        check(intercore_dp_flush(&dp, &bus, 5000), "dp_flush");
    }
}
