/* Board support for the emulated Cortex-R5F (QEMU -M none). Written for this project:
 * the register encodings are the ARMv7-R architecture's (PMSAv7 MPU, PMUv2), the
 * semihosting calls are Arm's semihosting specification (SVC 0x123456 in A32). */
#include "board.h"

/* --- semihosting ------------------------------------------------------------------ */
#define SH_SYS_WRITE0 0x04u
#define SH_SYS_EXIT_EXTENDED 0x20u
#define SH_ADP_STOPPED_APPLICATION_EXIT 0x20026u

static uint32_t semihost(uint32_t op, const void *arg)
{
    register uint32_t r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
#if defined(__ARM_ARCH_7EM__)
    /* M-profile (../ffi-m4f): BKPT 0xAB */
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
#else
    __asm__ volatile("svc 0x123456" : "+r"(r0) : "r"(r1) : "memory", "lr");
#endif
    return r0;
}

void board_exit(int code)
{
    uint32_t block[2] = {SH_ADP_STOPPED_APPLICATION_EXIT, (uint32_t)code};
    semihost(SH_SYS_EXIT_EXTENDED, block);
    for (;;) {
        __asm__ volatile("wfi");
    }
}

void con_puts(const char *s)
{
    semihost(SH_SYS_WRITE0, s);
}

/* --- formatting: %s %c %d %u %x %X %p, optional 0 flag and width, l ignored -------- */
struct out {
    char *buf;
    size_t len, pos;
};

static void put(struct out *o, char c)
{
    if (o->pos + 1 < o->len) {
        o->buf[o->pos] = c;
    }
    o->pos++;
}

static void put_num(struct out *o, uint32_t v, unsigned base, int neg, int width, char pad, int upper)
{
    char tmp[12];
    int n = 0;
    const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
    do {
        tmp[n++] = digits[v % base];
        v /= base;
    } while (v != 0);
    if (neg) {
        if (pad == '0') {
            put(o, '-');
        } else {
            tmp[n++] = '-';
        }
        width--;
    }
    for (int i = n; i < width; i++) {
        put(o, pad);
    }
    while (n > 0) {
        put(o, tmp[--n]);
    }
}

int fmt_vsnprintf(char *buf, size_t len, const char *fmt, va_list ap)
{
    struct out o = {buf, len, 0};
    for (; *fmt; fmt++) {
        if (*fmt != '%') {
            put(&o, *fmt);
            continue;
        }
        fmt++;
        char pad = ' ';
        int width = 0;
        if (*fmt == '0') {
            pad = '0';
            fmt++;
        }
        while (*fmt >= '0' && *fmt <= '9') {
            width = width * 10 + (*fmt++ - '0');
        }
        int precision = -1;
        if (*fmt == '.') {
            fmt++;
            if (*fmt == '*') {
                precision = va_arg(ap, int);
                fmt++;
            } else {
                precision = 0;
                while (*fmt >= '0' && *fmt <= '9') {
                    precision = precision * 10 + (*fmt++ - '0');
                }
            }
        }
        while (*fmt == 'l' || *fmt == 'z' || *fmt == 'h') {
            fmt++;
        }
        switch (*fmt) {
        case 's': {
            const char *s = va_arg(ap, const char *);
            if (s == NULL) {
                s = "(null)";
            }
            for (int i = 0; s[i] && (precision < 0 || i < precision); i++) {
                put(&o, s[i]);
            }
            break;
        }
        case 'c':
            put(&o, (char)va_arg(ap, int));
            break;
        case 'd':
        case 'i': {
            int v = va_arg(ap, int);
            put_num(&o, v < 0 ? (uint32_t)0 - (uint32_t)v : (uint32_t)v, 10, v < 0, width, pad, 0);
            break;
        }
        case 'u':
            put_num(&o, va_arg(ap, uint32_t), 10, 0, width, pad, 0);
            break;
        case 'x':
        case 'X':
            put_num(&o, va_arg(ap, uint32_t), 16, 0, width, pad, *fmt == 'X');
            break;
        case 'p':
            put(&o, '0');
            put(&o, 'x');
            put_num(&o, (uint32_t)(uintptr_t)va_arg(ap, void *), 16, 0, 8, '0', 0);
            break;
        case '%':
            put(&o, '%');
            break;
        case '\0':
            fmt--;
            break;
        default:
            put(&o, '%');
            put(&o, *fmt);
            break;
        }
    }
    if (len > 0) {
        buf[o.pos < len ? o.pos : len - 1] = '\0';
    }
    return (int)o.pos;
}

