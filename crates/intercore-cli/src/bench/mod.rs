//! `intercore bench`: intercore measured side by side with the machine's floor and the IPC a
//! user would pick instead, in one run.

mod floor;
#[cfg(feature = "iceoryx2")]
mod iox;
mod plot;
mod rtt_async;
mod rtt_inline;
mod scale;
mod stats;
mod suites;

use crate::error::CliError;
use crate::out::Closed;
use crate::workload::Progress;
use crate::{BenchArgs, EXIT_FAILED, EXIT_OK};
pub use floor::{PEER, peer_main};
use serde::Serialize;
pub use stats::Row;
use std::collections::BTreeMap;
use std::time::Duration;

fn lat_of(rows: &[Row], transport: &str, size: usize) -> Option<f64> {
    p50_of(rows, "rtt", transport, size)
}

fn p50_of(rows: &[Row], bench: &str, transport: &str, size: usize) -> Option<f64> {
    find(rows, bench, transport, size)
        .and_then(|r| r.lat)
        .map(|l| l.p50 as f64)
}

/// Rounds of each mode under load.
const LOAD_ROUNDS: usize = 3;

/// The round with the median p50 (the others' p50s in its note), errors summed over all.
fn median_round(mut v: Vec<Row>) -> Option<Row> {
    v.sort_by_key(|r| r.lat.map_or(u64::MAX, |l| l.p50));
    let errors = v.iter().map(|r| r.errors).sum();
    let p50s: Vec<String> = v
        .iter()
        .map(|r| format!("{:.2}", r.lat.map_or(f64::NAN, |l| l.p50 as f64 / 1e3)))
        .collect();
    let n = v.len();
    let mut row = v.into_iter().nth(n / 2)?;
    row.errors = errors;
    row.note = format!(
        "median of {n} interleaved rounds (p50s {} µs); {}",
        p50s.join(", "),
        row.note
    );
    Some(row)
}

/// Adaptive p50 over the better of poll and event p50, 64 B, in suite `bench`.
fn over_best(rows: &[Row], bench: &str) -> Option<f64> {
    let best = p50_of(rows, bench, "intercore-poll", 64)
        .into_iter()
        .chain(p50_of(rows, bench, "intercore-event", 64))
        .reduce(f64::min);
    p50_of(rows, bench, "intercore-adaptive", 64)
        .zip(best)
        .map(|(a, b)| a / b)
}

fn find<'a>(rows: &'a [Row], bench: &str, transport: &str, size: usize) -> Option<&'a Row> {
    rows.iter()
        .find(|r| r.bench == bench && r.transport == transport && r.size == size)
}

/// A target: its name, the measured ratio, the bound (none: informational), and whether
/// lower is better.
pub struct Target {
    name: &'static str,
    value: Option<f64>,
    bound: Option<f64>,
    at_most: bool,
    what: &'static str,
}

impl Target {
    fn met(&self) -> Option<bool> {
        self.value.zip(self.bound).map(
            |(v, bound)| {
                if self.at_most { v <= bound } else { v >= bound }
            },
        )
    }
}

/// A target's definition: name, what it compares, bound, whether lower is better, and how
/// its value is computed from the rows.
type TargetDef = (
    &'static str,
    &'static str,
    Option<f64>,
    bool,
    fn(&[Row]) -> Option<f64>,
);

fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    a.zip(b).map(|(a, b)| a / b)
}

fn bulk_gbps(rows: &[Row], transport: &str) -> Option<f64> {
    find(rows, "bulk", transport, 1 << 20).and_then(|r| r.gbps)
}

