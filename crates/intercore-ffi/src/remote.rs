//! The remote role for C firmware: attach to the resource table, open (create and
//! announce) endpoints, send by copy or in place, receive by poll, by wait or through a
//! callback. No allocation: the bus lives in the caller's `intercore_remote`.

use core::ffi::{CStr, c_char, c_void};
use core::mem::{MaybeUninit, align_of, size_of};
use core::time::Duration;

use intercore::rpmsg::{Channel, RemoteBus, RemoteConfig, RscLocation};
use intercore::{DevAddr, Doorbell, LinearMap, SharedMemory, WaitMode};

use crate::{INTERCORE_E_INVALID, INTERCORE_FOREVER, INTERCORE_OK, status};

/// What the board-support package provides. Copied into the bus at attach; `ctx` is
/// passed back to every hook.
///
/// * `ring_host` (required): ring the host's doorbell for vring `notify_id`; return 0
///   (non-zero is reported as `INTERCORE_E_OTHER`).
/// * `host_rang` (NULL: the rings are polled): return 1 once the host has rung since the
///   last call (and consume it), 0 otherwise, a negative value when the host is known
///   dead.
/// * `now_us` (required): a monotonic clock in microseconds, for timeouts.
/// * `cache_invalidate` (NULL: the shared window is non-cacheable or coherent):
///   invalidate the data-cache lines of `len` bytes at `ptr` (the resource table is
///   re-read through it when the host sets `DRIVER_OK`).
/// * `cache_clean` (NULL: as above): clean (write back) the lines of `len` bytes at `ptr`.
#[repr(C)]
#[derive(Clone, Copy)]
#[allow(non_camel_case_types)]
pub struct intercore_platform {
    /// Passed back to every hook.
    pub ctx: *mut c_void,
    /// "Ring the host".
    pub ring_host: Option<unsafe extern "C" fn(ctx: *mut c_void, notify_id: u32) -> i32>,
    /// "Has the host rung".
    pub host_rang: Option<unsafe extern "C" fn(ctx: *mut c_void) -> i32>,
    /// Monotonic microseconds.
    pub now_us: Option<unsafe extern "C" fn(ctx: *mut c_void) -> u64>,
    /// Invalidate data-cache lines.
    pub cache_invalidate:
        Option<unsafe extern "C" fn(ctx: *mut c_void, ptr: *const c_void, len: usize)>,
    /// Clean data-cache lines.
    pub cache_clean: Option<unsafe extern "C" fn(ctx: *mut c_void, ptr: *const c_void, len: usize)>,
}

/// Where the shared window and the resource table are.
///
/// `shm_base` is the CPU address of the window, `shm_len` its length, `shm_da` the device
/// address the host uses for its first byte (equal to `shm_base` on a core without
/// address translation). The table (`rsc`, `rsc_len` bytes) must lie inside the window;
/// `private_offset`/`private_len` name firmware-private memory inside the window that no
/// host buffer may reach (0/0: none). `buffers_da`/`buffers_len` say where the host's
/// buffers may lie when the table has no `vdev0buffer` carveout (Linux takes them from the
/// device's DMA memory); a carveout in the table takes precedence (0/0: the table must
/// have one).
#[repr(C)]
#[derive(Clone, Copy)]
#[allow(non_camel_case_types)]
pub struct intercore_remote_config {
    /// CPU address of the shared window.
    pub shm_base: *mut c_void,
    /// Its length in bytes.
    pub shm_len: usize,
    /// The host's device address of `shm_base`.
    pub shm_da: u64,
    /// CPU address of the resource table (inside the window).
    pub rsc: *const c_void,
    /// Its length in bytes.
    pub rsc_len: usize,
    /// Window offset of firmware-private memory (0/0: none).
    pub private_offset: usize,
    /// Its length.
    pub private_len: usize,
    /// Device address of the region host buffers may lie in (with `buffers_len`).
    pub buffers_da: u64,
    /// Its length (0: none; the table's carveout says).
    pub buffers_len: usize,
    /// The rpmsg buffer size both ends are built with (0: 512, Linux's).
    pub buf_size: usize,
}

