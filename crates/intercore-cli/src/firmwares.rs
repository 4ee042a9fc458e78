//! The firmwares this command ships: intercore's demo firmwares, passed as parameters to
//! the simulated SoC (its remote process is this binary, `__sim-remote`) and to the
//! vhost-user device. The simulator and the device ship none.

use intercore_sim::SimFirmware;
use std::sync::Arc;

/// `firmware/echo`'s echo.
pub fn echo() -> Arc<SimFirmware> {
    Arc::new(intercore_fw_echo::Echo)
}

/// `firmware/echo`'s sink.
pub fn sink() -> Arc<SimFirmware> {
    Arc::new(intercore_fw_echo::Sink)
}

/// `firmware/offload`.
pub fn offload() -> Arc<SimFirmware> {
    Arc::new(intercore_fw_offload::Offload)
}

/// Every firmware the simulated remote core can run here.
pub fn sim() -> Vec<Arc<SimFirmware>> {
    vec![echo(), offload(), sink()]
}
