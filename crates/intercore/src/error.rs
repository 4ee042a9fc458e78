//! Errors of the core layer.

use core::fmt;
use intercore_wire::WireError;

/// What went wrong on a link between the two cores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// Bytes from the peer (or a file) do not parse.
    Wire(WireError),
    /// The peer broke the ring or bus protocol; the link is unusable from now on.
    Protocol {
        /// What the peer did wrong.
        what: &'static str,
        /// The offending value.
        value: u64,
    },
    /// A blocking call did not complete in time (the peer may have stopped answering).
    Timeout,
    /// A non-blocking call could not complete now.
    WouldBlock,
    /// The peer is gone (its process exited, or it reset the link).
    PeerGone,
    /// A payload is larger than a buffer can carry.
    MessageTooLarge {
        /// Bytes asked for.
        len: usize,
        /// Bytes a buffer holds.
        max: usize,
    },
    /// No endpoint has that address.
    NoSuchEndpoint(u32),
    /// The address is already bound.
    AddressInUse(u32),
    /// A fixed-size table is full.
    Exhausted(&'static str),
    /// The link is not set up yet (for example DRIVER_OK was not seen).
    NotReady(&'static str),
    /// A configuration or layout the code cannot use.
    Config(&'static str),
    /// The caller's buffer is smaller than the message; the message was consumed and truncated.
    Truncated {
        /// The message's full length.
        len: usize,
    },
    /// Messages for this endpoint were dropped because its queue was full (the host's
    /// `HostConfig::max_copied_per_endpoint`); returned by the receive that reaches their
    /// place in the endpoint's order. The next receive continues with the message after them.
    Lost {
        /// How many messages were dropped there.
        count: u64,
    },
    /// An operating-system call failed with this errno.
    Os(i32),
    /// The remote broke the data-plane protocol; the data plane is unusable until reset
    /// (`DpHost::reset`). Names the message entry when one was at fault.
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

impl From<WireError> for Error {
    fn from(e: WireError) -> Self {
        Error::Wire(e)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Wire(e) => write!(f, "malformed data: {e}"),
            Error::Protocol { what, value } => {
                write!(f, "peer broke the protocol: {what} ({value:#x})")
            }
            Error::Timeout => f.write_str("timed out waiting for the peer"),
            Error::WouldBlock => f.write_str("operation would block"),
            Error::PeerGone => f.write_str("the peer is gone"),
            Error::MessageTooLarge { len, max } => write!(
                f,
                "message of {len} bytes exceeds the {max}-byte payload limit"
            ),
            Error::NoSuchEndpoint(a) => write!(f, "no endpoint at address {a}"),
            Error::AddressInUse(a) => write!(f, "address {a} is already bound"),
            Error::Exhausted(what) => write!(f, "no room left: {what}"),
            Error::NotReady(what) => write!(f, "link not ready: {what}"),
            Error::Config(what) => write!(f, "unusable configuration: {what}"),
            Error::Truncated { len } => {
                write!(f, "message of {len} bytes truncated to the caller's buffer")
            }
            Error::Lost { count } => write!(
                f,
                "{count} message(s) for this endpoint were dropped: its receive queue was full"
            ),
            Error::Os(e) => write!(f, "system call failed with errno {e}"),
            Error::DataPlane {
                what,
                entry,
                buf,
                seq,
                value,
            } => {
                f.write_str("remote broke the data-plane protocol")?;
                if let Some(i) = entry {
                    write!(f, " in completion entry {i}")?;
                }
                if let Some(b) = buf {
                    write!(f, " (buffer {b}")?;
                    if let Some(s) = seq {
                        write!(f, ", sequence {s}")?;
                    }
                    f.write_str(")")?;
                }
                write!(f, ": {what} ({value:#x})")
            }
        }
    }
}

impl core::error::Error for Error {}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = core::result::Result<T, E>;

pub(crate) const fn protocol(what: &'static str, value: u64) -> Error {
    Error::Protocol { what, value }
}
