//! The out-of-tree **u-dma-buf** driver (github.com/ikwzm/udmabuf, common on ZynqMP and
//! Zynq boards): `/dev/udmabufN`, a physically contiguous DMA buffer the driver allocated
//! (from CMA or a `memory-region`), and its attributes under
//! `/sys/class/u-dma-buf/udmabufN/`.
//!
//! Not the kernel's own `/dev/udmabuf` ([`UdmabufRegion`], memfd pages). What this module
//! relies on is taken from the driver's Readme.md and u-dma-buf.c (v4/v5, read through the
//! project's source search; no code taken): `phys_addr` (hex) and `size` (decimal) are
//! read-only; `sync_offset`, `sync_size`, `sync_direction` (0 `DMA_BIDIRECTIONAL`, 1
//! `DMA_TO_DEVICE`, 2 `DMA_FROM_DEVICE`) set the range; writing `1` to `sync_for_device`
//! calls `dma_sync_single_for_device` on it (clean), writing `1` to `sync_for_cpu` calls
//! `dma_sync_single_for_cpu` (invalidate, for `FROM_DEVICE`/`BIDIRECTIONAL`); the driver
//! refuses a range past `size` (`-EINVAL`). `dma_coherent` (read-only) is `1` when the
//! device-tree node says `dma-coherent` — the kernel then does no maintenance at all.
//! Opening `/dev/udmabufN` **without** `O_SYNC` gives a cacheable mapping (unless
//! `sync_mode` has its "always" bit, 4, set); with `O_SYNC` it is uncached or
//! write-combined by `sync_mode`. Older releases (before v2) called the class `udmabuf`:
//! both class directories are searched.

use super::*;
use std::os::unix::fs::FileExt;

const U_DMA_BUF_MISSING: &str = "no u-dma-buf device: load the out-of-tree u-dma-buf module (github.com/ikwzm/udmabuf) with udmabuf0=<size>, or give it a device-tree node (compatible = \"ikwzm,u-dma-buf\")";

/// `sync_direction` values (the kernel's `enum dma_data_direction`, as the driver maps them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncDirection {
    /// 0: `DMA_BIDIRECTIONAL`.
    Bidirectional = 0,
    /// 1: `DMA_TO_DEVICE`.
    ToDevice = 1,
    /// 2: `DMA_FROM_DEVICE`.
    FromDevice = 2,
}

/// What sysfs says about one u-dma-buf device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UDmaBufInfo {
    /// The device name (`udmabuf0`).
    pub name: String,
    /// Its sysfs directory.
    pub sysfs: PathBuf,
    /// `phys_addr`: the bus address of the first byte (what the driver's `dma_alloc_coherent`
    /// returned: the physical address when no IOMMU is in front of the device).
    pub phys_addr: u64,
    /// `size`: bytes.
    pub size: u64,
    /// `sync_mode`, if the driver has the attribute.
    pub sync_mode: Option<u32>,
    /// `dma_coherent`: the hardware keeps the buffer coherent (no maintenance needed).
    pub dma_coherent: bool,
}

fn parse_num(path: &Path, bytes: &[u8]) -> Result<u64, MemError> {
    let s = std::str::from_utf8(bytes)
        .map_err(|_| MemError::Malformed {
            path: path.to_path_buf(),
            what: "not text".into(),
        })?
        .trim();
    let r = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16),
        None => s.parse::<u64>(),
    };
    r.map_err(|_| MemError::Malformed {
        path: path.to_path_buf(),
        what: format!("{s:?} is not a number"),
    })
}

/// The sysfs directory of u-dma-buf device `name` (`class/u-dma-buf/<name>`, or the
/// pre-v2 `class/udmabuf/<name>`).
fn sysfs_dir(roots: &SysRoots, name: &str) -> Result<PathBuf, MemError> {
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return Err(MemError::InvalidRequest(format!(
            "{name:?} is not a u-dma-buf device name"
        )));
    }
    let new = roots.sys.join("class/u-dma-buf").join(name);
    if new.is_dir() {
        return Ok(new);
    }
    let old = roots.sys.join("class/udmabuf").join(name);
    if old.is_dir() {
        return Ok(old);
    }
    Err(MemError::Missing {
        path: new,
        hint: U_DMA_BUF_MISSING,
    })
}

