//! `intercore bench scale --json` (issue 23.5): a row for every remotes × endpoints pair
//! and both flood rows, every echo verified (0 errors), and the summary's two entries
//! measured. The bounds themselves are timing on a shared machine and are not asserted
//! here (BENCHMARKS.md has a run); that they were computed is.

use std::process::Command;

#[test]
fn scale_suite_emits_every_row_verified_and_both_summary_entries() {
    let out = Command::new(env!("CARGO_BIN_EXE_intercore"))
        .args(["bench", "scale", "--json"])
        .output()
        .expect("running intercore");
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let rows: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|v| v["bench"] == "scale" || v["bench"] == "scale-flood")
        .collect();
    let mut want: Vec<String> = Vec::new();
    for r in [1, 2, 4] {
        for e in [1, 16, 64, 256] {
            want.push(format!("intercore-{r}x{e}"));
        }
    }
    // The flood rows on the default link, with a credit of 1, on split rings with it and
    // without.
    for suffix in ["", "-credit", "-credit-split", "-split"] {
        want.push(format!("intercore-quiet-alone{suffix}"));
        want.push(format!("intercore-quiet-flooded{suffix}"));
    }
    let mut got: Vec<String> = rows
        .iter()
        .map(|r| r["transport"].as_str().unwrap().to_string())
        .collect();
    got.sort();
    want.sort();
    assert_eq!(
        got,
        want,
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for r in &rows {
        assert_eq!(r["errors"], 0, "{r}");
        assert!(r["p99_ns"].as_u64().is_some_and(|p| p > 0), "{r}");
        assert!(r["msgs_per_s"].as_f64().is_some_and(|v| v > 0.0), "{r}");
    }
    for r in rows.iter().filter(|r| r["bench"] == "scale") {
        assert!(
            r["host_cpu_ns_per_op"].as_f64().is_some_and(|v| v > 0.0),
            "{r}"
        );
    }
    let summary = &lines.last().expect("a summary line")["summary"];
    for t in [
        "scale_cpu_per_msg_4x64_over_1x1",
        "scale_flood_p99_over_alone",
        "scale_flood_p99_over_alone_credit",
    ] {
        assert!(summary[t]["value"].as_f64().is_some(), "{t}: {summary}");
    }
}
