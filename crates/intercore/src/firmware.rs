//! Firmware: what a remote core runs, one concept for every place that hosts one.
//!
//! The simulated SoC's remote process (`intercore-sim`) and the vhost-user device
//! (`intercore-vhost`) take the firmware as a parameter, a [`Firmware`] implemented by
//! whoever ships firmwares (intercore's demo firmwares implement it in their own crates);
//! neither host names a firmware of its own.

use crate::dataplane::{CacheOps, DataWindows, DpRemote};
use crate::rpmsg::RemoteBus;
use crate::rpmsg::layout::CarveoutSpec;
use crate::rpmsg::rsc_table::IntercoreRpmsgTable;
use crate::{Doorbell, Error, SharedMemory};

/// A firmware a remote core runs over a remote bus `RemoteBus<M, D, N>` and, when it
/// serves one, a data plane `DpRemote<C, W>`: the host's memory, doorbell, cache and
/// windows are the host's types, the firmware is generic over them.
pub trait Firmware<M: SharedMemory, D: Doorbell, const N: usize, C: CacheOps, W: DataWindows> {
    /// The name users pick it by (`--firmware NAME`, a board file's `transport.firmware`).
    fn name(&self) -> &str;
    /// Whether it serves the data plane (a host sizes the rpmsg buffers for the data
    /// plane's completion batches then).
    fn serves_data_plane(&self) -> bool {
        false
    }
    /// The carveout the firmware is built for and its resource table, as a remoteproc
    /// loader reads them from its `.resource_table` section; `None` when it declares none.
    fn resource_table(&self) -> Option<(CarveoutSpec, IntercoreRpmsgTable)> {
        None
    }
    /// Runs until the host goes away (`Ok`, with the messages handled) or the link fails.
    fn run(&self, bus: &mut RemoteBus<M, D, N>, dp: &mut DpRemote<C, W>) -> Result<u64, Error>;
}
