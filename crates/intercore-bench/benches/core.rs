//! Criterion micro-benchmarks of the hot paths, without a peer process: split-ring
//! operations, the rpmsg send/receive path with both roles in one thread, and pool
//! allocate/free. Run with `cargo bench -p intercore`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use intercore::dataplane::{Coherent, Pool, PoolConfig};
use intercore::rpmsg::Channel;
use intercore::rpmsg::HostConfig;
use intercore::rpmsg::RPMSG_ADDR_ANY;
use intercore::rpmsg::RemoteConfig;
use intercore::rpmsg::layout::CarveoutSpec;
use intercore::rpmsg::{HostBus, RemoteBus};
use intercore::testing::{Carveout, HeapMem, ThreadBell};
use intercore::virtq::{DeviceQueue, DriverQueue, VringLayout};
use intercore::{DevAddr, WaitMode};
use intercore::{MemcpyMem, SharedMemory};
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

fn rings(c: &mut Criterion) {
    let layout = VringLayout::new(256, 4096).unwrap();
    let mem = HeapMem::new(layout.size());
    let mut drv = DriverQueue::new(&mem, 0, layout, true).unwrap();
    drv.reset(&mem);
    let mut dev = DeviceQueue::new(&mem, 0, layout, true).unwrap();
    let mut g = c.benchmark_group("virtq");
    g.throughput(Throughput::Elements(1));
    g.bench_function("one buffer through both sides", |b| {
        b.iter(|| {
            drv.add(&mem, 0, DevAddr(0x1000), 64, false).unwrap();
            black_box(drv.publish(&mem));
            let mut chain = dev.pop(&mem).unwrap().unwrap();
            let d = dev.single(&mem, &mut chain).unwrap();
            dev.push_used(&mem, chain.head(), d.len);
            black_box(dev.publish(&mem));
            black_box(drv.pop_used(&mem).unwrap().unwrap());
        })
    });
    g.throughput(Throughput::Elements(64));
    g.bench_function("batch of 64, one publish per side", |b| {
        b.iter(|| {
            for id in 0..64 {
                drv.add(&mem, id, DevAddr(0x1000 + id as u64 * 64), 64, false)
                    .unwrap();
            }
            black_box(drv.publish(&mem));
            while let Some(mut chain) = dev.pop(&mem).unwrap() {
                let d = dev.single(&mem, &mut chain).unwrap();
                dev.push_used(&mem, chain.head(), d.len);
            }
            black_box(dev.publish(&mem));
            while let Some(u) = drv.pop_used(&mem).unwrap() {
                black_box(u);
            }
        })
    });
    g.finish();
}

fn rpmsg(c: &mut Criterion) {
    let link = Carveout::with_buffers(256);
    let (mut host, mut remote) = link
        .connect::<8>(HostConfig::default(), WaitMode::Poll)
        .unwrap();
    let ep = host.create_endpoint("bench", None).unwrap();
    let rep = remote.create_endpoint("echo", None).unwrap();
    let msg = [0x5Au8; 64];
    let mut back = [0u8; 496];
    let mut g = c.benchmark_group("rpmsg");
    g.throughput(Throughput::Elements(1));
    g.bench_function("64 B host->remote->host, copy API, one thread", |b| {
        b.iter(|| {
            host.send_raw(ep, rep, &msg, Some(Duration::ZERO)).unwrap();
            let mut got = [0u8; 64];
            remote
                .recv_any_with(Some(Duration::ZERO), |m| got.copy_from_slice(m.payload))
                .unwrap();
            remote
                .send_raw(rep, ep, &got, Some(Duration::ZERO))
                .unwrap();
            black_box(
                host.recv_from(
                    &Channel::new(ep, RPMSG_ADDR_ANY),
                    &mut back,
                    Some(Duration::ZERO),
                )
                .unwrap(),
            );
        })
    });
    g.bench_function("64 B zero-copy send and receive", |b| {
        b.iter(|| {
            let mut tx = host.tx_buf(Some(Duration::ZERO)).unwrap();
            tx[..64].copy_from_slice(&msg);
            host.send_buf(&Channel::new(ep, rep), tx, 64).unwrap();
            remote
                .recv_any_with(Some(Duration::ZERO), |m| black_box(m.payload.len()))
                .unwrap();
            remote
                .send_raw(rep, ep, &msg, Some(Duration::ZERO))
                .unwrap();
            let rx = host
                .recv_buf(&Channel::new(ep, RPMSG_ADDR_ANY), Some(Duration::ZERO))
                .unwrap();
            black_box(rx[0]);
        })
    });
    g.finish();
}

