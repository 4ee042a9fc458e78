//! Criterion micro-benchmarks of intercore's hot paths live in `benches/core.rs`; run them
//! with `cargo bench -p intercore-bench`. The library holds what the benchmarks' reports
//! compute: [`soc_model`], the uncached-SoC estimate `intercore bench accesses` prints.

pub mod soc_model;
