//! `intercore bench`: intercore measured side by side with the machine's floor and the IPC a
//! user would pick instead, in one run.

mod accesses;
mod accesses_vq;
mod floor;
#[cfg(feature = "iceoryx2")]
mod iox;
mod plot;
mod stats;
mod suites;

use crate::error::CliError;
pub use floor::{PEER, peer_main};
use intercore_cli::{BenchArgs, EXIT_FAILED, EXIT_OK};
use stats::Row;
use std::io::IsTerminal;
use std::time::Duration;

/// A one-line progress indicator on stderr, shown only on a terminal.
struct Progress {
    on: bool,
    total: usize,
    done: usize,
}

impl Progress {
    fn step(&mut self, what: &str) {
        if self.on {
            let w = 30;
            let filled = (self.done * w / self.total.max(1)).min(w);
            eprint!(
                "\r[{}{}] {:<60}",
                "#".repeat(filled),
                " ".repeat(w - filled),
                what
            );
        }
        self.done += 1;
    }
    fn finish(&self) {
        if self.on {
            eprint!("\r{:<100}\r", "");
        }
    }
}

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
struct Target {
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

fn targets(rows: &[Row]) -> Vec<Target> {
    let ratio = |a: Option<f64>, b: Option<f64>| a.zip(b).map(|(a, b)| a / b);
    let idle_remote = find(rows, "idle", "intercore-adaptive", 0)
        .and_then(|r| r.peer_cpu_ns)
        .map(|ns| ns / 200e6 * 100.0);
    #[cfg_attr(not(feature = "iceoryx2"), allow(unused_mut))]
    let mut ts = vec![
        Target {
            name: "poll_rtt_64_over_spin_floor",
            value: ratio(
                lat_of(rows, "intercore-poll", 64),
                lat_of(rows, "spin-floor", 0),
            ),
            bound: Some(2.0),
            at_most: true,
            what: "polling round trip, 64 B, p50 / spin floor p50",
        },
        Target {
            name: "event_rtt_64_over_eventfd_floor",
            value: ratio(
                lat_of(rows, "intercore-event", 64),
                lat_of(rows, "eventfd-floor", 0),
            ),
            bound: Some(1.3),
            at_most: true,
            what: "event round trip, 64 B, p50 / eventfd floor p50",
        },
        Target {
            name: "adaptive_rtt_64_over_poll",
            value: ratio(
                lat_of(rows, "intercore-adaptive", 64),
                lat_of(rows, "intercore-poll", 64),
            ),
            bound: Some(1.2),
            at_most: true,
            what: "adaptive round trip, 64 B, p50 / polling p50",
        },
        Target {
            name: "adaptive_rtt_64_load_over_best",
            value: over_best(rows, "rtt-load"),
            bound: Some(1.2),
            at_most: true,
            what: "under load, pinned: adaptive p50 / min(poll, event) p50",
        },
        Target {
            name: "adaptive_rtt_64_load_unpinned_over_best",
            value: over_best(rows, "rtt-load-unpinned"),
            bound: Some(1.2),
            at_most: true,
            what: "under load, unpinned: adaptive p50 / min(poll, event) p50",
        },
        Target {
            name: "adaptive_rtt_64_load_unpinned_p99_over_poll",
            value: ratio(
                find(rows, "rtt-load-unpinned", "intercore-adaptive", 64)
                    .and_then(|r| r.lat)
                    .map(|l| l.p99 as f64),
                find(rows, "rtt-load-unpinned", "intercore-poll", 64)
                    .and_then(|r| r.lat)
                    .map(|l| l.p99 as f64),
            ),
            bound: Some(2.0),
            at_most: true,
            what: "under load, unpinned: adaptive p99 / poll p99 (issue 24.5)",
        },
        Target {
            name: "adaptive_idle_remote_cpu_pct",
            value: idle_remote,
            bound: Some(5.0),
            at_most: true,
            what: "adaptive, remote CPU % while idle",
        },
        Target {
            name: "uds_rtt_64_over_adaptive",
            value: ratio(
                lat_of(rows, "uds", 64),
                lat_of(rows, "intercore-adaptive", 64),
            ),
            bound: Some(5.0),
            at_most: false,
            what: "Unix socket p50 / intercore adaptive p50, 64 B",
        },
        Target {
            name: "bulk_1mib_coherent_over_write_pass",
            value: ratio(
                find(rows, "bulk", "intercore-coherent", 1 << 20).and_then(|r| r.gbps),
                find(rows, "bulk", "write-pass", 1 << 20).and_then(|r| r.gbps),
            ),
            bound: Some(0.95),
            at_most: false,
            what: "bulk GB/s, 1 MiB, coherent / one write pass",
        },
        Target {
            name: "bulk_4kib_coherent_over_write_pass",
            value: ratio(
                find(rows, "bulk", "intercore-coherent", 4096).and_then(|r| r.gbps),
                find(rows, "bulk", "write-pass", 4096).and_then(|r| r.gbps),
            ),
            bound: Some(0.5),
            at_most: false,
            what: "bulk GB/s, 4 KiB, coherent / one write pass (issue 24.4)",
        },
        Target {
            name: "throughput_64_mmsgs_per_s",
            value: find(rows, "throughput", "intercore-batched", 64)
                .and_then(|r| r.msgs_per_s)
                .map(|v| v / 1e6),
            bound: Some(5.0),
            at_most: false,
            what: "batched one-way throughput, 64 B, million msgs/s",
        },
    ];
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

fn human(r: &Row) -> String {
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

/// Runs the suites: exit 0 when every row ran and verified its data, 1 otherwise.
pub fn main(a: &BenchArgs, json: bool) -> Result<u8, CliError> {
    let mut suites: Vec<&str> = if a.suites.is_empty() {
        vec!["rtt", "throughput", "bulk", "soak"]
    } else {
        a.suites.iter().map(|s| s.name()).collect()
    };
    // Counted, not timed: its own table, before any timing suite.
    if suites.contains(&"accesses") {
        suites.retain(|s| *s != "accesses");
        if let Err(e) = accesses::run(json) {
            eprintln!("intercore bench: accesses: {e}");
            return Ok(EXIT_FAILED);
        }
        if suites.is_empty() {
            return Ok(EXIT_OK);
        }
    }
    // A plot that could not be written is found out before minutes of measuring: the file
    // is created now (no links followed, no FIFO or device opened; an existing file is
    // replaced only if it is an earlier plot) and written after the run.
    let plot = match &a.plot {
        Some(path) => {
            let (f, created) = intercore_linux::file::create_output(
                path,
                if a.force {
                    intercore_linux::file::Existing::Replace
                } else {
                    intercore_linux::file::Existing::ReplaceIfStartsWith(plot::HEAD.as_bytes())
                },
            )
            .map_err(|e| {
                let force = match &e {
                    intercore_linux::file::FileError::Refused { why, .. }
                        if why.contains("did not write") =>
                    {
                        "; --force replaces it"
                    }
                    _ => "",
                };
                CliError::at(path, format!("cannot write the plot: {e}{force}"))
            })?;
            Some(PlotFile {
                path: path.clone(),
                file: Some(f),
                created,
            })
        }
        None => None,
    };
    let mut o = Opts {
        suites,
        json,
        plot,
        soak: a.duration,
        samples: a.samples as usize,
    };
    let cpus = intercore_linux::allowed_cpus();
    if cpus.len() >= 2 {
        let _ = intercore_linux::pin_to_cpu(0, cpus[0]);
    }
    let peer_cpu = cpus.get(1).copied();
    let sizes = [1usize, 64, 496];
    let has = |s: &str| o.suites.contains(&s);
    let rtt_steps = 12 + 2 * LOAD_ROUNDS + if cfg!(feature = "iceoryx2") { 3 } else { 0 };
    let steps = has("rtt") as usize * rtt_steps
        + has("throughput") as usize * 4
        + has("bulk") as usize * 8
        + has("soak") as usize;
    let mut p = Progress {
        on: std::io::stderr().is_terminal() && !o.json,
        total: steps,
        done: 0,
    };
    let mut rows: Vec<Row> = Vec::new();
    let mut failures = Vec::new();
    let mut push = |r: Result<Vec<Row>, String>, what: &str, rows: &mut Vec<Row>| match r {
        Ok(v) => rows.extend(v),
        Err(e) => failures.push(format!("{what}: {e}")),
    };
    let n = o.samples;
    let warm = (n / 10).max(100);
    if has("rtt") {
        p.step("rtt: spin floor");
        push(
            floor::spin(warm, n, peer_cpu).map(|r| vec![r]),
            "spin floor",
            &mut rows,
        );
        p.step("rtt: eventfd floor");
        push(
            floor::eventfd(warm, n / 4, peer_cpu).map(|r| vec![r]),
            "eventfd floor",
            &mut rows,
        );
        for &s in &sizes {
            p.step(&format!("rtt: unix socket {s} B"));
            push(
                floor::uds(s, warm, n / 4, peer_cpu).map(|r| vec![r]),
                "uds",
                &mut rows,
            );
            p.step(&format!("rtt: pipe {s} B"));
            push(
                floor::pipe(s, warm, n / 4, peer_cpu).map(|r| vec![r]),
                "pipe",
                &mut rows,
            );
        }
        #[cfg(feature = "iceoryx2")]
        for &s in &sizes {
            p.step(&format!("rtt: iceoryx2 {s} B"));
            push(
                iox::rtt(s, warm, n, peer_cpu).map(|r| vec![r]),
                "iceoryx2",
                &mut rows,
            );
        }
        for mode in suites::modes() {
            p.step(&format!("rtt: intercore {}", mode.0));
            let samples = if mode.0 == "event" { n / 4 } else { n };
            push(
                suites::rtt(mode, true, &sizes, warm, samples, &cpus, None),
                "intercore rtt",
                &mut rows,
            );
        }
        // The standard split ring (in-order rings declined), polling: what the in-order
        // rings save, in the same run.
        p.step("rtt: intercore poll, standard ring");
        push(
            suites::rtt(suites::modes()[0], false, &sizes, warm, n, &cpus, None),
            "intercore rtt (standard ring)",
            &mut rows,
        );
        // The same three modes again, 64 B only, with every CPU shared with a busy process:
        // host and firmware pinned to separate CPUs as above, then left to the scheduler.
        // Each mode runs LOAD_ROUNDS times, interleaved with the others (the machine's
        // state drifts: vCPU placement, the scheduler's choices), and its row is the round
        // with the median p50.
        match suites::Load::start(&cpus) {
            Ok(load) => {
                for pinned in [true, false] {
                    let how = if pinned { "pinned" } else { "unpinned" };
                    let mut rounds: Vec<Vec<Row>> = vec![Vec::new(); 3];
                    for _ in 0..LOAD_ROUNDS {
                        p.step(&format!("rtt: intercore under load, {how}"));
                        for (i, mode) in suites::modes().into_iter().enumerate() {
                            let samples = if mode.0 == "event" { n / 4 } else { n };
                            let r = suites::rtt(
                                mode,
                                true,
                                &[64],
                                warm / LOAD_ROUNDS,
                                samples / LOAD_ROUNDS,
                                &cpus,
                                Some((&load, pinned)),
                            );
                            match r {
                                Ok(v) => rounds[i].extend(v),
                                Err(e) => push(Err(e), "intercore rtt under load", &mut rows),
                            }
                        }
                    }
                    rows.extend(rounds.into_iter().filter_map(median_round));
                }
            }
            Err(e) => push(Err(e), "background load", &mut rows),
        }
    }
    if has("throughput") {
        for s in [64usize, 496] {
            p.step(&format!("throughput: intercore {s} B"));
            push(
                suites::throughput(s, Duration::from_secs(1), &cpus).map(|r| vec![r]),
                "intercore throughput",
                &mut rows,
            );
            p.step(&format!("throughput: unix socket {s} B"));
            push(
                floor::uds_throughput(s, Duration::from_secs(1), peer_cpu).map(|r| vec![r]),
                "uds throughput",
                &mut rows,
            );
        }
    }
    if has("bulk") {
        for size in [4096usize, 64 << 10, 1 << 20, 4 << 20] {
            for cache in [
                intercore_sim::CacheMode::Coherent,
                intercore_sim::CacheMode::parse("noncoherent:5:20").expect("valid"),
            ] {
                p.step(&format!("bulk: {} {} KiB", cache.name(), size >> 10));
                let bytes = if cache == intercore_sim::CacheMode::Coherent {
                    512 << 20
                } else {
                    128 << 20
                };
                let r = suites::bulk(size, cache, bytes, &cpus).map(|(a, b)| {
                    if cache == intercore_sim::CacheMode::Coherent {
                        vec![a, b]
                    } else {
                        vec![a]
                    }
                });
                push(r, "bulk", &mut rows);
            }
        }
    }
    // Soak rows are streamed as they are measured (a long run interrupted or stalled
    // still leaves every row it measured on stdout), so they are not printed again below.
    let mut streamed = 0;
    if has("soak") {
        p.step("soak");
        let on = p.on;
        let json = o.json;
        let r = suites::soak(
            o.soak,
            &cpus,
            |f| {
                if on {
                    eprint!("\r[soak {:>3.0}%]", f * 100.0);
                }
            },
            |row| {
                if json {
                    println!("{}", row.json());
                } else {
                    println!("{}", human(row));
                }
            },
        );
        streamed = r.as_ref().map_or(0, Vec::len);
        push(r, "soak", &mut rows);
    }
    p.finish();
    let ts = targets(&rows);
    let unstreamed = &rows[..rows.len() - streamed];
    if o.json {
        for r in unstreamed {
            println!("{}", r.json());
        }
        let fields: Vec<String> = ts
            .iter()
            .map(|t| {
                format!(
                    "\"{}\":{{\"value\":{},\"bound\":{},\"met\":{}}}",
                    t.name,
                    t.value.map_or("null".into(), |v| format!("{v:.3}")),
                    t.bound.map_or("null".into(), |b| b.to_string()),
                    t.met().map_or("null".into(), |m| m.to_string())
                )
            })
            .collect();
        println!(
            "{{\"summary\":{{{}}},\"cpus\":{},\"pinned\":{},\"failures\":{}}}",
            fields.join(","),
            cpus.len(),
            cpus.len() >= 2,
            failures.len()
        );
    } else {
        println!(
            "intercore bench — {} CPUs{}; all rows measured in this run\n",
            cpus.len(),
            if cpus.len() >= 2 {
                ", host and peer pinned to separate CPUs"
            } else {
                ""
            }
        );
        for r in unstreamed {
            println!("{}", human(r));
        }
        println!("\ntargets (ratios to baselines measured above):");
        for t in &ts {
            let v = t.value.map_or("n/a".into(), |v| format!("{v:.2}"));
            let Some(bound) = t.bound else {
                println!("  {:<55} {:>8}  (informational)", t.what, v);
                continue;
            };
            let verdict = match t.met() {
                Some(true) => "met",
                Some(false) => "MISSED",
                None => "not measured",
            };
            println!(
                "  {:<55} {:>8}  (target {} {})  {verdict}",
                t.what,
                v,
                if t.at_most { "≤" } else { "≥" },
                bound
            );
        }
    }
    for f in &failures {
        eprintln!("intercore bench: {f}");
    }
    if let Some(p) = &mut o.plot {
        let mut f = p.file.take().expect("written once");
        if let Err(e) = std::io::Write::write_all(&mut f, plot::svg(&rows).as_bytes()) {
            return Err(CliError::at(
                &p.path,
                format!("writing the plot {}: {e}", p.path.display()),
            ));
        }
        p.created = false;
    }
    let integrity = rows.iter().all(|r| r.errors == 0);
    Ok(if failures.is_empty() && integrity {
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

impl Drop for PlotFile {
    fn drop(&mut self) {
        if self.created {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

struct Opts {
    suites: Vec<&'static str>,
    json: bool,
    plot: Option<PlotFile>,
    soak: Duration,
    samples: usize,
}
