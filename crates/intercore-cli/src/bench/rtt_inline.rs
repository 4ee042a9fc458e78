//! `bench rtt` rows of the inline-slot ring (`intercore::virtq::inline`, issue 24), two
//! kinds, both polling, sizes 1/16/48/64/496 B over two-line slots (112 bytes inline; 496
//! goes by reference through the slot's companion buffer):
//!
//! * `intercore-inline-ring` ([`rows`]): the ring protocol alone between two processes,
//!   as the spin floor is measured — the host end here, the remote end in a peer process
//!   (`__bench-peer inline FD`) that echoes each message (copied out of its slot and into
//!   a reply slot). No endpoint table, no name service.
//! * `intercore-bus-inline-poll` ([`bus_rows`]): through the rpmsg buses — `HostBus` here,
//!   `RemoteBus` in the simulated SoC's echo firmware — which negotiate the inline rings
//!   by default (the firmware's vendor entry offers them): endpoints, the name service,
//!   `send_raw`/`recv_from` on the host as the other intercore rows.
//!
//! The summary prints each size's p50 over the spin floor's p50 from the same run.

use super::floor::Peer;
use super::stats::{CpuMeter, Row, measure};
use intercore::SharedMemory;
use intercore::virtq::inline::{Companions, InlineLayout, InlineRx, InlineTx};
use intercore_linux::MemfdRegion;
use std::os::fd::{AsFd, AsRawFd};
use std::sync::atomic::Ordering::{Acquire, Release};
use std::time::{Duration, Instant};

/// Payload sizes of the rows.
pub const SIZES: [usize; 5] = [1, 16, 48, 64, 496];
/// The transport name of the rows.
pub const TRANSPORT: &str = "intercore-inline-ring";
const AREA: usize = 16384;
const SLOTS: u32 = 64;
const BUF: usize = 512;
/// Region offset of the word that tells the peer to stop (its own line).
const STOP: usize = 2 * AREA + 2 * SLOTS as usize * BUF;
const LEN: usize = STOP + 64;

/// (host → remote, remote → host) rings and their companions.
fn rings() -> Result<[(InlineLayout, Companions); 2], String> {
    let e = |e: intercore::Error| e.to_string();
    let comp = |k: usize| Companions {
        base: 2 * AREA + k * SLOTS as usize * BUF,
        stride: BUF,
    };
    Ok([
        (InlineLayout::fit(0, AREA, 112, SLOTS).map_err(e)?, comp(0)),
        (
            InlineLayout::fit(AREA, AREA, 112, SLOTS).map_err(e)?,
            comp(1),
        ),
    ])
}

/// One row per size, measured against a peer process echoing through the rings.
pub fn rows(warmup: usize, samples: usize, cpu: Option<usize>) -> Result<Vec<Row>, String> {
    let mem = MemfdRegion::create("bench-inline", LEN).map_err(|e| e.to_string())?;
    let [(to_remote, c_remote), (to_host, c_host)] = rings()?;
    to_remote.reset(&mem);
    to_host.reset(&mem);
    let e = |e: intercore::Error| e.to_string();
    let mut tx = InlineTx::new(&mem, to_remote, c_remote).map_err(e)?;
    let mut rx = InlineRx::new(&mem, to_host, c_host).map_err(e)?;
    // Both ends only poll (as buses in `WaitMode::Poll` declare): no wake check per message.
    rx.declare_polling(&mem, true, Duration::ZERO);
    let peer = Peer::spawn(
        &["inline".into(), mem.fd().as_raw_fd().to_string()],
        &[mem.fd().as_fd()],
        cpu,
    )?;
    let mut out = vec![0u8; BUF];
    let mut back = vec![0u8; BUF];
    let mut rows = Vec::new();
    for size in SIZES {
        let meter = CpuMeter::start(Some(peer.pid()));
        let mut seq = 0u8;
        let rec = measure(warmup, samples, || {
            seq = seq.wrapping_add(1);
            out[0] = seq;
            tx.try_send(&mem, 1024, 53, &out[..size])
                .map_err(|e| format!("inline send: {e}"))?;
            let t0 = Instant::now();
            let mut spins = 0u32;
            let m = loop {
                if let Some(m) = rx.try_recv(&mem).map_err(|e| e.to_string())? {
                    break m;
                }
                core::hint::spin_loop();
                spins = spins.wrapping_add(1);
                if spins % (1 << 20) == 0 && t0.elapsed() > Duration::from_secs(2) {
                    return Err("inline peer stopped answering".into());
                }
            };
            mem.read(m.off, &mut back[..m.len]);
            rx.release(&mem).map_err(|e| e.to_string())?;
            if m.len != size || back[0] != out[0] {
                return Err(format!("{size}-byte inline echo came back altered"));
            }
            Ok(())
        })?;
        let mut row = Row::new("rtt", TRANSPORT, size);
        let (h, p) = meter.per_op(warmup as u64 + rec.count());
        row.lat = Some(rec.lat());
        row.host_cpu_ns = Some(h);
        row.peer_cpu_ns = p;
        row.note =
            "inline-slot ring alone (no bus), polling (declared: no wake check), two-line slots"
                .into();
        rows.push(row);
    }
    // Release: the peer stops after its last reply (nothing to order; the store must land).
    mem.store_u32(STOP, 1, Release);
    drop(peer);
    Ok(rows)
}

