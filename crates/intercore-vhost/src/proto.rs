//! The vhost-user wire format (the subset a virtio-rpmsg back end needs), over a Unix
//! stream socket with file descriptors in `SCM_RIGHTS`.

use intercore_linux::sys;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;

/// Request codes (front end → back end).
#[allow(missing_docs)]
pub mod req {
    pub const GET_FEATURES: u32 = 1;
    pub const SET_FEATURES: u32 = 2;
    pub const SET_OWNER: u32 = 3;
    pub const RESET_OWNER: u32 = 4;
    pub const SET_MEM_TABLE: u32 = 5;
    pub const SET_LOG_BASE: u32 = 6;
    pub const SET_LOG_FD: u32 = 7;
    pub const SET_VRING_NUM: u32 = 8;
    pub const SET_VRING_ADDR: u32 = 9;
    pub const SET_VRING_BASE: u32 = 10;
    pub const GET_VRING_BASE: u32 = 11;
    pub const SET_VRING_KICK: u32 = 12;
    pub const SET_VRING_CALL: u32 = 13;
    pub const SET_VRING_ERR: u32 = 14;
    pub const GET_PROTOCOL_FEATURES: u32 = 15;
    pub const SET_PROTOCOL_FEATURES: u32 = 16;
    pub const GET_QUEUE_NUM: u32 = 17;
    pub const SET_VRING_ENABLE: u32 = 18;
    pub const SET_BACKEND_REQ_FD: u32 = 21;
    pub const RESET_DEVICE: u32 = 34;
}

/// Header flags: version 1, reply, need-reply.
pub const VERSION: u32 = 0x1;
/// The message is a reply.
pub const FLAG_REPLY: u32 = 0x4;
/// The front end wants an acknowledgement (with `REPLY_ACK` negotiated).
pub const FLAG_NEED_REPLY: u32 = 0x8;
/// Largest payload accepted (a memory table of 8 regions is 264 bytes).
pub const MAX_PAYLOAD: usize = 4096;
/// Most file descriptors accepted with one message.
pub const MAX_FDS: usize = 8;

/// One received message.
#[derive(Debug)]
pub struct Msg {
    /// Request code.
    pub request: u32,
    /// Header flags.
    pub flags: u32,
    /// Payload bytes.
    pub payload: Vec<u8>,
    /// File descriptors that came with it.
    pub fds: Vec<OwnedFd>,
}

impl Msg {
    /// Little-endian u32 at `at` of the payload.
    pub fn u32_at(&self, at: usize) -> io::Result<u32> {
        let b = self.payload.get(at..at + 4).ok_or_else(short)?;
        Ok(u32::from_le_bytes(b.try_into().expect("4 bytes")))
    }
    /// Little-endian u64 at `at` of the payload.
    pub fn u64_at(&self, at: usize) -> io::Result<u64> {
        let b = self.payload.get(at..at + 8).ok_or_else(short)?;
        Ok(u64::from_le_bytes(b.try_into().expect("8 bytes")))
    }
}

fn short() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, "vhost-user payload too short")
}

/// Receives one message; `Ok(None)` at end of stream.
pub fn recv(sock: &mut UnixStream) -> io::Result<Option<Msg>> {
    let mut hdr = [0u8; 12];
    let sys::Received {
        len: n,
        fds,
        fds_truncated,
    } = sys::recv_with_fds(sock.as_fd(), &mut hdr)?;
    if n == 0 {
        return Ok(None);
    }
    if fds_truncated || fds.len() > MAX_FDS {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "too many file descriptors with one message",
        ));
    }
    let got = n;
    if got < hdr.len() {
        sock.read_exact(&mut hdr[got..])?;
    }
    let word = |i: usize| u32::from_le_bytes(hdr[i * 4..i * 4 + 4].try_into().expect("4"));
    let (request, flags, size) = (word(0), word(1), word(2) as usize);
    if size > MAX_PAYLOAD {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "vhost-user payload too large",
        ));
    }
    let mut payload = vec![0u8; size];
    sock.read_exact(&mut payload)?;
    Ok(Some(Msg {
        request,
        flags,
        payload,
        fds,
    }))
}

/// Sends the reply to `request` with `payload`.
pub fn reply(sock: &mut UnixStream, request: u32, payload: &[u8]) -> io::Result<()> {
    let mut out = Vec::with_capacity(12 + payload.len());
    out.extend_from_slice(&request.to_le_bytes());
    out.extend_from_slice(&(VERSION | FLAG_REPLY).to_le_bytes());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(payload);
    sock.write_all(&out)
}

/// Sends one request with `fds` attached, as a front end does (used by tests playing the
/// front end).
pub fn send(
    sock: &UnixStream,
    request: u32,
    flags: u32,
    payload: &[u8],
    fds: &[std::os::fd::BorrowedFd<'_>],
) -> io::Result<()> {
    let mut out = Vec::with_capacity(12 + payload.len());
    out.extend_from_slice(&request.to_le_bytes());
    out.extend_from_slice(&(flags | VERSION).to_le_bytes());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(payload);
    if fds.len() > MAX_FDS {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "too many fds"));
    }
    let n = sys::send_with_fds(sock.as_fd(), &out, fds)?;
    if n as usize != out.len() {
        return Err(io::Error::new(io::ErrorKind::WriteZero, "short sendmsg"));
    }
    Ok(())
}
