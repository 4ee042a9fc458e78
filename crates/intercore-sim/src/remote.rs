//! The remote core's side of the simulator: the process the SoC starts.

use crate::coherency::Side;
use crate::ctrl::{Ctrl, SimWindows};
use crate::{AnyCache, CacheMode, SimFirmware};
use intercore::dataplane::DpRemote;
use intercore::rpmsg::{RemoteBus, RemoteConfig, RscLocation};
use intercore::{DevAddr, LinearMap, SharedMemory};
use intercore_linux::{EventFd, EventfdDoorbell, MemfdRegion, PidFd};
use std::os::fd::{OwnedFd, RawFd};
use std::sync::Arc;

struct Args {
    fw: String,
    mem_fd: RawFd,
    bell_fd: RawFd,
    peer_bell_fd: RawFd,
    host_pid: i32,
    rsc: RscLocation,
    da_base: u64,
    wait: intercore::WaitMode,
    cache: CacheMode,
    ctrl_off: usize,
    buf_size: usize,
    /// Where host buffers may lie when the table has none: region offset and length.
    buf_window: Option<(usize, usize)>,
    /// The firmware's own memory: region offset and length.
    private: Option<(usize, usize)>,
}

fn parse(args: &[String]) -> Result<Args, String> {
    let get = |key: &str| -> Result<&str, String> {
        let i = args
            .iter()
            .position(|a| a == key)
            .ok_or(format!("missing {key}"))?;
        args.get(i + 1)
            .map(String::as_str)
            .ok_or(format!("{key} needs a value"))
    };
    let num = |key: &str| -> Result<u64, String> {
        get(key)?
            .parse()
            .map_err(|_| format!("{key} is not a number"))
    };
    Ok(Args {
        fw: get("--fw")?.to_string(),
        mem_fd: num("--mem-fd")? as RawFd,
        bell_fd: num("--bell-fd")? as RawFd,
        peer_bell_fd: num("--peer-bell-fd")? as RawFd,
        host_pid: num("--host-pid")? as i32,
        rsc: RscLocation {
            offset: num("--rsc-off")? as usize,
            len: num("--rsc-len")? as usize,
        },
        da_base: num("--da-base")?,
        wait: get("--wait")?.parse().map_err(|_| "bad --wait")?,
        cache: CacheMode::parse(get("--cache")?).ok_or("bad --cache")?,
        ctrl_off: num("--ctrl-off")? as usize,
        buf_size: num("--buf-size")? as usize,
        buf_window: span(args, "--buf-window")?,
        private: span(args, "--private")?,
    })
}

/// An optional `OFF:LEN` argument.
fn span(args: &[String], key: &str) -> Result<Option<(usize, usize)>, String> {
    let Some(i) = args.iter().position(|a| a == key) else {
        return Ok(None);
    };
    let v = args.get(i + 1).ok_or(format!("{key} needs a value"))?;
    let (o, l) = v
        .split_once(':')
        .ok_or(format!("{key} takes OFFSET:LENGTH"))?;
    match (o.parse(), l.parse()) {
        (Ok(o), Ok(l)) => Ok(Some((o, l))),
        _ => Err(format!("{key} takes OFFSET:LENGTH")),
    }
}

/// Runs the simulated remote core with the simulator's arguments and the firmware they
/// name (`--fw NAME`), one of `firmwares` (the program hosting the remote core supplies
/// the firmwares it ships); returns the process exit code (0 when the host went away
/// cleanly).
pub fn remote_main(args: &[String], firmwares: &[Arc<SimFirmware>]) -> i32 {
    match run(args, firmwares) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("intercore sim remote: {e}");
            1
        }
    }
}

fn adopt(fd: RawFd, what: &str) -> Result<OwnedFd, String> {
    // Only descriptors the simulator passed (and nobody else in this fresh process owns)
    // are adopted; fstat proves each is open before ownership is taken.
    intercore_linux::adopt_inherited_fd(fd).map_err(|e| format!("{what} fd {fd}: {e}"))
}

fn run(args: &[String], firmwares: &[Arc<SimFirmware>]) -> Result<(), String> {
    let a = parse(args)?;
    let fw = firmwares.iter().find(|f| f.name() == a.fw).ok_or_else(|| {
        let known: Vec<&str> = firmwares.iter().map(|f| f.name()).collect();
        format!(
            "unknown firmware {:?} (this program ships: {})",
            a.fw,
            known.join(", ")
        )
    })?;
    // The SoC is one machine: if the host process is gone already, stop.
    if std::os::unix::process::parent_id() as i32 != a.host_pid {
        return Err("host process is gone".into());
    }
    let mem =
        Arc::new(MemfdRegion::from_fd(adopt(a.mem_fd, "memory")?).map_err(|e| e.to_string())?);
    if a.ctrl_off
        .checked_add(crate::ctrl::CTRL_LEN)
        .is_none_or(|e| e > mem.len())
    {
        return Err("--ctrl-off outside the shared memory".into());
    }
    let bell = EventFd::from_fd(adopt(a.bell_fd, "doorbell")?);
    let peer_bell = EventFd::from_fd(adopt(a.peer_bell_fd, "peer doorbell")?);
    let host = PidFd::open(a.host_pid).map_err(|e| format!("pidfd_open(host): {e}"))?;
    let map = LinearMap {
        base: DevAddr(a.da_base),
        offset: 0,
        len: mem.len(),
    };
    let doorbell = EventfdDoorbell::new(peer_bell, bell, Some(host));
    let mut cfg = RemoteConfig::default().wait(a.wait).buf_size(a.buf_size);
    cfg.buffers = a.buf_window.map(|(off, len)| LinearMap {
        base: DevAddr(a.da_base + off as u64),
        offset: off,
        len,
    });
    cfg.private = a.private;
    let mut bus = RemoteBus::<_, _, 8>::new(Arc::clone(&mem), doorbell, &map, a.rsc, cfg)
        .map_err(|e| e.to_string())?;
    let ctrl = Ctrl::new(Arc::clone(&mem), a.ctrl_off);
    let cache = AnyCache::new(Arc::clone(&mem), a.cache, Side::Remote, Some(ctrl.clone()))
        .map_err(|e| e.to_string())?;
    let mut dp = DpRemote::new(cache, SimWindows::new(ctrl));
    fw.run(&mut bus, &mut dp)
        .map(|_| ())
        .map_err(|e| e.to_string())
}
