//! The program hosting the simulated remote core in these tests: the crate's
//! `sim_remote` example (it ships the demo firmwares; the simulator ships none).

#![allow(dead_code)]

use intercore_sim::{RemoteProgram, SimConfig, SimFirmware};
use std::path::PathBuf;
use std::sync::Arc;

/// `target/<profile>/examples/sim_remote`, built by `cargo test -p intercore-sim` (which
/// builds the examples); a run of a single test target (`--test soc`) must build it first.
pub fn remote_path() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps");
    let path = dir.join("examples").join("sim_remote");
    assert!(
        path.is_file(),
        "{} is missing: `cargo build -p intercore-sim --example sim_remote` (cargo test -p intercore-sim builds it)",
        path.display()
    );
    path
}

/// The remote program for `Soc::start`.
pub fn program() -> RemoteProgram {
    RemoteProgram {
        program: remote_path(),
        args: vec![],
    }
}

/// The simulator's default shape with the offload firmware (the default the crate had
/// before the firmware became a parameter).
pub fn offload() -> SimConfig {
    SimConfig::new(Arc::new(intercore_fw_offload::Offload))
}

/// `firmware/echo`'s echo.
pub fn echo() -> Arc<SimFirmware> {
    Arc::new(intercore_fw_echo::Echo)
}