/// The targets every run is held to.
const TARGETS: [TargetDef; 11] = [
    (
        "poll_rtt_64_over_spin_floor",
        "polling round trip, 64 B, p50 / spin floor p50",
        Some(2.0),
        true,
        |r| ratio(lat_of(r, "intercore-poll", 64), lat_of(r, "spin-floor", 0)),
    ),
    (
        "event_rtt_64_over_eventfd_floor",
        "event round trip, 64 B, p50 / eventfd floor p50",
        Some(1.3),
        true,
        |r| {
            ratio(
                lat_of(r, "intercore-event", 64),
                lat_of(r, "eventfd-floor", 0),
            )
        },
    ),
    (
        "adaptive_rtt_64_over_poll",
        "adaptive round trip, 64 B, p50 / polling p50",
        Some(1.2),
        true,
        |r| {
            ratio(
                lat_of(r, "intercore-adaptive", 64),
                lat_of(r, "intercore-poll", 64),
            )
        },
    ),
    (
        "adaptive_rtt_64_load_over_best",
        "under load, pinned: adaptive p50 / min(poll, event) p50",
        Some(1.2),
        true,
        |r| over_best(r, "rtt-load"),
    ),
    (
        "adaptive_rtt_64_load_unpinned_over_best",
        "under load, unpinned: adaptive p50 / min(poll, event) p50",
        Some(1.2),
        true,
        |r| over_best(r, "rtt-load-unpinned"),
    ),
    (
        "adaptive_rtt_64_load_unpinned_p99_over_poll",
        "under load, unpinned: adaptive p99 / poll p99 (issue 24.5)",
        Some(2.0),
        true,
        |r| {
            let p99 = |imp| {
                find(r, "rtt-load-unpinned", imp, 64)
                    .and_then(|r| r.lat)
                    .map(|l| l.p99 as f64)
            };
            ratio(p99("intercore-adaptive"), p99("intercore-poll"))
        },
    ),
    (
        "adaptive_idle_remote_cpu_pct",
        "adaptive, remote CPU % while idle",
        Some(5.0),
        true,
        |r| {
            find(r, "idle", "intercore-adaptive", 0)
                .and_then(|r| r.peer_cpu_ns)
                .map(|ns| ns / 200e6 * 100.0)
        },
    ),
    (
        "uds_rtt_64_over_adaptive",
        "Unix socket p50 / intercore adaptive p50, 64 B",
        Some(5.0),
        false,
        |r| ratio(lat_of(r, "uds", 64), lat_of(r, "intercore-adaptive", 64)),
    ),
    (
        "bulk_1mib_coherent_over_write_pass",
        "bulk GB/s, 1 MiB, coherent / one write pass",
        Some(0.95),
        false,
        |r| {
            ratio(
                bulk_gbps(r, "intercore-coherent"),
                bulk_gbps(r, "write-pass"),
            )
        },
    ),
    (
        "bulk_4kib_coherent_over_write_pass",
        "bulk GB/s, 4 KiB, coherent / one write pass (issue 24.4)",
        Some(0.5),
        false,
        |r| {
            let gbps = |imp| find(r, "bulk", imp, 4096).and_then(|r| r.gbps);
            ratio(gbps("intercore-coherent"), gbps("write-pass"))
        },
    ),
    (
        "throughput_64_mmsgs_per_s",
        "batched one-way throughput, 64 B, million msgs/s",
        Some(5.0),
        false,
        |r| {
            find(r, "throughput", "intercore-batched", 64)
                .and_then(|r| r.msgs_per_s)
                .map(|v| v / 1e6)
        },
    ),
];

/// The targets, computed from the rows measured.
pub fn targets(rows: &[Row]) -> Vec<Target> {
    #[cfg_attr(not(feature = "iceoryx2"), allow(unused_mut))]
    let mut ts: Vec<Target> = TARGETS
        .iter()
        .map(|&(name, what, bound, at_most, value)| Target {
            name,
            value: value(rows),
            bound,
            at_most,
            what,
        })
        .collect();
    ts.extend(rtt_inline::targets(rows));
    ts.extend(rtt_async::targets(rows));
    ts.extend(scale::targets(rows));
    #[cfg(feature = "iceoryx2")]
    if let Some(iox) = lat_of(rows, "iceoryx2", 64) {
        ts.push(Target {
            name: "iceoryx2_rtt_64_over_poll",
            value: ratio(Some(iox), lat_of(rows, "intercore-poll", 64)),
            bound: None,
            at_most: true,
            what: "iceoryx2 p50 / intercore poll p50, 64 B",
        });
    }
    ts
}

