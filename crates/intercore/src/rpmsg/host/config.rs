//! The host's configuration and counters, and the placement of vrings the resource table
//! leaves to the host.

use crate::{DevAddr, Error, LinearMap, Result, SharedMemory, WaitMode};
use alloc::vec::Vec;
use core::sync::atomic::Ordering::Relaxed;
use core::time::Duration;

/// How the host sets up and runs the link.
#[derive(Debug, Clone, Copy)]
pub struct HostConfig {
    /// Buffers per direction (Linux: 256; capped by the vring size).
    pub num_bufs: u16,
    /// Size of each buffer including the 16-byte header (Linux: 512).
    pub buf_size: usize,
    /// Timeout of the blocking calls that take none (`None`: wait forever). A peer that
    /// stops answering turns into `Error::Timeout` after this long.
    pub timeout: Option<Duration>,
    /// How blocking calls wait.
    pub wait: WaitMode,
    /// Where the buffers go when the resource table has no `vdev0buffer` carveout (stock TI
    /// MCU+ SDK, OpenAMP, NXP and Zephyr tables have none; Linux then uses the
    /// `vdev0buffer` reserved-memory region of the device tree or the device's DMA pool).
    /// A carveout in the table takes precedence.
    pub buffers: Option<LinearMap>,
    /// The vdev's DMA pool (Linux: the vdev's reserved-memory region, memory-region 0 on
    /// TI K3): vrings the table leaves at `FW_RSC_ADDR_ANY` are allocated there and, when
    /// neither the table (`vdev0buffer`) nor [`Self::buffers`] places the buffers, the
    /// buffers too, exactly where Linux's coherent allocator would put them
    /// ([`CoherentPool`]: with 256-entry vrings aligned to 4096, vring 0 at +0, vring 1 at
    /// +0x4000, 512 × 512 B of buffers at +0x40000 — where TI's MCU+ SDK firmware expects
    /// them). Must start on a page boundary. Each ring's device address and notify id are
    /// written back into the table.
    pub vring_region: Option<LinearMap>,
    /// Most services the name-service table holds; announcements of new names past it are
    /// dropped and counted (`HostStats::ns_overflow`).
    pub max_services: usize,
    /// Most receive buffers one endpoint may hold in place (queued unread, or lent out as
    /// [`RxBuf`](super::RxBuf)); `None`: three quarters of the buffers. Messages for an
    /// endpoint at this limit are copied out of the ring into the endpoint's queue (up to
    /// [`Self::max_copied_per_endpoint`]) and their buffers reposted at once, so an
    /// application that stops reading one endpoint cannot starve the others or the name
    /// service, and one endpoint can still use the whole ring.
    pub max_held_per_endpoint: Option<u16>,
    /// Most messages one endpoint keeps copied out of the ring (beyond
    /// [`Self::max_held_per_endpoint`]), at most one buffer's payload each. Past it a
    /// message is dropped, and the receiver is told: the endpoint's next receive, at the
    /// place of the lost messages, returns [`Error::Lost`] with how many
    /// (`HostStats::held_dropped` counts them too). Default 1024 (at most ~0.5 MiB of
    /// 496-byte payloads per endpoint).
    pub max_copied_per_endpoint: usize,
    /// Accept in-order rings when the firmware offers them in its intercore vendor entry
    /// (`INTERCORE_F_IN_ORDER`, docs/ARCHITECTURE.md "Interoperability decisions"); a table
    /// without the entry gets the standard split ring whatever this says. Default on;
    /// off measures or debugs the standard path against an intercore remote.
    pub in_order: bool,
    /// Accept inline-slot rings when the firmware offers them in its intercore vendor
    /// entry (`INTERCORE_F_INLINE` with its `inline_max`; docs/ARCHITECTURE.md "Inline-slot
    /// rings"): messages up to the slot's payload travel in the slot itself, larger ones by
    /// reference in the buffers. Needs as many buffers as vring entries (`num_bufs` at
    /// least the vrings' size); otherwise, or against any other peer, the split ring.
    /// Default on; off keeps the split ring (in order when [`Self::in_order`]).
    pub inline: bool,
    /// Transmit credit: most messages one local endpoint may have in the transmit ring not
    /// yet consumed by the remote (split ring: buffers not back on the used ring; inline
    /// rings: slots not yet released). A send past it waits, like a send with every buffer
    /// taken, until the remote consumes that endpoint's earlier messages (`WouldBlock` /
    /// `Timeout` with `Some(ZERO)`). The remote serves the ring in order, so another
    /// endpoint's message waits behind at most this many of a flooding endpoint's. `None`:
    /// [`SHARED_TX_CREDIT`](super::SHARED_TX_CREDIT) (2), binding only while another local
    /// endpoint has messages in flight or sent within the last 16 ring lengths of
    /// messages — a lone endpoint still fills the ring (pipelining as before). A credit
    /// costs a flooding endpoint its pipelining depth beside others; `HostBus::post`
    /// parks what it cannot send yet instead of waiting. Host-side only: the wire is
    /// unchanged.
    pub tx_credit: Option<u16>,
    /// Most messages one local endpoint may have parked by `HostBus::post` (sent later, as
    /// its credit and the buffers allow); past it `post` answers `Exhausted` (default 256).
    pub max_parked_per_endpoint: usize,
}

