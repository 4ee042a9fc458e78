//! Issue 12, the soak: rows are streamed as they are measured, and a peer that stops
//! answering for a while is reported as a stall with its context (here: the remote core's
//! process is stopped with SIGSTOP, so the diagnosis must be "peer starved", state T) —
//! the run carries on when it answers again instead of discarding what it measured.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Child processes of `pid` (`/proc/PID/task/*/children`, proc(5)).
fn children(pid: u32) -> Vec<u32> {
    let mut v = Vec::new();
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for t in tasks.flatten() {
            if let Ok(s) = std::fs::read_to_string(t.path().join("children")) {
                v.extend(s.split_whitespace().filter_map(|x| x.parse::<u32>().ok()));
            }
        }
    }
    v
}

fn signal(pid: u32, sig: libc::c_int) {
    // SAFETY: kill(2) with a pid we just read as our grandchild; no memory involved.
    unsafe { libc::kill(pid as libc::pid_t, sig) };
}

#[test]
fn soak_streams_rows_and_survives_a_stopped_peer() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_intercore"))
        .args(["bench", "soak", "--duration", "6", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    // The first row arrives while the soak still runs: it is streamed.
    let first = lines.next().unwrap().unwrap();
    assert!(first.contains("\"bench\":\"soak\""), "{first}");
    assert!(
        child.try_wait().unwrap().is_none(),
        "first row before the end"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let remote = loop {
        if let Some(&c) = children(pid).first() {
            break c;
        }
        assert!(Instant::now() < deadline, "no remote process found");
        std::thread::sleep(Duration::from_millis(10));
    };
    signal(remote, libc::SIGSTOP);
    std::thread::sleep(Duration::from_millis(2500));
    signal(remote, libc::SIGCONT);
    let rest: Vec<String> = lines.map(|l| l.unwrap()).collect();
    let status = child.wait().unwrap();
    let stalls: Vec<&String> = rest.iter().filter(|l| l.contains("stall at")).collect();
    assert!(!stalls.is_empty(), "no stall reported: {rest:#?}");
    assert!(
        stalls
            .iter()
            .all(|l| l.contains("peer starved") && l.contains("state T")),
        "{stalls:#?}"
    );
    let measured = rest
        .iter()
        .filter(|l| l.contains("\"transport\":\"intercore-adaptive\""))
        .count();
    assert!(measured >= 2, "rows after the stall: {rest:#?}");
    assert!(
        status.success(),
        "a stall that ends is not a failure: {rest:#?}"
    );
}
