//! One endpoint API over every way of reaching the other core, so an application switches
//! transport by configuration: intercore's own userspace bus ([`HostBus`](super::HostBus)),
//! the kernel's rpmsg character devices (`intercore-linux`), or — for the message part — the
//! remote role's [`RemoteBus`](super::RemoteBus).
//!
//! Two traits, one built on the other:
//!
//! * [`MessageIo`] (`no_std`, both roles): one message per call on an open [`Channel`],
//!   and the largest payload. This is all a protocol that runs *over* a link needs — the
//!   data plane ([`crate::dataplane`]) is generic over it on both sides, so the same
//!   `DpHost` runs over `HostBus` and `KernelRpmsg`, and the same `DpRemote` over
//!   `RemoteBus` and any other message pipe.
//! * [`Transport`]`: MessageIo` (the host's extension): finding a service the remote
//!   announced and opening/closing endpoints — what only the side holding the name service
//!   and the endpoint table of the host can do. A remote creates and announces endpoints
//!   through `RemoteBus`'s own API, which has no counterpart on `/dev/rpmsg`.

use crate::{Error, Result};
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

/// Messages on an open channel, one per call: the base every transport shares, in either
/// role (`no_std`, no allocation).
pub trait MessageIo {
    /// Sends one message, waiting up to `timeout` (`None`: no limit) for room.
    /// `MessageTooLarge` beyond [`Self::max_payload`].
    fn send(&mut self, ch: &Channel, data: &[u8], timeout: Option<Duration>) -> Result<()>;
    /// Receives one message for `ch`'s local endpoint into `buf`, waiting up to `timeout`;
    /// returns its length (`Error::Truncated` with the full length, and the message
    /// consumed, if `buf` was too small). Messages from other remote addresses to this
    /// endpoint are delivered too, as on `/dev/rpmsgM`, which does not filter by source.
    fn recv(&mut self, ch: &Channel, buf: &mut [u8], timeout: Option<Duration>) -> Result<usize>;
    /// Largest payload of one message.
    fn max_payload(&self) -> usize;

    /// [`Self::recv`], also returning the sender's address where the transport reports it
    /// (`None` on `/dev/rpmsgM`, which does not).
    fn recv_from(
        &mut self,
        ch: &Channel,
        buf: &mut [u8],
        timeout: Option<Duration>,
    ) -> Result<(Option<u32>, usize)> {
        self.recv(ch, buf, timeout).map(|n| (None, n))
    }

