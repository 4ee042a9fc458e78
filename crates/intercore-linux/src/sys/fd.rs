//! File descriptors: creating them (memfd, eventfd, pidfd, pipes), reading and writing
//! them, their flags and seals, polling, and handing them to child processes.

use super::process::monotonic_now;
use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

/// Turns a `-1` return into the thread's `errno`.
pub(crate) fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// Takes ownership of a descriptor a system call has just returned.
///
/// Private to `sys`: every caller passes the fresh result of a call that creates a
/// descriptor, which nothing else can own yet.
pub(super) fn owned(fd: RawFd) -> OwnedFd {
    // SAFETY: per this function's (module-private) contract, `fd` is a descriptor the
    // kernel just created for us; nothing else owns it.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// Clears `FD_CLOEXEC` so the descriptor survives `exec` (used in a child between fork and
/// exec; `fcntl` is async-signal-safe).
pub fn clear_cloexec(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: F_SETFD with a plain integer argument on a descriptor we borrow.
    cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, 0) }).map(|_| ())
}

/// Polls `fds` for readability for at most `timeout` (`None`: forever), retrying on
/// `EINTR`. Returns the `revents` of each.
pub(crate) fn poll_readable<const N: usize>(
    fds: [BorrowedFd<'_>; N],
    timeout: Option<Duration>,
) -> io::Result<[libc::c_short; N]> {
    let mut pfds = fds.map(|fd| libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    });
    let deadline = timeout.map(|t| monotonic_now() + t);
    loop {
        let ts = deadline.map(|d| {
            let left = d.saturating_sub(monotonic_now());
            libc::timespec {
                tv_sec: left.as_secs() as libc::time_t,
                tv_nsec: left.subsec_nanos() as libc::c_long,
            }
        });
        let tsp = ts
            .as_ref()
            .map_or(std::ptr::null(), |t| t as *const libc::timespec);
        // SAFETY: `pfds` is a valid array of N pollfd structs, `tsp` is null or points to a
        // live timespec, and a null signal mask means "keep the current one".
        let r = unsafe { libc::ppoll(pfds.as_mut_ptr(), N as libc::nfds_t, tsp, std::ptr::null()) };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        return Ok(pfds.map(|p| p.revents));
    }
}

/// Polls any number of `fds` for readability for at most `timeout` (`None`: forever),
/// retrying on `EINTR` with what is left of the timeout: whether each is readable (or hung
/// up), all false once the timeout has passed.
pub fn poll_readable_any(
    fds: &[BorrowedFd<'_>],
    timeout: Option<Duration>,
) -> io::Result<Vec<bool>> {
    let mut pfds: Vec<libc::pollfd> = fds
        .iter()
        .map(|fd| libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    let n = libc::nfds_t::try_from(pfds.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "too many descriptors"))?;
    let deadline = timeout.map(|t| monotonic_now() + t);
    loop {
        let ts = deadline.map(|d| {
            let left = d.saturating_sub(monotonic_now());
            libc::timespec {
                tv_sec: left.as_secs().min(i32::MAX as u64) as libc::time_t,
                tv_nsec: left.subsec_nanos() as libc::c_long,
            }
        });
        let tsp = ts
            .as_ref()
            .map_or(std::ptr::null(), |t| t as *const libc::timespec);
        // SAFETY: `pfds` is a live array of `n` pollfd structs, `tsp` is null or points to
        // a live timespec, and a null signal mask keeps the current one.
        let r = unsafe { libc::ppoll(pfds.as_mut_ptr(), n, tsp, std::ptr::null()) };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        return Ok(pfds.iter().map(|p| p.revents != 0).collect());
    }
}

/// Spawns `cmd` so that the child inherits the descriptors `keep` (their close-on-exec
/// flag is cleared in the child only) and is killed when the spawning thread's process
/// dies (`PR_SET_PDEATHSIG`), like a core that loses power with its SoC.
pub fn spawn_inheriting(
    cmd: &mut std::process::Command,
    keep: &[BorrowedFd<'_>],
) -> io::Result<std::process::Child> {
    use std::os::unix::process::CommandExt;
    let raw: Vec<i32> = keep.iter().map(|fd| fd.as_raw_fd()).collect();
    // SAFETY: the closure runs in the child between fork and exec and calls only fcntl and
    // prctl, which are async-signal-safe; it allocates nothing (`raw` was built before).
    unsafe {
        cmd.pre_exec(move || {
            for &fd in &raw {
                cvt(libc::fcntl(fd, libc::F_SETFD, 0))?;
            }
            cvt(libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
            ))?;
            Ok(())
        });
    }
    cmd.spawn()
}

/// Takes ownership of a descriptor inherited from the parent process (passed by number on
/// the command line). Fails if it is not open. Call it once per number, early, before
/// anything else in the process could have opened or closed that number.
pub fn adopt_inherited_fd(fd: std::os::fd::RawFd) -> io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    if fd < 3 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "refusing to adopt stdin/stdout/stderr",
        ));
    }
    static ADOPTED: std::sync::Mutex<Vec<i32>> = std::sync::Mutex::new(Vec::new());
    let mut adopted = ADOPTED.lock().unwrap_or_else(|p| p.into_inner());
    if adopted.contains(&fd) {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "descriptor already adopted",
        ));
    }
    // SAFETY: F_GETFD only queries the flags of a descriptor number.
    cvt(unsafe { libc::fcntl(fd, libc::F_GETFD) })?;
    adopted.push(fd);
    // SAFETY: the descriptor is open (checked above) and, per this function's contract, was
    // inherited for us alone; nothing else in the process owns it.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
}

