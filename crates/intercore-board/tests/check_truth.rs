//! `Board::check` refuses what cannot work (issue 11, item 7), each against a fake
//! `/sys` + `/dev` + `/proc/device-tree` tree: overlapping regions (transport region and
//! pool; pool over the core's own `memory-region`), firmware built for another core than
//! the device tree's `compatible` names, an install onto a core that is not offline, and
//! (userspace transport) a vdev already bound to the kernel's `virtio_rpmsg_bus`, and a
//! mailbox the core's remoteproc driver holds.

use intercore_board::*;
use intercore_linux::remoteproc::fake::{FakeKernel, FakeRproc};
use std::path::Path;

/// A minimal valid ELF (one PT_LOAD, no sections: the kernel accepts no resource table):
/// ELF32 or ELF64 (the System V ABI's layouts), machine `machine`.
fn tiny_elf(machine: u16, elf64: bool) -> Vec<u8> {
    let code = [0u8; 16];
    let (eh, ph) = if elf64 { (64, 56) } else { (52, 32) };
    let mut v = vec![0u8; eh + ph];
    v[..4].copy_from_slice(b"\x7fELF");
    v[4] = if elf64 { 2 } else { 1 }; // EI_CLASS
    v[5] = 1; // little-endian
    v[6] = 1;
    v[16..18].copy_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    v[18..20].copy_from_slice(&machine.to_le_bytes());
    v[20..24].copy_from_slice(&1u32.to_le_bytes());
    let off = (eh + ph) as u64;
    if elf64 {
        v[24..32].copy_from_slice(&0x1000u64.to_le_bytes()); // e_entry
        v[32..40].copy_from_slice(&64u64.to_le_bytes()); // e_phoff
        v[52..54].copy_from_slice(&64u16.to_le_bytes()); // e_ehsize
        v[54..56].copy_from_slice(&56u16.to_le_bytes()); // e_phentsize
        v[56..58].copy_from_slice(&1u16.to_le_bytes()); // e_phnum
        let p = 64;
        v[p..p + 4].copy_from_slice(&1u32.to_le_bytes()); // PT_LOAD
        v[p + 8..p + 16].copy_from_slice(&off.to_le_bytes());
        v[p + 16..p + 24].copy_from_slice(&0x1000u64.to_le_bytes());
        v[p + 24..p + 32].copy_from_slice(&0x1000u64.to_le_bytes());
        v[p + 32..p + 40].copy_from_slice(&16u64.to_le_bytes());
        v[p + 40..p + 48].copy_from_slice(&16u64.to_le_bytes());
    } else {
        v[24..28].copy_from_slice(&0x1000u32.to_le_bytes()); // e_entry
        v[28..32].copy_from_slice(&52u32.to_le_bytes()); // e_phoff
        v[40..42].copy_from_slice(&52u16.to_le_bytes()); // e_ehsize
        v[42..44].copy_from_slice(&32u16.to_le_bytes()); // e_phentsize
        v[44..46].copy_from_slice(&1u16.to_le_bytes()); // e_phnum
        let p = 52;
        v[p..p + 4].copy_from_slice(&1u32.to_le_bytes()); // PT_LOAD
        v[p + 4..p + 8].copy_from_slice(&(off as u32).to_le_bytes());
        v[p + 8..p + 12].copy_from_slice(&0x1000u32.to_le_bytes());
        v[p + 12..p + 16].copy_from_slice(&0x1000u32.to_le_bytes());
        v[p + 16..p + 20].copy_from_slice(&16u32.to_le_bytes());
        v[p + 20..p + 24].copy_from_slice(&16u32.to_le_bytes());
    }
    v.extend_from_slice(&code);
    v
}

