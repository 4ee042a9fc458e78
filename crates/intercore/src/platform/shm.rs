//! Shared memory, as the core sees it: a byte range that another core (or process) reads
//! and writes concurrently.
//!
//! This is one of the places in the core crate where `unsafe` is allowed (the crate
//! documentation lists them). All other
//! modules reach shared memory only through the accessors here, which check bounds and
//! alignment, and through [`OwnedRange`], the proof that this side exclusively owns a byte
//! range (a buffer whose descriptor is not in any ring).
//!
//! **Device memory.** On arm64, Linux maps UIO regions and `/dev/mem` no-map carveouts as
//! Device memory (`pgprot_noncached`, Device-nGnRnE), where an unaligned access faults
//! (alignment fault, SIGBUS) and `DC ZVA` faults too, while `memcpy`/`memset` use both
//! freely. So every copy into or out of shared memory here — the provided
//! [`SharedMemory::read`]/[`SharedMemory::write`], the zero-copy views' copy helpers, the
//! ELF loader's target — goes through [`copy_from_shared`], [`copy_to_shared`] and
//! [`fill_shared`]: volatile accesses, each naturally aligned and at most a machine word
//! wide (byte, halfword and word accesses for an unaligned head and tail), never a
//! multi-byte unaligned access and never a cache-zeroing instruction. Whether a region
//! needs this is its [`SharedMemory::device_memory`], true unless the implementation knows
//! its mapping is Normal memory (docs/ARCHITECTURE.md, "Device memory", says why).
#![allow(unsafe_code)]

use core::sync::atomic::{AtomicU16, AtomicU32, Ordering};

/// A region of memory shared with the peer.
///
/// The provided methods implement every access on top of [`as_ptr`](Self::as_ptr) and
/// [`len`](Self::len); a model (for example a loom model of the rings) may override them
/// and return a null pointer, in which case zero-copy views are unavailable. An
/// implementation that overrides them keeps their behaviour, which
/// `intercore::testing::conformance::shared_memory` (feature `test-utils`) checks for every
/// implementation: bytes read back as written, touching nothing around them; the atomic
/// accessors agree with the byte accessors, little-endian; an access that leaves the region,
/// overflows or is misaligned panics before touching memory (an empty access at the end is
/// in bounds); a Release store publishes the writes before it to an Acquire load on another
/// thread.
///
/// Offsets and values are little-endian on every host, as virtio and rpmsg lay them out:
/// the atomic accessors convert at this one access point (free on a little-endian CPU).
///
/// ```
/// use core::cell::UnsafeCell;
/// use core::sync::atomic::Ordering;
/// use intercore::platform::SharedMemory;
///
/// /// 4 KiB of process memory: 8-aligned, mutable through `&self`.
/// struct Heap(Box<[UnsafeCell<u64>]>);
///
/// // SAFETY: the boxed slice lives as long as the value, is 8-aligned and `len()` bytes
/// // long, and `UnsafeCell` permits mutation through `&self`; nothing else references it.
/// unsafe impl SharedMemory for Heap {
///     fn as_ptr(&self) -> *mut u8 {
///         self.0.as_ptr().cast_mut().cast()
///     }
///     fn len(&self) -> usize {
///         self.0.len() * 8
///     }
/// }
///
/// let mem = Heap((0..512).map(|_| UnsafeCell::new(0)).collect());
/// mem.write(0x10, &[0x34, 0x12]); // a little-endian u16, as a peer writes it
/// assert_eq!(mem.load_u16(0x10, Ordering::Acquire), 0x1234);
/// mem.store_u32(0x20, 7, Ordering::Release);
/// let mut out = [0; 4];
/// mem.read(0x20, &mut out);
/// assert_eq!(out, [7, 0, 0, 0]);
/// ```
///
/// # Safety
///
/// An implementor guarantees that, for as long as the value lives, `as_ptr()` is either
/// null or points to `len()` bytes that are valid for reads and writes (also through
/// atomic accesses), aligned to at least 8, and never referenced by Rust references created
/// outside this module. Overridden access methods must touch only offsets inside `0..len()`.
pub unsafe trait SharedMemory {
    /// Base address of the mapping, or null for a model without direct access.
    fn as_ptr(&self) -> *mut u8;
    /// Length of the region in bytes.
    fn len(&self) -> usize;

    /// Whether the region is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the mapping may be Device memory (arm64 maps UIO regions and `/dev/mem`
    /// no-map carveouts so), where unaligned accesses and `DC ZVA` fault: then every copy
    /// into or out of the region — the provided [`read`](Self::read) and
    /// [`write`](Self::write), the zero-copy views' copy helpers — makes naturally aligned
    /// accesses only ([`copy_from_shared`]), which costs about twice a `memcpy` on Normal
    /// memory. True unless overridden: an implementation returns false only when it knows
    /// its mapping is Normal memory (anonymous, memfd, dma-buf pages), which lets the
    /// copies use `memcpy`.
    fn device_memory(&self) -> bool {
        true
    }

