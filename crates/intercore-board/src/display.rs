//! The summary of a board, one aspect per line (what `intercore board check` prints).

use crate::model::{
    Board, Boot, CacheMaintenance, CacheSpec, MappingSpec, MemorySpec, PoolCarveout, RegionSpec,
    RprocSelector, TransportSpec,
};
use crate::validate::hex;
use intercore_linux::remoteproc::Control;
use std::fmt;

pub(crate) fn size_str(n: u64) -> String {
    const K: u64 = 1024;
    if n >= K * K && n % (K * K) == 0 {
        format!("{} MiB", n / (K * K))
    } else if n >= K * K {
        format!("{:.2} MiB", n as f64 / (K * K) as f64)
    } else if n >= K && n % K == 0 {
        format!("{} KiB", n / K)
    } else {
        format!("{n} B")
    }
}

fn region_str(r: &RegionSpec) -> String {
    match r {
        RegionSpec::ReservedMemory { node, size: None } => {
            format!("/reserved-memory/{node}")
        }
        RegionSpec::ReservedMemory {
            node,
            size: Some(s),
        } => format!("the first {} of /reserved-memory/{node}", size_str(*s)),
        RegionSpec::Range { base, size } => {
            format!("{}..{} ({})", hex(*base), hex(base + size), size_str(*size))
        }
    }
}

impl fmt::Display for Board {
    /// A summary, one aspect per line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "board      {} (host: {})", self.name, self.arch.as_str())?;
        if let Some(d) = &self.description {
            writeln!(f, "           {d}")?;
        }
        if let Some(r) = &self.remoteproc {
            let which = match &r.selector {
                RprocSelector::Name(n) => format!("remote processor named {n:?}"),
                RprocSelector::Index(i) => format!("remoteproc{i}"),
            };
            let boot = match (r.boot, &r.firmware) {
                (Boot::Attach, _) => "attached to (started by the bootloader)".to_string(),
                (Boot::Load, Some(fw)) => format!("boots firmware {fw:?}"),
                (Boot::Load, None) => "boots the firmware it has selected".to_string(),
            };
            let control = match r.control {
                Control::Sysfs => "sysfs",
                Control::Cdev => "/dev/remoteprocN",
            };
            writeln!(f, "remoteproc {which}, {boot}; control through {control}")?;
            if let Some(p) = self.firmware_path() {
                writeln!(f, "           installs {}", p.display())?;
            }
        }
        self.fmt_transport(f)?;
        writeln!(
            f,
            "memory     {}",
            self.memory.describe(self.pool.region_len() as u64)
        )?;
        writeln!(f, "mapping    {}", self.mapping.describe())?;
        writeln!(f, "cache      {}", self.cache.describe())?;
        writeln!(
            f,
            "rpmsg      {} × {} B per direction, wait {}, timeout {} ms, service {:?}",
            self.rpmsg.buffers,
            self.rpmsg.buffer_size,
            self.rpmsg.wait,
            self.rpmsg.timeout.as_millis(),
            self.rpmsg.service
        )?;
        if let Some(p) = self.vdev.pool {
            writeln!(
                f,
                "vdev       DMA pool {}+{}: vrings at FW_RSC_ADDR_ANY and the buffers placed as Linux's coherent pool does",
                hex(p.base),
                hex(p.size)
            )?;
        }
        if let Some(b) = self.vdev.buffers {
            writeln!(
                f,
                "vdev       buffers (vdev0buffer) at {}+{}",
                hex(b.base),
                hex(b.size)
            )?;
        }
        let classes = self
            .pool
            .classes
            .iter()
            .map(|&(s, n)| format!("{n} × {}", size_str(s as u64)))
            .collect::<Vec<_>>()
            .join(", ");
        write!(
            f,
            "pool       {classes} ({}, buffers aligned to {})",
            size_str(self.pool.region_len() as u64),
            self.pool.align
        )
    }
}

