//! One thread, many links, one wait: a [`Reactor`] serves N links × M endpoints through
//! one `epoll`. A link is anything [`ReactorLink`]: a [`HostBus`] (below), or a board's
//! `intercore_board::Link` of any transport — simulated, QEMU, userspace or the kernel's
//! `/dev/rpmsg` devices (one epoll over its endpoint devices) — so the links of every core a
//! board opened share one reactor. For a host bus the wait is over the doorbell
//! descriptors — each link's wake descriptor (an eventfd, a UIO device) and, when its
//! doorbell watches one, the remote's pidfd — whatever the doorbell, through
//! [`ReactorDoorbell`]:
//!
//! | doorbell | what the wait sleeps on | after a wake-up |
//! |---|---|---|
//! | [`EventfdDoorbell`] (simulated SoC) | its eventfd; the remote's pidfd | the count read |
//! | [`UioDoorbell`] (mailbox, IPI) | the UIO device | the interrupt taken, acknowledged and re-enabled ([`UioDoorbell::take_interrupt`]) |
//! | [`PollDoorbell`], [`PolledRings`] (QEMU, `doorbell = "poll"`) | the reactor's tick, [`ReactorConfig::tick`]; the QEMU process's pidfd | the link's rings looked at |
//!
//! A doorbell without a descriptor is served on a tick rather than refused: a periodic
//! timerfd in the same epoll, armed only while such a link is up, makes every wait end
//! within one tick, and each tick looks at those links' rings (and asks their platform
//! whether the peer lives). The tick bounds their latency (default 1 ms) and costs one
//! wake-up per tick while they are present; links with descriptors are unaffected, and a
//! reactor with none of them never ticks. The async wrapper (`intercore_tokio::AsyncReactor`)
//! sleeps on the same epoll descriptor, so the tick serves it too.
//!
//! Each [`Reactor::turn`] waits until a link has something, then serves the links in
//! round robin (the turn starts one link further each time), each link at most
//! [`ReactorConfig::per_link`] messages, taken from its endpoints in the order they got
//! mail, at most [`ReactorConfig::per_endpoint`] from one endpoint before the next has its
//! turn ([`HostBus::next_ready`]): an endpoint or a link that floods delays another's
//! message by at most one budget, never starves it. What one link does cannot stop the
//! others: a remote that dies (its pidfd hangs up) or breaks the protocol is reported as
//! [`Ready::Down`] for that link alone, once; the link is then no longer waited on, and
//! the rest keep running.
//!
//! ```no_run
//! # use intercore_linux::reactor::{Reactor, ReactorConfig, Ready};
//! # fn buses() -> Vec<intercore::rpmsg::HostBus<std::sync::Arc<intercore_linux::MemfdRegion>, intercore_linux::EventfdDoorbell>> { vec![] }
//! let mut r = Reactor::new(ReactorConfig::default())?;
//! for bus in buses() {
//!     r.add(bus)?;
//! }
//! loop {
//!     r.turn(None, |link, bus, ready| match ready {
//!         // `m.dst()` is the endpoint, `m.src()` the sender: answer on the same link,
//!         // without waiting (past the endpoint's credit `post` parks it; a later turn sends it).
//!         Ready::Message(m) => {
//!             if let Err(e) = bus.post(m.dst(), m.src(), &m) {
//!                 eprintln!("{link:?}: answer not sent: {e}");
//!             }
//!         }
//!         Ready::Lost { endpoint, count } => eprintln!("{link:?}/{endpoint}: {count} lost"),
//!         Ready::Down(e) => eprintln!("{link:?} is down: {e}"),
//!     })?;
//! }
//! # Ok::<(), intercore::Error>(())
//! ```

use crate::sys::{Epoll, TimerFd};
use crate::{EventfdDoorbell, MemfdRegion, UioDoorbell};
use intercore::pollbell::{PollDoorbell, PollPlatform, PolledRings};
use intercore::rpmsg::{HostBus, RxBuf};
use intercore::{Doorbell, Error, Result, SharedMemory};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::sync::Arc;
use std::time::Duration;