    /// Atomically loads the little-endian u16 at `off` (virtio and rpmsg fields are
    /// little-endian whatever the host: the conversion is here, at the one access point,
    /// and costs nothing on a little-endian CPU). Panics if `off` is out of range or
    /// unaligned: callers compute offsets from validated values, so that is a bug in this
    /// crate, never peer input.
    fn load_u16(&self, off: usize, order: Ordering) -> u16 {
        let p = checked_ptr(self, off, 2, 2);
        // SAFETY: `checked_ptr` proved `off..off+2` lies inside the mapping the trait's
        // contract makes valid, and that it is 2-aligned; shared memory is only ever accessed
        // atomically or through raw copies, never through `&`/`&mut` references.
        u16::from_le(unsafe { AtomicU16::from_ptr(p.cast()) }.load(order))
    }
    /// Atomically stores `v` at `off`, little-endian.
    fn store_u16(&self, off: usize, v: u16, order: Ordering) {
        let p = checked_ptr(self, off, 2, 2);
        // SAFETY: as in `load_u16`.
        unsafe { AtomicU16::from_ptr(p.cast()) }.store(v.to_le(), order)
    }
    /// Atomically loads the little-endian u32 at `off`.
    fn load_u32(&self, off: usize, order: Ordering) -> u32 {
        let p = checked_ptr(self, off, 4, 4);
        // SAFETY: as in `load_u16`, with 4-byte size and alignment checked.
        u32::from_le(unsafe { AtomicU32::from_ptr(p.cast()) }.load(order))
    }
    /// Atomically stores `v` at `off`, little-endian.
    fn store_u32(&self, off: usize, v: u32, order: Ordering) {
        let p = checked_ptr(self, off, 4, 4);
        // SAFETY: as in `load_u32`.
        unsafe { AtomicU32::from_ptr(p.cast()) }.store(v.to_le(), order)
    }
    /// Copies `dst.len()` bytes from `off` into `dst`. The peer may be writing the same
    /// bytes; the copy may then be torn, which is why callers validate what they copied.
    ///
    /// The provided implementation reads the region with naturally aligned accesses only
    /// (see the module's note on Device memory), so it is safe on UIO and `/dev/mem` maps.
    fn read(&self, off: usize, dst: &mut [u8]) {
        let p = checked_ptr(self, off, dst.len(), 1);
        // SAFETY: the source range is inside the mapping (checked), valid for reads by the
        // trait's contract, and cannot overlap `dst`, a Rust reference, because the contract
        // forbids references into the mapping; Normal memory takes any access `memcpy`
        // makes.
        unsafe {
            if self.device_memory() {
                copy_in(p, dst.as_mut_ptr(), dst.len())
            } else {
                core::ptr::copy_nonoverlapping(p, dst.as_mut_ptr(), dst.len())
            }
        }
    }
    /// Copies `src` into the region at `off`, with naturally aligned accesses only, as
    /// [`read`](Self::read).
    fn write(&self, off: usize, src: &[u8]) {
        let p = checked_ptr(self, off, src.len(), 1);
        // SAFETY: as in `read`, with the roles of source and destination exchanged.
        unsafe {
            if self.device_memory() {
                copy_out(src.as_ptr(), p, src.len())
            } else {
                core::ptr::copy_nonoverlapping(src.as_ptr(), p, src.len())
            }
        }
    }
    /// A memory fence of the given ordering (a model replaces it with its own).
    fn fence(&self, order: Ordering) {
        core::sync::atomic::fence(order)
    }
    /// Told, each time this crate hands out a zero-copy view of `off..off+len` (a payload
    /// slice of a received or transmit buffer), whether the view is for writing. Views are
    /// accessed through plain slices, not through this trait, so an implementation that
    /// observes accesses (`intercore::testing::counting`, which counts a view as one pass
    /// over its bytes) learns of them here. Does nothing by default; it must not touch
    /// the region.
    fn note_view(&self, off: usize, len: usize, write: bool) {
        let _ = (off, len, write);
    }
}

fn checked_ptr<M: SharedMemory + ?Sized>(m: &M, off: usize, size: usize, align: usize) -> *mut u8 {
    let base = m.as_ptr();
    let end = off.checked_add(size);
    assert!(
        !base.is_null() && end.is_some_and(|e| e <= m.len()) && off % align == 0,
        "intercore bug: shared-memory access at {off:#x}+{size} outside a {:#x}-byte region or misaligned",
        m.len()
    );
    // Alignment of the base is part of the trait's contract; the offset keeps it.
    base.wrapping_add(off)
}

/// The widest access the aligned copies make: a machine word (8 bytes on arm64 and
/// x86-64, 4 on the 32-bit cores). The trait guarantees the base is 8-aligned, so an
/// offset's alignment is the address's.
const WORD: usize = core::mem::size_of::<usize>();