    /// [`Self::recv_from`] without waiting: `Ok(None)` when no message is there.
    fn try_recv_from(
        &mut self,
        ch: &Channel,
        buf: &mut [u8],
    ) -> Result<Option<(Option<u32>, usize)>> {
        match self.recv_from(ch, buf, Some(Duration::ZERO)) {
            Ok(r) => Ok(Some(r)),
            Err(Error::WouldBlock | Error::Timeout) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// Message transport to the remote core as the host sees it: [`MessageIo`] plus the name
/// service and endpoint management.
pub trait Transport: MessageIo {
    /// The remote address of the announced service `name`, waiting up to `timeout`.
    fn find_service(&mut self, name: &str, timeout: Option<Duration>) -> Result<u32>;
    /// Opens a local endpoint named `name` talking to `remote`.
    fn open(&mut self, name: &str, remote: u32) -> Result<Channel>;
    /// Closes a channel (its endpoint is destroyed).
    fn close(&mut self, ch: Channel) -> Result<()>;
}

/// `MessageIo` for a pointer to a `MessageIo`: every method forwarded, the provided ones
/// included (an implementation's own `recv_from` must not be replaced by the default).
macro_rules! forward_message_io {
    ($($ptr:ty),+) => {$(
        impl<T: MessageIo + ?Sized> MessageIo for $ptr {
            fn send(&mut self, ch: &Channel, data: &[u8], timeout: Option<Duration>) -> Result<()> {
                (**self).send(ch, data, timeout)
            }
            fn recv(
                &mut self,
                ch: &Channel,
                buf: &mut [u8],
                timeout: Option<Duration>,
            ) -> Result<usize> {
                (**self).recv(ch, buf, timeout)
            }
            fn max_payload(&self) -> usize {
                (**self).max_payload()
            }
            fn recv_from(
                &mut self,
                ch: &Channel,
                buf: &mut [u8],
                timeout: Option<Duration>,
            ) -> Result<(Option<u32>, usize)> {
                (**self).recv_from(ch, buf, timeout)
            }
            fn try_recv_from(
                &mut self,
                ch: &Channel,
                buf: &mut [u8],
            ) -> Result<Option<(Option<u32>, usize)>> {
                (**self).try_recv_from(ch, buf)
            }
        }
    )+};
}

forward_message_io!(&mut T);
#[cfg(feature = "alloc")]
forward_message_io!(alloc::boxed::Box<T>);

#[cfg(feature = "alloc")]
impl<M: crate::SharedMemory, D: crate::Doorbell> MessageIo for super::HostBus<M, D> {
    fn send(&mut self, ch: &Channel, data: &[u8], timeout: Option<Duration>) -> Result<()> {
        self.send_timeout(ch.local, ch.remote, data, timeout)
    }
    fn recv(&mut self, ch: &Channel, buf: &mut [u8], timeout: Option<Duration>) -> Result<usize> {
        self.recv_deferred(ch.local, buf, timeout).map(|(_, n)| n)
    }
    fn max_payload(&self) -> usize {
        super::HostBus::max_payload(self)
    }
    fn recv_from(
        &mut self,
        ch: &Channel,
        buf: &mut [u8],
        timeout: Option<Duration>,
    ) -> Result<(Option<u32>, usize)> {
        self.recv_deferred(ch.local, buf, timeout)
            .map(|(src, n)| (Some(src), n))
    }
    fn try_recv_from(
        &mut self,
        ch: &Channel,
        buf: &mut [u8],
    ) -> Result<Option<(Option<u32>, usize)>> {
        match self.try_recv_deferred(ch.local, buf) {
            Ok((src, n)) => Ok(Some((Some(src), n))),
            Err(Error::WouldBlock) => Ok(None),
            Err(e) => Err(e),
        }
    }
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
}

/// The remote role's side of the base trait: `ch.local` is one of the bus's endpoints,
/// `ch.remote` the host's address. Copies in and out of the host's buffers (aligned
/// accesses where the memory is Device memory); firmware that answers in place keeps using
/// the bus's zero-copy calls ([`RemoteBus::recv_reply_with`](super::RemoteBus)) and hands
/// the payload to whatever protocol runs over it.
impl<M: crate::SharedMemory, D: crate::Doorbell, const N: usize> MessageIo
    for super::RemoteBus<M, D, N>
{
    fn send(&mut self, ch: &Channel, data: &[u8], timeout: Option<Duration>) -> Result<()> {
        super::RemoteBus::send(self, ch.local, ch.remote, data, timeout)
    }
    fn recv(&mut self, ch: &Channel, buf: &mut [u8], timeout: Option<Duration>) -> Result<usize> {
        self.recv_from(ch, buf, timeout).map(|(_, n)| n)
    }
    fn max_payload(&self) -> usize {
        super::RemoteBus::max_payload(self)
    }
    fn recv_from(
        &mut self,
        ch: &Channel,
        buf: &mut [u8],
        timeout: Option<Duration>,
    ) -> Result<(Option<u32>, usize)> {
        let device = self.device_memory();
        let (src, len) = self.recv_on(ch.local, timeout, |m| {
            crate::shm::copy_out_of(device, m.payload, buf);
            (m.src, m.payload.len())
        })?;
        if len > buf.len() {
            return Err(Error::Truncated { len });
        }
        Ok((Some(src), len))
    }
    fn try_recv_from(
        &mut self,
        ch: &Channel,
        buf: &mut [u8],
    ) -> Result<Option<(Option<u32>, usize)>> {
        let device = self.device_memory();
        let got = self.try_recv_on(ch.local, |m| {
            crate::shm::copy_out_of(device, m.payload, buf);
            (m.src, m.payload.len())
        });
        match got {
            Ok((_, len)) if len > buf.len() => Err(Error::Truncated { len }),
            Ok((src, len)) => Ok(Some((Some(src), len))),
            Err(Error::WouldBlock) => Ok(None),
            Err(e) => Err(e),
        }
    }
}
