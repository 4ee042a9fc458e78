//! Cache maintenance for memory shared with a remote core that does not snoop the CPU's
//! caches: the ARM64 instructions userspace may execute ([`Arm64El0Cache`], aarch64 only),
//! and the dma-buf synchronisation ioctl ([`DmaBufCache`], any architecture).
//!
//! The pure parts — decoding `CTR_EL0` ([`dminline_bytes`]) and walking the cache lines of
//! a range ([`line_addrs`]) — are plain functions, compiled and tested on every host; the
//! instructions themselves exist only in the aarch64 build.
//!
//! # ARM64 at EL0
//!
//! Linux lets userspace run `DC CVAC` (clean to the point of coherency) and `DC CIVAC`
//! (clean *and* invalidate) because it sets `SCTLR_EL1.UCI`; `DC IVAC` (invalidate
//! without cleaning) is EL1-only and kills the process with `SIGILL`, so "invalidate" here
//! is always clean+invalidate. This never loses data: a line the CPU dirtied is written
//! back first (and by the data plane's rules the CPU never dirties a line the peer owns).
//! The line size is `4 << CTR_EL0.DminLine` bytes; on a system whose cores disagree, the
//! kernel traps `CTR_EL0` reads and returns the system-wide safe (smallest) value. Some
//! Cortex-A53 errata make the kernel trap and emulate the DC instructions too: still
//! correct, only slower.
//!
//! # dma-buf
//!
//! `DMA_BUF_IOCTL_SYNC` brackets CPU access to a dma-buf: `START` calls the exporter's
//! `begin_cpu_access` (for a non-coherent device: `dma_sync_*_for_cpu`, i.e. invalidate
//! for `READ`), `END` its `end_cpu_access` (`dma_sync_*_for_device`, i.e. clean for
//! `WRITE`). It always covers the **whole** buffer, and what it does depends entirely on the
//! exporter:
//!
//! * **udmabuf** really cleans and invalidates on arm64: its sync goes through the udmabuf
//!   misc device, which is not DMA-coherent.
//! * **Mainline system and CMA heaps** sync only for the kernel devices *attached* to the
//!   buffer. With a remote core as the only consumer nothing is attached, and the ioctl
//!   may do **no cache maintenance at all** — it succeeds and the peer reads stale memory.
//!   Use [`Arm64El0Cache`] over such a mapping instead (or a vendor heap known to sync).
//!
//! # `unsafe`
//!
//! One of the two modules of this crate where `unsafe` is allowed (with `sys`): the EL0
//! instructions are inline assembly, and `CacheOps` is an `unsafe` trait (its
//! implementations vouch for the region they maintain).
#![allow(unsafe_code)]

use crate::uapi::{
    DMA_BUF_SYNC_END, DMA_BUF_SYNC_READ, DMA_BUF_SYNC_RW, DMA_BUF_SYNC_START, DMA_BUF_SYNC_WRITE,
    DmaBufSync,
};
use intercore::SharedMemory;
use intercore::dataplane::CacheOps;
use std::cell::Cell;
use std::io;
use std::marker::PhantomData;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::atomic::{Ordering, fence};

/// The smallest data-cache line, in bytes, from a `CTR_EL0` value: `DminLine` (bits
/// \[19:16\]) is log2 of the line in 4-byte words, so the line is `4 << DminLine` bytes.
pub fn dminline_bytes(ctr: u64) -> usize {
    4usize << ((ctr >> 16) & 0xf)
}

/// The address of every `line`-byte cache line that holds a byte of `start..start+len`,
/// in increasing order (none when `len` is 0).
///
/// # Panics
///
/// If `line` is not a power of two, or the range wraps around the address space.
pub fn line_addrs(start: usize, len: usize, line: usize) -> impl Iterator<Item = usize> + Clone {
    assert!(
        line.is_power_of_two(),
        "cache line size {line} is not a power of two"
    );
    let first = start & !(line - 1);
    let count = match len {
        0 => 0,
        _ => {
            // The last byte, not one past it: a range may end at the top of the space.
            let last = start
                .checked_add(len - 1)
                .expect("cache maintenance range wraps the address space");
            (last - first) / line + 1
        }
    };
    (0..count).map(move |i| first + i * line)
}

