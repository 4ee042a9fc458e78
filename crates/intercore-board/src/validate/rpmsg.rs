//! `[rpmsg]`: the buffers, how blocking calls wait and for how long, and the channel, within
//! the limits of the transport chosen.

use super::{Check, quoted};
use crate::model::{KERNEL_RPMSG_BUF_SIZE, KERNEL_RPMSG_MAX_BUFS, RpmsgSpec, TransportKind};
use crate::raw::RawRpmsg;
use intercore::WaitMode;
use std::time::Duration;

/// The table (every key has a default), checked against the transport `kind` (`None`: not
/// known, so no transport's limits apply).
pub(super) fn validate(
    r: Option<&RawRpmsg>,
    kind: Option<TransportKind>,
    uio_doorbell: bool,
    c: &mut Check,
) -> RpmsgSpec {
    let empty = RawRpmsg::default();
    let r = r.unwrap_or(&empty);
    let (sim, userspace, kernel) = (
        kind == Some(TransportKind::Sim),
        kind == Some(TransportKind::Userspace),
        kind == Some(TransportKind::Kernel),
    );
    let mut out = RpmsgSpec {
        buffers: intercore::wire::rpmsg::RPMSG_DEFAULT_NUM_BUFS as u16,
        buffer_size: intercore::wire::rpmsg::RPMSG_DEFAULT_BUF_SIZE,
        wait: WaitMode::default(),
        timeout: Duration::from_secs(1),
        service: "rpmsg-raw".into(),
    };
    if let Some(n) = r.buffers.and_then(|n| buffers(n, kernel, sim, c)) {
        out.buffers = n;
    }
    if let Some(s) = r.buffer_size.and_then(|s| buffer_size(s, kernel, c)) {
        out.buffer_size = s;
    }
    if let Some(w) = &r.wait {
        match w.parse::<WaitMode>() {
            Ok(m) => out.wait = m,
            Err(e) => c.err("rpmsg.wait", Some(quoted(w)), e.to_string()),
        }
    }
    if userspace && !uio_doorbell && out.wait != WaitMode::Poll {
        c.err(
            "rpmsg.wait",
            Some(quoted(&out.wait.to_string())),
            "transport.doorbell = \"poll\" rings no doorbell, so nothing would wake a sleeper: use wait = \"poll\"",
        );
    }
    if let Some(ms) = r.timeout_ms {
        if !(1..=3_600_000).contains(&ms) {
            c.err(
                "rpmsg.timeout_ms",
                Some(ms.to_string()),
                "expected 1..=3600000 milliseconds (intercore never waits forever: a silent peer must become a timeout)",
            );
        } else {
            out.timeout = Duration::from_millis(ms);
        }
    }
    if let Some(s) = &r.service {
        let max = intercore::wire::rpmsg::RPMSG_NAME_SIZE - 1;
        if s.is_empty() || s.len() > max || s.contains('\0') {
            c.err(
                "rpmsg.service",
                Some(quoted(s)),
                format!(
                    "expected 1..={max} bytes without NUL (rpmsg names are {} bytes with the terminator)",
                    max + 1
                ),
            );
        } else {
            out.service = s.clone();
        }
    }
    out
}

/// `rpmsg.buffers`, within the transport's limits; `None` (reported) when out of them.
fn buffers(n: u32, kernel: bool, sim: bool, c: &mut Check) -> Option<u16> {
    let max = intercore::virtq::MAX_DRIVER_QUEUE as u32;
    if n == 0 || n > max {
        c.err(
            "rpmsg.buffers",
            Some(n.to_string()),
            format!("expected 1..={max} buffers per direction"),
        );
    } else if kernel && n as usize > KERNEL_RPMSG_MAX_BUFS {
        c.err(
            "rpmsg.buffers",
            Some(n.to_string()),
            format!(
                "the kernel transport uses at most {KERNEL_RPMSG_MAX_BUFS} per direction (virtio_rpmsg_bus's MAX_RPMSG_NUM_BUFS / 2); the firmware's vring size decides"
            ),
        );
    } else if sim && !n.is_power_of_two() {
        c.err(
            "rpmsg.buffers",
            Some(n.to_string()),
            "the simulated SoC's vrings have this many entries, which must be a power of two",
        );
    } else {
        return Some(n as u16);
    }
    None
}

/// `rpmsg.buffer_size`, within the transport's limits; `None` (reported) when out of them.
fn buffer_size(s: u32, kernel: bool, c: &mut Check) -> Option<usize> {
    let hdr = intercore::wire::rpmsg::RPMSG_HDR_SIZE as u32;
    if kernel && s as usize != KERNEL_RPMSG_BUF_SIZE {
        c.err(
            "rpmsg.buffer_size",
            Some(s.to_string()),
            format!(
                "the kernel transport uses virtio_rpmsg_bus's fixed {KERNEL_RPMSG_BUF_SIZE}-byte buffers; remove the key or use transport.kind = \"userspace\""
            ),
        );
    } else if s < hdr + 16 || s > hdr + u16::MAX as u32 || s % 8 != 0 {
        c.err(
            "rpmsg.buffer_size",
            Some(s.to_string()),
            format!(
                "expected a multiple of 8 in {}..={} (the {hdr}-byte header plus the payload, whose length is a u16)",
                hdr + 16,
                hdr + u16::MAX as u32
            ),
        );
    } else {
        return Some(s as usize);
    }
    None
}
