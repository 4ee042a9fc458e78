//! remoteproc control against a fake sysfs/dev tree whose "kernel" thread follows
//! `remoteproc_sysfs.c`, `remoteproc_cdev.c` and `remoteproc_core.c` (see
//! `intercore_linux::remoteproc::fake`). Nothing here touches the real /sys or /dev.

use intercore_linux::remoteproc::fake::{FakeKernel, FakeRproc};
use intercore_linux::remoteproc::{Control, Remoteproc, RprocError, RprocState};
use std::path::PathBuf;
use std::time::Duration;

const T: Duration = Duration::from_secs(5);

/// A minimal valid ELF64 firmware: one PT_LOAD of `code` at device address 0x1000, no
/// sections (so no resource table — which the kernel accepts).
fn tiny_elf(code: &[u8]) -> Vec<u8> {
    let mut v = vec![0u8; 64 + 56];
    v[..4].copy_from_slice(b"\x7fELF");
    v[4] = 2; // ELFCLASS64
    v[5] = 1; // little-endian
    v[6] = 1;
    v[16..18].copy_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    v[18..20].copy_from_slice(&40u16.to_le_bytes()); // EM_ARM
    v[20..24].copy_from_slice(&1u32.to_le_bytes());
    v[24..32].copy_from_slice(&0x1000u64.to_le_bytes()); // e_entry
    v[32..40].copy_from_slice(&64u64.to_le_bytes()); // e_phoff
    v[52..54].copy_from_slice(&64u16.to_le_bytes()); // e_ehsize
    v[54..56].copy_from_slice(&56u16.to_le_bytes()); // e_phentsize
    v[56..58].copy_from_slice(&1u16.to_le_bytes()); // e_phnum
    let p = 64;
    v[p..p + 4].copy_from_slice(&1u32.to_le_bytes()); // PT_LOAD
    v[p + 8..p + 16].copy_from_slice(&120u64.to_le_bytes()); // p_offset
    v[p + 16..p + 24].copy_from_slice(&0x1000u64.to_le_bytes());
    v[p + 24..p + 32].copy_from_slice(&0x1000u64.to_le_bytes()); // p_paddr
    v[p + 32..p + 40].copy_from_slice(&(code.len() as u64).to_le_bytes());
    v[p + 40..p + 48].copy_from_slice(&(code.len() as u64 + 64).to_le_bytes());
    v.extend_from_slice(code);
    v
}

