//! The [`SharedMemory`] suite.

use super::*;

/// Checks a [`SharedMemory`] of at least 256 bytes (a multiple of 8) against the trait's contract: the base
/// is null or 8-aligned; bytes written are read back, at any offset and alignment, without
/// touching their neighbours; the atomic accessors agree with the byte accessors
/// (little-endian); every access that leaves the region, overflows or is misaligned panics
/// before touching memory, while empty accesses at the end are allowed; and a Release store
/// publishes earlier writes to an Acquire load on another thread.
pub fn shared_memory<M: SharedMemory + Sync + ?Sized>(mem: &M) -> Outcome {
    guarded(|| {
        let len = mem.len();
        ensure!(
            len >= 256 && len % 8 == 0,
            "the suite needs a region of at least 256 bytes, a multiple of 8",
            "len() is {len}"
        );
        ensure!(
            !mem.is_empty(),
            "is_empty() agrees with len()",
            "is_empty() is true for {len} bytes"
        );
        let p = mem.as_ptr();
        ensure!(
            p.is_null() || (p as usize) % 8 == 0,
            "as_ptr() is null or aligned to 8",
            "{p:p}"
        );
        shm_bytes(mem, len)?;
        shm_atomics(mem, len)?;
        shm_bounds(mem, len)?;
        shm_publication(mem)?;
        for order in [Ordering::Acquire, Ordering::Release, Ordering::SeqCst] {
            mem.fence(order);
        }
        Ok(())
    })
}

fn shm_bytes<M: SharedMemory + ?Sized>(mem: &M, len: usize) -> Outcome {
    let cases = [
        (0, 64),
        (1, 13),
        (7, 1),
        (len / 2 - 3, 37),
        (len - 64, 64),
        (len - 5, 5),
        (len - 1, 1),
    ];
    for (k, &(off, n)) in cases.iter().enumerate() {
        // Guard bytes around the range, then the payload.
        let lo = off.saturating_sub(16);
        let hi = (off + n + 16).min(len);
        mem.write(lo, &vec![0xEE; hi - lo]);
        let data = pattern(k as u8, n);
        mem.write(off, &data);
        let mut back = vec![0u8; n];
        mem.read(off, &mut back);
        ensure!(
            back == data,
            "read returns what write stored",
            "{n} bytes at {off:#x}: {}",
            first_difference(&back, &data)
        );
        let mut around = vec![0u8; hi - lo];
        mem.read(lo, &mut around);
        let mut want = vec![0xEE; hi - lo];
        want[off - lo..off - lo + n].copy_from_slice(&data);
        ensure!(
            around == want,
            "write touches only the bytes it is given",
            "{n} bytes at {off:#x}: {}",
            first_difference(&around, &want)
        );
    }
    // Empty accesses are in bounds anywhere up to and including the end.
    mem.read(len, &mut []);
    mem.write(len, &[]);
    mem.read(0, &mut []);
    Ok(())
}

fn shm_atomics<M: SharedMemory + ?Sized>(mem: &M, len: usize) -> Outcome {
    let last4 = (len - 4) & !3;
    for off in [0, 8, 100, last4] {
        mem.write(
            off.saturating_sub(4),
            &[0xEE; 12][..(12).min(len - off.saturating_sub(4))],
        );
        mem.store_u32(off, 0x0403_0201, Ordering::Release);
        let mut b = [0u8; 4];
        mem.read(off, &mut b);
        ensure!(
            b == [1, 2, 3, 4],
            "store_u32 stores little-endian bytes",
            "at {off:#x}: {b:02x?}"
        );
        mem.write(off, &[0x0a, 0x0b, 0x0c, 0x0d]);
        let v = mem.load_u32(off, Ordering::Acquire);
        ensure!(
            v == 0x0d0c_0b0a,
            "load_u32 reads what write stored, little-endian",
            "at {off:#x}: {v:#x}"
        );
        if off >= 4 {
            let mut before = [0u8; 4];
            mem.read(off - 4, &mut before);
            ensure!(
                before == [0xEE; 4],
                "store_u32 touches only its 4 bytes",
                "bytes before {off:#x}: {before:02x?}"
            );
        }
        if off + 8 <= len {
            let mut after = [0u8; 4];
            mem.read(off + 4, &mut after);
            ensure!(
                after == [0xEE; 4],
                "store_u32 touches only its 4 bytes",
                "bytes after {off:#x}: {after:02x?}"
            );
        }
    }
    let last2 = (len - 2) & !1;
    for off in [0, 2, 6, last2] {
        let g = off & !3;
        mem.write(g, &[0xEE; 4][..4.min(len - g)]);
        mem.store_u16(off, 0xB2A1, Ordering::Release);
        let mut b = [0u8; 2];
        mem.read(off, &mut b);
        ensure!(
            b == [0xA1, 0xB2],
            "store_u16 stores little-endian bytes",
            "at {off:#x}: {b:02x?}"
        );
        mem.write(off, &[0x34, 0x12]);
        let v = mem.load_u16(off, Ordering::Acquire);
        ensure!(
            v == 0x1234,
            "load_u16 reads what write stored, little-endian",
            "at {off:#x}: {v:#x}"
        );
        let other = if off % 4 == 0 { off + 2 } else { off - 2 };
        if other + 2 <= len {
            let mut o = [0u8; 2];
            mem.read(other, &mut o);
            ensure!(
                o == [0xEE; 2],
                "store_u16 touches only its 2 bytes",
                "bytes at {other:#x} after a store at {off:#x}: {o:02x?}"
            );
        }
    }
    Ok(())
}