/// A host link the reactor serves (`D`: its doorbell, the simulated SoC's eventfd pair
/// unless said otherwise).
pub type Link<M, D = EventfdDoorbell> = HostBus<M, D>;

/// The simulated SoC's host link, the reactor's default.
pub type EventfdLink = HostBus<Arc<MemfdRegion>, EventfdDoorbell>;

/// What the reactor needs of a link: the descriptors to wait on, and a way to take its
/// messages one endpoint at a time without blocking. Implemented by every [`HostBus`]
/// whose doorbell is a [`ReactorDoorbell`] (messages handed in place, [`RxBuf`]) and by
/// `intercore_board::Link`, whatever the board's transport (the kernel's `/dev/rpmsg`
/// devices included), so one reactor serves links of different kinds.
pub trait ReactorLink {
    /// How a message is handed to the callback.
    type Msg;
    /// The descriptor that becomes readable when the link has something; `None`: it has
    /// none and is looked at on [`ReactorConfig::tick`].
    fn wake_fd(&self) -> Option<BorrowedFd<'_>>;
    /// A descriptor readable once the peer is dead (a pidfd), if the link watches one.
    fn peer_fd(&self) -> Option<BorrowedFd<'_>> {
        None
    }
    /// Called, without blocking, after [`Self::wake_fd`] was readable
    /// ([`ReactorDoorbell::take_wake`]). An error fails this link alone.
    fn take_wake(&mut self) -> Result<()>;
    /// Asked on each tick for links served on it: `Err` once the peer is known dead.
    fn check_peer(&mut self) -> Result<()> {
        Ok(())
    }
    /// Whether the link must be looked at on the tick now: it has no wake descriptor, or
    /// it holds sends that only a later look can move (read again after every serve).
    fn needs_tick(&self) -> bool {
        self.wake_fd().is_none()
    }
    /// Why the link is dead, if it is (sticky).
    fn link_error(&self) -> Option<Error>;
    /// Asks the link to wake the reactor for its next message; `Ok(true)`: something
    /// arrived meanwhile, serve it without sleeping ([`HostBus::arm_notify`]).
    fn arm(&mut self) -> Result<bool>;
    /// Takes in what arrived (and sends what was parked), without blocking.
    fn poll_link(&mut self) -> Result<()>;
    /// The next endpoint with a message, round robin ([`HostBus::next_ready`]).
    fn next_endpoint(&mut self) -> Option<u32>;
    /// One message for endpoint `ep`: `WouldBlock` when it has none, `Lost` when
    /// messages for it were dropped ([`HostBus::try_recv_buf`]).
    fn take(&mut self, ep: u32) -> Result<Self::Msg>;
    /// Sends without waiting: `Ok(true)` sent, `Ok(false)` parked for a later turn,
    /// `Exhausted` when the parking queue is full ([`HostBus::post`]).
    fn post_msg(&mut self, src: u32, dst: u32, data: &[u8]) -> Result<bool>;
}

impl<M: SharedMemory, D: ReactorDoorbell> ReactorLink for HostBus<M, D> {
    type Msg = RxBuf<M>;
    fn wake_fd(&self) -> Option<BorrowedFd<'_>> {
        self.doorbell().wake_fd()
    }
    fn peer_fd(&self) -> Option<BorrowedFd<'_>> {
        self.doorbell().peer_fd()
    }
    fn take_wake(&mut self) -> Result<()> {
        self.doorbell().take_wake()
    }
    fn check_peer(&mut self) -> Result<()> {
        self.doorbell().check_peer()
    }
    fn link_error(&self) -> Option<Error> {
        self.broken()
    }
    fn arm(&mut self) -> Result<bool> {
        self.arm_notify(false)
    }
    fn poll_link(&mut self) -> Result<()> {
        self.poll().map(drop)
    }
    fn next_endpoint(&mut self) -> Option<u32> {
        self.next_ready()
    }
    fn take(&mut self, ep: u32) -> Result<RxBuf<M>> {
        self.try_recv_buf(ep)
    }
    fn post_msg(&mut self, src: u32, dst: u32, data: &[u8]) -> Result<bool> {
        self.post(src, dst, data)
    }
}

