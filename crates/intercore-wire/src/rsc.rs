//! The remoteproc resource table (Linux `include/linux/remoteproc.h`).
//!
//! The table is a header `{ver, num, reserved[2]}` followed by `num` u32 offsets, each
//! pointing (from the table's start) at an entry that begins with a u32 type. The parser
//! here checks everything a firmware file can get wrong and names the offset of the
//! problem; [`RscTableWriter`] emits a table, e.g. for the simulated SoC's carveout.

use crate::{Le32, WireError, error::read_at};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// Resource type: physically contiguous memory the remote needs.
pub const RSC_CARVEOUT: u32 = 0;
/// Resource type: device memory to map through an IOMMU.
pub const RSC_DEVMEM: u32 = 1;
/// Resource type: a trace buffer.
pub const RSC_TRACE: u32 = 2;
/// Resource type: a virtio device with its vrings.
pub const RSC_VDEV: u32 = 3;
/// First vendor-specific resource type.
pub const RSC_VENDOR_START: u32 = 128;
/// Last vendor-specific resource type.
pub const RSC_VENDOR_END: u32 = 512;
/// "Let the host allocate this address".
pub const FW_RSC_ADDR_ANY: u32 = 0xFFFF_FFFF;
/// The only resource-table version.
pub const RSC_TABLE_VERSION: u32 = 1;
/// Virtio status bit: the driver is ready (`VIRTIO_CONFIG_S_DRIVER_OK`).
pub const VIRTIO_CONFIG_S_DRIVER_OK: u8 = 4;
/// Byte offset of `status` in a vdev entry, counted from the entry's type word (the
/// `fw_rsc_hdr`): 4 for the type, then `id`, `notifyid`, `dfeatures`, `gfeatures` and
/// `config_len` (5 × u32) of `struct fw_rsc_vdev`.
pub const VDEV_STATUS_OFFSET: usize = 4 + 20;
/// Byte offset of `gfeatures` in a vdev entry, counted from the entry's type word.
pub const VDEV_GFEATURES_OFFSET: usize = 4 + 12;

/// `struct resource_table` without the offsets.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    FromBytes,
    IntoBytes,
    KnownLayout,
    Immutable,
    Unaligned,
)]
#[repr(C)]
pub struct RscHeader {
    /// Version, 1.
    pub ver: Le32,
    /// Number of entries.
    pub num: Le32,
    /// Reserved, zero.
    pub reserved: [Le32; 2],
}

/// `struct fw_rsc_carveout` (also the shape of `fw_rsc_devmem`), after the type word.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    FromBytes,
    IntoBytes,
    KnownLayout,
    Immutable,
    Unaligned,
)]
#[repr(C)]
pub struct FwRscCarveout {
    /// Device address.
    pub da: Le32,
    /// Physical address.
    pub pa: Le32,
    /// Length in bytes.
    pub len: Le32,
    /// IOMMU protection flags.
    pub flags: Le32,
    /// Reserved.
    pub reserved: Le32,
    /// NUL-padded name.
    pub name: [u8; 32],
}

/// `struct fw_rsc_trace`, after the type word.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    FromBytes,
    IntoBytes,
    KnownLayout,
    Immutable,
    Unaligned,
)]
#[repr(C)]
pub struct FwRscTrace {
    /// Device address of the buffer.
    pub da: Le32,
    /// Length in bytes.
    pub len: Le32,
    /// Reserved.
    pub reserved: Le32,
    /// NUL-padded name.
    pub name: [u8; 32],
}

/// `struct fw_rsc_vdev`, after the type word, without its vrings and config.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    FromBytes,
    IntoBytes,
    KnownLayout,
    Immutable,
    Unaligned,
)]
#[repr(C)]
pub struct FwRscVdev {
    /// virtio device id.
    pub id: Le32,
    /// Notify id of the device.
    pub notifyid: Le32,
    /// Features the firmware offers.
    pub dfeatures: Le32,
    /// Features the host accepted (written by the host).
    pub gfeatures: Le32,
    /// Bytes of virtio config space after the vrings.
    pub config_len: Le32,
    /// virtio status (written by the host).
    pub status: u8,
    /// Number of vrings that follow.
    pub num_of_vrings: u8,
    /// Reserved.
    pub reserved: [u8; 2],
}

/// `struct fw_rsc_vdev_vring`.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    FromBytes,
    IntoBytes,
    KnownLayout,
    Immutable,
    Unaligned,
)]
#[repr(C)]
pub struct FwRscVdevVring {
    /// Device address of the ring (`FW_RSC_ADDR_ANY`: the host allocates).
    pub da: Le32,
    /// Alignment of the used ring.
    pub align: Le32,
    /// Number of entries.
    pub num: Le32,
    /// Notify id of this ring.
    pub notifyid: Le32,
    /// Physical address (written by the host).
    pub pa: Le32,
}

