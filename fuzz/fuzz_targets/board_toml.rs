#![no_main]
//! Fuzz target `board_toml`: see `intercore_fuzz::board_toml`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| intercore_fuzz::board_toml(data));
