//! `intercore up`, `ping`, `echo`, `bench --board` and `down` as real processes on the
//! simulated SoC's board (boards/sim.toml): the link owner in the background and in the
//! foreground, its control socket in a private runtime directory per test, and the errors a
//! user meets (no owner, a bad board, a dead owner, a second `up`, an unsafe runtime
//! directory). The QEMU boards run in scripts/test-boards.sh, which has the images.

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_intercore");

fn board(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../boards")
        .join(name)
}

/// A private runtime directory (mode 0700), removed on drop; every command runs with it as
/// XDG_RUNTIME_DIR.
struct Rt(PathBuf);

impl Rt {
    fn new(tag: &str) -> Self {
        let d = std::env::temp_dir().join(format!("intercore-link-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700)).unwrap();
        Self(d)
    }
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.args(args).env("XDG_RUNTIME_DIR", &self.0);
        c
    }
    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).stdin(Stdio::null()).output().unwrap()
    }
}

impl Drop for Rt {
    fn drop(&mut self) {
        // Stop any owner a failed test left (down on a board that is not up is harmless).
        for b in ["sim.toml", "sim-ti-k3.toml"] {
            let _ = self.run(&["down", "--board", board(b).to_str().unwrap()]);
        }
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Waits up to 5 s until process `pid` is gone (reaped: no /proc entry).
fn wait_gone(pid: u64) {
    let t = std::time::Instant::now();
    while Path::new(&format!("/proc/{pid}")).exists() && t.elapsed().as_secs() < 5 {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn json_line(o: &Output) -> Value {
    let s = String::from_utf8_lossy(&o.stdout);
    serde_json::from_str(s.lines().last().unwrap_or(""))
        .unwrap_or_else(|e| panic!("{e}: {}", text(o)))
}

/// up → ping --json (every round trip verified) → echo (every size 1..496) → bench rtt and
/// bulk (rows name board and transport, baselines n/a) → a second up says "already up"
/// with the same owner → down; then ping names the command to run.
#[test]
fn up_ping_echo_bench_down_on_the_sim_board() {
    let rt = Rt::new("cycle");
    let b = board("sim.toml");
    let b = b.to_str().unwrap();
    let o = rt.run(&["up", "--board", b, "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    let up = json_line(&o);
    assert_eq!(up["ready"], true, "{up}");
    assert_eq!(up["transport"], "sim");
    let owner = up["owner_pid"].as_u64().unwrap();
    assert!(Path::new(&format!("/proc/{owner}")).exists());

    let o = rt.run(&["ping", "--board", b, "--count", "300", "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    let p = json_line(&o);
    assert_eq!(p["verified"], 300, "{p}");
    assert_eq!(p["errors"], 0, "{p}");
    assert_eq!(p["owner_pid"].as_u64(), Some(owner));
    assert!(p["p50_ns"].as_u64().unwrap() > 0 && p["min_ns"].as_u64() <= p["max_ns"].as_u64());

    let o = rt.run(&["echo", "--board", b, "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    let e = json_line(&o);
    assert_eq!(e["messages"], 496, "{e}");
    assert_eq!(e["verified"], 496, "{e}");
    assert_eq!(e["bytes"], 496 * 497 / 2, "{e}");

    let o = rt.run(&[
        "bench",
        "rtt",
        "bulk",
        "--board",
        b,
        "--samples",
        "100",
        "--json",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let rows: Vec<Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        rows.iter().all(|r| r["board"] == "simulated SoC"),
        "{rows:?}"
    );
    let rtt: Vec<_> = rows
        .iter()
        .filter(|r| r["bench"] == "rtt" && r["transport"] == "sim")
        .collect();
    assert_eq!(rtt.len(), 3, "{rows:?}");
    assert!(rtt.iter().all(|r| r["samples"] == 100 && r["errors"] == 0));
    assert!(
        rows.iter()
            .any(|r| r["transport"] == "unix-socket" && r["na"].is_string())
    );
    let bulk = rows.iter().find(|r| r["bench"] == "bulk").unwrap();
    assert_eq!(bulk["corrupted"], 0, "{bulk}");
    assert!(bulk["bytes"].as_u64().unwrap() > 0, "{bulk}");
    // Twice: the owner keeps its data plane between requests.
    let o = rt.run(&["bench", "bulk", "--board", b, "--json"]);
    assert!(o.status.success(), "{}", text(&o));

    let o = rt.run(&["up", "--board", b]);
    assert!(o.status.success(), "{}", text(&o));
    let s = String::from_utf8_lossy(&o.stdout);
    assert!(
        s.contains("already up") && s.contains(&owner.to_string()),
        "{s}"
    );

    let o = rt.run(&["down", "--board", b]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("exited with exit status: 0"),
        "{}",
        text(&o)
    );
    // The owner is gone (reaped by init: wait until /proc says so).
    wait_gone(owner);
    let o = rt.run(&["ping", "--board", b]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(&format!(
            "no link is up for board {b}: run `intercore up --board {b}`"
        )),
        "{err}"
    );
    assert!(
        std::fs::read_dir(rt.0.join("intercore"))
            .unwrap()
            .all(|e| { !e.unwrap().file_name().to_string_lossy().ends_with(".sock") })
    );
}

/// `up --foreground` is the owner itself: it prints one line once the link is up, serves
/// ping, and exits 0 after `down`.
#[test]
fn foreground_owner_serves_until_down() {
    let rt = Rt::new("fg");
    let b = board("sim-ti-k3.toml");
    let b = b.to_str().unwrap();
    let mut child = rt
        .cmd(&["up", "--board", b, "--foreground", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let v: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["transport"], "sim/ti-k3", "{v}");
    assert_eq!(v["owner_pid"].as_u64(), Some(child.id() as u64));
    let o = rt.run(&["ping", "--board", b, "--count", "50", "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(json_line(&o)["verified"], 50);
    let o = rt.run(&["down", "--board", b]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(child.wait().unwrap().success());
}

/// A killed owner leaves its socket: ping reports the owner gone (naming its pid and log)
/// and what to run; `up` replaces the stale socket and works again.
#[test]
fn dead_owner_is_reported_and_replaced() {
    let rt = Rt::new("dead");
    let b = board("sim.toml");
    let b = b.to_str().unwrap();
    let o = rt.run(&["up", "--board", b, "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    let owner = json_line(&o)["owner_pid"].as_u64().unwrap();
    Command::new("kill")
        .args(["-KILL", &owner.to_string()])
        .status()
        .unwrap();
    wait_gone(owner);
    let o = rt.run(&["ping", "--board", b]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(&format!("(pid {owner}) is gone")), "{err}");
    assert!(
        err.contains(&format!("run `intercore up --board {b}`")),
        "{err}"
    );
    let o = rt.run(&["up", "--board", b]);
    assert!(o.status.success(), "{}", text(&o));
    let o = rt.run(&["ping", "--board", b, "--count", "10"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = rt.run(&["down", "--board", b]);
    assert!(o.status.success(), "{}", text(&o));
}

/// Bad input is named: a missing board file (its path), an invalid one (the key), a QEMU
/// board without an image (transport.fw_dir, and the paths looked at), a runtime directory
/// others may enter (refused, naming it), a count out of range (usage error 2), and
/// `bench soak --board` (not offered).
#[test]
fn errors_name_what_and_where() {
    let rt = Rt::new("err");
    let o = rt.run(&["up", "--board", "/nonexistent/board.toml", "--json"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let e = json_line(&o);
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("/nonexistent/board.toml"),
        "{e}"
    );

    let bad = rt.0.join("bad.toml");
    std::fs::write(&bad, "[board]\nname = \"x\"\n[transport]\nkind = \"tcp\"\n[memory]\nsource = \"memfd\"\n[cache]\nmode = \"coherent\"\n").unwrap();
    let o = rt.run(&["ping", "--board", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("transport.kind"),
        "{}",
        text(&o)
    );

    let q = rt.0.join("q.toml");
    std::fs::write(&q, "[board]\nname = \"q\"\n[transport]\nkind = \"qemu\"\ncore = \"m4f\"\nfw_dir = \"no-images\"\n[memory]\nsource = \"memfd\"\n[cache]\nmode = \"coherent\"\n").unwrap();
    let o = rt.run(&["up", "--board", q.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("transport.fw_dir") && err.contains("no-images/qemu-m4f.elf"),
        "{err}"
    );
    assert!(
        !std::fs::read_dir(rt.0.join("intercore"))
            .unwrap()
            .any(|e| { e.unwrap().file_name().to_string_lossy().ends_with(".sock") })
    );

    let o = rt.run(&[
        "ping",
        "--board",
        board("sim.toml").to_str().unwrap(),
        "--count",
        "0",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let o = rt.run(&[
        "bench",
        "soak",
        "--board",
        board("sim.toml").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));

    let open = Rt::new("open");
    std::fs::create_dir_all(open.0.join("intercore")).unwrap();
    std::fs::set_permissions(
        open.0.join("intercore"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let o = open.run(&["ping", "--board", board("sim.toml").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("mode 0700") && err.contains("755"), "{err}");
}