/// The address of region offset `off`, after checking `off..off+len` lies in the region.
/// The core computes these ranges from its own validated bookkeeping, so a range outside is
/// a bug there, reported as such — never an access outside the mapping.
fn region_addr<M: SharedMemory + ?Sized>(mem: &M, off: usize, len: usize) -> usize {
    assert!(
        off.checked_add(len).is_some_and(|end| end <= mem.len()),
        "intercore bug: cache maintenance of {off:#x}+{len:#x} outside a {:#x}-byte region",
        mem.len()
    );
    mem.as_ptr() as usize + off
}

/// The data-cache line of this CPU: `CTR_EL0` on aarch64, 64 bytes elsewhere.
pub fn native_line_size() -> usize {
    #[cfg(target_arch = "aarch64")]
    {
        dminline_bytes(el0::read_ctr_el0())
    }
    #[cfg(not(target_arch = "aarch64"))]
    {
        64
    }
}

#[cfg(target_arch = "aarch64")]
mod el0 {
    //! The three ARM64 instructions, one `asm!` each. None is marked `nomem` except the
    //! register read: the compiler must not move loads or stores of the buffer across a
    //! cache maintenance instruction or the barrier.
    use core::arch::asm;

    /// Reads `CTR_EL0`.
    pub(super) fn read_ctr_el0() -> u64 {
        let ctr: u64;
        // SAFETY: reading CTR_EL0 has no side effect. Linux allows it at EL0
        // (SCTLR_EL1.UCT), or traps and emulates it with the system-wide safe value.
        unsafe {
            asm!(
                "mrs {ctr}, ctr_el0",
                ctr = out(reg) ctr,
                options(nomem, nostack, preserves_flags)
            )
        };
        ctr
    }

    /// `DC CVAC` on each line, then `DSB SY`: the lines are written back to the point of
    /// coherency before anything after this call (the doorbell that hands the buffer over).
    pub(super) fn clean(lines: impl Iterator<Item = usize>) {
        for a in lines {
            // SAFETY: DC CVAC is permitted at EL0 on Linux (SCTLR_EL1.UCI). `a` lies in a
            // live, readable and writable mapping (the caller checked the range against the
            // region), so it cannot fault; cleaning changes no memory contents.
            unsafe { asm!("dc cvac, {a}", a = in(reg) a, options(nostack, preserves_flags)) };
        }
        dsb_sy();
    }

    /// `DC CIVAC` on each line, then `DSB SY`: later reads of the lines come from memory.
    /// Never `DC IVAC`, which is EL1-only (SIGILL at EL0).
    pub(super) fn clean_invalidate(lines: impl Iterator<Item = usize>) {
        for a in lines {
            // SAFETY: DC CIVAC is permitted at EL0 on Linux (SCTLR_EL1.UCI). `a` lies in a
            // live, readable and writable mapping (checked by the caller); a dirty line is
            // written back before it is invalidated, so no data the CPU wrote is lost.
            unsafe { asm!("dc civac, {a}", a = in(reg) a, options(nostack, preserves_flags)) };
        }
        dsb_sy();
    }

    fn dsb_sy() {
        // SAFETY: a barrier: waits for the maintenance above to complete; touches no memory
        // itself, and is an ordinary EL0 instruction.
        unsafe { asm!("dsb sy", options(nostack, preserves_flags)) };
    }
}

/// Cache maintenance with the ARM64 instructions Linux allows at EL0: `DC CVAC` per line
/// to clean, `DC CIVAC` per line to invalidate (clean+invalidate; `DC IVAC` would raise
/// SIGILL), each range finished with `DSB SY`. The line size comes from `CTR_EL0`.
///
/// Only the lines of the range asked for are touched, so other buffers of the region are
/// unaffected and the value may be shared between threads.
#[cfg(target_arch = "aarch64")]
#[derive(Debug)]
pub struct Arm64El0Cache<M: SharedMemory> {
    mem: M,
    line: usize,
}

#[cfg(target_arch = "aarch64")]
impl<M: SharedMemory> Arm64El0Cache<M> {
    /// Cache maintenance over `mem`, whose base must be aligned to the cache line (every
    /// mapping is: it is page-aligned).
    pub fn new(mem: M) -> io::Result<Self> {
        let line = dminline_bytes(el0::read_ctr_el0());
        let base = mem.as_ptr();
        if base.is_null() || (base as usize) % line != 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "region at {base:p} is not aligned to the {line}-byte cache line (or has no direct mapping)"
                ),
            ));
        }
        Ok(Self { mem, line })
    }

    /// The region.
    pub fn memory(&self) -> &M {
        &self.mem
    }

    /// Gives the region back.
    pub fn into_inner(self) -> M {
        self.mem
    }
}

