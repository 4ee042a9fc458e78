//! One current-thread tokio runtime serves 64 endpoints concurrently against an echo
//! remote in another thread (in-process shared memory, an eventfd doorbell pair): each
//! endpoint's task sends its messages and checks every echo. The tasks sleep on the
//! doorbell's eventfd through tokio's reactor, never on a timer.
//!
//! `cargo run -p intercore-tokio --example endpoints64`

mod common;

use intercore::WaitMode;
use intercore_tokio::AsyncHost;
use std::sync::Arc;

const ENDPOINTS: u32 = 64;
const ROUNDS: u32 = 50;

fn message(ep: u32, round: u32) -> Vec<u8> {
    format!("endpoint {ep} round {round}").into_bytes()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    let total = u64::from(ENDPOINTS * ROUNDS);
    let (bus, remote) = common::echo_link(total, WaitMode::Event);
    let served = rt.block_on(async move {
        let host = Arc::new(AsyncHost::new(bus)?);
        let remote_addr = host.find_service(common::SERVICE).await?;
        let mut tasks = tokio::task::JoinSet::new();
        for ep in 0..ENDPOINTS {
            let ch = host.open(common::SERVICE, remote_addr)?;
            let host = Arc::clone(&host);
            tasks.spawn(async move {
                let mut buf = [0u8; 496];
                for round in 0..ROUNDS {
                    host.send(&ch, &message(ep, round)).await?;
                    let (from, n) = host.recv_from(&ch, &mut buf).await?;
                    if from != Some(remote_addr) || buf[..n] != message(ep, round)[..] {
                        return Err(format!(
                            "endpoint {ep} round {round}: got {:?}",
                            String::from_utf8_lossy(&buf[..n])
                        )
                        .into());
                    }
                }
                Ok::<u32, Box<dyn std::error::Error + Send + Sync>>(ROUNDS)
            });
        }
        let mut verified = 0u64;
        while let Some(r) = tasks.join_next().await {
            verified += u64::from(r??);
        }
        let stats = host.with_bus(|b| b.stats());
        println!(
            "endpoints64: {ENDPOINTS} endpoints on one thread, {verified} echoes verified \
             (host: {} sent, {} received, {} kicks)",
            stats.sent, stats.received, stats.kicks
        );
        Ok::<u64, Box<dyn std::error::Error + Send + Sync>>(verified)
    });
    let served = served.map_err(|e| e.to_string())?;
    let echoed = remote.join().map_err(|_| "the remote thread panicked")??;
    if served != total || echoed != total {
        return Err(
            format!("expected {total} echoes, verified {served}, remote echoed {echoed}").into(),
        );
    }
    Ok(())
}
