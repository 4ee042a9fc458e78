//! The remote role played by rust-vmm's `virtio-queue` 0.18 device path, counted through
//! the same [`CountingMem`](intercore::testing::counting::CountingMem) as intercore's own
//! rows: our [`HostBus`](intercore::rpmsg::HostBus) is the driver, and a minimal rpmsg
//! echo on top of `virtio_queue::Queue` (`pop_descriptor_chain`, `add_used`,
//! `needs_notification`; the header and payload through vm-memory's `Bytes`) is the
//! device.
//!
//! `virtio-queue` reaches memory only through vm-memory's [`GuestMemory`], whose accesses
//! all go through `get_slices(addr, count, access)`: a volatile slice is handed out and
//! the access (a copy, an atomic load or store) is made on it afterwards. [`VqMem`] is a
//! `GuestMemory` over the counting memory, in the remote's device-address space (the link's
//! [`LinearMap`]): for a read it makes the counted load first and hands out a slice holding
//! the bytes; for a write it hands out a slice and makes the counted store of what was
//! written before the next access (or at [`VqMem::flush`]). What this cannot see: the
//! ordering of an atomic access (it is applied to the slice after the hand-out) and
//! `virtio-queue`'s fences (`std::sync::atomic::fence`, not memory accesses). Those two
//! columns are therefore not measured for this peer (`null` in JSON); docs/BENCHMARKS.md
//! derives them from its source.

use super::accesses::{AccessRow, SIZES};
use intercore::rpmsg::Channel;
use intercore::rpmsg::RPMSG_ADDR_ANY;
use intercore::rpmsg::layout::{CarveoutSpec, VRING_ALIGN};
use intercore::rpmsg::{HostBus, HostConfig};
use intercore::testing::counting::{Counter, CountingMem, Counts, MemoryMap};
use intercore::testing::{Carveout, ThreadBell};
use intercore::virtq::VringLayout;
use intercore::{DevAddr, DeviceAddressMap, LinearMap, SharedMemory};
use std::cell::RefCell;
use std::iter::FusedIterator;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;
use virtio_queue::{Queue, QueueT};
use vm_memory::guest_memory::GuestMemorySliceIterator;
use vm_memory::{
    Address, Bytes, GuestAddress, GuestMemory, GuestMemoryError, GuestMemoryMmap, Permissions,
    VolatileSlice,
};

const NUM: u16 = 16;
const BUF_SIZE: usize = 512;
const HDR: usize = 16;

/// vm-memory's view of the counting memory, in device addresses (see the module).
pub struct VqMem {
    mem: Arc<Counter>,
    map: LinearMap,
    /// Slices handed out for writing whose bytes are not yet stored.
    pending: RefCell<Vec<(usize, VolatileSlice<'static>)>>,
}

/// The one slice of a `get_slices` answer (the region is contiguous).
pub struct OneSlice<'a>(Option<vm_memory::guest_memory::Result<VolatileSlice<'a>>>);

impl<'a> Iterator for OneSlice<'a> {
    type Item = vm_memory::guest_memory::Result<VolatileSlice<'a>>;
    fn next(&mut self) -> Option<Self::Item> {
        self.0.take()
    }
}
impl FusedIterator for OneSlice<'_> {}
impl<'a> GuestMemorySliceIterator<'a, ()> for OneSlice<'a> {}

impl VqMem {
    fn new(mem: Arc<Counter>, map: LinearMap) -> Self {
        Self {
            mem,
            map,
            pending: RefCell::new(Vec::new()),
        }
    }

    /// Makes the counted stores of everything written through slices handed out so far.
    pub fn flush(&self) {
        for (off, s) in self.pending.borrow_mut().drain(..) {
            let mut b = vec![0u8; s.len()];
            s.copy_to(&mut b[..]);
            match b.len() {
                2 if off % 2 == 0 => {
                    self.mem
                        .store_u16(off, u16::from_le_bytes([b[0], b[1]]), Relaxed)
                }
                4 if off % 4 == 0 => {
                    self.mem
                        .store_u32(off, u32::from_le_bytes([b[0], b[1], b[2], b[3]]), Relaxed)
                }
                _ => self.mem.write(off, &b),
            }
        }
    }
}

impl GuestMemory for VqMem {
    type PhysicalMemory = GuestMemoryMmap<()>;
    type Bitmap = ();

    fn check_range(&self, addr: GuestAddress, count: usize, _access: Permissions) -> bool {
        self.map.to_offset(DevAddr(addr.0), count).is_some()
    }

