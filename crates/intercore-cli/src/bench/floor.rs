//! Baselines measured by the same harness in the same run: the machine's floor (one cache
//! line bounced between two processes by spinning; the same handoff blocking on eventfd),
//! a Unix domain socket and a pipe. The peer is this binary re-run as `__bench-peer`.

use super::stats::{CpuMeter, Row, measure};
use intercore::{Doorbell, SharedMemory};
use intercore_linux::{EventFd, EventfdDoorbell, MemfdRegion, PidFd};
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::process::{Child, Command};
use std::sync::atomic::Ordering::{Acquire, Release};
use std::time::{Duration, Instant};

/// The hidden subcommand the baseline peers run under.
pub const PEER: &str = "__bench-peer";

/// A baseline peer process, killed when dropped.
pub struct Peer {
    child: Child,
}

impl Peer {
    pub(super) fn spawn(
        args: &[String],
        keep: &[BorrowedFd<'_>],
        cpu: Option<usize>,
    ) -> Result<Self, String> {
        let exe = crate::program().map_err(|e| e.to_string())?;
        let mut cmd = Command::new(exe);
        cmd.arg(PEER).args(args);
        let child = intercore_linux::spawn_inheriting(&mut cmd, keep)
            .map_err(|e| format!("starting a baseline peer: {e}"))?;
        if let Some(c) = cpu {
            let _ = intercore_linux::pin_to_cpu(child.id() as i32, c);
        }
        Ok(Peer { child })
    }
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn fd_arg(fd: BorrowedFd<'_>) -> String {
    fd.as_raw_fd().to_string()
}

/// Two processes bounce one cache line by spinning: the round-trip floor of shared memory.
pub fn spin(warmup: usize, samples: usize, cpu: Option<usize>) -> Result<Row, String> {
    let mem = MemfdRegion::create("bench-spin", 4096).map_err(|e| e.to_string())?;
    let peer = Peer::spawn(&["spin".into(), fd_arg(mem.fd())], &[mem.fd()], cpu)?;
    let mut v = 0u32;
    let meter = CpuMeter::start(Some(peer.pid()));
    let rec = measure(warmup, samples, || {
        v += 1;
        // Release/Acquire: the round trip carries no data; the orderings are what a real
        // handoff would need.
        mem.store_u32(0, v, Release);
        let t0 = Instant::now();
        let mut spins = 0u32;
        while mem.load_u32(0, Acquire) != v + 1 {
            core::hint::spin_loop();
            spins = spins.wrapping_add(1);
            if spins % (1 << 20) == 0 && t0.elapsed() > Duration::from_secs(2) {
                return Err("spin peer stopped answering".into());
            }
        }
        v += 1;
        Ok(())
    })?;
    mem.store_u32(0, u32::MAX, Release);
    let mut row = Row::new("rtt", "spin-floor", 0);
    let (h, p) = meter.per_op(warmup as u64 + rec.count());
    row.lat = Some(rec.lat());
    row.host_cpu_ns = Some(h);
    row.peer_cpu_ns = p;
    row.note = "one cache line bounced between two processes by spinning".into();
    Ok(row)
}

/// The same handoff, each side sleeping on an eventfd (ppoll + read, then write): the
/// round-trip floor of a blocking wake-up.
pub fn eventfd(warmup: usize, samples: usize, cpu: Option<usize>) -> Result<Row, String> {
    let (a, b) = (
        EventFd::new().map_err(|e| e.to_string())?,
        EventFd::new().map_err(|e| e.to_string())?,
    );
    let peer = Peer::spawn(
        &["eventfd".into(), fd_arg(a.as_fd()), fd_arg(b.as_fd())],
        &[a.as_fd(), b.as_fd()],
        cpu,
    )?;
    let pidfd = PidFd::open(peer.pid() as i32).map_err(|e| e.to_string())?;
    let bell = EventfdDoorbell::new(a, b, Some(pidfd));
    let meter = CpuMeter::start(Some(peer.pid()));
    let rec = measure(warmup, samples, || {
        bell.ring(0).map_err(|e| e.to_string())?;
        match bell.wait(Some(Duration::from_secs(2))) {
            Ok(true) => Ok(()),
            Ok(false) => Err("eventfd peer stopped answering".into()),
            Err(e) => Err(e.to_string()),
        }
    })?;
    let mut row = Row::new("rtt", "eventfd-floor", 0);
    let (h, p) = meter.per_op(warmup as u64 + rec.count());
    row.lat = Some(rec.lat());
    row.host_cpu_ns = Some(h);
    row.peer_cpu_ns = p;
    row.note = "blocking wake-up each way (ppoll + eventfd read/write)".into();
    Ok(row)
}

/// A Unix domain stream socket: write `size` bytes, read the echo.
pub fn uds(size: usize, warmup: usize, samples: usize, cpu: Option<usize>) -> Result<Row, String> {
    let (mut ours, theirs) = UnixStream::pair().map_err(|e| e.to_string())?;
    let peer = Peer::spawn(
        &[
            "echo".into(),
            fd_arg(theirs.as_fd()),
            fd_arg(theirs.as_fd()),
            size.to_string(),
        ],
        &[theirs.as_fd()],
        cpu,
    )?;
    drop(theirs);
    ours.set_read_timeout(Some(Duration::from_secs(2)))
        .map_err(|e| e.to_string())?;
    let mut buf = vec![0x5Au8; size];
    let meter = CpuMeter::start(Some(peer.pid()));
    let rec = measure(warmup, samples, || {
        ours.write_all(&buf).map_err(|e| e.to_string())?;
        ours.read_exact(&mut buf).map_err(|e| e.to_string())
    })?;
    let mut row = Row::new("rtt", "uds", size);
    let (h, p) = meter.per_op(warmup as u64 + rec.count());
    row.lat = Some(rec.lat());
    row.host_cpu_ns = Some(h);
    row.peer_cpu_ns = p;
    Ok(row)
}

/// Two pipes: write `size` bytes, read the echo.
pub fn pipe(size: usize, warmup: usize, samples: usize, cpu: Option<usize>) -> Result<Row, String> {
    let (to_r, to_w) = intercore_linux::pipe().map_err(|e| e.to_string())?;
    let (from_r, from_w) = intercore_linux::pipe().map_err(|e| e.to_string())?;
    let peer = Peer::spawn(
        &[
            "echo".into(),
            fd_arg(to_r.as_fd()),
            fd_arg(from_w.as_fd()),
            size.to_string(),
        ],
        &[to_r.as_fd(), from_w.as_fd()],
        cpu,
    )?;
    drop((to_r, from_w));
    let (mut w, mut r) = (std::fs::File::from(to_w), std::fs::File::from(from_r));
    let mut buf = vec![0x5Au8; size];
    let meter = CpuMeter::start(Some(peer.pid()));
    let rec = measure(warmup, samples, || {
        w.write_all(&buf).map_err(|e| e.to_string())?;
        r.read_exact(&mut buf).map_err(|e| e.to_string())
    })?;
    let mut row = Row::new("rtt", "pipe", size);
    let (h, p) = meter.per_op(warmup as u64 + rec.count());
    row.lat = Some(rec.lat());
    row.host_cpu_ns = Some(h);
    row.peer_cpu_ns = p;
    Ok(row)
}

/// One-way messages of `size` bytes per second through a Unix domain socket for `dur`,
/// checked against the count the reading peer reports.
pub fn uds_throughput(size: usize, dur: Duration, cpu: Option<usize>) -> Result<Row, String> {
    let (mut ours, theirs) = UnixStream::pair().map_err(|e| e.to_string())?;
    let peer = Peer::spawn(
        &["sink".into(), fd_arg(theirs.as_fd()), size.to_string()],
        &[theirs.as_fd()],
        cpu,
    )?;
    drop(theirs);
    let buf = vec![0x5Au8; size];
    let meter = CpuMeter::start(Some(peer.pid()));
    let t0 = Instant::now();
    let mut sent = 0u64;
    while t0.elapsed() < dur {
        for _ in 0..64 {
            ours.write_all(&buf).map_err(|e| e.to_string())?;
        }
        sent += 64;
    }
    ours.shutdown(std::net::Shutdown::Write)
        .map_err(|e| e.to_string())?;
    let mut count = [0u8; 8];
    ours.read_exact(&mut count).map_err(|e| e.to_string())?;
    let secs = t0.elapsed().as_secs_f64();
    let mut row = Row::new("throughput", "uds", size);
    row.msgs_per_s = Some(sent as f64 / secs);
    let (h, p) = meter.per_op(sent);
    row.host_cpu_ns = Some(h);
    row.peer_cpu_ns = p;
    row.errors = sent.abs_diff(u64::from_le_bytes(count));
    Ok(row)
}

fn adopt(arg: Option<&String>) -> Result<OwnedFd, String> {
    let n: i32 = arg.ok_or("missing fd")?.parse().map_err(|_| "bad fd")?;
    intercore_linux::adopt_inherited_fd(n).map_err(|e| e.to_string())
}

/// The peer side of every baseline (runs in the child process).
pub fn peer_main(args: &[String]) -> Result<(), String> {
    match args.first().map(String::as_str) {
        Some("spin") => peer_spin(args),
        Some("eventfd") => peer_eventfd(args),
        Some("inline") => super::rtt_inline::peer(adopt(args.get(1))?),
        Some("echo") => peer_echo(args),
        Some("sink") => peer_sink(args),
        Some("busy") => peer_busy(args),
        #[cfg(feature = "iceoryx2")]
        Some("iceoryx2") => super::iox::peer(&args[1..]),
        _ => Err("unknown baseline peer".into()),
    }
}

fn size_arg(a: Option<&String>) -> Result<usize, String> {
    Ok(a.ok_or("missing size")?.parse().map_err(|_| "bad size")?)
}

fn peer_spin(args: &[String]) -> Result<(), String> {
    let mem = MemfdRegion::from_fd(adopt(args.get(1))?).map_err(|e| e.to_string())?;
    loop {
        let v = mem.load_u32(0, Acquire);
        if v == u32::MAX {
            return Ok(());
        }
        if v % 2 == 1 {
            mem.store_u32(0, v + 1, Release);
        }
        core::hint::spin_loop();
    }
}

fn peer_eventfd(args: &[String]) -> Result<(), String> {
    let a = EventFd::from_fd(adopt(args.get(1))?);
    let b = EventFd::from_fd(adopt(args.get(2))?);
    let host =
        PidFd::open(std::os::unix::process::parent_id() as i32).map_err(|e| e.to_string())?;
    let bell = EventfdDoorbell::new(b, a, Some(host));
    loop {
        match bell.wait(None) {
            Ok(_) => bell.ring(0).map_err(|e| e.to_string())?,
            Err(_) => return Ok(()),
        }
    }
}

fn peer_echo(args: &[String]) -> Result<(), String> {
    let mut r = std::fs::File::from(adopt(args.get(1))?);
    let mut w = if args.get(1) == args.get(2) {
        r.try_clone().map_err(|e| e.to_string())?
    } else {
        std::fs::File::from(adopt(args.get(2))?)
    };
    let mut buf = vec![0u8; size_arg(args.get(3))?];
    loop {
        if r.read_exact(&mut buf).is_err() {
            return Ok(());
        }
        w.write_all(&buf).map_err(|e| e.to_string())?;
    }
}

fn peer_sink(args: &[String]) -> Result<(), String> {
    let mut s = UnixStream::from(adopt(args.get(1))?);
    let size = size_arg(args.get(2))?;
    let mut buf = vec![0u8; size * 64];
    let mut bytes = 0u64;
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => bytes += n as u64,
            Err(e) => return Err(e.to_string()),
        }
    }
    s.write_all(&(bytes / size as u64).to_le_bytes())
        .map_err(|e| e.to_string())
}

/// Background load: burn the CPU until the parent (named by pid) is gone, so that even a
/// harness killed outright leaves no busy process behind.
fn peer_busy(args: &[String]) -> Result<(), String> {
    let parent: u32 = args
        .get(1)
        .ok_or("missing parent pid")?
        .parse()
        .map_err(|_| "bad parent pid")?;
    let mut x = 1u64;
    while std::os::unix::process::parent_id() == parent {
        for _ in 0..100_000 {
            x = std::hint::black_box(x.wrapping_mul(6_364_136_223_846_793_005) ^ 1);
        }
    }
    Ok(())
}
