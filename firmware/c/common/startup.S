/* Reset and exception entry for the emulated Cortex-R5F (ARM state, SVC mode at reset,
 * vectors at 0 because SCTLR.V = 0). Written for this project. */
    .syntax unified
    .arm

    .section .vectors, "ax"
    .global _vectors
_vectors:
    ldr pc, =_reset
    ldr pc, =_exc_undef
    ldr pc, =_exc_svc
    ldr pc, =_exc_pabt
    ldr pc, =_exc_dabt
    b .
    ldr pc, =_exc_irq
    ldr pc, =_exc_fiq
    .ltorg

    .section .text._reset, "ax"
    .global _reset
    .type _reset, %function
_reset:
    /* one small stack for every exception mode, the main stack for SVC */
    cps #0x1b            /* undefined */
    ldr sp, =__exc_stack_top
    cps #0x17            /* abort */
    ldr sp, =__exc_stack_top
    cps #0x12            /* IRQ */
    ldr sp, =__exc_stack_top
    cps #0x11            /* FIQ */
    ldr sp, =__exc_stack_top
    cps #0x13            /* SVC */
    ldr sp, =__stack_top

    /* .data from its load image, .bss zeroed */
    ldr r0, =__sidata
    ldr r1, =__sdata
    ldr r2, =__edata
1:  cmp r1, r2
    ldrlo r3, [r0], #4
    strlo r3, [r1], #4
    blo 1b
    ldr r1, =__sbss
    ldr r2, =__ebss
    mov r3, #0
2:  cmp r1, r2
    strlo r3, [r1], #4
    blo 2b

    bl board_init
    bl main
    bl board_exit        /* main's return value is the exit code; never returns */
    b .
    .ltorg

    .macro exc name, code
    .global \name
    .type \name, %function
\name:
    mov r0, #\code
    mov r1, lr
    b board_exception
    .endm

    exc _exc_undef, 1
    exc _exc_svc, 2
    exc _exc_pabt, 3
    exc _exc_dabt, 4
    exc _exc_irq, 6
    exc _exc_fiq, 7