/// A row as one line of the text table.
pub fn human(r: &Row) -> String {
    let mut s = format!(
        "{:<11} {:<22} {:>8}",
        r.bench,
        r.transport,
        if r.size > 0 {
            r.size.to_string()
        } else {
            "-".into()
        }
    );
    if let Some(l) = r.lat {
        s += &format!(
            "  p50 {:>9.2} µs  p99 {:>9.2} µs  p99.9 {:>9.2} µs  max {:>9.2} µs  n={}",
            l.p50 as f64 / 1e3,
            l.p99 as f64 / 1e3,
            l.p999 as f64 / 1e3,
            l.max as f64 / 1e3,
            l.samples
        );
    }
    if let Some(v) = r.msgs_per_s {
        s += &format!("  {:>8.3} M msgs/s", v / 1e6);
    }
    if let Some(v) = r.gbps {
        s += &format!("  {v:>7.3} GB/s");
    }
    if let (Some(h), Some(p)) = (r.host_cpu_ns, r.peer_cpu_ns) {
        if r.bench != "idle" {
            s += &format!("  cpu/op host {:.0} ns peer {:.0} ns", h, p);
        }
    }
    if r.errors > 0 {
        s += &format!("  ERRORS {}", r.errors);
    }
    if !r.note.is_empty()
        && (r.bench == "idle"
            || r.bench == "soak"
            || r.bench.starts_with("rtt-load")
            || r.transport == "iceoryx2")
    {
        s += &format!("  {}", r.note);
    }
    s
}

/// The JSON line ending `bench --json`: each target's value, bound and verdict.
#[derive(Serialize)]
pub struct Summary {
    /// Target name → its value (3 decimals), bound and whether it was met (null: not
    /// measured, or informational).
    pub summary: BTreeMap<&'static str, TargetJson>,
    /// CPUs this process may run on.
    pub cpus: usize,
    /// Whether host and peer were pinned to separate CPUs.
    pub pinned: bool,
    /// Suites or rows that failed to run.
    pub failures: usize,
}

/// One target in [`Summary`].
#[derive(Serialize)]
pub struct TargetJson {
    /// The measured ratio.
    pub value: Option<f64>,
    /// The bound.
    pub bound: Option<f64>,
    /// Whether the bound was met.
    pub met: Option<bool>,
}

impl Summary {
    fn new(ts: &[Target], cpus: usize, failures: usize) -> Self {
        let summary = ts
            .iter()
            .map(|t| {
                let value = t.value.map(|v| (v * 1e3).round() / 1e3);
                let (bound, met) = (t.bound, t.met());
                (t.name, TargetJson { value, bound, met })
            })
            .collect();
        Summary {
            summary,
            cpus,
            pinned: cpus >= 2,
            failures,
        }
    }
}

/// The text of the targets: each ratio against its bound.
fn targets_text(ts: &[Target]) -> String {
    let mut s = String::from("\ntargets (ratios to baselines measured above):");
    for t in ts {
        let v = t.value.map_or("n/a".into(), |v| format!("{v:.2}"));
        let Some(bound) = t.bound else {
            s += &format!("\n  {:<55} {:>8}  (informational)", t.what, v);
            continue;
        };
        let verdict = match t.met() {
            Some(true) => "met",
            Some(false) => "MISSED",
            None => "not measured",
        };
        let op = if t.at_most { "≤" } else { "≥" };
        s += &format!(
            "\n  {:<55} {:>8}  (target {op} {bound})  {verdict}",
            t.what, v
        );
    }
    s
}

/// A bench run in progress: every row is printed the moment it is measured (so
/// `bench --json | head -1` ends at once: the first write after the reader has gone
/// returns [`Closed`]), and kept for the targets and the plot.
struct Run {
    json: bool,
    samples: usize,
    warm: usize,
    cpus: Vec<usize>,
    progress: Progress,
    rows: Vec<Row>,
    failures: Vec<String>,
}

impl Run {
    fn emit(&self, r: &Row) -> Result<(), Closed> {
        if self.json {
            crate::out::json(&r.json())
        } else {
            outln!("{}", human(r))
        }
    }

