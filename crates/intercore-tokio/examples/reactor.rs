//! Many links on one task: three simulated SoCs (echo firmware, each remote core a process
//! of its own: this program run with `--remote-core`), four endpoints on each, all served
//! by one `AsyncReactor` on a current-thread runtime — every echo verified and answered
//! with the next message from the reactor's callback.
//!
//! ```text
//! cargo run -p intercore-tokio --example reactor
//! ```

use intercore::rpmsg::HostConfig;
use intercore_linux::reactor::{LinkId, ReactorConfig, Ready};
use intercore_sim::{RemoteProgram, SimConfig, SimFirmware, Soc};
use intercore_tokio::AsyncReactor;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

const REMOTE: &str = "--remote-core";
const LINKS: usize = 3;
const ENDPOINTS: u32 = 4;
const ROUNDS: u32 = 100;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some(REMOTE) {
        let fw: Vec<Arc<SimFirmware>> = vec![Arc::new(intercore_fw_echo::Echo)];
        std::process::exit(intercore_sim::remote_main(&args[1..], &fw));
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .expect("a tokio runtime");
    match rt.block_on(run()) {
        Ok(n) => println!(
            "reactor: {n} round trips verified over {LINKS} links × {ENDPOINTS} endpoints on one task"
        ),
        Err(e) => {
            eprintln!("reactor: {e}");
            std::process::exit(1);
        }
    }
}

/// Message `n` of endpoint `ep`.
fn msg(ep: u32, n: u32) -> Vec<u8> {
    [ep.to_le_bytes(), n.to_le_bytes()].concat()
}

async fn run() -> Result<u32, String> {
    let program = RemoteProgram {
        program: std::env::current_exe().map_err(|e| e.to_string())?,
        args: vec![REMOTE.into()],
    };
    let cfg = SimConfig::new(Arc::new(intercore_fw_echo::Echo));
    let t = Some(Duration::from_secs(5));
    let mut socs = Vec::new();
    // The reactor: at most 4 messages from one endpoint, 32 from one link, per turn.
    let mut reactor = AsyncReactor::new(ReactorConfig::default().per_endpoint(4).per_link(32))
        .map_err(|e| e.to_string())?;
    // (link, endpoint) → (the echo service's address, the next message expected)
    let mut next: HashMap<(LinkId, u32), (u32, u32)> = HashMap::new();
    for _ in 0..LINKS {
        let soc = Soc::start(&cfg, &program).map_err(|e| format!("SoC: {e}"))?;
        let mut bus = soc
            .host_bus(HostConfig::default())
            .map_err(|e| e.to_string())?;
        let svc = bus
            .find_service(intercore_fw_echo::SERVICE, t)
            .map_err(|e| e.to_string())?;
        let eps: Vec<u32> = (0..ENDPOINTS)
            .map(|i| bus.create_endpoint(&format!("ep{i}"), None))
            .collect::<Result<_, _>>()
            .map_err(|e| e.to_string())?;
        for &ep in &eps {
            bus.send_raw(ep, svc, &msg(ep, 0), t)
                .map_err(|e| e.to_string())?;
        }
        let link = reactor.add(bus).map_err(|e| e.to_string())?;
        for ep in eps {
            next.insert((link, ep), (svc, 0));
        }
        socs.push(soc);
    }
    let mut done = 0u32;
    let mut failure = None;
    while done < LINKS as u32 * ENDPOINTS * ROUNDS && failure.is_none() {
        reactor
            .turn(|link, bus, ready| match ready {
                Ready::Message(m) => {
                    let Some((svc, n)) = next.get_mut(&(link, m.dst())) else {
                        return;
                    };
                    if m[..] != msg(m.dst(), *n)[..] {
                        failure = Some(format!("{link:?}/{}: echo {n} altered", m.dst()));
                        return;
                    }
                    done += 1;
                    *n += 1;
                    if *n < ROUNDS {
                        let (ep, svc) = (m.dst(), *svc);
                        drop(m);
                        // Answered without waiting: one message in flight per endpoint.
                        if let Err(e) = bus.post(ep, svc, &msg(ep, *n)) {
                            failure = Some(format!("{link:?}/{ep}: {e}"));
                        }
                    }
                }
                Ready::Lost { endpoint, count } => {
                    failure = Some(format!("{link:?}/{endpoint}: {count} lost"));
                }
                Ready::Down(e) => failure = Some(format!("{link:?} is down: {e}")),
            })
            .await
            .map_err(|e| e.to_string())?;
    }
    for soc in socs {
        let _ = soc.shutdown(Duration::from_secs(1));
    }
    failure.map_or(Ok(done), Err)
}