/// One parsed entry, borrowing the table's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource<'a> {
    /// `RSC_CARVEOUT`.
    Carveout(FwRscCarveout),
    /// `RSC_DEVMEM`.
    Devmem(FwRscCarveout),
    /// `RSC_TRACE`.
    Trace(FwRscTrace),
    /// `RSC_VDEV` with its rings and config.
    Vdev(VdevEntry<'a>),
    /// A vendor type (128..=512) and the bytes up to the next entry (or the table's end).
    Vendor {
        /// The type word.
        ty: u32,
        /// The entry's bytes after the type word.
        body: &'a [u8],
    },
}

/// A virtio device entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VdevEntry<'a> {
    /// The fixed part.
    pub vdev: FwRscVdev,
    /// The vrings (`num_of_vrings` × 20 bytes).
    vrings: &'a [u8],
    /// The config space bytes.
    pub config: &'a [u8],
    /// Offset of the entry's type word from the start of the table.
    pub offset: usize,
}

impl<'a> VdevEntry<'a> {
    /// Number of vrings.
    pub fn num_vrings(&self) -> usize {
        self.vrings.len() / core::mem::size_of::<FwRscVdevVring>()
    }
    /// Vring `i`.
    pub fn vring(&self, i: usize) -> Option<FwRscVdevVring> {
        FwRscVdevVring::read_from_prefix(self.vrings.get(i * 20..)?)
            .ok()
            .map(|(v, _)| v)
    }
    /// Offset, from the table's start, of vring `i`'s entry.
    pub fn vring_offset(&self, i: usize) -> usize {
        self.offset + 4 + core::mem::size_of::<FwRscVdev>() + i * 20
    }
}

/// A checked view of a resource table.
#[derive(Debug, Clone, Copy)]
pub struct ResourceTable<'a> {
    bytes: &'a [u8],
    num: usize,
}

/// The largest number of entries accepted (guards against absurd `num` values).
pub const RSC_MAX_ENTRIES: usize = 256;

impl<'a> ResourceTable<'a> {
    /// Checks the header and the offsets array. Entries are checked by [`Self::entry`] and
    /// [`Self::validate`].
    pub fn parse(bytes: &'a [u8]) -> Result<Self, WireError> {
        let hdr: RscHeader = read_at(bytes, 0, "resource table header")?;
        if hdr.ver.get() != RSC_TABLE_VERSION {
            return Err(WireError::BadValue {
                what: "resource table version",
                offset: 0,
                value: hdr.ver.get() as u64,
            });
        }
        let num = hdr.num.get() as usize;
        if num > RSC_MAX_ENTRIES {
            return Err(WireError::BadValue {
                what: "resource table entry count",
                offset: 4,
                value: num as u64,
            });
        }
        if hdr.reserved[0].get() != 0 || hdr.reserved[1].get() != 0 {
            return Err(WireError::BadValue {
                what: "resource table reserved words",
                offset: 8,
                value: 0,
            });
        }
        let header_len = 16 + 4 * num;
        if header_len > bytes.len() {
            return Err(WireError::Truncated {
                what: "resource table offsets",
                offset: 16,
                need: 4 * num,
                have: bytes.len() - 16,
            });
        }
        let t = Self { bytes, num };
        Ok(t)
    }

    /// Parses and checks every entry.
    pub fn validate(bytes: &'a [u8]) -> Result<Self, WireError> {
        let t = Self::parse(bytes)?;
        for i in 0..t.num {
            t.entry(i)?;
        }
        Ok(t)
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.num
    }
    /// Whether the table has no entries.
    pub fn is_empty(&self) -> bool {
        self.num == 0
    }
    /// The table's bytes.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The offset of entry `i` (its type word).
    pub fn entry_offset(&self, i: usize) -> Result<usize, WireError> {
        let at = 16 + 4 * i;
        let off = read_at::<Le32>(self.bytes, at, "resource table offset")?.get() as usize;
        let header_len = 16 + 4 * self.num;
        if off < header_len || off % 4 != 0 || off + 4 > self.bytes.len() {
            return Err(WireError::BadValue {
                what: "resource entry offset",
                offset: at,
                value: off as u64,
            });
        }
        Ok(off)
    }

