//! The data-plane handoff messages, carried as rpmsg payloads on the `intercore-dp` service.
//!
//! A message is an 8-byte header followed by `count` fixed-size entries; with Linux's
//! 512-byte buffers (496-byte payload) a message carries up to 15 entries, so one doorbell
//! covers a batch of buffers. Only buffer ids, device addresses and lengths cross the wire,
//! never pointers.

use crate::{Le16, Le32, Le64, WireError};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// The rpmsg service name the remote announces for its data plane.
pub const DP_SERVICE: &str = "intercore-dp";
/// Message kind: host → remote, buffers to process.
pub const DP_SUBMIT: u16 = 1;
/// Message kind: remote → host, buffers done.
pub const DP_COMPLETE: u16 = 2;
/// Operation: compute CRC32C (Castagnoli) over `len` bytes and store it, little-endian, in
/// the 4 bytes at offset `len` of the same buffer.
pub const DP_OP_CRC32C: u32 = 1;
/// Operation: touch nothing, complete at once (measures the handoff alone).
pub const DP_OP_NOP: u32 = 2;
/// Completion status: done.
pub const DP_OK: u32 = 0;
/// Completion status: an access outside the remote's IOMMU windows or against their
/// permissions was refused.
pub const DP_FAULT: u32 = 1;
/// Completion status: the request itself is invalid (length beyond capacity, …).
pub const DP_BAD_REQUEST: u32 = 2;
/// Completion status: the operation is unknown.
pub const DP_UNSUPPORTED: u32 = 3;

/// Message header.
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
pub struct DpHdr {
    /// `DP_SUBMIT` or `DP_COMPLETE`.
    pub kind: Le16,
    /// Entries that follow.
    pub count: Le16,
    /// Reserved, zero.
    pub reserved: Le32,
}

/// One buffer handed to the remote.
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
pub struct DpSubmit {
    /// Host sequence number (unique while in flight).
    pub seq: Le64,
    /// Device address of the buffer's first byte.
    pub da: Le64,
    /// Bytes of input.
    pub len: Le32,
    /// Bytes the remote may touch from `da` (the buffer's capacity).
    pub cap: Le32,
    /// Host buffer id.
    pub buf: Le32,
    /// `DP_OP_*`.
    pub op: Le32,
}

/// One buffer handed back.
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
pub struct DpComplete {
    /// The submission's sequence number.
    pub seq: Le64,
    /// The submission's device address.
    pub da: Le64,
    /// The submission's buffer id.
    pub buf: Le32,
    /// Bytes of valid output from `da`.
    pub len: Le32,
    /// `DP_OK`, `DP_FAULT`, `DP_BAD_REQUEST`, `DP_UNSUPPORTED`.
    pub status: Le32,
    /// Reserved, zero.
    pub reserved: Le32,
}

/// Size of the header.
pub const DP_HDR_SIZE: usize = 8;
/// Size of an entry (both kinds).
pub const DP_ENTRY_SIZE: usize = 32;

/// Entries that fit a payload of `payload` bytes.
pub const fn dp_entries_per_message(payload: usize) -> usize {
    payload.saturating_sub(DP_HDR_SIZE) / DP_ENTRY_SIZE
}

/// Checks a data-plane message: kind as expected, `count` entries exactly filling the
/// payload. Returns the entries' bytes.
pub fn dp_parse(payload: &[u8], kind: u16) -> Result<&[u8], WireError> {
    let hdr: DpHdr = crate::error::read_at(payload, 0, "data-plane header")?;
    if hdr.kind.get() != kind {
        return Err(WireError::BadValue {
            what: "data-plane message kind",
            offset: 0,
            value: hdr.kind.get() as u64,
        });
    }
    let n = hdr.count.get() as usize;
    if DP_HDR_SIZE + n * DP_ENTRY_SIZE != payload.len() {
        return Err(WireError::BadValue {
            what: "data-plane entry count",
            offset: 2,
            value: n as u64,
        });
    }
    Ok(&payload[DP_HDR_SIZE..])
}

/// Entry `i` of a parsed message's entries.
pub fn dp_entry<T: FromBytes>(entries: &[u8], i: usize) -> Result<T, WireError> {
    crate::error::read_at(entries, i * DP_ENTRY_SIZE, "data-plane entry")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Entries are 32 bytes; 15 fit Linux's 496-byte payload.
    #[test]
    fn sizes() {
        assert_eq!(core::mem::size_of::<DpSubmit>(), DP_ENTRY_SIZE);
        assert_eq!(core::mem::size_of::<DpComplete>(), DP_ENTRY_SIZE);
        assert_eq!(core::mem::size_of::<DpHdr>(), DP_HDR_SIZE);
        assert_eq!(dp_entries_per_message(496), 15);
    }

    /// A count that does not match the payload length, or the wrong kind, is refused.
    #[test]
    fn count_and_kind_checked() {
        let mut msg = [0u8; 8 + 64];
        msg[..8].copy_from_slice(
            DpHdr {
                kind: Le16::new(DP_SUBMIT),
                count: Le16::new(2),
                reserved: Le32::new(0),
            }
            .as_bytes(),
        );
        assert_eq!(dp_parse(&msg, DP_SUBMIT).unwrap().len(), 64);
        assert!(dp_parse(&msg, DP_COMPLETE).is_err());
        assert!(dp_parse(&msg[..40], DP_SUBMIT).is_err());
        msg[2] = 3;
        assert!(dp_parse(&msg, DP_SUBMIT).is_err());
    }

    proptest! {
        /// Arbitrary payloads never panic the parser; accepted ones have whole entries.
        #[test]
        fn arbitrary(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            if let Ok(e) = dp_parse(&bytes, DP_SUBMIT) {
                prop_assert_eq!(e.len() % DP_ENTRY_SIZE, 0);
                for i in 0..e.len() / DP_ENTRY_SIZE { dp_entry::<DpSubmit>(e, i).unwrap(); }
            }
        }
    }
}
