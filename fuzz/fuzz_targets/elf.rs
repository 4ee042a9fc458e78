#![no_main]
//! Fuzz target `elf`: see `intercore_fuzz::elf`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| intercore_fuzz::elf(data));
