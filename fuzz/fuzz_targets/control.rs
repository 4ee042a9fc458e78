#![no_main]
//! Fuzz target `control`: the link owner's control socket, one client's bytes through the
//! request reader, parser and per-connection dispatcher (`intercore_cli::control::fuzz_one`).

libfuzzer_sys::fuzz_target!(|data: &[u8]| intercore_cli::control::fuzz_one(data));