/// Plans the accesses of an aligned copy of `len` bytes whose shared-memory side starts at
/// address `addr`: calls `f(pos, width)` for consecutive pieces covering `0..len` in order,
/// each `width` a power of two at most [`WORD`] with `(addr + pos) % width == 0`. The
/// head takes the widest aligned piece that fits until `addr + pos` is word-aligned; the
/// middle is whole words; the tail narrows again (so 7 bytes at an 8-aligned address are
/// 4 + 2 + 1, never an unaligned word).
#[inline(always)]
fn for_each_access(addr: usize, len: usize, mut f: impl FnMut(usize, usize)) {
    // The widest naturally aligned piece at `at` no longer than `left`.
    let piece = |at: usize, left: usize| {
        let mut w = WORD;
        while w > 1 && (at % w != 0 || w > left) {
            w /= 2;
        }
        w
    };
    let mut pos = 0;
    while pos < len && (addr + pos) % WORD != 0 {
        let w = piece(addr + pos, len - pos);
        f(pos, w);
        pos += w;
    }
    // Four words per iteration where they fit (the loads of one step issue back to back).
    while len - pos >= 4 * WORD {
        f(pos, WORD);
        f(pos + WORD, WORD);
        f(pos + 2 * WORD, WORD);
        f(pos + 3 * WORD, WORD);
        pos += 4 * WORD;
    }
    while len - pos >= WORD {
        f(pos, WORD);
        pos += WORD;
    }
    while pos < len {
        let w = piece(addr + pos, len - pos);
        f(pos, w);
        pos += w;
    }
}

/// One aligned volatile read of `w` bytes from shared memory at `s`, stored (unaligned,
/// normal memory) at `d`.
///
/// # Safety
/// `s..s+w` is valid for reads and aligned to `w`; `d..d+w` is valid for writes.
#[inline(always)]
unsafe fn move_in(s: *const u8, d: *mut u8, w: usize) {
    #[cfg(test)]
    tests::probe(s as usize, w, false);
    // SAFETY: (all arms) the caller guarantees both ranges and `s`'s alignment to `w`.
    unsafe {
        match w {
            8 => d
                .cast::<u64>()
                .write_unaligned(s.cast::<u64>().read_volatile()),
            4 => d
                .cast::<u32>()
                .write_unaligned(s.cast::<u32>().read_volatile()),
            2 => d
                .cast::<u16>()
                .write_unaligned(s.cast::<u16>().read_volatile()),
            _ => d.write(s.read_volatile()),
        }
    }
}

/// As [`move_in`], the other way: an aligned volatile write of `w` bytes at `d` (shared
/// memory) from the (possibly unaligned, normal-memory) bytes at `s`.
///
/// # Safety
/// `s..s+w` is valid for reads; `d..d+w` is valid for writes and aligned to `w`.
#[inline(always)]
unsafe fn move_out(s: *const u8, d: *mut u8, w: usize) {
    #[cfg(test)]
    tests::probe(d as usize, w, true);
    // SAFETY: (all arms) the caller guarantees both ranges and `d`'s alignment to `w`.
    unsafe {
        match w {
            8 => d
                .cast::<u64>()
                .write_volatile(s.cast::<u64>().read_unaligned()),
            4 => d
                .cast::<u32>()
                .write_volatile(s.cast::<u32>().read_unaligned()),
            2 => d
                .cast::<u16>()
                .write_volatile(s.cast::<u16>().read_unaligned()),
            _ => d.write_volatile(s.read()),
        }
    }
}

/// Copies `n` bytes from shared memory at `src` to `dst` with aligned accesses on the
/// shared side.
///
/// # Safety
/// `src..src+n` valid for reads, `dst..dst+n` valid for writes, the two not overlapping.
unsafe fn copy_in(src: *const u8, dst: *mut u8, n: usize) {
    for_each_access(src as usize, n, |pos, w| {
        // SAFETY: `for_each_access` keeps `pos..pos+w` inside `0..n` (so inside both
        // ranges the caller vouches for) and `src + pos` aligned to `w`.
        unsafe { move_in(src.add(pos), dst.add(pos), w) }
    })
}

/// Copies `n` bytes from `src` into shared memory at `dst` with aligned accesses on the
/// shared side.
///
/// # Safety
/// As [`copy_in`].
unsafe fn copy_out(src: *const u8, dst: *mut u8, n: usize) {
    for_each_access(dst as usize, n, |pos, w| {
        // SAFETY: as in `copy_in`, with `dst + pos` aligned to `w`.
        unsafe { move_out(src.add(pos), dst.add(pos), w) }
    })
}

/// Copies `src` (a view into shared memory, such as an
/// [`RxBuf`](crate::rpmsg::RxBuf), a [`Completed`](crate::dataplane::Completed) buffer or a
/// message payload) into `dst` with naturally aligned accesses only, safe on Device memory
/// where `dst.copy_from_slice(src)` may fault. Copies `min(src.len(), dst.len())` bytes and
/// returns that count.
pub fn copy_from_shared(src: &[u8], dst: &mut [u8]) -> usize {
    let n = src.len().min(dst.len());
    // SAFETY: both slices are valid for `n` bytes, and a `&[u8]` and a `&mut [u8]` never
    // overlap; volatile reads through a shared reference are reads.
    unsafe { copy_in(src.as_ptr(), dst.as_mut_ptr(), n) };
    n
}

/// Copies `src` into `dst` (a view into shared memory, such as a
/// [`TxBuf`](crate::rpmsg::TxBuf) or a [`WritableBuf`](crate::dataplane::WritableBuf)) with
/// naturally aligned accesses only, safe on Device memory where `dst.copy_from_slice(src)`
/// may fault. Copies `min(src.len(), dst.len())` bytes and returns that count.
pub fn copy_to_shared(dst: &mut [u8], src: &[u8]) -> usize {
    let n = src.len().min(dst.len());
    // SAFETY: as in `copy_from_shared`.
    unsafe { copy_out(src.as_ptr(), dst.as_mut_ptr(), n) };
    n
}

