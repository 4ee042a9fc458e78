//! The host's buffer handles: a received message held in place ([`RxBuf`]) and a
//! transmit buffer lent to fill in place ([`TxBuf`]); both go back to the bus through a
//! lock-free set when dropped.

use crate::shm::OwnedRange;
use crate::virtq::MAX_DRIVER_QUEUE;
use crate::{Error, Result, SharedMemory};
use alloc::sync::Arc;
use core::ops::{Deref, DerefMut};
use core::time::Duration;

/// A set of buffer ids handed back by dropped [`RxBuf`]/[`TxBuf`] handles.
pub(super) type Returned = crate::lockfree::IdSet<
    crate::lockfree::NativeWord,
    { MAX_DRIVER_QUEUE as usize / <crate::lockfree::NativeWord as crate::lockfree::Word>::BITS },
>;

pub(super) struct Shared<M> {
    pub(super) mem: M,
    pub(super) rx_returned: Returned,
    pub(super) tx_returned: Returned,
}

/// A received message held in place in its receive buffer (zero copy). Derefs to the
/// payload. The buffer goes back to the remote when this is dropped (or passed to
/// [`HostBus::release`](super::HostBus::release), which gives it back at once).
///
/// **What this view is.** The bytes live in memory the remote can write. The protocol
/// gives the buffer to the host until it is reposted, but a remote that breaks the
/// protocol (or is hostile) can still change them while you hold the view, so a value
/// checked in the view may differ when read again (time-of-check to time-of-use). That
/// cannot make this process access memory outside the region, but it can defeat
/// validation. For data you must validate, copy first and validate the copy:
/// [`Self::copy_to`], or receive with [`HostBus::recv`](super::HostBus::recv) or
/// [`HostBus::recv_from`](super::HostBus::recv_from), which copy the payload out of
/// shared memory before returning it. An `RxBuf` also holds one of
/// its endpoint's receive buffers (`HostConfig::max_held_per_endpoint`).
///
/// **Device memory.** On arm64, a region mapped from UIO or a `/dev/mem` no-map carveout
/// is Device memory: an unaligned access or `DC ZVA` there faults (SIGBUS), and
/// `copy_from_slice`, `fill` or `to_vec` on this view may compile to `memcpy`/`memset`,
/// which use both. On such a region copy with [`Self::copy_to`] or [`crate::copy_from_shared`], which make naturally aligned
/// accesses only; do not `memcpy` the view with unaligned accesses.
pub struct RxBuf<M: SharedMemory> {
    pub(super) shared: Arc<Shared<M>>,
    pub(super) slot: Slot,
    pub(super) src: u32,
    pub(super) dst: u32,
}

/// Where a received message's payload is.
pub(super) enum Slot {
    /// In place in receive buffer `id`.
    Ring { id: u16, range: OwnedRange },
    /// Copied out of the ring (its endpoint held its limit of buffers in place).
    Copied(alloc::boxed::Box<[u8]>),
}

impl<M: SharedMemory> RxBuf<M> {
    /// Copies the payload (up to `out.len()` bytes) out of shared memory, once; returns
    /// the bytes copied. Validate the copy, not the view (see the type's documentation).
    pub fn copy_to(&self, out: &mut [u8]) -> usize {
        // Aligned accesses only if the buffer may be Device memory (`copy_from_shared`);
        // a copy out of the ring is ordinary heap memory.
        let device = matches!(self.slot, Slot::Ring { .. }) && self.shared.mem.device_memory();
        crate::shm::copy_out_of(device, self, out)
    }
    /// Address of the sending endpoint.
    pub fn src(&self) -> u32 {
        self.src
    }
    /// Address of our endpoint it was sent to.
    pub fn dst(&self) -> u32 {
        self.dst
    }
}

impl<M: SharedMemory> Deref for RxBuf<M> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match &self.slot {
            Slot::Ring { range, .. } => range.bytes(&self.shared.mem),
            Slot::Copied(data) => data,
        }
    }
}

impl<M: SharedMemory> Drop for RxBuf<M> {
    fn drop(&mut self) {
        if let Slot::Ring { id, .. } = self.slot {
            self.shared.rx_returned.put(id);
        }
    }
}

