/*
 * RPMsg-Lite test apps for Linux userspace (scripts/test-real-peers.sh), over platform.c.
 *
 *   lite-app master SHM [SWEEPS]   rpmsg_lite_master_init, learns the echo service from
 *                                  the peer's name-service announcement (rpmsg_ns_bind),
 *                                  sends every payload size 1..=496 SWEEPS times and checks
 *                                  each echo byte for byte.
 * Both roles send odd sizes with rpmsg_lite_send and even sizes with the zero-copy API
 * (rpmsg_lite_alloc_tx_buffer + rpmsg_lite_send_nocopy), which checks the room the
 * buffer's used length reports.
 *   lite-app remote SHM [COUNT]    rpmsg_lite_remote_init, waits for the link, creates an
 *                                  endpoint, announces it as "rpmsg-lite-echo"
 *                                  (rpmsg_ns_announce) and echoes COUNT messages.
 *
 * INTEROP_INIT_DELAY_US=N (master) sleeps N us per buffer placed during
 * rpmsg_lite_master_init, so that a peer can be started while the master initialises.
 * The master prints "rpmsg-lite master: N passed, N failed" and exits non-zero unless
 * every message was verified.
 */
#include "rpmsg_lite.h"
#include "rpmsg_ns.h"
#include "interop.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PAYLOAD_MAX 496U
#define SERVICE "rpmsg-lite-echo"
#define MASTER_EPT 0x400U
#define REMOTE_EPT 30U
#define START_MS 60000U
#define STEP_MS 10000U
#define QLEN 1024U

/* Messages the endpoint callback copied, for the main loop (the callback runs inside
 * lx_poll, i.e. in "interrupt" context, and must not send). */
struct msg
{
    uint32_t src;
    uint32_t len;
    uint8_t data[PAYLOAD_MAX];
};
static struct msg queue[QLEN];
static unsigned q_head, q_tail;
static volatile uint32_t service_addr = 0xFFFFFFFFU;

static int32_t rx_cb(void *payload, uint32_t len, uint32_t src, void *priv)
{
    struct msg *m;
    (void)priv;
    if (q_tail - q_head == QLEN)
    {
        fprintf(stderr, "lite-app: receive queue full (%u messages), message from %#x dropped\n", QLEN, src);
        exit(3);
    }
    m = &queue[q_tail % QLEN];
    m->src = src;
    m->len = len > PAYLOAD_MAX ? PAYLOAD_MAX : len;
    memcpy(m->data, payload, m->len);
    q_tail++;
    return RL_RELEASE;
}

static void ns_cb(uint32_t addr, const char *name, uint32_t flags, void *priv)
{
    (void)priv;
    if (flags == RL_NS_CREATE && strcmp(name, SERVICE) == 0)
    {
        service_addr = addr;
    }
}

/* Waits (polling the mailbox) until a message is queued or `ms` pass. */
static struct msg *next_msg(uint32_t ms)
{
    uint64_t end = lx_now_ms() + ms;
    while (q_head == q_tail)
    {
        if (lx_now_ms() >= end)
        {
            return NULL;
        }
        platform_time_delay(1);
    }
    return &queue[q_head % QLEN];
}

static void pattern(uint8_t *p, unsigned sweep, unsigned size)
{
    for (unsigned k = 0; k < size; k++)
    {
        p[k] = (uint8_t)((k * 31U) ^ (size * 7U) ^ (sweep * 131U));
    }
}

/* Sends `len` bytes to `dst`: odd sizes through rpmsg_lite_send (a copy), even sizes
 * through RPMsg-Lite's zero-copy API (rpmsg_lite_alloc_tx_buffer, which reports the room
 * of the buffer from the used length the peer wrote when it returned the buffer, then
 * rpmsg_lite_send_nocopy). Returns 0, or -1 with the reason on stdout. */
static int send_msg(struct rpmsg_lite_instance *rl, struct rpmsg_lite_endpoint *ept, uint32_t dst,
                    const uint8_t *data, uint32_t len, const char *who)
{
    int32_t r;
    if (len % 2U != 0U)
    {
        r = rpmsg_lite_send(rl, ept, dst, (char *)(uintptr_t)data, len, STEP_MS);
        if (r != RL_SUCCESS)
        {
            printf("%s: size %u: rpmsg_lite_send returned %d\n", who, len, r);
            return -1;
        }
        return 0;
    }
    {
        uint32_t room = 0;
        void *buf = rpmsg_lite_alloc_tx_buffer(rl, &room, STEP_MS);
        if (buf == RL_NULL)
        {
            printf("%s: size %u: rpmsg_lite_alloc_tx_buffer found no buffer\n", who, len);
            return -1;
        }
        if (room < PAYLOAD_MAX)
        {
            printf("%s: size %u: rpmsg_lite_alloc_tx_buffer offered %u bytes, not %u (the peer's used length)\n",
                   who, len, room, PAYLOAD_MAX);
            return -1;
        }
        memcpy(buf, data, len);
        r = rpmsg_lite_send_nocopy(rl, ept, dst, buf, len);
        if (r != RL_SUCCESS)
        {
            printf("%s: size %u: rpmsg_lite_send_nocopy returned %d\n", who, len, r);
            return -1;
        }
        return 0;
    }
}

