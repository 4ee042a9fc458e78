//! Criterion micro-benchmarks of intercore's hot paths live in `benches/core.rs`; run them
//! with `cargo bench -p intercore-bench`. This library is empty on purpose.
