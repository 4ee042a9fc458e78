//! The simulated remote core, hosted by a program that ships its firmwares: run with the
//! simulator's arguments (as [`intercore_sim::Soc::start`] runs it), it is the remote
//! core, running the firmware `--fw NAME` names from the ones this program passes to
//! [`intercore_sim::remote_main`] (intercore's demo firmwares `echo`, `sink`, `offload`).
//!
//! Run without arguments (`cargo run -p intercore-sim --example sim_remote`), it checks
//! itself: starts a simulated SoC with itself as the remote core and the echo firmware,
//! and verifies an echo of every message size; exits non-zero on any failure.

use intercore::rpmsg::HostConfig;
use intercore_sim::{RemoteProgram, SimConfig, SimFirmware, Soc};
use std::sync::Arc;
use std::time::Duration;

/// The firmwares this program ships.
fn firmwares() -> Vec<Arc<SimFirmware>> {
    vec![
        Arc::new(intercore_fw_echo::Echo),
        Arc::new(intercore_fw_echo::Sink),
        Arc::new(intercore_fw_offload::Offload),
    ]
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !args.is_empty() {
        std::process::exit(intercore_sim::remote_main(&args, &firmwares()));
    }
    if let Err(e) = self_check() {
        eprintln!("sim_remote: {e}");
        std::process::exit(1);
    }
}

/// This program as the remote core of a simulated SoC running the echo firmware: every
/// message size up to the largest payload, echoed and compared.
fn self_check() -> Result<(), String> {
    let program = RemoteProgram {
        program: std::env::current_exe().map_err(|e| e.to_string())?,
        args: vec![],
    };
    let cfg = SimConfig::new(Arc::new(intercore_fw_echo::Echo));
    let soc = Soc::start(&cfg, &program).map_err(|e| format!("start: {e}"))?;
    let mut bus = soc
        .host_bus(HostConfig::default())
        .map_err(|e| e.to_string())?;
    let t = Some(Duration::from_secs(10));
    let ch = bus
        .connect(intercore_fw_echo::SERVICE, t)
        .map_err(|e| e.to_string())?;
    let max = bus.max_payload();
    let mut back = vec![0u8; max];
    for len in 1..=max {
        let msg: Vec<u8> = (0..len).map(|i| (i * 13 + len) as u8).collect();
        bus.send(&ch, &msg, t).map_err(|e| e.to_string())?;
        let n = bus
            .recv(&ch, &mut back, t)
            .map_err(|e| format!("size {len}: {e}"))?;
        if back[..n] != msg[..] {
            return Err(format!("size {len}: the echo differs"));
        }
    }
    drop(bus);
    let status = soc
        .shutdown(Duration::from_secs(5))
        .map_err(|e| e.to_string())?;
    if !status.success() {
        return Err(format!("the remote core ended with {status}"));
    }
    println!("sim_remote: {max} message sizes echoed and verified");
    Ok(())
}