/// A channel: a local endpoint and the host address it talks to (`INTERCORE_ADDR_ANY`:
/// the last sender to the endpoint). Plain data, copied freely.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[allow(non_camel_case_types)]
pub struct intercore_channel {
    /// Our endpoint's address.
    pub local: u32,
    /// The host endpoint's address.
    pub remote: u32,
}

/// Words (8 bytes each) of an `intercore_remote`.
pub const INTERCORE_REMOTE_WORDS: usize = 1024;
/// Size in bytes of an `intercore_remote`.
pub const INTERCORE_REMOTE_SIZE: usize = INTERCORE_REMOTE_WORDS * 8;
/// Alignment in bytes of an `intercore_remote`.
pub const INTERCORE_REMOTE_ALIGN: usize = 8;

/// Storage for one remote bus, provided by the caller (a static, usually). Opaque: only
/// the `intercore_remote_*` calls read or write it. Zero it (or leave it in `.bss`)
/// before the first attach.
#[repr(C)]
#[allow(non_camel_case_types)]
pub struct intercore_remote {
    /// Opaque: never read or written by C.
    pub _opaque: [u64; INTERCORE_REMOTE_WORDS],
}

/// The shared window as `SharedMemory`.
pub(crate) struct Window {
    base: *mut u8,
    len: usize,
}

// SAFETY: the caller of `intercore_remote_attach` promises (its contract in the header)
// that `shm_base..+shm_len` is memory shared with the host, readable and writable, not
// used by anything else while the bus lives, and not referenced by any C object the
// library could alias; the base is checked non-null and 8-aligned at attach.
unsafe impl SharedMemory for Window {
    fn as_ptr(&self) -> *mut u8 {
        self.base
    }
    fn len(&self) -> usize {
        self.len
    }
}

/// The BSP's doorbell.
pub(crate) struct Bell(intercore_platform);

impl Doorbell for Bell {
    fn ring(&self, notify_id: u32) -> intercore::Result<()> {
        let Some(f) = self.0.ring_host else {
            return Err(intercore::Error::Config("no ring_host hook"));
        };
        // SAFETY: a hook the BSP supplied with its own context (the header's contract).
        match unsafe { f(self.0.ctx, notify_id) } {
            0 => Ok(()),
            r => Err(intercore::Error::Os(r)),
        }
    }
    fn wait(&self, timeout: Option<Duration>) -> intercore::Result<bool> {
        let Some(f) = self.0.host_rang else {
            // Polled rings: always look at them.
            return Ok(true);
        };
        let deadline = timeout.map(|t| self.now().saturating_add(t));
        loop {
            // SAFETY: a hook the BSP supplied with its own context.
            match unsafe { f(self.0.ctx) } {
                0 => {}
                r if r > 0 => return Ok(true),
                _ => return Err(intercore::Error::PeerGone),
            }
            if deadline.is_some_and(|d| self.now() >= d) {
                return Ok(false);
            }
            core::hint::spin_loop();
        }
    }
    fn now(&self) -> Duration {
        match self.0.now_us {
            // SAFETY: a hook the BSP supplied with its own context.
            Some(f) => Duration::from_micros(unsafe { f(self.0.ctx) }),
            None => Duration::ZERO,
        }
    }
}

pub(crate) type Bus = RemoteBus<Window, Bell, 8>;

/// What an `intercore_remote` holds.
struct Slot {
    magic: u64,
    bus: MaybeUninit<Bus>,
}

const MAGIC: u64 = 0x1c0e_f1f0_a77a_c4ed;

const _: () = assert!(size_of::<Slot>() <= size_of::<intercore_remote>());
const _: () = assert!(align_of::<Slot>() <= INTERCORE_REMOTE_ALIGN);
const _: () = assert!(align_of::<intercore_remote>() == INTERCORE_REMOTE_ALIGN);
const _: () = assert!(INTERCORE_REMOTE_SIZE == size_of::<intercore_remote>());

