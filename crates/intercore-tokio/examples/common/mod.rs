//! An echo remote in its own thread over in-process shared memory, with an eventfd
//! doorbell pair: what the async examples, the bench and the tests run against.

use intercore::WaitMode;
use intercore::rpmsg::{HostBus, HostConfig, RPMSG_ADDR_ANY, RemoteBus, RemoteConfig};
use intercore::testing::{Carveout, HeapMem};
use intercore_linux::notify::{EventFd, EventfdDoorbell};
use std::os::fd::AsFd;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// The echo service's name.
pub const SERVICE: &str = "echo";
/// How long either side waits for the other before calling the link dead.
pub const TIMEOUT: Option<Duration> = Some(Duration::from_secs(10));

/// The host end of a link to an echo remote.
pub type Host = HostBus<Arc<HeapMem>, EventfdDoorbell>;

/// A host bus and the thread running the remote, which echoes `messages` messages (each
/// back to its sender) and returns how many it echoed.
pub fn echo_link(messages: u64, wait: WaitMode) -> (Host, JoinHandle<Result<u64, String>>) {
    echo_link_after(messages, wait, Duration::ZERO)
}

/// [`echo_link`], the remote reading nothing for `delay` after it announced the service
/// (so that the host's transmit buffers run out meanwhile).
#[allow(dead_code)] // used by the tests, not by every example
pub fn echo_link_after(
    messages: u64,
    wait: WaitMode,
    delay: Duration,
) -> (Host, JoinHandle<Result<u64, String>>) {
    let carveout = Carveout::with_buffers(64);
    let (to_host, to_remote) = (EventFd::new().unwrap(), EventFd::new().unwrap());
    let dup = |e: &EventFd| EventFd::from_fd(e.as_fd().try_clone_to_owned().unwrap());
    let host_bell = EventfdDoorbell::new(dup(&to_remote), dup(&to_host), None);
    let remote_bell = EventfdDoorbell::new(to_host, to_remote, None);
    let (mem, map, rsc) = (carveout.mem.clone(), carveout.map, carveout.rsc);
    let remote = std::thread::spawn(move || -> Result<u64, String> {
        let cfg = RemoteConfig {
            wait,
            ..RemoteConfig::default()
        };
        let mut bus: RemoteBus<_, _> =
            RemoteBus::new(mem, remote_bell, &map, rsc, cfg).map_err(|e| e.to_string())?;
        bus.wait_ready(TIMEOUT)
            .map_err(|e| format!("wait_ready: {e}"))?;
        // RPMSG_ADDR_ANY: each answer goes to the last message's sender.
        let ch = bus
            .open(SERVICE, RPMSG_ADDR_ANY)
            .map_err(|e| e.to_string())?;
        std::thread::sleep(delay);
        let mut buf = vec![0u8; 496];
        for i in 0..messages {
            let n = bus
                .recv(&ch, &mut buf, TIMEOUT)
                .map_err(|e| format!("remote recv {i}: {e}"))?;
            bus.send(&ch, &buf[..n], TIMEOUT)
                .map_err(|e| format!("remote send {i}: {e}"))?;
        }
        Ok(messages)
    });
    let cfg = HostConfig::default().timeout(TIMEOUT).wait(wait);
    let host = HostBus::new(
        carveout.mem.clone(),
        host_bell,
        &carveout.map,
        carveout.rsc,
        cfg,
    )
    .expect("host bus");
    (host, remote)
}
