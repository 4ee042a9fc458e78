//! The cache maintenance against the host and the mapping found.

use super::{Findings, Level};
use crate::CheckEnv;
use crate::model::{Board, CacheMaintenance, MemorySpec};

impl Board {
    pub(super) fn check_cache(
        &self,
        env: &CheckEnv,
        phys: Option<(u64, u64, bool)>,
        f: &mut Findings,
    ) {
        match self.cache.mode {
            CacheMaintenance::Arm64El0 => {
                if env.host_arch == "aarch64" {
                    f.push(
                        Level::Ok,
                        "cache",
                        format!(
                            "DC CVAC / DC CIVAC at EL0, {}-byte lines (CTR_EL0)",
                            intercore_linux::native_line_size()
                        ),
                    );
                } else {
                    f.push(
                        Level::Error,
                        "cache",
                        format!(
                            "cache.mode = \"arm64-el0\" needs an aarch64 host; this one is {}",
                            env.host_arch
                        ),
                    );
                }
                if let Some((_, _, true)) = phys {
                    f.push(
                        Level::Info,
                        "cache",
                        "the pool is uncached Device memory: the maintenance is harmless but does nothing; \"coherent\" suffices",
                    );
                }
            }
            CacheMaintenance::DmaBuf => {
                if matches!(self.memory, MemorySpec::DmaHeap { .. }) {
                    f.push(
                        Level::Warn,
                        "cache",
                        "mainline system and CMA heaps sync only for kernel devices attached to the buffer: with the remote core as its only user, DMA_BUF_IOCTL_SYNC may do no cache maintenance at all. Prefer \"arm64-el0\" unless this heap is known to sync",
                    );
                } else {
                    f.push(
                        Level::Ok,
                        "cache",
                        "udmabuf's DMA_BUF_IOCTL_SYNC really cleans and invalidates on arm64 (whole buffer per call)",
                    );
                }
            }
            CacheMaintenance::Coherent => match phys {
                Some((_, _, false)) if !self.cache.io_coherent => f.push(
                    Level::Error,
                    "cache",
                    "cache.mode = \"coherent\" over a region the kernel maps cacheable (no no-map): the remote core would read stale lines; mark the node no-map (uncached Device memory), or use \"arm64-el0\"",
                ),
                _ => f.push(Level::Ok, "cache", "fences only"),
            },
            CacheMaintenance::UDmaBufSysfs => f.push(
                Level::Ok,
                "cache",
                "u-dma-buf sysfs: sync_offset/sync_size of each range's lines, then sync_for_device (clean) or sync_for_cpu (invalidate); a few system calls per handoff",
            ),
            CacheMaintenance::SimNoncoherent(_) => f.push(
                Level::Ok,
                "cache",
                "the coherency sanitizer checks every handoff",
            ),
        }
    }
}
