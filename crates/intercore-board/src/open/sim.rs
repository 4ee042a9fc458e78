//! The `sim` transport (feature `sim`): the simulated SoC, its firmware a parameter the
//! caller passes with the program hosting the remote core ([`OpenEnv::sim_firmwares`]).

use super::{Inner, Link, OpenEnv, OpenError, start_err};
use crate::model::{Board, CacheMaintenance, Eviction, SimLayout, TransportSpec};
use intercore::rpmsg::{HostBus, HostConfig};
use intercore_linux::MemfdRegion;
use intercore_linux::notify::EventfdDoorbell;
pub(super) use intercore_sim::Soc;
use intercore_sim::{CacheMode, SimConfig, SimFirmware};
use std::sync::Arc;
use std::time::Duration;

/// The host bus of the simulated SoC.
pub type SimBus = HostBus<Arc<MemfdRegion>, EventfdDoorbell>;

impl From<SimLayout> for intercore_sim::SimLayout {
    fn from(l: SimLayout) -> Self {
        match l {
            SimLayout::Standard => intercore_sim::SimLayout::Standard,
            SimLayout::TiK3 => intercore_sim::SimLayout::TiK3,
        }
    }
}

impl From<Eviction> for intercore_sim::Eviction {
    fn from(e: Eviction) -> Self {
        intercore_sim::Eviction {
            seed: e.seed,
            per_mille: e.per_mille,
        }
    }
}

impl CacheMaintenance {
    /// The simulated SoC's cache mode this is: `coherent` or the model; `None` for the
    /// real backends, which the simulator does not have.
    pub fn sim(&self) -> Option<CacheMode> {
        match *self {
            CacheMaintenance::Coherent => Some(CacheMode::Coherent),
            CacheMaintenance::SimNoncoherent(e) => Some(CacheMode::NonCoherent(e.into())),
            CacheMaintenance::Arm64El0
            | CacheMaintenance::DmaBuf
            | CacheMaintenance::UDmaBufSysfs => None,
        }
    }
}

impl Board {
    /// The firmware a `sim` board's `transport.firmware` names, from `firmwares` (those
    /// the program hosting the remote core ships). `Ok(None)` for other transports.
    pub fn sim_firmware(
        &self,
        firmwares: &[Arc<SimFirmware>],
    ) -> Result<Option<Arc<SimFirmware>>, OpenError> {
        let TransportSpec::Sim { firmware, .. } = &self.transport else {
            return Ok(None);
        };
        firmwares
            .iter()
            .find(|f| f.name() == firmware.as_str())
            .cloned()
            .map(Some)
            .ok_or_else(|| {
                let shipped: Vec<&str> = firmwares.iter().map(|f| f.name()).collect();
                OpenError::Config {
                    key: "transport.firmware",
                    message: format!(
                        "{:?}: not among the firmwares the simulated remote core's program ships ({})",
                        firmware.as_str(),
                        if shipped.is_empty() {
                            "none: OpenEnv::sim_firmwares".to_string()
                        } else {
                            shipped.join(", ")
                        }
                    ),
                }
            })
    }

    /// The simulated SoC a `sim` board describes (`Ok(None)` for other transports): its
    /// firmware (looked up in `firmwares`, [`Board::sim_firmware`]), device address,
    /// EVENT_IDX offer, layout, rpmsg buffers, pool classes and cache model
    /// (`sim-noncoherent`; a coherent board leaves [`SimConfig`]'s default).
    pub fn sim_config(
        &self,
        firmwares: &[Arc<SimFirmware>],
    ) -> Result<Option<SimConfig>, OpenError> {
        let TransportSpec::Sim {
            da_base,
            event_idx,
            layout,
            ..
        } = &self.transport
        else {
            return Ok(None);
        };
        let firmware = self.sim_firmware(firmwares)?.expect("a sim transport");
        let mut cfg = SimConfig {
            da_base: *da_base,
            event_idx: *event_idx,
            layout: (*layout).into(),
            vring_num: self.rpmsg.buffers,
            buf_size: self.rpmsg.buffer_size,
            pool: self.pool.clone(),
            ..SimConfig::new(firmware)
        };
        if let CacheMaintenance::SimNoncoherent(e) = self.cache.mode {
            cfg.cache = CacheMode::NonCoherent(e.into());
        }
        Ok(Some(cfg))
    }

