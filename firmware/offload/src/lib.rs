//! Example remote firmware: a checksum offload on the zero-copy data plane.
//!
//! It announces two services: `intercore-dp`, where each submitted buffer gets a CRC32C
//! computed over its input and written in place right after it (`DP_OP_CRC32C`), and
//! `rpmsg-raw`, an echo for control messages. Written only against intercore's `no_std`
//! remote API: the same code runs in the simulated SoC and on a bare-metal core, where a
//! board crate provides the memory, doorbell, cache maintenance and address windows.
#![no_std]
#![deny(unsafe_code)]

use intercore::dataplane::{CacheOps, DataWindows, DpRemote, Job};
use intercore::rpmsg::RemoteBus;
use intercore::rpmsg::layout::CarveoutSpec;
use intercore::rpmsg::rsc_table::{RpmsgTable, RscTableCell};
use intercore::wire::dataplane::{DP_FAULT, DP_OP_CRC32C, DP_OP_NOP, DP_SERVICE, DP_UNSUPPORTED};
use intercore::{Doorbell, Error, SharedMemory, crc32c};

/// The echo service's name (bound by Linux's `rpmsg_char` as `/dev/rpmsgN`).
pub const ECHO_SERVICE: &str = "rpmsg-raw";
/// Largest control message echoed.
pub const MAX_ECHO: usize = 4096;

/// The carveout this firmware is built for: 256-entry vrings, 512-byte rpmsg buffers,
/// `EVENT_IDX`, from device address `0xA000_0000` (the simulated SoC's default layout).
pub const CARVEOUT: CarveoutSpec = CarveoutSpec {
    vring_num: 256,
    buf_size: 512,
    event_idx: false,
    da_base: 0xA000_0000,
};

/// The firmware's resource table, in its `.resource_table` section: the `vdev0buffer`
/// carveout and the rpmsg vdev with two vrings of [`CARVEOUT`]. A remoteproc host copies
/// it from the image and writes the negotiated values back into it (writable memory:
/// see [`RscTableCell`]); the simulated SoC copies it into its carveout the same way.
/// The simulator's programs (`intercore`, `intercore-sim-remote`) carry the section:
/// `intercore rsc $(which intercore)` shows it.
#[used]
// `link_section` is an unsafe attribute (the linker decides what the section holds); this
// is the only item in the project placed in `.resource_table` on a hosted target.
#[allow(unsafe_code)]
#[unsafe(link_section = ".resource_table")]
pub static RESOURCE_TABLE: RscTableCell<RpmsgTable> =
    RscTableCell::new(RpmsgTable::standard(&CARVEOUT));

/// The work done on one buffer.
pub fn work<C: CacheOps, W: DataWindows>(job: &mut Job<'_, C, W>) -> Result<usize, u32> {
    match job.op() {
        DP_OP_CRC32C => {
            let crc = crc32c(job.input().map_err(|_| DP_FAULT)?);
            let len = job.len();
            job.output(len, 4)
                .map_err(|_| DP_FAULT)?
                .copy_from_slice(&crc.to_le_bytes());
            Ok(len + 4)
        }
        DP_OP_NOP => Ok(0),
        _ => Err(DP_UNSUPPORTED),
    }
}

/// Serves both services until the host goes away (`Ok`) or the link fails (`Err`).
pub fn run<M, D, const N: usize, C, W>(
    bus: &mut RemoteBus<M, D, N>,
    dp: &mut DpRemote<C, W>,
) -> Result<(), Error>
where
    M: SharedMemory,
    D: Doorbell,
    C: CacheOps,
    W: DataWindows,
{
    match serve(bus, dp) {
        Err(Error::PeerGone) => Ok(()),
        r => r,
    }
}

fn serve<M, D, const N: usize, C, W>(
    bus: &mut RemoteBus<M, D, N>,
    dp: &mut DpRemote<C, W>,
) -> Result<(), Error>
where
    M: SharedMemory,
    D: Doorbell,
    C: CacheOps,
    W: DataWindows,
{
    bus.wait_ready(None)?;
    let echo = bus.create_endpoint(ECHO_SERVICE, None)?;
    bus.announce(echo)?;
    let dp_ep = bus.create_endpoint(DP_SERVICE, None)?;
    bus.announce(dp_ep)?;
    let mut buf = [0u8; MAX_ECHO];
    loop {
        let reply = bus.recv_with(None, |m| {
            if m.dst == dp_ep {
                dp.process(dp_ep, m.src, m.payload, work);
                None
            } else if m.payload.len() <= MAX_ECHO {
                buf[..m.payload.len()].copy_from_slice(m.payload);
                Some((m.src, m.payload.len()))
            } else {
                None
            }
        })?;
        if let Some((src, len)) = reply {
            bus.send(echo, src, &buf[..len], None)?;
        }
        dp.flush(bus, None)?;
    }
}