/// A doorbell the reactor can wait on: the descriptor a ring makes readable (or none: the
/// link is served on the reactor's tick), the peer's death as a descriptor if the doorbell
/// watches one, and what a wake-up must do before the rings are looked at.
pub trait ReactorDoorbell: Doorbell {
    /// The descriptor that becomes readable when the peer rings; `None`: the doorbell has
    /// none (it is polled), and the link is served on [`ReactorConfig::tick`].
    fn wake_fd(&self) -> Option<BorrowedFd<'_>>;
    /// A descriptor readable once the peer is dead (a pidfd), if the doorbell watches one.
    fn peer_fd(&self) -> Option<BorrowedFd<'_>> {
        None
    }
    /// Called, without blocking, after [`Self::wake_fd`] was readable: consumes the ring so
    /// that the descriptor is quiet until the next one (an eventfd's count read; a UIO
    /// device's interrupt taken and re-enabled, or no further ring arrives). An error
    /// fails this link alone.
    fn take_wake(&self) -> Result<()>;
}

fn os(e: std::io::Error) -> Error {
    Error::Os(e.raw_os_error().unwrap_or(libc::EIO))
}

impl ReactorDoorbell for EventfdDoorbell {
    fn wake_fd(&self) -> Option<BorrowedFd<'_>> {
        Some(EventfdDoorbell::wake_fd(self))
    }
    fn peer_fd(&self) -> Option<BorrowedFd<'_>> {
        EventfdDoorbell::peer_fd(self)
    }
    fn take_wake(&self) -> Result<()> {
        self.take_rings().map(drop).map_err(os)
    }
}

/// Readable while the UIO interrupt count is new (`drivers/uio/uio.c`, `uio_poll`).
impl ReactorDoorbell for UioDoorbell {
    fn wake_fd(&self) -> Option<BorrowedFd<'_>> {
        Some(UioDoorbell::wake_fd(self))
    }
    fn take_wake(&self) -> Result<()> {
        self.take_interrupt().map(drop)
    }
}

/// Counters in shared memory: no descriptor, served on the tick.
impl<Mem: SharedMemory, P: PollPlatform> ReactorDoorbell for PollDoorbell<Mem, P> {
    fn wake_fd(&self) -> Option<BorrowedFd<'_>> {
        None
    }
    fn take_wake(&self) -> Result<()> {
        Ok(())
    }
}

/// No doorbell at all, the rings polled: served on the tick.
impl<P: PollPlatform> ReactorDoorbell for PolledRings<P> {
    fn wake_fd(&self) -> Option<BorrowedFd<'_>> {
        None
    }
    fn take_wake(&self) -> Result<()> {
        Ok(())
    }
}

/// Which link: the index [`Reactor::add`] returned (not reused while the reactor lives).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LinkId(pub usize);

/// The budgets of one turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReactorConfig {
    /// Messages taken from one endpoint before the next endpoint of its link has its turn
    /// (default 4).
    pub per_endpoint: usize,
    /// Messages taken from one link in one turn before the next link has its turn
    /// (default 32).
    pub per_link: usize,
    /// How often links whose doorbell has no descriptor (polled doorbells) are looked at
    /// while nothing else wakes the reactor: their latency bound (default 1 ms). The tick
    /// runs only while such a link is up.
    pub tick: Duration,
}

impl Default for ReactorConfig {
    fn default() -> Self {
        Self {
            per_endpoint: 4,
            per_link: 32,
            tick: Duration::from_millis(1),
        }
    }
}

impl ReactorConfig {
    /// Sets [`Self::per_endpoint`] (at least 1).
    pub fn per_endpoint(mut self, n: usize) -> Self {
        self.per_endpoint = n.max(1);
        self
    }
    /// Sets [`Self::per_link`] (at least 1).
    pub fn per_link(mut self, n: usize) -> Self {
        self.per_link = n.max(1);
        self
    }
    /// Sets [`Self::tick`] (at least 1 µs).
    pub fn tick(mut self, t: Duration) -> Self {
        self.tick = t.max(Duration::from_micros(1));
        self
    }
}

