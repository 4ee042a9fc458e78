//! Board files with several cores (`[[core]]`): the shipped multi-core boards, today's
//! single-core files unchanged, inheritance of top-level tables, and every cross-core
//! error (names, remote processors, control devices, memory windows).

use intercore_board::{Board, BoardError, BoardFile, CoreError, DEFAULT_CORE, TransportSpec};
use std::path::{Path, PathBuf};

fn boards() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../boards")
}

fn keys(e: &BoardError) -> Vec<String> {
    e.problems().iter().map(|p| p.key.clone()).collect()
}

const HEAD: &str = "[board]\nname = \"m\"\narch = \"aarch64\"\n[cache]\nmode = \"coherent\"\n[mapping]\nkind = \"identity\"\n[pool]\nclasses = [[4096, 4]]\n";

fn kernel_core(name: &str, rproc: &str, ctrl: &str, memory: &str) -> String {
    format!(
        "[[core]]\nname = \"{name}\"\n[core.remoteproc]\nname = \"{rproc}\"\n[core.transport]\nkind = \"kernel\"\nctrl = \"{ctrl}\"\n[core.memory]\nsource = \"carveout\"\n{memory}\n"
    )
}

/// Every shipped single-core board reads as a `BoardFile` of one core named
/// `DEFAULT_CORE` whose board is what `Board::from_file` reads.
#[test]
fn single_core_files_are_one_core_unchanged() {
    let mut n = 0;
    for e in std::fs::read_dir(boards()).unwrap() {
        let p = e.unwrap().path();
        let text = std::fs::read_to_string(&p).unwrap();
        if p.extension().is_none_or(|x| x != "toml") || text.contains("[[core]]") {
            continue;
        }
        let f = BoardFile::from_file(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        assert_eq!(f.cores.len(), 1, "{}", p.display());
        assert_eq!(f.cores[0].name, DEFAULT_CORE);
        assert_eq!(f.core(None).unwrap().board, Board::from_file(&p).unwrap());
        assert_eq!(f.core(Some(DEFAULT_CORE)).unwrap().name, DEFAULT_CORE);
        n += 1;
    }
    assert!(n >= 10, "{n} single-core boards");
}

/// The shipped multi-core boards validate, with their cores in file order, each a
/// complete board (inherited tables filled in, a core's own table kept).
#[test]
fn shipped_multi_core_boards_validate() {
    let f = BoardFile::from_file(boards().join("sim-4core.toml")).unwrap();
    assert_eq!(f.core_names(), "r0, r1, r2, r3");
    assert!(
        f.cores
            .iter()
            .all(|c| matches!(c.board.transport, TransportSpec::Sim { .. }))
    );
    assert_eq!(f.cores[0].board.rpmsg.buffers, 256);
    assert_eq!(f.cores[3].board.rpmsg.buffers, 64, "r3's own [rpmsg]");
    assert!(f.cores.iter().all(|c| c.board.file.is_some()));

    let f = BoardFile::from_file(boards().join("qemu-2core.toml")).unwrap();
    assert_eq!(f.core_names(), "r5f0, r5f1");

    let f = BoardFile::from_file(boards().join("ti-am64x-5core.toml")).unwrap();
    assert_eq!(f.core_names(), "r5f0_0, r5f0_1, r5f1_0, r5f1_1, m4f");
    let rprocs: Vec<String> = f
        .cores
        .iter()
        .map(|c| c.board.remoteproc.as_ref().unwrap().selector.as_arg())
        .collect();
    assert_eq!(
        rprocs,
        [
            "78000000.r5f",
            "78200000.r5f",
            "78400000.r5f",
            "78600000.r5f",
            "5000000.m4fss"
        ]
    );
}

/// `Board::from_file` on a file with several cores is an error naming them; `core(None)`
/// too, and an unknown name lists the cores.
#[test]
fn several_cores_need_a_name() {
    let p = boards().join("sim-4core.toml");
    let e = Board::from_file(&p).unwrap_err();
    assert!(
        e.to_string().contains("names 4 cores (r0, r1, r2, r3)"),
        "{e}"
    );
    let f = BoardFile::from_file(&p).unwrap();
    assert!(matches!(
        f.core(None),
        Err(CoreError::Ambiguous { count: 4, .. })
    ));
    let e = f.core(Some("r9")).unwrap_err();
    assert!(
        e.to_string()
            .contains("no core \"r9\"; its cores: r0, r1, r2, r3"),
        "{e}"
    );
    assert_eq!(f.core(Some("r2")).unwrap().name, "r2");
}

/// Two cores whose pool windows overlap, or that name the same reserved-memory node, are
/// refused naming both; disjoint windows are not.
#[test]
fn overlapping_windows_of_two_cores_are_an_error() {
    let a = kernel_core(
        "a",
        "78000000.r5f",
        "rpmsg_ctrl0",
        "base = 0xa6000000\nsize = 0x800000",
    );
    let ok = kernel_core(
        "b",
        "78200000.r5f",
        "rpmsg_ctrl1",
        "base = 0xa6800000\nsize = 0x800000",
    );
    BoardFile::from_str(&format!("{HEAD}{a}{ok}")).unwrap();

    let b = kernel_core(
        "b",
        "78200000.r5f",
        "rpmsg_ctrl1",
        "base = 0xa6400000\nsize = 0x800000",
    );
    let e = BoardFile::from_str(&format!("{HEAD}{a}{b}")).unwrap_err();
    assert_eq!(keys(&e), ["core.b.memory"], "{e}");
    assert!(
        e.to_string()
            .contains("overlaps core \"a\"'s memory 0xa6000000..0xa6800000"),
        "{e}"
    );

    // A node with its unit address and size against an explicit range.
    let n = kernel_core(
        "b",
        "78200000.r5f",
        "rpmsg_ctrl1",
        "reserved_memory = \"pool-b@a67fc000\"\nsize = 0x4000",
    );
    let e = BoardFile::from_str(&format!("{HEAD}{a}{n}")).unwrap_err();
    assert_eq!(keys(&e), ["core.b.memory"], "{e}");

    // The same node in two cores.
    let na = kernel_core(
        "a",
        "78000000.r5f",
        "rpmsg_ctrl0",
        "reserved_memory = \"pool\"",
    );
    let nb = kernel_core(
        "b",
        "78200000.r5f",
        "rpmsg_ctrl1",
        "reserved_memory = \"pool\"",
    );
    let e = BoardFile::from_str(&format!("{HEAD}{na}{nb}")).unwrap_err();
    assert_eq!(keys(&e), ["core.b.memory"], "{e}");
    assert!(e.to_string().contains("same reserved-memory node"), "{e}");
}

/// Duplicate names, a bad name, the same remote processor or control device twice, a
/// kernel core without `ctrl` beside another: each an error with its key.
#[test]
fn cross_core_errors_name_their_key() {
    let m = |n: &str| format!("reserved_memory = \"pool-{n}\"");
    let a = kernel_core("a", "78000000.r5f", "rpmsg_ctrl0", &m("a"));
    let dup = kernel_core("a", "78200000.r5f", "rpmsg_ctrl1", &m("b"));
    let e = BoardFile::from_str(&format!("{HEAD}{a}{dup}")).unwrap_err();
    assert_eq!(keys(&e), ["core.name"], "{e}");

    let bad = kernel_core("b/../x", "78200000.r5f", "rpmsg_ctrl1", &m("b"));
    let e = BoardFile::from_str(&format!("{HEAD}{a}{bad}")).unwrap_err();
    assert_eq!(keys(&e), ["core.b/../x.name"], "{e}");

    let same_rp = kernel_core("b", "78000000.r5f", "rpmsg_ctrl1", &m("b"));
    let e = BoardFile::from_str(&format!("{HEAD}{a}{same_rp}")).unwrap_err();
    assert_eq!(keys(&e), ["core.b.remoteproc"], "{e}");

    let same_ctrl = kernel_core("b", "78200000.r5f", "rpmsg_ctrl0", &m("b"));
    let e = BoardFile::from_str(&format!("{HEAD}{a}{same_ctrl}")).unwrap_err();
    assert_eq!(keys(&e), ["core.b.transport.ctrl"], "{e}");

    let no_ctrl = format!(
        "[[core]]\nname = \"b\"\n[core.remoteproc]\nname = \"78200000.r5f\"\n[core.transport]\nkind = \"kernel\"\n[core.memory]\nsource = \"carveout\"\n{}\n",
        m("b")
    );
    let e = BoardFile::from_str(&format!("{HEAD}{a}{no_ctrl}")).unwrap_err();
    assert_eq!(keys(&e), ["core.b.transport.ctrl"], "{e}");
}

/// A core's own problems carry its name; a table no core and no top level gives is
/// reported per core; `[board]`'s problems once; zero cores and too many are errors.
#[test]
fn per_core_problems_are_prefixed() {
    let t = "[board]\nname = \"s\"\narch = \"sparc\"\n[memory]\nsource = \"memfd\"\n[cache]\nmode = \"coherent\"\n\
             [[core]]\nname = \"x\"\n[core.transport]\nkind = \"sim\"\nfirmware = \"nope\"\n\
             [[core]]\nname = \"y\"\n";
    let e = BoardFile::from_str(t).unwrap_err();
    assert_eq!(
        keys(&e),
        [
            "board.arch",
            "core.x.transport.firmware",
            "core.y.transport"
        ],
        "{e}"
    );
    let e = BoardFile::from_str("core = []\n[board]\nname = \"z\"\n").unwrap_err();
    assert_eq!(keys(&e), ["core"], "{e}");
    let many: String = (0..17)
        .map(|i| format!("[[core]]\nname = \"c{i}\"\n"))
        .collect();
    let sim =
        "[transport]\nkind = \"sim\"\n[memory]\nsource = \"memfd\"\n[cache]\nmode = \"coherent\"\n";
    let e = BoardFile::from_str(&format!("[board]\nname = \"z\"\n{sim}{many}")).unwrap_err();
    assert_eq!(keys(&e), ["core"], "{e}");
    // An unknown key in a core table is a syntax error with its line.
    let e = BoardFile::from_str(&format!(
        "[board]\nname = \"z\"\n{sim}[[core]]\nname = \"a\"\ncolour = 1\n"
    ))
    .unwrap_err();
    assert!(matches!(e, BoardError::Syntax { .. }), "{e}");
}

/// On the machine, windows the file does not locate (reserved-memory nodes without a
/// size) are resolved and compared: two cores whose pool nodes overlap in the device tree
/// are an error naming both cores and both ranges; disjoint nodes are not.
#[test]
fn check_between_finds_overlaps_the_file_cannot_show() {
    use intercore_board::{CheckEnv, Level};
    use intercore_linux::remoteproc::fake::{FakeKernel, FakeRproc};
    let k = FakeKernel::new(&[
        FakeRproc::offline("78000000.r5f", "a"),
        FakeRproc::offline("78200000.r5f", "b"),
    ]);
    let rm = k.root().join("proc/device-tree/reserved-memory");
    for (name, base, size) in [
        ("pool-a", 0xa600_0000u64, 0x100_0000u64),
        ("pool-b", 0xa6800000, 0x100_0000),
        ("pool-c", 0xa800_0000, 0x100_0000),
    ] {
        let d = rm.join(name);
        std::fs::create_dir_all(&d).unwrap();
        let mut reg = base.to_be_bytes().to_vec();
        reg.extend_from_slice(&size.to_be_bytes());
        std::fs::write(d.join("reg"), reg).unwrap();
        std::fs::write(d.join("no-map"), b"").unwrap();
    }
    std::fs::write(k.root().join("dev/mem"), b"").unwrap();
    let env = CheckEnv {
        host_arch: "aarch64".into(),
        ..CheckEnv::under(k.root())
    };
    let m = |n: &str| format!("reserved_memory = \"{n}\"");
    let a = kernel_core("a", "78000000.r5f", "rpmsg_ctrl0", &m("pool-a"));
    let b = kernel_core("b", "78200000.r5f", "rpmsg_ctrl1", &m("pool-b"));
    let f = BoardFile::from_str(&format!("{HEAD}{a}{b}")).expect("the file alone cannot see it");
    let found = f.check_between(&env);
    assert_eq!(found.len(), 1, "{found:?}");
    let (core, x) = &found[0];
    assert_eq!(
        (core.as_str(), x.level, x.topic),
        ("b", Level::Error, "cores")
    );
    assert!(
        x.message.contains("core b's pool memory 0xa6800000..0xa7800000 overlaps core a's pool memory 0xa6000000..0xa7000000"),
        "{}",
        x.message
    );
    let c = kernel_core("b", "78200000.r5f", "rpmsg_ctrl1", &m("pool-c"));
    let f = BoardFile::from_str(&format!("{HEAD}{a}{c}")).unwrap();
    assert!(f.check_between(&env).is_empty());
}
