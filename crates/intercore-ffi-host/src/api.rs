//! The extern functions: boards, endpoints, the data plane.

use crate::handles::{self, BoardObj, Obj, id_of, to_ptr};
use crate::{Fail, INTERCORE_HOST_E_BOARD, INTERCORE_HOST_E_OTHER, Res, guard, timeout};
use ::intercore_board::{Board, OpenEnv, PoolCache};
use intercore_sim::{RemoteProgram, SimFirmware};
use std::ffi::{CStr, OsStr, c_char, c_int, c_void};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// A board opened from a board file: its live link to the remote core (opaque).
#[allow(non_camel_case_types)] // the C name
pub struct intercore_board {
    _opaque: [u8; 0],
}

/// An endpoint: a local rpmsg address bound to one remote address (opaque).
#[allow(non_camel_case_types)] // the C name
pub struct intercore_endpoint {
    _opaque: [u8; 0],
}

/// A data-plane buffer (opaque): writable (from `intercore_host_dp_alloc`: fill it, then
/// submit or free it) or completed (from `intercore_host_dp_wait`: read it, then free or
/// reuse it).
#[allow(non_camel_case_types)] // the C name
pub struct intercore_buf {
    _opaque: [u8; 0],
}

/// The argument that makes a program the simulated remote core
/// ([`intercore_host_sim_remote_main`]).
const SIM_REMOTE_ARG: &str = "--intercore-sim-remote";

/// The firmwares the simulated remote core can run: intercore's demo firmwares (the
/// simulator ships none), by the names a `sim` board's `transport.firmware` uses.
fn firmwares() -> Vec<Arc<SimFirmware>> {
    vec![
        Arc::new(intercore_fw_echo::Echo),
        Arc::new(intercore_fw_echo::Sink),
        Arc::new(intercore_fw_offload::Offload),
    ]
}

/// A C string argument, as UTF-8.
///
/// # Safety
/// `p` is NULL or a NUL-terminated string valid for the call.
unsafe fn str_arg<'a>(p: *const c_char, what: &str) -> Res<&'a str> {
    if p.is_null() {
        return Err(Fail::invalid(format!("{what} is NULL")));
    }
    // SAFETY: non-null, and the caller promises a NUL-terminated string alive for the call.
    let c = unsafe { CStr::from_ptr(p) };
    c.to_str()
        .map_err(|_| Fail::invalid(format!("{what} is not UTF-8")))
}

/// Stores `v` through the out-pointer `out` (checked non-null by the caller).
fn put<T>(out: *mut T, v: T) {
    // SAFETY: every caller checked `out` non-null first, and the header requires an
    // out-pointer to point to writable storage of its type.
    unsafe { out.write(v) }
}

/// Checks an out-pointer: NULL is refused.
fn out_arg<T>(out: *mut T, what: &str) -> Res<()> {
    if out.is_null() {
        Err(Fail::invalid(format!("{what} is NULL")))
    } else {
        Ok(())
    }
}

/// If this process was started as the simulated remote core of a board this program
/// opened, runs that core until the host goes away and returns the exit code the process
/// should end with (0: the host went away cleanly). Otherwise returns -1 at once.
///
/// A program that opens `sim` boards calls it first thing in `main`:
/// `int rc = intercore_host_sim_remote_main(argc, argv); if (rc >= 0) return rc;`.
/// (The simulated SoC runs its remote core as a child process: this same program,
/// started again with an argument of its own.)
///
/// # Safety
/// `argv` holds `argc` NUL-terminated strings (as `main` receives them), or is NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn intercore_host_sim_remote_main(
    argc: c_int,
    argv: *const *const c_char,
) -> c_int {
    let Ok(n) = usize::try_from(argc) else {
        return -1;
    };
    if argv.is_null() || n < 2 {
        return -1;
    }
    std::panic::catch_unwind(|| {
        let mut args = Vec::with_capacity(n);
        for i in 0..n {
            // SAFETY: `argv` holds `argc` entries (the caller's promise); `i < argc`.
            let p = unsafe { *argv.add(i) };
            if p.is_null() {
                return -1;
            }
            // SAFETY: each entry is a NUL-terminated string (the caller's promise).
            let s = unsafe { CStr::from_ptr(p) };
            args.push(s.to_string_lossy().into_owned());
        }
        if args[1] != SIM_REMOTE_ARG {
            return -1;
        }
        intercore_sim::remote_main(&args[2..], &firmwares())
    })
    .unwrap_or(101)
}