/// Reads the attributes of u-dma-buf device `name` (`udmabuf0`).
pub fn u_dma_buf_info(roots: &SysRoots, name: &str) -> Result<UDmaBufInfo, MemError> {
    let dir = sysfs_dir(roots, name)?;
    let num = |attr: &str| -> Result<u64, MemError> {
        let p = dir.join(attr);
        let raw = read_file(&p, U_DMA_BUF_MISSING)?;
        // `phys_addr` is printed "%pad" / "0x%llx" by every release; accept it without the
        // prefix too (hex either way).
        if attr == "phys_addr" {
            let s = String::from_utf8_lossy(&raw);
            let t = s.trim();
            let h = t
                .strip_prefix("0x")
                .or_else(|| t.strip_prefix("0X"))
                .unwrap_or(t);
            return u64::from_str_radix(h, 16).map_err(|_| MemError::Malformed {
                path: p.clone(),
                what: format!("{t:?} is not a hexadecimal address"),
            });
        }
        parse_num(&p, &raw)
    };
    let phys_addr = num("phys_addr")?;
    let size = num("size")?;
    if size == 0 {
        return Err(MemError::Malformed {
            path: dir.join("size"),
            what: "size is 0".into(),
        });
    }
    let opt = |attr: &str| -> Result<Option<u64>, MemError> {
        let p = dir.join(attr);
        match std::fs::read(&p) {
            Ok(raw) => parse_num(&p, &raw).map(Some),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(open_error(&p, e, U_DMA_BUF_MISSING, UDEV_HINT)),
        }
    };
    Ok(UDmaBufInfo {
        name: name.to_string(),
        phys_addr,
        size,
        sync_mode: opt("sync_mode")?.map(|v| v as u32),
        dma_coherent: opt("dma_coherent")?.unwrap_or(0) != 0,
        sysfs: dir,
    })
}

/// The u-dma-buf devices present (names under the class directories), sorted.
pub fn u_dma_buf_devices(roots: &SysRoots) -> Vec<String> {
    let mut v: Vec<String> = ["class/u-dma-buf", "class/udmabuf"]
        .iter()
        .filter_map(|c| std::fs::read_dir(roots.sys.join(c)).ok())
        .flat_map(|rd| rd.filter_map(|e| e.ok()?.file_name().into_string().ok()))
        .collect();
    v.sort();
    v.dedup();
    v
}

/// A u-dma-buf buffer (`/dev/udmabufN`) mapped cacheable (opened without `O_SYNC`), with
/// its physical address and size from sysfs. Physically contiguous by construction; the
/// remote core sees it at [`phys_addr`](Self::phys_addr) (or a fixed offset of it). Cache
/// maintenance: [`UDmaBufCache`](crate::UDmaBufCache) (the driver's sysfs sync attributes),
/// or on aarch64 `Arm64El0Cache` (the mapping is Normal cacheable memory).
#[derive(Debug)]
pub struct UDmaBufRegion {
    map: Mmap,
    _fd: OwnedFd,
    info: UDmaBufInfo,
    node: PathBuf,
}

impl OwnsMmap for UDmaBufRegion {
    fn mmap(&self) -> &Mmap {
        &self.map
    }
    /// Opened without `O_SYNC`: Normal cacheable memory (unless `sync_mode` forces
    /// otherwise, which [`open`](UDmaBufRegion::open) refuses).
    fn mapping_is_device_memory(&self) -> bool {
        false
    }
}

impl UDmaBufRegion {
    /// Maps all of u-dma-buf device `name` (`udmabuf0`): `/dev/<name>` under `roots.dev`,
    /// attributes under `roots.sys`.
    pub fn open(roots: &SysRoots, name: &str) -> Result<Self, MemError> {
        let info = u_dma_buf_info(roots, name)?;
        if let Some(m) = info.sync_mode
            && m & 4 != 0
        {
            return Err(MemError::InvalidRequest(format!(
                "{}/sync_mode is {m}: its \"always\" bit (4) makes every mapping uncached or write-combined; write 1, 2 or 3 to it (or drop sync-always from the device tree) for a cacheable mapping",
                info.sysfs.display()
            )));
        }
        let len = usize::try_from(info.size).map_err(|_| MemError::Malformed {
            path: info.sysfs.join("size"),
            what: format!("size {:#x} exceeds the address space", info.size),
        })?;
        let page = page_size();
        if len % page != 0 || info.phys_addr % page as u64 != 0 {
            return Err(MemError::InvalidRequest(format!(
                "{name} at {:#x}, {len:#x} bytes, is not whole pages",
                info.phys_addr
            )));
        }
        let node = roots.dev.join(name);
        let fd = open_rw(&node, 0, U_DMA_BUF_MISSING, UDEV_HINT)?;
        let map = Mmap::shared(fd.as_fd(), len, 0)
            .map_err(|e| mmap_error(&node, e, "the u-dma-buf driver refused the mapping"))?;
        Ok(Self {
            map,
            _fd: fd,
            info,
            node,
        })
    }

