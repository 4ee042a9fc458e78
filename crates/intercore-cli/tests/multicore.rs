//! Boards with several cores (issue 23): the four-remote simulated board
//! (boards/sim-4core.toml) brought up by one `intercore up`, one link owner process per
//! core; `ping` and `echo` (every size verified) on each core, by name and all at once;
//! `bench` asking which core; and one remote of four killed while the other three are
//! exchanging messages: they finish every message verified, with no error, and only the
//! killed core's commands fail, saying the peer is gone. The two-core QEMU board runs in
//! scripts/test-boards.sh, which has the images.

use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_intercore");
const CORES: [&str; 4] = ["r0", "r1", "r2", "r3"];

fn sim4() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../boards/sim-4core.toml")
        .to_string_lossy()
        .into_owned()
}

/// A private runtime directory (mode 0700); on drop, every core is downed and it is removed.
struct Rt(PathBuf);

impl Rt {
    fn new(tag: &str) -> Self {
        let d = std::env::temp_dir().join(format!("intercore-mc-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700)).unwrap();
        Self(d)
    }
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.args(args)
            .env("XDG_RUNTIME_DIR", &self.0)
            .stdin(Stdio::null());
        c
    }
    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }
}

impl Drop for Rt {
    fn drop(&mut self) {
        let _ = self.run(&["down", "--board", &sim4()]);
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Every JSON line of stdout.
fn json_lines(o: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {}", text(o))))
        .collect()
}

fn owner_pids(rt: &Rt) -> Vec<(u64, u64)> {
    CORES
        .iter()
        .map(|c| {
            let o = rt.run(&[
                "ping",
                "--board",
                &sim4(),
                "--core",
                c,
                "--count",
                "1",
                "--json",
            ]);
            assert!(o.status.success(), "{}", text(&o));
            let v = &json_lines(&o)[0];
            (
                v["owner_pid"].as_u64().unwrap(),
                v["core_pid"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// One `up` brings up all four cores, each its own owner and remote process; `ping` and
/// `echo` without --core answer for every core, every round trip and every size 1..496
/// verified; `--core` picks one; `bench` without --core names the cores; `down` stops all.
#[test]
fn four_core_sim_board_up_ping_echo_every_core() {
    let rt = Rt::new("all");
    let b = sim4();
    let o = rt.run(&["up", "--board", &b, "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    let ready = json_lines(&o);
    assert_eq!(ready.len(), 4, "{}", text(&o));
    for (v, c) in ready.iter().zip(CORES) {
        assert_eq!(v["ready"], true, "{v}");
        assert!(
            v["board"].as_str().unwrap().ends_with(&format!("/ {c}")),
            "{v}"
        );
    }
    let pids = owner_pids(&rt);
    let mut owners: Vec<u64> = pids.iter().map(|p| p.0).collect();
    owners.dedup();
    assert_eq!(owners.len(), 4, "one owner process per core: {pids:?}");

    let o = rt.run(&["ping", "--board", &b, "--count", "200", "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    let rows = json_lines(&o);
    assert_eq!(rows.len(), 4, "{}", text(&o));
    for (v, c) in rows.iter().zip(CORES) {
        assert_eq!(
            (
                v["core"].as_str(),
                v["verified"].as_u64(),
                v["errors"].as_u64()
            ),
            (Some(c), Some(200), Some(0)),
            "{v}"
        );
    }
    let o = rt.run(&["echo", "--board", &b, "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    let rows = json_lines(&o);
    assert_eq!(rows.len(), 4, "{}", text(&o));
    for (v, c) in rows.iter().zip(CORES) {
        assert_eq!(v["core"], c, "{v}");
        assert_eq!(v["errors"], 0, "{v}");
        assert_eq!(v["messages"], v["max_payload"], "one of each size: {v}");
        assert_eq!(v["verified"], v["messages"], "{v}");
    }
    let o = rt.run(&[
        "echo",
        "--board",
        &b,
        "--core",
        "r3",
        "--messages",
        "1000",
        "--json",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(json_lines(&o).len(), 1);

    let o = rt.run(&["bench", "rtt", "--board", &b, "--samples", "100"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("has 4 cores (r0, r1, r2, r3): name one with --core NAME"),
        "{}",
        text(&o)
    );
    let o = rt.run(&["ping", "--board", &b, "--core", "r9"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("no core \"r9\"; its cores: r0, r1, r2, r3"),
        "{}",
        text(&o)
    );

    let o = rt.run(&["down", "--board", &b, "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(json_lines(&o).len(), 4, "{}", text(&o));
    let o = rt.run(&["ping", "--board", &b, "--core", "r2"]);
    assert!(
        text(&o).contains(&format!("run `intercore up --board {b} --core r2`")),
        "{}",
        text(&o)
    );
}

/// The remote of r1 is killed (SIGKILL to its process) while r0, r2 and r3 each echo
/// 100000 messages: those three finish with every message verified and no error; r1's
/// ping fails saying its peer is gone; `ping` on the whole board fails (r1) yet reports
/// the other three fully verified; `down` stops all four.
#[test]
fn killing_one_remote_of_four_leaves_three_exchanging() {
    let rt = Rt::new("kill");
    let b = sim4();
    let o = rt.run(&["up", "--board", &b]);
    assert!(o.status.success(), "{}", text(&o));
    let pids = owner_pids(&rt);
    let others = ["r0", "r2", "r3"];
    let running: Vec<_> = others
        .iter()
        .map(|c| {
            rt.cmd(&[
                "echo",
                "--board",
                &b,
                "--core",
                c,
                "--messages",
                "100000",
                "--json",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let victim = pids[1].1 as i32;
    // The kill command, on the pid r1's owner reported for its remote.
    let k = Command::new("kill")
        .args(["-KILL", &victim.to_string()])
        .status()
        .unwrap();
    assert!(k.success());
    for (child, c) in running.into_iter().zip(others) {
        let o = child.wait_with_output().unwrap();
        assert!(o.status.success(), "{c}: {}", text(&o));
        let v = &json_lines(&o)[0];
        assert_eq!(
            (
                v["messages"].as_u64(),
                v["verified"].as_u64(),
                v["errors"].as_u64()
            ),
            (Some(100_000), Some(100_000), Some(0)),
            "{c}: {v}"
        );
    }
    // The killed core fails alone, and says why.
    let o = rt.run(&["ping", "--board", &b, "--core", "r1", "--count", "10"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("the peer is gone"), "{}", text(&o));
    let o = rt.run(&["ping", "--board", &b, "--count", "100", "--json"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let rows = json_lines(&o);
    assert_eq!(rows.len(), 4, "{}", text(&o));
    for v in &rows {
        let ok = v["core"] != "r1";
        assert_eq!(
            v["verified"].as_u64() == Some(100) && v["errors"] == 0,
            ok,
            "{v}"
        );
    }
    // The others' owners and remotes are the ones that were there before.
    assert_eq!(owner_pids_except(&rt, "r1"), [pids[0], pids[2], pids[3]]);
    let o = rt.run(&["down", "--board", &b]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("r1: down (simulated remote core exited with signal: 9"),
        "{}",
        text(&o)
    );
}

fn owner_pids_except(rt: &Rt, skip: &str) -> Vec<(u64, u64)> {
    CORES
        .iter()
        .filter(|c| **c != skip)
        .map(|c| {
            let o = rt.run(&[
                "ping",
                "--board",
                &sim4(),
                "--core",
                c,
                "--count",
                "1",
                "--json",
            ]);
            assert!(o.status.success(), "{}", text(&o));
            let v = &json_lines(&o)[0];
            (
                v["owner_pid"].as_u64().unwrap(),
                v["core_pid"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// The data plane on every link (issue 23.4): the four cores of boards/sim-4core.toml
/// opened in this process, one thread each, each link with its own pool
/// (`Link::open_data_plane`: one pool per link, mapped into that core's IOMMU only), all
/// four streaming CRC32C jobs at once, four buffers in flight per link. Every completion
/// comes back on the link it was submitted on, tagged with that core's index and job
/// number, its CRC checked; the remote's counts match.
#[test]
fn data_plane_on_four_links_at_once_every_buffer_verified() {
    use intercore::wire::dataplane::{DP_OK, DP_OP_CRC32C};
    use intercore_board::{BoardFile, OpenEnv};
    use std::time::Duration;
    intercore_cli::set_program(BIN);
    let f = BoardFile::from_file(sim4()).unwrap();
    assert_eq!(f.cores.len(), 4);
    let t = Some(Duration::from_secs(10));
    let handles: Vec<_> = f
        .cores
        .into_iter()
        .enumerate()
        .map(|(k, core)| {
            std::thread::spawn(move || -> Result<u64, String> {
                let env = || OpenEnv {
                    sim_remote: Some(intercore_cli::sim_remote().unwrap()),
                    sim_firmwares: intercore_cli::firmwares::sim(),
                    ..OpenEnv::default()
                };
                let b = &core.board;
                let mut link = b.open_with(env()).map_err(|e| format!("{k}: {e}"))?;
                let mut dp = link
                    .open_data_plane(b, &env(), t)
                    .map_err(|e| format!("{k}: {e}"))?;
                let mut bytes = 0u64;
                let mut lens = std::collections::HashMap::new();
                for round in 0..40usize {
                    for j in 0..4usize {
                        let job = round * 4 + j;
                        // 8 bytes .. ~1 MiB, a different size on every core and job.
                        let len = 8 + (job * 7919 + k * 104_729) % ((1 << 20) - 64);
                        let mut buf = dp.alloc(len + 4).ok_or(format!("{k}: pool empty"))?;
                        buf[..4].copy_from_slice(&(k as u32).to_le_bytes());
                        buf[4..8].copy_from_slice(&(job as u32).to_le_bytes());
                        for (i, x) in buf[8..len].iter_mut().enumerate() {
                            *x = (i * 31 + job + k * 3) as u8;
                        }
                        lens.insert(job as u32, (len, intercore::crc32c(&buf[..len])));
                        dp.submit(&mut link, buf, len, DP_OP_CRC32C)
                            .map_err(|e| format!("{k}/{job}: {e}"))?;
                    }
                    for _ in 0..4 {
                        let c = dp
                            .wait_complete(&mut link, t)
                            .map_err(|e| format!("{k}: {e}"))?;
                        let core_tag = u32::from_le_bytes(c[..4].try_into().unwrap());
                        let job = u32::from_le_bytes(c[4..8].try_into().unwrap());
                        if core_tag != k as u32 {
                            return Err(format!("{k}: a completion of core {core_tag}'s buffer"));
                        }
                        let (len, crc) = lens
                            .remove(&job)
                            .ok_or(format!("{k}: job {job} completed twice or never sent"))?;
                        if c.status() != DP_OK || c[len..len + 4] != crc.to_le_bytes() {
                            return Err(format!("{k}/{job}: status {}, CRC wrong", c.status()));
                        }
                        bytes += len as u64;
                    }
                }
                if !lens.is_empty() {
                    return Err(format!("{k}: {} jobs never completed", lens.len()));
                }
                let how = link
                    .shut_down(Duration::from_secs(5))
                    .map_err(|e| format!("{k}: {e}"))?;
                if !how.ends_with("exit status: 0") {
                    return Err(format!("{k}: the remote ended: {how}"));
                }
                Ok(bytes)
            })
        })
        .collect();
    for (k, h) in handles.into_iter().enumerate() {
        let bytes = h.join().unwrap().unwrap_or_else(|e| panic!("{e}"));
        assert!(bytes > 160 * 8, "core {k}: {bytes} bytes");
    }
}

/// A core that cannot come up fails alone: in a file with a simulated core and a QEMU core
/// whose image does not exist, `up` reports the QEMU core's error (naming its key) and
/// exits 1, and the simulated core is up and answers.
#[test]
fn a_core_that_cannot_come_up_fails_alone() {
    let rt = Rt::new("upfail");
    let dir = rt.0.join("boards");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("mixed.toml");
    std::fs::write(
        &file,
        "[board]\nname = \"mixed\"\n[memory]\nsource = \"memfd\"\n[cache]\nmode = \"coherent\"\n\
         [[core]]\nname = \"good\"\n[core.transport]\nkind = \"sim\"\nfirmware = \"echo\"\n[core.mapping]\nkind = \"sim-iommu\"\niova = 0xC0000000\n\
         [[core]]\nname = \"bad\"\n[core.transport]\nkind = \"qemu\"\ncore = \"r5f\"\nimage = \"/nonexistent/intercore-test.elf\"\n[core.mapping]\nkind = \"identity\"\n",
    )
    .unwrap();
    let f = file.to_str().unwrap();
    let o = rt.run(&["up", "--board", f]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("mixed / good: up"), "{}", text(&o));
    assert!(text(&o).contains("transport.image"), "{}", text(&o));
    let o = rt.run(&["ping", "--board", f, "--core", "good", "--count", "50"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = rt.run(&["down", "--board", f, "--core", "good"]);
    assert!(o.status.success(), "{}", text(&o));
}

/// The longest core name (32 characters) in a file with the longest stem the socket name
/// keeps (32): the owner's socket path stays within the 108 bytes of a Unix socket address
/// (the core's name is hashed, and only its first 16 characters are spelt out).
#[test]
fn longest_core_name_fits_a_socket_address() {
    let rt = Rt::new("l");
    let name = "c".repeat(32);
    let file = rt.0.join(format!("{}.toml", "b".repeat(32)));
    std::fs::write(
        &file,
        format!(
            "[board]\nname = \"long\"\n[transport]\nkind = \"sim\"\nfirmware = \"echo\"\n[memory]\nsource = \"memfd\"\n[mapping]\nkind = \"sim-iommu\"\niova = 0xC0000000\n[cache]\nmode = \"coherent\"\n[[core]]\nname = \"{name}\"\n[[core]]\nname = \"{}\"\n",
            "d".repeat(32)
        ),
    )
    .unwrap();
    let f = file.to_str().unwrap();
    let o = rt.run(&["up", "--board", f]);
    assert!(o.status.success(), "{}", text(&o));
    let o = rt.run(&["ping", "--board", f, "--count", "20"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = rt.run(&["down", "--board", f]);
    assert!(o.status.success(), "{}", text(&o));
}

/// `board check` on a file with several cores: the report lists the cores, its summary
/// has a section per core, and every finding names its core (the AM64x's five cores each
/// probed: each core's remote processor is looked for by its own name).
#[test]
fn board_check_reports_core_by_core() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../boards/ti-am64x-5core.toml");
    let r = intercore_cli::board::check(&file, &intercore_board::CheckEnv::default()).unwrap();
    assert_eq!(r.cores, ["r5f0_0", "r5f0_1", "r5f1_0", "r5f1_1", "m4f"]);
    for c in &r.cores {
        assert!(r.summary.contains(&format!("core {c}:")), "{}", r.summary);
        assert!(
            r.findings
                .iter()
                .any(|f| f.core.as_deref() == Some(c.as_str())),
            "{c}"
        );
    }
    assert!(r.findings.iter().all(|f| f.core.is_some()));
    let rp: Vec<_> = r
        .findings
        .iter()
        .filter(|f| f.topic == "remoteproc")
        .map(|f| (f.core.clone().unwrap(), f.message.clone()))
        .collect();
    assert_eq!(rp.len(), 5, "{rp:?}");
    assert!(rp[4].1.contains("5000000.m4fss"), "{rp:?}");
    // A single-core file: one core, findings without a core.
    let single = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../boards/sim.toml");
    let r = intercore_cli::board::check(&single, &intercore_board::CheckEnv::default()).unwrap();
    assert_eq!(r.cores, ["core0"]);
    assert!(r.findings.iter().all(|f| f.core.is_none()));
    assert!(!serde_json::to_string(&r).unwrap().contains("\"core\":"));
}
