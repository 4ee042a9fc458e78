//! `intercore vhost-user`: the remote role as a vhost-user virtio-rpmsg device.

use crate::error::CliError;
use crate::{EXIT_FAILED, EXIT_OK, FirmwareArg, KernelBulkArgs, KernelEchoArgs, VhostUserArgs};
use intercore_vhost::DeviceFirmware;
use serde_json::json;
use std::sync::Arc;

/// Where the device's log lines go (the library reports through the `log` facade): standard
/// error, as `vhost-user: …`, at level info (the per-request trace of `--verbose` is info).
struct StderrLog;

impl log::Log for StderrLog {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.level() <= log::Level::Info
    }
    fn log(&self, r: &log::Record<'_>) {
        if self.enabled(r.metadata()) {
            eprintln!("vhost-user: {}", r.args());
        }
    }
    fn flush(&self) {}
}

static STDERR_LOG: StderrLog = StderrLog;

/// Serves one front end: 0 when every firmware run ended with the guest going away, 1
/// otherwise; an unusable socket path (a regular file, a socket in use) is an error
/// naming it, and the file is left as it was.
pub fn main(a: &VhostUserArgs, json: bool) -> Result<u8, CliError> {
    // A logger set earlier in this process stays (set_logger succeeds once).
    if log::set_logger(&STDERR_LOG).is_ok() {
        log::set_max_level(log::LevelFilter::Info);
    }
    // The firmwares this command ships, the device's parameter.
    let firmware: Arc<DeviceFirmware> = match a.firmware {
        FirmwareArg::Echo => Arc::new(intercore_fw_echo::Echo),
        FirmwareArg::Sink => Arc::new(intercore_fw_echo::Sink),
        FirmwareArg::Offload => Arc::new(intercore_fw_offload::Offload),
    };
    let reports = intercore_vhost::serve_socket(&a.socket, firmware, a.verbose)
        .map_err(|e| CliError::at(&a.socket, e.to_string()))?;
    let mut ok = true;
    let mut rows = Vec::new();
    for r in &reports {
        let result = match &r.result {
            Ok(()) => "guest went away".to_string(),
            Err(e) => {
                ok = false;
                format!("error: {e}")
            }
        };
        if json {
            rows.push(json!({ "messages": r.messages, "result": result }));
        } else {
            outln!("firmware run: {} messages, {result}", r.messages)?;
        }
    }
    if json {
        crate::out::json(&json!({ "runs": rows, "ok": ok }))?;
    }
    Ok(if ok { EXIT_OK } else { EXIT_FAILED })
}

/// The kernel transport, a channel to a service, the service's address and `/dev/rpmsgM`.
type OpenedService = (
    intercore_linux::KernelRpmsg,
    intercore::rpmsg::Channel,
    u32,
    Option<std::path::PathBuf>,
);

/// Opens the kernel transport, waits up to `t` for `service` and opens an endpoint named
/// `name` to it: the transport, the channel, the service's address and `/dev/rpmsgM`.
fn open_service(
    paths: &intercore_linux::RpmsgPaths,
    service: &str,
    name: &str,
    t: Option<std::time::Duration>,
) -> Result<OpenedService, String> {
    use intercore::rpmsg::Transport;
    let mut k = intercore_linux::KernelRpmsg::open(paths).map_err(|e| e.to_string())?;
    let remote = k
        .find_service(service, t)
        .map_err(|e| format!("finding {service}: {e}"))?;
    let ch = k
        .open(name, remote)
        .map_err(|e| format!("opening an endpoint to {remote}: {e}"))?;
    let dev = k.endpoint_device(&ch);
    Ok((k, ch, remote, dev))
}

/// The rpmsg paths for `--ctrl NAME`: `rpmsg_ctrlN` under `/dev`, and, if that exists, a
/// character device — not any path or device the user or a script mistyped, opened with
/// whatever effect opening it has (a watchdog starts counting, a tape rewinds).
pub(crate) fn ctrl_paths(ctrl: &str) -> Result<intercore_linux::RpmsgPaths, CliError> {
    use std::os::unix::fs::FileTypeExt;
    let option = |m: String| CliError {
        option: Some("--ctrl".into()),
        ..CliError::failed(m)
    };
    let n = ctrl.strip_prefix("rpmsg_ctrl").unwrap_or("");
    if n.is_empty() || n.len() > 9 || !n.bytes().all(|b| b.is_ascii_digit()) {
        return Err(option(format!(
            "--ctrl {ctrl:?}: expected the name of an rpmsg control device under /dev, rpmsg_ctrlN (N a number), not a path or another device"
        )));
    }
    let paths = intercore_linux::RpmsgPaths {
        ctrl: ctrl.to_string(),
        ..Default::default()
    };
    let dev = paths.ctrl_dev();
    if let Ok(m) = std::fs::metadata(&dev) {
        if !m.file_type().is_char_device() {
            return Err(CliError {
                path: Some(dev.clone()),
                ..option(format!(
                    "{}: not a character device (an rpmsg control device is /dev/rpmsg_ctrlN); not opened",
                    dev.display()
                ))
            });
        }
    }
    Ok(paths)
}

