//! `intercore board check` run as a user would: on every shipped board file, on invalid
//! files, and against a fake AM64x tree (`intercore_linux::remoteproc::fake` plus
//! reserved-memory nodes and device nodes), with the `intercore` binary itself as the
//! firmware file (a real ELF carrying the offload firmware's resource table).

use intercore_linux::remoteproc::fake::{FakeKernel, FakeRproc};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_intercore");

fn boards_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../boards")
}

fn board(args: &[&str]) -> Output {
    Command::new(BIN).arg("board").args(args).output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Every file in boards/ is reported valid (exit 0) with its summary and the findings for
/// this machine, whatever the machine lacks.
#[test]
fn every_shipped_board_checks_valid() {
    let mut n = 0;
    for e in std::fs::read_dir(boards_dir()).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        n += 1;
        let out = board(&["check", p.to_str().unwrap()]);
        let s = stdout(&out);
        assert!(out.status.success(), "{}: {s}{}", p.display(), stderr(&out));
        assert!(s.contains(": valid"), "{s}");
        assert!(s.contains("on this machine"), "{s}");
        assert!(s.contains("mapping") && s.contains("cache"), "{s}");
    }
    assert!(n >= 4);
}

/// An invalid file exits 1 and names each problem's key on stderr; a syntax error names
/// the line and the key.
#[test]
fn invalid_file_exits_1_naming_the_keys() {
    let dir = std::env::temp_dir().join(format!("intercore-cli-board-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let am64 = std::fs::read_to_string(boards_dir().join("ti-am64x-r5f.toml")).unwrap();
    let bad = dir.join("bad.toml");
    std::fs::write(
        &bad,
        am64.replace("mode = \"coherent\"", "mode = \"arm64-el0\"")
            .replace("arch = \"aarch64\"", "arch = \"x86_64\""),
    )
    .unwrap();
    let out = board(&["check", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let e = stderr(&out);
    assert!(e.contains("bad.toml"), "{e}");
    assert!(
        e.contains("cache.mode = \"arm64-el0\": needs an aarch64 host"),
        "{e}"
    );
    std::fs::write(&bad, am64.replacen("[memory]", "[memory]\nsizee = 4096", 1)).unwrap();
    let out = board(&["check", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let e = stderr(&out);
    assert!(
        e.contains("memory.sizee: unknown key") && e.contains("\"size\""),
        "{e}"
    );
    assert!(e.contains("line "), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// No FILE, or an unknown subcommand, is a usage error (exit 2).
#[test]
fn usage_errors_exit_2() {
    assert_eq!(board(&["check"]).status.code(), Some(2));
    assert_eq!(board(&["open", "x.toml"]).status.code(), Some(2));
}

/// Checked against a fake AM64x (remote processors, reserved-memory nodes, /dev/mem,
/// /dev/rpmsg_ctrl0) with a firmware file to install, the AM64x board has no error:
/// the remote processor, the carveout and its device addresses, the rpmsg control device
/// and the firmware's resource table (rpmsg vdev with 256-entry vrings) are all found.
/// On this bare machine, --strict turns "cannot open here" into exit 3.
#[test]
fn check_against_a_fake_am64x() {
    let k = FakeKernel::new(&[
        FakeRproc::offline("5000000.m4fss", "am64-mcu-m4f0_0-fw"),
        FakeRproc::offline("78000000.r5f", "am64-main-r5f0_0-fw"),
    ]);
    let root = k.root();
    let node = root.join("proc/device-tree/reserved-memory/intercore-pool@a6000000");
    std::fs::create_dir_all(&node).unwrap();
    let mut reg = 0xa600_0000u64.to_be_bytes().to_vec();
    reg.extend_from_slice(&0x200_0000u64.to_be_bytes());
    std::fs::write(node.join("reg"), reg).unwrap();
    std::fs::write(node.join("no-map"), b"").unwrap();
    std::fs::write(root.join("dev/mem"), b"").unwrap();
    std::fs::write(root.join("dev/rpmsg_ctrl0"), b"").unwrap();
    // The board file, with this binary as the firmware to install.
    let am64 = std::fs::read_to_string(boards_dir().join("ti-am64x-r5f.toml")).unwrap();
    let file = root.join("board.toml");
    std::fs::write(
        &file,
        am64.replace(
            "# firmware_file = \"../target/armv7r-none-eabihf/release/echo\"",
            &format!("firmware_file = {BIN:?}"),
        ),
    )
    .unwrap();
    let args = |strict: bool| {
        let mut v = vec![
            "check".to_string(),
            file.to_str().unwrap().to_string(),
            "--sysfs".into(),
            root.join("sys").to_str().unwrap().into(),
            "--dev".into(),
            root.join("dev").to_str().unwrap().into(),
            "--device-tree".into(),
            root.join("proc/device-tree").to_str().unwrap().into(),
            "--arch".into(),
            "aarch64".into(),
        ];
        if strict {
            v.push("--strict".into());
        }
        v
    };
    let a = args(true);
    let out = board(&a.iter().map(String::as_str).collect::<Vec<_>>());
    let s = stdout(&out);
    assert!(out.status.success(), "{s}{}", stderr(&out));
    assert!(!s.contains("[error]"), "{s}");
    assert!(s.contains("remoteproc1 (78000000.r5f): offline"), "{s}");
    assert!(s.contains("ELF with a valid resource table"), "{s}");
    assert!(s.contains("rpmsg vdev with 256-entry vrings"), "{s}");
    assert!(
        s.contains("would map 0xa6000000+0x2000000 through /dev/mem (no-map)"),
        "{s}"
    );
    assert!(
        s.contains("the remote sees the pool at 0xa6000000..0xa8000000"),
        "{s}"
    );
    assert!(s.contains("nothing stops this machine"), "{s}");
    // The same board against an empty tree: valid, but not openable here.
    let empty = root.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let out = board(&[
        "check",
        file.to_str().unwrap(),
        "--sysfs",
        empty.to_str().unwrap(),
        "--dev",
        empty.to_str().unwrap(),
        "--device-tree",
        empty.to_str().unwrap(),
        "--strict",
    ]);
    assert_eq!(out.status.code(), Some(3), "{}", stdout(&out));
    assert!(
        stdout(&out).contains("cannot open the board"),
        "{}",
        stdout(&out)
    );
}
