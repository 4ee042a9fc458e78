//! `intercore kernel-scale` (issue 23.5): `bench scale`'s endpoint counts through the
//! kernel's rpmsg character devices, for a guest whose `virtio_rpmsg_bus` talks to an echo
//! service (scripts/vm-test.sh: a UML guest and `intercore vhost-user`).
//!
//! For each count M it creates M endpoints on `/dev/rpmsg_ctrlN` ([`KernelRpmsg`]), keeps
//! one 64-byte message in flight per endpoint to the echo service from one thread waiting
//! on all of their `/dev/rpmsgM` descriptors at once (epoll), checks every echo (its bytes
//! name the endpoint and the sequence number), and after a warm-up measures a fixed
//! window: round trips per second, this process's CPU time per round trip
//! (`CLOCK_PROCESS_CPUTIME_ID` over the window: the system calls and copies of the kernel
//! path are charged to it), p50/p99 round trip. Then it lets every message in flight come
//! back, destroys the endpoints and checks that their `/dev/rpmsgM` nodes are gone. The
//! rows have the shape of `bench scale`'s (`scale`, transport `kernel-rpmsg-1xM`), so they
//! sit beside its `intercore-RxM` rows.
//!
//! What the kernel allows (Linux 6.1, `drivers/rpmsg/`): endpoint addresses come from an
//! IDR from 1024 up with no upper bound (`virtio_rpmsg_bus.c`, `__rpmsg_create_ept`:
//! `idr_alloc(&vrp->endpoints, ept, RPMSG_RESERVED_ADDRESSES, 0, …)`), endpoint devices
//! from an IDA of `RPMSG_DEV_MAX` = 2^20 minors (`rpmsg_char.c`, `rpmsg_chrdev_eptdev_add`),
//! so 256 endpoints are far from a limit. The messages share the bus's buffers: 256
//! transmit and 256 receive buffers of 512 bytes (`MAX_RPMSG_NUM_BUFS` = 512 split in
//! half, `MAX_RPMSG_BUF_SIZE`, `rpmsg_probe`; fewer with vrings under 256 entries), so 256
//! endpoints with one message each can hold every transmit buffer: a write that finds none
//! free fails with `EAGAIN` (`rpmsg_eptdev_write_iter` on an `O_NONBLOCK` descriptor) and
//! [`KernelRpmsg`] waits one out. A received message is copied into an skb queued on its
//! endpoint device (`rpmsg_ept_cb`) and its buffer goes back to the remote at once
//! (`rpmsg_recv_done`).

use crate::bench::Row;
use crate::error::CliError;
use crate::workload::Recorder;
use intercore::rpmsg::{Channel, Transport};
use intercore_linux::KernelRpmsg;
use intercore_linux::sys::Epoll;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Payload bytes, as `bench scale`'s.
pub const SIZE: usize = 64;
/// The endpoint counts of `bench scale`.
pub const ENDPOINTS: [usize; 4] = [1, 16, 64, 256];
/// Longest wait for any echo before the run fails with the echoes in flight as lost.
pub const STALL: Duration = Duration::from_secs(5);
/// Longest wait for a transmit buffer.
const SEND_WAIT: Option<Duration> = Some(Duration::from_secs(5));
/// The endpoints' name.
const NAME: &str = "intercore-scale";

/// How long each row runs.
#[derive(Debug, Clone, Copy)]
pub struct ScaleTimes {
    /// Before the window: round trips not counted.
    pub warm_up: Duration,
    /// The measured window.
    pub window: Duration,
    /// Longest wait for any echo before the run fails with the echoes in flight as lost.
    pub stall: Duration,
}

/// The message `seq` of endpoint `ep` in the row of `count` endpoints: checkable from its
/// bytes alone.
pub fn payload(count: usize, ep: usize, seq: u32) -> [u8; SIZE] {
    let mut m = [0u8; SIZE];
    m[..4].copy_from_slice(&(count as u32).to_le_bytes());
    m[4..8].copy_from_slice(&(ep as u32).to_le_bytes());
    m[8..12].copy_from_slice(&seq.to_le_bytes());
    for (i, b) in m.iter_mut().enumerate().skip(12) {
        *b = (ep as u32)
            .wrapping_mul(31)
            .wrapping_add(seq.wrapping_mul(7))
            .wrapping_add(i as u32) as u8;
    }
    m
}

/// One endpoint's stream: its channel, its node, the sequence number in flight (if one is)
/// and when it was sent.
struct Flow {
    ch: Channel,
    dev: Option<PathBuf>,
    seq: u32,
    in_flight: bool,
    sent: Instant,
}