/// Sets every byte of `dst` (a view into shared memory) to `byte` with naturally aligned
/// accesses only: `dst.fill(0)` may become `memset`, which may use `DC ZVA` or unaligned
/// stores, both of which fault on Device memory.
pub fn fill_shared(dst: &mut [u8], byte: u8) {
    let pattern = [byte; WORD];
    let d = dst.as_mut_ptr();
    for_each_access(d as usize, dst.len(), |pos, w| {
        // SAFETY: `pos..pos+w` is inside `dst` (valid for writes, `&mut`) and `d + pos` is
        // aligned to `w`; `pattern` holds `WORD >= w` readable bytes.
        unsafe { move_out(pattern.as_ptr(), d.add(pos), w) }
    })
}

/// Copies a view of shared memory out: [`copy_from_shared`] if the region may be
/// Device memory ([`SharedMemory::device_memory`]), `copy_from_slice` otherwise.
pub(crate) fn copy_out_of(device: bool, src: &[u8], dst: &mut [u8]) -> usize {
    if device {
        return copy_from_shared(src, dst);
    }
    let n = src.len().min(dst.len());
    dst[..n].copy_from_slice(&src[..n]);
    n
}

/// Copies into a view of shared memory: as [`copy_out_of`], the other way.
pub(crate) fn copy_into(device: bool, dst: &mut [u8], src: &[u8]) -> usize {
    if device {
        return copy_to_shared(dst, src);
    }
    let n = src.len().min(dst.len());
    dst[..n].copy_from_slice(&src[..n]);
    n
}

/// An ELF [`LoadTarget`](intercore_wire::elf::LoadTarget) over Device memory: forwards
/// [`region`](intercore_wire::elf::LoadTarget::region) to the target it wraps and writes
/// each segment with [`copy_to_shared`] and [`fill_shared`] (aligned stores only) instead of
/// `copy_from_slice`/`fill`. Wrap any target whose memory is a UIO or `/dev/mem` map
/// before [`Elf::load`](intercore_wire::elf::Elf::load).
#[derive(Debug)]
pub struct AlignedLoad<'a, T: intercore_wire::elf::LoadTarget + ?Sized>(pub &'a mut T);

impl<T: intercore_wire::elf::LoadTarget + ?Sized> intercore_wire::elf::LoadTarget
    for AlignedLoad<'_, T>
{
    fn region(&mut self, da: u64, len: usize) -> Option<&mut [u8]> {
        self.0.region(da, len)
    }
    fn load_segment(&mut self, da: u64, data: &[u8], memsz: usize) -> bool {
        match self.0.region(da, memsz) {
            Some(dst) if dst.len() >= data.len() => {
                let (file, rest) = dst.split_at_mut(data.len());
                copy_to_shared(file, data);
                fill_shared(rest, 0);
                true
            }
            _ => false,
        }
    }
}

/// `M` declared Normal memory ([`SharedMemory::device_memory`] false): its copies use
/// `memcpy`, as every copy did before the aligned copies. Kept for the benchmarks, which
/// measure the two paths against each other in the same run. Faults on Device memory.
#[doc(hidden)]
#[cfg(feature = "test-utils")]
#[derive(Debug)]
pub struct MemcpyMem<M>(pub M);

#[cfg(feature = "test-utils")]
// SAFETY: the mapping and every access forward to `M`, which keeps the contract; only the
// choice of copy changes, and `memcpy` is sound on any memory the contract allows.
unsafe impl<M: SharedMemory> SharedMemory for MemcpyMem<M> {
    fn as_ptr(&self) -> *mut u8 {
        self.0.as_ptr()
    }
    fn len(&self) -> usize {
        self.0.len()
    }
    fn device_memory(&self) -> bool {
        false
    }
}

