//! Example remote firmware: echoes every message back to its sender.
//!
//! Written only against intercore's `no_std` remote API ([`RemoteBus`]), so the same code
//! runs in the simulated SoC (hosted in its own process) and on a bare-metal core, where a
//! board crate provides the [`SharedMemory`] and [`Doorbell`] of the real hardware.
#![no_std]
#![deny(unsafe_code)]

use intercore::rpmsg::RemoteBus;
use intercore::{Doorbell, Error, SharedMemory};

/// The service this firmware announces. `rpmsg-raw` is the name Linux's `rpmsg_char`
/// driver binds, so a Linux host also exposes it as `/dev/rpmsgN`.
pub const SERVICE: &str = "rpmsg-raw";

/// Largest message echoed; longer ones are counted and dropped.
pub const MAX_ECHO: usize = 4096;

/// What the firmware did before it stopped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EchoStats {
    /// Messages echoed.
    pub echoed: u64,
    /// Messages too long to echo.
    pub too_long: u64,
}

/// Runs the echo service until the host goes away (`Ok`) or the link fails (`Err`).
pub fn run<M: SharedMemory, D: Doorbell, const N: usize>(
    bus: &mut RemoteBus<M, D, N>,
) -> Result<EchoStats, Error> {
    let mut stats = EchoStats::default();
    match serve(bus, &mut stats) {
        Err(Error::PeerGone) => Ok(stats),
        Err(e) => Err(e),
        Ok(()) => Ok(stats),
    }
}

fn serve<M: SharedMemory, D: Doorbell, const N: usize>(
    bus: &mut RemoteBus<M, D, N>,
    stats: &mut EchoStats,
) -> Result<(), Error> {
    bus.wait_ready(None)?;
    let ep = bus.create_endpoint(SERVICE, None)?;
    bus.announce(ep)?;
    let mut buf = [0u8; MAX_ECHO];
    loop {
        let (src, len) = bus.recv_with(None, |m| {
            let n = m.payload.len();
            if n <= MAX_ECHO {
                buf[..n].copy_from_slice(m.payload);
            }
            (m.src, n)
        })?;
        if len > MAX_ECHO {
            stats.too_long += 1;
            continue;
        }
        bus.send(ep, src, &buf[..len], None)?;
        stats.echoed += 1;
    }
}
