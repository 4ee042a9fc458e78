//! The diagnosis: stuck states, each named by a stable code and explained in a firmware
//! engineer's words, with the numbers that show it.

use super::{Announcement, Fault, Flavor, Ring, RscReport};
use crate::wire::rpmsg::{RPMSG_ADDR_ANY, RPMSG_NS_ADDR, VIRTIO_RPMSG_F_NS};
use crate::wire::vring::{VRING_AVAIL_F_NO_INTERRUPT, VRING_USED_F_NO_NOTIFY, vring_need_event};
use serde::Serialize;

/// How bad a finding is; findings are listed most serious first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Severity {
    /// A state a working link cannot reach: corruption, a stale ring, another writer.
    Error,
    /// The link cannot make progress in this direction until someone acts.
    Stuck,
    /// Stuck if it persists (a live link may be passing through it), or a trap for one
    /// kind of peer.
    Warning,
    /// Worth knowing.
    Note,
}

impl Severity {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Stuck => "stuck",
            Severity::Warning => "warning",
            Severity::Note => "note",
        }
    }
}

/// One thing found wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Stable identifier (`tx-buffers-all-with-remote`), for scripts and tests.
    pub code: &'static str,
    /// How bad.
    pub severity: Severity,
    /// One line.
    pub summary: String,
    /// What it means and what to look at.
    pub explanation: String,
    /// The values read that show it.
    pub evidence: Vec<String>,
}

fn finding(
    code: &'static str,
    severity: Severity,
    summary: impl Into<String>,
    explanation: impl Into<String>,
    evidence: Vec<String>,
) -> Finding {
    Finding {
        code,
        severity,
        summary: summary.into(),
        explanation: explanation.into(),
        evidence,
    }
}

pub(super) fn unreadable(code: &'static str, what: &str, f: Fault) -> Finding {
    finding(
        code,
        Severity::Error,
        format!("{what} cannot be decoded"),
        "The bytes where it should be are not a valid structure: a wrong address or offset \
         was given, the memory is not this link's, or it was overwritten.",
        vec![f.0],
    )
}

pub(super) struct Input<'a> {
    pub(super) rsc: Option<&'a RscReport>,
    pub(super) rings: &'a [Ring],
    pub(super) event_idx: bool,
    pub(super) flavor: Flavor,
    pub(super) announcements: &'a [Announcement],
    pub(super) windows: &'a [(u64, u64)],
    pub(super) specs_given: bool,
}

pub(super) fn diagnose(i: &Input<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    status(i, &mut out);
    for r in i.rings {
        indices(r, &mut out);
        outside(i, r, &mut out);
    }
    suppression(i, &mut out);
    event_words(i, &mut out);
    names(i, &mut out);
    if !i.specs_given && i.rsc.is_some_and(|r| r.vdev.is_none()) {
        out.push(finding(
            "no-rpmsg-vdev",
            Severity::Error,
            "the resource table has no rpmsg vdev (virtio id 7)",
            "Without one, remoteproc creates no rpmsg device and no rings: the firmware's \
             table is not the one expected, or the offset points at another table.",
            vec![],
        ));
    }
    out
}

