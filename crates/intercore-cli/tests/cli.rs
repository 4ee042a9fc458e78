//! The command line against hostile input (issue 12): walks clap's `Command` tree
//! (`intercore_cli::Cli::command()`), so every subcommand and every numeric option is
//! covered without listing them, and runs the real binary with each numeric option set to
//! `-1`, `NaN`, `inf`, `1e300`, `u64::MAX`, `2^64` and empty; plus every case the issue
//! lists, as named rows. Each invocation must end within its timeout (no hang), without
//! a panic (exit 101) or a signal, with the documented exit status: 2 for a value outside
//! the range the option's help states (`[range: LO..=HI]`), else what the command does
//! with valid options. Under `--json` an error is exactly one JSON line on stdout.

use clap::CommandFactory;
use intercore_cli::Cli;
use intercore_linux::remoteproc::fake::{FakeKernel, FakeRproc, minimal_arm_elf as arm_elf};
use std::any::TypeId;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_intercore");

/// What one run did.
#[derive(Debug)]
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    took: Duration,
}

/// Runs the binary; panics if it outlives `timeout` (killing it first), is killed by a
/// signal, or panics (Rust's exit status 101).
fn run_for(args: &[String], timeout: Duration) -> Run {
    let start = Instant::now();
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            panic!("intercore {args:?} still running after {timeout:?}: a hang");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let r = Run {
        code: status.code(),
        stdout: t_out.join().unwrap(),
        stderr: t_err.join().unwrap(),
        took: start.elapsed(),
    };
    assert!(
        r.code.is_some(),
        "intercore {args:?} killed by a signal: {status:?}\n{}",
        r.stderr
    );
    assert_ne!(
        r.code,
        Some(101),
        "intercore {args:?} panicked:\n{}",
        r.stderr
    );
    r
}

fn run(args: &[&str]) -> Run {
    run_for(
        &args.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        Duration::from_secs(60),
    )
}

/// A JSON error line: exactly one line on stdout, `{"error":{"message":"…"` then the
/// optional `path` and `option`, closed; returns it.
fn json_error(r: &Run) -> String {
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 1, "one line on stdout: {r:?}");
    let l = lines[0];
    assert!(
        l.starts_with("{\"error\":{\"message\":\"") && l.ends_with("\"}}"),
        "{l}"
    );
    let body = &l["{\"error\":{".len()..l.len() - 2];
    // Only the documented keys, in order.
    let mut keys = Vec::new();
    let mut in_str = false;
    let mut esc = false;
    let mut cur = String::new();
    let mut after_colon = false;
    for c in body.chars() {
        if in_str {
            if esc {
                esc = false;
            } else if c == '\\' {
                esc = true;
            } else if c == '"' {
                in_str = false;
                if !after_colon {
                    keys.push(std::mem::take(&mut cur));
                }
                continue;
            }
            if !after_colon {
                cur.push(c);
            }
        } else if c == '"' {
            in_str = true;
        } else if c == ':' {
            after_colon = true;
        } else if c == ',' {
            after_colon = false;
        }
    }
    let allowed = ["message", "path", "option"];
    assert!(
        keys.iter().all(|k| allowed.contains(&k.as_str())) && keys[0] == "message",
        "keys {keys:?} in {l}"
    );
    l.to_string()
}

/// One numeric option found in the tree.
#[derive(Debug, Clone)]
struct Numeric {
    /// Subcommand path (`["rproc", "start"]`).
    path: Vec<String>,
    /// `--messages`.
    long: String,
    /// The documented range.
    lo: f64,
    hi: f64,
    /// Whether it takes integers only.
    integer: bool,
}

fn numeric_type(a: &clap::Arg) -> Option<bool> {
    let t = a.get_value_parser().type_id();
    for (id, integer) in [
        (TypeId::of::<u64>(), true),
        (TypeId::of::<u32>(), true),
        (TypeId::of::<usize>(), true),
        (TypeId::of::<i64>(), true),
        (TypeId::of::<f64>(), false),
        (TypeId::of::<Duration>(), false),
    ] {
        if t == id {
            return Some(integer);
        }
    }
    None
}

/// `[range: LO..=HI]` (optionally followed by a unit) in the help text.
fn documented_range(help: &str) -> Option<(f64, f64)> {
    let at = help.find("[range: ")? + "[range: ".len();
    let rest = &help[at..];
    let end = rest.find([']', ' '])?;
    let (lo, hi) = rest[..end].split_once("..=")?;
    Some((lo.parse().ok()?, hi.parse().ok()?))
}

fn walk(cmd: &clap::Command, path: &mut Vec<String>, subs: &mut Vec<Vec<String>>) {
    subs.push(path.clone());
    for s in cmd.get_subcommands() {
        if s.get_name() == "help" {
            continue;
        }
        path.push(s.get_name().to_string());
        walk(s, path, subs);
        path.pop();
    }
}

