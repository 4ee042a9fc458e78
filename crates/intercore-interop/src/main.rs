//! `intercore-peer`: intercore's side of one pair of `scripts/test-real-peers.sh`.
//!
//! ```text
//! intercore-peer openamp-host   [--shm PATH] [--socket PATH] [--sweeps N] [--depth N] [--wait MODE]
//! intercore-peer openamp-remote [--shm PATH] [--socket PATH] [--count N] [--wait MODE]
//! intercore-peer lite-host      --shm PATH [--sweeps N] [--depth N] [--wait MODE]
//! intercore-peer lite-remote    --shm PATH [--count N] [--wait MODE]
//! ```
//!
//! A host sends every payload size 1..=496 `--sweeps` times to the peer's echo service and
//! checks every reply byte for byte; it prints `intercore host: N passed, N failed` and
//! exits non-zero unless every message came back intact. `--depth N` keeps up to N
//! messages in flight to the one endpoint (a pipelined echo; default 1, a ping-pong). A remote announces the echo
//! service and echoes `--count` messages. MODE is `poll`, `event` or `adaptive`.
#![forbid(unsafe_code)]

use intercore::rpmsg::Channel;
use intercore::rpmsg::RPMSG_ADDR_ANY;
use intercore::rpmsg::{
    DeviceControl, DevicePlacement, HostBus, HostConfig, RemoteBus, RemoteConfig, RscLocation,
};
use intercore::virtq::VringLayout;
use intercore::wire::Le32;
use intercore::wire::rpmsg::{VIRTIO_ID_RPMSG, VIRTIO_RPMSG_F_NS};
use intercore::wire::rsc::{FwRscVdev, FwRscVdevVring, RscTableWriter};
use intercore::{DevAddr, Doorbell, LinearMap, SharedMemory, WaitMode};
use intercore_interop::{MuBell, MuSide, SocketBell, lite, openamp};
use intercore_linux::MemfdRegion;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// Largest payload in a 512-byte buffer.
const MAX_PAYLOAD: usize = 496;
/// How long a start-up step may take (the peer may be started well after us).
const START: Option<Duration> = Some(Duration::from_secs(60));
/// How long one message may take.
const STEP: Option<Duration> = Some(Duration::from_secs(10));

struct Args {
    mode: String,
    shm: Option<String>,
    socket: String,
    sweeps: usize,
    count: usize,
    depth: usize,
    wait: WaitMode,
}

fn parse() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let mode = it.next().ok_or(
        "usage: intercore-peer openamp-host|openamp-remote|lite-host|lite-remote [options]",
    )?;
    let mut a = Args {
        mode,
        shm: None,
        socket: openamp::SOCKET.into(),
        sweeps: 1,
        count: MAX_PAYLOAD,
        depth: 1,
        wait: WaitMode::Event,
    };
    while let Some(k) = it.next() {
        let mut v = || it.next().ok_or(format!("{k} needs a value"));
        match k.as_str() {
            "--shm" => a.shm = Some(v()?),
            "--socket" => a.socket = v()?,
            "--sweeps" => a.sweeps = v()?.parse().map_err(|e| format!("--sweeps: {e}"))?,
            "--depth" => a.depth = v()?.parse().map_err(|e| format!("--depth: {e}"))?,
            "--count" => a.count = v()?.parse().map_err(|e| format!("--count: {e}"))?,
            "--wait" => {
                a.wait = match v()?.as_str() {
                    "poll" => WaitMode::Poll,
                    "event" => WaitMode::Event,
                    "adaptive" => WaitMode::Adaptive(Duration::from_micros(50)),
                    w => return Err(format!("--wait: unknown mode {w} (poll, event, adaptive)")),
                }
            }
            _ => return Err(format!("unknown option {k}")),
        }
    }
    Ok(a)
}

/// Opens (creating if needed) the POSIX shared-memory object at `path` (`/dev/shm/NAME`,
/// where `shm_open(NAME)` puts it) with at least `len` bytes, and maps it shared.
fn open_shm(path: &str, len: usize) -> Result<Arc<MemfdRegion>, String> {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| format!("opening the shared-memory object {path}: {e}"))?;
    let have = f.metadata().map_err(|e| format!("{path}: {e}"))?.len();
    if have < len as u64 {
        f.set_len(len as u64)
            .map_err(|e| format!("sizing {path} to {len:#x}: {e}"))?;
    }
    let fd: std::os::fd::OwnedFd = f.into();
    MemfdRegion::from_fd(fd)
        .map(Arc::new)
        .map_err(|e| format!("mapping {path}: {e}"))
}

