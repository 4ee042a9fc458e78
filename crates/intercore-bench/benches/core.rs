//! Criterion micro-benchmarks of the hot paths, without a peer process: split-ring
//! operations, the rpmsg send/receive path with both roles in one thread, and pool
//! allocate/free. Run with `cargo bench -p intercore`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use intercore::dataplane::{Coherent, Pool, PoolConfig};
use intercore::rpmsg::HostConfig;
use intercore::rpmsg::layout::CarveoutSpec;
use intercore::testing::{HeapMem, Link};
use intercore::virtq::{DeviceQueue, DriverQueue, VringLayout};
use intercore::{DevAddr, WaitMode};
use std::hint::black_box;
use std::sync::Arc;

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
    let link = Link::with_buffers(256);
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
            host.try_send(ep, rep, &msg).unwrap();
            let mut got = [0u8; 64];
            remote
                .try_recv_with(|m| got.copy_from_slice(m.payload))
                .unwrap();
            remote.try_send(rep, ep, &got).unwrap();
            black_box(host.try_recv(ep, &mut back).unwrap());
        })
    });
    g.bench_function("64 B zero-copy send and receive", |b| {
        b.iter(|| {
            let mut tx = host.try_tx_buf().unwrap();
            tx[..64].copy_from_slice(&msg);
            host.send_buf(ep, rep, tx, 64).unwrap();
            remote
                .try_recv_with(|m| black_box(m.payload.len()))
                .unwrap();
            remote.try_send(rep, ep, &msg).unwrap();
            let rx = host.try_recv_buf(ep).unwrap();
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
    let link = Link::with_pool_area(
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

criterion_group!(benches, rings, rpmsg, pool);
criterion_main!(benches);