/// Opens the board the board file at `path` describes and its link to the remote core
/// (`intercore_board::Board::open`): starts the simulated SoC or QEMU, or reaches the
/// kernel's rpmsg devices or the carveout, as the file's `transport.kind` says. On success
/// `*out` is the board (free it with `intercore_board_close`); on failure `*out` is NULL.
///
/// QEMU boards find their firmware image in the file's `transport.fw_dir`, else in
/// `$INTERCORE_FW_DIR`. `sim` boards need the program to call
/// `intercore_host_sim_remote_main` first thing in `main`.
///
/// Errors: `INTERCORE_HOST_E_INVALID` (NULL argument), `INTERCORE_HOST_E_BOARD` (the file
/// cannot be read or parsed, or the board cannot be opened: the message names the key or
/// step).
///
/// # Safety
/// `path` is a NUL-terminated string; `out` points to writable storage for a handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn intercore_board_open(
    path: *const c_char,
    out: *mut *mut intercore_board,
) -> i32 {
    guard(|| {
        out_arg(out, "out")?;
        put(out, std::ptr::null_mut());
        if path.is_null() {
            return Err(Fail::invalid("path is NULL"));
        }
        // SAFETY: non-null, NUL-terminated (the caller's promise).
        let path = Path::new(OsStr::from_bytes(
            unsafe { CStr::from_ptr(path) }.to_bytes(),
        ));
        let board = Board::from_file(path)
            .map_err(|e| Fail::new(INTERCORE_HOST_E_BOARD, format!("{}: {e}", path.display())))?;
        let sim_remote = std::env::current_exe().ok().map(|program| RemoteProgram {
            program,
            args: vec![SIM_REMOTE_ARG.to_string()],
        });
        let env = OpenEnv {
            sim_remote,
            sim_firmwares: firmwares(),
            ..OpenEnv::default()
        };
        let link = board.open_with(env).map_err(|e| {
            Fail::new(
                INTERCORE_HOST_E_BOARD,
                format!("opening {}: {e}", path.display()),
            )
        })?;
        let id = handles::with(|t| {
            Ok(t.insert(Obj::Board(Box::new(BoardObj {
                board,
                link,
                dp: None,
            }))))
        })?;
        put(out, to_ptr(id));
        Ok(())
    })
}

/// The largest message `intercore_endpoint_send` takes on this board's link, in `*out`.
///
/// # Safety
/// `out` points to writable storage for a `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn intercore_board_max_payload(
    board: *const intercore_board,
    out: *mut usize,
) -> i32 {
    guard(|| {
        out_arg(out, "out")?;
        let id = id_of(board, "board")?;
        let n = handles::with(|t| Ok(t.board(id, "board")?.link.max_payload()))?;
        put(out, n);
        Ok(())
    })
}

/// Closes the board: frees every endpoint and buffer handle obtained from it, resets the
/// link, waits up to `timeout_ms` for the remote core to end by itself (a simulated or QEMU
/// core; killed after that), and frees the board handle, whatever the result.
/// `INTERCORE_HOST_E_OTHER` if the core did not end cleanly (the message says how it
/// ended).
#[unsafe(no_mangle)]
pub extern "C" fn intercore_board_close(board: *mut intercore_board, timeout_ms: u32) -> i32 {
    guard(|| {
        let id = id_of(board, "board")?;
        let b = handles::with(|t| t.remove_board(id, "board"))?;
        let BoardObj { link, dp, .. } = *b;
        drop(dp);
        let wait = Duration::from_millis(u64::from(timeout_ms));
        let how = link
            .shut_down(wait)
            .map_err(|e| Fail::new(INTERCORE_HOST_E_OTHER, format!("closing the board: {e}")))?;
        // A simulated core's exit status is in the words (`Link::shut_down`).
        if how.contains("exited with") && !how.ends_with("exit status: 0") {
            return Err(Fail::new(
                INTERCORE_HOST_E_OTHER,
                format!("closing the board: {how}"),
            ));
        }
        Ok(())
    })
}

