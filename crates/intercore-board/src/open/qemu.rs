//! The `qemu` transport (feature `qemu`): the firmware image on an emulated core.

use super::{Inner, Link, OpenError, console_tail, expand_path, start_err};
use crate::model::{Board, QemuCoreName, TransportSpec};
use intercore::rpmsg::HostBus;
use intercore::wire::rsc::ResourceTable;
use intercore_linux::MemfdRegion;
use intercore_sim::qemu::{HostBell, QemuConfig, find_image};
pub(super) use intercore_sim::qemu::{QemuCore, QemuSoc};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// How long `close` waits for a firmware without intercore's vendor entry to exit before
/// QEMU is stopped (vendor firmware runs forever).
const FOREIGN_EXIT_GRACE: Duration = Duration::from_millis(500);

/// The host bus of the QEMU SoC.
pub type QemuBus = HostBus<Arc<MemfdRegion>, HostBell>;

impl QemuCoreName {
    /// The simulator's core.
    pub fn core(self) -> QemuCore {
        match self {
            QemuCoreName::R5f => QemuCore::R5f,
            QemuCoreName::M4f => QemuCore::M4f,
        }
    }
}

impl Board {
    /// The firmware image of a `qemu` board: `transport.image` (expanded, relative to the
    /// board file), else intercore's own image under `transport.fw_dir` (relative to the
    /// board file) or [`qemu_image`]'s default directories. The error names the key.
    pub fn qemu_image(&self) -> Result<PathBuf, QemuImageError> {
        let TransportSpec::Qemu {
            core,
            fw_dir,
            image,
        } = &self.transport
        else {
            return Err(QemuImageError::NotQemu);
        };
        let board_dir = self
            .file
            .as_ref()
            .and_then(|p| p.parent())
            .unwrap_or(Path::new(""));
        if let Some(i) = image {
            let path = expand_path(i, board_dir, &|k| std::env::var_os(k)).map_err(|reason| {
                QemuImageError::Expand {
                    image: i.clone(),
                    reason,
                }
            })?;
            if !path.is_file() {
                return Err(QemuImageError::NoFile {
                    image: i.clone(),
                    path,
                });
            }
            return Ok(path);
        }
        let dir = fw_dir.as_ref().map(|d| board_dir.join(d));
        qemu_image(core.core(), dir.as_deref()).map_err(|e| {
            if dir.is_some() {
                QemuImageError::FwDir(e)
            } else {
                QemuImageError::DefaultDir(e)
            }
        })
    }

    /// The key a `qemu` board's image comes from.
    fn image_key(&self) -> &'static str {
        match &self.transport {
            TransportSpec::Qemu { image: Some(_), .. } => "transport.image",
            _ => "transport.fw_dir",
        }
    }

    /// Everything `open` decides about a `qemu` board before starting QEMU: the image, its
    /// resource table, and the placement and doorbell plan. `board check` runs the same.
    pub fn qemu_plan(&self) -> Result<(PathBuf, crate::vdev::VdevPlan), OpenError> {
        let key = self.image_key();
        let image = self.qemu_image().map_err(|e| OpenError::Config {
            key,
            message: e.to_string(),
        })?;
        let TransportSpec::Qemu { core, .. } = &self.transport else {
            unreachable!("qemu_image succeeded");
        };
        let t = intercore_sim::qemu::read_table(core.core(), &image).map_err(|e| {
            OpenError::Config {
                key,
                message: e.to_string(),
            }
        })?;
        let table = ResourceTable::validate(&t.table).map_err(|e| OpenError::Config {
            key,
            message: format!("{}: the resource table: {e}", image.display()),
        })?;
        let plan = self.plan_vdev(&table, &t.window, key)?;
        Ok((image, plan))
    }

    /// Starts QEMU with the board's image and opens the host bus over the shared memfd.
    pub(super) fn open_qemu(&self, wait: intercore::WaitMode) -> Result<Link, OpenError> {
        let TransportSpec::Qemu { core, .. } = &self.transport else {
            unreachable!("a qemu transport");
        };
        let (path, plan) = self.qemu_plan()?;
        let core = core.core();
        let soc = QemuSoc::start(&QemuConfig::new(core, path))
            .map_err(|e| start_err(format!("starting {}", core.name()))(e.to_string()))?;
        let host = self.host_config(wait, Some(&plan));
        let bus = soc.host_bus(host).map_err(|e| {
            start_err(format!("{}'s host bus", core.name()))(format!(
                "{e}{}",
                console_tail(&soc.console(), 6)
            ))
        })?;
        Ok(Link {
            inner: Inner::Qemu { bus, soc },
            name: core.name().to_string(),
            services: Vec::new(),
        })
    }
}