/// The attached bus in `r`, or `None` (null, never attached, detached).
///
/// # Safety
/// `r` is null or points to a live `intercore_remote` nothing else accesses during the call.
pub(crate) unsafe fn bus<'a>(r: *mut intercore_remote) -> Option<&'a mut Bus> {
    // SAFETY: the storage is large and aligned enough for a `Slot` (checked above) and
    // exclusively ours for the call (the caller's contract).
    let slot = unsafe { r.cast::<Slot>().as_mut()? };
    if slot.magic != MAGIC {
        return None;
    }
    // SAFETY: the magic is written only after `bus` was initialised, and cleared before
    // it is dropped.
    Some(unsafe { slot.bus.assume_init_mut() })
}

pub(crate) fn timeout(ms: u32) -> Option<Duration> {
    (ms != INTERCORE_FOREVER).then(|| Duration::from_millis(u64::from(ms)))
}

fn code(r: intercore::Result<()>) -> i32 {
    match r {
        Ok(()) => INTERCORE_OK,
        Err(e) => status(&e),
    }
}

/// The BSP's invalidate hook and context, for `RemoteConfig::invalidate_table` (a plain
/// `fn`): set at attach. One attached bus uses it at a time (a firmware has one table).
static INVALIDATE: core::sync::atomic::AtomicUsize = core::sync::atomic::AtomicUsize::new(0);
static INVALIDATE_CTX: core::sync::atomic::AtomicUsize = core::sync::atomic::AtomicUsize::new(0);

fn invalidate_table(ptr: *const u8, len: usize) {
    // Relaxed: written once at attach on the same core before any call that reads it.
    let f = INVALIDATE.load(core::sync::atomic::Ordering::Relaxed);
    let ctx = INVALIDATE_CTX.load(core::sync::atomic::Ordering::Relaxed);
    if f != 0 {
        // SAFETY: `f` was stored from a non-null `cache_invalidate` hook of this type.
        let f: unsafe extern "C" fn(*mut c_void, *const c_void, usize) =
            unsafe { core::mem::transmute(f) };
        // SAFETY: the BSP's hook with its own context, on the table's own bytes.
        unsafe { f(ctx as *mut c_void, ptr.cast(), len) };
    }
}

/// Checks what every attach needs (storage, hooks, the window) and builds the bus's
/// configuration; the bus is then made from `setup` and written into `r`.
///
/// # Safety
/// As `intercore_remote_attach`.
unsafe fn attach_with(
    r: *mut intercore_remote,
    p: &intercore_platform,
    w: WindowSpec,
    setup: impl FnOnce(&LinearMap) -> Option<intercore::rpmsg::RemoteSetup>,
) -> i32 {
    if r.is_null() || p.ring_host.is_none() || p.now_us.is_none() {
        return INTERCORE_E_INVALID;
    }
    let base = w.shm_base.cast::<u8>();
    if base.is_null() || (base as usize) % 8 != 0 || w.shm_len == 0 {
        return INTERCORE_E_INVALID;
    }
    let map = LinearMap {
        base: DevAddr(w.shm_da),
        offset: 0,
        len: w.shm_len,
    };
    let Some(setup) = setup(&map) else {
        return INTERCORE_E_INVALID;
    };
    let mut cfg = RemoteConfig::default().wait(if p.host_rang.is_some() {
        WaitMode::Event
    } else {
        WaitMode::Poll
    });
    if w.buf_size != 0 {
        cfg = cfg.buf_size(w.buf_size);
    }
    if w.buffers_len != 0 {
        let Some(buffers) = inside(&map, w.buffers_da, w.buffers_len) else {
            return INTERCORE_E_INVALID;
        };
        cfg = cfg.buffers(Some(buffers));
    }
    if w.private_len != 0 {
        if w.private_offset
            .checked_add(w.private_len)
            .is_none_or(|e| e > w.shm_len)
        {
            return INTERCORE_E_INVALID;
        }
        cfg = cfg.private(Some((w.private_offset, w.private_len)));
    }
    if let Some(f) = p.cache_invalidate {
        // Relaxed: read later on this same core (see `invalidate_table`).
        INVALIDATE.store(f as usize, core::sync::atomic::Ordering::Relaxed);
        INVALIDATE_CTX.store(p.ctx as usize, core::sync::atomic::Ordering::Relaxed);
        cfg = cfg.invalidate_table(Some(invalidate_table));
    }
    // SAFETY: `r` is valid storage (the caller's contract); a bus already attached there
    // is dropped first, as a detach would.
    unsafe { intercore_remote_detach(r) };
    let mem = Window {
        base,
        len: w.shm_len,
    };
    match Bus::new(mem, Bell(*p), &map, setup, cfg) {
        Ok(b) => {
            // SAFETY: storage checked above; exclusively ours for the call.
            let slot = unsafe { &mut *r.cast::<Slot>() };
            slot.bus.write(b);
            slot.magic = MAGIC;
            INTERCORE_OK
        }
        Err(e) => status(&e),
    }
}

