//! iceoryx2 (the published zero-copy IPC crate) as a round-trip baseline, measured by the same
//! harness: two publish-subscribe services, ping from this process to a peer process and
//! pong back, both sides busy-polling (iceoryx2's fastest mode, as in its own latency
//! benchmark). The payload is copied into a loaned sample, copied into the echo by the peer
//! and compared on return — the same work the intercore rows do.
//!
//! Service names carry this process's id and a sequence number, so concurrent runs do not
//! collide. The host drops its publisher to tell the peer to stop; the peer then drops its
//! ports and its node, which removes its shared memory. If the peer dies instead (it gets
//! SIGKILL when the host dies or when it does not stop in time), the host's node removes
//! the dead peer's resources when it is dropped (iceoryx2's dead-node cleanup, on by
//! default), and the next iceoryx2 node created on the machine does the same for a dead host.

use super::floor::Peer;
use super::stats::{CpuMeter, Row, measure};
use iceoryx2::port::publisher::Publisher;
use iceoryx2::port::subscriber::Subscriber;
use iceoryx2::prelude::*;
use iceoryx2::service::port_factory::publish_subscribe::PortFactory as PubSub;
use intercore_linux::PidFd;
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::time::{Duration, Instant};

type Svc = ipc::Service;

/// How long either side waits for the other before giving up.
const PATIENCE: Duration = Duration::from_secs(2);

fn e<E: core::fmt::Debug>(what: &'static str) -> impl Fn(E) -> String {
    move |err| format!("{what}: {err:?}")
}

fn node(name: &str) -> Result<Node<Svc>, String> {
    NodeBuilder::new()
        .name(&NodeName::new(name).map_err(e("node name"))?)
        // The bench keeps the default SIGINT/SIGTERM behaviour; iceoryx2 must not catch them.
        .signal_handling_mode(SignalHandlingMode::Disabled)
        .create::<Svc>()
        .map_err(e("creating a node"))
}

/// Creates (host) or opens (peer) one direction: one publisher, one subscriber, no history,
/// one-sample subscriber buffer — the configuration of iceoryx2's own latency benchmark.
fn service(node: &Node<Svc>, name: &str, create: bool) -> Result<PubSub<Svc, [u8], ()>, String> {
    let name = ServiceName::new(name).map_err(e("service name"))?;
    let b = node.service_builder(&name).publish_subscribe::<[u8]>();
    if create {
        b.max_publishers(1)
            .max_subscribers(1)
            .max_nodes(2)
            .history_size(0)
            .subscriber_max_buffer_size(1)
            .enable_safe_overflow(true)
            .create()
            .map_err(e("creating a service"))
    } else {
        b.open().map_err(e("opening a service"))
    }
}

fn send(p: &Publisher<Svc, [u8], ()>, data: &[u8]) -> Result<(), String> {
    let delivered = p
        .loan_slice_uninit(data.len())
        .map_err(e("loan"))?
        .write_from_slice(data)
        .send()
        .map_err(e("send"))?;
    if delivered == 0 {
        return Err("the peer's subscriber is not connected".into());
    }
    Ok(())
}

/// Round trips of `size` bytes to a peer process that echoes them, both sides busy-polling.
pub fn rtt(size: usize, warmup: usize, samples: usize, cpu: Option<usize>) -> Result<Row, String> {
    static SEQ: AtomicU32 = AtomicU32::new(0);
    let base = format!(
        "intercore/bench/{}/{}",
        std::process::id(),
        SEQ.fetch_add(1, Relaxed)
    );
    let (ping_name, pong_name) = (format!("{base}/ping"), format!("{base}/pong"));
    let node = node("intercore-bench")?;
    let ping = service(&node, &ping_name, true)?;
    let pong = service(&node, &pong_name, true)?;
    let tx = ping
        .publisher_builder()
        .initial_max_slice_len(size.max(1))
        .create()
        .map_err(e("creating a publisher"))?;
    let rx = pong
        .subscriber_builder()
        .create()
        .map_err(e("creating a subscriber"))?;
    let peer = Peer::spawn(
        &["iceoryx2".into(), ping_name, pong_name, size.to_string()],
        &[],
        cpu,
    )?;
    let pidfd = PidFd::open(peer.pid() as i32).map_err(|e| e.to_string())?;
    let ports = Ports { ping, pong, tx, rx };
    let result = measure_rtt(&ports, &peer, &pidfd, size, warmup, samples);
    // Dropping the publisher tells the peer to stop; let it remove its own resources.
    let Ports { ping, pong, tx, rx } = ports;
    drop((tx, rx));
    let _ = pidfd.wait_exit(Some(PATIENCE));
    drop(peer);
    drop((ping, pong));
    drop(node);
    result
}

