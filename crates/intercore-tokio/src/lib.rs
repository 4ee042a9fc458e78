//! Async send and receive for intercore's host role on Linux, with tokio.
//!
//! * [`AsyncLink`]: a board's live link (`intercore_board::Link`, from `Board::open`),
//!   woken by the link's own descriptors (the simulated SoC's eventfd, the kernel's
//!   endpoint devices, a UIO device); a link with a polled doorbell is refused and given
//!   back.
//! * [`AsyncHost`]: a [`HostBus`] with an eventfd or UIO doorbell (below).
//! * [`AsyncKernelRpmsg`]: the kernel's `/dev/rpmsg` character devices.
//! * [`AsyncReactor`]: one task serving many host links × endpoints (intercore-linux's
//!   reactor, its epoll descriptor registered with tokio): fair budgets, a link's failure
//!   its own; eventfd, UIO and polled doorbells.
//!
//! [`AsyncLink`] and [`AsyncHost`] also drive the data plane: `submit`/`flush` never block
//! the thread, and `completions` is a [`Stream`](futures_core::Stream) of completed buffers
//! ([`Completions`]).
//!
//! [`AsyncHost`] wraps a [`HostBus`] whose doorbell has a file descriptor (the eventfd
//! doorbells of `intercore-linux`, [`WakeFd`]) and registers that descriptor with tokio's
//! reactor ([`tokio::io::unix::AsyncFd`]): a task that finds nothing to receive asks the
//! remote to ring ([`HostBus::arm_notify`]) and sleeps until the descriptor is readable
//! (an edge: every ring is a write, and every write is a new event for the reactor).
//! Nothing polls on a timer; a doorbell without a descriptor (a polled doorbell) is refused
//! when the [`AsyncHost`] is built ([`OpenError::NoWakeFd`]).
//!
//! Every call takes `&self`, so many tasks on one thread (or on many) can use one bus: the
//! bus sits behind a mutex held only while a call looks at the rings, never across an
//! `.await`. A task that takes messages off the ring for other endpoints wakes the tasks
//! parked on them.
//!
//! **Cancellation.** Every receive is cancellation-safe: a message is taken off its
//! endpoint's queue only in the same poll that returns it, so dropping a receive future
//! (`tokio::select!`, `tokio::time::timeout`) loses nothing — the message stays queued for
//! the next receive. A send is also cancellation-safe: it either sent its message
//! (completed) or sent nothing. Timeouts are the runtime's (`tokio::time::timeout`).
//!
//! ```no_run
//! # async fn f(host: intercore_tokio::AsyncHost<std::sync::Arc<intercore_linux::memory::MemfdRegion>,
//! #     intercore_linux::notify::EventfdDoorbell>) -> intercore::Result<()> {
//! let ch = host.connect("rpmsg-echo").await?;
//! host.send(&ch, b"hello").await?;
//! let mut buf = [0u8; 496];
//! let n = host.recv(&ch, &mut buf).await?;
//! assert_eq!(&buf[..n], b"hello");
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]

mod dataplane;
mod kernel;
mod link;
mod reactor;
pub use dataplane::Completions;
pub use kernel::AsyncKernelRpmsg;
pub use link::{AsyncLink, NotAsync};
pub use reactor::AsyncReactor;

use intercore::dataplane::{Completed, DpHost, Ticket, WritableBuf};
use intercore::platform::{CacheOps, Doorbell, SharedMemory};
use intercore::pollbell::{PollDoorbell, PollPlatform};
use intercore::rpmsg::{Channel, HostBus, Msg};
use intercore::{Error, Result};
use intercore_linux::UioDoorbell;
use intercore_linux::notify::EventfdDoorbell;
use std::borrow::BorrowMut;
use std::cell::Cell;
use std::io;
use std::marker::PhantomData;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::sync::Notify;

/// A doorbell an event loop can wait on: the file descriptor that becomes readable when
/// the peer rings, if it has one.
pub trait WakeFd: Doorbell {
    /// The descriptor readable while a ring is pending; `None` for a doorbell that has
    /// none (it must be polled, which an async bus refuses to do).
    fn wake_fd(&self) -> Option<BorrowedFd<'_>>;
    /// Consumes the pending rings (when the bus goes back to blocking use).
    fn take_rings(&self) -> io::Result<()>;
    /// A descriptor readable once the peer is dead (a pidfd), if the doorbell watches one.
    fn peer_fd(&self) -> Option<BorrowedFd<'_>> {
        None
    }
    /// What to do, with the bus locked, after the descriptor woke a task and before the
    /// rings are looked at: nothing for an eventfd (its count is left for the next write
    /// to bump); a UIO device's interrupt must be taken and re-enabled, or no further ring
    /// arrives.
    fn on_wake(&self) -> Result<()> {
        Ok(())
    }
}

