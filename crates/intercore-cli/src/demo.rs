//! `intercore demo`: the simulated SoC end to end.

use crate::bulk::{COMPLETION_TIMEOUT, Checker, Outcome, input_len};
use intercore::WaitMode;
use intercore::rpmsg::HostConfig;
use intercore_sim::{CacheMode, RemoteProgram, SimConfig, Soc, parse_wait_mode};
use std::process::ExitCode;
use std::time::{Duration, Instant};

mod qemu;

struct Opts {
    json: bool,
    messages: u64,
    bulk_mib: u64,
    cache: CacheMode,
    wait: WaitMode,
    remote_wait: WaitMode,
    seed: u64,
    /// `--soc sim|qemu-r5f|qemu-m4f` (None: the simulated SoC).
    soc: Option<intercore_sim::qemu::QemuCore>,
    /// `--fw-dir DIR`: where the QEMU images are (default `$INTERCORE_FW_DIR`).
    fw_dir: Option<std::path::PathBuf>,
    /// Whether `--messages` / `--bulk-mib` were given (QEMU runs default to fewer).
    counts_given: (bool, bool),
}

fn parse(args: &[String]) -> Result<Opts, String> {
    let mut o = Opts {
        json: false,
        messages: 100_000,
        bulk_mib: 256,
        cache: CacheMode::Coherent,
        wait: WaitMode::default(),
        remote_wait: WaitMode::default(),
        seed: 1,
        soc: None,
        fw_dir: None,
        counts_given: (false, false),
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut val = || it.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--json" => o.json = true,
            "--messages" => {
                o.messages = val()?.parse().map_err(|_| "--messages takes a number")?;
                o.counts_given.0 = true;
            }
            "--bulk-mib" => {
                o.bulk_mib = val()?.parse().map_err(|_| "--bulk-mib takes a number")?;
                o.counts_given.1 = true;
            }
            "--soc" => {
                o.soc = match val()?.as_str() {
                    "sim" => None,
                    s => Some(
                        intercore_sim::qemu::QemuCore::from_name(s)
                            .ok_or("--soc takes sim, qemu-r5f or qemu-m4f")?,
                    ),
                }
            }
            "--fw-dir" => o.fw_dir = Some(val()?.into()),
            "--cache" => {
                o.cache = CacheMode::parse(val()?)
                    .ok_or("--cache takes coherent or noncoherent[:SEED:PER_MILLE]")?
            }
            "--seed" => o.seed = val()?.parse().map_err(|_| "--seed takes a number")?,
            "--wait" => o.wait = parse_wait_mode(val()?).ok_or("bad --wait")?,
            "--remote-wait" => {
                o.remote_wait = parse_wait_mode(val()?).ok_or("bad --remote-wait")?
            }
            other => return Err(format!("unknown option {other}")),
        }
    }
    Ok(o)
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

