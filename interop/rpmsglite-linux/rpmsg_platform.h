/*
 * The platform interface RPMsg-Lite's bare-metal environment (rpmsg_env_bm.c) calls, for
 * two Linux processes sharing a POSIX shared-memory object. Same functions and macros as
 * RPMsg-Lite's i.MX platform headers (lib/include/platform/imx8mm_m4/rpmsg_platform.h);
 * this implementation is our own (platform.c).
 */
#ifndef INTEROP_RPMSG_PLATFORM_H
#define INTEROP_RPMSG_PLATFORM_H

#include <stdint.h>

/* Each vring gets a 32 KiB slot at a 4 KiB alignment; buffers follow the two slots. */
#define VRING_ALIGN (0x1000U)
#define VRING_SIZE (0x8000UL)
#define RL_VRING_OVERHEAD (2UL * VRING_SIZE)
#define RL_PLATFORM_MAX_ISR_COUNT (32U)

#define RL_GET_VQ_ID(link_id, queue_id) (((queue_id)&0x1U) | (((link_id) << 1U) & 0xFFFFFFFEU))
#define RL_GET_LINK_ID(id) (((id)&0xFFFFFFFEU) >> 1U)
#define RL_GET_Q_ID(id) ((id)&0x1U)
#define RL_PLATFORM_HIGHEST_LINK_ID (0U)

int32_t platform_init_interrupt(uint32_t vector_id, void *isr_data);
int32_t platform_deinit_interrupt(uint32_t vector_id);
int32_t platform_interrupt_enable(uint32_t vector_id);
int32_t platform_interrupt_disable(uint32_t vector_id);
int32_t platform_in_isr(void);
void platform_notify(uint32_t vector_id);
void platform_time_delay(uint32_t num_msec);
void platform_map_mem_region(uint32_t vrt_addr, uint32_t phy_addr, uint32_t size, uint32_t flags);
void platform_cache_all_flush_invalidate(void);
void platform_cache_disable(void);
void platform_cache_invalidate(void *data, uint32_t len);
void platform_cache_flush(void *data, uint32_t len);
uintptr_t platform_vatopa(void *addr);
void *platform_patova(uintptr_t addr);
int32_t platform_init(void);
int32_t platform_deinit(void);

#endif
