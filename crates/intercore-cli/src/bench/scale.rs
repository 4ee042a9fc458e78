//! `bench scale` (issue 23.5): one host thread serving several simulated remotes (each the
//! echo firmware in its own process) × several endpoints each, through one
//! [`Reactor`] wait. Every endpoint keeps one 64-byte message in flight: each echo is
//! checked and answered with the next message at once. Rows for remotes ∈ {1, 2, 4} ×
//! endpoints per remote ∈ {1, 16, 64, 256}: aggregate round trips per second, the host's
//! own CPU time per round trip (its CPU-time clock over the window; the remotes run in
//! other processes, so it is the host's alone), p50/p99 round trip. Then the flood rows:
//! one endpoint's round trips alone, and again while another endpoint of the same link
//! keeps [`FLOOD_WINDOW`] messages in flight. The summary holds 4 × 64 against 1 × 1 (CPU
//! per round trip, ≤ 1.25×) and the quiet endpoint's p99 under the flood against alone
//! (≤ 2×).

use super::stats::{Recorder, Row};
use intercore::rpmsg::{HostBus, HostConfig};
use intercore_linux::reactor::{LinkId, Reactor, ReactorConfig, Ready};
use intercore_linux::{EventfdDoorbell, MemfdRegion};
use intercore_sim::{SimConfig, Soc};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

type Bus = HostBus<Arc<MemfdRegion>, EventfdDoorbell>;

/// Remotes per row.
pub const REMOTES: [usize; 3] = [1, 2, 4];
/// Endpoints per remote per row.
pub const ENDPOINTS: [usize; 4] = [1, 16, 64, 256];
/// Messages the flooding endpoint keeps in flight.
pub const FLOOD_WINDOW: usize = 64;
/// The transmit credit (`HostConfig::tx_credit`) of the link of the credited flood rows:
/// the quiet endpoint's messages wait behind at most this many of the flood's.
pub const FLOOD_CREDIT: u16 = 1;
/// Payload bytes.
const SIZE: usize = 64;
/// Measured window per row, after a warm-up of a quarter of it.
const WINDOW: Duration = Duration::from_millis(300);
const T: Option<Duration> = Some(Duration::from_secs(1));

/// Progress steps of the suite.
pub const STEPS: usize = REMOTES.len();

/// The remotes of one group of rows and the reactor serving their links.
struct Links {
    socs: Vec<Soc>,
    reactor: Reactor,
    ids: Vec<LinkId>,
    /// The echo service's address on each link.
    svc: Vec<u32>,
}

impl Links {
    fn start(n: usize, peer_cpu: Option<usize>) -> Result<Self, String> {
        Self::start_with(n, HostConfig::default(), peer_cpu)
    }

    /// `n` remotes (each pinned to `peer_cpu` when given) on links configured by `host`.
    fn start_with(n: usize, host: HostConfig, peer_cpu: Option<usize>) -> Result<Self, String> {
        let program = crate::sim_remote().map_err(|e| e.to_string())?;
        let cfg = SimConfig::new(crate::firmwares::echo());
        let mut reactor = Reactor::new(ReactorConfig::default()).map_err(|e| e.to_string())?;
        let (mut socs, mut ids, mut svc) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..n {
            let soc = Soc::start(&cfg, &program).map_err(|e| format!("simulated SoC: {e}"))?;
            if let Some(cpu) = peer_cpu {
                // As every row of the bench: the host on its CPU, the peers on another
                // (a remote is another core). Unpinned, a woken remote lands on the host's
                // CPU and each round trip measures two context switches.
                let _ = intercore_linux::pin_to_cpu(soc.remote_pid() as i32, cpu);
            }
            let mut bus: Bus = soc.host_bus(host).map_err(|e| e.to_string())?;
            let s = bus
                .find_service(intercore_fw_echo::SERVICE, Some(Duration::from_secs(5)))
                .map_err(|e| e.to_string())?;
            ids.push(reactor.add(bus).map_err(|e| e.to_string())?);
            svc.push(s);
            socs.push(soc);
        }
        Ok(Self {
            socs,
            reactor,
            ids,
            svc,
        })
    }

