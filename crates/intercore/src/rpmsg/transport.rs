//! One endpoint API over every way of reaching the remote, so an application switches
//! transport by configuration: intercore's own userspace bus ([`HostBus`](super::HostBus))
//! or the kernel's rpmsg character devices (`intercore-linux`).

use crate::Result;
use core::time::Duration;

/// A local endpoint bound to one remote address: what `/dev/rpmsgM` is in the kernel's
/// model (an endpoint created with a fixed destination).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Channel {
    /// Our endpoint's address.
    pub local: u32,
    /// The remote endpoint it talks to.
    pub remote: u32,
}

/// Message transport to the remote core, one message per call.
pub trait Transport {
    /// The remote address of the announced service `name`, waiting up to `timeout`.
    fn find_service(&mut self, name: &str, timeout: Option<Duration>) -> Result<u32>;
    /// Opens a local endpoint named `name` talking to `remote`.
    fn open(&mut self, name: &str, remote: u32) -> Result<Channel>;
    /// Closes a channel (its endpoint is destroyed).
    fn close(&mut self, ch: Channel) -> Result<()>;
    /// Sends one message, waiting up to `timeout` for room.
    fn send(&mut self, ch: &Channel, data: &[u8], timeout: Option<Duration>) -> Result<()>;
    /// Receives one message into `buf`, waiting up to `timeout`; returns its length
    /// (`Error::Truncated` if `buf` was too small).
    fn recv(&mut self, ch: &Channel, buf: &mut [u8], timeout: Option<Duration>) -> Result<usize>;
    /// Largest payload of one message.
    fn max_payload(&self) -> usize;
}

#[cfg(feature = "alloc")]
impl<M: crate::SharedMemory, D: crate::Doorbell> Transport for super::HostBus<M, D> {
    fn find_service(&mut self, name: &str, timeout: Option<Duration>) -> Result<u32> {
        self.wait_service(name, timeout)
    }
    fn open(&mut self, name: &str, remote: u32) -> Result<Channel> {
        Ok(Channel {
            local: self.create_endpoint(name, None)?,
            remote,
        })
    }
    fn close(&mut self, ch: Channel) -> Result<()> {
        self.destroy_endpoint(ch.local)
    }
    fn send(&mut self, ch: &Channel, data: &[u8], timeout: Option<Duration>) -> Result<()> {
        self.send_timeout(ch.local, ch.remote, data, timeout)
    }
    fn recv(&mut self, ch: &Channel, buf: &mut [u8], timeout: Option<Duration>) -> Result<usize> {
        // Messages from other remote addresses to this endpoint are still delivered, as on
        // /dev/rpmsgM, which does not filter by source either.
        self.recv_timeout(ch.local, buf, timeout).map(|(_, n)| n)
    }
    fn max_payload(&self) -> usize {
        super::HostBus::max_payload(self)
    }
}
