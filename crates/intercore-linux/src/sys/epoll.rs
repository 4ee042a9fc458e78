//! epoll: one wait over many descriptors (the reactor's).

use super::fd::{cvt, owned};
use super::process::monotonic_now;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::time::Duration;

/// An epoll instance (close-on-exec), level-triggered: a registered descriptor is
/// reported by every wait while it stays readable or hung up.
#[derive(Debug)]
pub struct Epoll(OwnedFd);

impl Epoll {
    /// `epoll_create1(EPOLL_CLOEXEC)`.
    pub fn new() -> io::Result<Self> {
        // SAFETY: no pointer arguments; the result is checked before it is owned.
        let fd = cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
        Ok(Self(owned(fd)))
    }

    /// Watches `fd` for readability (and hang-up, error), reported with `token`.
    pub fn add(&self, fd: BorrowedFd<'_>, token: u64) -> io::Result<()> {
        let mut ev = libc::epoll_event {
            events: (libc::EPOLLIN | libc::EPOLLRDHUP) as u32,
            u64: token,
        };
        // SAFETY: both descriptors are open (borrowed), `ev` is a live epoll_event.
        cvt(unsafe {
            libc::epoll_ctl(
                self.0.as_raw_fd(),
                libc::EPOLL_CTL_ADD,
                fd.as_raw_fd(),
                &mut ev,
            )
        })
        .map(|_| ())
    }

    /// Stops watching `fd`.
    pub fn delete(&self, fd: BorrowedFd<'_>) -> io::Result<()> {
        let mut ev = libc::epoll_event { events: 0, u64: 0 };
        // SAFETY: both descriptors are open (borrowed); `ev` is ignored but must be
        // non-null for kernels before 2.6.9.
        cvt(unsafe {
            libc::epoll_ctl(
                self.0.as_raw_fd(),
                libc::EPOLL_CTL_DEL,
                fd.as_raw_fd(),
                &mut ev,
            )
        })
        .map(|_| ())
    }

    /// Waits at most `timeout` (`None`: forever; rounded up to whole milliseconds) for
    /// watched descriptors to become ready, retrying on `EINTR` with what is left: the
    /// tokens of those that are, at most `out.len()` of them (their count returned; 0
    /// once the timeout has passed).
    pub fn wait(&self, out: &mut [u64], timeout: Option<Duration>) -> io::Result<usize> {
        let mut evs = vec![libc::epoll_event { events: 0, u64: 0 }; out.len().clamp(1, 1024)];
        let max = libc::c_int::try_from(evs.len()).unwrap_or(1024);
        let deadline = timeout.map(|t| monotonic_now() + t);
        loop {
            let ms = match deadline {
                None => -1,
                Some(d) => {
                    let left = d.saturating_sub(monotonic_now());
                    let ms = left.as_nanos().div_ceil(1_000_000);
                    libc::c_int::try_from(ms).unwrap_or(libc::c_int::MAX)
                }
            };
            // SAFETY: `evs` is a live array of `max` epoll_event structs.
            let r = unsafe { libc::epoll_wait(self.0.as_raw_fd(), evs.as_mut_ptr(), max, ms) };
            match cvt(r) {
                Ok(n) => {
                    let n = (n as usize).min(out.len());
                    for (o, e) in out.iter_mut().zip(&evs[..n]) {
                        *o = e.u64;
                    }
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

impl AsFd for Epoll {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EventFd;

    /// A signalled eventfd is reported with its token; an unsignalled one is not, and a
    /// wait with nothing ready ends after its timeout with no tokens.
    #[test]
    fn reports_ready_descriptors_by_token() {
        let ep = Epoll::new().unwrap();
        let (a, b) = (EventFd::new().unwrap(), EventFd::new().unwrap());
        ep.add(a.as_fd(), 7).unwrap();
        ep.add(b.as_fd(), 9).unwrap();
        let mut out = [0u64; 4];
        assert_eq!(
            ep.wait(&mut out, Some(Duration::from_millis(5))).unwrap(),
            0
        );
        b.signal().unwrap();
        assert_eq!(ep.wait(&mut out, Some(Duration::from_secs(1))).unwrap(), 1);
        assert_eq!(out[0], 9);
        ep.delete(b.as_fd()).unwrap();
        assert_eq!(ep.wait(&mut out, Some(Duration::ZERO)).unwrap(), 0);
    }
}
