//! The one error type of the wire layer.

use core::fmt;

/// A problem found while parsing bytes that came from the other side (or from a file).
///
/// Every variant names where in the input the problem is, so that a malformed firmware
/// image or a misbehaving peer can be diagnosed from the message alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireError {
    /// The input ended before a structure did.
    Truncated {
        /// What was being read.
        what: &'static str,
        /// Offset at which the structure starts.
        offset: usize,
        /// Bytes the structure needs.
        need: usize,
        /// Bytes that were available from `offset`.
        have: usize,
    },
    /// A field holds a value the format does not allow.
    BadValue {
        /// Which field.
        what: &'static str,
        /// Offset of the field in the input.
        offset: usize,
        /// The value found.
        value: u64,
    },
    /// A length field claims more bytes than the container holds.
    LengthOverflow {
        /// Which length.
        what: &'static str,
        /// The claimed length.
        len: u64,
        /// The most the container allows.
        max: u64,
    },
    /// A ring geometry that virtio does not allow (size not a power of two, bad alignment).
    BadGeometry {
        /// What is wrong.
        what: &'static str,
        /// The value given.
        value: u64,
    },
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            WireError::Truncated {
                what,
                offset,
                need,
                have,
            } => write!(
                f,
                "{what} at offset {offset:#x} is truncated: needs {need} bytes, only {have} present"
            ),
            WireError::BadValue {
                what,
                offset,
                value,
            } => {
                write!(
                    f,
                    "{what} at offset {offset:#x} has invalid value {value:#x}"
                )
            }
            WireError::LengthOverflow { what, len, max } => {
                write!(f, "{what} of {len} bytes exceeds the maximum of {max}")
            }
            WireError::BadGeometry { what, value } => {
                write!(f, "bad ring geometry: {what} ({value})")
            }
        }
    }
}

impl core::error::Error for WireError {}

/// Reads a `T` from `bytes` at `offset`, or says what was truncated.
pub(crate) fn read_at<T: zerocopy::FromBytes>(
    bytes: &[u8],
    offset: usize,
    what: &'static str,
) -> Result<T, WireError> {
    let need = core::mem::size_of::<T>();
    let have = bytes.len().saturating_sub(offset);
    let tail = bytes.get(offset..).unwrap_or(&[]);
    match T::read_from_prefix(tail) {
        Ok((v, _)) => Ok(v),
        Err(_) => Err(WireError::Truncated {
            what,
            offset,
            need,
            have,
        }),
    }
}
