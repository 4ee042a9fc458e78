//! What `ping`, `echo` and `bench --board` run over a board's link: in the link owner (sim,
//! qemu) or in the command itself (kernel boards). Each returns one JSON object; the timing
//! is done here, next to the link.

use crate::bulk::{Checker, Outcome, alloc_all, input_len};
use intercore::dataplane::DpHost;
use intercore::rpmsg::{Channel, MessageIo};
use intercore::wire::dataplane::DP_SERVICE;
use intercore_board::Link;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// How long one message may take: emulated cores on a loaded 2-core machine swing by 100×.
const MSG_TIMEOUT: Option<Duration> = Some(Duration::from_secs(10));
/// How long the echo service may take to be announced.
const SERVICE_TIMEOUT: Option<Duration> = Some(Duration::from_secs(30));

/// Asked between messages: true when the job's client has gone or the link is going down
/// (the job then ends early and its answer is dropped).
pub type Stop<'a> = &'a dyn Fn() -> bool;

/// The first error of a job that was stopped.
const STOPPED: &str = "stopped: the client went away or the link is going down";

/// The echo service every firmware the boards run announces (the echo and offload
/// firmwares, on the simulator and under QEMU), unless the board names another.
pub fn service(board: &intercore_board::Board) -> String {
    board.rpmsg.service.clone()
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Deterministic content for message `seq` of `len` bytes.
fn pattern(buf: &mut [u8], seq: u64) {
    let mut x = seq.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for b in buf.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
}

/// Round trips of `sizes[i % len]` bytes; returns (sorted round-trip times in ns,
/// verified, errors, first error).
fn round_trips(
    link: &mut Link,
    ch: &Channel,
    count: u64,
    stop: Stop,
    size_of: impl Fn(u64) -> usize,
) -> (Vec<u64>, u64, u64, Option<String>) {
    let max = link.max_payload();
    let (mut out, mut back) = (vec![0u8; max], vec![0u8; max]);
    let mut rtts = Vec::with_capacity(count.min(1 << 20) as usize);
    let (mut errors, mut first) = (0u64, None);
    for seq in 0..count {
        if stop() {
            errors += 1;
            first.get_or_insert(STOPPED.to_string());
            break;
        }
        let len = size_of(seq).clamp(1, max);
        pattern(&mut out[..len], seq);
        let t0 = Instant::now();
        let r = link
            .send(ch, &out[..len], MSG_TIMEOUT)
            .and_then(|_| link.recv(ch, &mut back, MSG_TIMEOUT));
        let dt = t0.elapsed().as_nanos() as u64;
        match r {
            Ok(n) if n == len && back[..n] == out[..len] => rtts.push(dt),
            Ok(n) => {
                errors += 1;
                first.get_or_insert(format!(
                    "message {seq}: sent {len} bytes, got {n} back, content differs"
                ));
            }
            Err(e) => {
                errors += 1;
                first.get_or_insert(format!("message {seq}: {e}"));
                if matches!(e, intercore::Error::Timeout) || link.broken().is_some() {
                    break;
                }
            }
        }
    }
    let verified = rtts.len() as u64;
    rtts.sort_unstable();
    (rtts, verified, errors, first)
}

fn with_channel(
    link: &mut Link,
    service: &str,
    name: &str,
    f: impl FnOnce(&mut Link, &Channel) -> Value,
) -> Value {
    // One channel per service for the owner's life (Link::service_channel): a peer that
    // answers only its first sender (OpenAMP, Zephyr) answers every job.
    let ch = match link.service_channel(service, name, SERVICE_TIMEOUT) {
        Ok(c) => c,
        Err(e) => return json!({ "error": format!("the channel to {service:?}: {e}") }),
    };
    f(link, &ch)
}

/// `ping`: `count` verified round trips of 16 bytes.
pub fn ping(link: &mut Link, service: &str, count: u64, stop: Stop) -> Value {
    with_channel(link, service, "intercore-ping", |link, ch| {
        let t = Instant::now();
        let (rtts, verified, errors, first) = round_trips(link, ch, count, stop, |_| 16);
        json!({
            "count": count,
            "verified": verified,
            "errors": errors,
            "size": 16,
            "p50_ns": percentile(&rtts, 0.5),
            "p99_ns": percentile(&rtts, 0.99),
            "min_ns": rtts.first().copied().unwrap_or(0),
            "max_ns": rtts.last().copied().unwrap_or(0),
            "elapsed_s": t.elapsed().as_secs_f64(),
            "first_error": first,
        })
    })
}

/// `echo`: `messages` verified messages of 1, 2, ... max payload bytes (and round again);
/// `None`: one of each size.
pub fn echo(link: &mut Link, service: &str, messages: Option<u64>, stop: Stop) -> Value {
    with_channel(link, service, "intercore-echo", |link, ch| {
        let max = link.max_payload();
        let n = messages.unwrap_or(max as u64);
        let t = Instant::now();
        let (rtts, verified, errors, first) =
            round_trips(link, ch, n, stop, |seq| 1 + (seq % max as u64) as usize);
        let bytes: u64 = (0..verified).map(|s| 1 + s % max as u64).sum();
        json!({
            "messages": n,
            "verified": verified,
            "errors": errors,
            "max_payload": max,
            "bytes": bytes,
            "p50_ns": percentile(&rtts, 0.5),
            "elapsed_s": t.elapsed().as_secs_f64(),
            "first_error": first,
        })
    })
}

/// `bench rtt`: round trips of 1, 64 and max-payload bytes, `samples` each (a tenth of them,
/// at least 10, as warm-up first).
pub fn bench_rtt(link: &mut Link, service: &str, samples: u64, stop: Stop) -> Value {
    with_channel(link, service, "intercore-bench", |link, ch| {
        let max = link.max_payload();
        let mut rows = Vec::new();
        for size in [1usize, 64, max] {
            let _ = round_trips(link, ch, (samples / 10).max(10), stop, |_| size);
            let (rtts, verified, errors, first) = round_trips(link, ch, samples, stop, |_| size);
            let mean = if rtts.is_empty() {
                0
            } else {
                rtts.iter().sum::<u64>() / rtts.len() as u64
            };
            rows.push(json!({
                "bench": "rtt", "size": size, "samples": verified, "errors": errors,
                "p50_ns": percentile(&rtts, 0.5), "p99_ns": percentile(&rtts, 0.99),
                "mean_ns": mean, "first_error": first,
            }));
        }
        json!({ "rows": rows })
    })
}

/// `bench throughput`: bursts of `burst` messages sent back to back, then their echoes
/// received; messages per second and MB/s one way, for 64 bytes and the largest payload.
pub fn bench_throughput(link: &mut Link, service: &str, samples: u64, stop: Stop) -> Value {
    with_channel(link, service, "intercore-bench", |link, ch| {
        let max = link.max_payload();
        let burst = 16u64;
        let mut rows = Vec::new();
        for size in [64usize, max] {
            let out = vec![0x5au8; size];
            let mut back = vec![0u8; max];
            let (mut done, mut errors, mut first) = (0u64, 0u64, None::<String>);
            let t = Instant::now();
            'outer: while done < samples {
                if stop() {
                    errors += 1;
                    first.get_or_insert(STOPPED.to_string());
                    break;
                }
                let k = burst.min(samples - done);
                for _ in 0..k {
                    if let Err(e) = link.send(ch, &out, MSG_TIMEOUT) {
                        errors += 1;
                        first.get_or_insert(format!("send: {e}"));
                        break 'outer;
                    }
                }
                for _ in 0..k {
                    match link.recv(ch, &mut back, MSG_TIMEOUT) {
                        Ok(n) if n == size && back[..n] == out[..] => done += 1,
                        Ok(n) => {
                            errors += 1;
                            first.get_or_insert(format!("got {n} bytes back for {size}"));
                        }
                        Err(e) => {
                            errors += 1;
                            first.get_or_insert(format!("receive: {e}"));
                            break 'outer;
                        }
                    }
                }
            }
            let s = t.elapsed().as_secs_f64().max(1e-9);
            rows.push(json!({
                "bench": "throughput", "size": size, "messages": done, "burst": burst,
                "errors": errors, "msgs_per_s": done as f64 / s,
                "mb_per_s": (done * size as u64) as f64 / s / 1e6, "first_error": first,
            }));
        }
        json!({ "rows": rows })
    })
}

