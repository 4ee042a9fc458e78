//! `Board::open` from a board file: `boards/sim.toml` (the simulated SoC running
//! `firmware/offload`), its echo service opened through the live [`Link`], every message
//! size sent and its echo verified; then the zero-copy data plane, reached through the
//! link ([`Link::open_data_plane`]), CRC32C jobs verified. Exits non-zero on any failure.
//!
//! ```text
//! cargo run -p intercore-board --features sim --example open_board
//! ```
//!
//! The simulator ships no firmware and its remote core is a process of its own: this
//! program is that process too. Run by the simulator with its arguments it runs the
//! firmware they name from the ones it ships ([`intercore_sim::remote_main`]); the link
//! is opened with the same firmwares and this program as the remote core's
//! ([`OpenEnv`]'s `sim_remote` and `sim_firmwares`).

use intercore_board::{Board, Link, OpenEnv};
use intercore_sim::{RemoteProgram, SimFirmware};
use std::sync::Arc;
use std::time::Duration;

/// The argument that makes this program the simulated remote core.
const REMOTE: &str = "--remote-core";

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
    if args.first().map(String::as_str) == Some(REMOTE) {
        std::process::exit(intercore_sim::remote_main(&args[1..], &firmwares()));
    }
    match run() {
        Ok((n, jobs)) => println!(
            "open_board: {n} message sizes echoed and verified, {jobs} CRC32C jobs verified"
        ),
        Err(e) => {
            eprintln!("open_board: {e}");
            std::process::exit(1);
        }
    }
}

fn run() -> Result<(usize, usize), String> {
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/../../boards/sim.toml");
    let board = Board::from_file(file).map_err(|e| e.to_string())?;
    let env = OpenEnv {
        sim_remote: Some(RemoteProgram {
            program: std::env::current_exe().map_err(|e| e.to_string())?,
            args: vec![REMOTE.to_string()],
        }),
        sim_firmwares: firmwares(),
        ..OpenEnv::default()
    };
    let mut link: Link = board.open_with(env).map_err(|e| format!("open: {e}"))?;
    let t = Some(Duration::from_secs(10));
    let remote = link
        .find_service(intercore_fw_offload::ECHO_SERVICE, t)
        .map_err(|e| format!("the echo service: {e}"))?;
    let ch = link
        .open("open-board-example", remote)
        .map_err(|e| format!("opening the channel: {e}"))?;
    let max = link.max_payload();
    let mut back = vec![0u8; max];
    for len in 1..=max {
        let msg: Vec<u8> = (0..len).map(|i| (i * 7 + len) as u8).collect();
        link.send(&ch, &msg, t)
            .map_err(|e| format!("size {len}: {e}"))?;
        let n = link
            .recv(&ch, &mut back, t)
            .map_err(|e| format!("size {len}: {e}"))?;
        if back[..n] != msg[..] {
            return Err(format!("size {len}: the echo differs"));
        }
    }
    let jobs = data_plane(&mut link, &board)?;
    let how = link
        .shut_down(Duration::from_secs(5))
        .map_err(|e| e.to_string())?;
    if !how.ends_with("exit status: 0") {
        return Err(format!("closing: {how}"));
    }
    Ok((max, jobs))
}

/// CRC32C jobs on the data plane, through the link whatever the transport.
fn data_plane(link: &mut Link, board: &Board) -> Result<usize, String> {
    use intercore::wire::dataplane::{DP_OK, DP_OP_CRC32C};
    let t = Some(Duration::from_secs(10));
    let mut dp = link
        .open_data_plane(board, &OpenEnv::default(), t)
        .map_err(|e| e.to_string())?;
    let jobs = 8;
    for job in 0..jobs {
        let len = 4000 + job * 1000;
        let mut b = dp.alloc(len + 4).ok_or("no free buffer in the pool")?;
        for (i, x) in b[..len].iter_mut().enumerate() {
            *x = (i * 3 + job) as u8;
        }
        let want = intercore::crc32c(&b[..len]);
        dp.submit(link, b, len, DP_OP_CRC32C)
            .map_err(|e| format!("job {job}: {e}"))?;
        let c = dp
            .wait_complete(link, t)
            .map_err(|e| format!("job {job}: {e}"))?;
        if c.status() != DP_OK || c[len..len + 4] != want.to_le_bytes() {
            return Err(format!("job {job}: status {}, wrong CRC", c.status()));
        }
    }
    Ok(jobs)
}
