//! Resource tables that firmware declares in its own image, built at compile time.
//!
//! A remoteproc firmware carries its resource table in an ELF section named
//! `.resource_table`. Linux copies that section out of the file, assigns what the
//! firmware left to it (`FW_RSC_ADDR_ANY` addresses, notify ids), and — when the table lies
//! inside a loaded segment — writes the result back into the firmware's copy before
//! starting the core; afterwards the host keeps writing the vdev's `status` and
//! `gfeatures` there. So the table must be a **writable** static that Rust never assumes
//! unchanged.
//!
//! [`RscTableCell`] is that static: an [`UnsafeCell`] (so rustc places it in writable
//! `.data`-like memory and never constant-folds reads of it) that hands out only
//! by-value volatile snapshots and a raw pointer — never a reference that another core
//! could write behind. [`RpmsgTable`] is the table intercore's buses expect (a
//! `vdev0buffer` carveout and an rpmsg vdev with two vrings), built by `const fn`s, so a
//! firmware declares it in three lines:
//!
//! ```
//! use intercore::rpmsg::layout::CarveoutSpec;
//! use intercore::rpmsg::rsc_table::{RpmsgTable, RscTableCell};
//!
//! /// The carveout this firmware is linked for. EVENT_IDX off: what every host can do.
//! pub const CARVEOUT: CarveoutSpec =
//!     CarveoutSpec { vring_num: 256, buf_size: 512, event_idx: false, da_base: 0xA000_0000 };
//!
//! #[used]
//! #[unsafe(link_section = ".resource_table")] // see "Placing the table" below
//! pub static RESOURCE_TABLE: RscTableCell<RpmsgTable> =
//!     RscTableCell::new(RpmsgTable::standard(&CARVEOUT));
//!
//! // The host's view: the bytes validate as a resource table with the rpmsg vdev.
//! let t = RESOURCE_TABLE.snapshot();
//! let table = intercore::wire::rsc::ResourceTable::validate(zerocopy::IntoBytes::as_bytes(&t))?;
//! let vdev = table.find_vdev(7)?.expect("the rpmsg vdev");
//! // Offers the name service only: no VIRTIO_RING_F_EVENT_IDX (bit 29).
//! assert_eq!(vdev.vdev.dfeatures.get(), 1 << intercore::wire::rpmsg::VIRTIO_RPMSG_F_NS);
//! # Ok::<(), intercore::wire::WireError>(())
//! ```
//!
//! **EVENT_IDX** (`CarveoutSpec::event_idx`) stays off in every example: OpenAMP's host
//! accepts the bit but never writes `used_event` (its remoteproc-virtio transport never
//! sets `vdev->features`), so a firmware that honours it stops notifying after the first
//! message and the link hangs; RPMsg-Lite implements none of it. Turn it on only for a
//! firmware that will only ever run under hosts known to implement it — Linux's
//! `virtio_ring` and intercore's host — where it saves doorbells under load.
//!
//! Other shapes are composed from the entry types ([`CarveoutEntry`], [`TraceEntry`],
//! [`RpmsgVdevEntry`]) in a `#[repr(C)]` struct of the firmware's own, with the offsets
//! computed by `core::mem::offset_of!`:
//!
//! ```
//! use intercore::rpmsg::rsc_table::{rsc_header, CarveoutEntry, TraceEntry, RscTableCell};
//! use intercore::wire::{Le32, rsc::RscHeader};
//! use core::mem::offset_of;
//!
//! #[repr(C)]
//! #[derive(Clone, Copy, zerocopy::FromBytes, zerocopy::IntoBytes, zerocopy::Immutable)]
//! struct MyTable { hdr: RscHeader, offsets: [Le32; 2], trace: TraceEntry, heap: CarveoutEntry }
//!
//! static TABLE: RscTableCell<MyTable> = RscTableCell::new(MyTable {
//!     hdr: rsc_header(2),
//!     offsets: [
//!         Le32::new(offset_of!(MyTable, trace) as u32),
//!         Le32::new(offset_of!(MyTable, heap) as u32),
//!     ],
//!     trace: TraceEntry::new(b"trace:r5f0", 0x9000_0000, 0x8000),
//!     heap: CarveoutEntry::new(b"heap", 0x9100_0000, 0x9100_0000, 0x10_0000, 0),
//! });
//! let t = TABLE.snapshot();
//! let table = intercore::wire::rsc::ResourceTable::validate(zerocopy::IntoBytes::as_bytes(&t))?;
//! assert_eq!(table.len(), 2);
//! # Ok::<(), intercore::wire::WireError>(())
//! ```
//!
//! # Placing the table
//!
//! `#[unsafe(link_section = ".resource_table")]` puts the static in the section the kernel
//! looks for; `#[used]` keeps it although no firmware code refers to it. The attribute is
//! `unsafe` because the linker, not Rust, decides what the section holds: the section must
//! contain this one table (a second static in the same section would be appended after
//! it), and the firmware's linker script must place `.resource_table` in a loaded,
//! writable segment. Crates that `#![deny(unsafe_code)]` allow it on this one item.
//!
//! Why not `static mut`: every access would be `unsafe`, and a `&`/`&mut` to it (which
//! edition 2024 rejects) would let the compiler assume no one else writes it. Here the
//! static is immutable to Rust, its contents are in an `UnsafeCell`, and the only reads
//! are volatile.
#![allow(unsafe_code)]

