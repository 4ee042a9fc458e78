//! `bench rtt` rows of the async host (intercore-tokio's `AsyncHost`): the event-mode
//! round trip through the echo firmware on the simulated SoC, as the blocking
//! `intercore-event` rows measure it (same SoC, same firmware, both sides sleeping on the
//! doorbell for every message), but sent and received with `.await` on a current-thread
//! tokio runtime, woken by the doorbell's eventfd through the reactor. Each sample is
//! timed inside the runtime (no `block_on` per round trip). The summary prints the 64-byte
//! p50 over the blocking event row's p50 from the same run (issue 22: ≤ 1.3×).

use super::stats::{CpuMeter, MIN_WINDOW, Recorder, Row};
use intercore::WaitMode;
use intercore::rpmsg::{Channel, HostConfig};
use intercore_sim::{SimConfig, Soc};
use intercore_tokio::AsyncHost;
use std::time::{Duration, Instant};

/// The transport name of the rows.
pub const TRANSPORT: &str = "intercore-event-async";
/// The blocking rows they are compared with.
const BLOCKING: &str = "intercore-event";
/// How long one round trip may take before the row fails.
const ROUND_TRIP_LIMIT: Duration = Duration::from_secs(1);

/// One row per size, against the echo firmware in event mode.
pub fn rows(
    sizes: &[usize],
    warmup: usize,
    samples: usize,
    cpus: &[usize],
) -> Result<Vec<Row>, String> {
    let cfg = SimConfig {
        remote_wait: WaitMode::Event,
        ..SimConfig::new(crate::firmwares::echo())
    };
    let program = crate::sim_remote().map_err(|e| e.to_string())?;
    let soc = Soc::start(&cfg, &program).map_err(|e| format!("starting the simulated SoC: {e}"))?;
    if cpus.len() >= 2 {
        let _ = intercore_linux::pin_to_cpu(soc.remote_pid() as i32, cpus[1]);
    }
    let bus = soc
        .host_bus(HostConfig {
            wait: WaitMode::Event,
            ..HostConfig::default()
        })
        .map_err(|e| e.to_string())?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;
    rt.block_on(async {
        let host = AsyncHost::new(bus).map_err(|e| e.to_string())?;
        let within = |what: &'static str| move |_| format!("{what}: no answer within 5 s");
        let dst = tokio::time::timeout(
            Duration::from_secs(5),
            host.find_service(intercore_fw_echo::SERVICE),
        )
        .await
        .map_err(within("the echo service"))?
        .map_err(|e| e.to_string())?;
        let ch = host.open("bench-async", dst).map_err(|e| e.to_string())?;
        let mut rows = Vec::new();
        for &size in sizes {
            let out: Vec<u8> = (0..size).map(|i| i as u8).collect();
            let mut back = vec![0u8; 496];
            let mut errors = 0u64;
            let meter = CpuMeter::start(Some(soc.remote_pid()));
            for _ in 0..warmup {
                errors += u64::from(!round_trip(&host, &ch, &out, &mut back).await?);
            }
            // As `stats::measure`: at least `samples` calls and MIN_WINDOW.
            let mut rec = Recorder::new();
            let start = Instant::now();
            while (rec.count() as usize) < samples || start.elapsed() < MIN_WINDOW {
                let t = Instant::now();
                let same = round_trip(&host, &ch, &out, &mut back).await?;
                rec.record(t.elapsed());
                errors += u64::from(!same);
            }
            let (h, p) = meter.per_op(warmup as u64 + rec.count());
            let mut row = Row::new("rtt", TRANSPORT, size);
            row.lat = Some(rec.lat());
            row.host_cpu_ns = Some(h);
            row.peer_cpu_ns = p;
            row.errors = errors;
            row.note = "AsyncHost (tokio, current-thread), event mode, woken by the eventfd".into();
            rows.push(row);
        }
        drop(host);
        Ok(rows)
    })
}

/// One round trip: whether the echo came back unchanged.
async fn round_trip<M, D>(
    host: &AsyncHost<M, D>,
    ch: &Channel,
    out: &[u8],
    back: &mut [u8],
) -> Result<bool, String>
where
    M: intercore::SharedMemory,
    D: intercore_tokio::WakeFd,
{
    let rt = async {
        host.send(ch, out).await?;
        host.recv(ch, back).await
    };
    let n = tokio::time::timeout(ROUND_TRIP_LIMIT, rt)
        .await
        .map_err(|_| "async round trip: no echo within 1 s".to_string())?
        .map_err(|e| e.to_string())?;
    Ok(back[..n] == out[..])
}

/// The summary's entry: the 64-byte async p50 over the blocking event p50 (same run),
/// held to issue 22's bound (≤ 1.3×).
pub(super) fn targets(rows: &[Row]) -> Vec<super::Target> {
    let p50 = |t: &str| {
        rows.iter()
            .find(|r| r.bench == "rtt" && r.transport == t && r.size == 64)
            .and_then(|r| r.lat)
            .map(|l| l.p50 as f64)
    };
    let Some(value) = p50(TRANSPORT).zip(p50(BLOCKING)).map(|(a, b)| a / b) else {
        return Vec::new();
    };
    vec![super::Target {
        name: "event_async_rtt_64_over_blocking",
        value: Some(value),
        bound: Some(1.3),
        at_most: true,
        what: "async event round trip (tokio), 64 B, p50 / blocking event p50",
    }]
}
