//! Measurement plumbing: latency histograms, CPU time of both sides, result rows.

use hdrhistogram::Histogram;
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

/// Latency percentiles of a set of samples.
#[derive(Debug, Clone, Copy, Default)]
pub struct Lat {
    pub samples: u64,
    pub p50: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
    pub mean: f64,
}

impl Row {
    pub fn new(bench: &str, transport: &str, size: usize) -> Self {
        Row {
            bench: bench.into(),
            transport: transport.into(),
            size,
            ..Row::default()
        }
    }

    pub fn json(&self) -> String {
        let mut f = vec![
            format!("\"bench\":\"{}\"", self.bench),
            format!("\"transport\":\"{}\"", self.transport),
            format!("\"size\":{}", self.size),
        ];
        if let Some(l) = self.lat {
            f.push(format!(
                "\"samples\":{},\"p50_ns\":{},\"p99_ns\":{},\"p999_ns\":{},\"max_ns\":{},\"mean_ns\":{:.0}",
                l.samples, l.p50, l.p99, l.p999, l.max, l.mean
            ));
        }
        if let Some(v) = self.msgs_per_s {
            f.push(format!("\"msgs_per_s\":{v:.0}"));
        }
        if let Some(v) = self.gbps {
            f.push(format!("\"gbps\":{v:.3}"));
        }
        if let Some(v) = self.host_cpu_ns {
            f.push(format!("\"host_cpu_ns_per_op\":{v:.0}"));
        }
        if let Some(v) = self.peer_cpu_ns {
            f.push(format!("\"peer_cpu_ns_per_op\":{v:.0}"));
        }
        f.push(format!("\"errors\":{}", self.errors));
        if !self.note.is_empty() {
            f.push(format!("\"note\":\"{}\"", self.note.replace('"', "'")));
        }
        format!("{{{}}}", f.join(","))
    }
}

/// Records latencies in nanoseconds, 1 ns to 10 s, 3 significant digits.
pub struct Recorder {
    h: Histogram<u64>,
}

impl Recorder {
    pub fn new() -> Self {
        Self {
            h: Histogram::new_with_bounds(1, 10_000_000_000, 3).expect("valid bounds"),
        }
    }
    pub fn record(&mut self, d: Duration) {
        let _ = self.h.record((d.as_nanos() as u64).max(1));
    }
    pub fn lat(&self) -> Lat {
        Lat {
            samples: self.h.len(),
            p50: self.h.value_at_quantile(0.50),
            p99: self.h.value_at_quantile(0.99),
            p999: self.h.value_at_quantile(0.999),
            max: self.h.max(),
            mean: self.h.mean(),
        }
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

impl Recorder {
    /// Number of samples recorded.
    pub fn count(&self) -> u64 {
        self.h.len()
    }
}