// SAFETY: the CPU's view is the region's own mapping, valid for reads and writes for
// `mem`'s lifetime by `SharedMemory`'s contract; `new` checked that its base is aligned to
// the line size, and this type creates no references into it.
#[cfg(target_arch = "aarch64")]
unsafe impl<M: SharedMemory> CacheOps for Arm64El0Cache<M> {
    fn line_size(&self) -> usize {
        self.line
    }
    fn region_len(&self) -> usize {
        self.mem.len()
    }
    fn cpu_ptr(&self) -> *mut u8 {
        self.mem.as_ptr()
    }
    fn clean(&self, _buf: u32, off: usize, len: usize) {
        let start = region_addr(&self.mem, off, len);
        el0::clean(line_addrs(start, len, self.line));
    }
    fn invalidate(&self, _buf: u32, off: usize, len: usize) {
        let start = region_addr(&self.mem, off, len);
        el0::clean_invalidate(line_addrs(start, len, self.line));
    }
}

/// Issues `DMA_BUF_IOCTL_SYNC` with `flags`, retrying when a signal interrupts it.
fn dma_buf_sync(fd: BorrowedFd<'_>, flags: u64) -> io::Result<()> {
    crate::sys::ioctl::ioctl_in(
        fd,
        crate::sys::ioctl::DMA_BUF_IOCTL_SYNC,
        &DmaBufSync { flags },
    )
    .map(|_| ())
}

/// Cache maintenance through the dma-buf synchronisation ioctl, for a region that is the
/// CPU mapping of a dma-buf (`M` gives both: the mapping as [`SharedMemory`], the dma-buf
/// descriptor as [`AsFd`]) — e.g. a [`UdmabufRegion`](crate::UdmabufRegion) or a
/// [`DmaHeapRegion`](crate::DmaHeapRegion).
///
/// The mapping onto the kernel's CPU-access brackets:
///
/// | `CacheOps` | ioctl | kernel | arm64, non-coherent exporter |
/// |---|---|---|---|
/// | `clean` | `END \| WRITE` | `end_cpu_access(DMA_TO_DEVICE)` → `dma_sync_*_for_device` | clean to PoC |
/// | `invalidate` | `END \| WRITE`, then `START \| READ` | … then `begin_cpu_access(DMA_FROM_DEVICE)` → `dma_sync_*_for_cpu` | clean, then invalidate |
///
/// * `clean` is not followed by `START | WRITE`: that is `begin_cpu_access(DMA_TO_DEVICE)`,
///   which on arm64 does nothing (`arch_sync_dma_for_cpu` returns early for `TO_DEVICE`),
///   and the kernel does not require the brackets to pair.
/// * `invalidate` cleans first because the ioctl covers the whole dma-buf, not the range
///   asked for, and the kernel's invalidate (`DC IVAC` at EL1) **discards** dirty lines:
///   without the clean, lines the CPU has written in *other* buffers of the region and
///   not yet handed over would be lost. The clean writes them back first.
/// * For the same reason this type is `Send` but **not `Sync`**: a write from another thread
///   into another buffer of the region, landing between the clean and the invalidate,
///   would be discarded. A pool built on it therefore stays on one thread (the compiler
///   enforces it). Other *processes* writing the same dma-buf are the caller's to exclude.
/// * Cost grows with the whole buffer's size, not the range: prefer small dma-bufs.
///
/// **What the ioctl does depends on the exporter.** udmabuf really cleans and invalidates
/// on arm64 (its sync goes through the udmabuf misc device, which is not DMA-coherent).
/// Mainline **system and CMA heaps sync only for kernel devices attached to the buffer**:
/// with a remote core as the only consumer nothing is attached, and the ioctl succeeds
/// while doing **no cache maintenance at all**. Over such a mapping use `Arm64El0Cache`
/// (aarch64) instead, or a vendor heap known to sync.
///
/// ```compile_fail
/// // Not `Sync`: its whole-buffer invalidate must not race CPU writes on other threads.
/// fn sync<T: Sync>() {}
/// sync::<intercore_linux::DmaBufCache<intercore_linux::UdmabufRegion>>();
/// ```
#[derive(Debug)]
pub struct DmaBufCache<M: SharedMemory + AsFd> {
    mem: M,
    line: usize,
    _not_sync: PhantomData<Cell<()>>,
}

