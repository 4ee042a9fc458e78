//! Every core of a board from one thread: `boards/sim-4core.toml` (four simulated remote
//! cores, each its own process running `firmware/offload`) read with
//! [`BoardFile::from_file`], each core opened with `Board::open_with`, then all four links
//! served by one [`Reactor`] — one `epoll`, round robin, the same code whatever each link's
//! transport (a kernel or QEMU board's links go in the same way). Each core echoes every
//! message size up to its payload limit, each echo verified and the next size sent from the
//! reactor's callback without waiting (`Link::post`). Exits non-zero on any failure.
//!
//! ```text
//! cargo run -p intercore-board --features sim --example every_core
//! ```

use intercore_board::{BoardFile, Link, LinkMsg, OpenEnv};
use intercore_linux::reactor::{LinkId, Reactor, ReactorConfig, Ready};
use intercore_sim::{RemoteProgram, SimFirmware};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The argument that makes this program a simulated remote core.
const REMOTE: &str = "--remote-core";

fn firmwares() -> Vec<Arc<SimFirmware>> {
    vec![Arc::new(intercore_fw_offload::Offload)]
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some(REMOTE) {
        std::process::exit(intercore_sim::remote_main(&args[1..], &firmwares()));
    }
    match run() {
        Ok((cores, sizes)) => {
            println!("every_core: {cores} cores, {sizes} message sizes each, echoed and verified")
        }
        Err(e) => {
            eprintln!("every_core: {e}");
            std::process::exit(1);
        }
    }
}

/// The message of size `len` for core `core` (its bytes differ per core and per size).
fn message(core: usize, len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 + len + core * 31) as u8).collect()
}

fn run() -> Result<(usize, usize), String> {
    let file = concat!(env!("CARGO_MANIFEST_DIR"), "/../../boards/sim-4core.toml");
    let board = BoardFile::from_file(file).map_err(|e| e.to_string())?;
    let mut reactor: Reactor<Link> =
        Reactor::new(ReactorConfig::default()).map_err(|e| format!("reactor: {e}"))?;
    // Per link: its core's index, the size it waits for, its payload limit.
    let mut state: BTreeMap<LinkId, (usize, usize, usize)> = BTreeMap::new();
    let t = Some(Duration::from_secs(10));
    for (i, core) in board.cores.iter().enumerate() {
        let env = OpenEnv {
            sim_remote: Some(RemoteProgram {
                program: std::env::current_exe().map_err(|e| e.to_string())?,
                args: vec![REMOTE.to_string()],
            }),
            sim_firmwares: firmwares(),
            ..OpenEnv::default()
        };
        let mut link = core
            .board
            .open_with(env)
            .map_err(|e| format!("core {}: {e}", core.name))?;
        let ch = link
            .connect(intercore_fw_offload::ECHO_SERVICE, t)
            .map_err(|e| format!("core {}: the echo service: {e}", core.name))?;
        // The first message with the blocking API; the rest from the reactor's callback.
        link.send(&ch, &message(i, 1), t)
            .map_err(|e| format!("core {}: {e}", core.name))?;
        let max = link.max_payload();
        let id = reactor
            .add(link)
            .map_err(|e| format!("core {}: {e}", core.name))?;
        state.insert(id, (i, 1, max));
    }
    let mut failure = None;
    let t0 = Instant::now();
    while failure.is_none() && state.values().any(|&(_, len, max)| len <= max) {
        if t0.elapsed() > Duration::from_secs(60) {
            return Err(format!("not done after 60 s: {state:?}"));
        }
        reactor
            .turn(t, |id, link, ready| {
                let r = echoed(&mut state, id, link, ready);
                if let Err(e) = r {
                    failure.get_or_insert(e);
                }
            })
            .map_err(|e| format!("reactor: {e}"))?;
    }
    if let Some(e) = failure {
        return Err(e);
    }
    let sizes = state.values().map(|&(_, _, max)| max).min().unwrap_or(0);
    Ok((state.len(), sizes))
}

/// Checks one echo against the size its link waits for, then sends the next size.
fn echoed(
    state: &mut BTreeMap<LinkId, (usize, usize, usize)>,
    id: LinkId,
    link: &mut Link,
    ready: Ready<LinkMsg>,
) -> Result<(), String> {
    let Some((core, len, max)) = state.get(&id).copied() else {
        return Err(format!("{id:?}: not one of ours"));
    };
    let m = match ready {
        Ready::Message(m) => m,
        Ready::Lost { endpoint, count } => {
            return Err(format!("core {core}: {count} messages for {endpoint} lost"));
        }
        Ready::Down(e) => return Err(format!("core {core}: the link is down: {e}")),
    };
    if m[..] != message(core, len)[..] {
        return Err(format!("core {core}: the echo of size {len} differs"));
    }
    if len < max {
        // Sent now, or parked and sent by a later turn (`Ok(false)`).
        if let Err(e) = link.post(m.dst(), m.src(), &message(core, len + 1)) {
            return Err(format!("core {core}: size {}: {e}", len + 1));
        }
    }
    state.insert(id, (core, len + 1, max));
    Ok(())
}
