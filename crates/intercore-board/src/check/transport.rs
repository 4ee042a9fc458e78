//! The transport: the simulated SoC, the kernel's rpmsg control device, or the carveout and
//! `/dev/mem` of intercore's userspace transport.

use super::{Findings, Level, probe_node};
use crate::CheckEnv;
use crate::model::{Board, TransportSpec};
use crate::validate::hex;

impl Board {
    pub(super) fn check_transport(&self, env: &CheckEnv, f: &mut Findings) {
        match &self.transport {
            TransportSpec::Sim { firmware, .. } => f.push(
                Level::Ok,
                "transport",
                format!(
                    "the simulated SoC runs firmware {:?} as a child process of this host (intercore demo)",
                    firmware.name()
                ),
            ),
            TransportSpec::Kernel { ctrl } => {
                let missing = "no rpmsg control device: the kernel needs CONFIG_RPMSG_CHAR and CONFIG_RPMSG_CTRL, virtio_rpmsg_bus bound to the core's vdev, and a running core whose resource table has an rpmsg vdev";
                match ctrl {
                    Some(c) => {
                        let p = env.roots.dev.join(c);
                        match probe_node(&p, true, missing) {
                            Ok(()) => f.push(
                                Level::Ok,
                                "transport",
                                format!("{} opens (the kernel transport)", p.display()),
                            ),
                            Err(e) => f.push(Level::Error, "transport", e.to_string()),
                        }
                    }
                    None => {
                        let mut found: Vec<String> = std::fs::read_dir(&env.roots.dev)
                            .map(|rd| {
                                rd.filter_map(|e| e.ok())
                                    .filter_map(|e| e.file_name().into_string().ok())
                                    .filter(|n| n.starts_with("rpmsg_ctrl"))
                                    .collect()
                            })
                            .unwrap_or_default();
                        found.sort();
                        match found.as_slice() {
                            [] => f.push(
                                Level::Error,
                                "transport",
                                format!("{}/rpmsg_ctrl*: {missing}", env.roots.dev.display()),
                            ),
                            [one] => f.push(
                                Level::Ok,
                                "transport",
                                format!("would use /dev/{one} (the kernel transport)"),
                            ),
                            many => f.push(
                                Level::Error,
                                "transport",
                                format!(
                                    "several rpmsg control devices ({}): one per remote core's vdev; choose one with transport.ctrl",
                                    many.join(", ")
                                ),
                            ),
                        }
                    }
                }
            }
            TransportSpec::Userspace { region, .. } => {
                f.push(
                    Level::Info,
                    "transport",
                    "intercore's host bus takes the vdev's rings: the kernel's virtio_rpmsg_bus must not drive the same vdev (unbind it or do not load the module), and both sides poll",
                );
                match self.region_phys(region, env) {
                    Ok((base, len, no_map)) => f.push(
                        Level::Ok,
                        "transport",
                        format!(
                            "rings and buffers at {}+{}{}",
                            hex(base),
                            hex(len),
                            if no_map { " (no-map)" } else { "" }
                        ),
                    ),
                    Err(e) => f.push(Level::Error, "transport", e.to_string()),
                }
                if let Err(e) = probe_node(
                    &env.roots.dev.join("mem"),
                    true,
                    "the kernel has no /dev/mem (CONFIG_DEVMEM)",
                ) {
                    f.push(Level::Error, "transport", e.to_string());
                }
            }
        }
    }
}
