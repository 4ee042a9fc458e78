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
    // A kernel board's link memory is physical: the error says how to read it.
    let k = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../boards/ti-am64x-r5f.toml");
    let o = run(&["inspect", "--board", k.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("--shm /dev/mem"),
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