/// A pipe with close-on-exec ends: `(read end, write end)`.
pub fn pipe() -> io::Result<(std::os::fd::OwnedFd, std::os::fd::OwnedFd)> {
    use std::os::fd::FromRawFd;
    let mut fds = [0i32; 2];
    // SAFETY: `fds` is a valid array of two ints for the kernel to fill.
    cvt(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    // SAFETY: both descriptors were just created by pipe2 and are owned by nobody else.
    Ok(unsafe {
        (
            std::os::fd::OwnedFd::from_raw_fd(fds[0]),
            std::os::fd::OwnedFd::from_raw_fd(fds[1]),
        )
    })
}

/// Retries `f` while it fails with `EINTR`; a negative result is the thread's `errno`.
pub(crate) fn retry_eintr(mut f: impl FnMut() -> libc::c_int) -> io::Result<libc::c_int> {
    loop {
        match cvt(f()) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => return r,
        }
    }
}

/// `open(path, flags)` (a device node, with flags `std::fs::OpenOptions` cannot express
/// exactly), retrying on `EINTR`.
pub(crate) fn open(path: &CStr, flags: libc::c_int) -> io::Result<OwnedFd> {
    // SAFETY: `path` is NUL-terminated and outlives the call; open reads nothing else.
    retry_eintr(|| unsafe { libc::open(path.as_ptr(), flags) }).map(owned)
}

/// One `read(2)` into `buf`: the bytes read (0 at end of file).
pub fn read(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is a live, writable buffer of `buf.len()` bytes.
    let r = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as usize)
    }
}

/// One `write(2)` of `buf`: the bytes written.
pub fn write(fd: BorrowedFd<'_>, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: `buf` is a live buffer of `buf.len()` bytes, only read by the kernel.
    let r = unsafe { libc::write(fd.as_raw_fd(), buf.as_ptr().cast(), buf.len()) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as usize)
    }
}

/// `memfd_create(name, flags)`.
pub fn memfd_create(name: &CStr, flags: libc::c_uint) -> io::Result<OwnedFd> {
    // SAFETY: `name` is a valid NUL-terminated string; the flags are plain integers.
    cvt(unsafe { libc::memfd_create(name.as_ptr(), flags) }).map(owned)
}

