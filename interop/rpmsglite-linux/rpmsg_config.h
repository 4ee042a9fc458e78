/*
 * RPMsg-Lite configuration for the Linux-userspace runs of scripts/test-real-peers.sh.
 * RPMsg-Lite includes this file from rpmsg_default_config.h (RL_USE_CUSTOM_CONFIG).
 * Each value may be overridden with -D (the script builds both settings of
 * RL_ALLOW_CONSUMED_BUFFERS_NOTIFICATION).
 */
#ifndef INTEROP_RPMSG_CONFIG_H
#define INTEROP_RPMSG_CONFIG_H

#include <stdio.h>
#include <stdlib.h>

/* 496-byte payloads in 512-byte buffers, as Linux and intercore use. */
#define RL_BUFFER_PAYLOAD_SIZE (496U)
/* One buffer per vring entry: 256 per direction. */
#ifndef RL_BUFFER_COUNT
#define RL_BUFFER_COUNT (256U)
#endif
/* Polling interval of the blocking calls, in ms (platform_time_delay). */
#define RL_MS_PER_INTERVAL (1)
/* env_cache_flush() reaches platform_cache_flush(): the platform's start-up delay hook
 * (INTEROP_INIT_DELAY_US) runs there, once per buffer the master places at init. There
 * are no caches to maintain between two processes on one machine. */
#define RL_USE_DCACHE (1)
#ifndef RL_ALLOW_CONSUMED_BUFFERS_NOTIFICATION
#define RL_ALLOW_CONSUMED_BUFFERS_NOTIFICATION (0)
#endif
#define RL_ASSERT(x)                                                                 \
    do                                                                               \
    {                                                                                \
        if (!(x))                                                                    \
        {                                                                            \
            fprintf(stderr, "rpmsg-lite: assertion failed: %s (%s:%d)\n", #x, __FILE__, \
                    __LINE__);                                                       \
            abort();                                                                 \
        }                                                                            \
    } while (0)

#endif