/// `intercore kernel-echo`: through the kernel's rpmsg character devices
/// (`KernelRpmsg` on `/dev/rpmsg_ctrlN`), find an echo service, open an endpoint to it,
/// exchange and verify messages, close the endpoint. Run inside a guest whose kernel has
/// rpmsg (scripts/vm-test.sh); exits 0 only if every echo matched.
pub fn kernel_echo_main(a: &KernelEchoArgs, json: bool) -> Result<u8, CliError> {
    use intercore::rpmsg::{MessageIo, Transport};
    use std::time::Duration;
    let paths = ctrl_paths(&a.ctrl)?;
    let service = a.service.clone();
    let messages = a.messages as usize;
    let t = Some(Duration::from_secs(10));
    let run = || -> Result<String, String> {
        let (mut k, ch, remote, dev) = open_service(&paths, &service, "intercore-check", t)?;
        let max = k.max_payload();
        let mut buf = vec![0u8; max];
        for i in 0..messages {
            let len = (i * 37) % max + 1;
            let msg: Vec<u8> = (0..len).map(|b| (b * 7 + i) as u8).collect();
            k.send(&ch, &msg, t).map_err(|e| format!("send {i}: {e}"))?;
            let n = k
                .recv(&ch, &mut buf, t)
                .map_err(|e| format!("recv {i}: {e}"))?;
            if buf[..n] != msg[..] {
                return Err(format!(
                    "message {i}: sent {len} bytes, echo of {n} bytes differs"
                ));
            }
        }
        k.close(ch).map_err(|e| format!("closing: {e}"))?;
        Ok(format!(
            "{messages} messages echoed through {} via {} (remote {remote}), endpoint destroyed",
            dev.map_or("?".into(), |d| d.display().to_string()),
            paths.ctrl_dev().display()
        ))
    };
    verdict("kernel-echo", run(), json, ("messages", messages as u64))
}

/// Physical addresses of `pages` resident pages from virtual address `va`, from
/// `/proc/self/pagemap`: one little-endian u64 per virtual page at offset `(va / page) * 8`,
/// bit 63 "present", bits 0-54 the page frame number, which reads as 0 without
/// `CAP_SYS_ADMIN` (Documentation/admin-guide/mm/pagemap.rst).
fn physical_pages(va: usize, pages: usize, page: usize) -> Result<Vec<u64>, String> {
    use std::os::unix::fs::FileExt;
    const PRESENT: u64 = 1 << 63;
    const PFN_MASK: u64 = (1 << 55) - 1;
    let path = "/proc/self/pagemap";
    let f = std::fs::File::open(path).map_err(|e| format!("{path}: {e}"))?;
    let mut out = Vec::with_capacity(pages);
    for i in 0..pages {
        let v = va + i * page;
        let mut e = [0u8; 8];
        f.read_exact_at(&mut e, (v / page * 8) as u64)
            .map_err(|e| format!("{path}: reading the entry of {v:#x}: {e}"))?;
        let e = u64::from_le_bytes(e);
        if e & PRESENT == 0 {
            return Err(format!("{path}: page {v:#x} is not resident"));
        }
        let pfn = e & PFN_MASK;
        if pfn == 0 {
            return Err(format!(
                "{path}: page frame numbers read as 0: they need CAP_SYS_ADMIN (run as root)"
            ));
        }
        out.push(pfn * page as u64);
    }
    Ok(out)
}

