//! One thread, many links, one wait: a [`Reactor`] serves N host links × M endpoints
//! through one `epoll` over the links' doorbell descriptors (each link's eventfd and, when
//! its doorbell watches one, the remote's pidfd).
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
//!         // `m.dst()` is the endpoint, `m.src()` the sender: answer on the same link.
//!         Ready::Message(m) => {
//!             let _ = bus.send_raw(m.dst(), m.src(), &m, Some(std::time::Duration::ZERO));
//!         }
//!         Ready::Lost { endpoint, count } => eprintln!("{link:?}/{endpoint}: {count} lost"),
//!         Ready::Down(e) => eprintln!("{link:?} is down: {e}"),
//!     })?;
//! }
//! # Ok::<(), intercore::Error>(())
//! ```

use crate::EventfdDoorbell;
use crate::sys::Epoll;
use intercore::rpmsg::{HostBus, RxBuf};
use intercore::{Error, Result, SharedMemory};
use std::os::fd::BorrowedFd;
use std::time::Duration;

/// A host link the reactor serves.
pub type Link<M> = HostBus<M, EventfdDoorbell>;

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
}

impl Default for ReactorConfig {
    fn default() -> Self {
        Self {
            per_endpoint: 4,
            per_link: 32,
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
}

/// What a turn hands the callback for a link.
pub enum Ready<M: SharedMemory> {
    /// A message, in place: `dst()` is the local endpoint, `src()` the sender. Its buffer
    /// goes back to the remote when it is dropped.
    Message(RxBuf<M>),
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

impl<M: SharedMemory> std::fmt::Debug for Ready<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ready::Message(m) => write!(f, "Message({} -> {}, {} B)", m.src(), m.dst(), m.len()),
            Ready::Lost { endpoint, count } => write!(f, "Lost({endpoint}, {count})"),
            Ready::Down(e) => write!(f, "Down({e:?})"),
        }
    }
}

struct Slot<M: SharedMemory> {
    bus: Link<M>,
    /// Why it is down (reported already), if it is.
    down: Option<Error>,
    /// Its doorbell rang or its last turn ran out of budget: look at it this turn.
    look: bool,
}

/// Tokens: link index × 2, + 1 for the pidfd.
const PIDFD: u64 = 1;

/// One wait over many host links; see the [module documentation](self).
pub struct Reactor<M: SharedMemory> {
    epoll: Epoll,
    links: Vec<Option<Slot<M>>>,
    cfg: ReactorConfig,
    /// The link the next turn starts with.
    cursor: usize,
    events: Vec<u64>,
}

fn os(e: std::io::Error) -> Error {
    Error::Os(e.raw_os_error().unwrap_or(libc::EIO))
}

fn fds<M: SharedMemory>(bus: &Link<M>) -> [Option<BorrowedFd<'_>>; 2] {
    let bell = bus.doorbell();
    [Some(bell.wake_fd()), bell.peer_fd()]
}

impl<M: SharedMemory> Reactor<M> {
    /// An empty reactor.
    pub fn new(cfg: ReactorConfig) -> Result<Self> {
        Ok(Self {
            epoll: Epoll::new().map_err(os)?,
            links: Vec::new(),
            cfg: cfg.per_endpoint(cfg.per_endpoint).per_link(cfg.per_link),
            cursor: 0,
            events: vec![0; 64],
        })
    }

