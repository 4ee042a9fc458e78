//! Cortex-R5F (ARMv7-R, ARM state) on QEMU's `-M none -cpu cortex-r5f`.
//!
//! Reset runs in Supervisor mode with the vectors at 0. The reset handler gives the abort
//! and undefined modes a stack (so a fault can be reported), sets the main stack, enables
//! the FPU (CPACR cp10/cp11 full access, then FPEXC.EN) before any Rust code — Rust code
//! for `armv7r-none-eabihf` may use VFP registers anywhere — copies `.data`, zeroes
//! `.bss` and calls `fw_main`.

use core::arch::{asm, global_asm};
use core::sync::atomic::{AtomicU32, Ordering};
use core::time::Duration;

/// The core's name in logs.
pub const CORE: &str = "cortex-r5f";
/// Device address of the shared window (the file offset is the same: RAM starts at 0).
pub const SHM_DA: u32 = 0x0010_0000;
/// Device address of the data-plane window (4 MiB, aligned for one MPU region).
pub const POOL_DA: u32 = 0x0040_0000;
/// Data-cache line of the Cortex-R5 (TRM: 32 bytes).
pub const CACHE_LINE: usize = 32;
/// Cycle counter rate: QEMU runs the PMU cycle counter at 1 GHz of virtual time; on a real
/// part this is the core clock (and PMCR.D divides by 64, as set below).
const CYCLES_PER_SEC: u64 = 1_000_000_000 / 64;

global_asm!(
    r#"
    .section .vectors, "ax", %progbits
    .arm
    .global _vectors
_vectors:
    b _reset
    b _undef_exc
    b _svc_exc
    b _pabt_exc
    b _dabt_exc
    b .
    b .
    b .

    .section .text._reset, "ax", %progbits
    .arm
    .global _reset
    .type _reset, %function
_reset:
    cps #0x17
    ldr sp, =__exc_stack_top
    cps #0x1b
    ldr sp, =__exc_stack_top
    cps #0x13
    ldr sp, =__stack_top
    mrc p15, 0, r0, c1, c0, 2
    orr r0, r0, #(0xf << 20)
    mcr p15, 0, r0, c1, c0, 2
    isb
    mov r0, #0x40000000
    vmsr fpexc, r0
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
    mov r2, #0
3:  cmp r0, r1
    bhs 4f
    str r2, [r0], #4
    b 3b
4:  bl fw_main
5:  b 5b

_undef_exc:
    mov r0, #1
    sub r1, lr, #4
    b fault_entry
_svc_exc:
    mov r0, #2
    sub r1, lr, #4
    b fault_entry
_pabt_exc:
    mov r0, #3
    sub r1, lr, #4
    b fault_entry
_dabt_exc:
    mov r0, #4
    sub r1, lr, #8
    b fault_entry
"#
);

/// Names a fault kind passed by the vectors.
pub fn fault_name(kind: u32) -> &'static str {
    match kind {
        1 => "undefined instruction",
        2 => "unexpected SVC",
        3 => "prefetch abort",
        4 => "data abort",
        _ => "unknown exception",
    }
}

/// One MPU region: number, base, log2 of its size, access control (DRACR).
fn mpu_region(n: u32, base: u32, size_log2: u32, dracr: u32) {
    let drsr = ((size_log2 - 1) << 1) | 1;
    // SAFETY: writes of the PMSAv7 region registers (RGNR, DRBAR, DRACR, DRSR) with
    // values computed above; the MPU is off until `init` enables it, so no access made
    // meanwhile depends on a half-written region.
    unsafe {
        asm!(
            "mcr p15, 0, {n}, c6, c2, 0",
            "mcr p15, 0, {base}, c6, c1, 0",
            "mcr p15, 0, {ac}, c6, c1, 4",
            "mcr p15, 0, {sz}, c6, c1, 2",
            n = in(reg) n, base = in(reg) base, ac = in(reg) dracr, sz = in(reg) drsr,
            options(nostack, preserves_flags)
        );
    }
}

