//! Guest memory: a virtual machine's RAM as a vhost-user front end shares it (regions as
//! file descriptors), mapped side by side in one reservation, followed by a private control
//! page for the words a vhost-user device keeps to itself (virtio status, accepted
//! features). One contiguous mapping, so the core's [`SharedMemory`](intercore::SharedMemory)
//! contract holds and zero-copy views work; `intercore-vhost` serves its device on it.

use crate::sys::{Mmap, OwnsMmap};
use intercore::{DevAddr, DeviceAddressMap};
use std::io;
use std::os::fd::{AsFd, OwnedFd};

const PAGE: u64 = 4096;

/// One `VhostUserMemoryRegion` from `SET_MEM_TABLE`, with its file descriptor.
#[derive(Debug)]
pub struct GuestRegion {
    /// Guest physical address of the first byte.
    pub guest_addr: u64,
    /// Length in bytes.
    pub size: u64,
    /// The front end's virtual address of the first byte (ring addresses use these).
    pub user_addr: u64,
    /// Offset of the first byte in `fd`.
    pub mmap_offset: u64,
    /// The memory.
    pub fd: OwnedFd,
}

/// The guest's RAM (one contiguous range of guest physical addresses, from one or more
/// regions) plus the control page.
#[derive(Debug)]
pub struct GuestMemory {
    /// The reservation, with the regions mapped into it and the control page after them.
    map: Mmap,
    /// Guest physical address of offset 0.
    base: u64,
    /// Bytes of guest RAM (the control page follows).
    span: usize,
    /// (user_addr, guest_addr, size) per region, to translate ring addresses.
    user: Vec<(u64, u64, u64)>,
}

impl GuestMemory {
    /// Maps `regions`. They must be page-aligned and together cover one contiguous range of
    /// guest physical addresses (the only layout the single buffer window of the remote bus
    /// can describe exactly).
    pub fn map(mut regions: Vec<GuestRegion>) -> io::Result<Self> {
        let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidInput, what.to_string());
        if regions.is_empty() {
            return Err(bad("SET_MEM_TABLE without regions"));
        }
        regions.sort_by_key(|r| r.guest_addr);
        let base = regions[0].guest_addr;
        let mut end = base;
        for r in &regions {
            if r.size == 0 || (r.guest_addr | r.size | r.mmap_offset) % PAGE != 0 {
                return Err(bad("guest memory region empty or not page-aligned"));
            }
            if r.guest_addr != end {
                return Err(bad(
                    "guest memory regions leave holes or overlap (one contiguous range is supported)",
                ));
            }
            end = r
                .guest_addr
                .checked_add(r.size)
                .ok_or_else(|| bad("guest memory region wraps"))?;
        }
        let span = usize::try_from(end - base).map_err(|_| bad("guest memory too large"))?;
        let total = span
            .checked_add(PAGE as usize)
            .ok_or_else(|| bad("guest memory too large"))?;
        let mut map = Mmap::reserve(total)?;
        let mut user = Vec::with_capacity(regions.len());
        for r in &regions {
            let off = (r.guest_addr - base) as usize;
            let len = usize::try_from(r.size).map_err(|_| bad("guest memory too large"))?;
            map.map_shared_at(off, len, r.fd.as_fd(), r.mmap_offset)?;
            user.push((r.user_addr, r.guest_addr, r.size));
        }
        Ok(Self {
            map,
            base,
            span,
            user,
        })
    }

    /// Guest physical address of the first byte of RAM.
    pub fn base(&self) -> u64 {
        self.base
    }
    /// Bytes of guest RAM (region offsets `0..span`).
    pub fn span(&self) -> usize {
        self.span
    }
    /// Region offset of the private virtio status word.
    pub fn status_off(&self) -> usize {
        self.span
    }
    /// Region offset of the private accepted-features word.
    pub fn gfeatures_off(&self) -> usize {
        self.span + 4
    }

    /// Translates a front-end virtual address (as `SET_VRING_ADDR` carries) to a guest
    /// physical address, if `len` bytes from it lie in one region.
    pub fn user_to_guest(&self, ua: u64, len: u64) -> Option<u64> {
        self.user.iter().find_map(|&(u, g, size)| {
            let rel = ua.checked_sub(u)?;
            (rel.checked_add(len)? <= size).then_some(g + rel)
        })
    }
}

/// `SharedMemory` through the mapping (`sys`), which the value holds from `map` until it
/// drops (the field is never reassigned).
impl OwnsMmap for GuestMemory {
    fn mmap(&self) -> &Mmap {
        &self.map
    }
    /// The front end's memory regions are shared file mappings (memfd or hugetlbfs guest
    /// RAM, received over the vhost-user socket) and the control page is anonymous: Normal
    /// memory, so copies may use `memcpy`.
    fn mapping_is_device_memory(&self) -> bool {
        false
    }
}

/// Guest physical addresses of RAM to region offsets; the control page has no guest
/// address, so the guest can never name it.
impl DeviceAddressMap for GuestMemory {
    fn to_offset(&self, da: DevAddr, len: usize) -> Option<usize> {
        let rel = usize::try_from(da.0.checked_sub(self.base)?).ok()?;
        (rel.checked_add(len)? <= self.span).then_some(rel)
    }
    fn to_dev(&self, off: usize) -> Option<DevAddr> {
        (off < self.span).then(|| DevAddr(self.base + off as u64))
    }
}
