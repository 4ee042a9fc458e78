//! The data plane's remote side for C firmware: the host submits bulk buffers (by device
//! address) on the `intercore-dp` service (the firmware announces it with
//! `intercore_remote_open`); the firmware works on each in place — through
//! the window its pool lies in, with the BSP's cache maintenance — and the library batches
//! the completions. No allocation: the state lives in the caller's `intercore_dp`.

use core::ffi::c_void;
use core::mem::{MaybeUninit, align_of, size_of};

use intercore::dataplane::{CacheOps, DpRemote, Job};
use intercore::{DevAddr, LinearMap};

use crate::remote::{intercore_channel, intercore_platform, intercore_remote};
use crate::{INTERCORE_E_FAULT, INTERCORE_E_INVALID, INTERCORE_OK, status};

/// Operation: write the CRC32C of the input (4 bytes, little-endian) right after it.
pub const INTERCORE_DP_OP_CRC32C: u32 = 1;
/// Operation: nothing (complete with no output).
pub const INTERCORE_DP_OP_NOP: u32 = 2;
/// Job status: done; the output length is the work function's `*out_len`.
pub const INTERCORE_DP_OK: u32 = 0;
/// Job status: an access faulted (outside the buffer or the window).
pub const INTERCORE_DP_FAULT: u32 = 1;
/// Job status: the request is invalid.
pub const INTERCORE_DP_BAD_REQUEST: u32 = 2;
/// Job status: the operation is not supported.
pub const INTERCORE_DP_UNSUPPORTED: u32 = 3;

// The header's values are the wire's.
const _: () = {
    use intercore::wire::dataplane as w;
    assert!(INTERCORE_DP_OP_CRC32C == w::DP_OP_CRC32C && INTERCORE_DP_OP_NOP == w::DP_OP_NOP);
    assert!(INTERCORE_DP_OK == w::DP_OK && INTERCORE_DP_FAULT == w::DP_FAULT);
    assert!(INTERCORE_DP_BAD_REQUEST == w::DP_BAD_REQUEST);
    assert!(INTERCORE_DP_UNSUPPORTED == w::DP_UNSUPPORTED);
};

/// Where the host's data-plane buffers lie, as this core sees them.
///
/// `pool_base` is the CPU address of the window, `pool_len` its length, `pool_da` the
/// device address the host submits for its first byte; no job reaches outside it.
/// `line_size` is the data-cache line (a power of two; 0: 32, the Cortex-R5F's and
/// Cortex-M7's): the cache hooks get whole lines. The platform's `cache_invalidate` is
/// called on a buffer's input before it is read, `cache_clean` on what was written
/// before the completion is sent (NULL hooks: coherent memory).
#[repr(C)]
#[derive(Clone, Copy)]
#[allow(non_camel_case_types)]
pub struct intercore_dp_config {
    /// CPU address of the window.
    pub pool_base: *mut c_void,
    /// Its length in bytes.
    pub pool_len: usize,
    /// The host's device address of `pool_base`.
    pub pool_da: u64,
    /// Data-cache line size (0: 32).
    pub line_size: usize,
}

/// Counters of a data plane.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub struct intercore_dp_stats {
    /// Jobs completed with `INTERCORE_DP_OK`.
    pub done: u64,
    /// Jobs refused because an access faulted.
    pub faults: u64,
    /// Jobs refused as invalid, and malformed submit messages.
    pub bad: u64,
}

/// Words (8 bytes each) of an `intercore_dp`.
pub const INTERCORE_DP_WORDS: usize = 320;
/// Size in bytes of an `intercore_dp`.
pub const INTERCORE_DP_SIZE: usize = INTERCORE_DP_WORDS * 8;
/// Alignment in bytes of an `intercore_dp`.
pub const INTERCORE_DP_ALIGN: usize = 8;

/// Storage for one data plane, provided by the caller (a static, usually). Opaque.
#[repr(C)]
#[allow(non_camel_case_types)]
pub struct intercore_dp {
    /// Opaque: never read or written by C.
    pub _opaque: [u64; INTERCORE_DP_WORDS],
}

/// One submitted buffer, handed to the work function: valid only during that call.
/// Opaque (an incomplete type in C).
#[allow(non_camel_case_types)]
pub struct intercore_dp_job {
    _private: [u8; 0],
}

/// The work done on one buffer: returns a job status (`INTERCORE_DP_OK` with the output
/// length in `*out_len`, which may not exceed the buffer's capacity, or another
/// `INTERCORE_DP_*`). It reads and writes the buffer only through
/// `intercore_dp_job_input`/`intercore_dp_job_output`, and calls no `intercore_remote_*`
/// or `intercore_dp_*` function other than `intercore_dp_job_*` on its own job.
#[allow(non_camel_case_types)]
pub type intercore_dp_work_fn = Option<
    unsafe extern "C" fn(ctx: *mut c_void, job: *mut intercore_dp_job, out_len: *mut usize) -> u32,