macro_rules! forward_shared_memory {
    ($($(#[$attr:meta])* $t:ty),*) => {$(
        $(#[$attr])*
        // SAFETY: forwarding to the implementation behind the pointer keeps its guarantees.
        unsafe impl<M: SharedMemory + ?Sized> SharedMemory for $t {
            fn as_ptr(&self) -> *mut u8 { (**self).as_ptr() }
            fn len(&self) -> usize { (**self).len() }
            fn device_memory(&self) -> bool { (**self).device_memory() }
            fn load_u16(&self, off: usize, order: Ordering) -> u16 { (**self).load_u16(off, order) }
            fn store_u16(&self, off: usize, v: u16, order: Ordering) { (**self).store_u16(off, v, order) }
            fn load_u32(&self, off: usize, order: Ordering) -> u32 { (**self).load_u32(off, order) }
            fn store_u32(&self, off: usize, v: u32, order: Ordering) { (**self).store_u32(off, v, order) }
            fn read(&self, off: usize, dst: &mut [u8]) { (**self).read(off, dst) }
            fn write(&self, off: usize, src: &[u8]) { (**self).write(off, src) }
            fn fence(&self, order: Ordering) { (**self).fence(order) }
            fn note_view(&self, off: usize, len: usize, write: bool) { (**self).note_view(off, len, write) }
        }
    )*};
}
forward_shared_memory!(&M, #[cfg(feature = "alloc")] alloc::sync::Arc<M>);

/// Proof that this side owns `off..off+len` of a region exclusively: the buffer's
/// descriptor is in no ring (rpmsg), or the buffer is not in flight (data plane), so by the
/// protocol the peer does not access it.
///
/// Only the bus and data-plane code of this crate create these, and never two for
/// overlapping ranges (each is tied to one buffer id whose ownership that code tracks). A
/// peer that breaks the protocol and writes a buffer it does not own changes bytes under
/// our view but cannot make us access memory outside the region.
#[derive(Debug)]
pub(crate) struct OwnedRange {
    off: usize,
    len: usize,
}

/// The one place a slice pointer into peer-shared memory is made.
///
/// # Safety
/// `base..base+total` must be a valid allocation and `off + len <= total`; turning the
/// result into a reference is the caller's responsibility (exclusivity, lifetime).
unsafe fn slice(base: *mut u8, off: usize, len: usize) -> *mut [u8] {
    // SAFETY: the caller guarantees `off + len` lies inside the valid allocation.
    core::ptr::slice_from_raw_parts_mut(unsafe { base.add(off) }, len)
}

impl OwnedRange {
    /// Claims a range of shared memory. The caller guarantees exclusivity as above.
    pub(crate) fn claim<M: SharedMemory + ?Sized>(m: &M, off: usize, len: usize) -> Option<Self> {
        Self::check(m.as_ptr(), m.len(), off, len)
    }

    /// Claims a range of a data-plane region as the CPU sees it (`CacheOps::cpu_ptr`).
    pub(crate) fn claim_cpu<C: crate::platform::CacheOps + ?Sized>(
        c: &C,
        off: usize,
        len: usize,
    ) -> Option<Self> {
        Self::check(c.cpu_ptr(), c.region_len(), off, len)
    }

    fn check(base: *mut u8, total: usize, off: usize, len: usize) -> Option<Self> {
        let end = off.checked_add(len)?;
        (!base.is_null() && end <= total).then_some(Self { off, len })
    }

    /// Bytes of this range.
    #[cfg_attr(not(feature = "alloc"), allow(dead_code))]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The bytes, for reading.
    pub(crate) fn bytes<'a, M: SharedMemory + ?Sized>(&'a self, m: &'a M) -> &'a [u8] {
        m.note_view(self.off, self.len, false);
        // SAFETY: `claim` checked the range is in the mapping, valid for `'a`; we own it
        // exclusively (see the type), and a `&mut` view needs `&mut self`, so none exists
        // while this borrow lives.
        unsafe { &*slice(m.as_ptr(), self.off, self.len) }
    }

    /// The bytes, for writing.
    pub(crate) fn bytes_mut<'a, M: SharedMemory + ?Sized>(&'a mut self, m: &'a M) -> &'a mut [u8] {
        m.note_view(self.off, self.len, true);
        // SAFETY: as in `bytes`; `&mut self` makes this the only view of the range.
        unsafe { &mut *slice(m.as_ptr(), self.off, self.len) }
    }

    /// The bytes as the CPU sees them, for reading.
    pub(crate) fn cpu_bytes<'a, C: crate::platform::CacheOps + ?Sized>(
        &'a self,
        c: &'a C,
    ) -> &'a [u8] {
        // SAFETY: `claim_cpu` checked the range against `region_len`, which the
        // `CacheOps` contract makes valid behind `cpu_ptr` for the value's lifetime;
        // exclusivity as in `bytes`.
        unsafe { &*slice(c.cpu_ptr(), self.off, self.len) }
    }

    /// The bytes as the CPU sees them, for writing.
    pub(crate) fn cpu_bytes_mut<'a, C: crate::platform::CacheOps + ?Sized>(
        &'a mut self,
        c: &'a C,
    ) -> &'a mut [u8] {
        // SAFETY: as in `cpu_bytes`; `&mut self` makes this the only view of the range.
        unsafe { &mut *slice(c.cpu_ptr(), self.off, self.len) }
    }
}

#[cfg(test)]
mod tests {
    //! The aligned copies, observed from inside: every shared-memory access the copy
    //! primitives make is reported to [`probe`], which fails on an access that is not
    //! naturally aligned (what arm64 Device memory does, Arm ARM B2.5.2 "Alignment of data
    //! accesses": an unaligned access to any Device memory type generates an Alignment
    //! fault) and logs its width, so a test can also see that a copy went through the
    //! aligned path at all rather than around it.
    extern crate std;
    use super::*;
    use crate::WaitMode;
    use crate::rpmsg::HostConfig;
    use crate::rpmsg::{Channel, RPMSG_ADDR_ANY};
    use crate::testing::Carveout;
    use std::cell::RefCell;
    use std::time::Duration;
    use std::vec;
    use std::vec::Vec;

    std::thread_local! {
        static LOG: RefCell<Vec<(usize, usize, bool)>> = const { RefCell::new(Vec::new()) };
    }

    pub(super) fn probe(addr: usize, w: usize, write: bool) {
        assert!(
            w.is_power_of_two() && w <= WORD && addr % w == 0,
            "unaligned access at address {addr:#x} width {w}"
        );
        LOG.with(|l| l.borrow_mut().push((addr, w, write)));
    }

