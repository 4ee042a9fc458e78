//! The C ABI's remote role against intercore's own host role, in one process: the same
//! calls a C firmware makes, with the platform hooks written here over a thread doorbell.

use core::ffi::c_void;
use std::time::Duration;

use intercore::rpmsg::{HostBus, HostConfig};
use intercore::testing::{Carveout, ThreadBell};
use intercore::{Doorbell, SharedMemory};

use crate::remote::*;
use crate::*;

unsafe extern "C" fn ring_host(ctx: *mut c_void, id: u32) -> i32 {
    // SAFETY: ctx is the test's ThreadBell, alive for the bus's life.
    let bell = unsafe { &*ctx.cast::<ThreadBell>() };
    if bell.ring(id).is_ok() { 0 } else { -1 }
}
unsafe extern "C" fn host_rang(ctx: *mut c_void) -> i32 {
    // SAFETY: as above.
    let bell = unsafe { &*ctx.cast::<ThreadBell>() };
    match bell.wait(Some(Duration::from_millis(1))) {
        Ok(true) => 1,
        Ok(false) => 0,
        Err(_) => -1,
    }
}
unsafe extern "C" fn now_us(ctx: *mut c_void) -> u64 {
    // SAFETY: as above.
    let bell = unsafe { &*ctx.cast::<ThreadBell>() };
    bell.now().as_micros() as u64
}

pub(crate) fn platform(bell: &ThreadBell, polled: bool) -> intercore_platform {
    intercore_platform {
        ctx: (bell as *const ThreadBell).cast_mut().cast(),
        ring_host: Some(ring_host),
        host_rang: if polled { None } else { Some(host_rang) },
        now_us: Some(now_us),
        cache_invalidate: None,
        cache_clean: None,
    }
}

pub(crate) fn config(c: &Carveout) -> intercore_remote_config {
    intercore_remote_config {
        shm_base: c.mem.as_ptr().cast(),
        shm_len: c.mem.len(),
        shm_da: c.map.base.0,
        // SAFETY: the table's offset lies inside the carveout.
        rsc: unsafe { c.mem.as_ptr().add(c.rsc.offset) }.cast(),
        rsc_len: c.rsc.len,
        private_offset: 0,
        private_len: 0,
        buffers_da: 0,
        buffers_len: 0,
        buf_size: 0,
    }
}

pub(crate) fn storage() -> Box<intercore_remote> {
    Box::new(intercore_remote {
        _opaque: [0; INTERCORE_REMOTE_WORDS],
    })
}

struct Reply<'a>(&'a [u8]);

