//! `intercore demo --soc qemu-r5f|qemu-m4f`: the same demo with the firmware as ARM machine
//! code on an emulated core (intercore_sim::qemu): verified messages of mixed sizes, the
//! firmware's own echo count over the link (its statistics service) and on semihosting,
//! then the data-plane stage with CRC32C computed on the ARM core, every result checked.

use super::{Opts, Rng, fill, percentile};
use crate::bulk::{Checker, Outcome, input_len};
use intercore::dataplane::PoolConfig;
use intercore::rpmsg::Channel;
use intercore::rpmsg::HostConfig;
use intercore::rpmsg::RPMSG_ADDR_ANY;
use intercore_fw_offload::{OffloadStats, STATS_SERVICE};
use intercore_sim::qemu::{Loader, QemuConfig, QemuCore, QemuError, QemuSoc};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Messages and MiB when not given: an emulated core is slower than the simulator.
const QEMU_MESSAGES: u64 = 2000;
const QEMU_BULK_MIB: u64 = 16;
/// Generous: emulated cores on a loaded 2-core machine swing by 100×.
const TIMEOUT: Duration = Duration::from_secs(30);

fn image_for(o: &Opts, core: QemuCore) -> Result<PathBuf, String> {
    intercore_board::qemu_image(core, o.target.fw_dir.as_deref())
        .map_err(|e| format!("{e} (or --fw-dir)"))
}