/// The data plane a link owner keeps between `bench bulk` requests: opening it maps the
/// pool into the remote's window (the simulator's IOMMU refuses a second mapping of it),
/// so it is opened once per link.
#[derive(Default)]
pub struct Session {
    /// The link's data plane ([`Link::open_data_plane`]): the simulated SoC's, QEMU's
    /// window, or (kernel and userspace boards) the pool from the board file over the
    /// link's channel to the firmware's offload service.
    dp: Option<DpHost<intercore_board::PoolCache>>,
    /// Where [`Board::open_pool`] looks for `/dev`, `/sys` and the device tree (`None`: the
    /// machine's own; tests pass fake trees).
    ///
    /// [`Board::open_pool`]: intercore_board::Board::open_pool
    pool_roots: Option<intercore_linux::SysRoots>,
}

/// How long a kernel or userspace board's firmware may take to announce the offload
/// service before `bench bulk` says n/a (it is announced with the core's other services).
const DP_SERVICE_TIMEOUT: Option<Duration> = Some(Duration::from_secs(3));

/// `bench bulk`: `mib` MiB in 1 MiB buffers through the zero-copy data plane, CRC32C by the
/// remote in place, every result checked. Needs the offload firmware and a pool: the sim
/// board with `firmware = "offload"`, a QEMU board, or a kernel or userspace board whose
/// firmware announces the offload service ([`DP_SERVICE`]), the pool from the board's
/// `[memory]`/`[mapping]`/`[cache]` (n/a otherwise, with why).
pub fn bench_bulk(
    link: &mut Link,
    session: &mut Session,
    board: &intercore_board::Board,
    mib: u64,
    stop: Stop,
) -> Value {
    const BUF: usize = 1 << 20;
    let timeout = Some(Duration::from_secs(30));
    let na = |why: &str| json!({ "rows": [ { "bench": "bulk", "na": why } ] });
    let len = input_len(BUF);
    let total = (mib << 20).div_ceil(len as u64);
    macro_rules! stream {
        ($dp:expr, $bus:expr) => {{
            let (dp, bus) = ($dp, $bus);
            let mut checker = Checker::default();
            let mut free = alloc_all(dp, BUF);
            if free.is_empty() {
                return na("the pool has no 1 MiB buffers");
            }
            let (mut submitted, mut done, mut good, mut corrupted) = (0u64, 0u64, 0u64, 0u64);
            let mut first = None::<String>;
            let t = Instant::now();
            // Stopped: nothing more is submitted, what is in flight is drained (so the
            // session's data plane holds no stale completions for the next job).
            let (mut total, mut stopped) = (total, false);
            while done < total {
                if !stopped && stop() {
                    (total, stopped) = (submitted, true);
                    continue;
                }
                while submitted < total {
                    let Some(buf) = free.pop() else { break };
                    if let Err(e) = checker.submit(dp, bus, buf, len, submitted) {
                        return json!({ "error": format!("submit: {e}") });
                    }
                    submitted += 1;
                }
                let c = match dp.wait_complete(bus, timeout) {
                    Ok(c) => c,
                    Err(e) => return json!({ "error": format!("waiting for a completion: {e}") }),
                };
                match checker.check(&c) {
                    Outcome::Good => good += len as u64,
                    other => {
                        corrupted += 1;
                        first.get_or_insert(format!("buffer {}: {other:?}", c.seq()));
                    }
                }
                done += 1;
                free.push(c.into_writable());
            }
            if stopped {
                return json!({ "error": STOPPED });
            }
            let s = t.elapsed().as_secs_f64().max(1e-9);
            json!({ "rows": [ {
                "bench": "bulk", "size": BUF, "buffers": done, "bytes": good,
                "corrupted": corrupted, "gbps": good as f64 / s / 1e9, "first_error": first,
            } ] })
        }};
    }
    if matches!(
        board.transport,
        intercore_board::TransportSpec::Sim { firmware, .. }
            if firmware != intercore_board::FirmwareName::Offload
    ) {
        return na("the board's firmware is not \"offload\": it has no data plane");
    }
    if session.dp.is_none() {
        let env = intercore_board::OpenEnv {
            roots: session.pool_roots.clone().unwrap_or_default(),
            ..intercore_board::OpenEnv::default()
        };
        // An emulated core has long announced its services; a board's firmware may not
        // have an offload service at all.
        let wait = if board.transport.is_emulated() {
            timeout
        } else {
            DP_SERVICE_TIMEOUT
        };
        match link.open_data_plane(board, &env, wait) {
            Ok(dp) => session.dp = Some(dp),
            Err(intercore_board::DataPlaneError::NoService(e)) => {
                return na(&format!(
                    "the firmware does not announce the offload service {DP_SERVICE:?} ({e}): it has no data plane"
                ));
            }
            Err(e) => return json!({ "error": e.to_string() }),
        }
    }
    let dp = session.dp.as_mut().expect("opened above");
    stream!(dp, link)
}

