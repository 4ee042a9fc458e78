//! The data plane, async: the steps [`AsyncHost`](crate::AsyncHost) and
//! [`AsyncLink`](crate::AsyncLink) run between sleeps (never blocking: every send and
//! receive they make looks once), and the completions as a [`Stream`].

use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};
use futures_core::Stream;
use intercore::dataplane::{CacheOps, Completed, DpHost};
use intercore::rpmsg::{Channel, MessageIo};
use intercore::{Error, Result};
use std::cell::Cell;
use std::time::Duration;

/// A transport whose every send and receive looks once (`Some(Duration::ZERO)`), whatever
/// timeout the caller (`DpHost::flush`, with its own send timeout) passes: `Timeout` then
/// means "not yet", and nothing was consumed.
pub(crate) struct NoWait<'a, T: ?Sized>(pub(crate) &'a mut T);

impl<T: MessageIo + ?Sized> MessageIo for NoWait<'_, T> {
    fn send(&mut self, ch: &Channel, data: &[u8], _: Option<Duration>) -> Result<()> {
        self.0.send(ch, data, Some(Duration::ZERO))
    }
    fn recv(&mut self, ch: &Channel, buf: &mut [u8], _: Option<Duration>) -> Result<usize> {
        self.0.recv(ch, buf, Some(Duration::ZERO))
    }
    fn recv_from(
        &mut self,
        ch: &Channel,
        buf: &mut [u8],
        _: Option<Duration>,
    ) -> Result<(Option<u32>, usize)> {
        self.0.recv_from(ch, buf, Some(Duration::ZERO))
    }
    fn max_payload(&self) -> usize {
        self.0.max_payload()
    }
}

/// One non-blocking look for the next completion: a queued one, else flush what is staged
/// and take what arrived. `NotReady` when nothing is in flight (nothing will complete:
/// waiting would never end). `tx` is set when the flush found no transmit buffer (the
/// sleep must then also wake when the remote returns one).
pub(crate) fn try_complete<C: CacheOps, T: MessageIo + ?Sized>(
    dp: &mut DpHost<C>,
    io: &mut T,
    tx: &Cell<bool>,
) -> Result<Option<Completed<C>>> {
    if let Some(c) = dp.take_completed() {
        return Ok(Some(c));
    }
    if dp.in_flight() == 0 {
        return Err(Error::NotReady("no buffer in flight"));
    }
    match dp.try_complete(&mut NoWait(io)) {
        Ok(c) => {
            tx.set(false);
            Ok(c)
        }
        // The flush found every transmit buffer with the remote; the staged entries stay.
        Err(Error::Timeout) => {
            tx.set(true);
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// One non-blocking flush: `None` while the remote holds every transmit buffer (the staged
/// entries stay staged).
pub(crate) fn try_flush<C: CacheOps, T: MessageIo + ?Sized>(
    dp: &mut DpHost<C>,
    io: &mut T,
) -> Result<Option<()>> {
    crate::none_on_timeout(dp.flush(&mut NoWait(io)))
}

/// One wait for the next completion, giving `dp` back with the result.
pub(crate) type Step<'a, C> =
    Pin<Box<dyn Future<Output = (Result<Completed<C>>, &'a mut DpHost<C>)> + 'a>>;

enum State<'a, C: CacheOps> {
    Idle(&'a mut DpHost<C>),
    Waiting(Step<'a, C>),
    Ended,
}

/// The data plane's completions as a [`Stream`] (from [`AsyncHost::completions`] or
/// [`AsyncLink::completions`]): every buffer submitted before it was made, in the order
/// they complete; staged submissions are flushed on the first poll. It ends (`None`) once
/// nothing is in flight, and after yielding an error (the data plane's errors are sticky:
/// [`DpHost::broken`]). Dropping it mid-wait loses nothing: a completion already taken off
/// the ring stays queued in the data plane.
///
/// [`AsyncHost::completions`]: crate::AsyncHost::completions
/// [`AsyncLink::completions`]: crate::AsyncLink::completions
pub struct Completions<'a, C: CacheOps> {
    state: State<'a, C>,
    next: Box<dyn Fn(&'a mut DpHost<C>) -> Step<'a, C> + 'a>,
}

impl<'a, C: CacheOps> Completions<'a, C> {
    pub(crate) fn new(
        dp: &'a mut DpHost<C>,
        next: impl Fn(&'a mut DpHost<C>) -> Step<'a, C> + 'a,
    ) -> Self {
        Self {
            state: State::Idle(dp),
            next: Box::new(next),
        }
    }
}

impl<C: CacheOps> Completions<'_, C> {
    /// The next completion (`None`: the stream ended), without a stream-extension crate:
    /// what `StreamExt::next` (tokio-stream, futures) does.
    pub async fn next(&mut self) -> Option<Result<Completed<C>>> {
        std::future::poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await
    }
}

impl<C: CacheOps> core::fmt::Debug for Completions<'_, C> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let state = match self.state {
            State::Idle(_) => "idle",
            State::Waiting(_) => "waiting",
            State::Ended => "ended",
        };
        f.debug_struct("Completions")
            .field("state", &state)
            .finish_non_exhaustive()
    }
}

impl<C: CacheOps> Stream for Completions<'_, C> {
    type Item = Result<Completed<C>>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        // Every field is Unpin (a reference, a box).
        let this = self.get_mut();
        loop {
            match core::mem::replace(&mut this.state, State::Ended) {
                State::Idle(dp) => {
                    if let Some(c) = dp.take_completed() {
                        this.state = State::Idle(dp);
                        return Poll::Ready(Some(Ok(c)));
                    }
                    if dp.in_flight() == 0 {
                        this.state = State::Idle(dp);
                        return Poll::Ready(None);
                    }
                    this.state = State::Waiting((this.next)(dp));
                }
                State::Waiting(mut step) => match step.as_mut().poll(cx) {
                    Poll::Pending => {
                        this.state = State::Waiting(step);
                        return Poll::Pending;
                    }
                    Poll::Ready((Ok(c), dp)) => {
                        this.state = State::Idle(dp);
                        return Poll::Ready(Some(Ok(c)));
                    }
                    Poll::Ready((Err(e), _)) => return Poll::Ready(Some(Err(e))),
                },
                State::Ended => return Poll::Ready(None),
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match &self.state {
            State::Idle(dp) => (0, Some(dp.outstanding())),
            State::Waiting(_) => (0, None),
            State::Ended => (0, Some(0)),
        }
    }
}
