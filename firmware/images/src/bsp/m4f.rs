//! Cortex-M4F (ARMv7E-M) on QEMU's `-M mps2-an386`.
//!
//! The vector table at 0 gives the initial stack and the reset handler; the reset handler
//! sets the stack again (the host may start the core at the entry point directly), enables
//! the FPU (SCB.CPACR cp10/cp11 full access) before any Rust code, copies `.data`, zeroes
//! `.bss` and calls `fw_main`. The M4 has no data cache: the data plane needs no cache
//! maintenance ([`PoolCache`] only orders accesses).

use core::arch::{asm, global_asm};
use core::sync::atomic::{AtomicU32, Ordering};
use core::time::Duration;

/// The core's name in logs.
pub const CORE: &str = "cortex-m4f";
/// Device address of the shared window: the PSRAM, file offset 0.
pub const SHM_DA: u32 = 0x2100_0000;
/// Device address of the data-plane window (4 MiB, aligned for one MPU region).
pub const POOL_DA: u32 = 0x2140_0000;
/// SysTick runs on the 25 MHz system clock of the mps2 boards.
const SYSTICK_HZ: u64 = 25_000_000;
const SYSTICK_RELOAD: u32 = 0x00FF_FFFF;

global_asm!(
    r#"
    .section .vectors, "a", %progbits
    .global _vectors
_vectors:
    .word __stack_top
    .word _reset
    .word _nmi_exc
    .word _fault_exc
    .word _fault_exc
    .word _fault_exc
    .word _fault_exc
    .word 0, 0, 0, 0
    .word _svc_exc
    .word 0
    .word 0
    .word _svc_exc
    .word systick_handler

    .section .text._reset, "ax", %progbits
    .syntax unified
    .thumb
    .global _reset
    .type _reset, %function
    .thumb_func
_reset:
    ldr r0, =__stack_top
    mov sp, r0
    ldr r0, =0xE000ED88
    ldr r1, [r0]
    orr r1, r1, #(0xf << 20)
    str r1, [r0]
    dsb
    isb
    ldr r0, =__sdata
    ldr r1, =__edata
    ldr r2, =__sidata
1:  cmp r0, r1
    bhs 2f
    ldr r3, [r2], #4
    str r3, [r0], #4
    b 1b
2:  ldr r0, =__sbss
    ldr r1, =__ebss
    movs r2, #0
3:  cmp r0, r1
    bhs 4f
    str r2, [r0], #4
    b 3b
4:  bl fw_main
5:  b 5b

    .type _fault_exc, %function
    .thumb_func
_fault_exc:
    movs r0, #5
    mrs r2, msp
    ldr r1, [r2, #24]
    b fault_entry

    .type _nmi_exc, %function
    .thumb_func
_nmi_exc:
    movs r0, #6
    movs r1, #0
    b fault_entry

    .type _svc_exc, %function
    .thumb_func
_svc_exc:
    movs r0, #2
    movs r1, #0
    b fault_entry
"#
);

/// Names a fault kind passed by the vectors.
pub fn fault_name(kind: u32) -> &'static str {
    match kind {
        2 => "unexpected SVC/PendSV",
        5 => "HardFault (undefined instruction, bus or MPU fault)",
        6 => "NMI",
        _ => "unknown exception",
    }
}

fn write(addr: usize, v: u32) {
    // SAFETY: only called with the System Control Space (MPU, SysTick, on an M7 the cache
    // maintenance registers) and CMSDK UART registers below,
    // device registers that exist on this machine at these addresses.
    unsafe { (addr as *mut u32).write_volatile(v) }
}
fn read(addr: usize) -> u32 {
    // SAFETY: as in `write`.
    unsafe { (addr as *const u32).read_volatile() }
}

const MPU_CTRL: usize = 0xE000_ED94;
const MPU_RNR: usize = 0xE000_ED98;
const MPU_RBAR: usize = 0xE000_ED9C;
const MPU_RASR: usize = 0xE000_EDA0;
const SYST_CSR: usize = 0xE000_E010;
const SYST_RVR: usize = 0xE000_E014;
const SYST_CVR: usize = 0xE000_E018;
const UART0: usize = 0x4000_4000;