/// Finds the remote endpoint announcing `service` (waiting up to `timeout_ms` for the
/// announcement): its address in `*addr`.
///
/// # Safety
/// `service` is a NUL-terminated string; `addr` points to writable storage.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn intercore_board_find_service(
    board: *mut intercore_board,
    service: *const c_char,
    timeout_ms: u32,
    addr: *mut u32,
) -> i32 {
    guard(|| {
        out_arg(addr, "addr")?;
        let id = id_of(board, "board")?;
        // SAFETY: NULL or NUL-terminated (the caller's promise).
        let service = unsafe { str_arg(service, "service") }?;
        let a = handles::with(|t| {
            t.board(id, "board")?
                .link
                .find_service(service, timeout(timeout_ms))
                .map_err(|e| Fail::core(&format!("service {service:?}"), &e))
        })?;
        put(addr, a);
        Ok(())
    })
}

/// Opens an endpoint named `name` to the remote address `remote` (from
/// `intercore_board_find_service`). `*out`: the endpoint (free it with
/// `intercore_endpoint_close`, or it goes with its board); NULL on failure.
///
/// # Safety
/// `name` is a NUL-terminated string; `out` points to writable storage for a handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn intercore_endpoint_open(
    board: *mut intercore_board,
    name: *const c_char,
    remote: u32,
    out: *mut *mut intercore_endpoint,
) -> i32 {
    guard(|| {
        out_arg(out, "out")?;
        put(out, std::ptr::null_mut());
        let id = id_of(board, "board")?;
        // SAFETY: NULL or NUL-terminated (the caller's promise).
        let name = unsafe { str_arg(name, "name") }?;
        let ep = handles::with(|t| {
            let ch = t
                .board(id, "board")?
                .link
                .open(name, remote)
                .map_err(|e| Fail::core(&format!("endpoint {name:?}"), &e))?;
            Ok(t.insert(Obj::Endpoint { board: id, ch }))
        })?;
        put(out, to_ptr(ep));
        Ok(())
    })
}

/// Connects to `service`: waits up to `timeout_ms` for its announcement, then opens an
/// endpoint to it (named after the service). `*out`: the endpoint; NULL on failure.
///
/// # Safety
/// `service` is a NUL-terminated string; `out` points to writable storage for a handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn intercore_endpoint_connect(
    board: *mut intercore_board,
    service: *const c_char,
    timeout_ms: u32,
    out: *mut *mut intercore_endpoint,
) -> i32 {
    guard(|| {
        out_arg(out, "out")?;
        put(out, std::ptr::null_mut());
        let id = id_of(board, "board")?;
        // SAFETY: NULL or NUL-terminated (the caller's promise).
        let service = unsafe { str_arg(service, "service") }?;
        let ep = handles::with(|t| {
            let ch = t
                .board(id, "board")?
                .link
                .connect(service, timeout(timeout_ms))
                .map_err(|e| Fail::core(&format!("service {service:?}"), &e))?;
            Ok(t.insert(Obj::Endpoint { board: id, ch }))
        })?;
        put(out, to_ptr(ep));
        Ok(())
    })
}

/// The endpoint's local address and the remote address it talks to (either out-pointer
/// may be NULL).
///
/// # Safety
/// `local` and `remote` are NULL or point to writable storage.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn intercore_endpoint_addr(
    ep: *const intercore_endpoint,
    local: *mut u32,
    remote: *mut u32,
) -> i32 {
    guard(|| {
        let id = id_of(ep, "ep")?;
        let (_, ch) = handles::with(|t| t.endpoint(id, "ep"))?;
        if !local.is_null() {
            put(local, ch.local);
        }
        if !remote.is_null() {
            put(remote, ch.remote);
        }
        Ok(())
    })
}

/// Sends `len` bytes from `data` (copied before the call returns), waiting up to
/// `timeout_ms` for a transmit buffer. `INTERCORE_HOST_E_TOO_LARGE` beyond the link's
/// maximum payload (`intercore_board_max_payload`). `data` may be NULL when `len` is 0.
///
/// # Safety
/// `data` is NULL with `len == 0`, or readable for `len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn intercore_endpoint_send(
    ep: *mut intercore_endpoint,
    data: *const c_void,
    len: usize,
    timeout_ms: u32,
) -> i32 {
    guard(|| {
        let id = id_of(ep, "ep")?;
        let msg: &[u8] = if len == 0 {
            &[]
        } else if data.is_null() {
            return Err(Fail::invalid("data is NULL with a non-zero len"));
        } else {
            // SAFETY: non-null and readable for `len` bytes (the caller's promise); only
            // read during the call.
            unsafe { std::slice::from_raw_parts(data.cast::<u8>(), len) }
        };
        handles::with(|t| {
            let (b, ch) = t.endpoint(id, "ep")?;
            t.board(b, "the endpoint's board")?
                .link
                .send(&ch, msg, timeout(timeout_ms))
                .map_err(|e| Fail::core("send", &e))
        })
    })
}

