#![no_main]
//! Fuzz target `dp_completions`: see `intercore_fuzz::dp_completions`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| intercore_fuzz::dp_completions(data));