fn shm_bounds<M: SharedMemory + ?Sized>(mem: &M, len: usize) -> Outcome {
    let tail = len - 8;
    mem.write(tail, &[0x11; 8]);
    let far = usize::MAX & !3;
    type Access<'a> = (&'a str, Box<dyn Fn() + 'a>);
    let cases: Vec<Access<'_>> = vec![
        (
            "read past the end",
            Box::new(|| mem.read(len - 3, &mut [0; 4])),
        ),
        (
            "write past the end",
            Box::new(|| mem.write(len - 4, &[0xFF; 8])),
        ),
        (
            "empty read beyond the end",
            Box::new(|| mem.read(len + 1, &mut [])),
        ),
        (
            "read whose end overflows",
            Box::new(|| mem.read(usize::MAX, &mut [0; 2])),
        ),
        (
            "write whose end overflows",
            Box::new(|| mem.write(usize::MAX - 1, &[0xFF; 4])),
        ),
        (
            "load_u16 of the last byte",
            Box::new(|| {
                let _ = mem.load_u16(len - 1, Ordering::Relaxed);
            }),
        ),
        (
            "load_u16 at the end",
            Box::new(|| {
                let _ = mem.load_u16(len, Ordering::Relaxed);
            }),
        ),
        (
            "store_u16 at the end",
            Box::new(|| mem.store_u16(len, 0xFFFF, Ordering::Relaxed)),
        ),
        (
            "load_u32 of the last 2 bytes",
            Box::new(|| {
                let _ = mem.load_u32(len - 2, Ordering::Relaxed);
            }),
        ),
        (
            "store_u32 across the end",
            Box::new(|| mem.store_u32(len - 2, u32::MAX, Ordering::Relaxed)),
        ),
        (
            "load_u32 whose end overflows",
            Box::new(|| {
                let _ = mem.load_u32(far, Ordering::Relaxed);
            }),
        ),
        (
            "misaligned load_u16",
            Box::new(|| {
                let _ = mem.load_u16(1, Ordering::Relaxed);
            }),
        ),
        (
            "misaligned store_u16",
            Box::new(|| mem.store_u16(len - 3, 0xFFFF, Ordering::Relaxed)),
        ),
        (
            "misaligned load_u32",
            Box::new(|| {
                let _ = mem.load_u32(2, Ordering::Relaxed);
            }),
        ),
        (
            "misaligned store_u32",
            Box::new(|| mem.store_u32(len - 6, u32::MAX, Ordering::Relaxed)),
        ),
    ];
    for (what, f) in cases {
        ensure!(
            panics(f),
            "an access outside the region, overflowing or misaligned panics",
            "{what} of a {len:#x}-byte region returned normally"
        );
    }
    let mut t = [0u8; 8];
    mem.read(tail, &mut t);
    ensure!(
        t == [0x11; 8],
        "a refused access touches no memory",
        "the last 8 bytes became {t:02x?}"
    );
    Ok(())
}

fn shm_publication<M: SharedMemory + Sync + ?Sized>(mem: &M) -> Outcome {
    const ROUNDS: u32 = 200;
    const FLAG: usize = 0;
    const ACK: usize = 4;
    const DATA: usize = 64;
    const N: usize = 128;
    mem.store_u32(FLAG, 0, Ordering::Relaxed);
    mem.store_u32(ACK, 0, Ordering::Relaxed);
    let deadline = Instant::now() + Duration::from_secs(20);
    let gave_up = AtomicBool::new(false);
    // Spins, then yields: on a machine with one CPU (the VFIO guests run under -smp 1, with
    // the test binary's other tests spinning beside this one) a pure spin burns a whole
    // time slice per round, and 200 rounds can outlast the deadline on a loaded host.
    let spin_until = |off: usize, v: u32| -> bool {
        let mut spins = 0u32;
        while mem.load_u32(off, Ordering::Acquire) != v {
            if gave_up.load(Ordering::Relaxed) || Instant::now() > deadline {
                gave_up.store(true, Ordering::Relaxed);
                return false;
            }
            spins = spins.wrapping_add(1);
            if spins % 256 == 0 {
                std::thread::yield_now();
            } else {
                std::hint::spin_loop();
            }
        }
        true
    };
    std::thread::scope(|s| {
        let reader = s.spawn(|| -> Outcome {
            let mut buf = [0u8; N];
            for seq in 1..=ROUNDS {
                if !spin_until(FLAG, seq) {
                    return Err(violation(
                        "a Release store becomes visible to Acquire loads on another thread",
                        format!("round {seq} never arrived"),
                    ));
                }
                mem.read(DATA, &mut buf);
                let want = pattern(seq as u8, N);
                if buf[..] != want[..] {
                    gave_up.store(true, Ordering::Relaxed);
                    return Err(violation(
                        "writes before a Release store are visible after the Acquire load that sees it",
                        format!("round {seq}: {}", first_difference(&buf, &want)),
                    ));
                }
                mem.store_u32(ACK, seq, Ordering::Release);
            }
            Ok(())
        });
        for seq in 1..=ROUNDS {
            if !spin_until(ACK, seq - 1) {
                break;
            }
            mem.write(DATA, &pattern(seq as u8, N));
            mem.store_u32(FLAG, seq, Ordering::Release);
        }
        reader.join().unwrap_or_else(|_| {
            Err(violation(
                "no panic where the contract does not call for one",
                "the reading thread panicked",
            ))
        })
    })
}