    /// Parses entry `i`.
    pub fn entry(&self, i: usize) -> Result<Resource<'a>, WireError> {
        let off = self.entry_offset(i)?;
        let ty = read_at::<Le32>(self.bytes, off, "resource type")?.get();
        let body_at = off + 4;
        match ty {
            RSC_CARVEOUT => Ok(Resource::Carveout(read_at(
                self.bytes,
                body_at,
                "carveout entry",
            )?)),
            RSC_DEVMEM => Ok(Resource::Devmem(read_at(
                self.bytes,
                body_at,
                "devmem entry",
            )?)),
            RSC_TRACE => Ok(Resource::Trace(read_at(
                self.bytes,
                body_at,
                "trace entry",
            )?)),
            RSC_VDEV => {
                let vdev: FwRscVdev = read_at(self.bytes, body_at, "vdev entry")?;
                let rings_at = body_at + core::mem::size_of::<FwRscVdev>();
                let rings_len =
                    vdev.num_of_vrings as usize * core::mem::size_of::<FwRscVdevVring>();
                let cfg_len = vdev.config_len.get() as usize;
                let end = rings_at + rings_len + cfg_len;
                if end > self.bytes.len() {
                    return Err(WireError::Truncated {
                        what: "vdev vrings and config",
                        offset: rings_at,
                        need: rings_len + cfg_len,
                        have: self.bytes.len() - rings_at,
                    });
                }
                for r in 0..vdev.num_of_vrings as usize {
                    let v: FwRscVdevVring = read_at(self.bytes, rings_at + r * 20, "vdev vring")?;
                    if VringNumCheck::check(v.num.get()).is_err() {
                        return Err(WireError::BadValue {
                            what: "vring num",
                            offset: rings_at + r * 20 + 8,
                            value: v.num.get() as u64,
                        });
                    }
                    if v.align.get() < 2 || !v.align.get().is_power_of_two() {
                        return Err(WireError::BadValue {
                            what: "vring align",
                            offset: rings_at + r * 20 + 4,
                            value: v.align.get() as u64,
                        });
                    }
                }
                Ok(Resource::Vdev(VdevEntry {
                    vdev,
                    vrings: &self.bytes[rings_at..rings_at + rings_len],
                    config: &self.bytes[rings_at + rings_len..end],
                    offset: off,
                }))
            }
            RSC_VENDOR_START..=RSC_VENDOR_END => {
                let next = (0..self.num)
                    .filter_map(|j| self.entry_offset(j).ok())
                    .filter(|&o| o > off)
                    .min()
                    .unwrap_or(self.bytes.len());
                Ok(Resource::Vendor {
                    ty,
                    body: &self.bytes[body_at..next],
                })
            }
            other => Err(WireError::BadValue {
                what: "resource type",
                offset: off,
                value: other as u64,
            }),
        }
    }

    /// Iterates over entries; each is parsed (and checked) as it is reached.
    pub fn iter(&self) -> impl Iterator<Item = Result<Resource<'a>, WireError>> + '_ {
        (0..self.num).map(move |i| self.entry(i))
    }

    /// The first vdev entry with the given virtio id, if any.
    pub fn find_vdev(&self, id: u32) -> Result<Option<VdevEntry<'a>>, WireError> {
        for e in self.iter() {
            if let Resource::Vdev(v) = e? {
                if v.vdev.id.get() == id {
                    return Ok(Some(v));
                }
            }
        }
        Ok(None)
    }
}

struct VringNumCheck;
impl VringNumCheck {
    fn check(num: u32) -> Result<(), ()> {
        crate::vring::VringLayout::new(num, 16)
            .map(|_| ())
            .map_err(|_| ())
    }
}

/// Emits a resource table into a byte buffer, entry by entry.
///
/// The writer reserves room for `max_entries` offsets up front; each `add_*` call appends
/// an entry and returns the offset of its type word. Writing past the buffer returns
/// [`WireError::LengthOverflow`] and leaves the buffer's contents unspecified.
pub struct RscTableWriter<'b> {
    buf: &'b mut [u8],
    max: usize,
    num: usize,
    end: usize,
}

impl<'b> RscTableWriter<'b> {
    /// Starts a table with room for `max_entries` entries.
    pub fn new(buf: &'b mut [u8], max_entries: usize) -> Result<Self, WireError> {
        let end = 16 + 4 * max_entries;
        if end > buf.len() || max_entries > RSC_MAX_ENTRIES {
            return Err(WireError::LengthOverflow {
                what: "resource table header",
                len: end as u64,
                max: buf.len() as u64,
            });
        }
        buf[..end].fill(0);
        Ok(Self {
            buf,
            max: max_entries,
            num: 0,
            end,
        })
    }

