//! The data plane's completions, awaited: `AsyncHost::next_completion`, `submit`,
//! `flush` and the completions' `Stream` against a remote computing CRC32C in place in
//! another thread (eventfd doorbells), every result checked.

use intercore::dataplane::{Coherent, DpHost, DpRemote, Pool, PoolConfig};
use intercore::rpmsg::layout::CarveoutSpec;
use intercore::rpmsg::{HostBus, HostConfig, RPMSG_ADDR_ANY, RemoteBus, RemoteConfig};
use intercore::testing::Carveout;
use intercore::wire::dataplane::{DP_FAULT, DP_OK, DP_OP_CRC32C, DP_SERVICE, DP_UNSUPPORTED};
use intercore::{DevAddr, Error, LinearMap, WaitMode, crc32c};
use intercore_linux::notify::{EventFd, EventfdDoorbell};
use intercore_tokio::AsyncHost;
use std::collections::HashMap;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

const IOVA: u64 = 0xC000_0000;
const TIMEOUT: Option<Duration> = Some(Duration::from_secs(10));

type Host = HostBus<Arc<intercore::testing::HeapMem>, EventfdDoorbell>;

/// The pool's shape: 16 buffers of 4 KiB.
fn pool_cfg() -> PoolConfig {
    PoolConfig {
        classes: vec![(4096, 16)],
        align: 4096,
    }
}

/// A host bus, its carveout, and the remote's thread (CRC32C in place). The remote
/// processes nothing until `gate` says how many more completions to make; it ends (with the
/// number it made) when the host resets the link or `gate`'s sender is dropped.
fn link() -> (
    Host,
    Carveout,
    mpsc::Sender<u64>,
    JoinHandle<Result<u64, String>>,
) {
    let spec = CarveoutSpec {
        vring_num: 16,
        buf_size: 512,
        event_idx: true,
        da_base: 0xA000_0000,
    };
    let carveout = Carveout::with_pool_area(spec, pool_cfg().region_len());
    let (a, b) = (EventFd::new().unwrap(), EventFd::new().unwrap());
    let dup = |e: &EventFd| EventFd::from_fd(e.as_fd().try_clone_to_owned().unwrap());
    let host_bell = EventfdDoorbell::new(dup(&b), dup(&a), None);
    let remote_bell = EventfdDoorbell::new(a, b, None);
    let host = HostBus::new(
        Arc::clone(&carveout.mem),
        host_bell,
        &carveout.map,
        carveout.rsc,
        HostConfig::default().wait(WaitMode::Event),
    )
    .unwrap();
    let mut remote: RemoteBus<_, _> = RemoteBus::new(
        Arc::clone(&carveout.mem),
        remote_bell,
        &carveout.map,
        carveout.rsc,
        RemoteConfig::default().wait(WaitMode::Event),
    )
    .unwrap();
    remote.wait_ready(TIMEOUT).unwrap();
    let window = LinearMap {
        base: DevAddr(IOVA),
        offset: carveout.pool.0,
        len: carveout.pool.1,
    };
    let mem = Arc::clone(&carveout.mem);
    let (gate, allowed) = mpsc::channel::<u64>();
    let worker = std::thread::spawn(move || -> Result<u64, String> {
        let mut dp = DpRemote::new(Coherent::new(mem), window);
        let ch = remote
            .open(DP_SERVICE, RPMSG_ADDR_ANY)
            .map_err(|e| e.to_string())?;
        let mut budget = 0u64;
        loop {
            while dp.stats().done >= budget {
                match allowed.recv() {
                    Ok(n) => budget += n,
                    Err(_) => return Ok(dp.stats().done),
                }
            }
            let got = remote.recv_with(&ch, None, |m| {
                dp.process(ch.local, m.src, m.payload, |job| match job.op() {
                    DP_OP_CRC32C => {
                        let crc = crc32c(job.input().map_err(|_| DP_FAULT)?);
                        let n = job.len();
                        job.output(n, 4)
                            .map_err(|_| DP_FAULT)?
                            .copy_from_slice(&crc.to_le_bytes());
                        Ok(n + 4)
                    }
                    _ => Err(DP_UNSUPPORTED),
                })
            });
            match got {
                Ok(()) => dp.flush(&mut remote, TIMEOUT).map_err(|e| e.to_string())?,
                Err(Error::PeerGone) => return Ok(dp.stats().done),
                Err(e) => return Err(format!("remote: {e}")),
            }
        }
    });
    (host, carveout, gate, worker)
}