>;

/// The BSP's cache maintenance over the pool window.
struct BspCache {
    hooks: intercore_platform,
    base: *mut u8,
    len: usize,
    line: usize,
}

impl BspCache {
    fn call(
        &self,
        f: Option<unsafe extern "C" fn(*mut c_void, *const c_void, usize)>,
        off: usize,
        len: usize,
    ) {
        // `DpRemote` passes whole lines inside the window (`line_span` over a range the
        // window check admitted); the clamp keeps a hook inside it all the same.
        let (Some(f), true) = (f, len != 0 && off < self.len) else {
            return;
        };
        let len = len.min(self.len - off);
        // SAFETY: the BSP's hook with its own context, on bytes of the window.
        unsafe { f(self.hooks.ctx, self.base.add(off).cast(), len) };
    }
}

// SAFETY: `cpu_ptr` is the window the caller of `intercore_dp_init` declared: `pool_len`
// bytes of shared memory, readable and writable while the data plane lives (its contract
// in the header); the base is checked aligned to the line size at init.
unsafe impl CacheOps for BspCache {
    fn line_size(&self) -> usize {
        self.line
    }
    fn region_len(&self) -> usize {
        self.len
    }
    fn cpu_ptr(&self) -> *mut u8 {
        self.base
    }
    fn clean(&self, _buf: u32, off: usize, len: usize) {
        self.call(self.hooks.cache_clean, off, len);
        // Release: the written bytes are ordered before the completion message.
        core::sync::atomic::fence(core::sync::atomic::Ordering::Release);
    }
    fn invalidate(&self, _buf: u32, off: usize, len: usize) {
        // Acquire: the submit message was read before the buffer's bytes.
        core::sync::atomic::fence(core::sync::atomic::Ordering::Acquire);
        self.call(self.hooks.cache_invalidate, off, len);
    }
}

type Dp = DpRemote<BspCache, LinearMap>;
type DpJob<'a> = Job<'a, BspCache, LinearMap>;

struct Slot {
    magic: u64,
    dp: MaybeUninit<Dp>,
}

const MAGIC: u64 = 0x1c0e_f1f0_d47a_b1a5;

const _: () = assert!(size_of::<Slot>() <= size_of::<intercore_dp>());
const _: () = assert!(align_of::<Slot>() <= INTERCORE_DP_ALIGN);
const _: () = assert!(align_of::<intercore_dp>() == INTERCORE_DP_ALIGN);
const _: () = assert!(INTERCORE_DP_SIZE == size_of::<intercore_dp>());

/// The data plane in `d`, or `None` (null, never initialised).
///
/// # Safety
/// `d` is null or points to a live `intercore_dp` nothing else accesses during the call.
unsafe fn dp<'a>(d: *mut intercore_dp) -> Option<&'a mut Dp> {
    // SAFETY: large and aligned enough for a `Slot` (checked above), ours for the call.
    let slot = unsafe { d.cast::<Slot>().as_mut()? };
    if slot.magic != MAGIC {
        return None;
    }
    // SAFETY: the magic is written only after `dp` was initialised.
    Some(unsafe { slot.dp.assume_init_mut() })
}

/// Prepares a data plane over the pool window in `config`, with the cache hooks of
/// `platform` (only `ctx`, `cache_invalidate` and `cache_clean` are used). `d` may be
/// zeroed or already initialised storage (its queued completions are then forgotten).
///
/// # Safety
/// `d` points to writable storage of `INTERCORE_DP_SIZE` bytes aligned to
/// `INTERCORE_DP_ALIGN`; `platform` and `config` point to valid structs (copied); the
/// window is shared memory that stays mapped while the data plane is used.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn intercore_dp_init(
    d: *mut intercore_dp,
    platform: *const intercore_platform,
    config: *const intercore_dp_config,
) -> i32 {
    // SAFETY: the caller's contract: null or valid.
    let (Some(p), Some(c)) = (unsafe { platform.as_ref() }, unsafe { config.as_ref() }) else {
        return INTERCORE_E_INVALID;
    };
    let line = if c.line_size == 0 { 32 } else { c.line_size };
    let base = c.pool_base.cast::<u8>();
    if d.is_null()
        || base.is_null()
        || !line.is_power_of_two()
        || (base as usize) % line.max(8) != 0
        || c.pool_len == 0
        || (base as usize).checked_add(c.pool_len).is_none()
        || c.pool_da.checked_add(c.pool_len as u64).is_none()
    {
        return INTERCORE_E_INVALID;
    }
    let cache = BspCache {
        hooks: *p,
        base,
        len: c.pool_len,
        line,
    };
    let window = LinearMap {
        base: DevAddr(c.pool_da),
        offset: 0,
        len: c.pool_len,
    };
    // SAFETY: valid storage (the caller's contract); a previous data plane holds nothing
    // that needs dropping (plain data and copied hooks).
    let slot = unsafe { &mut *d.cast::<Slot>() };
    slot.magic = 0;
    slot.dp.write(DpRemote::new(cache, window));
    slot.magic = MAGIC;
    INTERCORE_OK
}