    fn push(&mut self, ty: u32, parts: &[&[u8]]) -> Result<usize, WireError> {
        if self.num == self.max {
            return Err(WireError::LengthOverflow {
                what: "resource table entries",
                len: self.num as u64 + 1,
                max: self.max as u64,
            });
        }
        let off = (self.end + 3) & !3;
        let len = 4 + parts.iter().map(|p| p.len()).sum::<usize>();
        if off + len > self.buf.len() {
            return Err(WireError::LengthOverflow {
                what: "resource table",
                len: (off + len) as u64,
                max: self.buf.len() as u64,
            });
        }
        self.buf[off..off + 4].copy_from_slice(&ty.to_le_bytes());
        let mut at = off + 4;
        for p in parts {
            self.buf[at..at + p.len()].copy_from_slice(p);
            at += p.len();
        }
        let slot = 16 + 4 * self.num;
        self.buf[slot..slot + 4].copy_from_slice(&(off as u32).to_le_bytes());
        self.num += 1;
        self.end = at;
        Ok(off)
    }

    /// Appends a carveout.
    pub fn add_carveout(&mut self, c: &FwRscCarveout) -> Result<usize, WireError> {
        self.push(RSC_CARVEOUT, &[c.as_bytes()])
    }
    /// Appends a devmem entry.
    pub fn add_devmem(&mut self, c: &FwRscCarveout) -> Result<usize, WireError> {
        self.push(RSC_DEVMEM, &[c.as_bytes()])
    }
    /// Appends a trace buffer.
    pub fn add_trace(&mut self, t: &FwRscTrace) -> Result<usize, WireError> {
        self.push(RSC_TRACE, &[t.as_bytes()])
    }
    /// Appends a vdev with its vrings and config bytes (`num_of_vrings` and `config_len`
    /// are set from the slices).
    pub fn add_vdev(
        &mut self,
        v: &FwRscVdev,
        vrings: &[FwRscVdevVring],
        config: &[u8],
    ) -> Result<usize, WireError> {
        let mut v = *v;
        v.num_of_vrings = u8::try_from(vrings.len()).map_err(|_| WireError::LengthOverflow {
            what: "vdev vrings",
            len: vrings.len() as u64,
            max: 255,
        })?;
        v.config_len = Le32::new(config.len() as u32);
        self.push(RSC_VDEV, &[v.as_bytes(), vrings.as_bytes(), config])
    }
    /// Appends a vendor entry.
    pub fn add_vendor(&mut self, ty: u32, body: &[u8]) -> Result<usize, WireError> {
        if !(RSC_VENDOR_START..=RSC_VENDOR_END).contains(&ty) {
            return Err(WireError::BadValue {
                what: "vendor resource type",
                offset: 0,
                value: ty as u64,
            });
        }
        self.push(ty, &[body])
    }

    /// Writes the header and returns the table's length in bytes.
    pub fn finish(self) -> usize {
        let hdr = RscHeader {
            ver: Le32::new(RSC_TABLE_VERSION),
            num: Le32::new(self.num as u32),
            reserved: [Le32::new(0); 2],
        };
        self.buf[..16].copy_from_slice(hdr.as_bytes());
        self.end
    }
}