impl WakeFd for EventfdDoorbell {
    fn wake_fd(&self) -> Option<BorrowedFd<'_>> {
        Some(EventfdDoorbell::wake_fd(self))
    }
    fn take_rings(&self) -> io::Result<()> {
        EventfdDoorbell::take_rings(self).map(drop)
    }
    fn peer_fd(&self) -> Option<BorrowedFd<'_>> {
        EventfdDoorbell::peer_fd(self)
    }
}

/// A UIO device: readable while its interrupt count is new (`drivers/uio/uio.c`,
/// `uio_poll`); each wake-up takes the interrupt ([`UioDoorbell::take_interrupt`]: the
/// count read without blocking, the mailbox or IPI acknowledged, the interrupt re-enabled).
impl WakeFd for UioDoorbell {
    fn wake_fd(&self) -> Option<BorrowedFd<'_>> {
        Some(UioDoorbell::wake_fd(self))
    }
    fn take_rings(&self) -> io::Result<()> {
        self.take_interrupt().map(drop).map_err(|e| match e {
            Error::Os(errno) => io::Error::from_raw_os_error(errno),
            e => io::Error::other(e.to_string()),
        })
    }
    fn on_wake(&self) -> Result<()> {
        self.take_interrupt().map(drop)
    }
}

/// The polling doorbell (a flag word in shared memory) has no descriptor.
impl<M: SharedMemory, P: PollPlatform> WakeFd for PollDoorbell<M, P> {
    fn wake_fd(&self) -> Option<BorrowedFd<'_>> {
        None
    }
    fn take_rings(&self) -> io::Result<()> {
        Ok(())
    }
}

/// Why an [`AsyncHost`] could not be built.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The doorbell has no file descriptor to wait on.
    #[error(
        "the doorbell ({doorbell}) has no file descriptor for the runtime's reactor to wait on: \
         async needs an fd doorbell (eventfd, UIO); use the blocking API or an AsyncReactor (served on its tick) for a polled doorbell"
    )]
    NoWakeFd {
        /// The doorbell's type.
        doorbell: &'static str,
    },
    /// The link's transport has a descriptor, but async over it is not available.
    #[error("{transport}: {reason}")]
    Unsupported {
        /// The link's transport name.
        transport: String,
        /// Why, and what to do instead.
        reason: &'static str,
    },
    /// Registering the descriptor with the reactor failed (no tokio runtime with I/O
    /// enabled is current, or the system refused).
    #[error("registering the doorbell with the tokio reactor: {0}")]
    Reactor(#[from] io::Error),
}

/// A [`HostBus`] driven by tokio: `async` send and receive, woken by the doorbell's file
/// descriptor through the reactor. `B` is how it holds the bus: owned ([`AsyncHost::new`])
/// or borrowed ([`AsyncHost::borrowed`]: a bus that something else owns and lends as `&mut`).
pub struct AsyncHost<M: SharedMemory, D: WakeFd, B: BorrowMut<HostBus<M, D>> = HostBus<M, D>> {
    bus: Mutex<B>,
    _bus: PhantomData<fn() -> (M, D)>,
    wake: Wake,
}

/// What a task parked on a host bus sleeps on: the doorbell's descriptor, the peer's
/// pidfd, and the other tasks' filing (shared by [`AsyncHost`] and [`AsyncLink`]).
struct Wake {
    /// A duplicate of the doorbell's descriptor (same eventfd), registered for reading.
    bell: AsyncFd<OwnedFd>,
    /// The peer's pidfd, when the doorbell watches one.
    peer: Option<AsyncFd<OwnedFd>>,
    /// Wakes parked tasks when another task filed messages for them.
    filed: Notify,
}

/// How [`Wake::run`] reaches the host bus behind its mutex (`L`: the bus, or a link
/// holding one): take what arrived off the ring, and ask the remote to ring.
struct Rings<L> {
    /// [`HostBus::poll`]: how many messages were filed.
    poll: fn(&mut L) -> Result<usize>,
    /// [`HostBus::arm_notify`]: `true` if something arrived meanwhile (look again).
    arm: fn(&mut L, bool) -> Result<bool>,
    /// [`WakeFd::on_wake`] of the bus's doorbell, run after the descriptor woke us.
    woke: fn(&mut L) -> Result<()>,
}