/// The window fields both attach calls share.
struct WindowSpec {
    shm_base: *mut c_void,
    shm_len: usize,
    shm_da: u64,
    private_offset: usize,
    private_len: usize,
    buffers_da: u64,
    buffers_len: usize,
    buf_size: usize,
}

/// `da..da+len` as a map onto the window `map`, if it lies inside it.
fn inside(map: &LinearMap, da: u64, len: usize) -> Option<LinearMap> {
    let off = usize::try_from(da.checked_sub(map.base.0)?).ok()?;
    (len != 0 && off.checked_add(len)? <= map.len).then_some(LinearMap {
        base: DevAddr(da),
        offset: off,
        len,
    })
}

/// Attaches a bus to the firmware's resource table: checks the table, prepares the link
/// and returns at once (call `intercore_remote_wait_ready` next). `r` must be zeroed or
/// detached storage; `platform` and `config` are copied.
///
/// # Safety
/// `r` points to writable storage of `INTERCORE_REMOTE_SIZE` bytes aligned to
/// `INTERCORE_REMOTE_ALIGN`; `platform` and `config` point to valid structs; the window
/// in `config` is shared memory the bus owns until `intercore_remote_detach`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn intercore_remote_attach(
    r: *mut intercore_remote,
    platform: *const intercore_platform,
    config: *const intercore_remote_config,
) -> i32 {
    // SAFETY: the caller's contract: null or valid.
    let (Some(p), Some(c)) = (unsafe { platform.as_ref() }, unsafe { config.as_ref() }) else {
        return INTERCORE_E_INVALID;
    };
    let base = c.shm_base as usize;
    let rsc_off = (c.rsc as usize).wrapping_sub(base);
    if (c.rsc as usize) < base
        || rsc_off
            .checked_add(c.rsc_len)
            .is_none_or(|end| end > c.shm_len)
    {
        return INTERCORE_E_INVALID;
    }
    let w = WindowSpec {
        shm_base: c.shm_base,
        shm_len: c.shm_len,
        shm_da: c.shm_da,
        private_offset: c.private_offset,
        private_len: c.private_len,
        buffers_da: c.buffers_da,
        buffers_len: c.buffers_len,
        buf_size: c.buf_size,
    };
    let rsc = RscLocation {
        offset: rsc_off,
        len: c.rsc_len,
    };
    // SAFETY: the caller's contract, passed on.
    unsafe { attach_with(r, p, w, |_| Some(rsc.into())) }
}

/// `intercore_placement.control`: status and features words in shared memory, as in a
/// resource table's vdev entry (a vhost-user back end, a host that keeps no table).
pub const INTERCORE_CONTROL_STATUS_WORDS: u32 = 0;
/// `intercore_placement.control`: no status word; the link is up at the host's first
/// notification once the rings are initialised (an RPMsg-Lite master).
pub const INTERCORE_CONTROL_FIRST_NOTIFICATION: u32 = 1;