pub fn main(args: &[String]) -> ExitCode {
    let o = match parse(args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("intercore demo: {e}");
            return ExitCode::from(2);
        }
    };
    let r = match o.soc {
        Some(core) => qemu::run(&o, core),
        None => run(&o),
    };
    match r {
        Ok(ok) => {
            if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("intercore demo: {e}");
            ExitCode::FAILURE
        }
    }
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn run(o: &Opts) -> Result<bool, String> {
    let cfg = SimConfig {
        remote_wait: o.remote_wait,
        cache: o.cache,
        ..SimConfig::default()
    };
    let program = RemoteProgram::current_exe(crate::SIM_REMOTE).map_err(|e| e.to_string())?;
    let soc = Soc::start(&cfg, &program).map_err(|e| format!("starting the simulated SoC: {e}"))?;
    let remote_pid = soc.remote_pid();
    let mut bus = soc
        .host_bus(HostConfig {
            wait: o.wait,
            ..HostConfig::default()
        })
        .map_err(|e| format!("host bus: {e}"))?;
    let service = intercore_fw_echo::SERVICE;
    let remote = bus
        .wait_service(service, Some(Duration::from_secs(5)))
        .map_err(|e| format!("waiting for {service:?}: {e}"))?;
    let ep = bus
        .create_endpoint("intercore-demo", None)
        .map_err(|e| e.to_string())?;
    if !o.json {
        println!(
            "intercore demo: simulated SoC up — remote firmware 'offload' is pid {remote_pid} (host pid {}), service {service:?} at address {remote}, our endpoint {ep}",
            std::process::id()
        );
    }
    let max = bus.max_payload();
    let mut rng = Rng::new(o.seed);
    let mut out = vec![0u8; max];
    let mut back = vec![0u8; max];
    let mut rtts = Vec::with_capacity(o.messages as usize);
    let mut errors = 0u64;
    let mut first_error = None;
    let mut bytes = 0u64;
    let t_all = Instant::now();
    for seq in 0..o.messages {
        let len = 1 + (rng.next() % max as u64) as usize;
        fill(&mut out[..len], seq ^ o.seed);
        let t0 = Instant::now();
        let r = bus
            .send(ep, remote, &out[..len])
            .and_then(|_| bus.recv(ep, &mut back));
        let rtt = t0.elapsed();
        match r {
            Ok((src, n)) if src == remote && n == len && back[..n] == out[..len] => {
                rtts.push(rtt.as_nanos() as u64);
                bytes += 2 * len as u64;
            }
            Ok((src, n)) => {
                errors += 1;
                first_error.get_or_insert(format!("message {seq}: got {n} bytes from {src}, sent {len} to {remote}, content differs"));
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
    if !o.json {
        println!(
            "messages: {} verified in {:.2} s, {errors} errors",
            rtts.len(),
            elapsed.as_secs_f64()
        );
    }
    let bulk = if o.bulk_mib > 0 && bus.broken().is_none() {
        Some(bulk_stage(&soc, &mut bus, o)?)
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
    if !o.json {
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
                "bulk ({} caches): {:.1} MiB in {} buffers of 1 MiB, CRC32C by the remote in place: {:.2} GB/s, {} corrupted, {} sanitizer reports, {} IOMMU faults",
                o.cache.name(),
                b.bytes as f64 / (1 << 20) as f64,
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
    }
    if let Some(e) = b.first_problem.as_ref().or(first_error.as_ref()) {
        eprintln!("first problem: {e}");
    }
    if o.json {
        println!(
            "{{\"messages\":{ok_msgs},\"errors\":{errors},\"rtt_p50_ns\":{p50},\"rtt_p99_ns\":{p99},\"rtt_p999_ns\":{p999},\"rtt_max_ns\":{max_rtt},\"rtt_mean_ns\":{mean},\"elapsed_s\":{:.3},\"remote_pid\":{remote_pid},\"host_pid\":{},\"doorbells\":{},\"sleeps\":{},\"bulk_bytes\":{},\"bulk_buffers\":{},\"bulk_gbps\":{:.3},\"corrupted\":{},\"sanitizer_reports\":{},\"iommu_faults\":{},\"cache\":\"{}\"}}",
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
            o.cache.name()
        );
    }
    let bulk_ok = bulk.as_ref().is_none_or(|b| b.ok) && (o.bulk_mib == 0 || bulk.is_some());
    Ok(errors == 0 && ok_msgs == o.messages && bulk_ok && exit.success())
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

/// Streams `o.bulk_mib` MiB through the data plane in 1 MiB buffers, every buffer's CRC32C
/// computed by the remote in place and checked here.
fn bulk_stage<D: intercore::Doorbell>(
    soc: &Soc,
    bus: &mut intercore::rpmsg::HostBus<std::sync::Arc<intercore_linux::MemfdRegion>, D>,
    o: &Opts,
) -> Result<BulkResult, String> {
    const BUF: usize = 1 << 20;
    let mut dp = soc
        .open_data_plane(bus, Some(Duration::from_secs(5)))
        .map_err(|e| format!("data plane: {e}"))?;
    let len = input_len(BUF);
    // Enough buffers that the checksummed input reaches the requested size.
    let total = (o.bulk_mib << 20).div_ceil(len as u64);
    let mut checker = Checker::default();
    let mut free = Vec::new();
    while let Some(b) = dp.alloc(BUF) {
        if b.cap() != BUF {
            break;
        }
        free.push(b);
    }
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
                .submit(&mut dp, bus, buf, len, submitted ^ o.seed)
                .map_err(|e| format!("submit: {e}"))?;
            submitted += 1;
        }
        let c = dp
            .wait_complete(bus, COMPLETION_TIMEOUT)
            .map_err(|e| format!("waiting for a completion: {e}"))?;
        match checker.check(&c) {
            Outcome::Good => r.bytes += len as u64,
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
    }
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