#[cfg(test)]
mod tests {
    //! `bench bulk` on a kernel board against intercore-linux's fake rpmsg kernel
    //! (`rpmsg_char::fake`) and fake remoteproc tree, the pool a carveout through a fake
    //! `/dev/mem` (a sparse file), the remote `DpRemote` with the offload firmware's worker
    //! on the fake's remote end, reading a second mapping of the same file.
    use super::*;
    use intercore::dataplane::{Coherent, DpRemote};
    use intercore::{DevAddr, LinearMap};
    use intercore_board::{Board, OpenEnv};
    use intercore_linux::remoteproc::fake::{FakeKernel, FakeRproc};
    use intercore_linux::rpmsg_char::fake::FakeRpmsgKernel;
    use intercore_linux::{DevMemCaching, PhysCarveout, SysRoots};
    use std::sync::Arc;

    const PA: u64 = 0x400_0000;
    const LEN: usize = 4 << 20;

    fn setup(tag: &str) -> (std::path::PathBuf, FakeKernel, Arc<FakeRpmsgKernel>, Board) {
        let root =
            std::env::temp_dir().join(format!("intercore-cli-bulk-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("dev")).unwrap();
        std::fs::create_dir_all(root.join("sys")).unwrap();
        let f = std::fs::File::create(root.join("dev/mem")).unwrap();
        f.set_len(PA + LEN as u64).unwrap();
        let rp = FakeKernel::new(&[FakeRproc::offline("78000000.r5f", "fw")]);
        rp.set_state(0, "running");
        let b = Board::from_str(&format!(
            "[board]\nname = \"kb\"\narch = \"any\"\n[remoteproc]\nname = \"78000000.r5f\"\n[transport]\nkind = \"kernel\"\n[memory]\nsource = \"carveout\"\nbase = {PA:#x}\nsize = {LEN:#x}\n[mapping]\nkind = \"identity\"\n[cache]\nmode = \"coherent\"\n[pool]\nclasses = [[1048576, 3]]\n"
        ))
        .unwrap();
        (root, rp, Arc::new(FakeRpmsgKernel::new()), b)
    }

    fn open(root: &std::path::Path, rp: &FakeKernel, k: &Arc<FakeRpmsgKernel>, b: &Board) -> Link {
        let k2 = Arc::clone(k);
        b.open_with(OpenEnv {
            rproc: rp.paths(),
            rpmsg: k.paths(),
            ready_timeout: Duration::from_secs(5),
            kernel_opener: Some(Box::new(move |p| k2.transport_with(p))),
            roots: SysRoots::under(root),
            ..OpenEnv::default()
        })
        .unwrap()
    }

    /// 3 MiB through the kernel board's carveout pool: every CRC32C good.
    #[test]
    fn bench_bulk_runs_on_a_kernel_board_with_the_offload_service() {
        let (root, rp, k, b) = setup("ok");
        let ends = k.announce_external(DP_SERVICE, 0x401);
        let mut link = open(&root, &rp, &k, &b);
        let remote_mem = Arc::new(
            PhysCarveout::devmem(&SysRoots::under(&root), PA, LEN, DevMemCaching::Uncached)
                .unwrap(),
        );
        let remote = std::thread::spawn(move || {
            let mut end = ends.recv_timeout(Duration::from_secs(10)).unwrap();
            let windows = LinearMap {
                base: DevAddr(PA),
                offset: 0,
                len: LEN,
            };
            let mut dp = DpRemote::new(Coherent::new(remote_mem), windows);
            let ch = end.channel();
            let mut scratch = vec![0u8; end.max_payload()];
            while dp
                .recv_process(&mut end, &ch, &mut scratch, None, |job| {
                    intercore_fw_offload::work(job)
                })
                .is_ok()
            {
                if dp.flush(&mut end, MSG_TIMEOUT).is_err() {
                    break;
                }
            }
            dp.stats()
        });
        let mut session = Session {
            pool_roots: Some(SysRoots::under(&root)),
            ..Session::default()
        };
        let v = bench_bulk(&mut link, &mut session, &b, 3, &|| false);
        let row = &v["rows"][0];
        assert_eq!(row["corrupted"], 0, "{v}");
        assert!(row["buffers"].as_u64().unwrap() >= 3, "{v}");
        assert!(row["bytes"].as_u64().unwrap() >= 3 << 20, "{v}");
        drop(session);
        drop(link);
        let rs = remote.join().unwrap();
        assert_eq!((rs.faults, rs.bad), (0, 0));
        assert!(rs.done >= 3, "{rs:?}");
        let _ = std::fs::remove_dir_all(&root);
    }

    /// Without the offload service the row is n/a, saying why.
    #[test]
    fn bench_bulk_is_na_without_the_offload_service() {
        let (root, rp, k, b) = setup("na");
        let mut link = open(&root, &rp, &k, &b);
        let mut session = Session {
            pool_roots: Some(SysRoots::under(&root)),
            ..Session::default()
        };
        let v = bench_bulk(&mut link, &mut session, &b, 1, &|| false);
        let na = v["rows"][0]["na"].as_str().unwrap_or_default();
        assert!(na.contains(DP_SERVICE), "{v}");
        let _ = std::fs::remove_dir_all(&root);
    }
}