    /// Runs `f`, returning the shared-memory accesses it made.
    fn watch(f: impl FnOnce()) -> Vec<(usize, usize, bool)> {
        LOG.with(|l| l.borrow_mut().clear());
        f();
        LOG.with(|l| core::mem::take(&mut *l.borrow_mut()))
    }

    /// Bytes the accesses of one direction covered, checking they are contiguous.
    fn covered(log: &[(usize, usize, bool)], write: bool) -> usize {
        let mine: Vec<_> = log.iter().filter(|a| a.2 == write).collect();
        for p in mine.windows(2) {
            assert_eq!(
                p[0].0 + p[0].1,
                p[1].0,
                "accesses not contiguous: {mine:x?}"
            );
        }
        mine.iter().map(|a| a.1).sum()
    }

    #[test]
    fn plan_is_aligned_contiguous_and_widest() {
        for addr in 0..2 * WORD {
            for len in 0..5 * WORD {
                let mut next = 0;
                let mut count = 0;
                for_each_access(addr, len, |pos, w| {
                    assert_eq!(pos, next, "gap or overlap at {addr}+{len}");
                    assert!(w.is_power_of_two() && w <= WORD && (addr + pos) % w == 0);
                    next = pos + w;
                    count += 1;
                });
                assert_eq!(next, len, "{addr}+{len} not covered");
                // At most one access per power of two below WORD in each of the head and
                // the tail, plus the whole words between.
                let bound = 2 * WORD.trailing_zeros() as usize + len / WORD;
                assert!(count <= bound, "{count} accesses for {addr}+{len}");
            }
        }
        // 7 bytes at an aligned address: 4 + 2 + 1, never one unaligned word.
        let mut got = Vec::new();
        for_each_access(64, 7, |p, w| got.push((p, w)));
        assert_eq!(got, vec![(0, 4), (4, 2), (6, 1)]);
        // 8 bytes at an odd address: 1 + 2 + 4 + 1 (on 64-bit).
        let mut got = Vec::new();
        for_each_access(65, 8, |p, w| got.push((p, w)));
        if WORD == 8 {
            assert_eq!(got, vec![(0, 1), (1, 2), (3, 4), (7, 1)]);
        }
    }

    #[test]
    fn helpers_copy_exact_bytes_at_every_offset() {
        let mut words = vec![0u64; 16];
        for off in 0..24 {
            for n in 0..40 {
                let shared = &mut bytemuck(&mut words)[off..off + n];
                fill_shared(shared, 0xEE);
                assert!(shared.iter().all(|&b| b == 0xEE));
                let src: Vec<u8> = (0..n as u8)
                    .map(|i| i.wrapping_mul(37) ^ off as u8)
                    .collect();
                let log = watch(|| assert_eq!(copy_to_shared(shared, &src), n));
                assert_eq!(covered(&log, true), n);
                assert_eq!(shared, &src[..]);
                let mut back = vec![0u8; n + 3];
                let log = watch(|| assert_eq!(copy_from_shared(shared, &mut back), n));
                assert_eq!(covered(&log, false), n);
                assert_eq!(&back[..n], &src[..]);
            }
        }
        let all = bytemuck(&mut words);
        all.fill(0);
        fill_shared(&mut all[3..17], 0xAB);
        assert!(all[..3].iter().all(|&b| b == 0) && all[17..].iter().all(|&b| b == 0));
    }

    /// The provided `read`/`write` go through the aligned path, at odd offsets and lengths.
    #[test]
    fn provided_read_write_use_aligned_accesses() {
        let mem = crate::testing::HeapMem::new(256);
        for (off, n) in [(0, 64), (1, 13), (3, 5), (7, 1), (6, 2), (250, 6), (9, 100)] {
            let data: Vec<u8> = (0..n as u8).collect();
            let log = watch(|| mem.write(off, &data));
            assert_eq!(covered(&log, true), n, "write {off}+{n}: {log:x?}");
            assert!(log.iter().any(|a| a.1 < WORD) || (off % WORD == 0 && n % WORD == 0));
            let mut back = vec![0; n];
            let log = watch(|| mem.read(off, &mut back));
            assert_eq!(covered(&log, false), n);
            assert_eq!(back, data);
        }
    }

    /// A region that declares Normal memory keeps `memcpy` in the provided copies (the probe
    /// sees none of its bytes), and the forwarding impls pass the declaration on.
    #[test]
    fn normal_memory_regions_copy_with_memcpy() {
        struct Normal(crate::testing::HeapMem);
        // SAFETY: forwards the mapping of a `HeapMem`, which keeps the contract.
        unsafe impl SharedMemory for Normal {
            fn as_ptr(&self) -> *mut u8 {
                self.0.as_ptr()
            }
            fn len(&self) -> usize {
                self.0.len()
            }
            fn device_memory(&self) -> bool {
                false
            }
        }
        let mem = Normal(crate::testing::HeapMem::new(64));
        assert!(!SharedMemory::device_memory(&&mem), "forwarded through &M");
        assert!(
            crate::testing::HeapMem::new(8).device_memory(),
            "default is Device"
        );
        let log = watch(|| mem.write(3, &[1, 2, 3, 4, 5]));
        assert!(log.is_empty(), "{log:x?}");
        let mut back = [0; 5];
        mem.read(3, &mut back);
        assert_eq!(back, [1, 2, 3, 4, 5]);
    }

