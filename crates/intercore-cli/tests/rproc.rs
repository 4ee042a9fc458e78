//! `intercore rproc` run as a user would, against a fake sysfs/dev tree whose "kernel"
//! thread (`intercore_linux::remoteproc::fake`) follows `remoteproc_sysfs.c`,
//! `remoteproc_cdev.c` and `remoteproc_core.c`. The firmware loaded is the `intercore`
//! binary itself: a real ELF carrying a resource table.

use intercore_linux::remoteproc::fake::{FakeKernel, FakeRproc};
use std::path::Path;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_intercore");

fn rproc(k: &FakeKernel, args: &[&str]) -> Output {
    let root = k.root();
    Command::new(BIN)
        .arg("rproc")
        .args(args)
        .args(["--sysfs", root.join("sys").to_str().unwrap()])
        .args(["--dev", root.join("dev").to_str().unwrap()])
        .output()
        .unwrap()
}

fn ok(out: &Output) -> String {
    let s = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{s}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    s
}

fn fails(out: &Output) -> String {
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn soc() -> FakeKernel {
    FakeKernel::new(&[
        FakeRproc::offline("78000000.r5f", "am64-main-r5f0_0-fw"),
        FakeRproc::offline("5000000.m4fss", "am64-mcu-m4f0_0-fw"),
    ])
}

/// A copy of the `intercore` binary under another name, as the firmware to load.
fn firmware(k: &FakeKernel, name: &str) -> String {
    let dir = k.root().join("build");
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::copy(BIN, &p).unwrap();
    p.to_str().unwrap().to_string()
}

/// sysfs-class-remoteproc: `list` shows every remoteprocN with name, state and firmware;
/// `--json` the same as one JSON array.
#[test]
fn list_shows_every_core() {
    let k = soc();
    let out = ok(&rproc(&k, &["list"]));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(lines[0].starts_with("remoteproc0") && lines[0].contains("78000000.r5f"));
    assert!(lines[0].contains("offline") && lines[0].contains("am64-main-r5f0_0-fw"));
    assert!(lines[1].starts_with("remoteproc1") && lines[1].contains("5000000.m4fss"));
    let json = ok(&rproc(&k, &["list", "--json"]));
    assert!(
        json.contains(
            "{\"index\":1,\"id\":\"remoteproc1\",\"name\":\"5000000.m4fss\",\"state\":\"offline\",\"firmware\":\"am64-mcu-m4f0_0-fw\"}"
        ),
        "{json}"
    );
    let empty = FakeKernel::new(&[]);
    assert!(ok(&rproc(&empty, &["list"])).contains("no remote processors"));
}

/// The documented workflow: `load` installs the ELF in the directory firmware_class.path
/// names and writes its name to `firmware` (allowed while offline); `start` → running;
/// while running, `load` is refused — the kernel changes firmware only while offline
/// (EBUSY) — and neither the installed file nor `firmware` changes; `stop` → offline;
/// a second `stop` is the kernel's EINVAL. The kernel never saw a write it would refuse.
#[test]
fn load_start_refuse_stop() {
    let k = soc();
    let fw = firmware(&k, "r5f-offload.elf");
    let out = ok(&rproc(&k, &["load", &fw, "--rproc", "0"]));
    assert!(out.contains("firmware = r5f-offload.elf"), "{out}");
    let installed = k.firmware_dir().join("r5f-offload.elf");
    assert_eq!(
        std::fs::read(&installed).unwrap(),
        std::fs::read(BIN).unwrap()
    );
    k.settle();
    assert_eq!(k.firmware(0), "r5f-offload.elf");

    let out = ok(&rproc(&k, &["start", "--rproc", "78000000.r5f"]));
    assert!(out.contains("remoteproc0 (78000000.r5f): running"), "{out}");
    assert_eq!(k.state(0), "running");

    let other = firmware(&k, "other.elf");
    let err = fails(&rproc(&k, &["load", &other, "--rproc", "0"]));
    assert!(
        err.contains("running") && err.contains("EBUSY") && err.contains("stop it first"),
        "{err}"
    );
    assert!(!k.firmware_dir().join("other.elf").exists());
    let err = fails(&rproc(&k, &["start", "--rproc", "0"]));
    assert!(err.contains("already running"), "{err}");
    k.settle();
    assert_eq!(k.firmware(0), "r5f-offload.elf");

    let out = ok(&rproc(&k, &["stop", "--rproc", "0"]));
    assert!(out.contains("offline"), "{out}");
    let err = fails(&rproc(&k, &["stop", "--rproc", "0"]));
    assert!(err.contains("EINVAL"), "{err}");
    assert!(k.refusals().is_empty(), "{:?}", k.log());
}

/// remoteproc_cdev.c: `--control cdev` writes the command to /dev/remoteprocN; `load
/// --start --name` installs under another name and boots it in one go; `--firmware-dir`
/// overrides the search directory.
#[test]
fn cdev_control_and_load_start() {
    let k = soc();
    let fw = firmware(&k, "m4.elf");
    let out = ok(&rproc(
        &k,
        &[
            "load",
            &fw,
            "--rproc",
            "1",
            "--name",
            "m4-fw",
            "--start",
            "--control",
            "cdev",
        ],
    ));
    assert!(out.contains("running"), "{out}");
    assert!(
        k.log()
            .iter()
            .any(|l| l == "remoteproc1: cdev start -> running"),
        "{:?}",
        k.log()
    );
    assert!(k.firmware_dir().join("m4-fw").exists());
    ok(&rproc(&k, &["stop", "--rproc", "1", "--control", "cdev"]));
    assert_eq!(k.state(1), "offline");

    let other_dir = k.root().join("elsewhere");
    std::fs::create_dir(&other_dir).unwrap();
    let out = ok(&rproc(
        &k,
        &[
            "load",
            &fw,
            "--rproc",
            "1",
            "--firmware-dir",
            other_dir.to_str().unwrap(),
        ],
    ));
    assert!(out.contains(other_dir.to_str().unwrap()), "{out}");
    assert!(other_dir.join("m4.elf").exists());
    assert!(k.refusals().is_empty(), "{:?}", k.log());
}

/// Selecting a core: an unknown one is ENOENT with the list of what exists; none chosen
/// among several asks for --rproc; a core that is not attached cannot be detached.
#[test]
fn selection_and_state_errors() {
    let k = soc();
    let err = fails(&rproc(&k, &["start", "--rproc", "9"]));
    assert!(
        err.contains("ENOENT") && err.contains("remoteproc1 (5000000.m4fss)"),
        "{err}"
    );
    let err = fails(&rproc(&k, &["stop"]));
    assert!(err.contains("--rproc"), "{err}");
    let err = fails(&rproc(&k, &["detach", "--rproc", "0"]));
    assert!(err.contains("EINVAL") && err.contains("offline"), "{err}");
    k.set_state(0, "attached");
    assert!(ok(&rproc(&k, &["detach", "--rproc", "0"])).contains("detached"));
}

/// rproc_elf_sanity_check / rproc_elf_load_segments: a corrupted ELF is refused before
/// it is installed, with the problem and its offset.
#[test]
fn corrupted_firmware_is_refused() {
    let k = soc();
    let fw = firmware(&k, "bad.elf");
    let mut bytes = std::fs::read(&fw).unwrap();
    bytes[4] = 7; // EI_CLASS
    std::fs::write(&fw, bytes).unwrap();
    let err = fails(&rproc(&k, &["load", &fw, "--rproc", "0"]));
    assert!(
        err.contains("not loadable firmware") && err.contains("offset 0x4"),
        "{err}"
    );
    assert!(!Path::new(&k.firmware_dir().join("bad.elf")).exists());
}

/// Usage errors are exit 2.
#[test]
fn usage_errors() {
    let k = soc();
    for args in [
        &["frob"][..],
        &["load"],
        &["start", "--timeout", "soon"],
        &["list", "--start"],
    ] {
        let out = rproc(&k, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
}