/// An AM64x-like tree: remoteproc0 the M4F, remoteproc1 the R5F (state `r5f_state`);
/// reserved-memory r5f-dma-memory@a0000000 (1 MiB, phandle 0x10), r5f-memory@a0100000
/// (15 MiB, phandle 0x11), intercore-pool@a6000000 (32 MiB), and bad-pool@a0080000
/// (1 MiB, straddling the first two); all no-map. With `of_node`,
/// the R5F's device-tree node (`device/of_node`) has compatible "ti,am64-r5f" and
/// memory-region = <0x10 0x11>, as k3-am64-main.dtsi / k3-am642-evm.dts give it.
fn am64(r5f_state: &str, of_node: bool) -> FakeKernel {
    let mut r5f = FakeRproc::offline("78000000.r5f", "am64-main-r5f0_0-fw");
    r5f.state = r5f_state.into();
    let k = FakeKernel::new(&[
        FakeRproc::offline("5000000.m4fss", "am64-mcu-m4f0_0-fw"),
        r5f,
    ]);
    let root = k.root();
    let rm = root.join("proc/device-tree/reserved-memory");
    for (name, base, size, phandle) in [
        (
            "r5f-dma-memory@a0000000",
            0xa000_0000u64,
            0x10_0000u64,
            0x10u32,
        ),
        ("r5f-memory@a0100000", 0xa010_0000, 0xf0_0000, 0x11),
        ("intercore-pool@a6000000", 0xa600_0000, 0x200_0000, 0x12),
        ("bad-pool@a0080000", 0xa008_0000, 0x10_0000, 0x13),
    ] {
        let d = rm.join(name);
        std::fs::create_dir_all(&d).unwrap();
        let mut reg = base.to_be_bytes().to_vec();
        reg.extend_from_slice(&size.to_be_bytes());
        std::fs::write(d.join("reg"), reg).unwrap();
        std::fs::write(d.join("no-map"), b"").unwrap();
        std::fs::write(d.join("phandle"), phandle.to_be_bytes()).unwrap();
    }
    if of_node {
        let n = root.join("sys/class/remoteproc/remoteproc1/device/of_node");
        std::fs::create_dir_all(&n).unwrap();
        std::fs::write(n.join("compatible"), b"ti,am64-r5f\0").unwrap();
        let mut mr = 0x10u32.to_be_bytes().to_vec();
        mr.extend_from_slice(&0x11u32.to_be_bytes());
        std::fs::write(n.join("memory-region"), mr).unwrap();
    }
    std::fs::write(root.join("dev/mem"), b"").unwrap();
    std::fs::write(root.join("dev/rpmsg_ctrl0"), b"").unwrap();
    k
}

fn env(k: &FakeKernel) -> CheckEnv {
    CheckEnv {
        host_arch: "aarch64".into(),
        ..CheckEnv::under(k.root())
    }
}

fn render(f: &[Finding]) -> String {
    f.iter().map(|f| format!("{f}\n")).collect()
}

/// Asserts an error under `topic` containing every needle.
fn error(f: &[Finding], topic: &str, needles: &[&str]) {
    assert!(
        f.iter().any(|x| x.level == Level::Error
            && x.topic == topic
            && needles.iter().all(|n| x.message.contains(n))),
        "no {topic} error with {needles:?} in:\n{}",
        render(f)
    );
}

fn no_errors(f: &[Finding]) {
    assert!(f.iter().all(|x| x.level != Level::Error), "{}", render(f));
}

mod common;
/// The minimal kernel-transport board the other tests start from.
use common::REAL as KERNEL;

/// The userspace transport over the R5F's DMA region (as the K3 layout has it), the pool
/// (64 KiB) in the reserved-memory node `pool`.
fn userspace(pool: &str) -> String {
    format!(
        r#"
[board]
name = "t"
arch = "aarch64"
[remoteproc]
name = "78000000.r5f"
[transport]
kind = "userspace"
region = "r5f-dma-memory@a0000000"
[memory]
source = "carveout"
reserved_memory = "{pool}"
[cache]
mode = "coherent"
[rpmsg]
wait = "poll"
[pool]
classes = [[4096, 16]]
"#
    )
}

/// A pool that overlaps the transport region (the rings and rpmsg buffers) is an error
/// naming both regions and their ranges; the same board with the pool elsewhere is not.
#[test]
fn overlapping_transport_region_and_pool() {
    let k = am64("offline", false);
    let b = Board::from_str(&userspace("bad-pool@a0080000")).unwrap();
    let f = b.check(&env(&k));
    error(
        &f,
        "regions",
        &[
            "the pool memory (/reserved-memory/bad-pool@a0080000) 0xa0080000..0xa0180000",
            "the transport region (/reserved-memory/r5f-dma-memory@a0000000) 0xa0000000..0xa0100000",
        ],
    );
    let f = Board::from_str(&userspace("intercore-pool@a6000000"))
        .unwrap()
        .check(&env(&k));
    no_errors(&f);
}