/// Receives the next message for this endpoint into `buf` (`cap` bytes), waiting up to
/// `timeout_ms` (`INTERCORE_HOST_NO_WAIT`: `INTERCORE_HOST_E_WOULD_BLOCK` when none is
/// there). `*len`: the message's length. A message longer than `cap` is consumed, its first
/// `cap` bytes stored, `*len` its full length, and `INTERCORE_HOST_E_TRUNCATED` returned.
///
/// # Safety
/// `buf` is NULL with `cap == 0`, or writable for `cap` bytes; `len` points to writable
/// storage.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn intercore_endpoint_recv(
    ep: *mut intercore_endpoint,
    buf: *mut c_void,
    cap: usize,
    len: *mut usize,
    timeout_ms: u32,
) -> i32 {
    guard(|| {
        out_arg(len, "len")?;
        put(len, 0);
        let id = id_of(ep, "ep")?;
        let mut empty = [0u8; 0];
        let dst: &mut [u8] = if cap == 0 {
            &mut empty
        } else if buf.is_null() {
            return Err(Fail::invalid("buf is NULL with a non-zero cap"));
        } else {
            // SAFETY: non-null and writable for `cap` bytes (the caller's promise), not
            // aliased by anything of ours; only used during the call.
            unsafe { std::slice::from_raw_parts_mut(buf.cast::<u8>(), cap) }
        };
        let got = handles::with(|t| {
            let (b, ch) = t.endpoint(id, "ep")?;
            Ok(t.board(b, "the endpoint's board")?
                .link
                .recv(&ch, dst, timeout(timeout_ms)))
        })?;
        match got {
            Ok(n) => {
                put(len, n);
                Ok(())
            }
            Err(e) => {
                if let intercore::Error::Truncated { len: full } = e {
                    put(len, full);
                }
                Err(Fail::core("receive", &e))
            }
        }
    })
}

/// Closes the endpoint and frees its handle (whatever the result: the handle is invalid
/// afterwards).
#[unsafe(no_mangle)]
pub extern "C" fn intercore_endpoint_close(ep: *mut intercore_endpoint) -> i32 {
    guard(|| {
        let id = id_of(ep, "ep")?;
        handles::with(|t| {
            let Obj::Endpoint { board, ch } = t.remove(id, "ep", "an endpoint", |o| {
                matches!(o, Obj::Endpoint { .. })
            })?
            else {
                return Err(Fail::invalid("ep is not an endpoint"));
            };
            t.board(board, "the endpoint's board")?
                .link
                .close(ch)
                .map_err(|e| Fail::core("closing the endpoint", &e))
        })
    })
}

/// Opens the board's zero-copy data plane (`Link::open_data_plane`): waits up to
/// `timeout_ms` for the firmware's offload service and maps the board's buffer pool into
/// the remote's window. Once per board; a second call returns `INTERCORE_HOST_OK` at once.
#[unsafe(no_mangle)]
pub extern "C" fn intercore_host_dp_open(board: *mut intercore_board, timeout_ms: u32) -> i32 {
    guard(|| {
        let id = id_of(board, "board")?;
        handles::with(|t| {
            let b = t.board(id, "board")?;
            if b.dp.is_none() {
                let dp = b
                    .link
                    .open_data_plane(&b.board, &OpenEnv::default(), timeout(timeout_ms))
                    .map_err(|e| {
                        use ::intercore_board::DataPlaneError as D;
                        let code = match &e {
                            D::NoService(e) | D::Channel(e) | D::Open(e) => crate::status(e),
                            D::Pool(_) => INTERCORE_HOST_E_BOARD,
                        };
                        Fail::new(code, format!("opening the data plane: {e}"))
                    })?;
                b.dp = Some(dp);
            }
            Ok(())
        })
    })
}

/// The board's open data plane.
fn dp_of(b: &mut BoardObj) -> Res<&mut intercore::dataplane::DpHost<PoolCache>> {
    b.dp.as_mut().ok_or_else(|| {
        Fail::new(
            crate::INTERCORE_HOST_E_NOT_READY,
            "the data plane is not open: call intercore_host_dp_open first",
        )
    })
}

