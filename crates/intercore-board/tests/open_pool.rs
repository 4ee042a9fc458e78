//! `Board::open_pool` for a kernel-transport board: the pool is a carveout mapped through
//! a fake `/dev/mem` (a sparse file, as in `tests/open.rs`), the link is `KernelRpmsg`
//! against intercore-linux's fake rpmsg kernel (`rpmsg_char::fake`, a model of
//! `rpmsg_ctrl.c`/`rpmsg_char.c`/`virtio_rpmsg_bus.c`), and the remote is `DpRemote` on
//! the fake's other end of the endpoint, reading a second mapping of the same "physical"
//! memory at the device address `[mapping]` gives. Only job and completion messages cross
//! `/dev/rpmsgM`; the buffers are in the carveout both sides reach. Not the kernel's
//! /dev/mem (no STRICT_DEVMEM, no memory attributes): what it tests is the open path.

use intercore::dataplane::{Coherent, DpHost, DpRemote, DpRemoteStats};
use intercore::rpmsg::MessageIo;
use intercore::wire::dataplane::{DP_OK, DP_OP_CRC32C, DP_SERVICE};
use intercore::{DevAddr, Error, LinearMap, crc32c};
use intercore_board::{Board, OpenEnv, OpenError};
use intercore_linux::remoteproc::fake::{FakeKernel, FakeRproc};
use intercore_linux::rpmsg_char::fake::FakeRpmsgKernel;
use intercore_linux::{DevMemCaching, PhysCarveout, SysRoots};
use std::collections::HashMap;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

const T: Option<Duration> = Some(Duration::from_secs(10));
const POOL_PA: u64 = 0x400_0000;
const POOL_LEN: usize = 4 << 20;