/// Where the host placed the device when no resource table describes it: the rings, the
/// status words and the buffers, as window offsets and device addresses (see
/// `intercore_remote_attach_placed`).
///
/// * `shm_base`/`shm_len`/`shm_da`, `private_*`, `buf_size`: as in
///   `intercore_remote_config`.
/// * `control`: `INTERCORE_CONTROL_STATUS_WORDS` (then `status_off` and `gfeatures_off`
///   are the window offsets of the 4-byte status and accepted-features words, `features`
///   what we offer) or `INTERCORE_CONTROL_FIRST_NOTIFICATION` (`features`: those both
///   ends were built with; the offsets are unused).
/// * `ring_off[i]`, `ring_num[i]`, `ring_align[i]`: window offset, entries (a power of
///   two) and alignment (a power of two ≥ 2) of vring 0 (remote → host) and vring 1
///   (host → remote), in the contiguous virtio layout; `notify_id[i]` passed to
///   `ring_host`.
/// * `buffers_da`/`buffers_len`: the device addresses the host's buffers may have (inside
///   the window; it may hold the rings: a buffer over a ring is still refused).
#[repr(C)]
#[derive(Clone, Copy)]
#[allow(non_camel_case_types)]
pub struct intercore_placement {
    /// CPU address of the shared window.
    pub shm_base: *mut c_void,
    /// Its length in bytes.
    pub shm_len: usize,
    /// The host's device address of `shm_base`.
    pub shm_da: u64,
    /// `INTERCORE_CONTROL_*`.
    pub control: u32,
    /// Features offered (status words) or in force (first notification).
    pub features: u32,
    /// Window offset of the status word (status words only).
    pub status_off: usize,
    /// Window offset of the accepted-features word (status words only).
    pub gfeatures_off: usize,
    /// Window offsets of vring 0 and vring 1.
    pub ring_off: [usize; 2],
    /// Their entries.
    pub ring_num: [u32; 2],
    /// Their alignment.
    pub ring_align: [u32; 2],
    /// Their notify ids.
    pub notify_id: [u32; 2],
    /// Device address of the region the host's buffers lie in.
    pub buffers_da: u64,
    /// Its length.
    pub buffers_len: usize,
    /// Window offset of firmware-private memory (0/0: none).
    pub private_offset: usize,
    /// Its length.
    pub private_len: usize,
    /// The rpmsg buffer size both ends are built with (0: 512).
    pub buf_size: usize,
}

/// Attaches a bus to rings the host placed (no resource table): checks the placement
/// (every ring and word inside the window, no overlap, geometry) and returns at once
/// (call `intercore_remote_wait_ready` next). As `intercore_remote_attach` otherwise.
///
/// # Safety
/// As `intercore_remote_attach`, with `placement` in place of `config`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn intercore_remote_attach_placed(
    r: *mut intercore_remote,
    platform: *const intercore_platform,
    placement: *const intercore_placement,
) -> i32 {
    use intercore::rpmsg::{DeviceControl, DevicePlacement};
    use intercore::virtq::VringLayout;
    // SAFETY: the caller's contract: null or valid.
    let (Some(p), Some(c)) = (unsafe { platform.as_ref() }, unsafe { placement.as_ref() }) else {
        return INTERCORE_E_INVALID;
    };
    let control = match c.control {
        INTERCORE_CONTROL_STATUS_WORDS => DeviceControl::StatusWords {
            status_off: c.status_off,
            gfeatures_off: c.gfeatures_off,
            dfeatures: c.features,
        },
        INTERCORE_CONTROL_FIRST_NOTIFICATION => DeviceControl::FirstNotification {
            features: c.features,
        },
        _ => return INTERCORE_E_INVALID,
    };
    let ring = |i: usize| {
        Some((
            c.ring_off[i],
            VringLayout::new(c.ring_num[i], c.ring_align[i]).ok()?,
        ))
    };
    let (Some(r0), Some(r1)) = (ring(0), ring(1)) else {
        return INTERCORE_E_INVALID;
    };
    let w = WindowSpec {
        shm_base: c.shm_base,
        shm_len: c.shm_len,
        shm_da: c.shm_da,
        private_offset: c.private_offset,
        private_len: c.private_len,
        buffers_da: 0,
        buffers_len: 0,
        buf_size: c.buf_size,
    };
    let setup = |map: &LinearMap| {
        Some(
            DevicePlacement {
                control,
                rings: [r0, r1],
                notify_ids: c.notify_id,
                buffers: inside(map, c.buffers_da, c.buffers_len)?,
            }
            .into(),
        )
    };
    // SAFETY: the caller's contract, passed on.
    unsafe { attach_with(r, p, w, setup) }
}