/// Takes a free buffer of at least `len` bytes from the data plane's pool: `*out` is a
/// writable buffer (fill it through `intercore_buf_data`, then `intercore_host_dp_submit`
/// or `intercore_buf_free` it); NULL on failure. `INTERCORE_HOST_E_EXHAUSTED`: no free
/// buffer that large (free or wait for some); `INTERCORE_HOST_E_NOT_READY`:
/// `intercore_host_dp_open` first.
///
/// # Safety
/// `out` points to writable storage for a handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn intercore_host_dp_alloc(
    board: *mut intercore_board,
    len: usize,
    out: *mut *mut intercore_buf,
) -> i32 {
    guard(|| {
        out_arg(out, "out")?;
        put(out, std::ptr::null_mut());
        let id = id_of(board, "board")?;
        let h = handles::with(|t| {
            let buf = dp_of(t.board(id, "board")?)?.alloc(len).ok_or_else(|| {
                Fail::new(
                    crate::INTERCORE_HOST_E_EXHAUSTED,
                    format!("no free data-plane buffer of {len} bytes"),
                )
            })?;
            Ok(t.insert(Obj::Writable { board: id, buf }))
        })?;
        put(out, to_ptr(h));
        Ok(())
    })
}

/// The buffer's bytes, in place in the shared pool: `*data` and `*len` (either may be
/// NULL). A writable buffer: its whole capacity, to fill. A completed buffer: the length
/// the remote handed back, read-only. Valid until the buffer is submitted, freed, reused
/// or closed with its board.
///
/// # Safety
/// `data` and `len` are NULL or point to writable storage.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn intercore_buf_data(
    buf: *mut intercore_buf,
    data: *mut *mut u8,
    len: *mut usize,
) -> i32 {
    guard(|| {
        if !data.is_null() {
            put(data, std::ptr::null_mut());
        }
        let id = id_of(buf, "buf")?;
        let (p, n) = handles::with(|t| {
            Ok(match t.buffer(id, "buf")? {
                Obj::Writable { buf, .. } => (buf.as_mut_ptr(), buf.len()),
                Obj::Completed { buf, .. } => (buf.as_ptr().cast_mut(), buf.len()),
                _ => return Err(Fail::invalid("buf is not a data-plane buffer")),
            })
        })?;
        if !data.is_null() {
            put(data, p);
        }
        if !len.is_null() {
            put(len, n);
        }
        Ok(())
    })
}

/// Hands the writable buffer to the remote for operation `op` (`INTERCORE_HOST_DP_OP_*`) on
/// its first `len` bytes. The handle is consumed: invalid afterwards, whatever the result,
/// except when `INTERCORE_HOST_E_INVALID` is returned for the arguments (a bad handle, a
/// completed buffer, `len` beyond the capacity), which leaves the buffer the caller's.
/// Submissions go out in batches: `intercore_host_dp_wait` (or `intercore_host_dp_flush`)
/// sends what is queued.
#[unsafe(no_mangle)]
pub extern "C" fn intercore_host_dp_submit(buf: *mut intercore_buf, len: usize, op: u32) -> i32 {
    guard(|| {
        let id = id_of(buf, "buf")?;
        handles::with(|t| {
            match t.buffer(id, "buf")? {
                Obj::Writable { buf, .. } if len > buf.len() => {
                    return Err(Fail::invalid(format!(
                        "len {len} is beyond the buffer's {} bytes",
                        buf.len()
                    )));
                }
                Obj::Writable { .. } => {}
                _ => {
                    return Err(Fail::invalid(
                        "buf is a completed buffer: intercore_buf_reuse it first",
                    ));
                }
            }
            let Obj::Writable { board, buf } = t.remove(id, "buf", "a writable buffer", |o| {
                matches!(o, Obj::Writable { .. })
            })?
            else {
                return Err(Fail::invalid("buf is not a writable buffer"));
            };
            let b = t.board(board, "the buffer's board")?;
            let BoardObj { link, dp, .. } = b;
            let dp = dp
                .as_mut()
                .ok_or_else(|| Fail::invalid("the data plane is closed"))?;
            dp.submit(link, buf, len, op)
                .map(|_| ())
                .map_err(|e| Fail::core("submit", &e))
        })
    })
}