    fn get_slices<'a>(
        &'a self,
        addr: GuestAddress,
        count: usize,
        access: Permissions,
    ) -> vm_memory::guest_memory::Result<impl GuestMemorySliceIterator<'a, ()>> {
        self.flush();
        if count == 0 {
            return Ok(OneSlice(None));
        }
        let off = self
            .map
            .to_offset(DevAddr(addr.0), count)
            .ok_or(GuestMemoryError::InvalidGuestAddress(addr))?;
        // A fresh buffer per hand-out (leaked: a slice may outlive the next call; the
        // suite makes a few thousand small ones).
        let buf: &'static mut [u8] = Box::leak(vec![0u8; count].into_boxed_slice());
        let read = matches!(access, Permissions::Read | Permissions::ReadWrite);
        if read {
            match count {
                2 if off % 2 == 0 => {
                    buf.copy_from_slice(&self.mem.load_u16(off, Relaxed).to_le_bytes())
                }
                4 if off % 4 == 0 => {
                    buf.copy_from_slice(&self.mem.load_u32(off, Relaxed).to_le_bytes())
                }
                _ => self.mem.read(off, buf),
            }
        } else {
            // What a partial write leaves alone must be stored back unchanged: the
            // analyser's own (uncounted) look.
            self.mem.inner().read(off, buf);
        }
        let slice = VolatileSlice::from(buf);
        if matches!(access, Permissions::Write | Permissions::ReadWrite) {
            self.pending.borrow_mut().push((off, slice));
        }
        Ok(OneSlice(Some(Ok(slice))))
    }
}

/// Our host against the `virtio-queue` device, both through counting memory.
struct Vq {
    host: HostBus<Arc<Counter>, ThreadBell>,
    _bell: ThreadBell,
    vq: VqMem,
    /// vring 1 (host → remote): the remote's receive queue.
    rx: Queue,
    /// vring 0 (remote → host): the host's receive buffers, which the remote fills.
    tx: Queue,
    hep: u32,
    out: Vec<u8>,
    seq: u8,
}

const REP: u32 = 1024;

fn queue(base_da: u64, layout: &VringLayout, event_idx: bool) -> Result<Queue, String> {
    let mut q = Queue::new(NUM).map_err(|e| e.to_string())?;
    q.set_size(NUM);
    let split = |a: u64| (Some(a as u32), Some((a >> 32) as u32));
    let (l, h) = split(base_da + layout.desc(0) as u64);
    q.set_desc_table_address(l, h);
    let (l, h) = split(base_da + layout.avail_flags() as u64);
    q.set_avail_ring_address(l, h);
    let (l, h) = split(base_da + layout.used_flags() as u64);
    q.set_used_ring_address(l, h);
    q.set_event_idx(event_idx);
    q.set_ready(true);
    Ok(q)
}

impl Vq {
    fn new(event_idx: bool) -> Result<Self, String> {
        let link = Carveout::new(CarveoutSpec {
            vring_num: NUM,
            buf_size: BUF_SIZE,
            event_idx,
            da_base: 0xA000_0000,
        });
        let map = MemoryMap::for_link(&link);
        let host_mem = Arc::new(CountingMem::new(Arc::clone(&link.mem), map.clone()));
        let remote_mem = Arc::new(CountingMem::new(Arc::clone(&link.mem), map).with_word(4));
        let (hb, rb) = ThreadBell::pair();
        let mut host = HostBus::new(host_mem, hb, &link.map, link.rsc, HostConfig::default())
            .map_err(|e| format!("host bus: {e}"))?;
        let hep = host
            .create_endpoint("bench", None)
            .map_err(|e| e.to_string())?;
        let layout = VringLayout::new(u32::from(NUM), VRING_ALIGN).map_err(|e| e.to_string())?;
        let da = |off: usize| {
            link.map
                .to_dev(off)
                .map(|d| d.0)
                .ok_or("ring outside the map")
        };
        let rx = queue(da(link.layout.vring1)?, &layout, event_idx)?;
        let tx = queue(da(link.layout.vring0)?, &layout, event_idx)?;
        Ok(Self {
            host,
            _bell: rb,
            vq: VqMem::new(remote_mem, link.map),
            rx,
            tx,
            hep,
            out: vec![0; BUF_SIZE],
            seq: 0,
        })
    }