/// A pool over the core's own memory (a `memory-region` entry of its device-tree node,
/// found through sysfs' `of_node` and the reserved-memory `phandle`s) is an error naming
/// both; the transport region inside the core's DMA region is right and not reported.
#[test]
fn pool_over_the_cores_own_memory_region() {
    let k = am64("offline", true);
    let over = KERNEL.replace("intercore-pool@a6000000", "r5f-memory@a0100000");
    let f = Board::from_str(&over).unwrap().check(&env(&k));
    error(
        &f,
        "regions",
        &[
            "the pool memory (/reserved-memory/r5f-memory@a0100000) 0xa0100000..0xa1000000",
            "remoteproc1's own memory /reserved-memory/r5f-memory@a0100000",
        ],
    );
    let f = Board::from_str(KERNEL).unwrap().check(&env(&k));
    no_errors(&f);
    let f = Board::from_str(&userspace("intercore-pool@a6000000"))
        .unwrap()
        .check(&env(&k));
    no_errors(&f);
}

fn with_firmware(k: &FakeKernel, elf: &[u8]) -> Board {
    let dir = k.root().join("cfg");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("fw.elf"), elf).unwrap();
    let file = dir.join("board.toml");
    std::fs::write(
        &file,
        KERNEL.replace(
            "firmware = \"am64-main-r5f0_0-fw\"",
            "firmware = \"am64-main-r5f0_0-fw\"\nfirmware_file = \"fw.elf\"",
        ),
    )
    .unwrap();
    Board::from_file(&file).unwrap()
}

/// An x86-64 ELF64 for an R5F (its node's compatible is "ti,am64-r5f": EM_ARM, ELF32) is
/// refused, naming the file, the machine found and the one expected; an ELF32 EM_ARM file
/// is accepted and would be installed.
#[test]
fn x86_64_elf_for_an_r5f_board() {
    let k = am64("offline", true);
    let f = with_firmware(&k, &tiny_elf(62, true)).check(&env(&k));
    error(
        &f,
        "firmware",
        &[
            "fw.elf is an ELF64 x86-64 (e_machine 62)",
            "Cortex-R5F (ti,am64-r5f) runs an ELF32 arm (e_machine 40)",
        ],
    );
    assert!(!render(&f).contains("would install"), "{}", render(&f));
    // An AArch64 ELF64 is refused too (the class and machine both differ).
    let f = with_firmware(&k, &tiny_elf(183, true)).check(&env(&k));
    error(&f, "firmware", &["ELF64 aarch64 (e_machine 183)"]);
    let f = with_firmware(&k, &tiny_elf(40, false)).check(&env(&k));
    no_errors(&f);
    assert!(render(&f).contains("would install"), "{}", render(&f));
}

/// A core that is running keeps its firmware: installing is an error, never "would
/// install", and so is selecting another firmware name.
#[test]
fn install_onto_a_running_core_is_an_error() {
    let k = am64("running", true);
    let f = with_firmware(&k, &tiny_elf(40, false)).check(&env(&k));
    error(
        &f,
        "firmware",
        &[
            "fw.elf cannot be installed",
            "remoteproc1 is running",
            "intercore rproc stop",
        ],
    );
    assert!(!render(&f).contains("would install"), "{}", render(&f));
    let f = Board::from_str(&KERNEL.replace("am64-main-r5f0_0-fw", "other-fw"))
        .unwrap()
        .check(&env(&k));
    error(
        &f,
        "remoteproc",
        &["would select firmware \"other-fw\"", "it is running"],
    );
}

/// Makes `/sys/bus/virtio/devices/<name>` for a vdev of `rproc` with virtio id `id`, bound
/// to `driver` if given: a link to the device's real place under its remote processor, as
/// `remoteproc_virtio.c` registers it, with `driver` a link into the bus's drivers.
fn vdev(root: &Path, name: &str, rproc: &str, id: u32, driver: Option<&str>) {
    let sys = root.join("sys");
    let real = sys.join(format!(
        "devices/platform/x/remoteproc/{rproc}/{rproc}#vdev0buffer/{name}"
    ));
    std::fs::create_dir_all(&real).unwrap();
    std::fs::write(real.join("device"), format!("{id:#06x}\n")).unwrap();
    if let Some(d) = driver {
        let drv = sys.join("bus/virtio/drivers").join(d);
        std::fs::create_dir_all(&drv).unwrap();
        std::os::unix::fs::symlink(&drv, real.join("driver")).unwrap();
    }
    let devs = sys.join("bus/virtio/devices");
    std::fs::create_dir_all(&devs).unwrap();
    std::os::unix::fs::symlink(&real, devs.join(name)).unwrap();
}

