//! `[transport]`: the simulated SoC, intercore's userspace virtio-rpmsg over a carveout, or
//! the kernel's rpmsg char devices, or the firmware on an emulated core under QEMU.

use super::{Check, check_page, hex, plain_node_name, quoted};
use crate::model::{QemuCoreName, RegionSpec, TransportKind, TransportSpec};
use crate::raw::RawTransport;
use intercore_sim::SimConfig;

/// The table's kind (when it is one) and, when it could be built, the table.
pub(super) fn validate(
    t: &RawTransport,
    c: &mut Check,
) -> (Option<TransportKind>, Option<TransportSpec>) {
    let kind = c.one_of::<TransportKind>("transport.kind", &t.kind);
    // The simulated SoC's own defaults (firmware, layout, device address, EVENT_IDX).
    let defaults = SimConfig::default();
    let sim_keys = "transport.kind = \"sim\"";
    let user_keys = "transport.kind = \"userspace\"";
    let qemu_keys = "transport.kind = \"qemu\"";
    if kind != Some(TransportKind::Sim) {
        c.not_here("transport.firmware", &t.firmware, sim_keys);
        c.not_here("transport.da_base", &t.da_base, sim_keys);
        c.not_here("transport.event_idx", &t.event_idx, sim_keys);
        c.not_here("transport.layout", &t.layout, sim_keys);
    }
    if kind != Some(TransportKind::Userspace) {
        c.not_here("transport.region", &t.region, user_keys);
        c.not_here("transport.base", &t.base, user_keys);
        c.not_here("transport.size", &t.size, user_keys);
        c.not_here("transport.rsc_offset", &t.rsc_offset, user_keys);
        c.not_here("transport.doorbell", &t.doorbell, user_keys);
    }
    if kind != Some(TransportKind::Qemu) {
        c.not_here("transport.core", &t.core, qemu_keys);
        c.not_here("transport.fw_dir", &t.fw_dir, qemu_keys);
    }
    if kind != Some(TransportKind::Kernel) {
        c.not_here("transport.ctrl", &t.ctrl, "transport.kind = \"kernel\"");
    }
    let transport = match kind {
        Some(TransportKind::Sim) => {
            // A misspelt name is reported; the rest is checked as for the default.
            let firmware = c
                .one_of_or(
                    "transport.firmware",
                    t.firmware.as_deref(),
                    defaults.firmware,
                )
                .unwrap_or(defaults.firmware);
            let layout = c
                .one_of_or("transport.layout", t.layout.as_deref(), defaults.layout)
                .unwrap_or(defaults.layout);
            Some(TransportSpec::Sim {
                firmware,
                da_base: t.da_base.unwrap_or(defaults.da_base),
                event_idx: t.event_idx.unwrap_or(defaults.event_idx),
                layout,
            })
        }
        Some(TransportKind::Userspace) => {
            let region = match (&t.region, t.base, t.size) {
                (Some(node), None, size) => Some(RegionSpec::ReservedMemory {
                    node: node.clone(),
                    size,
                }),
                (None, Some(base), Some(size)) => Some(RegionSpec::Range { base, size }),
                (None, Some(_), None) => {
                    c.err(
                        "transport.size",
                        None,
                        "missing: transport.base needs a size",
                    );
                    None
                }
                (Some(_), Some(_), _) => {
                    c.err(
                        "transport.base",
                        None,
                        "give either transport.region (a reserved-memory node) or transport.base + transport.size, not both",
                    );
                    None
                }
                (None, None, _) => {
                    c.err(
                        "transport.region",
                        None,
                        "missing: the carveout holding the resource table, vrings and vdev0buffer (a reserved-memory node name, or transport.base + transport.size)",
                    );
                    None
                }
            };
            if let Some(d) = &t.doorbell {
                if d != "poll" {
                    c.err(
                        "transport.doorbell",
                        Some(quoted(d)),
                        "expected \"poll\": no userspace doorbell (mailbox or UIO interrupt) is built yet, so both sides spin",
                    );
                }
            }
            let rsc_offset = t.rsc_offset.unwrap_or(0);
            if let Some(RegionSpec::Range { base, size }) = &region {
                check_page("transport.base", *base, c);
                if rsc_offset >= *size {
                    c.err(
                        "transport.rsc_offset",
                        Some(hex(rsc_offset)),
                        format!("must lie inside the region (size {})", hex(*size)),
                    );
                }
            }
            region.map(|region| TransportSpec::Userspace { region, rsc_offset })
        }
        Some(TransportKind::Qemu) => {
            let core = match &t.core {
                Some(name) => c.one_of::<QemuCoreName>("transport.core", name),
                None => {
                    c.err(
                        "transport.core",
                        None,
                        "missing: which emulated core runs the firmware (\"r5f\" or \"m4f\")",
                    );
                    None
                }
            };
            if let Some(d) = &t.fw_dir {
                if d.is_empty() {
                    c.err(
                        "transport.fw_dir",
                        Some(quoted(d)),
                        "must not be empty (leave the key out for the default directories)",
                    );
                }
            }
            core.map(|core| TransportSpec::Qemu {
                core,
                fw_dir: t.fw_dir.as_ref().map(std::path::PathBuf::from),
            })
        }
        Some(TransportKind::Kernel) => {
            if let Some(ctrl) = &t.ctrl {
                if !(ctrl.starts_with("rpmsg_ctrl") && plain_node_name(ctrl)) {
                    c.err(
                        "transport.ctrl",
                        Some(quoted(ctrl)),
                        "expected a device name like \"rpmsg_ctrl0\" (under /dev)",
                    );
                }
            }
            Some(TransportSpec::Kernel {
                ctrl: t.ctrl.clone(),
            })
        }
        None => None,
    };
    (kind, transport)
}
