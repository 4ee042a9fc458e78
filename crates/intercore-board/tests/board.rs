//! Board configuration files: every file shipped in `boards/` parses and validates;
//! malformed files are refused with problems that name the key and what is allowed; and
//! `Board::check` reports, against a fake `/sys` + `/dev` + `/proc/device-tree` tree, what
//! it would open and why it could not.

use intercore::WaitMode;
use intercore_board::*;
use intercore_board::{DA_BASE, Eviction, FirmwareName, POOL_IOVA, SimLayout};
use intercore_linux::remoteproc::fake::{FakeKernel, FakeRproc};
use std::path::{Path, PathBuf};
use std::time::Duration;

fn boards_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../boards")
}

fn board_files() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(boards_dir())
        .expect("boards/ exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    v.sort();
    v
}

/// The problems of an invalid configuration, as `key = value: message` lines.
fn problems(text: &str) -> Vec<String> {
    match Board::from_str(text) {
        Ok(b) => panic!("accepted:\n{b}"),
        Err(e) => {
            assert!(!e.problems().is_empty(), "{e}");
            e.problems().iter().map(|p| p.to_string()).collect()
        }
    }
}

/// Asserts one of `probs` names `key` and contains every `needle`.
fn has(probs: &[String], key: &str, needles: &[&str]) {
    let hit = probs.iter().any(|p| {
        (p.starts_with(key) || p.contains(&format!(": {key}")) || p.contains(&format!(" {key} ")))
            && needles.iter().all(|n| p.contains(n))
    });
    assert!(
        hit,
        "no problem naming {key} with {needles:?} in:\n{probs:#?}"
    );
}

const SIM: &str = r#"
[board]
name = "t"
[transport]
kind = "sim"
[memory]
source = "memfd"
[cache]
mode = "coherent"
"#;

mod common;
use common::REAL;

/// Every file in boards/ parses with `Board::from_file` and passes validation; each real
/// board names a remote processor and is for an aarch64 host, the simulator's is for any.
#[test]
fn every_shipped_board_validates() {
    let files = board_files();
    assert!(files.len() >= 4, "{files:?}");
    // A file with several cores (`[[core]]`): each core is a whole board.
    let boards = files.iter().flat_map(|f| {
        BoardFile::from_file(f)
            .unwrap_or_else(|e| panic!("{}: {e}", f.display()))
            .cores
            .into_iter()
            .map(move |c| (f, c.board))
    });
    for (f, b) in boards {
        assert_eq!(b.file.as_deref(), Some(f.as_path()));
        match b.transport {
            TransportSpec::Sim { .. } | TransportSpec::Qemu { .. } => {
                assert_eq!(b.arch, Arch::Any, "{}", f.display());
                assert!(b.remoteproc.is_none());
            }
            _ => {
                assert_eq!(b.arch, Arch::Aarch64, "{}", f.display());
                assert!(b.remoteproc.is_some(), "{}", f.display());
            }
        }
        // The summary names every aspect.
        let s = b.to_string();
        for w in [
            "board",
            "transport",
            "memory",
            "mapping",
            "cache",
            "rpmsg",
            "pool",
        ] {
            assert!(s.contains(w), "{s}");
        }
    }
}

/// The shipped boards carry the mainline device trees' values: AM64x R5FSS0 core 0 is
/// 78000000.r5f with am64-main-r5f0_0-fw, AM62x's M4F is 5000000.m4fss with
/// am62-mcu-m4f0_0-fw, ZynqMP's RPU0 is ffe00000.r5f; all use the kernel transport and
/// an identity-mapped no-map carveout; the simulator's uses SimConfig's defaults.
#[test]
fn shipped_boards_carry_the_device_tree_values() {
    let load = |n: &str| Board::from_file(boards_dir().join(n)).unwrap();
    for (file, name, fw) in [
        (
            "ti-am64x-r5f.toml",
            "78000000.r5f",
            Some("am64-main-r5f0_0-fw"),
        ),
        (
            "ti-am62x-m4f.toml",
            "5000000.m4fss",
            Some("am62-mcu-m4f0_0-fw"),
        ),
        (
            "amd-zynqmp-r5.toml",
            "ffe00000.r5f",
            Some("intercore-echo-r5.elf"),
        ),
    ] {
        let b = load(file);
        let r = b.remoteproc.as_ref().unwrap();
        assert_eq!(r.selector, RprocSelector::Name(name.into()), "{file}");
        assert_eq!(r.firmware.as_deref(), fw, "{file}");
        assert_eq!(r.boot, Boot::Load);
        assert_eq!(b.transport, TransportSpec::Kernel { ctrl: None }, "{file}");
        assert!(matches!(
            b.memory,
            MemorySpec::Carveout(PoolCarveout::DevMem(RegionSpec::ReservedMemory { .. }))
        ));
        assert_eq!(b.mapping, MappingSpec::Identity);
        assert_eq!(b.rpmsg.buffer_size, 512);
    }
    // TI's own echo firmware on the SD card: its service name, the kernel transport, a
    // one-huge-page pool (no device-tree change).
    let ti = load("ti-am64x-r5f-ti-echo.toml");
    assert_eq!(ti.rpmsg.service, "rpmsg_chrdev");
    assert_eq!(ti.transport, TransportSpec::Kernel { ctrl: None });
    assert_eq!(ti.memory, MemorySpec::Hugetlb { size: 0x20_0000 });
    assert_eq!(ti.mapping, MappingSpec::Identity);
    let sim = load("sim.toml");
    assert_eq!(
        sim.transport,
        TransportSpec::Sim {
            firmware: FirmwareName::Offload,
            da_base: 0xA000_0000,
            event_idx: false,
            layout: SimLayout::Standard,
        }
    );
    assert_eq!(sim.mapping, MappingSpec::SimIommu { iova: POOL_IOVA });
    assert_eq!(sim.pool, default_pool());
    assert_eq!(
        sim.rpmsg.wait,
        WaitMode::Adaptive(Duration::from_micros(50))
    );
}

