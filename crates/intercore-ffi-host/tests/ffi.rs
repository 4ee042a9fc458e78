//! The C ABI driven through its extern functions, as a C program calls them: NULL and
//! forged handles, bad board files, timeouts, truncation, double frees, handles of the
//! wrong kind or thread, and the data plane's buffer life cycle, against the simulated SoC
//! (`boards/sim.toml`).
//!
//! `harness = false`: the simulated remote core is this test binary started again
//! (`intercore_host_sim_remote_main`), which libtest's argument parser would refuse.

use intercore_ffi_host::*;
use std::ffi::{CStr, CString, c_char};
use std::ptr::{null, null_mut};
use std::time::{Duration, Instant};

/// Calls a function of the C ABI.
macro_rules! ffi {
    ($call:expr) => {{
        // SAFETY: every pointer these tests pass is NULL, a handle token (looked up by the
        // library, never dereferenced), a NUL-terminated string, or points to a live local
        // of the type and size the call's contract asks for, for the call's duration.
        unsafe { $call }
    }};
}

fn last_error() -> String {
    // SAFETY: the library returns a NUL-terminated string, valid until the next failing
    // call on this thread; copied at once.
    unsafe { CStr::from_ptr(intercore_host_last_error()) }
        .to_string_lossy()
        .into_owned()
}

fn sim_board() -> CString {
    CString::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../boards/sim.toml"
    ))
    .unwrap()
}

/// Asserts a call's status, and that a failure's message contains `says`.
#[track_caller]
fn expect(rc: i32, want: i32, says: &str) {
    assert_eq!(rc, want, "status (last error: {})", last_error());
    if want != INTERCORE_HOST_OK {
        let m = last_error();
        assert!(m.contains(says), "message {m:?} does not say {says:?}");
    }
}

const T: u32 = 10_000;

fn null_arguments_are_refused() {
    let mut b: *mut intercore_board = std::ptr::dangling_mut();
    expect(
        ffi!(intercore_board_open(null(), &mut b)),
        INTERCORE_HOST_E_INVALID,
        "path is NULL",
    );
    assert!(b.is_null(), "a failed open leaves *out NULL");
    let path = sim_board();
    expect(
        ffi!(intercore_board_open(path.as_ptr(), null_mut())),
        INTERCORE_HOST_E_INVALID,
        "out is NULL",
    );
    let mut n = 0usize;
    expect(
        ffi!(intercore_board_max_payload(null(), &mut n)),
        INTERCORE_HOST_E_INVALID,
        "board is NULL",
    );
    expect(
        ffi!(intercore_endpoint_send(null_mut(), null(), 0, 0)),
        INTERCORE_HOST_E_INVALID,
        "ep is NULL",
    );
    expect(
        ffi!(intercore_endpoint_recv(
            null_mut(),
            null_mut(),
            0,
            null_mut(),
            0
        )),
        INTERCORE_HOST_E_INVALID,
        "len is NULL",
    );
    expect(
        intercore_endpoint_close(null_mut()),
        INTERCORE_HOST_E_INVALID,
        "ep is NULL",
    );
    expect(
        intercore_board_close(null_mut(), 0),
        INTERCORE_HOST_E_INVALID,
        "board is NULL",
    );
    expect(
        intercore_buf_free(null_mut()),
        INTERCORE_HOST_E_INVALID,
        "buf is NULL",
    );
    expect(
        intercore_host_dp_submit(null_mut(), 0, 0),
        INTERCORE_HOST_E_INVALID,
        "buf is NULL",
    );
    let mut buf = null_mut();
    expect(
        ffi!(intercore_host_dp_wait(null_mut(), 0, &mut buf)),
        INTERCORE_HOST_E_INVALID,
        "board is NULL",
    );
    // Not the remote core: -1 at once, whatever the arguments.
    assert_eq!(ffi!(intercore_host_sim_remote_main(0, null())), -1);
    let args = [c"prog".as_ptr(), c"--other".as_ptr()];
    assert_eq!(ffi!(intercore_host_sim_remote_main(2, args.as_ptr())), -1);
    let holes: [*const c_char; 2] = [c"prog".as_ptr(), null()];
    assert_eq!(ffi!(intercore_host_sim_remote_main(2, holes.as_ptr())), -1);
    assert_eq!(ffi!(intercore_host_sim_remote_main(-3, args.as_ptr())), -1);
    // Every status has a name; unknown ones say so.
    for s in [
        0, -1, -2, -3, -4, -5, -6, -7, -8, -9, -10, -11, -12, -20, -21, -22,
    ] {
        // SAFETY: a static NUL-terminated string.
        let name = unsafe { CStr::from_ptr(intercore_host_status_str(s)) };
        assert_ne!(name.to_str().unwrap(), "unknown status", "status {s}");
    }
    // SAFETY: as above.
    let unknown = unsafe { CStr::from_ptr(intercore_host_status_str(-99)) };
    assert_eq!(unknown.to_str().unwrap(), "unknown status");
}

