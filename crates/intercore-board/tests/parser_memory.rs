//! Issue 20.11, measured: rejecting a 900 KB board file of `[[t]]` headers must not take
//! tens of megabytes. Alone in its test binary, so that the process's peak resident size
//! (`VmHWM` in /proc/self/status) is this test's.

use intercore_board::Board;

fn peak_kb() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/self/status")
}

/// Before the pre-scan: the parser built a node per header before the unknown key was
/// reported (+45 MB here, 143 MB in the build). After: refused within 2 MB
/// (the text itself is 0.9 MB).
#[test]
fn a_900_kb_file_of_tables_is_refused_in_little_memory() {
    let text = "[[t]]\n".repeat(150_000);
    let before = peak_kb();
    let e = Board::from_str(&text).unwrap_err();
    let grew = peak_kb().saturating_sub(before);
    eprintln!("peak resident size grew by {grew} kB: {e}");
    assert!(grew < 2048, "peak grew by {grew} kB");
}