/// For the userspace transport, the core's rpmsg vdev (virtio id 7) bound to
/// virtio_rpmsg_bus is an error naming the device, its remote processor and both fixes;
/// another core's bound vdev, an unbound one, and a bound vdev of another type are not.
#[test]
fn vdev_bound_to_virtio_rpmsg_bus_for_the_userspace_transport() {
    let k = am64("running", false);
    let board = Board::from_str(&userspace("intercore-pool@a6000000")).unwrap();
    vdev(
        k.root(),
        "virtio0",
        "remoteproc0",
        7,
        Some("virtio_rpmsg_bus"),
    );
    vdev(k.root(), "virtio1", "remoteproc1", 7, None);
    vdev(
        k.root(),
        "virtio2",
        "remoteproc1",
        3,
        Some("virtio_console"),
    );
    no_errors(&board.check(&env(&k)));
    vdev(
        k.root(),
        "virtio3",
        "remoteproc1",
        7,
        Some("virtio_rpmsg_bus"),
    );
    let f = board.check(&env(&k));
    error(
        &f,
        "transport",
        &[
            "virtio3 (the rpmsg vdev of remoteproc1) is bound to the kernel's virtio_rpmsg_bus",
            "echo virtio3 > /sys/bus/virtio/drivers/virtio_rpmsg_bus/unbind",
            "transport.kind = \"kernel\"",
        ],
    );
    assert_eq!(
        f.iter().filter(|x| x.level == Level::Error).count(),
        1,
        "{}",
        render(&f)
    );
    // The kernel transport wants exactly that binding.
    no_errors(&Board::from_str(KERNEL).unwrap().check(&env(&k)));
}

/// The core table: Cortex-R/M nodes want ELF32 EM_ARM, a C66x DSP EM_TI_C6000; an unknown
/// compatible (or none) is not checked.
#[test]
fn core_isa_from_compatible() {
    use intercore::wire::elf::{ElfClass, machine};
    let r5 = CoreIsa::from_compatible(["ti,am64-r5f"]).unwrap();
    assert_eq!((r5.machine, r5.class), (machine::ARM, ElfClass::Elf32));
    let m4 = CoreIsa::from_compatible(["vendor,unknown", "ti,am64-m4fss"]).unwrap();
    assert_eq!(m4.core, "Cortex-M4F");
    let dsp = CoreIsa::from_compatible(["ti,j721e-c66-dsp"]).unwrap();
    assert_eq!(dsp.machine, machine::TI_C6000);
    assert!(CoreIsa::from_compatible(["vendor,unknown"]).is_none());
    let p = Path::new("fw.elf");
    assert!(r5.check_elf(p, &tiny_elf(40, false)).is_ok());
    assert!(r5.check_elf(p, &tiny_elf(40, true)).is_err());
    assert!(r5.check_elf(p, &tiny_elf(140, false)).is_err());
    // The text `board check` and `rproc load` show (typed error, same words).
    assert_eq!(
        r5.check_elf(p, &tiny_elf(140, false))
            .unwrap_err()
            .to_string(),
        "fw.elf is an ELF32 ti-c6000 (e_machine 140); the Cortex-R5F (ti,am64-r5f) runs an ELF32 arm (e_machine 40): build the firmware for the remote core's target"
    );
    assert!(dsp.check_elf(p, &tiny_elf(140, false)).is_ok());
}

/// An ELF32 EM_ARM firmware whose `.resource_table` section (loaded at 0xa0100000) holds
/// `table`: the ELF32 header, one PT_LOAD, the table, `.shstrtab`, three section headers.
fn arm_elf_with_table(table: &[u8]) -> Vec<u8> {
    let mut v = tiny_elf(40, false);
    v.truncate(52 + 32);
    let toff = v.len() as u32;
    v.extend_from_slice(table);
    let stroff = v.len() as u32;
    let strtab = b"\0.resource_table\0.shstrtab\0";
    v.extend_from_slice(strtab);
    while v.len() % 4 != 0 {
        v.push(0);
    }
    let shoff = v.len() as u32;
    let p = 52; // the PT_LOAD covers the table
    v[p + 4..p + 8].copy_from_slice(&toff.to_le_bytes());
    v[p + 8..p + 12].copy_from_slice(&0xa010_0000u32.to_le_bytes());
    v[p + 12..p + 16].copy_from_slice(&0xa010_0000u32.to_le_bytes());
    v[p + 16..p + 20].copy_from_slice(&(table.len() as u32).to_le_bytes());
    v[p + 20..p + 24].copy_from_slice(&(table.len() as u32).to_le_bytes());
    v[32..36].copy_from_slice(&shoff.to_le_bytes()); // e_shoff
    v[46..48].copy_from_slice(&40u16.to_le_bytes()); // e_shentsize
    v[48..50].copy_from_slice(&3u16.to_le_bytes()); // e_shnum
    v[50..52].copy_from_slice(&2u16.to_le_bytes()); // e_shstrndx
    let shdr = |name: u32, ty: u32, addr: u32, off: u32, size: u32| {
        let mut s = [0u8; 40];
        for (i, w) in [name, ty, 0, addr, off, size, 0, 0, 4, 0]
            .iter()
            .enumerate()
        {
            s[i * 4..i * 4 + 4].copy_from_slice(&w.to_le_bytes());
        }
        s
    };
    v.extend_from_slice(&[0u8; 40]);
    v.extend_from_slice(&shdr(1, 1, 0xa010_0000, toff, table.len() as u32)); // SHT_PROGBITS
    v.extend_from_slice(&shdr(17, 3, 0, stroff, strtab.len() as u32)); // SHT_STRTAB
    v
}

