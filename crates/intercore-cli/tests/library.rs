//! The commands called as library functions (issue 21.5): each returns a typed report,
//! checked here field by field, without spawning the binary. The simulated remote core is
//! still a process: the `intercore` binary, named through `intercore_cli::set_program`.

use clap::Parser;
use intercore_board::CheckEnv;
use intercore_cli::board::{BoardReport, check};
use intercore_cli::demo::{DemoReport, run_sim, sim_config};
use intercore_cli::{BoardCheck, BoardCommand, Cli, Command, EXIT_FAILED, EXIT_OK};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

fn boards() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../boards")
}

fn demo_args(args: &[&str]) -> intercore_cli::DemoArgs {
    let mut argv = vec!["intercore", "demo"];
    argv.extend(args);
    match Cli::try_parse_from(argv).unwrap().command {
        Command::Demo(d) => d,
        c => panic!("{c:?}"),
    }
}

/// `demo` as a function: the report counts every message and MiB asked for, and its JSON
/// has the keys scripts read.
#[test]
fn demo_returns_a_typed_report() {
    intercore_cli::set_program(env!("CARGO_BIN_EXE_intercore"));
    let o = demo_args(&["--messages", "300", "--bulk-mib", "2"]);
    let cfg = sim_config(&o).unwrap();
    let r: DemoReport = run_sim(&o, &cfg, true).unwrap();
    assert!(r.ok, "{r:?}");
    assert_eq!((r.messages, r.errors, r.corrupted), (300, 0, 0));
    assert_eq!(r.bulk_bytes, 2 << 20);
    // 2 MiB of data in buffers that carry 1 MiB - 64 B each: 3 buffers.
    assert_eq!(r.bulk_buffers, 3);
    assert!(r.rtt_p50_ns > 0 && r.rtt_p50_ns <= r.rtt_p99_ns && r.rtt_p99_ns <= r.rtt_max_ns);
    let v = serde_json::to_value(&r).unwrap();
    for k in [
        "messages",
        "errors",
        "rtt_p50_ns",
        "rtt_p99_ns",
        "bulk_bytes",
        "bulk_buffers",
        "corrupted",
        "sanitizer_reports",
        "iommu_faults",
        "cache",
        "layout",
    ] {
        assert!(v.get(k).is_some(), "{k} in {v}");
    }
    let text = r.to_string();
    assert!(
        text.contains("2 MiB of data in 3 buffers of 1 MiB"),
        "{text}"
    );
}

/// `board check` on one file as a function: a report whose JSON keeps the documented keys.
#[test]
fn board_check_returns_a_typed_report() {
    let r: BoardReport = check(&boards().join("sim.toml"), &CheckEnv::default()).unwrap();
    let v = serde_json::to_value(&r).unwrap();
    assert_eq!(v["valid"], json!(true));
    assert!(v["file"].as_str().unwrap().ends_with("sim.toml"));
    for k in [
        "summary",
        "host_arch",
        "findings",
        "errors",
        "warnings",
        "openable",
    ] {
        assert!(v.get(k).is_some(), "{k} in {v}");
    }
}

/// `board check` takes several files (a user types `boards/*.toml`): one verdict each, and
/// the exit status is the worst of them (before: one FILE only, a usage error).
#[test]
fn board_check_takes_several_files_and_exits_with_the_worst() {
    let dir = std::env::temp_dir().join(format!("intercore-lib-board-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "[transport]\nkind = \"nonsense\"\n").unwrap();
    let check_all = |files: Vec<PathBuf>| {
        let c = BoardCommand::Check(BoardCheck {
            files,
            strict: false,
            arch: None,
            sysfs: None,
            dev: None,
            device_tree: None,
            firmware_dir: None,
        });
        intercore_cli::board::main(&c, true)
    };
    let good = vec![boards().join("sim.toml"), boards().join("sim-ti-k3.toml")];
    assert_eq!(check_all(good.clone()).unwrap(), EXIT_OK);
    let mut mixed = good;
    mixed.insert(1, bad.clone());
    assert_eq!(check_all(mixed).unwrap(), EXIT_FAILED);
    // On the command line, as a shell expands a glob.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_intercore"))
        .args(["board", "check", "--json"])
        .arg(boards().join("sim.toml"))
        .arg(&bad)
        .arg(boards().join("qemu-r5f.toml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(lines[0]["valid"], json!(true));
    assert!(lines[1]["error"]["message"].is_string(), "{}", lines[1]);
    assert_eq!(lines[2]["valid"], json!(true));
    std::fs::remove_dir_all(&dir).ok();
}

/// `bench --board` rows as text: every row's columns line up (the measurement starts at
/// the same column whatever the suite), and an n/a note has no nested parentheses.
#[test]
fn bench_board_rows_align_and_na_notes_do_not_nest() {
    let rows = [
        json!({"bench":"rtt","board":"sim","transport":"sim-memfd","size":1,"p50_ns":1500,"p99_ns":3000,"mean_ns":1700,"samples":100}),
        json!({"bench":"rtt","board":"sim","transport":"sim-memfd","size":496,"p50_ns":2500,"p99_ns":4000,"mean_ns":2700,"samples":100}),
        json!({"bench":"rtt","board":"sim","transport":"spin-floor","na":"a host-only baseline whose peer is a process on this host, not the board's core; `intercore bench rtt` without --board measures it"}),
        json!({"bench":"throughput","board":"sim","transport":"sim-memfd","size":64,"msgs_per_s":1.0e6,"mb_per_s":64.0,"burst":16}),
        json!({"bench":"bulk","board":"sim","transport":"sim-memfd","size":1048576,"buffers":17,"bytes":16777216,"gbps":1.5,"corrupted":0}),
    ];
    let texts: Vec<String> = rows
        .iter()
        .map(intercore_cli::owner::bench_row_text)
        .collect();
    let col = |t: &str| t.char_indices().nth(63).map(|(i, _)| i).unwrap();
    for t in &texts {
        // Fixed-width head: suite (10) board (28) transport (14) size (6), single spaces.
        assert_eq!(&t[col(t) - 2..col(t)], "  ", "{t:?}");
        assert!(matches!(&t[col(t) - 3..col(t) - 2], "B" | "-"), "{t:?}");
    }
    let na = &texts[2];
    assert!(na.contains("n/a: a host-only baseline"), "{na}");
    let depth = na.chars().fold((0i32, 0i32), |(d, m), c| match c {
        '(' => (d + 1, m.max(d + 1)),
        ')' => (d - 1, m),
        _ => (d, m),
    });
    assert!(depth.1 <= 1, "nested parentheses: {na}");
    assert!(
        texts[4].contains("16 MiB of data in 17 buffers of 1 MiB"),
        "{}",
        texts[4]
    );
}

/// `kernel-echo`/`kernel-bulk` end a failure as an error (stderr, or the JSON error line;
/// exit 1), not as `FAIL …` on stdout with nothing on stderr.
#[test]
fn kernel_commands_fail_as_errors() {
    let e =
        intercore_cli::vhost::verdict("kernel-echo", Err("no echo".into()), false, ("messages", 1))
            .unwrap_err();
    assert_eq!((e.code, e.message.as_str()), (EXIT_FAILED, "no echo"));
    assert_eq!(
        intercore_cli::vhost::verdict("kernel-echo", Ok("fine".into()), true, ("messages", 1))
            .unwrap(),
        EXIT_OK
    );
}