impl<M: SharedMemory + AsFd> DmaBufCache<M> {
    /// Cache maintenance over the dma-buf mapping `mem`, with this CPU's line size
    /// ([`native_line_size`]).
    ///
    /// Checks that the descriptor is a dma-buf that accepts `DMA_BUF_IOCTL_SYNC`, with one
    /// clean (`END | WRITE`, which never loses data). udmabuf refuses an `END` before the
    /// first `START` (its scatter list is built there, `EINVAL` before), so in that case a
    /// first `START | RW` is issued instead — which, being the first, maps the buffer for
    /// the device and so also only cleans.
    pub fn new(mem: M) -> io::Result<Self> {
        Self::with_line_size(mem, native_line_size())
    }

    /// As [`new`](Self::new), reporting `line` as the cache line (a power of two, at least
    /// [`native_line_size`]: a larger value only makes the pool align buffers further
    /// apart).
    pub fn with_line_size(mem: M, line: usize) -> io::Result<Self> {
        if !line.is_power_of_two() || line < native_line_size() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "cache line {line} must be a power of two of at least {}",
                    native_line_size()
                ),
            ));
        }
        let base = mem.as_ptr();
        if base.is_null() || (base as usize) % line != 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("mapping at {base:p} is not aligned to the {line}-byte cache line"),
            ));
        }
        let fd = mem.as_fd();
        match dma_buf_sync(fd, DMA_BUF_SYNC_END | DMA_BUF_SYNC_WRITE) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                dma_buf_sync(fd, DMA_BUF_SYNC_START | DMA_BUF_SYNC_RW).map_err(|e| {
                    io::Error::new(
                        e.kind(),
                        format!("the dma-buf refused DMA_BUF_IOCTL_SYNC START|RW: {e}"),
                    )
                })?;
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOTTY) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "not a dma-buf: the descriptor does not know DMA_BUF_IOCTL_SYNC (ENOTTY)",
                ));
            }
            // Never a kernel's answer to this ioctl: qemu-user's, for ioctls it cannot forward.
            Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    "DMA_BUF_IOCTL_SYNC is not implemented here (ENOSYS): an emulator such as qemu-user that does not forward it",
                ));
            }
            Err(e) => {
                return Err(io::Error::new(
                    e.kind(),
                    format!("the dma-buf refused DMA_BUF_IOCTL_SYNC END|WRITE: {e}"),
                ));
            }
        }
        Ok(Self {
            mem,
            line,
            _not_sync: PhantomData,
        })
    }

    /// The region.
    pub fn memory(&self) -> &M {
        &self.mem
    }

    /// Gives the region back.
    pub fn into_inner(self) -> M {
        self.mem
    }

    /// Issues `DMA_BUF_IOCTL_SYNC` with raw `DMA_BUF_SYNC_*` flags, for callers that
    /// bracket CPU access themselves.
    pub fn sync(&self, flags: u64) -> io::Result<()> {
        dma_buf_sync(self.mem.as_fd(), flags)
    }

    fn sync_or_panic(&self, flags: u64, what: &str) {
        if let Err(e) = dma_buf_sync(self.mem.as_fd(), flags) {
            // `new` proved the descriptor accepts the ioctl; a later refusal leaves the
            // peer or the CPU with stale data, which must not pass silently.
            panic!("DMA_BUF_IOCTL_SYNC ({what}, flags {flags:#x}) failed after it had worked: {e}");
        }
    }
}