impl Wake {
    /// Registers `bell`'s descriptors; refuses a doorbell without one.
    fn new<D: WakeFd>(bell: &D) -> std::result::Result<Self, OpenError> {
        // Registering outside a runtime would panic in tokio: say so instead.
        tokio::runtime::Handle::try_current().map_err(io::Error::other)?;
        let Some(fd) = bell.wake_fd() else {
            return Err(OpenError::NoWakeFd {
                doorbell: std::any::type_name::<D>(),
            });
        };
        Ok(Self {
            bell: register(fd)?,
            peer: bell.peer_fd().map(register).transpose()?,
            filed: Notify::new(),
        })
    }

    /// Runs `attempt` (non-blocking: `Ok(None)` for "not yet") on what `lock` guards until
    /// it yields, sleeping on the doorbell's descriptor between tries; `want_tx` (asked
    /// after each try) says whether the remote should also ring when it returns a transmit
    /// buffer. Cancellation-safe as long as `attempt` consumes nothing when it returns
    /// `Ok(None)` or an error.
    async fn run<L, T>(
        &self,
        lock: &Mutex<L>,
        rings: Rings<L>,
        want_tx: impl Fn() -> bool,
        mut attempt: impl FnMut(&mut L) -> Result<Option<T>>,
    ) -> Result<T> {
        let mut rang = false;
        loop {
            let filed = self.filed.notified();
            tokio::pin!(filed);
            // Registered before looking, so that a task filing for us after the look
            // still wakes us.
            filed.as_mut().enable();
            {
                // A panic while the bus was locked left it consistent as far as the rings
                // go (every ring change is complete before the call returns); the bus's
                // own sticky error says whether it is usable.
                let mut guard = lock.lock().unwrap_or_else(|e| e.into_inner());
                // No `.await` lies between the wake-up and here, so a cancelled call
                // cannot leave a UIO interrupt taken by the reactor but not re-enabled.
                if std::mem::take(&mut rang) {
                    (rings.woke)(&mut guard)?;
                }
                // Take what arrived off the ring first: if that filed messages, every
                // parked task looks again (their messages may be among them).
                if (rings.poll)(&mut guard)? > 0 {
                    self.filed.notify_waiters();
                }
                if let Some(v) = attempt(&mut guard)? {
                    return Ok(v);
                }
                if (rings.arm)(&mut guard, want_tx())? {
                    continue;
                }
            }
            rang = self.sleep(filed).await?;
        }
    }

    /// Sleeps until the doorbell rings (`true`), another task files messages (`false`), or
    /// the peer dies.
    async fn sleep(
        &self,
        filed: std::pin::Pin<&mut tokio::sync::futures::Notified<'_>>,
    ) -> Result<bool> {
        let peer_gone = async {
            match &self.peer {
                Some(p) => p.readable().await.map(drop),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            r = self.bell.readable() => {
                let mut guard = r.map_err(os)?;
                // The eventfd's count is not read here (a system call per wake-up saved):
                // every ring is a write, and every write wakes the eventfd's wait queue,
                // which is a new event for the reactor's edge-triggered epoll; readiness
                // that arrived after this guard was taken survives `clear_ready` (tokio
                // compares its tick). So no ring is lost; `into_inner` reads the count off.
                // A UIO device is readable until its count is read: the caller takes the
                // interrupt ([`WakeFd::on_wake`]) right after this returns; a new interrupt
                // after that read is a new wake-up of the device's queue, so a new event.
                guard.clear_ready();
                Ok(true)
            }
            () = filed => Ok(false),
            r = peer_gone => {
                r.map_err(os)?;
                Err(Error::PeerGone)
            }
        }
    }
}

fn os(e: io::Error) -> Error {
    Error::Os(e.raw_os_error().unwrap_or(libc_eio()))
}

const fn libc_eio() -> i32 {
    5
}

fn register(fd: BorrowedFd<'_>) -> io::Result<AsyncFd<OwnedFd>> {
    // `with_interest` is deprecated for `T`s whose descriptor may be closed or swapped
    // while registered (tokio#8587); an `OwnedFd` owned by the `AsyncFd` is neither, which
    // is exactly the contract of its `unsafe` replacement — this crate has no unsafe.
    #[allow(deprecated)]
    AsyncFd::with_interest(fd.try_clone_to_owned()?, Interest::READABLE)
}

impl<M: SharedMemory, D: WakeFd> AsyncHost<M, D> {
    /// Wraps `bus`; must run inside a tokio runtime with I/O enabled. Refuses a doorbell
    /// without a file descriptor ([`OpenError::NoWakeFd`]).
    pub fn new(bus: HostBus<M, D>) -> std::result::Result<Self, OpenError> {
        Self::wrap(bus)
    }

