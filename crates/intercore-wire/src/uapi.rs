//! Userspace rpmsg interface of the Linux kernel (`include/uapi/linux/rpmsg.h`).
//!
//! The layouts and ioctl numbers are checked against the installed kernel header by the
//! `kernel_headers` test of this crate.

use crate::Le32;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// `struct rpmsg_endpoint_info`: the argument of `RPMSG_CREATE_EPT_IOCTL` and friends.
/// Native endianness in the kernel; little-endian on every target intercore supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
#[repr(C)]
pub struct RpmsgEndpointInfo {
    /// NUL-padded channel name.
    pub name: [u8; 32],
    /// Local address (`RPMSG_ADDR_ANY` to let the kernel choose).
    pub src: Le32,
    /// Remote address.
    pub dst: Le32,
}

const IOC_NRBITS: u32 = 8;
const IOC_TYPEBITS: u32 = 8;
const IOC_SIZEBITS: u32 = 14;
const IOC_NRSHIFT: u32 = 0;
const IOC_TYPESHIFT: u32 = IOC_NRSHIFT + IOC_NRBITS;
const IOC_SIZESHIFT: u32 = IOC_TYPESHIFT + IOC_TYPEBITS;
const IOC_DIRSHIFT: u32 = IOC_SIZESHIFT + IOC_SIZEBITS;
/// `_IOC_NONE` (asm-generic, used by x86-64 and arm64).
pub const IOC_NONE: u32 = 0;
/// `_IOC_WRITE`.
pub const IOC_WRITE: u32 = 1;
/// `_IOC_READ`.
pub const IOC_READ: u32 = 2;

/// `_IOC(dir, type, nr, size)` of asm-generic/ioctl.h.
pub const fn ioc(dir: u32, ty: u32, nr: u32, size: usize) -> u32 {
    (dir << IOC_DIRSHIFT)
        | (ty << IOC_TYPESHIFT)
        | (nr << IOC_NRSHIFT)
        | ((size as u32) << IOC_SIZESHIFT)
}

const INFO: usize = core::mem::size_of::<RpmsgEndpointInfo>();
/// `_IOW(0xb5, 0x1, struct rpmsg_endpoint_info)`: create an endpoint on `/dev/rpmsg_ctrlN`.
pub const RPMSG_CREATE_EPT_IOCTL: u32 = ioc(IOC_WRITE, 0xb5, 0x1, INFO);
/// `_IO(0xb5, 0x2)`: destroy the endpoint of an open `/dev/rpmsgM`.
pub const RPMSG_DESTROY_EPT_IOCTL: u32 = ioc(IOC_NONE, 0xb5, 0x2, 0);
/// `_IOW(0xb5, 0x3, struct rpmsg_endpoint_info)`: create an rpmsg channel device.
pub const RPMSG_CREATE_DEV_IOCTL: u32 = ioc(IOC_WRITE, 0xb5, 0x3, INFO);
/// `_IOW(0xb5, 0x4, struct rpmsg_endpoint_info)`: release an rpmsg channel device.
pub const RPMSG_RELEASE_DEV_IOCTL: u32 = ioc(IOC_WRITE, 0xb5, 0x4, INFO);
/// `_IOR(0xb5, 0x5, int)` (Linux 6.4+): read the remote's flow-control state.
pub const RPMSG_GET_OUTGOING_FLOWCONTROL: u32 = ioc(IOC_READ, 0xb5, 0x5, 4);
/// `_IOR(0xb5, 0x6, int)` (Linux 6.4+): set our flow-control state; the value is passed directly.
pub const RPMSG_SET_INCOMING_FLOWCONTROL: u32 = ioc(IOC_READ, 0xb5, 0x6, 4);
