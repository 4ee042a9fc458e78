//! Issue 19.7: the examples a firmware author copies use what every peer can do. A
//! firmware that offers `VIRTIO_RING_F_EVENT_IDX` hangs under OpenAMP's host (it accepts the
//! bit and never writes `used_event`), so no example in PORTING.md or in the `rsc_table`
//! module documentation may turn it on. Before the fix both did (`event_idx: true`).

/// Every `event_idx` setting inside the fenced code blocks of `text`: (line, the line).
fn event_idx_settings(text: &str) -> Vec<(usize, String)> {
    let mut fenced = false;
    let mut found = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let l = line.trim_start_matches("//!").trim();
        if l.starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced && l.contains("event_idx") {
            found.push((i + 1, l.to_string()));
        }
    }
    found
}

fn check(what: &str, text: &str) {
    let settings = event_idx_settings(text);
    assert!(!settings.is_empty(), "{what}: no example sets event_idx");
    for (line, l) in settings {
        let off = l.contains("event_idx: false") || l.contains("event_idx = false");
        assert!(off, "{what}:{line}: an example turns EVENT_IDX on: {l}");
    }
}

#[test]
fn porting_guide_examples_leave_event_idx_off() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/PORTING.md"
    ))
    .expect("docs/PORTING.md");
    check("docs/PORTING.md", &text);
}

#[test]
fn rsc_table_module_examples_leave_event_idx_off() {
    let src = include_str!("../src/rpmsg/rsc_table.rs");
    let doc: String = src
        .lines()
        .filter(|l| l.starts_with("//!"))
        .map(|l| format!("{l}\n"))
        .collect();
    check("rsc_table module doc", &doc);
}