/// An rpmsg table (intercore's own builder): vrings of `num` entries placed by the host,
/// a vdev0buffer carveout of `buf_len` bytes.
fn rpmsg_table(num: u32, buf_len: u32) -> Vec<u8> {
    use intercore::rpmsg::rsc_table::{RpmsgTable, RpmsgTableSpec, VringDecl};
    use intercore::wire::IntoBytes;
    use intercore::wire::rsc::FW_RSC_ADDR_ANY;
    let ring = |notifyid| VringDecl {
        da: FW_RSC_ADDR_ANY,
        align: 4096,
        num,
        notifyid,
    };
    RpmsgTable::new(&RpmsgTableSpec {
        features: 1,
        vrings: [ring(0), ring(1)],
        buf_da: 0xa000_0000,
        buf_len,
    })
    .as_bytes()
    .to_vec()
}

/// For the userspace transport, a firmware whose vdev the host bus would refuse is an error
/// naming the file and why (`HostBus::new`'s own checks): a vdev0buffer carveout too small
/// for 2 x 256 buffers of 512 bytes, a vdev with one vring. The same
/// table with room for the buffers passes.
#[test]
fn firmware_the_userspace_transport_cannot_drive() {
    let k = am64("offline", true);
    let dir = k.root().join("cfg");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("board.toml");
    std::fs::write(
        &file,
        userspace("intercore-pool@a6000000").replace(
            "name = \"78000000.r5f\"",
            "name = \"78000000.r5f\"\nfirmware = \"fw\"\nfirmware_file = \"fw.elf\"",
        ),
    )
    .unwrap();
    let b = Board::from_file(&file).unwrap();
    let check = |table: Vec<u8>| {
        std::fs::write(dir.join("fw.elf"), arm_elf_with_table(&table)).unwrap();
        b.check(&env(&k))
    };
    let f = check(rpmsg_table(256, 0x1000));
    error(
        &f,
        "firmware",
        &[
            "the userspace transport cannot drive",
            "fw.elf",
            "vdev0buffer carveout has 0x1000 bytes; 2 x 256 buffers of rpmsg.buffer_size = 512 need 0x40000",
        ],
    );
    // num_of_vrings = 1: header 16 + offsets 8 + carveout entry 56, then the vdev entry's
    // type word and fw_rsc_vdev's num_of_vrings at byte 21 (remoteproc.h).
    let mut one = rpmsg_table(256, 0x40000);
    one[16 + 8 + 56 + 4 + 21] = 1;
    let f = check(one);
    error(
        &f,
        "firmware",
        &["cannot drive", "has 1 vring(s); rpmsg needs two"],
    );
    no_errors(&check(rpmsg_table(256, 0x40000)));
}