impl Default for HostConfig {
    fn default() -> Self {
        Self {
            num_bufs: intercore_wire::rpmsg::RPMSG_DEFAULT_NUM_BUFS as u16,
            buf_size: intercore_wire::rpmsg::RPMSG_DEFAULT_BUF_SIZE,
            timeout: Some(Duration::from_secs(1)),
            wait: WaitMode::default(),
            buffers: None,
            vring_region: None,
            max_services: 64,
            max_held_per_endpoint: None,
            max_copied_per_endpoint: 1024,
            in_order: true,
            inline: true,
            tx_credit: None,
            max_parked_per_endpoint: 256,
        }
    }
}

/// Chained setters, one per field (by value), for building a configuration from
/// [`HostConfig::default`]:
///
/// ```
/// use core::time::Duration;
/// use intercore::rpmsg::HostConfig;
///
/// let cfg = HostConfig::default()
///     .num_bufs(64)
///     .timeout(Some(Duration::from_millis(500)));
/// assert_eq!((cfg.num_bufs, cfg.buf_size), (64, 512));
/// ```
impl HostConfig {
    /// Sets [`Self::num_bufs`](HostConfig#structfield.num_bufs).
    #[must_use]
    pub fn num_bufs(mut self, num_bufs: u16) -> Self {
        self.num_bufs = num_bufs;
        self
    }
    /// Sets [`Self::buf_size`](HostConfig#structfield.buf_size).
    #[must_use]
    pub fn buf_size(mut self, buf_size: usize) -> Self {
        self.buf_size = buf_size;
        self
    }
    /// Sets [`Self::timeout`](HostConfig#structfield.timeout).
    #[must_use]
    pub fn timeout(mut self, timeout: Option<Duration>) -> Self {
        self.timeout = timeout;
        self
    }
    /// Sets [`Self::wait`](HostConfig#structfield.wait).
    #[must_use]
    pub fn wait(mut self, wait: WaitMode) -> Self {
        self.wait = wait;
        self
    }
    /// Sets [`Self::buffers`](HostConfig#structfield.buffers).
    #[must_use]
    pub fn buffers(mut self, buffers: Option<LinearMap>) -> Self {
        self.buffers = buffers;
        self
    }
    /// Sets [`Self::vring_region`](HostConfig#structfield.vring_region).
    #[must_use]
    pub fn vring_region(mut self, vring_region: Option<LinearMap>) -> Self {
        self.vring_region = vring_region;
        self
    }
    /// Sets [`Self::max_services`](HostConfig#structfield.max_services).
    #[must_use]
    pub fn max_services(mut self, max_services: usize) -> Self {
        self.max_services = max_services;
        self
    }
    /// Sets [`Self::max_held_per_endpoint`](HostConfig#structfield.max_held_per_endpoint).
    #[must_use]
    pub fn max_held_per_endpoint(mut self, max_held_per_endpoint: Option<u16>) -> Self {
        self.max_held_per_endpoint = max_held_per_endpoint;
        self
    }
    /// Sets [`Self::tx_credit`](HostConfig#structfield.tx_credit).
    #[must_use]
    pub fn tx_credit(mut self, tx_credit: Option<u16>) -> Self {
        self.tx_credit = tx_credit;
        self
    }
    /// Sets [`Self::max_parked_per_endpoint`](HostConfig#structfield.max_parked_per_endpoint).
    #[must_use]
    pub fn max_parked_per_endpoint(mut self, max_parked_per_endpoint: usize) -> Self {
        self.max_parked_per_endpoint = max_parked_per_endpoint;
        self
    }
    /// Sets [`Self::max_copied_per_endpoint`](HostConfig#structfield.max_copied_per_endpoint).
    #[must_use]
    pub fn max_copied_per_endpoint(mut self, max_copied_per_endpoint: usize) -> Self {
        self.max_copied_per_endpoint = max_copied_per_endpoint;
        self
    }
    /// Sets [`Self::in_order`](HostConfig#structfield.in_order).
    #[must_use]
    pub fn in_order(mut self, in_order: bool) -> Self {
        self.in_order = in_order;
        self
    }
    /// Sets [`Self::inline`](HostConfig#structfield.inline).
    #[must_use]
    pub fn inline(mut self, inline: bool) -> Self {
        self.inline = inline;
        self
    }
}

