#![no_main]
//! Fuzz target `vhost_user`: see `intercore_fuzz::vhost_user`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| intercore_fuzz::vhost_user(data));