fn write_fw(k: &FakeKernel, name: &str, bytes: &[u8]) -> PathBuf {
    let dir = k.root().join("build");
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn two() -> FakeKernel {
    FakeKernel::new(&[
        FakeRproc::offline("78000000.r5f", "am64-main-r5f0_0-fw"),
        FakeRproc::offline("5000000.m4fss", "am64-mcu-m4f0_0-fw"),
    ])
}

/// sysfs-class-remoteproc: every /sys/class/remoteproc/remoteprocN is listed with its
/// name, state and firmware; a core is selected by N, `remoteprocN` or its name; a
/// selector that matches nothing is ENOENT with the list of what exists; no selector with
/// several cores asks for one.
#[test]
fn discovers_and_selects() {
    let k = two();
    let paths = k.paths();
    let all = Remoteproc::list(&paths).unwrap();
    assert_eq!(all.len(), 2);
    let info = all[1].info().unwrap();
    assert_eq!(
        (
            info.index,
            info.name.as_str(),
            &info.state,
            info.firmware.as_str()
        ),
        (
            1,
            "5000000.m4fss",
            &RprocState::Offline,
            "am64-mcu-m4f0_0-fw"
        )
    );
    for sel in ["1", "remoteproc1", "5000000.m4fss"] {
        assert_eq!(
            Remoteproc::open(&paths, Some(sel)).unwrap().index(),
            1,
            "{sel}"
        );
    }
    let e = Remoteproc::open(&paths, Some("7")).unwrap_err();
    assert!(matches!(e, RprocError::NoSuchRproc { .. }), "{e:?}");
    assert!(e.to_string().contains("remoteproc0 (78000000.r5f)"), "{e}");
    assert!(matches!(
        Remoteproc::open(&paths, None),
        Err(RprocError::Ambiguous { .. })
    ));
    let none = FakeKernel::new(&[]);
    let e = Remoteproc::open(&none.paths(), None).unwrap_err();
    assert!(e.to_string().contains("none exist"), "{e}");
}

/// The documented sequence (sysfs-class-remoteproc, `rproc_set_firmware`, `rproc_boot`):
/// install the firmware where the kernel looks (firmware_class.path), name it in
/// `firmware` while offline, write `start` → running, `stop` → offline. While running, a
/// firmware change is refused before anything is written or installed (the kernel's
/// EBUSY) and the error names the state; the kernel saw no refused write at all.
#[test]
fn load_start_refuse_change_stop() {
    let k = two();
    let r = Remoteproc::open(&k.paths(), Some("0")).unwrap();
    let fw = write_fw(&k, "echo.elf", &tiny_elf(&[1, 2, 3, 4]));
    let loaded = r.load(&fw, None).unwrap();
    assert_eq!(loaded.installed, k.firmware_dir().join("echo.elf"));
    assert_eq!(
        std::fs::read(&loaded.installed).unwrap(),
        std::fs::read(&fw).unwrap()
    );
    k.settle();
    assert_eq!(r.firmware().unwrap(), "echo.elf");
    assert_eq!(k.firmware(0), "echo.elf");

    assert_eq!(r.start(Control::Sysfs, T).unwrap(), RprocState::Running);
    assert_eq!(k.state(0), "running");

    let other = write_fw(&k, "echo.elf", &tiny_elf(&[9, 9]));
    let e = r.load(&other, None).unwrap_err();
    match &e {
        RprocError::WrongState { state, errno, .. } => {
            assert_eq!((state, *errno), (&RprocState::Running, "EBUSY"))
        }
        e => panic!("{e:?}"),
    }
    assert!(e.to_string().contains("stop it first"), "{e}");
    assert_eq!(
        std::fs::read(&loaded.installed).unwrap(),
        tiny_elf(&[1, 2, 3, 4]),
        "the running core's file was not replaced"
    );
    assert!(matches!(
        r.set_firmware("x.elf"),
        Err(RprocError::WrongState { .. })
    ));
    assert_eq!(k.firmware(0), "echo.elf");

    assert_eq!(r.stop(Control::Sysfs, T).unwrap(), RprocState::Offline);
    assert!(k.refusals().is_empty(), "{:?}", k.log());
    // Offline again: the change is accepted.
    r.set_firmware("x.elf").unwrap();
    k.settle();
    assert_eq!(k.firmware(0), "x.elf");
}

/// `state_store`/`rproc_shutdown`/`rproc_detach`: start while running is EBUSY (and from
/// Linux 6.4 would silently take a second power reference — so it is refused before the
/// write), stop while offline and detach while running are EINVAL; the kernel receives
/// none of these writes.
#[test]
fn wrong_state_commands_are_refused_before_the_write() {
    let k = two();
    let r = Remoteproc::open(&k.paths(), Some("78000000.r5f")).unwrap();
    let e = r.stop(Control::Sysfs, T).unwrap_err();
    assert!(
        matches!(
            e,
            RprocError::WrongState {
                errno: "EINVAL",
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("offline"), "{e}");
    let fw = write_fw(&k, "a.elf", &tiny_elf(&[0; 8]));
    r.load(&fw, None).unwrap();
    r.start(Control::Sysfs, T).unwrap();
    let e = r.start(Control::Sysfs, T).unwrap_err();
    assert!(
        matches!(e, RprocError::WrongState { errno: "EBUSY", .. }),
        "{e:?}"
    );
    let e = r.detach(Control::Sysfs, T).unwrap_err();
    assert!(
        matches!(
            e,
            RprocError::WrongState {
                errno: "EINVAL",
                ..
            }
        ),
        "{e:?}"
    );
    assert!(k.refusals().is_empty(), "{:?}", k.log());
    assert_eq!(
        k.log().iter().filter(|l| l.contains("start")).count(),
        1,
        "one start reached the kernel: {:?}",
        k.log()
    );
}

/// remoteproc_cdev.c: /dev/remoteprocN takes "start"/"stop" written without a newline
/// (`strncmp(cmd, "start", len)`); the same state rules apply.
#[test]
fn char_device_control() {
    let k = two();
    let r = Remoteproc::open(&k.paths(), Some("1")).unwrap();
    let fw = write_fw(&k, "m4.elf", &tiny_elf(&[7; 16]));
    r.load(&fw, Some("m4-custom.elf")).unwrap();
    k.settle();
    assert_eq!(k.firmware(1), "m4-custom.elf");
    assert_eq!(r.start(Control::Cdev, T).unwrap(), RprocState::Running);
    assert!(
        k.log()
            .iter()
            .any(|l| l == "remoteproc1: cdev start -> running"),
        "{:?}",
        k.log()
    );
    assert_eq!(r.stop(Control::Cdev, T).unwrap(), RprocState::Offline);
    assert!(k.refusals().is_empty(), "{:?}", k.log());
    // The kernel's parser: a newline makes the command unrecognised.
    std::fs::write(r.dev_path(), b"start\n").unwrap();
    k.settle();
    assert_eq!(k.state(1), "offline");
    assert!(
        k.refusals().iter().any(|l| l.contains("EINVAL")),
        "{:?}",
        k.log()
    );
}

/// IPC-only / early-boot cores (`rproc_attach`, `rproc_detach`): a core started by the
/// bootloader is `attached`; `detach` leaves it running as `detached`; `start` attaches
/// again (no firmware is loaded); `stop` of an attached core shuts it down.
#[test]
fn attach_and_detach() {
    let k = two();
    k.set_state(0, "attached");
    let r = Remoteproc::open(&k.paths(), Some("0")).unwrap();
    assert_eq!(r.detach(Control::Sysfs, T).unwrap(), RprocState::Detached);
    assert_eq!(r.start(Control::Sysfs, T).unwrap(), RprocState::Attached);
    assert_eq!(r.stop(Control::Sysfs, T).unwrap(), RprocState::Offline);
    assert!(k.refusals().is_empty(), "{:?}", k.log());
}

/// Waiting for a state is bounded: a slow boot is waited for; one slower than the
/// timeout is an error naming the state it was still in.
#[test]
fn waiting_is_bounded() {
    let k = two();
    let r = Remoteproc::open(&k.paths(), Some("0")).unwrap();
    r.load(&write_fw(&k, "s.elf", &tiny_elf(&[1])), None)
        .unwrap();
    k.set_boot_delay(Duration::from_millis(150));
    assert_eq!(r.start(Control::Sysfs, T).unwrap(), RprocState::Running);
    r.stop(Control::Sysfs, T).unwrap();
    k.set_boot_delay(Duration::from_secs(2));
    let t0 = std::time::Instant::now();
    let e = r
        .start(Control::Sysfs, Duration::from_millis(100))
        .unwrap_err();
    assert!(t0.elapsed() < Duration::from_secs(1));
    match e {
        RprocError::Timeout { last, .. } => assert_eq!(last, RprocState::Offline),
        e => panic!("{e:?}"),
    }
}

/// rproc_elf_sanity_check / rproc_elf_load_segments: a file that is not valid ELF
/// firmware is refused before it is installed, with the offset of the problem; the
/// kernel's own refusal of a bad image (`start` on a bad file put there by hand) leaves
/// the core offline.
#[test]
fn bad_firmware_is_not_installed() {
    let k = two();
    let r = Remoteproc::open(&k.paths(), Some("0")).unwrap();
    let mut bad = tiny_elf(&[1, 2, 3]);
    bad[64 + 40..64 + 48].copy_from_slice(&1u64.to_le_bytes()); // memsz < filesz
    let f = write_fw(&k, "bad.elf", &bad);
    let e = r.load(&f, None).unwrap_err();
    assert!(matches!(e, RprocError::BadFirmware { .. }), "{e:?}");
    assert!(e.to_string().contains("offset 0x60"), "{e}");
    assert!(!k.firmware_dir().join("bad.elf").exists());
    k.settle();
    assert_eq!(k.firmware(0), "am64-main-r5f0_0-fw");
    for name in ["", "a/b", "x\ny"] {
        assert!(
            matches!(r.set_firmware(name), Err(RprocError::BadName(_))),
            "{name:?}"
        );
    }
    // The default firmware is not installed: the kernel's request_firmware fails.
    assert!(r.start(Control::Sysfs, Duration::from_millis(200)).is_err());
    assert!(
        k.refusals().iter().any(|l| l.contains("ENOENT")),
        "{:?}",
        k.log()
    );
    assert_eq!(k.state(0), "offline");
}

/// A kernel without CONFIG_REMOTEPROC_CDEV has no /dev/remoteprocN: `--control cdev`
/// says so and points at sysfs; a remote processor whose sysfs directory vanished (driver
/// unbound) is reported as gone, not as a permission or I/O problem.
#[test]
fn missing_cdev_and_vanished_rproc() {
    let k = two();
    let r = Remoteproc::open(&k.paths(), Some("0")).unwrap();
    r.load(&write_fw(&k, "a.elf", &tiny_elf(&[1])), None)
        .unwrap();
    std::fs::remove_file(r.dev_path()).unwrap();
    let e = r.start(Control::Cdev, T).unwrap_err();
    assert!(matches!(e, RprocError::NoCdev { .. }), "{e:?}");
    assert!(e.to_string().contains("--control sysfs"), "{e}");
    k.unplug(0);
    let e = r.state().unwrap_err();
    assert!(matches!(e, RprocError::Gone { .. }), "{e:?}");
}

/// Issue 12, recovery (remoteproc_core.c `rproc_report_crash` → `rproc_crash_handler_work`
/// → `rproc_trigger_recovery`; remoteproc_sysfs.c `recovery_store`): with `recovery`
/// enabled the kernel restarts a crashed core by itself and `recover` only waits for it;
/// with it disabled the core stays `crashed` until `recover` writes `recover`, which
/// reloads the firmware and runs it once. Nothing the kernel would refuse is written.
#[test]
fn crashed_core_is_recovered() {
    let k = two();
    let r = Remoteproc::open(&k.paths(), Some("0")).unwrap();
    let fw = write_fw(&k, "echo.elf", &tiny_elf(&[1, 2, 3, 4]));
    r.load(&fw, None).unwrap();
    k.settle();
    assert_eq!(r.start(Control::Sysfs, T).unwrap(), RprocState::Running);

    // Recovery enabled (the kernel's default): the kernel brings it back.
    assert_eq!(r.recovery().unwrap(), "enabled");
    k.crash(0);
    assert_eq!(r.recover(T).unwrap(), RprocState::Running);
    assert!(
        k.log()
            .iter()
            .any(|l| l.contains("crash handler: recovering"))
    );

    // Recovery disabled: it stays crashed until asked.
    std::fs::write(r.sysfs_dir().join("recovery"), "disabled").unwrap();
    k.settle();
    assert_eq!(r.recovery().unwrap(), "disabled");
    k.crash(0);
    k.settle();
    k.settle();
    assert_eq!(
        r.state().unwrap(),
        RprocState::Crashed,
        "no recovery while disabled"
    );
    assert_eq!(r.recover(T).unwrap(), RprocState::Running);
    assert!(
        k.log()
            .iter()
            .any(|l| l.contains("recovery_store: recovering"))
    );
    assert_eq!(r.recovery().unwrap(), "disabled", "the setting is kept");
    assert!(k.refusals().is_empty(), "{:?}", k.refusals());
}