int fmt_snprintf(char *buf, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = fmt_vsnprintf(buf, len, fmt, ap);
    va_end(ap);
    return n;
}

void con_vprintf(const char *fmt, va_list ap)
{
    char line[256];
    fmt_vsnprintf(line, sizeof line, fmt, ap);
    con_puts(line);
}

void con_printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    con_vprintf(fmt, ap);
    va_end(ap);
}

void fatal(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    con_vprintf(fmt, ap);
    va_end(ap);
    board_exit(code != 0 ? code : 1);
}

#if !defined(__ARM_ARCH_7EM__) /* the Cortex-M4F's are in ../ffi-m4f/board_m4f.c */
void board_exception(uint32_t kind, uint32_t lr)
{
    static const char *const names[] = {"reset", "undefined instruction", "SVC", "prefetch abort",
                                        "data abort", "reserved", "IRQ", "FIQ"};
    uint32_t dfsr, dfar;
    __asm__ volatile("mrc p15, 0, %0, c5, c0, 0" : "=r"(dfsr));
    __asm__ volatile("mrc p15, 0, %0, c6, c0, 0" : "=r"(dfar));
    con_printf("FATAL: %s exception, lr %p, DFSR %08x, DFAR %08x\n", names[kind & 7], (void *)lr,
               (unsigned)dfsr, (unsigned)dfar);
    board_exit(4); /* as firmware/images: 4 = CPU fault */
}

/* --- MPU and PMU ------------------------------------------------------------------- */
/* DRACR: AP = 0b011 (read/write at every level), TEX = 0b001 C = 0 B = 0 (Normal,
 * non-cacheable), S = 1. QEMU models no caches; the attributes matter for alignment. */
#define DRACR_RW_NORMAL_NC_SHARED ((3u << 8) | (1u << 3) | (1u << 2))

static void mpu_region(uint32_t n, uint32_t base, uint32_t size_log2, uint32_t dracr)
{
    __asm__ volatile("mcr p15, 0, %0, c6, c2, 0" ::"r"(n));
    __asm__ volatile("mcr p15, 0, %0, c6, c1, 0" ::"r"(base));
    __asm__ volatile("mcr p15, 0, %0, c6, c1, 4" ::"r"(dracr));
    __asm__ volatile("mcr p15, 0, %0, c6, c1, 2" ::"r"(((size_log2 - 1) << 1) | 1u));
}

void board_init(void)
{
    uint32_t sctlr;
    mpu_region(0, 0, 24, DRACR_RW_NORMAL_NC_SHARED);
    __asm__ volatile("mrc p15, 0, %0, c1, c0, 0" : "=r"(sctlr));
    sctlr |= 1u;        /* M: MPU on */
    sctlr &= ~(1u << 1); /* A: no strict alignment checking */
    __asm__ volatile("dsb\n mcr p15, 0, %0, c1, c0, 0\n isb" ::"r"(sctlr) : "memory");
    /* PMCR: E (enable) | C (reset cycle counter) | D (count every 64 cycles) */
    __asm__ volatile("mcr p15, 0, %0, c9, c12, 0" ::"r"(0xdu));
    /* PMCNTENSET: cycle counter */
    __asm__ volatile("mcr p15, 0, %0, c9, c12, 1" ::"r"(1u << 31));
}

uint64_t board_ticks64(void)
{
    static uint32_t last;
    static uint64_t high;
    uint32_t now;
    __asm__ volatile("mrc p15, 0, %0, c9, c13, 0" : "=r"(now));
    if (now < last) {
        high += 1ull << 32; /* wrapped: at 1 GHz / 64 once in 274 s, far apart from our reads */
    }
    last = now;
    return high | now;
}
#endif