    /// Adds `bus`: its doorbell's descriptors join the wait. A link that is dead already
    /// is refused with its error.
    pub fn add(&mut self, bus: Link<M>) -> Result<LinkId> {
        if let Some(e) = bus.broken() {
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
        self.links.push(Some(Slot {
            bus,
            down: None,
            look: true,
        }));
        Ok(LinkId(id))
    }

    /// Link `id`, to create endpoints on, send, or read its statistics.
    pub fn link(&mut self, id: LinkId) -> Option<&mut Link<M>> {
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
    pub fn remove(&mut self, id: LinkId) -> Option<Link<M>> {
        let slot = self.links.get_mut(id.0)?.take()?;
        if slot.down.is_none() {
            self.unwatch(&slot.bus);
        }
        Some(slot.bus)
    }

    fn unwatch(&self, bus: &Link<M>) {
        for fd in fds(bus).into_iter().flatten() {
            // A descriptor that was never added (or is gone) has nothing to remove.
            let _ = self.epoll.delete(fd);
        }
    }

    /// Marks `i` down with `e` and reports it.
    fn fail(&mut self, i: usize, e: Error, f: &mut impl FnMut(LinkId, &mut Link<M>, Ready<M>)) {
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
        if let Some(slot) = self.links[i].as_mut() {
            f(LinkId(i), &mut slot.bus, Ready::Down(e));
        }
    }

    /// Waits at most `timeout` (`None`: for ever) until a link has something, then serves
    /// every link that has, in round robin within the budgets, handing each message (or
    /// loss, or a link's failure) to `f` with the link it came on. Returns how many things
    /// `f` was handed; `Timeout` when the time passed with none. Errors of one link are
    /// that link's [`Ready::Down`], never this call's: the call itself fails only when the
    /// wait does (`Os`).
    pub fn turn(
        &mut self,
        timeout: Option<Duration>,
        mut f: impl FnMut(LinkId, &mut Link<M>, Ready<M>),
    ) -> Result<usize> {
        let deadline = timeout.map(|t| crate::monotonic_now() + t);
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
                match slot.bus.arm_notify(false) {
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
            let wait = if busy {
                Some(Duration::ZERO)
            } else {
                deadline.map(|d| d.saturating_sub(crate::monotonic_now()))
            };
            let n = self.epoll.wait(&mut self.events, wait).map_err(os)?;
            let mut handed = 0;
            for k in 0..n {
                let token = self.events[k];
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
                } else if let Err(e) = slot.bus.doorbell().take_rings() {
                    self.fail(i, os(e), &mut f);
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
            if deadline.is_some_and(|d| crate::monotonic_now() >= d) {
                return Err(Error::Timeout);
            }
        }
    }

    /// Serves link `i` if it is to be looked at: polls its ring once, then hands out at
    /// most `budget` messages, `per_endpoint` from each endpoint in turn.
    fn serve(
        &mut self,
        i: usize,
        budget: usize,
        f: &mut impl FnMut(LinkId, &mut Link<M>, Ready<M>),
    ) -> usize {
        let per_ep = self.cfg.per_endpoint;
        let Some(slot) = self.links[i].as_mut() else {
            return 0;
        };
        if slot.down.is_some() || !slot.look {
            return 0;
        }
        slot.look = false;
        if let Err(e) = slot.bus.poll() {
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
            let Some(ep) = slot.bus.next_ready() else {
                break;
            };
            for _ in 0..per_ep.min(left) {
                let r = match slot.bus.try_recv_buf(ep) {
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
                if let Some(e) = slot.bus.broken() {
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
        handed
    }
}

/// Sending from the reactor's thread without waiting (issue 23: a flood held by its
/// transmit credit must not hold the thread that serves every other endpoint).
impl<M: SharedMemory> Reactor<M> {
    /// Sends `data` from local endpoint `src` of link `id` to `dst` without waiting:
    /// at once when the endpoint's transmit credit and a buffer allow (`Ok(true)`), else
    /// parked on the endpoint's own bounded queue and sent by a later turn, endpoints in
    /// round robin (`Ok(false)`); `Exhausted` when that queue is full (nothing parked).
    /// [`HostBus::post`], for use outside the callback (inside it, call `post` on the
    /// link the callback is handed). `NotReady` for a link that is not in the reactor or
    /// is down.
    pub fn post(&mut self, id: LinkId, src: u32, dst: u32, data: &[u8]) -> Result<bool> {
        let slot = self
            .links
            .get_mut(id.0)
            .and_then(Option::as_mut)
            .ok_or(Error::NotReady("no such link in the reactor"))?;
        if let Some(e) = slot.down {
            return Err(e);
        }
        let sent = slot.bus.post(src, dst, data)?;
        if !sent {
            // Looked at next turn: its progress may have returned the credit already.
            slot.look = true;
        }
        Ok(sent)
    }
}