// SAFETY: the CPU's view is the dma-buf's own mapping, valid for reads and writes for
// `mem`'s lifetime by `SharedMemory`'s contract; `with_line_size` checked its alignment to
// the line, and this type creates no references into it.
unsafe impl<M: SharedMemory + AsFd> CacheOps for DmaBufCache<M> {
    fn line_size(&self) -> usize {
        self.line
    }
    fn region_len(&self) -> usize {
        self.mem.len()
    }
    fn cpu_ptr(&self) -> *mut u8 {
        self.mem.as_ptr()
    }
    /// # Panics
    /// If the kernel refuses the ioctl (after `new` saw it accepted).
    fn clean(&self, _buf: u32, off: usize, len: usize) {
        region_addr(&self.mem, off, len);
        if len == 0 {
            return;
        }
        // Release: the CPU's writes to the buffer are ordered before the maintenance.
        fence(Ordering::Release);
        self.sync_or_panic(DMA_BUF_SYNC_END | DMA_BUF_SYNC_WRITE, "clean");
    }
    /// # Panics
    /// If the kernel refuses the ioctl (after `new` saw it accepted).
    fn invalidate(&self, _buf: u32, off: usize, len: usize) {
        region_addr(&self.mem, off, len);
        if len == 0 {
            return;
        }
        self.sync_or_panic(
            DMA_BUF_SYNC_END | DMA_BUF_SYNC_WRITE,
            "clean before invalidate",
        );
        self.sync_or_panic(DMA_BUF_SYNC_START | DMA_BUF_SYNC_READ, "invalidate");
        // Acquire: reads of the buffer are ordered after the maintenance.
        fence(Ordering::Acquire);
    }
}

// ---- u-dma-buf: the driver's sysfs sync attributes ------------------------------------------

/// Cache maintenance of a [`UDmaBufRegion`](crate::UDmaBufRegion) through the u-dma-buf
/// driver's sysfs attributes ([`UDmaBufSync`](crate::UDmaBufSync)): `clean` sets the line
/// span of the range and writes `sync_for_device` (`dma_sync_single_for_device`, a clean to
/// the point of coherency on a non-coherent arm64 device); `invalidate` first cleans the
/// same span, then writes `sync_for_cpu` (`dma_sync_single_for_cpu`, an invalidate), so no
/// CPU write in the span's partial lines is lost. Unlike `DMA_BUF_IOCTL_SYNC` it covers
/// only the range's lines, not the whole buffer. When the driver says `dma_coherent = 1`
/// the kernel does nothing and `coherent` would serve as well.
///
/// Every call is two to five `pwrite`s into sysfs (a few microseconds each): on aarch64
/// `Arm64El0Cache` over the same cacheable mapping does the same work without system
/// calls. Not `Sync`, like [`DmaBufCache`]: the sync range is one per device.
#[derive(Debug)]
pub struct UDmaBufCache {
    mem: crate::UDmaBufRegion,
    sync: crate::UDmaBufSync,
    line: usize,
    _not_sync: PhantomData<Cell<()>>,
}

impl UDmaBufCache {
    /// Maintenance of `mem` with this CPU's line size.
    pub fn new(mem: crate::UDmaBufRegion) -> Result<Self, crate::MemError> {
        let sync = mem.sync_handle()?;
        Self::with_sync(mem, sync, native_line_size())
    }

    /// As [`new`](Self::new) with the sync handle and the line size given (a power of two
    /// of at least [`native_line_size`]).
    pub fn with_sync(
        mem: crate::UDmaBufRegion,
        sync: crate::UDmaBufSync,
        line: usize,
    ) -> Result<Self, crate::MemError> {
        if !line.is_power_of_two() || line < native_line_size() {
            return Err(crate::MemError::InvalidRequest(format!(
                "cache line {line} must be a power of two of at least {}",
                native_line_size()
            )));
        }
        if (mem.as_ptr() as usize) % line != 0 {
            return Err(crate::MemError::InvalidRequest(format!(
                "mapping at {:p} is not aligned to the {line}-byte cache line",
                mem.as_ptr()
            )));
        }
        Ok(Self {
            mem,
            sync,
            line,
            _not_sync: PhantomData,
        })
    }

    /// The region.
    pub fn memory(&self) -> &crate::UDmaBufRegion {
        &self.mem
    }

    fn span(&self, off: usize, len: usize) -> (u64, u64) {
        let (s, n) = intercore::dataplane::line_span(self.line, off, len);
        // The last line may reach past a region that is not a whole number of lines.
        let n = n.min(self.mem.len() - s);
        (s as u64, n as u64)
    }
}

