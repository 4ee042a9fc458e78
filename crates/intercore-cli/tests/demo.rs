//! `intercore demo --json`, run as a newcomer would: exits 0, and its last line reports at
//! least 100,000 verified messages, no errors, and a remote pid that is neither ours nor
//! the demo's (the firmware runs in its own process).

use std::process::Command;

fn field(line: &str, key: &str) -> u64 {
    let pat = format!("\"{key}\":");
    let at = line
        .find(&pat)
        .unwrap_or_else(|| panic!("no {key} in {line}"))
        + pat.len();
    line[at..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn demo_json_reports_100k_messages_from_a_separate_process() {
    let out = Command::new(env!("CARGO_BIN_EXE_intercore"))
        .args(["demo", "--json"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let last = stdout.lines().last().expect("a JSON line");
    assert!(field(last, "messages") >= 100_000, "{last}");
    assert_eq!(field(last, "errors"), 0, "{last}");
    let remote = field(last, "remote_pid");
    let host = field(last, "host_pid");
    assert_ne!(remote, host);
    assert_ne!(remote, std::process::id() as u64);
    assert!(
        field(last, "rtt_p50_ns") > 0 && field(last, "rtt_p99_ns") >= field(last, "rtt_p50_ns")
    );
    assert!(field(last, "bulk_bytes") >= 256 << 20, "{last}");
    assert_eq!(field(last, "corrupted"), 0, "{last}");
    assert!(last.contains("\"cache\":\"coherent\""), "{last}");
}

/// `intercore demo --layout ti-k3 --json` (the interop issue's "done when"): the TI K3-like
/// layout — table in the firmware's region, vrings at FW_RSC_ADDR_ANY placed by the host,
/// buffers from the DMA region, firmware started first — carries 100,000 verified messages
/// and the bulk stage.
#[test]
fn demo_ti_k3_layout_json() {
    let out = Command::new(env!("CARGO_BIN_EXE_intercore"))
        .args(["demo", "--layout", "ti-k3", "--json"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let last = stdout.lines().last().expect("a JSON line");
    assert!(field(last, "messages") >= 100_000, "{last}");
    assert_eq!(field(last, "errors"), 0, "{last}");
    assert!(field(last, "bulk_bytes") >= 256 << 20, "{last}");
    assert_eq!(field(last, "corrupted"), 0, "{last}");
    assert!(last.contains("\"layout\":\"ti-k3\""), "{last}");
}

/// The bulk stage under the non-coherent cache model with random eviction: at least
/// 256 MiB, every CRC verified, no corruption, no sanitizer report, no IOMMU fault.
#[test]
fn demo_noncoherent_bulk_is_clean() {
    let out = Command::new(env!("CARGO_BIN_EXE_intercore"))
        .args([
            "demo",
            "--json",
            "--messages",
            "1000",
            "--cache",
            "noncoherent",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let last = stdout.lines().last().expect("a JSON line");
    assert!(field(last, "bulk_bytes") >= 256 << 20, "{last}");
    assert_eq!(field(last, "corrupted"), 0, "{last}");
    assert_eq!(field(last, "sanitizer_reports"), 0, "{last}");
    assert_eq!(field(last, "iommu_faults"), 0, "{last}");
    assert!(last.contains("\"cache\":\"noncoherent\""), "{last}");
}

/// `intercore sim selftest` catches every injected bug class and finds the correct run
/// clean (exit 0 only then).
#[test]
fn sim_selftest_catches_every_bug_class() {
    let out = Command::new(env!("CARGO_BIN_EXE_intercore"))
        .args(["sim", "selftest", "--json"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "selftest failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for key in [
        "missing_clean",
        "missing_invalidate",
        "dirty_eviction",
        "out_of_window",
        "read_only_window",
        "correct_run_clean",
        "all_ok",
    ] {
        assert!(
            stdout.contains(&format!("\"{key}\":true")),
            "{key} in {stdout}"
        );
    }
}

/// Unknown commands and options are usage errors (exit 2) with a message, not panics.
#[test]
fn bad_arguments_are_usage_errors() {
    let bin = env!("CARGO_BIN_EXE_intercore");
    for args in [
        &["frobnicate"][..],
        &["demo", "--messages"],
        &["demo", "--wait", "sometimes"],
    ] {
        let out = Command::new(bin).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(!out.stderr.is_empty());
    }
}

/// `demo --board FILE` runs the simulated SoC a board file describes (issue 12: where demo
/// chooses what it runs against, a board file; `--layout` is the shorthand): the shipped
/// `sim-ti-k3.toml` gives the K3 layout, and a board for a real SoC is refused naming the
/// file (exit 1).
#[test]
fn demo_board_file() {
    let boards = concat!(env!("CARGO_MANIFEST_DIR"), "/../../boards/");
    let out = Command::new(env!("CARGO_BIN_EXE_intercore"))
        .args([
            "demo",
            "--json",
            "--messages",
            "2000",
            "--bulk-mib",
            "8",
            "--board",
        ])
        .arg(format!("{boards}sim-ti-k3.toml"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let last = stdout.lines().last().expect("a JSON line");
    assert_eq!(field(last, "messages"), 2000, "{last}");
    assert_eq!(field(last, "corrupted"), 0, "{last}");
    assert!(last.contains("\"layout\":\"ti-k3\""), "{last}");

    let real = format!("{boards}ti-am64x-r5f.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_intercore"))
        .args(["demo", "--json", "--board", &real])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let line = String::from_utf8_lossy(&out.stdout);
    assert!(
        line.contains("\"path\"") && line.contains("kind = \\\"sim\\\""),
        "{line}"
    );
}