/// Writes a vdev-only resource table at `at`: vrings at `vrings` (num, align), notify ids.
fn write_table(
    mem: &MemfdRegion,
    at: usize,
    vrings: [u64; 2],
    num: u32,
    align: u32,
    notify_ids: [u32; 2],
) -> Result<RscLocation, String> {
    let mut buf = [0u8; 256];
    let mut w = RscTableWriter::new(&mut buf, 1).map_err(|e| format!("table: {e:?}"))?;
    let ring = |i: usize| FwRscVdevVring {
        da: Le32::new(vrings[i] as u32),
        align: Le32::new(align),
        num: Le32::new(num),
        notifyid: Le32::new(notify_ids[i]),
        pa: Le32::new(0),
    };
    w.add_vdev(
        &FwRscVdev {
            id: Le32::new(VIRTIO_ID_RPMSG),
            dfeatures: Le32::new(1 << VIRTIO_RPMSG_F_NS),
            ..Default::default()
        },
        &[ring(0), ring(1)],
        &[],
    )
    .map_err(|e| format!("table: {e:?}"))?;
    let len = w.finish();
    mem.write(at, &buf[..len]);
    Ok(RscLocation { offset: at, len })
}

/// Offset = device address over the whole object (both generic machines say so).
fn identity(len: usize) -> LinearMap {
    LinearMap {
        base: DevAddr(0),
        offset: 0,
        len,
    }
}

/// The payload of message `size` in sweep `sweep`: every byte depends on both, so a reply
/// that is stale, shifted or from another message does not compare equal.
fn pattern(sweep: usize, size: usize) -> Vec<u8> {
    (0..size)
        .map(|k| (k.wrapping_mul(31) ^ size.wrapping_mul(7) ^ sweep.wrapping_mul(131)) as u8)
        .collect()
}

/// Every size 1..=496, `sweeps` times, to the echo service `name`; every reply verified.
fn host_sweeps<M: SharedMemory, D: Doorbell>(
    host: &mut HostBus<M, D>,
    name: &str,
    sweeps: usize,
    depth: usize,
) -> ExitCode {
    let addr = match host.find_service(name, START) {
        Ok(a) => a,
        Err(e) => {
            println!("intercore host: the service {name:?} was never announced: {e}");
            println!("intercore host: 0 passed, {} failed", sweeps * MAX_PAYLOAD);
            return ExitCode::FAILURE;
        }
    };
    let ep = match host.create_endpoint("intercore-client", None) {
        Ok(ep) => ep,
        Err(e) => {
            println!("intercore host: endpoint: {e}");
            return ExitCode::FAILURE;
        }
    };
    let (mut passed, mut failed) = (0usize, 0usize);
    let total = sweeps * MAX_PAYLOAD;
    let mut buf = [0u8; 512];
    // Messages sent and not yet answered, oldest first (one endpoint: echoes keep order).
    let mut outstanding = std::collections::VecDeque::new();
    let mut next = (0..sweeps).flat_map(|s| (1..=MAX_PAYLOAD).map(move |n| (s, n)));
    let mut more = true;
    loop {
        while more && outstanding.len() < depth.max(1) {
            let Some((sweep, size)) = next.next() else {
                more = false;
                break;
            };
            let p = pattern(sweep, size);
            if let Err(e) = host.send_raw(ep, addr, &p, STEP) {
                println!("intercore host: sweep {sweep} size {size}: send: {e}");
                return verdict(passed, total - passed, total);
            }
            outstanding.push_back((sweep, size, p));
        }
        let Some((sweep, size, p)) = outstanding.pop_front() else {
            break;
        };
        match host.recv_from(&Channel::new(ep, RPMSG_ADDR_ANY), &mut buf, STEP) {
            Ok((src, len)) if src == Some(addr) && buf[..len] == p[..] => passed += 1,
            Ok((src, len)) => {
                failed += 1;
                println!(
                    "intercore host: sweep {sweep} size {size}: reply of {len} bytes from {src:x?} differs"
                );
            }
            Err(e) => {
                println!(
                    "intercore host: sweep {sweep} size {size}: no reply: {e} ({} of the host's held messages dropped so far)",
                    host.stats().held_dropped
                );
                return verdict(passed, total - passed, total);
            }
        }
    }
    verdict(passed, failed, total)
}

