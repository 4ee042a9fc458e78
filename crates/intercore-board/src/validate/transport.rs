//! `[transport]`: the simulated SoC, intercore's userspace virtio-rpmsg over a carveout, or
//! the kernel's rpmsg char devices, or the firmware on an emulated core under QEMU.

use super::{Check, check_page, hex, plain_node_name, quoted};
use crate::model::{
    DA_BASE, DoorbellSpec, FirmwareName, MailboxKind, QemuCoreName, RegionSpec, SimLayout,
    TransportKind, TransportSpec,
};
use crate::raw::RawTransport;
use intercore_linux::notify::{OmapMailbox, UioLayout, ZynqmpIpi};

/// The table's kind (when it is one) and, when it could be built, the table: the keys
/// that belong to other kinds refused, then the kind's own validation.
pub(super) fn validate(
    t: &RawTransport,
    c: &mut Check,
) -> (Option<TransportKind>, Option<TransportSpec>) {
    let kind = c.one_of::<TransportKind>("transport.kind", &t.kind);
    // The simulated SoC's own defaults (firmware, layout, device address, EVENT_IDX).
    let defaults = SimDefaults::default();
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
        c.not_here("transport.vring_offset", &t.vring_offset, user_keys);
    }
    let uio_keys = "transport.doorbell = \"uio\"";
    if !(kind == Some(TransportKind::Userspace) && t.doorbell.as_deref() == Some("uio")) {
        c.not_here("transport.uio_device", &t.uio_device, uio_keys);
        c.not_here("transport.mailbox", &t.mailbox, uio_keys);
    }
    let mailbox = t.mailbox.as_deref();
    if mailbox != Some("omap") || t.doorbell.as_deref() != Some("uio") {
        let k = "transport.mailbox = \"omap\"";
        c.not_here("transport.mbox_map", &t.mbox_map, k);
        c.not_here("transport.mbox_tx", &t.mbox_tx, k);
        c.not_here("transport.mbox_rx", &t.mbox_rx, k);
        c.not_here("transport.mbox_user", &t.mbox_user, k);
    }
    if mailbox != Some("zynqmp-ipi") || t.doorbell.as_deref() != Some("uio") {
        let k = "transport.mailbox = \"zynqmp-ipi\"";
        c.not_here("transport.ipi_regs_map", &t.ipi_regs_map, k);
        c.not_here("transport.ipi_buf_map", &t.ipi_buf_map, k);
        c.not_here("transport.ipi_req_offset", &t.ipi_req_offset, k);
        c.not_here("transport.ipi_remote", &t.ipi_remote, k);
    }
    if kind != Some(TransportKind::Qemu) {
        c.not_here("transport.core", &t.core, qemu_keys);
        c.not_here("transport.fw_dir", &t.fw_dir, qemu_keys);
        c.not_here("transport.image", &t.image, qemu_keys);
    }
    if kind != Some(TransportKind::Kernel) {
        c.not_here("transport.ctrl", &t.ctrl, "transport.kind = \"kernel\"");
    }
    let transport = match kind {
        Some(TransportKind::Sim) => sim(t, &defaults, c),
        Some(TransportKind::Userspace) => userspace(t, c),
        Some(TransportKind::Qemu) => qemu(t, c),
        Some(TransportKind::Kernel) => kernel(t, c),
        None => None,
    };
    (kind, transport)
}

