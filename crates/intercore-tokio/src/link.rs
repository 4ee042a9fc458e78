//! [`AsyncLink`]: a board's live link ([`intercore_board::Link`], from `Board::open`)
//! driven by tokio, woken by the link's own descriptors through the reactor.

use crate::dataplane::{self, Completions};
use crate::kernel::{self, KernelFds, SEND_RETRY, SERVICE_RETRY};
use crate::{OpenError, Rings, Wake, WakeFd, none_on_timeout};
use intercore::dataplane::{CacheOps, Completed, DpHost, Ticket, WritableBuf};
use intercore::rpmsg::Channel;
use intercore::{Error, Result};
use intercore_board::{Link, LinkParts};
use std::cell::Cell;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

/// How the link's waits are woken.
enum Drive {
    /// A host bus with an fd doorbell (the simulated SoC's eventfd, the remote's pidfd).
    Bus(Wake),
    /// The kernel's endpoint devices, one descriptor per channel.
    Kernel(KernelFds),
}

/// A board's [`Link`] driven by tokio: the link's messaging calls, `async`, woken by the
/// link's own file descriptors through the runtime's reactor, never by a polling timer.
///
/// | transport | what a wait sleeps on |
/// |---|---|
/// | `sim` | the host's eventfd doorbell, and the remote's pidfd (its death is `PeerGone`) |
/// | `kernel` | each channel's `/dev/rpmsgN` descriptor (readable: a message); a send the remote holds every buffer for retries every 200 µs (the kernel has no writable event), and so does a wait for a service not yet announced, every 10 ms |
/// | `qemu`, `userspace` with `doorbell = "poll"` or polled rings | refused: a polled doorbell has no descriptor ([`OpenError::NoWakeFd`]); drive that link with the blocking API (in `tokio::task::spawn_blocking` if it must sit beside async code), or put it in an [`AsyncReactor<Link>`](crate::AsyncReactor), which serves it on its tick |
/// | `userspace` with `doorbell = "uio"` | the UIO device's descriptor (readable: a new interrupt count); each wake-up takes the interrupt without blocking — count read, mailbox or IPI acknowledged, interrupt re-enabled ([`intercore_linux::UioDoorbell::take_interrupt`]) — then serves the bus as `sim` does |
///
/// Polled doorbells get no spawn_blocking fallback here: it would hide a thread per
/// waiting call spinning on shared memory (the polled doorbell's own wait) behind an API
/// that promises to sleep on descriptors; the error says what to do instead.
///
/// Every call takes `&self` (the link sits behind a mutex held only while a call looks at
/// it, never across an `.await`), so many tasks can share one link. Receives are
/// cancellation-safe (a message is taken off its queue only in the poll that returns it);
/// a send sent its message or nothing. Timeouts are the runtime's
/// (`tokio::time::timeout`).
pub struct AsyncLink {
    link: Mutex<Link>,
    drive: Drive,
}

/// Why a [`Link`] could not be driven async: the error, and the link given back (still
/// usable with the blocking API).
#[derive(Debug, thiserror::Error)]
#[error("async on the {transport} link: {error}")]
pub struct NotAsync {
    /// The link's transport name ([`Link::transport_name`]).
    pub transport: String,
    /// What is missing.
    pub error: OpenError,
    /// The link, unchanged.
    pub link: Box<Link>,
}

impl std::fmt::Debug for AsyncLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncLink")
            .field("link", &*self.lock())
            .finish_non_exhaustive()
    }
}

/// The host bus's rings of a link whose drive is [`Drive::Bus`].
fn bus_rings() -> Rings<Link> {
    Rings {
        poll: |l: &mut Link| match l.async_parts() {
            LinkParts::Eventfd(bus) => bus.poll(),
            LinkParts::Uio(bus) => bus.poll(),
            _ => Err(not_a_bus()),
        },
        arm: |l: &mut Link, tx| match l.async_parts() {
            LinkParts::Eventfd(bus) => bus.arm_notify(tx),
            LinkParts::Uio(bus) => bus.arm_notify(tx),
            _ => {
                let _ = tx;
                Err(not_a_bus())
            }
        },
        woke: |l: &mut Link| match l.async_parts() {
            LinkParts::Eventfd(bus) => bus.doorbell().on_wake(),
            LinkParts::Uio(bus) => bus.doorbell().on_wake(),
            _ => Err(not_a_bus()),
        },
    }
}