/// The host's allocations for a table-described vdev, planned on the private copy of the
/// table before anything is written to shared memory ([`write_rings`] writes them).
///
/// Vrings left at `FW_RSC_ADDR_ANY` and, when neither the table (`vdev0buffer`) nor the
/// configuration ([`HostConfig::buffers`]) says where buffers go, the buffers (`buf_bytes`)
/// are allocated from `pool` exactly as Linux's coherent pool would ([`CoherentPool`]).
/// Notify ids are assigned like Linux's `rproc_alloc_vring` (`idr_alloc` from 0: vring 0
/// gets 0, vring 1 gets 1), overwriting the table's. Returns the buffer window when it came
/// from the pool.
pub(super) fn plan(
    mem_len: usize,
    t: &mut crate::rpmsg::TableInfo,
    pool: Option<LinearMap>,
    buf_bytes: Option<usize>,
) -> Result<Option<LinearMap>> {
    let needs_pool = t.rings.iter().any(|r| r.da.is_none()) || buf_bytes.is_some();
    let Some(r) = pool.filter(|_| needs_pool) else {
        for (i, ring) in t.rings.iter_mut().enumerate() {
            if ring.da.is_none() {
                return Err(Error::Config(
                    "vring at FW_RSC_ADDR_ANY and no vring region configured (HostConfig::vring_region)",
                ));
            }
            ring.notify_id = i as u32;
        }
        return Ok(None);
    };
    if r.base.0 % LINUX_PAGE as u64 != 0 {
        return Err(Error::Config(
            "the vring region (the vdev's DMA pool) must start on a 4 KiB page boundary",
        ));
    }
    if r.offset.checked_add(r.len).is_none_or(|e| e > mem_len) {
        return Err(Error::Config("vring region outside the shared region"));
    }
    let mut alloc = CoherentPool::new(r.len);
    let mut place = |size: usize| -> Result<(DevAddr, usize)> {
        let off = alloc.alloc(size).ok_or(Error::Config(
            "the vring region (the vdev's DMA pool) is too small for what Linux would allocate in it",
        ))?;
        let da = r.base.0 + off as u64;
        if da + size as u64 > u64::from(u32::MAX) + 1 {
            return Err(Error::Config(
                "vring region above 4 GiB: resource tables hold 32-bit device addresses",
            ));
        }
        Ok((DevAddr(da), off))
    };
    for (i, ring) in t.rings.iter_mut().enumerate() {
        if ring.da.is_none() {
            // rproc_alloc_vring: dma_alloc_coherent(PAGE_ALIGN(vring_size(num, align))).
            let size = ring.layout.size().div_ceil(LINUX_PAGE) * LINUX_PAGE;
            let (da, _) = place(size)?;
            if da.0 % u64::from(ring.layout.align()) != 0 {
                return Err(Error::Config(
                    "the vring's alignment is larger than where Linux's allocator puts it",
                ));
            }
            ring.da = Some(da);
        }
        ring.notify_id = i as u32;
    }
    match buf_bytes {
        // rpmsg_probe: one dma_alloc_coherent of num_bufs * buf_size.
        Some(n) => {
            let (da, off) = place(n)?;
            Ok(Some(LinearMap {
                base: da,
                offset: r.offset + off,
                len: n,
            }))
        }
        None => Ok(None),
    }
}