/// What a turn hands the callback for a link.
pub enum Ready<T> {
    /// A message ([`ReactorLink::Msg`]; a host bus's [`RxBuf`], in place: `dst()` is the
    /// local endpoint, `src()` the sender, its buffer goes back to the remote when it is
    /// dropped).
    Message(T),
    /// Messages for `endpoint` were dropped (its queue was full,
    /// `HostConfig::max_copied_per_endpoint`); the next message is the one after them.
    Lost {
        /// The local endpoint.
        endpoint: u32,
        /// How many.
        count: u64,
    },
    /// The link is dead: `PeerGone` (the remote's process exited), a protocol error, or
    /// what its doorbell reported. Reported once; the link stays in the reactor (for
    /// [`Reactor::remove`] and a reconnect) but is no longer waited on or served.
    Down(Error),
}

impl<T: std::fmt::Debug> std::fmt::Debug for Ready<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ready::Message(m) => write!(f, "Message({m:?})"),
            Ready::Lost { endpoint, count } => write!(f, "Lost({endpoint}, {count})"),
            Ready::Down(e) => write!(f, "Down({e:?})"),
        }
    }
}

struct Slot<L> {
    bus: L,
    /// It needs the tick ([`ReactorLink::needs_tick`], as last read).
    polled: bool,
    /// Why it is down (reported already), if it is.
    down: Option<Error>,
    /// Its doorbell rang or its last turn ran out of budget: look at it this turn.
    look: bool,
}

/// Tokens: link index × 2, + 1 for the pidfd; [`TICK`] for the tick.
const PIDFD: u64 = 1;
/// The tick's token (no link index reaches it).
const TICK: u64 = u64::MAX;
/// Rounds a turn whose time is up still runs while links look busy or events come but
/// nothing is handed out (a ring with only what the bus consumes itself): bounded, so a
/// zero-timeout turn ends.
const LATE_ROUNDS: u32 = 4;

/// One wait over many host links; see the [module documentation](self).
pub struct Reactor<L: ReactorLink = EventfdLink> {
    epoll: Epoll,
    links: Vec<Option<Slot<L>>>,
    cfg: ReactorConfig,
    /// The link the next turn starts with.
    cursor: usize,
    events: Vec<u64>,
    /// The tick (created with the first polled link, in the epoll from then on) and
    /// whether it is armed (exactly while a polled link is up).
    timer: Option<(TimerFd, bool)>,
}

fn fds<L: ReactorLink>(bus: &L) -> [Option<BorrowedFd<'_>>; 2] {
    [bus.wake_fd(), bus.peer_fd()]
}

impl<L: ReactorLink> Reactor<L> {
    /// An empty reactor.
    pub fn new(cfg: ReactorConfig) -> Result<Self> {
        Ok(Self {
            epoll: Epoll::new().map_err(os)?,
            links: Vec::new(),
            cfg: cfg
                .per_endpoint(cfg.per_endpoint)
                .per_link(cfg.per_link)
                .tick(cfg.tick),
            cursor: 0,
            events: vec![0; 64],
            timer: None,
        })
    }

    /// The budgets and tick in force.
    pub fn config(&self) -> ReactorConfig {
        self.cfg
    }

    /// Whether the tick runs (a link without a wake descriptor is up).
    pub fn ticking(&self) -> bool {
        self.timer.as_ref().is_some_and(|t| t.1)
    }

    /// Arms the tick while a polled link is up, disarms it when none is.
    fn retick(&mut self) -> Result<()> {
        let want = self
            .links
            .iter()
            .flatten()
            .any(|s| s.polled && s.down.is_none());
        if self.ticking() == want {
            return Ok(());
        }
        if self.timer.is_none() {
            let t = TimerFd::new().map_err(os)?;
            self.epoll.add(t.as_fd(), TICK).map_err(os)?;
            self.timer = Some((t, false));
        }
        if let Some((t, armed)) = self.timer.as_mut() {
            t.set_period(want.then_some(self.cfg.tick)).map_err(os)?;
            *armed = want;
        }
        Ok(())
    }

