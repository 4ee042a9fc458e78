//! Hand-driven peers: the test plays one role itself by writing the shared memory
//! directly, at the offsets of virtio 1.x §2.7 and remoteproc's resource table, and hands a
//! real bus of the other role whatever it wants — a well-formed exchange step by step, or
//! garbage (never trust the peer: every value read from shared memory is validated before
//! use, and a bad one is an error for the link, never a panic, hang or stray access).
//!
//! [`MockDevice`] stands where the remote core would be, in front of a real
//! [`HostBus`](crate::rpmsg::HostBus); [`MockDriver`] stands where the host would be, in
//! front of a real [`RemoteBus`](crate::rpmsg::RemoteBus). Both use the standard carveout
//! of [`Carveout::with_buffers`] (512-byte buffers, the host's receive buffers first) and keep
//! the other side's [`ThreadBell`], so the bus under test sees a live peer.

use super::{Carveout, TestHost, TestRemote, ThreadBell};
use crate::rpmsg::RemoteConfig;
use crate::rpmsg::layout::VRING_ALIGN;
use crate::rpmsg::{HostConfig, status};
use crate::virtq::VringLayout;
use crate::wire::rsc::{ResourceTable, VDEV_GFEATURES_OFFSET, VDEV_STATUS_OFFSET};
use crate::wire::vring::Desc;
use crate::{Error, SharedMemory, WaitMode};
use std::sync::Arc;
use std::sync::atomic::Ordering::{Relaxed, Release};
use zerocopy::IntoBytes;

/// The rings of a link: region offset and layout of vring `which` (0: remote → host, the
/// host's receive ring; 1: host → remote).
fn ring(link: &Carveout, which: usize) -> (usize, VringLayout) {
    let base = if which == 0 {
        link.layout.vring0
    } else {
        link.layout.vring1
    };
    let layout =
        VringLayout::new(link.spec.vring_num as u32, VRING_ALIGN).expect("the link's own geometry");
    (base, layout)
}

/// Stores `val` at byte `off` of vring `which`, wrapped into the ring and 2-aligned: a
/// random corruption of either side's ring words.
fn corrupt(link: &Carveout, which: usize, off: usize, val: u16) {
    let (base, l) = ring(link, which);
    link.mem
        .store_u16(base + ((off % l.size()) & !1), val, Relaxed);
}

/// The device (remote) role played by hand against a real host bus.
pub struct MockDevice {
    link: Carveout,
    bell: ThreadBell,
}

impl MockDevice {
    /// A link with `num` buffers per direction, a host bus on it configured by `cfg`, and
    /// this mock in the remote's place.
    pub fn new(num: u16, cfg: HostConfig) -> crate::Result<(Self, TestHost)> {
        let link = Carveout::with_buffers(num);
        let (hb, rb) = ThreadBell::pair();
        let host = crate::rpmsg::HostBus::new(Arc::clone(&link.mem), hb, &link.map, link.rsc, cfg)?;
        Ok((Self { link, bell: rb }, host))
    }

    /// The link (memory, layout, device addresses).
    pub fn link(&self) -> &Carveout {
        &self.link
    }

    /// The remote's doorbell (ring it to wake the host).
    pub fn bell(&self) -> &ThreadBell {
        &self.bell
    }

    /// Region offset and layout of vring `which`.
    pub fn ring(&self, which: usize) -> (usize, VringLayout) {
        ring(&self.link, which)
    }

    /// Writes used element `slot` of vring `which`: buffer `id` returned with `len` bytes.
    pub fn push_used(&self, which: usize, slot: u16, id: u32, len: u32) {
        let (base, l) = self.ring(which);
        let mut e = [0u8; 8];
        e[..4].copy_from_slice(&id.to_le_bytes());
        e[4..].copy_from_slice(&len.to_le_bytes());
        self.link
            .mem
            .write(base + l.used_ring(slot % self.link.spec.vring_num), &e);
    }

    /// Publishes vring `which`'s used index (Release, as a device does).
    pub fn set_used_idx(&self, which: usize, idx: u16) {
        let (base, l) = self.ring(which);
        self.link.mem.store_u16(base + l.used_idx(), idx, Release);
    }

    /// Region offset of the host's receive buffer `id` (the first half of the buffers).
    pub fn rx_buffer_off(&self, id: usize) -> usize {
        self.link.layout.buffers + id * self.link.spec.buf_size
    }

