//! The inline-slot round trip's CPU work, apart from line transfers and the machine's load
//! (issue 24, docs/BENCHMARKS.md "Inline-slot rings"): both ends in one thread over a heap
//! carveout, every line in this core's cache, so what is timed is the instructions of both
//! sides' hot paths — what `bench rtt` adds on top of the spin floor besides the line
//! transfers themselves.
//!
//! * `ring`: the ring alone, the calls of `bench rtt`'s `intercore-inline-ring` rows (host
//!   `try_send`, the peer's `try_recv` + `read` + `release` + `try_send`, host `try_recv` +
//!   `read` + `release`).
//! * `buses`: `HostBus` and `RemoteBus` on inline rings, the calls of the
//!   `intercore-bus-inline-poll` rows: host `send_raw` + `recv_from`, the echo firmware's
//!   `recv_reply_any_with` + `ReplyBuf::send_copy`.
//!
//! Each window of `BATCH` round trips is timed; the minimum per round trip over the
//! windows is printed (preemption only adds time, so the minimum is the cost). `phases`
//! times the buses' three parts apart (bursts of 32 messages per phase).
//!
//! `cargo run --release -p intercore-bench --example inline_cpu [SIZE] [WINDOWS] [ring|buses|phases]`
//! (pin it: `taskset -c 1 ...`).

use intercore::SharedMemory;
use intercore::rpmsg::layout::CarveoutSpec;
use intercore::rpmsg::{Channel, HostConfig, RPMSG_ADDR_ANY};
use intercore::testing::{Carveout, HeapMem};
use intercore::virtq::inline::{Companions, InlineLayout, InlineRx, InlineTx};
use intercore::{Error, WaitMode};
use std::time::{Duration, Instant};

/// One kind of round trip: `(size, windows)` → ns per round trip.
type Run = fn(usize, usize) -> Result<f64, Error>;

const BATCH: u32 = 256;
const BUF: usize = 512;

fn best(windows: usize, mut rtt: impl FnMut() -> Result<(), Error>) -> Result<f64, Error> {
    let mut min = f64::MAX;
    for _ in 0..windows {
        let t = Instant::now();
        for _ in 0..BATCH {
            rtt()?;
        }
        min = min.min(t.elapsed().as_nanos() as f64 / f64::from(BATCH));
    }
    Ok(min)
}

fn ring(size: usize, windows: usize) -> Result<f64, Error> {
    const AREA: usize = 16384;
    const SLOTS: u32 = 64;
    let mem = HeapMem::new(2 * AREA + 2 * SLOTS as usize * BUF);
    let comp = |k: usize| Companions {
        base: 2 * AREA + k * SLOTS as usize * BUF,
        stride: BUF,
    };
    let to_remote = InlineLayout::fit(0, AREA, 112, SLOTS)?;
    let to_host = InlineLayout::fit(AREA, AREA, 112, SLOTS)?;
    to_remote.reset(&mem);
    to_host.reset(&mem);
    let mut htx = InlineTx::new(&mem, to_remote, comp(0))?;
    let mut hrx = InlineRx::new(&mem, to_host, comp(1))?;
    let mut rtx = InlineTx::new(&mem, to_host, comp(1))?;
    let mut rrx = InlineRx::new(&mem, to_remote, comp(0))?;
    let out = vec![0x5Au8; size];
    let (mut buf, mut back) = (vec![0u8; BUF], vec![0u8; BUF]);
    best(windows, || {
        htx.try_send(&mem, 1024, 53, &out)?;
        let m = rrx.try_recv(&mem)?.ok_or(Error::WouldBlock)?;
        mem.read(m.off, &mut buf[..m.len]);
        rrx.release(&mem)?;
        rtx.try_send(&mem, m.dst, m.src, &buf[..m.len])?;
        let m = hrx.try_recv(&mem)?.ok_or(Error::WouldBlock)?;
        mem.read(m.off, &mut back[..m.len]);
        hrx.release(&mem)?;
        std::hint::black_box(&back);
        Ok(())
    })
}