/// Writes every ring's device address and notify id (as [`plan`] set them) into the table.
pub(super) fn write_rings<M: SharedMemory + ?Sized>(mem: &M, t: &crate::rpmsg::TableInfo) {
    for ring in &t.rings {
        let da = ring.da.map_or(0, |d| d.0 as u32);
        // Relaxed: published to the remote by the Release store of DRIVER_OK.
        mem.store_u32(ring.entry_off, da, Relaxed);
        mem.store_u32(ring.entry_off + 12, ring.notify_id, Relaxed);
    }
}

/// The page size Linux's allocators work in (`PAGE_SIZE` on arm64 and x86 kernels with 4 KiB
/// pages, the configuration TI's and NXP's SDKs ship).
pub const LINUX_PAGE: usize = 4096;

/// Linux's per-device coherent DMA pool, as far as placement goes: where
/// `dma_alloc_coherent` puts each allocation in a device's reserved-memory region.
///
/// `kernel/dma/coherent.c`, `__dma_alloc_from_coherent`: `order = get_order(size)`, then
/// `bitmap_find_free_region(mem->bitmap, mem->size, order)`, which takes the first free
/// run of `1 << order` pages starting at a multiple of `1 << order` pages (from the pool's
/// start) and marks the whole run used; the device address is `device_base + (pageno <<
/// PAGE_SHIFT)`. So every allocation is aligned to its own size rounded up to a
/// power-of-two number of pages, relative to the pool's start, and nothing is packed
/// into the padding. Nothing is freed here: a host allocates once per link.
///
/// What Linux allocates from a remoteproc vdev's pool, in order (the resource table
/// leaving the vrings at `FW_RSC_ADDR_ANY`, no `vdev0buffer` carveout):
/// `remoteproc_core.c` `rproc_alloc_vring`, for vring 0 then vring 1:
/// `PAGE_ALIGN(vring_size(num, align))` each; then `virtio_rpmsg_bus.c` `rpmsg_probe`:
/// `num_bufs * buf_size` in one allocation, receive half first. [`Self::linux_vdev`] does
/// exactly that.
#[derive(Debug, Clone)]
pub struct CoherentPool {
    pages: usize,
    /// Runs taken: (first page, pages), in allocation order.
    taken: Vec<(usize, usize)>,
}

/// Where Linux's allocator puts a vdev's vrings and buffers: byte offsets from the pool's
/// start ([`CoherentPool::linux_vdev`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VdevPlacement {
    /// vring 0 and vring 1.
    pub vrings: [usize; 2],
    /// The buffers: receive half first, then transmit.
    pub buffers: usize,
    /// Bytes of the buffer allocation (`num_bufs * buf_size`).
    pub buffers_len: usize,
    /// First byte past the last allocation's power-of-two run: the pool must be this big.
    pub end: usize,
}

