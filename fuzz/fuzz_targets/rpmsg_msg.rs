#![no_main]
//! Fuzz target `rpmsg_msg`: see `intercore_fuzz::rpmsg_msg`.

libfuzzer_sys::fuzz_target!(|data: &[u8]| intercore_fuzz::rpmsg_msg(data));
