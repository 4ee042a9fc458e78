//! UIO devices and their memory maps (`/sys/class/uio`).

use super::*;

/// One memory map of a UIO device (`/sys/class/uio/uioN/maps/mapM`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UioMap {
    /// `M`: the map is mmapped at offset `M * page_size` of `/dev/uioN`.
    pub index: usize,
    /// `name` (the device-tree node or driver's name for the region; may be empty).
    pub name: String,
    /// `addr`: the physical address.
    pub addr: u64,
    /// `size` in bytes.
    pub size: u64,
    /// `offset`: where the region starts inside its first page (0 when absent).
    pub offset: u64,
}

/// A UIO device (`/sys/class/uio/uioN`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UioDevice {
    /// `uioN`.
    pub node: String,
    /// The driver-given `name`.
    pub name: String,
    /// Its memory maps, by index.
    pub maps: Vec<UioMap>,
}

/// A sysfs number as UIO prints it (`0x00000000a0000000`; decimal accepted too).
pub(super) fn parse_sysfs_u64(path: &Path, text: &str) -> Result<u64, MemError> {
    let t = text.trim();
    let parsed = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => t.parse(),
    };
    parsed.map_err(|_| MemError::Malformed {
        path: path.to_path_buf(),
        what: format!("{t:?} is not a number"),
    })
}

fn read_sysfs_string(path: &Path, missing: &'static str) -> Result<String, MemError> {
    let b = read_file(path, missing)?;
    String::from_utf8(b)
        .map(|s| s.trim_end_matches('\n').to_string())
        .map_err(|_| MemError::Malformed {
            path: path.to_path_buf(),
            what: "not UTF-8 text".into(),
        })
}

/// Reads `/sys/class/uio/<node>` and its maps.
pub fn uio_device(roots: &SysRoots, node: &str) -> Result<UioDevice, MemError> {
    if node.is_empty() || node.contains('/') || node == "." || node == ".." {
        return Err(MemError::InvalidRequest(format!(
            "{node:?} is not a UIO device name"
        )));
    }
    let dir = roots.sys.join("class/uio").join(node);
    let name = read_sysfs_string(&dir.join("name"), UIO_MISSING)?;
    let maps_dir = dir.join("maps");
    let mut maps = Vec::new();
    // A device without memory maps has no `maps` directory.
    if let Ok(rd) = std::fs::read_dir(&maps_dir) {
        for e in rd.filter_map(|e| e.ok()) {
            let Some(fname) = e.file_name().into_string().ok() else {
                continue;
            };
            let Some(idx) = fname.strip_prefix("map") else {
                continue;
            };
            let index: usize = idx.parse().map_err(|_| MemError::Malformed {
                path: e.path(),
                what: format!("{fname:?} is not map<N>"),
            })?;
            let mdir = e.path();
            let num = |f: &str| -> Result<u64, MemError> {
                let p = mdir.join(f);
                let s = read_sysfs_string(&p, "a UIO map lacks this attribute")?;
                parse_sysfs_u64(&p, &s)
            };
            let offset = if mdir.join("offset").exists() {
                num("offset")?
            } else {
                0
            };
            let name = match std::fs::read(mdir.join("name")) {
                Ok(b) => String::from_utf8_lossy(&b)
                    .trim_end_matches('\n')
                    .to_string(),
                Err(_) => String::new(),
            };
            maps.push(UioMap {
                index,
                name,
                addr: num("addr")?,
                size: num("size")?,
                offset,
            });
        }
    }
    maps.sort_by_key(|m| m.index);
    Ok(UioDevice {
        node: node.to_string(),
        name,
        maps,
    })
}

/// Every UIO device under `/sys/class/uio`, sorted by node name.
pub fn uio_devices(roots: &SysRoots) -> Result<Vec<UioDevice>, MemError> {
    let dir = roots.sys.join("class/uio");
    let rd = std::fs::read_dir(&dir).map_err(|e| {
        open_error(
            &dir,
            e,
            "the kernel has no UIO devices (CONFIG_UIO)",
            UDEV_HINT,
        )
    })?;
    let mut nodes: Vec<String> = rd
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    nodes.sort();
    nodes.iter().map(|n| uio_device(roots, n)).collect()
}
