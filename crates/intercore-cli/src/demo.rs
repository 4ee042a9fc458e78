//! `intercore demo`: the simulated SoC end to end.

use crate::bulk::{COMPLETION_TIMEOUT, Checker, Outcome, alloc_all, input_len};
use crate::error::CliError;
use intercore::WaitMode;
use intercore::rpmsg::Channel;
use intercore::rpmsg::HostConfig;
use intercore::rpmsg::RPMSG_ADDR_ANY;
use intercore_board::CacheMaintenance;
use intercore_cli::{DemoArgs, EXIT_FAILED, EXIT_OK, SocKind, wait_mode_name};
use intercore_sim::qemu::QemuCore;
use intercore_sim::{RemoteProgram, SimConfig, Soc};
use std::io::IsTerminal;
use std::time::{Duration, Instant};

mod qemu;

type Opts = DemoArgs;

/// Messages the demo exchanges on the simulated SoC unless told otherwise.
const SIM_MESSAGES: u64 = 100_000;
/// MiB through the data plane on the simulated SoC unless told otherwise.
const SIM_BULK_MIB: u64 = 256;

/// A one-line progress indicator on stderr, only when stderr is a terminal (and not under
/// `--json`); redrawn at most every 100 ms.
struct Progress {
    on: bool,
    last: Instant,
}

impl Progress {
    fn new(json: bool) -> Self {
        let now = Instant::now();
        Self {
            on: !json && std::io::stderr().is_terminal(),
            // The first call draws at once.
            last: now.checked_sub(Duration::from_millis(100)).unwrap_or(now),
        }
    }
    fn show(&mut self, what: impl FnOnce() -> String) {
        if self.on && self.last.elapsed() >= Duration::from_millis(100) {
            self.last = Instant::now();
            eprint!("\r{:<72}", what());
        }
    }
    fn clear(&self) {
        if self.on {
            eprint!("\r{:<72}\r", "");
        }
    }
}

/// A small deterministic generator (xorshift64*), so a failing run can be repeated by seed.
pub struct Rng(u64);
impl Rng {
    /// Seeds the generator (0 is replaced by a fixed odd constant).
    pub fn new(seed: u64) -> Self {
        Self(if seed == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            seed
        })
    }
    /// Next value.
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