/// Closes a `qemu` link: resets the device, waits for the firmware to exit.
pub(super) fn close(bus: QemuBus, soc: QemuSoc, timeout: Duration) -> Result<String, OpenError> {
    drop(bus);
    // A firmware without intercore's vendor entry (a vendor's image) does not
    // exit when the host goes away: that is how it is, not a fault — said, and
    // QEMU stopped after a short grace.
    let foreign = soc.doorbell_entry().is_none();
    let wait = if foreign {
        timeout.min(FOREIGN_EXIT_GRACE)
    } else {
        timeout
    };
    match soc.shutdown(wait) {
        Ok(_) => Ok("QEMU's firmware exited cleanly".to_string()),
        Err(intercore_sim::qemu::QemuError::FirmwareFault {
            code: None,
            meaning,
            ..
        }) if foreign && meaning.starts_with("did not exit") => Ok(format!(
            "the firmware {meaning}: QEMU stopped (a firmware without intercore's vendor entry is not expected to exit by itself)"
        )),
        Err(e) => Err(start_err("stopping QEMU")(e.to_string())),
    }
}

/// The QEMU firmware image of `core`: in `dir`, or (`None`) in `$INTERCORE_FW_DIR`, then
/// `target/baremetal/images` and `firmware/images/target` (where `scripts/test-baremetal.sh`
/// and a plain cargo build in `firmware/images` put them). The error lists every path tried.
pub fn qemu_image(core: QemuCore, dir: Option<&Path>) -> Result<PathBuf, NoQemuImage> {
    let dirs: Vec<PathBuf> = match dir
        .map(Path::to_path_buf)
        .or_else(|| std::env::var_os("INTERCORE_FW_DIR").map(PathBuf::from))
    {
        Some(d) => vec![d],
        None => vec![
            "target/baremetal/images".into(),
            "firmware/images/target".into(),
        ],
    };
    if let Some(p) = dirs.iter().find_map(|d| find_image(d, core)) {
        return Ok(p);
    }
    let looked = dirs
        .iter()
        .flat_map(|d| {
            [
                d.join(core.target()).join("release").join("offload"),
                d.join(format!("{}.elf", core.name())),
            ]
        })
        .collect();
    Err(NoQemuImage {
        core: core.name(),
        looked,
    })
}

/// No QEMU firmware image where [`qemu_image`] looked.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "no firmware image for {core}: looked for {}; build it with `scripts/test-baremetal.sh --build-only` (or the cargo command in firmware/images/Cargo.toml), or point INTERCORE_FW_DIR at the directory",
    display_paths(.looked)
)]
pub struct NoQemuImage {
    /// The core (`qemu-r5f`).
    pub core: &'static str,
    /// Every path tried, in order.
    pub looked: Vec<PathBuf>,
}

/// `a, b, c`.
fn display_paths(paths: &[PathBuf]) -> String {
    let shown: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    shown.join(", ")
}

/// Why a `qemu` board has no firmware image ([`Board::qemu_image`]); each names the key.
#[derive(Debug, Clone, thiserror::Error)]
pub enum QemuImageError {
    /// The board's transport is not QEMU.
    #[error("transport.kind: not \"qemu\"")]
    NotQemu,
    /// `transport.image` does not expand (an unset variable, ...).
    #[error("transport.image = {image:?}: {reason}")]
    Expand {
        /// The key's value.
        image: String,
        /// Why it does not expand.
        reason: String,
    },
    /// `transport.image` names no file.
    #[error("transport.image = {image:?}: no firmware file at {}", .path.display())]
    NoFile {
        /// The key's value.
        image: String,
        /// The path it expanded to.
        path: PathBuf,
    },
    /// Not in `transport.fw_dir`.
    #[error("transport.fw_dir: {0}")]
    FwDir(NoQemuImage),
    /// Not in the default directories (no `transport.fw_dir`).
    #[error("transport.fw_dir (default): {0}")]
    DefaultDir(NoQemuImage),
}
