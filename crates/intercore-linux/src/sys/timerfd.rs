//! timerfd: a periodic tick as a descriptor (the reactor's, for links without one).

use super::fd::{cvt, owned};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::time::Duration;

/// A `CLOCK_MONOTONIC` timerfd (non-blocking, close-on-exec): readable once a period has
/// passed since it was last read.
#[derive(Debug)]
pub struct TimerFd(OwnedFd);

fn timespec(d: Duration) -> libc::timespec {
    libc::timespec {
        tv_sec: libc::time_t::try_from(d.as_secs()).unwrap_or(libc::time_t::MAX),
        // Below 10^9: fits every c_long.
        tv_nsec: d.subsec_nanos() as libc::c_long,
    }
}

impl TimerFd {
    /// `timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC)`, disarmed.
    pub fn new() -> io::Result<Self> {
        // SAFETY: no pointer arguments; the result is checked before it is owned.
        let fd = cvt(unsafe {
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
            )
        })?;
        Ok(Self(owned(fd)))
    }

    /// Fires every `period` from now on (`None`, or a zero period: disarmed; a period is
    /// at least 1 ns, since a zero `it_value` would disarm it).
    pub fn set_period(&self, period: Option<Duration>) -> io::Result<()> {
        let p = match period {
            Some(p) if !p.is_zero() => p,
            _ => Duration::ZERO,
        };
        let spec = libc::itimerspec {
            it_interval: timespec(p),
            it_value: timespec(p),
        };
        // SAFETY: the descriptor is open; `spec` is a live itimerspec and the old value
        // pointer may be null.
        cvt(unsafe { libc::timerfd_settime(self.0.as_raw_fd(), 0, &spec, std::ptr::null_mut()) })
            .map(|_| ())
    }

    /// Reads the expirations since the last read without blocking (0: none).
    pub fn take(&self) -> io::Result<u64> {
        let mut b = [0u8; 8];
        match super::fd::read(self.0.as_fd(), &mut b) {
            Ok(8) => Ok(u64::from_ne_bytes(b)),
            Ok(_) => Err(io::Error::from_raw_os_error(libc::EIO)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(0),
            Err(e) => Err(e),
        }
    }
}

impl AsFd for TimerFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fires_every_period_until_disarmed() {
        let t = TimerFd::new().unwrap();
        assert_eq!(t.take().unwrap(), 0, "disarmed at first");
        let t0 = std::time::Instant::now();
        t.set_period(Some(Duration::from_millis(2))).unwrap();
        std::thread::sleep(Duration::from_millis(11));
        let n = t.take().unwrap();
        // At least 11 ms passed since arming: 5 periods at least; no more than the
        // periods in what really passed (a loaded machine oversleeps).
        let most = t0.elapsed().as_micros() / 2000;
        assert!(
            n >= 5 && u128::from(n) <= most,
            "{n} expirations, at most {most}"
        );
        t.set_period(None).unwrap();
        let _ = t.take().unwrap();
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(t.take().unwrap(), 0, "disarmed");
    }
}