    /// Starts the simulated SoC and opens its host bus.
    pub(super) fn open_sim(&self, env: OpenEnv, host: HostConfig) -> Result<Link, OpenError> {
        let TransportSpec::Sim { layout, .. } = &self.transport else {
            unreachable!("a sim transport");
        };
        let program = env.sim_remote.ok_or_else(|| OpenError::Config {
            key: "transport.kind",
            message: "\"sim\" needs the program that hosts the simulated remote core (OpenEnv::sim_remote)".into(),
        })?;
        let cfg = self
            .sim_config(&env.sim_firmwares)?
            .expect("a sim transport");
        let soc = Soc::start(&cfg, &program)
            .map_err(|e| start_err("starting the simulated SoC")(e.to_string()))?;
        let bus = soc
            .host_bus(host)
            .map_err(|e| start_err("the simulated SoC's host bus")(e.to_string()))?;
        let name = match layout {
            SimLayout::Standard => "sim".to_string(),
            l => format!("sim/{}", l.as_str()),
        };
        Ok(Link {
            inner: Inner::Sim { bus, soc },
            name,
            services: Vec::new(),
        })
    }
}

/// Closes a `sim` link: resets the device, waits for the remote core to exit.
pub(super) fn close(bus: SimBus, soc: Soc, timeout: Duration) -> Result<String, OpenError> {
    drop(bus);
    let st = soc
        .shutdown(timeout)
        .map_err(|e| start_err("stopping the simulated remote core")(e.to_string()))?;
    Ok(format!("simulated remote core exited with {st}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The board's vocabulary for a simulated board is the simulator's: the same
    /// defaults, addresses and pool, and the cache modes convert field for field.
    #[test]
    fn board_vocabulary_matches_the_simulator() {
        let fw: Arc<SimFirmware> = Arc::new(NoFirmware);
        let sim = SimConfig::new(fw);
        assert_eq!(crate::model::DA_BASE, intercore_sim::DA_BASE);
        assert_eq!(crate::model::DA_BASE, sim.da_base);
        assert_eq!(crate::model::POOL_IOVA, intercore_sim::POOL_IOVA);
        assert_eq!(crate::model::default_pool(), sim.pool);
        assert_eq!(
            intercore_sim::Eviction::from(Eviction::default()),
            intercore_sim::Eviction::default()
        );
        for l in [SimLayout::Standard, SimLayout::TiK3] {
            assert_eq!(intercore_sim::SimLayout::from(l).name(), l.as_str());
        }
        assert_eq!(CacheMaintenance::Coherent.sim(), Some(CacheMode::Coherent));
        let e = Eviction {
            seed: 9,
            per_mille: 7,
        };
        assert_eq!(
            CacheMaintenance::SimNoncoherent(e).sim(),
            Some(CacheMode::NonCoherent(intercore_sim::Eviction {
                seed: 9,
                per_mille: 7
            }))
        );
        assert_eq!(CacheMaintenance::Arm64El0.sim(), None);
    }

    /// A firmware that is only a name (the board crate ships none).
    struct NoFirmware;
    impl
        intercore::firmware::Firmware<
            Arc<MemfdRegion>,
            EventfdDoorbell,
            8,
            intercore_sim::AnyCache,
            intercore_sim::ctrl::SimWindows<MemfdRegion>,
        > for NoFirmware
    {
        fn name(&self) -> &str {
            "none"
        }
        fn run(
            &self,
            _: &mut intercore::rpmsg::RemoteBus<Arc<MemfdRegion>, EventfdDoorbell, 8>,
            _: &mut intercore::dataplane::DpRemote<
                intercore_sim::AnyCache,
                intercore_sim::ctrl::SimWindows<MemfdRegion>,
            >,
        ) -> intercore::Result<u64> {
            Ok(0)
        }
    }

    /// A board naming a firmware the caller does not pass gets an error naming the key
    /// and what the caller ships.
    #[test]
    fn unknown_firmware_names_the_key() {
        let b = Board::from_str(include_str!("../../../../boards/sim.toml")).unwrap();
        let fw: Arc<SimFirmware> = Arc::new(NoFirmware);
        let e = b.sim_config(&[fw]).unwrap_err().to_string();
        assert!(
            e.starts_with("transport.firmware: \"offload\": not among"),
            "{e}"
        );
        assert!(e.contains("(none)"), "{e}");
    }
}
