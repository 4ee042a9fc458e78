//! `intercore up`, `ping`, `echo`, `bench --board` and `down` as real processes on the
//! simulated SoC's board (boards/sim.toml): the link owner in the background and in the
//! foreground, its control socket in a private runtime directory per test, and the errors a
//! user meets (no owner, a bad board, a dead owner, a second `up`, an unsafe runtime
//! directory). The QEMU boards run in scripts/test-boards.sh, which has the images.

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_intercore");

fn board(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../boards")
        .join(name)
}

/// A private runtime directory (mode 0700), removed on drop; every command runs with it as
/// XDG_RUNTIME_DIR.
struct Rt(PathBuf);

impl Rt {
    fn new(tag: &str) -> Self {
        let d = std::env::temp_dir().join(format!("intercore-link-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700)).unwrap();
        Self(d)
    }
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.args(args).env("XDG_RUNTIME_DIR", &self.0);
        c
    }
    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).stdin(Stdio::null()).output().unwrap()
    }
}

impl Drop for Rt {
    fn drop(&mut self) {
        // Stop any owner a failed test left (down on a board that is not up is harmless).
        for b in ["sim.toml", "sim-ti-k3.toml"] {
            let _ = self.run(&["down", "--board", board(b).to_str().unwrap()]);
        }
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Waits up to 5 s until process `pid` is gone (reaped: no /proc entry).
fn wait_gone(pid: u64) {
    let t = std::time::Instant::now();
    while Path::new(&format!("/proc/{pid}")).exists() && t.elapsed().as_secs() < 5 {
        std::thread::sleep(std::time::Duration::from_millis(20));
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

fn json_line(o: &Output) -> Value {
    let s = String::from_utf8_lossy(&o.stdout);
    serde_json::from_str(s.lines().last().unwrap_or(""))
        .unwrap_or_else(|e| panic!("{e}: {}", text(o)))
}

/// up → ping --json (every round trip verified) → echo (every size 1..496) → bench rtt and
/// bulk (rows name board and transport, baselines n/a) → a second up says "already up"
/// with the same owner → down; then ping names the command to run.
#[test]
fn up_ping_echo_bench_down_on_the_sim_board() {
    let rt = Rt::new("cycle");
    let b = board("sim.toml");
    let b = b.to_str().unwrap();
    let o = rt.run(&["up", "--board", b, "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    let up = json_line(&o);
    assert_eq!(up["ready"], true, "{up}");
    assert_eq!(up["transport"], "sim");
    let owner = up["owner_pid"].as_u64().unwrap();
    assert!(Path::new(&format!("/proc/{owner}")).exists());

    let o = rt.run(&["ping", "--board", b, "--count", "300", "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    let p = json_line(&o);
    assert_eq!(p["verified"], 300, "{p}");
    assert_eq!(p["errors"], 0, "{p}");
    assert_eq!(p["owner_pid"].as_u64(), Some(owner));
    assert!(p["p50_ns"].as_u64().unwrap() > 0 && p["min_ns"].as_u64() <= p["max_ns"].as_u64());

    let o = rt.run(&["echo", "--board", b, "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    let e = json_line(&o);
    assert_eq!(e["messages"], 496, "{e}");
    assert_eq!(e["verified"], 496, "{e}");
    assert_eq!(e["bytes"], 496 * 497 / 2, "{e}");

    let o = rt.run(&[
        "bench",
        "rtt",
        "bulk",
        "--board",
        b,
        "--samples",
        "100",
        "--json",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let rows: Vec<Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        rows.iter().all(|r| r["board"] == "simulated SoC"),
        "{rows:?}"
    );
    let rtt: Vec<_> = rows
        .iter()
        .filter(|r| r["bench"] == "rtt" && r["transport"] == "sim")
        .collect();
    assert_eq!(rtt.len(), 3, "{rows:?}");
    assert!(rtt.iter().all(|r| r["samples"] == 100 && r["errors"] == 0));
    assert!(
        rows.iter()
            .any(|r| r["transport"] == "unix-socket" && r["na"].is_string())
    );
    let bulk = rows.iter().find(|r| r["bench"] == "bulk").unwrap();
    assert_eq!(bulk["corrupted"], 0, "{bulk}");
    assert!(bulk["bytes"].as_u64().unwrap() > 0, "{bulk}");
    // Twice: the owner keeps its data plane between requests.
    let o = rt.run(&["bench", "bulk", "--board", b, "--json"]);
    assert!(o.status.success(), "{}", text(&o));

    let o = rt.run(&["up", "--board", b]);
    assert!(o.status.success(), "{}", text(&o));
    let s = String::from_utf8_lossy(&o.stdout);
    assert!(
        s.contains("already up") && s.contains(&owner.to_string()),
        "{s}"
    );

    let o = rt.run(&["down", "--board", b]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("exited with exit status: 0"),
        "{}",
        text(&o)
    );
    // The owner is gone (reaped by init: wait until /proc says so).
    wait_gone(owner);
    let o = rt.run(&["ping", "--board", b]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(&format!(
            "no link is up for board {b}: run `intercore up --board {b}`"
        )),
        "{err}"
    );
    assert!(
        std::fs::read_dir(rt.0.join("intercore"))
            .unwrap()
            .all(|e| { !e.unwrap().file_name().to_string_lossy().ends_with(".sock") })
    );
}

/// `up --foreground` is the owner itself: it prints one line once the link is up, serves
/// ping, and exits 0 after `down`.
#[test]
fn foreground_owner_serves_until_down() {
    let rt = Rt::new("fg");
    let b = board("sim-ti-k3.toml");
    let b = b.to_str().unwrap();
    let mut child = rt
        .cmd(&["up", "--board", b, "--foreground", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let v: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["transport"], "sim/ti-k3", "{v}");
    assert_eq!(v["owner_pid"].as_u64(), Some(child.id() as u64));
    let o = rt.run(&["ping", "--board", b, "--count", "50", "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(json_line(&o)["verified"], 50);
    let o = rt.run(&["down", "--board", b]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(child.wait().unwrap().success());
}

/// A killed owner leaves its socket: ping reports the owner gone (naming its pid and log)
/// and what to run; `up` replaces the stale socket and works again.
#[test]
fn dead_owner_is_reported_and_replaced() {
    let rt = Rt::new("dead");
    let b = board("sim.toml");
    let b = b.to_str().unwrap();
    let o = rt.run(&["up", "--board", b, "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    let owner = json_line(&o)["owner_pid"].as_u64().unwrap();
    Command::new("kill")
        .args(["-KILL", &owner.to_string()])
        .status()
        .unwrap();
    wait_gone(owner);
    let o = rt.run(&["ping", "--board", b]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(&format!("(pid {owner}) is gone")), "{err}");
    assert!(
        err.contains(&format!("run `intercore up --board {b}`")),
        "{err}"
    );
    let o = rt.run(&["up", "--board", b]);
    assert!(o.status.success(), "{}", text(&o));
    let o = rt.run(&["ping", "--board", b, "--count", "10"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = rt.run(&["down", "--board", b]);
    assert!(o.status.success(), "{}", text(&o));
}

/// Bad input is named: a missing board file (its path), an invalid one (the key), a QEMU
/// board without an image (transport.fw_dir, and the paths looked at), a runtime directory
/// others may enter (refused, naming it), a count out of range (usage error 2), and
/// `bench soak --board` (not offered).
#[test]
fn errors_name_what_and_where() {
    let rt = Rt::new("err");
    let o = rt.run(&["up", "--board", "/nonexistent/board.toml", "--json"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let e = json_line(&o);
    assert!(
        e["error"]["message"]
            .as_str()
            .unwrap()
            .contains("/nonexistent/board.toml"),
        "{e}"
    );

    let bad = rt.0.join("bad.toml");
    std::fs::write(&bad, "[board]\nname = \"x\"\n[transport]\nkind = \"tcp\"\n[memory]\nsource = \"memfd\"\n[cache]\nmode = \"coherent\"\n").unwrap();
    let o = rt.run(&["ping", "--board", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("transport.kind"),
        "{}",
        text(&o)
    );

    let q = rt.0.join("q.toml");
    std::fs::write(&q, "[board]\nname = \"q\"\n[transport]\nkind = \"qemu\"\ncore = \"m4f\"\nfw_dir = \"no-images\"\n[memory]\nsource = \"memfd\"\n[cache]\nmode = \"coherent\"\n").unwrap();
    let o = rt.run(&["up", "--board", q.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("transport.fw_dir") && err.contains("no-images/qemu-m4f.elf"),
        "{err}"
    );
    assert!(
        !std::fs::read_dir(rt.0.join("intercore"))
            .unwrap()
            .any(|e| { e.unwrap().file_name().to_string_lossy().ends_with(".sock") })
    );

    let o = rt.run(&[
        "ping",
        "--board",
        board("sim.toml").to_str().unwrap(),
        "--count",
        "0",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let o = rt.run(&[
        "bench",
        "soak",
        "--board",
        board("sim.toml").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));

    let open = Rt::new("open");
    std::fs::create_dir_all(open.0.join("intercore")).unwrap();
    std::fs::set_permissions(
        open.0.join("intercore"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let o = open.run(&["ping", "--board", board("sim.toml").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("mode 0700") && err.contains("755"), "{err}");
}

/// An ELF32 ARM image for the emulated R5F holding only a resource table (at 0x100000, in
/// a `.resource_table` section and a PT_LOAD segment) as vendors' tables are: an rpmsg
/// vdev with both vrings at FW_RSC_ADDR_ANY (256 entries, align 4096), no carveout, no
/// intercore vendor entry. Enough for `board check` and `up`'s checks, which refuse
/// before QEMU starts.
fn vendor_table_elf() -> Vec<u8> {
    let mut t = vec![0u8; 16 + 4 + 4 + 24 + 2 * 20];
    t[0..4].copy_from_slice(&1u32.to_le_bytes());
    t[4..8].copy_from_slice(&1u32.to_le_bytes());
    t[16..20].copy_from_slice(&20u32.to_le_bytes());
    t[20..24].copy_from_slice(&3u32.to_le_bytes());
    t[24..28].copy_from_slice(&7u32.to_le_bytes());
    t[32..36].copy_from_slice(&1u32.to_le_bytes());
    t[45] = 2;
    for i in 0..2 {
        let r = 48 + 20 * i;
        t[r..r + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        t[r + 4..r + 8].copy_from_slice(&4096u32.to_le_bytes());
        t[r + 8..r + 12].copy_from_slice(&256u32.to_le_bytes());
        t[r + 12..r + 16].copy_from_slice(&(i as u32 + 1).to_le_bytes());
    }
    let strtab = b"\0.resource_table\0.shstrtab\0";
    let (data_off, addr) = (0x100usize, 0x10_0000u32);
    let str_off = data_off + t.len();
    let sh_off = (str_off + strtab.len()).next_multiple_of(4);
    let mut v = vec![0u8; sh_off + 3 * 40];
    v[..4].copy_from_slice(b"\x7fELF");
    v[4] = 1; // ELFCLASS32
    v[5] = 1; // little-endian
    v[6] = 1;
    let w16 = |v: &mut Vec<u8>, at: usize, x: u16| v[at..at + 2].copy_from_slice(&x.to_le_bytes());
    let w32 = |v: &mut Vec<u8>, at: usize, x: u32| v[at..at + 4].copy_from_slice(&x.to_le_bytes());
    w16(&mut v, 16, 2); // ET_EXEC
    w16(&mut v, 18, 40); // EM_ARM
    w32(&mut v, 20, 1);
    w32(&mut v, 24, addr); // e_entry
    w32(&mut v, 28, 52); // e_phoff
    w32(&mut v, 32, sh_off as u32); // e_shoff
    w16(&mut v, 40, 52); // e_ehsize
    w16(&mut v, 42, 32); // e_phentsize
    w16(&mut v, 44, 1); // e_phnum
    w16(&mut v, 46, 40); // e_shentsize
    w16(&mut v, 48, 3); // e_shnum
    w16(&mut v, 50, 2); // e_shstrndx
    // PT_LOAD: the table, read/write.
    for (i, x) in [
        1,
        data_off as u32,
        addr,
        addr,
        t.len() as u32,
        t.len() as u32,
        6,
        4,
    ]
    .into_iter()
    .enumerate()
    {
        w32(&mut v, 52 + 4 * i, x);
    }
    v[data_off..data_off + t.len()].copy_from_slice(&t);
    v[str_off..str_off + strtab.len()].copy_from_slice(strtab);
    // Section 1: .resource_table (PROGBITS, WA); section 2: .shstrtab (STRTAB).
    let s1 = sh_off + 40;
    for (i, x) in [
        1u32,
        1,
        3,
        addr,
        data_off as u32,
        t.len() as u32,
        0,
        0,
        4,
        0,
    ]
    .into_iter()
    .enumerate()
    {
        w32(&mut v, s1 + 4 * i, x);
    }
    let s2 = sh_off + 80;
    for (i, x) in [
        17u32,
        3,
        0,
        0,
        str_off as u32,
        strtab.len() as u32,
        0,
        0,
        1,
        0,
    ]
    .into_iter()
    .enumerate()
    {
        w32(&mut v, s2 + 4 * i, x);
    }
    v
}

/// `board check` and `up` agree: for each QEMU board `up` refuses — the image missing
/// (`transport.image`), not firmware for the core (`transport.image`), a vendor table whose
/// ANY vrings have no pool to go to (`vdev.pool_base`), a pool outside the shared RAM —
/// `board check --strict` fails (exit 3, an `[error]` line) naming the same key `up` names, and `up` starts no owner. (Before,
/// `board check` said "nothing stops this machine from opening the board" for the last
/// two, and a qemu board could not name an image at all.) With the pool given, the check
/// passes and says where the host places the rings and buffers.
#[test]
fn board_check_fails_naming_the_key_for_every_qemu_board_up_refuses() {
    let rt = Rt::new("check-agrees");
    let elf = rt.0.join("vendor.elf");
    std::fs::write(&elf, vendor_table_elf()).unwrap();
    let not_arm = rt.0.join("not-arm.elf");
    std::fs::copy(BIN, &not_arm).unwrap();
    let board = |name: &str, image: &str, extra: &str| {
        let p = rt.0.join(format!("{name}.toml"));
        std::fs::write(
            &p,
            format!("[board]\nname = \"{name}\"\n[transport]\nkind = \"qemu\"\ncore = \"r5f\"\nimage = \"{image}\"\n{extra}[memory]\nsource = \"memfd\"\n[cache]\nmode = \"coherent\"\n[rpmsg]\nwait = \"poll\"\n"),
        )
        .unwrap();
        p
    };
    let cases = [
        (
            board("missing", "${INTERCORE_TEST_NOWHERE:-nowhere}/fw.elf", ""),
            "transport.image",
        ),
        (board("not-arm", "not-arm.elf", ""), "transport.image"),
        (board("no-pool", "vendor.elf", ""), "vdev.pool_base"),
        (
            board(
                "far-pool",
                "vendor.elf",
                "[vdev]\npool_base = 0x2000000\npool_size = 0x100000\n",
            ),
            "vdev.pool_base",
        ),
    ];
    for (b, key) in &cases {
        let f = b.to_str().unwrap();
        let check = rt.run(&["board", "check", "--strict", f]);
        assert_eq!(check.status.code(), Some(3), "{f}: {}", text(&check));
        let out = text(&check);
        assert!(
            out.lines()
                .any(|l| l.contains("[error]") && l.contains(key)),
            "{f}: board check must name {key}: {out}"
        );
        let up = rt.run(&["up", "--board", f]);
        assert_eq!(up.status.code(), Some(1), "{f}: {}", text(&up));
        assert!(
            text(&up).contains(key),
            "{f}: up must name {key}: {}",
            text(&up)
        );
    }
    let ok = board(
        "pool",
        "vendor.elf",
        "[vdev]\npool_base = 0x200000\npool_size = 0x100000\n",
    );
    let check = rt.run(&["board", "check", "--strict", ok.to_str().unwrap()]);
    let out = text(&check);
    assert_eq!(check.status.code(), Some(0), "{out}");
    assert!(
        out.contains("vring 1: 256 entries, align 4096, placed by the host at 0x204000"),
        "{out}"
    );
    assert!(
        out.contains("512 × 512 B placed by the host at 0x240000"),
        "{out}"
    );
    assert!(out.contains("the host polls the rings"), "{out}");
}
