//! intercore's host role against the C firmwares of `firmware/c`: remote firmware intercore
//! did not write, behaving on the wire as TI MCU+ SDK's `ipc_rpmsg` echo (and TI's own
//! `ipc_rpmsg` sources), Zephyr's `openamp_rsc_table` sample and an RPMsg-Lite remote,
//! running as machine code on QEMU's Cortex-R5F with the memfd as its RAM.
//!
//! The host is a plain [`HostBus`] placed as Linux would place it for each table (ANY
//! vrings from a region, the 512-byte buffers where Linux's coherent pool puts them), in
//! `WaitMode::Poll` with a doorbell nobody rings: these firmwares have no intercore vendor
//! entry and poll their rings, so neither side needs a notification.
//!
//! The images are cross-built by `scripts/build-c-firmware.sh` into
//! `$INTERCORE_PEERS_DIR/fw` (default `~/.cache/intercore/peers/fw`), outside cargo: the
//! tests are ignored in a plain `cargo test` and run by `scripts/check-c-firmware.sh
//! --intercore`; there a missing image or QEMU fails them with its reason.

use intercore::rpmsg::Channel;
use intercore::rpmsg::RPMSG_ADDR_ANY;
use intercore::rpmsg::{HostBus, HostConfig, RscLocation};
use intercore::testing::ThreadBell;
use intercore::{DevAddr, LinearMap, SharedMemory, WaitMode};
use intercore_linux::MemfdRegion;
use intercore_wire::elf::Elf;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

const RAM: usize = 16 << 20;

/// One emulated core and one spinning host at a time: the machines running this are small.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
const T: Option<Duration> = Some(Duration::from_secs(30));

fn image(name: &str) -> PathBuf {
    let peers = std::env::var_os("INTERCORE_PEERS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/intercore/peers")
        });
    let p = peers.join("fw").join(format!("{name}.elf"));
    assert!(
        p.is_file(),
        "{} is missing: build it with scripts/build-c-firmware.sh",
        p.display()
    );
    p
}

/// QEMU running one image; killed on drop, its console printed if the test failed.
struct Firmware {
    _serial: std::sync::MutexGuard<'static, ()>,
    child: Child,
    console: PathBuf,
    mem: Arc<MemfdRegion>,
    rsc: RscLocation,
}

impl Drop for Firmware {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let text = std::fs::read_to_string(&self.console).unwrap_or_default();
            eprintln!("--- firmware console ---\n{text}");
        }
        let _ = std::fs::remove_file(&self.console);
    }
}

/// Loads every PT_LOAD segment into a fresh 16 MiB memfd (remoteproc's part) and starts
/// the core on it.
fn boot(name: &str) -> Firmware {
    let serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let path = image(name);
    let bytes = std::fs::read(&path).unwrap();
    let elf = Elf::parse(&bytes).unwrap();
    elf.validate().unwrap();
    let rsc = elf.resource_table().unwrap().expect(".resource_table");
    assert!(
        rsc.loaded_in.is_some(),
        "the table lies in a loaded segment"
    );
    let mem = Arc::new(MemfdRegion::create("c-firmware-ram", RAM).unwrap());
    for s in elf.segments() {
        let s = s.unwrap();
        let da = s.da() as usize;
        assert!(da + s.memsz() as usize <= RAM, "segment inside the RAM");
        mem.write(da, s.data);
        let zeros = vec![0u8; s.memsz() as usize - s.data.len()];
        mem.write(da + s.data.len(), &zeros);
    }
    let console =
        std::env::temp_dir().join(format!("c-firmware-{name}-{}.log", std::process::id()));
    let log = std::fs::File::create(&console).unwrap();
    let qemu = std::env::var_os("INTERCORE_QEMU").unwrap_or_else(|| "qemu-system-arm".into());
    let mut cmd = Command::new(&qemu);
    cmd.args(["-nodefaults", "-display", "none", "-monitor", "none"])
        .args(["-semihosting-config", "enable=on,target=native"])
        .arg("-object")
        .arg(format!(
            "memory-backend-file,id=shm,mem-path=/proc/self/fd/{},size=16M,share=on",
            mem.fd().as_raw_fd()
        ))
        .args(["-M", "none,memory-backend=shm", "-cpu", "cortex-r5f"])
        .arg("-device")
        .arg(format!("loader,addr={:#x},cpu-num=0", elf.entry()))
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log);
    let child = intercore_linux::spawn_inheriting(&mut cmd, &[mem.fd()])
        .unwrap_or_else(|e| panic!("cannot start {qemu:?}: {e} (apt-get install qemu-system-arm)"));
    let rsc = RscLocation {
        offset: rsc.section.addr as usize,
        len: rsc.section.size as usize,
    };
    Firmware {
        _serial: serial,
        child,
        console,
        mem,
        rsc,
    }
}

fn region(base: usize, len: usize) -> LinearMap {
    LinearMap {
        base: DevAddr(base as u64),
        offset: base,
        len,
    }
}

type Host = HostBus<Arc<MemfdRegion>, ThreadBell>;