    /// Prints and keeps `r`'s rows, or notes its failure as `what`.
    fn push(&mut self, r: Result<Vec<Row>, String>, what: &str) -> Result<(), Closed> {
        match r {
            Ok(v) => {
                for row in v {
                    self.emit(&row)?;
                    self.rows.push(row);
                }
            }
            Err(e) => self.failures.push(format!("{what}: {e}")),
        }
        Ok(())
    }

    fn peer_cpu(&self) -> Option<usize> {
        self.cpus.get(1).copied()
    }

    /// The spin floor, then the inline-slot rings (alone and through the buses) against
    /// it: the rows of issue 24's inline targets, the start of `rtt` and the whole of
    /// `rtt-inline`.
    fn rtt_inline(&mut self) -> Result<(), Closed> {
        let (n, warm, cpu) = (self.samples, self.warm, self.peer_cpu());
        self.progress.step("rtt: spin floor");
        self.push(floor::spin(warm, n, cpu).map(|r| vec![r]), "spin floor")?;
        self.progress.step("rtt: inline-slot ring");
        self.push(rtt_inline::rows(warm, n, cpu), "inline-slot ring")?;
        self.progress
            .step("rtt: inline-slot rings through the buses");
        let r = rtt_inline::bus_rows(warm, n, &self.cpus);
        self.push(r, "inline-slot rings (buses)")
    }

    /// The floors and the other IPC, then intercore in each wait mode.
    fn rtt(&mut self, sizes: &[usize]) -> Result<(), Closed> {
        self.rtt_inline()?;
        let (n, warm, cpu) = (self.samples, self.warm, self.peer_cpu());
        self.progress.step("rtt: eventfd floor");
        self.push(
            floor::eventfd(warm, n / 4, cpu).map(|r| vec![r]),
            "eventfd floor",
        )?;
        for &s in sizes {
            self.progress.step(&format!("rtt: unix socket {s} B"));
            self.push(floor::uds(s, warm, n / 4, cpu).map(|r| vec![r]), "uds")?;
            self.progress.step(&format!("rtt: pipe {s} B"));
            self.push(floor::pipe(s, warm, n / 4, cpu).map(|r| vec![r]), "pipe")?;
        }
        #[cfg(feature = "iceoryx2")]
        for &s in sizes {
            self.progress.step(&format!("rtt: iceoryx2 {s} B"));
            self.push(iox::rtt(s, warm, n, cpu).map(|r| vec![r]), "iceoryx2")?;
        }
        for mode in suites::modes() {
            self.progress.step(&format!("rtt: intercore {}", mode.0));
            let samples = if mode.0 == "event" { n / 4 } else { n };
            let r = suites::rtt(mode, true, sizes, warm, samples, &self.cpus, None);
            self.push(r, "intercore rtt")?;
        }
        self.progress.step("rtt: intercore event, async (tokio)");
        self.push(
            rtt_async::rows(sizes, warm, n / 4, &self.cpus),
            "intercore rtt (async)",
        )?;
        // The standard split ring (in-order rings declined), polling: what the in-order
        // rings save, in the same run.
        self.progress.step("rtt: intercore poll, standard ring");
        let r = suites::rtt(suites::modes()[0], false, sizes, warm, n, &self.cpus, None);
        self.push(r, "intercore rtt (standard ring)")
    }