/// Omitted tables and keys take the documented defaults: 256 × 512-byte buffers, adaptive
/// waiting, a 1 s timeout, the "rpmsg-raw" service, the simulator's pool, identity mapping
/// for a carveout and the simulator's IOMMU for a memfd.
#[test]
fn defaults() {
    let b = Board::from_str(SIM).unwrap();
    assert_eq!(b.rpmsg.buffers, 256);
    assert_eq!(b.rpmsg.buffer_size, 512);
    assert_eq!(b.rpmsg.wait, WaitMode::default());
    assert_eq!(b.rpmsg.timeout, Duration::from_secs(1));
    assert_eq!(b.rpmsg.service, "rpmsg-raw");
    assert_eq!(b.pool, default_pool());
    assert_eq!(b.mapping, MappingSpec::SimIommu { iova: POOL_IOVA });
    let r = Board::from_str(REAL).unwrap();
    assert_eq!(r.mapping, MappingSpec::Identity);
    assert_eq!(
        r.remoteproc.unwrap().control,
        intercore_linux::remoteproc::Control::Sysfs
    );
    let hc = b.rpmsg.host_config();
    assert_eq!((hc.num_bufs, hc.buf_size), (256, 512));
}

/// An unknown key is an error that names the dotted key, its line, and the keys allowed
/// there (serde's `deny_unknown_fields`).
#[test]
fn unknown_keys_are_named() {
    let p = problems(&format!("{REAL}bogus = 1\n"));
    has(
        &p,
        "line 15: cache.bogus",
        &["unknown key", "\"mode\"", "\"io_coherent\""],
    );
    let p = problems(&REAL.replace("[memory]", "[memory]\nheap_name = \"x\""));
    has(&p, "line", &["memory.heap_name", "unknown key", "\"heap\""]);
    let p = problems(&format!("{REAL}[extra]\nx = 1\n"));
    has(&p, "line", &["extra", "unknown key", "\"remoteproc\""]);
}

/// A value of the wrong type, and a missing required key or table, are named with their
/// dotted key.
#[test]
fn wrong_types_and_missing_keys_are_named() {
    let p = problems(&format!("{SIM}[rpmsg]\nbuffers = \"many\"\n"));
    has(&p, "line", &["rpmsg.buffers", "invalid type"]);
    let p = problems(&SIM.replace("kind = \"sim\"", ""));
    has(&p, "line", &["transport.kind", "missing"]);
    let p = problems(&SIM.replace("[cache]\nmode = \"coherent\"", ""));
    // A missing table is named at the top level, without a line.
    has(&p, "cache: missing", &[]);
    let p = problems(&format!("{SIM}[rpmsg]\ntimeout_ms = -5\n"));
    has(&p, "line", &["rpmsg.timeout_ms"]);
}

/// Enumerated values list what is allowed.
#[test]
fn enumerations_list_the_allowed_values() {
    let p = problems(&SIM.replace("\"sim\"", "\"tcp\""));
    has(
        &p,
        "transport.kind",
        &["\"tcp\"", "\"sim\", \"qemu\", \"userspace\", \"kernel\""],
    );
    let p = problems(&SIM.replace("\"memfd\"", "\"shm\""));
    has(
        &p,
        "memory.source",
        &["\"memfd\", \"carveout\", \"dma-heap\", \"udmabuf\""],
    );
    let p = problems(&SIM.replace("\"coherent\"", "\"writeback\""));
    has(
        &p,
        "cache.mode",
        &["\"arm64-el0\"", "\"dma-buf\"", "\"sim-noncoherent\""],
    );
    let p = problems(
        &REAL
            .replace("[board]", "[board]\narch = \"riscv64\"")
            .replace("arch = \"aarch64\"\n", ""),
    );
    has(
        &p,
        "board.arch",
        &["\"riscv64\"", "\"aarch64\", \"x86_64\", \"any\""],
    );
    let p = problems(&format!("{SIM}[rpmsg]\nwait = \"spin\"\n"));
    has(&p, "rpmsg.wait", &["\"spin\"", "adaptive:MICROS"]);
}