    /// One verified round trip; the remote's counts per operation (`whole`: the remote's
    /// part of the round trip in one window, returned first).
    fn round_trip(&mut self, size: usize, whole: bool) -> Result<[Counts; 2], String> {
        self.seq = self.seq.wrapping_add(1);
        for (i, b) in self.out[..size].iter_mut().enumerate() {
            *b = self.seq.wrapping_add(i as u8);
        }
        self.host
            .send_raw(self.hep, REP, &self.out[..size], Some(Duration::ZERO))
            .map_err(|e| format!("host send: {e}"))?;
        let m = &*self.vq.mem;
        let mut r = [Counts::default(); 2];
        m.mark();
        // Receive: the chain's one descriptor, its header, its payload; then used.
        let vq = &self.vq;
        let chain = self
            .rx
            .pop_descriptor_chain(vq)
            .ok_or("virtio-queue: no chain available")?;
        let head = chain.head_index();
        let d = chain
            .into_iter()
            .next()
            .ok_or("virtio-queue: empty chain")?;
        let mut hdr = [0u8; HDR];
        vq.read_slice(&mut hdr, d.addr())
            .map_err(|e| e.to_string())?;
        // struct rpmsg_hdr (drivers/rpmsg/virtio_rpmsg_bus.c): src, dst, reserved, len, flags.
        let src = u32::from_le_bytes([hdr[0], hdr[1], hdr[2], hdr[3]]);
        let len = usize::from(u16::from_le_bytes([hdr[12], hdr[13]]));
        if len > d.len() as usize - HDR {
            return Err(format!("{len}-byte payload in a {}-byte buffer", d.len()));
        }
        let mut payload = vec![0u8; len];
        vq.read_slice(&mut payload, d.addr().unchecked_add(HDR as u64))
            .map_err(|e| e.to_string())?;
        self.rx
            .add_used(vq, head, d.len())
            .map_err(|e| e.to_string())?;
        self.rx.needs_notification(vq).map_err(|e| e.to_string())?;
        vq.flush();
        if !whole {
            r[0] = m.take();
        }
        // Send: a host receive buffer, header and payload, used.
        let chain = self
            .tx
            .pop_descriptor_chain(vq)
            .ok_or("virtio-queue: no host buffer")?;
        let head = chain.head_index();
        let d = chain
            .into_iter()
            .next()
            .ok_or("virtio-queue: empty chain")?;
        if !d.is_write_only() || (d.len() as usize) < HDR + len {
            return Err("host buffer not writable or too small".into());
        }
        vq.write_slice(&payload, d.addr().unchecked_add(HDR as u64))
            .map_err(|e| e.to_string())?;
        let mut out = [0u8; HDR];
        out[0..4].copy_from_slice(&REP.to_le_bytes());
        out[4..8].copy_from_slice(&src.to_le_bytes());
        out[12..14].copy_from_slice(&(len as u16).to_le_bytes());
        vq.write_slice(&out, d.addr()).map_err(|e| e.to_string())?;
        self.tx
            .add_used(vq, head, (HDR + len) as u32)
            .map_err(|e| e.to_string())?;
        self.tx.needs_notification(vq).map_err(|e| e.to_string())?;
        vq.flush();
        r[if whole { 0 } else { 1 }] = m.take();
        let mut back = vec![0u8; BUF_SIZE];
        let (_, n) = self
            .host
            .recv_from(
                &Channel::new(self.hep, RPMSG_ADDR_ANY),
                &mut back,
                Some(Duration::ZERO),
            )
            .map_err(|e| format!("host receive: {e}"))?;
        if n != size || back[..n] != self.out[..size] {
            return Err(format!(
                "{size}-byte round trip through virtio-queue came back altered"
            ));
        }
        Ok(r)
    }
}

/// The `virtio-queue` remote's rows: every size, EVENT_IDX off and on, a turn of `NUM`
/// messages each after a warm-up, as intercore's rows.
pub fn rows() -> Result<Vec<AccessRow>, String> {
    let mut rows = Vec::new();
    for event_idx in [false, true] {
        let mut b = Vq::new(event_idx)?;
        for &size in &SIZES {
            for _ in 0..3 * NUM {
                b.round_trip(size, false)?;
            }
            let (mut recv, mut send, mut rtt) = Default::default();
            for _ in 0..NUM {
                let [r, s] = b.round_trip(size, false)?;
                recv = recv + r;
                send = send + s;
            }
            for _ in 0..NUM {
                rtt = rtt + b.round_trip(size, true)?[0];
            }
            for (op, counts) in [("recv", recv), ("send", send), ("rtt", rtt)] {
                rows.push(AccessRow {
                    role: "remote",
                    implementation: "virtio-queue",
                    op,
                    size,
                    event_idx,
                    counts,
                    msgs: u64::from(NUM),
                    ordering_seen: false,
                });
            }
        }
    }
    Ok(rows)
}
