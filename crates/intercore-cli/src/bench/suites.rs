//! The intercore side of each suite, against the simulated SoC (firmware in its own process).

use super::floor::Peer;
use super::stats::{CpuMeter, Recorder, Row, measure_within};
use crate::workload::{COMPLETION_TIMEOUT, Checker, Outcome, input_len};
use intercore::WaitMode;
use intercore::dataplane::PoolConfig;
use intercore::rpmsg::Channel;
use intercore::rpmsg::RPMSG_ADDR_ANY;
use intercore::rpmsg::{HostBus, HostConfig};
use intercore::wire::dataplane::DP_OP_NOP;
use intercore_linux::{EventfdDoorbell, MemfdRegion};
use intercore_sim::{CacheMode, Eviction, SimConfig, Soc};
use std::sync::Arc;
use std::time::{Duration, Instant};

type Bus = HostBus<Arc<MemfdRegion>, EventfdDoorbell>;

/// Wait modes benchmarked, with their names.
pub fn modes() -> [(&'static str, WaitMode); 3] {
    [
        ("poll", WaitMode::Poll),
        ("event", WaitMode::Event),
        ("adaptive", WaitMode::default()),
    ]
}

fn start(
    cfg: &SimConfig,
    wait: WaitMode,
    cpus: &[usize],
    in_order: bool,
) -> Result<(Soc, Bus), String> {
    let program = crate::sim_remote().map_err(|e| e.to_string())?;
    let soc = Soc::start(cfg, &program).map_err(|e| format!("starting the simulated SoC: {e}"))?;
    if cpus.len() >= 2 {
        let _ = intercore_linux::pin_to_cpu(soc.remote_pid() as i32, cpus[1]);
    }
    let bus = soc
        .host_bus(HostConfig {
            wait,
            in_order,
            // These rows measure the split rings; inline-slot rings have their own rows
            // (`rtt_inline::bus_rows`).
            inline: false,
            ..HostConfig::default()
        })
        .map_err(|e| e.to_string())?;
    Ok((soc, bus))
}

/// Background load: one busy process per CPU (this binary re-run as the `busy` baseline
/// peer), each pinned to its CPU, so that every core the link's two sides run on is shared
/// with a process that never sleeps. The processes are killed and reaped when this is
/// dropped, and each also exits by itself within a millisecond once its parent is gone.
pub struct Load {
    hogs: Vec<Peer>,
}

impl Load {
    /// Starts one busy process per CPU in `cpus` (one, unpinned, when the list is empty).
    pub fn start(cpus: &[usize]) -> Result<Self, String> {
        let me = std::process::id().to_string();
        let mut hogs = Vec::new();
        let targets: Vec<Option<usize>> = if cpus.is_empty() {
            vec![None]
        } else {
            cpus.iter().copied().map(Some).collect()
        };
        for cpu in targets {
            hogs.push(Peer::spawn(&["busy".into(), me.clone()], &[], cpu)?);
        }
        Ok(Load { hogs })
    }

    /// How many busy processes run.
    pub fn len(&self) -> usize {
        self.hogs.len()
    }
}

/// How long one row under background load may take (a round trip can cost a scheduler time
/// slice there).
const LOAD_ROW_LIMIT: Duration = Duration::from_secs(3);

/// Round trips through the echo firmware for each payload size, in one wait mode (the
/// remote waits the same way), plus the CPU both sides burn over 200 ms of idleness. The
/// echo firmware offers in-order rings; `in_order` false declines them (rows named
/// `intercore-<mode>-standard`: the standard split ring, for comparison). Under
/// `load` (a [`Load`] running; `pinned`: host and firmware stay on separate CPUs, else
/// both may run on any CPU, where the scheduler puts them), the rows are `rtt-load` or
/// `rtt-load-unpinned` instead of `rtt`, each limited to [`LOAD_ROW_LIMIT`], and the idle
/// row is skipped.
pub fn rtt(
    mode: (&str, WaitMode),
    in_order: bool,
    sizes: &[usize],
    warmup: usize,
    samples: usize,
    cpus: &[usize],
    load: Option<(&Load, bool)>,
) -> Result<Vec<Row>, String> {
    let unpinned = matches!(load, Some((_, false)));
    if unpinned && !cpus.is_empty() {
        intercore_linux::pin_to_cpus(0, cpus).map_err(|e| format!("unpinning: {e}"))?;
    }
    let r = rtt_in(mode, in_order, sizes, warmup, samples, cpus, load);
    if unpinned && cpus.len() >= 2 {
        let _ = intercore_linux::pin_to_cpu(0, cpus[0]);
    }
    r
}

fn rtt_in(
    mode: (&str, WaitMode),
    in_order: bool,
    sizes: &[usize],
    warmup: usize,
    samples: usize,
    cpus: &[usize],
    load: Option<(&Load, bool)>,
) -> Result<Vec<Row>, String> {
    let cfg = SimConfig {
        remote_wait: mode.1,
        ..SimConfig::new(crate::firmwares::echo())
    };
    let pinned = !matches!(load, Some((_, false)));
    let (soc, mut bus) = start(&cfg, mode.1, if pinned { cpus } else { &[] }, in_order)?;
    if bus.in_order() != in_order {
        return Err(format!(
            "in-order rings: wanted {in_order}, negotiated {}",
            bus.in_order()
        ));
    }
    let dst = bus
        .find_service(intercore_fw_echo::SERVICE, Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    let ep = bus
        .create_endpoint("bench", None)
        .map_err(|e| e.to_string())?;
    let transport = if in_order {
        format!("intercore-{}", mode.0)
    } else {
        format!("intercore-{}-standard", mode.0)
    };
    let mut rows = Vec::new();
    for &size in sizes {
        let out: Vec<u8> = (0..size).map(|i| i as u8).collect();
        let mut back = vec![0u8; 496];
        let mut errors = 0u64;
        let meter = CpuMeter::start(Some(soc.remote_pid()));
        let limit = if load.is_some() {
            LOAD_ROW_LIMIT
        } else {
            Duration::MAX
        };
        let (rec, warm) = measure_within(warmup, samples, limit, || {
            bus.send_raw(ep, dst, &out, Some(Duration::from_secs(1)))
                .map_err(|e| e.to_string())?;
            let (_, n) = bus
                .recv_from(
                    &Channel::new(ep, RPMSG_ADDR_ANY),
                    &mut back,
                    Some(Duration::from_secs(1)),
                )
                .map_err(|e| e.to_string())?;
            if back[..n] != out[..] {
                errors += 1;
            }
            Ok(())
        })?;
        let (h, p) = meter.per_op(warm + rec.count());
        let bench = match load {
            None => "rtt",
            Some((_, true)) => "rtt-load",
            Some((_, false)) => "rtt-load-unpinned",
        };
        let mut row = Row::new(bench, &transport, size);
        row.lat = Some(rec.lat());
        row.host_cpu_ns = Some(h);
        row.peer_cpu_ns = p;
        row.errors = errors;
        if let Some((l, pinned)) = load {
            row.note = load_note(l, pinned);
        }
        rows.push(row);
    }
    if load.is_some() {
        drop(bus);
        let _ = soc.shutdown(Duration::from_secs(1));
        return Ok(rows);
    }
    rows.push(idle_row(&soc, &mut bus, ep, &transport)?);
    drop(bus);
    let _ = soc.shutdown(Duration::from_secs(1));
    Ok(rows)
}

/// The note of a row measured under background load.
fn load_note(l: &Load, pinned: bool) -> String {
    let how = if pinned {
        "pinned to separate CPUs"
    } else {
        "unpinned"
    };
    format!(
        "under load: {} busy process(es), one pinned per CPU; host and firmware {how}; \
         load average {}",
        l.len(),
        loadavg()
    )
}

/// Idle: nobody sends for 200 ms; how much CPU does each side burn waiting?
fn idle_row(soc: &Soc, bus: &mut Bus, ep: u32, transport: &str) -> Result<Row, String> {
    let meter = CpuMeter::start(Some(soc.remote_pid()));
    let t0 = Instant::now();
    let r = bus.recv_from(
        &Channel::new(ep, RPMSG_ADDR_ANY),
        &mut [0u8; 16],
        Some(Duration::from_millis(200)),
    );
    if !matches!(r, Err(intercore::Error::Timeout)) {
        return Err(format!("idle measurement: expected a timeout, got {r:?}"));
    }
    let ns = t0.elapsed().as_nanos() as f64;
    let (h, p) = meter.per_op(1);
    let mut idle = Row::new("idle", transport, 0);
    idle.host_cpu_ns = Some(h);
    idle.peer_cpu_ns = p;
    idle.note = format!(
        "CPU while idle for 200 ms: host {:.1}%, remote {:.1}%",
        100.0 * h / ns,
        100.0 * p.unwrap_or(0.0) / ns
    );
    Ok(idle)
}

/// One-way messages per second into the sink firmware, sent in batches (one index update
/// and at most one doorbell per batch) for `dur`, checked against the sink's count.
pub fn throughput(size: usize, dur: Duration, cpus: &[usize]) -> Result<Row, String> {
    let cfg = SimConfig {
        ..SimConfig::new(crate::firmwares::sink())
    };
    let (soc, mut bus) = start(&cfg, WaitMode::default(), cpus, true)?;
    let dst = bus
        .find_service(
            intercore_fw_echo::SINK_SERVICE,
            Some(Duration::from_secs(5)),
        )
        .map_err(|e| e.to_string())?;
    let ep = bus
        .create_endpoint("bench", None)
        .map_err(|e| e.to_string())?;
    let msg = vec![0xA5u8; size];
    let batch: Vec<&[u8]> = vec![&msg; 64];
    let meter = CpuMeter::start(Some(soc.remote_pid()));
    let t0 = Instant::now();
    let mut sent = 0u64;
    while t0.elapsed() < dur {
        for _ in 0..16 {
            let n = bus
                .try_send_batch(ep, dst, &batch)
                .map_err(|e| e.to_string())?;
            if n == 0 {
                bus.send_raw(ep, dst, &msg, Some(Duration::from_secs(1)))
                    .map_err(|e| e.to_string())?;
                sent += 1;
            }
            sent += n as u64;
        }
    }
    bus.send_raw(ep, dst, b"?", Some(Duration::from_secs(1)))
        .map_err(|e| e.to_string())?;
    let mut count = [0u8; 8];
    bus.recv_from(
        &Channel::new(ep, RPMSG_ADDR_ANY),
        &mut count,
        Some(Duration::from_secs(5)),
    )
    .map_err(|e| e.to_string())?;
    let secs = t0.elapsed().as_secs_f64();
    let mut row = Row::new("throughput", "intercore-batched", size);
    row.msgs_per_s = Some(sent as f64 / secs);
    let (h, p) = meter.per_op(sent);
    row.host_cpu_ns = Some(h);
    row.peer_cpu_ns = p;
    row.errors = sent.abs_diff(u64::from_le_bytes(count));
    drop(bus);
    let _ = soc.shutdown(Duration::from_secs(1));
    Ok(row)
}

fn bench_pool() -> PoolConfig {
    PoolConfig {
        classes: vec![(4096, 64), (64 << 10, 32), (1 << 20, 16), (4 << 20, 8)],
        align: 4096,
    }
}

/// One handoff run of `bulk`: `total` buffers of `size` bytes, each filled (one pass),
/// submitted with `DP_OP_NOP` and taken back when completed, cycling through `free` in
/// order; GB/s.
fn handoff_run<C: intercore::dataplane::CacheOps, T: intercore::rpmsg::MessageIo + ?Sized>(
    dp: &mut intercore::dataplane::DpHost<C>,
    bus: &mut T,
    free: &mut std::collections::VecDeque<intercore::dataplane::WritableBuf<C>>,
    total: u64,
    size: usize,
) -> Result<f64, String> {
    let t0 = Instant::now();
    let (mut submitted, mut done) = (0u64, 0u64);
    while done < total {
        while submitted < total {
            let Some(mut b) = free.pop_front() else { break };
            b.fill(submitted as u8);
            dp.submit(bus, b, size, DP_OP_NOP)
                .map_err(|e| e.to_string())?;
            submitted += 1;
        }
        let c = dp
            .wait_complete(bus, COMPLETION_TIMEOUT)
            .map_err(|e| e.to_string())?;
        done += 1;
        free.push_back(c.into_writable());
    }
    Ok((total * size as u64) as f64 / t0.elapsed().as_secs_f64() / 1e9)
}

/// Zero-copy bulk GB/s for one buffer size and cache mode: the host writes each buffer
/// once (one pass), hands it over, the remote completes it (`DP_OP_NOP`: the handoff
/// alone), the host takes it back; plus, as the baseline, the same write pass over the
/// same buffers without any handoff. `rounds` handoff runs alternate with `rounds + 1`
/// write passes; each row is the best of its runs (the note gives the first handoff run).
pub fn bulk(
    size: usize,
    cache: CacheMode,
    bytes: u64,
    rounds: usize,
    cpus: &[usize],
) -> Result<(Row, Row), String> {
    let cfg = SimConfig {
        cache,
        pool: bench_pool(),
        ..SimConfig::new(crate::firmwares::offload())
    };
    let (soc, mut bus) = start(&cfg, WaitMode::default(), cpus, true)?;
    let mut dp = soc
        .open_data_plane(&mut bus, Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    // Every buffer of the class, cycled in order (first in, first out) by both loops, so
    // the handoff run and the baseline touch the same working set the same way.
    let mut free = std::collections::VecDeque::new();
    while let Some(b) = dp.alloc(size) {
        if b.cap() != size {
            drop(b);
            break;
        }
        free.push_back(b);
    }
    if free.is_empty() {
        return Err(format!("no {size}-byte buffers in the pool"));
    }
    let total = (bytes / size as u64).max(free.len() as u64 * 2);
    // Touch every buffer once first: the memfd's pages are allocated on first write, and
    // neither measurement should pay for that.
    for b in free.iter_mut() {
        b.fill(0xEE);
    }
    // Baseline: one write pass over the same buffers, no handoff. The two are measured in
    // alternation — write pass, then `rounds` × (handoff run, write pass) — and each keeps
    // its best: the baseline gets one attempt more than the handoff, so neither order
    // effects nor a preemption in one short run (1 MiB: ≈ 4 ms) can flatter the ratio.
    let write_pass = |free: &mut std::collections::VecDeque<
        intercore::dataplane::WritableBuf<intercore_sim::AnyCache>,
    >| {
        let t0 = Instant::now();
        for i in 0..total {
            let k = i as usize % free.len();
            free[k].fill(i as u8);
        }
        (total * size as u64) as f64 / t0.elapsed().as_secs_f64() / 1e9
    };
    let mut base_gbps = write_pass(&mut free);
    // (GB/s, host and peer CPU per buffer) of the best handoff run, and of the first.
    let mut best: Option<(f64, f64, Option<f64>)> = None;
    let mut first = None;
    for _ in 0..rounds.max(1) {
        let meter = CpuMeter::start(Some(soc.remote_pid()));
        let gbps = handoff_run(&mut dp, &mut bus, &mut free, total, size)?;
        let (h, p) = meter.per_op(total);
        first.get_or_insert(gbps);
        if best.is_none_or(|b| gbps > b.0) {
            best = Some((gbps, h, p));
        }
        base_gbps = base_gbps.max(write_pass(&mut free));
    }
    let (gbps, h, p) = best.expect("at least one round");
    let mut row = Row::new("bulk", &format!("intercore-{}", cache.name()), size);
    row.gbps = Some(gbps);
    row.host_cpu_ns = Some(h);
    row.peer_cpu_ns = p;
    row.errors = (dp.pool().cache().reports().len() + soc.remote_reports().len()) as u64;
    row.note = format!(
        "{total} buffers, host write pass + handoff + completion; best of {} runs (first {:.3} GB/s)",
        rounds.max(1),
        first.unwrap_or(0.0)
    );
    let mut base = Row::new("bulk", "write-pass", size);
    base.gbps = Some(base_gbps);
    base.note = format!(
        "one write pass over the same buffers, no handoff (best of {}, alternating with the handoff runs)",
        rounds.max(1) + 1
    );
    drop(free);
    drop(dp);
    drop(bus);
    let _ = soc.shutdown(Duration::from_secs(1));
    Ok((row, base))
}

/// How long the soak waits out a silent peer before it ends the run with a stall row.
pub const SOAK_STALL_LIMIT: Duration = Duration::from_secs(60);

/// State letter and CPU time (clock ticks, user + system) of process `pid`, from
/// `/proc/PID/stat` (proc(5): fields 3, 14 and 15; the name in field 2 may hold spaces,
/// so parsing starts after its closing parenthesis).
fn proc_cpu(pid: u32) -> Option<(char, u64)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let state = f.first()?.chars().next()?;
    let ticks = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some((state, ticks))
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

/// Why an echo did not come back within a wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stall {
    /// The reply was in the ring when the wait gave up: the host was never woken.
    LostWakeup,
    /// The peer used no CPU during the wait (not scheduled, or stopped): starvation.
    PeerStarved(char),
    /// The peer ran but answered nothing.
    PeerBusy(char),
}

impl Stall {
    fn describe(self) -> String {
        match self {
            Stall::LostWakeup => {
                "lost wake-up: the reply was in the ring but no doorbell woke the host".into()
            }
            Stall::PeerStarved(st) => format!(
                "peer starved: its process (state {st}) used no CPU during the wait                  (not scheduled or stopped)"
            ),
            Stall::PeerBusy(st) => {
                format!("peer busy: its process (state {st}) ran but sent no reply")
            }
        }
    }
}

/// Sustained mixed traffic for `dur`: echo messages of random sizes and 64 KiB CRC32C
/// buffers, every result checked; one row per second, handed to `emit` as soon as it is
/// measured (the caller streams it), and also returned.
///
/// A silent peer does not end the run at the first timeout: each 1 s wait without the
/// echo is diagnosed — a lost wake-up (the reply was in the ring, the doorbell never
/// woke us), a starved peer (its process used no CPU: not scheduled or stopped), or a busy
/// one — and reported in a `stall` row with its context (time, messages so far, the
/// peer's state, the load average); the soak goes on once the reply arrives and gives up
/// after [`SOAK_STALL_LIMIT`] of silence, keeping every row measured before. Any other
/// error also ends the run with a row saying what happened, never by discarding rows.
pub fn soak(
    dur: Duration,
    cpus: &[usize],
    mut progress: impl FnMut(f64),
    mut emit: impl FnMut(&Row) -> bool,
) -> Result<Vec<Row>, String> {
    let (soc, mut bus, dst, ep, mut dp) = soak_link(cpus)?;
    let peer = soc.remote_pid();
    let mut checker = Checker::default();
    let mut rows = Vec::new();
    // `emit` false: nobody reads the rows any more; the soak ends at once.
    let mut gone = false;
    let mut push = |row: Row, rows: &mut Vec<Row>| {
        gone |= !emit(&row);
        rows.push(row);
        gone
    };
    let mut rng = 0x1234_5678_9ABC_DEF0u64;
    let (mut out, mut back) = (vec![0u8; 496], vec![0u8; 496]);
    let t_all = Instant::now();
    let mut second = Instant::now();
    let (mut msgs, mut bulk_bytes, mut errors, mut seq) = (0u64, 0u64, 0u64, 0u64);
    let mut total_msgs = 0u64;
    let mut rec = Recorder::new();
    let mut ended: Option<String> = None;
    while t_all.elapsed() < dur {
        let len = 1 + (xorshift(&mut rng) % 496) as usize;
        out[..len].fill(rng as u8);
        let t = Instant::now();
        if let Err(e) = bus.send_raw(ep, dst, &out[..len], Some(SOAK_STALL_LIMIT)) {
            ended = Some(format!("send failed after {total_msgs} messages: {e}"));
            break;
        }
        let at = (t_all, total_msgs, len);
        let n = match wait_echo(&mut bus, ep, &mut back, peer, at, &mut rows, &mut push) {
            Ok(n) => n,
            Err(why) => {
                ended = why;
                break;
            }
        };
        rec.record(t.elapsed());
        if back[..n] != out[..len] {
            errors += 1;
        }
        msgs += 1;
        total_msgs += 1;
        if msgs % 8 == 0 {
            let r = bulk_step(&mut dp, &mut bus, &mut checker, &mut seq);
            match r {
                Ok((good, bad)) => (bulk_bytes, errors) = (bulk_bytes + good, errors + bad),
                Err(e) => {
                    ended = Some(format!(
                        "data plane failed after {total_msgs} messages: {e}"
                    ));
                    break;
                }
            }
        }
        if second.elapsed() >= Duration::from_secs(1) {
            let t = t_all.elapsed().as_secs_f64();
            let row = second_row(&rec, second.elapsed(), (msgs, bulk_bytes, errors), t);
            if push(row, &mut rows) {
                break;
            }
            progress(t_all.elapsed().as_secs_f64() / dur.as_secs_f64());
            (msgs, bulk_bytes, errors) = (0, 0, 0);
            rec = Recorder::new();
            second = Instant::now();
        }
    }
    if ended.is_none() {
        ended = drain(&mut dp, &mut bus, &mut checker, &mut errors);
    }
    let sanitizer = (dp.pool().cache().reports().len() + soc.remote_reports().len()) as u64;
    let last = last_row(ended, errors + sanitizer);
    if let Some(row) = last {
        push(row, &mut rows);
    }
    drop(dp);
    drop(bus);
    let _ = soc.shutdown(Duration::from_secs(1));
    Ok(rows)
}

/// One step of xorshift64: the soak's message sizes and contents.
fn xorshift(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

/// The soak's row of one second (`counts`: messages, bulk bytes, errors; `t`: seconds
/// since the start).
fn second_row(rec: &Recorder, elapsed: Duration, counts: (u64, u64, u64), t: f64) -> Row {
    let (msgs, bulk_bytes, errors) = counts;
    let secs = elapsed.as_secs_f64();
    let mut row = Row::new("soak", "intercore-adaptive", 0);
    row.lat = Some(rec.lat());
    row.msgs_per_s = Some(msgs as f64 / secs);
    row.gbps = Some(bulk_bytes as f64 / secs / 1e9);
    row.errors = errors;
    row.note = format!("t={t:.0}s");
    row
}

/// The soak's closing row, if any: why the run ended early, with every error not yet
/// reported (counted one more, so the exit status shows it), or the errors after the last
/// full second.
fn last_row(ended: Option<String>, errors: u64) -> Option<Row> {
    match ended {
        Some(what) => Some(stall_row(what, errors + 1)),
        None if errors > 0 => Some(stall_row(
            "errors after the last full second".into(),
            errors,
        )),
        None => None,
    }
}

/// The soak's link: the offload firmware under the coherency sanitizer, its echo
/// service's address, our endpoint and the data plane.
fn soak_link(
    cpus: &[usize],
) -> Result<
    (
        Soc,
        Bus,
        u32,
        u32,
        intercore::dataplane::DpHost<intercore_sim::AnyCache>,
    ),
    String,
> {
    let cfg = SimConfig {
        cache: CacheMode::NonCoherent(Eviction {
            seed: 11,
            per_mille: 20,
        }),
        ..SimConfig::new(crate::firmwares::offload())
    };
    let (soc, mut bus) = start(&cfg, WaitMode::default(), cpus, true)?;
    let dst = bus
        .find_service(intercore_fw_echo::SERVICE, Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    let ep = bus
        .create_endpoint("soak", None)
        .map_err(|e| e.to_string())?;
    let dp = soc
        .open_data_plane(&mut bus, Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    Ok((soc, bus, dst, ep, dp))
}

/// Waits for the echo of a `len`-byte message (`at`: the soak's start, messages so far,
/// `len`): its length; or why the soak ends (`None`: nobody reads the rows any more).
/// Each 1 s wait without the echo is diagnosed and reported in a `stall` row.
fn wait_echo(
    bus: &mut Bus,
    ep: u32,
    back: &mut [u8],
    peer: u32,
    (t_all, total_msgs, len): (Instant, u64, usize),
    rows: &mut Vec<Row>,
    push: &mut impl FnMut(Row, &mut Vec<Row>) -> bool,
) -> Result<usize, Option<String>> {
    let mut silent = Duration::ZERO;
    loop {
        let before = proc_cpu(peer);
        match bus.recv_from(
            &Channel::new(ep, RPMSG_ADDR_ANY),
            back,
            Some(Duration::from_secs(1)),
        ) {
            Ok((_, n)) => return Ok(n),
            Err(intercore::Error::Timeout) => {}
            Err(e) => {
                return Err(Some(format!(
                    "receive failed after {total_msgs} messages at t={:.1}s: {e}",
                    t_all.elapsed().as_secs_f64()
                )));
            }
        }
        silent += Duration::from_secs(1);
        // Was the reply there all along? A non-blocking look that does not wait.
        let lost = match bus.recv_from(
            &Channel::new(ep, RPMSG_ADDR_ANY),
            back,
            Some(Duration::ZERO),
        ) {
            Ok((_, n)) => Some(n),
            Err(intercore::Error::Timeout) => None,
            Err(e) => return Err(Some(format!("receive failed after a stall: {e}"))),
        };
        let after = proc_cpu(peer);
        let kind = match (lost, before, after) {
            (Some(_), _, _) => Stall::LostWakeup,
            (None, Some((_, a)), Some((st, b))) if a == b => Stall::PeerStarved(st),
            (None, _, Some((st, _))) => Stall::PeerBusy(st),
            (None, _, None) => Stall::PeerStarved('?'),
        };
        let what = format!(
            "stall at t={:.1}s after {total_msgs} messages: no echo of a {len}-byte \
             message for {}s; {}; load average {}",
            t_all.elapsed().as_secs_f64(),
            silent.as_secs(),
            kind.describe(),
            loadavg()
        );
        if push(stall_row(what, 0), rows) {
            return Err(None);
        }
        if let Some(n) = lost {
            return Ok(n);
        }
        if silent >= SOAK_STALL_LIMIT {
            return Err(Some(format!(
                "gave up after {}s without an echo",
                silent.as_secs()
            )));
        }
    }
}

/// A `stall` row of the soak: what happened, and the errors it reports.
fn stall_row(what: String, errors: u64) -> Row {
    let mut row = Row::new("soak", "stall", 0);
    row.errors = errors;
    row.note = what;
    row
}

/// The soak's data-plane step: one 64 KiB CRC32C buffer submitted, the completions there
/// checked: (good bytes, bad buffers).
fn bulk_step<C: intercore::dataplane::CacheOps>(
    dp: &mut intercore::dataplane::DpHost<C>,
    bus: &mut Bus,
    checker: &mut Checker,
    seq: &mut u64,
) -> intercore::Result<(u64, u64)> {
    if let Some(b) = dp.alloc(64 << 10) {
        let l = input_len(b.cap());
        checker.submit(dp, bus, b, l, *seq)?;
        *seq += 1;
    }
    dp.flush(bus)?;
    let (mut good, mut bad) = (0, 0);
    while let Some(c) = dp.try_complete(bus)? {
        match checker.check(&c) {
            Outcome::Good => good += (c.len() - 4) as u64,
            _ => bad += 1,
        }
    }
    Ok((good, bad))
}

/// Waits out every buffer still in flight, counting the bad ones in `errors`; why it
/// could not, if it could not.
fn drain<C: intercore::dataplane::CacheOps>(
    dp: &mut intercore::dataplane::DpHost<C>,
    bus: &mut Bus,
    checker: &mut Checker,
    errors: &mut u64,
) -> Option<String> {
    while dp.outstanding() > 0 {
        match dp.wait_complete(bus, COMPLETION_TIMEOUT) {
            Ok(c) => {
                if checker.check(&c) != Outcome::Good {
                    *errors += 1;
                }
            }
            Err(e) => return Some(format!("draining the data plane: {e}")),
        }
    }
    None
}