/// The firmware's last "echoed N messages" line on its console.
fn echoed_on_console(console: &str) -> Option<u64> {
    console.lines().rev().find_map(|l| {
        let rest = l.split("echoed ").nth(1)?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

fn json_str(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => o.push_str(&format!("\\u{:04x}", c as u32)),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

#[derive(Default)]
struct Bulk {
    bytes: u64,
    buffers: u64,
    corrupted: u64,
    first_problem: Option<String>,
}

pub(super) fn run(o: &Opts, core: QemuCore, json: bool) -> Result<bool, String> {
    let messages = o.messages.unwrap_or(QEMU_MESSAGES);
    let bulk_mib = o.bulk_mib.unwrap_or(QEMU_BULK_MIB);
    let image = image_for(o, core)?;
    let mut soc =
        QemuSoc::start(&QemuConfig::new(core, image.clone())).map_err(|e| e.to_string())?;
    let plan = soc.load_plan().clone();
    let qemu_pid = soc.qemu_pid();
    if !json {
        println!(
            "intercore demo: {} up — image {}, QEMU pid {}",
            core.name(),
            image.display(),
            qemu_pid
        );
        println!("{plan}");
    }
    let t_all = Instant::now();
    let mut fault: Option<String> = None;
    let mut errors = 0u64;
    let mut rtts = Vec::new();
    let mut first_error = None;
    let mut fw_link = None;
    let mut bulk = Bulk::default();
    let mut kicks = 0;
    {
        let mut bus = soc
            .host_bus(HostConfig {
                wait: o.wait,
                ..HostConfig::default()
            })
            .map_err(|e| format!("host bus: {e}"))?;
        let step = (|| -> Result<(), String> {
            let service = intercore_fw_offload::ECHO_SERVICE;
            let remote = bus
                .find_service(service, Some(TIMEOUT))
                .map_err(|e| format!("waiting for {service:?}: {e}"))?;
            let ep = bus
                .create_endpoint("intercore-demo", None)
                .map_err(|e| e.to_string())?;
            let max = bus.max_payload();
            let (mut out, mut back) = (vec![0u8; max], vec![0u8; max]);
            let mut rng = Rng::new(o.seed);
            for seq in 0..messages {
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
                match r {
                    Ok((src, n)) if src == Some(remote) && n == len && back[..n] == out[..len] => {
                        rtts.push(t0.elapsed().as_nanos() as u64)
                    }
                    Ok((src, n)) => {
                        errors += 1;
                        first_error.get_or_insert(format!("message {seq}: got {n} bytes from {}, sent {len} to {remote}, content differs", src.unwrap_or_default()));
                    }
                    Err(e) => {
                        errors += 1;
                        first_error.get_or_insert(format!("message {seq}: {e}"));
                        if bus.broken().is_some() || matches!(e, intercore::Error::Timeout) {
                            return Err(format!("message {seq}: {e}"));
                        }
                    }
                }
            }
            // The firmware's own count, over the link.
            let stats_ep = bus
                .find_service(STATS_SERVICE, Some(TIMEOUT))
                .map_err(|e| format!("waiting for {STATS_SERVICE:?}: {e}"))?;
            bus.send_raw(ep, stats_ep, b"?", Some(Duration::from_secs(1)))
                .map_err(|e| e.to_string())?;
            let (_, n) = bus
                .recv_from(
                    &Channel::new(ep, RPMSG_ADDR_ANY),
                    &mut back,
                    Some(Duration::from_secs(1)),
                )
                .map_err(|e| format!("statistics: {e}"))?;
            fw_link = OffloadStats::from_bytes(&back[..n]);
            if bulk_mib > 0 {
                bulk_stage(&soc, &mut bus, o.seed, bulk_mib, &mut bulk)?;
            }
            Ok(())
        })();
        if let Err(e) = step {
            fault = Some(e);
        }
        kicks = bus.stats().kicks.max(kicks);
        // Dropping the bus resets the device and rings the firmware, which then exits.
    }
    let elapsed = t_all.elapsed();
    // A firmware that died mid-run is the cause of whatever the link reported.
    let exit = match soc.fault_now() {
        Some(f) => Err(f),
        None => soc.shutdown(TIMEOUT),
    };
    let (console, uart, exit_err) = match exit {
        Ok(x) => (x.console, x.uart, None),
        Err(e) => {
            let log = match &e {
                QemuError::FirmwareFault { log, .. } => log.clone(),
                _ => String::new(),
            };
            (log, None, Some(e))
        }
    };
    if let Some(e) = &exit_err {
        // The named firmware error replaces the link's symptom (PeerGone, Timeout).
        fault = Some(e.to_string());
    }
    let fw_console = echoed_on_console(&console);
    let ok_msgs = rtts.len() as u64;
    rtts.sort_unstable();
    let (p50, p99, max_rtt) = (
        percentile(&rtts, 0.50),
        percentile(&rtts, 0.99),
        rtts.last().copied().unwrap_or(0),
    );
    let fw_echoed_link = fw_link.map(|s| s.echoed);
    let counts_agree = fw_echoed_link == Some(ok_msgs) && fw_console == Some(ok_msgs);
    let by = |l: Loader| plan.segments.iter().filter(|s| s.by == l).count();
    if !json {
        println!(
            "messages: {ok_msgs} verified in {:.2} s ({errors} errors), round trip p50 {:.1} µs, p99 {:.1} µs, max {:.1} µs",
            elapsed.as_secs_f64(),
            p50 as f64 / 1e3,
            p99 as f64 / 1e3,
            max_rtt as f64 / 1e3
        );
        println!(
            "firmware's own echo count: {} over the link, {} on semihosting (host verified {ok_msgs})",
            fw_echoed_link.map_or("none".into(), |n| n.to_string()),
            fw_console.map_or("none".into(), |n| n.to_string())
        );
        println!(
            "bulk: {:.1} MiB in {} buffers, CRC32C on the {} core, {} corrupted",
            bulk.bytes as f64 / (1 << 20) as f64,
            bulk.buffers,
            core.name(),
            bulk.corrupted
        );
        print!("firmware console:\n{console}");
        if let Some(u) = &uart {
            print!("firmware UART:\n{u}");
        }
    }
    if let Some(e) = bulk.first_problem.as_ref().or(first_error.as_ref()) {
        eprintln!("first problem: {e}");
    }
    if json {
        let opt = |v: Option<u64>| v.map_or("null".into(), |n| n.to_string());
        println!(
            "{{\"soc\":\"{}\",\"messages\":{ok_msgs},\"errors\":{errors},\"rtt_p50_ns\":{p50},\"rtt_p99_ns\":{p99},\"rtt_max_ns\":{max_rtt},\"elapsed_s\":{:.3},\"qemu_pid\":{},\"doorbells\":{kicks},\"bulk_bytes\":{},\"bulk_buffers\":{},\"corrupted\":{},\"fw_echoed_link\":{},\"fw_echoed_semihosting\":{},\"host_echoed\":{ok_msgs},\"segments_loaded_by_host\":{},\"segments_loaded_by_qemu\":{},\"entry\":{},\"error\":{}}}",
            core.name(),
            elapsed.as_secs_f64(),
            qemu_pid,
            bulk.bytes,
            bulk.buffers,
            bulk.corrupted,
            opt(fw_echoed_link),
            opt(fw_console),
            by(Loader::Host),
            by(Loader::Qemu),
            plan.entry,
            fault.as_deref().map_or("null".into(), json_str),
        );
    }
    if let Some(f) = &fault {
        eprintln!("intercore demo: {f}");
    } else if !counts_agree {
        eprintln!(
            "intercore demo: the firmware's echo count ({:?} over the link, {:?} on semihosting) differs from the host's {ok_msgs}",
            fw_echoed_link, fw_console
        );
    }
    Ok(fault.is_none()
        && errors == 0
        && ok_msgs == messages
        && counts_agree
        && bulk.corrupted == 0
        && (bulk_mib == 0 || bulk.bytes > 0))
}

fn bulk_stage<D: intercore::Doorbell>(
    soc: &QemuSoc,
    bus: &mut intercore::rpmsg::HostBus<std::sync::Arc<intercore_linux::MemfdRegion>, D>,
    seed: u64,
    mib: u64,
    r: &mut Bulk,
) -> Result<(), String> {
    const BUF: usize = 1 << 20;
    let cfg = PoolConfig {
        classes: vec![(BUF, 3)],
        align: 4096,
    };
    let mut dp = soc
        .open_data_plane(bus, &cfg, Some(TIMEOUT))
        .map_err(|e| format!("data plane: {e}"))?;
    let len = input_len(BUF);
    let total = (mib << 20).div_ceil(len as u64);
    let mut checker = Checker::default();
    let mut free = Vec::new();
    while let Some(b) = dp.alloc(BUF) {
        free.push(b);
    }
    let (mut submitted, mut done) = (0u64, 0u64);
    while done < total {
        while submitted < total {
            let Some(buf) = free.pop() else { break };
            checker
                .submit(&mut dp, bus, buf, len, submitted ^ seed)
                .map_err(|e| format!("submit: {e}"))?;
            submitted += 1;
        }
        let c = dp
            .wait_complete(bus, Some(TIMEOUT))
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
        r.buffers = done;
        free.push(c.into_writable());
    }
    Ok(())
}
