//! The inline-slot ring's `bench accesses` rows (issue 24, "Counted, then timed"): the
//! counts are deterministic, so the bounds are asserted exactly.
//!
//! * The dependent chain of a 64-byte round trip is 1 per direction: every send and
//!   receive row, on both roles, has chain 1 (nothing the ring reads is an address).
//! * Lines touched per side, per message: at most 3 for a 64-byte send (two slot lines and
//!   the consumer's control line) and a 64-byte receive. A whole round trip touches more
//!   on each side (2 lines out and 2 back at least: a 64-byte payload and its 16-byte
//!   header do not fit one 64-byte line), which is held below the in-order split ring's.

use std::collections::BTreeMap;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_accesses");

fn rows() -> (String, Vec<BTreeMap<String, String>>) {
    let out = Command::new(BIN).args(["--json"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let rows = text
        .lines()
        .map(|l| {
            let body = l.trim().trim_start_matches('{').trim_end_matches('}');
            body.split(',')
                .map(|kv| {
                    let (k, v) = kv.split_once(':').unwrap();
                    (k.trim_matches('"').into(), v.trim_matches('"').into())
                })
                .collect()
        })
        .collect();
    (text, rows)
}

fn get(
    rows: &[BTreeMap<String, String>],
    imp: &str,
    role: &str,
    op: &str,
    size: usize,
) -> BTreeMap<String, String> {
    rows.iter()
        .find(|r| {
            r["impl"] == imp
                && r["role"] == role
                && r["op"] == op
                && r["size"] == size.to_string()
                && (imp != "intercore-in-order" || r["event_idx"] == "true")
        })
        .unwrap_or_else(|| panic!("no {imp} {role} {op} {size} row"))
        .clone()
}

#[test]
fn inline_64_byte_round_trip_is_one_load_deep_and_three_lines_per_message() {
    let (text, rows) = rows();
    assert_eq!(text, rows_text_again(), "two runs counted differently");
    let f = |r: &BTreeMap<String, String>, k: &str| -> f64 { r[k].parse().unwrap() };
    for role in ["host", "remote"] {
        for op in ["send", "recv", "rtt"] {
            let r = get(&rows, "intercore-inline", role, op, 64);
            assert_eq!(f(&r, "chain"), 1.0, "{role} {op}: dependent chain");
        }
        for op in ["send", "recv"] {
            let r = get(&rows, "intercore-inline", role, op, 64);
            assert!(
                f(&r, "lines64") <= 3.0,
                "{role} {op}: lines64 {}",
                r["lines64"]
            );
        }
        let inline = get(&rows, "intercore-inline", role, "rtt", 64);
        let in_order = get(&rows, "intercore-in-order", role, "rtt", 64);
        assert!(
            f(&inline, "lines64") < f(&in_order, "lines64"),
            "{role}: inline {} lines vs in-order {}",
            inline["lines64"],
            in_order["lines64"]
        );
        // Up to 48 bytes a one-line slot carries the message: one line each way plus the
        // control line the producer reads.
        for size in [1, 16, 48] {
            let r = get(&rows, "intercore-inline-1line", role, "send", size);
            assert!(
                f(&r, "lines64") <= 2.0,
                "{role} send {size}: {}",
                r["lines64"]
            );
        }
    }
}

/// The same bounds through the rpmsg buses (`intercore-bus-inline`: `HostBus` and
/// `RemoteBus` over the inline rings they negotiate, endpoints and all): a 64-byte round
/// trip is one dependent load per direction and at most 3 lines per message on each side —
/// the bus adds no line to the ring's own (its rings have half as many slots as entries, so
/// progress is published every 2 messages instead of 4: +0.25 of a line on receive).
#[test]
fn through_the_buses_a_64_byte_round_trip_stays_at_the_ring_floor() {
    let (_, rows) = rows();
    let f = |r: &BTreeMap<String, String>, k: &str| -> f64 { r[k].parse().unwrap() };
    for role in ["host", "remote"] {
        for op in ["send", "recv", "rtt"] {
            let r = get(&rows, "intercore-bus-inline", role, op, 64);
            assert_eq!(f(&r, "chain"), 1.0, "{role} {op}: dependent chain");
        }
        for op in ["send", "recv"] {
            let bus = get(&rows, "intercore-bus-inline", role, op, 64);
            let ring = get(&rows, "intercore-inline", role, op, 64);
            assert!(
                f(&bus, "lines64") <= 3.0,
                "{role} {op} through the bus: lines64 {}",
                bus["lines64"]
            );
            assert!(
                f(&bus, "lines64") <= f(&ring, "lines64") + 0.5,
                "{role} {op}: the bus adds lines: {} vs the ring's {}",
                bus["lines64"],
                ring["lines64"]
            );
        }
        let bus = get(&rows, "intercore-bus-inline", role, "rtt", 64);
        let in_order = get(&rows, "intercore-in-order", role, "rtt", 64);
        assert!(
            f(&bus, "lines64") < f(&in_order, "lines64") * 0.7,
            "{role}: bus inline {} lines vs in-order {}",
            bus["lines64"],
            in_order["lines64"]
        );
    }
}

fn rows_text_again() -> String {
    rows().0
}