    /// Gives the bus back (for blocking use).
    /// Rings left counted on the eventfd (the async side never reads them) are taken off,
    /// so the bus's first blocking wait does not wake for them.
    pub fn into_inner(self) -> HostBus<M, D> {
        let bus = self.bus.into_inner().unwrap_or_else(|e| e.into_inner());
        // Best effort: a failed read only costs the first blocking wait a spurious wake-up.
        let _ = bus.doorbell().take_rings();
        bus
    }
}

impl<'a, M: SharedMemory, D: WakeFd> AsyncHost<M, D, &'a mut HostBus<M, D>> {
    /// Wraps a borrowed bus (one something else owns and lends as `&mut`), as
    /// [`AsyncHost::new`]. Once it is dropped the bus is the lender's again; rings counted
    /// on the eventfd meanwhile cost its first blocking wait one spurious wake-up.
    pub fn borrowed(bus: &'a mut HostBus<M, D>) -> std::result::Result<Self, OpenError> {
        Self::wrap(bus)
    }
}

impl<M: SharedMemory, D: WakeFd, B: BorrowMut<HostBus<M, D>>> AsyncHost<M, D, B> {
    fn wrap(bus: B) -> std::result::Result<Self, OpenError> {
        let bus_ref: &HostBus<M, D> = bus.borrow();
        let wake = Wake::new(bus_ref.doorbell())?;
        Ok(Self {
            bus: Mutex::new(bus),
            _bus: PhantomData,
            wake,
        })
    }

    /// Runs `f` on the bus (non-blocking calls: `stats`, `services`, `open`, ...). A
    /// blocking call made here blocks the runtime's thread.
    pub fn with_bus<R>(&self, f: impl FnOnce(&mut HostBus<M, D>) -> R) -> R {
        let mut guard = self.lock();
        f((*guard).borrow_mut())
    }

    fn lock(&self) -> MutexGuard<'_, B> {
        // A panic while the bus was locked left it consistent as far as the rings go
        // (every ring change is complete before the call returns); the bus's own sticky
        // error says whether it is usable.
        self.bus.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// [`Wake::run`] on this host's bus.
    async fn run<T>(
        &self,
        want_tx: impl Fn() -> bool,
        attempt: impl FnMut(&mut B) -> Result<Option<T>>,
    ) -> Result<T> {
        let rings = Rings {
            poll: |b: &mut B| b.borrow_mut().poll(),
            arm: |b: &mut B, tx| b.borrow_mut().arm_notify(tx),
            woke: |b: &mut B| b.borrow_mut().doorbell().on_wake(),
        };
        self.wake.run(&self.bus, rings, want_tx, attempt).await
    }

    /// The address of the service `name` the remote announced, waiting for it.
    pub async fn find_service(&self, name: &str) -> Result<u32> {
        self.run(|| false, |b| Ok(b.borrow_mut().service(name)))
            .await
    }

    /// [`Self::find_service`] then [`HostBus::open`].
    pub async fn connect(&self, name: &str) -> Result<Channel> {
        let remote = self.find_service(name).await?;
        self.with_bus(|bus| bus.open(name, remote))
    }

    /// [`HostBus::open`]: a local endpoint talking to the remote address `remote`.
    pub fn open(&self, name: &str, remote: u32) -> Result<Channel> {
        self.with_bus(|bus| bus.open(name, remote))
    }

    /// [`HostBus::close`].
    pub fn close(&self, ch: Channel) -> Result<()> {
        self.with_bus(|bus| bus.close(ch))
    }

    /// Sends `data` on `ch`, waiting for a transmit buffer.
    pub async fn send(&self, ch: &Channel, data: &[u8]) -> Result<()> {
        self.run(
            || true,
            |b| none_on_timeout(b.borrow_mut().send(ch, data, Some(Duration::ZERO))),
        )
        .await
    }
    /// Sends on `ch` a message written in place by `fill` (zero copy), waiting for a
    /// transmit buffer: [`HostBus::send_with`].
    pub async fn send_with(
        &self,
        ch: &Channel,
        fill: impl FnOnce(&mut [u8]) -> usize,
    ) -> Result<()> {
        let mut fill = Some(fill);
        self.run(
            || true,
            |b| {
                let bus: &mut HostBus<M, D> = b.borrow_mut();
                let Some(buf) = none_on_timeout(bus.tx_buf(Some(Duration::ZERO)))? else {
                    return Ok(None);
                };
                let mut buf = buf;
                let f = fill
                    .take()
                    .ok_or(Error::Config("send_with: fill already used"))?;
                let len = f(&mut buf).min(buf.len());
                bus.send_buf(ch, buf, len).map(Some)
            },
        )
        .await
    }

