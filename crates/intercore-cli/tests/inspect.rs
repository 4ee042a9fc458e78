//! `intercore inspect` as a process: a frozen stuck link from a dump and from a shm file
//! (text, --json, --watch), garbage input, a reader that goes away under --watch, and the
//! sim board's running link read through its owner (which keeps serving it).

use intercore::SharedMemory;
use intercore::rpmsg::HostConfig;
use intercore::testing::mock::MockDevice;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_intercore");

fn scratch(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("intercore-inspect-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700)).unwrap();
    d
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// A link whose host has sent on every transmit buffer to a remote that never took one,
/// frozen into a file.
fn stuck_dump(dir: &Path) -> PathBuf {
    let cfg = HostConfig {
        timeout: Some(Duration::from_millis(10)),
        ..HostConfig::default()
    };
    let (dev, mut host) = MockDevice::new(4, cfg).unwrap();
    let ep = host.create_endpoint("h", None).unwrap();
    for _ in 0..4 {
        host.send_raw(ep, 0x400, b"x", Some(Duration::ZERO))
            .unwrap();
    }
    let mem = &dev.link().mem;
    let mut bytes = vec![0u8; mem.len()];
    mem.read(0, &mut bytes);
    let p = dir.join("stuck.bin");
    std::fs::write(&p, bytes).unwrap();
    p
}

/// A dump of a stuck link: text names the cause, exit 4; --json carries the same report.
#[test]
fn dump_names_the_stuck_state() {
    let dir = scratch("dump");
    let f = stuck_dump(&dir);
    let f = f.to_str().unwrap();
    let o = run(&["inspect", "--dump", f, "--base", "0xa0000000"]);
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("[stuck] tx-buffers-all-with-remote"), "{out}");
    assert!(
        out.contains("status 0x7 (ACKNOWLEDGE|DRIVER|DRIVER_OK)"),
        "{out}"
    );
    let o = run(&[
        "inspect",
        "--dump",
        f,
        "--base",
        "0xa0000000",
        "--rsc-offset",
        "0",
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["diagnosis"][0]["code"], "tx-buffers-all-with-remote");
    assert_eq!(v["diagnosis"][0]["severity"], "stuck");
    assert_eq!(v["vrings"][1]["held_by_remote"], 4);
    assert_eq!(v["resource_table"]["vdev"]["status"]["value"], 7);
    // The same memory as a shm file, watched: one line (nothing moves), then the count ends it.
    let o = run(&[
        "inspect",
        "--shm",
        f,
        "--base",
        "0xa0000000",
        "--watch",
        "--count",
        "3",
        "--interval",
        "0.01",
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    let lines: Vec<Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{}", text(&o));
    assert_eq!(lines[0]["vrings"][1]["avail_idx"], 4);
    assert_eq!(lines[0]["findings"][0], "tx-buffers-all-with-remote");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Garbage gives an error or findings, never a crash: no table to find (exit 1, says
/// what to give), a table offset into noise (a finding), rings outside the file.
#[test]
fn garbage_is_an_error_not_a_crash() {
    let dir = scratch("garbage");
    let f = dir.join("noise.bin");
    let noise: Vec<u8> = (0..65536u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    std::fs::write(&f, noise).unwrap();
    let f = f.to_str().unwrap();
    let o = run(&["inspect", "--dump", f]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("--rsc-offset"),
        "{}",
        text(&o)
    );
    let o = run(&["inspect", "--dump", f, "--rsc-offset", "0x100"]);
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("resource-table-unreadable"),
        "{}",
        text(&o)
    );
    let o = run(&[
        "inspect",
        "--dump",
        f,
        "--vring0",
        "0xfff0:256:4096",
        "--vring1",
        "0:256:4096",
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let codes: Vec<&str> = v["diagnosis"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap())
        .collect();
    assert!(codes.contains(&"vring-unreadable"), "{v}");
    let o = run(&[
        "inspect", "--dump", f, "--vring0", "0:3:4096", "--vring1", "0:4:4096",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let o = run(&["inspect"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    // A file offset at the top of the 64-bit range: reads fail, nothing overflows.
    let o = run(&[
        "inspect",
        "--dump",
        f,
        "--file-offset",
        "0xffffffffffffff00",
        "--size",
        "0x1000",
        "--rsc-offset",
        "0x200",
    ]);
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("resource-table-unreadable"),
        "{}",
        text(&o)
    );
    // A kernel board on a machine without its remote processor: the error names the key.
    let k = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../boards/ti-am64x-r5f.toml");
    let o = run(&[
        "inspect",
        "--board",
        k.to_str().unwrap(),
        "--sysfs",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("remoteproc.name"),
        "{}",
        text(&o)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// --watch without a count stops when its reader goes away (EPIPE), quietly.
#[test]
fn watch_stops_when_the_reader_goes() {
    let dir = scratch("epipe");
    let f = stuck_dump(&dir);
    let mut child = Command::new(BIN)
        .args([
            "inspect",
            "--dump",
            f.to_str().unwrap(),
            "--base",
            "0xa0000000",
            "--watch",
            "--interval",
            "0.01",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.contains("tx-buffers-all-with-remote"), "{first}");
    // The reader is dropped; the frozen link never changes, so the next line comes only
    // if something moves: --watch must notice the closed pipe without one. It writes
    // only on change, so make it change: rewrite the dump with a moved index.
    let mut bytes = std::fs::read(&f).unwrap();
    bytes[0x3000 + 4 * 16 + 2] = 3; // vring 1 avail.idx 4 -> 3
    std::fs::write(&f, bytes).unwrap();
    let t = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "--watch kept running after EPIPE"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(status.code(), Some(4), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The sim board's running link, read through its owner: the table, status and the
/// announced services decode, and the owner still serves the link afterwards.
#[test]
fn board_link_is_read_without_taking_it() {
    let rt = scratch("board");
    let b = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../boards/sim.toml");
    let b = b.to_str().unwrap();
    let cmd = |args: &[&str]| {
        Command::new(BIN)
            .args(args)
            .env("XDG_RUNTIME_DIR", &rt)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let o = cmd(&["inspect", "--board", b]);
    assert_eq!(o.status.code(), Some(1), "no owner yet: {}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("intercore up"),
        "{}",
        text(&o)
    );
    let o = cmd(&["up", "--board", b]);
    assert!(o.status.success(), "{}", text(&o));
    let o = cmd(&["inspect", "--board", b, "--json"]);
    // Pings while --watch re-reads the link every 10 ms: every round trip still verified.
    let watch = Command::new(BIN)
        .args([
            "inspect",
            "--board",
            b,
            "--watch",
            "--interval",
            "0.01",
            "--count",
            "200",
        ])
        .env("XDG_RUNTIME_DIR", &rt)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let ping = cmd(&["ping", "--board", b, "--count", "200"]);
    let watched = watch.wait_with_output().unwrap();
    let _ = cmd(&["down", "--board", b]);
    assert!(
        watched.status.code().is_some_and(|c| c == 0 || c == 4),
        "{}",
        text(&watched)
    );
    assert!(
        String::from_utf8_lossy(&watched.stdout).contains("vring1 avail"),
        "{}",
        text(&watched)
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["base"], 0xA000_0000u64);
    assert_eq!(v["resource_table"]["vdev"]["status"]["value"], 7);
    let names: Vec<&str> = v["announcements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"rpmsg-raw"), "{v}");
    assert!(
        ping.status.success(),
        "the owner still serves the link: {}",
        text(&ping)
    );
    let _ = std::fs::remove_dir_all(&rt);
}

// --- kernel and userspace boards: physical memory through a fake /dev/mem ---------------
//
// Not the kernel's /dev/mem: a sparse regular file under `root/dev/mem` covering the
// physical ranges, as the board crate's open tests fake it (`tests/open.rs`,
// `fake_devmem`). A live host/remote bus pair runs over a read-write mapping of it
// (`PhysCarveout::devmem`, as `Board::open` maps a userspace carveout); `inspect --board`
// finds the ranges from the board file (and the fake device tree) and maps them
// read-only. What a real /dev/mem adds (STRICT_DEVMEM, Device memory attributes, root) is
// not covered here.

use intercore::rpmsg::layout::{CarveoutLayout, CarveoutSpec};
use intercore::rpmsg::rsc_table::RpmsgTable;
use intercore::rpmsg::{HostBus, RemoteBus, RemoteConfig, RscLocation};
use intercore::testing::ThreadBell;
use intercore::{DevAddr, LinearMap};
use intercore_linux::{DevMemCaching, PhysCarveout, SysRoots};
use std::sync::Arc;

/// A fake /dev/mem of `len` bytes (sparse) under `root`.
fn fake_devmem(root: &Path, len: u64) {
    std::fs::create_dir_all(root.join("dev")).unwrap();
    std::fs::create_dir_all(root.join("sys")).unwrap();
    let f = std::fs::File::create(root.join("dev/mem")).unwrap();
    f.set_len(len).unwrap();
}

type PhysHost = HostBus<Arc<PhysCarveout>, ThreadBell>;
type PhysRemote = RemoteBus<Arc<PhysCarveout>, ThreadBell, 4>;

/// A live link in the fake /dev/mem: the memory `pa..pa + len` mapped read-write, the
/// standard table for 8-entry rings with `da_base = pa` written at `rsc_at` (a region
/// offset: the carveout's own slot, or elsewhere, as a firmware's table in its own
/// memory), both buses up, the remote's "rpmsg-raw" announced. Then the host sends 8
/// messages the remote never takes: every transmit buffer is with the remote.
fn stuck_phys_link(
    root: &Path,
    pa: u64,
    len: usize,
    rsc_at: Option<usize>,
) -> (PhysHost, PhysRemote) {
    let mem = Arc::new(
        PhysCarveout::devmem(&SysRoots::under(root), pa, len, DevMemCaching::Uncached).unwrap(),
    );
    let spec = CarveoutSpec {
        vring_num: 8,
        buf_size: 512,
        event_idx: false,
        da_base: pa,
    };
    let layout = CarveoutLayout::new(&spec).unwrap();
    let table = RpmsgTable::standard(&spec);
    let bytes = intercore::wire::IntoBytes::as_bytes(&table);
    let rsc = RscLocation {
        offset: rsc_at.unwrap_or(layout.rsc.offset),
        len: bytes.len(),
    };
    mem.write(rsc.offset, bytes);
    let map = LinearMap {
        base: DevAddr(pa),
        offset: 0,
        len,
    };
    let (hb, rb) = ThreadBell::pair();
    let cfg = HostConfig {
        timeout: Some(Duration::from_millis(10)),
        ..HostConfig::default()
    };
    let mut host = HostBus::new(Arc::clone(&mem), hb, &map, rsc, cfg).unwrap();
    let mut remote: PhysRemote =
        RemoteBus::new(Arc::clone(&mem), rb, &map, rsc, RemoteConfig::default()).unwrap();
    remote.wait_ready(Some(Duration::from_secs(5))).unwrap();
    let rep = remote.create_endpoint("rpmsg-raw", None).unwrap();
    remote.announce(rep).unwrap();
    let ep = host.create_endpoint("h", None).unwrap();
    for i in 0..8u8 {
        host.send_raw(ep, 0x400, &[i; 9], Some(Duration::ZERO))
            .unwrap();
    }
    (host, remote)
}

fn file_hash(p: &Path) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    std::fs::read(p).unwrap().hash(&mut h);
    h.finish()
}

fn run_in(root: &Path, args: &[&str]) -> Output {
    let mut v: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    for (opt, dir) in [
        ("--sysfs", "sys"),
        ("--dev", "dev"),
        ("--device-tree", "proc/device-tree"),
    ] {
        v.push(opt.into());
        v.push(root.join(dir).to_str().unwrap().into());
    }
    Command::new(BIN)
        .args(&v)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

const U_PA: u64 = 0x10_0000;
const U_LEN: usize = 0x4_0000;

/// A userspace board: the carveout `transport.base`/`size`, the table at
/// `transport.rsc_offset`. `inspect --board` reads the live link there without
/// `--file-offset`: the table, the rings at their physical addresses, the stuck
/// transmit side named, exit 4; the fake /dev/mem's bytes are the same before and after
/// (text and --json), and the host still sends (the link is untouched).
#[test]
fn userspace_board_is_read_from_devmem() {
    let root = scratch("user");
    fake_devmem(&root, U_PA + U_LEN as u64);
    let (mut host, _remote) = stuck_phys_link(&root, U_PA, U_LEN, None);
    let rsc_off = CarveoutLayout::new(&CarveoutSpec {
        vring_num: 8,
        buf_size: 512,
        event_idx: false,
        da_base: U_PA,
    })
    .unwrap()
    .rsc
    .offset;
    let board = root.join("u.toml");
    std::fs::write(
        &board,
        format!(
            "[board]\nname = \"u\"\narch = \"any\"\n[remoteproc]\nname = \"78000000.r5f\"\n[transport]\nkind = \"userspace\"\nbase = {U_PA:#x}\nsize = {U_LEN:#x}\nrsc_offset = {rsc_off:#x}\n[memory]\nsource = \"carveout\"\nbase = 0x4000000\nsize = 0x2000000\n[cache]\nmode = \"coherent\"\n[rpmsg]\nwait = \"poll\"\nbuffers = 8\n"
        ),
    )
    .unwrap();
    let devmem = root.join("dev/mem");
    let before = file_hash(&devmem);
    let b = board.to_str().unwrap();
    let o = run_in(&root, &["inspect", "--board", b]);
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("tx-buffers-all-with-remote"), "{}", text(&o));
    assert!(out.contains("rpmsg-raw"), "{}", text(&o));
    let o = run_in(&root, &["inspect", "--board", b, "--json"]);
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["base"], U_PA);
    assert_eq!(v["resource_table"]["vdev"]["status"]["value"], 7);
    assert_eq!(v["vrings"][1]["avail_idx"], 8);
    assert_eq!(v["vrings"][1]["used_idx"], 0);
    assert_eq!(file_hash(&devmem), before, "inspect stored into /dev/mem");
    // The link is untouched: the host still owns its state (no buffer came back, so a
    // further send times out as it would have).
    let ep = host.create_endpoint("h2", None).unwrap();
    assert!(
        host.send_raw(ep, 0x400, b"x", Some(Duration::ZERO))
            .is_err()
    );
    let _ = std::fs::remove_dir_all(&root);
}

/// A kernel board: the remote processor's device-tree node names two memory-regions,
/// `dma` (vrings and buffers, as TI K3's first region) and `fw` (the firmware's memory,
/// holding the table), with a gap between them that is neither mapped nor read.
/// `inspect --board` resolves the phandles, maps both ranges read-only, finds the table
/// in the second and decodes the rings in the first; the bytes are unchanged. Without the
/// memory-region property it says what to give instead.
#[test]
fn kernel_board_is_read_from_the_cores_memory_regions() {
    use intercore_linux::remoteproc::fake::{FakeKernel, FakeRproc};
    let mut r5f = FakeRproc::offline("78000000.r5f", "fw");
    r5f.state = "running".into();
    let k = FakeKernel::new(&[r5f]);
    let root = k.root().to_path_buf();
    const DMA: u64 = 0x10_0000;
    const DMA_LEN: u64 = 0x4_0000;
    const FW: u64 = 0x30_0000;
    const FW_LEN: u64 = 0x1_0000;
    fake_devmem(&root, FW + FW_LEN);
    let board = root.join("k.toml");
    std::fs::write(
        &board,
        "[board]\nname = \"k\"\narch = \"any\"\n[remoteproc]\nname = \"78000000.r5f\"\n[transport]\nkind = \"kernel\"\n[memory]\nsource = \"carveout\"\nreserved_memory = \"intercore-pool\"\n[cache]\nmode = \"coherent\"\n",
    )
    .unwrap();
    let b = board.to_str().unwrap();
    let o = run_in(&root, &["inspect", "--board", b]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("memory-region"),
        "{}",
        text(&o)
    );
    let rm = root.join("proc/device-tree/reserved-memory");
    for (name, base, size, phandle) in [
        ("r5f-dma-memory@100000", DMA, DMA_LEN, 0x10u32),
        ("r5f-memory@300000", FW, FW_LEN, 0x11),
    ] {
        let d = rm.join(name);
        std::fs::create_dir_all(&d).unwrap();
        let mut reg = base.to_be_bytes().to_vec();
        reg.extend_from_slice(&size.to_be_bytes());
        std::fs::write(d.join("reg"), reg).unwrap();
        std::fs::write(d.join("no-map"), b"").unwrap();
        std::fs::write(d.join("phandle"), phandle.to_be_bytes()).unwrap();
    }
    let n = root.join("sys/class/remoteproc/remoteproc0/device/of_node");
    std::fs::create_dir_all(&n).unwrap();
    let mut mr = 0x10u32.to_be_bytes().to_vec();
    mr.extend_from_slice(&0x11u32.to_be_bytes());
    std::fs::write(n.join("memory-region"), mr).unwrap();
    // Firmware loaded, link not up: no table anywhere yet.
    let o = run_in(&root, &["inspect", "--board", b]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("0x300000+0x10000"),
        "{}",
        text(&o)
    );
    // The live link: one read-write view over both ranges (and the gap), the table at the
    // start of the firmware's memory, the rings and buffers in the DMA region.
    let span = (FW + FW_LEN - DMA) as usize;
    let (_host, _remote) = stuck_phys_link(&root, DMA, span, Some((FW - DMA) as usize));
    let devmem = root.join("dev/mem");
    let before = file_hash(&devmem);
    let o = run_in(&root, &["inspect", "--board", b, "--json"]);
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["base"], DMA);
    assert_eq!(v["vrings"][1]["avail_idx"], 8);
    let codes: Vec<&str> = v["diagnosis"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap())
        .collect();
    assert!(codes.contains(&"tx-buffers-all-with-remote"), "{v}");
    assert!(!codes.contains(&"buffer-outside-windows"), "{v}");
    assert_eq!(file_hash(&devmem), before, "inspect stored into /dev/mem");
}