impl CoherentPool {
    /// An empty pool of `len` bytes (whole pages only, as `dma_init_coherent_memory`
    /// counts them: `size >> PAGE_SHIFT`).
    pub fn new(len: usize) -> Self {
        Self {
            pages: len / LINUX_PAGE,
            taken: Vec::new(),
        }
    }

    /// `dma_alloc_coherent(size)`: the byte offset of the allocation from the pool's
    /// start, or `None` when no aligned run of `2^get_order(size)` pages is free (Linux:
    /// the allocation fails). A size of 0 is refused, as `__dma_alloc_from_coherent`
    /// cannot succeed for it usefully.
    pub fn alloc(&mut self, size: usize) -> Option<usize> {
        if size == 0 {
            return None;
        }
        // get_order(size): the smallest order with (PAGE_SIZE << order) >= size.
        let run = size.div_ceil(LINUX_PAGE).checked_next_power_of_two()?;
        let mut pos = 0usize;
        // bitmap_find_free_region: try pos = 0, run, 2·run, … and take the first free one.
        // Jumping past the run that blocks a candidate visits the same candidates in the
        // same order, in at most one step per run taken.
        loop {
            if pos.checked_add(run)? > self.pages {
                return None;
            }
            match self
                .taken
                .iter()
                .find(|&&(s, n)| s < pos + run && pos < s + n)
            {
                Some(&(s, n)) => pos = (s + n).div_ceil(run) * run,
                None => break,
            }
        }
        self.taken.push((pos, run));
        Some(pos * LINUX_PAGE)
    }

    /// Where Linux puts a remoteproc rpmsg vdev's vrings and buffers in a fresh pool of
    /// `pool_len` bytes: vring 0, vring 1 (`rproc_alloc_vring`, each
    /// `PAGE_ALIGN(vring_size)`), then `num_bufs * buf_size` bytes of buffers
    /// (`rpmsg_probe`; Linux: `num_bufs` = 2 × min(vring size, 256), `buf_size` 512).
    /// `None` when the pool is too small.
    pub fn linux_vdev(
        pool_len: usize,
        rings: [crate::virtq::VringLayout; 2],
        num_bufs: usize,
        buf_size: usize,
    ) -> Option<VdevPlacement> {
        let mut pool = Self::new(pool_len);
        let page_align = |n: usize| n.div_ceil(LINUX_PAGE) * LINUX_PAGE;
        let v0 = pool.alloc(page_align(rings[0].size()))?;
        let v1 = pool.alloc(page_align(rings[1].size()))?;
        let buffers_len = num_bufs.checked_mul(buf_size)?;
        let buffers = pool.alloc(buffers_len)?;
        Some(VdevPlacement {
            vrings: [v0, v1],
            buffers,
            buffers_len,
            end: pool.end(),
        })
    }

    /// First byte past every run taken.
    pub fn end(&self) -> usize {
        self.taken
            .iter()
            .map(|&(s, n)| (s + n) * LINUX_PAGE)
            .max()
            .unwrap_or(0)
    }
}

