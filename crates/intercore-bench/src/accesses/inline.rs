//! `bench accesses` rows of the inline-slot ring (`intercore::virtq::inline`, issue 24),
//! counted the way [`super`] counts the split rings: both ends in this process,
//! each through its own [`CountingMem`] over one heap region (the host's in 8-byte words,
//! the remote's in 4-byte words), one step at a time, so the counts are deterministic.
//!
//! What is counted is the ring protocol itself — producer and consumer of two rings (host →
//! remote, remote → host), each message copied in and out as the buses copy — not a bus on
//! top of it: the rpmsg buses do not drive the inline ring yet (docs/ARCHITECTURE.md,
//! "Inline-slot rings"). The memory map names no vrings: the analyser then derives no
//! address from a loaded value, which is right for this ring (every slot, companion and
//! control word is found from the reader's own counter; nothing read is an address).

use super::AccessRow;
use intercore::testing::HeapMem;
use intercore::testing::counting::{CountingMem, Counts, MemoryMap};
use intercore::virtq::inline::{Companions, InlineLayout, InlineRx, InlineTx};
use intercore::{DevAddr, LinearMap, SharedMemory};
use std::sync::Arc;

/// Slots per ring (the split rows' ring size).
const NUM: u32 = 16;
/// Companion buffer size (Linux's 512-byte buffers).
const BUF: usize = 512;
/// Payload sizes: 1, 16, the most a one-line slot holds (48), 64, and a by-reference one.
pub const SIZES: [usize; 5] = [1, 16, 48, 64, 496];

type Mem = CountingMem<Arc<HeapMem>>;

struct Side {
    mem: Mem,
    tx: InlineTx,
    rx: InlineRx,
}

struct Bench {
    host: Side,
    remote: Side,
    out: Vec<u8>,
    back: Vec<u8>,
    seq: u8,
}

impl Bench {
    /// Two rings of [`NUM`] slots for `max_inline` payload bytes (48: one line, 112: two),
    /// each with its companion buffers.
    fn new(max_inline: usize) -> Result<Self, String> {
        let area = 8192;
        let len = 2 * area + 2 * NUM as usize * BUF;
        let heap = Arc::new(HeapMem::new(len));
        let map = MemoryMap {
            rings: Vec::new(),
            translate: LinearMap {
                base: DevAddr(0),
                offset: 0,
                len,
            },
            buf_size: BUF,
        };
        let e = |e: intercore::Error| e.to_string();
        let to_remote = InlineLayout::fit(0, area, max_inline, NUM).map_err(e)?;
        let to_host = InlineLayout::fit(area, area, max_inline, NUM).map_err(e)?;
        let c_remote = Companions {
            base: 2 * area,
            stride: BUF,
        };
        let c_host = Companions {
            base: 2 * area + NUM as usize * BUF,
            stride: BUF,
        };
        to_remote.reset(&*heap);
        to_host.reset(&*heap);
        let hmem = CountingMem::new(Arc::clone(&heap), map.clone());
        let rmem = CountingMem::new(heap, map).with_word(4);
        let host = Side {
            tx: InlineTx::new(&hmem, to_remote, c_remote).map_err(e)?,
            rx: InlineRx::new(&hmem, to_host, c_host).map_err(e)?,
            mem: hmem,
        };
        let remote = Side {
            tx: InlineTx::new(&rmem, to_host, c_host).map_err(e)?,
            rx: InlineRx::new(&rmem, to_remote, c_remote).map_err(e)?,
            mem: rmem,
        };
        Ok(Self {
            host,
            remote,
            out: vec![0; BUF],
            back: vec![0; BUF],
            seq: 0,
        })
    }

    /// One verified round trip; counts as in [`super`]: (host send, host recv,
    /// remote recv, remote send), or (host rtt, 0, remote rtt, 0) when `whole`.
    fn round_trip(&mut self, size: usize, whole: bool) -> Result<[Counts; 4], String> {
        let e = |what: &str, err: intercore::Error| format!("{what}: {err}");
        self.seq = self.seq.wrapping_add(1);
        for (i, b) in self.out[..size].iter_mut().enumerate() {
            *b = self.seq.wrapping_add(i as u8);
        }
        let mut r = [Counts::default(); 4];
        let (h, rm) = (&mut self.host, &mut self.remote);
        h.mem.mark();
        h.tx.try_send(&h.mem, 1024, 1025, &self.out[..size])
            .map_err(|x| e("host send", x))?;
        if !whole {
            r[0] = h.mem.take();
        }
        rm.mem.mark();
        let m = rm
            .rx
            .try_recv(&rm.mem)
            .map_err(|x| e("remote receive", x))?
            .ok_or("remote: nothing arrived")?;
        rm.mem.read(m.off, &mut self.back[..m.len]);
        rm.rx.release(&rm.mem).map_err(|x| e("remote release", x))?;
        if !whole {
            r[2] = rm.mem.take();
        }
        rm.tx
            .try_send(&rm.mem, m.dst, m.src, &self.back[..m.len])
            .map_err(|x| e("remote send", x))?;
        if whole {
            r[2] = rm.mem.take();
        } else {
            r[3] = rm.mem.take();
            h.mem.mark();
        }
        let m =
            h.rx.try_recv(&h.mem)
                .map_err(|x| e("host receive", x))?
                .ok_or("host: no reply")?;
        h.mem.read(m.off, &mut self.back[..m.len]);
        h.rx.release(&h.mem).map_err(|x| e("host release", x))?;
        r[if whole { 0 } else { 1 }] = h.mem.take();
        if m.len != size || self.back[..size] != self.out[..size] {
            return Err(format!("{size}-byte inline round trip came back altered"));
        }
        Ok(r)
    }
}

/// The rows: both roles, every size, for two-line slots (`intercore-inline`, what a
/// 64-byte message needs) and one-line slots (`intercore-inline-1line`, 48 bytes inline).
pub fn rows() -> Result<Vec<AccessRow>, String> {
    let mut rows = Vec::new();
    for (implementation, max_inline) in [("intercore-inline", 112), ("intercore-inline-1line", 48)]
    {
        let mut b = Bench::new(max_inline)?;
        for &size in &SIZES {
            for _ in 0..3 * NUM {
                b.round_trip(size, false)?;
            }
            let mut w = [Counts::default(); 6];
            for _ in 0..NUM {
                let [hs, hr, rr, rs] = b.round_trip(size, false)?;
                w[0] = w[0] + hs;
                w[1] = w[1] + hr;
                w[3] = w[3] + rr;
                w[4] = w[4] + rs;
            }
            for _ in 0..NUM {
                let [h, _, r, _] = b.round_trip(size, true)?;
                w[2] = w[2] + h;
                w[5] = w[5] + r;
            }
            let ops = [
                ("host", "send"),
                ("host", "recv"),
                ("host", "rtt"),
                ("remote", "recv"),
                ("remote", "send"),
                ("remote", "rtt"),
            ];
            rows.extend(ops.iter().zip(w).map(|(&(role, op), counts)| AccessRow {
                role,
                implementation,
                op,
                size,
                // The wake words (EVENT_IDX-style suppression) are always on.
                event_idx: true,
                counts,
                msgs: u64::from(NUM),
                ordering_seen: true,
            }));
        }
    }
    Ok(rows)
}