    /// Writes `bytes` at the start of the host's receive buffer `id`.
    pub fn write_rx(&self, id: usize, bytes: &[u8]) {
        self.link.mem.write(self.rx_buffer_off(id), bytes);
    }

    /// Stores `val` at byte `off` (wrapped into the ring, 2-aligned) of vring `which`.
    pub fn corrupt(&self, which: usize, off: usize, val: u16) {
        corrupt(&self.link, which, off, val)
    }
}

/// The driver (host) role played by hand against a real remote bus.
pub struct MockDriver {
    link: Carveout,
    bell: ThreadBell,
}

impl MockDriver {
    /// A link with `num` buffers per direction, a remote bus on it (waiting in
    /// [`WaitMode::Event`]) and this mock in the host's place. The bus is not ready: call
    /// [`set_driver_ok`](Self::set_driver_ok), then the bus's `wait_ready`.
    pub fn new<const N: usize>(num: u16) -> crate::Result<(Self, TestRemote<N>)> {
        let link = Carveout::with_buffers(num);
        let (hb, rb) = ThreadBell::pair();
        let bus = crate::rpmsg::RemoteBus::new(
            Arc::clone(&link.mem),
            rb,
            &link.map,
            link.rsc,
            RemoteConfig::default().wait(WaitMode::Event),
        )?;
        Ok((Self { link, bell: hb }, bus))
    }

    /// The link (memory, layout, device addresses).
    pub fn link(&self) -> &Carveout {
        &self.link
    }

    /// The host's doorbell (ring it to wake the remote).
    pub fn bell(&self) -> &ThreadBell {
        &self.bell
    }

    /// Region offset and layout of vring `which`.
    pub fn ring(&self, which: usize) -> (usize, VringLayout) {
        ring(&self.link, which)
    }

    /// Finishes the host's side of negotiation as remoteproc does: writes the accepted
    /// features (`None`: exactly what the firmware offers) into the vdev's `gfeatures`,
    /// then `DRIVER_OK` into its status (Release). The rings are left as they are (zeroed).
    pub fn set_driver_ok(&self, features: Option<u32>) -> crate::Result<()> {
        let mem = &self.link.mem;
        let rsc = self.link.rsc;
        let mut raw = vec![0u8; rsc.len];
        mem.read(rsc.offset, &mut raw);
        let t = ResourceTable::parse(&raw)?;
        let v = t
            .find_vdev(crate::wire::rpmsg::VIRTIO_ID_RPMSG)?
            .ok_or(Error::Config("no rpmsg vdev in the link's table"))?;
        let vdev = rsc.offset + v.offset;
        let g = features.unwrap_or(v.vdev.dfeatures.get());
        mem.store_u32(vdev + VDEV_GFEATURES_OFFSET, g, Relaxed);
        // The status byte and, after it, `num_of_vrings` (2) and the reserved bytes.
        mem.store_u32(
            vdev + VDEV_STATUS_OFFSET,
            u32::from(status::DRIVER_OK) | 2 << 8,
            Release,
        );
        Ok(())
    }

    /// Writes descriptor `id` and puts it in available slot `slot` of vring `which`.
    pub fn offer(&self, which: usize, slot: u16, id: u16, d: Desc) {
        let (base, l) = self.ring(which);
        let num = self.link.spec.vring_num;
        self.link.mem.write(base + l.desc(id % num), d.as_bytes());
        self.link
            .mem
            .store_u16(base + l.avail_ring(slot % num), id, Relaxed);
    }

    /// Publishes vring `which`'s available index (Release, as a driver does).
    pub fn set_avail_idx(&self, which: usize, idx: u16) {
        let (base, l) = self.ring(which);
        self.link.mem.store_u16(base + l.avail_idx(), idx, Release);
    }

    /// Device address of the host's transmit buffer `id` (after the receive buffers).
    pub fn tx_da(&self, id: u64) -> u64 {
        let spec = &self.link.spec;
        spec.da_base
            + self.link.layout.buffers as u64
            + (spec.vring_num as u64 + id) * spec.buf_size as u64
    }

    /// Device address of the host's receive buffer `id`.
    pub fn rx_da(&self, id: u64) -> u64 {
        let spec = &self.link.spec;
        spec.da_base + self.link.layout.buffers as u64 + id * spec.buf_size as u64
    }

    /// Stores `val` at byte `off` (wrapped into the ring, 2-aligned) of vring `which`.
    pub fn corrupt(&self, which: usize, off: usize, val: u16) {
        corrupt(&self.link, which, off, val)
    }
}
