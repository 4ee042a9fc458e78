/* Small implementations of TI's Driver Porting Layer calls that ipc_rpmsg uses, for one
 * thread without interrupts on the emulated R5F (QEMU -M none). Written for this project
 * against the declarations in TI's kernel/dpl headers:
 *   SemaphoreP: a count in the object; pend spins, polling the IpcNotify stand-in (what
 *               the mailbox interrupt would have done meanwhile), until the count is
 *               non-zero or the ticks run out;
 *   HwiP:       nothing to mask (no interrupts are enabled);
 *   ClockP:     1 ms ticks from the PMU cycle counter;
 *   CacheP:     no-ops (QEMU models no caches);
 *   DebugP:     log to the semihosting console and the trace buffer; assert prints and
 *               exits with code 3 (TI's spins with interrupts off). */
#include "../common/board.h"
#include "ipc_notify_poll.h"
#include <kernel/dpl/CacheP.h>
#include <kernel/dpl/ClockP.h>
#include <kernel/dpl/DebugP.h>
#include <kernel/dpl/HwiP.h>
#include <kernel/dpl/SemaphoreP.h>

/* --- SemaphoreP -------------------------------------------------------------------- */
struct sem {
    uint32_t count;
    uint32_t max;
};

_Static_assert(sizeof(struct sem) <= sizeof(SemaphoreP_Object), "SemaphoreP_Object too small");

int32_t SemaphoreP_constructBinary(SemaphoreP_Object *obj, uint32_t initValue)
{
    struct sem *s = (struct sem *)obj;
    s->count = initValue != 0 ? 1u : 0u;
    s->max = 1;
    return SystemP_SUCCESS;
}

int32_t SemaphoreP_constructCounting(SemaphoreP_Object *obj, uint32_t initValue, uint32_t maxValue)
{
    struct sem *s = (struct sem *)obj;
    s->count = initValue;
    s->max = maxValue;
    return SystemP_SUCCESS;
}

int32_t SemaphoreP_constructMutex(SemaphoreP_Object *obj)
{
    return SemaphoreP_constructBinary(obj, 1);
}

void SemaphoreP_destruct(SemaphoreP_Object *obj)
{
    (void)obj;
}

void SemaphoreP_post(SemaphoreP_Object *obj)
{
    struct sem *s = (struct sem *)obj;
    if (s->count < s->max) {
        s->count++;
    }
}

int32_t SemaphoreP_pend(SemaphoreP_Object *obj, uint32_t timeToWaitInTicks)
{
    struct sem *s = (struct sem *)obj;
    uint32_t start = ClockP_getTicks();
    for (;;) {
        if (s->count > 0) {
            s->count--;
            return SystemP_SUCCESS;
        }
        ipc_notify_poll();
        if (s->count > 0) {
            continue;
        }
        if (timeToWaitInTicks != SystemP_WAIT_FOREVER && ClockP_getTicks() - start >= timeToWaitInTicks) {
            return SystemP_TIMEOUT;
        }
    }
}

int32_t SemaphoreP_getCount(SemaphoreP_Object *obj)
{
    return (int32_t)((struct sem *)obj)->count;
}

/* --- HwiP -------------------------------------------------------------------------- */
uintptr_t HwiP_disable(void)
{
    return 0;
}

void HwiP_restore(uintptr_t oldIntState)
{
    (void)oldIntState;
}

void HwiP_enable(void)
{
}

uint32_t HwiP_inISR(void)
{
    return 0;
}

/* --- ClockP ------------------------------------------------------------------------ */
#define CYCLES_PER_TICK_DIV64 (1000000u / 64u) /* 1 ms at the ~1 GHz QEMU counts */

uint32_t ClockP_getTicks(void)
{
    return (uint32_t)(board_ticks64() / CYCLES_PER_TICK_DIV64);
}

uint64_t ClockP_ticksToUsec(uint32_t ticks)
{
    return (uint64_t)ticks * 1000u;
}

uint32_t ClockP_usecToTicks(uint64_t usecs)
{
    return (uint32_t)((usecs + 999u) / 1000u);
}

uint64_t ClockP_getTimeUsec(void)
{
    return board_ticks64() * 64u / 1000u;
}

void ClockP_usleep(uint32_t usec)
{
    uint64_t end = board_ticks64() + (uint64_t)usec * 1000u / 64u;
    while (board_ticks64() < end) {
    }
}

/* --- CacheP ------------------------------------------------------------------------ */
void CacheP_inv(void *addr, uint32_t size, uint32_t type)
{
    (void)addr;
    (void)size;
    (void)type;
}

void CacheP_wb(void *addr, uint32_t size, uint32_t type)
{
    (void)addr;
    (void)size;
    (void)type;
}

void CacheP_wbInv(void *addr, uint32_t size, uint32_t type)
{
    (void)addr;
    (void)size;
    (void)type;
}

/* --- DebugP ------------------------------------------------------------------------ */
char gDebugMemLog[DebugP_MEM_LOG_SIZE] __attribute__((aligned(128)));
static uint32_t mem_log_pos;

static void mem_log(const char *s)
{
    for (; *s; s++) {
        gDebugMemLog[mem_log_pos] = *s;
        mem_log_pos = (mem_log_pos + 1u) % DebugP_MEM_LOG_SIZE;
    }
}

void _DebugP_logZone(uint32_t logZone, char *format, ...)
{
    char line[256];
    va_list ap;
    (void)logZone;
    va_start(ap, format);
    fmt_vsnprintf(line, sizeof line, format, ap);
    va_end(ap);
    con_puts(line);
    mem_log(line);
}

void _DebugP_assert(int32_t expression, const char *file, const char *function, int32_t line,
                    const char *expressionString)
{
    if (expression == 0) {
        fatal(3, "ASSERT: %s:%d: %s: %s\n", file, (int)line, function, expressionString);
    }
}

void _DebugP_assertNoLog(int32_t expression)
{
    if (expression == 0) {
        fatal(3, "ASSERT\n");
    }
}
