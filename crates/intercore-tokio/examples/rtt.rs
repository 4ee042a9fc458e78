//! Event-mode round trip, async beside blocking, in the same run: an echo remote in
//! another thread (in-process shared memory, eventfd doorbells, both sides sleeping on the
//! doorbell for every message: `WaitMode::Event`). Each round sends 32 bytes and checks
//! the echo. Rounds alternate blocking and async batches so that both see the same
//! machine load; prints the median per-round-trip time of each and their ratio.
//!
//! `cargo run --release -p intercore-tokio --example rtt [ROUND_TRIPS_PER_BATCH]`

mod common;

use intercore::WaitMode;
use intercore::rpmsg::Channel;
use intercore_tokio::AsyncHost;
use std::time::{Duration, Instant};

const BATCHES: usize = 5;

fn payload(i: u64) -> [u8; 32] {
    let mut p = [0u8; 32];
    p[..8].copy_from_slice(&i.to_le_bytes());
    p[8..16].copy_from_slice(&(!i).to_le_bytes());
    p
}

fn check(i: u64, got: &[u8]) -> Result<(), String> {
    if got == payload(i) {
        Ok(())
    } else {
        Err(format!("round trip {i}: echo differs"))
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: u64 = match std::env::args().nth(1) {
        Some(a) => a.parse().map_err(|_| format!("not a count: {a}"))?,
        None => 2000,
    };
    let total = n * BATCHES as u64 + 1;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;

    // Blocking link.
    let (mut bus, remote_b) = common::echo_link(total, WaitMode::Event);
    let ch: Channel = bus.connect(common::SERVICE, common::TIMEOUT)?;
    // Async link (its own remote thread, same configuration).
    let (abus, remote_a) = common::echo_link(total, WaitMode::Event);
    let (host, ach) = rt.block_on(async {
        let host = AsyncHost::new(abus)?;
        let ch = host.connect(common::SERVICE).await?;
        Ok::<_, Box<dyn std::error::Error>>((host, ch))
    })?;
    let mut buf = [0u8; 496];
    // Warm-up round trip on each.
    bus.send(&ch, &payload(0), None)?;
    bus.recv(&ch, &mut buf, None)?;
    rt.block_on(async {
        host.send(&ach, &payload(0)).await?;
        host.recv(&ach, &mut buf).await
    })?;

    let (mut blocking, mut asynch) = (Vec::new(), Vec::new());
    for b in 0..BATCHES as u64 {
        let t0 = Instant::now();
        for i in b * n + 1..=(b + 1) * n {
            bus.send(&ch, &payload(i), None)?;
            let len = bus.recv(&ch, &mut buf, None)?;
            check(i, &buf[..len])?;
        }
        blocking.push(t0.elapsed() / n as u32);
        let t0 = Instant::now();
        rt.block_on(async {
            for i in b * n + 1..=(b + 1) * n {
                host.send(&ach, &payload(i)).await?;
                let len = host.recv(&ach, &mut buf).await?;
                check(i, &buf[..len])?;
            }
            Ok::<(), Box<dyn std::error::Error>>(())
        })?;
        asynch.push(t0.elapsed() / n as u32);
    }
    drop(host);
    remote_b.join().map_err(|_| "remote panicked")??;
    remote_a.join().map_err(|_| "remote panicked")??;
    let (mb, ma) = (median(blocking.clone()), median(asynch.clone()));
    println!(
        "rtt (event mode, 32-byte echo, {BATCHES} alternating batches of {n}, every echo verified)"
    );
    println!(
        "  blocking: median {:>8.2} µs per round trip   batches {:?}",
        us(mb),
        blocking.iter().map(|d| us(*d)).collect::<Vec<_>>()
    );
    println!(
        "  async:    median {:>8.2} µs per round trip   batches {:?}",
        us(ma),
        asynch.iter().map(|d| us(*d)).collect::<Vec<_>>()
    );
    println!(
        "  async / blocking = {:.2} (target ≤ 1.30)",
        ma.as_secs_f64() / mb.as_secs_f64()
    );
    Ok(())
}

fn us(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e7).round() / 10.0
}