/// RASR fields (ARMv7-M ARM, B3.5.9).
const XN: u32 = 1 << 28;
const AP_RW: u32 = 0b011 << 24;
const AP_RO: u32 = 0b110 << 24;
const NORMAL_WB: u32 = (0b001 << 19) | (1 << 17) | (1 << 16);
const NORMAL_WT: u32 = 1 << 17;
const NORMAL_NC_SHARED: u32 = (0b001 << 19) | (1 << 18);

fn mpu_region(n: u32, base: u32, size_log2: u32, attrs: u32) {
    write(MPU_RNR, n);
    write(MPU_RBAR, base);
    write(MPU_RASR, attrs | ((size_log2 - 1) << 1) | 1);
}

/// MPU, SysTick and the UART. MPU regions (higher number wins):
/// 0: SSRAM1 (code), 4 MiB, read-only, executable, Normal write-through;
/// 1: SSRAM2 (data, stacks), 4 MiB, read-write, execute-never, Normal write-back;
/// 2: the shared PSRAM, 16 MiB, read-write, execute-never, Normal non-cacheable,
///    shareable (what a cached M7 would need for the rings without maintenance);
/// 3: the data-plane window, 4 MiB, Normal write-back (maintained on an M7; the M4 has
///    no cache).
/// PRIVDEFENA keeps the default map for the System Control Space and the peripherals.
pub fn init() {
    mpu_region(0, 0x0000_0000, 22, AP_RO | NORMAL_WT);
    mpu_region(1, 0x2000_0000, 22, XN | AP_RW | NORMAL_WB);
    mpu_region(2, SHM_DA, 24, XN | AP_RW | NORMAL_NC_SHARED);
    mpu_region(3, POOL_DA, 22, XN | AP_RW | NORMAL_WB);
    write(MPU_CTRL, 0b101); // ENABLE | PRIVDEFENA
    // SAFETY: barriers so that the new map applies to the next access.
    unsafe { asm!("dsb", "isb", options(nostack, preserves_flags)) };
    // SysTick: processor clock, interrupt on wrap (counted by `systick_handler`).
    write(SYST_RVR, SYSTICK_RELOAD);
    write(SYST_CVR, 0);
    write(SYST_CSR, 0b111);
    // CMSDK UART0: transmitter on.
    write(UART0 + 0x10, 16);
    write(UART0 + 0x08, 1);
}

static TICKS: AtomicU32 = AtomicU32::new(0);

/// SysTick exception: one more wrap of the 24-bit counter.
#[unsafe(no_mangle)]
extern "C" fn systick_handler() {
    // Relaxed: a counter read by `clock_now`, which re-reads it to detect a race.
    TICKS.fetch_add(1, Ordering::Relaxed);
}

/// SysTick extended by the wrap count (25 MHz; a wrap every 0.67 s). Slow under
/// emulation: callers read it rarely.
pub fn clock_now() -> Duration {
    loop {
        let t0 = TICKS.load(Ordering::Relaxed);
        let v = read(SYST_CVR);
        if TICKS.load(Ordering::Relaxed) == t0 {
            let cycles = t0 as u64 * (SYSTICK_RELOAD as u64 + 1) + (SYSTICK_RELOAD - v) as u64;
            return Duration::from_nanos(cycles * (1_000_000_000 / SYSTICK_HZ));
        }
    }
}

/// Semihosting call (M profile: `BKPT 0xAB`).
fn semihost(op: u32, arg: usize) -> u32 {
    let r: u32;
    // SAFETY: the semihosting ABI: r0 = operation, r1 = argument (a pointer to memory the
    // operation reads, valid for the call); QEMU handles the BKPT when semihosting is on.
    unsafe {
        asm!("bkpt 0xab", inout("r0") op => r, in("r1") arg, options(nostack, preserves_flags))
    };
    r
}

/// Writes a NUL-terminated string to the semihosting console and the UART.
pub fn console_write(s: &[u8]) {
    semihost(0x04, s.as_ptr() as usize); // SYS_WRITE0
    for &b in &s[..s.len().saturating_sub(1)] {
        while read(UART0 + 0x04) & 1 != 0 {}
        write(UART0, b as u32);
    }
}

