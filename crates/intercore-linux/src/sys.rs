//! Small system-call helpers.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::time::Duration;

/// Turns a `-1` return into the thread's `errno`.
pub(crate) fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// `CLOCK_MONOTONIC` as a duration since boot (a vDSO call, no system call).
pub fn monotonic_now() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
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