fn fake_root(tag: &str) -> std::path::PathBuf {
    let root = std::env::temp_dir().join(format!("intercore-pool-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(root.join("dev")).unwrap();
    std::fs::create_dir_all(root.join("sys")).unwrap();
    let f = std::fs::File::create(root.join("dev/mem")).unwrap();
    f.set_len(POOL_PA + POOL_LEN as u64).unwrap();
    root
}

fn board(mapping: &str, memory: &str) -> Board {
    board_cache(mapping, memory, "coherent")
}

fn board_cache(mapping: &str, memory: &str, cache: &str) -> Board {
    Board::from_str(&format!(
        "[board]\nname = \"kp\"\narch = \"any\"\n[remoteproc]\nname = \"78000000.r5f\"\n[transport]\nkind = \"kernel\"\n[memory]\n{memory}\n[mapping]\n{mapping}\n[cache]\nmode = \"{cache}\"\n[pool]\nclasses = [[4096, 32], [65536, 16], [1048576, 2]]\n"
    ))
    .unwrap()
}

fn carveout() -> String {
    format!("source = \"carveout\"\nbase = {POOL_PA:#x}\nsize = {POOL_LEN:#x}")
}

fn env(root: &std::path::Path, rp: &FakeKernel, k: &Arc<FakeRpmsgKernel>) -> OpenEnv {
    let k2 = Arc::clone(k);
    OpenEnv {
        rproc: rp.paths(),
        rpmsg: k.paths(),
        ready_timeout: Duration::from_secs(5),
        kernel_opener: Some(Box::new(move |p| k2.transport_with(p))),
        roots: SysRoots::under(root),
        ..OpenEnv::default()
    }
}

use intercore::testing::pattern as fill;

/// The link and the pool from the board file; 400 buffers of 1 byte .. 1 MiB less the
/// CRC's line streamed through `DpHost` over the link, the remote computing CRC32C in
/// place in the carveout at the device addresses the pool announced (identity and an
/// `offset` alias window); every CRC checked, the remote's counts too.
#[test]
fn kernel_board_pool_on_a_devmem_carveout_streams_with_every_crc_checked() {
    for (tag, mapping, delta) in [
        ("id", "kind = \"identity\"".to_string(), 0i64),
        (
            "off",
            "kind = \"offset\"\noffset = 0x80000000".to_string(),
            0x8000_0000,
        ),
    ] {
        let root = fake_root(tag);
        let rp = FakeKernel::new(&[FakeRproc::offline("78000000.r5f", "fw")]);
        rp.set_state(0, "running");
        let k = Arc::new(FakeRpmsgKernel::new());
        let ends = k.announce_external(DP_SERVICE, 0x401);
        let b = board(&mapping, &carveout());
        let env = env(&root, &rp, &k);
        let bp = b.open_pool(&env).unwrap();
        let da = POOL_PA.checked_add_signed(delta).unwrap();
        assert_eq!(bp.device_addr, DevAddr(da));
        assert!(bp.source.contains("dev/mem"), "{}", bp.source);
        let mut link = b.open_with(env).unwrap();
        let service = link.find_service(DP_SERVICE, T).unwrap();
        let ch = link.open("dp-host", service).unwrap();
        let mut end = ends.recv_timeout(Duration::from_secs(5)).unwrap();

        let remote_mem = Arc::new(
            PhysCarveout::devmem(
                &SysRoots::under(&root),
                POOL_PA,
                POOL_LEN,
                DevMemCaching::Uncached,
            )
            .unwrap(),
        );
        let remote = thread::spawn(move || -> Result<DpRemoteStats, Error> {
            let windows = LinearMap {
                base: DevAddr(da),
                offset: 0,
                len: POOL_LEN,
            };
            let mut dp = DpRemote::new(Coherent::new(remote_mem), windows);
            let ch = end.channel();
            let mut scratch = vec![0u8; end.max_payload()];
            loop {
                match dp.recv_process(&mut end, &ch, &mut scratch, None, |job| {
                    if job.op() != DP_OP_CRC32C {
                        return Err(intercore::wire::dataplane::DP_UNSUPPORTED);
                    }
                    let crc = crc32c(job.input().map_err(|_| 1u32)?);
                    let len = job.len();
                    job.output(len, 4)
                        .map_err(|_| 1u32)?
                        .copy_from_slice(&crc.to_le_bytes());
                    Ok(len + 4)
                }) {
                    Ok(()) => dp.flush(&mut end, T)?,
                    Err(Error::PeerGone) => return Ok(dp.stats()),
                    Err(e) => return Err(e),
                }
            }
        });

        let max = link.max_payload();
        let mut dp = DpHost::new(bp.pool, ch, max).unwrap();
        let lens = [
            1usize,
            63,
            4096 - 64,
            60_000,
            (64 << 10) - 64,
            (1 << 20) - 64,
            333,
        ];
        let total = 400u64;
        let mut expected: HashMap<u64, (usize, u32)> = HashMap::new();
        let (mut next, mut good) = (0u64, 0u64);
        while good < total {
            while next < total {
                let len = lens[next as usize % lens.len()];
                let Some(mut buf) = dp.alloc(len + 4) else {
                    break;
                };
                let len = len.min(buf.len() - 64);
                fill(&mut buf[..len], next);
                let crc = crc32c(&buf[..len]);
                let tk = dp.submit(&mut link, buf, len, DP_OP_CRC32C).unwrap();
                expected.insert(tk.seq, (len, crc));
                next += 1;
            }
            let c = dp.wait_complete(&mut link, T).unwrap();
            let (len, crc) = expected.remove(&c.seq()).expect("a submitted buffer");
            assert_eq!(c.status(), DP_OK, "{tag}: seq {}", c.seq());
            assert_eq!(c.len(), len + 4, "{tag}: seq {}", c.seq());
            assert_eq!(
                c[len..len + 4],
                crc.to_le_bytes(),
                "{tag}: CRC of seq {}",
                c.seq()
            );
            good += 1;
        }
        let st = dp.stats();
        assert_eq!((st.submitted, st.completed, st.failed), (total, total, 0));
        link.close(ch).unwrap();
        let rs = remote.join().unwrap().unwrap();
        assert_eq!((rs.done, rs.faults, rs.bad), (total, 0, 0), "{tag}");
        drop(dp);
        drop(link);
        let _ = std::fs::remove_dir_all(&root);
    }
}

fn key_of(e: OpenError) -> &'static str {
    match e {
        OpenError::Config { key, .. } => key,
        other => panic!("not a configuration error: {other}"),
    }
}

/// What cannot be opened names the board key: a carveout without /dev/mem
/// (`memory.base`), a reserved-memory node that is not in the device tree
/// (`memory.reserved_memory`), a mapping not wired here (`mapping.kind`), a heap that is
/// not there (`memory.heap`).
#[test]
fn pool_errors_name_the_board_key() {
    let root = fake_root("err");
    let rp = FakeKernel::new(&[FakeRproc::offline("78000000.r5f", "fw")]);
    let k = Arc::new(FakeRpmsgKernel::new());
    let env = env(&root, &rp, &k);
    // No /dev/mem under this root: the carveout cannot be mapped.
    let bare = fake_root("err-bare");
    std::fs::remove_file(bare.join("dev/mem")).unwrap();
    let e = board("kind = \"identity\"", &carveout())
        .open_pool(&OpenEnv {
            roots: SysRoots::under(&bare),
            ..OpenEnv::default()
        })
        .unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("dev/mem"), "{msg}");
    assert_eq!(key_of(e), "memory.base", "{msg}");
    let _ = std::fs::remove_dir_all(&bare);
    let dt = "source = \"carveout\"\nreserved_memory = \"intercore-pool@a6000000\"";
    let e = board("kind = \"identity\"", dt)
        .open_pool(&env)
        .unwrap_err();
    assert_eq!(key_of(e), "memory.reserved_memory");
    let heap = "source = \"dma-heap\"\nheap = \"linux,cma\"\nsize = 0x400000";
    let e = board_cache("kind = \"ti-rproc-attach\"", heap, "dma-buf")
        .open_pool(&env)
        .unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.starts_with("mapping.kind:") && msg.contains("ti-rproc-attach"),
        "{msg}"
    );
    // A dma-heap the (fake) /dev/dma_heap does not have.
    let pagemap = format!("{heap}\ndevice_address = \"pagemap\"");
    let e = board_cache("kind = \"identity\"", &pagemap, "dma-buf")
        .open_pool(&env)
        .unwrap_err();
    let msg = e.to_string();
    assert_eq!(key_of(e), "memory.heap", "{msg}");
    let _ = std::fs::remove_dir_all(&root);
}

