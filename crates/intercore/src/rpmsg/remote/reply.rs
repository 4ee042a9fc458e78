//! The reply path: a received message and one of the host's receive buffers handed to the
//! caller together, so firmware answers in place — no copy to a stack buffer, no second
//! buffer lookup (smoltcp's `(RxToken, TxToken)` pair, over rpmsg's two rings).

use super::{Msg, RemoteBus, Want};
use crate::error::protocol;
use crate::rpmsg::endpoints::{self, EndpointAddr};
use crate::rpmsg::{Channel, overlaps};
use crate::shm::OwnedRange;
use crate::{Doorbell, Error, Result, SharedMemory};
use core::ops::{Deref, DerefMut};
use core::time::Duration;

/// One of the host's receive buffers, lent with a received message by
/// [`RemoteBus::recv_reply_with`]. Derefs to its payload area (the buffer less the
/// 16-byte header). Fill it and call [`Self::send`] (a reply from the endpoint the message
/// was sent to, to its sender) or [`Self::send_to`]; left unsent, the buffer stays the
/// host's to post again, untouched as far as the protocol goes.
///
/// The header the bus writes is built from the addresses of the received message's header
/// as copied and checked when it arrived, and from the length given here — never from
/// the payload bytes, which the host can write.
///
/// **Device memory.** On arm64, a region mapped from UIO or a `/dev/mem` no-map carveout
/// is Device memory: an unaligned access or `DC ZVA` there faults (SIGBUS), and
/// `copy_from_slice`, `fill` or `to_vec` on this view may compile to `memcpy`/`memset`,
/// which use both. On such a region copy with [`Self::send_copy`], [`crate::copy_to_shared`] or [`crate::fill_shared`], which make naturally aligned
/// accesses only; do not `memcpy` the view with unaligned accesses.
pub struct ReplyBuf<'a> {
    buf: &'a mut [u8],
    /// Inline rings: the slot's own payload area, where [`Self::send_copy`] puts a reply
    /// that fits (then nothing is copied from `buf` into the slot when it is published).
    slot: Option<&'a mut [u8]>,
    from: u32,
    to: u32,
    out: Option<(u32, u32, usize)>,
    /// The payload of `out` is in `slot`, not in `buf`.
    in_slot: bool,
}

impl ReplyBuf<'_> {
    /// Sends the first `len` bytes as the reply: from the endpoint the message was sent to,
    /// to its sender. `MessageTooLarge` (and nothing sent) when `len` exceeds the buffer.
    pub fn send(&mut self, len: usize) -> Result<()> {
        self.send_to(self.from, self.to, len)
    }

    /// Sends the first `len` bytes from `src` to `dst` instead.
    pub fn send_to(
        &mut self,
        src: impl Into<EndpointAddr>,
        dst: impl Into<EndpointAddr>,
        len: usize,
    ) -> Result<()> {
        if len > self.buf.len() {
            return Err(Error::MessageTooLarge {
                len,
                max: self.buf.len(),
            });
        }
        self.out = Some((src.into().get(), dst.into().get(), len));
        self.in_slot = false;
        Ok(())
    }

    /// Copies `data` in and sends it as the reply ([`Self::send`]). On inline rings a
    /// reply that fits the slot is copied into the slot itself.
    pub fn send_copy(&mut self, data: &[u8]) -> Result<()> {
        self.send(data.len())?;
        // Aligned accesses only: the buffer may be Device memory.
        match &mut self.slot {
            Some(s) if data.len() <= s.len() => {
                crate::copy_to_shared(&mut s[..data.len()], data);
                self.in_slot = true;
            }
            _ => {
                crate::copy_to_shared(&mut self.buf[..data.len()], data);
            }
        }
        Ok(())
    }

    /// Withdraws a [`Self::send`]: the buffer goes back unsent.
    pub fn cancel(&mut self) {
        self.out = None;
        self.in_slot = false;
    }
}

impl Deref for ReplyBuf<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.buf
    }
}

impl DerefMut for ReplyBuf<'_> {
    fn deref_mut(&mut self) -> &mut [u8] {
        self.buf
    }
}

impl core::fmt::Debug for ReplyBuf<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ReplyBuf")
            .field("cap", &self.buf.len())
            .field("out", &self.out)
            .finish()
    }
}

impl<M: SharedMemory, D: Doorbell, const N: usize> RemoteBus<M, D, N> {
    /// Receives one message for `ch`'s local endpoint and lends it to `f` in place together
    /// with a host buffer to answer in ([`ReplyBuf`]; [`ReplyBuf::send`] answers the
    /// sender), waiting up to `timeout` for both: a message is not taken while the host
    /// has no receive buffer posted. The message's buffer goes back to the host after `f`,
    /// then the reply (if `f` sent one) is published — the order of a receive followed by
    /// a send. Others' messages are held as [`Self::recv_with`] holds them.
    ///
    /// A host that hands the same memory out as a transmit and a receive buffer breaks the
    /// protocol: that is an error for the link (the two views must not alias).
    pub fn recv_reply_with<R>(
        &mut self,
        ch: &Channel,
        timeout: Option<Duration>,
        f: impl FnOnce(Msg<'_>, &mut ReplyBuf<'_>) -> R,
    ) -> Result<R> {
        let ep = ch.local;
        self.endpoints.get(ep)?;
        self.reply_loop(Some(ep), timeout, f)
    }

