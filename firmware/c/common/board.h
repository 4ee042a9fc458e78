/* Board support for the emulated Cortex-R5F (QEMU -M none): MPU, PMU cycle counter,
 * semihosting console and exit, barriers. Written for this project. */
#ifndef FW_BOARD_H
#define FW_BOARD_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* Data memory barrier: orders our ring/buffer accesses against the other core's. */
#define dmb() __asm__ volatile("dmb" ::: "memory")

/* Called from startup.S before main: MPU region for the whole RAM (Normal memory, so
 * unaligned and byte accesses behave as on the real core's shared DDR) and the cycle
 * counter. */
void board_init(void);
/* Exit QEMU through semihosting (SYS_EXIT_EXTENDED) with this code. */
void board_exit(int code) __attribute__((noreturn));
/* An exception was taken: print which and exit with 4 (a CPU fault, as firmware/images). */
void board_exception(uint32_t kind, uint32_t lr) __attribute__((noreturn));

/* Console: one semihosting write per line. */
void con_puts(const char *s);
void con_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void con_vprintf(const char *fmt, va_list ap);
int fmt_vsnprintf(char *buf, size_t len, const char *fmt, va_list ap);
int fmt_snprintf(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Print the reason and exit with `code` (never 0). */
void fatal(int code, const char *fmt, ...) __attribute__((noreturn, format(printf, 2, 3)));

/* PMU cycle counter divided by 64 (PMCR.D), extended to 64 bits; QEMU counts the
 * undivided counter at about 1 GHz. Reading it is slow under emulation: poll it rarely. */
uint64_t board_ticks64(void);

#endif
