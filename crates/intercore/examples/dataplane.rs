//! The zero-copy data plane in one process: the host hands buffers of its pool to the
//! remote by device address (`DpHost`), the remote computes the CRC32C of each buffer's
//! input and writes it in place right after it (`DpRemote`), and the host checks every
//! result against its own CRC. Only descriptors travel as rpmsg messages; the data stays
//! where it is.
//!
//! `cargo run -p intercore --example dataplane`

use intercore::dataplane::{Coherent, DpHost, DpRemote, Pool, PoolConfig};
use intercore::rpmsg::layout::CarveoutSpec;
use intercore::rpmsg::{HostConfig, RPMSG_ADDR_ANY};
use intercore::testing::Carveout;
use intercore::wire::dataplane::{DP_FAULT, DP_OK, DP_OP_CRC32C, DP_SERVICE, DP_UNSUPPORTED};
use intercore::{DevAddr, Error, LinearMap, WaitMode, crc32c};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// The device address the remote sees the pool at (its IOMMU or MPU window).
const IOVA: u64 = 0xC000_0000;
const TIMEOUT: Option<Duration> = Some(Duration::from_secs(5));
const ROUNDS: usize = 20;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let pool_cfg = PoolConfig {
        classes: vec![(4096, 16), (64 << 10, 4)],
        align: 4096,
    };
    let spec = CarveoutSpec {
        vring_num: 16,
        buf_size: 512,
        event_idx: true,
        da_base: 0xA000_0000,
    };
    // The rpmsg carveout followed by the data-plane pool, both roles up.
    let carveout = Carveout::with_pool_area(spec, pool_cfg.region_len());
    let (mut host, mut remote) = carveout.connect::<8>(HostConfig::default(), WaitMode::Event)?;
    let window = LinearMap {
        base: DevAddr(IOVA),
        offset: carveout.pool.0,
        len: carveout.pool.1,
    };

    // The remote: serves DP_SERVICE, processing each submitted buffer in place.
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
                // The host went away: done.
                Err(Error::PeerGone) => return Ok(dp.stats().done),
                Err(e) => return Err(format!("remote: {e}")),
            }
        }
    });

    // The host: its pool, a channel to the service, and the data plane on it.
    let pool = Pool::new(
        Coherent::new(Arc::clone(&carveout.mem)),
        carveout.pool.0,
        DevAddr(IOVA),
        &pool_cfg,
    )?;
    let ch = host.connect(DP_SERVICE, TIMEOUT)?;
    let mut dp = DpHost::new(pool, ch, host.max_payload())?;
    let mut expected = HashMap::new();
    for round in 0..ROUNDS {
        for size in [4096usize, 64 << 10, 4096] {
            let mut buf = dp.alloc(size).ok_or("pool empty")?;
            let len = buf.cap() - 64;
            for (i, b) in buf[..len].iter_mut().enumerate() {
                *b = (i as u8).wrapping_mul(31).wrapping_add(round as u8);
            }
            let crc = crc32c(&buf[..len]);
            let ticket = dp.submit(&mut host, buf, len, DP_OP_CRC32C)?;
            expected.insert(ticket.seq, (len, crc));
        }
        while dp.outstanding() > 0 {
            let done = dp.wait_complete(&mut host, TIMEOUT)?;
            let (len, crc) = expected.remove(&done.seq()).ok_or("unknown completion")?;
            if done.status() != DP_OK || done.len() != len + 4 || done[len..] != crc.to_le_bytes() {
                return Err(format!("buffer {} came back wrong", done.id()).into());
            }
        }
    }
    let counts = dp.pool().counts();
    drop(dp);
    drop(host); // resets the device: the remote sees PeerGone
    let processed = worker.join().map_err(|_| "the remote thread panicked")??;
    if processed != 3 * ROUNDS as u64 || counts[0] != 20 {
        return Err(format!("{processed} buffers processed, pool counts {counts:?}").into());
    }
    println!("dataplane: {processed} buffers processed in place, every CRC32C verified");
    Ok(())
}