    /// The rpmsg copy paths of both roles copy payloads through the aligned path: every
    /// payload byte moved is seen by the probe (a `copy_from_slice` would go around it).
    #[test]
    fn rpmsg_copies_in_both_roles_are_aligned() {
        let link = Carveout::with_buffers(8);
        let (mut host, mut remote) = link
            .connect::<4>(HostConfig::default(), WaitMode::Poll)
            .unwrap();
        let ep = host.create_endpoint("devmem", None).unwrap();
        let rep = remote.create_endpoint("echo", None).unwrap();
        for n in [1usize, 3, 7, 13, 61, 250] {
            let msg: Vec<u8> = (0..n).map(|i| (i * 7 + n) as u8).collect();
            // Host copy send: header (16) + payload written.
            let log = watch(|| host.send_raw(ep, rep, &msg, Some(Duration::ZERO)).unwrap());
            assert!(covered_writes(&log) >= n, "host send {n}: {log:x?}");
            // Remote copy receive.
            let mut got = vec![0u8; 512];
            let log = watch(|| {
                assert_eq!(
                    remote
                        .recv_any_with(Some(Duration::ZERO), |m| (
                            m.src,
                            m.dst,
                            crate::copy_from_shared(m.payload, &mut got)
                        ))
                        .unwrap()
                        .2,
                    n
                )
            });
            assert!(reads(&log) >= n, "remote recv {n}");
            assert_eq!(&got[..n], &msg[..]);
            // Remote copy send.
            let log = watch(|| {
                remote
                    .send_raw(rep, ep, &msg, Some(Duration::ZERO))
                    .unwrap()
            });
            assert!(covered_writes(&log) >= n, "remote send {n}");
            // Host copy receive.
            let mut back = vec![0u8; 512];
            let log = watch(|| {
                assert_eq!(
                    host.recv(
                        &Channel::new(ep, RPMSG_ADDR_ANY),
                        &mut back,
                        Some(Duration::ZERO)
                    )
                    .unwrap(),
                    n
                )
            });
            assert!(reads(&log) >= n, "host recv {n}");
            assert_eq!(&back[..n], &msg[..]);
            // Zero-copy views' copy helpers: TxBuf::copy_from, ReplyBuf::send_copy,
            // RxBuf::copy_to.
            let mut tx = host.tx_buf(Some(Duration::ZERO)).unwrap();
            let log = watch(|| assert_eq!(tx.copy_from(&msg), n));
            assert_eq!(covered(&log, true), n);
            host.send_buf(&Channel::new(ep, rep), tx, n).unwrap();
            let log = watch(|| {
                remote
                    .recv_reply_any_with(Some(Duration::ZERO), |_m, reply| {
                        reply.send_copy(&msg).unwrap()
                    })
                    .unwrap()
            });
            assert!(covered_writes(&log) >= n, "send_copy {n}");
            let rx = host
                .recv_buf(&Channel::new(ep, RPMSG_ADDR_ANY), Some(Duration::ZERO))
                .unwrap();
            let mut out = vec![0u8; n];
            let log = watch(|| assert_eq!(rx.copy_to(&mut out), n));
            assert_eq!(covered(&log, false), n);
            assert_eq!(out, msg);
        }
    }

    /// A little-endian ELF32 (ARM) with the given `(paddr, data, memsz)` segments and no
    /// sections, laid out per the System V gABI (Elf32_Ehdr 52 bytes, Elf32_Phdr 32).
    fn elf32(segs: &[(u32, &[u8], u32)]) -> Vec<u8> {
        let mut v = vec![0u8; 52 + 32 * segs.len()];
        v[..7].copy_from_slice(&[0x7f, b'E', b'L', b'F', 1, 1, 1]);
        let put16 =
            |v: &mut Vec<u8>, at: usize, x: u16| v[at..at + 2].copy_from_slice(&x.to_le_bytes());
        put16(&mut v, 16, 2); // ET_EXEC
        put16(&mut v, 18, 40); // EM_ARM
        put16(&mut v, 40, 52); // e_ehsize
        put16(&mut v, 42, 32); // e_phentsize
        put16(&mut v, 44, segs.len() as u16);
        let put32 =
            |v: &mut Vec<u8>, at: usize, x: u32| v[at..at + 4].copy_from_slice(&x.to_le_bytes());
        put32(&mut v, 20, 1); // e_version
        put32(&mut v, 28, 52); // e_phoff
        for (i, &(paddr, data, memsz)) in segs.iter().enumerate() {
            let ph = 52 + 32 * i;
            let off = v.len() as u32;
            v.extend_from_slice(data);
            put32(&mut v, ph, 1); // PT_LOAD
            put32(&mut v, ph + 4, off);
            put32(&mut v, ph + 8, paddr);
            put32(&mut v, ph + 12, paddr);
            put32(&mut v, ph + 16, data.len() as u32);
            put32(&mut v, ph + 20, memsz);
        }
        v
    }