impl Board {
    /// The transport's lines of the summary.
    fn fmt_transport(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.transport {
            TransportSpec::Sim {
                firmware,
                da_base,
                event_idx,
                layout,
            } => writeln!(
                f,
                "transport  simulated SoC: firmware {:?} in its own process, carveout at device address {}{}, {} layout",
                firmware.as_str(),
                hex(*da_base),
                if *event_idx { ", EVENT_IDX" } else { "" },
                layout.as_str()
            )?,
            TransportSpec::Userspace {
                region,
                rsc_offset,
                vring_offset,
                doorbell,
            } => writeln!(
                f,
                "transport  intercore's userspace virtio-rpmsg over {} (resource table at +{}{}), {}",
                region_str(region),
                hex(*rsc_offset),
                vring_offset.map_or(String::new(), |v| format!(", ANY vrings from +{}", hex(v))),
                match doorbell {
                    crate::model::DoorbellSpec::Poll => "polling doorbell".to_string(),
                    crate::model::DoorbellSpec::Uio { device, layout } => format!(
                        "UIO doorbell /dev/{device} ({})",
                        match layout {
                            intercore_linux::UioLayout::OmapMailbox(m) => format!(
                                "OMAP mailbox map{}, tx FIFO {}, rx FIFO {}, user {}",
                                m.map, m.tx, m.rx, m.user
                            ),
                            intercore_linux::UioLayout::ZynqmpIpi(i) => format!(
                                "ZynqMP IPI regs map{}, buffer map{} +{:#x}, remote bit {:#x}",
                                i.regs_map, i.buf_map, i.req_offset, i.remote
                            ),
                        }
                    ),
                }
            )?,
            TransportSpec::Qemu {
                core,
                fw_dir,
                image,
            } => match image {
                Some(i) => writeln!(
                    f,
                    "transport  QEMU: the firmware {i} as ARM code on an emulated Cortex-{}",
                    core.as_str().to_uppercase()
                )?,
                None => writeln!(
                    f,
                    "transport  QEMU: the offload firmware as ARM code on an emulated Cortex-{} (image from {}), polling doorbell",
                    core.as_str().to_uppercase(),
                    fw_dir.as_ref().map_or(
                        "$INTERCORE_FW_DIR, target/baremetal/images or firmware/images/target"
                            .into(),
                        |d| d.display().to_string()
                    )
                )?,
            },
            TransportSpec::Kernel { ctrl } => writeln!(
                f,
                "transport  kernel rpmsg char devices through /dev/{}",
                ctrl.as_deref().unwrap_or("rpmsg_ctrlN (the only one)")
            )?,
        }
        Ok(())
    }
}

impl MemorySpec {
    /// The memory source, described for the summary (`pool_len`: the pool's bytes, a
    /// memfd's default size).
    pub fn describe(&self, pool_len: u64) -> String {
        match self {
            MemorySpec::Memfd { size } => {
                format!("memfd of {}", size_str(size.unwrap_or(pool_len)))
            }
            MemorySpec::Carveout(PoolCarveout::DevMem(r)) => {
                format!("carveout {} through /dev/mem", region_str(r))
            }
            MemorySpec::Carveout(PoolCarveout::Uio { device, map }) => {
                format!("carveout: map{map} of /dev/{device} (UIO)")
            }
            MemorySpec::Carveout(PoolCarveout::UioNamed(n)) => {
                format!("carveout: the UIO map named {n:?}")
            }
            MemorySpec::DmaHeap {
                heap,
                size,
                device_address,
            } => format!(
                "{} from dma-buf heap /dev/dma_heap/{heap}{}",
                size_str(*size),
                match device_address {
                    Some(crate::model::DeviceAddress::Pagemap) => {
                        ", physical address from /proc/self/pagemap (root)"
                    }
                    None => "",
                }
            ),
            MemorySpec::Udmabuf { size } => format!("{} udmabuf", size_str(*size)),
            MemorySpec::Hugetlb { size } => format!(
                "{} hugetlb memfd, physical address from /proc/self/pagemap (root)",
                size_str(*size)
            ),
            MemorySpec::UDmaBuf { device, size } => format!(
                "u-dma-buf /dev/{device}{}",
                size.map(|s| format!(", first {}", size_str(s)))
                    .unwrap_or_default()
            ),
        }
    }
}

impl MappingSpec {
    /// The mapping, described for the summary.
    pub fn describe(&self) -> String {
        match *self {
            MappingSpec::Identity => "identity (device address = physical address)".to_string(),
            MappingSpec::Offset(o) => {
                format!("device address = physical address {o:+#x}")
            }
            MappingSpec::Vfio { group, iova } => {
                format!(
                    "VFIO group {group}: the pool at I/O virtual address {}",
                    hex(iova)
                )
            }
            MappingSpec::TiRprocAttach => {
                "RPROC_IOC_DMA_BUF_ATTACH on /dev/remoteprocN (TI kernels)".to_string()
            }
            MappingSpec::SimIommu { iova } => {
                format!("the simulator's IOMMU: the pool at {}", hex(iova))
            }
        }
    }
}

impl CacheSpec {
    /// The cache maintenance, described for the summary.
    pub fn describe(&self) -> String {
        match self.mode {
            CacheMaintenance::Coherent if self.io_coherent => {
                "coherent: fences only (the interconnect snoops for the remote)".to_string()
            }
            CacheMaintenance::Coherent => "coherent: fences only".to_string(),
            CacheMaintenance::Arm64El0 => {
                "arm64-el0: DC CVAC to clean, DC CIVAC to invalidate, DSB SY".to_string()
            }
            CacheMaintenance::DmaBuf => {
                "dma-buf: DMA_BUF_IOCTL_SYNC around each handoff".to_string()
            }
            CacheMaintenance::UDmaBufSysfs => {
                "u-dma-buf-sysfs: sync_for_device / sync_for_cpu over each range's lines"
                    .to_string()
            }
            CacheMaintenance::SimNoncoherent(e) => format!(
                "sim-noncoherent: the coherency sanitizer, eviction seed {}, {}‰",
                e.seed, e.per_mille
            ),
        }
    }
}
