//! A host against the simulated SoC, the firmware a parameter: `firmware/offload` passed
//! to the simulator ([`SimConfig::new`]), this program as the remote core's process
//! ([`intercore_sim::remote_main`] with the same firmware), then verified echoes of every
//! message size and CRC32C jobs on the zero-copy data plane. Exits non-zero on any failure.
//!
//! ```text
//! cargo run -p intercore-board --features sim --example sim_host
//! ```

use intercore::rpmsg::HostConfig;
use intercore::wire::dataplane::{DP_OK, DP_OP_CRC32C};
use intercore_sim::{RemoteProgram, SimConfig, SimFirmware, Soc};
use std::sync::Arc;
use std::time::Duration;

/// The argument that makes this program the simulated remote core.
const REMOTE: &str = "--remote-core";

/// The firmware: a parameter of the simulator, not part of it.
fn firmware() -> Arc<SimFirmware> {
    Arc::new(intercore_fw_offload::Offload)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some(REMOTE) {
        std::process::exit(intercore_sim::remote_main(&args[1..], &[firmware()]));
    }
    match run() {
        Ok((sizes, jobs)) => {
            println!("sim_host: {sizes} message sizes echoed, {jobs} CRC32C jobs verified")
        }
        Err(e) => {
            eprintln!("sim_host: {e}");
            std::process::exit(1);
        }
    }
}

fn run() -> Result<(usize, usize), String> {
    let program = RemoteProgram {
        program: std::env::current_exe().map_err(|e| e.to_string())?,
        args: vec![REMOTE.to_string()],
    };
    let soc = Soc::start(&SimConfig::new(firmware()), &program)
        .map_err(|e| format!("starting the simulated SoC: {e}"))?;
    let mut bus = soc
        .host_bus(HostConfig::default())
        .map_err(|e| e.to_string())?;
    let t = Some(Duration::from_secs(10));
    // Messages: the echo service.
    let ch = bus
        .connect(intercore_fw_offload::ECHO_SERVICE, t)
        .map_err(|e| format!("the echo service: {e}"))?;
    let max = bus.max_payload();
    let mut back = vec![0u8; max];
    for len in 1..=max {
        let msg: Vec<u8> = (0..len).map(|i| (i * 31 + len) as u8).collect();
        bus.send(&ch, &msg, t)
            .map_err(|e| format!("size {len}: {e}"))?;
        let n = bus
            .recv(&ch, &mut back, t)
            .map_err(|e| format!("size {len}: {e}"))?;
        if back[..n] != msg[..] {
            return Err(format!("size {len}: the echo differs"));
        }
    }
    // The data plane: the firmware computes a CRC32C over each buffer in place.
    let mut dp = soc
        .open_data_plane(&mut bus, t)
        .map_err(|e| format!("the data plane: {e}"))?;
    let jobs = 16;
    for job in 0..jobs {
        let len = 1000 + job * 200;
        let mut b = dp.alloc(4096).ok_or("the pool has no free 4 KiB buffer")?;
        for (i, x) in b[..len].iter_mut().enumerate() {
            *x = (i ^ job) as u8;
        }
        let want = intercore::crc32c(&b[..len]);
        dp.submit(&mut bus, b, len, DP_OP_CRC32C)
            .map_err(|e| format!("job {job}: {e}"))?;
        let c = dp
            .wait_complete(&mut bus, t)
            .map_err(|e| format!("job {job}: {e}"))?;
        if c.status() != DP_OK || c[len..len + 4] != want.to_le_bytes() {
            return Err(format!("job {job}: status {}, wrong CRC", c.status()));
        }
    }
    drop(dp);
    drop(bus);
    let status = soc
        .shutdown(Duration::from_secs(5))
        .map_err(|e| e.to_string())?;
    if !status.success() {
        return Err(format!("the remote core ended with {status}"));
    }
    Ok((max, jobs))
}
