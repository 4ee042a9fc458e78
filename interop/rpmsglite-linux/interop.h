/*
 * What the test apps add to the platform: the shared-memory object, the mailbox, the
 * start-up delay hook, and one poll step that delivers pending notifications.
 */
#ifndef INTEROP_H
#define INTEROP_H

#include <stddef.h>
#include <stdint.h>

/* The object's layout (crates/intercore-interop/src/lib.rs, module `lite`, says the same). */
#define LX_SHM_SIZE 0x80000UL
#define LX_LINK_LEN (2UL * VRING_SIZE + 2UL * RL_BUFFER_COUNT * 512UL)
#define LX_MBOX_PA 0x7f000UL

enum lx_side { LX_MASTER, LX_REMOTE };

/* Maps the object at `path` (creating and sizing it if needed) and sets this process's
 * side of the mailbox. Returns the base, or NULL with a message on stderr. */
void *lx_open(const char *path, enum lx_side side);
/* Clears the mailbox (a master starting over memory a previous run used). */
void lx_mbox_reset(void);
/* Delivers every pending notification whose vector is enabled: env_isr(vector) for each
 * vring the peer named, as the i.MX MU interrupt handler does. Returns how many. */
int lx_poll(void);
/* While set, platform_cache_flush() sleeps INTEROP_INIT_DELAY_US microseconds per call
 * (the master's per-buffer flush during rpmsg_lite_master_init). */
void lx_set_init_hook(int on);
/* Monotonic milliseconds. */
uint64_t lx_now_ms(void);

#endif