fn pool(c: &mut Criterion) {
    let cfg = PoolConfig {
        classes: vec![(4096, 64), (1 << 20, 4)],
        align: 4096,
    };
    let link = Carveout::with_pool_area(
        CarveoutSpec {
            vring_num: 4,
            buf_size: 512,
            event_idx: true,
            da_base: 0xA000_0000,
        },
        cfg.region_len(),
    );
    let pool = Pool::new(
        Coherent::new(Arc::clone(&link.mem)),
        link.pool.0,
        DevAddr(0xC000_0000),
        &cfg,
    )
    .unwrap();
    let mut g = c.benchmark_group("pool");
    g.throughput(Throughput::Elements(1));
    g.bench_function("allocate and free a 4 KiB buffer", |b| {
        b.iter(|| black_box(pool.alloc(4096).unwrap()))
    });
    g.throughput(Throughput::Elements(32));
    let mut held = Vec::with_capacity(32);
    g.bench_function("allocate 32 then free them", |b| {
        b.iter(|| {
            held.extend((0..32).map(|_| pool.alloc(100).unwrap()));
            held.clear();
        })
    });
    g.finish();
}

/// The aligned shared-memory copies (Device-memory safe; `HeapMem` is treated as Device
/// memory) against the `memcpy` every copy used before and a region that declares Normal
/// memory still uses (`MemcpyMem`), in the same run: the trait's `write`+`read` alone, and
/// the demo's copy path (host `try_send`/`try_recv`, remote copy receive and send).
fn device_copies(c: &mut Criterion) {
    let mut g = c.benchmark_group("shm copy");
    let new = HeapMem::new(8192);
    let old = MemcpyMem(HeapMem::new(8192));
    for (n, off) in [(64, 16), (496, 16), (496, 17), (4096, 16)] {
        let src = vec![0x5Au8; n];
        let mut dst = vec![0u8; n];
        g.throughput(Throughput::Bytes(2 * n as u64));
        g.bench_function(
            format!("write+read {n} B at +{off}, memcpy (Normal, = old)"),
            |b| {
                b.iter(|| {
                    old.write(off, black_box(&src));
                    old.read(off, black_box(&mut dst));
                })
            },
        );
        g.bench_function(
            format!("write+read {n} B at +{off}, aligned (Device)"),
            |b| {
                b.iter(|| {
                    new.write(off, black_box(&src));
                    new.read(off, black_box(&mut dst));
                })
            },
        );
    }
    g.finish();
    let mut g = c.benchmark_group("shm copy rpmsg");
    g.throughput(Throughput::Elements(1));
    for n in [64usize, 496] {
        let link = Carveout::with_buffers(256);
        round_trip(
            &mut g,
            &link,
            Arc::new(MemcpyMem(Arc::clone(&link.mem))),
            n,
            "memcpy (Normal, = old)",
        );
        let link = Carveout::with_buffers(256);
        round_trip(&mut g, &link, Arc::clone(&link.mem), n, "aligned (Device)");
    }
    g.finish();
}

fn round_trip<M: SharedMemory + Send + Sync + 'static>(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    link: &Carveout,
    mem: Arc<M>,
    n: usize,
    what: &str,
) {
    let (hb, rb) = ThreadBell::pair();
    let mut host = HostBus::new(
        Arc::clone(&mem),
        hb,
        &link.map,
        link.rsc,
        HostConfig::default(),
    )
    .unwrap();
    let mut remote: RemoteBus<_, _, 8> = RemoteBus::new(
        mem,
        rb,
        &link.map,
        link.rsc,
        RemoteConfig::default().wait(WaitMode::Poll),
    )
    .unwrap();
    remote
        .wait_ready(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    let ep = host.create_endpoint("bench", None).unwrap();
    let rep = remote.create_endpoint("echo", None).unwrap();
    let msg = vec![0x5Au8; n];
    let mut got = [0u8; 496];
    let mut back = [0u8; 496];
    g.bench_function(format!("{n} B host->remote->host, copy API, {what}"), |b| {
        b.iter(|| {
            host.send_raw(ep, rep, &msg, Some(Duration::ZERO)).unwrap();
            remote
                .recv_any_with(Some(Duration::ZERO), |m| {
                    (
                        m.src,
                        m.dst,
                        intercore::copy_from_shared(m.payload, &mut got),
                    )
                })
                .unwrap();
            remote
                .send_raw(rep, ep, &got[..n], Some(Duration::ZERO))
                .unwrap();
            black_box(
                host.recv_from(
                    &Channel::new(ep, RPMSG_ADDR_ANY),
                    &mut back,
                    Some(Duration::ZERO),
                )
                .unwrap(),
            );
        })
    });
}

criterion_group!(benches, rings, rpmsg, pool, device_copies);
criterion_main!(benches);