/// The rows of `counts` endpoints each, through `k` to the echo service at `remote`, and
/// the number of echoes received in all (warm-up and the last ones in flight included);
/// `row` is called with each row as it is done. A lost echo, a failed system call or an
/// endpoint node left behind ends the run with an error; a wrong echo is counted in the
/// row's `errors` (the caller fails the run on any).
pub fn run(
    k: &mut KernelRpmsg,
    remote: u32,
    counts: &[usize],
    times: ScaleTimes,
    mut row: impl FnMut(&Row) -> Result<(), String>,
) -> Result<(Vec<Row>, u64), String> {
    let mut rows = Vec::new();
    let mut echoes = 0;
    for &m in counts {
        let mut flows = Vec::with_capacity(m);
        let r = open(k, remote, m, &mut flows).and_then(|()| measure(k, m, &mut flows, times));
        // Every endpoint is destroyed, whatever happened.
        let closed = close(k, flows);
        let (r, n) = r?;
        closed?;
        row(&r)?;
        rows.push(r);
        echoes += n;
    }
    Ok((rows, echoes))
}

fn open(k: &mut KernelRpmsg, remote: u32, m: usize, flows: &mut Vec<Flow>) -> Result<(), String> {
    for i in 0..m {
        let ch = k
            .open(NAME, remote)
            .map_err(|e| format!("{m} endpoints: creating endpoint {i}: {e}"))?;
        let dev = k.endpoint_device(&ch);
        flows.push(Flow {
            ch,
            dev,
            seq: 0,
            in_flight: false,
            sent: Instant::now(),
        });
    }
    Ok(())
}