    /// Reads link `i`'s [`ReactorLink::needs_tick`] again, arming or disarming the tick.
    fn repolled(&mut self, i: usize) -> Result<()> {
        let Some(slot) = self.links.get_mut(i).and_then(Option::as_mut) else {
            return Ok(());
        };
        let now = slot.bus.needs_tick();
        if slot.polled == now {
            return Ok(());
        }
        slot.polled = now;
        self.retick()
    }

    /// Adds `bus`: its doorbell's descriptors join the wait (a doorbell without one starts
    /// the tick). A link that is dead already is refused with its error.
    pub fn add(&mut self, bus: L) -> Result<LinkId> {
        if let Some(e) = bus.link_error() {
            return Err(e);
        }
        let id = self.links.len();
        let token = id as u64 * 2;
        let [bell, peer] = fds(&bus);
        if let Some(fd) = bell {
            self.epoll.add(fd, token).map_err(os)?;
        }
        if let Some(fd) = peer {
            if let Err(e) = self.epoll.add(fd, token + PIDFD) {
                if let Some(b) = bell {
                    let _ = self.epoll.delete(b);
                }
                return Err(os(e));
            }
        }
        let polled = bus.needs_tick();
        self.links.push(Some(Slot {
            bus,
            polled,
            down: None,
            look: true,
        }));
        if polled {
            if let Err(e) = self.retick() {
                if let Some(slot) = self.links.pop().flatten() {
                    self.unwatch(&slot.bus);
                }
                return Err(e);
            }
        }
        Ok(LinkId(id))
    }

    /// Link `id`, to create endpoints on, send, or read its statistics.
    pub fn link(&mut self, id: LinkId) -> Option<&mut L> {
        Some(&mut self.links.get_mut(id.0)?.as_mut()?.bus)
    }

    /// Why link `id` is down, if it is.
    pub fn down(&self, id: LinkId) -> Option<Error> {
        self.links.get(id.0)?.as_ref()?.down
    }

    /// Links in the reactor (up or down).
    pub fn len(&self) -> usize {
        self.links.iter().flatten().count()
    }

    /// Whether no link is in the reactor.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Takes link `id` out of the reactor (its descriptors leave the wait).
    pub fn remove(&mut self, id: LinkId) -> Option<L> {
        let slot = self.links.get_mut(id.0)?.take()?;
        if slot.down.is_none() {
            self.unwatch(&slot.bus);
        }
        // Disarming can only fail on a bad descriptor: the tick then wakes for nothing.
        let _ = self.retick();
        Some(slot.bus)
    }

    fn unwatch(&self, bus: &L) {
        for fd in fds(bus).into_iter().flatten() {
            // A descriptor that was never added (or is gone) has nothing to remove.
            let _ = self.epoll.delete(fd);
        }
    }

    /// Marks `i` down with `e` and reports it.
    fn fail(&mut self, i: usize, e: Error, f: &mut impl FnMut(LinkId, &mut L, Ready<L::Msg>)) {
        let Some(slot) = self.links[i].as_mut() else {
            return;
        };
        if slot.down.is_some() {
            return;
        }
        slot.down = Some(e);
        let Some(slot) = self.links[i].as_ref() else {
            return;
        };
        self.unwatch(&slot.bus);
        if slot.polled && self.ticking() {
            // The tick stops with the last polled link (a failure to disarm only costs
            // wake-ups for nothing).
            let _ = self.retick();
        }
        if let Some(slot) = self.links[i].as_mut() {
            f(LinkId(i), &mut slot.bus, Ready::Down(e));
        }
    }

    /// On a tick: every polled link up is looked at, and its platform asked whether the
    /// peer lives (a dead one fails that link). How many failed.
    fn on_tick(&mut self, f: &mut impl FnMut(LinkId, &mut L, Ready<L::Msg>)) -> usize {
        if let Some((t, _)) = self.timer.as_ref() {
            // Read, so that the tick is quiet until the next period. A failed read leaves
            // it readable: the next wait returns at once, a look at nothing, no more.
            let _ = t.take();
        }
        let mut failed = 0;
        for i in 0..self.links.len() {
            let Some(slot) = self.links[i].as_mut() else {
                continue;
            };
            if !slot.polled || slot.down.is_some() {
                continue;
            }
            slot.look = true;
            if let Err(e) = slot.bus.check_peer() {
                // What it left on the rings was sent: served first.
                self.serve(i, usize::MAX, f);
                self.fail(i, e, f);
                failed += 1;
            }
        }
        failed
    }

