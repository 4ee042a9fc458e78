//! The background load of `bench rtt`'s `rtt-load` rows never outlives the harness: each busy
//! process (`__bench-peer busy PARENT`) exits by itself once its parent is gone, even when
//! the parent dies without killing it.

use std::process::Command;
use std::time::{Duration, Instant};

/// State letter of process `pid` (proc(5), field 3), `None` once it is gone.
fn state(pid: u32) -> Option<char> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    s[s.rfind(')')? + 2..].chars().next()
}

#[test]
fn busy_peer_exits_when_its_parent_dies() {
    let exe = env!("CARGO_BIN_EXE_intercore");
    // A shell starts the busy process as its child, prints its pid, lives 300 ms, and
    // exits without killing it.
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "'{exe}' __bench-peer busy $$ >/dev/null 2>&1 & echo $!; sleep 0.3"
        ))
        .output()
        .expect("running sh");
    assert!(out.status.success());
    let pid: u32 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("the busy process's pid");
    let t0 = Instant::now();
    loop {
        match state(pid) {
            None | Some('Z') | Some('X') => break,
            Some(s) => assert!(
                t0.elapsed() < Duration::from_secs(5),
                "busy process {pid} still running (state {s}) 5 s after its parent exited"
            ),
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// While its parent lives, the busy process runs (it is a load, not a no-op).
#[test]
fn busy_peer_runs_while_its_parent_lives() {
    let exe = env!("CARGO_BIN_EXE_intercore");
    let mut child = Command::new(exe)
        .args(["__bench-peer", "busy", &std::process::id().to_string()])
        .spawn()
        .expect("spawning the busy peer");
    std::thread::sleep(Duration::from_millis(200));
    let alive = child.try_wait().expect("try_wait").is_none();
    let _ = child.kill();
    let _ = child.wait();
    assert!(alive, "the busy peer exited while its parent was alive");
}
