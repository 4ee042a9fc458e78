//! The data plane's bulk stage over the kernel's rpmsg character devices: `DpHost` on
//! [`KernelRpmsg`](intercore_linux::rpmsg_char::KernelRpmsg) against the fake kernel
//! (`rpmsg_char::fake`, a model of `rpmsg_ctrl.c`/`rpmsg_char.c`/`virtio_rpmsg_bus.c`),
//! and the remote's `DpRemote` — running the offload firmware's worker — on the fake's
//! other end of the endpoint. Only job and completion messages cross `/dev/rpmsgM` (at
//! most 496 bytes each, mainline's 512-byte buffers less the header); the buffers are in
//! a pool both sides reach, as a carveout is on a SoC.

use intercore::dataplane::{Coherent, DpHost, DpRemote, DpRemoteStats, Pool, PoolConfig};
use intercore::rpmsg::{MessageIo, Transport};
use intercore::testing::HeapMem;
use intercore::wire::dataplane::{DP_OK, DP_OP_CRC32C, DP_SERVICE, dp_entries_per_message};
use intercore::{DevAddr, Error, LinearMap, crc32c};
use intercore_linux::rpmsg_char::fake::{FAKE_MTU, FakeRpmsgKernel};
use std::collections::HashMap;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

const T: Option<Duration> = Some(Duration::from_secs(10));
/// The device address the remote sees the pool at.
const POOL_DA: u64 = 0x9000_0000;

fn pool_cfg() -> PoolConfig {
    PoolConfig {
        classes: vec![(4096, 24), (64 << 10, 4)],
        align: 4096,
    }
}

use intercore::testing::pattern as fill;

/// `n` buffers of lengths cycling through 1 byte .. 64 KiB less the CRC's line, streamed
/// with up to the whole pool in flight; every completion's CRC32C (written by the remote in
/// place after the input) is checked against the one computed here before submitting.
#[test]
fn bulk_stage_over_kernel_rpmsg_checks_every_crc() {
    let kernel = FakeRpmsgKernel::new();
    let ends = kernel.announce_external(DP_SERVICE, 0x401);
    let cfg = pool_cfg();
    let mem = Arc::new(HeapMem::new(cfg.region_len()));

    let mut t = kernel.transport().unwrap();
    let service = t.find_service(DP_SERVICE, T).unwrap();
    assert_eq!(service, 0x401);
    let ch = t.open("dp-host", service).unwrap();
    let mut end = ends.recv_timeout(Duration::from_secs(5)).unwrap();

    let remote_mem = Arc::clone(&mem);
    let remote = thread::spawn(move || -> Result<DpRemoteStats, Error> {
        let windows = LinearMap {
            base: DevAddr(POOL_DA),
            offset: 0,
            len: pool_cfg().region_len(),
        };
        let mut dp = DpRemote::new(Coherent::new(remote_mem), windows);
        let ch = end.channel();
        let mut scratch = vec![0u8; end.max_payload()];
        loop {
            match dp.recv_process(&mut end, &ch, &mut scratch, None, |job| {
                intercore_fw_offload::work(job)
            }) {
                Ok(()) => dp.flush(&mut end, T)?,
                Err(Error::PeerGone) => return Ok(dp.stats()),
                Err(e) => return Err(e),
            }
        }
    });

    let pool = Pool::new(Coherent::new(Arc::clone(&mem)), 0, DevAddr(POOL_DA), &cfg).unwrap();
    let mut dp = DpHost::new(pool, ch, t.max_payload()).unwrap();
    // Mainline's 496-byte payload: (496 - 8) / 32 entries per message.
    assert_eq!(dp.batch_size(), dp_entries_per_message(FAKE_MTU));
    assert_eq!(dp.batch_size(), 15);

    let lens = [
        1usize,
        63,
        64,
        1000,
        4096 - 64,
        60_000,
        (64 << 10) - 64,
        333,
    ];
    let total = 600u64;
    let mut expected: HashMap<u64, (usize, u32)> = HashMap::new();
    let (mut next, mut good, mut bytes) = (0u64, 0u64, 0u64);
    while good < total {
        // Submit while buffers are free, then drain what has completed.
        while next < total {
            let len = lens[next as usize % lens.len()];
            let Some(mut buf) = dp.alloc(len + 4) else {
                break;
            };
            let len = len.min(buf.len() - 64);
            fill(&mut buf[..len], next);
            let crc = crc32c(&buf[..len]);
            let tk = dp.submit(&mut t, buf, len, DP_OP_CRC32C).unwrap();
            expected.insert(tk.seq, (len, crc));
            next += 1;
        }
        let c = dp.wait_complete(&mut t, T).unwrap();
        let (len, crc) = expected
            .remove(&c.seq())
            .expect("completion of a submitted buffer");
        assert_eq!(c.status(), DP_OK, "seq {}", c.seq());
        assert_eq!(c.len(), len + 4, "seq {}", c.seq());
        assert_eq!(
            c[len..len + 4],
            crc.to_le_bytes(),
            "CRC of seq {} ({len} bytes)",
            c.seq()
        );
        good += 1;
        bytes += len as u64;
    }
    assert!(expected.is_empty());
    let st = dp.stats();
    assert_eq!(
        (st.submitted, st.completed, st.failed, st.refused),
        (total, total, 0, 0)
    );
    // Batched: fewer messages than buffers, none over the MTU.
    assert!(st.messages < total, "{st:?}");
    assert!(kernel.refusals().is_empty(), "{:?}", kernel.refusals());
    assert!(bytes > 8 << 20, "{bytes} bytes");

    // Closing the endpoint (RPMSG_DESTROY_EPT_IOCTL) ends the remote's loop with PeerGone.
    t.close(ch).unwrap();
    let rs = remote.join().unwrap().unwrap();
    assert_eq!((rs.done, rs.faults, rs.bad), (total, 0, 0));
}

