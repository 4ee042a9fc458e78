//! One endpoint API over every way of reaching the other core, so an application switches
//! transport — or role — by configuration: intercore's own buses in both roles
//! ([`HostBus`](super::HostBus), [`RemoteBus`](super::RemoteBus)), the kernel's rpmsg
//! character devices (`intercore-linux`), or the board's live link (`intercore-board`).
//!
//! Two traits, one built on the other:
//!
//! * [`MessageIo`] (`no_std`, both roles): one message per call on an open [`Channel`],
//!   and the largest payload. This is all a protocol that runs *over* a link needs — the
//!   data plane ([`crate::dataplane`]) is generic over it on both sides, so the same
//!   `DpHost` runs over `HostBus` and `KernelRpmsg`, and the same `DpRemote` over
//!   `RemoteBus` and any other message pipe.
//! * [`Transport`]`: MessageIo`: finding a service the peer announced and opening/closing
//!   endpoints. On the remote role `open` also announces the endpoint.
//!
//! Both buses have inherent methods of the same names and signatures; the trait
//! implementations forward to them, so a method call means the same with or without the
//! traits in scope.

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

impl Channel {
    /// The channel from local endpoint `local` to address `remote`.
    pub const fn new(local: u32, remote: u32) -> Self {
        Self { local, remote }
    }
}

/// Messages on an open channel, one per call: the base every transport shares, in either
/// role (`no_std`, no allocation).
///
/// Every implementation in the crate ([`HostBus`](super::HostBus),
/// [`RemoteBus`](super::RemoteBus)) has inherent methods of the same names and signatures,
/// which these forward to: `bus.send(&ch, data, timeout)` means the same with or without
/// the trait in scope, and nothing needs a fully qualified call. The zero-copy forms
/// (`send_with`, `recv_with`) and the raw ones (`send_raw`, `recv_any_with`) are inherent
/// on both roles only (they take closures; the traits stay usable as `dyn`).
///
/// # Timeouts
///
/// One convention for every blocking call of both roles and of every transport
/// (`KernelRpmsg` included): `timeout: Option<Duration>`, where
///
/// * `None` waits with no limit,
/// * `Some(Duration::ZERO)` does not wait: one look, and nothing there is an expiry,
/// * an expiry is always [`Error::Timeout`](crate::Error::Timeout) (never `WouldBlock`).
///
/// A dead peer is `PeerGone`, whatever the timeout.
pub trait MessageIo {
    /// Sends one message, waiting up to `timeout` for room. `MessageTooLarge` beyond
    /// [`Self::max_payload`].
    fn send(&mut self, ch: &Channel, data: &[u8], timeout: Option<Duration>) -> Result<()>;
    /// Receives one message for `ch`'s local endpoint into `buf`, waiting up to `timeout`;
    /// returns its length (`Error::Truncated` with the full length, and the message
    /// consumed, if `buf` was too small). Messages from other remote addresses to this
    /// endpoint are delivered too, as on `/dev/rpmsgM`, which does not filter by source.
    fn recv(&mut self, ch: &Channel, buf: &mut [u8], timeout: Option<Duration>) -> Result<usize>;
    /// [`Self::recv`], also returning the sender's address where the transport reports it
    /// (always on both buses; `None` on `/dev/rpmsgM`, which does not, and by default).
    fn recv_from(
        &mut self,
        ch: &Channel,
        buf: &mut [u8],
        timeout: Option<Duration>,
    ) -> Result<(Option<u32>, usize)> {
        self.recv(ch, buf, timeout).map(|n| (None, n))
    }
    /// Largest payload of one message.
    fn max_payload(&self) -> usize;
}