/// A simulated board names the simulator's own vocabulary: its firmware and layout, its
/// eviction parameters (the simulator's defaults when omitted), and converts to the
/// simulator's cache mode; the real backends have no simulated counterpart.
#[test]
fn sim_board_uses_the_simulators_types() {
    let b = Board::from_str(&SIM.replace(
        "kind = \"sim\"",
        "kind = \"sim\"\nfirmware = \"sink\"\nlayout = \"ti-k3\"",
    ))
    .unwrap();
    assert!(matches!(
        b.transport,
        TransportSpec::Sim {
            firmware: FirmwareName::Sink,
            layout: SimLayout::TiK3,
            da_base: DA_BASE,
            ..
        }
    ));
    assert_eq!(b.cache.mode, CacheMaintenance::Coherent);
    let nc = Board::from_str(&SIM.replace("\"coherent\"", "\"sim-noncoherent\"")).unwrap();
    assert_eq!(
        nc.cache.mode,
        CacheMaintenance::SimNoncoherent(Eviction::default())
    );
    let e = Eviction {
        seed: 9,
        per_mille: 7,
    };
    let nc = Board::from_str(&SIM.replace(
        "\"coherent\"",
        "\"sim-noncoherent\"\nseed = 9\nper_mille = 7",
    ))
    .unwrap();
    assert_eq!(nc.cache.mode, CacheMaintenance::SimNoncoherent(e));
    has(
        &problems(&SIM.replace("kind = \"sim\"", "kind = \"sim\"\nfirmware = \"blink\"")),
        "transport.firmware = \"blink\"",
        &["expected one of \"echo\", \"offload\", \"sink\""],
    );
    has(
        &problems(&SIM.replace("kind = \"sim\"", "kind = \"sim\"\nlayout = \"k3\"")),
        "transport.layout = \"k3\"",
        &["expected one of \"standard\", \"ti-k3\""],
    );
}

/// The wait syntax is the command line's (`WaitMode`'s `FromStr` and `Display`): event,
/// poll, adaptive, adaptive:MICROS; the summary prints it back.
#[test]
fn wait_modes_round_trip() {
    for s in ["event", "poll", "adaptive:50", "adaptive:0"] {
        assert_eq!(s.parse::<WaitMode>().unwrap().to_string(), s);
        let b = Board::from_str(&format!("{SIM}[rpmsg]\nwait = \"{s}\"\n")).unwrap();
        assert!(b.to_string().contains(&format!("wait {s},")), "{b}");
    }
    assert_eq!("adaptive".parse::<WaitMode>(), Ok(WaitMode::default()));
    assert!("adaptive:x".parse::<WaitMode>().is_err());
    assert!("spin".parse::<WaitMode>().is_err());
}

/// `arm64-el0` needs an aarch64 host: refused for a board declared x86_64 or any.
#[test]
fn arm64_el0_needs_an_aarch64_board() {
    let x86 = REAL
        .replace("arch = \"aarch64\"", "arch = \"x86_64\"")
        .replace("\"coherent\"", "\"arm64-el0\"");
    has(
        &problems(&x86),
        "cache.mode = \"arm64-el0\"",
        &["needs an aarch64 host", "\"x86_64\""],
    );
    let ok = REAL.replace("\"coherent\"", "\"arm64-el0\"");
    assert_eq!(
        Board::from_str(&ok).unwrap().cache.mode,
        CacheMaintenance::Arm64El0
    );
}

/// Keys that belong to another kind are refused, naming the kind they apply to; keys a
/// kind needs are reported missing.
#[test]
fn keys_must_fit_the_kind() {
    let p = problems(&REAL.replace("[memory]", "[memory]\nheap = \"system\""));
    has(
        &p,
        "memory.heap",
        &["applies only to memory.source = \"dma-heap\""],
    );
    let heap = REAL.replace(
        "source = \"carveout\"\nreserved_memory = \"intercore-pool@a6000000\"",
        "source = \"dma-heap\"",
    );
    let p = problems(&heap);
    has(&p, "memory.heap", &["missing"]);
    has(&p, "memory.size", &["missing"]);
    let p = problems(&format!(
        "{REAL}[mapping]\nkind = \"identity\"\ngroup = 3\n"
    ));
    has(
        &p,
        "mapping.group",
        &["applies only to mapping.kind = \"vfio\""],
    );
    let p = problems(&REAL.replace("kind = \"kernel\"", "kind = \"kernel\"\nda_base = 0"));
    has(
        &p,
        "transport.da_base",
        &["applies only to transport.kind = \"sim\""],
    );
    let p = problems(&REAL.replace("[memory]", "[memory]\nbase = 0xa6000000"));
    has(
        &p,
        "memory.base",
        &["either memory.reserved_memory or memory.base"],
    );
}

