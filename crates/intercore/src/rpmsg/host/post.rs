//! Sends that never block and are never lost: [`HostBus::post`] sends at once when the
//! endpoint's transmit credit and a free buffer (slot) allow, else parks a copy on the
//! endpoint's own bounded queue; [`HostBus::poll`] sends what is parked, one message per
//! endpoint per round in round robin, as credit and buffers come back. What an event loop
//! (the reactor) needs: its one thread never waits in a send, and a flood held by its
//! credit waits in its own queue, not in front of other endpoints' messages.

use super::HostBus;
use crate::{Doorbell, Error, Result, SharedMemory};
use alloc::collections::{BTreeMap, VecDeque};
use alloc::vec::Vec;

/// Parked messages: per local endpoint, `(dst, bytes)` oldest first, and the endpoints
/// with any, in the order they are served next.
#[derive(Debug, Default)]
pub(super) struct Parked {
    queues: BTreeMap<u32, VecDeque<(u32, Vec<u8>)>>,
    order: VecDeque<u32>,
}

impl Parked {
    /// Whether any message is parked.
    pub(super) fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    fn len(&self, src: u32) -> usize {
        self.queues.get(&src).map_or(0, VecDeque::len)
    }

    /// Drops `src`'s queue (its endpoint is destroyed); returns how many it held.
    pub(super) fn discard(&mut self, src: u32) -> usize {
        let n = self.queues.remove(&src).map_or(0, |q| q.len());
        if n > 0 {
            self.order.retain(|&a| a != src);
        }
        n
    }
}

impl<M: SharedMemory, D: Doorbell> HostBus<M, D> {
    /// Sends `data` from local endpoint `src` to `dst` without ever waiting: at once when
    /// `src` is under its transmit credit ([`HostConfig::tx_credit`](super::HostConfig)),
    /// a buffer (slot) is free and nothing of `src`'s is parked — `Ok(true)`; otherwise a
    /// copy is parked on `src`'s queue and sent by a later [`Self::poll`] (every reactor
    /// turn polls) in order, endpoints taking turns — `Ok(false)`. A full queue
    /// (`HostConfig::max_parked_per_endpoint`) is `Exhausted`, and nothing is parked: the
    /// caller still has the message. Errors as [`Self::send_raw`] otherwise (too large, no
    /// such endpoint, link down).
    pub fn post(
        &mut self,
        src: impl Into<super::EndpointAddr>,
        dst: impl Into<super::EndpointAddr>,
        data: &[u8],
    ) -> Result<bool> {
        let (src, dst) = (src.into().get(), dst.into().get());
        self.check()?;
        if data.len() > self.max_payload() {
            return Err(Error::MessageTooLarge {
                len: data.len(),
                max: self.max_payload(),
            });
        }
        self.check_src(src)?;
        if self.parked.len(src) == 0 {
            match self.try_send(src, dst, data) {
                Ok(()) => return Ok(true),
                Err(Error::WouldBlock) => {}
                Err(e) => return Err(e),
            }
        }
        if self.parked.len(src) >= self.cfg.max_parked_per_endpoint {
            return Err(Error::Exhausted("endpoint's parked sends (post) are full"));
        }
        let q = self.parked.queues.entry(src).or_default();
        if q.is_empty() {
            self.parked.order.push_back(src);
        }
        q.push_back((dst, data.to_vec()));
        Ok(false)
    }

    /// Messages `src` has parked (posted, not yet in the transmit ring).
    pub fn parked(&self, src: impl Into<super::EndpointAddr>) -> usize {
        self.parked.len(src.into().get())
    }

    /// Sends parked messages while credit and buffers allow: one per endpoint per round,
    /// endpoints in turn (one that is held keeps its place), until a round sends none.
    /// Returns how many went out.
    pub(super) fn send_parked(&mut self) -> Result<usize> {
        let mut sent = 0;
        loop {
            let mut moved = false;
            for _ in 0..self.parked.order.len() {
                let Some(src) = self.parked.order.pop_front() else {
                    break;
                };
                let Some((dst, data)) = self
                    .parked
                    .queues
                    .get_mut(&src)
                    .and_then(VecDeque::pop_front)
                else {
                    continue;
                };
                let r = self.try_send(src, dst, &data);
                let Some(q) = self.parked.queues.get_mut(&src) else {
                    continue;
                };
                match r {
                    Ok(()) => {
                        sent += 1;
                        moved = true;
                    }
                    Err(Error::WouldBlock) => q.push_front((dst, data)),
                    Err(e) => {
                        // The link failed (or the endpoint is gone): the message stays
                        // parked, the error is the caller's.
                        q.push_front((dst, data));
                        self.parked.order.push_front(src);
                        return Err(e);
                    }
                }
                if q.is_empty() {
                    self.parked.queues.remove(&src);
                } else {
                    self.parked.order.push_back(src);
                }
            }
            if !moved || self.parked.is_empty() {
                return Ok(sent);
            }
        }
    }
}
