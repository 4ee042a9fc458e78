//! The system calls behind the transport, as a trait so that the fake kernel can stand in.

use super::*;

/// The operations on the kernel's devices, so tests can put a model of the kernel behind
/// them (`rpmsg_char::fake`). Every descriptor this returns is handed back to
/// [`RpmsgOs::close`].
pub(crate) trait RpmsgOs: Send {
    /// `open(path, O_RDWR | O_CLOEXEC [| O_NONBLOCK])`.
    fn open(&self, path: &Path, nonblock: bool) -> io::Result<OwnedFd>;
    /// `RPMSG_CREATE_EPT_IOCTL` on a control device.
    fn create_ept(&self, ctrl: BorrowedFd<'_>, info: &RpmsgEndpointInfo) -> io::Result<()>;
    /// `RPMSG_DESTROY_EPT_IOCTL` on an endpoint device.
    fn destroy_ept(&self, ep: BorrowedFd<'_>) -> io::Result<()>;
    /// One `read(2)`.
    fn read(&self, ep: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize>;
    /// One `write(2)`.
    fn write(&self, ep: BorrowedFd<'_>, buf: &[u8]) -> io::Result<usize>;
    /// `ppoll` on one descriptor (`None`: no limit); returns `revents`. `EINTR` is
    /// returned, not retried.
    fn poll(
        &self,
        fd: BorrowedFd<'_>,
        events: libc::c_short,
        timeout: Option<Duration>,
    ) -> io::Result<libc::c_short>;
    /// `close(2)`.
    fn close(&self, fd: OwnedFd) {
        drop(fd);
    }
}

/// The real system calls.
pub(super) struct LinuxOs;

impl RpmsgOs for LinuxOs {
    fn open(&self, path: &Path, nonblock: bool) -> io::Result<OwnedFd> {
        let c = CString::new(path.as_os_str().as_bytes())
            .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        let flags = libc::O_RDWR | libc::O_CLOEXEC | if nonblock { libc::O_NONBLOCK } else { 0 };
        sys::fd::open(&c, flags)
    }

    fn create_ept(&self, ctrl: BorrowedFd<'_>, info: &RpmsgEndpointInfo) -> io::Result<()> {
        sys::ioctl::ioctl_in(ctrl, sys::ioctl::RPMSG_CREATE_EPT_IOCTL, info).map(|_| ())
    }

    fn destroy_ept(&self, ep: BorrowedFd<'_>) -> io::Result<()> {
        sys::ioctl::ioctl_val(ep, sys::ioctl::RPMSG_DESTROY_EPT_IOCTL, 0).map(|_| ())
    }

    fn read(&self, ep: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
        sys::fd::read(ep, buf)
    }

    fn write(&self, ep: BorrowedFd<'_>, buf: &[u8]) -> io::Result<usize> {
        sys::fd::write(ep, buf)
    }

    fn poll(
        &self,
        fd: BorrowedFd<'_>,
        events: libc::c_short,
        timeout: Option<Duration>,
    ) -> io::Result<libc::c_short> {
        ppoll_one(fd, events, timeout)
    }
}
