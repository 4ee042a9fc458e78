//! The rpmsg message header and name-service message, as Linux `virtio_rpmsg_bus.c`,
//! OpenAMP and RPMsg-Lite put them on the wire.

use crate::{Le16, Le32, WireError};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// virtio device id of an rpmsg device (`VIRTIO_ID_RPMSG` in `virtio_ids.h`).
pub const VIRTIO_ID_RPMSG: u32 = 7;
/// Feature bit: the remote offers a name service (`VIRTIO_RPMSG_F_NS`).
pub const VIRTIO_RPMSG_F_NS: u32 = 0;
/// Address of the name-service endpoint.
pub const RPMSG_NS_ADDR: u32 = 53;
/// "Any address": let the bus choose.
pub const RPMSG_ADDR_ANY: u32 = 0xFFFF_FFFF;
/// Addresses below this are reserved; dynamic endpoints start here.
pub const RPMSG_RESERVED_ADDRESSES: u32 = 1024;
/// Size of the rpmsg header.
pub const RPMSG_HDR_SIZE: usize = 16;
/// Linux's default (and fixed) buffer size.
pub const RPMSG_DEFAULT_BUF_SIZE: usize = 512;
/// Linux's number of buffers in each direction for a 256-entry vring.
pub const RPMSG_DEFAULT_NUM_BUFS: usize = 256;
/// Size of a channel or service name, including its NUL.
pub const RPMSG_NAME_SIZE: usize = 32;
/// Size of a name-service message.
pub const RPMSG_NS_MSG_SIZE: usize = 40;
/// Name-service flag: a service was created.
pub const RPMSG_NS_CREATE: u32 = 0;
/// Name-service flag: a service was destroyed.
pub const RPMSG_NS_DESTROY: u32 = 1;

/// The 16-byte header in front of every rpmsg payload.
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
pub struct RpmsgHdr {
    /// Source endpoint address.
    pub src: Le32,
    /// Destination endpoint address.
    pub dst: Le32,
    /// Reserved, zero.
    pub reserved: Le32,
    /// Payload length in bytes.
    pub len: Le16,
    /// Flags, zero.
    pub flags: Le16,
}

impl RpmsgHdr {
    /// Builds a header.
    pub fn new(src: u32, dst: u32, len: u16) -> Self {
        Self {
            src: Le32::new(src),
            dst: Le32::new(dst),
            reserved: Le32::new(0),
            len: Le16::new(len),
            flags: Le16::new(0),
        }
    }

    /// Parses the header at the start of a received buffer of `buf.len()` bytes (the
    /// length the peer reported, already clamped to the buffer's real size) and returns it
    /// with the payload it describes. The payload length is checked against the buffer.
    pub fn parse(buf: &[u8]) -> Result<(Self, &[u8]), WireError> {
        let hdr: RpmsgHdr = crate::error::read_at(buf, 0, "rpmsg header")?;
        let len = hdr.len.get() as usize;
        let room = buf.len() - RPMSG_HDR_SIZE;
        if len > room {
            return Err(WireError::LengthOverflow {
                what: "rpmsg payload length",
                len: len as u64,
                max: room as u64,
            });
        }
        Ok((hdr, &buf[RPMSG_HDR_SIZE..RPMSG_HDR_SIZE + len]))
    }
}

/// A channel or service name: at most 31 bytes, stored NUL-padded in 32.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Name {
    bytes: [u8; RPMSG_NAME_SIZE],
    len: u8,
}

impl Name {
    /// Makes a name from bytes; `None` if longer than 31 bytes or containing a NUL.
    pub fn new(name: &[u8]) -> Option<Self> {
        if name.len() >= RPMSG_NAME_SIZE || name.contains(&0) {
            return None;
        }
        let mut bytes = [0u8; RPMSG_NAME_SIZE];
        bytes[..name.len()].copy_from_slice(name);
        Some(Self {
            bytes,
            len: name.len() as u8,
        })
    }

    /// Reads a name from a 32-byte wire field the way Linux does: the name ends at the first
    /// NUL, and byte 31 is treated as NUL whatever the peer wrote (`rpmsg_ns_cb`).
    pub fn from_field(field: &[u8; RPMSG_NAME_SIZE]) -> Self {
        let len = field[..RPMSG_NAME_SIZE - 1]
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(RPMSG_NAME_SIZE - 1);
        let mut bytes = [0u8; RPMSG_NAME_SIZE];
        bytes[..len].copy_from_slice(&field[..len]);
        Self {
            bytes,
            len: len as u8,
        }
    }

    /// The name's bytes, without padding.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }

    /// The name as text, if it is UTF-8.
    pub fn as_str(&self) -> Option<&str> {
        core::str::from_utf8(self.as_bytes()).ok()
    }

    /// The NUL-padded 32-byte wire form.
    pub fn field(&self) -> [u8; RPMSG_NAME_SIZE] {
        self.bytes
    }
}

impl core::fmt::Debug for Name {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "\"{}\"", self.as_bytes().escape_ascii())
    }
}

impl core::fmt::Display for Name {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}", self.as_bytes().escape_ascii())
    }
}