// SAFETY: the CPU's view is the u-dma-buf mapping, valid for reads and writes for `mem`'s
// lifetime by `SharedMemory`'s contract; `with_sync` checked its alignment to the line,
// and this type creates no references into it.
unsafe impl CacheOps for UDmaBufCache {
    fn line_size(&self) -> usize {
        self.line
    }
    fn region_len(&self) -> usize {
        self.mem.len()
    }
    fn cpu_ptr(&self) -> *mut u8 {
        self.mem.as_ptr()
    }
    /// # Panics
    /// If the driver refuses the write (the peer would read stale data).
    fn clean(&self, _buf: u32, off: usize, len: usize) {
        region_addr(&self.mem, off, len);
        if len == 0 {
            return;
        }
        fence(Ordering::Release);
        let (s, n) = self.span(off, len);
        if let Err(e) = self
            .sync
            .for_device(s, n, crate::SyncDirection::Bidirectional)
        {
            panic!("u-dma-buf clean of {s:#x}+{n:#x} failed: {e}");
        }
    }
    /// # Panics
    /// If the driver refuses a write (the CPU would read stale data).
    fn invalidate(&self, _buf: u32, off: usize, len: usize) {
        region_addr(&self.mem, off, len);
        if len == 0 {
            return;
        }
        let (s, n) = self.span(off, len);
        if let Err(e) = self
            .sync
            .for_device(s, n, crate::SyncDirection::Bidirectional)
            .and_then(|()| self.sync.for_cpu(s, n, crate::SyncDirection::Bidirectional))
        {
            panic!("u-dma-buf invalidate of {s:#x}+{n:#x} failed: {e}");
        }
        fence(Ordering::Acquire);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemfdRegion;

    /// A memfd mapping with its descriptor, to offer `DmaBufCache` something that is not a
    /// dma-buf.
    #[derive(Debug)]
    struct MemfdWithFd(MemfdRegion);
    // SAFETY: forwards to `MemfdRegion`, whose mapping lives as long as the wrapper.
    unsafe impl SharedMemory for MemfdWithFd {
        fn as_ptr(&self) -> *mut u8 {
            self.0.as_ptr()
        }
        fn len(&self) -> usize {
            self.0.len()
        }
    }
    impl AsFd for MemfdWithFd {
        fn as_fd(&self) -> BorrowedFd<'_> {
            self.0.fd()
        }
    }
    fn memfd() -> MemfdWithFd {
        MemfdWithFd(MemfdRegion::create("intercore-cache-test", 4096).unwrap())
    }

    /// `CTR_EL0.DminLine` (bits \[19:16\], log2 of 4-byte words) decodes to `4 << DminLine`
    /// bytes, ignoring every other field (Arm ARM, CTR_EL0). 0x8444_C004 is a Cortex-A53's
    /// value (DminLine 4: 64-byte lines); 0x8303_C003 has DminLine 3 (32 bytes).
    #[test]
    fn ctr_el0_dminline_decoding() {
        assert_eq!(dminline_bytes(0x8444_c004), 64);
        assert_eq!(dminline_bytes(0x8303_c003), 32);
        assert_eq!(dminline_bytes(0), 4);
        assert_eq!(dminline_bytes(0xf << 16), 4 << 15);
        // Bits outside [19:16] (IminLine, L1Ip, ERG, CWG, IDC, DIC) change nothing.
        assert_eq!(dminline_bytes(!(0xfu64 << 16) | (4 << 16)), 64);
    }

    /// A range covers exactly the lines holding its bytes: a partial first and last line
    /// are included (as the kernel's `dcache_clean_poc` aligns the start down and walks to
    /// the end), an empty range covers none.
    #[test]
    fn line_walk_covers_exactly_the_touched_lines() {
        let v: Vec<_> = line_addrs(0x1000, 64, 64).collect();
        assert_eq!(v, [0x1000]);
        let v: Vec<_> = line_addrs(0x103f, 2, 64).collect();
        assert_eq!(v, [0x1000, 0x1040]);
        let v: Vec<_> = line_addrs(0x1001, 0x80, 64).collect();
        assert_eq!(v, [0x1000, 0x1040, 0x1080]);
        assert_eq!(line_addrs(0x1010, 0, 64).count(), 0);
        assert_eq!(line_addrs(0, 4096, 32).count(), 128);
        // The last line of the address space is reachable without overflow.
        let top = usize::MAX - 63;
        assert_eq!(line_addrs(top, 64, 64).collect::<Vec<_>>(), [top]);
    }

    /// Every byte of a range lies in exactly one listed line, for many ranges and sizes.
    #[test]
    fn line_walk_property() {
        for line in [16usize, 32, 64, 128] {
            for start in 0..300usize {
                for len in [0usize, 1, 2, 63, 64, 65, 200] {
                    let lines: Vec<_> = line_addrs(start, len, line).collect();
                    assert!(lines.windows(2).all(|w| w[1] == w[0] + line));
                    assert!(lines.iter().all(|a| a % line == 0));
                    if len == 0 {
                        assert!(lines.is_empty());
                        continue;
                    }
                    assert_eq!(lines[0], start / line * line);
                    assert_eq!(*lines.last().unwrap(), (start + len - 1) / line * line);
                }
            }
        }
    }

