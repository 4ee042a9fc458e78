//! QEMU's `edu` PCI device driven from user space over VFIO (features `vfio` and
//! `test-utils`): a small DMA engine behind an IOMMU, the stand-in for "a remote core that
//! reaches memory only through the windows the host maps" in the guest tests
//! (`scripts/vm-vfio-test.sh`).
//!
//! Register layout (QEMU `docs/specs/edu.rst`, `hw/misc/edu.c`): BAR 0, 1 MiB of MMIO;
//! `0x00` identification `0x010000ed`; `0x80` DMA source, `0x88` DMA destination, `0x90`
//! count, `0x98` command (bit 0 start — it clears when the transfer is done, bit 1
//! direction: 0 = RAM → device, 1 = device → RAM, bit 2 raise an interrupt). The device's
//! own buffer is 4 KiB at device address `0x40000`. A transfer completes after a 100 ms
//! timer of virtual time. The DMA registers take 4- or 8-byte accesses; QEMU masks every
//! DMA address with the device's `dma_mask` (28 bits by default), so I/O virtual addresses
//! must stay below 256 MiB. QEMU 7.2's device aborts the VM on a full 4096-byte transfer
//! (fixed by 10.0): keep transfers ≤ 4095 bytes there.
//!
//! The device is reached through `pread`/`pwrite` on its VFIO descriptor (no mapping of
//! device memory), so this module needs no `unsafe`.

use super::vfio::{VfioDevice, VfioRegion};
use super::{MemError, SysRoots};
use crate::uapi::{VFIO_PCI_BAR0_REGION_INDEX, VFIO_PCI_CONFIG_REGION_INDEX};
use std::io;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// PCI vendor id of the `edu` device.
pub const EDU_VENDOR: u16 = 0x1234;
/// PCI device id of the `edu` device.
pub const EDU_DEVICE: u16 = 0x11e8;
/// What the identification register reads (major 1, minor 0, `0xed`).
pub const EDU_IDENT: u32 = 0x0100_00ed;
/// Device address of the device's buffer.
pub const EDU_BUF: u64 = 0x40000;
/// Bytes of the device's buffer.
pub const EDU_BUF_LEN: usize = 4096;
/// The device's default DMA address mask (QEMU's `dma_mask` property): addresses above it
/// are silently truncated, so they are refused here.
pub const EDU_DMA_MASK: u64 = (1 << 28) - 1;

const REG_IDENT: u64 = 0x00;
const REG_DMA_SRC: u64 = 0x80;
const REG_DMA_DST: u64 = 0x88;
const REG_DMA_CNT: u64 = 0x90;
const REG_DMA_CMD: u64 = 0x98;
const CMD_RUN: u64 = 1;
const CMD_TO_RAM: u64 = 2;
/// `PCI_COMMAND` in configuration space, and its memory-space and bus-master bits
/// (`linux/pci_regs.h`).
const PCI_COMMAND: u64 = 0x04;
const PCI_COMMAND_MEMORY: u16 = 0x2;
const PCI_COMMAND_MASTER: u16 = 0x4;

/// An `edu` device found in sysfs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EduPci {
    /// Its PCI address (`0000:00:03.0`), the VFIO device name.
    pub bdf: String,
    /// Its IOMMU group (`/dev/vfio/<group>` once bound to vfio-pci).
    pub group: u32,
}

/// The `edu` devices under `roots.sys/bus/pci/devices` that sit in an IOMMU group.
pub fn find_edu(roots: &SysRoots) -> Result<Vec<EduPci>, MemError> {
    let dir = roots.sys.join("bus/pci/devices");
    let rd = std::fs::read_dir(&dir).map_err(|e| MemError::Os {
        op: format!("read_dir {}", dir.display()),
        source: e,
        hint: "no PCI bus in sysfs",
    })?;
    let hex = |p: PathBuf| -> Option<u16> {
        let t = std::fs::read_to_string(p).ok()?;
        u16::from_str_radix(t.trim().trim_start_matches("0x"), 16).ok()
    };
    let mut out = Vec::new();
    for e in rd.filter_map(|e| e.ok()) {
        let p = e.path();
        if hex(p.join("vendor")) != Some(EDU_VENDOR) || hex(p.join("device")) != Some(EDU_DEVICE) {
            continue;
        }
        let Ok(link) = std::fs::read_link(p.join("iommu_group")) else {
            continue;
        };
        let group = link
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| MemError::Malformed {
                path: p.join("iommu_group"),
                what: format!("link to {} does not end in a group number", link.display()),
            })?;
        out.push(EduPci {
            bdf: e.file_name().to_string_lossy().into_owned(),
            group,
        });
    }
    out.sort_by(|a, b| a.bdf.cmp(&b.bdf));
    Ok(out)
}

/// Direction of one transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EduDir {
    /// Guest memory at an I/O virtual address → the device's buffer.
    FromRam,
    /// The device's buffer → guest memory at an I/O virtual address.
    ToRam,
}

/// An `edu` device opened through VFIO: BAR 0 located with `VFIO_DEVICE_GET_REGION_INFO`,
/// bus mastering enabled in its configuration space.
#[derive(Debug, Clone, Copy)]
pub struct Edu {
    bar0: VfioRegion,
}

