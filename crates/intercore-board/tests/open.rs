//! `Board::open` for the kernel transport, against intercore-linux's fake remoteproc tree
//! and fake rpmsg kernel (feature `test-utils`): remoteproc selects the board's firmware
//! and starts the core (`state_store` → `rproc_boot`), the control device is waited for,
//! and the link is `KernelRpmsg` through which an echo round trip runs. Follows
//! `remoteproc_sysfs.c` (firmware, state) and `rpmsg_char.c`/`rpmsg_ctrl.c` as the fakes
//! model them. No hardware: what a real kernel adds (probe order, udev) is not covered.

use intercore::rpmsg::Transport;
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
    let ch = Transport::open(&mut link, "t", remote).unwrap();
    link.send(&ch, b"hello", None).unwrap();
    let mut buf = [0u8; 496];
    let n = link
        .recv(&ch, &mut buf, Some(Duration::from_secs(2)))
        .unwrap();
    assert_eq!(&buf[..n], b"hello");
    Transport::close(&mut link, ch).unwrap();
    link.close(Duration::from_secs(1)).unwrap();
    let writes = rp.log().len();
    let link = b.open_with(env(&rp, &k)).unwrap();
    assert_eq!(rp.state(0), "running");
    assert_eq!(rp.log().len(), writes, "{:?}", rp.log());
    drop(link);
}

/// Failures name the board key: a remote processor that does not exist
/// (`remoteproc.name`), a control device that never appears (`transport.ctrl`), and the
/// userspace transport, which is not wired yet (`transport.kind`).
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

    let user = REAL.replace(
        "kind = \"kernel\"",
        "kind = \"userspace\"\nbase = 0xa0000000\nsize = 0x100000",
    ) + "[rpmsg]\nwait = \"poll\"\n";
    let b = Board::from_str(&user).unwrap();
    let e = b.open().unwrap_err();
    assert!(
        matches!(
            e,
            OpenError::NotBuilt {
                key: "transport.kind",
                ..
            }
        ),
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
    let q = "[board]\nname = \"q\"\n[transport]\nkind = \"qemu\"\ncore = \"r5f\"\nfw_dir = \"/nonexistent-intercore\"\n[memory]\nsource = \"memfd\"\n[cache]\nmode = \"coherent\"\n";
    let e = Board::from_str(q).unwrap().open().unwrap_err().to_string();
    assert!(
        e.starts_with("transport.fw_dir") && e.contains("/nonexistent-intercore/qemu-r5f.elf"),
        "{e}"
    );
}