/// intercore's vendor resource type (in the vendor range `128..=512`, which Linux's
/// remoteproc skips with "unsupported resource"). One entry of this type declares where the
/// polling doorbell's counters live ([`FwRscIntercore`]); later versions extend the body
/// (feature negotiation) without moving these fields.
pub const RSC_INTERCORE: u32 = 0x1C0;
/// First word of every [`RSC_INTERCORE`] body: `"ICOR"` in little-endian byte order, so a
/// table from another vendor that happens to use the same type number is not misread.
pub const INTERCORE_RSC_MAGIC: u32 = u32::from_le_bytes(*b"ICOR");
/// The body version this crate writes (and the oldest it reads).
pub const INTERCORE_RSC_VERSION: u32 = 1;
/// Feature bit of the intercore vendor entry (`features`/`accepted`, not a virtio feature
/// word): **in-order rings**. The semantics of `VIRTIO_F_IN_ORDER` (feature bit 35,
/// `include/uapi/linux/virtio_config.h`; virtio 1.1+ "In-order use of descriptors" and, for
/// the split ring, "driver uses descriptors in ring order: starting from offset 0 in the
/// table, and wrapping around at the end of the table"), which a resource table's 32-bit
/// `dfeatures`/`gfeatures` cannot carry, applied to both vrings of the rpmsg vdev: the
/// driver (host) makes descriptors available in ring order — the descriptor of available
/// entry `i` is descriptor `i mod num` — and the device (remote) uses buffers in the order
/// they were made available, so it need not read the available ring, and the driver need
/// not read used elements (the device writes one element per batch, the last). Only an intercore host and an intercore remote know it; any other peer never
/// writes `accepted` (Linux, OpenAMP and RPMsg-Lite skip vendor entries) and gets the
/// standard split ring.
pub const INTERCORE_F_IN_ORDER: u32 = 1 << 0;
/// Feature bit of the intercore vendor entry: **inline-slot rings** (issue 24). Each
/// direction's vring area holds a ring of one- or two-line slots carrying the rpmsg
/// header and payload, with a per-slot sequence word written last
/// (`intercore::virtq::inline`); the slot size follows [`FwRscIntercore::inline_max`],
/// which the firmware sets (1..=[`INTERCORE_INLINE_MAX`]) when it offers this bit.
/// Only between two intercore ends: no other peer writes `accepted`, so every other host
/// gets the standard split ring.
pub const INTERCORE_F_INLINE: u32 = 1 << 1;
/// Feature bit of the intercore vendor entry, with [`INTERCORE_F_INLINE`]: the inline
/// slots' **ask flag** (issue 23, fair transmit credit). The host may set flag bit 14 of a
/// host → remote slot's `flags` (`SLOT_F_ASK` in `intercore::virtq::inline`) on a message
/// that uses up its endpoint's transmit credit; the remote then publishes its progress as
/// soon as it releases that message, instead of at the end of its batch, so the credit
/// comes back per message. A remote that does not accept the bit refuses the flag as
/// unknown, so the host sets it only when accepted.
pub const INTERCORE_F_INLINE_ASK: u32 = 1 << 2;
/// The largest `inline_max` (two 64-byte lines less the 16-byte header).
pub const INTERCORE_INLINE_MAX: u32 = 112;
/// Every entry feature bit this crate knows (the parser refuses an `accepted` outside the
/// offered bits; a bus accepts only what it implements).
pub const INTERCORE_KNOWN_FEATURES: u32 =
    INTERCORE_F_IN_ORDER | INTERCORE_F_INLINE | INTERCORE_F_INLINE_ASK;
/// The entry feature bits this crate's buses implement (and intercore firmware offers by
/// default): in-order rings, inline-slot rings and their ask flag.
pub const INTERCORE_FEATURES: u32 =
    INTERCORE_F_IN_ORDER | INTERCORE_F_INLINE | INTERCORE_F_INLINE_ASK;
/// The `inline_max` an intercore firmware offers by default: two-line slots (a 64-byte
/// message and its header fit one slot).
pub const INTERCORE_DEFAULT_INLINE_MAX: u32 = INTERCORE_INLINE_MAX;
/// Offset of the `accepted` word in an [`RSC_INTERCORE`] entry, counted from its type word
/// (the host writes it there).
pub const INTERCORE_ACCEPTED_OFFSET: usize = 4 + core::mem::offset_of!(FwRscIntercore, accepted);
/// Alignment (bytes) of each direction's counter array in the doorbell block: a cache line
/// on every supported core, so the two writers never share a line.
pub const DOORBELL_DIR_ALIGN: u32 = 64;

/// The body of an [`RSC_INTERCORE`] entry (after the type word), version 1, 32 bytes.
///
/// The doorbell block at `doorbell_da` holds two arrays of `num_ids` little-endian u32
/// counters, one per notify id: host → remote at offset 0, remote → host at
/// [`FwRscIntercore::to_host_offset`]. Each counter is written only by the side that rings
/// it (plain stores, no read-modify-write), read by the other.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    FromBytes,
    IntoBytes,
    KnownLayout,
    Immutable,
    Unaligned,
)]
#[repr(C)]
pub struct FwRscIntercore {
    /// [`INTERCORE_RSC_MAGIC`].
    pub magic: Le32,
    /// [`INTERCORE_RSC_VERSION`].
    pub version: Le32,
    /// Entry feature bits offered by the firmware ([`INTERCORE_F_IN_ORDER`]; unknown bits
    /// are ignored by the host, never accepted).
    pub features: Le32,
    /// Device address of the polling doorbell's block (`FW_RSC_ADDR_ANY`: no polling
    /// doorbell).
    pub doorbell_da: Le32,
    /// Bytes of the block.
    pub doorbell_len: Le32,
    /// Counters per direction (notify ids `0..num_ids`).
    pub num_ids: Le32,
    /// Entry feature bits the host accepted, written by an intercore host before
    /// `DRIVER_OK` (a subset of `features`; 0 from the firmware, and 0 whenever the host is
    /// not intercore). The remote reads it at `DRIVER_OK`, refuses bits it did not offer,
    /// and writes it back to 0 (consumed), so a later host that never writes it — Linux —
    /// cannot inherit a stale acceptance. Was the first reserved word of version 1, so
    /// older firmware offers nothing and reads nothing here.
    pub accepted: Le32,
    /// Payload bytes the firmware carries inline in a slot when [`INTERCORE_F_INLINE`] is
    /// negotiated (1..=[`INTERCORE_INLINE_MAX`]; 48 makes one-line slots, more two-line
    /// ones). Zero when the firmware does not offer inline rings; a value outside that
    /// range makes the offer unusable (the host does not accept the bit), not the table. Was the second reserved
    /// word of version 1 (zero in older firmware, which offers no inline rings).
    pub inline_max: Le32,
}