impl Edu {
    /// Checks the identification register of `dev` and enables memory decoding and bus
    /// mastering (vfio-pci leaves bus mastering off; without it QEMU drops the device's DMA).
    pub fn probe(dev: &VfioDevice) -> Result<Self, MemError> {
        let bar0 = dev.region(VFIO_PCI_BAR0_REGION_INDEX)?;
        if bar0.size < 0x100 {
            return Err(MemError::InvalidRequest(format!(
                "{}: BAR 0 has {:#x} bytes, too small for an edu device",
                dev.name(),
                bar0.size
            )));
        }
        let edu = Self { bar0 };
        let ident = edu.read32(dev, REG_IDENT)?;
        if ident != EDU_IDENT {
            return Err(MemError::InvalidRequest(format!(
                "{}: identification register reads {ident:#010x}, not the edu device's {EDU_IDENT:#010x}",
                dev.name()
            )));
        }
        let cfg = dev.region(VFIO_PCI_CONFIG_REGION_INDEX)?;
        let mut cmd = [0u8; 2];
        dev.read(&cfg, PCI_COMMAND, &mut cmd)?;
        let cmd = u16::from_le_bytes(cmd) | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER;
        dev.write(&cfg, PCI_COMMAND, &cmd.to_le_bytes())?;
        Ok(edu)
    }

    fn read32(&self, dev: &VfioDevice, reg: u64) -> Result<u32, MemError> {
        let mut b = [0u8; 4];
        dev.read(&self.bar0, reg, &mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn read64(&self, dev: &VfioDevice, reg: u64) -> Result<u64, MemError> {
        let mut b = [0u8; 8];
        dev.read(&self.bar0, reg, &mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn write64(&self, dev: &VfioDevice, reg: u64, v: u64) -> Result<(), MemError> {
        dev.write(&self.bar0, reg, &v.to_le_bytes())
    }

    /// Moves `len` bytes between the device's buffer (from its start) and I/O virtual
    /// address `iova`, and waits up to `timeout` for the command register's start bit to
    /// clear. Whether the IOMMU let the transfer through is not visible here (the device
    /// completes either way): the caller checks memory, and the kernel log for the fault.
    pub fn dma(
        &self,
        dev: &VfioDevice,
        dir: EduDir,
        iova: u64,
        len: usize,
        timeout: Duration,
    ) -> Result<(), MemError> {
        if len == 0 || len > EDU_BUF_LEN {
            return Err(MemError::InvalidRequest(format!(
                "edu transfer of {len} bytes: the device buffer holds 1..={EDU_BUF_LEN}"
            )));
        }
        if iova
            .checked_add(len as u64)
            .is_none_or(|e| e - 1 > EDU_DMA_MASK)
        {
            return Err(MemError::InvalidRequest(format!(
                "I/O virtual address {iova:#x}+{len:#x} is above the edu device's DMA mask {EDU_DMA_MASK:#x} (the device would truncate it)"
            )));
        }
        if self.read64(dev, REG_DMA_CMD)? & CMD_RUN != 0 {
            return Err(MemError::InvalidRequest(format!(
                "{}: a transfer is still running",
                dev.name()
            )));
        }
        let (src, dst, cmd) = match dir {
            EduDir::FromRam => (iova, EDU_BUF, CMD_RUN),
            EduDir::ToRam => (EDU_BUF, iova, CMD_RUN | CMD_TO_RAM),
        };
        self.write64(dev, REG_DMA_SRC, src)?;
        self.write64(dev, REG_DMA_DST, dst)?;
        self.write64(dev, REG_DMA_CNT, len as u64)?;
        self.write64(dev, REG_DMA_CMD, cmd)?;
        let t0 = Instant::now();
        while self.read64(dev, REG_DMA_CMD)? & CMD_RUN != 0 {
            if t0.elapsed() > timeout {
                return Err(MemError::Os {
                    op: format!("edu DMA {dir:?} {iova:#x}+{len:#x} on {}", dev.name()),
                    source: io::Error::from(io::ErrorKind::TimedOut),
                    hint: "the start bit did not clear (the device completes a transfer after 100 ms of virtual time)",
                });
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Discovery in a fake sysfs: only 1234:11e8 devices with an `iommu_group` link are
    /// listed, with the group number from the link's last component
    /// (drivers/iommu/iommu.c creates /sys/kernel/iommu_groups/N and the device's link).
    #[test]
    fn finds_edu_devices_in_sysfs() {
        let dir = std::env::temp_dir().join(format!("intercore-edu-{}", std::process::id()));
        let roots = SysRoots::under(&dir);
        let dev = |bdf: &str, vendor: &str, device: &str, group: Option<&str>| {
            let p = dir.join("sys/bus/pci/devices").join(bdf);
            std::fs::create_dir_all(&p).unwrap();
            std::fs::write(p.join("vendor"), vendor).unwrap();
            std::fs::write(p.join("device"), device).unwrap();
            if let Some(g) = group {
                std::os::unix::fs::symlink(
                    format!("../../../kernel/iommu_groups/{g}"),
                    p.join("iommu_group"),
                )
                .unwrap();
            }
        };
        dev("0000:00:03.0", "0x1234\n", "0x11e8\n", Some("5"));
        dev("0000:00:02.0", "0x1234\n", "0x1111\n", Some("2"));
        dev("0000:00:04.0", "0x1234\n", "0x11e8\n", None);
        let found = find_edu(&roots).unwrap();
        assert_eq!(
            found,
            vec![EduPci {
                bdf: "0000:00:03.0".into(),
                group: 5
            }]
        );
        dev("0000:00:05.0", "0x1234\n", "0x11e8\n", Some("x"));
        assert!(matches!(find_edu(&roots), Err(MemError::Malformed { .. })));
        let _ = std::fs::remove_dir_all(&dir);
        assert!(
            find_edu(&roots).is_err(),
            "no sysfs: an error, not an empty list"
        );
    }
}
