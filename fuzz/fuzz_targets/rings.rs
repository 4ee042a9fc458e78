#![no_main]
//! Fuzz target `rings`: see `intercore_fuzz::rings`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| intercore_fuzz::rings(data));
