//! Replays the committed fuzz corpus (`fuzz/corpus/<target>/*`) through the fuzz targets'
//! own bodies (`fuzz/src/lib.rs`), so every input the fuzzers kept — and every crash
//! reproducer added there — runs under an ordinary `cargo test`, without cargo-fuzz or a
//! nightly toolchain. Issue 12: "a committed corpus replayed by an ordinary test".

#[path = "../../../fuzz/src/lib.rs"]
#[allow(dead_code)]
mod targets;

use std::path::PathBuf;

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus")
}

/// Every target has a corpus directory with at least one input, and every input runs
/// through its target without a panic.
#[test]
fn corpus_replays_without_a_panic() {
    let mut total = 0;
    for &(name, run) in targets::TARGETS {
        let dir = corpus_dir().join(name);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        assert!(
            !files.is_empty(),
            "{name}: empty corpus at {}",
            dir.display()
        );
        for f in &files {
            let data = std::fs::read(f).unwrap();
            let r = std::panic::catch_unwind(|| run(&data));
            assert!(r.is_ok(), "{name}: {} panicked", f.display());
            total += 1;
        }
    }
    eprintln!("replayed {total} corpus inputs");
}

/// Fuzz targets whose corpus another crate's test replays: `control` (the link owner's
/// control protocol, `intercore_cli::control::fuzz_one`) in intercore-cli's
/// `tests/control_fuzz_corpus.rs`.
const REPLAYED_ELSEWHERE: &[&str] = &["control"];

/// The fuzz directory, this test and the tests named in `REPLAYED_ELSEWHERE` agree on the
/// target list.
#[test]
fn every_fuzz_target_is_replayed() {
    let dir = corpus_dir().join("../fuzz_targets");
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| {
            e.unwrap()
                .path()
                .file_stem()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = targets::TARGETS.iter().map(|t| t.0.to_string()).collect();
    // Targets whose body lives in another crate replay their corpus there.
    listed.extend(REPLAYED_ELSEWHERE.iter().map(|t| t.to_string()));
    listed.sort();
    assert_eq!(on_disk, listed);
}