    fn bus(&mut self, i: usize) -> Result<&mut Bus, String> {
        self.reactor
            .link(self.ids[i])
            .ok_or_else(|| "link gone".to_string())
    }

    /// CPU time the remotes' processes have used so far.
    fn remote_cpu(&self) -> Duration {
        self.socs
            .iter()
            .map(|s| intercore_linux::process_cpu_time(s.remote_pid() as i32).unwrap_or_default())
            .sum()
    }

    fn shutdown(self) {
        drop(self.reactor);
        for s in self.socs {
            let _ = s.shutdown(Duration::from_secs(1));
        }
    }
}

/// The message `seq` of endpoint `ep` on link `link`: checkable from its bytes alone.
fn payload(link: usize, ep: u32, seq: u32) -> [u8; SIZE] {
    let mut m = [seq as u8; SIZE];
    m[..4].copy_from_slice(&(link as u32).to_le_bytes());
    m[4..8].copy_from_slice(&ep.to_le_bytes());
    m[8..12].copy_from_slice(&seq.to_le_bytes());
    m
}

/// One endpoint's stream: what it sent last and when.
struct Flow {
    link: usize,
    ep: u32,
    seq: u32,
    sent: Instant,
    /// Messages in flight.
    out: usize,
    /// Round trips recorded into `quiet` (the flood rows' measured endpoint).
    quiet: bool,
}

/// What a measured window produced.
struct Window {
    rec: Recorder,
    quiet: Recorder,
    trips: u64,
    errors: u64,
    host_cpu: Duration,
    remote_cpu: Duration,
    wall: Duration,
}

/// Runs `flows` (each with `out` messages to put in flight) for a warm-up then `WINDOW`,
/// every echo answered by the next message; then lets every message in flight come back.
fn run(links: &mut Links, flows: &mut [Flow]) -> Result<Window, String> {
    let index = put_in_flight(links, flows)?;
    let mut w = Window {
        rec: Recorder::new(),
        quiet: Recorder::new(),
        trips: 0,
        errors: 0,
        host_cpu: Duration::ZERO,
        remote_cpu: Duration::ZERO,
        wall: Duration::ZERO,
    };
    let svc = links.svc.clone();
    let warm = WINDOW / 4;
    let t0 = Instant::now();
    let (mut cpu0, mut rcpu0, mut m0) = (None, Duration::ZERO, t0);
    let mut failure = None;
    let mut stopping = false;
    loop {
        let now = Instant::now();
        if cpu0.is_none() && now - t0 >= warm {
            (w.rec, w.quiet, w.trips) = (Recorder::new(), Recorder::new(), 0);
            cpu0 = Some(intercore_linux::process_cpu_time(0).unwrap_or_default());
            rcpu0 = links.remote_cpu();
            m0 = now;
        }
        if !stopping && cpu0.is_some() && now - m0 >= WINDOW {
            w.host_cpu =
                intercore_linux::process_cpu_time(0).unwrap_or_default() - cpu0.unwrap_or_default();
            w.remote_cpu = links.remote_cpu().saturating_sub(rcpu0);
            w.wall = now - m0;
            stopping = true;
        }
        if stopping && flows.iter().all(|f| f.out == 0) {
            break;
        }
        if now - t0 > WINDOW * 4 + Duration::from_secs(5) {
            return Err("round trips stalled".into());
        }
        let r = links.reactor.turn(T, |link, bus, ready| {
            let e = match ready {
                Ready::Message(m) => match index.get(&(link, m.dst())) {
                    Some(&k) => {
                        let svc = svc[flows[k].link];
                        echo(&mut flows[k], &mut w, m, bus, svc, stopping)
                    }
                    None => {
                        w.errors += 1;
                        None
                    }
                },
                Ready::Lost { endpoint, count } => Some(format!("{count} lost at {endpoint}")),
                Ready::Down(e) => Some(format!("{link:?} down: {e}")),
            };
            if let Some(e) = e {
                failure.get_or_insert(e);
            }
        });
        if let Some(f) = failure.take() {
            return Err(f);
        }
        match r {
            Ok(_) | Err(intercore::Error::Timeout) => {}
            Err(e) => return Err(format!("reactor: {e}")),
        }
    }
    Ok(w)
}

