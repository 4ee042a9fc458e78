//! The transport: the simulated SoC, the kernel's rpmsg control device, or the carveout and
//! `/dev/mem` of intercore's userspace transport.

use super::{Findings, Level, probe_node};
use crate::CheckEnv;
use crate::model::{Board, TransportSpec};
use crate::validate::hex;
use intercore::wire::rpmsg::VIRTIO_ID_RPMSG;
use intercore_linux::remoteproc::Remoteproc;

impl Board {
    pub(super) fn check_transport(
        &self,
        env: &CheckEnv,
        rproc: Option<&Remoteproc>,
        f: &mut Findings,
    ) {
        match &self.transport {
            TransportSpec::Sim { firmware, .. } => f.push(
                Level::Ok,
                "transport",
                format!(
                    "the simulated SoC runs firmware {:?} as a child process of this host (intercore demo)",
                    firmware.name()
                ),
            ),
            TransportSpec::Qemu { core, .. } => match self.qemu_image() {
                Ok(image) => f.push(
                    Level::Ok,
                    "transport",
                    format!(
                        "QEMU runs the firmware image {} on an emulated {} as a child process of this host (intercore up)",
                        image.display(),
                        core.core().name()
                    ),
                ),
                Err(e) => f.push(Level::Error, "transport", e),
            },
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
                        let found = crate::open::ctrl_devices(&env.roots.dev);
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
                    "intercore's host bus takes the vdev's rings: the kernel's virtio_rpmsg_bus must not drive the same vdev (unbind it or do not load the module)",
                );
                check_vdev_binding(env, rproc, f);
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

/// The kernel driver that owns a remote core's rpmsg vdev when the kernel transport is in use
/// (`drivers/rpmsg/virtio_rpmsg_bus.c`: `.driver.name = KBUILD_MODNAME`).
const VIRTIO_RPMSG_BUS: &str = "virtio_rpmsg_bus";

/// The userspace transport drives the vdev's rings itself: a vdev of this core already
/// bound to the kernel's `virtio_rpmsg_bus` is an error. Each virtio device is
/// `/sys/bus/virtio/devices/virtioM`, whose `device` reads the virtio device id as `0x%04x`
/// (`drivers/virtio/virtio.c`, `device_show`; rpmsg is 7), whose `driver` links to the bound
/// driver, and whose real path runs through its parent remote processor
/// (`.../remoteproc/remoteprocN/remoteprocN#vdev0buffer/virtioM`, `remoteproc_virtio.c`).
fn check_vdev_binding(env: &CheckEnv, rproc: Option<&Remoteproc>, f: &mut Findings) {
    let dir = env.roots.sys.join("bus/virtio/devices");
    let Ok(rd) = std::fs::read_dir(&dir) else {
        return;
    };
    let mut devs: Vec<_> = rd.filter_map(|e| e.ok()).map(|e| e.path()).collect();
    devs.sort();
    for dev in devs {
        let id = std::fs::read_to_string(dev.join("device")).ok();
        let id = id
            .as_deref()
            .map(str::trim)
            .and_then(|s| s.strip_prefix("0x"))
            .and_then(|s| u32::from_str_radix(s, 16).ok());
        if id != Some(VIRTIO_ID_RPMSG) {
            continue;
        }
        let owner = std::fs::canonicalize(&dev).ok().and_then(|p| {
            p.components()
                .filter_map(|c| c.as_os_str().to_str().map(str::to_string))
                .find(|c| {
                    c.strip_prefix("remoteproc")
                        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
                })
        });
        if let (Some(r), Some(o)) = (rproc, &owner) {
            if *o != r.id() {
                continue;
            }
        }
        let driver = std::fs::read_link(dev.join("driver"))
            .ok()
            .and_then(|l| l.file_name().and_then(|n| n.to_str()).map(str::to_string));
        if driver.as_deref() != Some(VIRTIO_RPMSG_BUS) {
            continue;
        }
        let name = dev
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("?")
            .to_string();
        f.push(
            Level::Error,
            "transport",
            format!(
                "{name} (the rpmsg vdev{}) is bound to the kernel's {VIRTIO_RPMSG_BUS}, which drives its rings: the userspace transport cannot share them. Unbind it (echo {name} > /sys/bus/virtio/drivers/{VIRTIO_RPMSG_BUS}/unbind, or keep the module from loading), or use transport.kind = \"kernel\"",
                owner.map_or_else(String::new, |o| format!(" of {o}"))
            ),
        );
    }
}
