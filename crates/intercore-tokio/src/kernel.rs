//! The kernel's `/dev/rpmsg` character devices, async: each endpoint's descriptor is
//! registered with tokio's reactor, and a receive sleeps until it is readable.

use super::{none_on_timeout, os, register};
use intercore::rpmsg::Channel;
use intercore::{Error, Result};
use intercore_linux::rpmsg_char::KernelRpmsg;
use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::io::unix::AsyncFd;

/// How long an async send waits, when every transmit buffer is with the remote, before it
/// tries again: the kernel gives no "writable" event (`virtio_rpmsg_bus` has no poll for
/// transmit buffers; the blocking send waits the same way, `KernelRpmsg::send_timeout`).
/// The one timer here, and only while the remote holds every buffer.
pub(crate) const SEND_RETRY: Duration = Duration::from_micros(200);

/// How often a wait for a service the remote has not announced yet looks again: the
/// kernel announces a channel through sysfs and udev, not through a descriptor this
/// transport holds (control path only; `KernelRpmsg::wait_service` polls the same way).
pub(crate) const SERVICE_RETRY: Duration = Duration::from_millis(10);

/// The reactor registrations of a kernel transport's open channels: one per channel (a
/// duplicate of its endpoint device's descriptor), by local address; dropped when the
/// channel closes so the device can be released.
#[derive(Default)]
pub(crate) struct KernelFds {
    fds: Mutex<HashMap<u32, Arc<AsyncFd<OwnedFd>>>>,
}

impl KernelFds {
    fn map(&self) -> MutexGuard<'_, HashMap<u32, Arc<AsyncFd<OwnedFd>>>> {
        self.fds.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers `ch`'s endpoint device (just opened on `k`).
    pub(crate) fn register(&self, k: &KernelRpmsg, ch: &Channel) -> Result<()> {
        let fd = k.endpoint_fd(ch).ok_or(Error::NoSuchEndpoint(ch.local))?;
        let a = register(fd).map_err(os)?;
        self.map().insert(ch.local, Arc::new(a));
        Ok(())
    }

    /// Drops `ch`'s registration (before the channel closes, so the kernel sees the last
    /// close).
    pub(crate) fn forget(&self, ch: &Channel) {
        self.map().remove(&ch.local);
    }

    /// `ch`'s registration.
    pub(crate) fn get(&self, ch: &Channel) -> Result<Arc<AsyncFd<OwnedFd>>> {
        self.map()
            .get(&ch.local)
            .cloned()
            .ok_or(Error::NoSuchEndpoint(ch.local))
    }
}

/// Runs `attempt` (non-blocking: `Ok(None)` for "not yet") until it yields. Between tries
/// it sleeps until `fd` (an endpoint device) is readable, or for `retry` when there is no
/// descriptor to wait on or `want_tx` says the attempt waits for a transmit buffer (the
/// kernel has no event for either). Cancellation-safe as long as `attempt` consumes nothing
/// when it returns `Ok(None)` or an error.
pub(crate) async fn run<T>(
    fd: Option<&AsyncFd<OwnedFd>>,
    retry: Duration,
    want_tx: impl Fn() -> bool,
    mut attempt: impl FnMut() -> Result<Option<T>>,
) -> Result<T> {
    loop {
        if let Some(v) = attempt()? {
            return Ok(v);
        }
        match fd {
            Some(fd) if !want_tx() => {
                let mut guard = fd.readable().await.map_err(os)?;
                // Cleared before the next read: a message after that read is a new edge.
                guard.clear_ready();
            }
            Some(fd) => {
                tokio::select! {
                    r = fd.readable() => r.map_err(os)?.clear_ready(),
                    () = tokio::time::sleep(retry) => {}
                }
            }
            None => tokio::time::sleep(retry).await,
        }
    }
}

/// [`KernelRpmsg`] driven by tokio: receive sleeps on each endpoint device's descriptor
/// through the reactor. Cancellation-safe receive (one `read(2)` takes one message, in the
/// poll that returns it).
pub struct AsyncKernelRpmsg {
    inner: Mutex<KernelRpmsg>,
    fds: KernelFds,
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
            fds: KernelFds::default(),
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
        if let Err(e) = self.fds.register(&k, &ch) {
            let _ = k.close_endpoint(ch);
            return Err(e);
        }
        Ok(ch)
    }

    /// Closes a channel (its registration first, so the kernel sees the last close).
    pub fn close(&self, ch: Channel) -> Result<()> {
        self.fds.forget(&ch);
        self.lock().close_endpoint(ch)
    }

    /// Receives one message for `ch` into `buf` (`KernelRpmsg::recv_timeout`'s meaning of
    /// the result), sleeping on the endpoint's descriptor. Cancellation-safe.
    pub async fn recv(&self, ch: &Channel, buf: &mut [u8]) -> Result<usize> {
        let fd = self.fds.get(ch)?;
        run(
            Some(&fd),
            SEND_RETRY,
            || false,
            || none_on_timeout(self.lock().recv_timeout(ch, buf, Some(Duration::ZERO))),
        )
        .await
    }

    /// Sends `data` on `ch`; while every transmit buffer is with the remote it retries
    /// every 200 µs (the kernel has no writable event). Cancellation-safe: it sent
    /// its message or nothing.
    pub async fn send(&self, ch: &Channel, data: &[u8]) -> Result<()> {
        run(
            None,
            SEND_RETRY,
            || true,
            || none_on_timeout(self.lock().send_timeout(ch, data, Some(Duration::ZERO))),
        )
        .await
    }
}