/// An echo for flow `fl`: checked, its round trip recorded, the next message sent (unless
/// `stopping`). An error to end the run with, if one happened.
fn echo(
    fl: &mut Flow,
    w: &mut Window,
    m: intercore::rpmsg::RxBuf<Arc<MemfdRegion>>,
    bus: &mut Bus,
    svc: u32,
    stopping: bool,
) -> Option<String> {
    let at = Instant::now();
    // Messages of one endpoint come back in order: the oldest in flight is
    // `seq - out + 1`.
    let expect = fl.seq + 1 - fl.out as u32;
    if m[..] != payload(fl.link, fl.ep, expect)[..] {
        w.errors += 1;
    }
    drop(m);
    fl.out -= 1;
    if fl.quiet {
        w.quiet.record(at - fl.sent);
    } else if fl.out == 0 {
        w.rec.record(at - fl.sent);
    }
    w.trips += 1;
    if stopping {
        return None;
    }
    fl.seq += 1;
    let m = payload(fl.link, fl.ep, fl.seq);
    // Timed from before the send: a message parked for its endpoint's transmit credit (or
    // a buffer) is part of the round trip. `post` never waits: the one reactor thread
    // serves the other endpoints meanwhile, and the parked message goes out on a later
    // turn (`HostBus::poll`).
    let before = Instant::now();
    if let Err(e) = bus.post(fl.ep, svc, &m) {
        return Some(format!("send: {e}"));
    }
    fl.out += 1;
    if fl.out == 1 {
        fl.sent = before;
    }
    None
}

/// Puts each flow's first messages in flight; the index of the flows by link and endpoint.
fn put_in_flight(
    links: &mut Links,
    flows: &mut [Flow],
) -> Result<HashMap<(LinkId, u32), usize>, String> {
    let mut index: HashMap<(LinkId, u32), usize> = HashMap::new();
    for (k, fl) in flows.iter_mut().enumerate() {
        index.insert((links.ids[fl.link], fl.ep), k);
        let (link, ep, svc) = (fl.link, fl.ep, links.svc[fl.link]);
        let n = std::mem::take(&mut fl.out);
        for _ in 0..n {
            fl.seq += 1;
            let m = payload(link, ep, fl.seq);
            // Parked past the endpoint's credit: the reactor's turns send the rest.
            links
                .bus(link)?
                .post(ep, svc, &m)
                .map_err(|e| format!("send: {e}"))?;
            fl.out += 1;
        }
        fl.sent = Instant::now();
    }
    Ok(index)
}

fn flows(links: &mut Links, per_link: usize, name: &str) -> Result<Vec<Flow>, String> {
    let mut v = Vec::new();
    for link in 0..links.ids.len() {
        for _ in 0..per_link {
            let ep = links
                .bus(link)?
                .create_endpoint(name, None)
                .map_err(|e| e.to_string())?;
            v.push(Flow {
                link,
                ep,
                seq: 0,
                sent: Instant::now(),
                out: 1,
                quiet: false,
            });
        }
    }
    Ok(v)
}