/// Drops the bus in `r` (its endpoints are forgotten, nothing is sent); `r` may then be
/// attached again. A null, zeroed or detached `r` is left alone.
///
/// # Safety
/// `r` is null or valid storage no other call uses at the same time.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn intercore_remote_detach(r: *mut intercore_remote) {
    // SAFETY: the caller's contract.
    let Some(slot) = (unsafe { r.cast::<Slot>().as_mut() }) else {
        return;
    };
    if slot.magic == MAGIC {
        slot.magic = 0;
        // SAFETY: initialised while the magic was set; the magic is cleared first so it is
        // never dropped twice.
        unsafe { slot.bus.assume_init_drop() };
    }
}

/// Waits up to `timeout_ms` for the host to bring the link up (`DRIVER_OK`) and attaches
/// the rings. Again after `INTERCORE_E_PEER_GONE` to wait for the next host.
///
/// # Safety
/// `r` is null or valid storage no other call uses at the same time.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn intercore_remote_wait_ready(
    r: *mut intercore_remote,
    timeout_ms: u32,
) -> i32 {
    // SAFETY: the caller's contract.
    let Some(b) = (unsafe { bus(r) }) else {
        return INTERCORE_E_INVALID;
    };
    code(b.wait_ready(timeout(timeout_ms)))
}

/// Opens a channel: creates a local endpoint named `name` (NUL-terminated, at most 31
/// bytes) and announces it to the host; `remote` is the host address it talks to, or
/// `INTERCORE_ADDR_ANY` (answer whoever last sent to it). Writes the channel to `*out`.
///
/// # Safety
/// `r` as above; `name` a NUL-terminated string; `out` writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn intercore_remote_open(
    r: *mut intercore_remote,
    name: *const c_char,
    remote: u32,
    out: *mut intercore_channel,
) -> i32 {
    // SAFETY: the caller's contract.
    let Some(b) = (unsafe { bus(r) }) else {
        return INTERCORE_E_INVALID;
    };
    if name.is_null() || out.is_null() {
        return INTERCORE_E_INVALID;
    }
    // SAFETY: a NUL-terminated string (the caller's contract).
    let Ok(name) = unsafe { CStr::from_ptr(name) }.to_str() else {
        return INTERCORE_E_INVALID;
    };
    match b.open(name, remote) {
        Ok(ch) => {
            // SAFETY: writable (the caller's contract).
            unsafe {
                out.write(intercore_channel {
                    local: ch.local,
                    remote: ch.remote,
                })
            };
            INTERCORE_OK
        }
        Err(e) => status(&e),
    }
}

/// Closes a channel: destroys its endpoint and withdraws the announcement.
///
/// # Safety
/// `r` as above.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn intercore_remote_close(
    r: *mut intercore_remote,
    ch: intercore_channel,
) -> i32 {
    // SAFETY: the caller's contract.
    let Some(b) = (unsafe { bus(r) }) else {
        return INTERCORE_E_INVALID;
    };
    code(b.close(chan(ch)))
}

fn chan(ch: intercore_channel) -> Channel {
    Channel {
        local: ch.local,
        remote: ch.remote,
    }
}