use super::BUFFER_CARVEOUT;
use super::layout::{CarveoutSpec, VRING_ALIGN};
use core::cell::UnsafeCell;
use core::mem::offset_of;
use intercore_wire::Le32;
use intercore_wire::rsc::{
    FwRscCarveout, FwRscIntercore, FwRscTrace, FwRscVdev, FwRscVdevVring, INTERCORE_FEATURES,
    INTERCORE_RSC_MAGIC, INTERCORE_RSC_VERSION, RSC_CARVEOUT, RSC_INTERCORE, RSC_TABLE_VERSION,
    RSC_TRACE, RSC_VDEV, RscHeader,
};
use intercore_wire::vring::{VIRTIO_RING_F_EVENT_IDX, vring_size};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

const fn le(v: u32) -> Le32 {
    Le32::new(v)
}

/// A NUL-padded 32-byte name field; at most 31 bytes, so the name stays NUL-terminated
/// (a longer name fails to compile when used in a `const`/`static`).
pub const fn name32(s: &[u8]) -> [u8; 32] {
    assert!(s.len() < 32, "resource names are at most 31 bytes");
    let mut out = [0u8; 32];
    let mut i = 0;
    while i < s.len() {
        out[i] = s[i];
        i += 1;
    }
    out
}

/// A table header for `num` entries (version 1, reserved words zero).
pub const fn rsc_header(num: u32) -> RscHeader {
    RscHeader {
        ver: le(RSC_TABLE_VERSION),
        num: le(num),
        reserved: [le(0), le(0)],
    }
}

/// A carveout entry with its type word (`fw_rsc_hdr` + `fw_rsc_carveout`, 56 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct CarveoutEntry {
    /// `RSC_CARVEOUT`.
    pub ty: Le32,
    /// The entry.
    pub body: FwRscCarveout,
}

impl CarveoutEntry {
    /// A carveout of `len` bytes at device address `da` / physical address `pa`
    /// (`FW_RSC_ADDR_ANY` for either lets the host choose).
    pub const fn new(name: &[u8], da: u32, pa: u32, len: u32, flags: u32) -> Self {
        Self {
            ty: le(RSC_CARVEOUT),
            body: FwRscCarveout {
                da: le(da),
                pa: le(pa),
                len: le(len),
                flags: le(flags),
                reserved: le(0),
                name: name32(name),
            },
        }
    }
}

/// A trace-buffer entry with its type word (`fw_rsc_hdr` + `fw_rsc_trace`, 48 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct TraceEntry {
    /// `RSC_TRACE`.
    pub ty: Le32,
    /// The entry.
    pub body: FwRscTrace,
}

impl TraceEntry {
    /// A trace buffer of `len` bytes at device address `da`.
    pub const fn new(name: &[u8], da: u32, len: u32) -> Self {
        Self {
            ty: le(RSC_TRACE),
            body: FwRscTrace {
                da: le(da),
                len: le(len),
                reserved: le(0),
                name: name32(name),
            },
        }
    }
}

