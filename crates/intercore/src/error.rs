//! Errors of the core layer.

use core::fmt;
use intercore_wire::WireError;

/// What went wrong on a link between the two cores.
///
/// `Display` and `core::error::Error` come from `thiserror` (version 2 without its `std`
/// feature, so this stays `no_std`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Bytes from the peer (or a file) do not parse.
    #[error("malformed data: {0}")]
    Wire(#[from] WireError),
    /// The peer broke the ring or bus protocol; the link is unusable from now on.
    #[error("peer broke the protocol: {what} ({value:#x})")]
    Protocol {
        /// What the peer did wrong.
        what: &'static str,
        /// The offending value.
        value: u64,
    },
    /// A blocking call did not complete in time (the peer may have stopped answering).
    #[error("timed out waiting for the peer")]
    Timeout,
    /// A non-blocking call could not complete now.
    #[error("operation would block")]
    WouldBlock,
    /// The peer is gone (its process exited, or it reset the link).
    #[error("the peer is gone")]
    PeerGone,
    /// A payload is larger than a buffer can carry.
    #[error("message of {len} bytes exceeds the {max}-byte payload limit")]
    MessageTooLarge {
        /// Bytes asked for.
        len: usize,
        /// Bytes a buffer holds.
        max: usize,
    },
    /// No endpoint has that address.
    #[error("no endpoint at address {0}")]
    NoSuchEndpoint(u32),
    /// The address is already bound.
    #[error("address {0} is already bound")]
    AddressInUse(u32),
    /// A fixed-size table is full.
    #[error("no room left: {0}")]
    Exhausted(&'static str),
    /// The link is not set up yet (for example DRIVER_OK was not seen).
    #[error("link not ready: {0}")]
    NotReady(&'static str),
    /// A configuration or layout the code cannot use.
    #[error("unusable configuration: {0}")]
    Config(&'static str),
    /// The caller's buffer is smaller than the message; the message was consumed and truncated.
    #[error("message of {len} bytes truncated to the caller's buffer")]
    Truncated {
        /// The message's full length.
        len: usize,
    },
    /// Messages for this endpoint were dropped because its queue was full (the host's
    /// `HostConfig::max_copied_per_endpoint`); returned by the receive that reaches their
    /// place in the endpoint's order. The next receive continues with the message after them.
    #[error("{count} message(s) for this endpoint were dropped: its receive queue was full")]
    Lost {
        /// How many messages were dropped there.
        count: u64,
    },
    /// An operating-system call failed with this errno.
    #[error("system call failed with errno {0}")]
    Os(i32),
    /// The remote broke the data-plane protocol; the data plane is unusable until reset
    /// (`DpHost::reset`). Names the message entry when one was at fault.
    #[error("remote broke the data-plane protocol{}: {what} ({value:#x})", DpWhere(*entry, *buf, *seq))]
    DataPlane {
        /// What was wrong.
        what: &'static str,
        /// Index of the offending entry in its message.
        entry: Option<u16>,
        /// The buffer id the entry named.
        buf: Option<u32>,
        /// The sequence number the entry named.
        seq: Option<u64>,
        /// The offending value.
        value: u64,
    },
}

/// Where in a completion message a data-plane error was: " in completion entry I (buffer B,
/// sequence S)", each part only when known.
struct DpWhere(Option<u16>, Option<u32>, Option<u64>);

impl fmt::Display for DpWhere {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(i) = self.0 {
            write!(f, " in completion entry {i}")?;
        }
        if let Some(b) = self.1 {
            write!(f, " (buffer {b}")?;
            if let Some(s) = self.2 {
                write!(f, ", sequence {s}")?;
            }
            f.write_str(")")?;
        }
        Ok(())
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = core::result::Result<T, E>;

pub(crate) const fn protocol(what: &'static str, value: u64) -> Error {
    Error::Protocol { what, value }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    /// The derived messages are the ones the hand-written `Display` printed (callers and
    /// the CLI's output show them), the data-plane one with each optional part.
    #[test]
    fn messages_are_unchanged() {
        let dp = |entry, buf, seq| Error::DataPlane {
            what: "unknown buffer",
            entry,
            buf,
            seq,
            value: 0x2a,
        };
        assert_eq!(
            dp(Some(3), Some(7), Some(9)).to_string(),
            "remote broke the data-plane protocol in completion entry 3 (buffer 7, sequence 9): unknown buffer (0x2a)"
        );
        assert_eq!(
            dp(None, Some(7), None).to_string(),
            "remote broke the data-plane protocol (buffer 7): unknown buffer (0x2a)"
        );
        assert_eq!(
            dp(None, None, None).to_string(),
            "remote broke the data-plane protocol: unknown buffer (0x2a)"
        );
        assert_eq!(
            Error::Protocol {
                what: "avail idx",
                value: 0x10
            }
            .to_string(),
            "peer broke the protocol: avail idx (0x10)"
        );
        assert_eq!(
            Error::MessageTooLarge { len: 600, max: 496 }.to_string(),
            "message of 600 bytes exceeds the 496-byte payload limit"
        );
        assert_eq!(Error::Timeout.to_string(), "timed out waiting for the peer");
        let e: &dyn core::error::Error = &Error::PeerGone;
        assert_eq!(e.to_string(), "the peer is gone");
    }
}
