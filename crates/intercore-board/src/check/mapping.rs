//! The mapping: where the remote sees the pool, the VFIO nodes, TI's attach ioctl.

use super::{Findings, Level, probe_node};
use crate::CheckEnv;
use crate::model::{Board, MappingSpec};
use crate::validate::hex;
use intercore_linux::MemError;
use intercore_linux::remoteproc::Remoteproc;

impl Board {
    pub(super) fn check_mapping(
        &self,
        env: &CheckEnv,
        rproc: Option<&Remoteproc>,
        phys: Option<(u64, u64, bool)>,
        f: &mut Findings,
    ) {
        match self.mapping {
            MappingSpec::Identity | MappingSpec::Offset(_) => {
                if let Some((base, len, _)) = phys {
                    self.check_offset(base, len, f);
                }
            }
            MappingSpec::Vfio { group, iova } => check_vfio(env, group, iova, f),
            MappingSpec::TiRprocAttach => check_ti_attach(rproc, f),
            MappingSpec::SimIommu { iova } => f.push(
                Level::Ok,
                "mapping",
                format!("the simulator's IOMMU maps the pool at {}", hex(iova)),
            ),
        }
    }
    /// An identity or offset mapping: where the remote sees the pool at `base..+len`.
    fn check_offset(&self, base: u64, len: u64, f: &mut Findings) {
        let delta = match self.mapping {
            MappingSpec::Offset(d) => d,
            _ => 0,
        };
        match base.checked_add_signed(delta) {
            None => f.push(
                Level::Error,
                "mapping",
                format!("{} {delta:+#x} leaves the address space", hex(base)),
            ),
            Some(da) => {
                let end = da.saturating_add(len);
                f.push(
                    Level::Ok,
                    "mapping",
                    format!("the remote sees the pool at {}..{}", hex(da), hex(end)),
                );
                if end > 1 << 32 {
                    f.push(
                        Level::Warn,
                        "mapping",
                        "the pool ends above 4 GiB: a 32-bit remote core (Cortex-R5F, Cortex-M4F) cannot address it",
                    );
                }
            }
        }
    }
}

/// A VFIO mapping: the backend is built and the container and group nodes open.
fn check_vfio(env: &CheckEnv, group: u32, iova: u64, f: &mut Findings) {
    if !cfg!(feature = "vfio") {
        f.push(
            Level::Error,
            "mapping",
            "this build has no VFIO backend: build intercore-board with feature \"vfio\"",
        );
    }
    let missing = "no VFIO (CONFIG_VFIO, CONFIG_VFIO_IOMMU_TYPE1) or no such group: bind the remote core's IOMMU device to a VFIO driver";
    for node in [
        env.roots.dev.join("vfio/vfio"),
        env.roots.dev.join(format!("vfio/{group}")),
    ] {
        match probe_node(&node, true, missing) {
            Ok(()) => f.push(Level::Ok, "mapping", format!("{} opens", node.display())),
            Err(e) => f.push(Level::Error, "mapping", e.to_string()),
        }
    }
    f.push(
        Level::Info,
        "mapping",
        format!(
            "would map the pool at I/O virtual address {} (VFIO has no cache maintenance: the cache mode does it)",
            hex(iova)
        ),
    );
}

/// TI's attach ioctl: only TI's kernels have it, through the remoteproc cdev.
fn check_ti_attach(rproc: Option<&Remoteproc>, f: &mut Findings) {
    f.push(
        Level::Info,
        "mapping",
        "RPROC_IOC_DMA_BUF_ATTACH exists only in TI's kernels (mainline answers EINVAL)",
    );
    if let Some(r) = rproc {
        if !r.dev_path().exists() {
            f.push(
                Level::Error,
                "mapping",
                MemError::Missing {
                    path: r.dev_path(),
                    hint: "no remoteproc character device (CONFIG_REMOTEPROC_CDEV)",
                }
                .to_string(),
            );
        }
    }
}