/// One vring of a vdev entry, as the firmware declares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VringDecl {
    /// Device address (`FW_RSC_ADDR_ANY`: the host allocates — intercore's buses need a
    /// fixed address).
    pub da: u32,
    /// Used-ring alignment.
    pub align: u32,
    /// Entries (a power of two).
    pub num: u32,
    /// Notify id the firmware proposes.
    pub notifyid: u32,
}

impl VringDecl {
    const fn entry(self) -> FwRscVdevVring {
        FwRscVdevVring {
            da: le(self.da),
            align: le(self.align),
            num: le(self.num),
            notifyid: le(self.notifyid),
            pa: le(0),
        }
    }
}

/// An rpmsg vdev entry with its type word and two vrings, no config space
/// (`fw_rsc_hdr` + `fw_rsc_vdev` + 2 × `fw_rsc_vdev_vring`, 68 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct RpmsgVdevEntry {
    /// `RSC_VDEV`.
    pub ty: Le32,
    /// The device.
    pub vdev: FwRscVdev,
    /// vring 0 (remote → host) and vring 1 (host → remote).
    pub vrings: [FwRscVdevVring; 2],
}

impl RpmsgVdevEntry {
    /// A virtio device `id` offering `dfeatures`, with two vrings.
    pub const fn new(id: u32, dfeatures: u32, vrings: [VringDecl; 2]) -> Self {
        Self {
            ty: le(RSC_VDEV),
            vdev: FwRscVdev {
                id: le(id),
                notifyid: le(0),
                dfeatures: le(dfeatures),
                gfeatures: le(0),
                config_len: le(0),
                status: 0,
                num_of_vrings: 2,
                reserved: [0, 0],
            },
            vrings: [vrings[0].entry(), vrings[1].entry()],
        }
    }
}

/// The table intercore's buses use: a `vdev0buffer` carveout for the rpmsg buffers and an
/// rpmsg vdev (virtio id 7) with two vrings at fixed device addresses (148 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C, align(4))]
pub struct RpmsgTable {
    /// Version 1, two entries.
    pub hdr: RscHeader,
    /// Offsets of `carveout` and `vdev`.
    pub offsets: [Le32; 2],
    /// The `vdev0buffer` carveout.
    pub carveout: CarveoutEntry,
    /// The rpmsg vdev.
    pub vdev: RpmsgVdevEntry,
}

/// Where an [`RpmsgTable`] puts things (device addresses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RpmsgTableSpec {
    /// Features offered (`VIRTIO_RPMSG_F_NS`, `VIRTIO_RING_F_EVENT_IDX`).
    pub features: u32,
    /// The two vrings.
    pub vrings: [VringDecl; 2],
    /// Device address of the `vdev0buffer` carveout (also its physical address).
    pub buf_da: u32,
    /// Its length.
    pub buf_len: u32,
}

const PAGE: usize = 4096;

const fn page_up(n: usize) -> usize {
    n.div_ceil(PAGE) * PAGE
}

impl RpmsgTable {
    /// A table from explicit addresses.
    pub const fn new(spec: &RpmsgTableSpec) -> Self {
        Self {
            hdr: rsc_header(2),
            offsets: [
                le(offset_of!(RpmsgTable, carveout) as u32),
                le(offset_of!(RpmsgTable, vdev) as u32),
            ],
            carveout: CarveoutEntry::new(
                BUFFER_CARVEOUT,
                spec.buf_da,
                spec.buf_da,
                spec.buf_len,
                0,
            ),
            vdev: RpmsgVdevEntry::new(
                intercore_wire::rpmsg::VIRTIO_ID_RPMSG,
                spec.features,
                spec.vrings,
            ),
        }
    }