/// Destroys every endpoint of `flows` and checks that its `/dev/rpmsgM` is gone.
fn close(k: &mut KernelRpmsg, flows: Vec<Flow>) -> Result<(), String> {
    let n = flows.len();
    let mut first = None;
    let mut devs = Vec::new();
    for f in flows {
        if let Err(e) = k.close(f.ch) {
            first.get_or_insert(format!("{n} endpoints: destroying one: {e}"));
        }
        devs.extend(f.dev);
    }
    if let Some(e) = first {
        return Err(e);
    }
    // devtmpfs removes a node before device_del returns; allow a moment all the same.
    let end = Instant::now() + Duration::from_secs(1);
    loop {
        let left: Vec<_> = devs.iter().filter(|d| d.exists()).collect();
        if left.is_empty() {
            return Ok(());
        }
        if Instant::now() >= end {
            return Err(format!(
                "{n} endpoints destroyed, but {} of their nodes are still there ({})",
                left.len(),
                left[0].display()
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// What a row counted.
struct Tally {
    rec: Recorder,
    trips: u64,
    errors: u64,
    /// Echoes received, warm-up and drain included.
    all: u64,
}

/// One epoll instance watching every endpoint's descriptor, token = its index.
fn watch(k: &KernelRpmsg, flows: &[Flow]) -> Result<Epoll, String> {
    let ep = Epoll::new().map_err(|e| format!("epoll: {e}"))?;
    for (i, f) in flows.iter().enumerate() {
        let fd = k
            .endpoint_fd(&f.ch)
            .ok_or_else(|| format!("endpoint {i} has no descriptor"))?;
        ep.add(fd, i as u64)
            .map_err(|e| format!("epoll: adding endpoint {i}: {e}"))?;
    }
    Ok(ep)
}

/// The error for echoes that did not come back within `stall`.
fn lost(m: usize, flows: &[Flow], stall: Duration) -> String {
    let waiting: Vec<_> = flows
        .iter()
        .enumerate()
        .filter(|(_, f)| f.in_flight)
        .map(|(i, f)| format!("{i} (seq {})", f.seq))
        .take(8)
        .collect();
    format!(
        "{m} endpoints: no echo for {stall:?}: lost; waiting on endpoints {}",
        waiting.join(", ")
    )
}

/// Runs the warm-up and the window for the `m` endpoints of `flows`, then lets every
/// message in flight come back: the row and the number of echoes received in all.
fn measure(
    k: &mut KernelRpmsg,
    m: usize,
    flows: &mut [Flow],
    times: ScaleTimes,
) -> Result<(Row, u64), String> {
    let ep = watch(k, flows)?;
    for (i, f) in flows.iter_mut().enumerate() {
        send(k, m, i, f)?;
    }
    let mut t = Tally {
        rec: Recorder::new(),
        trips: 0,
        errors: 0,
        all: 0,
    };
    let mut tokens = vec![0u64; flows.len()];
    let mut buf = vec![0u8; k.max_payload().max(SIZE)];
    let t0 = Instant::now();
    let mut started: Option<(Instant, Duration)> = None;
    let mut result: Option<(Duration, Duration)> = None;
    let mut progress = Instant::now();
    loop {
        let now = Instant::now();
        if started.is_none() && now - t0 >= times.warm_up {
            (t.rec, t.trips) = (Recorder::new(), 0);
            started = Some((now, cpu()?));
        }
        if let (Some((m0, c0)), None) = (started, result) {
            if now - m0 >= times.window {
                result = Some((now - m0, cpu()?.saturating_sub(c0)));
            }
        }
        let stopping = result.is_some();
        if stopping && flows.iter().all(|f| !f.in_flight) {
            break;
        }
        if now - progress > times.stall {
            return Err(lost(m, flows, times.stall));
        }
        let n = ep
            .wait(&mut tokens, Some(Duration::from_millis(100)))
            .map_err(|e| format!("epoll_wait: {e}"))?;
        for &tok in &tokens[..n] {
            let i = tok as usize;
            let f = flows
                .get_mut(i)
                .ok_or_else(|| format!("epoll gave an unknown token {tok}"))?;
            let got = match k.recv_timeout(&f.ch, &mut buf, Some(Duration::ZERO)) {
                Ok(n) => n,
                Err(intercore::Error::Timeout) => continue,
                Err(e) => return Err(format!("{m} endpoints: endpoint {i}: receiving: {e}")),
            };
            let at = Instant::now();
            progress = at;
            t.all += 1;
            if !f.in_flight || buf[..got] != payload(m, i, f.seq)[..] {
                t.errors += 1;
                if !f.in_flight {
                    continue;
                }
            }
            f.in_flight = false;
            // The window's round trips: not those still coming back after it.
            if !stopping {
                t.rec.record(at - f.sent);
                t.trips += 1;
                f.seq = f.seq.wrapping_add(1);
                send(k, m, i, f)?;
            }
        }
    }
    let (wall, cpu) = result.unwrap_or_default();
    Ok((row_of(m, &t, wall, cpu), t.all))
}

/// The row of `m` endpoints: `t`'s round trips over `wall`, `cpu` spent in it.
fn row_of(m: usize, t: &Tally, wall: Duration, cpu: Duration) -> Row {
    let mut row = Row::new("scale", &format!("kernel-rpmsg-1x{m}"), SIZE);
    row.lat = Some(t.rec.lat());
    row.msgs_per_s = Some(t.trips as f64 / wall.as_secs_f64().max(1e-9));
    row.host_cpu_ns = Some(cpu.as_nanos() as f64 / t.trips.max(1) as f64);
    row.errors = t.errors;
    row.note = format!(
        "1 remote × {m} endpoint(s) through /dev/rpmsg_ctrl0 and /dev/rpmsgN (KernelRpmsg), \
         one message in flight per endpoint, one thread in epoll; CPU per round trip is \
         the guest process's (user + system)"
    );
    row
}

fn send(k: &mut KernelRpmsg, m: usize, i: usize, f: &mut Flow) -> Result<(), String> {
    k.send_timeout(&f.ch, &payload(m, i, f.seq), SEND_WAIT)
        .map_err(|e| format!("{m} endpoints: endpoint {i}: sending seq {}: {e}", f.seq))?;
    f.in_flight = true;
    f.sent = Instant::now();
    Ok(())
}

fn cpu() -> Result<Duration, String> {
    intercore_linux::process_cpu_time(0).map_err(|e| format!("CLOCK_PROCESS_CPUTIME_ID: {e}"))
}

/// The row as one text line.
pub fn text(r: &Row) -> String {
    let l = r.lat.unwrap_or_default();
    format!(
        "{}: {:.0} msgs/s, {:.1} µs CPU per round trip, p50 {:.1} µs, p99 {:.1} µs, {} samples, {} errors",
        r.transport,
        r.msgs_per_s.unwrap_or(0.0),
        r.host_cpu_ns.unwrap_or(0.0) / 1e3,
        l.p50 as f64 / 1e3,
        l.p99 as f64 / 1e3,
        l.samples,
        r.errors
    )
}

/// `intercore kernel-scale`: every row as a text line `kernel-scale: …` followed by its
/// JSON (`kernel-scale-row: {…}`; with `--json`, the JSON lines alone), then the verdict;
/// exit 1 on any wrong echo, lost echo or error.
pub fn main(a: &crate::cli::KernelScaleArgs, json: bool) -> Result<u8, CliError> {
    let paths = crate::vhost::ctrl_paths(&a.ctrl)?;
    let mut counts: Vec<usize> = a.endpoints.iter().map(|&m| m as usize).collect();
    if counts.is_empty() {
        counts = ENDPOINTS.to_vec();
    }
    let times = ScaleTimes {
        warm_up: a.warm_up,
        window: a.window,
        stall: STALL,
    };
    let t = Some(Duration::from_secs(10));
    let r = (|| -> Result<String, String> {
        let mut k = KernelRpmsg::open(&paths).map_err(|e| e.to_string())?;
        let remote = k
            .find_service(&a.service, t)
            .map_err(|e| format!("finding {}: {e}", a.service))?;
        let (rows, echoes) = run(&mut k, remote, &counts, times, |r| {
            let out = if json {
                crate::out::json(&r.json())
            } else {
                outln!("kernel-scale: {}", text(r))
                    .and_then(|()| outln!("kernel-scale-row: {}", r.json()))
            };
            out.map_err(|_| "stdout closed".to_string())
        })?;
        let errors: u64 = rows.iter().map(|r| r.errors).sum();
        if errors > 0 {
            return Err(format!("{errors} echoes differed from what was sent"));
        }
        let trips: u64 = rows
            .iter()
            .filter_map(|r| r.lat.map(|l| l.samples))
            .sum::<u64>();
        let created: usize = counts.iter().sum();
        Ok(format!(
            "{} rows; {created} endpoints created and destroyed, nodes gone; {echoes} echoes \
             checked, {trips} round trips measured",
            rows.len()
        ))
    })();
    crate::vhost::verdict("kernel-scale", r, json, ("rows", counts.len() as u64))
}
