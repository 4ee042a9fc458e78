//! intercore's C ABI for the host role on Linux.
//!
//! A shared library (`libintercore_ffi_host.so`) and a static one
//! (`libintercore_ffi_host.a`), with the pkg-config files `intercore-host.pc` and
//! `intercore-host-static.pc` (templates beside this crate's manifest, filled in by
//! `scripts/test-c-host.sh`), for C and C++ programs: open a board from a board file
//! ([`::intercore_board::Board::open_with`], every transport: the simulated SoC, QEMU's
//! emulated cores, the kernel's rpmsg char devices, userspace), endpoints, send and receive
//! with timeouts, the zero-copy data plane (buffer alloc, fill in place, submit, wait for
//! completion), and errors as status codes plus a message.
//!
//! The boundary's rules (the header's OWNERSHIP / THREADING / ERRORS text, from
//! `cbindgen.toml`):
//! * handles are opaque tokens, never addresses: a stale, freed, foreign or wrong-kind
//!   handle is refused with `INTERCORE_HOST_E_INVALID`, never dereferenced (`handles.rs`);
//! * every function returns a status; nothing unwinds into C (each body runs under
//!   `catch_unwind`, a panic is `INTERCORE_HOST_E_INTERNAL`);
//! * the message of the last failure is kept per thread (`intercore_host_last_error`).
//!
//! The header, `include/intercore_host.h`, is generated from this crate by cbindgen; the
//! test `header_is_current` fails when the committed one differs.
// The whole crate is a foreign-function boundary: raw pointers from C, `extern "C"`
// functions, `no_mangle`. Every block carries its SAFETY reason.
#![allow(unsafe_code)]

mod api;
mod handles;

pub use api::*;

use std::cell::RefCell;
use std::ffi::{CStr, CString, c_char};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Duration;

/// Success.
pub const INTERCORE_HOST_OK: i32 = 0;
/// A null pointer, a string that is not UTF-8, a length beyond a buffer, or a handle that
/// is not live on this thread (freed, closed with its board, made on another thread, or of
/// another kind).
pub const INTERCORE_HOST_E_INVALID: i32 = -1;
/// The timeout passed.
pub const INTERCORE_HOST_E_TIMEOUT: i32 = -2;
/// Nothing to do now (a receive with a zero timeout and no message).
pub const INTERCORE_HOST_E_WOULD_BLOCK: i32 = -3;
/// The remote core went away (its process died, it reset the link).
pub const INTERCORE_HOST_E_PEER_GONE: i32 = -4;
/// The message is larger than the link's maximum payload.
pub const INTERCORE_HOST_E_TOO_LARGE: i32 = -5;
/// No such endpoint.
pub const INTERCORE_HOST_E_NO_ENDPOINT: i32 = -6;
/// The address is already used by another endpoint.
pub const INTERCORE_HOST_E_ADDR_IN_USE: i32 = -7;
/// Out of endpoints, or no free data-plane buffer of the size asked for.
pub const INTERCORE_HOST_E_EXHAUSTED: i32 = -8;
/// Not set up yet: the data plane is not open, or nothing is in flight to wait for.
pub const INTERCORE_HOST_E_NOT_READY: i32 = -9;
/// The receive buffer was too small: the message was consumed, `*len` holds its length.
pub const INTERCORE_HOST_E_TRUNCATED: i32 = -10;
/// The remote broke the protocol: the link is unusable.
pub const INTERCORE_HOST_E_PROTOCOL: i32 = -11;
/// Any other failure of the link (an operating-system call, ...).
pub const INTERCORE_HOST_E_OTHER: i32 = -12;
/// The board file could not be read or parsed, or the board could not be opened (the
/// message names the board key or what was being done).
pub const INTERCORE_HOST_E_BOARD: i32 = -20;
/// Messages for this endpoint were dropped (its receive queue was full); the next receive
/// continues after them.
pub const INTERCORE_HOST_E_LOST: i32 = -21;
/// A bug in the library (a panic, caught at the boundary). The message says where.
pub const INTERCORE_HOST_E_INTERNAL: i32 = -22;

/// `timeout_ms` value: wait without limit.
pub const INTERCORE_HOST_FOREVER: u32 = u32::MAX;
/// `timeout_ms` value: do not wait (poll).
pub const INTERCORE_HOST_NO_WAIT: u32 = 0;

// The data-plane values are the wire's (`intercore::wire::dataplane`), spelled as literals
// for cbindgen (it does not follow paths into other crates); the test
// `dp_values_are_the_wires` holds them equal.

/// Data-plane operation: the remote computes the CRC32C (Castagnoli) of the buffer's first
/// `len` bytes and writes it little-endian right after them (`len + 4` must fit).
pub const INTERCORE_HOST_DP_OP_CRC32C: u32 = 1;
/// Data-plane operation: the remote hands the buffer back untouched.
pub const INTERCORE_HOST_DP_OP_NOP: u32 = 2;
/// A completed buffer's status: the operation succeeded.
pub const INTERCORE_HOST_DP_OK: u32 = 0;
/// A completed buffer's status: the remote could not reach the buffer.
pub const INTERCORE_HOST_DP_FAULT: u32 = 1;
/// A completed buffer's status: the request was malformed (length beyond the buffer).
pub const INTERCORE_HOST_DP_BAD_REQUEST: u32 = 2;
/// A completed buffer's status: the remote does not implement the operation.
pub const INTERCORE_HOST_DP_UNSUPPORTED: u32 = 3;