/// A completion from another address cannot be told apart on `/dev/rpmsgM` (the kernel
/// reports no source): what the data plane can still check, it does — a completion for a
/// buffer not in flight breaks it with an error naming the entry, never completing a
/// buffer twice.
#[test]
fn forged_completion_over_kernel_rpmsg_is_refused() {
    let kernel = FakeRpmsgKernel::new();
    let ends = kernel.announce_external(DP_SERVICE, 0x402);
    let cfg = pool_cfg();
    let mem = Arc::new(HeapMem::new(cfg.region_len()));
    let mut t = kernel.transport().unwrap();
    let ch = t.open("dp-host", 0x402).unwrap();
    let mut end = ends.recv_timeout(Duration::from_secs(5)).unwrap();
    let pool = Pool::new(Coherent::new(Arc::clone(&mem)), 0, DevAddr(POOL_DA), &cfg).unwrap();
    let mut dp = DpHost::new(pool, ch, t.max_payload()).unwrap();
    let buf = dp.alloc(100).unwrap();
    dp.submit(&mut t, buf, 100, DP_OP_CRC32C).unwrap();
    dp.flush(&mut t).unwrap();
    // The "remote" answers with a completion for buffer 7, sequence 99: never submitted.
    let mut msg = vec![2u8, 0, 1, 0, 0, 0, 0, 0];
    msg.extend_from_slice(&99u64.to_le_bytes());
    msg.extend_from_slice(&(POOL_DA + 7 * 4096).to_le_bytes());
    msg.extend_from_slice(&7u32.to_le_bytes());
    msg.extend_from_slice(&4u32.to_le_bytes());
    msg.extend_from_slice(&[0; 8]);
    let rch = end.channel();
    end.send(&rch, &msg, T).unwrap();
    let e = dp.wait_complete(&mut t, T).unwrap_err();
    assert!(
        matches!(
            e,
            Error::DataPlane {
                what: "buffer not in flight",
                buf: Some(7),
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(dp.broken(), Some(e));
    assert_eq!(dp.stats().completed, 0);
}

/// The data plane also runs through a transport chosen at run time (`dyn Transport`, as a
/// board's transport is): a trait object implements its supertrait `MessageIo`.
#[test]
fn data_plane_through_dyn_transport() {
    let kernel = FakeRpmsgKernel::new();
    let ends = kernel.announce_external(DP_SERVICE, 0x403);
    let cfg = pool_cfg();
    let mem = Arc::new(HeapMem::new(cfg.region_len()));
    let mut boxed: Box<dyn Transport> = Box::new(kernel.transport().unwrap());
    let ch = boxed.open("dp-host", 0x403).unwrap();
    let mut end = ends.recv_timeout(Duration::from_secs(5)).unwrap();
    let windows = LinearMap {
        base: DevAddr(POOL_DA),
        offset: 0,
        len: cfg.region_len(),
    };
    let mut remote = DpRemote::new(Coherent::new(Arc::clone(&mem)), windows);
    let pool = Pool::new(Coherent::new(Arc::clone(&mem)), 0, DevAddr(POOL_DA), &cfg).unwrap();
    let mut dp = DpHost::new(pool, ch, boxed.max_payload()).unwrap();
    let t: &mut dyn Transport = &mut *boxed;
    let mut buf = dp.alloc(4096).unwrap();
    fill(&mut buf[..500], 5);
    let crc = crc32c(&buf[..500]);
    dp.submit(t, buf, 500, DP_OP_CRC32C).unwrap();
    dp.flush(t).unwrap();
    let rch = end.channel();
    let mut scratch = vec![0u8; FAKE_MTU];
    remote
        .recv_process(&mut end, &rch, &mut scratch, T, intercore_fw_offload::work)
        .unwrap();
    remote.flush(&mut end, T).unwrap();
    let c = dp.wait_complete(t, T).unwrap();
    assert_eq!(c[500..504], crc.to_le_bytes());
}
