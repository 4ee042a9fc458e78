//! The zero-copy data plane: bulk buffers in a shared pool that the host and the remote
//! access in place, handed over by id and device address on an rpmsg endpoint, with the
//! cache maintenance of a non-coherent SoC done by the types. Both sides talk through any
//! [`MessageIo`](crate::rpmsg::MessageIo) — intercore's buses, the kernel's `/dev/rpmsg`
//! (`intercore-linux`'s `KernelRpmsg`), or another message pipe.
//!
//! * [`CacheOps`]: clean (write back before the peer reads) and invalidate (before we read
//!   what the peer wrote) over byte ranges of a region, plus where the CPU's view of the
//!   region is. [`Coherent`] is the implementation for coherent memory (fences only);
//!   `intercore-linux` has ARM64 EL0 and dma-buf ones; `intercore-sim` has the
//!   non-coherent model with its coherency sanitizer.
//! * [`Pool`] (host, `alloc`): cache-line-aligned buffers in size classes, lock-free
//!   allocation, an owner for every buffer. Its metadata is host-private memory, so it
//!   never shares a cache line with buffer data.
//! * Ownership as types (host): [`WritableBuf`] (CPU owns it, `&mut [u8]`) →
//!   [`DpHost::submit`] consumes it, cleans the written range, and returns a [`Ticket`]
//!   (no access at all while in flight) → the completion becomes a [`Completed`], which is
//!   invalidated before it derefs to `&[u8]` and cannot be written.
//! * [`DpRemote`] (remote, `no_std`, no allocation): checks each submitted address through
//!   its [`DataWindows`] (the IOMMU), invalidates before it reads, cleans what it wrote,
//!   and batches completions.
//! * [`Iommu`]: the host's side of the remote's address windows (map/unmap with
//!   permissions).
//!
//! ```compile_fail
//! # // A buffer handed to the remote can no longer be touched: `submit` consumed it.
//! # fn f<C: intercore::dataplane::CacheOps, M: intercore::SharedMemory, D: intercore::Doorbell>(
//! #     dp: &mut intercore::dataplane::DpHost<C>, bus: &mut intercore::rpmsg::HostBus<M, D>,
//! #     mut buf: intercore::dataplane::WritableBuf<C>) {
//! let _ticket = dp.submit(bus, buf, 64, intercore::wire::dataplane::DP_OP_CRC32C).unwrap();
//! buf[0] = 1; // error: use of moved value
//! # }
//! ```
//!
//! ```compile_fail
//! # // A completed buffer is read-only: there is no `&mut [u8]` to it.
//! # fn f<C: intercore::dataplane::CacheOps>(mut done: intercore::dataplane::Completed<C>) {
//! done[0] = 1; // error: cannot assign, `Completed` is not `DerefMut`
//! # }
//! ```
//!
//! ```compile_fail
//! # // A completed buffer cannot be resubmitted without going back to CPU ownership.
//! # fn f<C: intercore::dataplane::CacheOps, M: intercore::SharedMemory, D: intercore::Doorbell>(
//! #     dp: &mut intercore::dataplane::DpHost<C>, bus: &mut intercore::rpmsg::HostBus<M, D>,
//! #     done: intercore::dataplane::Completed<C>) {
//! dp.submit(bus, done, 64, 1); // error: expected `WritableBuf`, found `Completed`
//! # }
//! ```
//!
//! ```compile_fail
//! # // A ticket is only a receipt: it gives no access to the bytes in flight.
//! # fn f(t: intercore::dataplane::Ticket) {
//! let _ = t[0]; // error: cannot index into a value of type `Ticket`
//! # }
//! ```

#[cfg(feature = "alloc")]
mod host;
#[cfg(feature = "alloc")]
mod pool;
mod remote;

pub use crate::platform::{CacheOps, Coherent, line_span};
pub use crate::platform::{DataWindows, Fault, FaultKind, Iommu, Perm};
#[cfg(feature = "alloc")]
pub use host::{DpHost, DpHostStats, FLUSH_BYTES, Ticket};
#[cfg(feature = "alloc")]
pub use pool::{BufInfo, Completed, Owner, Pool, PoolConfig, WritableBuf};
pub use remote::{DpRemote, DpRemoteStats, Job, MAX_DP_BATCH};