    /// The table for intercore's standard carveout ([`super::layout::CarveoutLayout`]):
    /// the table's page, vring 0, vring 1 (each page-aligned, used ring aligned to
    /// [`VRING_ALIGN`]) and `vdev0buffer`, from `spec.da_base` on, at the offsets
    /// [`super::layout::CarveoutLayout::new`] computes for the same spec. Evaluated in a
    /// `const`/`static`, a spec the layout cannot hold fails to compile.
    pub const fn standard(spec: &CarveoutSpec) -> Self {
        let num = spec.vring_num as u32;
        assert!(num.is_power_of_two(), "vring_num must be a power of two");
        let ring = page_up(vring_size(num, VRING_ALIGN));
        let vring0 = PAGE;
        let vring1 = vring0 + ring;
        let buffers = vring1 + ring;
        let buffers_len = page_up(2 * spec.vring_num as usize * spec.buf_size);
        let end = spec.da_base + (buffers + buffers_len) as u64;
        assert!(
            end <= u32::MAX as u64 + 1,
            "the carveout must lie below 4 GiB (resource tables hold 32-bit device addresses)"
        );
        let base = spec.da_base;
        let mut features = 1 << intercore_wire::rpmsg::VIRTIO_RPMSG_F_NS;
        if spec.event_idx {
            features |= 1 << VIRTIO_RING_F_EVENT_IDX;
        }
        Self::new(&RpmsgTableSpec {
            features,
            vrings: [
                VringDecl {
                    da: (base + vring0 as u64) as u32,
                    align: VRING_ALIGN,
                    num,
                    notifyid: 1,
                },
                VringDecl {
                    da: (base + vring1 as u64) as u32,
                    align: VRING_ALIGN,
                    num,
                    notifyid: 2,
                },
            ],
            buf_da: (base + buffers as u64) as u32,
            buf_len: buffers_len as u32,
        })
    }
}

/// intercore's vendor entry with its type word (`RSC_INTERCORE` + [`FwRscIntercore`], 36
/// bytes): where the polling doorbell's counters are ([`crate::pollbell`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct IntercoreEntry {
    /// `RSC_INTERCORE`.
    pub ty: Le32,
    /// The entry.
    pub body: FwRscIntercore,
}

impl IntercoreEntry {
    /// A version-1 entry for a doorbell block at `doorbell_da` (`FW_RSC_ADDR_ANY`: no
    /// polling doorbell) with `num_ids` counters per direction (its length is what that
    /// needs), offering every entry feature the remote bus implements
    /// ([`INTERCORE_FEATURES`]: in-order rings with an intercore host).
    pub const fn new(doorbell_da: u32, num_ids: u32) -> Self {
        Self {
            ty: le(RSC_INTERCORE),
            body: FwRscIntercore {
                magic: le(INTERCORE_RSC_MAGIC),
                version: le(INTERCORE_RSC_VERSION),
                features: le(INTERCORE_FEATURES),
                doorbell_da: le(doorbell_da),
                doorbell_len: le(FwRscIntercore::block_len(num_ids)),
                num_ids: le(num_ids),
                accepted: le(0),
                inline_max: le(intercore_wire::rsc::INTERCORE_DEFAULT_INLINE_MAX),
            },
        }
    }

    /// The same entry offering `features` instead (0: the standard split ring with every
    /// host).
    /// `inline_max` follows: [`INTERCORE_DEFAULT_INLINE_MAX`] when `features` offers
    /// inline-slot rings, else 0.
    ///
    /// [`INTERCORE_DEFAULT_INLINE_MAX`]: intercore_wire::rsc::INTERCORE_DEFAULT_INLINE_MAX
    pub const fn with_features(mut self, features: u32) -> Self {
        self.body.features = le(features);
        self.body.inline_max = le(if features & intercore_wire::rsc::INTERCORE_F_INLINE != 0 {
            intercore_wire::rsc::INTERCORE_DEFAULT_INLINE_MAX
        } else {
            0
        });
        self
    }

    /// The same entry with `inline_max` set (the payload bytes a slot carries; 1..=112).
    pub const fn with_inline_max(mut self, inline_max: u32) -> Self {
        self.body.inline_max = le(inline_max);
        self
    }
}

