//! A host and a remote over shared memory in one process, each in its own thread: the
//! remote (what firmware on the other core runs) announces a service, the host finds it,
//! and both check every message the other sent.
//!
//! Both roles are built the same way (`new(mem, bell, &map, rsc, cfg)`) and use the same
//! calls (`open`/`connect`, `send`, `recv_from`). The shared memory is a heap buffer laid
//! out as a carveout with a resource table (`intercore::testing::Carveout`), the doorbell
//! a pair of in-process events (`ThreadBell`): on a board they are the reserved memory and
//! the mailbox.
//!
//! `cargo run -p intercore --example host_remote`

use intercore::rpmsg::{HostBus, HostConfig, RPMSG_ADDR_ANY, RemoteBus, RemoteConfig};
use intercore::testing::{Carveout, ThreadBell};
use std::time::Duration;

const SERVICE: &str = "upper";
const TIMEOUT: Option<Duration> = Some(Duration::from_secs(5));
const MESSAGES: u32 = 100;

/// The message the host sends as number `i`.
fn request(i: u32) -> Vec<u8> {
    format!("message {i} from the host").into_bytes()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let carveout = Carveout::with_buffers(64);
    let (host_bell, remote_bell) = ThreadBell::pair();

    // The remote: waits for the host, announces SERVICE and answers each request with its
    // upper-case copy, after checking it is the one expected next.
    let (mem, map, rsc) = (carveout.mem.clone(), carveout.map, carveout.rsc);
    let remote = std::thread::spawn(move || -> Result<u32, String> {
        let mut bus: RemoteBus<_, _> =
            RemoteBus::new(mem, remote_bell, &map, rsc, RemoteConfig::default())
                .map_err(|e| format!("remote: {e}"))?;
        bus.wait_ready(TIMEOUT)
            .map_err(|e| format!("wait_ready: {e}"))?;
        // RPMSG_ADDR_ANY: answer whoever sent the last message.
        let ch = bus
            .open(SERVICE, RPMSG_ADDR_ANY)
            .map_err(|e| e.to_string())?;
        let mut buf = [0u8; 496];
        for i in 0..MESSAGES {
            let (_, n) = bus
                .recv_from(&ch, &mut buf, TIMEOUT)
                .map_err(|e| format!("remote recv {i}: {e}"))?;
            if buf[..n] != request(i)[..] {
                return Err(format!("remote: message {i} arrived corrupted"));
            }
            buf[..n].make_ascii_uppercase();
            bus.send(&ch, &buf[..n], TIMEOUT)
                .map_err(|e| format!("remote send {i}: {e}"))?;
        }
        Ok(bus.stats().received as u32)
    });

    // The host: sets the link up, finds the service and checks every answer.
    let mut host = HostBus::new(
        carveout.mem.clone(),
        host_bell,
        &carveout.map,
        carveout.rsc,
        HostConfig::default(),
    )?;
    let ch = host.connect(SERVICE, TIMEOUT)?;
    let mut buf = [0u8; 496];
    for i in 0..MESSAGES {
        host.send(&ch, &request(i), TIMEOUT)?;
        let (from, n) = host.recv_from(&ch, &mut buf, TIMEOUT)?;
        if from != Some(ch.remote) || buf[..n] != request(i).to_ascii_uppercase()[..] {
            return Err(format!(
                "host: answer {i} wrong: {:?}",
                String::from_utf8_lossy(&buf[..n])
            )
            .into());
        }
    }
    let served = remote.join().map_err(|_| "the remote thread panicked")??;
    if served != MESSAGES {
        return Err(format!("the remote received {served} messages, not {MESSAGES}").into());
    }
    println!(
        "host_remote: {MESSAGES} messages each way verified (host: {} sent, {} received)",
        host.stats().sent,
        host.stats().received
    );
    Ok(())
}
