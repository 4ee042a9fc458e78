//! The files intercore writes and reads, against what issue 20.8 found: `bench --plot` into
//! a FIFO (hung after the run), through a symbolic link (overwrote its target) and over a
//! file it did not write; `up`'s log through a link planted in its own directory
//! (truncated the target); `rproc load --firmware-dir` creating a directory nobody asked
//! for; `rsc` reading a 256 MiB file whole before saying "not an ELF"; `kernel-echo --ctrl`
//! opening any path.

use intercore_linux::remoteproc::fake::{FakeKernel, FakeRproc};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_intercore");

fn scratch(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("intercore-files-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700)).unwrap();
    d
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Runs `cmd`, killing it after `limit` (a hang is a failure, not a stuck test).
fn run_within(cmd: &mut Command, limit: Duration) -> (Output, Duration) {
    let t = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    while child.try_wait().unwrap().is_none() {
        if t.elapsed() > limit {
            let _ = child.kill();
            let o = child.wait_with_output().unwrap();
            panic!("still running after {limit:?}: {}", text(&o));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    (child.wait_with_output().unwrap(), t.elapsed())
}

fn mkfifo(p: &Path) {
    let ok = Command::new("mkfifo")
        .arg(p)
        .status()
        .expect("mkfifo (coreutils) makes the FIFO");
    assert!(ok.success());
}

/// `bench --plot` refuses a FIFO, a symbolic link and a regular file it did not write
/// (saying `--force` replaces that one) at once, before measuring, and leaves each as it
/// was. Before: the FIFO hung the command after the run, the link's target and the file
/// were overwritten.
#[test]
fn bench_plot_refuses_fifos_links_and_files_it_did_not_write() {
    let d = scratch("plot");
    let fifo = d.join("fifo.svg");
    mkfifo(&fifo);
    let victim = d.join("victim.txt");
    std::fs::write(&victim, b"precious").unwrap();
    let link = d.join("link.svg");
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    let foreign = d.join("mine.svg");
    std::fs::write(&foreign, b"<svg>the user's own</svg>").unwrap();
    for (target, says) in [
        (&fifo, "a FIFO"),
        (&link, "symbolic link"),
        (&foreign, "--force replaces it"),
    ] {
        let (o, dt) = run_within(
            Command::new(BIN).args([
                "bench",
                "rtt",
                "--samples",
                "100",
                "--plot",
                target.to_str().unwrap(),
            ]),
            Duration::from_secs(120),
        );
        assert_eq!(o.status.code(), Some(1), "{}", text(&o));
        assert!(
            String::from_utf8_lossy(&o.stderr).contains(says),
            "{}",
            text(&o)
        );
        assert!(
            dt < Duration::from_secs(5),
            "refused after {dt:?}: measured first?"
        );
    }
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    assert_eq!(
        std::fs::read(&foreign).unwrap(),
        b"<svg>the user's own</svg>"
    );
    use std::os::unix::fs::FileTypeExt;
    assert!(
        std::fs::symlink_metadata(&fifo)
            .unwrap()
            .file_type()
            .is_fifo()
    );
    let _ = std::fs::remove_dir_all(&d);
}

/// `up` writes its log (`<board>-<hash>.log` in the runtime directory) as a regular file
/// of its own: a symbolic link planted under that name is refused, naming the log, and its
/// target keeps its contents. Before: `File::create` followed the link and truncated it.
#[test]
fn up_does_not_write_its_log_through_a_planted_link() {
    let rt = scratch("uplog");
    let board = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../boards/sim.toml");
    let b = board.to_str().unwrap();
    let run = |args: &[&str]| {
        Command::new(BIN)
            .args(args)
            .env("XDG_RUNTIME_DIR", &rt)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let o = run(&["up", "--board", b]);
    assert!(o.status.success(), "{}", text(&o));
    let o = run(&["down", "--board", b]);
    assert!(o.status.success(), "{}", text(&o));
    let log = std::fs::read_dir(rt.join("intercore"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "log"))
        .expect("up left its log");
    std::fs::remove_file(&log).unwrap();
    let victim = rt.join("victim.txt");
    std::fs::write(&victim, b"precious").unwrap();
    std::os::unix::fs::symlink(&victim, &log).unwrap();
    let o = run(&["up", "--board", b]);
    let _ = run(&["down", "--board", b]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(log.to_str().unwrap()) && err.contains("symbolic link"),
        "{err}"
    );
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    let _ = std::fs::remove_dir_all(&rt);
}

/// `rproc load --firmware-dir DIR` with a DIR that does not exist fails naming it, and
/// creates nothing. Before: the directory (and its parents) were created.
#[test]
fn rproc_load_creates_no_firmware_directory() {
    let k = FakeKernel::new(&[FakeRproc::offline("5000000.m4fss", "m4-fw")]);
    let fw = k.root().join("build/m4.elf");
    std::fs::create_dir_all(fw.parent().unwrap()).unwrap();
    std::fs::copy(BIN, &fw).unwrap();
    let missing = k.root().join("no/such/dir");
    let o = Command::new(BIN)
        .args(["rproc", "load", fw.to_str().unwrap(), "--rproc", "0"])
        .args(["--firmware-dir", missing.to_str().unwrap()])
        .args(["--sysfs", k.root().join("sys").to_str().unwrap()])
        .args(["--dev", k.root().join("dev").to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains(missing.to_str().unwrap()),
        "{}",
        text(&o)
    );
    assert!(
        !k.root().join("no").exists(),
        "created {}",
        missing.display()
    );
}

/// `rsc` on a 256 MiB file that is not ELF says so after reading its first 4 bytes: the
/// peak resident size of the command stays small (measured with /usr/bin/time). Before:
/// the whole file was read first (+256 MiB).
#[test]
fn rsc_sniffs_the_magic_before_reading_the_file() {
    let d = scratch("rsc");
    let big = d.join("big.bin");
    let f = std::fs::File::create(&big).unwrap();
    f.set_len(256 << 20).unwrap();
    drop(f);
    let o = Command::new("/usr/bin/time")
        .args(["-f", "maxrss_kb=%M", BIN, "rsc", big.to_str().unwrap()])
        .output()
        .expect("/usr/bin/time measures the command's peak resident size");
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("not an ELF file"), "{err}");
    let kb: u64 = err
        .lines()
        .find_map(|l| l.strip_prefix("maxrss_kb="))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no maxrss in {err}"));
    eprintln!("rsc on a 256 MiB non-ELF file: peak {kb} kB");
    assert!(kb < 64 << 10, "peak {kb} kB");
    let _ = std::fs::remove_dir_all(&d);
}

/// `kernel-echo --ctrl` takes only `rpmsg_ctrlN`: a path (absolute or with `..`) or another
/// device name is refused before anything is opened, naming the option. Before: `/dev`
/// joined with any path was opened.
#[test]
fn kernel_echo_ctrl_is_only_an_rpmsg_control_device() {
    for bad in [
        "/etc/passwd",
        "../etc/passwd",
        "watchdog",
        "null",
        "rpmsg_ctrl",
        "rpmsg_ctrl0/x",
    ] {
        let o = Command::new(BIN)
            .args(["kernel-echo", "--ctrl", bad, "--json"])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(1), "{bad}: {}", text(&o));
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(
            out.contains("rpmsg_ctrlN") && out.contains("\"option\":\"--ctrl\""),
            "{bad}: {out}"
        );
    }
}