/// The transport name of the rows through the buses.
pub const BUS_TRANSPORT: &str = "intercore-bus-inline-poll";

/// One row per size through the rpmsg buses on inline rings: the host bus here, the echo
/// firmware's remote bus in the simulated SoC (its own process, on `cpus[1]` when given),
/// both polling.
pub fn bus_rows(warmup: usize, samples: usize, cpus: &[usize]) -> Result<Vec<Row>, String> {
    use intercore::WaitMode;
    use intercore::rpmsg::{Channel, HostConfig, RPMSG_ADDR_ANY};
    let cfg = intercore_sim::SimConfig {
        remote_wait: WaitMode::Poll,
        ..intercore_sim::SimConfig::new(crate::firmwares::echo())
    };
    let program = crate::sim_remote().map_err(|e| e.to_string())?;
    let soc = intercore_sim::Soc::start(&cfg, &program)
        .map_err(|e| format!("starting the simulated SoC: {e}"))?;
    if cpus.len() >= 2 {
        let _ = intercore_linux::pin_to_cpu(soc.remote_pid() as i32, cpus[1]);
    }
    let mut bus = soc
        .host_bus(HostConfig::default().wait(WaitMode::Poll))
        .map_err(|e| e.to_string())?;
    if bus.inline_max().is_none() {
        return Err("inline rings were not negotiated with the echo firmware".into());
    }
    let t = Some(Duration::from_secs(1));
    let dst = bus
        .find_service(intercore_fw_echo::SERVICE, Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    let ep = bus
        .create_endpoint("bench", None)
        .map_err(|e| e.to_string())?;
    let mut rows = Vec::new();
    for size in SIZES {
        let out: Vec<u8> = (0..size).map(|i| i as u8).collect();
        let mut back = vec![0u8; BUF];
        let meter = CpuMeter::start(Some(soc.remote_pid()));
        let mut seq = 0u8;
        let mut out = out;
        let rec = measure(warmup, samples, || {
            seq = seq.wrapping_add(1);
            if let Some(b) = out.first_mut() {
                *b = seq;
            }
            bus.send_raw(ep, dst, &out, t).map_err(|e| e.to_string())?;
            let (_, n) = bus
                .recv_from(&Channel::new(ep, RPMSG_ADDR_ANY), &mut back, t)
                .map_err(|e| e.to_string())?;
            if back[..n] != out[..] {
                return Err(format!(
                    "{size}-byte echo through the buses came back altered"
                ));
            }
            Ok(())
        })?;
        let mut row = Row::new("rtt", BUS_TRANSPORT, size);
        let (h, p) = meter.per_op(warmup as u64 + rec.count());
        row.lat = Some(rec.lat());
        row.host_cpu_ns = Some(h);
        row.peer_cpu_ns = p;
        row.note = "HostBus and RemoteBus (echo firmware) on inline-slot rings, polling".into();
        rows.push(row);
    }
    drop(bus);
    let _ = soc.shutdown(Duration::from_secs(1));
    Ok(rows)
}

/// The peer: echoes every message until told to stop (runs in the child process).
pub fn peer(fd: std::os::fd::OwnedFd) -> Result<(), String> {
    let mem = MemfdRegion::from_fd(fd).map_err(|e| e.to_string())?;
    let [(to_remote, c_remote), (to_host, c_host)] = rings()?;
    let e = |e: intercore::Error| e.to_string();
    let mut rx = InlineRx::new(&mem, to_remote, c_remote).map_err(e)?;
    rx.declare_polling(&mem, true, Duration::ZERO);
    let mut tx = InlineTx::new(&mem, to_host, c_host).map_err(e)?;
    let mut buf = vec![0u8; BUF];
    let mut idle = 0u32;
    loop {
        match rx.try_recv(&mem).map_err(e)? {
            Some(m) => {
                idle = 0;
                mem.read(m.off, &mut buf[..m.len]);
                rx.release(&mem).map_err(e)?;
                tx.try_send(&mem, m.dst, m.src, &buf[..m.len]).map_err(e)?;
            }
            None => {
                idle = idle.wrapping_add(1);
                // Acquire: pairs with the host's Release store of the stop word.
                if idle % 1024 == 0 && mem.load_u32(STOP, Acquire) != 0 {
                    return Ok(());
                }
                core::hint::spin_loop();
            }
        }
    }
}

/// The summary's entries: each size's p50 over the spin floor's p50 (same run); bounds
/// from issue 24 (64 B ≤ 2×, up to 16 B ≤ 1.5×), the other sizes printed without one.
pub(super) fn targets(rows: &[Row]) -> Vec<super::Target> {
    const NAMES: [(&str, &str); 5] = [
        (
            "inline_ring_rtt_1_over_spin_floor",
            "inline-slot ring (no bus), 1 B, p50 / spin floor p50",
        ),
        (
            "inline_ring_rtt_16_over_spin_floor",
            "inline-slot ring (no bus), 16 B, p50 / spin floor p50",
        ),
        (
            "inline_ring_rtt_48_over_spin_floor",
            "inline-slot ring (no bus), 48 B, p50 / spin floor p50",
        ),
        (
            "inline_ring_rtt_64_over_spin_floor",
            "inline-slot ring (no bus), 64 B, p50 / spin floor p50",
        ),
        (
            "inline_ring_rtt_496_over_spin_floor",
            "inline-slot ring (no bus), 496 B (by reference), p50 / spin floor p50",
        ),
    ];
    let p50 = |t: &str, s: usize| {
        rows.iter()
            .find(|r| r.bench == "rtt" && r.transport == t && r.size == s)
            .and_then(|r| r.lat)
            .map(|l| l.p50 as f64)
    };
    const BUS_NAMES: [(&str, &str); 5] = [
        (
            "inline_bus_rtt_1_over_spin_floor",
            "inline-slot rings through the buses, 1 B, p50 / spin floor p50",
        ),
        (
            "inline_bus_rtt_16_over_spin_floor",
            "inline-slot rings through the buses, 16 B, p50 / spin floor p50",
        ),
        (
            "inline_bus_rtt_48_over_spin_floor",
            "inline-slot rings through the buses, 48 B, p50 / spin floor p50",
        ),
        (
            "inline_bus_rtt_64_over_spin_floor",
            "inline-slot rings through the buses, 64 B, p50 / spin floor p50",
        ),
        (
            "inline_bus_rtt_496_over_spin_floor",
            "inline-slot rings through the buses, 496 B (by reference), p50 / spin floor p50",
        ),
    ];
    let floor = p50("spin-floor", 0);
    let rows_of = |transport: &'static str, names: [(&'static str, &'static str); 5]| {
        SIZES
            .iter()
            .zip(names)
            .filter_map(move |(&s, (name, what))| {
                let value = p50(transport, s).zip(floor).map(|(a, b)| a / b);
                value?;
                Some(super::Target {
                    name,
                    value,
                    bound: match s {
                        0..=16 => Some(1.5),
                        64 => Some(2.0),
                        _ => None,
                    },
                    at_most: true,
                    what,
                })
            })
            .collect::<Vec<_>>()
    };
    let mut v = rows_of(TRANSPORT, NAMES);
    v.extend(rows_of(BUS_TRANSPORT, BUS_NAMES));
    v
}
