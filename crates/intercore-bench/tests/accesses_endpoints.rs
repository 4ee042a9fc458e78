//! The endpoint-scale rows of `accesses --json` (issue 23, "Done when"): the shared-memory
//! accesses of a 64-byte round trip with 256 host endpoints taking turns equal those with
//! one endpoint, field for field, on both roles — the endpoint table is the host's private
//! memory, and nothing a message does in shared memory depends on its size.

use std::collections::BTreeMap;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_accesses");

fn rows() -> Vec<serde_json::Map<String, serde_json::Value>> {
    let out = Command::new(BIN).arg("--json").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| match serde_json::from_str(l) {
            Ok(serde_json::Value::Object(o)) => Some(o),
            _ => None,
        })
        .collect()
}

#[test]
fn accesses_per_message_do_not_grow_with_the_endpoint_count() {
    let rows = rows();
    let of = |imp: &str| -> BTreeMap<(String, String), serde_json::Map<String, serde_json::Value>> {
        rows.iter()
            .filter(|r| r["impl"] == imp)
            .map(|r| {
                let key = (r["role"].to_string(), r["op"].to_string());
                let mut counts = r.clone();
                counts.remove("impl");
                (key, counts)
            })
            .collect()
    };
    let (one, many) = (of("intercore-1ep"), of("intercore-256ep"));
    assert_eq!(one.len(), 6, "2 roles × send/recv/rtt");
    assert_eq!(one, many, "1 endpoint vs 256 endpoints");
    // The rows counted something: a host receive loads the used element and the buffer.
    let recv = &one[&("\"host\"".to_string(), "\"recv\"".to_string())];
    assert!(recv["loads"].as_f64().unwrap() >= 2.0, "{recv:?}");
}