fn destroy(links: &mut Links, flows: &[Flow]) -> Result<(), String> {
    for f in flows {
        links
            .bus(f.link)?
            .destroy_endpoint(f.ep)
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// The rows for `remotes` remotes (every endpoint count), and with one remote the flood
/// rows.
fn group(remotes: usize, peer_cpu: Option<usize>) -> Result<Vec<Row>, String> {
    let mut links = Links::start(remotes, peer_cpu)?;
    let r = group_on(&mut links, remotes, peer_cpu);
    links.shutdown();
    r
}

fn group_on(
    links: &mut Links,
    remotes: usize,
    peer_cpu: Option<usize>,
) -> Result<Vec<Row>, String> {
    let mut rows = Vec::new();
    for eps in ENDPOINTS {
        let mut fl = flows(links, eps, "scale")?;
        let w = run(links, &mut fl)?;
        destroy(links, &fl)?;
        let mut row = Row::new("scale", &format!("intercore-{remotes}x{eps}"), SIZE);
        let trips = w.trips.max(1) as f64;
        row.lat = Some(w.rec.lat());
        row.msgs_per_s = Some(w.trips as f64 / w.wall.as_secs_f64().max(1e-9));
        row.host_cpu_ns = Some(w.host_cpu.as_nanos() as f64 / trips);
        row.peer_cpu_ns = Some(w.remote_cpu.as_nanos() as f64 / trips);
        row.errors = w.errors;
        row.note = format!(
            "{remotes} remote(s) × {eps} endpoint(s), one message in flight per endpoint, \
             one reactor thread; msgs/s and CPU per round trip"
        );
        rows.push(row);
    }
    if remotes == 1 {
        rows.extend(flood_rows(links, "")?);
        // Again on a link whose endpoints each have FLOOD_CREDIT messages at most in its
        // transmit ring (the default, half the ring, is deeper than FLOOD_WINDOW).
        let mut credited = Links::start_with(
            1,
            HostConfig::default().tx_credit(Some(FLOOD_CREDIT)),
            peer_cpu,
        )?;
        let r = flood_rows(&mut credited, "-credit");
        credited.shutdown();
        rows.extend(r?);
        // And on the split ring, where the remote hands each buffer back as it consumes
        // it (the inline ring's progress is published in batches, so credit returns late).
        let mut credited = Links::start_with(
            1,
            HostConfig::default()
                .inline(false)
                .tx_credit(Some(FLOOD_CREDIT)),
            peer_cpu,
        )?;
        let r = flood_rows(&mut credited, "-credit-split");
        credited.shutdown();
        rows.extend(r?);
        let mut credited = Links::start_with(1, HostConfig::default().inline(false), peer_cpu)?;
        let r = flood_rows(&mut credited, "-split");
        credited.shutdown();
        rows.extend(r?);
    }
    Ok(rows)
}

/// Alone / flooded windows measured per flood row pair, alternating.
pub const FLOOD_ROUNDS: usize = 3;

/// The quiet endpoint alone, then beside an endpoint keeping [`FLOOD_WINDOW`] in flight;
/// `suffix` names the link's configuration in the rows' transports. Each is measured
/// [`FLOOD_ROUNDS`] times, alone and flooded alternating, and each row is the window with
/// the median quiet p99 of its kind (one preemption in a 300 ms window moves a p99 by 10×:
/// neither row may be the lucky or the unlucky one); errors are summed over every window.
fn flood_rows(links: &mut Links, suffix: &str) -> Result<Vec<Row>, String> {
    let mut windows: [Vec<Window>; 2] = [Vec::new(), Vec::new()];
    for _ in 0..FLOOD_ROUNDS {
        for flood in [false, true] {
            let mut fl = flows(links, 1, "quiet")?;
            fl[0].quiet = true;
            if flood {
                let mut f = flows(links, 1, "flood")?;
                f[0].out = FLOOD_WINDOW;
                fl.extend(f);
            }
            let w = run(links, &mut fl)?;
            destroy(links, &fl)?;
            windows[usize::from(flood)].push(w);
        }
    }
    let mut rows = Vec::new();
    for (flood, mut ws) in [false, true].into_iter().zip(windows) {
        let errors = ws.iter().map(|w| w.errors).sum();
        ws.sort_by_key(|w| w.quiet.lat().p99);
        let w = &ws[ws.len() / 2];
        let name = if flood {
            "intercore-quiet-flooded"
        } else {
            "intercore-quiet-alone"
        };
        let name = format!("{name}{suffix}");
        let mut row = Row::new("scale-flood", &name, SIZE);
        row.lat = Some(w.quiet.lat());
        row.msgs_per_s = Some(w.trips as f64 / w.wall.as_secs_f64().max(1e-9));
        row.errors = errors;
        let credit = if suffix.is_empty() || suffix == "-split" {
            "the default transmit credit".to_string()
        } else {
            format!("a transmit credit of {FLOOD_CREDIT}")
        };
        let p99s: Vec<String> = {
            let mut v: Vec<u64> = ws.iter().map(|w| w.quiet.lat().p99).collect();
            v.sort_unstable();
            v.iter()
                .map(|ns| format!("{:.2}", *ns as f64 / 1000.0))
                .collect()
        };
        let median = format!(
            "the window with the median p99 of {FLOOD_ROUNDS} (p99s {} µs), alone and flooded alternating",
            p99s.join(", ")
        );
        row.note = if flood {
            format!(
                "the quiet endpoint's round trips while another endpoint of its link keeps \
                 {FLOOD_WINDOW} in flight, {credit}; msgs/s counts both; {median}"
            )
        } else {
            format!("the quiet endpoint's round trips alone, {credit}; {median}")
        };
        rows.push(row);
    }
    Ok(rows)
}

/// Every row of the suite, `step` called before each group; the remotes pinned to
/// `peer_cpu` when given (the host thread is on another, pinned by the bench).
pub fn rows(peer_cpu: Option<usize>, mut step: impl FnMut(&str)) -> Vec<Result<Vec<Row>, String>> {
    REMOTES
        .iter()
        .map(|&n| {
            step(&format!("scale: {n} remote(s)"));
            group(n, peer_cpu)
        })
        .collect()
}

fn find<'a>(rows: &'a [Row], bench: &str, transport: &str) -> Option<&'a Row> {
    rows.iter()
        .find(|r| r.bench == bench && r.transport == transport)
}

