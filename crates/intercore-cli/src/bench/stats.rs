//! Measurement plumbing: timed loops, CPU time of both sides, result rows (latency
//! statistics are the workload's [`Recorder`]).

pub use crate::workload::{Lat, Recorder};
use serde_json::{Map, Value, json};
use std::time::{Duration, Instant};

/// One measured row, as printed and as emitted in `--json`.
#[derive(Debug, Clone, Default)]
pub struct Row {
    /// Suite: `rtt`, `throughput`, `bulk`, `soak`, `idle`.
    pub bench: String,
    /// What carried the data (`intercore-poll`, `uds`, `spin-floor`, …).
    pub transport: String,
    /// Payload or buffer size in bytes.
    pub size: usize,
    /// Latency percentiles (round trips), when measured.
    pub lat: Option<Lat>,
    /// Messages per second (throughput).
    pub msgs_per_s: Option<f64>,
    /// GB/s (bulk).
    pub gbps: Option<f64>,
    /// Host CPU time per operation, ns.
    pub host_cpu_ns: Option<f64>,
    /// Peer CPU time per operation, ns.
    pub peer_cpu_ns: Option<f64>,
    /// Integrity errors seen.
    pub errors: u64,
    /// A free-form note.
    pub note: String,
}

impl Row {
    /// A row of suite `bench` over `transport` at `size` bytes, nothing measured yet.
    pub fn new(bench: &str, transport: &str, size: usize) -> Self {
        Row {
            bench: bench.into(),
            transport: transport.into(),
            size,
            ..Row::default()
        }
    }

    /// The row's JSON object: the latency fields only when measured, rates rounded
    /// (messages/s and CPU ns to units, GB/s to 3 decimals), `note` only when there is one.
    pub fn json(&self) -> Value {
        // As `{:.N}` prints it; whole numbers (N = 0) as integers.
        let round = |v: f64, digits: usize| -> Value {
            let s = format!("{v:.digits$}");
            if digits == 0 {
                s.parse::<i64>().map_or(Value::Null, Value::from)
            } else {
                s.parse::<f64>().map_or(Value::Null, Value::from)
            }
        };
        let mut o = Map::new();
        o.insert("bench".into(), json!(self.bench));
        o.insert("transport".into(), json!(self.transport));
        o.insert("size".into(), json!(self.size));
        if let Some(l) = self.lat {
            o.insert("samples".into(), json!(l.samples));
            o.insert("p50_ns".into(), json!(l.p50));
            o.insert("p99_ns".into(), json!(l.p99));
            o.insert("p999_ns".into(), json!(l.p999));
            o.insert("max_ns".into(), json!(l.max));
            o.insert("mean_ns".into(), json!(round(l.mean, 0)));
        }
        let mut opt = |k: &str, v: Option<f64>, digits| {
            if let Some(v) = v {
                o.insert(k.into(), json!(round(v, digits)));
            }
        };
        opt("msgs_per_s", self.msgs_per_s, 0);
        opt("gbps", self.gbps, 3);
        opt("host_cpu_ns_per_op", self.host_cpu_ns, 0);
        opt("peer_cpu_ns_per_op", self.peer_cpu_ns, 0);
        o.insert("errors".into(), json!(self.errors));
        if !self.note.is_empty() {
            o.insert("note".into(), json!(self.note));
        }
        Value::Object(o)
    }
}

/// CPU time of this process and of the peer process, taken at the start of a measurement.
pub struct CpuMeter {
    peer: Option<i32>,
    host0: Duration,
    peer0: Duration,
}

fn cpu(pid: i32) -> Duration {
    intercore_linux::process_cpu_time(pid).unwrap_or_default()
}

impl CpuMeter {
    pub fn start(peer: Option<u32>) -> Self {
        let peer = peer.map(|p| p as i32);
        Self {
            peer,
            host0: cpu(0),
            peer0: peer.map_or(Duration::ZERO, cpu),
        }
    }
    /// (host ns, peer ns) per operation for `ops` operations since `start`.
    pub fn per_op(&self, ops: u64) -> (f64, Option<f64>) {
        let ops = ops.max(1) as f64;
        let host = (cpu(0) - self.host0).as_nanos() as f64 / ops;
        let peer = self
            .peer
            .map(|p| (cpu(p).saturating_sub(self.peer0)).as_nanos() as f64 / ops);
        (host, peer)
    }
}

/// The shortest measurement window: CPU-time clocks of other processes advance at the
/// scheduler tick, so a window must span many ticks for per-operation CPU to mean anything.
pub const MIN_WINDOW: Duration = Duration::from_millis(300);

/// Runs `op` `warmup` times unmeasured, then times each call, at least `samples` times and
/// for at least [`MIN_WINDOW`]. Returns the histogram and the number of measured calls.
pub fn measure(
    warmup: usize,
    samples: usize,
    mut op: impl FnMut() -> Result<(), String>,
) -> Result<Recorder, String> {
    for _ in 0..warmup {
        op()?;
    }
    let mut r = Recorder::new();
    let start = Instant::now();
    let mut n = 0;
    while n < samples || start.elapsed() < MIN_WINDOW {
        let t = Instant::now();
        op()?;
        r.record(t.elapsed());
        n += 1;
    }
    Ok(r)
}

/// [`measure`] with a time limit, for runs whose operations may each take a scheduler time
/// slice (under background load): the warm-up stops after a quarter of `limit`, the
/// measurement once `samples` are taken and [`MIN_WINDOW`] has passed, or at `limit`
/// (with at least 100 samples).
pub fn measure_within(
    warmup: usize,
    samples: usize,
    limit: Duration,
    mut op: impl FnMut() -> Result<(), String>,
) -> Result<(Recorder, u64), String> {
    let start = Instant::now();
    let mut warm = 0u64;
    while (warm as usize) < warmup && start.elapsed() < limit / 4 {
        op()?;
        warm += 1;
    }
    let mut r = Recorder::new();
    let start = Instant::now();
    let mut n = 0;
    while (n < samples || start.elapsed() < MIN_WINDOW) && (n < 100 || start.elapsed() < limit) {
        let t = Instant::now();
        op()?;
        r.record(t.elapsed());
        n += 1;
    }
    Ok((r, warm))
}
