//! The transport: the simulated SoC, the kernel's rpmsg control device, or the carveout and
//! `/dev/mem` of intercore's userspace transport.

use super::{Findings, Level, probe_node};
use crate::CheckEnv;
use crate::model::{Board, TransportSpec};
use crate::validate::hex;
use intercore::wire::rpmsg::VIRTIO_ID_RPMSG;
use intercore_linux::remoteproc::{Remoteproc, RprocState};
use std::path::{Path, PathBuf};

impl Board {
    pub(super) fn check_transport(
        &self,
        env: &CheckEnv,
        rproc: Option<&Remoteproc>,
        f: &mut Findings,
    ) {
        match &self.transport {
            #[cfg(not(feature = "sim"))]
            TransportSpec::Sim { .. } => f.push(
                Level::Error,
                "transport",
                crate::open::feature_off("sim").to_string(),
            ),
            #[cfg(not(feature = "qemu"))]
            TransportSpec::Qemu { .. } => f.push(
                Level::Error,
                "transport",
                crate::open::feature_off("qemu").to_string(),
            ),
            #[cfg(feature = "sim")]
            TransportSpec::Sim { firmware, .. } => f.push(
                Level::Ok,
                "transport",
                format!(
                    "the simulated SoC runs firmware {:?} as a child process of this host (intercore demo)",
                    firmware.as_str()
                ),
            ),
            // The same plan `Board::open` makes before it starts QEMU: the image, its
            // table, where the host places vrings and buffers, how it is woken.
            #[cfg(feature = "qemu")]
            TransportSpec::Qemu { core, .. } => match self.qemu_plan() {
                Ok((image, plan)) => {
                    f.push(
                        Level::Ok,
                        "transport",
                        format!(
                            "QEMU runs the firmware image {} on an emulated {} as a child process of this host (intercore up)",
                            image.display(),
                            core.core().name()
                        ),
                    );
                    for n in plan.notes {
                        f.push(Level::Info, "transport", n);
                    }
                }
                Err(e) => f.push(Level::Error, "transport", e.to_string()),
            },
            TransportSpec::Kernel { ctrl } => check_kernel_ctrl(ctrl.as_deref(), env, f),
            TransportSpec::Userspace { region, .. } => self.check_userspace(region, env, rproc, f),
        }
    }
}