    /// The three modes again, 64 B only, with every CPU shared with a busy process: host
    /// and firmware pinned to separate CPUs as above, then left to the scheduler. Each
    /// mode runs LOAD_ROUNDS times, interleaved with the others (the machine's state
    /// drifts: vCPU placement, the scheduler's choices), and its row is the round with the
    /// median p50.
    fn rtt_load(&mut self) -> Result<(), Closed> {
        let load = match suites::Load::start(&self.cpus) {
            Ok(l) => l,
            Err(e) => return self.push(Err(e), "background load"),
        };
        let (n, warm) = (self.samples, self.warm);
        for pinned in [true, false] {
            let how = if pinned { "pinned" } else { "unpinned" };
            let mut rounds: Vec<Vec<Row>> = vec![Vec::new(); 3];
            for _ in 0..LOAD_ROUNDS {
                self.progress
                    .step(&format!("rtt: intercore under load, {how}"));
                for (i, mode) in suites::modes().into_iter().enumerate() {
                    let samples = if mode.0 == "event" { n / 4 } else { n };
                    let r = suites::rtt(
                        mode,
                        true,
                        &[64],
                        warm / LOAD_ROUNDS,
                        samples / LOAD_ROUNDS,
                        &self.cpus,
                        Some((&load, pinned)),
                    );
                    match r {
                        Ok(v) => rounds[i].extend(v),
                        Err(e) => self.push(Err(e), "intercore rtt under load")?,
                    }
                }
            }
            let medians = rounds.into_iter().filter_map(median_round).collect();
            self.push(Ok(medians), "intercore rtt under load")?;
        }
        Ok(())
    }

    fn throughput(&mut self) -> Result<(), Closed> {
        let one = Duration::from_secs(1);
        for s in [64usize, 496] {
            self.progress.step(&format!("throughput: intercore {s} B"));
            let r = suites::throughput(s, one, &self.cpus).map(|r| vec![r]);
            self.push(r, "intercore throughput")?;
            self.progress
                .step(&format!("throughput: unix socket {s} B"));
            let r = floor::uds_throughput(s, one, self.peer_cpu()).map(|r| vec![r]);
            self.push(r, "uds throughput")?;
        }
        Ok(())
    }

    fn bulk(&mut self) -> Result<(), Closed> {
        use intercore_sim::CacheMode;
        for size in [4096usize, 64 << 10, 1 << 20, 4 << 20] {
            for cache in [
                CacheMode::Coherent,
                CacheMode::parse("noncoherent:5:20").expect("valid"),
            ] {
                let coherent = cache == CacheMode::Coherent;
                self.progress
                    .step(&format!("bulk: {} {} KiB", cache.name(), size >> 10));
                let bytes = if coherent { 512 << 20 } else { 128 << 20 };
                // Coherent: the best of five handoff runs against the best of six write
                // passes, alternating (a preemption in one short run says nothing about
                // the handoff). The non-coherent model is slow and has no baseline: once.
                let rounds = if coherent { 5 } else { 1 };
                // The write-pass baseline once per size (with the coherent run).
                let r = suites::bulk(size, cache, bytes, rounds, &self.cpus)
                    .map(|(a, b)| if coherent { vec![a, b] } else { vec![a] });
                self.push(r, "bulk")?;
            }
        }
        Ok(())
    }

    /// The soak: its rows are printed as they are measured, and it stops at the first
    /// row it cannot print.
    fn soak(&mut self, dur: Duration) -> Result<(), Closed> {
        self.progress.step("soak");
        let on = self.progress.on();
        let mut closed = false;
        let json = self.json;
        let r = suites::soak(
            dur,
            &self.cpus,
            |f| {
                if on {
                    diag!("\r[soak {:>3.0}%]", f * 100.0);
                }
            },
            |row| {
                let r = if json {
                    crate::out::json(&row.json())
                } else {
                    outln!("{}", human(row))
                };
                closed |= r.is_err();
                !closed
            },
        );
        if closed {
            return Err(Closed);
        }
        match r {
            Ok(v) => self.rows.extend(v),
            Err(e) => self.failures.push(format!("soak: {e}")),
        }
        Ok(())
    }
}

/// The suites asked for (default: all but the soak's length is --duration).
fn suite_names(a: &BenchArgs) -> Vec<&'static str> {
    if a.suites.is_empty() {
        vec!["rtt", "throughput", "bulk", "soak"]
    } else {
        a.suites.iter().map(|s| s.name()).collect()
    }
}

