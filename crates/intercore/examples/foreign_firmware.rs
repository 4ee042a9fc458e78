//! A host set up for firmware that places nothing itself — as TI's MCU+ SDK, OpenAMP and
//! Zephyr firmware declare their resource table: both vrings at `FW_RSC_ADDR_ANY` and no
//! `vdev0buffer` carveout. The host allocates vrings and buffers from the vdev's DMA pool
//! exactly where Linux's coherent allocator would (`HostConfig::vring_region`), writes the
//! vring addresses back into the table and sets `DRIVER_OK`; a remote in this process
//! plays the firmware (it reads the addresses back at `DRIVER_OK`, and takes buffers from
//! the window it was told, `RemoteConfig::buffers`). Messages go both ways and are
//! checked, and the placement is checked against `CoherentPool::linux_vdev`.
//!
//! `cargo run -p intercore --example foreign_firmware`

use intercore::rpmsg::{
    CoherentPool, HostBus, HostConfig, RPMSG_ADDR_ANY, RemoteBus, RemoteConfig, RscLocation,
};
use intercore::testing::{HeapMem, ThreadBell};
use intercore::virtq::VringLayout;
use intercore::wire::Le32;
use intercore::wire::rsc::{
    FW_RSC_ADDR_ANY, FwRscVdev, FwRscVdevVring, ResourceTable, RscTableWriter,
};
use intercore::{DevAddr, LinearMap, SharedMemory};
use std::sync::Arc;
use std::time::Duration;

/// Device address of the shared region (the firmware's view and the host's agree here).
const DA: u64 = 0xA000_0000;
/// The resource table's page, then the vdev's DMA pool.
const POOL_OFF: usize = 0x1000;
const POOL_LEN: usize = 0x10000;
const NUM: u32 = 16;
const TIMEOUT: Option<Duration> = Some(Duration::from_secs(5));

/// The firmware's table: the rpmsg vdev (name service offered), both vrings at
/// `FW_RSC_ADDR_ANY`, no buffer carveout.
fn foreign_table(mem: &HeapMem) -> Result<RscLocation, Box<dyn std::error::Error>> {
    let mut buf = [0u8; 256];
    let mut w = RscTableWriter::new(&mut buf, 1)?;
    let ring = |id: u32| FwRscVdevVring {
        da: Le32::new(FW_RSC_ADDR_ANY),
        align: Le32::new(4096),
        num: Le32::new(NUM),
        notifyid: Le32::new(id),
        pa: Le32::new(0),
    };
    let vdev = FwRscVdev {
        id: Le32::new(intercore::wire::rpmsg::VIRTIO_ID_RPMSG),
        dfeatures: Le32::new(1 << intercore::wire::rpmsg::VIRTIO_RPMSG_F_NS),
        ..Default::default()
    };
    w.add_vdev(&vdev, &[ring(0), ring(1)], &[])?;
    let len = w.finish();
    mem.write(0, &buf[..len]);
    Ok(RscLocation { offset: 0, len })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mem = Arc::new(HeapMem::new(POOL_OFF + POOL_LEN));
    let rsc = foreign_table(&mem)?;
    let map = LinearMap {
        base: DevAddr(DA),
        offset: 0,
        len: mem.len(),
    };
    let pool = LinearMap {
        base: DevAddr(DA + POOL_OFF as u64),
        offset: POOL_OFF,
        len: POOL_LEN,
    };
    let (host_bell, remote_bell) = ThreadBell::pair();

    // The firmware: told only where host buffers may lie (its permission window).
    let remote_mem = Arc::clone(&mem);
    let remote = std::thread::spawn(move || -> Result<(), String> {
        let cfg = RemoteConfig::default().buffers(Some(pool));
        let mut bus: RemoteBus<_, _> = RemoteBus::new(remote_mem, remote_bell, &map, rsc, cfg)
            .map_err(|e| format!("remote: {e}"))?;
        bus.wait_ready(TIMEOUT)
            .map_err(|e| format!("wait_ready: {e}"))?;
        let ch = bus
            .open("rpmsg-echo", RPMSG_ADDR_ANY)
            .map_err(|e| e.to_string())?;
        let mut buf = [0u8; 496];
        loop {
            let n = bus
                .recv(&ch, &mut buf, TIMEOUT)
                .map_err(|e| e.to_string())?;
            if &buf[..n] == b"done" {
                return Ok(());
            }
            buf[..n].reverse();
            bus.send(&ch, &buf[..n], TIMEOUT)
                .map_err(|e| e.to_string())?;
        }
    });

    // The host: the vdev's DMA pool is where vrings and buffers go.
    let cfg = HostConfig::default().vring_region(Some(pool));
    let mut host = HostBus::new(Arc::clone(&mem), host_bell, &map, rsc, cfg)?;

    // Where Linux would have put them: vring 0, vring 1, then the buffers.
    let layout = VringLayout::new(NUM, 4096)?;
    let linux = CoherentPool::linux_vdev(POOL_LEN, [layout; 2], 2 * NUM as usize, 512)
        .ok_or("the pool is too small for Linux's allocations")?;
    let mut table = vec![0u8; rsc.len];
    mem.read(rsc.offset, &mut table);
    let table = ResourceTable::validate(&table)?;
    let vdev = table.find_vdev(7)?.ok_or("no vdev")?;
    for i in 0..2 {
        let da = vdev.vring(i).ok_or("vring missing")?.da.get() as u64;
        let expected = DA + (POOL_OFF + linux.vrings[i]) as u64;
        if da != expected {
            return Err(
                format!("vring {i} at {da:#x}, Linux would place it at {expected:#x}").into(),
            );
        }
    }

    let ch = host.connect("rpmsg-echo", TIMEOUT)?;
    let mut buf = [0u8; 496];
    for i in 0..50u32 {
        let msg = format!("message {i} to firmware that placed nothing");
        host.send(&ch, msg.as_bytes(), TIMEOUT)?;
        let n = host.recv(&ch, &mut buf, TIMEOUT)?;
        let mut expected = msg.into_bytes();
        expected.reverse();
        if buf[..n] != expected[..] {
            return Err(format!("answer {i} wrong").into());
        }
    }
    host.send(&ch, b"done", TIMEOUT)?;
    remote
        .join()
        .map_err(|_| "the firmware thread panicked")??;
    println!(
        "foreign_firmware: vrings at +{:#x} and +{:#x} of the DMA pool, where Linux places them; \
         buffers from the pool (each checked by the remote against its window); \
         50 messages each way verified",
        linux.vrings[0], linux.vrings[1]
    );
    Ok(())
}
