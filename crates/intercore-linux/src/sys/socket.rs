//! Sockets: the `SOCK_SEQPACKET` socket pairs the fake rpmsg kernel serves endpoints over,
//! and messages with descriptors attached (`SCM_RIGHTS`, as vhost-user passes guest
//! memory and eventfds).

#[cfg(any(test, feature = "test-utils"))]
use super::fd::cvt;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// Bytes of control buffer for the descriptors of one message: room for
/// [`MAX_PASSED_FDS`] of them (`CMSG_SPACE(n * 4)` is 16 + 4n rounded up to 8 on 64-bit
/// Linux, 12 + 4n rounded to 4 on 32-bit).
const CONTROL_BYTES: usize = 128;

/// The most descriptors [`send_with_fds`] attaches to one message; [`recv_with_fds`] has
/// room for at least as many (beyond its room the kernel drops them and says
/// `MSG_CTRUNC`).
pub const MAX_PASSED_FDS: usize = 16;

/// What [`recv_with_fds`] received.
#[derive(Debug)]
pub struct Received {
    /// Bytes of data received into the buffer (0: the peer closed the stream).
    pub len: usize,
    /// The descriptors that came with them, owned by the receiver (close-on-exec).
    pub fds: Vec<OwnedFd>,
    /// Whether the kernel dropped descriptors for lack of room (`MSG_CTRUNC`): the message
    /// carried more than the control buffer holds.
    pub fds_truncated: bool,
}

/// A control buffer aligned for `cmsghdr` (8 bytes).
#[repr(C, align(8))]
struct Control([u8; CONTROL_BYTES]);

/// One `recvmsg(2)` on the stream or datagram socket `sock` into `buf`, with
/// `MSG_CMSG_CLOEXEC`, taking ownership of every descriptor passed with the data.
pub fn recv_with_fds(sock: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<Received> {
    let mut control = Control([0; CONTROL_BYTES]);
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: all-zero is a valid msghdr (null pointers, zero lengths); the pointers set
    // below point at `iov` and `control`, which outlive the call.
    let mut mh: libc::msghdr = unsafe { std::mem::zeroed() };
    mh.msg_iov = &mut iov;
    mh.msg_iovlen = 1;
    mh.msg_control = control.0.as_mut_ptr().cast();
    mh.msg_controllen = CONTROL_BYTES as _;
    // SAFETY: `mh` points at live buffers of the lengths it states (`buf` through `iov`,
    // `control`); the kernel writes only inside them.
    let n = unsafe { libc::recvmsg(sock.as_raw_fd(), &mut mh, libc::MSG_CMSG_CLOEXEC) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut fds = Vec::new();
    // SAFETY: walking the control buffer the kernel just filled, with the libc macros,
    // which bound every step by `msg_controllen`; each SCM_RIGHTS payload is an array of
    // ints that the kernel installed as new descriptors of this process, owned by nobody
    // else, so each becomes an `OwnedFd` once.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&mh);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(c).cast::<libc::c_int>();
                let bytes = ((*c).cmsg_len as usize).saturating_sub(libc::CMSG_LEN(0) as usize);
                for i in 0..bytes / std::mem::size_of::<libc::c_int>() {
                    fds.push(OwnedFd::from_raw_fd(data.add(i).read_unaligned()));
                }
            }
            c = libc::CMSG_NXTHDR(&mh, c);
        }
    }
    Ok(Received {
        len: n as usize,
        fds,
        fds_truncated: mh.msg_flags & libc::MSG_CTRUNC != 0,
    })
}

