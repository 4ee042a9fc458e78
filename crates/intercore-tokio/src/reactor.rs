//! [`AsyncReactor`]: intercore-linux's [`Reactor`] driven by tokio — one task serving N
//! links × M endpoints with the reactor's own budgets, round robin and fail-alone.

use crate::{os, register};
use intercore::{Error, Result};
use intercore_linux::reactor::{EventfdLink, LinkId, Reactor, ReactorConfig, ReactorLink, Ready};
use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;
use tokio::io::unix::AsyncFd;

/// One task, many links, one wait: [`Reactor`] (intercore-linux) with its epoll descriptor
/// registered with tokio's reactor. [`Self::turn`] is the blocking [`Reactor::turn`] made
/// async: it sleeps on the epoll descriptor (never a thread, never a timer of tokio's),
/// then runs one blocking turn that does not wait — the same budgets per endpoint and per
/// link, the same round robin, a link's failure its own [`Ready::Down`], because it is the
/// same code. Links whose doorbell has no descriptor (polled doorbells) are served on the
/// reactor's tick, a timerfd in that epoll ([`ReactorConfig::tick`]): the runtime needs no
/// time driver for them.
///
/// The callback runs inside the turn, with the link lent (`&mut`), so it can answer at
/// once without blocking (`send_raw` with `Some(Duration::ZERO)`, or the flood-safe send
/// helper); work that must wait belongs in another task fed by the callback.
///
/// ```no_run
/// use intercore::rpmsg::HostConfig;
/// use intercore_linux::reactor::{ReactorConfig, Ready};
/// use intercore_tokio::AsyncReactor;
/// use std::time::Duration;
///
/// # async fn serve(socs: Vec<intercore_sim::Soc>) -> intercore::Result<()> {
/// // Inside a tokio runtime (I/O enabled). `socs`: simulated SoCs (intercore_sim::Soc); any
/// // HostBus with an eventfd, UIO or polled doorbell goes in the same way (one type a
/// // reactor; `AsyncReactor<intercore_board::Link>` takes board links of any transport).
/// let mut reactor = AsyncReactor::new(ReactorConfig::default().per_endpoint(4).per_link(32))?;
/// for soc in &socs {
///     let mut bus = soc.host_bus(HostConfig::default())?;
///     bus.create_endpoint("echo", Some(0x400))?;
///     reactor.add(bus)?;
/// }
/// loop {
///     // Serves every link that has something, within the budgets; `bus` is the message's link.
///     reactor
///         .turn(|link, bus, ready| match ready {
///             Ready::Message(m) => {
///                 // An echo: answered without waiting (dst is ours, src the sender).
///                 let _ = bus.post(m.dst(), m.src(), &m);
///             }
///             Ready::Lost { endpoint, count } => eprintln!("{link:?}/{endpoint}: {count} lost"),
///             Ready::Down(e) => eprintln!("{link:?} is down: {e}"), // the others carry on
///         })
///         .await?;
/// }
/// # }
/// ```
pub struct AsyncReactor<L: ReactorLink = EventfdLink> {
    reactor: Reactor<L>,
    /// A duplicate of the reactor's epoll descriptor (the same epoll), registered with
    /// tokio.
    fd: AsyncFd<OwnedFd>,
}

impl<L: ReactorLink> std::fmt::Debug for AsyncReactor<L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let r = &self.reactor;
        f.debug_struct("AsyncReactor")
            .field("links", &r.len())
            .field("config", &r.config())
            .finish_non_exhaustive()
    }
}

impl<L: ReactorLink> AsyncReactor<L> {
    /// An empty reactor; must run inside a tokio runtime with I/O enabled.
    pub fn new(cfg: ReactorConfig) -> Result<Self> {
        Self::from_reactor(Reactor::new(cfg)?)
    }

    /// Drives `reactor` (links already added stay) async.
    pub fn from_reactor(reactor: Reactor<L>) -> Result<Self> {
        tokio::runtime::Handle::try_current()
            .map_err(|_| Error::Config("AsyncReactor: not inside a tokio runtime"))?;
        let fd = register(reactor.as_fd()).map_err(os)?;
        Ok(Self { reactor, fd })
    }

    /// Gives the reactor back (for blocking use).
    pub fn into_inner(self) -> Reactor<L> {
        self.reactor
    }

    /// The reactor, for what [`AsyncReactor`] does not forward (its configuration, a
    /// link's failure).
    pub fn reactor(&self) -> &Reactor<L> {
        &self.reactor
    }

    /// [`Reactor::add`].
    pub fn add(&mut self, bus: L) -> Result<LinkId> {
        self.reactor.add(bus)
    }

    /// [`Reactor::link`].
    pub fn link(&mut self, id: LinkId) -> Option<&mut L> {
        self.reactor.link(id)
    }

    /// [`Reactor::remove`].
    pub fn remove(&mut self, id: LinkId) -> Option<L> {
        self.reactor.remove(id)
    }

    /// [`Reactor::down`].
    pub fn down(&self, id: LinkId) -> Option<Error> {
        self.reactor.down(id)
    }

    /// [`Reactor::len`].
    pub fn len(&self) -> usize {
        self.reactor.len()
    }

    /// [`Reactor::is_empty`].
    pub fn is_empty(&self) -> bool {
        self.reactor.is_empty()
    }

    /// Waits until a link has something, then serves every link that has, in round robin
    /// within the budgets, handing each message (or loss, or a link's failure) to `f`:
    /// [`Reactor::turn`] without its timeout (use `tokio::time::timeout`). Returns how many
    /// things `f` was handed (at least one). Cancellation-safe: a message is handed out
    /// only in the poll that returns, and a turn is never left half done (each runs
    /// without awaiting).
    pub async fn turn(
        &mut self,
        mut f: impl FnMut(LinkId, &mut L, Ready<L::Msg>),
    ) -> Result<usize> {
        loop {
            match self.reactor.turn(Some(Duration::ZERO), &mut f) {
                Err(Error::Timeout) => {}
                r => return r,
            }
            // Readiness is cleared before the next look (the loop's turn), so a ring
            // that comes after the clear is a new event for tokio and one that came
            // before it is seen by that turn: none is lost.
            let mut guard = self.fd.readable().await.map_err(os)?;
            guard.clear_ready();
        }
    }
}