/// Sends a copy of `len` bytes at `data` on `ch`, waiting up to `timeout_ms` for a host
/// buffer. `data` is not kept.
///
/// # Safety
/// `r` as above; `data` readable for `len` bytes (may be NULL when `len` is 0).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn intercore_remote_send(
    r: *mut intercore_remote,
    ch: intercore_channel,
    data: *const c_void,
    len: usize,
    timeout_ms: u32,
) -> i32 {
    // SAFETY: the caller's contract.
    let Some(b) = (unsafe { bus(r) }) else {
        return INTERCORE_E_INVALID;
    };
    let data: &[u8] = if len == 0 {
        &[]
    } else if data.is_null() {
        return INTERCORE_E_INVALID;
    } else {
        // SAFETY: readable for `len` bytes (the caller's contract).
        unsafe { core::slice::from_raw_parts(data.cast(), len) }
    };
    code(b.send(&chan(ch), data, timeout(timeout_ms)))
}

/// Zero-copy send: `fill(ctx, buf, room)` writes the payload in place in a host buffer
/// (`room` bytes at `buf`, shared memory) and returns its length (a length beyond `room`
/// is cut to `room`). Waits up to `timeout_ms` for a host buffer; `fill` is called at most
/// once, and not at all on an error.
///
/// # Safety
/// `r` as above; `fill` writes only inside `buf[0..room]` and does not keep `buf`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn intercore_remote_send_with(
    r: *mut intercore_remote,
    ch: intercore_channel,
    timeout_ms: u32,
    fill: Option<unsafe extern "C" fn(ctx: *mut c_void, buf: *mut u8, room: usize) -> usize>,
    ctx: *mut c_void,
) -> i32 {
    // SAFETY: the caller's contract.
    let Some(b) = (unsafe { bus(r) }) else {
        return INTERCORE_E_INVALID;
    };
    let Some(fill) = fill else {
        return INTERCORE_E_INVALID;
    };
    code(b.send_with(&chan(ch), timeout(timeout_ms), |out| {
        // SAFETY: the callback's contract: writes only inside `out`, keeps nothing.
        unsafe { fill(ctx, out.as_mut_ptr(), out.len()) }
    }))
}

/// Receives one message for `ch` into `buf` (`cap` bytes), waiting up to `timeout_ms`
/// (`INTERCORE_NO_WAIT`: poll). On success `*len` is its length and `*src` (if not NULL)
/// the sender's address. `INTERCORE_E_TRUNCATED`: `buf` was too small, the message is
/// consumed and `*len` is its full length.
///
/// # Safety
/// `r` as above; `buf` writable for `cap` bytes; `len` writable; `src` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn intercore_remote_recv(
    r: *mut intercore_remote,
    ch: intercore_channel,
    buf: *mut c_void,
    cap: usize,
    len: *mut usize,
    src: *mut u32,
    timeout_ms: u32,
) -> i32 {
    // SAFETY: the caller's contract.
    let Some(b) = (unsafe { bus(r) }) else {
        return INTERCORE_E_INVALID;
    };
    if len.is_null() || (buf.is_null() && cap != 0) {
        return INTERCORE_E_INVALID;
    }
    let out: &mut [u8] = if cap == 0 {
        &mut []
    } else {
        // SAFETY: writable for `cap` bytes (the caller's contract).
        unsafe { core::slice::from_raw_parts_mut(buf.cast(), cap) }
    };
    let (st, n, from) = match b.recv_from(&chan(ch), out, timeout(timeout_ms)) {
        Ok((from, n)) => (INTERCORE_OK, n, from),
        Err(intercore::Error::Truncated { len }) => (crate::INTERCORE_E_TRUNCATED, len, None),
        Err(e) => return status(&e),
    };
    // SAFETY: writable (the caller's contract).
    unsafe { len.write(n) };
    if let (Some(from), false) = (from, src.is_null()) {
        // SAFETY: not null, writable (the caller's contract).
        unsafe { src.write(from) };
    }
    st
}

/// A received message, in shared memory, valid only during the callback.
#[repr(C)]
#[allow(non_camel_case_types)]
pub struct intercore_msg {
    /// The sender (a host endpoint).
    pub src: u32,
    /// Our endpoint it was sent to.
    pub dst: u32,
    /// The payload (read-only, in the host's buffer).
    pub data: *const u8,
    /// Its length.
    pub len: usize,
}

