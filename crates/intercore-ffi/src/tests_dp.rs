//! The C ABI's data plane and attach-by-placement against intercore's own host role, in
//! one process: the calls a C firmware makes, with work functions and cache hooks written
//! here as `extern "C"` functions.

use core::ffi::c_void;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use intercore::dataplane::{Coherent, DpHost, Pool, PoolConfig};
use intercore::rpmsg::layout::{CarveoutSpec, VRING_ALIGN};
use intercore::rpmsg::{HostBus, HostConfig};
use intercore::testing::{Carveout, HeapMem, ThreadBell};
use intercore::wire::IntoBytes;
use intercore::wire::dataplane::{DP_SERVICE, DP_SUBMIT, DpHdr, DpSubmit};
use intercore::wire::rsc::{ResourceTable, VDEV_GFEATURES_OFFSET, VDEV_STATUS_OFFSET};
use intercore::wire::{Le16, Le32, Le64};
use intercore::{DevAddr, SharedMemory, crc32c};

use crate::dataplane::*;
use crate::remote::*;
use crate::tests::{platform, storage};
use crate::*;

const T: Option<Duration> = Some(Duration::from_secs(5));
const IOVA: u64 = 0xC000_0000;
const BUF: usize = 4096;
const NBUF: usize = 4;

/// What the cache hooks saw: (invalidate?, window offset, length).
type Calls = Mutex<Vec<(bool, usize, usize)>>;

struct Hooks {
    base: usize,
    calls: Calls,
}

unsafe extern "C" fn inval(ctx: *mut c_void, ptr: *const c_void, len: usize) {
    // SAFETY: ctx is the test's Hooks, alive for the data plane's life.
    let h = unsafe { &*ctx.cast::<Hooks>() };
    h.calls
        .lock()
        .unwrap()
        .push((true, ptr as usize - h.base, len));
}
unsafe extern "C" fn clean(ctx: *mut c_void, ptr: *const c_void, len: usize) {
    // SAFETY: as above.
    let h = unsafe { &*ctx.cast::<Hooks>() };
    h.calls
        .lock()
        .unwrap()
        .push((false, ptr as usize - h.base, len));
}

/// The offload firmware's CRC32C worker, as a C firmware writes it.
unsafe extern "C" fn crc_work(
    _ctx: *mut c_void,
    job: *mut intercore_dp_job,
    out: *mut usize,
) -> u32 {
    // SAFETY: the job handed to us, during this call; out writable.
    unsafe {
        match intercore_dp_job_op(job) {
            INTERCORE_DP_OP_CRC32C => {}
            INTERCORE_DP_OP_NOP => {
                *out = 0;
                return INTERCORE_DP_OK;
            }
            _ => return INTERCORE_DP_UNSUPPORTED,
        }
        let n = intercore_dp_job_len(job);
        let mut input = core::ptr::null();
        if intercore_dp_job_input(job, &mut input) != INTERCORE_OK {
            return INTERCORE_DP_FAULT;
        }
        let crc = intercore_crc32c(input, n);
        let mut o = core::ptr::null_mut();
        if intercore_dp_job_output(job, n, 4, &mut o) != INTERCORE_OK {
            return INTERCORE_DP_FAULT;
        }
        core::ptr::copy_nonoverlapping(crc.to_le_bytes().as_ptr(), o, 4);
        *out = n + 4;
        INTERCORE_DP_OK
    }
}

/// A worker that claims more output than the buffer holds.
unsafe extern "C" fn liar(_ctx: *mut c_void, job: *mut intercore_dp_job, out: *mut usize) -> u32 {
    // SAFETY: as above.
    unsafe { *out = intercore_dp_job_cap(job) + 1 };
    INTERCORE_DP_OK
}