/// Prints the verdict line; success only if every message came back intact.
fn verdict(passed: usize, failed: usize, total: usize) -> ExitCode {
    println!("intercore host: {passed} passed, {failed} failed");
    if failed == 0 && passed == total {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Echoes `count` messages on a new endpoint announced as `name`. When the host goes away
/// and another one comes (`PeerGone`: a status reset, or rings rebuilt under a link
/// without a status word), waits for the new host with `wait_ready`, announces the
/// endpoint again and goes on counting, up to `MAX_HOSTS` hosts.
fn remote_echo<M: SharedMemory, D: Doorbell, const N: usize>(
    bus: &mut RemoteBus<M, D, N>,
    name: &str,
    count: usize,
) -> Result<(), String> {
    const MAX_HOSTS: usize = 4;
    bus.wait_ready(START)
        .map_err(|e| format!("link never came up: {e}"))?;
    let ep = bus
        .create_endpoint(name, None)
        .map_err(|e| format!("endpoint: {e}"))?;
    bus.announce(ep)
        .map_err(|e| format!("announcing {name}: {e}"))?;
    let mut buf = [0u8; 512];
    let mut hosts = 1;
    let mut i = 0;
    let mut first = true;
    while i < count {
        let t = if first { START } else { STEP };
        let got = bus.recv_any_with(t, |m| {
            let n = m.payload.len().min(buf.len());
            buf[..n].copy_from_slice(&m.payload[..n]);
            (m.src, n)
        });
        let got = match got {
            // A rebuilt ring met first may surface as a protocol error; the next call
            // tells whether the host is gone.
            Err(first @ intercore::Error::Protocol { .. }) if bus.is_ready() => bus
                .recv_any_with(Some(Duration::ZERO), |m| {
                    let n = m.payload.len().min(buf.len());
                    buf[..n].copy_from_slice(&m.payload[..n]);
                    (m.src, n)
                })
                // Only `PeerGone` replaces the protocol error: anything else reports it.
                .map_err(|e| {
                    if e == intercore::Error::PeerGone {
                        e
                    } else {
                        first
                    }
                }),
            other => other,
        };
        let (src, len) = match got {
            Ok(v) => v,
            Err(intercore::Error::PeerGone) if hosts < MAX_HOSTS => {
                println!(
                    "intercore remote: the host went away after {i} messages; waiting for the next one"
                );
                hosts += 1;
                bus.wait_ready(START)
                    .map_err(|e| format!("no new host after {i} messages: {e}"))?;
                bus.announce(ep)
                    .map_err(|e| format!("announcing {name} again: {e}"))?;
                first = true;
                continue;
            }
            Err(e) => return Err(format!("message {i} of {count}: {e}")),
        };
        first = false;
        bus.send_raw(ep, src, &buf[..len], STEP)
            .map_err(|e| format!("echo {i} of {count}: {e}"))?;
        i += 1;
    }
    println!("intercore remote: echoed {count} messages ({hosts} host(s))");
    Ok(())
}

fn run(a: Args) -> Result<ExitCode, String> {
    let err = |e: intercore::Error| e.to_string();
    match a.mode.as_str() {
        "openamp-host" => {
            // The generic machine's remote is the socket server and writes the table first.
            let bell = SocketBell::connect(&a.socket, Duration::from_secs(60))
                .map_err(|e| e.to_string())?;
            let path = a.shm.unwrap_or(format!("/dev/shm/{}", openamp::SHM_NAME));
            let mem = open_shm(&path, openamp::SHM_SIZE)?;
            let loc = RscLocation {
                offset: openamp::RSC_PA,
                len: 0x400,
            };
            let cfg = HostConfig {
                num_bufs: openamp::VRING_NUM as u16,
                wait: a.wait,
                buffers: Some(LinearMap {
                    base: DevAddr(openamp::BUF_PA as u64),
                    offset: openamp::BUF_PA,
                    len: openamp::BUF_SIZE,
                }),
                ..HostConfig::default()
            };
            let mut host = HostBus::new(
                Arc::clone(&mem),
                bell,
                &identity(openamp::SHM_SIZE),
                loc,
                cfg,
            )
            .map_err(err)?;
            Ok(host_sweeps(&mut host, openamp::SERVICE, a.sweeps, a.depth))
        }
        "openamp-remote" => {
            let path = a.shm.unwrap_or(format!("/dev/shm/{}", openamp::SHM_NAME));
            let mem = open_shm(&path, openamp::SHM_SIZE)?;
            // As the generic machine's socket server does (`platform_create_proc`): the
            // table goes into shared memory before the host can connect.
            let loc = write_table(
                &mem,
                openamp::RSC_PA,
                openamp::VRINGS,
                openamp::VRING_NUM,
                openamp::VRING_ALIGN,
                openamp::NOTIFY_IDS,
            )?;
            let bell = SocketBell::accept(&a.socket).map_err(|e| e.to_string())?;
            // The generic machine's table has no buffer carveout: the host's pool is at
            // SHARED_BUF_PA, which is where our remote accepts buffers.
            let rmap = identity(openamp::SHM_SIZE);
            let mut cfg = RemoteConfig::default().wait(a.wait);
            cfg.buffers = Some(LinearMap {
                base: DevAddr(openamp::BUF_PA as u64),
                offset: openamp::BUF_PA,
                len: openamp::BUF_SIZE,
            });
            let mut bus = RemoteBus::<_, _, 8>::new(mem, bell, &rmap, loc, cfg).map_err(err)?;
            remote_echo(&mut bus, openamp::SERVICE, a.count)?;
            Ok(ExitCode::SUCCESS)
        }
        "lite-host" => {
            let path = a.shm.ok_or("lite-host needs --shm")?;
            let mem = open_shm(&path, lite::SHM_SIZE)?;
            let loc = write_table(
                &mem,
                lite::RSC_PA,
                [0, lite::VRING_SIZE as u64],
                lite::BUF_COUNT,
                lite::VRING_ALIGN,
                lite::NOTIFY_IDS,
            )?;
            let bell = MuBell::new(Arc::clone(&mem), lite::MBOX_PA, MuSide::Master).map_err(err)?;
            bell.reset();
            let cfg = HostConfig {
                num_bufs: lite::BUF_COUNT as u16,
                wait: a.wait,
                buffers: Some(LinearMap {
                    base: DevAddr(lite::BUF_PA as u64),
                    offset: lite::BUF_PA,
                    len: lite::BUF_LEN,
                }),
                ..HostConfig::default()
            };
            let mut host =
                HostBus::new(Arc::clone(&mem), bell, &identity(lite::SHM_SIZE), loc, cfg)
                    .map_err(err)?;
            Ok(host_sweeps(&mut host, lite::SERVICE, a.sweeps, a.depth))
        }
        "lite-remote" => {
            let path = a.shm.ok_or("lite-remote needs --shm")?;
            let mem = open_shm(&path, lite::SHM_SIZE)?;
            let bell = MuBell::new(Arc::clone(&mem), lite::MBOX_PA, MuSide::Remote).map_err(err)?;
            let layout = VringLayout::new(lite::BUF_COUNT, lite::VRING_ALIGN)
                .map_err(|e| format!("vring geometry: {e:?}"))?;
            let placement = DevicePlacement {
                control: DeviceControl::FirstNotification {
                    features: 1 << VIRTIO_RPMSG_F_NS,
                },
                rings: [(0, layout), (lite::VRING_SIZE, layout)],
                notify_ids: lite::NOTIFY_IDS,
                buffers: LinearMap {
                    base: DevAddr(lite::BUF_PA as u64),
                    offset: lite::BUF_PA,
                    len: lite::BUF_LEN,
                },
            };
            let mut bus = RemoteBus::<_, _, 8>::new(
                mem,
                bell,
                &placement.buffers,
                placement,
                RemoteConfig::default().wait(a.wait),
            )
            .map_err(err)?;
            remote_echo(&mut bus, lite::SERVICE, a.count)?;
            Ok(ExitCode::SUCCESS)
        }
        m => Err(format!("unknown mode {m}")),
    }
}

fn main() -> ExitCode {
    match parse().and_then(run) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("intercore-peer: {e}");
            ExitCode::FAILURE
        }
    }
}