fn fill(buf: &mut [u8], seq: u64) {
    let mut r = Rng::new(seq.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    for chunk in buf.chunks_mut(8) {
        let v = r.next().to_le_bytes();
        chunk.copy_from_slice(&v[..chunk.len()]);
    }
}

/// Runs the demo: exit 0 when every message and buffer was verified and the remote
/// exited cleanly, 1 otherwise.
pub fn main(o: &DemoArgs, json: bool) -> Result<u8, CliError> {
    let r = match o.target.soc {
        Some(SocKind::QemuR5f) => qemu::run(o, QemuCore::R5f, json),
        Some(SocKind::QemuM4f) => qemu::run(o, QemuCore::M4f, json),
        Some(SocKind::Sim) | None => {
            let cfg = sim_config(o)?;
            run(o, &cfg, json)
        }
    };
    match r {
        Ok(true) => Ok(EXIT_OK),
        Ok(false) => Ok(EXIT_FAILED),
        Err(e) => Err(CliError::failed(e)),
    }
}

/// How a wait mode waits, in words.
fn wait_words(w: WaitMode) -> String {
    match w {
        WaitMode::Poll => "spins on the ring, never sleeps".into(),
        WaitMode::Event => "sleeps on the doorbell at once".into(),
        WaitMode::Adaptive(d) => format!(
            "spins up to {} µs, then sleeps on the doorbell",
            d.as_micros()
        ),
    }
}

/// `256 MiB`, or `256.5 MiB` when not whole.
fn mib(bytes: u64) -> String {
    if bytes % (1 << 20) == 0 {
        format!("{} MiB", bytes >> 20)
    } else {
        format!("{:.1} MiB", bytes as f64 / (1 << 20) as f64)
    }
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

/// The simulated SoC the options describe: the defaults, a `--layout`, or a sim board file.
fn sim_config(o: &Opts) -> Result<SimConfig, CliError> {
    let mut cfg = SimConfig {
        remote_wait: o.remote_wait,
        cache: o.cache,
        layout: o.target.layout.unwrap_or_default().sim(),
        ..SimConfig::new(crate::firmwares::offload())
    };
    let Some(path) = &o.target.board else {
        return Ok(cfg);
    };
    let board =
        intercore_board::Board::from_file(path).map_err(|e| CliError::at(path, e.to_string()))?;
    let bcfg = board
        .sim_config(&crate::firmwares::sim())
        .map_err(|e| CliError::at(path, format!("{}: {e}", path.display())))?;
    let Some(bcfg) = bcfg else {
        return Err(CliError::at(
            path,
            format!(
                "{}: demo runs on the simulated SoC, and this board's transport is not kind = \"sim\" (use `intercore up --board` for a QEMU or real board)",
                path.display()
            ),
        ));
    };
    let fw = &bcfg.firmware;
    if !fw.serves_data_plane() && o.bulk_mib.unwrap_or(SIM_BULK_MIB) > 0 {
        return Err(CliError::at(
            path,
            format!(
                "{}: firmware {:?} has no data plane; the bulk stage needs \"offload\" (or --bulk-mib 0)",
                path.display(),
                fw.name()
            ),
        ));
    }
    // A coherent board leaves `--cache` as given; the wait of the remote stays the option's.
    let cache = match board.cache.mode {
        CacheMaintenance::SimNoncoherent(_) => bcfg.cache,
        _ => cfg.cache,
    };
    cfg = SimConfig {
        remote_wait: cfg.remote_wait,
        cache,
        ..bcfg
    };
    Ok(cfg)
}

fn run(o: &Opts, cfg: &SimConfig, json: bool) -> Result<bool, String> {
    let program = RemoteProgram::current_exe(crate::SIM_REMOTE).map_err(|e| e.to_string())?;
    let soc = Soc::start(cfg, &program).map_err(|e| format!("starting the simulated SoC: {e}"))?;
    let remote_pid = soc.remote_pid();
    let mut bus = soc
        .host_bus(HostConfig {
            wait: o.wait,
            ..HostConfig::default()
        })
        .map_err(|e| format!("host bus: {e}"))?;
    let service = intercore_fw_echo::SERVICE;
    let remote = bus
        .find_service(service, Some(Duration::from_secs(5)))
        .map_err(|e| format!("waiting for {service:?}: {e}"))?;
    let ep = bus
        .create_endpoint("intercore-demo", None)
        .map_err(|e| e.to_string())?;
    if !json {
        println!(
            "intercore demo: simulated SoC up ({} layout) — remote firmware 'offload' is pid {remote_pid} (host pid {}), service {service:?} at address {remote}, our endpoint {ep}",
            cfg.layout.name(),
            std::process::id()
        );
    }
    let max = bus.max_payload();
    let mut rng = Rng::new(o.seed);
    let mut out = vec![0u8; max];
    let mut back = vec![0u8; max];
    let mut rtts = Vec::with_capacity(o.messages.unwrap_or(SIM_MESSAGES) as usize);
    let mut errors = 0u64;
    let mut first_error = None;
    let mut bytes = 0u64;
    let t_all = Instant::now();
    let mut progress = Progress::new(json);
    for seq in 0..o.messages.unwrap_or(SIM_MESSAGES) {
        if seq % 1024 == 0 {
            progress.show(|| {
                format!(
                    "messages: {seq} of {} verified",
                    o.messages.unwrap_or(SIM_MESSAGES)
                )
            });
        }
        let len = 1 + (rng.next() % max as u64) as usize;
        fill(&mut out[..len], seq ^ o.seed);
        let t0 = Instant::now();
        let r = bus
            .send_raw(ep, remote, &out[..len], Some(Duration::from_secs(1)))
            .and_then(|_| {
                bus.recv_from(
                    &Channel::new(ep, RPMSG_ADDR_ANY),
                    &mut back,
                    Some(Duration::from_secs(1)),
                )
            });
        let rtt = t0.elapsed();
        match r {
            Ok((src, n)) if src == Some(remote) && n == len && back[..n] == out[..len] => {
                rtts.push(rtt.as_nanos() as u64);
                bytes += 2 * len as u64;
            }
            Ok((src, n)) => {
                errors += 1;
                first_error.get_or_insert(format!(
                    "message {seq}: got {n} bytes from {}, sent {len} to {remote}, content differs",
                    src.unwrap_or_default()
                ));
            }
            Err(e) => {
                errors += 1;
                first_error.get_or_insert(format!("message {seq}: {e}"));
                if bus.broken().is_some() || matches!(e, intercore::Error::Timeout) {
                    break;
                }
            }
        }
    }
    let elapsed = t_all.elapsed();
    let message_sleeps = bus.stats().sleeps;
    progress.clear();
    if !json {
        println!(
            "messages: {} verified in {:.2} s, {errors} errors",
            rtts.len(),
            elapsed.as_secs_f64()
        );
    }
    let bulk = if o.bulk_mib.unwrap_or(SIM_BULK_MIB) > 0 && bus.broken().is_none() {
        Some(bulk_stage(&soc, &mut bus, o, json)?)
    } else {
        None
    };
    let stats = bus.stats();
    drop(bus);
    let exit = soc
        .shutdown(Duration::from_secs(1))
        .map_err(|e| e.to_string())?;
    rtts.sort_unstable();
    let (p50, p99, p999, max_rtt) = (
        percentile(&rtts, 0.50),
        percentile(&rtts, 0.99),
        percentile(&rtts, 0.999),
        rtts.last().copied().unwrap_or(0),
    );
    let mean = if rtts.is_empty() {
        0
    } else {
        rtts.iter().sum::<u64>() / rtts.len() as u64
    };
    let ok_msgs = rtts.len() as u64;
    let b = bulk.clone().unwrap_or_default();
    if !json {
        println!(
            "round trip: p50 {:.2} µs, p99 {:.2} µs, p99.9 {:.2} µs, max {:.2} µs, mean {:.2} µs ({} MB both ways)",
            p50 as f64 / 1e3,
            p99 as f64 / 1e3,
            p999 as f64 / 1e3,
            max_rtt as f64 / 1e3,
            mean as f64 / 1e3,
            bytes / 1_000_000
        );
        if bulk.is_some() {
            println!(
                "bulk ({} caches): {} in {} buffers of 1 MiB (each holds 1 MiB - 64 B of data, its last cache line the CRC), CRC32C by the remote in place: {:.2} GB/s, {} corrupted, {} sanitizer reports, {} IOMMU faults",
                cfg.cache.name(),
                mib(b.bytes),
                b.buffers,
                b.gbps,
                b.corrupted,
                b.reports,
                b.faults
            );
        }
        println!(
            "host: {} doorbells rung, {} sleeps; remote exited with {exit}",
            stats.kicks, stats.sleeps
        );
        let why = |w: WaitMode, flag: &str| {
            if w == WaitMode::default() {
                "the default".to_string()
            } else {
                format!("chosen with {flag}")
            }
        };
        println!(
            "wait mode: host {} ({}; {}), remote {} ({}; {}); the host slept {} times in {} round trips",
            wait_mode_name(o.wait),
            wait_words(o.wait),
            why(o.wait, "--wait"),
            wait_mode_name(o.remote_wait),
            wait_words(o.remote_wait),
            why(o.remote_wait, "--remote-wait"),
            message_sleeps,
            ok_msgs
        );
        println!(
            "why latency differs idle and loaded: round trips stay sub-microsecond only while each side \
             catches the next message spinning on its own CPU; on a busy machine a spinning side is \
             preempted or its spin runs out, it sleeps on the doorbell, and each wake-up costs a \
             scheduler round trip (tens to hundreds of µs). Sleeps above say how often that happened; \
             --wait poll --remote-wait poll never sleeps (and burns two CPUs)."
        );
        if ok_msgs > 0 {
            let pct = (message_sleeps as f64 / ok_msgs as f64 * 100.0).min(100.0);
            println!(
                "this run: the host slept in about {pct:.0}% of round trips, so its latency mostly measured {}",
                if pct >= 50.0 {
                    "wake-ups through the doorbell (a busy machine, or a slow peer)"
                } else if pct >= 5.0 {
                    "the ring, with wake-ups in the tail"
                } else {
                    "the ring itself (plus, in the tail, any preemption of a spinning side)"
                }
            );
        }
    }
    if let Some(e) = b.first_problem.as_ref().or(first_error.as_ref()) {
        eprintln!("first problem: {e}");
    }
    if json {
        println!(
            "{{\"messages\":{ok_msgs},\"errors\":{errors},\"rtt_p50_ns\":{p50},\"rtt_p99_ns\":{p99},\"rtt_p999_ns\":{p999},\"rtt_max_ns\":{max_rtt},\"rtt_mean_ns\":{mean},\"elapsed_s\":{:.3},\"remote_pid\":{remote_pid},\"host_pid\":{},\"doorbells\":{},\"sleeps\":{},\"bulk_bytes\":{},\"bulk_buffers\":{},\"bulk_gbps\":{:.3},\"corrupted\":{},\"sanitizer_reports\":{},\"iommu_faults\":{},\"cache\":\"{}\",\"layout\":\"{}\"}}",
            elapsed.as_secs_f64(),
            std::process::id(),
            stats.kicks,
            stats.sleeps,
            b.bytes,
            b.buffers,
            b.gbps,
            b.corrupted,
            b.reports,
            b.faults,
            cfg.cache.name(),
            cfg.layout.name()
        );
    }
    let bulk_ok = bulk.as_ref().is_none_or(|b| b.ok)
        && (o.bulk_mib.unwrap_or(SIM_BULK_MIB) == 0 || bulk.is_some());
    Ok(errors == 0 && ok_msgs == o.messages.unwrap_or(SIM_MESSAGES) && bulk_ok && exit.success())
}

#[derive(Default, Clone)]
struct BulkResult {
    bytes: u64,
    buffers: u64,
    gbps: f64,
    corrupted: u64,
    reports: usize,
    faults: u32,
    ok: bool,
    first_problem: Option<String>,
}

/// Streams `o.bulk_mib.unwrap_or(SIM_BULK_MIB)` MiB through the data plane in 1 MiB buffers, every buffer's CRC32C
/// computed by the remote in place and checked here.
fn bulk_stage<D: intercore::Doorbell>(
    soc: &Soc,
    bus: &mut intercore::rpmsg::HostBus<std::sync::Arc<intercore_linux::MemfdRegion>, D>,
    o: &Opts,
    json: bool,
) -> Result<BulkResult, String> {
    const BUF: usize = 1 << 20;
    let mut dp = soc
        .open_data_plane(bus, Some(Duration::from_secs(5)))
        .map_err(|e| format!("data plane: {e}"))?;
    let len = input_len(BUF);
    // Exactly the requested size of checksummed input: full buffers, then the rest (a
    // multiple of 64 bytes, since both the size and `len` are, so the CRC still has a
    // cache line of its own).
    let want = o.bulk_mib.unwrap_or(SIM_BULK_MIB) << 20;
    let total = want.div_ceil(len as u64);
    let len_of = |i: u64| (want - i * len as u64).min(len as u64) as usize;
    let mut progress = Progress::new(json);
    let mut checker = Checker::default();
    let mut free = alloc_all(&mut dp, BUF);
    if free.is_empty() {
        return Err("the pool has no 1 MiB buffers".into());
    }
    let mut r = BulkResult::default();
    let (mut submitted, mut done) = (0u64, 0u64);
    let t0 = Instant::now();
    while done < total {
        while submitted < total {
            let Some(buf) = free.pop() else { break };
            checker
                .submit(&mut dp, bus, buf, len_of(submitted), submitted ^ o.seed)
                .map_err(|e| format!("submit: {e}"))?;
            submitted += 1;
        }
        let c = dp
            .wait_complete(bus, COMPLETION_TIMEOUT)
            .map_err(|e| format!("waiting for a completion: {e}"))?;
        let n = c.len().saturating_sub(4) as u64;
        match checker.check(&c) {
            Outcome::Good => r.bytes += n,
            other => {
                r.corrupted += 1;
                r.first_problem.get_or_insert(format!(
                    "buffer {} (seq {}): {other:?}",
                    c.id(),
                    c.seq()
                ));
            }
        }
        done += 1;
        free.push(c.into_writable());
        progress.show(|| format!("bulk: {} of {}", mib(r.bytes), mib(want)));
    }
    progress.clear();
    let secs = t0.elapsed().as_secs_f64();
    r.buffers = done;
    r.gbps = r.bytes as f64 / secs / 1e9;
    let mut reports = dp.pool().cache().reports();
    reports.extend(soc.remote_reports());
    r.reports = reports.len();
    if let Some(first) = reports.first() {
        r.first_problem.get_or_insert(first.to_string());
    }
    r.faults = soc.iommu_faults().0;
    r.ok = r.corrupted == 0 && r.reports == 0 && r.faults == 0;
    Ok(r)
}