fn bad_board_files_are_named() {
    let mut b = null_mut();
    let missing = CString::new("/nonexistent/board.toml").unwrap();
    expect(
        ffi!(intercore_board_open(missing.as_ptr(), &mut b)),
        INTERCORE_HOST_E_BOARD,
        "/nonexistent/board.toml",
    );
    assert!(b.is_null());
    let dir = std::env::temp_dir().join(format!("intercore-ffi-host-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "[transport]\nkind = \"teleport\"\n").unwrap();
    let p = CString::new(bad.to_str().unwrap()).unwrap();
    expect(
        ffi!(intercore_board_open(p.as_ptr(), &mut b)),
        INTERCORE_HOST_E_BOARD,
        "bad.toml",
    );
    assert!(b.is_null());
    let not_utf8 = CString::new(b"/tmp/\xff.toml".to_vec()).unwrap();
    expect(
        ffi!(intercore_board_open(not_utf8.as_ptr(), &mut b)),
        INTERCORE_HOST_E_BOARD,
        ".toml",
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn forged_handles_are_refused() {
    let forged = 0x1234usize as *mut intercore_board;
    let mut n = 0;
    // The handle is a token the library looks up, never dereferences.
    expect(
        ffi!(intercore_board_max_payload(forged, &mut n)),
        INTERCORE_HOST_E_INVALID,
        "not a live handle",
    );
    expect(
        intercore_board_close(forged, 0),
        INTERCORE_HOST_E_INVALID,
        "not a live handle",
    );
    expect(
        intercore_buf_free(0xdead_beefusize as *mut _),
        INTERCORE_HOST_E_INVALID,
        "not a live handle",
    );
}

/// One simulated board, every guard on live handles.
fn live_board_guards() {
    let path = sim_board();
    let mut board = null_mut();
    expect(
        ffi!(intercore_board_open(path.as_ptr(), &mut board)),
        INTERCORE_HOST_OK,
        "",
    );
    assert!(!board.is_null());
    let mut max = 0usize;
    expect(
        ffi!(intercore_board_max_payload(board, &mut max)),
        INTERCORE_HOST_OK,
        "",
    );
    assert!(max > 0);

    let mut ep = null_mut();
    expect(
        ffi!(intercore_endpoint_connect(
            board,
            c"rpmsg-raw".as_ptr(),
            T,
            &mut ep
        )),
        INTERCORE_HOST_OK,
        "",
    );
    let (mut local, mut remote) = (0u32, 0u32);
    expect(
        ffi!(intercore_endpoint_addr(ep, &mut local, &mut remote)),
        INTERCORE_HOST_OK,
        "",
    );
    // Dynamic addresses on both sides (rpmsg's first is 1024).
    assert!(local >= 1024 && remote >= 1024, "{local} {remote}");

    // A service nobody announces: the timeout, bounded.
    let mut addr = 0u32;
    let t0 = Instant::now();
    expect(
        ffi!(intercore_board_find_service(
            board,
            c"no-such".as_ptr(),
            100,
            &mut addr
        )),
        INTERCORE_HOST_E_TIMEOUT,
        "no-such",
    );
    let waited = t0.elapsed();
    assert!(
        waited >= Duration::from_millis(100) && waited < Duration::from_secs(5),
        "{waited:?}"
    );

    // Receive timeouts: nothing sent, nothing comes.
    let mut back = vec![0u8; max];
    let mut len = 7usize;
    let t0 = Instant::now();
    expect(
        ffi!(intercore_endpoint_recv(
            ep,
            back.as_mut_ptr().cast(),
            max,
            &mut len,
            50
        )),
        INTERCORE_HOST_E_TIMEOUT,
        "",
    );
    assert!(t0.elapsed() >= Duration::from_millis(50));
    assert_eq!(len, 0);
    let rc = ffi!(intercore_endpoint_recv(
        ep,
        back.as_mut_ptr().cast(),
        max,
        &mut len,
        0
    ));
    assert!(
        rc == INTERCORE_HOST_E_WOULD_BLOCK || rc == INTERCORE_HOST_E_TIMEOUT,
        "a poll with nothing there: {rc}"
    );

    // Sizes: too large refused; an echo truncated to a small buffer reports its length.
    let big = vec![1u8; max + 1];
    expect(
        ffi!(intercore_endpoint_send(ep, big.as_ptr().cast(), max + 1, T)),
        INTERCORE_HOST_E_TOO_LARGE,
        "send",
    );
    expect(
        ffi!(intercore_endpoint_send(ep, null(), 3, T)),
        INTERCORE_HOST_E_INVALID,
        "data is NULL",
    );
    let msg: Vec<u8> = (0..100u8).collect();
    expect(
        ffi!(intercore_endpoint_send(
            ep,
            msg.as_ptr().cast(),
            msg.len(),
            T
        )),
        INTERCORE_HOST_OK,
        "",
    );
    expect(
        ffi!(intercore_endpoint_recv(
            ep,
            back.as_mut_ptr().cast(),
            10,
            &mut len,
            T
        )),
        INTERCORE_HOST_E_TRUNCATED,
        "truncated",
    );
    assert_eq!(len, 100);
    assert_eq!(back[..10], msg[..10]);
    expect(
        ffi!(intercore_endpoint_recv(ep, null_mut(), 5, &mut len, T)),
        INTERCORE_HOST_E_INVALID,
        "buf is NULL",
    );

    // Handles of the wrong kind and of another thread.
    expect(
        ffi!(intercore_board_max_payload(ep.cast(), &mut max)),
        INTERCORE_HOST_E_INVALID,
        "is an endpoint, not a board",
    );
    let (b_addr, e_addr) = (board as usize, ep as usize);
    let (rc_b, rc_e, msg) = std::thread::spawn(move || {
        let mut n = 0;
        // Tokens from the main thread, looked up in this thread's (empty) table.
        let rc_b = ffi!(intercore_board_max_payload(b_addr as *const _, &mut n));
        let rc_e = intercore_endpoint_close(e_addr as *mut _);
        (rc_b, rc_e, last_error())
    })
    .join()
    .unwrap();
    assert_eq!(
        (rc_b, rc_e),
        (INTERCORE_HOST_E_INVALID, INTERCORE_HOST_E_INVALID)
    );
    assert!(msg.contains("another thread"), "{msg}");

    // The data plane: closed until opened.
    let mut buf = null_mut();
    expect(
        ffi!(intercore_host_dp_alloc(board, 4096, &mut buf)),
        INTERCORE_HOST_E_NOT_READY,
        "intercore_host_dp_open",
    );
    expect(intercore_host_dp_open(board, T), INTERCORE_HOST_OK, "");
    expect(intercore_host_dp_open(board, T), INTERCORE_HOST_OK, "");
    let mut done = null_mut();
    expect(
        ffi!(intercore_host_dp_wait(board, 100, &mut done)),
        INTERCORE_HOST_E_NOT_READY,
        "no buffer in flight",
    );
    expect(
        ffi!(intercore_host_dp_alloc(board, 1 << 30, &mut buf)),
        INTERCORE_HOST_E_EXHAUSTED,
        "no free data-plane buffer",
    );
    assert!(buf.is_null());

    // A buffer's life: fill in place, submit (consumed), wait, check, reuse, free.
    expect(
        ffi!(intercore_host_dp_alloc(board, 4096, &mut buf)),
        INTERCORE_HOST_OK,
        "",
    );
    let (mut data, mut cap) = (null_mut(), 0usize);
    expect(
        ffi!(intercore_buf_data(buf, &mut data, &mut cap)),
        INTERCORE_HOST_OK,
        "",
    );
    assert!(cap >= 4096 && !data.is_null());
    let mut st = 0u32;
    expect(
        ffi!(intercore_buf_status(buf, &mut st)),
        INTERCORE_HOST_E_INVALID,
        "only a completed one",
    );
    expect(
        intercore_host_dp_submit(buf, cap + 1, INTERCORE_HOST_DP_OP_CRC32C),
        INTERCORE_HOST_E_INVALID,
        "beyond the buffer",
    );
    let len = 3000;
    // SAFETY: the library handed out `cap` writable bytes at `data`, ours until submit.
    let bytes = unsafe { std::slice::from_raw_parts_mut(data, cap) };
    for (i, x) in bytes[..len].iter_mut().enumerate() {
        *x = (i * 13 + 5) as u8;
    }
    let want = intercore::crc32c(&bytes[..len]);
    expect(
        intercore_host_dp_submit(buf, len, INTERCORE_HOST_DP_OP_CRC32C),
        INTERCORE_HOST_OK,
        "",
    );
    expect(
        intercore_buf_free(buf),
        INTERCORE_HOST_E_INVALID,
        "not a live handle",
    );
    expect(
        intercore_host_dp_submit(buf, len, 1),
        INTERCORE_HOST_E_INVALID,
        "not a live handle",
    );
    expect(
        ffi!(intercore_host_dp_wait(board, T, &mut done)),
        INTERCORE_HOST_OK,
        "",
    );
    expect(
        ffi!(intercore_buf_status(done, &mut st)),
        INTERCORE_HOST_OK,
        "",
    );
    assert_eq!(st, INTERCORE_HOST_DP_OK);
    let mut n = 0usize;
    expect(
        ffi!(intercore_buf_data(done, &mut data, &mut n)),
        INTERCORE_HOST_OK,
        "",
    );
    assert!(n >= len + 4);
    // SAFETY: `n` readable bytes of the completed buffer, until it is freed.
    let got = unsafe { std::slice::from_raw_parts(data, n) };
    assert_eq!(got[len..len + 4], want.to_le_bytes());
    expect(
        intercore_host_dp_submit(done, len, INTERCORE_HOST_DP_OP_CRC32C),
        INTERCORE_HOST_E_INVALID,
        "intercore_buf_reuse",
    );
    expect(intercore_buf_reuse(done), INTERCORE_HOST_OK, "");
    expect(
        intercore_buf_reuse(done),
        INTERCORE_HOST_E_INVALID,
        "not a completed buffer",
    );
    expect(intercore_buf_free(done), INTERCORE_HOST_OK, "");
    expect(
        intercore_buf_free(done),
        INTERCORE_HOST_E_INVALID,
        "not a live handle",
    );

    // Double close of an endpoint; an endpoint handle as a buffer.
    expect(
        intercore_buf_free(ep.cast()),
        INTERCORE_HOST_E_INVALID,
        "not a data-plane buffer",
    );
    expect(intercore_endpoint_close(ep), INTERCORE_HOST_OK, "");
    expect(
        intercore_endpoint_close(ep),
        INTERCORE_HOST_E_INVALID,
        "not a live handle",
    );

    // Closing the board frees what came from it.
    let mut ep2 = null_mut();
    expect(
        ffi!(intercore_endpoint_connect(
            board,
            c"rpmsg-raw".as_ptr(),
            T,
            &mut ep2
        )),
        INTERCORE_HOST_OK,
        "",
    );
    expect(
        ffi!(intercore_host_dp_alloc(board, 4096, &mut buf)),
        INTERCORE_HOST_OK,
        "",
    );
    assert_eq!(intercore_host_live_handles(), 3);
    expect(intercore_board_close(board, 5000), INTERCORE_HOST_OK, "");
    assert_eq!(intercore_host_live_handles(), 0);
    expect(
        intercore_buf_free(buf),
        INTERCORE_HOST_E_INVALID,
        "not a live handle",
    );
    expect(
        intercore_endpoint_close(ep2),
        INTERCORE_HOST_E_INVALID,
        "not a live handle",
    );
    expect(
        intercore_board_close(board, 0),
        INTERCORE_HOST_E_INVALID,
        "not a live handle",
    );
}

fn main() {
    // The simulated remote core: this binary, started again by the simulator.
    let args: Vec<CString> = std::env::args().map(|a| CString::new(a).unwrap()).collect();
    let argv: Vec<*const c_char> = args.iter().map(|a| a.as_ptr()).collect();
    // SAFETY: `argv` holds `args.len()` NUL-terminated strings that outlive the call.
    let rc = ffi!(intercore_host_sim_remote_main(
        argv.len() as i32,
        argv.as_ptr()
    ));
    if rc >= 0 {
        std::process::exit(rc);
    }
    let tests: [(&str, fn()); 4] = [
        ("null_arguments_are_refused", null_arguments_are_refused),
        ("bad_board_files_are_named", bad_board_files_are_named),
        ("forged_handles_are_refused", forged_handles_are_refused),
        ("live_board_guards", live_board_guards),
    ];
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let (mut failed, mut passed) = (0, 0);
    for (name, f) in tests {
        if !filter.is_empty() && !filter.iter().any(|p| name.contains(p.as_str())) {
            continue;
        }
        match std::panic::catch_unwind(f) {
            Ok(()) => {
                println!("test {name} ... ok");
                passed += 1;
            }
            Err(_) => {
                println!("test {name} ... FAILED");
                failed += 1;
            }
        }
    }
    if failed > 0 {
        println!("test result: FAILED. {passed} passed; {failed} failed");
        std::process::exit(1);
    }
    println!("test result: ok. {passed} passed; 0 failed");
}