/// The data plane over `host`'s channel to the remote's service.
async fn data_plane(
    host: &AsyncHost<Arc<intercore::testing::HeapMem>, EventfdDoorbell>,
    carveout: &Carveout,
) -> DpHost<Coherent<Arc<intercore::testing::HeapMem>>> {
    let ch = host.connect(DP_SERVICE).await.unwrap();
    let pool = Pool::new(
        Coherent::new(Arc::clone(&carveout.mem)),
        carveout.pool.0,
        DevAddr(IOVA),
        &pool_cfg(),
    )
    .unwrap();
    let max = host.with_bus(|b| b.max_payload());
    DpHost::new(pool, ch, max).unwrap()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// 60 buffers in batches of three, each completion awaited (one await per round dropped
/// while parked, deterministically: the remote is held until it was; others dropped by a
/// racing yield: a completion is never lost), every CRC32C verified.
#[test]
fn completions_are_awaited() {
    let (host, carveout, gate, worker) = link();
    let rt = runtime();
    let dropped = rt.block_on(async move {
        tokio::time::timeout(Duration::from_secs(60), async move {
            let host = AsyncHost::new(host).unwrap();
            let mut dp = data_plane(&host, &carveout).await;
            let (mut expected, mut dropped) = (HashMap::new(), 0u32);
            for round in 0..20u32 {
                for k in 0..3u32 {
                    let mut buf = dp.alloc(4096).unwrap();
                    let len = 1000 + 500 * k as usize;
                    for (i, b) in buf[..len].iter_mut().enumerate() {
                        *b = (i as u32 * 7 + round) as u8;
                    }
                    let crc = crc32c(&buf[..len]);
                    let t = host
                        .with_bus(|b| dp.submit(b, buf, len, DP_OP_CRC32C))
                        .unwrap();
                    expected.insert(t.seq, (len, crc));
                }
                // Flushed, then parked (the remote is held): dropped while parked.
                let parked = host.next_completion(&mut dp);
                match tokio::time::timeout(Duration::from_millis(1), parked).await {
                    Err(_) => dropped += 1,
                    Ok(r) => panic!(
                        "a completion from a remote held back: {:?}",
                        r.map(|c| c.seq())
                    ),
                }
                gate.send(3).unwrap();
                while dp.outstanding() > 0 {
                    let done = tokio::select! {
                        r = host.next_completion(&mut dp) => r.unwrap(),
                        () = tokio::task::yield_now() => { dropped += 1; continue; }
                    };
                    let (len, crc) = expected.remove(&done.seq()).expect("a known completion");
                    assert_eq!(done.status(), DP_OK);
                    assert_eq!(done.len(), len + 4);
                    assert_eq!(done[len..], crc.to_le_bytes());
                }
            }
            assert!(expected.is_empty());
            drop(dp);
            drop(host.into_inner()); // resets the device: the remote sees PeerGone
            dropped
        })
        .await
        .expect("hung: a wake-up was lost")
    });
    assert_eq!(worker.join().unwrap(), Ok(60));
    assert!(dropped >= 20, "only {dropped} awaits dropped");
}

/// With nothing in flight nothing can complete: `next_completion` says so (`NotReady`, as
/// `DpHost::wait_complete` does) instead of sleeping forever (it did: the data plane is
/// borrowed for the wait, so nothing could be submitted meanwhile).
#[test]
fn next_completion_with_nothing_in_flight_is_not_ready() {
    let (host, carveout, gate, worker) = link();
    runtime().block_on(async move {
        let host = AsyncHost::new(host).unwrap();
        let mut dp = data_plane(&host, &carveout).await;
        let r = tokio::time::timeout(Duration::from_secs(5), host.next_completion(&mut dp))
            .await
            .expect("next_completion with nothing in flight never returned");
        assert!(
            matches!(r, Err(Error::NotReady(_))),
            "{:?}",
            r.map(|c| c.seq())
        );
        drop(gate);
        drop(dp);
        drop(host.into_inner());
    });
    assert_eq!(worker.join().unwrap(), Ok(0));
}

/// `submit` (async: a full batch flushed before the next buffer is staged) for more
/// buffers than one submit message carries, then the completions as a `Stream`: every
/// buffer once, every CRC32C verified, and the stream ends when nothing is in flight. A
/// stream dropped while it waits (the remote held back) loses nothing: a new one yields
/// every completion.
#[test]
fn completions_stream_after_async_submits() {
    let (host, carveout, gate, worker) = link();
    runtime().block_on(async move {
        tokio::time::timeout(Duration::from_secs(60), async move {
            let host = AsyncHost::new(host).unwrap();
            let mut dp = data_plane(&host, &carveout).await;
            let n = 16usize;
            assert!(n > dp.batch_size(), "batch of {}", dp.batch_size());
            let mut expected = HashMap::new();
            for k in 0..n {
                let mut buf = dp.alloc(4096).unwrap();
                let len = 100 + 200 * k;
                for (i, b) in buf[..len].iter_mut().enumerate() {
                    *b = (i * 13 + k) as u8;
                }
                let crc = crc32c(&buf[..len]);
                let t = host.submit(&mut dp, buf, len, DP_OP_CRC32C).await.unwrap();
                assert!(dp.staged() <= dp.batch_size());
                expected.insert(t.seq, (len, crc));
            }
            assert!(dp.stats().messages >= 1, "a full batch did not go out");
            // Held back: the stream waits, and is dropped waiting.
            {
                let mut s = host.completions(&mut dp);
                let got = tokio::time::timeout(Duration::from_millis(5), s.next()).await;
                assert!(got.is_err(), "a completion from a remote held back");
            }
            assert_eq!(dp.staged(), 0, "the stream flushed the rest");
            gate.send(n as u64).unwrap();
            let mut s = host.completions(&mut dp);
            let mut seen = 0;
            while let Some(done) = s.next().await {
                let done = done.unwrap();
                let (len, crc) = expected.remove(&done.seq()).expect("a known completion");
                assert_eq!(done.status(), DP_OK);
                assert_eq!(done[len..len + 4], crc.to_le_bytes());
                seen += 1;
            }
            assert_eq!(seen, n);
            assert!(expected.is_empty());
            drop(s);
            assert_eq!(dp.in_flight(), 0);
            drop(dp);
            drop(host.into_inner());
        })
        .await
        .expect("hung: a wake-up was lost")
    });
    assert_eq!(worker.join().unwrap(), Ok(16));
}

/// With every transmit buffer held by the remote (filled by messages it has not taken
/// yet), a completion's flush must not block the runtime's thread for the data plane's
/// send timeout (1 s) and fail with `Timeout`, as the blocking flush does: it parks until
/// the remote returns a buffer, and the submission goes out then.
#[test]
fn a_flush_without_transmit_buffers_parks_instead_of_blocking() {
    let (host, carveout, gate, worker) = link();
    runtime().block_on(async move {
        let host = AsyncHost::new(host).unwrap();
        let mut dp = data_plane(&host, &carveout).await;
        // Fill the transmit ring with messages to an address the remote has no endpoint
        // for (the remote is held: it takes none of them yet).
        let filler = host.open("filler", 0x999).unwrap();
        let mut sent = 0;
        while host
            .with_bus(|b| b.send(&filler, b"x", Some(Duration::ZERO)))
            .is_ok()
        {
            sent += 1;
            assert!(sent <= 64, "the transmit ring never filled");
        }
        let mut buf = dp.alloc(4096).unwrap();
        buf[..100].fill(5);
        let crc = crc32c(&buf[..100]);
        dp.stage(buf, 100, DP_OP_CRC32C).unwrap();
        let t0 = std::time::Instant::now();
        let r =
            tokio::time::timeout(Duration::from_millis(200), host.next_completion(&mut dp)).await;
        assert!(
            r.is_err(),
            "next_completion returned instead of parking: {:?}",
            r.map(|r| r.map(|c| c.seq()))
        );
        assert!(
            t0.elapsed() < Duration::from_millis(600),
            "the runtime's thread was blocked for {:?}",
            t0.elapsed()
        );
        assert_eq!(dp.staged(), 1, "the submission stays staged");
        gate.send(1).unwrap();
        let done = tokio::time::timeout(Duration::from_secs(10), host.next_completion(&mut dp))
            .await
            .expect("no completion once the remote took its messages")
            .unwrap();
        assert_eq!(done.status(), DP_OK);
        assert_eq!(done[100..104], crc.to_le_bytes());
        drop(done);
        drop(dp);
        drop(host.into_inner());
    });
    assert_eq!(worker.join().unwrap(), Ok(1));
}