/// `intercore kernel-bulk`: the data plane through the kernel's rpmsg character devices.
/// The job and completion messages travel over `KernelRpmsg` (`/dev/rpmsgM`); the buffers
/// are pages of a memfd of this process, each handed over by its physical address, which
/// a device that reaches the machine's RAM (a vhost-user back end maps all of a guest's)
/// uses directly. The pages stay put: they are shmem pages kept mapped and referenced for
/// the whole run, and page migration moves pages only for compaction, NUMA balancing or
/// memory hot-remove (the UML guest of scripts/vm-test.sh has none of these).
pub fn kernel_bulk_main(a: &KernelBulkArgs, json: bool) -> Result<u8, CliError> {
    use crate::workload::{Checker, Outcome};
    use intercore::dataplane::{Coherent, DpHost, Pool, PoolConfig};
    use intercore::rpmsg::Transport;
    use intercore::{DevAddr, SharedMemory};
    use std::sync::Arc;
    use std::time::Duration;
    let paths = ctrl_paths(&a.ctrl)?;
    let service = a.service.clone();
    let total = a.buffers;
    let pages = a.pages as usize;
    let t = Some(Duration::from_secs(10));
    let run = || -> Result<String, String> {
        let (mut k, ch, remote, dev) = open_service(&paths, &service, "intercore-bulk", t)?;
        let page = intercore_linux::sys::page_size();
        let mem = Arc::new(
            intercore_linux::MemfdRegion::create("intercore-bulk", pages * page)
                .map_err(|e| format!("memfd of {pages} pages: {e}"))?,
        );
        // A shmem page is allocated at its first write: make every one resident.
        for i in 0..pages {
            mem.store_u32(i * page, 1, std::sync::atomic::Ordering::Relaxed);
        }
        let phys = physical_pages(mem.as_ptr() as usize, pages, page)?;
        let cfg = PoolConfig {
            classes: vec![(page, pages)],
            align: page,
        };
        let pool = Pool::with_addresses(Coherent::new(Arc::clone(&mem)), 0, &cfg, |rel, _| {
            Ok(DevAddr(phys[rel / page]))
        })
        .map_err(|e| format!("pool: {e}"))?;
        let mut dp = DpHost::new(pool, ch, k.max_payload()).map_err(|e| e.to_string())?;
        dp.set_send_timeout(t);
        let mut checker = Checker::default();
        let (mut next, mut done, mut bytes) = (0u64, 0u64, 0u64);
        while done < total {
            while next < total {
                let Some(buf) = dp.alloc(page) else { break };
                let len = 1 + (next as usize * 97) % crate::workload::input_len(buf.len());
                checker
                    .submit(&mut dp, &mut k, buf, len, next)
                    .map_err(|e| format!("submitting buffer {next}: {e}"))?;
                bytes += len as u64;
                next += 1;
            }
            let c = dp
                .wait_complete(&mut k, t)
                .map_err(|e| format!("waiting for completion {done}: {e}"))?;
            match checker.check(&c) {
                Outcome::Good => done += 1,
                Outcome::Failed(s) => {
                    return Err(format!(
                        "buffer seq {}: status {s} from the device",
                        c.seq()
                    ));
                }
                Outcome::Corrupted => {
                    return Err(format!(
                        "buffer seq {}: the CRC32C the device wrote differs from ours",
                        c.seq()
                    ));
                }
            }
        }
        let st = dp.stats();
        k.close(ch).map_err(|e| format!("closing: {e}"))?;
        Ok(format!(
            "{total} buffers ({bytes} bytes) through {} via {} (remote {remote}), CRC32C of \
             every one checked; {} job messages of up to {} entries; pool of {pages} pages \
             from physical address {:#x}",
            dev.map_or("?".into(), |d| d.display().to_string()),
            paths.ctrl_dev().display(),
            st.messages,
            dp.batch_size(),
            phys.iter().min().copied().unwrap_or(0),
        ))
    };
    verdict("kernel-bulk", run(), json, ("buffers", total))
}

/// How `kernel-echo` and `kernel-bulk` end: a pass is `CMD: PASS detail` (JSON:
/// `{"pass":true,KEY:N,"detail":…}`) with exit 0; a failure is an error like any other,
/// `intercore CMD: message` on stderr (or the one JSON error line), exit 1.
pub fn verdict(
    cmd: &str,
    r: Result<String, String>,
    json: bool,
    (key, n): (&str, u64),
) -> Result<u8, CliError> {
    let detail = r.map_err(CliError::failed)?;
    if json {
        crate::out::json(&json!({ "pass": true, key: n, "detail": detail }))?;
    } else {
        outln!("{cmd}: PASS {detail}")?;
    }
    Ok(EXIT_OK)
}
