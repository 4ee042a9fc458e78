//! The data plane's completions, awaited: `AsyncHost::next_completion` against a remote
//! computing CRC32C in place in another thread (eventfd doorbells), every result checked.

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
use std::time::Duration;

const IOVA: u64 = 0xC000_0000;
const TIMEOUT: Option<Duration> = Some(Duration::from_secs(10));

/// 60 buffers in batches of three, each completion awaited (and some awaits dropped by a
/// racing yield: a completion is never lost), every CRC32C verified.
#[test]
fn completions_are_awaited() {
    let pool_cfg = PoolConfig {
        classes: vec![(4096, 16)],
        align: 4096,
    };
    let spec = CarveoutSpec {
        vring_num: 16,
        buf_size: 512,
        event_idx: true,
        da_base: 0xA000_0000,
    };
    let carveout = Carveout::with_pool_area(spec, pool_cfg.region_len());
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
    let worker = std::thread::spawn(move || -> Result<u64, String> {
        let mut dp = DpRemote::new(Coherent::new(mem), window);
        let ch = remote
            .open(DP_SERVICE, RPMSG_ADDR_ANY)
            .map_err(|e| e.to_string())?;
        loop {
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
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dropped = rt.block_on(async move {
        tokio::time::timeout(Duration::from_secs(60), async move {
            let host = AsyncHost::new(host).unwrap();
            let ch = host.connect(DP_SERVICE).await.unwrap();
            let pool = Pool::new(
                Coherent::new(Arc::clone(&carveout.mem)),
                carveout.pool.0,
                DevAddr(IOVA),
                &pool_cfg,
            )
            .unwrap();
            let max = host.with_bus(|b| b.max_payload());
            let mut dp = DpHost::new(pool, ch, max).unwrap();
            let (mut expected, mut dropped) = (HashMap::new(), 0u32);
            for round in 0..20u32 {
                // One await dropped while parked, every round, whatever the machine's speed:
                // nothing is outstanding yet, so it must park (the `select!` below drops one
                // only when a completion happens to be late).
                let parked = host.next_completion(&mut dp);
                match tokio::time::timeout(Duration::from_millis(1), parked).await {
                    Err(_) => dropped += 1,
                    Ok(r) => panic!(
                        "a completion with nothing outstanding: {:?}",
                        r.map(|c| c.seq())
                    ),
                }
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
    assert!(dropped > 0, "no await was dropped: the race did not happen");
}