/// Message transport to the other core with endpoints: [`MessageIo`] plus the name
/// service and endpoint management. Implemented by both roles ([`HostBus`](super::HostBus),
/// [`RemoteBus`](super::RemoteBus)), by the kernel's character devices and by the board's
/// live link; the buses' inherent methods have the same names and signatures.
pub trait Transport: MessageIo {
    /// The address of the service `name` the peer announced, waiting up to `timeout`.
    fn find_service(&mut self, name: &str, timeout: Option<Duration>) -> Result<u32>;
    /// Opens a local endpoint named `name` talking to `remote`.
    fn open(&mut self, name: &str, remote: u32) -> Result<Channel>;
    /// Closes a channel (its endpoint is destroyed).
    fn close(&mut self, ch: Channel) -> Result<()>;
    /// [`Self::find_service`] then [`Self::open`]: a channel to the peer's service `name`.
    fn connect(&mut self, name: &str, timeout: Option<Duration>) -> Result<Channel> {
        let remote = self.find_service(name, timeout)?;
        self.open(name, remote)
    }
}

/// `MessageIo` and `Transport` for a pointer to one: every method forwarded, the provided
/// ones included.
macro_rules! forward {
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
            fn recv_from(
                &mut self,
                ch: &Channel,
                buf: &mut [u8],
                timeout: Option<Duration>,
            ) -> Result<(Option<u32>, usize)> {
                (**self).recv_from(ch, buf, timeout)
            }
            fn max_payload(&self) -> usize {
                (**self).max_payload()
            }
        }
        impl<T: Transport + ?Sized> Transport for $ptr {
            fn find_service(&mut self, name: &str, timeout: Option<Duration>) -> Result<u32> {
                (**self).find_service(name, timeout)
            }
            fn open(&mut self, name: &str, remote: u32) -> Result<Channel> {
                (**self).open(name, remote)
            }
            fn close(&mut self, ch: Channel) -> Result<()> {
                (**self).close(ch)
            }
            fn connect(&mut self, name: &str, timeout: Option<Duration>) -> Result<Channel> {
                (**self).connect(name, timeout)
            }
        }
    )+};
}

forward!(&mut T);
#[cfg(feature = "alloc")]
forward!(alloc::boxed::Box<T>);

/// Both buses implement the traits by forwarding to their inherent methods of the same
/// names and signatures.
macro_rules! by_inherent {
    ($bus:ty, $($gen:tt)*) => {
        impl<$($gen)*> MessageIo for $bus {
            fn send(&mut self, ch: &Channel, data: &[u8], timeout: Option<Duration>) -> Result<()> {
                <$bus>::send(self, ch, data, timeout)
            }
            fn recv(
                &mut self,
                ch: &Channel,
                buf: &mut [u8],
                timeout: Option<Duration>,
            ) -> Result<usize> {
                <$bus>::recv(self, ch, buf, timeout)
            }
            fn recv_from(
                &mut self,
                ch: &Channel,
                buf: &mut [u8],
                timeout: Option<Duration>,
            ) -> Result<(Option<u32>, usize)> {
                <$bus>::recv_from(self, ch, buf, timeout)
            }
            fn max_payload(&self) -> usize {
                <$bus>::max_payload(self)
            }
        }
        impl<$($gen)*> Transport for $bus {
            fn find_service(&mut self, name: &str, timeout: Option<Duration>) -> Result<u32> {
                <$bus>::find_service(self, name, timeout)
            }
            fn open(&mut self, name: &str, remote: u32) -> Result<Channel> {
                <$bus>::open(self, name, remote)
            }
            fn close(&mut self, ch: Channel) -> Result<()> {
                <$bus>::close(self, ch)
            }
            fn connect(&mut self, name: &str, timeout: Option<Duration>) -> Result<Channel> {
                <$bus>::connect(self, name, timeout)
            }
        }
    };
}

#[cfg(feature = "alloc")]
by_inherent!(super::HostBus<M, D>, M: crate::SharedMemory, D: crate::Doorbell);
by_inherent!(super::RemoteBus<M, D, N>, M: crate::SharedMemory, D: crate::Doorbell, const N: usize);
