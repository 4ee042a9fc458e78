//! Guest memory: the front end's regions mapped in one piece with a private control page
//! after them ([`GuestMemory`], in `intercore-linux`, which vouches for its
//! `SharedMemory`), and the data plane's windows on it ([`GuestRam`]).

use intercore::DevAddr;
pub use intercore_linux::memory::{GuestMemory, GuestRegion as Region};

/// The data plane's windows on a vhost-user device: all of the guest's RAM, read-write,
/// and nothing else (not the device's private control page). A guest driver that hands the
/// device a buffer trusts it with that memory, as with any device without an IOMMU.
#[derive(Debug, Clone)]
pub struct GuestRam(pub std::sync::Arc<GuestMemory>);

impl intercore::dataplane::DataWindows for GuestRam {
    fn translate(
        &self,
        da: DevAddr,
        len: usize,
        write: bool,
    ) -> Result<usize, intercore::dataplane::Fault> {
        use intercore::DeviceAddressMap as _;
        self.0
            .to_offset(da, len)
            .ok_or(intercore::dataplane::Fault {
                da,
                len,
                write,
                kind: intercore::dataplane::FaultKind::Unmapped,
            })
    }
}