/// `ftruncate(fd, len)`.
pub fn ftruncate(fd: BorrowedFd<'_>, len: u64) -> io::Result<()> {
    let len = libc::off_t::try_from(len)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "size too large"))?;
    // SAFETY: ftruncate with integer arguments on a descriptor we borrow.
    cvt(unsafe { libc::ftruncate(fd.as_raw_fd(), len) }).map(|_| ())
}

/// The size of the file behind `fd` (`fstat`'s `st_size`).
pub(crate) fn file_size(fd: BorrowedFd<'_>) -> io::Result<u64> {
    // SAFETY: an all-zero `stat` is a valid value of the plain C struct fstat fills.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fstat writes one `struct stat` to the pointer, which points at `st`.
    cvt(unsafe { libc::fstat(fd.as_raw_fd(), &mut st) })?;
    Ok(st.st_size as u64)
}

/// `fcntl(fd, F_ADD_SEALS, seals)`.
pub fn add_seals(fd: BorrowedFd<'_>, seals: libc::c_int) -> io::Result<()> {
    // SAFETY: F_ADD_SEALS with an integer argument on a descriptor we borrow.
    cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_ADD_SEALS, seals) }).map(|_| ())
}

/// `fcntl(fd, F_GET_SEALS)`.
pub fn seals(fd: BorrowedFd<'_>) -> io::Result<libc::c_int> {
    // SAFETY: F_GET_SEALS takes no argument and only reads the descriptor's seals.
    cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GET_SEALS) })
}

/// Sets `O_NONBLOCK` on the open file behind `fd` (every descriptor sharing that open
/// file sees it).
pub fn set_nonblock(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: F_GETFL with no argument on a descriptor we borrow.
    let fl = cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) })?;
    // SAFETY: F_SETFL with an integer argument on a descriptor we borrow.
    cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, fl | libc::O_NONBLOCK) }).map(|_| ())
}

/// `eventfd(0, flags)`.
pub(crate) fn eventfd(flags: libc::c_int) -> io::Result<OwnedFd> {
    // SAFETY: eventfd with plain integer arguments.
    cvt(unsafe { libc::eventfd(0, flags) }).map(owned)
}

/// `pidfd_open(pid, 0)` (Linux 5.3+).
pub(crate) fn pidfd_open(pid: libc::pid_t) -> io::Result<OwnedFd> {
    // SAFETY: the pidfd_open system call takes a pid and flags and returns a new fd.
    let r = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(owned(r as RawFd))
}

/// `pidfd_send_signal(pidfd, sig, NULL, 0)` (Linux 5.1+).
pub(crate) fn pidfd_send_signal(pidfd: BorrowedFd<'_>, sig: libc::c_int) -> io::Result<()> {
    // SAFETY: pidfd_send_signal(fd, sig, info = NULL, flags = 0) on a descriptor we borrow;
    // a null info makes the kernel fill one in, so no memory of ours is read.
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// `ppoll` on one descriptor for `events` (`None`: no time limit); returns `revents`.
/// `EINTR` is returned, not retried.
pub(crate) fn ppoll_one(
    fd: BorrowedFd<'_>,
    events: libc::c_short,
    timeout: Option<Duration>,
) -> io::Result<libc::c_short> {
    let mut p = libc::pollfd {
        fd: fd.as_raw_fd(),
        events,
        revents: 0,
    };
    let ts = timeout.map(|t| libc::timespec {
        tv_sec: t.as_secs().min(i32::MAX as u64) as libc::time_t,
        tv_nsec: t.subsec_nanos() as libc::c_long,
    });
    let tsp = ts
        .as_ref()
        .map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: `p` is one valid pollfd, `tsp` is null or points to a live timespec, and a
    // null signal mask keeps the current one.
    let r = unsafe { libc::ppoll(&mut p, 1, tsp, std::ptr::null()) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(p.revents)
    }
}

/// `mkfifo(path, mode)`.
#[cfg(test)]
pub(crate) fn mkfifo(path: &CStr, mode: libc::mode_t) -> io::Result<()> {
    // SAFETY: `path` is a valid NUL-terminated path; mkfifo only reads it.
    cvt(unsafe { libc::mkfifo(path.as_ptr(), mode) }).map(|_| ())
}
