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

/// Issue 21.9: the README and docs a newcomer reads first stay true to the repository.
mod readme {
    use std::path::Path;

    fn root() -> &'static Path {
        Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
    }

    fn read(p: &str) -> String {
        std::fs::read_to_string(root().join(p)).unwrap_or_else(|e| panic!("{p}: {e}"))
    }

    /// Every fenced code block of the README names its language (`sh`, `rust`, `text`, …),
    /// so Rust blocks can become doctests and the rest render as what they are.
    #[test]
    fn readme_code_blocks_carry_a_language() {
        let mut open = false;
        let mut bare = Vec::new();
        for (i, line) in read("README.md").lines().enumerate() {
            let l = line.trim_start();
            if let Some(tag) = l.strip_prefix("```") {
                if !open && tag.trim().is_empty() {
                    bare.push(i + 1);
                }
                open = !open;
            }
        }
        assert!(!open, "README.md: a code block is never closed");
        assert!(
            bare.is_empty(),
            "README.md: code blocks without a language at lines {bare:?}"
        );
    }

    /// The README names every crate of the workspace (no "five crates" when there are nine)
    /// and tells a newcomer how to put `intercore` on the PATH.
    #[test]
    fn readme_names_every_crate_and_the_install() {
        let readme = read("README.md");
        let manifest = read("Cargo.toml");
        let members = manifest
            .lines()
            .filter_map(|l| l.trim().strip_prefix("\"crates/"))
            .filter_map(|l| l.split('"').next())
            .collect::<Vec<_>>();
        assert!(members.len() >= 9, "{members:?}");
        for m in members {
            assert!(
                readme.contains(&format!("`{m}`")),
                "README.md does not name `{m}`"
            );
        }
        assert!(readme.contains("cargo install --path crates/intercore-cli"));
    }

    /// The docs state the rules they cite instead of pointing at a design brief that is not
    /// in the repository.
    #[test]
    fn docs_cite_no_document_outside_the_repository() {
        for p in [
            "README.md",
            "docs/ARCHITECTURE.md",
            "docs/STATUS.md",
            "docs/BENCHMARKS.md",
        ] {
            let text = read(p);
            for gone in ["DESIGN.md", "design rule"] {
                assert!(
                    !text.contains(gone),
                    "{p} cites `{gone}`, which is not in the repository"
                );
            }
        }
        let arch = read("docs/ARCHITECTURE.md");
        assert!(arch.contains("## Design rules") && arch.contains("6. **Event-driven waits.**"));
    }
}
