//! The boundary's own machinery: values, the panic guard, timeouts.

use super::*;
use intercore::wire::dataplane as wire;

#[test]
fn dp_values_are_the_wires() {
    assert_eq!(INTERCORE_HOST_DP_OP_CRC32C, wire::DP_OP_CRC32C);
    assert_eq!(INTERCORE_HOST_DP_OP_NOP, wire::DP_OP_NOP);
    assert_eq!(INTERCORE_HOST_DP_OK, wire::DP_OK);
    assert_eq!(INTERCORE_HOST_DP_FAULT, wire::DP_FAULT);
    assert_eq!(INTERCORE_HOST_DP_BAD_REQUEST, wire::DP_BAD_REQUEST);
    assert_eq!(INTERCORE_HOST_DP_UNSUPPORTED, wire::DP_UNSUPPORTED);
}

fn last() -> String {
    // SAFETY: a NUL-terminated string owned by this thread's slot, copied at once.
    unsafe { CStr::from_ptr(intercore_host_last_error()) }
        .to_string_lossy()
        .into_owned()
}

/// A panic inside a call is caught at the boundary: a status and a message, no unwind.
#[test]
fn a_panic_becomes_a_status() {
    let rc = guard(|| panic!("deliberate"));
    assert_eq!(rc, INTERCORE_HOST_E_INTERNAL);
    assert!(last().contains("deliberate"), "{}", last());
    let rc = guard(|| Err(Fail::new(INTERCORE_HOST_E_TIMEOUT, "a\0b")));
    assert_eq!(rc, INTERCORE_HOST_E_TIMEOUT);
    assert_eq!(last(), "a\u{fffd}b");
    assert_eq!(guard(|| Ok(())), INTERCORE_HOST_OK);
    // A success leaves the last failure's message.
    assert_eq!(last(), "a\u{fffd}b");
}

/// The message is per thread.
#[test]
fn last_error_is_per_thread() {
    guard(|| Err(Fail::invalid("here")));
    let there = std::thread::spawn(last).join().unwrap();
    assert_eq!(there, "");
    assert_eq!(last(), "here");
}

#[test]
fn timeouts() {
    assert_eq!(timeout(INTERCORE_HOST_FOREVER), None);
    assert_eq!(timeout(0), Some(Duration::ZERO));
    assert_eq!(timeout(1500), Some(Duration::from_millis(1500)));
}

#[test]
fn core_errors_map_to_codes() {
    use intercore::Error as E;
    assert_eq!(status(&E::Timeout), INTERCORE_HOST_E_TIMEOUT);
    assert_eq!(status(&E::Lost { count: 2 }), INTERCORE_HOST_E_LOST);
    assert_eq!(status(&E::Truncated { len: 9 }), INTERCORE_HOST_E_TRUNCATED);
    assert_eq!(
        status(&E::MessageTooLarge { len: 9, max: 1 }),
        INTERCORE_HOST_E_TOO_LARGE
    );
    assert_eq!(status(&E::Os(5)), INTERCORE_HOST_E_OTHER);
}