/// Every subcommand path (the root is `[]`).
fn subcommands() -> Vec<Vec<String>> {
    let mut subs = Vec::new();
    walk(&Cli::command(), &mut Vec::new(), &mut subs);
    subs
}

fn find<'a>(root: &'a clap::Command, path: &[String]) -> &'a clap::Command {
    path.iter().fold(root, |c, p| c.find_subcommand(p).unwrap())
}

/// Every numeric option, each of which must document its range.
fn numerics() -> Vec<Numeric> {
    let root = Cli::command();
    let mut out = Vec::new();
    for path in subcommands() {
        let cmd = find(&root, &path);
        for a in cmd.get_arguments() {
            let Some(integer) = numeric_type(a) else {
                continue;
            };
            let long = format!("--{}", a.get_long().expect("numeric options are long"));
            let help = a.get_help().map(|h| h.to_string()).unwrap_or_default();
            let (lo, hi) = documented_range(&help)
                .unwrap_or_else(|| panic!("{path:?} {long}: help states no [range: ..]: {help}"));
            out.push(Numeric {
                path: path.clone(),
                long,
                lo,
                hi,
                integer,
            });
        }
    }
    out
}

/// Valid arguments that make each command quick and deterministic (no hardware here), so
/// that a hostile value the parser accepts runs to a known end.
fn base_args(path: &[String], scratch: &Path) -> Vec<String> {
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<String>>();
    let empty = scratch.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let e = empty.to_str().unwrap();
    let p: Vec<&str> = path.iter().map(String::as_str).collect();
    match p.as_slice() {
        ["demo"] => s(&["--messages", "10", "--bulk-mib", "1"]),
        ["bench"] => s(&["soak", "--duration", "1", "--samples", "100"]),
        ["rproc", "load"] => s(&["/nonexistent/fw.elf", "--sysfs", e, "--dev", e]),
        ["rproc", _] => s(&["--sysfs", e, "--dev", e]),
        ["kernel-echo"] | ["kernel-bulk"] | ["kernel-scale"] => {
            s(&["--ctrl", "intercore-test-no-such-ctrl"])
        }
        _ => Vec::new(),
    }
}

/// Without the option under test (so the hostile value is the only one given).
fn without(base: &[String], long: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut skip = false;
    for a in base {
        if skip {
            skip = false;
            continue;
        }
        if a == long {
            skip = true;
            continue;
        }
        out.push(a.clone());
    }
    out
}

