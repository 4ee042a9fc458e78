#![no_main]
//! Fuzz target `rsc_table`: see `intercore_fuzz::rsc_table`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| intercore_fuzz::rsc_table(data));
