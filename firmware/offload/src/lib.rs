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
use intercore::rpmsg::rsc_table::{IntercoreRpmsgTable, RscTableCell};
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
/// The simulator's programs (`intercore`, the `sim_remote` example) carry the section:
/// `intercore rsc $(which intercore)` shows it. On a bare-metal target the board image
/// declares its own table for its memory map (`firmware/images`), so this one stays an
/// ordinary static there.
#[used]
// `link_section` is an unsafe attribute (the linker decides what the section holds); this
// is the only item in the project placed in `.resource_table` on a hosted target.
#[allow(unsafe_code)]
#[cfg_attr(not(target_os = "none"), unsafe(link_section = ".resource_table"))]
pub static RESOURCE_TABLE: RscTableCell<IntercoreRpmsgTable> = RscTableCell::new(
    IntercoreRpmsgTable::standard(&CARVEOUT, intercore::wire::rsc::INTERCORE_FEATURES),
);

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

/// The statistics service: any message to it is answered with [`OffloadStats::to_bytes`]
/// (the firmware's own counts, for a host to check against its own).
pub const STATS_SERVICE: &str = "intercore-stats";

/// What the firmware did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OffloadStats {
    /// Control messages echoed.
    pub echoed: u64,
    /// Data-plane requests handled.
    pub dp_requests: u64,
}

impl OffloadStats {
    /// The statistics service's answer: `echoed` then `dp_requests`, u64 little-endian.
    pub fn to_bytes(&self) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&self.echoed.to_le_bytes());
        b[8..].copy_from_slice(&self.dp_requests.to_le_bytes());
        b
    }
    /// Parses an answer of the statistics service.
    pub fn from_bytes(b: &[u8]) -> Option<Self> {
        let b: &[u8; 16] = b.try_into().ok()?;
        let (e, d) = b.split_at(8);
        Some(Self {
            echoed: u64::from_le_bytes(e.try_into().ok()?),
            dp_requests: u64::from_le_bytes(d.try_into().ok()?),
        })
    }
}

/// Serves both services (and [`STATS_SERVICE`]) until the host goes away (`Ok`, with what
/// was done) or the link fails (`Err`).
pub fn run<M, D, const N: usize, C, W>(
    bus: &mut RemoteBus<M, D, N>,
    dp: &mut DpRemote<C, W>,
) -> Result<OffloadStats, Error>
where
    M: SharedMemory,
    D: Doorbell,
    C: CacheOps,
    W: DataWindows,
{
    run_with(bus, dp, work)
}

/// [`run`] with another data-plane worker in place of [`work`] (a board's own operations,
/// or a deliberately wrong one for a test).
pub fn run_with<M, D, const N: usize, C, W, F>(
    bus: &mut RemoteBus<M, D, N>,
    dp: &mut DpRemote<C, W>,
    worker: F,
) -> Result<OffloadStats, Error>
where
    M: SharedMemory,
    D: Doorbell,
    C: CacheOps,
    W: DataWindows,
    F: FnMut(&mut Job<'_, C, W>) -> Result<usize, u32>,
{
    let mut stats = OffloadStats::default();
    match serve(bus, dp, worker, &mut stats) {
        Err(Error::PeerGone) | Ok(()) => Ok(stats),
        Err(e) => Err(e),
    }
}

fn serve<M, D, const N: usize, C, W, F>(
    bus: &mut RemoteBus<M, D, N>,
    dp: &mut DpRemote<C, W>,
    mut worker: F,
    stats: &mut OffloadStats,
) -> Result<(), Error>
where
    M: SharedMemory,
    D: Doorbell,
    C: CacheOps,
    W: DataWindows,
    F: FnMut(&mut Job<'_, C, W>) -> Result<usize, u32>,
{
    bus.wait_ready(None)?;
    let echo = bus.create_endpoint(ECHO_SERVICE, None)?;
    bus.announce(echo)?;
    let dp_ep = bus.create_endpoint(DP_SERVICE, None)?;
    bus.announce(dp_ep)?;
    let stats_ep = bus.create_endpoint(STATS_SERVICE, None)?;
    bus.announce(stats_ep)?;
    loop {
        // Each control message is answered in one of the host's receive buffers lent with
        // it: no copy to a buffer of our own.
        bus.recv_reply_any_with(None, |m, reply| {
            if m.dst == dp_ep {
                stats.dp_requests += 1;
                dp.process(dp_ep, m.src, m.payload, &mut worker);
            } else if m.dst == stats_ep {
                reply.send_copy(&stats.to_bytes())?;
            } else if m.dst == echo && m.payload.len() <= MAX_ECHO {
                reply.send_copy(m.payload)?;
                stats.echoed += 1;
            }
            Ok::<(), Error>(())
        })??;
        dp.flush(bus, None)?;
    }
}

/// The offload firmware as a [`Firmware`](intercore::firmware::Firmware): [`run`], for
/// hosts that take the firmware as a parameter (the simulated SoC, the vhost-user device).
#[derive(Debug, Clone, Copy, Default)]
pub struct Offload;

impl<M, D, const N: usize, C, W> intercore::firmware::Firmware<M, D, N, C, W> for Offload
where
    M: SharedMemory,
    D: Doorbell,
    C: CacheOps,
    W: DataWindows,
{
    fn name(&self) -> &str {
        "offload"
    }
    fn serves_data_plane(&self) -> bool {
        true
    }
    fn resource_table(&self) -> Option<(CarveoutSpec, IntercoreRpmsgTable)> {
        Some((CARVEOUT, RESOURCE_TABLE.snapshot()))
    }
    fn run(&self, bus: &mut RemoteBus<M, D, N>, dp: &mut DpRemote<C, W>) -> Result<u64, Error> {
        run(bus, dp).map(|s| s.echoed)
    }
}
