//! intercore's C ABI.
//!
//! The remote role for C firmware ([`remote`]) and the data plane's remote side
//! ([`dataplane`]): a static library (`libintercore_ffi.a`, built for `armv7r-none-eabihf`
//! and `thumbv7em-none-eabihf`) that never allocates and never unwinds into C. Every
//! call returns a status code (`INTERCORE_OK` or a negative `INTERCORE_E_*`); the bus
//! lives in storage the caller provides (`intercore_remote`, its size and alignment in
//! the header); the board-support package supplies the doorbell, the clock and the cache
//! operations as function pointers (`intercore_platform`).
//!
//! The header, `include/intercore.h`, is generated from this crate by cbindgen
//! (`cbindgen.toml`); the test `header_is_current` fails when the committed one differs.
//!
//! A bare-metal build of the static library needs a panic handler: on `target_os = "none"`
//! this crate provides one that calls the BSP's `intercore_panic()` (declared in the
//! header; it must not return), so a bug in the library stops the core instead of
//! unwinding into C (the build is `panic = "abort"`, as the bare-metal images).
#![cfg_attr(target_os = "none", no_std)]
// The whole crate is a foreign-function boundary: raw pointers from C, `extern "C"`
// functions, `no_mangle`. Every block carries its SAFETY reason.
#![allow(unsafe_code)]

pub mod dataplane;
pub mod remote;

/// Success.
pub const INTERCORE_OK: i32 = 0;
/// A null pointer, a name that is not UTF-8 or too long, a bad setting, storage that
/// does not hold an attached bus.
pub const INTERCORE_E_INVALID: i32 = -1;
/// The timeout passed.
pub const INTERCORE_E_TIMEOUT: i32 = -2;
/// Nothing to do now (a poll with no message, no host buffer for a send).
pub const INTERCORE_E_WOULD_BLOCK: i32 = -3;
/// The host went away (reset the device); call `intercore_remote_wait_ready` again.
pub const INTERCORE_E_PEER_GONE: i32 = -4;
/// The message is larger than the host's buffer.
pub const INTERCORE_E_TOO_LARGE: i32 = -5;
/// No such local endpoint.
pub const INTERCORE_E_NO_ENDPOINT: i32 = -6;
/// The address is already used by another endpoint.
pub const INTERCORE_E_ADDR_IN_USE: i32 = -7;
/// Out of endpoints (8 per bus) or of another fixed resource.
pub const INTERCORE_E_EXHAUSTED: i32 = -8;
/// The link is not up (no `DRIVER_OK` yet), or a channel to `INTERCORE_ADDR_ANY` has
/// no sender to answer yet.
pub const INTERCORE_E_NOT_READY: i32 = -9;
/// The receive buffer was too small: the message was consumed, `*len` holds its length.
pub const INTERCORE_E_TRUNCATED: i32 = -10;
/// The host broke the protocol (a bad descriptor, a malformed table): the link is down.
pub const INTERCORE_E_PROTOCOL: i32 = -11;
/// Any other failure of the link.
pub const INTERCORE_E_OTHER: i32 = -12;
/// A data-plane access outside the job's buffer or the data-plane window.
pub const INTERCORE_E_FAULT: i32 = -13;

/// `timeout_ms` value: wait without limit.
pub const INTERCORE_FOREVER: u32 = u32::MAX;
/// `timeout_ms` value: do not wait (poll).
pub const INTERCORE_NO_WAIT: u32 = 0;
/// The "any address" of rpmsg: as a channel's remote, "answer the last sender".
pub const INTERCORE_ADDR_ANY: u32 = u32::MAX;

/// The status code of a core error.
pub(crate) fn status(e: &intercore::Error) -> i32 {
    use intercore::Error as E;
    match e {
        E::Timeout => INTERCORE_E_TIMEOUT,
        E::WouldBlock => INTERCORE_E_WOULD_BLOCK,
        E::PeerGone => INTERCORE_E_PEER_GONE,
        E::MessageTooLarge { .. } => INTERCORE_E_TOO_LARGE,
        E::NoSuchEndpoint(_) => INTERCORE_E_NO_ENDPOINT,
        E::AddressInUse(_) => INTERCORE_E_ADDR_IN_USE,
        E::Exhausted(_) => INTERCORE_E_EXHAUSTED,
        E::NotReady(_) => INTERCORE_E_NOT_READY,
        E::Config(_) => INTERCORE_E_INVALID,
        E::Truncated { .. } => INTERCORE_E_TRUNCATED,
        E::Wire(_) | E::Protocol { .. } => INTERCORE_E_PROTOCOL,
        _ => INTERCORE_E_OTHER,
    }
}

/// A short English description of a status code (a static NUL-terminated string; never
/// NULL, "unknown status" for a code this library does not return).
#[unsafe(no_mangle)]
pub extern "C" fn intercore_status_str(status: i32) -> *const core::ffi::c_char {
    let s: &'static core::ffi::CStr = match status {
        INTERCORE_OK => c"ok",
        INTERCORE_E_INVALID => c"invalid argument or handle",
        INTERCORE_E_TIMEOUT => c"timed out",
        INTERCORE_E_WOULD_BLOCK => c"would block",
        INTERCORE_E_PEER_GONE => c"the host went away",
        INTERCORE_E_TOO_LARGE => c"message too large",
        INTERCORE_E_NO_ENDPOINT => c"no such endpoint",
        INTERCORE_E_ADDR_IN_USE => c"address in use",
        INTERCORE_E_EXHAUSTED => c"out of endpoints or buffers",
        INTERCORE_E_NOT_READY => c"link not ready",
        INTERCORE_E_TRUNCATED => c"message truncated",
        INTERCORE_E_PROTOCOL => c"protocol error",
        INTERCORE_E_OTHER => c"link failed",
        INTERCORE_E_FAULT => c"data-plane access outside the buffer or window",
        _ => c"unknown status",
    };
    s.as_ptr()
}

#[cfg(target_os = "none")]
unsafe extern "C" {
    /// Supplied by the BSP (bare-metal builds only): called on an internal bug of the
    /// library; must not return (stop the core, reset, or report and loop).
    fn intercore_panic() -> !;
}

#[cfg(target_os = "none")]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo<'_>) -> ! {
    // SAFETY: the BSP's hook takes no arguments and does not return (its contract in the
    // header); nothing of ours is borrowed across it.
    unsafe { intercore_panic() }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_dp;