/// What a link driven as a host bus answers if it no longer holds one (it cannot happen:
/// a link's transport is fixed when it opens).
fn not_a_bus() -> Error {
    Error::Config("AsyncLink: the link's transport is not the host bus it was built with")
}

impl AsyncLink {
    /// Drives `link` async; must run inside a tokio runtime with I/O enabled. A transport
    /// without a descriptor to sleep on is refused, the link given back ([`NotAsync`]).
    pub fn new(mut link: Link) -> std::result::Result<Self, NotAsync> {
        let drive = match Self::drive(&mut link) {
            Ok(d) => d,
            Err(error) => {
                return Err(NotAsync {
                    transport: link.transport_name().to_string(),
                    error,
                    link: Box::new(link),
                });
            }
        };
        Ok(Self {
            link: Mutex::new(link),
            drive,
        })
    }

    fn drive(link: &mut Link) -> std::result::Result<Drive, OpenError> {
        tokio::runtime::Handle::try_current().map_err(std::io::Error::other)?;
        let transport = link.transport_name().to_string();
        match link.async_parts() {
            LinkParts::Eventfd(bus) => Ok(Drive::Bus(Wake::new(bus.doorbell())?)),
            LinkParts::Kernel(_) => Ok(Drive::Kernel(KernelFds::default())),
            LinkParts::Uio(bus) => Ok(Drive::Bus(Wake::new(bus.doorbell())?)),
            LinkParts::Polled => Err(OpenError::NoWakeFd {
                doorbell: "a polled doorbell (a flag word in shared memory)",
            }),
            _ => Err(OpenError::Unsupported {
                transport,
                reason: "a transport this version of intercore-tokio does not know",
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Link> {
        // A panic while the link was locked left it as consistent as the blocking calls
        // leave it (each ring change completes before the call returns).
        self.link.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Gives the link back (for blocking use). Rings left counted on an eventfd (the async
    /// side never reads them) are taken off, so the first blocking wait does not wake for
    /// them.
    pub fn into_inner(self) -> Link {
        let mut link = self.link.into_inner().unwrap_or_else(|e| e.into_inner());
        // Best effort: a failed read only costs the first blocking wait a spurious
        // wake-up.
        match link.async_parts() {
            LinkParts::Eventfd(bus) => {
                let _ = bus.doorbell().take_rings();
            }
            LinkParts::Uio(bus) => {
                let _ = bus.doorbell().take_rings();
            }
            _ => {}
        }
        link
    }

    /// Runs `f` on the link (non-blocking calls such as `max_payload`, `broken`; a
    /// blocking call made here, such as `open_data_plane`, blocks the runtime's thread).
    pub fn with_link<R>(&self, f: impl FnOnce(&mut Link) -> R) -> R {
        f(&mut self.lock())
    }

    /// Runs `attempt` (non-blocking) until it yields, sleeping as the [`Drive`] says; `ch`
    /// is the channel whose descriptor a kernel link sleeps on (`None`: a timer of
    /// `retry`, the kernel having no event for it).
    async fn run<T>(
        &self,
        ch: Option<&Channel>,
        retry: Duration,
        want_tx: impl Fn() -> bool,
        mut attempt: impl FnMut(&mut Link) -> Result<Option<T>>,
    ) -> Result<T> {
        match &self.drive {
            Drive::Bus(wake) => wake.run(&self.link, bus_rings(), want_tx, attempt).await,
            Drive::Kernel(fds) => {
                let fd = ch.map(|c| fds.get(c)).transpose()?;
                kernel::run(fd.as_deref(), retry, want_tx, || attempt(&mut self.lock())).await
            }
        }
    }

    /// The address of the service `name` the remote announced, waiting for it.
    pub async fn find_service(&self, name: &str) -> Result<u32> {
        self.run(
            None,
            SERVICE_RETRY,
            || false,
            |l| none_on_timeout(l.find_service(name, Some(Duration::ZERO))),
        )
        .await
    }

    /// [`Self::find_service`] then [`Self::open`].
    pub async fn connect(&self, name: &str) -> Result<Channel> {
        let remote = self.find_service(name).await?;
        self.open(name, remote)
    }

    /// [`Link::open`]: a channel to the remote address `remote` (on a kernel link, its
    /// endpoint device registered with the reactor).
    pub fn open(&self, name: &str, remote: u32) -> Result<Channel> {
        let mut link = self.lock();
        let ch = link.open(name, remote)?;
        if let Drive::Kernel(fds) = &self.drive {
            let LinkParts::Kernel(k) = link.async_parts() else {
                return Err(not_a_bus());
            };
            if let Err(e) = fds.register(k, &ch) {
                let _ = link.close(ch);
                return Err(e);
            }
        }
        Ok(ch)
    }

    /// [`Link::close`] (on a kernel link, its registration first).
    pub fn close(&self, ch: Channel) -> Result<()> {
        if let Drive::Kernel(fds) = &self.drive {
            fds.forget(&ch);
        }
        self.lock().close(ch)
    }

    /// [`Link::max_payload`].
    pub fn max_payload(&self) -> usize {
        self.lock().max_payload()
    }

    /// Sends `data` on `ch`, waiting for a transmit buffer. Cancellation-safe: it sent its
    /// message or nothing.
    pub async fn send(&self, ch: &Channel, data: &[u8]) -> Result<()> {
        self.run(
            None,
            SEND_RETRY,
            || true,
            |l| none_on_timeout(l.send(ch, data, Some(Duration::ZERO))),
        )
        .await
    }

    /// Receives one message for `ch` into `buf`: its length ([`Link::recv`] says what
    /// errors mean). Cancellation-safe.
    pub async fn recv(&self, ch: &Channel, buf: &mut [u8]) -> Result<usize> {
        self.recv_from(ch, buf).await.map(|(_, n)| n)
    }

    /// [`Self::recv`], also returning the sender's address (`None` on a kernel link:
    /// `/dev/rpmsgN` does not say).
    pub async fn recv_from(&self, ch: &Channel, buf: &mut [u8]) -> Result<(Option<u32>, usize)> {
        self.run(
            Some(ch),
            SEND_RETRY,
            || false,
            |l| none_on_timeout(l.recv_from(ch, buf, Some(Duration::ZERO))),
        )
        .await
    }

    /// The data plane's next completed buffer (`dp` from [`Link::open_data_plane`]),
    /// flushing staged submissions first: [`AsyncHost::next_completion`] on this link.
    ///
    /// [`AsyncHost::next_completion`]: crate::AsyncHost::next_completion
    pub async fn next_completion<C: CacheOps>(&self, dp: &mut DpHost<C>) -> Result<Completed<C>> {
        let tx = Cell::new(false);
        let ch = dp.channel();
        self.run(
            Some(&ch),
            SEND_RETRY,
            || tx.get(),
            |l| dataplane::try_complete(dp, l, &tx),
        )
        .await
    }

    /// [`AsyncHost::flush`] on this link.
    ///
    /// [`AsyncHost::flush`]: crate::AsyncHost::flush
    pub async fn flush<C: CacheOps>(&self, dp: &mut DpHost<C>) -> Result<()> {
        if dp.staged() == 0 {
            return Ok(());
        }
        self.run(None, SEND_RETRY, || true, |l| dataplane::try_flush(dp, l))
            .await
    }

    /// [`AsyncHost::submit`] on this link.
    ///
    /// [`AsyncHost::submit`]: crate::AsyncHost::submit
    pub async fn submit<C: CacheOps>(
        &self,
        dp: &mut DpHost<C>,
        buf: WritableBuf<C>,
        len: usize,
        op: u32,
    ) -> Result<Ticket> {
        if dp.staged() >= dp.batch_size() {
            self.flush(dp).await?;
        }
        let ticket = dp.stage(buf, len, op)?;
        if dp.staged() >= dp.batch_size() {
            // `buf` is staged whatever this look finds: an error here is the link's or the
            // data plane's sticky one, which the next flush or completion reports.
            let _ = dataplane::try_flush(dp, &mut *self.lock());
        }
        Ok(ticket)
    }

    /// The data plane's completions as a [`Stream`](futures_core::Stream) (see
    /// [`Completions`]).
    pub fn completions<'a, C: CacheOps + 'a>(
        &'a self,
        dp: &'a mut DpHost<C>,
    ) -> Completions<'a, C> {
        Completions::new(dp, move |dp| {
            Box::pin(async move {
                let r = self.next_completion(&mut *dp).await;
                (r, dp)
            })
        })
    }
}