/// Counters of what the host bus did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HostStats {
    /// Messages sent.
    pub sent: u64,
    /// Messages received for an endpoint.
    pub received: u64,
    /// Doorbells rung.
    pub kicks: u64,
    /// Sleeps on the doorbell.
    pub sleeps: u64,
    /// Messages for an address with no endpoint (dropped, as Linux does).
    pub no_endpoint: u64,
    /// Messages or name-service announcements that failed validation (dropped).
    pub malformed: u64,
    /// Name-service announcements for address 53 (the name service itself) or
    /// 0xFFFFFFFF (`RPMSG_ADDR_ANY`), refused.
    pub ns_refused: u64,
    /// Announcements of new services while the table was full (dropped).
    pub ns_overflow: u64,
    /// Messages copied out of the ring because their endpoint held its limit of receive
    /// buffers in place (`HostConfig::max_held_per_endpoint`).
    pub held_copied: u64,
    /// Messages dropped because their endpoint's queue was full as well
    /// (`HostConfig::max_copied_per_endpoint`); the endpoint's receiver was told
    /// ([`Error::Lost`]).
    pub held_dropped: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::virtq::VringLayout;

    /// Hand-computed from `kernel/dma/coherent.c` and `remoteproc_core.c`: a 256-entry
    /// vring aligned to 4096 is `vring_size` = align(16·256 + 2·(3+256), 4096) + 6 + 8·256
    /// = 8192 + 2054 = 10246 B, `PAGE_ALIGN` 12 KiB = 3 pages → order 2 (4 pages): vring 0
    /// at page 0, vring 1 at page 4 (+0x4000); 512 buffers × 512 B = 256 KiB = 64 pages →
    /// order 6: the first free 64-page-aligned run is page 64 (+0x40000) — TI's
    /// `RPMessage_vringResetLinux` offset.
    #[test]
    fn linux_places_a_ti_vdev_at_0_0x4000_0x40000() {
        let ring = VringLayout::new(256, 4096).unwrap();
        assert_eq!(ring.size(), 10246);
        let p = CoherentPool::linux_vdev(1 << 20, [ring; 2], 512, 512).unwrap();
        assert_eq!(
            p,
            VdevPlacement {
                vrings: [0, 0x4000],
                buffers: 0x40000,
                buffers_len: 0x40000,
                end: 0x80000,
            }
        );
        // The pool must hold the power-of-two runs, not only the bytes.
        assert!(CoherentPool::linux_vdev(0x7F000, [ring; 2], 512, 512).is_none());
        assert!(CoherentPool::linux_vdev(0x80000, [ring; 2], 512, 512).is_some());
    }

    /// Zephyr's `openamp_rsc_table` sample: 8 entries aligned to 16 — `vring_size` =
    /// align(128 + 22, 16) + 6 + 64 = 230 B → 1 page each (order 0): +0, +0x1000; Linux's
    /// `rpmsg_probe` takes 2 × 8 buffers × 512 B = 8 KiB = order 1 → page 2 (+0x2000).
    #[test]
    fn linux_places_a_zephyr_vdev_page_by_page() {
        let ring = VringLayout::new(8, 16).unwrap();
        assert_eq!(ring.size(), 230);
        let p = CoherentPool::linux_vdev(1 << 20, [ring; 2], 16, 512).unwrap();
        assert_eq!((p.vrings, p.buffers, p.end), ([0, 0x1000], 0x2000, 0x4000));
    }

    /// `bitmap_find_free_region` never packs into the padding of an earlier run: a 1-page
    /// allocation after a 3-page one (order 2) lands at page 4, a later order-1 run skips to
    /// the next even page, and a single page later still fills the hole at page 5.
    #[test]
    fn each_run_is_aligned_to_its_own_order() {
        let mut pool = CoherentPool::new(16 * LINUX_PAGE);
        assert_eq!(pool.alloc(3 * LINUX_PAGE), Some(0));
        assert_eq!(pool.alloc(1), Some(4 * LINUX_PAGE));
        assert_eq!(pool.alloc(2 * LINUX_PAGE), Some(6 * LINUX_PAGE));
        assert_eq!(pool.alloc(8 * LINUX_PAGE), Some(8 * LINUX_PAGE));
        // Page 5 is the only free page left.
        assert_eq!(pool.alloc(2 * LINUX_PAGE), None);
        assert_eq!(pool.alloc(1), Some(5 * LINUX_PAGE));
        assert_eq!(pool.alloc(1), None, "full");
        assert_eq!(pool.alloc(0), None);
        assert_eq!(CoherentPool::new(LINUX_PAGE).alloc(usize::MAX), None);
    }
}
