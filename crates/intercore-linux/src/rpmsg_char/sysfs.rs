//! Reading the kernel's rpmsg devices from sysfs: address attributes, endpoint and
//! control device names, node identity.

use super::*;

/// Parses an address attribute: `rpmsg_core.c` prints `0x%x`, `rpmsg_char.c` prints `%d`
/// (so `RPMSG_ADDR_ANY` is `-1`).
pub fn parse_addr(s: &str) -> Option<u32> {
    let s = s.trim();
    if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        u32::from_str_radix(hex, 16).ok()
    } else if s.starts_with('-') {
        s.parse::<i32>().ok().map(|v| v as u32)
    } else {
        s.parse::<u32>().ok()
    }
}

pub(super) fn read_attr(dir: &Path, attr: &str) -> Option<String> {
    let s = fs::read_to_string(dir.join(attr)).ok()?;
    Some(s.strip_suffix('\n').unwrap_or(&s).to_string())
}

/// `M` of `rpmsgM`.
pub(super) fn ept_index(name: &str) -> Option<u32> {
    let n = name.strip_prefix("rpmsg")?;
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    n.parse().ok()
}

/// The attributes of one endpoint device.
pub(super) struct EptAttrs {
    pub(super) name: String,
    pub(super) src: u32,
    pub(super) dst: u32,
}

pub(super) fn ept_attrs(dir: &Path) -> Option<EptAttrs> {
    Some(EptAttrs {
        name: read_attr(dir, "name")?,
        src: parse_addr(&read_attr(dir, "src")?)?,
        dst: parse_addr(&read_attr(dir, "dst")?)?,
    })
}

/// `rpmsg_ctrlN` nodes under `dev`.
pub(super) fn list_ctrls(dev: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dev)
        .map(|it| {
            it.filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().to_str().map(str::to_string))
                .filter(|n| {
                    n.strip_prefix("rpmsg_ctrl")
                        .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// The virtio device of a control device: `…/virtioN/virtioN.rpmsg_ctrl.0.0/rpmsg/
/// rpmsg_ctrlN` (a class device whose parent is a bus device lives in a `rpmsg` glue
/// directory of the parent; the parent is the bus's control channel, a child of the
/// virtio device).
pub(super) fn vdev_of_ctrl(ctrl_sys: &Path) -> Option<PathBuf> {
    let real = fs::canonicalize(ctrl_sys).ok()?;
    let glue = real.parent()?;
    if glue.file_name()? != "rpmsg" {
        return None;
    }
    Some(glue.parent()?.parent()?.to_path_buf())
}

/// Identity of a device node: a node the kernel removed and made again is another inode.
pub(super) fn node_id(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}
