//! `Board::open` for the kernel transport, against intercore-linux's fake remoteproc tree
//! and fake rpmsg kernel (feature `test-utils`): remoteproc selects the board's firmware
//! and starts the core (`state_store` → `rproc_boot`), the control device is waited for,
//! and the link is `KernelRpmsg` through which an echo round trip runs. Follows
//! `remoteproc_sysfs.c` (firmware, state) and `rpmsg_char.c`/`rpmsg_ctrl.c` as the fakes
//! model them. No hardware: what a real kernel adds (probe order, udev) is not covered.

use intercore::rpmsg::RemoteConfig;
use intercore_board::{Board, OpenEnv, OpenError};
use intercore_linux::remoteproc::fake::{FakeKernel, FakeRproc, minimal_arm_elf as arm_elf};
use intercore_linux::rpmsg_char::fake::{Behavior, FakeRpmsgKernel};
use std::sync::Arc;
use std::time::Duration;

mod common;
use common::REAL;

fn env(rp: &FakeKernel, k: &Arc<FakeRpmsgKernel>) -> OpenEnv {
    let k2 = Arc::clone(k);
    OpenEnv {
        rproc: rp.paths(),
        rpmsg: k.paths(),
        ready_timeout: Duration::from_secs(5),
        kernel_opener: Some(Box::new(move |p| k2.transport_with(p))),
        ..OpenEnv::default()
    }
}

/// An offline core with another firmware selected: open installs the board's
/// `firmware_file` under its `firmware` name and selects it, starts the core, waits for
/// `running`, then opens /dev/rpmsg_ctrl0; an echo round trip goes through the returned
/// link. A second open leaves the running core alone (no write reaches the fake kernel).
#[test]
fn kernel_board_opens_through_remoteproc_and_rpmsg_ctrl() {
    let rp = FakeKernel::new(&[FakeRproc::offline("78000000.r5f", "other-fw")]);
    let k = Arc::new(FakeRpmsgKernel::new());
    k.announce("rpmsg-raw", 0x400, Behavior::Echo);
    let elf = rp.root().join("echo.elf");
    std::fs::write(&elf, arm_elf()).unwrap();
    let b = Board::from_str(&REAL.replace(
        "[transport]",
        &format!("firmware_file = \"{}\"\n[transport]", elf.display()),
    ))
    .unwrap();
    let mut link = b.open_with(env(&rp, &k)).unwrap();
    assert_eq!(rp.state(0), "running");
    assert_eq!(rp.firmware(0), "am64-main-r5f0_0-fw");
    assert_eq!(
        std::fs::read(rp.firmware_dir().join("am64-main-r5f0_0-fw")).unwrap(),
        arm_elf()
    );
    assert_eq!(link.transport_name(), "kernel");
    let remote = link
        .find_service("rpmsg-raw", Some(Duration::from_secs(2)))
        .unwrap();
    assert_eq!(remote, 0x400);
    let ch = link.open("t", remote).unwrap();
    link.send(&ch, b"hello", None).unwrap();
    let mut buf = [0u8; 496];
    let n = link
        .recv(&ch, &mut buf, Some(Duration::from_secs(2)))
        .unwrap();
    assert_eq!(&buf[..n], b"hello");
    link.close(ch).unwrap();
    link.shut_down(Duration::from_secs(1)).unwrap();
    let writes = rp.log().len();
    let link = b.open_with(env(&rp, &k)).unwrap();
    assert_eq!(rp.state(0), "running");
    assert_eq!(rp.log().len(), writes, "{:?}", rp.log());
    drop(link);
}

/// Failures name the board key: a remote processor that does not exist
/// (`remoteproc.name`) and a control device that never appears (`transport.ctrl`).
#[test]
fn kernel_board_failures_name_the_key() {
    let rp = FakeKernel::new(&[FakeRproc::offline("other.r5f", "fw")]);
    let k = Arc::new(FakeRpmsgKernel::new());
    let b = Board::from_str(REAL).unwrap();
    let e = b.open_with(env(&rp, &k)).unwrap_err();
    assert!(
        matches!(
            e,
            OpenError::Config {
                key: "remoteproc.name",
                ..
            }
        ),
        "{e}"
    );

    let rp = FakeKernel::new(&[FakeRproc::offline("78000000.r5f", "fw")]);
    rp.set_state(0, "running");
    let b = Board::from_str(&REAL.replace(
        "kind = \"kernel\"",
        "kind = \"kernel\"\nctrl = \"rpmsg_ctrl7\"",
    ))
    .unwrap();
    let mut e2 = env(&rp, &k);
    e2.ready_timeout = Duration::from_millis(100);
    let e = b.open_with(e2).unwrap_err().to_string();
    assert!(
        e.starts_with("transport.ctrl:") && e.contains("rpmsg_ctrl7"),
        "{e}"
    );
}

