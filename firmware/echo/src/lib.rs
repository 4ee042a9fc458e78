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

/// The carveout this firmware is built for (the simulated SoC's default layout).
pub const CARVEOUT: intercore::rpmsg::layout::CarveoutSpec =
    intercore::rpmsg::layout::CarveoutSpec {
        vring_num: 256,
        buf_size: 512,
        event_idx: false,
        da_base: 0xA000_0000,
    };

/// The firmware's resource table (the `vdev0buffer` carveout and the rpmsg vdev of
/// [`CARVEOUT`], and the intercore vendor entry offering in-order rings to an intercore
/// host; other hosts skip it), an ordinary writable static: on a hosted target the simulator's programs
/// link this crate next to `intercore-fw-offload`, whose table owns `.resource_table`
/// there (one section must hold one table), and on a bare-metal target the board image
/// declares the table for its own memory map (`firmware/images`).
#[used]
pub static RESOURCE_TABLE: intercore::rpmsg::rsc_table::RscTableCell<
    intercore::rpmsg::rsc_table::IntercoreRpmsgTable,
> = intercore::rpmsg::rsc_table::RscTableCell::new(
    intercore::rpmsg::rsc_table::IntercoreRpmsgTable::standard(
        &CARVEOUT,
        intercore::wire::rsc::INTERCORE_FEATURES,
    ),
);

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
    loop {
        // The answer is written straight into one of the host's receive buffers, lent with
        // the message: no copy to a buffer of our own.
        let echoed = bus.recv_reply_any_with(None, |m, reply| {
            if m.payload.len() > MAX_ECHO {
                return Ok(false);
            }
            reply.send_copy(m.payload).map(|()| true)
        })??;
        if echoed {
            stats.echoed += 1;
        } else {
            stats.too_long += 1;
        }
    }
}

/// The sink service's name: counts messages, for one-way throughput measurements.
pub const SINK_SERVICE: &str = "intercore-sink";

/// Runs a message sink until the host goes away: every message is counted and dropped,
/// except a message of exactly `?`, which is answered with the count so far (u64,
/// little-endian). Buffers are taken and returned in batches (one index update and at most
/// one doorbell per batch).
pub fn run_sink<M: SharedMemory, D: Doorbell, const N: usize>(
    bus: &mut RemoteBus<M, D, N>,
) -> Result<u64, Error> {
    let mut count = 0u64;
    match sink(bus, &mut count) {
        Err(Error::PeerGone) | Ok(()) => Ok(count),
        Err(e) => Err(e),
    }
}

fn sink<M: SharedMemory, D: Doorbell, const N: usize>(
    bus: &mut RemoteBus<M, D, N>,
    count: &mut u64,
) -> Result<(), Error> {
    bus.wait_ready(None)?;
    let ep = bus.create_endpoint(SINK_SERVICE, None)?;
    bus.announce(ep)?;
    loop {
        let mut asked = None;
        let mut handle = |m: intercore::rpmsg::Msg<'_>| {
            if m.payload == b"?" {
                asked = Some(m.src);
            } else {
                *count += 1;
            }
        };
        if bus.try_recv_batch(256, &mut handle)? == 0 {
            bus.recv_any_with(None, &mut handle)?;
        }
        if let Some(src) = asked {
            bus.send_raw(ep, src, &count.to_le_bytes(), None)?;
        }
    }
}

/// The echo service as a [`Firmware`](intercore::firmware::Firmware): [`run`], for hosts
/// that take the firmware as a parameter (the simulated SoC, the vhost-user device).
#[derive(Debug, Clone, Copy, Default)]
pub struct Echo;

/// The sink as a [`Firmware`](intercore::firmware::Firmware): [`run_sink`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Sink;

impl<M, D, const N: usize, C, W> intercore::firmware::Firmware<M, D, N, C, W> for Echo
where
    M: SharedMemory,
    D: Doorbell,
    C: intercore::dataplane::CacheOps,
    W: intercore::dataplane::DataWindows,
{
    fn name(&self) -> &str {
        "echo"
    }
    fn resource_table(
        &self,
    ) -> Option<(
        intercore::rpmsg::layout::CarveoutSpec,
        intercore::rpmsg::rsc_table::IntercoreRpmsgTable,
    )> {
        Some((CARVEOUT, RESOURCE_TABLE.snapshot()))
    }
    fn run(
        &self,
        bus: &mut RemoteBus<M, D, N>,
        _dp: &mut intercore::dataplane::DpRemote<C, W>,
    ) -> Result<u64, Error> {
        run(bus).map(|s| s.echoed)
    }
}

impl<M, D, const N: usize, C, W> intercore::firmware::Firmware<M, D, N, C, W> for Sink
where
    M: SharedMemory,
    D: Doorbell,
    C: intercore::dataplane::CacheOps,
    W: intercore::dataplane::DataWindows,
{
    fn name(&self) -> &str {
        "sink"
    }
    /// The table of `firmware/echo`, whose services the sink is one of.
    fn resource_table(
        &self,
    ) -> Option<(
        intercore::rpmsg::layout::CarveoutSpec,
        intercore::rpmsg::rsc_table::IntercoreRpmsgTable,
    )> {
        Some((CARVEOUT, RESOURCE_TABLE.snapshot()))
    }
    fn run(
        &self,
        bus: &mut RemoteBus<M, D, N>,
        _dp: &mut intercore::dataplane::DpRemote<C, W>,
    ) -> Result<u64, Error> {
        run_sink(bus)
    }
}