/// A plot that could not be written is found out before minutes of measuring: the file
/// is created now (no links followed, no FIFO or device opened; an existing file is
/// replaced only if it is an earlier plot) and written after the run.
fn open_plot(a: &BenchArgs) -> Result<Option<PlotFile>, CliError> {
    use intercore_linux::file::{Existing, FileError};
    let Some(path) = &a.plot else {
        return Ok(None);
    };
    let existing = if a.force {
        Existing::Replace
    } else {
        Existing::ReplaceIfStartsWith(plot::HEAD.as_bytes())
    };
    let (f, created) = intercore_linux::file::create_output(path, existing).map_err(|e| {
        let force = match &e {
            FileError::Refused { why, .. } if why.contains("did not write") => {
                "; --force replaces it"
            }
            _ => "",
        };
        CliError::at(path, format!("cannot write the plot: {e}{force}"))
    })?;
    Ok(Some(PlotFile {
        path: path.clone(),
        file: Some(f),
        created,
    }))
}

/// Runs the suites, printing each row as it is measured, then the targets: exit 0 when
/// every row ran and verified its data, 1 otherwise.
pub fn main(a: &BenchArgs, json: bool) -> Result<u8, CliError> {
    let suites = suite_names(a);
    let has = |s: &str| suites.contains(&s);
    let mut plot = open_plot(a)?;
    let cpus = intercore_linux::allowed_cpus();
    if cpus.len() >= 2 {
        let _ = intercore_linux::pin_to_cpu(0, cpus[0]);
    }
    let rtt_steps = 13 + 2 * LOAD_ROUNDS + if cfg!(feature = "iceoryx2") { 3 } else { 0 };
    let steps = has("rtt") as usize * rtt_steps
        + (has("rtt-inline") && !has("rtt")) as usize * 3
        + has("throughput") as usize * 4
        + has("bulk") as usize * 8
        + has("soak") as usize
        + has("scale") as usize * scale::STEPS;
    let samples = a.samples as usize;
    let mut run = Run {
        json,
        samples,
        warm: (samples / 10).max(100),
        cpus,
        progress: Progress::new(json, steps),
        rows: Vec::new(),
        failures: Vec::new(),
    };
    if !json {
        let pinned = if run.cpus.len() >= 2 {
            ", host and peer pinned to separate CPUs"
        } else {
            ""
        };
        let n = run.cpus.len();
        outln!("intercore bench — {n} CPUs{pinned}; all rows measured in this run\n")?;
    }
    if has("rtt") {
        run.rtt(&[1, 64, 496])?;
        run.rtt_load()?;
    } else if has("rtt-inline") {
        run.rtt_inline()?;
    }
    if has("throughput") {
        run.throughput()?;
    }
    if has("bulk") {
        run.bulk()?;
    }
    if has("soak") {
        run.soak(a.duration)?;
    }
    if has("scale") {
        let peer = run.peer_cpu();
        for r in scale::rows(peer, |s| run.progress.step(s)) {
            run.push(r, "scale")?;
        }
    }
    run.progress.clear();
    let ts = targets(&run.rows);
    if json {
        crate::out::json(&Summary::new(&ts, run.cpus.len(), run.failures.len()))?;
    } else {
        outln!("{}", targets_text(&ts))?;
    }
    for f in &run.failures {
        diagln!("intercore bench: {f}");
    }
    if let Some(p) = &mut plot {
        p.write(&plot::svg(&run.rows))?;
    }
    let integrity = run.rows.iter().all(|r| r.errors == 0);
    Ok(if run.failures.is_empty() && integrity {
        EXIT_OK
    } else {
        EXIT_FAILED
    })
}

/// The plot's file, created before the run. A file created for a run that ends without
/// writing it is removed again.
struct PlotFile {
    path: std::path::PathBuf,
    file: Option<std::fs::File>,
    created: bool,
}

impl PlotFile {
    /// Writes the plot (once); the file stays.
    fn write(&mut self, svg: &str) -> Result<(), CliError> {
        let Some(mut f) = self.file.take() else {
            return Ok(());
        };
        std::io::Write::write_all(&mut f, svg.as_bytes()).map_err(|e| {
            let p = &self.path;
            CliError::at(p, format!("writing the plot {}: {e}", p.display()))
        })?;
        self.created = false;
        Ok(())
    }
}

impl Drop for PlotFile {
    fn drop(&mut self) {
        if self.created {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}
