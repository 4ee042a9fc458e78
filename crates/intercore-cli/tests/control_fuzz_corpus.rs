//! Replays the committed corpus of the fuzz target `control` (`fuzz/corpus/control/*`)
//! through its body, `intercore_cli::control::fuzz_one`, under an ordinary `cargo test`
//! (the other targets' corpora replay in intercore-vhost's `fuzz_corpus` test).

use std::path::PathBuf;

#[test]
fn control_corpus_replays_without_a_panic() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/control");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(
        files.len() >= 10,
        "{}: {} inputs",
        dir.display(),
        files.len()
    );
    for f in &files {
        let data = std::fs::read(f).unwrap();
        let r = std::panic::catch_unwind(|| intercore_cli::control::fuzz_one(&data));
        assert!(r.is_ok(), "{} panicked", f.display());
    }
}
