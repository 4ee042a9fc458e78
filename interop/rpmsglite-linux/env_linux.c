/*
 * RPMsg-Lite environment layer (the functions of lib/include/rpmsg_env.h, without
 * RL_USE_ENVIRONMENT_CONTEXT) for one thread of a Linux process. Written for these runs:
 * RPMsg-Lite's bare-metal environment cannot be built for x86 (its memory barrier is the
 * ARM `dsb` instruction, rpmsg_compiler.h). Behaves as a bare-metal environment does:
 * no locks (the "interrupts" of platform.c run only at its poll points, never inside
 * another handler), waits sleep through platform_time_delay() so notifications keep being
 * delivered, and env_isr(vector) runs the virtqueue registered for that vector.
 */
#include "rpmsg_env.h"
#include "rpmsg_platform.h"
#include "virtqueue.h"
#include "rpmsg_lite.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static void *isr_data[RL_PLATFORM_MAX_ISR_COUNT];
static int env_users;

int32_t env_init(void)
{
    if (env_users++ > 0)
    {
        return 0;
    }
    memset(isr_data, 0, sizeof(isr_data));
    return platform_init();
}

int32_t env_deinit(void)
{
    if (env_users <= 0)
    {
        return -1;
    }
    if (--env_users > 0)
    {
        return 0;
    }
    return platform_deinit();
}

void *env_allocate_memory(uint32_t size)
{
    return malloc(size);
}

void env_free_memory(void *ptr)
{
    free(ptr);
}

void env_memset(void *ptr, int32_t value, uint32_t size)
{
    memset(ptr, value & 0xff, size);
}

void env_memcpy(void *dst, void const *src, uint32_t len)
{
    memcpy(dst, src, len);
}

int32_t env_strcmp(const char *dst, const char *src)
{
    return strcmp(dst, src);
}

void env_strncpy(char *dest, const char *src, uint32_t len)
{
    strncpy(dest, src, len);
}

int32_t env_strncmp(char *dest, const char *src, uint32_t len)
{
    return strncmp(dest, src, len);
}

/* Full fences: the peer is another process, possibly on another CPU. */
void env_mb(void)
{
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
}

void env_rmb(void)
{
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
}

void env_wmb(void)
{
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
}

uint32_t env_map_vatopa(void *address)
{
    return (uint32_t)platform_vatopa(address);
}

void *env_map_patova(uint32_t address)
{
    return platform_patova(address);
}

int32_t env_create_mutex(void **lock, int32_t count)
{
    (void)count;
    *lock = lock;
    return 0;
}

void env_delete_mutex(void *lock)
{
    (void)lock;
}

void env_lock_mutex(void *lock)
{
    (void)lock;
}

void env_unlock_mutex(void *lock)
{
    (void)lock;
}

void env_sleep_msec(uint32_t num_msec)
{
    platform_time_delay(num_msec);
}

void env_register_isr(uint32_t vector_id, void *data)
{
    RL_ASSERT(vector_id < RL_PLATFORM_MAX_ISR_COUNT);
    isr_data[vector_id] = data;
}

void env_unregister_isr(uint32_t vector_id)
{
    RL_ASSERT(vector_id < RL_PLATFORM_MAX_ISR_COUNT);
    isr_data[vector_id] = NULL;
}

void env_enable_interrupt(uint32_t vector_id)
{
    (void)platform_interrupt_enable(vector_id);
}

void env_disable_interrupt(uint32_t vector_id)
{
    (void)platform_interrupt_disable(vector_id);
}

void env_map_memory(uint32_t pa, uint32_t va, uint32_t size, uint32_t flags)
{
    platform_map_mem_region(va, pa, size, flags);
}

void env_disable_cache(void)
{
    platform_cache_all_flush_invalidate();
    platform_cache_disable();
}

void env_cache_flush(void *data, uint32_t len)
{
    platform_cache_flush(data, len);
}

void env_cache_invalidate(void *data, uint32_t len)
{
    platform_cache_invalidate(data, len);
}

uint64_t env_get_timestamp(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

void env_isr(uint32_t vector)
{
    RL_ASSERT(vector < RL_PLATFORM_MAX_ISR_COUNT);
    if (isr_data[vector] != NULL)
    {
        virtqueue_notification((struct virtqueue *)isr_data[vector]);
    }
}

uint32_t env_wait_for_link_up(volatile uint32_t *link_state, uint32_t link_id, uint32_t timeout_ms)
{
    uint32_t waited = 0;
    (void)link_id;
    while (*link_state != 1U)
    {
        if (timeout_ms != RL_BLOCK && waited >= timeout_ms)
        {
            return 0U;
        }
        platform_time_delay(1);
        waited++;
    }
    return 1U;
}

void env_tx_callback(uint32_t link_id)
{
    (void)link_id;
}
