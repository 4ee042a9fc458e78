#![no_main]
//! Fuzz target `inspect`: see `intercore_fuzz::inspect`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| intercore_fuzz::inspect(data));
