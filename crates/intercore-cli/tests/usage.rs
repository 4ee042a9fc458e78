//! The binary end to end where only a process shows it: the usage-error format and status,
//! the `--json` error line, and an early-closed stdout.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_intercore");

/// A usage error is `intercore CMD: message` on stderr (as README says), exit 2 — not
/// clap's `error: …`; under --json it is the one error line naming the option.
#[test]
fn usage_errors_name_the_command() {
    for (args, prefix) in [
        (
            &["demo", "--messages", "x"][..],
            "intercore demo: invalid value 'x' for '--messages",
        ),
        (&["board", "check"], "intercore board check: "),
        (
            &["frobnicate"],
            "intercore: unrecognized subcommand 'frobnicate'",
        ),
        (
            &["rproc", "start", "--timeout", "-1"],
            "intercore rproc start: invalid value '-1'",
        ),
    ] {
        let out = Command::new(BIN).args(args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.starts_with(prefix), "{args:?}: {err}");
        assert!(!err.contains("error:"), "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    let out = Command::new(BIN)
        .args(["demo", "--json", "--messages", "x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stderr.is_empty());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["error"]["option"], "--messages", "{v}");
}

/// `bench --json | head -1`: each row is printed as it is measured, and the run ends at
/// the first write after the reader has gone (before: the whole suite ran first).
#[test]
fn bench_json_ends_promptly_when_the_reader_goes() {
    let mut child = Command::new(BIN)
        .args(["--json", "bench", "rtt", "--samples", "100"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t = Instant::now();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let first_after = t.elapsed();
    assert!(first.starts_with("{\"bench\":\"rtt\""), "{first}");
    // The reader is gone (dropped above); the next row's write ends the run.
    let t = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if t.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("still running 30 s after the reader went (first row after {first_after:?})");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(1));
    // The whole rtt suite takes about 20 s here; the first row comes within a second.
    assert!(
        first_after + t.elapsed() < Duration::from_secs(8),
        "first row after {first_after:?}, exit {:?} later",
        t.elapsed()
    );
}