fn scratch(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("intercore-cli-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

const HOSTILE: [&str; 7] = [
    "-1",
    "NaN",
    "inf",
    "1e300",
    "18446744073709551615",
    "18446744073709551616",
    "",
];

/// Whether `v` is inside the option's documented range (and of its kind).
fn accepted(n: &Numeric, v: &str) -> bool {
    if n.integer {
        match v.parse::<u64>() {
            Ok(x) => (x as f64) >= n.lo && (x as f64) <= n.hi,
            Err(_) => false,
        }
    } else {
        match v.parse::<f64>() {
            Ok(x) => x.is_finite() && x >= n.lo && x <= n.hi,
            Err(_) => false,
        }
    }
}

/// Every numeric option of every subcommand, found by walking the tree, with each hostile
/// value, as text and as `--json`: no panic, no hang, and exit 2 naming the option and
/// its range unless the documented range holds the value (then the command's own exit
/// status with valid options).
#[test]
fn every_numeric_option_refuses_hostile_values() {
    let dir = scratch("hostile");
    let all = numerics();
    // The walk found the options the issue names (a rename would otherwise hide them).
    for (path, long) in [
        ("demo", "--messages"),
        ("demo", "--bulk-mib"),
        ("demo", "--seed"),
        ("bench", "--duration"),
        ("bench", "--samples"),
        ("rproc start", "--timeout"),
        ("rproc load", "--timeout"),
        ("kernel-echo", "--messages"),
        ("kernel-bulk", "--buffers"),
        ("kernel-bulk", "--pages"),
        ("kernel-scale", "--endpoints"),
        ("kernel-scale", "--warm-up"),
        ("kernel-scale", "--window"),
    ] {
        assert!(
            all.iter()
                .any(|n| n.path.join(" ") == path && n.long == long),
            "{path} {long} not found in {all:?}"
        );
    }
    let mut runs = 0;
    for n in &all {
        let base = without(&base_args(&n.path, &dir), &n.long);
        let base_code = {
            let mut a = n.path.clone();
            a.extend(base.iter().cloned());
            if HOSTILE.iter().any(|v| accepted(n, v)) {
                run_for(&a, Duration::from_secs(60)).code
            } else {
                None
            }
        };
        for v in HOSTILE {
            for json in [false, true] {
                let mut a = n.path.clone();
                a.extend(base.iter().cloned());
                a.push(n.long.clone());
                a.push(v.to_string());
                if json {
                    a.push("--json".into());
                }
                let r = run_for(&a, Duration::from_secs(60));
                runs += 1;
                if accepted(n, v) {
                    assert_eq!(r.code, base_code, "{a:?}: {r:?}");
                    assert_ne!(r.code, Some(2), "{a:?}: {r:?}");
                    continue;
                }
                assert_eq!(r.code, Some(2), "{a:?}: {r:?}");
                let range = format!(
                    "{}..={}",
                    if n.integer {
                        format!("{}", n.lo as u64)
                    } else {
                        format!("{}", n.lo)
                    },
                    if n.integer {
                        if n.hi >= u64::MAX as f64 {
                            u64::MAX.to_string()
                        } else {
                            format!("{}", n.hi as u64)
                        }
                    } else {
                        format!("{}", n.hi)
                    }
                );
                let msg = if json {
                    assert!(r.stderr.is_empty(), "{a:?}: {r:?}");
                    let l = json_error(&r);
                    assert!(l.contains(&format!("\"option\":\"{}\"", n.long)), "{l}");
                    l
                } else {
                    assert!(r.stdout.is_empty(), "{a:?}: {r:?}");
                    r.stderr.clone()
                };
                assert!(
                    msg.contains(&n.long) && msg.contains(&range),
                    "{a:?}: the error names neither {} nor {range}: {msg}",
                    n.long
                );
            }
        }
    }
    assert!(runs >= 8 * HOSTILE.len() * 2);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Every option that takes a value, of every subcommand, given an empty value: no panic,
/// no hang, and a documented exit status (a usage error, or the command's own failure
/// naming what is wrong).
#[test]
fn every_option_survives_an_empty_value() {
    let dir = scratch("empty-values");
    let root = Cli::command();
    let mut n = 0;
    for path in subcommands() {
        let cmd = find(&root, &path);
        for a in cmd.get_arguments() {
            let Some(long) = a.get_long() else { continue };
            if !a.get_action().takes_values() || long == "help" || long == "version" {
                continue;
            }
            let long = format!("--{long}");
            let mut args = path.clone();
            args.extend(without(&base_args(&path, &dir), &long));
            // `--opt=` clap refuses itself; `--opt ""` reaches the command.
            args.push(long.clone());
            args.push(String::new());
            let r = run_for(&args, Duration::from_secs(60));
            n += 1;
            assert!(matches!(r.code, Some(0..=3)), "{args:?}: {r:?}");
            if r.code != Some(0) {
                assert!(
                    !r.stderr.is_empty() || !r.stdout.is_empty(),
                    "{args:?}: silent failure"
                );
            }
        }
    }
    assert!(n >= 20, "{n}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Every case issue 12 lists under "CLI", each a named row: the arguments, the documented
/// exit status and a text the output (stdout and stderr) must hold. Before: panics (101),
/// an 8 TB allocation abort, a silent wrap to 0, a run that never ends, a deleted file, an
/// unbounded read, a FIFO that blocked, "unknown option" for --help, no JSON, no path.
#[test]
fn the_issues_cases() {
    let dir = scratch("issue");
    let file = dir.join("precious.txt");
    std::fs::write(&file, b"keep me").unwrap();
    let fifo = dir.join("fifo");
    mkfifo(&fifo);
    let missing = dir.join("missing.elf");
    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    // A fake AM64x: two cores, one with an unreadable attribute, no /dev/remoteproc0, and
    // a second tree without firmware_class.path.
    let k = soc();
    let attr = k.root().join("sys/class/remoteproc/remoteproc1/firmware");
    std::fs::remove_file(&attr).unwrap();
    std::fs::create_dir(&attr).unwrap();
    std::fs::remove_file(k.root().join("dev/remoteproc0")).ok();
    let bare = soc();
    std::fs::remove_file(
        bare.root()
            .join("sys/module/firmware_class/parameters/path"),
    )
    .unwrap();
    let fw = bare.root().join("issue-fw.elf");
    std::fs::copy(BIN, &fw).unwrap();
    let p = |x: &Path| x.to_str().unwrap().to_string();
    let tree = |k: &FakeKernel, args: &[&str]| rproc_args(k, args)[1..].to_vec();
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<String>>();
    let cat = |a: &[&str], b: Vec<String>| {
        let mut v = s(a);
        v.extend(b);
        v
    };
    let rows: Vec<(&str, Vec<String>, i32, String)> = vec![
        (
            "bench soak --duration -1",
            s(&["bench", "soak", "--duration", "-1"]),
            2,
            "--duration".into(),
        ),
        (
            "bench soak --duration NaN",
            s(&["bench", "soak", "--duration", "NaN"]),
            2,
            "--duration".into(),
        ),
        (
            "bench soak --duration inf",
            s(&["bench", "soak", "--duration", "inf"]),
            2,
            "--duration".into(),
        ),
        (
            "bench soak --duration 1e300",
            s(&["bench", "soak", "--duration", "1e300"]),
            2,
            "--duration".into(),
        ),
        (
            "rproc start --timeout 1e300",
            s(&["rproc", "start", "--timeout", "1e300"]),
            2,
            "0.001..=3600".into(),
        ),
        (
            "demo --messages u64::MAX (capacity overflow)",
            s(&["demo", "--messages", "18446744073709551615"]),
            2,
            "0..=10000000".into(),
        ),
        (
            "demo --messages 10^12 (8 TB allocation)",
            s(&["demo", "--messages", "1000000000000"]),
            2,
            "0..=10000000".into(),
        ),
        (
            "demo --bulk-mib 2^44 (wrapped to 0)",
            s(&["demo", "--bulk-mib", "17592186044416"]),
            2,
            "0..=65536".into(),
        ),
        (
            "demo --bulk-mib u64::MAX (ran forever)",
            s(&["demo", "--bulk-mib", "18446744073709551615"]),
            2,
            "0..=65536".into(),
        ),
        (
            "vhost-user --socket on a regular file (deleted it)",
            s(&["vhost-user", "--socket", &p(&file)]),
            1,
            "a regular file".into(),
        ),
        (
            "rsc /dev/zero (read until out of memory)",
            s(&["rsc", "/dev/zero"]),
            1,
            "a character device".into(),
        ),
        (
            "rsc on a FIFO (hung)",
            s(&["rsc", &p(&fifo)]),
            1,
            "a FIFO".into(),
        ),
        (
            "rproc load /dev/zero",
            cat(&["rproc"], tree(&k, &["load", "/dev/zero", "--rproc", "0"])),
            1,
            "a character device".into(),
        ),
        (
            "demo --help (unknown option)",
            s(&["demo", "--help"]),
            0,
            "Usage: intercore demo".into(),
        ),
        (
            "vhost-user --help (unknown option)",
            s(&["vhost-user", "--help"]),
            0,
            "Usage: intercore vhost-user".into(),
        ),
        (
            "rproc --help (exit 2)",
            s(&["rproc", "--help"]),
            0,
            "Usage: intercore rproc".into(),
        ),
        (
            "board --help (exit 2)",
            s(&["board", "--help"]),
            0,
            "Usage: intercore board".into(),
        ),
        (
            "bench --help (exit 2)",
            s(&["bench", "--help"]),
            0,
            "Usage: intercore bench".into(),
        ),
        (
            "--version (none)",
            s(&["--version"]),
            0,
            "intercore 0.".into(),
        ),
        (
            "board check --json (no --json)",
            s(&["board", "check", &p(&missing), "--json"]),
            1,
            "{\"error\":{".into(),
        ),
        (
            "rproc start --json (no --json)",
            s(&["rproc", "start", "--json", "--sysfs", &p(&empty)]),
            1,
            "{\"error\":{".into(),
        ),
        (
            "rproc stop --json (no --json)",
            s(&["rproc", "stop", "--json", "--sysfs", &p(&empty)]),
            1,
            "{\"error\":{".into(),
        ),
        (
            "rproc load --json (no --json)",
            s(&[
                "rproc",
                "load",
                &p(&missing),
                "--json",
                "--sysfs",
                &p(&empty),
            ]),
            1,
            "{\"error\":{".into(),
        ),
        (
            "kernel-echo --json (no --json)",
            s(&["kernel-echo", "--json", "--ctrl", "intercore-no-such-ctrl"]),
            1,
            "{\"error\":{".into(),
        ),
        (
            "usage error under --json (errors never JSON)",
            s(&["demo", "--json", "--messages", "x"]),
            2,
            "{\"error\":{\"message\":".into(),
        ),
        (
            "I/O error names the path",
            s(&["rsc", &p(&missing)]),
            1,
            p(&missing),
        ),
        (
            "rproc load into a test tree (installed into /lib/firmware)",
            cat(&["rproc"], tree(&bare, &["load", &p(&fw), "--rproc", "0"])),
            1,
            "--firmware-dir".into(),
        ),
        (
            "rproc --control cdev without the node (garbled message)",
            cat(
                &["rproc"],
                tree(&k, &["start", "--rproc", "0", "--control", "cdev"]),
            ),
            1,
            "CONFIG_REMOTEPROC_CDEV, or udev made no node; use --control sysfs".into(),
        ),
        (
            "rproc list with an unreadable attribute (failed entirely)",
            cat(&["rproc"], tree(&k, &["list"])),
            0,
            "unreadable".into(),
        ),
        (
            "demo summary names the wait mode",
            s(&["demo", "--messages", "1000", "--bulk-mib", "0"]),
            0,
            "wait mode: host adaptive:50".into(),
        ),
        (
            "demo 256 MiB (printed as 257.0 MiB in 257 buffers)",
            s(&["demo", "--messages", "10"]),
            0,
            "256 MiB of data in 257 buffers".into(),
        ),
        (
            "unknown command",
            s(&["frobnicate"]),
            2,
            "frobnicate".into(),
        ),
        ("no command", s(&[]), 2, "Usage: intercore".into()),
    ];
    for (name, args, want, needle) in rows {
        let r = run_for(&args, Duration::from_secs(60));
        assert_eq!(r.code, Some(want), "{name}: {r:?}");
        assert!(
            r.took < Duration::from_secs(30),
            "{name}: took {:?}",
            r.took
        );
        assert!(
            r.stdout.contains(&needle) || r.stderr.contains(&needle),
            "{name}: {needle:?} not in {r:?}"
        );
    }
    assert_eq!(std::fs::read(&file).unwrap(), b"keep me");
    assert!(!Path::new("/lib/firmware/issue-fw.elf").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `intercore CMD --help` and `intercore help CMD` exit 0 with usage on stdout, for every
/// command and subcommand in the tree; `--version` prints the crate version.
#[test]
fn help_on_every_command_and_version() {
    let subs = subcommands();
    assert!(subs.len() >= 14, "{subs:?}");
    for path in subs {
        let mut a = path.clone();
        a.push("--help".into());
        let r = run_for(&a, Duration::from_secs(30));
        assert_eq!(r.code, Some(0), "{a:?}: {r:?}");
        assert!(r.stdout.contains("Usage: intercore"), "{a:?}: {}", r.stdout);
        if !path.is_empty() {
            let mut h = vec!["help".to_string()];
            h.extend(path.iter().cloned());
            let r = run_for(&h, Duration::from_secs(30));
            assert_eq!(r.code, Some(0), "{h:?}: {r:?}");
        }
    }
    let r = run(&["--version"]);
    assert_eq!(r.code, Some(0));
    assert_eq!(
        r.stdout.trim(),
        format!("intercore {}", env!("CARGO_PKG_VERSION"))
    );
}

/// With `--json`, failures and usage errors are one JSON line on stdout with the same exit
/// status as without; I/O errors carry the path, option errors the option.
#[test]
fn json_errors_are_one_line_with_the_same_status() {
    let dir = scratch("json");
    let missing = dir.join("missing.elf");
    let m = missing.to_str().unwrap();
    let e = dir.join("empty");
    std::fs::create_dir_all(&e).unwrap();
    let e = e.to_str().unwrap();
    let cases: Vec<(Vec<&str>, Option<&str>, Option<&str>)> = vec![
        (vec!["rsc", m], Some(m), None),
        (vec!["board", "check", m], Some(m), None),
        (
            vec!["rproc", "load", m, "--sysfs", e, "--dev", e],
            None,
            None,
        ),
        (vec!["rproc", "start", "--sysfs", e, "--dev", e], None, None),
        (vec!["rproc", "stop", "--sysfs", e, "--dev", e], None, None),
        (vec!["demo", "--frobnicate"], None, Some("--frobnicate")),
        (vec!["demo", "--wait", "sometimes"], None, Some("--wait")),
        (
            vec!["kernel-echo", "--ctrl", "intercore-no-such-ctrl"],
            None,
            None,
        ),
        (vec!["rproc"], None, None),
    ];
    for (args, path, option) in cases {
        let text = run(&args);
        let mut j = args.clone();
        j.push("--json");
        let r = run(&j);
        assert_eq!(r.code, text.code, "{args:?}: {r:?} vs {text:?}");
        assert!(matches!(r.code, Some(1 | 2)), "{args:?}: {r:?}");
        let l = json_error(&r);
        if let Some(p) = path {
            assert!(l.contains(&format!("\"path\":\"{p}\"")), "{l}");
            assert!(
                text.stderr.contains(p),
                "the text error names the path: {text:?}"
            );
        }
        if let Some(o) = option {
            assert!(l.contains(&format!("\"option\":\"{o}\"")), "{l}");
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `vhost-user --socket FILE` on a regular file fails at once naming the file, and the
/// file keeps its contents (before: it was deleted and replaced by the socket).
#[test]
fn vhost_user_leaves_a_regular_file_intact() {
    let dir = scratch("vhost");
    let f = dir.join("precious.txt");
    std::fs::write(&f, b"do not delete").unwrap();
    let p = f.to_str().unwrap();
    for json in [false, true] {
        let mut a = vec!["vhost-user", "--socket", p];
        if json {
            a.push("--json");
        }
        let r = run(&a);
        assert_eq!(r.code, Some(1), "{r:?}");
        let msg = if json {
            json_error(&r)
        } else {
            r.stderr.clone()
        };
        assert!(msg.contains(p) && msg.contains("regular file"), "{msg}");
        assert_eq!(std::fs::read(&f).unwrap(), b"do not delete");
    }
    // A socket another process listens on is not taken over either.
    let live = dir.join("live.sock");
    let l = std::os::unix::net::UnixListener::bind(&live).unwrap();
    let r = run(&["vhost-user", "--socket", live.to_str().unwrap()]);
    assert_eq!(r.code, Some(1), "{r:?}");
    assert!(r.stderr.contains("listening"), "{}", r.stderr);
    assert!(live.exists());
    drop(l);
    std::fs::remove_dir_all(&dir).unwrap();
}

fn mkfifo(p: &Path) {
    let st = Command::new("mkfifo")
        .arg(p)
        .status()
        .expect("mkfifo (coreutils)");
    assert!(st.success());
}

/// Firmware files must resolve to regular files: `rsc /dev/zero` (before: read until
/// memory ran out) and `rsc FIFO` (before: blocked for ever) fail at once naming what the
/// path is; a symbolic link to the binary (as in Debian's /lib/firmware) is followed.
#[test]
fn rsc_refuses_devices_and_fifos() {
    let dir = scratch("rsc");
    let fifo = dir.join("fifo");
    mkfifo(&fifo);
    for (p, what) in [
        (Path::new("/dev/zero"), "a character device"),
        (fifo.as_path(), "a FIFO"),
        (dir.as_path(), "a directory"),
    ] {
        let r = run(&["rsc", p.to_str().unwrap()]);
        assert_eq!(r.code, Some(1), "{r:?}");
        assert!(r.took < Duration::from_secs(10), "{:?}", r.took);
        assert!(
            r.stderr.contains(p.to_str().unwrap()) && r.stderr.contains(what),
            "{}",
            r.stderr
        );
    }
    let link = dir.join("fw-link.elf");
    std::os::unix::fs::symlink(BIN, &link).unwrap();
    let r = run(&["rsc", link.to_str().unwrap()]);
    assert_eq!(r.code, Some(0), "{r:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

fn soc() -> FakeKernel {
    FakeKernel::new(&[
        FakeRproc::offline("78000000.r5f", "am64-main-r5f0_0-fw"),
        FakeRproc::offline("5000000.m4fss", "am64-mcu-m4f0_0-fw"),
    ])
}

fn rproc_args<'a>(k: &'a FakeKernel, extra: &[&'a str]) -> Vec<String> {
    let root = k.root();
    let mut a: Vec<String> = vec!["rproc".into()];
    a.extend(extra.iter().map(|s| s.to_string()));
    a.extend([
        "--sysfs".into(),
        root.join("sys").to_str().unwrap().into(),
        "--dev".into(),
        root.join("dev").to_str().unwrap().into(),
    ]);
    a
}

/// `rproc load /dev/zero` and a FIFO fail at once; nothing is installed.
#[test]
fn rproc_load_refuses_devices_and_fifos() {
    let k = soc();
    let fifo = k.root().join("fifo.elf");
    mkfifo(&fifo);
    for p in ["/dev/zero", fifo.to_str().unwrap()] {
        let r = run_for(
            &rproc_args(&k, &["load", p, "--rproc", "0"]),
            Duration::from_secs(30),
        );
        assert_eq!(r.code, Some(1), "{r:?}");
        assert!(
            r.stderr.contains(p) && r.stderr.contains("not a regular file"),
            "{}",
            r.stderr
        );
    }
    assert_eq!(
        std::fs::read_dir(k.firmware_dir()).map_or(0, |d| d.count()),
        0
    );
}

/// A test tree whose sysfs names no firmware directory (no firmware_class.path): `rproc
/// load` refuses to guess (the fallback /lib/firmware belongs to the real kernel) and
/// asks for --firmware-dir; with it, the file goes there.
#[test]
fn rproc_load_into_a_test_tree_never_touches_lib_firmware() {
    let k = soc();
    std::fs::remove_file(k.root().join("sys/module/firmware_class/parameters/path")).unwrap();
    let fw = k.root().join("tree-test-fw.elf");
    std::fs::copy(BIN, &fw).unwrap();
    let r = run_for(
        &rproc_args(&k, &["load", fw.to_str().unwrap(), "--rproc", "0"]),
        Duration::from_secs(30),
    );
    assert_eq!(r.code, Some(1), "{r:?}");
    assert!(r.stderr.contains("--firmware-dir"), "{}", r.stderr);
    assert!(!Path::new("/lib/firmware/tree-test-fw.elf").exists());
    let dir = k.root().join("fw");
    std::fs::create_dir(&dir).unwrap();
    let r = run_for(
        &rproc_args(
            &k,
            &[
                "load",
                fw.to_str().unwrap(),
                "--rproc",
                "0",
                "--firmware-dir",
                dir.to_str().unwrap(),
            ],
        ),
        Duration::from_secs(30),
    );
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(dir.join("tree-test-fw.elf").exists());
    assert!(!Path::new("/lib/firmware/tree-test-fw.elf").exists());
}

/// One unreadable attribute (here `firmware` replaced by a directory: EISDIR, which
/// root cannot bypass) shows as unreadable; the list still prints every core, exit 0.
/// `--control cdev` without /dev/remoteprocN says so in one clean sentence.
#[test]
fn rproc_list_survives_an_unreadable_attribute_and_cdev_message() {
    let k = soc();
    let attr = k.root().join("sys/class/remoteproc/remoteproc1/firmware");
    std::fs::remove_file(&attr).unwrap();
    std::fs::create_dir(&attr).unwrap();
    let r = run_for(&rproc_args(&k, &["list"]), Duration::from_secs(30));
    assert_eq!(r.code, Some(0), "{r:?}");
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", r.stdout);
    assert!(lines[0].contains("am64-main-r5f0_0-fw"), "{}", r.stdout);
    assert!(
        lines[1].contains("5000000.m4fss") && lines[1].ends_with("unreadable"),
        "{}",
        r.stdout
    );
    assert!(r.stderr.contains("firmware"), "{}", r.stderr);
    let r = run_for(
        &rproc_args(&k, &["list", "--json"]),
        Duration::from_secs(30),
    );
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(
        r.stdout
            .contains("\"firmware\":null,\"unreadable\":{\"firmware\":"),
        "{}",
        r.stdout
    );

    std::fs::remove_file(k.root().join("dev/remoteproc0")).ok();
    let r = run_for(
        &rproc_args(&k, &["start", "--rproc", "0", "--control", "cdev"]),
        Duration::from_secs(30),
    );
    assert_eq!(r.code, Some(1), "{r:?}");
    assert!(
        r.stderr
            .contains("CONFIG_REMOTEPROC_CDEV, or udev made no node")
            && !r.stderr.contains("  "),
        "{}",
        r.stderr
    );
}

/// The demo's bulk stage moves exactly the MiB asked for and says so ("3 MiB in 4
/// buffers", not "3.0 MiB"; before: "257.0 MiB in 257 buffers" for 256), and its summary
/// names the wait modes and why latency differs idle and loaded.
#[test]
fn demo_prints_whole_mib_and_the_wait_mode() {
    let r = run(&[
        "demo",
        "--messages",
        "100",
        "--bulk-mib",
        "3",
        "--wait",
        "event",
    ]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(
        r.stdout.contains("3 MiB of data in 4 buffers of 1 MiB"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("wait mode: host event (sleeps on the doorbell at once; chosen with --wait), remote adaptive:50"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("idle and loaded"), "{}", r.stdout);
    // Not a terminal: no progress on stderr.
    assert!(!r.stderr.contains('\r'), "{:?}", r.stderr);
    let r = run(&["demo", "--messages", "10", "--json"]);
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(
        r.stdout
            .contains(&format!("\"bulk_bytes\":{}", 256u64 << 20)),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("\"bulk_buffers\":257"), "{}", r.stdout);
}

/// On a terminal (a pseudo-terminal from util-linux's `script`, part of Debian's
/// essential set) the demo draws progress on stderr for both stages; in a pipe it draws
/// nothing (checked above), and under `--json` neither.
#[test]
fn demo_progress_only_on_a_terminal() {
    let cmd = format!("{BIN} demo --messages 2000 --bulk-mib 4");
    let out = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .expect("script (util-linux) runs the demo on a pseudo-terminal");
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{s}");
    assert!(s.contains("\rmessages: 0 of 2000 verified"), "{s:?}");
    assert!(
        s.contains("\rbulk: ") && s.contains(" MiB of 4 MiB"),
        "{s:?}"
    );
    let out = Command::new("script")
        .args(["-qec", &format!("{cmd} --json"), "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{s}");
    assert!(!s.contains("\rmessages") && !s.contains("\rbulk"), "{s:?}");
}

/// A reader that closed stdout (`intercore … | head -0`) ends the command with exit 1 and
/// no panic (std's `println!` panics on EPIPE: "failed printing to stdout", exit 101).
#[test]
fn closed_stdout_is_not_a_panic() {
    for args in [
        &["rsc", BIN][..],
        &["rsc", "--json", BIN],
        &["rproc", "list", "--sysfs", "/nonexistent"],
    ] {
        let (r, w) = intercore_linux::pipe().unwrap();
        drop(r);
        let out = Command::new(BIN)
            .args(args)
            .stdout(Stdio::from(w))
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(1),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
    }
    // Both closed, and an error to report: still exit 1, not 101.
    let (r1, w1) = intercore_linux::pipe().unwrap();
    let (r2, w2) = intercore_linux::pipe().unwrap();
    drop((r1, r2));
    let st = Command::new(BIN)
        .args(["rsc", "/dev/zero"])
        .stdout(Stdio::from(w1))
        .stderr(Stdio::from(w2))
        .status()
        .unwrap();
    assert_eq!(st.code(), Some(1));
}

/// Gives remoteproc0 of `k` (78000000.r5f) the device-tree node of an AM64x R5F core
/// (`device/of_node/compatible` = "ti,am64-r5f", k3-am64-main.dtsi).
fn r5f_of_node(k: &FakeKernel) {
    let n = k
        .root()
        .join("sys/class/remoteproc/remoteproc0/device/of_node");
    std::fs::create_dir_all(&n).unwrap();
    std::fs::write(n.join("compatible"), b"ti,am64-r5f\0").unwrap();
}

/// `rproc load` of this host's own binary (an ELF64 for x86-64 or aarch64) onto a core
/// whose device-tree node is an R5F is refused before anything is installed, naming the
/// file, the machine found and the one expected; an ELF32 EM_ARM file is installed.
#[test]
fn rproc_load_refuses_firmware_for_another_machine() {
    let k = soc();
    r5f_of_node(&k);
    let fw = k.root().join("host.elf");
    std::fs::copy(BIN, &fw).unwrap();
    let r = run_for(
        &rproc_args(&k, &["load", fw.to_str().unwrap(), "--rproc", "0"]),
        Duration::from_secs(30),
    );
    assert_eq!(r.code, Some(1), "{r:?}");
    for needle in [
        "host.elf is an ELF64",
        "the Cortex-R5F (ti,am64-r5f) runs an ELF32 arm (e_machine 40)",
    ] {
        assert!(r.stderr.contains(needle), "{needle:?} in {}", r.stderr);
    }
    assert_eq!(
        std::fs::read_dir(k.firmware_dir()).map_or(0, |d| d.count()),
        0
    );
    let arm = k.root().join("r5f.elf");
    std::fs::write(&arm, arm_elf()).unwrap();
    let r = run_for(
        &rproc_args(&k, &["load", arm.to_str().unwrap(), "--rproc", "0"]),
        Duration::from_secs(30),
    );
    assert_eq!(r.code, Some(0), "{r:?}");
    assert!(k.firmware_dir().join("r5f.elf").exists());
}

/// `rproc load` onto a running core is refused (the kernel changes the firmware only while
/// the core is offline) and installs nothing.
#[test]
fn rproc_load_refuses_a_running_core() {
    let k = soc();
    k.set_state(0, "running");
    let arm = k.root().join("r5f.elf");
    std::fs::write(&arm, arm_elf()).unwrap();
    let r = run_for(
        &rproc_args(&k, &["load", arm.to_str().unwrap(), "--rproc", "0"]),
        Duration::from_secs(30),
    );
    assert_eq!(r.code, Some(1), "{r:?}");
    assert!(
        r.stderr.contains("running") && r.stderr.contains("stop it first"),
        "{}",
        r.stderr
    );
    assert!(!k.firmware_dir().join("r5f.elf").exists());
}

/// `board check --strict` on a board whose firmware_file is this host's binary and whose
/// core is an R5F: an error naming the file and both machines, exit 3 (not openable).
#[test]
fn board_check_refuses_firmware_for_another_machine() {
    let k = soc();
    r5f_of_node(&k);
    let dir = k.root().join("cfg");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(BIN, dir.join("host.elf")).unwrap();
    let board = dir.join("board.toml");
    std::fs::write(
        &board,
        "[board]\nname = \"t\"\narch = \"aarch64\"\n[remoteproc]\nname = \"78000000.r5f\"\n\
         firmware = \"am64-main-r5f0_0-fw\"\nfirmware_file = \"host.elf\"\n[transport]\n\
         kind = \"kernel\"\n[memory]\nsource = \"udmabuf\"\nsize = 0x2000000\n\
         [mapping]\nkind = \"vfio\"\ngroup = 1\niova = 0x80000000\n[cache]\nmode = \"dma-buf\"\n",
    )
    .unwrap();
    let root = k.root();
    let r = run_for(
        &[
            "board".to_string(),
            "check".into(),
            board.to_str().unwrap().into(),
            "--strict".into(),
            "--arch".into(),
            "aarch64".into(),
            "--sysfs".into(),
            root.join("sys").to_str().unwrap().into(),
            "--dev".into(),
            root.join("dev").to_str().unwrap().into(),
            "--device-tree".into(),
            root.join("proc/device-tree").to_str().unwrap().into(),
        ],
        Duration::from_secs(30),
    );
    assert_eq!(r.code, Some(3), "{r:?}");
    assert!(
        r.stdout.contains("[error] firmware")
            && r.stdout.contains("host.elf is an ELF64")
            && r.stdout.contains("runs an ELF32 arm (e_machine 40)")
            && !r.stdout.contains("would install"),
        "{}",
        r.stdout
    );
}