fn status(i: &Input<'_>, out: &mut Vec<Finding>) {
    let Some(v) = i.rsc.and_then(|r| r.vdev.as_ref()) else {
        return;
    };
    let s = v.status.value as u8;
    let ev = vec![format!(
        "vdev status = {s:#x} ({})",
        if v.status.names.is_empty() {
            "none".to_string()
        } else {
            v.status.names.join("|")
        }
    )];
    let d = v.dfeatures.value;
    let g = v.gfeatures.value;
    if g & !d != 0 {
        out.push(finding(
            "feature-not-offered",
            Severity::Error,
            "the host accepted features the firmware does not offer",
            "gfeatures must be a subset of dfeatures; a remote that checks (intercore's \
             does) refuses the link. The table was written by something that is not a \
             virtio host, or is corrupted.",
            vec![format!("dfeatures = {d:#x}, gfeatures = {g:#x}")],
        ));
    }
    if v.vrings
        .iter()
        .any(|r| r.da == crate::wire::rsc::FW_RSC_ADDR_ANY)
        && s != 0
    {
        out.push(finding(
            "vring-not-allocated",
            Severity::Error,
            "a vring is still at FW_RSC_ADDR_ANY although the host set a status",
            "The host allocates rings the table leaves at 0xffffffff and writes their \
             address back before it starts the core; this table was not written back (a \
             host that does not support host-allocated rings, or a stale copy of the table).",
            ev.clone(),
        ));
    }
    if s & 0x80 != 0 {
        out.push(finding(
            "host-gave-up",
            Severity::Stuck,
            "the host marked the device FAILED",
            "The host's driver gave up on this vdev (probe or negotiation failed): nothing \
             will move until the core is restarted. Look at the host's kernel log or the \
             link owner's log for why.",
            ev,
        ));
    } else if s == 0 {
        out.push(finding(
            "host-not-started",
            Severity::Note,
            "the host has not started the device (status 0)",
            "The firmware waits for the host to set DRIVER_OK; until then neither side \
             sends. A status that stays 0 means the host never found this vdev (wrong \
             table, or the rpmsg driver is not loaded).",
            ev,
        ));
    } else if s & 4 == 0 {
        out.push(finding(
            "host-not-ready",
            Severity::Warning,
            "the host has not set DRIVER_OK",
            "Negotiation started but the host has not finished setting the rings up; the \
             firmware waits for DRIVER_OK before it touches them.",
            ev,
        ));
    } else if s != 0x7 {
        out.push(finding(
            "status-not-0x7",
            Severity::Warning,
            format!("status {s:#x} is not 0x7: TI's MCU+ SDK firmware will never start"),
            "Linux writes exactly ACKNOWLEDGE|DRIVER|DRIVER_OK (0x7) for a remoteproc vdev, \
             and TI's firmware waits for that exact value (RPMessage_waitForLinuxReady, \
             ipc_rpmsg.c compares with 0x7). A host that also sets FEATURES_OK (0x8, a \
             virtio-1 host) or other bits works with OpenAMP, which checks DRIVER_OK only, \
             but leaves TI's firmware waiting forever.",
            ev,
        ));
    }
}

fn ring_name(r: &Ring) -> &'static str {
    if r.report.index == 0 {
        "vring 0 (remote -> host)"
    } else {
        "vring 1 (host -> remote)"
    }
}