/// A hugetlb pool (the mainline route to cacheable, contiguous memory, docs/PORTING.md):
/// opened when this host has free huge pages and pagemap gives addresses (root), with the
/// address from pagemap; otherwise the error names the key and the fix — `memory.size` with
/// `nr_hugepages` when too few huge pages are free, `memory.source` when pagemap gives no
/// address or the pages are not contiguous. Which branch must hold is decided from /proc/meminfo and the uid.
#[test]
fn hugetlb_pool_opens_or_names_the_key_and_the_fix() {
    let free = std::fs::read_to_string("/proc/meminfo")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("HugePages_Free:"))
        .map(|v| v.trim().parse::<u64>().unwrap())
        .unwrap_or(0);
    // The board's pool (3.1 MiB of classes) needs two 2 MiB huge pages.
    let size: u64 = 4 << 20;
    // An I/O-coherent SoC, so that the cache mode is valid on any host (on a non-coherent one
    // it would be "arm64-el0", which only an aarch64 host can run).
    let b = Board::from_str(&format!(
        "[board]\nname = \"kp\"\narch = \"any\"\n[remoteproc]\nname = \"78000000.r5f\"\n[transport]\nkind = \"kernel\"\n[memory]\nsource = \"hugetlb\"\nsize = {size:#x}\n[mapping]\nkind = \"identity\"\n[cache]\nmode = \"coherent\"\nio_coherent = true\n[pool]\nclasses = [[4096, 32], [65536, 16], [1048576, 2]]\n"
    ))
    .unwrap();
    match b.open_pool(&OpenEnv::default()) {
        Ok(p) => {
            assert!(free >= 2, "opened without two free huge pages?");
            assert_ne!(p.device_addr.0, 0, "a physical address from pagemap");
            assert!(p.source.contains("hugetlb"), "{}", p.source);
        }
        Err(e) => {
            let msg = e.to_string();
            if free < 2 {
                assert_eq!(key_of(e), "memory.size", "{msg}");
                assert!(msg.contains("nr_hugepages"), "{msg}");
            } else {
                // Not root (pagemap hides addresses), or the two pages are not adjacent.
                assert_eq!(key_of(e), "memory.source", "{msg}");
            }
        }
    }
}