/// The summary's entries: 4 × 64 over 1 × 1 host CPU per round trip (≤ 1.25×), and the
/// quiet endpoint's p99 flooded over alone (≤ 2×).
pub(super) fn targets(rows: &[Row]) -> Vec<super::Target> {
    let cpu = |t| find(rows, "scale", t).and_then(|r| r.host_cpu_ns);
    let p99 = |t| {
        find(rows, "scale-flood", t)
            .and_then(|r| r.lat)
            .map(|l| l.p99 as f64)
    };
    let mut v = Vec::new();
    if let (Some(a), Some(b)) = (cpu("intercore-4x64"), cpu("intercore-1x1")) {
        v.push(super::Target {
            name: "scale_cpu_per_msg_4x64_over_1x1",
            value: Some(a / b),
            bound: Some(1.25),
            at_most: true,
            what: "host CPU per round trip, 4 remotes × 64 endpoints / 1 × 1",
        });
    }
    if let (Some(a), Some(b)) = (p99("intercore-quiet-flooded"), p99("intercore-quiet-alone")) {
        v.push(super::Target {
            name: "scale_flood_p99_over_alone",
            value: Some(a / b),
            bound: Some(2.0),
            at_most: true,
            what: "an endpoint's p99 beside a flooding one / alone",
        });
    }
    if let (Some(a), Some(b)) = (
        p99("intercore-quiet-flooded-credit"),
        p99("intercore-quiet-alone-credit"),
    ) {
        v.push(super::Target {
            name: "scale_flood_p99_over_alone_credit",
            value: Some(a / b),
            bound: Some(2.0),
            at_most: true,
            what: "an endpoint's p99 beside a flooding one / alone, transmit credit FLOOD_CREDIT (1)",
        });
    }
    v
}