#[cfg(test)]
mod tests;

/// A failed call: its status code and what to tell the caller.
#[derive(Debug)]
pub(crate) struct Fail {
    code: i32,
    msg: String,
}

impl Fail {
    pub(crate) fn new(code: i32, msg: impl Into<String>) -> Self {
        Self {
            code,
            msg: msg.into(),
        }
    }
    pub(crate) fn invalid(msg: impl Into<String>) -> Self {
        Self::new(INTERCORE_HOST_E_INVALID, msg)
    }
    /// A core error, `what` saying what was being done.
    pub(crate) fn core(what: &str, e: &intercore::Error) -> Self {
        Self::new(status(e), format!("{what}: {e}"))
    }
}

pub(crate) type Res<T> = Result<T, Fail>;

/// The status code of a core error.
pub(crate) fn status(e: &intercore::Error) -> i32 {
    use intercore::Error as E;
    match e {
        E::Timeout => INTERCORE_HOST_E_TIMEOUT,
        E::WouldBlock => INTERCORE_HOST_E_WOULD_BLOCK,
        E::PeerGone => INTERCORE_HOST_E_PEER_GONE,
        E::MessageTooLarge { .. } => INTERCORE_HOST_E_TOO_LARGE,
        E::NoSuchEndpoint(_) => INTERCORE_HOST_E_NO_ENDPOINT,
        E::AddressInUse(_) => INTERCORE_HOST_E_ADDR_IN_USE,
        E::Exhausted(_) => INTERCORE_HOST_E_EXHAUSTED,
        E::NotReady(_) => INTERCORE_HOST_E_NOT_READY,
        E::Config(_) => INTERCORE_HOST_E_INVALID,
        E::Truncated { .. } => INTERCORE_HOST_E_TRUNCATED,
        E::Lost { .. } => INTERCORE_HOST_E_LOST,
        E::Wire(_) | E::Protocol { .. } => INTERCORE_HOST_E_PROTOCOL,
        _ => INTERCORE_HOST_E_OTHER,
    }
}

/// A `timeout_ms` argument: [`INTERCORE_HOST_FOREVER`] is no limit.
pub(crate) fn timeout(ms: u32) -> Option<Duration> {
    (ms != INTERCORE_HOST_FOREVER).then(|| Duration::from_millis(u64::from(ms)))
}

thread_local! {
    /// The message of this thread's last failed call.
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

fn set_last_error(msg: &str) {
    // A NUL inside a message (from a path, say) would cut it: shown as U+FFFD instead.
    let c = CString::new(msg.replace('\0', "\u{fffd}")).unwrap_or_default();
    LAST_ERROR.with(|l| *l.borrow_mut() = c);
}

/// Runs one call's body at the boundary: its failure becomes a status code and this
/// thread's last message; a panic is caught (never unwinds into C) and reported as
/// [`INTERCORE_HOST_E_INTERNAL`].
pub(crate) fn guard(body: impl FnOnce() -> Res<()>) -> i32 {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => INTERCORE_HOST_OK,
        Ok(Err(f)) => {
            set_last_error(&f.msg);
            f.code
        }
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".into());
            // The payload is dropped here, inside the boundary; its drop is our type's.
            drop(payload);
            set_last_error(&format!("internal error (a bug in intercore): {what}"));
            INTERCORE_HOST_E_INTERNAL
        }
    }
}

/// The message of this thread's last failed call (a NUL-terminated UTF-8 string; empty
/// before any failure; never NULL). Owned by the library: do not free it. Valid until the
/// next failing `intercore_*` call on this thread, or the thread's end.
#[unsafe(no_mangle)]
pub extern "C" fn intercore_host_last_error() -> *const c_char {
    catch_unwind(|| LAST_ERROR.with(|l| l.borrow().as_ptr())).unwrap_or(c"".as_ptr())
}

/// A short English description of a status code (a static NUL-terminated string; never
/// NULL, "unknown status" for a code this library does not return). Never free it.
#[unsafe(no_mangle)]
pub extern "C" fn intercore_host_status_str(status: i32) -> *const c_char {
    let s: &'static CStr = match status {
        INTERCORE_HOST_OK => c"ok",
        INTERCORE_HOST_E_INVALID => c"invalid argument or handle",
        INTERCORE_HOST_E_TIMEOUT => c"timed out",
        INTERCORE_HOST_E_WOULD_BLOCK => c"would block",
        INTERCORE_HOST_E_PEER_GONE => c"the remote core went away",
        INTERCORE_HOST_E_TOO_LARGE => c"message too large",
        INTERCORE_HOST_E_NO_ENDPOINT => c"no such endpoint",
        INTERCORE_HOST_E_ADDR_IN_USE => c"address in use",
        INTERCORE_HOST_E_EXHAUSTED => c"out of endpoints or buffers",
        INTERCORE_HOST_E_NOT_READY => c"not ready",
        INTERCORE_HOST_E_TRUNCATED => c"message truncated",
        INTERCORE_HOST_E_PROTOCOL => c"protocol error",
        INTERCORE_HOST_E_OTHER => c"link failed",
        INTERCORE_HOST_E_BOARD => c"board file or board could not be opened",
        INTERCORE_HOST_E_LOST => c"messages were dropped",
        INTERCORE_HOST_E_INTERNAL => c"internal error",
        _ => c"unknown status",
    };
    s.as_ptr()
}