/// DRACR fields (ARMv7-R ARM, B5.6): XN, AP = full access, TEX/C/B/S.
const XN: u32 = 1 << 12;
const AP_RW: u32 = 0b011 << 8;
/// Normal, outer and inner write-back write-allocate (TEX 001, C 1, B 1).
const NORMAL_WB: u32 = (0b001 << 3) | 0b11;
/// Normal, non-cacheable (TEX 001, C 0, B 0), shareable.
const NORMAL_NC_SHARED: u32 = (0b001 << 3) | (1 << 2);

/// MPU, caches and the cycle counter. Regions (higher number wins on overlap):
/// 0: all 16 MiB of RAM, Normal non-cacheable shareable, execute-never — the shared
///    window's rings, buffers, table and doorbell need no cache maintenance;
/// 1: the first 1 MiB (code, data, stacks), Normal write-back, executable;
/// 2: the data-plane window, Normal write-back, execute-never — the bulk data is cached
///    and maintained explicitly by [`PoolCache`] (clean before handing a buffer back,
///    invalidate before reading the host's data).
/// No background region: any access outside these faults (a data abort, reported).
pub fn init() {
    mpu_region(0, 0, 24, XN | AP_RW | NORMAL_NC_SHARED);
    mpu_region(1, 0, 20, AP_RW | NORMAL_WB);
    mpu_region(2, POOL_DA, 22, XN | AP_RW | NORMAL_WB);
    // SAFETY: SCTLR read-modify-write on this core only: M (MPU), C (data cache), I
    // (instruction cache) on, after invalidating the instruction cache (ICIALLU); the
    // regions above cover all code, data and stacks, so execution continues unchanged.
    // (A real R5 also needs its data cache invalidated after reset, with the
    // implementation-defined c15 operation, before C is set; QEMU models no caches.)
    unsafe {
        asm!(
            "dsb",
            "mov {t}, #0",
            "mcr p15, 0, {t}, c7, c5, 0",
            "mrc p15, 0, {t}, c1, c0, 0",
            "orr {t}, {t}, #1",
            "orr {t}, {t}, #4",
            "orr {t}, {t}, #0x1000",
            "mcr p15, 0, {t}, c1, c0, 0",
            "dsb",
            "isb",
            t = out(reg) _,
            options(nostack)
        );
    }
    // SAFETY: PMU set-up: PMCR = E (enable) | C (reset cycle counter) | D (count every 64
    // cycles, so the 32-bit counter wraps after minutes, not seconds); PMCNTENSET bit 31
    // enables the cycle counter. Touches no memory.
    unsafe {
        asm!(
            "mcr p15, 0, {pmcr}, c9, c12, 0",
            "mcr p15, 0, {en}, c9, c12, 1",
            "isb",
            pmcr = in(reg) 0b1101u32, en = in(reg) 1u32 << 31,
            options(nostack, preserves_flags)
        );
    }
}

static CLOCK_HIGH: AtomicU32 = AtomicU32::new(0);
static CLOCK_LAST: AtomicU32 = AtomicU32::new(0);

/// The PMU cycle counter, extended to 64 bits (it must be read at least once per wrap,
/// ~4.6 min of virtual time with the divider; the doorbell's waits read it far more
/// often). Slow under emulation: callers read it rarely.
pub fn clock_now() -> Duration {
    let c: u32;
    // SAFETY: reads PMCCNTR; no memory access.
    unsafe {
        asm!("mrc p15, 0, {c}, c9, c13, 0", c = out(reg) c, options(nomem, nostack, preserves_flags))
    };
    // Relaxed: single-threaded core; the statics only carry the wrap count between calls.
    let last = CLOCK_LAST.swap(c, Ordering::Relaxed);
    let mut high = CLOCK_HIGH.load(Ordering::Relaxed);
    if c < last {
        high += 1;
        CLOCK_HIGH.store(high, Ordering::Relaxed);
    }
    let ticks = ((high as u64) << 32) | c as u64;
    Duration::from_nanos(ticks * (1_000_000_000 / CYCLES_PER_SEC))
}

