//! The board-support layer: what a bare-metal core needs under intercore's remote role.
//!
//! * `r5f` / `m4f`: reset handler and vectors, stacks, `.data`/`.bss`, FPU on before any
//!   Rust code, MPU, clock, cache maintenance, semihosting calls (and the mps2 UART).
//! * here: the memory map constants of the shared window, a [`SharedMemory`] over it, the
//!   [`PollPlatform`] of the polling doorbell, logging, exit, the panic and fault handlers.
//!
//! This is the part a port changes: see docs/PORTING.md, "Your own core".

use core::fmt::{self, Write};
use core::time::Duration;
use intercore::SharedMemory;
use intercore::pollbell::PollPlatform;

#[cfg(not(target_feature = "mclass"))]
mod r5f;
#[cfg(not(target_feature = "mclass"))]
pub use r5f::*;

#[cfg(target_feature = "mclass")]
mod m4f;
#[cfg(target_feature = "mclass")]
pub use m4f::*;

/// Bytes of the shared window covered by the link: the rpmsg carveout, the doorbell block
/// and the data-plane pool (the pool is its last part).
pub const SHM_LEN: usize = (POOL_DA + POOL_LEN - SHM_DA) as usize;
/// Device address of the polling doorbell's block: 512 KiB into the window.
pub const DOORBELL_DA: u32 = SHM_DA + 0x8_0000;
/// Counters per direction (notify ids 0..4; the standard table uses 1 and 2).
pub const DOORBELL_IDS: u32 = 4;
/// Size of the data-plane window (the `intercore-dp` carveout).
pub const POOL_LEN: u32 = 0x40_0000;

/// Exit codes the host's QEMU SoC reads (semihosting `SYS_EXIT_EXTENDED`).
pub mod exit_code {
    /// The host went away cleanly.
    pub const OK: u32 = 0;
    /// The link failed (protocol error, bad table).
    pub const LINK: u32 = 2;
    /// A Rust panic.
    pub const PANIC: u32 = 3;
    /// A CPU fault (undefined instruction, abort, HardFault).
    pub const FAULT: u32 = 4;
}

/// The shared window as [`SharedMemory`]: `SHM_LEN` bytes from `SHM_DA`, at the same
/// address on this core (no address translation on these MCUs).
pub struct Window;

// SAFETY: `SHM_DA..SHM_DA + SHM_LEN` is RAM on both machines (the file shared with the
// host), mapped read-write by the MPU, 8-aligned (a 1 MiB boundary), never used by the
// linker except for the `.resource_table` static, which is only read through volatile
// snapshots, never through a reference; no Rust reference into it is ever made here.
unsafe impl SharedMemory for Window {
    fn as_ptr(&self) -> *mut u8 {
        SHM_DA as usize as *mut u8
    }
    fn len(&self) -> usize {
        SHM_LEN
    }
}

/// The polling doorbell's platform: this core's clock and a spinning back-off (the core
/// has nothing else to do; the back-off only thins out the bus traffic of the polls).
pub struct Platform;

impl PollPlatform for Platform {
    fn now(&self) -> Duration {
        clock_now()
    }
    fn back_off(&self, round: u32) {
        for _ in 0..(1u32 << round.min(8)) {
            core::hint::spin_loop();
        }
    }
}

/// A line-buffered writer to the semihosting console (and the UART where there is one).
pub struct Log {
    buf: [u8; 160],
    n: usize,
}

impl Log {
    /// An empty line.
    pub const fn new() -> Self {
        Self {
            buf: [0; 160],
            n: 0,
        }
    }
    /// Sends what is buffered.
    pub fn flush(&mut self) {
        if self.n > 0 {
            // NUL-terminated for SYS_WRITE0; interior NULs were replaced in `write_str`.
            self.buf[self.n] = 0;
            console_write(&self.buf[..=self.n]);
            self.n = 0;
        }
    }
}

impl Write for Log {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for &b in s.as_bytes() {
            if self.n == self.buf.len() - 1 {
                self.flush();
            }
            self.buf[self.n] = if b == 0 { b'?' } else { b };
            self.n += 1;
            if b == b'\n' {
                self.flush();
            }
        }
        Ok(())
    }
}

impl Drop for Log {
    fn drop(&mut self) {
        self.flush();
    }
}

/// `log!("...")`: one line on the console, prefixed with the core's name.
#[macro_export]
macro_rules! log {
    ($($t:tt)*) => {{
        use core::fmt::Write as _;
        let mut l = $crate::bsp::Log::new();
        let _ = write!(l, "[intercore-fw {}] ", $crate::bsp::CORE);
        let _ = writeln!(l, $($t)*);
    }};
}

/// Logs and exits through semihosting with `code`.
pub fn exit(code: u32) -> ! {
    semihosting_exit(code);
    // A debugger without semihosting: stop here.
    loop {
        core::hint::spin_loop();
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    crate::log!("panic: {info}");
    exit(exit_code::PANIC)
}

/// Where the exception vectors jump on a CPU fault: reports the kind and the faulting
/// address, then exits with [`exit_code::FAULT`].
#[unsafe(no_mangle)]
pub extern "C" fn fault_entry(kind: u32, pc: u32) -> ! {
    crate::log!("CPU fault: {} at pc {:#010x}", fault_name(kind), pc);
    exit(exit_code::FAULT)
}