    /// [`Self::recv_reply_with`] for a message to any local endpoint (`m.dst` names it).
    pub fn recv_reply_any_with<R>(
        &mut self,
        timeout: Option<Duration>,
        f: impl FnOnce(Msg<'_>, &mut ReplyBuf<'_>) -> R,
    ) -> Result<R> {
        self.reply_loop(None, timeout, f)
    }

    fn reply_loop<R>(
        &mut self,
        ep: Option<u32>,
        timeout: Option<Duration>,
        f: impl FnOnce(Msg<'_>, &mut ReplyBuf<'_>) -> R,
    ) -> Result<R> {
        let mut f = Some(f);
        self.block_on(timeout, Want::Both, |bus| {
            let mut out = None;
            let got = bus.try_reply_for(ep, |m, tx| out = f.take().map(|f| f(m, tx)));
            endpoints::pending(got).map(|g| g.and(out))
        })
    }

    fn try_reply_for<R>(
        &mut self,
        ep: Option<u32>,
        f: impl FnOnce(Msg<'_>, &mut ReplyBuf<'_>) -> R,
    ) -> Result<R> {
        let r = self.reply_for(ep, f);
        self.idle = r.is_err();
        r
    }

    fn reply_for<R>(
        &mut self,
        ep: Option<u32>,
        f: impl FnOnce(Msg<'_>, &mut ReplyBuf<'_>) -> R,
    ) -> Result<R> {
        let mut rd = self.ready()?;
        // Look for a message before taking a host buffer: an empty poll then touches only
        // the receive ring's index, not vring 0's index, slot and descriptor (taken and put
        // back on every empty poll otherwise).
        if !rd.rx_pending(ep)? {
            return Err(Error::WouldBlock);
        }
        let mut slot = rd.tx_slot()?.ok_or(Error::WouldBlock)?;
        let t = match rd.take_for(ep) {
            Ok(Some(t)) => t,
            Ok(None) => {
                rd.untake_tx();
                rd.publish_rx()?;
                return Err(Error::WouldBlock);
            }
            Err(e) => return Err(e),
        };
        if t.copy.is_none()
            && overlaps(
                (t.off, t.desc_len as usize),
                (slot.off, slot.desc_len as usize),
            )
        {
            return Err(rd.link.fail(protocol(
                "host transmit and receive buffers overlap",
                slot.off as u64,
            )));
        }
        // Both chains are popped and not yet returned: the host touches neither buffer
        // until we push them to the used rings below, and they do not overlap.
        let rx = match t.copy {
            // Held on an in-order ring: copied out, its buffer already returned.
            Some(_) => None,
            None => Some(
                OwnedRange::claim(rd.mem, t.pay, t.plen)
                    .ok_or(Error::Config("memory without direct access"))?,
            ),
        };
        let room = slot.room;
        let mut tx = rd.claim_tx(&mut slot, room)?;
        // Inline: the slot's payload area too (`ReplyBuf::send_copy` writes a reply that
        // fits there); the slot is ours until published, and apart from the companion.
        let mut in_slot = match slot.areas {
            Some(a) => Some(
                OwnedRange::claim(rd.mem, a.inline_off, a.max_inline)
                    .ok_or(Error::Config("memory without direct access"))?,
            ),
            None => None,
        };
        rd.link.count.received += 1;
        rd.note_sender(&t);
        let payload = match &rx {
            Some(r) => r.bytes(rd.mem),
            None => rd.copied(&t).unwrap_or(&[]),
        };
        let mut reply = ReplyBuf {
            buf: tx.bytes_mut(rd.mem),
            slot: in_slot.as_mut().map(|r| r.bytes_mut(rd.mem)),
            from: t.dst,
            to: t.src,
            out: None,
            in_slot: false,
        };
        let r = f(
            Msg {
                src: t.src,
                dst: t.dst,
                payload,
            },
            &mut reply,
        );
        let out = reply.out;
        if reply.in_slot {
            if let Some(a) = slot.areas {
                slot.pay = a.inline_off;
            }
        }
        rd.finish(&t);
        if out.is_none() {
            rd.untake_tx();
        }
        let published = rd.publish_rx();
        let sent = match out {
            Some((src, dst, len)) => rd.submit(&slot, src, dst, len),
            None => Ok(()),
        };
        published.and(sent).map(|()| r)
    }
}