/// The host's side of both services.
struct Ports {
    ping: PubSub<Svc, [u8], ()>,
    pong: PubSub<Svc, [u8], ()>,
    tx: Publisher<Svc, [u8], ()>,
    rx: Subscriber<Svc, [u8], ()>,
}

fn measure_rtt(
    Ports { ping, pong, tx, rx }: &Ports,
    peer: &Peer,
    pidfd: &PidFd,
    size: usize,
    warmup: usize,
    samples: usize,
) -> Result<Row, String> {
    // Wait for the peer's ports; a sample sent before its subscriber exists would be lost.
    let t0 = Instant::now();
    while ping.dynamic_config().number_of_subscribers() == 0
        || pong.dynamic_config().number_of_publishers() == 0
    {
        if pidfd.exited().unwrap_or(true) {
            return Err("the peer exited during setup".into());
        }
        if t0.elapsed() > Duration::from_secs(5) {
            return Err("the peer did not connect".into());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let mut out: Vec<u8> = (0..size).map(|i| i as u8).collect();
    let mut seq = 0u8;
    let mut errors = 0u64;
    let meter = CpuMeter::start(Some(peer.pid()));
    let rec = measure(warmup, samples, || {
        // A changing first byte: a lost or stale echo shows up as an error.
        seq = seq.wrapping_add(1);
        if let Some(b) = out.first_mut() {
            *b = seq;
        }
        send(tx, &out)?;
        let t0 = Instant::now();
        let mut spins = 0u32;
        loop {
            if let Some(s) = rx.receive().map_err(e("receive"))? {
                if s.payload() != &out[..] {
                    errors += 1;
                }
                return Ok(());
            }
            core::hint::spin_loop();
            spins = spins.wrapping_add(1);
            if spins % (1 << 16) == 0 && t0.elapsed() > PATIENCE {
                return Err("the peer stopped answering".into());
            }
        }
    })?;
    let mut row = Row::new("rtt", "iceoryx2", size);
    let (h, p) = meter.per_op(warmup as u64 + rec.count());
    row.lat = Some(rec.lat());
    row.host_cpu_ns = Some(h);
    row.peer_cpu_ns = p;
    row.errors = errors;
    row.note = "busy-polling both sides (iceoryx2's fastest mode); publish-subscribe ping/pong, \
                payload copied in, echoed by copy"
        .into();
    Ok(row)
}

/// The peer side (runs in the child process): opens both services, echoes every ping as a
/// pong, busy-polling, and returns once the host's publisher is gone.
pub fn peer(args: &[String]) -> Result<(), String> {
    echo(args).map_err(|m| format!("iceoryx2: {m}"))
}

fn echo(args: &[String]) -> Result<(), String> {
    let arg = |i: usize| args.get(i).ok_or("missing argument");
    let size: usize = arg(2)?.parse().map_err(|_| "bad size")?;
    let node = node("intercore-bench-peer")?;
    let ping = service(&node, arg(0)?, false)?;
    let pong = service(&node, arg(1)?, false)?;
    let rx = ping
        .subscriber_builder()
        .create()
        .map_err(e("creating a subscriber"))?;
    let tx = pong
        .publisher_builder()
        .initial_max_slice_len(size.max(1))
        .create()
        .map_err(e("creating a publisher"))?;
    let mut idle = 0u32;
    loop {
        if let Some(s) = rx.receive().map_err(e("receive"))? {
            idle = 0;
            let echo = tx
                .loan_slice_uninit(s.payload().len())
                .map_err(e("loan"))?
                .write_from_slice(s.payload());
            drop(s);
            echo.send().map_err(e("send"))?;
            continue;
        }
        core::hint::spin_loop();
        idle = idle.wrapping_add(1);
        if idle % (1 << 14) == 0 && ping.dynamic_config().number_of_publishers() == 0 {
            return Ok(());
        }
    }
}