fn indices(r: &Ring, out: &mut Vec<Finding>) {
    let v = &r.report;
    let num = v.num;
    let name = ring_name(r);
    let mut ev = vec![format!(
        "{name}: avail.idx = {}, used.idx = {}, num = {num}",
        v.avail_idx, v.used_idx
    )];
    if r.prefill != 0 {
        ev.push(format!(
            "RPMsg-Lite layout: the {} transmit buffers start in the used ring",
            r.prefill
        ));
    }
    let ahead = v.avail_idx.wrapping_sub(v.used_idx).wrapping_add(r.prefill) as i16;
    if ahead < 0 {
        out.push(finding(
            "used-ahead-of-avail",
            Severity::Error,
            format!(
                "{name}: the used index is {} ahead of the available index",
                ahead.unsigned_abs()
            ),
            "The remote has returned more buffers than the host ever offered, which no \
             working link can do. Either the memory is corrupted, the ring is stale (the \
             firmware or the host was restarted and the other side kept its old indices: \
             reset both rings on every start), or a second writer uses this memory (another \
             host process, a previous firmware image still running).",
            ev,
        ));
        return;
    }
    if ahead as u16 > num {
        out.push(finding(
            "avail-beyond-ring",
            Severity::Error,
            format!(
                "{name}: {} buffers offered but the ring has only {num}",
                ahead as u16
            ),
            "The host cannot have more buffers outstanding than ring entries: the indices \
             are corrupted, stale, or written by two hosts.",
            ev,
        ));
        return;
    }
    if !r.bad_entries.is_empty() {
        let mut e = ev.clone();
        e.extend(r.bad_entries.iter().take(8).cloned());
        out.push(finding(
            "bad-ring-entry",
            Severity::Error,
            format!("{name}: ring entries name descriptors that do not exist"),
            "An entry of the available or used ring holds a descriptor number beyond the \
             ring's size: corruption or another writer. A peer that validates (Linux: \"id \
             %u out of range\", \"is not a head\") stops using the link.",
            e,
        ));
    }
    for m in &v.last_messages {
        if let Some(n) = &m.note {
            if n.contains("does not fit") {
                out.push(finding(
                    "bad-message-header",
                    Severity::Warning,
                    format!("{name}: a message claims more bytes than its buffer holds"),
                    "The rpmsg header's length field is larger than the buffer: the sender \
                     wrote past its buffer or the header was overwritten. Receivers drop such \
                     messages (Linux: \"inbound msg too big\").",
                    vec![format!(
                        "ring index {} (descriptor {}): src {:#x} dst {:#x} len {}: {n}",
                        m.ring_idx, m.desc, m.src, m.dst, m.len
                    )],
                ));
                break;
            }
        }
    }
    let held = ahead as u16;
    let set_up = v.avail_idx != 0 || v.used_idx != 0;
    if v.index == 1 && held == num && num > 0 {
        out.push(finding(
            "tx-buffers-all-with-remote",
            Severity::Stuck,
            format!("every transmit buffer ({num} of {num}) is held by the remote"),
            "The host has no free buffer left: its next send blocks (Linux waits 15 s, logs \
             \"timeout waiting for a tx buffer\" and fails the send; intercore times out). The remote is not taking messages \
             off vring 1 and returning them to its used ring: it is not running, it is not \
             being notified (see the other findings), it waits on something else, or it \
             consumes messages without returning the buffers.",
            ev,
        ));
    } else if v.index == 0 && held == 0 && set_up {
        out.push(finding(
            "rx-buffers-all-with-host",
            Severity::Stuck,
            "the remote has no receive buffer to send into",
            "Every buffer of vring 0 carries a message the host has not given back: the \
             remote's next send blocks until the host reads. The host application is not \
             reading (or holds the buffers), or the host never learnt the messages arrived \
             (see the interrupt findings).",
            ev,
        ));
    }
}

fn outside(i: &Input<'_>, r: &Ring, out: &mut Vec<Finding>) {
    let name = ring_name(r);
    let mut bad = Vec::new();
    for &id in &r.held_ids {
        let Some(d) = r.descs.get(id as usize) else {
            continue;
        };
        let (a, l) = (d.addr.get(), u64::from(d.len.get()));
        let inside = i
            .windows
            .iter()
            .any(|&(b, wl)| a >= b && a.checked_add(l).is_some_and(|e| e <= b.saturating_add(wl)));
        if !inside {
            bad.push(format!(
                "{name}: descriptor {id} = {a:#x}..{:#x} ({l} bytes)",
                a.saturating_add(l)
            ));
        }
    }
    if bad.is_empty() {
        return;
    }
    let total = bad.len();
    bad.truncate(8);
    let w: Vec<String> = i
        .windows
        .iter()
        .map(|(b, l)| format!("{b:#x}..{:#x}", b.saturating_add(*l)))
        .collect();
    bad.push(format!("windows the remote can reach: {}", w.join(", ")));
    out.push(finding(
        "buffer-outside-windows",
        Severity::Stuck,
        format!("{name}: {total} buffer(s) given to the remote lie outside its shared memory"),
        "The remote cannot reach these buffers. OpenAMP refuses them without telling the \
         host (rpmsg_create_ept returns -2002), intercore's remote stops the link, others read or write whatever sits there. Typical causes: \
         the host placed buffers in its own DMA pool instead of the vdev's carveout (no \
         `vdev0buffer` region), a physical/device address mix-up (an IOMMU or a bus offset \
         the address map does not apply), or a carveout smaller than the buffers.",
        bad,
    ));
}

