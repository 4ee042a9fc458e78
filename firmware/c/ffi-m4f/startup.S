/* Reset and exception entry for the emulated Cortex-M4F (QEMU mps2-an386): the vector
 * table at 0 (SSRAM1, loaded by QEMU), Thumb code. Written for this project from the
 * ARMv7-M architecture's vector table and CPACR (B1.5.3, B3.2.20). The host may start
 * the core at _reset directly (-device loader,addr=ENTRY), so _reset sets the stack. */
    .syntax unified
    .cpu cortex-m4
    .thumb

    .section .vectors, "a", %progbits
    .global _vectors
_vectors:
    .word __stack_top
    .word _reset
    .word _exc_nmi           /* 2 NMI */
    .word _exc_fault         /* 3 HardFault */
    .word _exc_fault         /* 4 MemManage */
    .word _exc_fault         /* 5 BusFault */
    .word _exc_fault         /* 6 UsageFault */
    .word 0, 0, 0, 0
    .word _exc_other         /* 11 SVCall */
    .word 0                  /* 12 DebugMonitor */
    .word 0
    .word _exc_other         /* 14 PendSV */
    .word systick_handler    /* 15 SysTick */

    .section .text._reset, "ax", %progbits
    .global _reset
    .type _reset, %function
    .thumb_func
_reset:
    ldr r0, =__stack_top
    mov sp, r0
    /* CPACR: full access to cp10/cp11 (the FPU) before any code built hard-float */
    ldr r0, =0xE000ED88
    ldr r1, [r0]
    orr r1, r1, #(0xf << 20)
    str r1, [r0]
    dsb
    isb
    /* .data from its load image, .bss zeroed */
    ldr r0, =__sidata
    ldr r1, =__sdata
    ldr r2, =__edata
1:  cmp r1, r2
    bhs 2f
    ldr r3, [r0], #4
    str r3, [r1], #4
    b 1b
2:  ldr r1, =__sbss
    ldr r2, =__ebss
    movs r3, #0
3:  cmp r1, r2
    bhs 4f
    str r3, [r1], #4
    b 3b
4:  bl board_init
    bl main
    bl board_exit            /* main's return value is the exit code; never returns */
    b .
    .ltorg

    .type _exc_fault, %function
    .thumb_func
_exc_fault:
    movs r0, #3
    ldr r1, [sp, #24]        /* the stacked PC (MSP: no process stack here) */
    b board_exception
    .type _exc_nmi, %function
    .thumb_func
_exc_nmi:
    movs r0, #2
    mov r1, lr
    b board_exception
    .type _exc_other, %function
    .thumb_func
_exc_other:
    movs r0, #11
    mov r1, lr
    b board_exception