/// Combinations that cannot work are refused with the reason: a memfd on a real board, a
/// carveout on the simulator, identity mapping of a dma-heap buffer, a udmabuf without an
/// IOMMU, `coherent` over a cacheable dma-heap mapping, `dma-buf` without a dma-buf, the
/// cache model outside the simulator, and a [remoteproc] table for the simulator.
#[test]
fn impossible_combinations_are_refused() {
    let p = problems(&REAL.replace(
        "source = \"carveout\"\nreserved_memory = \"intercore-pool@a6000000\"",
        "source = \"memfd\"",
    ));
    has(&p, "memory.source = \"memfd\"", &["simulated"]);
    let heap = REAL.replace(
        "source = \"carveout\"\nreserved_memory = \"intercore-pool@a6000000\"",
        "source = \"dma-heap\"\nheap = \"reserved\"\nsize = 0x2000000",
    );
    has(
        &problems(&heap),
        "mapping",
        &["missing", "\"vfio\"", "\"ti-rproc-attach\""],
    );
    let p = problems(&format!("{heap}[mapping]\nkind = \"identity\"\n"));
    has(
        &p,
        "mapping.kind = \"identity\"",
        &["needs a pool with a physical address"],
    );
    has(
        &p,
        "cache.mode = \"coherent\"",
        &["cacheable", "io_coherent"],
    );
    let ti =
        heap.replace("\"coherent\"", "\"arm64-el0\"") + "[mapping]\nkind = \"ti-rproc-attach\"\n";
    assert_eq!(
        Board::from_str(&ti).unwrap().mapping,
        MappingSpec::TiRprocAttach
    );
    let udma = REAL
        .replace(
            "source = \"carveout\"\nreserved_memory = \"intercore-pool@a6000000\"",
            "source = \"udmabuf\"\nsize = 0x2000000",
        )
        .replace("\"coherent\"", "\"dma-buf\"")
        + "[mapping]\nkind = \"ti-rproc-attach\"\n";
    let p = problems(&udma);
    has(&p, "mapping.kind = \"ti-rproc-attach\"", &["\"dma-heap\""]);
    has(
        &p,
        "mapping.kind = \"ti-rproc-attach\"",
        &["scattered", "\"vfio\""],
    );
    let p = problems(&REAL.replace("\"coherent\"", "\"dma-buf\""));
    has(&p, "cache.mode = \"dma-buf\"", &["needs a dma-buf"]);
    let p = problems(&REAL.replace("\"coherent\"", "\"sim-noncoherent\""));
    has(
        &p,
        "cache.mode = \"sim-noncoherent\"",
        &["only in the simulated SoC"],
    );
    let p = problems(&format!("{SIM}[remoteproc]\nindex = 0\n"));
    has(
        &p,
        "remoteproc",
        &["no remote processor", "transport.firmware"],
    );
    let p = problems(&REAL.replace(
        "[remoteproc]\nname = \"78000000.r5f\"\nfirmware = \"am64-main-r5f0_0-fw\"\n",
        "",
    ));
    has(&p, "remoteproc", &["missing"]);
}

/// rpmsg values are checked against the transport: the kernel's buffers are fixed at 512
/// bytes and at most 256 per direction; the userspace transport's poll-only doorbell needs
/// `wait = "poll"`; sizes follow the host bus's limits; the service fits 31 bytes.
#[test]
fn rpmsg_values_fit_the_transport() {
    let p = problems(&format!(
        "{REAL}[rpmsg]\nbuffer_size = 1024\nbuffers = 512\n"
    ));
    has(
        &p,
        "rpmsg.buffer_size = 1024",
        &["fixed 512-byte", "\"userspace\""],
    );
    has(&p, "rpmsg.buffers = 512", &["at most 256"]);
    let p = problems(&format!("{SIM}[rpmsg]\nbuffer_size = 20\nbuffers = 100\n"));
    has(
        &p,
        "rpmsg.buffer_size = 20",
        &["multiple of 8 in 32..=65551"],
    );
    has(&p, "rpmsg.buffers = 100", &["power of two"]);
    let p = problems(&format!(
        "{SIM}[rpmsg]\nservice = \"{}\"\ntimeout_ms = 0\n",
        "x".repeat(32)
    ));
    has(&p, "rpmsg.service", &["1..=31 bytes"]);
    has(&p, "rpmsg.timeout_ms = 0", &["never waits forever"]);
    let user = REAL.replace(
        "kind = \"kernel\"",
        "kind = \"userspace\"\nregion = \"r5f-dma-memory@a0000000\"",
    );
    has(
        &problems(&user),
        "rpmsg.wait = \"adaptive:50\"",
        &["use wait = \"poll\""],
    );
    let ok = format!("{user}[rpmsg]\nwait = \"poll\"\nbuffer_size = 1024\n");
    let b = Board::from_str(&ok).unwrap();
    assert_eq!(b.rpmsg.buffer_size, 1024);
    assert!(matches!(b.transport, TransportSpec::Userspace { .. }));
    let p = problems(&ok.replace(
        "kind = \"userspace\"",
        "kind = \"userspace\"\ndoorbell = \"mailbox\"",
    ));
    has(
        &p,
        "transport.doorbell = \"mailbox\"",
        &["\"poll\" or \"uio\""],
    );
}