impl Board {
    /// intercore's userspace transport: nothing else may drive the vdev, the carveout and
    /// `/dev/mem`.
    fn check_userspace(
        &self,
        region: &crate::model::RegionSpec,
        env: &CheckEnv,
        rproc: Option<&Remoteproc>,
        f: &mut Findings,
    ) {
        f.push(
            Level::Info,
            "transport",
            "intercore's host bus takes the vdev's rings: the kernel's virtio_rpmsg_bus must not drive the same vdev (unbind it or do not load the module)",
        );
        check_vdev_binding(env, rproc, f);
        if let Some(r) = rproc {
            check_mailbox_holder(env, r, f);
        }
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

/// The kernel transport: its rpmsg control device, named or the only one.
fn check_kernel_ctrl(ctrl: Option<&str>, env: &CheckEnv, f: &mut Findings) {
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

/// The platform driver of TI's OMAP/K3 mailbox clusters (`drivers/mailbox/omap-mailbox.c`:
/// `.driver.name = "omap-mailbox"`).
const OMAP_MAILBOX: &str = "omap-mailbox";

/// Finds the device-tree node whose `phandle` is `ph`, under `dir` (at most `depth` levels
/// down): its path.
fn node_with_phandle(dir: &Path, ph: u32, depth: u32) -> Option<PathBuf> {
    if std::fs::read(dir.join("phandle")).ok().as_deref() == Some(&ph.to_be_bytes()[..]) {
        return Some(dir.to_path_buf());
    }
    if depth == 0 {
        return None;
    }
    let mut subs: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect();
    subs.sort();
    subs.iter()
        .find_map(|d| node_with_phandle(d, ph, depth - 1))
}

/// The driver bound to the platform device of device-tree node `node` (`name@unit`):
/// `/sys/bus/platform/devices/<unit>.<name>/driver` — the name the kernel gives a
/// device-tree platform device whose unit address is its bus address
/// (`of_device_make_bus_id`, drivers/of/platform.c). `Err` with the device's path when
/// there is no such device or no driver.
fn platform_driver(env: &CheckEnv, node: &str) -> Result<String, PathBuf> {
    let dev = match node.split_once('@') {
        Some((name, unit)) => format!("{unit}.{name}"),
        None => node.to_string(),
    };
    let p = env.roots.sys.join("bus/platform/devices").join(&dev);
    std::fs::read_link(p.join("driver"))
        .ok()
        .and_then(|l| l.file_name().and_then(|n| n.to_str()).map(str::to_string))
        .ok_or(p)
}

/// The userspace transport needs the core's mailbox for its doorbell (and must not have
/// the kernel consume the firmware's kicks). Observable from userspace, per
/// drivers/remoteproc/ti_k3_r5_remoteproc.c and drivers/mailbox/omap-mailbox.c: the
/// remote processor's device-tree node names its mailbox in `mboxes` (`<&cluster
/// &sub-mailbox>`, one cell per `#mbox-cells`); the K3 remoteproc drivers request that
/// channel with `mbox_request_channel` — at probe since Beleswar Padhi's 2024 change
/// ("acquire mailbox handle during probe"), at start/attach before it — and keep it while
/// bound; the channel's cluster is a platform device bound to `omap-mailbox`. No sysfs file
/// says "channel in use", so a remote processor registered by its driver (it exists in
/// `/sys/class/remoteproc`) whose node has `mboxes` is taken to hold the mailbox; its
/// state (running/attached: held on every kernel) and the cluster's driver are named.
fn check_mailbox_holder(env: &CheckEnv, r: &Remoteproc, f: &mut Findings) {
    let of = r.sysfs_dir().join("device/of_node");
    let Ok(raw) = std::fs::read(of.join("mboxes")) else {
        return;
    };
    let cells: Vec<u32> = raw
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let Some(&cluster_ph) = cells.first() else {
        return;
    };
    let cluster = node_with_phandle(&env.roots.device_tree, cluster_ph, 6);
    let sub = cells
        .get(1)
        .and_then(|&ph| cluster.as_ref().and_then(|c| node_with_phandle(c, ph, 1)));
    let name_of = |p: &Option<PathBuf>| {
        p.as_ref()
            .and_then(|p| p.file_name())
            .and_then(|n| n.to_str())
            .map(str::to_string)
    };
    let cluster_name = name_of(&cluster);
    let mbox = match (&cluster_name, name_of(&sub)) {
        (Some(c), Some(s)) => format!("{c}/{s}"),
        (Some(c), None) => c.clone(),
        _ => format!("the mailbox of phandle {cluster_ph:#x}"),
    };
    let state = r.state().ok();
    let held_now = matches!(state, Some(RprocState::Running | RprocState::Attached));
    let driver = cluster_name.as_deref().map(|c| platform_driver(env, c));
    let cluster_note = match &driver {
        Some(Ok(d)) if d == OMAP_MAILBOX => format!(", its cluster bound to {OMAP_MAILBOX}"),
        Some(Ok(d)) => format!(", its cluster bound to {d}"),
        Some(Err(_)) | None => String::new(),
    };
    f.push(
        Level::Error,
        "transport",
        format!(
            "{} ({}) holds mailbox {mbox} through the kernel's mailbox framework (its device-tree node's mboxes{cluster_note}; state {}: {}): the kernel takes every kick the firmware sends and the userspace transport cannot have the mailbox for its doorbell. Fix: start the core from the bootloader and keep its remoteproc driver from binding (or run the firmware on a core remoteproc does not manage), then bind the mailbox cluster to uio_pdrv_genirq through a device-tree overlay; or give intercore a mailbox cluster no kernel driver uses; or use transport.kind = \"kernel\" (see docs/PORTING.md)",
            r.id(),
            r.name().unwrap_or_else(|_| "?".into()),
            state.as_ref().map_or("unknown", |s| s.as_str()),
            if held_now {
                "held on every kernel"
            } else {
                "held since probe on kernels with the 2024 change, from start on older ones"
            }
        ),
    );
}