/// The table an intercore firmware offers by default: [`RpmsgTable`]'s entries (the
/// `vdev0buffer` carveout and the rpmsg vdev) and the intercore vendor entry without a
/// polling doorbell, offering in-order rings to an intercore host ([`INTERCORE_FEATURES`];
/// Linux, OpenAMP and RPMsg-Lite skip the entry and get the standard split ring). 3
/// entries, 192 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C, align(4))]
pub struct IntercoreRpmsgTable {
    /// Version 1, three entries.
    pub hdr: RscHeader,
    /// Offsets of the three entries.
    pub offsets: [Le32; 3],
    /// The `vdev0buffer` carveout.
    pub carveout: CarveoutEntry,
    /// The rpmsg vdev.
    pub vdev: RpmsgVdevEntry,
    /// The intercore entry (features only: `doorbell_da` = `FW_RSC_ADDR_ANY`).
    pub intercore: IntercoreEntry,
}

impl IntercoreRpmsgTable {
    /// [`RpmsgTable::standard`]'s entries for `spec`, and the vendor entry offering
    /// `features` ([`INTERCORE_FEATURES`] for everything the buses implement; 0 for the
    /// standard split ring with every host).
    pub const fn standard(spec: &CarveoutSpec, features: u32) -> Self {
        let base = RpmsgTable::standard(spec);
        Self {
            hdr: rsc_header(3),
            offsets: [
                le(offset_of!(IntercoreRpmsgTable, carveout) as u32),
                le(offset_of!(IntercoreRpmsgTable, vdev) as u32),
                le(offset_of!(IntercoreRpmsgTable, intercore) as u32),
            ],
            carveout: base.carveout,
            vdev: base.vdev,
            intercore: IntercoreEntry::new(intercore_wire::rsc::FW_RSC_ADDR_ANY, 1)
                .with_features(features),
        }
    }
}

/// Name of the carveout entry that declares the window where the host may place the
/// data-plane pool (on boards without an IOMMU the remote reaches exactly that window).
pub const DP_POOL_CARVEOUT: &[u8] = b"intercore-dp";

/// The table of a board with a polling doorbell and a fixed data-plane window: the
/// [`RpmsgTable`] entries, an `intercore-dp` carveout, and the intercore vendor entry
/// (4 entries, 256 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C, align(4))]
pub struct PolledRpmsgTable {
    /// Version 1, four entries.
    pub hdr: RscHeader,
    /// Offsets of the four entries.
    pub offsets: [Le32; 4],
    /// The `vdev0buffer` carveout.
    pub carveout: CarveoutEntry,
    /// The rpmsg vdev.
    pub vdev: RpmsgVdevEntry,
    /// The `intercore-dp` carveout.
    pub pool: CarveoutEntry,
    /// Where the doorbell counters are.
    pub intercore: IntercoreEntry,
}

impl PolledRpmsgTable {
    /// The standard rpmsg layout of `spec` ([`RpmsgTable::standard`]), a data-plane window
    /// of `pool_len` bytes at `pool_da`, and a doorbell block at `doorbell_da` with
    /// `num_ids` counters per direction.
    pub const fn new(
        spec: &CarveoutSpec,
        pool_da: u32,
        pool_len: u32,
        doorbell_da: u32,
        num_ids: u32,
    ) -> Self {
        let base = RpmsgTable::standard(spec);
        Self {
            hdr: rsc_header(4),
            offsets: [
                le(offset_of!(PolledRpmsgTable, carveout) as u32),
                le(offset_of!(PolledRpmsgTable, vdev) as u32),
                le(offset_of!(PolledRpmsgTable, pool) as u32),
                le(offset_of!(PolledRpmsgTable, intercore) as u32),
            ],
            carveout: base.carveout,
            vdev: base.vdev,
            pool: CarveoutEntry::new(DP_POOL_CARVEOUT, pool_da, pool_da, pool_len, 0),
            intercore: IntercoreEntry::new(doorbell_da, num_ids),
        }
    }
}

/// A resource table in writable memory that the host may change at any time.
///
/// Put one in a `static` in the `.resource_table` section (see the module docs). Rust code
/// gets only by-value snapshots ([`Self::snapshot`], volatile: every call really reads
/// memory) and a raw pointer ([`Self::as_ptr`]) for board code that hands the table's
/// address to a [`crate::SharedMemory`] implementation. `T` must accept every bit
/// pattern ([`FromBytes`]): the host writes whatever it writes.
#[repr(transparent)]
pub struct RscTableCell<T>(UnsafeCell<T>);