fn run_work(
    work: unsafe extern "C" fn(*mut c_void, *mut intercore_dp_job, *mut usize) -> u32,
    ctx: *mut c_void,
    job: &mut DpJob<'_>,
) -> Result<usize, u32> {
    let mut n = 0usize;
    let ptr = core::ptr::from_mut(job).cast::<intercore_dp_job>();
    // SAFETY: the work function's contract: uses `job` only during the call, through the
    // `intercore_dp_job_*` calls; `n` is a live local.
    match unsafe { work(ctx, ptr, &mut n) } {
        intercore::wire::dataplane::DP_OK => Ok(n),
        s => Err(s),
    }
}

/// Handles one submit message that arrived on our endpoint `ep` from `src` (`data`,
/// `len` bytes: e.g. an `intercore_msg` in a receive callback): runs `work` on every
/// buffer it names and queues the completions for `intercore_dp_flush`. A malformed
/// message is counted (`bad`) and dropped. Touches no bus: may be called from a receive
/// callback. The message is parsed in place with unaligned loads: where the shared window
/// is mapped as Device memory (which faults on them), copy it to a buffer of your own
/// first.
///
/// # Safety
/// `d` as in `intercore_dp_init` (initialised); `data` readable for `len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn intercore_dp_process(
    d: *mut intercore_dp,
    ep: u32,
    src: u32,
    data: *const u8,
    len: usize,
    work: intercore_dp_work_fn,
    ctx: *mut c_void,
) -> i32 {
    // SAFETY: the caller's contract.
    let (Some(dp), Some(work)) = (unsafe { dp(d) }, work) else {
        return INTERCORE_E_INVALID;
    };
    if data.is_null() {
        return INTERCORE_E_INVALID;
    }
    // SAFETY: readable for `len` bytes (the caller's contract).
    let payload = unsafe { core::slice::from_raw_parts(data, len) };
    dp.process(ep, src, payload, |job| run_work(work, ctx, job));
    INTERCORE_OK
}

/// Sends the queued completions to the host on bus `r`, as many per message as a host
/// buffer holds, waiting up to `timeout_ms` for each message's room. A flush that fails
/// part way keeps the rest for the next one.
///
/// # Safety
/// `d` as above; `r` null or valid storage of an `intercore_remote` no other call uses at
/// the same time.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn intercore_dp_flush(
    d: *mut intercore_dp,
    r: *mut intercore_remote,
    timeout_ms: u32,
) -> i32 {
    // SAFETY: the caller's contract.
    let (Some(dp), Some(bus)) = (unsafe { dp(d) }, unsafe { crate::remote::bus(r) }) else {
        return INTERCORE_E_INVALID;
    };
    match dp.flush(bus, crate::remote::timeout(timeout_ms)) {
        Ok(()) => INTERCORE_OK,
        Err(e) => status(&e),
    }
}

/// Serves one submit message: receives it on `ch` in place (waiting up to `timeout_ms`),
/// runs `work` on each of its buffers and flushes the completions (each flush message
/// waits up to `timeout_ms` too). For a firmware whose only work on the bus is the data
/// plane; one that serves other endpoints too calls `intercore_dp_process` from its own
/// receive callback and `intercore_dp_flush` after it.
///
/// # Safety
/// As `intercore_dp_process` and `intercore_dp_flush`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn intercore_dp_serve(
    d: *mut intercore_dp,
    r: *mut intercore_remote,
    ch: intercore_channel,
    timeout_ms: u32,
    work: intercore_dp_work_fn,
    ctx: *mut c_void,
) -> i32 {
    // SAFETY: the caller's contract.
    let (Some(dp), Some(bus), Some(work)) =
        (unsafe { dp(d) }, unsafe { crate::remote::bus(r) }, work)
    else {
        return INTERCORE_E_INVALID;
    };
    let t = crate::remote::timeout(timeout_ms);
    let ch = intercore::rpmsg::Channel {
        local: ch.local,
        remote: ch.remote,
    };
    let got = bus.recv_with(&ch, t, |m| {
        dp.process(m.dst, m.src, m.payload, |job| run_work(work, ctx, job));
    });
    match got.and_then(|()| dp.flush(bus, t)) {
        Ok(()) => INTERCORE_OK,
        Err(e) => status(&e),
    }
}