impl FwRscIntercore {
    /// Offset of the remote → host counters in the block.
    pub const fn to_host_offset(num_ids: u32) -> u32 {
        (num_ids * 4).div_ceil(DOORBELL_DIR_ALIGN) * DOORBELL_DIR_ALIGN
    }
    /// Bytes a block with `num_ids` counters per direction needs.
    pub const fn block_len(num_ids: u32) -> u32 {
        2 * Self::to_host_offset(num_ids)
    }
}

impl ResourceTable<'_> {
    /// The intercore vendor entry, checked: its offset in the table and its body. `None`
    /// when the table has no [`RSC_INTERCORE`] entry; an error names a wrong magic, an
    /// unknown version, a short body or a block too small for its counters.
    pub fn find_intercore(&self) -> Result<Option<(usize, FwRscIntercore)>, WireError> {
        for i in 0..self.len() {
            let off = self.entry_offset(i)?;
            if let Resource::Vendor {
                ty: RSC_INTERCORE,
                body,
            } = self.entry(i)?
            {
                let e: FwRscIntercore = read_at(body, 0, "intercore vendor entry")?;
                let at = |field: usize| off + 4 + field;
                if e.magic.get() != INTERCORE_RSC_MAGIC {
                    return Err(WireError::BadValue {
                        what: "intercore vendor entry magic",
                        offset: at(0),
                        value: e.magic.get() as u64,
                    });
                }
                if e.version.get() != INTERCORE_RSC_VERSION {
                    return Err(WireError::BadValue {
                        what: "intercore vendor entry version",
                        offset: at(4),
                        value: e.version.get() as u64,
                    });
                }
                if e.accepted.get() & !e.features.get() != 0 {
                    return Err(WireError::BadValue {
                        what: "intercore entry accepted features not offered",
                        offset: at(24),
                        value: e.accepted.get() as u64,
                    });
                }
                let n = e.num_ids.get();
                if n == 0 || n > 1024 {
                    return Err(WireError::BadValue {
                        what: "intercore doorbell num_ids (1..=1024)",
                        offset: at(20),
                        value: n as u64,
                    });
                }
                if e.doorbell_da.get() != FW_RSC_ADDR_ANY
                    && e.doorbell_len.get() < FwRscIntercore::block_len(n)
                {
                    return Err(WireError::BadValue {
                        what: "intercore doorbell block length (too small for its counters)",
                        offset: at(16),
                        value: e.doorbell_len.get() as u64,
                    });
                }
                return Ok(Some((off, e)));
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample(buf: &mut [u8]) -> usize {
        let mut w = RscTableWriter::new(buf, 4).unwrap();
        let mut name = [0u8; 32];
        name[..4].copy_from_slice(b"pool");
        w.add_carveout(&FwRscCarveout {
            da: Le32::new(0xa000_0000),
            pa: Le32::new(0),
            len: Le32::new(0x10_0000),
            flags: Le32::new(0),
            reserved: Le32::new(0),
            name,
        })
        .unwrap();
        let ring = FwRscVdevVring {
            da: Le32::new(0x1000),
            align: Le32::new(16),
            num: Le32::new(256),
            notifyid: Le32::new(0),
            pa: Le32::new(0),
        };
        w.add_vdev(
            &FwRscVdev {
                id: Le32::new(7),
                dfeatures: Le32::new(1),
                ..Default::default()
            },
            &[ring, ring],
            &[],
        )
        .unwrap();
        w.add_vendor(200, &[1, 2, 3, 4]).unwrap();
        w.finish()
    }

    extern crate std;
    use std::{string::ToString, vec, vec::Vec};

    fn intercore_table(e: &FwRscIntercore) -> Vec<u8> {
        let mut buf = vec![0u8; 256];
        let mut w = RscTableWriter::new(&mut buf, 2).unwrap();
        w.add_vendor(200, &[1, 2, 3, 4]).unwrap();
        w.add_vendor(RSC_INTERCORE, e.as_bytes()).unwrap();
        let n = w.finish();
        buf.truncate(n);
        buf
    }

    fn good_intercore() -> FwRscIntercore {
        FwRscIntercore {
            magic: Le32::new(INTERCORE_RSC_MAGIC),
            version: Le32::new(INTERCORE_RSC_VERSION),
            doorbell_da: Le32::new(0x1000),
            doorbell_len: Le32::new(FwRscIntercore::block_len(4)),
            num_ids: Le32::new(4),
            ..Default::default()
        }
    }

    /// The intercore vendor entry: type in remoteproc.h's vendor range, found past another
    /// vendor's entry, 32-byte body; each direction's counters on their own 64-byte line.
    #[test]
    fn intercore_entry_roundtrip() {
        assert!((RSC_VENDOR_START..=RSC_VENDOR_END).contains(&RSC_INTERCORE));
        assert_eq!(core::mem::size_of::<FwRscIntercore>(), 32);
        assert_eq!(FwRscIntercore::to_host_offset(4), 64);
        assert_eq!(FwRscIntercore::to_host_offset(17), 128);
        let bytes = intercore_table(&good_intercore());
        let t = ResourceTable::validate(&bytes).unwrap();
        let (off, e) = t.find_intercore().unwrap().unwrap();
        assert_eq!(off, t.entry_offset(1).unwrap());
        assert_eq!(e, good_intercore());
        let mut none = vec![0u8; 64];
        let mut w = RscTableWriter::new(&mut none, 1).unwrap();
        w.add_vendor(200, &[0; 4]).unwrap();
        let n = w.finish();
        assert_eq!(
            ResourceTable::validate(&none[..n])
                .unwrap()
                .find_intercore(),
            Ok(None)
        );
    }

    /// A wrong magic, an unknown version, zero ids, a block smaller than its counters, an
    /// acceptance of features not offered and a truncated body are each named, with the
    /// offset of the field.
    #[test]
    fn intercore_entry_errors_are_named() {
        type Breaker = fn(&mut FwRscIntercore);
        let cases: [(Breaker, &str); 5] = [
            (|e| e.magic = Le32::new(0x1234), "magic"),
            (|e| e.version = Le32::new(2), "version"),
            (|e| e.num_ids = Le32::new(0), "num_ids"),
            (|e| e.doorbell_len = Le32::new(64), "block length"),
            (
                |e| e.accepted = Le32::new(INTERCORE_F_IN_ORDER),
                "not offered",
            ),
        ];
        for (f, what) in cases {
            let mut e = good_intercore();
            f(&mut e);
            let bytes = intercore_table(&e);
            let err = ResourceTable::validate(&bytes)
                .unwrap()
                .find_intercore()
                .unwrap_err();
            assert!(err.to_string().contains(what), "{what}: {err}");
        }
        let mut buf = vec![0u8; 64];
        let mut w = RscTableWriter::new(&mut buf, 1).unwrap();
        w.add_vendor(RSC_INTERCORE, &[0; 8]).unwrap();
        let n = w.finish();
        let err = ResourceTable::validate(&buf[..n])
            .unwrap()
            .find_intercore()
            .unwrap_err();
        assert!(matches!(err, WireError::Truncated { .. }), "{err}");
    }

    /// The inline bit sits beside in-order with its slot payload in the former second
    /// reserved word: offered with 1..=112, accepted like any offered bit.
    #[test]
    fn intercore_inline_offer_parses() {
        assert_eq!(INTERCORE_F_INLINE & INTERCORE_F_IN_ORDER, 0);
        assert_eq!(core::mem::size_of::<FwRscIntercore>(), 32);
        for im in [1, 48, 112] {
            let mut e = good_intercore();
            e.features = Le32::new(INTERCORE_F_IN_ORDER | INTERCORE_F_INLINE);
            e.accepted = Le32::new(INTERCORE_F_INLINE);
            e.inline_max = Le32::new(im);
            let bytes = intercore_table(&e);
            let (_, got) = ResourceTable::validate(&bytes)
                .unwrap()
                .find_intercore()
                .unwrap()
                .unwrap();
            assert_eq!(got.inline_max.get(), im);
        }
    }

    proptest! {
        /// Any body of any length under the intercore type parses without panicking, and
        /// whatever is accepted as an entry never accepts a feature it does not offer.
        #[test]
        fn intercore_entry_parser_is_bounded(body in proptest::collection::vec(any::<u8>(), 0..48)) {
            let mut buf = vec![0u8; 128];
            let mut w = RscTableWriter::new(&mut buf, 1).unwrap();
            w.add_vendor(RSC_INTERCORE, &body).unwrap();
            let n = w.finish();
            let t = ResourceTable::validate(&buf[..n]).unwrap();
            if let Ok(Some((_, e))) = t.find_intercore() {
                prop_assert_eq!(e.accepted.get() & !e.features.get(), 0);
            }
        }
    }

    /// `accepted` sits where `INTERCORE_ACCEPTED_OFFSET` says, counted from the type word.
    #[test]
    fn intercore_accepted_offset() {
        assert_eq!(INTERCORE_ACCEPTED_OFFSET, 28);
        let mut e = good_intercore();
        e.features = Le32::new(INTERCORE_F_IN_ORDER);
        e.accepted = Le32::new(INTERCORE_F_IN_ORDER);
        let bytes = intercore_table(&e);
        let t = ResourceTable::validate(&bytes).unwrap();
        let (off, got) = t.find_intercore().unwrap().unwrap();
        assert_eq!(got.accepted.get(), INTERCORE_F_IN_ORDER);
        let at = off + INTERCORE_ACCEPTED_OFFSET;
        assert_eq!(bytes[at..at + 4], INTERCORE_F_IN_ORDER.to_le_bytes());
    }

    /// remoteproc.h: the write-back fields of `struct fw_rsc_vdev` sit where the offsets
    /// say, counted from the type word.
    #[test]
    fn vdev_write_back_offsets() {
        assert_eq!(
            VDEV_STATUS_OFFSET,
            4 + core::mem::offset_of!(FwRscVdev, status)
        );
        assert_eq!(
            VDEV_GFEATURES_OFFSET,
            4 + core::mem::offset_of!(FwRscVdev, gfeatures)
        );
    }

    /// remoteproc.h: entry struct sizes (the type word is a separate `fw_rsc_hdr`).
    #[test]
    fn entry_sizes_match_remoteproc_h() {
        assert_eq!(core::mem::size_of::<FwRscCarveout>(), 52);
        assert_eq!(core::mem::size_of::<FwRscTrace>(), 44);
        assert_eq!(core::mem::size_of::<FwRscVdev>(), 24);
        assert_eq!(core::mem::size_of::<FwRscVdevVring>(), 20);
    }

    /// A written table parses back to the same entries.
    #[test]
    fn writer_roundtrip() {
        let mut buf = [0u8; 512];
        let n = sample(&mut buf);
        let t = ResourceTable::validate(&buf[..n]).unwrap();
        assert_eq!(t.len(), 3);
        let v = t.find_vdev(7).unwrap().unwrap();
        assert_eq!(v.num_vrings(), 2);
        assert_eq!(v.vring(1).unwrap().num.get(), 256);
        assert!(matches!(
            t.entry(2).unwrap(),
            Resource::Vendor {
                ty: 200,
                body: [1, 2, 3, 4]
            }
        ));
    }

    /// Malformed tables give errors that name the offset.
    #[test]
    fn malformed_tables_name_the_problem() {
        let mut buf = [0u8; 512];
        let n = sample(&mut buf);
        let mut bad = buf;
        bad[0] = 2;
        assert_eq!(
            ResourceTable::parse(&bad[..n]).unwrap_err(),
            WireError::BadValue {
                what: "resource table version",
                offset: 0,
                value: 2
            }
        );
        let mut bad = buf;
        bad[16..20].copy_from_slice(&9999u32.to_le_bytes());
        assert!(matches!(
            ResourceTable::validate(&bad[..n]),
            Err(WireError::BadValue {
                what: "resource entry offset",
                offset: 16,
                ..
            })
        ));
        let mut bad = buf;
        let off = u32::from_le_bytes(bad[20..24].try_into().unwrap()) as usize;
        bad[off + 4 + 17] = 200; // num_of_vrings
        assert!(matches!(
            ResourceTable::validate(&bad[..n]),
            Err(WireError::Truncated {
                what: "vdev vrings and config",
                ..
            })
        ));
        let e = ResourceTable::validate(&buf[..40]).unwrap_err();
        assert!(
            matches!(
                e,
                WireError::Truncated {
                    what: "carveout entry",
                    ..
                }
            ),
            "{e:?}"
        );
    }

    proptest! {
        /// Arbitrary bytes never panic the parser, and corrupting any byte of a good table
        /// gives either a valid table or an error, never a panic.
        #[test]
        fn fuzz_like(bytes in proptest::collection::vec(any::<u8>(), 0..400), pos in 0usize..200, val: u8) {
            if let Ok(t) = ResourceTable::parse(&bytes) { for e in t.iter() { let _ = e; } }
            let mut buf = [0u8; 512];
            let n = sample(&mut buf);
            buf[pos % n] = val;
            if let Ok(t) = ResourceTable::parse(&buf[..n]) { for e in t.iter() { let _ = e; } }
        }
    }
}