/// `transport.doorbell = "uio"`: the device and the register layout are required and
/// checked (K3 cluster: 16 FIFOs, 4 users; ZynqMP: one agent bit), the layout's keys apply
/// only to their mailbox, and a UIO doorbell lets the host sleep (any wait mode).
#[test]
fn uio_doorbell_keys() {
    use intercore_board::DoorbellSpec;
    use intercore_linux::UioLayout;
    let user = REAL.replace(
        "kind = \"kernel\"",
        "kind = \"userspace\"\nregion = \"r5f-dma-memory@a0000000\"\ndoorbell = \"uio\"\nuio_device = \"uio3\"\nmailbox = \"omap\"\nmbox_tx = 1\nmbox_rx = 0\nmbox_user = 2\nvring_offset = 0x1000",
    );
    let b = Board::from_str(&user).unwrap();
    let TransportSpec::Userspace {
        doorbell: DoorbellSpec::Uio { device, layout },
        vring_offset,
        ..
    } = &b.transport
    else {
        panic!("{:?}", b.transport)
    };
    assert_eq!(device, "uio3");
    assert_eq!(*vring_offset, Some(0x1000));
    assert!(
        matches!(layout, UioLayout::OmapMailbox(m) if m.tx == 1 && m.rx == 0 && m.user == 2 && m.map == 0)
    );
    let p = problems(
        &user
            .replace("mbox_tx = 1", "mbox_tx = 16")
            .replace("mbox_user = 2", "mbox_user = 4"),
    );
    has(&p, "transport.mbox_tx = 16", &["0..16"]);
    has(&p, "transport.mbox_user = 4", &["0..4"]);
    let p = problems(
        &user
            .replace("uio_device = \"uio3\"\n", "")
            .replace("mbox_rx = 0\n", ""),
    );
    has(&p, "transport.uio_device", &["missing"]);
    has(&p, "transport.mbox_rx", &["missing"]);
    let p = problems(&user.replace(
        "mailbox = \"omap\"",
        "mailbox = \"zynqmp-ipi\"\nipi_remote = 0x300\nipi_req_offset = 0x600",
    ));
    has(&p, "transport.mbox_tx", &["transport.mailbox = \"omap\""]);
    has(&p, "transport.ipi_remote", &["one agent's bit"]);
    let ipi = user
        .replace(
            "mailbox = \"omap\"",
            "mailbox = \"zynqmp-ipi\"\nipi_remote = 0x100\nipi_req_offset = 0x600",
        )
        .replace("mbox_tx = 1\nmbox_rx = 0\nmbox_user = 2\n", "");
    let b = Board::from_str(&ipi).unwrap();
    assert!(matches!(
        b.transport,
        TransportSpec::Userspace { doorbell: DoorbellSpec::Uio { layout: UioLayout::ZynqmpIpi(i), .. }, .. }
            if i.remote == 0x100 && i.req_offset == 0x600 && i.regs_map == 0 && i.buf_map == 1
    ));
    let p = problems(&user.replace("doorbell = \"uio\"", "doorbell = \"poll\""));
    has(
        &p,
        "transport.uio_device",
        &["transport.doorbell = \"uio\""],
    );
    has(&p, "rpmsg.wait", &["use wait = \"poll\""]);
}

/// remoteproc: name or index (not both, not neither); the firmware is a plain file name;
/// firmware_file needs boot = "load" and a firmware name.
#[test]
fn remoteproc_selection_and_firmware() {
    let p = problems(&REAL.replace(
        "name = \"78000000.r5f\"",
        "name = \"78000000.r5f\"\nindex = 1",
    ));
    has(&p, "remoteproc.index", &["not both"]);
    let p = problems(&REAL.replace("name = \"78000000.r5f\"\n", ""));
    has(&p, "remoteproc.name", &["missing"]);
    let p = problems(&REAL.replace("\"am64-main-r5f0_0-fw\"", "\"/lib/firmware/x\""));
    has(
        &p,
        "remoteproc.firmware = \"/lib/firmware/x\"",
        &["plain file name", "firmware_file"],
    );
    let p = problems(&REAL.replace(
        "firmware = \"am64-main-r5f0_0-fw\"",
        "boot = \"attach\"\nfirmware_file = \"fw.elf\"",
    ));
    has(&p, "remoteproc.firmware_file", &["boot = \"load\""]);
    has(&p, "remoteproc.firmware", &["missing"]);
    let b = Board::from_str(&REAL.replace("name = \"78000000.r5f\"", "index = 2")).unwrap();
    assert_eq!(b.remoteproc.unwrap().selector, RprocSelector::Index(2));
}

/// The pool must fit the memory it is given, its classes go smallest first, and the
/// alignment is a power of two of at least a cache line.
#[test]
fn pool_must_fit() {
    let p = problems(&format!(
        "{}[pool]\nclasses = [[4096, 16], [1048576, 32]]\n",
        SIM.replace("source = \"memfd\"", "source = \"memfd\"\nsize = 0x100000")
    ));
    has(&p, "pool.classes", &["more than memory.size = 0x100000"]);
    let p = problems(&format!(
        "{SIM}[pool]\nclasses = [[65536, 1], [4096, 1]]\nalign = 48\n"
    ));
    has(&p, "pool.classes[1] = [4096, 1]", &["smallest first"]);
    has(&p, "pool.align = 48", &["power of two"]);
    let p = problems(&format!("{SIM}[pool]\nclasses = []\n"));
    has(&p, "pool.classes = []", &["at least one"]);
}

/// All problems of a file are reported at once, not only the first.
#[test]
fn all_problems_at_once() {
    let bad = REAL
        .replace("arch = \"aarch64\"", "arch = \"x86_64\"")
        .replace("\"coherent\"", "\"arm64-el0\"")
        .replace("firmware = \"am64-main-r5f0_0-fw\"", "firmware = \"a/b\"")
        + "[rpmsg]\nbuffer_size = 4096\n";
    let p = problems(&bad);
    assert!(p.len() >= 3, "{p:#?}");
    has(&p, "cache.mode", &["aarch64"]);
    has(&p, "remoteproc.firmware", &["plain file name"]);
    has(&p, "rpmsg.buffer_size", &["512"]);
    // Also when a table cannot be built at all: the later tables are still checked.
    let p = problems(
        &SIM.replace("\"memfd\"", "\"shm\"")
            .replace("\"sim\"", "\"tcp\"")
            .replace("\"coherent\"", "\"writeback\""),
    );
    has(&p, "transport.kind", &["\"tcp\""]);
    has(&p, "memory.source", &["\"shm\""]);
    has(&p, "cache.mode", &["\"writeback\""]);
}