// SAFETY: safe code can only read the contents — by value, through `read_volatile` — and
// never obtains a reference into the cell, so no `&T` exists that a write could
// invalidate. Writes come from outside the program (the remoteproc loader before the core
// starts, the host core while it runs), as with device memory; any bytes they leave are a
// valid `T` (`FromBytes`), so a snapshot — even one torn by a concurrent host write — is
// a valid value (callers validate it, as they validate everything from the peer). Writes
// through `as_ptr` are the unsafe caller's to synchronise.
unsafe impl<T: FromBytes + Copy> Sync for RscTableCell<T> {}

impl<T: FromBytes + Copy> RscTableCell<T> {
    /// A cell holding `table`.
    pub const fn new(table: T) -> Self {
        Self(UnsafeCell::new(table))
    }

    /// A copy of the current contents (what the host last wrote back, or the initial
    /// table before the host touched it).
    pub fn snapshot(&self) -> T {
        // SAFETY: the pointer comes from a live `UnsafeCell<T>`, so it is valid, aligned
        // and initialised; no Rust reference to the contents exists (see the `Sync`
        // impl); any bytes an outside writer left are a valid `T` (`FromBytes`).
        unsafe { core::ptr::read_volatile(self.0.get()) }
    }

    /// The table's address, for board code that maps it as shared memory. Writing
    /// through it is `unsafe` and must not race with [`Self::snapshot`] on another
    /// thread.
    pub const fn as_ptr(&self) -> *mut T {
        self.0.get()
    }

    /// The table's size in bytes.
    pub const fn len(&self) -> usize {
        core::mem::size_of::<T>()
    }

    /// Whether `T` is zero-sized.
    pub const fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use super::*;
    use crate::rpmsg::layout::CarveoutLayout;
    use intercore_wire::rsc::{Resource, ResourceTable};

    /// remoteproc.h sizes: header 16 + 2 offsets + carveout (4 + 52) + vdev (4 + 24 + 2 × 20).
    #[test]
    fn sizes_and_offsets_follow_remoteproc_h() {
        assert_eq!(core::mem::size_of::<CarveoutEntry>(), 56);
        assert_eq!(core::mem::size_of::<TraceEntry>(), 48);
        assert_eq!(core::mem::size_of::<RpmsgVdevEntry>(), 68);
        assert_eq!(core::mem::size_of::<RpmsgTable>(), 148);
        assert_eq!(core::mem::align_of::<RpmsgTable>(), 4);
        let t = RpmsgTable::new(&RpmsgTableSpec {
            features: 1,
            vrings: [VringDecl {
                da: 0x1000,
                align: 16,
                num: 8,
                notifyid: 0,
            }; 2],
            buf_da: 0x8000,
            buf_len: 0x1000,
        });
        assert_eq!((t.offsets[0].get(), t.offsets[1].get()), (24, 80));
    }

    /// The const-built standard table puts everything where `CarveoutLayout` does — for
    /// several geometries — and validates; and its bytes are exactly those of the runtime
    /// builder it replaced (`layout::write_resource_table`, removed in issue 13), pinned
    /// here by their CRC32C, so every table intercore writes is unchanged.
    #[test]
    fn standard_table_matches_the_layout_and_the_old_builder() {
        for (num, buf, ev, base, crc) in [
            (256u16, 512usize, true, 0xA000_0000u64, 0xfab0_c72b_u32),
            (16, 512, false, 0xA000_0000, 0xf91f_26c3),
            (4, 1024, true, 0x1000_0000, 0x8118_56dc),
            (1024, 512, true, 0, 0x6f63_e173),
        ] {
            let spec = CarveoutSpec {
                vring_num: num,
                buf_size: buf,
                event_idx: ev,
                da_base: base,
            };
            let layout = CarveoutLayout::new(&spec).unwrap();
            let t = RpmsgTable::standard(&spec);
            assert_eq!(crate::crc32c(t.as_bytes()), crc, "{spec:?}");
            assert!(t.as_bytes().len() <= layout.rsc.len);
            let table = ResourceTable::validate(t.as_bytes()).unwrap();
            let v = table.find_vdev(7).unwrap().unwrap();
            let mut features = 1 << intercore_wire::rpmsg::VIRTIO_RPMSG_F_NS;
            if ev {
                features |= 1 << VIRTIO_RING_F_EVENT_IDX;
            }
            assert_eq!(v.vdev.dfeatures.get(), features);
            for (i, off) in [layout.vring0, layout.vring1].into_iter().enumerate() {
                let r = v.vring(i).unwrap();
                assert_eq!(r.da.get() as u64, base + off as u64, "vring {i}");
                assert_eq!(
                    (r.num.get(), r.align.get(), r.notifyid.get()),
                    (num as u32, VRING_ALIGN, i as u32 + 1)
                );
            }
            match table.entry(0).unwrap() {
                Resource::Carveout(c) => {
                    assert_eq!(&c.name[..BUFFER_CARVEOUT.len()], BUFFER_CARVEOUT);
                    assert_eq!(c.da.get() as u64, base + layout.buffers as u64);
                    assert_eq!(c.pa.get(), c.da.get());
                    assert_eq!(c.len.get() as usize, layout.buffers_len);
                }
                e => panic!("{e:?}"),
            }
        }
    }

