/*
 * RPMsg-Lite platform layer for Linux userspace: two processes share a POSIX
 * shared-memory object (offset = physical address) and a mailbox in it that, like NXP's
 * i.MX Messaging Unit, carries the id of ONE vring per notification; the receiving side
 * runs env_isr(vector) for exactly that vring (RPMsg-Lite's i.MX platform layers:
 * lib/rpmsg_lite/porting/platform/imx8mm_m4/rpmsg_platform.c, MU interrupt handler).
 *
 * There are no interrupts: pending notifications are delivered at lx_poll(), which the
 * apps call in their loops and platform_time_delay() calls while RPMsg-Lite waits (every
 * blocking call of the bare-metal environment sleeps through it). A notification stays
 * pending until taken, as an MU register stays full until read: a peer that starts late
 * still sees it.
 *
 * Mailbox block at LX_MBOX_PA, 32-bit words, each written by one side only:
 *   +0   sent[id]  master -> remote (master)     +64  taken[id] master -> remote (remote)
 *   +128 sent[id]  remote -> master (remote)     +192 taken[id] remote -> master (master)
 * vring `id` is pending while sent != taken; the receiver takes it by copying sent.
 */
#define _GNU_SOURCE
#include "rpmsg_env.h"
#include "rpmsg_platform.h"
#include "interop.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LX_IDS 2U

static uint8_t *shm_base;
static enum lx_side my_side;
static int isr_registered[RL_PLATFORM_MAX_ISR_COUNT];
static int isr_enabled[RL_PLATFORM_MAX_ISR_COUNT];
static int in_isr;
static int init_hook;
static unsigned init_delay_us;

static volatile uint32_t *mbox_word(unsigned group, unsigned id)
{
    return (volatile uint32_t *)(shm_base + LX_MBOX_PA + 64U * group + 4U * id);
}

void *lx_open(const char *path, enum lx_side side)
{
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    struct stat st;
    void *p;
    const char *d;

    if (fd < 0)
    {
        fprintf(stderr, "platform: open %s: %s\n", path, strerror(errno));
        return NULL;
    }
    if (fstat(fd, &st) != 0 || ((size_t)st.st_size < LX_SHM_SIZE && ftruncate(fd, LX_SHM_SIZE) != 0))
    {
        fprintf(stderr, "platform: sizing %s: %s\n", path, strerror(errno));
        close(fd);
        return NULL;
    }
    p = mmap(NULL, LX_SHM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (p == MAP_FAILED)
    {
        fprintf(stderr, "platform: mmap %s: %s\n", path, strerror(errno));
        return NULL;
    }
    shm_base = p;
    my_side = side;
    d = getenv("INTEROP_INIT_DELAY_US");
    init_delay_us = d ? (unsigned)strtoul(d, NULL, 0) : 0U;
    return p;
}

void lx_mbox_reset(void)
{
    for (unsigned i = 0; i < 64U; i++)
    {
        __atomic_store_n(mbox_word(i / 16U, i % 16U), 0U, __ATOMIC_RELAXED);
    }
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
}

void lx_set_init_hook(int on)
{
    init_hook = on;
}

uint64_t lx_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000U + (uint64_t)ts.tv_nsec / 1000000U;
}

int lx_poll(void)
{
    /* Groups (sent, taken) of the direction this side receives. */
    unsigned s = (my_side == LX_MASTER) ? 2U : 0U;
    int n = 0;

    if (in_isr)
    {
        return 0; /* no nesting: an "interrupt" is already being handled */
    }
    for (unsigned id = 0; id < LX_IDS; id++)
    {
        /* Acquire: pairs with the ringer's release, so the ring updates are visible. */
        uint32_t sent = __atomic_load_n(mbox_word(s, id), __ATOMIC_ACQUIRE);
        uint32_t taken = __atomic_load_n(mbox_word(s + 1U, id), __ATOMIC_RELAXED);
        if (sent == taken || !isr_registered[id] || !isr_enabled[id])
        {
            continue; /* a masked vector stays pending, as in the MU */
        }
        __atomic_store_n(mbox_word(s + 1U, id), sent, __ATOMIC_RELAXED);
        in_isr = 1;
        env_isr(id);
        in_isr = 0;
        n++;
    }
    return n;
}

void platform_notify(uint32_t vector_id)
{
    unsigned s = (my_side == LX_MASTER) ? 0U : 2U;
    uint32_t id = RL_GET_Q_ID(vector_id);
    uint32_t v = __atomic_load_n(mbox_word(s, id), __ATOMIC_RELAXED);
    /* Release: the vring updates before the notification are visible to its receiver. */
    __atomic_store_n(mbox_word(s, id), v + 1U, __ATOMIC_RELEASE);
}

void platform_time_delay(uint32_t num_msec)
{
    uint64_t end = lx_now_ms() + num_msec;
    do
    {
        if (lx_poll() == 0)
        {
            usleep(50);
        }
    } while (lx_now_ms() < end);
}

int32_t platform_init_interrupt(uint32_t vector_id, void *isr_data)
{
    if (vector_id >= RL_PLATFORM_MAX_ISR_COUNT)
    {
        return -1;
    }
    env_register_isr(vector_id, isr_data);
    isr_registered[vector_id] = 1;
    return 0;
}

int32_t platform_deinit_interrupt(uint32_t vector_id)
{
    if (vector_id >= RL_PLATFORM_MAX_ISR_COUNT)
    {
        return -1;
    }
    isr_registered[vector_id] = 0;
    isr_enabled[vector_id] = 0;
    env_unregister_isr(vector_id);
    return 0;
}

int32_t platform_interrupt_enable(uint32_t vector_id)
{
    if (vector_id < RL_PLATFORM_MAX_ISR_COUNT)
    {
        isr_enabled[vector_id] = 1;
    }
    return (int32_t)vector_id;
}

int32_t platform_interrupt_disable(uint32_t vector_id)
{
    if (vector_id < RL_PLATFORM_MAX_ISR_COUNT)
    {
        isr_enabled[vector_id] = 0;
    }
    return (int32_t)vector_id;
}

int32_t platform_in_isr(void)
{
    return in_isr;
}

void platform_map_mem_region(uint32_t vrt_addr, uint32_t phy_addr, uint32_t size, uint32_t flags)
{
    (void)vrt_addr;
    (void)phy_addr;
    (void)size;
    (void)flags;
}

void platform_cache_all_flush_invalidate(void)
{
}

void platform_cache_disable(void)
{
}

void platform_cache_invalidate(void *data, uint32_t len)
{
    (void)data;
    (void)len;
}

void platform_cache_flush(void *data, uint32_t len)
{
    (void)data;
    (void)len;
    if (init_hook && init_delay_us != 0U)
    {
        usleep(init_delay_us);
    }
}

uintptr_t platform_vatopa(void *addr)
{
    return (uintptr_t)((uint8_t *)addr - shm_base);
}

void *platform_patova(uintptr_t addr)
{
    if (addr >= LX_SHM_SIZE)
    {
        fprintf(stderr, "platform: physical address %#lx outside the shared memory\n", (unsigned long)addr);
        abort();
    }
    return shm_base + addr;
}

int32_t platform_init(void)
{
    return 0;
}

int32_t platform_deinit(void)
{
    return 0;
}
