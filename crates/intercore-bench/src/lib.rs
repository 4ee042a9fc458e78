//! Benchmarks of intercore that need the test kit (`intercore/test-utils`), kept out of
//! the production binary's dependencies:
//!
//! * Criterion micro-benchmarks of the hot paths, `benches/core.rs`:
//!   `cargo bench -p intercore-bench`.
//! * The access-counting bench, [`accesses`]: shared-memory loads, stores, fences, lines
//!   and dependent load chains per message, counted (docs/BENCHMARKS.md, "Counting
//!   shared-memory accesses"): `cargo run --release -p intercore-bench --bin accesses
//!   [-- --json]`, ending with [`soc_model`]'s uncached-SoC estimate from those counts.

#![deny(unsafe_code)]

pub mod accesses;
pub mod soc_model;