/// Exits QEMU with `code` (SYS_EXIT_EXTENDED, ADP_Stopped_ApplicationExit).
pub fn semihosting_exit(code: u32) {
    let block = [0x2_0026u32, code];
    semihost(0x20, block.as_ptr() as usize);
}

/// The data-plane window's cache operations: none (the Cortex-M4 has no data cache);
/// fences keep the order of CPU accesses around the hand-offs.
#[cfg(not(feature = "m7"))]
pub struct PoolCache;

// SAFETY: `cpu_ptr()..+region_len()` is the data-plane window, RAM mapped read-write
// (MPU region 3) for the program's life; the operations touch no memory.
#[cfg(not(feature = "m7"))]
unsafe impl intercore::dataplane::CacheOps for PoolCache {
    fn line_size(&self) -> usize {
        32
    }
    fn region_len(&self) -> usize {
        super::POOL_LEN as usize
    }
    fn cpu_ptr(&self) -> *mut u8 {
        POOL_DA as usize as *mut u8
    }
    fn clean(&self, _buf: u32, _off: usize, _len: usize) {
        core::sync::atomic::fence(Ordering::Release);
    }
    fn invalidate(&self, _buf: u32, _off: usize, _len: usize) {
        core::sync::atomic::fence(Ordering::Acquire);
    }
}

/// Cortex-M7 (feature `m7`, compiled only — no M7 image is run here): the data cache is
/// maintained by address through the SCB (ARMv7-M ARM B2.2.7): `DCCMVAC` (0xE000EF68) to
/// clean, `DCIMVAC` (0xE000EF5C) to invalidate — `DCCIMVAC` (0xE000EF70) on partly covered
/// edge lines — 32-byte lines, then DSB.
#[cfg(feature = "m7")]
pub struct PoolCache;

#[cfg(feature = "m7")]
const SCB_DCIMVAC: usize = 0xE000_EF5C;
#[cfg(feature = "m7")]
const SCB_DCCMVAC: usize = 0xE000_EF68;
#[cfg(feature = "m7")]
const SCB_DCCIMVAC: usize = 0xE000_EF70;

#[cfg(feature = "m7")]
fn m7_lines(off: usize, len: usize, mut op: impl FnMut(usize, bool)) {
    let (start, n) = intercore::dataplane::line_span(32, off, len);
    let (first, last) = (POOL_DA as usize + off, POOL_DA as usize + off + len);
    let mut a = POOL_DA as usize + start;
    while a < POOL_DA as usize + start + n {
        op(a, a < first || a + 32 > last);
        a += 32;
    }
    // SAFETY: a barrier.
    unsafe { asm!("dsb", "isb", options(nostack, preserves_flags)) };
}

// SAFETY: as for the M4's `PoolCache`; the SCB operations act on lines of the window only,
// and invalidation without clean only on lines wholly inside a range the host owns.
#[cfg(feature = "m7")]
unsafe impl intercore::dataplane::CacheOps for PoolCache {
    fn line_size(&self) -> usize {
        32
    }
    fn region_len(&self) -> usize {
        super::POOL_LEN as usize
    }
    fn cpu_ptr(&self) -> *mut u8 {
        POOL_DA as usize as *mut u8
    }
    fn clean(&self, _buf: u32, off: usize, len: usize) {
        m7_lines(off, len, |a, _| write(SCB_DCCMVAC, a as u32));
    }
    fn invalidate(&self, _buf: u32, off: usize, len: usize) {
        m7_lines(off, len, |a, edge| {
            write(if edge { SCB_DCCIMVAC } else { SCB_DCIMVAC }, a as u32)
        });
    }
}

/// Executes an undefined instruction (the `fault-udf` test image).
pub fn undefined_instruction() -> ! {
    // SAFETY: raises a UsageFault (escalated to HardFault) on purpose; the handler reports
    // it and exits, so control never returns.
    unsafe { asm!("udf #0", options(noreturn)) }
}