/// One `sendmsg(2)` of `buf` on `sock` with `MSG_NOSIGNAL` (a closed peer is `EPIPE`, not
/// `SIGPIPE`), attaching `fds` (`SCM_RIGHTS`, at most [`MAX_PASSED_FDS`]): the bytes sent.
pub fn send_with_fds(
    sock: BorrowedFd<'_>,
    buf: &[u8],
    fds: &[BorrowedFd<'_>],
) -> io::Result<usize> {
    if fds.len() > MAX_PASSED_FDS {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{} descriptors with one message (at most {MAX_PASSED_FDS})",
                fds.len()
            ),
        ));
    }
    let mut control = Control([0; CONTROL_BYTES]);
    let mut iov = libc::iovec {
        iov_base: buf.as_ptr().cast_mut().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: all-zero is a valid msghdr; the pointers set below outlive the call.
    let mut mh: libc::msghdr = unsafe { std::mem::zeroed() };
    mh.msg_iov = &mut iov;
    mh.msg_iovlen = 1;
    if !fds.is_empty() {
        let data_len = (fds.len() * std::mem::size_of::<libc::c_int>()) as u32;
        mh.msg_control = control.0.as_mut_ptr().cast();
        // SAFETY: CMSG_SPACE is a pure size computation.
        mh.msg_controllen = unsafe { libc::CMSG_SPACE(data_len) } as _;
        // SAFETY: the control buffer holds CMSG_SPACE of MAX_PASSED_FDS ints (checked
        // above: at most 16 + 64 bytes of the 128), it is aligned for `cmsghdr`, and the
        // header pointer comes from CMSG_FIRSTHDR over it, so every write stays inside.
        unsafe {
            let c = libc::CMSG_FIRSTHDR(&mh);
            (*c).cmsg_level = libc::SOL_SOCKET;
            (*c).cmsg_type = libc::SCM_RIGHTS;
            (*c).cmsg_len = libc::CMSG_LEN(data_len) as _;
            let data = libc::CMSG_DATA(c).cast::<libc::c_int>();
            for (i, fd) in fds.iter().enumerate() {
                data.add(i).write_unaligned(fd.as_raw_fd());
            }
        }
    }
    // SAFETY: `mh` points at live buffers of the lengths it states; the kernel only reads
    // `buf` (the iovec's `*mut` is the C type, not a write).
    let n = unsafe { libc::sendmsg(sock.as_raw_fd(), &mh, libc::MSG_NOSIGNAL) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// A connected pair of close-on-exec `AF_UNIX` `SOCK_SEQPACKET` sockets.
#[cfg(any(test, feature = "test-utils"))]
pub(crate) fn seqpacket_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` is a writable array of two ints, as socketpair requires.
    cvt(unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    })?;
    // SAFETY: both descriptors were just created and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// `shutdown(fd, SHUT_RDWR)`: wakes a thread blocked in `recv` on the socket.
#[cfg(any(test, feature = "test-utils"))]
pub(crate) fn shutdown(fd: BorrowedFd<'_>) {
    // SAFETY: shutdown with integer arguments on a socket we borrow.
    unsafe { libc::shutdown(fd.as_raw_fd(), libc::SHUT_RDWR) };
}

/// Sets `SO_SNDBUF` (best effort: the kernel clamps and doubles it).
#[cfg(any(test, feature = "test-utils"))]
pub(crate) fn set_sndbuf(fd: BorrowedFd<'_>, bytes: libc::c_int) {
    // SAFETY: SO_SNDBUF reads one int at the pointer; `bytes` lives across the call.
    unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_SNDBUF,
            (&bytes as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
}

/// One `recv(2)` into `buf`.
#[cfg(any(test, feature = "test-utils"))]
pub(crate) fn recv(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is a live, writable buffer of `buf.len()` bytes.
    let r = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as usize)
    }
}

/// One `send(2)` of `buf` with `MSG_NOSIGNAL` (a closed peer is `EPIPE`, not `SIGPIPE`).
#[cfg(any(test, feature = "test-utils"))]
pub(crate) fn send(fd: BorrowedFd<'_>, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: `buf` is a live buffer of `buf.len()` bytes, only read by the kernel.
    let r = unsafe {
        libc::send(
            fd.as_raw_fd(),
            buf.as_ptr().cast(),
            buf.len(),
            libc::MSG_NOSIGNAL,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    /// Descriptors sent with a message arrive as new descriptors of the same files; more
    /// than the limit are refused before anything is sent.
    #[test]
    fn descriptors_ride_with_a_message() {
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        let (r, w) = crate::sys::pipe().unwrap();
        let sent = send_with_fds(a.as_fd(), b"hello", &[w.as_fd()]).unwrap();
        assert_eq!(sent, 5);
        let mut buf = [0u8; 16];
        let got = recv_with_fds(b.as_fd(), &mut buf).unwrap();
        assert_eq!(
            (&buf[..got.len], got.fds.len(), got.fds_truncated),
            (&b"hello"[..], 1, false)
        );
        // The received descriptor writes into the same pipe.
        crate::sys::write(got.fds[0].as_fd(), b"x").unwrap();
        let mut one = [0u8; 1];
        assert_eq!(crate::sys::read(r.as_fd(), &mut one).unwrap(), 1);
        assert_eq!(&one, b"x");

        let many = vec![w.as_fd(); MAX_PASSED_FDS + 1];
        let e = send_with_fds(a.as_fd(), b"x", &many).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        drop(a);
        assert_eq!(
            recv_with_fds(b.as_fd(), &mut buf).unwrap().len,
            0,
            "end of stream"
        );
    }
}