/// Semihosting call (ARM state: `SVC 0x123456`).
fn semihost(op: u32, arg: usize) -> u32 {
    let r: u32;
    // SAFETY: the semihosting ABI: r0 = operation, r1 = argument (a pointer to memory the
    // operation reads, valid for the call); QEMU handles the SVC when semihosting is on.
    unsafe {
        asm!("svc 0x123456", inout("r0") op => r, in("r1") arg, options(nostack, preserves_flags))
    };
    r
}

/// Writes a NUL-terminated string to the console.
pub fn console_write(s: &[u8]) {
    semihost(0x04, s.as_ptr() as usize); // SYS_WRITE0
}

/// Exits QEMU with `code` (SYS_EXIT_EXTENDED, ADP_Stopped_ApplicationExit).
pub fn semihosting_exit(code: u32) {
    let block = [0x2_0026u32, code];
    semihost(0x20, block.as_ptr() as usize);
}

/// Cache maintenance of the data-plane window: DCCMVAC (clean) and DCIMVAC (invalidate;
/// DCCIMVAC for partly covered edge lines) by line, then DSB. QEMU models no caches: these run (they are legal here and reached)
/// but prove nothing about coherency.
pub struct PoolCache;

fn by_line(off: usize, len: usize, mut op: impl FnMut(usize)) {
    let (start, n) = intercore::dataplane::line_span(CACHE_LINE, off, len);
    let mut a = POOL_DA as usize + start;
    let end = a + n;
    while a < end {
        op(a);
        a += CACHE_LINE;
    }
}

// SAFETY: `cpu_ptr()..+region_len()` is the data-plane window, RAM mapped read-write
// (MPU region 2) for the program's life; clean/invalidate only operate on cache lines of
// that window (line_span rounds inside it: it is line-aligned), and invalidation is only
// asked for ranges the host owns the data of (the data plane's protocol).
unsafe impl intercore::dataplane::CacheOps for PoolCache {
    fn line_size(&self) -> usize {
        CACHE_LINE
    }
    fn region_len(&self) -> usize {
        super::POOL_LEN as usize
    }
    fn cpu_ptr(&self) -> *mut u8 {
        POOL_DA as usize as *mut u8
    }
    fn clean(&self, _buf: u32, off: usize, len: usize) {
        // SAFETY: DCCMVAC on addresses inside the window; writes back, changes no data.
        by_line(off, len, |a| unsafe {
            asm!("mcr p15, 0, {a}, c7, c10, 1", a = in(reg) a, options(nostack, preserves_flags))
        });
        // SAFETY: a barrier.
        unsafe { asm!("dsb", options(nostack, preserves_flags)) };
    }
    fn invalidate(&self, _buf: u32, off: usize, len: usize) {
        // Lines wholly inside the range: DCIMVAC (invalidate; allowed at PL1). A line the
        // range only partly covers may hold bytes of ours that are dirty: DCCIMVAC (clean
        // and invalidate) there, so nothing outside the range is lost.
        let (first, last) = (POOL_DA as usize + off, POOL_DA as usize + off + len);
        by_line(off, len, |a| {
            if a < first || a + CACHE_LINE > last {
                // SAFETY: DCCIMVAC on a line inside the window; no data is lost.
                unsafe {
                    asm!("mcr p15, 0, {a}, c7, c14, 1", a = in(reg) a, options(nostack, preserves_flags))
                }
            } else {
                // SAFETY: DCIMVAC on a line wholly inside a range the host owns (see the
                // impl's comment).
                unsafe {
                    asm!("mcr p15, 0, {a}, c7, c6, 1", a = in(reg) a, options(nostack, preserves_flags))
                }
            }
        });
        // SAFETY: a barrier.
        unsafe { asm!("dsb", options(nostack, preserves_flags)) };
    }
}

/// Executes an undefined instruction (the `fault-udf` test image).
pub fn undefined_instruction() -> ! {
    // SAFETY: raises the undefined-instruction exception on purpose; the vector reports it
    // and exits, so control never returns.
    unsafe { asm!("udf #0", options(noreturn)) }
}