/// Sends the submissions queued so far.
#[unsafe(no_mangle)]
pub extern "C" fn intercore_host_dp_flush(board: *mut intercore_board) -> i32 {
    guard(|| {
        let id = id_of(board, "board")?;
        handles::with(|t| {
            let BoardObj { link, dp, .. } = t.board(id, "board")?;
            let dp = dp.as_mut().ok_or_else(|| {
                Fail::new(
                    crate::INTERCORE_HOST_E_NOT_READY,
                    "the data plane is not open",
                )
            })?;
            dp.flush(link).map_err(|e| Fail::core("flush", &e))
        })
    })
}

/// Waits up to `timeout_ms` for the next buffer the remote completes (sending queued
/// submissions first): `*out` is the completed buffer (`intercore_buf_status`,
/// `intercore_buf_data`; then `intercore_buf_free` or `intercore_buf_reuse`); NULL on
/// failure. `INTERCORE_HOST_E_NOT_READY`: no buffer is in flight.
///
/// # Safety
/// `out` points to writable storage for a handle.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn intercore_host_dp_wait(
    board: *mut intercore_board,
    timeout_ms: u32,
    out: *mut *mut intercore_buf,
) -> i32 {
    guard(|| {
        out_arg(out, "out")?;
        put(out, std::ptr::null_mut());
        let id = id_of(board, "board")?;
        let h = handles::with(|t| {
            let BoardObj { link, dp, .. } = t.board(id, "board")?;
            let dp = dp.as_mut().ok_or_else(|| {
                Fail::new(
                    crate::INTERCORE_HOST_E_NOT_READY,
                    "the data plane is not open",
                )
            })?;
            let buf = dp
                .wait_complete(link, timeout(timeout_ms))
                .map_err(|e| Fail::core("waiting for a completion", &e))?;
            Ok(t.insert(Obj::Completed { board: id, buf }))
        })?;
        put(out, to_ptr(h));
        Ok(())
    })
}

/// The remote's status of a completed buffer (`INTERCORE_HOST_DP_OK`,
/// `INTERCORE_HOST_DP_FAULT`, ...) in `*status`.
///
/// # Safety
/// `status` points to writable storage.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn intercore_buf_status(buf: *const intercore_buf, status: *mut u32) -> i32 {
    guard(|| {
        out_arg(status, "status")?;
        let id = id_of(buf, "buf")?;
        let s = handles::with(|t| match t.buffer(id, "buf")? {
            Obj::Completed { buf, .. } => Ok(buf.status()),
            _ => Err(Fail::invalid(
                "buf is a writable buffer: only a completed one has a status",
            )),
        })?;
        put(status, s);
        Ok(())
    })
}

/// Turns a completed buffer back into a writable one (same handle), to fill and submit
/// again without going through the pool.
#[unsafe(no_mangle)]
pub extern "C" fn intercore_buf_reuse(buf: *mut intercore_buf) -> i32 {
    guard(|| {
        let id = id_of(buf, "buf")?;
        handles::with(|t| {
            let Obj::Completed { board, buf } = t.remove(id, "buf", "a completed buffer", |o| {
                matches!(o, Obj::Completed { .. })
            })?
            else {
                return Err(Fail::invalid("buf is not a completed buffer"));
            };
            t.reinsert(
                id,
                Obj::Writable {
                    board,
                    buf: buf.into_writable(),
                },
            );
            Ok(())
        })
    })
}

/// Frees a buffer (either kind) back to the pool. A second free of the same handle is
/// refused (`INTERCORE_HOST_E_INVALID`).
#[unsafe(no_mangle)]
pub extern "C" fn intercore_buf_free(buf: *mut intercore_buf) -> i32 {
    guard(|| {
        let id = id_of(buf, "buf")?;
        let obj = handles::with(|t| {
            t.remove(id, "buf", "a data-plane buffer", |o| {
                matches!(o, Obj::Writable { .. } | Obj::Completed { .. })
            })
        })?;
        drop(obj);
        Ok(())
    })
}

/// How many handles this thread holds (boards, endpoints and buffers): a program checks
/// it is 0 after closing everything.
#[unsafe(no_mangle)]
pub extern "C" fn intercore_host_live_handles() -> usize {
    let mut n = 0;
    let _ = guard(|| {
        n = handles::with(|t| Ok(t.live()))?;
        Ok(())
    });
    n
}
