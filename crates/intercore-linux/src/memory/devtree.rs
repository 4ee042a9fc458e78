//! Device-tree discovery: `reserved-memory` nodes and their `reg` cells.

use super::*;

/// A node under `/reserved-memory` of the device tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReservedMemory {
    /// The node's name (`r5f-dma-memory@a0000000`).
    pub node: String,
    /// `(base, size)` of each `reg` entry.
    pub regions: Vec<(u64, u64)>,
    /// The node has `no-map`: the kernel keeps it out of its linear map (and `/dev/mem`
    /// maps it as uncached Device memory on arm64).
    pub no_map: bool,
    /// The first string of `compatible`, if any (`shared-dma-pool`, …).
    pub compatible: Option<String>,
}

/// One big-endian u32 cell property (`#address-cells`), or its absence.
fn cells_property(path: &Path) -> Result<Option<u32>, MemError> {
    match std::fs::read(path) {
        Ok(b) => {
            let arr: [u8; 4] = b.as_slice().try_into().map_err(|_| MemError::Malformed {
                path: path.to_path_buf(),
                what: format!("{} bytes, expected one 4-byte big-endian cell", b.len()),
            })?;
            Ok(Some(u32::from_be_bytes(arr)))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(open_error(path, e, "", UDEV_HINT)),
    }
}

/// Decodes a `reg` property: entries of `address_cells` then `size_cells` big-endian u32
/// cells. Each of the two counts must be 1 or 2 (values up to 64 bits).
pub fn parse_reg(
    bytes: &[u8],
    address_cells: u32,
    size_cells: u32,
) -> Result<Vec<(u64, u64)>, String> {
    for (name, c) in [
        ("#address-cells", address_cells),
        ("#size-cells", size_cells),
    ] {
        if !(1..=2).contains(&c) {
            return Err(format!("{name} = {c}: only 1 or 2 cells are supported"));
        }
    }
    let entry = 4 * (address_cells + size_cells) as usize;
    if bytes.is_empty() || bytes.len() % entry != 0 {
        return Err(format!(
            "reg has {} bytes, not a non-zero multiple of the {entry}-byte entry ({address_cells} address + {size_cells} size cells)",
            bytes.len()
        ));
    }
    let cells = |b: &[u8]| {
        b.chunks_exact(4).fold(0u64, |acc, c| {
            (acc << 32) | u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as u64
        })
    };
    let split = 4 * address_cells as usize;
    Ok(bytes
        .chunks_exact(entry)
        .map(|e| (cells(&e[..split]), cells(&e[split..])))
        .collect())
}

/// Reads the node `node` of `/reserved-memory`. `node` is the full name
/// (`dma-memory@a0000000`), or the name without its unit address if exactly one node has it.
/// `#address-cells` / `#size-cells` come from the `reserved-memory` node (2 / 2 when absent).
pub fn reserved_memory(roots: &SysRoots, node: &str) -> Result<ReservedMemory, MemError> {
    let rm = roots.device_tree.join("reserved-memory");
    let missing = "the device tree has no /reserved-memory node (or this system has no device tree at /proc/device-tree)";
    let entries = std::fs::read_dir(&rm).map_err(|e| open_error(&rm, e, missing, UDEV_HINT))?;
    let names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    let full = if names.iter().any(|n| n == node) {
        node.to_string()
    } else {
        let prefix = format!("{node}@");
        let matches: Vec<&String> = names.iter().filter(|n| n.starts_with(&prefix)).collect();
        match matches.as_slice() {
            [one] => (*one).clone(),
            [] => {
                let mut names = names.clone();
                names.sort();
                return Err(MemError::NotFound {
                    what: format!(
                        "reserved-memory node {node:?} (the device tree has: {})",
                        if names.is_empty() {
                            "none".into()
                        } else {
                            names.join(", ")
                        }
                    ),
                });
            }
            many => {
                return Err(MemError::Ambiguous {
                    what: format!(
                        "reserved-memory node {node:?} matches {}",
                        many.iter()
                            .map(|s| s.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                });
            }
        }
    };
    let ac = cells_property(&rm.join("#address-cells"))?.unwrap_or(2);
    let sc = cells_property(&rm.join("#size-cells"))?.unwrap_or(2);
    let dir = rm.join(&full);
    let reg_path = dir.join("reg");
    let reg = read_file(
        &reg_path,
        "the reserved-memory node has no reg property (a dynamically placed pool has no fixed address)",
    )?;
    let regions = parse_reg(&reg, ac, sc).map_err(|what| MemError::Malformed {
        path: reg_path.clone(),
        what,
    })?;
    if let Some(&(base, _)) = regions.iter().find(|&&(_, size)| size == 0) {
        return Err(MemError::Malformed {
            path: reg_path,
            what: format!("entry at {base:#x} has size 0"),
        });
    }
    let compatible = std::fs::read(dir.join("compatible")).ok().and_then(|b| {
        b.split(|&c| c == 0)
            .next()
            .filter(|s| !s.is_empty())
            .map(|s| String::from_utf8_lossy(s).into_owned())
    });
    Ok(ReservedMemory {
        node: full,
        regions,
        no_map: dir.join("no-map").exists(),
        compatible,
    })
}