/// A transmit buffer lent to the caller to fill in place (zero copy). Derefs to the
/// payload area (`buf_size - 16` bytes). Send it with
/// [`HostBus::send_buf`](super::HostBus::send_buf); dropping it
/// unsent returns it to the pool.
///
/// **Device memory.** On arm64, a region mapped from UIO or a `/dev/mem` no-map carveout
/// is Device memory: an unaligned access or `DC ZVA` there faults (SIGBUS), and
/// `copy_from_slice`, `fill` or `to_vec` on this view may compile to `memcpy`/`memset`,
/// which use both. On such a region copy with [`Self::copy_from`], [`crate::copy_to_shared`] or [`crate::fill_shared`], which make naturally aligned
/// accesses only; do not `memcpy` the view with unaligned accesses.
pub struct TxBuf<M: SharedMemory> {
    pub(super) shared: Arc<Shared<M>>,
    pub(super) id: u16,
    pub(super) range: OwnedRange,
    pub(super) live: bool,
}

impl<M: SharedMemory> TxBuf<M> {
    /// Copies `data` (up to the payload area's size) to the start of the payload area, with
    /// aligned accesses only ([`crate::copy_to_shared`]) unless the region is Normal memory
    /// ([`SharedMemory::device_memory`]); returns the bytes copied.
    pub fn copy_from(&mut self, data: &[u8]) -> usize {
        let device = self.shared.mem.device_memory();
        crate::shm::copy_into(device, self, data)
    }
}

impl<M: SharedMemory> Deref for TxBuf<M> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.range.bytes(&self.shared.mem)
    }
}

impl<M: SharedMemory> DerefMut for TxBuf<M> {
    fn deref_mut(&mut self) -> &mut [u8] {
        self.range.bytes_mut(&self.shared.mem)
    }
}

impl<M: SharedMemory> Drop for TxBuf<M> {
    fn drop(&mut self) {
        if self.live {
            self.shared.tx_returned.put(self.id);
        }
    }
}

impl<M: SharedMemory> core::fmt::Debug for RxBuf<M> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RxBuf")
            .field("src", &self.src)
            .field("dst", &self.dst)
            .field("len", &self.len())
            .finish()
    }
}

impl<M: SharedMemory> core::fmt::Debug for TxBuf<M> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("TxBuf")
            .field("id", &self.id)
            .field("cap", &self.range.len())
            .finish()
    }
}

impl<M: SharedMemory, D: crate::Doorbell> super::HostBus<M, D> {
    /// One receive for the message API ([`Self::recv`]): copies through the
    /// zero-copy handle where the memory allows it, so the buffer goes back with the next
    /// batch of returned buffers (one index update and at most one doorbell for many
    /// messages) instead of one publish per message.
    pub(crate) fn try_recv_deferred(&mut self, ep: u32, buf: &mut [u8]) -> Result<(u32, usize)> {
        // Memory without direct access, and Device memory (where the copy must be made
        // with the region's own aligned reads), copy through `read`.
        // Inline rings release in order anyway, so the copy is taken and the slot released
        // at once (no handle, no deferred return): straight from the slot when nothing
        // else is queued or held.
        if self.inline.is_some() {
            return match self.recv_slot_direct(ep, buf)? {
                super::Direct::Got(_, len) if buf.len() < len => Err(Error::Truncated { len }),
                super::Direct::Got(src, len) => Ok((src, len)),
                super::Direct::Empty => Err(Error::WouldBlock),
                super::Direct::General => self.try_recv_copy(ep, buf),
            };
        }
        if self.shared.mem.as_ptr().is_null() || self.shared.mem.device_memory() {
            return self.try_recv_copy(ep, buf);
        }
        let rx = self.try_recv_buf(ep)?;
        let (src, len) = (rx.src(), rx.len());
        rx.copy_to(buf);
        drop(rx);
        if len > buf.len() {
            return Err(Error::Truncated { len });
        }
        Ok((src, len))
    }

    /// [`Self::try_recv_deferred`], waiting up to `timeout` (`None`: forever).
    pub(crate) fn recv_deferred(
        &mut self,
        ep: u32,
        buf: &mut [u8],
        timeout: Option<Duration>,
    ) -> Result<(u32, usize)> {
        self.block_on(timeout, false, |bus| {
            crate::rpmsg::endpoints::pending(bus.try_recv_deferred(ep, buf))
        })
    }
}
