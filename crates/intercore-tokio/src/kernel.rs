//! The kernel's `/dev/rpmsg` character devices, async: each endpoint's descriptor is
//! registered with tokio's reactor, and a receive sleeps until it is readable.

use super::{none_on_timeout, os, register};
use intercore::rpmsg::Channel;
use intercore::{Error, Result};
use intercore_linux::rpmsg_char::KernelRpmsg;
use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;
use tokio::io::unix::AsyncFd;

/// How long an async send waits, when every transmit buffer is with the remote, before it
/// tries again: the kernel gives no "writable" event (`virtio_rpmsg_bus` has no poll for
/// transmit buffers; the blocking send waits the same way, `KernelRpmsg::send_timeout`).
/// The one timer here, and only while the remote holds every buffer.
const SEND_RETRY: Duration = Duration::from_micros(200);

/// [`KernelRpmsg`] driven by tokio: receive sleeps on each endpoint device's descriptor
/// through the reactor. Cancellation-safe receive (one `read(2)` takes one message, in the
/// poll that returns it).
pub struct AsyncKernelRpmsg {
    inner: Mutex<KernelRpmsg>,
    /// One registration per open channel (a duplicate of its endpoint device's descriptor),
    /// by local address; dropped when the channel closes so the device can be released.
    fds: Mutex<HashMap<u32, std::sync::Arc<AsyncFd<OwnedFd>>>>,
}

impl std::fmt::Debug for AsyncKernelRpmsg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncKernelRpmsg")
            .field("inner", &*self.lock())
            .finish_non_exhaustive()
    }
}

impl AsyncKernelRpmsg {
    /// Wraps `k`; must run inside a tokio runtime with I/O enabled.
    pub fn new(k: KernelRpmsg) -> std::result::Result<Self, super::OpenError> {
        tokio::runtime::Handle::try_current().map_err(std::io::Error::other)?;
        Ok(Self {
            inner: Mutex::new(k),
            fds: Mutex::new(HashMap::new()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, KernelRpmsg> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` on the transport (control calls such as `services`; a blocking call made
    /// here blocks the runtime's thread).
    pub fn with_transport<R>(&self, f: impl FnOnce(&mut KernelRpmsg) -> R) -> R {
        f(&mut self.lock())
    }

    /// Opens a channel to the remote address `remote` ([`KernelRpmsg::open_endpoint`]) and
    /// registers its descriptor with the reactor.
    pub fn open(&self, name: &str, remote: u32) -> Result<Channel> {
        let mut k = self.lock();
        let ch = k.open_endpoint(name, None, remote).map_err(Error::from)?;
        let fd = k.endpoint_fd(&ch).ok_or(Error::NoSuchEndpoint(ch.local))?;
        match register(fd) {
            Ok(a) => {
                let mut fds = self.fds.lock().unwrap_or_else(|e| e.into_inner());
                fds.insert(ch.local, std::sync::Arc::new(a));
                Ok(ch)
            }
            Err(e) => {
                let _ = k.close_endpoint(ch);
                Err(os(e))
            }
        }
    }

    /// Closes a channel (its registration first, so the kernel sees the last close).
    pub fn close(&self, ch: Channel) -> Result<()> {
        self.fds
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&ch.local);
        self.lock().close_endpoint(ch)
    }

    fn fd(&self, ch: &Channel) -> Result<std::sync::Arc<AsyncFd<OwnedFd>>> {
        let fds = self.fds.lock().unwrap_or_else(|e| e.into_inner());
        fds.get(&ch.local)
            .cloned()
            .ok_or(Error::NoSuchEndpoint(ch.local))
    }

    /// Receives one message for `ch` into `buf` (`KernelRpmsg::recv_timeout`'s meaning of
    /// the result), sleeping on the endpoint's descriptor. Cancellation-safe.
    pub async fn recv(&self, ch: &Channel, buf: &mut [u8]) -> Result<usize> {
        let fd = self.fd(ch)?;
        loop {
            if let Some(n) =
                none_on_timeout(self.lock().recv_timeout(ch, buf, Some(Duration::ZERO)))?
            {
                return Ok(n);
            }
            let mut guard = fd.readable().await.map_err(os)?;
            // Cleared before the next read: a message after that read is a new edge.
            guard.clear_ready();
        }
    }

    /// Sends `data` on `ch`; while every transmit buffer is with the remote it retries
    /// every 200 µs (the kernel has no writable event). Cancellation-safe: it sent
    /// its message or nothing.
    pub async fn send(&self, ch: &Channel, data: &[u8]) -> Result<()> {
        loop {
            if none_on_timeout(self.lock().send_timeout(ch, data, Some(Duration::ZERO)))?.is_some()
            {
                return Ok(());
            }
            tokio::time::sleep(SEND_RETRY).await;
        }
    }
}