/// The error of a file names the file; an unreadable path is an I/O error naming it.
#[test]
fn file_errors_name_the_file() {
    let dir = std::env::temp_dir().join(format!("intercore-board-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("bad.toml");
    std::fs::write(&f, SIM.replace("\"memfd\"", "\"shm\"")).unwrap();
    let e = Board::from_file(&f).unwrap_err().to_string();
    assert!(e.contains("bad.toml") && e.contains("memory.source"), "{e}");
    let e = Board::from_file(dir.join("none.toml")).unwrap_err();
    assert!(matches!(e, BoardError::Io { .. }), "{e}");
    assert!(e.to_string().contains("none.toml"));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A fake board: the remoteproc tree of `FakeKernel`, plus `/proc/device-tree`
/// reserved-memory nodes and device nodes (regular files standing in).
fn fake_board() -> FakeKernel {
    let k = FakeKernel::new(&[
        FakeRproc::offline("5000000.m4fss", "am64-mcu-m4f0_0-fw"),
        FakeRproc::offline("78000000.r5f", "am64-main-r5f0_0-fw"),
    ]);
    let root = k.root();
    let rm = root.join("proc/device-tree/reserved-memory");
    let node = |name: &str, reg: &[u8], no_map: bool| {
        let d = rm.join(name);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("reg"), reg).unwrap();
        if no_map {
            std::fs::write(d.join("no-map"), b"").unwrap();
        }
    };
    // 2 + 2 cells: base, size.
    let reg = |base: u64, size: u64| {
        let mut v = base.to_be_bytes().to_vec();
        v.extend_from_slice(&size.to_be_bytes());
        v
    };
    node(
        "intercore-pool@a6000000",
        &reg(0xa600_0000, 0x200_0000),
        true,
    );
    node("cached-pool@a8000000", &reg(0xa800_0000, 0x200_0000), false);
    node(
        "r5f-dma-memory@a0000000",
        &reg(0xa000_0000, 0x10_0000),
        true,
    );
    std::fs::write(root.join("dev/mem"), b"").unwrap();
    std::fs::write(root.join("dev/rpmsg_ctrl0"), b"").unwrap();
    k
}

fn env(k: &FakeKernel, arch: &str) -> CheckEnv {
    CheckEnv {
        host_arch: arch.into(),
        ..CheckEnv::under(k.root())
    }
}

fn errors(f: &[Finding]) -> Vec<&Finding> {
    f.iter().filter(|f| f.level == Level::Error).collect()
}

fn render(f: &[Finding]) -> String {
    f.iter().map(|f| format!("{f}\n")).collect()
}

/// The AM64x board checked on a (fake) AM64x: the remote processor, the rpmsg control
/// device, the reserved-memory node and /dev/mem are all found, nothing is an error, and
/// the findings say what would be opened (the physical range, the device addresses) and
/// the Device-memory caveat of a no-map carveout.
#[test]
fn check_finds_everything_on_a_matching_board() {
    let k = fake_board();
    let b = Board::from_file(boards_dir().join("ti-am64x-r5f.toml")).unwrap();
    let f = b.check(&env(&k, "aarch64"));
    let out = render(&f);
    assert!(errors(&f).is_empty(), "{out}");
    assert!(out.contains("remoteproc1 (78000000.r5f): offline"), "{out}");
    assert!(out.contains("/dev/rpmsg_ctrl0"), "{out}");
    assert!(
        out.contains("would map 0xa6000000+0x2000000 through /dev/mem (no-map)"),
        "{out}"
    );
    assert!(out.contains("0xa6000000..0xa8000000"), "{out}");
    assert!(out.contains("Device-nGnRnE"), "{out}");
    // The firmware is not installed in the fake firmware directory.
    assert!(
        f.iter().any(|x| x.level == Level::Warn
            && x.topic == "firmware"
            && x.message.contains("intercore rproc load")),
        "{out}"
    );
}

/// On a machine that is not the board, check says why for each part: the wrong host
/// architecture, no such remote processor (listing those that exist), no such
/// reserved-memory node (listing those that exist), no /dev/rpmsg_ctrlN, no /dev/mem.
#[test]
fn check_says_why_it_cannot_open() {
    let k = FakeKernel::new(&[FakeRproc::offline("5000000.m4fss", "x")]);
    std::fs::create_dir_all(k.root().join("proc/device-tree/reserved-memory/other@1000")).unwrap();
    let b = Board::from_file(boards_dir().join("ti-am64x-r5f.toml")).unwrap();
    let f = b.check(&env(&k, "x86_64"));
    let out = render(&f);
    let err = |topic: &str, needle: &str| {
        assert!(
            f.iter()
                .any(|x| x.level == Level::Error && x.topic == topic && x.message.contains(needle)),
            "no {topic} error with {needle:?}:\n{out}"
        )
    };
    err("board", "for an aarch64 host; this one is x86_64");
    err("remoteproc", "remoteproc0 (5000000.m4fss)");
    err("memory", "intercore-pool@a6000000");
    err("memory", "other@1000");
    err("memory", "CONFIG_DEVMEM");
    err("transport", "CONFIG_RPMSG_CHAR");
}

/// `coherent` over a reserved-memory node the kernel maps cacheable (no `no-map`) is an
/// error at check time (stale lines); `arm64-el0` over a no-map node is noted as
/// unnecessary, and is an error on a host that is not aarch64.
#[test]
fn check_relates_cache_mode_to_the_mapping() {
    let k = fake_board();
    let cached = REAL.replace("intercore-pool@a6000000", "cached-pool@a8000000");
    let f = Board::from_str(&cached).unwrap().check(&env(&k, "aarch64"));
    let out = render(&f);
    assert!(
        f.iter()
            .any(|x| x.level == Level::Error && x.topic == "cache" && x.message.contains("stale")),
        "{out}"
    );
    assert!(out.contains("CONFIG_STRICT_DEVMEM"), "{out}");
    let el0 = REAL.replace("\"coherent\"", "\"arm64-el0\"");
    let f = Board::from_str(&el0).unwrap().check(&env(&k, "x86_64"));
    let out = render(&f);
    assert!(
        out.contains("needs an aarch64 host; this one is x86_64"),
        "{out}"
    );
    assert!(out.contains("harmless but does nothing"), "{out}");
}

/// With several rpmsg control devices and none chosen, check asks for transport.ctrl; a
/// chosen one that exists is found.
#[test]
fn check_kernel_transport_ctrl() {
    let k = fake_board();
    std::fs::write(k.root().join("dev/rpmsg_ctrl1"), b"").unwrap();
    let b = Board::from_str(REAL).unwrap();
    let f = b.check(&env(&k, "aarch64"));
    assert!(
        f.iter().any(|x| x.level == Level::Error
            && x.message.contains("rpmsg_ctrl0, rpmsg_ctrl1")
            && x.message.contains("transport.ctrl")),
        "{}",
        render(&f)
    );
    let b = Board::from_str(&REAL.replace(
        "kind = \"kernel\"",
        "kind = \"kernel\"\nctrl = \"rpmsg_ctrl1\"",
    ))
    .unwrap();
    let f = b.check(&env(&k, "aarch64"));
    assert!(errors(&f).is_empty(), "{}", render(&f));
}

/// The dma-buf caveat from the kernel's heaps is reported, and a heap the system lacks is
/// an error listing the heaps it has.
#[test]
fn check_dma_heap() {
    let k = fake_board();
    std::fs::create_dir_all(k.root().join("dev/dma_heap")).unwrap();
    std::fs::write(k.root().join("dev/dma_heap/system"), b"").unwrap();
    let heap = REAL
        .replace(
            "source = \"carveout\"\nreserved_memory = \"intercore-pool@a6000000\"",
            "source = \"dma-heap\"\nheap = \"reserved\"\nsize = 0x2000000",
        )
        .replace("\"coherent\"", "\"dma-buf\"")
        + "[mapping]\nkind = \"ti-rproc-attach\"\n";
    let f = Board::from_str(&heap).unwrap().check(&env(&k, "aarch64"));
    let out = render(&f);
    assert!(
        out.contains("dma-buf heap \"reserved\" (this system has: system)"),
        "{out}"
    );
    assert!(out.contains("may do no cache maintenance"), "{out}");
    assert!(out.contains("TI's kernels"), "{out}");
}

/// The simulator's board checks clean on any host, naming its firmware as the file does
/// (built with the feature `sim`, as the workspace's tests build it: the CLI enables it;
/// without it, `emulated_boards_without_their_feature_name_it`).
#[cfg(feature = "sim")]
#[test]
fn check_sim_board() {
    let b = Board::from_file(boards_dir().join("sim.toml")).unwrap();
    let f = b.check(&CheckEnv::default());
    let out = render(&f);
    assert!(errors(&f).is_empty(), "{out}");
    assert!(
        out.contains("runs firmware \"offload\" as a child"),
        "{out}"
    );
    // The summary spells the simulator's names as the file does.
    let s = b.to_string();
    assert!(
        s.contains("firmware \"offload\" in its own process") && s.contains("standard layout"),
        "{s}"
    );
}

/// A firmware_file that is not an ELF with a resource table is an error at check time,
/// naming the file; a relative path resolves against the board file's directory.
#[test]
fn check_firmware_file() {
    let k = fake_board();
    let dir = k.root().join("cfg");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("fw.elf"), b"not an elf").unwrap();
    let file = dir.join("board.toml");
    std::fs::write(
        &file,
        REAL.replace(
            "firmware = \"am64-main-r5f0_0-fw\"",
            "firmware = \"echo\"\nfirmware_file = \"fw.elf\"",
        ),
    )
    .unwrap();
    let b = Board::from_file(&file).unwrap();
    assert_eq!(b.firmware_path().unwrap(), dir.join("fw.elf"));
    let f = b.check(&env(&k, "aarch64"));
    assert!(
        f.iter().any(|x| x.level == Level::Error
            && x.topic == "firmware"
            && x.message.contains("fw.elf is not loadable firmware")),
        "{}",
        render(&f)
    );
}

const QEMU: &str = r#"
[board]
name = "q"
[transport]
kind = "qemu"
core = "m4f"
[memory]
source = "memfd"
[cache]
mode = "coherent"
"#;

/// A QEMU board: `core` is required and one of r5f/m4f; `fw_dir` resolves against the board
/// file; no [remoteproc], a memfd, identity mapping (the default), coherent cache only;
/// the sim-only keys are refused by name. The shipped QEMU boards name both cores.
#[test]
fn qemu_boards_are_validated_by_key() {
    let b = Board::from_str(QEMU).unwrap();
    assert_eq!(
        b.transport,
        TransportSpec::Qemu {
            core: intercore_board::QemuCoreName::M4f,
            fw_dir: None,
            image: None
        }
    );
    assert_eq!(b.mapping, intercore_board::MappingSpec::Identity);
    has(
        &problems(&QEMU.replace("core = \"m4f\"", "")),
        "transport.core",
        &["missing", "r5f"],
    );
    has(
        &problems(&QEMU.replace("\"m4f\"", "\"a53\"")),
        "transport.core",
        &["\"r5f\", \"m4f\""],
    );
    has(
        &problems(&QEMU.replace("core = \"m4f\"", "core = \"m4f\"\nlayout = \"ti-k3\"")),
        "transport.layout",
        &["transport.kind = \"sim\""],
    );
    has(
        &problems(&QEMU.replace("mode = \"coherent\"", "mode = \"sim-noncoherent\"")),
        "cache.mode",
        &["coherent"],
    );
    has(
        &problems(&format!("{QEMU}[mapping]\nkind = \"sim-iommu\"\n")),
        "mapping.kind",
        &["no IOMMU"],
    );
    has(
        &problems(&format!("{QEMU}[remoteproc]\nname = \"x\"\n")),
        "remoteproc",
        &["remove the table"],
    );
    has(
        &problems(&QEMU.replace(
            "source = \"memfd\"",
            "source = \"carveout\"\nbase = 0x1000\nsize = 0x400000",
        )),
        "memory.source",
        &["memfd"],
    );
    #[cfg(feature = "qemu")]
    qemu_image_is_relative_to_the_board_file();
    let names: Vec<_> = board_files()
        .iter()
        .flat_map(|f| BoardFile::from_file(f).unwrap().cores)
        .filter_map(|c| match c.board.transport {
            TransportSpec::Qemu { core, .. } => Some(core),
            _ => None,
        })
        .collect();
    assert!(
        names.contains(&intercore_board::QemuCoreName::R5f),
        "{names:?}"
    );
    assert!(
        names.contains(&intercore_board::QemuCoreName::M4f),
        "{names:?}"
    );
}

/// `transport.fw_dir` is relative to the board file.
#[cfg(feature = "qemu")]
fn qemu_image_is_relative_to_the_board_file() {
    let dir = std::env::temp_dir().join(format!("intercore-qemu-board-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("imgs")).unwrap();
    let f = dir.join("q.toml");
    std::fs::write(
        &f,
        QEMU.replace("core = \"m4f\"", "core = \"m4f\"\nfw_dir = \"imgs\""),
    )
    .unwrap();
    let b = Board::from_file(&f).unwrap();
    let e = b.qemu_image().unwrap_err().to_string();
    assert!(
        e.contains(&dir.join("imgs").join("qemu-m4f.elf").display().to_string()),
        "{e}"
    );
    assert!(
        e.starts_with("transport.fw_dir: no firmware image for qemu-m4f: looked for "),
        "{e}"
    );
    let not_qemu =
        Board::from_str(&QEMU.replace("kind = \"qemu\"\ncore = \"m4f\"", "kind = \"sim\""))
            .unwrap()
            .qemu_image()
            .unwrap_err();
    assert_eq!(not_qemu.to_string(), "transport.kind: not \"qemu\"");
    let f2 = dir.join("i.toml");
    std::fs::write(
        &f2,
        QEMU.replace("core = \"m4f\"", "core = \"m4f\"\nimage = \"none.elf\""),
    )
    .unwrap();
    let e = Board::from_file(&f2).unwrap().qemu_image().unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "transport.image = \"none.elf\": no firmware file at {}",
            dir.join("none.elf").display()
        )
    );
    std::fs::write(dir.join("imgs/qemu-m4f.elf"), b"x").unwrap();
    assert_eq!(b.qemu_image().unwrap(), dir.join("imgs/qemu-m4f.elf"));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Without the features `sim` and `qemu` (the default), a simulated or QEMU board still
/// loads, and opening or checking it names the feature it needs.
#[cfg(not(any(feature = "sim", feature = "qemu")))]
#[test]
fn emulated_boards_without_their_feature_name_it() {
    for (file, kind) in [("sim.toml", "sim"), ("qemu-r5f.toml", "qemu")] {
        let b = Board::from_file(boards_dir().join(file)).unwrap();
        let want = format!(
            "transport.kind: {kind:?} needs intercore-board built with its feature {kind:?}"
        );
        let e = b.open().unwrap_err().to_string();
        assert!(e.starts_with(&want), "{e}");
        let found = b.check(&CheckEnv::default());
        assert!(
            found
                .iter()
                .any(|f| f.level == Level::Error && f.message.starts_with(&want)),
            "{found:?}"
        );
    }
}
