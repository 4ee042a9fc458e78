/* ffi-echo: a C firmware whose rpmsg is intercore's remote role, linked as a static
 * library through its C ABI (crates/intercore-ffi, include/intercore.h). Written for this
 * project. The C side is only what a BSP and an application write: the resource table,
 * the platform hooks (no doorbell on QEMU -M none: the rings are polled; the clock is the
 * PMU cycle counter), and an echo service.
 *
 * "rpmsg-raw" answers every message with the same bytes, to its sender: even-numbered
 * replies are sent by copy (intercore_remote_send), odd-numbered ones written in place in
 * the host's buffer (intercore_remote_send_with). Received by a wait with a copy
 * (intercore_remote_recv). When the host goes away (`intercore down`) it exits with 0; any
 * other failure prints the status and exits with 2 (as firmware/images). */
#include "../common/board.h"
#include "../common/rsc.h"
#include "intercore.h"
#include <string.h>

/* The shared window the library owns: from the table (1 MiB) to the end of the 16 MiB
 * file; QEMU -M none: CPU address = the host's device address. */
#define SHM_BASE 0x00100000u
#define SHM_LEN 0x00f00000u
/* Where the host's buffers may lie: the window after the table's page. */
#define BUFFERS_DA 0x00200000u
#define BUFFERS_LEN 0x00e00000u

struct ffi_rsc_table {
    struct rsc_hdr hdr;
    uint32_t offset[1];
    struct rsc_vdev vdev;
    struct rsc_vring vring0;
    struct rsc_vring vring1;
};

/* One rpmsg vdev with the name service, vrings placed by the host (ANY), 256 entries. */
__attribute__((section(".resource_table"), used)) struct ffi_rsc_table rsc_table = {
    .hdr = {1, 1, {0, 0}},
    .offset = {__builtin_offsetof(struct ffi_rsc_table, vdev)},
    .vdev = {RSC_VDEV, VIRTIO_ID_RPMSG, 0, VIRTIO_RPMSG_F_NS, 0, 0, 0, 2, {0, 0}},
    .vring0 = {FW_RSC_ADDR_ANY, 4096, 256, 0, 0},
    .vring1 = {FW_RSC_ADDR_ANY, 4096, 256, 1, 0},
};

static intercore_remote bus; /* the library's state: ours, in .bss */

void intercore_panic(void)
{
    con_puts("[ffi-echo] intercore_panic: internal error in the library\n");
    board_exit(3);
}

static int32_t ring_host(void *ctx, uint32_t notify_id)
{
    (void)ctx;
    (void)notify_id;
    return 0; /* no doorbell on this machine: the host polls the rings */
}

static uint64_t now_us(void *ctx)
{
    (void)ctx;
    return board_ticks64() * 64u / 1000u; /* ticks of 64 cycles at about 1 GHz */
}

struct reply {
    const uint8_t *data;
    size_t len;
};

static size_t fill(void *ctx, uint8_t *buf, size_t room)
{
    const struct reply *r = ctx;
    size_t n = r->len < room ? r->len : room;
    memcpy(buf, r->data, n);
    return n;
}

static void fpu_on(void)
{
    /* CPACR: full access to cp10/cp11; FPEXC.EN. Before any library code (built for
     * armv7r-none-eabihf, it may use the VFP registers). */
    uint32_t cpacr;
    __asm__ volatile("mrc p15, 0, %0, c1, c0, 2" : "=r"(cpacr));
    cpacr |= 0xfu << 20;
    __asm__ volatile("mcr p15, 0, %0, c1, c0, 2\n isb" ::"r"(cpacr));
    __asm__ volatile("vmsr fpexc, %0" ::"r"(0x40000000u));
}

static void check(int32_t st, const char *what)
{
    if (st == INTERCORE_E_PEER_GONE) {
        con_puts("[ffi-echo] host went away\n");
        board_exit(0);
    }
    if (st != INTERCORE_OK) {
        fatal(2, "[ffi-echo] %s: %s (%ld)\n", what, intercore_status_str(st), (long)st);
    }
}

int main(void)
{
    static uint8_t buf[512];
    fpu_on();
    const intercore_platform platform = {
        .ctx = NULL,
        .ring_host = ring_host,
        .host_rang = NULL, /* polled */
        .now_us = now_us,
        .cache_invalidate = NULL, /* QEMU: coherent */
        .cache_clean = NULL,
    };
    const intercore_remote_config config = {
        .shm_base = (void *)SHM_BASE,
        .shm_len = SHM_LEN,
        .shm_da = SHM_BASE,
        .rsc = &rsc_table,
        .rsc_len = sizeof rsc_table,
        .private_offset = 0,
        .private_len = 0,
        .buffers_da = BUFFERS_DA, /* no vdev0buffer carveout in the table */
        .buffers_len = BUFFERS_LEN,
        .buf_size = 0,
    };
    con_printf("[ffi-echo] up: table at %p, intercore_remote %u bytes\n", (void *)&rsc_table,
               (unsigned)sizeof bus);
    check(intercore_remote_attach(&bus, &platform, &config), "attach");
    check(intercore_remote_wait_ready(&bus, INTERCORE_FOREVER), "wait_ready");
    intercore_channel ch;
    check(intercore_remote_open(&bus, "rpmsg-raw", INTERCORE_ADDR_ANY, &ch), "open");
    con_printf("[ffi-echo] rpmsg-raw at %lu, max payload %u\n", (unsigned long)ch.local,
               (unsigned)intercore_remote_max_payload(&bus));
    for (uint32_t n = 0;; n++) {
        size_t len = 0;
        check(intercore_remote_recv(&bus, ch, buf, sizeof buf, &len, NULL, INTERCORE_FOREVER), "recv");
        if (n % 2 == 0) {
            check(intercore_remote_send(&bus, ch, buf, len, 5000), "send");
        } else {
            struct reply r = {buf, len};
            check(intercore_remote_send_with(&bus, ch, 5000, fill, &r), "send_with");
        }
    }
}