    /// The polled board's table: remoteproc.h entry sizes, the vendor entry found and
    /// checked by the wire parser, the rpmsg vdev unchanged, the pool carveout by name.
    #[test]
    fn polled_table_validates_with_vendor_entry() {
        assert_eq!(core::mem::size_of::<IntercoreEntry>(), 36);
        let spec = CarveoutSpec {
            vring_num: 64,
            buf_size: 512,
            event_idx: false,
            da_base: 0x10_0000,
        };
        let t = PolledRpmsgTable::new(&spec, 0x40_0000, 0x40_0000, 0x18_0000, 4);
        assert_eq!(
            core::mem::size_of::<PolledRpmsgTable>(),
            16 + 16 + 56 + 68 + 56 + 36
        );
        let table = ResourceTable::validate(t.as_bytes()).unwrap();
        assert_eq!(table.len(), 4);
        let (_, e) = table.find_intercore().unwrap().unwrap();
        assert_eq!(
            (e.doorbell_da.get(), e.num_ids.get(), e.doorbell_len.get()),
            (0x18_0000, 4, 128)
        );
        assert_eq!(
            table.find_vdev(7).unwrap().unwrap().vdev,
            RpmsgTable::standard(&spec).vdev.vdev
        );
        match table.entry(2).unwrap() {
            Resource::Carveout(c) => {
                assert_eq!(&c.name[..DP_POOL_CARVEOUT.len()], DP_POOL_CARVEOUT);
                assert_eq!((c.da.get(), c.len.get()), (0x40_0000, 0x40_0000));
            }
            e => panic!("{e:?}"),
        }
    }

    static CELL: RscTableCell<RpmsgTable> =
        RscTableCell::new(RpmsgTable::standard(&CarveoutSpec {
            vring_num: 256,
            buf_size: 512,
            event_idx: true,
            da_base: 0xA000_0000,
        }));

    /// The host writes the vdev status back into the firmware's table (remoteproc's
    /// `rproc_virtio_set_status` writes `rsc->status`): a snapshot taken afterwards sees
    /// the new value — the cell is writable memory that Rust does not treat as constant.
    #[test]
    fn snapshot_sees_host_writes() {
        assert_eq!(CELL.snapshot().vdev.vdev.status, 0);
        // remoteproc.h: `status` follows the type word (`fw_rsc_hdr`) and five u32 fields.
        let status = offset_of!(RpmsgTable, vdev)
            + offset_of!(RpmsgVdevEntry, vdev)
            + offset_of!(FwRscVdev, status);
        assert_eq!(status - offset_of!(RpmsgTable, vdev), 24);
        // SAFETY: stands in for the host core: one byte inside the table, and no other
        // test touches `CELL`'s status.
        unsafe { CELL.as_ptr().cast::<u8>().add(status).write_volatile(4) };
        assert_eq!(CELL.snapshot().vdev.vdev.status, 4);
        assert_eq!(CELL.len(), 148);
    }
}
