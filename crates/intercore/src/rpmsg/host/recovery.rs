//! Recovery of the host role: a new link over the same memory once the remote is back.

use super::{HostBus, Inbox};
use crate::rpmsg::RscLocation;
use crate::{DeviceAddressMap, Doorbell, Error, Result, SharedMemory};
use alloc::sync::Arc;
use alloc::vec::Vec;

/// Recovery: a new link over the same memory after the remote died and came back.
impl<M: SharedMemory + Clone, D: Doorbell> HostBus<M, D> {
    /// Re-establishes the link once the remote's firmware is back (after `PeerGone`, or
    /// remoteproc's `crashed` and its recovery): reads the resource table the reloaded
    /// firmware provides at `rsc`, resets both rings, reposts every receive buffer, sets
    /// `DRIVER_OK` and rings the remote through `bell` (the new doorbell: the old one
    /// watched the dead process). Endpoints are kept — same addresses and names, messages
    /// queued for them from the old link dropped — and re-announced if they were; the
    /// service table starts empty (wait for the re-announcements with
    /// [`Self::find_service`]); the sticky error is cleared; counters carry on.
    ///
    /// Refused with `NotReady` while an [`RxBuf`](super::RxBuf) or
    /// [`TxBuf`](super::TxBuf) of the old link is alive: its buffer id would alias one of
    /// the new ring's. On an error the bus is unchanged.
    pub fn reconnect<A: DeviceAddressMap>(
        &mut self,
        map: &A,
        bell: D,
        rsc: RscLocation,
    ) -> Result<()> {
        if Arc::strong_count(&self.shared) != 1 {
            return Err(Error::NotReady(
                "receive or transmit buffers of the old link are still held",
            ));
        }
        let mut fresh = HostBus::new(self.shared.mem.clone(), bell, map, rsc, self.cfg)?;
        fresh.link.count = self.link.count;
        fresh.sleeps = self.sleeps;
        fresh.ns_refused = self.ns_refused;
        fresh.ns_overflow = self.ns_overflow;
        fresh.held_copied = self.held_copied;
        fresh.held_dropped = self.held_dropped;
        let mut announce = Vec::new();
        for ep in self.endpoints.iter() {
            fresh.endpoints.insert(ep.addr, ep.name, Inbox::default())?;
            if ep.announced {
                announce.push(ep.addr);
            }
        }
        fresh
            .endpoints
            .set_next_dynamic(self.endpoints.next_dynamic());
        self.detached = true;
        *self = fresh;
        for addr in announce {
            if self.ns {
                self.announce(addr)?;
            }
        }
        Ok(())
    }

    /// Local endpoints now (the table's size).
    pub fn endpoint_count(&self) -> usize {
        self.endpoints.count()
    }
}