    /// `AlignedLoad` writes every segment (odd addresses, odd file and memory sizes) with
    /// aligned stores only, and leaves the same bytes as the plain load.
    #[test]
    fn elf_load_through_aligned_load_is_aligned_and_equal() {
        use intercore_wire::elf::{Elf, Region};
        let a: Vec<u8> = (1..=13).collect();
        let b: Vec<u8> = (100..131).collect();
        let image = elf32(&[(0x1003, &a, 29), (0x1041, &b, 31), (0x1080, &[7; 8], 8)]);
        let elf = Elf::parse(&image).unwrap();
        let mut words = vec![0xFFFF_FFFF_FFFF_FFFFu64; 32];
        let log = watch(|| {
            let mut regions = [Region {
                da: 0x1000,
                mem: bytemuck(&mut words),
            }];
            let r = elf.load(&mut AlignedLoad(&mut regions[..])).unwrap();
            assert_eq!((r.segments, r.copied, r.zeroed), (3, 13 + 31 + 8, 16));
        });
        assert_eq!(covered_writes(&log), 29 + 31 + 8);
        assert!(log.iter().any(|a| a.1 == 1), "odd head or tail: {log:x?}");
        let mut plain = vec![0xFFu8; 256];
        let mut regions = [Region {
            da: 0x1000,
            mem: &mut plain,
        }];
        elf.load(&mut regions[..]).unwrap();
        assert_eq!(bytemuck(&mut words), &plain[..]);
    }

    /// The data plane's copies: `WritableBuf::copy_from`, the completion message copied
    /// out by `DpHost::poll` before parsing, and `Completed::copy_to`.
    #[test]
    fn dataplane_copies_are_aligned() {
        use crate::DevAddr;
        use crate::dataplane::{Coherent, DpHost, Pool, PoolConfig};
        use crate::rpmsg::layout::CarveoutSpec;
        use intercore_wire::dataplane::*;
        use intercore_wire::{Le16, Le32, Le64};
        use zerocopy::IntoBytes;
        let t = Some(core::time::Duration::from_secs(5));
        let cfg = PoolConfig {
            classes: vec![(4096, 4)],
            align: 4096,
        };
        let spec = CarveoutSpec {
            vring_num: 8,
            buf_size: 512,
            event_idx: true,
            da_base: 0xA000_0000,
        };
        let link = Carveout::with_pool_area(spec, cfg.region_len());
        let (mut host, mut remote) = link
            .connect::<8>(HostConfig::default(), WaitMode::Poll)
            .unwrap();
        let rep = remote.create_endpoint("fake-dp", None).unwrap();
        remote.announce(rep).unwrap();
        let dst = host.find_service("fake-dp", t).unwrap();
        let ep = host.create_endpoint("dp", None).unwrap();
        let mem = std::sync::Arc::clone(&link.mem);
        let pool = Pool::new(Coherent::new(mem), link.pool.0, DevAddr(0xC000_0000), &cfg).unwrap();
        let mut dp = DpHost::new(pool, Channel::new(ep, dst), host.max_payload()).unwrap();
        let mut b = dp.alloc(4096).unwrap();
        let data: Vec<u8> = (0..61).collect();
        let log = watch(|| assert_eq!(b.copy_from(&data), 61));
        assert_eq!(covered(&log, true), 61);
        let (id, da) = (b.id(), b.da().0);
        let ticket = dp.submit(&mut host, b, 61, DP_OP_NOP).unwrap();
        dp.flush(&mut host).unwrap();
        remote.recv_any_with(Some(Duration::ZERO), |_| ()).unwrap();
        let mut msg = DpHdr {
            kind: Le16::new(DP_COMPLETE),
            count: Le16::new(1),
            reserved: Le32::new(0),
        }
        .as_bytes()
        .to_vec();
        let done = DpComplete {
            seq: Le64::new(ticket.seq),
            da: Le64::new(da),
            buf: Le32::new(id),
            len: Le32::new(37),
            status: Le32::new(DP_OK),
            reserved: Le32::new(0),
        };
        msg.extend_from_slice(done.as_bytes());
        remote
            .send_raw(rep, ep, &msg, Some(Duration::ZERO))
            .unwrap();
        let mut c = None;
        let log = watch(|| c = Some(dp.wait_complete(&mut host, t).unwrap()));
        // The ring reads (used element 8 bytes; of the rpmsg header `src`, `dst` and the
        // `len` word, 12) plus the message itself, copied out before parsing (parsed in
        // place, only the 20 bytes were seen).
        assert!(reads(&log) >= 20 + msg.len(), "{log:x?}");
        let c = c.unwrap();
        let mut out = vec![0; 40];
        let log = watch(|| assert_eq!(c.copy_to(&mut out), 37));
        assert_eq!(covered(&log, false), 37);
        assert_eq!(out[..37], data[..37]);
    }

    fn covered_writes(log: &[(usize, usize, bool)]) -> usize {
        log.iter().filter(|a| a.2).map(|a| a.1).sum()
    }
    fn reads(log: &[(usize, usize, bool)]) -> usize {
        log.iter().filter(|a| !a.2).map(|a| a.1).sum()
    }

    /// Safe byte view of test words (stands in for a mapping: 8-aligned base).
    fn bytemuck(w: &mut [u64]) -> &mut [u8] {
        zerocopy::IntoBytes::as_mut_bytes(w)
    }
}