    /// What sysfs said about it.
    pub fn info(&self) -> &UDmaBufInfo {
        &self.info
    }

    /// The physical (bus) address of the first byte.
    pub fn phys_addr(&self) -> u64 {
        self.info.phys_addr
    }

    /// The device node it was mapped through.
    pub fn node(&self) -> &Path {
        &self.node
    }

    /// The remote sees the buffer at its physical address.
    pub fn identity_map(&self) -> LinearMap {
        LinearMap {
            base: DevAddr(self.info.phys_addr),
            offset: 0,
            len: self.map.len(),
        }
    }

    /// The remote sees the buffer at `phys_addr + delta`.
    pub fn offset_map(&self, delta: i64) -> Result<LinearMap, MemError> {
        let base = self
            .info
            .phys_addr
            .checked_add_signed(delta)
            .filter(|b| b.checked_add(self.map.len() as u64).is_some())
            .ok_or_else(|| {
                MemError::InvalidRequest(format!(
                    "device address {:#x}{delta:+#x} of a {:#x}-byte buffer leaves the 64-bit space",
                    self.info.phys_addr,
                    self.map.len()
                ))
            })?;
        Ok(LinearMap {
            base: DevAddr(base),
            offset: 0,
            len: self.map.len(),
        })
    }

    /// The sysfs sync handle of this buffer.
    pub fn sync_handle(&self) -> Result<UDmaBufSync, MemError> {
        UDmaBufSync::open(&self.info.sysfs, self.info.size)
    }
}

/// The u-dma-buf driver's cache maintenance through sysfs: `sync_offset`, `sync_size`,
/// `sync_direction`, then `1` to `sync_for_device` (clean) or `sync_for_cpu` (invalidate).
/// The attribute files stay open; each value is written at offset 0 in one `pwrite`.
///
/// The range attributes are per device, not per process: two processes syncing the same
/// buffer at once can interleave their writes. One owner per buffer (the data plane's
/// pool) is the intended use.
#[derive(Debug)]
pub struct UDmaBufSync {
    offset: std::fs::File,
    size: std::fs::File,
    direction: std::fs::File,
    for_cpu: std::fs::File,
    for_device: std::fs::File,
    dir: PathBuf,
    len: u64,
}

impl UDmaBufSync {
    /// Opens the sync attributes under the device's sysfs directory `dir`, for a buffer of
    /// `len` bytes.
    pub fn open(dir: &Path, len: u64) -> Result<Self, MemError> {
        let w = |attr: &str| -> Result<std::fs::File, MemError> {
            let p = dir.join(attr);
            OpenOptions::new()
                .write(true)
                .open(&p)
                .map_err(|e| open_error(&p, e, U_DMA_BUF_MISSING, UDEV_HINT))
        };
        Ok(Self {
            offset: w("sync_offset")?,
            size: w("sync_size")?,
            direction: w("sync_direction")?,
            for_cpu: w("sync_for_cpu")?,
            for_device: w("sync_for_device")?,
            dir: dir.to_path_buf(),
            len,
        })
    }

    fn put(&self, f: &std::fs::File, attr: &str, v: u64) -> io::Result<()> {
        let s = v.to_string();
        let n = f.write_at(s.as_bytes(), 0).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("writing {s} to {}: {e}", self.dir.join(attr).display()),
            )
        })?;
        if n != s.len() {
            return Err(io::Error::other(format!(
                "short write of {s} to {}",
                self.dir.join(attr).display()
            )));
        }
        Ok(())
    }

    fn range(&self, off: u64, len: u64, dir: SyncDirection) -> io::Result<()> {
        if off.checked_add(len).is_none_or(|e| e > self.len) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "sync range {off:#x}+{len:#x} is outside the {:#x}-byte buffer",
                    self.len
                ),
            ));
        }
        self.put(&self.offset, "sync_offset", off)?;
        self.put(&self.size, "sync_size", len)?;
        self.put(&self.direction, "sync_direction", dir as u64)
    }

    /// `dma_sync_single_for_device` over `off..off+len`: the CPU's writes reach memory
    /// (clean).
    pub fn for_device(&self, off: u64, len: u64, dir: SyncDirection) -> io::Result<()> {
        self.range(off, len, dir)?;
        self.put(&self.for_device, "sync_for_device", 1)
    }

    /// `dma_sync_single_for_cpu` over `off..off+len`: the CPU's next reads come from memory
    /// (invalidate, unless `dir` is `ToDevice`).
    pub fn for_cpu(&self, off: u64, len: u64, dir: SyncDirection) -> io::Result<()> {
        self.range(off, len, dir)?;
        self.put(&self.for_cpu, "sync_for_cpu", 1)
    }
}