/// The simulated SoC: firmware, layout, device address, EVENT_IDX (a misspelt name is reported; the rest is checked as for the default).
fn sim(t: &RawTransport, defaults: &SimDefaults, c: &mut Check) -> Option<TransportSpec> {
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

/// intercore's userspace transport: the carveout (a reserved-memory node, or base + size), the resource table and vring offsets in it, the doorbell.
fn userspace(t: &RawTransport, c: &mut Check) -> Option<TransportSpec> {
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
    let doorbell = doorbell(t, c);
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
    if let (Some(v), Some(RegionSpec::Range { size, .. })) = (t.vring_offset, &region) {
        if v >= *size {
            c.err(
                "transport.vring_offset",
                Some(hex(v)),
                format!("must lie inside the region (size {})", hex(*size)),
            );
        }
    }
    match (region, doorbell) {
        (Some(region), Some(doorbell)) => Some(TransportSpec::Userspace {
            region,
            rsc_offset,
            vring_offset: t.vring_offset,
            doorbell,
        }),
        _ => None,
    }
}

/// The firmware on an emulated core: which core, and the image (any ELF) or intercore's own image directory.
fn qemu(t: &RawTransport, c: &mut Check) -> Option<TransportSpec> {
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
    if let Some(i) = &t.image {
        if i.trim().is_empty() {
            c.err(
                "transport.image",
                Some(quoted(i)),
                "must not be empty: the firmware ELF (relative to the board file; $VAR, ${VAR:-default} and ~/ expand)",
            );
        }
        if t.fw_dir.is_some() {
            c.err(
                "transport.fw_dir",
                None,
                "give either transport.image (any ELF) or transport.fw_dir (intercore's own images), not both",
            );
        }
    }
    core.map(|core| TransportSpec::Qemu {
        core,
        fw_dir: t.fw_dir.as_ref().map(std::path::PathBuf::from),
        image: t.image.clone(),
    })
}

/// The kernel's rpmsg char devices: the control device's name.
fn kernel(t: &RawTransport, c: &mut Check) -> Option<TransportSpec> {
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

/// `transport.doorbell` and, for `"uio"`, its device and register layout. The layout's
/// limits are the hardware's (`omap::FIFOS`/`USERS` of a K3 cluster, an IPI agent's one bit).
fn doorbell(t: &RawTransport, c: &mut Check) -> Option<DoorbellSpec> {
    match t.doorbell.as_deref() {
        None | Some("poll") => Some(DoorbellSpec::Poll),
        Some("uio") => uio_doorbell(t, c),
        Some(other) => {
            c.err(
                "transport.doorbell",
                Some(quoted(other)),
                "expected \"poll\" or \"uio\"",
            );
            None
        }
    }
}

/// `transport.doorbell = "uio"`: the device and the mailbox's register layout.
fn uio_doorbell(t: &RawTransport, c: &mut Check) -> Option<DoorbellSpec> {
    let device = c.require(
        "transport.uio_device",
        &t.uio_device,
        "the UIO device (\"uio3\") whose interrupt is the mailbox's or IPI's and whose maps hold its registers",
    );
    if let Some(d) = &device {
        if !(d.starts_with("uio") && plain_node_name(d)) {
            c.err(
                "transport.uio_device",
                Some(quoted(d)),
                "expected a device name like \"uio0\" (under /dev)",
            );
        }
    }
    let kind = match &t.mailbox {
        Some(m) => c.one_of::<MailboxKind>("transport.mailbox", m),
        None => {
            c.err(
                "transport.mailbox",
                None,
                "missing: the register layout, \"omap\" (TI K3) or \"zynqmp-ipi\" (AMD ZynqMP)",
            );
            None
        }
    };
    let layout = match kind? {
        MailboxKind::Omap => omap_layout(t, c)?,
        MailboxKind::ZynqmpIpi => zynqmp_layout(t, c)?,
    };
    Some(DoorbellSpec::Uio {
        device: device?,
        layout,
    })
}

/// A TI K3 mailbox's layout: the FIFOs the host sends and receives on, its user.
fn omap_layout(t: &RawTransport, c: &mut Check) -> Option<UioLayout> {
    use intercore_linux::notify::uio::omap;
    let tx = c.require(
        "transport.mbox_tx",
        &t.mbox_tx,
        "the mailbox (FIFO) the host sends on: the first cell of ti,mbox-tx",
    );
    let rx = c.require(
        "transport.mbox_rx",
        &t.mbox_rx,
        "the mailbox the host receives on: the first cell of ti,mbox-rx",
    );
    let user = c.require(
        "transport.mbox_user",
        &t.mbox_user,
        "the user (interrupt output) of the UIO device: the third cell of ti,mbox-rx",
    );
    for (k, v, max) in [
        ("transport.mbox_tx", tx, omap::FIFOS),
        ("transport.mbox_rx", rx, omap::FIFOS),
        ("transport.mbox_user", user, omap::USERS),
    ] {
        if let Some(v) = v.filter(|v| *v >= max) {
            c.err(k, Some(v.to_string()), format!("expected 0..{max} (a K3 cluster's ti,mbox-num-fifos = 16, ti,mbox-num-users = 4)"));
        }
    }
    Some(UioLayout::OmapMailbox(OmapMailbox {
        map: t.mbox_map.unwrap_or(0) as usize,
        tx: tx?,
        rx: rx?,
        user: user?,
    }))
}

/// An AMD ZynqMP IPI's layout: the remote agent's bit and the request buffer.
fn zynqmp_layout(t: &RawTransport, c: &mut Check) -> Option<UioLayout> {
    let remote = c.require(
        "transport.ipi_remote",
        &t.ipi_remote,
        "the remote agent's bit (RPU0: 0x100)",
    );
    let req = c.require(
        "transport.ipi_req_offset",
        &t.ipi_req_offset,
        "where our request buffer to the remote starts in the buffer map",
    );
    if let Some(r) = remote.filter(|r| r.count_ones() != 1) {
        c.err(
            "transport.ipi_remote",
            Some(hex(r as u64)),
            "expected one agent's bit (RPU0 0x100, RPU1 0x200)",
        );
    }
    Some(UioLayout::ZynqmpIpi(ZynqmpIpi {
        regs_map: t.ipi_regs_map.unwrap_or(0) as usize,
        buf_map: t.ipi_buf_map.unwrap_or(1) as usize,
        req_offset: req? as usize,
        remote: remote?,
    }))
}

/// A simulated board's defaults: the offload firmware in the standard layout at
/// [`DA_BASE`], without `EVENT_IDX` (what the simulator's firmwares are built for).
struct SimDefaults {
    firmware: FirmwareName,
    layout: SimLayout,
    da_base: u64,
    event_idx: bool,
}

impl Default for SimDefaults {
    fn default() -> Self {
        Self {
            firmware: FirmwareName::Offload,
            layout: SimLayout::Standard,
            da_base: DA_BASE,
            event_idx: false,
        }
    }
}