/// The data plane's counters (all zero for an invalid `d`).
///
/// # Safety
/// `d` null or as above.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn intercore_dp_get_stats(d: *mut intercore_dp) -> intercore_dp_stats {
    // SAFETY: the caller's contract.
    unsafe { dp(d) }.map_or_else(intercore_dp_stats::default, |dp| {
        let s = dp.stats();
        intercore_dp_stats {
            done: s.done,
            faults: s.faults,
            bad: s.bad,
        }
    })
}

/// The job in `job`, or `None`.
///
/// # Safety
/// `job` null or the pointer a work function was given, during that call.
unsafe fn job<'a>(job: *mut intercore_dp_job) -> Option<&'a mut DpJob<'a>> {
    // SAFETY: the work function's contract: the pointer `run_work` made from a live job.
    unsafe { job.cast::<DpJob<'a>>().as_mut() }
}

/// The operation the host asked for (`INTERCORE_DP_OP_*`; 0 for a NULL job).
///
/// # Safety
/// `j` NULL or the work function's job, during that call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn intercore_dp_job_op(j: *mut intercore_dp_job) -> u32 {
    // SAFETY: the caller's contract.
    unsafe { job(j) }.map_or(0, |j| j.op())
}

/// Bytes of input (0 for a NULL job).
///
/// # Safety
/// As `intercore_dp_job_op`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn intercore_dp_job_len(j: *mut intercore_dp_job) -> usize {
    // SAFETY: the caller's contract.
    unsafe { job(j) }.map_or(0, |j| j.len())
}

/// Bytes of the buffer the job may touch (0 for a NULL job).
///
/// # Safety
/// As `intercore_dp_job_op`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn intercore_dp_job_cap(j: *mut intercore_dp_job) -> usize {
    // SAFETY: the caller's contract.
    unsafe { job(j) }.map_or(0, |j| j.cap())
}

/// The input bytes in place (`intercore_dp_job_len` of them), invalidated first: writes
/// their address to `*data`. `INTERCORE_E_FAULT`: the input is outside the window.
/// Valid until the next `intercore_dp_job_output` or the end of the work function.
///
/// # Safety
/// As `intercore_dp_job_op`; `data` writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn intercore_dp_job_input(
    j: *mut intercore_dp_job,
    data: *mut *const u8,
) -> i32 {
    // SAFETY: the caller's contract.
    let Some(j) = (unsafe { job(j) }) else {
        return INTERCORE_E_INVALID;
    };
    if data.is_null() {
        return INTERCORE_E_INVALID;
    }
    match j.input() {
        Ok(b) => {
            // SAFETY: writable (the caller's contract).
            unsafe { data.write(b.as_ptr()) };
            INTERCORE_OK
        }
        Err(_) => INTERCORE_E_FAULT,
    }
}

/// Bytes `at..at+n` of the buffer to write in place (cleaned before the completion is
/// sent): writes their address to `*data`. `INTERCORE_E_FAULT`: the range is beyond the
/// job's capacity or outside the window. Valid until the next
/// `intercore_dp_job_input`/`_output` or the end of the work function.
///
/// # Safety
/// As `intercore_dp_job_op`; `data` writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn intercore_dp_job_output(
    j: *mut intercore_dp_job,
    at: usize,
    n: usize,
    data: *mut *mut u8,
) -> i32 {
    // SAFETY: the caller's contract.
    let Some(j) = (unsafe { job(j) }) else {
        return INTERCORE_E_INVALID;
    };
    if data.is_null() {
        return INTERCORE_E_INVALID;
    }
    match j.output(at, n) {
        Ok(b) => {
            // SAFETY: writable (the caller's contract).
            unsafe { data.write(b.as_mut_ptr()) };
            INTERCORE_OK
        }
        Err(_) => INTERCORE_E_FAULT,
    }
}

/// The CRC32C (Castagnoli) of `len` bytes at `data` (0 for NULL with `len` 0), the
/// checksum `INTERCORE_DP_OP_CRC32C` asks for.
///
/// # Safety
/// `data` readable for `len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn intercore_crc32c(data: *const u8, len: usize) -> u32 {
    if data.is_null() || len == 0 {
        return intercore::crc32c(&[]);
    }
    // SAFETY: readable for `len` bytes (the caller's contract).
    intercore::crc32c(unsafe { core::slice::from_raw_parts(data, len) })
}