    /// Receives one message for `ch` into `buf`: its length ([`HostBus::recv`] says what
    /// errors mean). Cancellation-safe.
    pub async fn recv(&self, ch: &Channel, buf: &mut [u8]) -> Result<usize> {
        self.recv_from(ch, buf).await.map(|(_, n)| n)
    }

    /// [`Self::recv`], also returning the sender's address.
    pub async fn recv_from(&self, ch: &Channel, buf: &mut [u8]) -> Result<(Option<u32>, usize)> {
        self.run(
            || false,
            |b| none_on_timeout(b.borrow_mut().recv_from(ch, buf, Some(Duration::ZERO))),
        )
        .await
    }
    /// Receives one message for `ch` and hands it to `f` in place (zero copy):
    /// [`HostBus::recv_with`]. Cancellation-safe (`f` runs only in the poll that returns).
    pub async fn recv_with<R>(&self, ch: &Channel, f: impl FnOnce(Msg<'_>) -> R) -> Result<R> {
        let mut f = Some(f);
        self.run(
            || false,
            |b| {
                let bus: &mut HostBus<M, D> = b.borrow_mut();
                let Some(buf) = none_on_timeout(bus.recv_buf(ch, Some(Duration::ZERO)))? else {
                    return Ok(None);
                };
                let f = f.take().ok_or(Error::Config("recv_with: f already used"))?;
                let r = f(Msg {
                    src: buf.src(),
                    dst: buf.dst(),
                    payload: &buf,
                });
                bus.release(buf)?;
                Ok(Some(r))
            },
        )
        .await
    }

    /// The data plane's next completed buffer (flushing staged submissions first), waiting
    /// for the remote: the async form of [`DpHost::wait_complete`]. `NotReady` when no
    /// buffer is in flight. Cancellation-safe: a completion taken off the ring while the
    /// future is dropped stays queued in `dp`. [`Self::completions`] is the same as a
    /// [`Stream`](futures_core::Stream).
    pub async fn next_completion<C: CacheOps>(&self, dp: &mut DpHost<C>) -> Result<Completed<C>> {
        let tx = Cell::new(false);
        self.run(
            || tx.get(),
            |b| dataplane::try_complete(dp, b.borrow_mut(), &tx),
        )
        .await
    }

    /// Sends the data plane's staged submissions ([`DpHost::flush`]), waiting for a
    /// transmit buffer while the remote holds them all. Cancellation-safe: the staged
    /// entries went out together, or stay staged.
    pub async fn flush<C: CacheOps>(&self, dp: &mut DpHost<C>) -> Result<()> {
        if dp.staged() == 0 {
            return Ok(());
        }
        self.run(|| true, |b| dataplane::try_flush(dp, b.borrow_mut()))
            .await
    }

    /// Hands `buf` to the remote for operation `op` on its first `len` bytes: the async
    /// form of [`DpHost::submit`]. A full batch already staged is flushed first (waiting
    /// for a transmit buffer), then `buf` is staged; a batch now due
    /// ([`DpHost::batch_due`]: full, or [`FLUSH_BYTES`](intercore::dataplane::FLUSH_BYTES) of work) goes out at once if a
    /// transmit buffer is free, else with the next [`Self::flush`] or
    /// [`Self::next_completion`]. Cancellation-safe: dropped while waiting, `buf` was not
    /// submitted (it returns to the pool).
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
        if dp.batch_due() {
            // `buf` is staged whatever this look finds: an error here is the bus's or the
            // data plane's sticky one, which the next flush or completion reports.
            let _ = self.with_bus(|bus| dataplane::try_flush(dp, bus));
        }
        Ok(ticket)
    }

    /// The data plane's completions as a [`Stream`](futures_core::Stream) (see
    /// [`Completions`]): [`Self::next_completion`] until nothing is in flight.
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

impl<M: SharedMemory, D: WakeFd, B: BorrowMut<HostBus<M, D>>> core::fmt::Debug
    for AsyncHost<M, D, B>
{
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("AsyncHost")
            .field("bell", &self.wake.bell)
            .field("peer", &self.wake.peer)
            .finish_non_exhaustive()
    }
}

/// A non-blocking look's "nothing yet" (`Timeout` under the `Some(ZERO)` convention) as
/// `None`.
fn none_on_timeout<T>(r: Result<T>) -> Result<Option<T>> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(Error::Timeout) => Ok(None),
        Err(e) => Err(e),
    }
}