fn buses(size: usize, windows: usize) -> Result<f64, Error> {
    // The simulated SoC's link (`bench rtt`): 256-entry vrings, 512-byte buffers.
    let link = Carveout::new(CarveoutSpec {
        vring_num: 256,
        buf_size: BUF,
        event_idx: true,
        da_base: 0xA000_0000,
    })
    .offering(intercore::wire::rsc::INTERCORE_FEATURES);
    let (mut host, mut remote) =
        link.connect::<8>(HostConfig::default().wait(WaitMode::Poll), WaitMode::Poll)?;
    if host.inline_max().is_none() {
        return Err(Error::Config("inline rings not negotiated"));
    }
    let rep = remote.create_endpoint("echo", None)?;
    let ep = host.create_endpoint("bench", None)?;
    let out = vec![0x5Au8; size];
    let mut back = vec![0u8; BUF];
    let t = Some(Duration::from_secs(1));
    let ch = Channel::new(ep, RPMSG_ADDR_ANY);
    best(windows, || {
        host.send_raw(ep, rep, &out, t)?;
        remote.recv_reply_any_with(t, |m, reply| reply.send_copy(m.payload))??;
        let (_, n) = host.recv_from(&ch, &mut back, t)?;
        std::hint::black_box(&back[..n]);
        Ok(())
    })
}

/// `buses`, one phase at a time: `BURST` host sends, then `BURST` echoes by the remote,
/// then `BURST` host receives, each phase timed; the minimum per message of each.
fn phases(size: usize, windows: usize) -> Result<[f64; 3], Error> {
    const BURST: usize = 32;
    let link = Carveout::new(CarveoutSpec {
        vring_num: 256,
        buf_size: BUF,
        event_idx: true,
        da_base: 0xA000_0000,
    })
    .offering(intercore::wire::rsc::INTERCORE_FEATURES);
    let (mut host, mut remote) =
        link.connect::<8>(HostConfig::default().wait(WaitMode::Poll), WaitMode::Poll)?;
    let rep = remote.create_endpoint("echo", None)?;
    let ep = host.create_endpoint("bench", None)?;
    let out = vec![0x5Au8; size];
    let mut back = vec![0u8; BUF];
    let t = Some(Duration::from_secs(1));
    let ch = Channel::new(ep, RPMSG_ADDR_ANY);
    let mut min = [f64::MAX; 3];
    for _ in 0..windows {
        let t0 = Instant::now();
        for _ in 0..BURST {
            host.send_raw(ep, rep, &out, t)?;
        }
        let t1 = Instant::now();
        for _ in 0..BURST {
            remote.recv_reply_any_with(t, |m, reply| reply.send_copy(m.payload))??;
        }
        let t2 = Instant::now();
        for _ in 0..BURST {
            let (_, n) = host.recv_from(&ch, &mut back, t)?;
            std::hint::black_box(&back[..n]);
        }
        let t3 = Instant::now();
        for (m, d) in min.iter_mut().zip([t1 - t0, t2 - t1, t3 - t2]) {
            *m = m.min(d.as_nanos() as f64 / BURST as f64);
        }
    }
    Ok(min)
}

fn main() {
    let arg = |i: usize, d: usize| {
        std::env::args()
            .nth(i)
            .and_then(|s| s.parse().ok())
            .unwrap_or(d)
    };
    let (size, windows) = (arg(1, 16), arg(2, 20_000));
    let which = std::env::args().nth(3).unwrap_or_default();
    if which == "phases" {
        match phases(size, windows) {
            Ok([s, r, h]) => println!(
                "buses {size:>3} B per message: host send {s:5.1} ns, remote echo {r:5.1} ns, host receive {h:5.1} ns"
            ),
            Err(e) => {
                eprintln!("phases: {e}");
                std::process::exit(1);
            }
        }
        return;
    }
    let runs: &[(&str, Run)] = match which.as_str() {
        "ring" => &[("ring", ring)],
        "buses" => &[("buses", buses)],
        _ => &[("ring", ring), ("buses", buses)],
    };
    for (name, f) in runs {
        match f(size, windows) {
            Ok(ns) => println!(
                "{name:>5} {size:>3} B: {ns:6.1} ns per round trip (min over {windows} windows of {BATCH}; {} round trips)",
                windows as u64 * u64::from(BATCH)
            ),
            Err(e) => {
                eprintln!("{name}: {e}");
                std::process::exit(1);
            }
        }
    }
}
