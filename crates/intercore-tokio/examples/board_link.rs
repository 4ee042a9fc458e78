//! An async link to a board from its board file: `boards/sim.toml` (the simulated SoC
//! running `firmware/offload`) opened with `Board::open_with`, driven by tokio through
//! [`AsyncLink`] on one thread: every message size echoed and verified, then CRC32C jobs
//! on the data plane, submitted async and taken from the completions' stream. Exits
//! non-zero on any failure.
//!
//! ```text
//! cargo run -p intercore-tokio --example board_link
//! ```
//!
//! The simulator's remote core is a process of its own: this program is that process too
//! (run with `--remote-core`, it runs the firmware its arguments name).

use intercore::wire::dataplane::{DP_OK, DP_OP_CRC32C};
use intercore_board::{Board, OpenEnv};
use intercore_sim::{RemoteProgram, SimFirmware};
use intercore_tokio::AsyncLink;
use std::sync::Arc;
use std::time::Duration;

/// The argument that makes this program the simulated remote core.
const REMOTE: &str = "--remote-core";

fn firmwares() -> Vec<Arc<SimFirmware>> {
    vec![
        Arc::new(intercore_fw_echo::Echo),
        Arc::new(intercore_fw_offload::Offload),
    ]
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some(REMOTE) {
        std::process::exit(intercore_sim::remote_main(&args[1..], &firmwares()));
    }
    let board = concat!(env!("CARGO_MANIFEST_DIR"), "/../../boards/sim.toml");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    match rt.block_on(run(board)) {
        Ok((sizes, jobs)) => println!(
            "board_link: {sizes} message sizes echoed and verified, {jobs} CRC32C jobs verified (async)"
        ),
        Err(e) => {
            eprintln!("board_link: {e}");
            std::process::exit(1);
        }
    }
}

async fn run(file: &str) -> Result<(usize, usize), String> {
    let board = Board::from_file(file).map_err(|e| e.to_string())?;
    let env = || -> Result<OpenEnv, String> {
        Ok(OpenEnv {
            sim_remote: Some(RemoteProgram {
                program: std::env::current_exe().map_err(|e| e.to_string())?,
                args: vec![REMOTE.to_string()],
            }),
            sim_firmwares: firmwares(),
            ..OpenEnv::default()
        })
    };
    let link = board.open_with(env()?).map_err(|e| format!("open: {e}"))?;
    let link = AsyncLink::new(link).map_err(|e| e.to_string())?;
    let t = Duration::from_secs(10);
    let within = |what: String| move |_| format!("{what}: no answer within {t:?}");

    // Messages: every size, each echo verified.
    let ch = tokio::time::timeout(t, link.connect(intercore_fw_offload::ECHO_SERVICE))
        .await
        .map_err(within("the echo service".into()))?
        .map_err(|e| format!("the echo service: {e}"))?;
    let max = link.max_payload();
    let mut back = vec![0u8; max];
    for len in 1..=max {
        let msg: Vec<u8> = (0..len).map(|i| (i * 7 + len) as u8).collect();
        link.send(&ch, &msg)
            .await
            .map_err(|e| format!("size {len}: {e}"))?;
        let n = tokio::time::timeout(t, link.recv(&ch, &mut back))
            .await
            .map_err(within(format!("size {len}")))?
            .map_err(|e| format!("size {len}: {e}"))?;
        if back[..n] != msg[..] {
            return Err(format!("size {len}: the echo differs"));
        }
    }

    // The data plane: opening it waits for the service (blocking: once, at start-up).
    let mut dp = link.with_link(|l| {
        l.open_data_plane(&board, &env()?, Some(t))
            .map_err(|e| e.to_string())
    })?;
    let jobs = 8usize;
    let mut want = Vec::new();
    for job in 0..jobs {
        let len = 4000 + job * 1000;
        let mut b = dp.alloc(len + 4).ok_or("no free buffer in the pool")?;
        for (i, x) in b[..len].iter_mut().enumerate() {
            *x = (i * 3 + job) as u8;
        }
        want.push((b.id(), len, intercore::crc32c(&b[..len])));
        link.submit(&mut dp, b, len, DP_OP_CRC32C)
            .await
            .map_err(|e| format!("job {job}: {e}"))?;
    }
    let mut done = 0;
    let mut stream = link.completions(&mut dp);
    while let Some(c) = tokio::time::timeout(t, stream.next())
        .await
        .map_err(within("the data plane".into()))?
    {
        let c = c.map_err(|e| format!("completion: {e}"))?;
        let &(_, len, crc) = want
            .iter()
            .find(|(id, ..)| *id == c.id())
            .ok_or("a completion for a buffer never submitted")?;
        if c.status() != DP_OK || c[len..len + 4] != crc.to_le_bytes() {
            return Err(format!(
                "buffer {}: status {}, wrong CRC",
                c.id(),
                c.status()
            ));
        }
        done += 1;
    }
    if done != jobs {
        return Err(format!("{done} of {jobs} jobs completed"));
    }
    drop(stream);
    drop(dp);
    let how = link
        .into_inner()
        .shut_down(Duration::from_secs(5))
        .map_err(|e| e.to_string())?;
    if !how.ends_with("exit status: 0") {
        return Err(format!("closing: {how}"));
    }
    Ok((max, jobs))
}
