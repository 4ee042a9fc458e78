/* Board support for the emulated Cortex-M4F (QEMU mps2-an386): SysTick clock, exception
 * report. The console, exit and formatting are ../common/board.c's (semihosting by
 * BKPT 0xAB on M-profile). Written for this project from the ARMv7-M architecture's
 * SysTick and ICSR registers (B3.3, B3.2.4); the mps2 boards clock SysTick at 25 MHz. */
#include "../common/board.h"

#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)
#define SCB_ICSR (*(volatile uint32_t *)0xE000ED04u)
#define ICSR_PENDSTSET (1u << 26)
#define RELOAD 0x00ffffffu

static volatile uint32_t wraps;

void systick_handler(void)
{
    wraps++;
}

void board_init(void)
{
    /* SysTick: processor clock, interrupt on every wrap (2^24 ticks, 0.67 s) */
    SYST_RVR = RELOAD;
    SYST_CVR = 0;
    SYST_CSR = 7u;
}

/* SysTick ticks at 25 MHz since board_init, 64 bits: the wrap count and the down-counter
 * read with interrupts masked; a wrap not yet counted is pending (ICSR.PENDSTSET). */
uint64_t board_ticks64(void)
{
    __asm__ volatile("cpsid i" ::: "memory");
    uint32_t w = wraps;
    uint32_t cv = SYST_CVR;
    if (SCB_ICSR & ICSR_PENDSTSET) {
        w++;
        cv = SYST_CVR;
    }
    __asm__ volatile("cpsie i" ::: "memory");
    return ((uint64_t)w << 24) | (RELOAD - cv);
}

void board_exception(uint32_t kind, uint32_t pc)
{
    con_printf("FATAL: %s, at %p\n",
               kind == 3 ? "HardFault/MemManage/BusFault/UsageFault" : kind == 2 ? "NMI" : "unexpected SVC/PendSV",
               (void *)pc);
    board_exit(4); /* as firmware/images: 4 = CPU fault */
}