static int master(void *base, unsigned sweeps)
{
    static struct rpmsg_lite_instance *rl;
    struct rpmsg_lite_endpoint *ept;
    uint8_t p[PAYLOAD_MAX];
    unsigned passed = 0, failed = 0, total = sweeps * PAYLOAD_MAX;
    uint64_t end, t0;

    lx_mbox_reset();
    lx_set_init_hook(1);
    t0 = lx_now_ms();
    rl = rpmsg_lite_master_init(base, LX_LINK_LEN, 0, RL_NO_FLAGS);
    lx_set_init_hook(0);
    /* The run's record of how long the window for a remote started "during" it was. */
    printf("rpmsg-lite master: rpmsg_lite_master_init took %llu ms\n", (unsigned long long)(lx_now_ms() - t0));
    if (rl == RL_NULL)
    {
        fprintf(stderr, "rpmsg-lite master: rpmsg_lite_master_init failed\n");
        return 1;
    }
    if (rpmsg_ns_bind(rl, ns_cb, NULL) == RL_NULL)
    {
        fprintf(stderr, "rpmsg-lite master: rpmsg_ns_bind failed\n");
        return 1;
    }
    ept = rpmsg_lite_create_ept(rl, MASTER_EPT, rx_cb, NULL);
    if (ept == RL_NULL)
    {
        fprintf(stderr, "rpmsg-lite master: rpmsg_lite_create_ept failed\n");
        return 1;
    }
    end = lx_now_ms() + START_MS;
    while (service_addr == 0xFFFFFFFFU && lx_now_ms() < end)
    {
        platform_time_delay(1);
    }
    if (service_addr == 0xFFFFFFFFU)
    {
        printf("rpmsg-lite master: %s was never announced\n", SERVICE);
        printf("rpmsg-lite master: 0 passed, %u failed\n", total);
        return 1;
    }
    for (unsigned sweep = 0; sweep < sweeps; sweep++)
    {
        for (unsigned size = 1; size <= PAYLOAD_MAX; size++)
        {
            struct msg *m;
            pattern(p, sweep, size);
            if (send_msg(rl, ept, service_addr, p, size, "rpmsg-lite master") != 0)
            {
                printf("rpmsg-lite master: sweep %u size %u: not sent\n", sweep, size);
                failed = total - passed;
                goto done;
            }
            m = next_msg(STEP_MS);
            if (m == NULL)
            {
                printf("rpmsg-lite master: sweep %u size %u: no echo within %u ms\n", sweep, size, STEP_MS);
                failed = total - passed;
                goto done;
            }
            if (m->src == service_addr && m->len == size && memcmp(m->data, p, size) == 0)
            {
                passed++;
            }
            else
            {
                printf("rpmsg-lite master: sweep %u size %u: echo of %u bytes from %#x differs\n", sweep, size,
                       m->len, m->src);
                failed++;
            }
            q_head++;
        }
    }
done:
    printf("rpmsg-lite master: %u passed, %u failed\n", passed, failed);
    return (failed == 0 && passed == total) ? 0 : 1;
}

static int remote(void *base, unsigned count)
{
    struct rpmsg_lite_instance *rl;
    struct rpmsg_lite_endpoint *ept;
    unsigned done = 0;

    rl = rpmsg_lite_remote_init(base, 0, RL_NO_FLAGS);
    if (rl == RL_NULL)
    {
        fprintf(stderr, "rpmsg-lite remote: rpmsg_lite_remote_init failed\n");
        return 1;
    }
    if (rpmsg_lite_wait_for_link_up(rl, START_MS) != RL_TRUE)
    {
        fprintf(stderr, "rpmsg-lite remote: the link never came up (no notification on vring 0)\n");
        return 1;
    }
    ept = rpmsg_lite_create_ept(rl, REMOTE_EPT, rx_cb, NULL);
    if (ept == RL_NULL || rpmsg_ns_announce(rl, ept, SERVICE, RL_NS_CREATE) != RL_SUCCESS)
    {
        fprintf(stderr, "rpmsg-lite remote: endpoint or announcement failed\n");
        return 1;
    }
    while (done < count)
    {
        struct msg *m = next_msg(done == 0 ? START_MS : STEP_MS);
        if (m == NULL)
        {
            fprintf(stderr, "rpmsg-lite remote: message %u of %u never came\n", done, count);
            return 1;
        }
        if (send_msg(rl, ept, m->src, m->data, m->len, "rpmsg-lite remote") != 0)
        {
            fprintf(stderr, "rpmsg-lite remote: echo %u not sent\n", done);
            return 1;
        }
        q_head++;
        done++;
    }
    printf("rpmsg-lite remote: echoed %u messages\n", count);
    return 0;
}

int main(int argc, char **argv)
{
    void *base;
    unsigned n;
    int is_master;

    if (argc < 3 || (strcmp(argv[1], "master") != 0 && strcmp(argv[1], "remote") != 0))
    {
        fprintf(stderr, "usage: %s master SHM [SWEEPS] | remote SHM [COUNT]\n", argv[0]);
        return 2;
    }
    is_master = strcmp(argv[1], "master") == 0;
    n = argc > 3 ? (unsigned)strtoul(argv[3], NULL, 0) : (is_master ? 1U : PAYLOAD_MAX);
    base = lx_open(argv[2], is_master ? LX_MASTER : LX_REMOTE);
    if (base == NULL)
    {
        return 1;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    return is_master ? master(base, n) : remote(base, n);
}
