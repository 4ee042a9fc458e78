//! Byte layouts shared between the application core and the remote core.
//!
//! Everything here is plain data: the virtio split ring (virtio 1.x §2.7), the rpmsg
//! header and name-service message (Linux `drivers/rpmsg/virtio_rpmsg_bus.c`), the
//! remoteproc resource table (Linux `include/linux/remoteproc.h`) and the userspace rpmsg
//! uAPI (`include/uapi/linux/rpmsg.h`). Every multi-byte field is explicitly
//! little-endian. Parsing untrusted bytes is checked and returns a [`WireError`] naming
//! the offset and the problem; emitting is infallible once a value has been constructed.
//!
//! The crate is `no_std`, allocation-free and contains no `unsafe` code.
#![no_std]
#![deny(unsafe_code)]

pub mod dataplane;
pub mod elf;
pub mod error;
pub mod rpmsg;
pub mod rsc;
pub mod uapi;
pub mod vring;

pub use error::WireError;

/// Little-endian field types used by every layout in this crate.
pub use zerocopy::byteorder::little_endian::{U16 as Le16, U32 as Le32, U64 as Le64};
pub use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};