/// A sim board without the program that hosts the simulated core is a configuration error
/// naming transport.kind; a QEMU board without an image names transport.fw_dir and every
/// path it looked at.
#[test]
fn emulated_boards_name_what_is_missing() {
    let sim = "[board]\nname = \"s\"\n[transport]\nkind = \"sim\"\n[memory]\nsource = \"memfd\"\n[cache]\nmode = \"coherent\"\n";
    let e = Board::from_str(sim).unwrap().open().unwrap_err();
    assert!(
        matches!(
            e,
            OpenError::Config {
                key: "transport.kind",
                ..
            }
        ),
        "{e}"
    );
    // Without the feature `qemu`: `board::emulated_boards_without_their_feature_name_it`.
    #[cfg(feature = "qemu")]
    {
        let q = "[board]\nname = \"q\"\n[transport]\nkind = \"qemu\"\ncore = \"r5f\"\nfw_dir = \"/nonexistent-intercore\"\n[memory]\nsource = \"memfd\"\n[cache]\nmode = \"coherent\"\n";
        let e = Board::from_str(q).unwrap().open().unwrap_err().to_string();
        assert!(
            e.starts_with("transport.fw_dir") && e.contains("/nonexistent-intercore/qemu-r5f.elf"),
            "{e}"
        );
    }
}