fn suppression(i: &Input<'_>, out: &mut Vec<Finding>) {
    for r in i.rings {
        let v = &r.report;
        let held = v.avail_idx.wrapping_sub(v.used_idx).wrapping_add(r.prefill);
        if held > v.num {
            continue;
        }
        if v.index == 0 {
            // Messages from the remote the host has not given back.
            let pending = v.num - held;
            if pending == 0 {
                continue;
            }
            let (suppressed, how) = if i.event_idx {
                (
                    !vring_need_event(v.used_event, v.used_idx, v.used_idx.wrapping_sub(pending)),
                    format!(
                        "vring 0 used_event = {} is not among the last {pending} used indices (up to {})",
                        v.used_event, v.used_idx
                    ),
                )
            } else {
                (
                    v.avail_flags.value as u16 & VRING_AVAIL_F_NO_INTERRUPT != 0,
                    "vring 0 avail.flags = NO_INTERRUPT".to_string(),
                )
            };
            if suppressed {
                let lite = if i.flavor == Flavor::RpmsgLite {
                    " This is RPMsg-Lite's master: it sets NO_INTERRUPT on both rings and never \
                     clears it, yet receives only on interrupts, so the remote must interrupt \
                     it regardless of the flag."
                } else {
                    ""
                };
                out.push(finding(
                    "host-interrupts-suppressed",
                    Severity::Warning,
                    format!(
                        "{pending} message buffer(s) from the remote are with the host, which has asked not to be interrupted"
                    ),
                    format!(
                        "The host is not waiting for an interrupt on vring 0 right now. The \
                         buffers hold messages it has not read, or has read and not yet given \
                         back. If it is busy, they wait for its next read. If it is blocked \
                         waiting for an interrupt while asking for none, it sleeps forever: a \
                         host must re-enable interrupts (clear NO_INTERRUPT, or set used_event \
                         to what it consumed) and then look at the ring once more before it \
                         sleeps.{lite}"
                    ),
                    vec![
                        format!(
                            "vring 0: used.idx = {}, avail.idx = {}, {pending} buffer(s) with the host",
                            v.used_idx, v.avail_idx
                        ),
                        how,
                    ],
                ));
            }
        } else {
            // Messages from the host the remote has not returned.
            let pending = held;
            if pending == 0 {
                continue;
            }
            let (suppressed, how) = if i.event_idx {
                (
                    !vring_need_event(
                        v.avail_event,
                        v.avail_idx,
                        v.avail_idx.wrapping_sub(pending),
                    ),
                    format!(
                        "vring 1 avail_event = {} is not among the last {pending} available indices (up to {})",
                        v.avail_event, v.avail_idx
                    ),
                )
            } else {
                (
                    v.used_flags.value as u16 & VRING_USED_F_NO_NOTIFY != 0,
                    "vring 1 used.flags = NO_NOTIFY".to_string(),
                )
            };
            if suppressed {
                out.push(finding(
                    "remote-kicks-suppressed",
                    Severity::Warning,
                    format!(
                        "{pending} message(s) from the host wait for the remote, which has asked not to be notified"
                    ),
                    "The remote told the host not to ring its doorbell for vring 1, so the host \
                     did not. If the remote is busy or polling, it will get to them. If it \
                     sleeps until a doorbell, it never wakes: a remote must re-enable \
                     notifications (clear NO_NOTIFY, or set avail_event to what it consumed) \
                     and look at the ring once more before it sleeps.",
                    vec![
                        format!(
                            "vring 1: avail.idx = {}, used.idx = {}, {pending} buffer(s) with the remote",
                            v.avail_idx, v.used_idx
                        ),
                        how,
                    ],
                ));
            }
        }
    }
}

