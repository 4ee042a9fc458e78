#![no_main]
//! Fuzz target `inline_slots`: see `intercore_fuzz::inline_slots`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| intercore_fuzz::inline_slots(data));