/// A worker that reaches past the buffer's capacity, and records what the calls said.
unsafe extern "C" fn reach(ctx: *mut c_void, job: *mut intercore_dp_job, _out: *mut usize) -> u32 {
    // SAFETY: ctx is the test's Vec; the job is ours during the call.
    let seen = unsafe { &mut *ctx.cast::<Vec<i32>>() };
    let mut o = core::ptr::null_mut();
    // SAFETY: as above.
    unsafe {
        let cap = intercore_dp_job_cap(job);
        seen.push(intercore_dp_job_output(job, cap - 2, 4, &mut o));
        seen.push(intercore_dp_job_output(job, usize::MAX, 2, &mut o));
        seen.push(intercore_dp_job_output(job, 0, 4, core::ptr::null_mut()));
        seen.push(intercore_dp_job_input(job, core::ptr::null_mut()));
    }
    INTERCORE_DP_FAULT
}

fn dp_storage() -> Box<intercore_dp> {
    Box::new(intercore_dp {
        _opaque: [0; INTERCORE_DP_WORDS],
    })
}

fn remote_config(c: &Carveout) -> intercore_remote_config {
    intercore_remote_config {
        shm_base: c.mem.as_ptr().cast(),
        shm_len: c.pool.0,
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

struct Rig {
    c: Carveout,
    host: intercore::testing::TestHost,
    dp: DpHost<Coherent<Arc<HeapMem>>>,
    r: Box<intercore_remote>,
    d: Box<intercore_dp>,
    ch: intercore_channel,
    hooks: Box<Hooks>,
    _bell: Box<ThreadBell>,
}

/// A host with a 4 × 4 KiB pool at `IOVA`, a C-ABI remote announcing the data-plane
/// service, and a C-ABI data plane whose window is the first `window` bytes of the pool.
fn rig(window: usize) -> Rig {
    let spec = CarveoutSpec {
        vring_num: 16,
        buf_size: 512,
        event_idx: false,
        da_base: 0xA000_0000,
    };
    let pool_cfg = PoolConfig {
        classes: vec![(BUF, NBUF)],
        align: 4096,
    };
    let c = Carveout::with_pool_area(spec, pool_cfg.region_len());
    let (hb, rb) = ThreadBell::pair();
    let bell = Box::new(rb);
    let mut host = HostBus::new(c.mem.clone(), hb, &c.map, c.rsc, HostConfig::default()).unwrap();
    let mut r = storage();
    let mut d = dp_storage();
    // SAFETY: the pool's offset lies inside the carveout.
    let pool_base = unsafe { c.mem.as_ptr().add(c.pool.0) };
    let hooks = Box::new(Hooks {
        base: pool_base as usize,
        calls: Mutex::new(Vec::new()),
    });
    let mut p = platform(&bell, false);
    p.ctx = (&*hooks as *const Hooks).cast_mut().cast();
    p.cache_invalidate = Some(inval);
    p.cache_clean = Some(clean);
    // The bus's hooks need the bell as ctx: attach with the plain platform.
    let bus_p = platform(&bell, false);
    let mut ch = intercore_channel::default();
    let dcfg = intercore_dp_config {
        pool_base: pool_base.cast(),
        pool_len: window,
        pool_da: IOVA,
        line_size: 64,
    };
    // SAFETY: valid storage, platform and configs; the carveout outlives both.
    unsafe {
        assert_eq!(
            intercore_remote_attach(&mut *r, &bus_p, &remote_config(&c)),
            INTERCORE_OK
        );
        assert_eq!(intercore_remote_wait_ready(&mut *r, 1000), INTERCORE_OK);
        assert_eq!(
            intercore_remote_open(
                &mut *r,
                c"intercore-dp".as_ptr(),
                INTERCORE_ADDR_ANY,
                &mut ch
            ),
            INTERCORE_OK
        );
        assert_eq!(intercore_dp_init(&mut *d, &p, &dcfg), INTERCORE_OK);
    }
    let pool = Pool::new(
        Coherent::new(c.mem.clone()),
        c.pool.0,
        DevAddr(IOVA),
        &pool_cfg,
    )
    .unwrap();
    let hch = host.connect(DP_SERVICE, T).unwrap();
    let dp = DpHost::new(pool, hch, host.max_payload()).unwrap();
    Rig {
        c,
        host,
        dp,
        r,
        d,
        ch,
        hooks,
        _bell: bell,
    }
}

/// Buffers of every length class (1 byte to a full buffer less the CRC) go through the C
/// ABI's data plane, served both ways (`intercore_dp_serve`, and a receive callback with
/// `intercore_dp_process` + `intercore_dp_flush`); every CRC32C the host reads back is
/// checked, and so is the cache maintenance: the input invalidated before it is read,
/// the output cleaned, in whole lines inside the window.
#[test]
fn c_abi_data_plane_checksums_every_buffer() {
    let mut g = rig(BUF * NBUF);
    let lens = [1usize, 3, 63, 64, 65, 100, 1000, 2048, 4000, BUF - 4];
    for (round, chunk) in lens.chunks(NBUF).enumerate() {
        let round = round as u64;
        let mut want = Vec::new();
        for &len in chunk {
            let mut b = g.dp.alloc(BUF).unwrap();
            for (i, x) in b[..len].iter_mut().enumerate() {
                *x = (i as u64 * 31 + round) as u8;
            }
            want.push(crc32c(&b[..len]));
            g.dp.submit(&mut g.host, b, len, DP_OP_CRC32C_W).unwrap();
        }
        g.dp.flush(&mut g.host).unwrap();
        let st = if round % 2 == 0 {
            // SAFETY: attached bus and initialised data plane; the work function's contract.
            unsafe {
                intercore_dp_serve(
                    &mut *g.d,
                    &mut *g.r,
                    g.ch,
                    5000,
                    Some(crc_work),
                    core::ptr::null_mut(),
                )
            }
        } else {
            let d: *mut intercore_dp = &mut *g.d;
            // SAFETY: d is initialised; process touches no bus.
            let st = unsafe {
                intercore_remote_recv_with(&mut *g.r, g.ch, 5000, Some(process_cb), d.cast())
            };
            assert_eq!(st, INTERCORE_OK);
            // SAFETY: as above.
            unsafe { intercore_dp_flush(&mut *g.d, &mut *g.r, 5000) }
        };
        assert_eq!(st, INTERCORE_OK);
        for (i, &len) in chunk.iter().enumerate() {
            let done = g.dp.wait_complete(&mut g.host, T).unwrap();
            assert_eq!(done.status(), 0, "buffer of {len}");
            assert_eq!(done.len(), len + 4);
            assert_eq!(
                done[len..len + 4],
                want[i].to_le_bytes(),
                "CRC of {len} bytes"
            );
            drop(done.into_writable());
        }
    }
    // SAFETY: initialised.
    let s = unsafe { intercore_dp_get_stats(&mut *g.d) };
    assert_eq!(
        s,
        intercore_dp_stats {
            done: lens.len() as u64,
            faults: 0,
            bad: 0
        }
    );
    let calls = g.hooks.calls.lock().unwrap();
    assert_eq!(
        calls.iter().filter(|c| c.0).count(),
        lens.len(),
        "one invalidate per input"
    );
    assert_eq!(
        calls.iter().filter(|c| !c.0).count(),
        lens.len(),
        "one clean per output"
    );
    for &(_, off, len) in calls.iter() {
        assert!(
            off % 64 == 0 && len % 64 == 0 && len > 0 && off + len <= BUF * NBUF,
            "{off}+{len}"
        );
    }
    drop(calls);
    let _ = &g.c;
}

const DP_OP_CRC32C_W: u32 = intercore::wire::dataplane::DP_OP_CRC32C;

unsafe extern "C" fn process_cb(ctx: *mut c_void, m: *const intercore_msg) {
    // SAFETY: ctx is the test's data plane; m valid during the call.
    unsafe {
        let m = &*m;
        let st = intercore_dp_process(
            ctx.cast(),
            m.dst,
            m.src,
            m.data,
            m.len,
            Some(crc_work),
            core::ptr::null_mut(),
        );
        assert_eq!(st, INTERCORE_OK);
    }
}

/// A submit message as the host builds one.
fn submit_msg(entries: &[DpSubmit]) -> Vec<u8> {
    let mut v = DpHdr {
        kind: Le16::new(DP_SUBMIT),
        count: Le16::new(entries.len() as u16),
        reserved: Le32::new(0),
    }
    .as_bytes()
    .to_vec();
    for e in entries {
        v.extend_from_slice(e.as_bytes());
    }
    v
}

fn entry(seq: u64, da: u64, len: u32, cap: u32, op: u32) -> DpSubmit {
    DpSubmit {
        seq: Le64::new(seq),
        da: Le64::new(da),
        len: Le32::new(len),
        cap: Le32::new(cap),
        buf: Le32::new(0),
        op: Le32::new(op),
    }
}

/// Windows and hostile values: a buffer the host placed outside the data plane's window
/// completes with `DP_FAULT` (the bytes are never read); submit entries with a wrapping
/// device address, an input longer than the capacity, an unknown operation, a worker
/// reaching past the buffer or claiming more output than it holds, and a malformed
/// message are each refused and counted; bad arguments are `INTERCORE_E_INVALID`.
#[test]
fn c_abi_data_plane_refuses_what_lies_outside() {
    // The window covers the first two of the four buffers.
    let mut g = rig(2 * BUF);
    let mut bufs: Vec<_> = (0..NBUF).map(|_| g.dp.alloc(BUF).unwrap()).collect();
    bufs.sort_by_key(|b| b.da().0);
    for b in bufs {
        g.dp.submit(&mut g.host, b, 100, DP_OP_CRC32C_W).unwrap();
    }
    g.dp.flush(&mut g.host).unwrap();
    // SAFETY: as in the first test.
    let st = unsafe {
        intercore_dp_serve(
            &mut *g.d,
            &mut *g.r,
            g.ch,
            5000,
            Some(crc_work),
            core::ptr::null_mut(),
        )
    };
    assert_eq!(st, INTERCORE_OK);
    let mut statuses: Vec<(u64, u32)> = (0..NBUF)
        .map(|_| {
            let c = g.dp.wait_complete(&mut g.host, T).unwrap();
            (c.seq(), c.status())
        })
        .collect();
    statuses.sort();
    let st: Vec<u32> = statuses.iter().map(|s| s.1).collect();
    assert_eq!(
        st,
        [
            INTERCORE_DP_OK,
            INTERCORE_DP_OK,
            INTERCORE_DP_FAULT,
            INTERCORE_DP_FAULT
        ]
    );

    // Hostile entries, straight into intercore_dp_process.
    let msg = submit_msg(&[
        entry(1, u64::MAX - 10, 100, 200, DP_OP_CRC32C_W), // wraps
        entry(2, IOVA, 300, 200, DP_OP_CRC32C_W),          // len > cap
        entry(3, IOVA, 10, 100, 99),                       // unknown op
        entry(4, IOVA + BUF as u64, 10, BUF as u32 * 8, DP_OP_CRC32C_W), // cap past the window: input inside is fine
    ]);
    // SAFETY: initialised data plane; msg readable.
    unsafe {
        assert_eq!(
            intercore_dp_process(
                &mut *g.d,
                g.ch.local,
                0x400,
                msg.as_ptr(),
                msg.len(),
                Some(crc_work),
                core::ptr::null_mut()
            ),
            INTERCORE_OK
        );
    }
    // SAFETY: as above.
    let s = unsafe { intercore_dp_get_stats(&mut *g.d) };
    // 2 + entry 4 done; 2 faults from the window + entry 1; entries 2 and 3 bad.
    assert_eq!(
        s,
        intercore_dp_stats {
            done: 3,
            faults: 3,
            bad: 2
        }
    );

    let mut seen: Vec<i32> = Vec::new();
    let one = submit_msg(&[entry(5, IOVA, 10, 64, DP_OP_CRC32C_W)]);
    // SAFETY: as above; reach's ctx is `seen`.
    unsafe {
        intercore_dp_process(
            &mut *g.d,
            g.ch.local,
            0x400,
            one.as_ptr(),
            one.len(),
            Some(reach),
            (&mut seen as *mut Vec<i32>).cast(),
        );
        intercore_dp_process(
            &mut *g.d,
            g.ch.local,
            0x400,
            one.as_ptr(),
            one.len(),
            Some(liar),
            core::ptr::null_mut(),
        );
        // Malformed: a header only, a truncated entry, garbage.
        for bad in [&one[..8], &one[..20], &[0xffu8; 40][..], &[][..]] {
            let p = if bad.is_empty() {
                one.as_ptr()
            } else {
                bad.as_ptr()
            };
            intercore_dp_process(
                &mut *g.d,
                g.ch.local,
                0x400,
                p,
                bad.len(),
                Some(crc_work),
                core::ptr::null_mut(),
            );
        }
    }
    assert_eq!(
        seen,
        [
            INTERCORE_E_FAULT,
            INTERCORE_E_FAULT,
            INTERCORE_E_INVALID,
            INTERCORE_E_INVALID
        ]
    );
    // SAFETY: as above.
    let s2 = unsafe { intercore_dp_get_stats(&mut *g.d) };
    assert_eq!((s2.faults, s2.done), (s.faults + 1, s.done));
    assert!(
        s2.bad >= s.bad + 1 + 3,
        "the liar and the malformed messages: {s2:?}"
    );

    // Bad arguments.
    let mut fresh = dp_storage();
    let p = platform(&g._bell, false);
    let good = intercore_dp_config {
        // SAFETY: inside the carveout.
        pool_base: unsafe { g.c.mem.as_ptr().add(g.c.pool.0) }.cast(),
        pool_len: BUF,
        pool_da: IOVA,
        line_size: 0,
    };
    // SAFETY: every pointer null or valid; the calls must reject the bad ones.
    unsafe {
        assert_eq!(
            intercore_dp_init(core::ptr::null_mut(), &p, &good),
            INTERCORE_E_INVALID
        );
        assert_eq!(
            intercore_dp_init(&mut *fresh, core::ptr::null(), &good),
            INTERCORE_E_INVALID
        );
        assert_eq!(
            intercore_dp_init(&mut *fresh, &p, core::ptr::null()),
            INTERCORE_E_INVALID
        );
        for bad in [
            intercore_dp_config {
                line_size: 48,
                ..good
            },
            intercore_dp_config {
                pool_len: 0,
                ..good
            },
            intercore_dp_config {
                pool_base: core::ptr::null_mut(),
                ..good
            },
            intercore_dp_config {
                pool_base: good.pool_base.cast::<u8>().add(8).cast(),
                ..good
            },
            intercore_dp_config {
                pool_da: u64::MAX - 8,
                ..good
            },
        ] {
            assert_eq!(
                intercore_dp_init(&mut *fresh, &p, &bad),
                INTERCORE_E_INVALID
            );
        }
        // Never initialised.
        assert_eq!(
            intercore_dp_process(
                &mut *fresh,
                1,
                2,
                one.as_ptr(),
                one.len(),
                Some(crc_work),
                core::ptr::null_mut()
            ),
            INTERCORE_E_INVALID
        );
        assert_eq!(
            intercore_dp_flush(&mut *fresh, &mut *g.r, 0),
            INTERCORE_E_INVALID
        );
        assert_eq!(
            intercore_dp_get_stats(&mut *fresh),
            intercore_dp_stats::default()
        );
        assert_eq!(intercore_dp_init(&mut *fresh, &p, &good), INTERCORE_OK);
        assert_eq!(
            intercore_dp_process(
                &mut *fresh,
                1,
                2,
                one.as_ptr(),
                one.len(),
                None,
                core::ptr::null_mut()
            ),
            INTERCORE_E_INVALID
        );
        assert_eq!(
            intercore_dp_process(
                &mut *fresh,
                1,
                2,
                core::ptr::null(),
                3,
                Some(crc_work),
                core::ptr::null_mut()
            ),
            INTERCORE_E_INVALID
        );
        assert_eq!(
            intercore_dp_flush(&mut *fresh, core::ptr::null_mut(), 0),
            INTERCORE_E_INVALID
        );
        assert_eq!(
            intercore_dp_serve(&mut *fresh, &mut *g.r, g.ch, 0, None, core::ptr::null_mut()),
            INTERCORE_E_INVALID
        );
        // Nothing submitted: a serve with no wait times out.
        assert_eq!(
            intercore_dp_serve(
                &mut *fresh,
                &mut *g.r,
                g.ch,
                0,
                Some(crc_work),
                core::ptr::null_mut()
            ),
            INTERCORE_E_TIMEOUT
        );
        assert_eq!(intercore_dp_job_op(core::ptr::null_mut()), 0);
        assert_eq!(intercore_dp_job_len(core::ptr::null_mut()), 0);
        assert_eq!(intercore_dp_job_cap(core::ptr::null_mut()), 0);
        let mut q = core::ptr::null();
        assert_eq!(
            intercore_dp_job_input(core::ptr::null_mut(), &mut q),
            INTERCORE_E_INVALID
        );
        let mut o = core::ptr::null_mut();
        assert_eq!(
            intercore_dp_job_output(core::ptr::null_mut(), 0, 1, &mut o),
            INTERCORE_E_INVALID
        );
        assert_eq!(intercore_crc32c(b"123456789".as_ptr(), 9), 0xE306_9283);
        assert_eq!(intercore_crc32c(core::ptr::null(), 0), 0);
        let s = core::ffi::CStr::from_ptr(intercore_status_str(INTERCORE_E_FAULT));
        assert!(s.to_str().unwrap().contains("outside"));
    }
}

/// The placement `discover` would find in `c`'s table, as window offsets, with a buffer
/// window spanning both rings and the buffers.
fn placement(c: &Carveout) -> intercore_placement {
    let mut raw = vec![0u8; c.rsc.len];
    c.mem.read(c.rsc.offset, &mut raw);
    let table = ResourceTable::validate(&raw).unwrap();
    let vdev = table.find_vdev(7).unwrap().unwrap();
    let at = c.rsc.offset + vdev.offset;
    let from = c.layout.vring0;
    intercore_placement {
        shm_base: c.mem.as_ptr().cast(),
        shm_len: c.mem.len(),
        shm_da: c.map.base.0,
        control: INTERCORE_CONTROL_STATUS_WORDS,
        features: vdev.vdev.dfeatures.get(),
        status_off: at + VDEV_STATUS_OFFSET,
        gfeatures_off: at + VDEV_GFEATURES_OFFSET,
        ring_off: [c.layout.vring0, c.layout.vring1],
        ring_num: [16, 16],
        ring_align: [VRING_ALIGN, VRING_ALIGN],
        notify_id: [1, 2],
        buffers_da: c.map.base.0 + from as u64,
        buffers_len: c.layout.total - from,
        private_offset: 0,
        private_len: 0,
        buf_size: 0,
    }
}

/// Attach by placement: a remote told where the host put its rings and status words
/// (no table read) echoes messages of every size both ways through the C ABI; bad
/// placements (an unknown control, a ring geometry that is no power of two, a ring or a
/// status word outside the window, overlapping rings, buffers outside the window) are
/// refused at attach with a status code.
#[test]
fn c_abi_attach_placed_echoes_and_refuses_bad_placements() {
    let c = Carveout::with_buffers(16);
    let (hb, rb) = ThreadBell::pair();
    let p = platform(&rb, false);
    let good = placement(&c);
    let mut r = storage();
    let len = c.mem.len();
    let bad = [
        intercore_placement { control: 7, ..good },
        intercore_placement {
            ring_num: [16, 12],
            ..good
        },
        intercore_placement {
            ring_align: [1, VRING_ALIGN],
            ..good
        },
        intercore_placement {
            ring_off: [len - 16, good.ring_off[1]],
            ..good
        },
        intercore_placement {
            ring_off: [good.ring_off[0], usize::MAX - 8],
            ..good
        },
        intercore_placement {
            ring_off: [good.ring_off[0], good.ring_off[0]],
            ..good
        },
        intercore_placement {
            status_off: len,
            ..good
        },
        intercore_placement {
            gfeatures_off: usize::MAX - 1,
            ..good
        },
        intercore_placement {
            buffers_da: good.shm_da + len as u64,
            ..good
        },
        intercore_placement {
            buffers_len: len,
            ..good
        },
        intercore_placement {
            buffers_da: 0,
            ..good
        },
        intercore_placement {
            shm_base: core::ptr::null_mut(),
            ..good
        },
    ];
    for (i, b) in bad.iter().enumerate() {
        // SAFETY: valid storage and platform; the placement is checked, not trusted.
        let st = unsafe { intercore_remote_attach_placed(&mut *r, &p, b) };
        assert!(st < 0, "bad placement {i} was accepted");
        // SAFETY: as above.
        let max = unsafe { intercore_remote_max_payload(&mut *r) };
        assert_eq!(max, 0, "placement {i}");
    }
    // SAFETY: null arguments.
    unsafe {
        assert_eq!(
            intercore_remote_attach_placed(&mut *r, &p, core::ptr::null()),
            INTERCORE_E_INVALID
        );
        assert_eq!(
            intercore_remote_attach_placed(&mut *r, core::ptr::null(), &good),
            INTERCORE_E_INVALID
        );
        assert_eq!(
            intercore_remote_attach_placed(core::ptr::null_mut(), &p, &good),
            INTERCORE_E_INVALID
        );
    }
    let mut host = HostBus::new(c.mem.clone(), hb, &c.map, c.rsc, HostConfig::default()).unwrap();
    let mut ch = intercore_channel::default();
    // SAFETY: valid storage, platform and placement; the carveout outlives the bus.
    unsafe {
        assert_eq!(
            intercore_remote_attach_placed(&mut *r, &p, &good),
            INTERCORE_OK
        );
        assert_eq!(intercore_remote_wait_ready(&mut *r, 1000), INTERCORE_OK);
        assert_eq!(
            intercore_remote_open(&mut *r, c"rpmsg-raw".as_ptr(), INTERCORE_ADDR_ANY, &mut ch),
            INTERCORE_OK
        );
    }
    let on_host = host.connect("rpmsg-raw", T).unwrap();
    // SAFETY: attached.
    let max = unsafe { intercore_remote_max_payload(&mut *r) };
    assert_eq!(max, 496);
    for len in 1..=max {
        let msg: Vec<u8> = (0..len).map(|i| (i * 13 + len) as u8).collect();
        host.send(&on_host, &msg, T).unwrap();
        let mut buf = [0u8; 512];
        let (mut n, mut src) = (0usize, 0u32);
        // SAFETY: buf writable; n, src writable.
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
        assert_eq!(
            (st, src, &buf[..n]),
            (INTERCORE_OK, on_host.local, &msg[..])
        );
        // SAFETY: buf readable for n bytes.
        let st = unsafe { intercore_remote_send(&mut *r, ch, buf.as_ptr().cast(), n, 5000) };
        assert_eq!(st, INTERCORE_OK);
        let n = host.recv(&on_host, &mut buf, T).unwrap();
        assert_eq!(&buf[..n], &msg[..], "size {len}");
    }
    // SAFETY: attached storage.
    unsafe { intercore_remote_detach(&mut *r) };
}

unsafe extern "C" fn collect_dst(ctx: *mut c_void, m: *const intercore_msg) {
    // SAFETY: ctx is the test's Vec; m and its data are valid during the call.
    let (v, m) = unsafe { (&mut *ctx.cast::<Vec<(u32, Vec<u8>)>>(), &*m) };
    // SAFETY: the payload is readable for len bytes during the call.
    v.push((
        m.dst,
        unsafe { core::slice::from_raw_parts(m.data, m.len) }.to_vec(),
    ));
}

/// `intercore_remote_recv_any` delivers each message with the endpoint it was sent to,
/// in arrival order across endpoints; nothing waiting is a timeout; bad arguments are
/// `INTERCORE_E_INVALID`.
#[test]
fn c_abi_recv_any_names_the_endpoint() {
    let c = Carveout::with_buffers(16);
    let (hb, rb) = ThreadBell::pair();
    // One thread drives both ends: the six messages are all queued before the remote reads
    // one, so no endpoint may be held to the default shared credit (2) on the way.
    let cfg = HostConfig::default().tx_credit(Some(8));
    let mut host = HostBus::new(c.mem.clone(), hb, &c.map, c.rsc, cfg).unwrap();
    let mut r = storage();
    let p = platform(&rb, false);
    let cfg = crate::tests::config(&c);
    let mut v: Vec<(u32, Vec<u8>)> = Vec::new();
    let vp = (&mut v as *mut Vec<(u32, Vec<u8>)>).cast::<c_void>();
    // SAFETY: unattached storage: refused.
    let st = unsafe { intercore_remote_recv_any(&mut *r, 0, Some(collect_dst), vp) };
    assert_eq!(st, INTERCORE_E_INVALID);
    let (mut a, mut b) = (intercore_channel::default(), intercore_channel::default());
    // SAFETY: valid storage, platform and config.
    unsafe {
        assert_eq!(intercore_remote_attach(&mut *r, &p, &cfg), INTERCORE_OK);
        assert_eq!(intercore_remote_wait_ready(&mut *r, 1000), INTERCORE_OK);
        assert_eq!(
            intercore_remote_open(&mut *r, c"svc-a".as_ptr(), INTERCORE_ADDR_ANY, &mut a),
            INTERCORE_OK
        );
        assert_eq!(
            intercore_remote_open(&mut *r, c"svc-b".as_ptr(), INTERCORE_ADDR_ANY, &mut b),
            INTERCORE_OK
        );
        assert_eq!(
            intercore_remote_recv_any(&mut *r, 0, Some(collect_dst), vp),
            INTERCORE_E_TIMEOUT
        );
        assert_eq!(
            intercore_remote_recv_any(&mut *r, 0, None, vp),
            INTERCORE_E_INVALID
        );
    }
    let ha = host.connect("svc-a", T).unwrap();
    let hb2 = host.connect("svc-b", T).unwrap();
    for i in 0..6u8 {
        let (ch, tag) = if i % 3 == 0 {
            (&hb2, b'b')
        } else {
            (&ha, b'a')
        };
        host.send(ch, &[tag, i], T).unwrap();
    }
    for _ in 0..6 {
        // SAFETY: attached; collect_dst's ctx is v.
        let st = unsafe { intercore_remote_recv_any(&mut *r, 5000, Some(collect_dst), vp) };
        assert_eq!(st, INTERCORE_OK);
    }
    let want: Vec<(u32, Vec<u8>)> = (0..6u8)
        .map(|i| {
            if i % 3 == 0 {
                (b.local, vec![b'b', i])
            } else {
                (a.local, vec![b'a', i])
            }
        })
        .collect();
    assert_eq!(v, want);
    // SAFETY: attached storage.
    unsafe { intercore_remote_detach(&mut *r) };
}
