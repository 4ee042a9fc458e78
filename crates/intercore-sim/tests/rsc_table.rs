//! The firmware's declared resource table is the one source of truth: it is in the
//! `.resource_table` section of every program that links the offload firmware, and the
//! simulated SoC copies it into the carveout the way remoteproc copies the section into
//! device memory before it starts a core.

use intercore::rpmsg::HostConfig;
use intercore::wire::IntoBytes;
use intercore::wire::elf::Elf;
use intercore_sim::Soc;
use std::time::Duration;

mod common;

/// `SHF_WRITE`: the section is writable memory.
const SHF_WRITE: u64 = 1;

/// remoteproc (`rproc_elf_load_rsc_table`, `rproc_elf_find_loaded_rsc_table`): the table
/// is the `.resource_table` section, found at its sh_addr inside a loaded segment, and the
/// host writes back into it — so the section must be writable. The simulated remote core's
/// program carries exactly the offload firmware's static there.
#[test]
fn sim_remote_binary_carries_the_firmware_table() {
    let bytes = std::fs::read(common::remote_path()).unwrap();
    let elf = Elf::parse(&bytes).unwrap();
    let rsc = elf
        .resource_table()
        .unwrap()
        .expect("a .resource_table section");
    let declared = intercore_fw_offload::RESOURCE_TABLE.snapshot();
    assert_eq!(rsc.table.bytes(), declared.as_bytes());
    assert!(rsc.loaded_in.is_some(), "the table is in a loaded segment");
    assert_ne!(
        rsc.section.flags & SHF_WRITE,
        0,
        "the table is writable memory"
    );
}

/// The SoC "loads" the firmware: the resource table in the carveout is byte for byte the
/// firmware's declared static (as the kernel copies the cached table into the loaded
/// image before `rproc_start`), the default geometry is the one the firmware is built
/// for, and the host bus works over it.
#[test]
fn soc_copies_the_firmware_table_into_the_carveout() {
    let cfg = common::offload();
    let (spec, table) = cfg.firmware.resource_table().expect("a declared table");
    assert_eq!(cfg.carveout(), spec);
    assert_eq!(spec, intercore_fw_offload::CARVEOUT);
    let soc = Soc::start(&cfg, &common::program()).unwrap();
    let mut got = vec![0u8; table.as_bytes().len()];
    intercore::SharedMemory::read(&**soc.memory(), soc.rsc().offset, &mut got);
    assert_eq!(&got[..], table.as_bytes());
    let mut bus = soc.host_bus(HostConfig::default()).unwrap();
    bus.find_service(
        intercore_fw_offload::ECHO_SERVICE,
        Some(Duration::from_secs(10)),
    )
    .unwrap();
}