/// A host over the whole RAM (device address = offset): ANY rings (and, without
/// `buffers`, the buffers) from the vdev's pool `vrings`, placed as Linux's coherent
/// allocator would. Returns the unrung other half of the doorbell too, to keep it alive.
fn host(
    fw: &Firmware,
    vrings: Option<LinearMap>,
    buffers: Option<LinearMap>,
) -> (Host, ThreadBell) {
    let (bell, other) = ThreadBell::pair();
    let cfg = HostConfig {
        vring_region: vrings,
        buffers,
        wait: WaitMode::Poll,
        timeout: T,
        ..HostConfig::default()
    };
    let h = HostBus::new(Arc::clone(&fw.mem), bell, &region(0, RAM), fw.rsc, cfg).unwrap();
    (h, other)
}

/// Every payload size 1..=max to `dst`, each reply verified: `prefix` + the payload.
fn echo_every_size(h: &mut Host, dst: u32, max: usize, prefix: &[u8]) {
    let ep = h.create_endpoint("c-firmware-test", None).unwrap();
    let mut buf = [0u8; 512];
    let start = std::time::Instant::now();
    for size in 1..=max {
        let mut payload = vec![0u8; size];
        intercore::testing::pattern(&mut payload, size as u64);
        h.send_raw(ep, dst, &payload, Some(Duration::from_secs(1)))
            .unwrap();
        let (src, n) = h
            .recv_from(
                &Channel::new(ep, RPMSG_ADDR_ANY),
                &mut buf,
                Some(Duration::from_secs(1)),
            )
            .unwrap();
        assert_eq!(src, Some(dst), "size {size}");
        assert_eq!(&buf[..prefix.len()], prefix, "size {size}");
        assert_eq!(&buf[prefix.len()..n], &payload[..], "size {size}");
    }
    // for the record only (an emulated core on a shared machine: not a benchmark)
    eprintln!("{max} verified echoes to {dst:#x} in {:?}", start.elapsed());
}

/// TI's table: vrings ANY (4096, 256) that Linux allocates 16 KiB-aligned from the vdev's
/// pool, then the 256 KiB of buffers on the next 256 KiB boundary: pool + 0x40000, which
/// is `vring0.da + 0x40000`, where TI's firmware rewrites vring 0 to point. The host is
/// given only the pool, as Linux is.
fn ti_echo_every_size(name: &str) {
    let fw = boot(name);
    let pool = 0x20_0000;
    let (mut h, _bell) = host(&fw, Some(region(pool, 0x10_0000)), None);
    assert_eq!(h.find_service("ti.ipc4.ping-pong", T).unwrap(), 13);
    let chrdev = h.find_service("rpmsg_chrdev", T).unwrap();
    assert_eq!(chrdev, 14);
    echo_every_size(&mut h, chrdev, 496, b"");
}

#[test]
#[ignore = "needs QEMU and the images of scripts/build-c-firmware.sh: run by scripts/check-c-firmware.sh --intercore"]
fn ti_echo_firmware_echoes_every_size() {
    ti_echo_every_size("ti-echo");
}

#[test]
#[ignore = "needs QEMU and the images of scripts/build-c-firmware.sh (with TI's sources): run by scripts/check-c-firmware.sh --intercore"]
fn ti_ipc_rpmsg_sources_echo_every_size() {
    ti_echo_every_size("ti-ipc-rpmsg");
}

/// Zephyr's table: vrings ANY (align 16, 8 entries), one page each from the pool, then
/// 16 × 512 B of buffers at +0x2000 — all inside the firmware's shared-memory window
/// (2 MiB on). The host is given only the pool, as Linux is.
#[test]
#[ignore = "needs QEMU and the images of scripts/build-c-firmware.sh: run by scripts/check-c-firmware.sh --intercore"]
fn zephyr_rsc_sample_echoes_every_size() {
    let fw = boot("zephyr-rsc");
    let pool = 0x20_0000;
    let (mut h, _bell) = host(&fw, Some(region(pool, 0x10_0000)), None);
    let sample = h.find_service("rpmsg-client-sample", T).unwrap();
    let tty = h.find_service("rpmsg-tty", T).unwrap();
    assert_eq!((sample, tty), (0x400, 0x401));
    echo_every_size(&mut h, sample, 496, b"");
    echo_every_size(&mut h, tty, 484, b"TTY 0x0401: ");
}

/// The i.MX table: fixed vrings at 0x200000 / 0x208000; the buffers in a `vdev0buffer`
/// region; no status word read by the firmware.
#[test]
#[ignore = "needs QEMU and the images of scripts/build-c-firmware.sh: run by scripts/check-c-firmware.sh --intercore"]
fn rpmsglite_remote_echoes_every_size() {
    let fw = boot("rpmsglite-remote");
    let (mut h, _bell) = host(&fw, None, Some(region(0x60_0000, 0x10_0000)));
    let addr = h.find_service("rpmsg-virtual-tty-channel-1", T).unwrap();
    assert_eq!(addr, 30);
    echo_every_size(&mut h, addr, 496, b"");
}