    /// Waits at most `timeout` (`None`: for ever) until a link has something, then serves
    /// every link that has, in round robin within the budgets, handing each message (or
    /// loss, or a link's failure) to `f` with the link it came on. Returns how many things
    /// `f` was handed; `Timeout` when the time passed with none. Errors of one link are
    /// that link's [`Ready::Down`], never this call's: the call itself fails only when the
    /// wait does (`Os`). A turn that returns `Timeout` has asked every link to ring and
    /// left no event pending, so a wait on the reactor's descriptor ([`AsFd`]) afterwards
    /// wakes for the next ring (what `intercore_tokio::AsyncReactor` does with
    /// `Some(Duration::ZERO)`).
    pub fn turn(
        &mut self,
        timeout: Option<Duration>,
        mut f: impl FnMut(LinkId, &mut L, Ready<L::Msg>),
    ) -> Result<usize> {
        let deadline = timeout.map(|t| crate::monotonic_now() + t);
        // Rounds served past the deadline because a link still looked busy.
        let mut late = 0u32;
        loop {
            // Links with work left (or whose remote raced the request to ring) are served
            // without sleeping; the others are asked to ring for their next message.
            let mut busy = false;
            for i in 0..self.links.len() {
                let Some(slot) = self.links[i].as_mut() else {
                    continue;
                };
                if slot.down.is_some() {
                    continue;
                }
                if slot.look {
                    busy = true;
                    continue;
                }
                match slot.bus.arm() {
                    Ok(true) => {
                        slot.look = true;
                        busy = true;
                    }
                    Ok(false) => {}
                    Err(e) => {
                        self.fail(i, e, &mut f);
                        return Ok(1);
                    }
                }
            }
            let expired = deadline.is_some_and(|d| crate::monotonic_now() >= d);
            let wait = if busy || expired {
                Some(Duration::ZERO)
            } else {
                deadline.map(|d| d.saturating_sub(crate::monotonic_now()))
            };
            let n = self.epoll.wait(&mut self.events, wait).map_err(os)?;
            let mut handed = 0;
            for k in 0..n {
                let token = self.events[k];
                if token == TICK {
                    handed += self.on_tick(&mut f);
                    continue;
                }
                let i = (token / 2) as usize;
                let Some(slot) = self.links.get_mut(i).and_then(Option::as_mut) else {
                    continue;
                };
                if slot.down.is_some() {
                    continue;
                }
                slot.look = true;
                if token & PIDFD != 0 {
                    // Its process exited: what it left on the rings is served first (it
                    // was sent), then the link is reported down.
                    handed += self.serve(i, usize::MAX, &mut f);
                    self.fail(i, Error::PeerGone, &mut f);
                    handed += 1;
                } else if let Err(e) = slot.bus.take_wake() {
                    self.fail(i, e, &mut f);
                    handed += 1;
                }
            }
            let len = self.links.len();
            for k in 0..len {
                let i = (self.cursor + k) % len;
                handed += self.serve(i, self.cfg.per_link, &mut f);
            }
            if len > 0 {
                self.cursor = (self.cursor + 1) % len;
            }
            if handed > 0 {
                return Ok(handed);
            }
            // Time is up once a round found every link asked to ring, nothing on the
            // epoll and nothing to hand out: a turn that times out leaves no event
            // pending and each link armed, so a wait on the epoll descriptor afterwards
            // (the async wrapper's) wakes for the next ring.
            if expired {
                if (!busy && n == 0) || late >= LATE_ROUNDS {
                    return Err(Error::Timeout);
                }
                late += 1;
            }
        }
    }