    /// A non-power-of-two line size is a bug, refused loudly.
    #[test]
    #[should_panic(expected = "not a power of two")]
    fn line_walk_rejects_bad_line() {
        let _ = line_addrs(0, 1, 48);
    }

    /// Range checks against the region name the bug instead of touching memory outside.
    #[test]
    #[should_panic(expected = "outside")]
    fn range_outside_region_panics() {
        let m = MemfdRegion::create("intercore-cache-test", 4096).unwrap();
        region_addr(&m, 4000, 97);
    }

    /// A memfd is not a dma-buf: the real kernel answers `DMA_BUF_IOCTL_SYNC` with ENOTTY,
    /// and `DmaBufCache::new` reports that clearly (dma-buf.h's ioctl, dma_buf_ioctl()).
    /// Under qemu-user, which does not forward the ioctl (ENOSYS), it says that instead.
    #[test]
    fn dma_buf_cache_refuses_a_non_dmabuf() {
        let e = DmaBufCache::new(memfd()).unwrap_err();
        match e.kind() {
            io::ErrorKind::InvalidInput => assert!(e.to_string().contains("not a dma-buf"), "{e}"),
            // qemu-user answers ENOSYS for ioctls it does not forward.
            io::ErrorKind::Unsupported => assert!(e.to_string().contains("qemu"), "{e}"),
            _ => panic!("unexpected error {e}"),
        }
    }

    /// ARM64 only (a board, or qemu-aarch64): the EL0 instructions run for real. `CTR_EL0`
    /// is readable at EL0 and gives a sane line; `DC CVAC` and `DC CIVAC` over aligned,
    /// unaligned, single-byte and whole-region ranges do not trap (`DC IVAC` would be
    /// SIGILL and kill this test); clean+invalidate keeps what the CPU wrote.
    #[cfg(target_arch = "aarch64")]
    #[test]
    fn arm64_el0_maintenance_runs_and_keeps_data() {
        let m = MemfdRegion::create("intercore-arm64-cache", 3 * 4096).unwrap();
        let c = Arm64El0Cache::new(m).unwrap();
        let line = c.line_size();
        assert!(
            line.is_power_of_two() && (16..=2048).contains(&line),
            "{line}"
        );
        assert_eq!(line, native_line_size());
        let pattern: Vec<u8> = (0..3 * 4096).map(|i| (i * 7 + 3) as u8).collect();
        c.memory().write(0, &pattern);
        for (off, len) in [
            (0, 1),
            (1, 63),
            (63, 2),
            (100, 1000),
            (4095, 2),
            (0, 3 * 4096),
        ] {
            c.clean(0, off, len);
            c.invalidate(0, off, len);
        }
        c.clean(0, 12 * 1024 - 1, 1);
        c.invalidate(0, 5, 0);
        let mut back = vec![0u8; 3 * 4096];
        c.memory().read(0, &mut back);
        assert_eq!(back, pattern, "clean+invalidate must never lose CPU writes");
    }

    /// Every backend is a `CacheOps` the core's pool accepts; the dma-buf one is `Send`
    /// (its `!Sync` is a compile_fail doc test on the type).
    #[test]
    fn backends_fit_the_core_traits() {
        fn cache_ops<C: CacheOps>() {}
        fn send<T: Send>() {}
        cache_ops::<DmaBufCache<crate::UdmabufRegion>>();
        cache_ops::<DmaBufCache<&crate::DmaHeapRegion>>();
        send::<DmaBufCache<crate::UdmabufRegion>>();
        #[cfg(target_arch = "aarch64")]
        {
            fn sync<T: Sync>() {}
            cache_ops::<Arm64El0Cache<crate::PhysCarveout>>();
            sync::<Arm64El0Cache<crate::UdmabufRegion>>();
        }
    }

    /// A reported line must be a power of two no smaller than the CPU's.
    #[test]
    fn dma_buf_cache_line_validation() {
        let e = DmaBufCache::with_line_size(memfd(), 48).unwrap_err();
        assert!(e.to_string().contains("power of two"), "{e}");
    }
}
