//! The data plane's per-buffer cost, measured apart from the machine's load (issue 24.4,
//! docs/BENCHMARKS.md "Small buffers"): host and remote `DpRemote` in one thread over a heap
//! carveout, 64 buffers of SIZE bytes cycled (fill, submit, remote completes with no work,
//! take back) WINDOWS times; each phase's *minimum* over the windows is printed (preemption
//! only adds time, so the minimum is the cost), next to one write pass over the same buffers.
//!
//! `cargo run --release -p intercore-bench --example dp_handoff [SIZE] [WINDOWS]`
//! (pin it: `taskset -c 1 ...`).

use intercore::dataplane::{Coherent, DpHost, DpRemote, Pool, PoolConfig};
use intercore::rpmsg::layout::CarveoutSpec;
use intercore::rpmsg::{Channel, HostConfig};
use intercore::testing::Carveout;
use intercore::wire::dataplane::{DP_OP_NOP, DP_SERVICE};
use intercore::{DevAddr, LinearMap, WaitMode};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

const IOVA: u64 = 0xC000_0000;
const COUNT: usize = 64;

fn per_buf(from: Instant, to: Instant) -> f64 {
    (to - from).as_nanos() as f64 / COUNT as f64
}

fn main() {
    let arg = |i: usize, d: usize| {
        std::env::args()
            .nth(i)
            .and_then(|s| s.parse().ok())
            .unwrap_or(d)
    };
    let (size, windows) = (arg(1, 4096), arg(2, 20_000));
    let cfg = PoolConfig {
        classes: vec![(size, COUNT)],
        align: 4096,
    };
    let spec = CarveoutSpec {
        vring_num: 256,
        buf_size: 512,
        event_idx: false,
        da_base: 0xA000_0000,
    };
    let link = Carveout::with_pool_area(spec, cfg.region_len());
    let host_cfg = HostConfig {
        wait: WaitMode::Poll,
        ..HostConfig::default()
    };
    let (mut host, mut remote) = link.connect::<8>(host_cfg, WaitMode::Poll).unwrap();
    let win = LinearMap {
        base: DevAddr(IOVA),
        offset: link.pool.0,
        len: link.pool.1,
    };
    let mut rdp = DpRemote::new(Coherent::new(Arc::clone(&link.mem)), win);
    let rep = remote.create_endpoint(DP_SERVICE, None).unwrap();
    remote.announce(rep).unwrap();
    let t = Some(Duration::from_secs(5));
    let dst = host.find_service(DP_SERVICE, t).unwrap();
    let ep = host.create_endpoint("dp", None).unwrap();
    let max = host.max_payload();
    let pool = Pool::new(
        Coherent::new(Arc::clone(&link.mem)),
        link.pool.0,
        DevAddr(IOVA),
        &cfg,
    )
    .unwrap();
    let mut dp = DpHost::new(pool, Channel::new(ep, dst), max).unwrap();
    let mut free = VecDeque::new();
    while let Some(b) = dp.alloc(size) {
        free.push_back(b);
    }
    for b in free.iter_mut() {
        b.fill(0xEE);
    }
    let z = Some(Duration::ZERO);
    let (mut write, mut submit, mut serve, mut complete, mut recycle) =
        (f64::MAX, f64::MAX, f64::MAX, f64::MAX, f64::MAX);
    // Every other window fills and submits each buffer in turn, as `intercore bench bulk`
    // does: what submitting costs right behind a buffer's fill (stores still draining).
    let mut fill_submit = f64::MAX;
    let mut k = 0u8;
    let mut got = Vec::with_capacity(COUNT);
    for w in 0..windows * 2 {
        let interleaved = w % 2 == 1;
        let t0 = Instant::now();
        if !interleaved {
            for b in free.iter_mut() {
                k = k.wrapping_add(1);
                b.fill(k);
            }
        }
        let t1 = Instant::now();
        while let Some(mut b) = free.pop_front() {
            if interleaved {
                k = k.wrapping_add(1);
                b.fill(k);
            }
            dp.submit(&mut host, b, size, DP_OP_NOP).unwrap();
        }
        dp.flush(&mut host).unwrap();
        let t2 = Instant::now();
        while let Ok(()) =
            remote.recv_any_with(z, |m| rdp.process(rep, m.src, m.payload, |_job| Ok(0)))
        {}
        rdp.flush(&mut remote, z).unwrap();
        let t3 = Instant::now();
        while let Ok(Some(c)) = dp.try_complete(&mut host) {
            got.push(c);
        }
        let t4 = Instant::now();
        for c in got.drain(..) {
            free.push_back(c.into_writable());
        }
        let t5 = Instant::now();
        assert_eq!(free.len(), COUNT, "every buffer came back");
        if interleaved {
            fill_submit = fill_submit.min(per_buf(t1, t2));
            continue;
        }
        write = write.min(per_buf(t0, t1));
        submit = submit.min(per_buf(t1, t2));
        serve = serve.min(per_buf(t2, t3));
        complete = complete.min(per_buf(t3, t4));
        recycle = recycle.min(per_buf(t4, t5));
    }
    let s = dp.stats();
    println!(
        "{size} B buffers, ns per buffer (minimum of {windows} windows of {COUNT}): one write pass \
         {write:.1}; host: submit+flush {submit:.1} (right behind each fill: {:.1}), receive+check \
         completions {complete:.1}, take back {recycle:.1}, total {:.1}; remote {serve:.1}; {:.3} \
         submit messages per buffer",
        fill_submit - write,
        submit + complete + recycle,
        s.messages as f64 / s.submitted as f64
    );
}