/// The R5F's mailbox as TI's device trees give it (k3-am64-main.dtsi, k3-am642-evm.dts):
/// `mboxes = <&mailbox0_cluster2 &mbox_main_r5fss0_core0>` on the core's node (phandles
/// 0x20 and 0x21 here), the cluster `mailbox@29020000` under the main bus with the
/// sub-mailbox `mbox-main-r5fss0-core0` as its child, and the cluster's platform device
/// `29020000.mailbox` bound to `driver` if given.
fn mailbox(k: &FakeKernel, driver: Option<&str>) {
    let root = k.root();
    let n = root.join("sys/class/remoteproc/remoteproc1/device/of_node");
    std::fs::create_dir_all(&n).unwrap();
    let mut cells = 0x20u32.to_be_bytes().to_vec();
    cells.extend_from_slice(&0x21u32.to_be_bytes());
    std::fs::write(n.join("mboxes"), cells).unwrap();
    let c = root.join("proc/device-tree/bus@f4000/mailbox@29020000");
    std::fs::create_dir_all(c.join("mbox-main-r5fss0-core0")).unwrap();
    std::fs::write(c.join("phandle"), 0x20u32.to_be_bytes()).unwrap();
    std::fs::write(
        c.join("mbox-main-r5fss0-core0/phandle"),
        0x21u32.to_be_bytes(),
    )
    .unwrap();
    let dev = root.join("sys/bus/platform/devices/29020000.mailbox");
    std::fs::create_dir_all(&dev).unwrap();
    if let Some(d) = driver {
        let drv = root.join("sys/bus/platform/drivers").join(d);
        std::fs::create_dir_all(&drv).unwrap();
        std::os::unix::fs::symlink(&drv, dev.join("driver")).unwrap();
    }
}

/// For the userspace transport, a core whose remoteproc driver holds its mailbox (the
/// node's `mboxes`, the cluster bound to omap-mailbox) is an error naming the core, the
/// mailbox, the cluster's driver and the fixes; the state says whether every kernel holds
/// it now. No `mboxes`, or the kernel transport: no such error.
#[test]
fn mailbox_held_by_remoteproc_for_the_userspace_transport() {
    let board = Board::from_str(&userspace("intercore-pool@a6000000")).unwrap();
    let k = am64("running", false);
    no_errors(&board.check(&env(&k)));
    mailbox(&k, Some("omap-mailbox"));
    let f = board.check(&env(&k));
    error(
        &f,
        "transport",
        &[
            "remoteproc1 (78000000.r5f) holds mailbox mailbox@29020000/mbox-main-r5fss0-core0",
            "its cluster bound to omap-mailbox",
            "state running: held on every kernel",
            "uio_pdrv_genirq",
            "transport.kind = \"kernel\"",
        ],
    );
    // The kernel transport needs remoteproc to have the mailbox.
    no_errors(&Board::from_str(KERNEL).unwrap().check(&env(&k)));
    // An offline core: held from probe on newer kernels, from start on older ones.
    let k = am64("offline", false);
    mailbox(&k, None);
    let f = board.check(&env(&k));
    error(
        &f,
        "transport",
        &[
            "holds mailbox mailbox@29020000/mbox-main-r5fss0-core0",
            "state offline",
            "held since probe",
        ],
    );
    assert!(
        !render(&f).contains("bound to omap-mailbox"),
        "no driver link, no claim: {}",
        render(&f)
    );
}

/// `board check` agrees with `open` on a userspace board: over a carveout given by
/// address, a firmware whose table leaves its vrings at `FW_RSC_ADDR_ANY`, with neither
/// `[vdev]` nor `transport.vring_offset`, is an error naming `vdev.pool_base` — the
/// refusal `Board::open` makes (the same plan, `plan_vdev`, on the firmware file's
/// table); with a `[vdev]` pool inside the carveout it is not. Before, check said nothing
/// and only `up` refused.
#[test]
fn userspace_check_runs_the_plan_open_runs() {
    let k = am64("offline", true);
    let dir = k.root().join("cfg");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("board.toml");
    let text = userspace("intercore-pool@a6000000")
        .replace(
            "name = \"78000000.r5f\"",
            "name = \"78000000.r5f\"\nfirmware = \"fw\"\nfirmware_file = \"fw.elf\"",
        )
        .replace(
            "region = \"r5f-dma-memory@a0000000\"",
            "base = 0xa0000000\nsize = 0x100000",
        );
    std::fs::write(
        dir.join("fw.elf"),
        arm_elf_with_table(&rpmsg_table(256, 0x40000)),
    )
    .unwrap();
    std::fs::write(&file, &text).unwrap();
    let f = Board::from_file(&file).unwrap().check(&env(&k));
    error(
        &f,
        "vdev.pool_base",
        &["missing", "FW_RSC_ADDR_ANY", "vdev.pool_size"],
    );
    std::fs::write(
        &file,
        format!("{text}\n[vdev]\npool_base = 0xa0040000\npool_size = 0x40000\n"),
    )
    .unwrap();
    no_errors(&Board::from_file(&file).unwrap().check(&env(&k)));
}