/// The 40-byte name-service message (`struct rpmsg_ns_msg`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
#[repr(C)]
pub struct RpmsgNsMsg {
    /// NUL-padded service name.
    pub name: [u8; RPMSG_NAME_SIZE],
    /// Address of the announcing endpoint.
    pub addr: Le32,
    /// `RPMSG_NS_CREATE` or `RPMSG_NS_DESTROY`.
    pub flags: Le32,
}

/// Whether a service appeared or went away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NsKind {
    /// `RPMSG_NS_CREATE`.
    Create,
    /// `RPMSG_NS_DESTROY`.
    Destroy,
}

/// A validated name-service announcement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NsAnnouncement {
    /// Service name.
    pub name: Name,
    /// Endpoint address of the service.
    pub addr: u32,
    /// Created or destroyed.
    pub kind: NsKind,
}

impl NsAnnouncement {
    /// Parses a name-service payload. Like Linux (`rpmsg_ns_cb`), only payloads of exactly
    /// 40 bytes are accepted and byte 31 of the name is forced to NUL. Flags other than
    /// create/destroy and reserved addresses are rejected.
    pub fn parse(payload: &[u8]) -> Result<Self, WireError> {
        if payload.len() != RPMSG_NS_MSG_SIZE {
            return Err(WireError::BadValue {
                what: "name-service message length",
                offset: 0,
                value: payload.len() as u64,
            });
        }
        let msg: RpmsgNsMsg = crate::error::read_at(payload, 0, "name-service message")?;
        let kind = match msg.flags.get() {
            RPMSG_NS_CREATE => NsKind::Create,
            RPMSG_NS_DESTROY => NsKind::Destroy,
            v => {
                return Err(WireError::BadValue {
                    what: "name-service flags",
                    offset: 36,
                    value: v as u64,
                });
            }
        };
        let addr = msg.addr.get();
        if addr == RPMSG_ADDR_ANY {
            return Err(WireError::BadValue {
                what: "name-service address",
                offset: 32,
                value: addr as u64,
            });
        }
        Ok(Self {
            name: Name::from_field(&msg.name),
            addr,
            kind,
        })
    }

    /// The wire form.
    pub fn emit(&self) -> RpmsgNsMsg {
        let flags = match self.kind {
            NsKind::Create => RPMSG_NS_CREATE,
            NsKind::Destroy => RPMSG_NS_DESTROY,
        };
        RpmsgNsMsg {
            name: self.name.field(),
            addr: Le32::new(self.addr),
            flags: Le32::new(flags),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// `virtio_rpmsg_bus.c`: the header is 16 bytes; the NS message 40.
    #[test]
    fn sizes() {
        assert_eq!(core::mem::size_of::<RpmsgHdr>(), RPMSG_HDR_SIZE);
        assert_eq!(core::mem::size_of::<RpmsgNsMsg>(), RPMSG_NS_MSG_SIZE);
    }

    /// A header whose length runs past the buffer is an error, not a slice panic.
    #[test]
    fn header_len_checked_against_buffer() {
        let mut buf = [0u8; 32];
        buf[..16].copy_from_slice(RpmsgHdr::new(1, 2, 17).as_bytes());
        assert!(matches!(
            RpmsgHdr::parse(&buf),
            Err(WireError::LengthOverflow {
                len: 17,
                max: 16,
                ..
            })
        ));
        buf[..16].copy_from_slice(RpmsgHdr::new(1, 2, 16).as_bytes());
        assert_eq!(RpmsgHdr::parse(&buf).unwrap().1.len(), 16);
        assert!(matches!(
            RpmsgHdr::parse(&buf[..10]),
            Err(WireError::Truncated { .. })
        ));
    }

    /// `rpmsg_ns_cb`: only 40-byte messages, and name[31] is forced to NUL.
    #[test]
    fn ns_message_follows_kernel_rules() {
        let mut msg = RpmsgNsMsg {
            name: [b'a'; 32],
            addr: Le32::new(1024),
            flags: Le32::new(0),
        };
        let ann = NsAnnouncement::parse(msg.as_bytes()).unwrap();
        assert_eq!(ann.name.as_bytes().len(), 31);
        assert!(NsAnnouncement::parse(&msg.as_bytes()[..39]).is_err());
        msg.flags = Le32::new(7);
        assert!(NsAnnouncement::parse(msg.as_bytes()).is_err());
    }

    proptest! {
        /// Parsing arbitrary bytes never panics, and a parsed header always describes a
        /// payload inside the buffer.
        #[test]
        fn parse_arbitrary(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            if let Ok((hdr, payload)) = RpmsgHdr::parse(&bytes) {
                prop_assert_eq!(payload.len(), hdr.len.get() as usize);
                prop_assert!(payload.len() + RPMSG_HDR_SIZE <= bytes.len());
            }
            let _ = NsAnnouncement::parse(&bytes);
        }

        /// emit → parse round-trips every valid announcement.
        #[test]
        fn ns_roundtrip(name in "[a-z0-9_-]{1,31}", addr in 0u32..0xFFFF_FFFE, destroy: bool) {
            let kind = if destroy { NsKind::Destroy } else { NsKind::Create };
            let a = NsAnnouncement { name: Name::new(name.as_bytes()).unwrap(), addr, kind };
            prop_assert_eq!(NsAnnouncement::parse(a.emit().as_bytes()).unwrap(), a);
        }
    }
}