/// A receive callback: gets the message in place (zero copy); its buffer goes back to
/// the host when the callback returns.
#[allow(non_camel_case_types)]
pub type intercore_recv_fn =
    Option<unsafe extern "C" fn(ctx: *mut c_void, msg: *const intercore_msg)>;

fn deliver(
    cb: unsafe extern "C" fn(*mut c_void, *const intercore_msg),
    ctx: *mut c_void,
    m: intercore::rpmsg::Msg<'_>,
) {
    let msg = intercore_msg {
        src: m.src,
        dst: m.dst,
        data: m.payload.as_ptr(),
        len: m.payload.len(),
    };
    // SAFETY: the callback's contract: reads `msg` and its payload only during the call.
    unsafe { cb(ctx, &msg) };
}

/// Receives one message for `ch` and hands it to `cb` in place, waiting up to
/// `timeout_ms`. `cb` is called once on success, never on an error.
///
/// # Safety
/// `r` as above; `cb` reads the message only during the call and calls no
/// `intercore_remote_*` function on the same `r`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn intercore_remote_recv_with(
    r: *mut intercore_remote,
    ch: intercore_channel,
    timeout_ms: u32,
    cb: intercore_recv_fn,
    ctx: *mut c_void,
) -> i32 {
    // SAFETY: the caller's contract.
    let Some(b) = (unsafe { bus(r) }) else {
        return INTERCORE_E_INVALID;
    };
    let Some(cb) = cb else {
        return INTERCORE_E_INVALID;
    };
    code(b.recv_with(&chan(ch), timeout(timeout_ms), |m| deliver(cb, ctx, m)))
}

/// Receives one message for any local endpoint and hands it to `cb` in place
/// (`msg->dst` names the endpoint), waiting up to `timeout_ms`: for a firmware that
/// serves several endpoints from one loop (e.g. a service and the data plane, whose
/// `intercore_dp_process` may be called from `cb`). `cb` is called once on success,
/// never on an error.
///
/// # Safety
/// As `intercore_remote_recv_with`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn intercore_remote_recv_any(
    r: *mut intercore_remote,
    timeout_ms: u32,
    cb: intercore_recv_fn,
    ctx: *mut c_void,
) -> i32 {
    // SAFETY: the caller's contract.
    let Some(b) = (unsafe { bus(r) }) else {
        return INTERCORE_E_INVALID;
    };
    let Some(cb) = cb else {
        return INTERCORE_E_INVALID;
    };
    code(b.recv_any_with(timeout(timeout_ms), |m| deliver(cb, ctx, m)))
}

/// Polls: hands every message waiting for any local endpoint (at most `max`) to `cb`
/// without waiting, returns their buffers to the host together, and writes how many
/// were delivered to `*count` (if not NULL).
///
/// # Safety
/// As `intercore_remote_recv_with`; `count` NULL or writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn intercore_remote_poll(
    r: *mut intercore_remote,
    max: usize,
    cb: intercore_recv_fn,
    ctx: *mut c_void,
    count: *mut usize,
) -> i32 {
    // SAFETY: the caller's contract.
    let Some(b) = (unsafe { bus(r) }) else {
        return INTERCORE_E_INVALID;
    };
    let Some(cb) = cb else {
        return INTERCORE_E_INVALID;
    };
    match b.try_recv_batch(max, |m| deliver(cb, ctx, m)) {
        Ok(n) => {
            if !count.is_null() {
                // SAFETY: not null, writable (the caller's contract).
                unsafe { count.write(n) };
            }
            INTERCORE_OK
        }
        Err(e) => status(&e),
    }
}

/// The largest payload one message can carry (buffer size less the rpmsg header); 0 for
/// an invalid `r`.
///
/// # Safety
/// `r` as above.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn intercore_remote_max_payload(r: *mut intercore_remote) -> usize {
    // SAFETY: the caller's contract.
    unsafe { bus(r) }.map_or(0, |b| b.max_payload())
}