unsafe extern "C" fn fill(ctx: *mut c_void, buf: *mut u8, room: usize) -> usize {
    // SAFETY: ctx is a Reply on the caller's stack; buf is writable for room bytes.
    let r = unsafe { &*ctx.cast::<Reply<'_>>() };
    let n = r.0.len().min(room);
    // SAFETY: as above; the reply and the host buffer do not overlap.
    unsafe { core::ptr::copy_nonoverlapping(r.0.as_ptr(), buf, n) };
    n
}

unsafe extern "C" fn collect(ctx: *mut c_void, m: *const intercore_msg) {
    // SAFETY: ctx is the test's Vec; m and its data are valid during the call.
    let (v, m) = unsafe { (&mut *ctx.cast::<Vec<(u32, Vec<u8>)>>(), &*m) };
    // SAFETY: the payload is readable for len bytes during the call.
    let data = unsafe { core::slice::from_raw_parts(m.data, m.len) };
    v.push((m.src, data.to_vec()));
}

/// Every size from 1 to the largest payload goes host → remote → host, the remote side
/// through the C ABI, alternating copy and zero-copy sends and the three receives
/// (wait with a copy, callback, poll); every byte is checked on both sides.
#[test]
fn c_abi_remote_echoes_every_size_through_each_call() {
    for polled in [false, true] {
        let c = Carveout::with_buffers(16);
        let (host_bell, remote_bell) = ThreadBell::pair();
        let mut host = HostBus::new(
            c.mem.clone(),
            host_bell,
            &c.map,
            c.rsc,
            HostConfig::default(),
        )
        .unwrap();
        let mut r = storage();
        let (p, cfg) = (platform(&remote_bell, polled), config(&c));
        // SAFETY: valid storage, platform and config; the carveout outlives the bus.
        unsafe {
            assert_eq!(intercore_remote_attach(&mut *r, &p, &cfg), INTERCORE_OK);
            assert_eq!(intercore_remote_wait_ready(&mut *r, 1000), INTERCORE_OK);
        }
        let mut ch = intercore_channel::default();
        // SAFETY: as above; the name is NUL-terminated.
        let st = unsafe {
            intercore_remote_open(&mut *r, c"rpmsg-raw".as_ptr(), INTERCORE_ADDR_ANY, &mut ch)
        };
        assert_eq!(st, INTERCORE_OK);
        let t = Some(Duration::from_secs(5));
        let on_host = host.connect("rpmsg-raw", t).unwrap();
        // SAFETY: attached storage.
        let max = unsafe { intercore_remote_max_payload(&mut *r) };
        assert_eq!(max, 496);
        for len in 1..=max {
            let msg: Vec<u8> = (0..len).map(|i| (i * 7 + len) as u8).collect();
            host.send(&on_host, &msg, t).unwrap();
            let mut buf = [0u8; 512];
            let got: Vec<u8> = match len % 3 {
                0 => {
                    let (mut n, mut src) = (0usize, 0u32);
                    // SAFETY: buf writable for its length; n and src writable.
                    let st = unsafe {
                        intercore_remote_recv(
                            &mut *r,
                            ch,
                            buf.as_mut_ptr().cast(),
                            buf.len(),
                            &mut n,
                            &mut src,
                            5000,
                        )
                    };
                    assert_eq!((st, src), (INTERCORE_OK, on_host.local));
                    buf[..n].to_vec()
                }
                1 => {
                    let mut v: Vec<(u32, Vec<u8>)> = Vec::new();
                    // SAFETY: collect's ctx is v.
                    let st = unsafe {
                        intercore_remote_recv_with(
                            &mut *r,
                            ch,
                            5000,
                            Some(collect),
                            (&mut v as *mut Vec<_>).cast(),
                        )
                    };
                    assert_eq!((st, v.len()), (INTERCORE_OK, 1));
                    v.pop().unwrap().1
                }
                _ => {
                    let mut v: Vec<(u32, Vec<u8>)> = Vec::new();
                    let mut count = 0usize;
                    while v.is_empty() {
                        // SAFETY: as above; count writable.
                        let st = unsafe {
                            intercore_remote_poll(
                                &mut *r,
                                8,
                                Some(collect),
                                (&mut v as *mut Vec<_>).cast(),
                                &mut count,
                            )
                        };
                        assert_eq!(st, INTERCORE_OK);
                    }
                    assert_eq!(count, 1);
                    v.pop().unwrap().1
                }
            };
            assert_eq!(got, msg, "remote received size {len}");
            let st = if len % 2 == 0 {
                // SAFETY: got readable for its length.
                unsafe { intercore_remote_send(&mut *r, ch, got.as_ptr().cast(), got.len(), 5000) }
            } else {
                let reply = Reply(&got);
                // SAFETY: fill's ctx is reply, alive during the call.
                unsafe {
                    intercore_remote_send_with(
                        &mut *r,
                        ch,
                        5000,
                        Some(fill),
                        (&reply as *const Reply<'_>).cast_mut().cast(),
                    )
                }
            };
            assert_eq!(st, INTERCORE_OK);
            let n = host.recv(&on_host, &mut buf, t).unwrap();
            assert_eq!(&buf[..n], &msg[..], "host received size {len}");
        }
        // SAFETY: attached storage; detached once, then a second detach is a no-op.
        unsafe {
            intercore_remote_detach(&mut *r);
            intercore_remote_detach(&mut *r);
            assert_eq!(intercore_remote_max_payload(&mut *r), 0);
        }
    }
}

/// Bad input is a status code, never a crash: null pointers, an unattached handle, a
/// table outside the window, a message too large, a receive buffer too small.
#[test]
fn c_abi_remote_reports_bad_input_as_status_codes() {
    let c = Carveout::with_buffers(16);
    let (host_bell, remote_bell) = ThreadBell::pair();
    let mut host = HostBus::new(
        c.mem.clone(),
        host_bell,
        &c.map,
        c.rsc,
        HostConfig::default(),
    )
    .unwrap();
    let mut r = storage();
    let p = platform(&remote_bell, false);
    let mut cfg = config(&c);
    let mut ch = intercore_channel::default();
    // SAFETY: every pointer is null or valid; the calls must reject the bad ones.
    unsafe {
        assert_eq!(
            intercore_remote_attach(core::ptr::null_mut(), &p, &cfg),
            INTERCORE_E_INVALID
        );
        assert_eq!(
            intercore_remote_attach(&mut *r, core::ptr::null(), &cfg),
            INTERCORE_E_INVALID
        );
        assert_eq!(intercore_remote_wait_ready(&mut *r, 0), INTERCORE_E_INVALID);
        assert_eq!(
            intercore_remote_open(&mut *r, c"x".as_ptr(), 1, &mut ch),
            INTERCORE_E_INVALID
        );
        let mut bad = cfg;
        bad.rsc_len = cfg.shm_len + 1;
        assert_eq!(
            intercore_remote_attach(&mut *r, &p, &bad),
            INTERCORE_E_INVALID
        );
        let mut no_ring = p;
        no_ring.ring_host = None;
        assert_eq!(
            intercore_remote_attach(&mut *r, &no_ring, &cfg),
            INTERCORE_E_INVALID
        );
        cfg.buf_size = 512;
        assert_eq!(intercore_remote_attach(&mut *r, &p, &cfg), INTERCORE_OK);
        assert_eq!(intercore_remote_wait_ready(&mut *r, 1000), INTERCORE_OK);
        assert_eq!(
            intercore_remote_open(&mut *r, core::ptr::null(), 1, &mut ch),
            INTERCORE_E_INVALID
        );
        assert_eq!(
            intercore_remote_open(&mut *r, c"echo".as_ptr(), INTERCORE_ADDR_ANY, &mut ch),
            INTERCORE_OK
        );
        // No sender yet to answer.
        assert_eq!(
            intercore_remote_send(&mut *r, ch, c"x".as_ptr().cast(), 1, 0),
            INTERCORE_E_NOT_READY
        );
        let mut n = 0usize;
        let mut buf = [0u8; 4];
        assert_eq!(
            intercore_remote_recv(
                &mut *r,
                ch,
                buf.as_mut_ptr().cast(),
                4,
                &mut n,
                core::ptr::null_mut(),
                0
            ),
            INTERCORE_E_TIMEOUT
        );
        let t = Some(Duration::from_secs(5));
        let on_host = host.connect("echo", t).unwrap();
        host.send(&on_host, b"too long for four", t).unwrap();
        assert_eq!(
            intercore_remote_recv(
                &mut *r,
                ch,
                buf.as_mut_ptr().cast(),
                4,
                &mut n,
                core::ptr::null_mut(),
                5000
            ),
            INTERCORE_E_TRUNCATED
        );
        assert_eq!(n, 17);
        let big = [0u8; 600];
        assert_eq!(
            intercore_remote_send(&mut *r, ch, big.as_ptr().cast(), big.len(), 1000),
            INTERCORE_E_TOO_LARGE
        );
        assert_eq!(
            intercore_remote_send(&mut *r, ch, core::ptr::null(), 3, 1000),
            INTERCORE_E_INVALID
        );
        assert_eq!(
            intercore_remote_send_with(&mut *r, ch, 1000, None, core::ptr::null_mut()),
            INTERCORE_E_INVALID
        );
        assert_eq!(intercore_remote_close(&mut *r, ch), INTERCORE_OK);
        assert_eq!(intercore_remote_close(&mut *r, ch), INTERCORE_E_NO_ENDPOINT);
        intercore_remote_detach(&mut *r);
    }
    // SAFETY: a static string for every code.
    let s = unsafe { core::ffi::CStr::from_ptr(intercore_status_str(INTERCORE_E_PEER_GONE)) };
    assert_eq!(s.to_str().unwrap(), "the host went away");
}