    /// Serves link `i` if it is to be looked at: polls its ring once, then hands out at
    /// most `budget` messages, `per_endpoint` from each endpoint in turn.
    fn serve(
        &mut self,
        i: usize,
        budget: usize,
        f: &mut impl FnMut(LinkId, &mut L, Ready<L::Msg>),
    ) -> usize {
        let per_ep = self.cfg.per_endpoint;
        let Some(slot) = self.links[i].as_mut() else {
            return 0;
        };
        if slot.down.is_some() || !slot.look {
            return 0;
        }
        slot.look = false;
        if let Err(e) = slot.bus.poll_link() {
            self.fail(i, e, f);
            return 1;
        }
        let Some(slot) = self.links[i].as_mut() else {
            return 0;
        };
        let mut handed = 0;
        let mut left = budget;
        let mut failed = None;
        'eps: while left > 0 {
            let Some(ep) = slot.bus.next_endpoint() else {
                break;
            };
            for _ in 0..per_ep.min(left) {
                let r = match slot.bus.take(ep) {
                    Ok(m) => Ready::Message(m),
                    Err(Error::WouldBlock) => break,
                    Err(Error::Lost { count }) => Ready::Lost {
                        endpoint: ep,
                        count,
                    },
                    // The endpoint was destroyed by the callback meanwhile.
                    Err(Error::NoSuchEndpoint(_)) => break,
                    Err(e) => {
                        failed = Some(e);
                        break 'eps;
                    }
                };
                f(LinkId(i), &mut slot.bus, r);
                handed += 1;
                left -= 1;
                if let Some(e) = slot.bus.link_error() {
                    failed = Some(e);
                    break 'eps;
                }
            }
        }
        if let Some(e) = failed {
            self.fail(i, e, f);
            return handed + 1;
        }
        if left == 0 {
            // Out of budget: what is left is served next turn, without a wait.
            if let Some(slot) = self.links[i].as_mut() {
                slot.look = true;
            }
        }
        // Its parked sends may have gone out (or not): the tick follows. Failing to arm
        // it (a bad timer descriptor) only delays those sends until the link's next wake.
        let _ = self.repolled(i);
        handed
    }
}

/// Sending from the reactor's thread without waiting (issue 23: a flood held by its
/// transmit credit must not hold the thread that serves every other endpoint).
impl<L: ReactorLink> Reactor<L> {
    /// Sends `data` from local endpoint `src` of link `id` to `dst` without waiting:
    /// at once when the endpoint's transmit credit and a buffer allow (`Ok(true)`), else
    /// parked on the endpoint's own bounded queue and sent by a later turn, endpoints in
    /// round robin (`Ok(false)`); `Exhausted` when that queue is full (nothing parked).
    /// [`HostBus::post`], for use outside the callback (inside it, call `post` on the
    /// link the callback is handed). `NotReady` for a link that is not in the reactor; a
    /// link that is down answers its error.
    pub fn post(&mut self, id: LinkId, src: u32, dst: u32, data: &[u8]) -> Result<bool> {
        let slot = self
            .links
            .get_mut(id.0)
            .and_then(Option::as_mut)
            .ok_or(Error::NotReady("no such link in the reactor"))?;
        if let Some(e) = slot.down {
            return Err(e);
        }
        let sent = slot.bus.post_msg(src, dst, data)?;
        if !sent {
            // Looked at next turn: its progress may have returned the credit already.
            slot.look = true;
            // A link that holds a parked send it cannot be woken for needs the tick; the
            // message is parked either way, so a failure to arm the tick (a bad timer
            // descriptor) is not this call's.
            let _ = self.repolled(id.0);
        }
        Ok(sent)
    }
}

/// The reactor's epoll descriptor, for an event loop to wait on instead of calling
/// [`Reactor::turn`] with a timeout: readable while a link (or the tick) has something;
/// then call `turn(Some(Duration::ZERO), ..)`. Only wait on it; adding or removing
/// descriptors behind the reactor's back breaks it.
impl<L: ReactorLink> AsFd for Reactor<L> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.epoll.as_fd()
    }
}

impl<L: ReactorLink> AsRawFd for Reactor<L> {
    fn as_raw_fd(&self) -> RawFd {
        self.epoll.as_fd().as_raw_fd()
    }
}