fn event_words(i: &Input<'_>, out: &mut Vec<Finding>) {
    if !i.event_idx {
        return;
    }
    for r in i.rings {
        let v = &r.report;
        if v.index == 0 && v.used_event == 0 && (2..0x8000).contains(&v.used_idx) {
            out.push(finding(
                "event-idx-never-written",
                Severity::Stuck,
                "EVENT_IDX is negotiated but the host never wrote used_event on vring 0",
                format!(
                    "With VIRTIO_RING_F_EVENT_IDX the remote interrupts the host only when its \
                     used index passes used_event. The host has left it at 0 while {} messages \
                     arrived, so a remote that honours EVENT_IDX interrupted once and never \
                     again: the host sees no more messages. OpenAMP's remoteproc host does \
                     exactly this (it accepts EVENT_IDX into gfeatures but never sets \
                     vdev->features, so its rings never write the event words). Offer \
                     EVENT_IDX only to hosts that implement it.",
                    v.used_idx
                ),
                vec![format!(
                    "vring 0: used.idx = {}, used_event = 0",
                    v.used_idx
                )],
            ));
        }
        if v.index == 1 && v.avail_event == 0 && (2..0x8000).contains(&v.avail_idx) {
            out.push(finding(
                "event-idx-never-written",
                Severity::Stuck,
                "EVENT_IDX is negotiated but the remote never wrote avail_event on vring 1",
                format!(
                    "With VIRTIO_RING_F_EVENT_IDX the host notifies the remote only when its \
                     available index passes avail_event. The remote has left it at 0 while the \
                     host posted {} messages, so a host that honours EVENT_IDX (Linux does) \
                     kicked once and never again: a remote that sleeps until a doorbell sees no \
                     more messages. The firmware offers EVENT_IDX without implementing it: \
                     stop offering it.",
                    v.avail_idx
                ),
                vec![format!(
                    "vring 1: avail.idx = {}, avail_event = 0",
                    v.avail_idx
                )],
            ));
        }
    }
}

fn names(i: &Input<'_>, out: &mut Vec<Finding>) {
    for a in i.announcements {
        if !a.destroy && (a.addr == RPMSG_ADDR_ANY || a.addr == RPMSG_NS_ADDR || a.addr == 0) {
            out.push(finding(
                "announcement-without-endpoint",
                Severity::Stuck,
                format!(
                    "\"{}\" is announced at {:#x}, an address no endpoint can have",
                    a.name, a.addr
                ),
                "The name service told the other side about a service whose endpoint address \
                 is RPMSG_ADDR_ANY (the firmware announced before its endpoint was created, \
                 or announced the wrong variable) or a reserved address. Linux creates the \
                 channel, but every send to it fails (\"invalid addr\", EINVAL); intercore's \
                 host ignores the announcement.",
                vec![format!(
                    "vring {}: name service create \"{}\" addr {:#x}",
                    a.vring, a.name, a.addr
                )],
            ));
        }
    }
    // Host messages to endpoints the remote never announced, when the whole history of
    // vring 0 is still in view and the name service is on.
    let Some(ns) = i
        .rsc
        .and_then(|r| r.vdev.as_ref())
        .map(|v| v.gfeatures.value & (1 << VIRTIO_RPMSG_F_NS) != 0)
    else {
        return;
    };
    if !ns || i.flavor != Flavor::Virtio {
        return;
    }
    let ring = |n: usize| i.rings.iter().find(|r| r.report.index == n);
    let (Some(r0), Some(r1)) = (ring(0), ring(1)) else {
        return;
    };
    if r0.report.used_idx > r0.report.num {
        return; // announcements may have scrolled out of the ring
    }
    let announced: Vec<u32> = i
        .announcements
        .iter()
        .filter(|a| a.vring == 0 && !a.destroy)
        .map(|a| a.addr)
        .collect();
    let mut dsts: Vec<u32> = Vec::new();
    for m in &r1.report.last_messages {
        if m.dst != RPMSG_NS_ADDR && !announced.contains(&m.dst) && !dsts.contains(&m.dst) {
            dsts.push(m.dst);
        }
    }
    if dsts.is_empty() {
        return;
    }
    let list: Vec<String> = dsts.iter().map(|d| format!("{d:#x}")).collect();
    out.push(finding(
        "endpoint-never-announced",
        Severity::Warning,
        format!(
            "the host sends to endpoint(s) {} the remote never announced",
            list.join(", ")
        ),
        "Everything the remote ever sent is still in vring 0 and none of it announces these \
         addresses. If no endpoint exists there, the remote drops the messages (OpenAMP \
         silently, intercore counts them as no_endpoint; a Linux receiver logs \"msg received \
         with no recipient\"). Check the \
         address the host uses against the firmware's endpoint, or whether the firmware \
         announces at all.",
        vec![format!(
            "announced by the remote: {}",
            if announced.is_empty() {
                "nothing".to_string()
            } else {
                announced
                    .iter()
                    .map(|a| format!("{a:#x}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        )],
    ));
}