/// A fake `/dev/mem`: a sparse regular file under `root/dev/mem` covering `pa + len`, which
/// `PhysCarveout::devmem` maps at offset `pa` as it would the device. Not the kernel's
/// /dev/mem (no STRICT_DEVMEM, no Device memory attributes): what it tests is the open
/// path — mapping, table, ring placement, doorbell — not the hardware.
fn fake_devmem(tag: &str, pa: u64, len: usize) -> std::path::PathBuf {
    let root = std::env::temp_dir().join(format!("intercore-open-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(root.join("dev")).unwrap();
    std::fs::create_dir_all(root.join("sys")).unwrap();
    let f = std::fs::File::create(root.join("dev/mem")).unwrap();
    f.set_len(pa + len as u64).unwrap();
    root
}

/// The core of a userspace board, already running (the bootloader started it, or
/// remoteproc did without the kernel's rpmsg bus): `Board::open` leaves it as it is.
fn running_core() -> FakeKernel {
    let rp = FakeKernel::new(&[FakeRproc::offline("78000000.r5f", "fw")]);
    rp.set_state(0, "running");
    rp
}

const USER_PA: u64 = 0x10_0000;
const USER_LEN: usize = 1 << 20;

fn user_board(extra: &str) -> Board {
    Board::from_str(&format!(
        "[board]\nname = \"u\"\narch = \"any\"\n[remoteproc]\nname = \"78000000.r5f\"\n[transport]\nkind = \"userspace\"\nbase = {USER_PA:#x}\nsize = {USER_LEN:#x}\n{extra}[memory]\nsource = \"carveout\"\nbase = 0x4000000\nsize = 0x2000000\n[cache]\nmode = \"coherent\"\n[rpmsg]\nwait = \"poll\"\nbuffers = 16\n"
    ))
    .unwrap()
}

/// The userspace transport against a fake /dev/mem and a remote role in a thread: the
/// firmware's table (rpmsg vdev, `vdev0buffer`, the intercore vendor entry of the polling
/// doorbell) is written into the carveout; `Board::open` maps it, validates the table,
/// sets the polling doorbell up from the vendor entry and starts the host bus; the remote
/// (`RemoteBus` over a second mapping of the same "physical" memory, its side of the same
/// doorbell) announces rpmsg-raw and echoes; 50 verified round trips cross the link.
#[test]
fn userspace_board_opens_over_devmem_with_the_polling_doorbell() {
    use intercore::SharedMemory;
    use intercore::pollbell::{PollDoorbell, PollSide};
    use intercore::rpmsg::layout::{CarveoutLayout, CarveoutSpec};
    use intercore::rpmsg::rsc_table::PolledRpmsgTable;
    use intercore::rpmsg::{RemoteBus, RscLocation};
    use intercore_board::LinuxPoll;
    use intercore_linux::{DevMemCaching, PhysCarveout, SysRoots};

    let root = fake_devmem("poll", USER_PA, USER_LEN);
    let roots = SysRoots::under(&root);
    let spec = CarveoutSpec {
        vring_num: 16,
        buf_size: 512,
        event_idx: false,
        da_base: USER_PA,
    };
    let layout = CarveoutLayout::new(&spec).unwrap();
    let bell_da = USER_PA as u32 + layout.total.next_multiple_of(64) as u32;
    let table = PolledRpmsgTable::new(&spec, USER_PA as u32 + 0x8_0000, 0x1_0000, bell_da, 2);
    let remote_mem = std::sync::Arc::new(
        PhysCarveout::devmem(&roots, USER_PA, USER_LEN, DevMemCaching::Uncached).unwrap(),
    );
    remote_mem.write(layout.rsc.offset, zerocopy::IntoBytes::as_bytes(&table));

    let b = user_board("");
    let rp = running_core();
    let env = OpenEnv {
        roots: roots.clone(),
        rproc: rp.paths(),
        ..OpenEnv::default()
    };
    let mut link = b.open_with(env).unwrap();
    assert_eq!(link.transport_name(), "userspace/poll");

    let map = remote_mem.identity_map();
    let rsc = RscLocation {
        offset: layout.rsc.offset,
        len: std::mem::size_of::<PolledRpmsgTable>(),
    };
    let entry = table.intercore.body;
    let remote = std::thread::spawn(move || -> Result<u64, String> {
        let bell = PollDoorbell::from_entry(
            std::sync::Arc::clone(&remote_mem),
            &map,
            &entry,
            PollSide::Remote,
            LinuxPoll,
        )
        .map_err(|e| e.to_string())?;
        let mut bus: RemoteBus<_, _, 4> = RemoteBus::new(
            remote_mem,
            bell,
            &map,
            rsc,
            RemoteConfig::default().wait(intercore::WaitMode::Poll),
        )
        .map_err(|e| e.to_string())?;
        bus.wait_ready(Some(Duration::from_secs(10)))
            .map_err(|e| e.to_string())?;
        let ep = bus
            .create_endpoint("rpmsg-raw", None)
            .map_err(|e| e.to_string())?;
        bus.announce(ep).map_err(|e| e.to_string())?;
        let mut buf = [0u8; 512];
        let mut echoed = 0;
        loop {
            match bus.recv_any_with(Some(Duration::from_secs(10)), |m| {
                (
                    m.src,
                    m.dst,
                    intercore::copy_from_shared(m.payload, &mut buf),
                )
            }) {
                Ok((src, _, n)) => {
                    bus.send_raw(ep, src, &buf[..n], Some(Duration::from_secs(10)))
                        .map_err(|e| e.to_string())?;
                    echoed += 1;
                }
                // The host reset the device (link closed).
                Err(_) => return Ok(echoed),
            }
        }
    });
    let svc = link
        .find_service("rpmsg-raw", Some(Duration::from_secs(10)))
        .unwrap();
    let ch = link.open("t", svc).unwrap();
    let mut back = [0u8; 496];
    for i in 0..50u8 {
        let msg = vec![i; 1 + i as usize * 9];
        link.send(&ch, &msg, Some(Duration::from_secs(10))).unwrap();
        let n = link
            .recv(&ch, &mut back, Some(Duration::from_secs(10)))
            .unwrap();
        assert_eq!(&back[..n], &msg[..]);
    }
    link.shut_down(Duration::from_secs(1)).unwrap();
    assert_eq!(remote.join().unwrap(), Ok(50));
    std::fs::remove_dir_all(&root).unwrap();
}

/// The userspace transport's failures name the key: no /dev/mem (transport.base), no
/// valid table at rsc_offset (transport.rsc_offset), and a UIO device that is not there
/// (transport.uio_device). A table without the intercore vendor entry opens with the
/// rings polled.
#[test]
fn userspace_board_failures_name_the_key() {
    use intercore::SharedMemory;
    use intercore::rpmsg::layout::CarveoutSpec;
    use intercore::rpmsg::rsc_table::RpmsgTable;
    use intercore_linux::{DevMemCaching, PhysCarveout, SysRoots};

    let rp = running_core();
    let env = |root: &std::path::Path| OpenEnv {
        roots: SysRoots::under(root),
        rproc: rp.paths(),
        ..OpenEnv::default()
    };
    let nowhere = std::env::temp_dir().join("intercore-open-none");
    let e = user_board("").open_with(env(&nowhere)).unwrap_err();
    assert!(
        matches!(
            e,
            OpenError::Config {
                key: "transport.base",
                ..
            }
        ),
        "{e}"
    );

    let root = fake_devmem("fail", USER_PA, USER_LEN);
    let e = user_board("").open_with(env(&root)).unwrap_err();
    assert!(
        matches!(
            e,
            OpenError::Config {
                key: "transport.rsc_offset",
                ..
            }
        ),
        "{e}"
    );

    let mem = PhysCarveout::devmem(
        &SysRoots::under(&root),
        USER_PA,
        USER_LEN,
        DevMemCaching::Uncached,
    )
    .unwrap();
    let spec = CarveoutSpec {
        vring_num: 16,
        buf_size: 512,
        event_idx: false,
        da_base: USER_PA,
    };
    mem.write(
        0,
        zerocopy::IntoBytes::as_bytes(&RpmsgTable::standard(&spec)),
    );
    // A table without the intercore vendor entry: no doorbell counters, so the rings are
    // polled (a vendor's firmware polls them too) — opened, not refused.
    let link = user_board("").open_with(env(&root)).unwrap();
    assert_eq!(link.transport_name(), "userspace/polled-rings");
    drop(link);

    let uio = user_board(
        "doorbell = \"uio\"\nuio_device = \"uio4\"\nmailbox = \"omap\"\nmbox_tx = 1\nmbox_rx = 0\nmbox_user = 1\n",
    );
    let e = uio.open_with(env(&root)).unwrap_err();
    assert!(
        matches!(
            e,
            OpenError::Config {
                key: "transport.uio_device",
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("uio4"), "{e}");
    std::fs::remove_dir_all(&root).unwrap();
}

/// A firmware laid out as vendors ship it, through the userspace transport: its table has
/// an rpmsg vdev with both vrings at `FW_RSC_ADDR_ANY`, no `vdev0buffer` carveout and no
/// intercore vendor entry (TI MCU+ SDK, Zephyr, OpenAMP tables). The board's `[vdev]` pool
/// is where the host allocates the rings and buffers as Linux's coherent pool does; with no
/// doorbell both sides poll the rings. The remote (`RemoteBus` with no doorbell, over a
/// second mapping) reads the ring addresses the host wrote back and echoes 40 verified
/// messages. Before `[vdev]` and the polled link existed this board was refused
/// (`transport.doorbell`: no vendor entry; no key for the buffers).
#[test]
fn userspace_board_opens_a_vendor_table_with_host_placed_rings_and_no_doorbell() {
    use intercore::SharedMemory;
    use intercore::pollbell::PolledRings;
    use intercore::rpmsg::{RemoteBus, RscLocation};
    use intercore_board::LinuxPoll;
    use intercore_linux::{DevMemCaching, PhysCarveout, SysRoots};

    let root = fake_devmem("vendor", USER_PA, USER_LEN);
    let roots = SysRoots::under(&root);
    // header (ver 1, one entry at 20), then the vdev: id 7, NS, two ANY vrings of 16.
    let mut t = vec![0u8; 16 + 4 + 4 + 24 + 2 * 20];
    t[0..4].copy_from_slice(&1u32.to_le_bytes());
    t[4..8].copy_from_slice(&1u32.to_le_bytes());
    t[16..20].copy_from_slice(&20u32.to_le_bytes());
    t[20..24].copy_from_slice(&3u32.to_le_bytes());
    t[24..28].copy_from_slice(&7u32.to_le_bytes());
    t[32..36].copy_from_slice(&1u32.to_le_bytes());
    t[45] = 2;
    for (i, notify) in [(0usize, 1u32), (1, 2)] {
        let r = 48 + 20 * i;
        t[r..r + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        t[r + 4..r + 8].copy_from_slice(&4096u32.to_le_bytes());
        t[r + 8..r + 12].copy_from_slice(&16u32.to_le_bytes());
        t[r + 12..r + 16].copy_from_slice(&notify.to_le_bytes());
    }
    let remote_mem = std::sync::Arc::new(
        PhysCarveout::devmem(&roots, USER_PA, USER_LEN, DevMemCaching::Uncached).unwrap(),
    );
    remote_mem.write(0, &t);
    let pool = USER_PA + 0x8_0000;
    let b = user_board(&format!(
        "[vdev]\npool_base = {pool:#x}\npool_size = 0x40000\n"
    ));
    let rp = running_core();
    let env = OpenEnv {
        roots: roots.clone(),
        rproc: rp.paths(),
        ..OpenEnv::default()
    };
    let map = remote_mem.identity_map();
    let rsc = RscLocation {
        offset: 0,
        len: t.len(),
    };
    let rm = std::sync::Arc::clone(&remote_mem);
    let remote = std::thread::spawn(move || -> Result<u64, String> {
        // As Zephyr's OpenAMP remote: buffers accepted anywhere in its shared window (here
        // the pool), wherever the host put them.
        let mut cfg = intercore::rpmsg::RemoteConfig::default().wait(intercore::WaitMode::Poll);
        cfg.buffers = Some(intercore::LinearMap {
            base: intercore::DevAddr(pool),
            offset: (pool - USER_PA) as usize,
            len: 0x40000,
        });
        let mut bus: RemoteBus<_, _, 4> =
            RemoteBus::new(rm, PolledRings::new(LinuxPoll), &map, rsc, cfg)
                .map_err(|e| e.to_string())?;
        bus.wait_ready(Some(Duration::from_secs(20)))
            .map_err(|e| e.to_string())?;
        let ep = bus
            .create_endpoint("rpmsg-raw", None)
            .map_err(|e| e.to_string())?;
        bus.announce(ep).map_err(|e| e.to_string())?;
        let mut buf = [0u8; 512];
        let mut echoed = 0;
        loop {
            match bus.recv_any_with(Some(Duration::from_secs(10)), |m| {
                (
                    m.src,
                    m.dst,
                    intercore::copy_from_shared(m.payload, &mut buf),
                )
            }) {
                Ok((src, _, n)) => {
                    bus.send_raw(ep, src, &buf[..n], Some(Duration::from_secs(10)))
                        .map_err(|e| e.to_string())?;
                    echoed += 1;
                }
                Err(_) => return Ok(echoed),
            }
        }
    });
    let mut link = b.open_with(env).unwrap();
    assert_eq!(link.transport_name(), "userspace/polled-rings");
    // The host wrote the rings' addresses back where Linux's allocator puts them:
    // 16-entry rings aligned to 4096 are two pages each (order 1): +0 and +0x2000.
    let da = |off: usize| {
        let mut w = [0u8; 4];
        remote_mem.read(off, &mut w);
        u32::from_le_bytes(w) as u64
    };
    assert_eq!((da(48), da(68)), (pool, pool + 0x2000));
    let svc = match link.find_service("rpmsg-raw", Some(Duration::from_secs(20))) {
        Ok(s) => s,
        Err(e) => {
            drop(link);
            panic!("{e}; the remote: {:?}", remote.join());
        }
    };
    let ch = link.open("t", svc).unwrap();
    let mut back = [0u8; 496];
    for i in 0..40u8 {
        let msg = vec![i; 1 + i as usize * 12];
        link.send(&ch, &msg, Some(Duration::from_secs(10))).unwrap();
        let n = link
            .recv(&ch, &mut back, Some(Duration::from_secs(10)))
            .unwrap();
        assert_eq!(&back[..n], &msg[..]);
    }
    link.shut_down(Duration::from_secs(1)).unwrap();
    assert_eq!(remote.join().unwrap(), Ok(40));
    std::fs::remove_dir_all(&root).unwrap();
}
