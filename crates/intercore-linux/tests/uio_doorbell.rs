//! The UIO doorbell (`notify::uio`) against a fake UIO tree and fake registers.
//!
//! The tree is a scratch directory standing in for `/` with `sys/class/uio/uio0/{name,
//! maps/mapM/{addr,size,offset}}` as `drivers/uio/uio.c` writes them and `dev/uio0` a
//! regular file: `mmap` of it at `M * page_size` is what the UIO driver's mapping is to
//! this code, and a 4-byte write to it is the irqcontrol write (it lands at the file's
//! position 0, in map0's page, which these tests keep free). Blocking on the interrupt
//! count needs a descriptor someone else writes to: those tests use a socket pair end as
//! the device (the test writes the 4-byte counts and reads the irqcontrol writes) and a
//! memfd as the registers. Offsets follow `drivers/mailbox/omap-mailbox.c` (OMAP4+/K3
//! layout) and the ZynqMP IPI agent registers (see `notify::uio::ipi`).

use intercore::{Doorbell, Error, SharedMemory};
use intercore_linux::notify::uio::{OmapMailbox, ZynqmpIpi, ipi, omap};
use intercore_linux::sys::{Mmap, MmioRegs, page_size};
use intercore_linux::{MemError, MemfdRegion, SysRoots, UioDoorbell, UioLayout};
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

struct Tree(PathBuf);

impl Drop for Tree {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Tree {
    /// `uio0` named `name` with maps `(addr, size, offset)`; `dev/uio0` has one page per
    /// map.
    fn new(name: &str, maps: &[(u64, u64, u64)]) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let root = std::env::temp_dir().join(format!(
            "intercore-uio-bell-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&root);
        let dir = root.join("sys/class/uio/uio0");
        std::fs::create_dir_all(root.join("dev")).unwrap();
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("name"), format!("{name}\n")).unwrap();
        for (i, (addr, size, offset)) in maps.iter().enumerate() {
            let m = dir.join(format!("maps/map{i}"));
            std::fs::create_dir_all(&m).unwrap();
            // The formats of map_addr_show ("%pa"), map_size_show ("%pa") and
            // map_offset_show ("0x%llx").
            std::fs::write(m.join("addr"), format!("0x{addr:016x}\n")).unwrap();
            std::fs::write(m.join("size"), format!("0x{size:016x}\n")).unwrap();
            std::fs::write(m.join("offset"), format!("0x{offset:x}\n")).unwrap();
        }
        let f = std::fs::File::create(root.join("dev/uio0")).unwrap();
        f.set_len((maps.len() * page_size()) as u64).unwrap();
        Self(root)
    }

    fn roots(&self) -> SysRoots {
        SysRoots {
            dev: self.0.join("dev"),
            sys: self.0.join("sys"),
            ..SysRoots::default()
        }
    }

    /// The word at byte `off` of the fake device file.
    fn word(&self, off: usize) -> u32 {
        let b = std::fs::read(self.0.join("dev/uio0")).unwrap();
        u32::from_le_bytes(b[off..off + 4].try_into().unwrap())
    }

    fn set_word(&self, off: usize, v: u32) {
        let mut b = std::fs::read(self.0.join("dev/uio0")).unwrap();
        b[off..off + 4].copy_from_slice(&v.to_le_bytes());
        std::fs::write(self.0.join("dev/uio0"), b).unwrap();
    }
}

const OMAP: OmapMailbox = OmapMailbox {
    map: 1,
    tx: 3,
    rx: 2,
    user: 1,
};

/// Through the tree: map1 of uio0 (a K3 mailbox cluster, `reg = <0x0 0x29000000 0x0
/// 0x200>`) is mapped at file offset 1 × page; opening enables NEWMSG(rx) for the user
/// and the UIO interrupt (irqcontrol 1); a ring writes the id into MAILBOX_MESSAGE(tx) and
/// nothing else; a full FIFO is not written.
#[test]
fn omap_through_the_tree_rings_the_right_register() {
    let page = page_size();
    let t = Tree::new("mailbox", &[(0x1000, 0x1000, 0), (0x2900_0000, 0x200, 0)]);
    let mut bell = UioDoorbell::open(&t.roots(), "uio0", UioLayout::OmapMailbox(OMAP)).unwrap();
    assert_eq!(t.word(0), 1, "irqcontrol: a 4-byte 1");
    assert_eq!(t.word(page + omap::irq_enable(1)), omap::irq_newmsg(2));
    assert_eq!(omap::irq_enable(1), 0x118);
    bell.ring(0x2a).unwrap();
    assert_eq!(omap::message(3), 0x4c);
    assert_eq!(t.word(page + 0x4c), 0x2a);
    for (i, w) in std::fs::read(t.0.join("dev/uio0")).unwrap()[page..]
        .chunks(4)
        .enumerate()
    {
        let off = i * 4;
        if off != 0x4c && off != 0x118 {
            assert_eq!(w, [0; 4], "register {off:#x} written");
        }
    }
    // FIFOSTATUS(3) full: the ring waits, then fails, and the message stays.
    t.set_word(page + omap::fifo_status(3), omap::FIFO_FULL);
    bell.set_full_wait(Duration::from_millis(20));
    let t0 = Instant::now();
    assert!(matches!(bell.ring(0x2b), Err(Error::Exhausted(_))));
    assert!(t0.elapsed() >= Duration::from_millis(19));
    assert_eq!(t.word(page + 0x4c), 0x2a, "a full FIFO is not overwritten");
    // A control-range id is refused, writing nothing.
    t.set_word(page + omap::fifo_status(3), 0);
    assert!(matches!(
        bell.ring(0xffff_ff00),
        Err(Error::Protocol { .. })
    ));
    assert_eq!(t.word(page + 0x4c), 0x2a);
}

/// The same for ZynqMP: map1 the APU agent's registers (0xff300000), map2 the APU's own
/// 0x200-byte block of the buffer RAM (0xff990400: page 0xff990000, `offset` 0x400); a ring puts the id in the request buffer for RPU0 and RPU0's bit in TRIG; an
/// unacknowledged previous IPI (OBS) blocks it.
#[test]
fn zynqmp_through_the_tree_rings_the_right_register() {
    let page = page_size();
    let t = Tree::new(
        "ipi",
        &[
            (0x1000, 0x1000, 0),
            (0xff30_0000, 0x20, 0),
            (0xff99_0000, 0x200, 0x400),
        ],
    );
    let cfg = ZynqmpIpi {
        regs_map: 1,
        buf_map: 2,
        // The map is the APU's own block (buffer index 2): the request buffer to RPU0
        // (buffer index 0) is at 0x40 × 0 in it.
        req_offset: 0,
        remote: ipi::RPU0,
    };
    let mut bell = UioDoorbell::open(&t.roots(), "uio0", UioLayout::ZynqmpIpi(cfg)).unwrap();
    assert_eq!(t.word(page + ipi::IER), ipi::RPU0);
    bell.ring(5).unwrap();
    assert_eq!(
        t.word(2 * page + 0x400),
        5,
        "id at map offset + request buffer"
    );
    assert_eq!(t.word(page + ipi::TRIG), 1 << 8);
    t.set_word(page + ipi::TRIG, 0);
    t.set_word(page + ipi::OBS, ipi::RPU0);
    bell.set_full_wait(Duration::from_millis(5));
    assert!(matches!(bell.ring(6), Err(Error::Exhausted(_))));
    assert_eq!(
        t.word(2 * page + 0x400),
        5,
        "the pending message is not overwritten"
    );
    assert_eq!(t.word(page + ipi::TRIG), 0);
    // Another agent's pending IPI does not block ours.
    t.set_word(page + ipi::OBS, ipi::RPU1);
    bell.ring(6).unwrap();
    assert_eq!(t.word(2 * page + 0x400), 6);
}

/// Bad trees: each error names the file or device at fault.
#[test]
fn errors_name_the_file() {
    let omap = UioLayout::OmapMailbox(OMAP);
    let t = Tree::new("mailbox", &[(0x1000, 0x1000, 0)]);
    let e = UioDoorbell::open(&t.roots(), "uio0", omap).unwrap_err();
    assert!(matches!(e, MemError::NotFound { .. }), "{e}");
    assert!(e.to_string().contains("map1 of uio0"), "{e}");

    let e = UioDoorbell::open(&t.roots(), "uio7", omap).unwrap_err();
    assert!(e.to_string().contains("uio7"), "{e}");

    let t = Tree::new("mailbox", &[(0x1000, 0x1000, 0), (0x2900_0000, 0x100, 0)]);
    let e = UioDoorbell::open(&t.roots(), "uio0", omap).unwrap_err();
    assert!(e.to_string().contains("dev/uio0"), "{e}");
    assert!(e.to_string().contains("0x120"), "{e}");

    std::fs::write(t.0.join("sys/class/uio/uio0/maps/map1/size"), "lots\n").unwrap();
    let e = UioDoorbell::open(&t.roots(), "uio0", omap).unwrap_err();
    assert!(e.to_string().contains("map1/size"), "{e}");

    let t = Tree::new("mailbox", &[(0x1000, 0x1000, 0), (0x2900_0000, 0x200, 0)]);
    std::fs::remove_file(t.0.join("dev/uio0")).unwrap();
    let e = UioDoorbell::open(&t.roots(), "uio0", omap).unwrap_err();
    assert!(matches!(e, MemError::Missing { .. }), "{e}");
    assert!(e.to_string().contains("dev/uio0"), "{e}");

    let t = Tree::new("mailbox", &[(0x1000, 0x1000, 0), (0x2900_0000, 0x200, 0)]);
    let bad = UioLayout::OmapMailbox(OmapMailbox { tx: 16, ..OMAP });
    let e = UioDoorbell::open(&t.roots(), "uio0", bad).unwrap_err();
    assert!(e.to_string().contains("dev/uio0"), "{e}");

    let t = Tree::new(
        "ipi",
        &[
            (0x1000, 0x1000, 0),
            (0xff34_0000, 0x20, 0),
            (0xff99_0600, 0x200, 0),
        ],
    );
    let ipi_at = |req_offset| {
        UioLayout::ZynqmpIpi(ZynqmpIpi {
            regs_map: 1,
            buf_map: 2,
            req_offset,
            remote: ipi::RPU0,
        })
    };
    let e = UioDoorbell::open(&t.roots(), "uio0", ipi_at(2)).unwrap_err();
    assert!(e.to_string().contains("not 4-aligned"), "{e}");
    let e = UioDoorbell::open(&t.roots(), "uio0", ipi_at(0x1e4)).unwrap_err();
    assert!(e.to_string().contains("request buffer needs 0x204"), "{e}");
    UioDoorbell::open(&t.roots(), "uio0", ipi_at(0x1e0)).unwrap();
}

/// A device whose other end the test holds, and registers in a memfd.
fn socket_bell(layout: UioLayout) -> (UioDoorbell, UnixStream, MemfdRegion) {
    let m = MemfdRegion::create("uio-regs", page_size()).unwrap();
    let (mut hw, dev) = UnixStream::pair().unwrap();
    dev.set_nonblocking(true).unwrap();
    let dev: OwnedFd = dev.into();
    let regs = |base| MmioRegs::new(Mmap::shared(m.fd(), page_size(), 0).unwrap(), base, 0x800);
    let bell = UioDoorbell::from_parts(
        dev,
        "fake-uio0".into(),
        layout,
        regs(0).unwrap(),
        Some(regs(0x800).unwrap()),
    )
    .unwrap();
    let mut b = [0u8; 4];
    hw.read_exact(&mut b).unwrap();
    assert_eq!(
        i32::from_ne_bytes(b),
        1,
        "construction enables the interrupt"
    );
    (bell, hw, m)
}

/// UIO's count: the wait wakes when the device has a new count, acknowledges the
/// mailbox, re-enables the interrupt with a 4-byte 1, and times out (not early) when no
/// count comes; a device that goes away is an error.
#[test]
fn wait_wakes_on_a_count_and_times_out_otherwise() {
    for layout in [
        UioLayout::OmapMailbox(OMAP),
        UioLayout::ZynqmpIpi(ZynqmpIpi {
            regs_map: 0,
            buf_map: 1,
            req_offset: ipi::request_buffer(2, 0),
            remote: ipi::RPU0,
        }),
    ] {
        let (bell, mut hw, m) = socket_bell(layout);
        let (status, acked) = match layout {
            UioLayout::OmapMailbox(c) => (omap::irq_status(c.user), omap::irq_newmsg(c.rx)),
            UioLayout::ZynqmpIpi(c) => (ipi::ISR, c.remote),
        };
        let t0 = Instant::now();
        assert_eq!(bell.wait(Some(Duration::from_millis(30))), Ok(false));
        assert!(t0.elapsed() >= Duration::from_millis(29));
        assert_eq!(bell.wait(Some(Duration::ZERO)), Ok(false));

        // Raised: the remote's bit plus another source's, which is not ours to clear.
        m.store_u32(status, (acked | 1 << 30).to_le(), Ordering::SeqCst);
        hw.write_all(&7i32.to_ne_bytes()).unwrap();
        assert_eq!(bell.wait(Some(Duration::from_secs(5))), Ok(true));
        assert_eq!(bell.interrupt_count(), 7);
        assert_eq!(
            u32::from_le(m.load_u32(status, Ordering::SeqCst)),
            acked,
            "write-1-to-clear of exactly our source"
        );
        let mut b = [0u8; 4];
        hw.read_exact(&mut b).unwrap();
        assert_eq!(i32::from_ne_bytes(b), 1, "re-enabled after the ack");
        assert_eq!(bell.wait(Some(Duration::from_millis(10))), Ok(false));

        // A count arriving while it sleeps wakes it (unbounded wait). The clock starts
        // before the writer does, so the wake is at least its 30 ms sleep later however
        // the threads are scheduled (a loaded guest once ran the writer's sleep before
        // this thread read the clock).
        std::thread::scope(|s| {
            let t0 = Instant::now();
            s.spawn(|| {
                std::thread::sleep(Duration::from_millis(30));
                (&hw).write_all(&8i32.to_ne_bytes()).unwrap();
            });
            assert_eq!(bell.wait(None), Ok(true));
            assert!(t0.elapsed() >= Duration::from_millis(30));
        });
        assert_eq!(bell.interrupt_count(), 8);
        drop(hw);
        // EIO at end of file, or the socket's ECONNRESET (irqcontrol writes were unread).
        let r = bell.wait(Some(Duration::from_secs(5)));
        assert!(matches!(r, Err(Error::Os(_))), "{r:?}");
    }
}

/// With the registers in memory, the OMAP receive side drains what MSGSTATUS says is in
/// its FIFO, at most the hardware's depth (a stuck MSGSTATUS cannot hang it).
#[test]
fn omap_receive_drain_is_bounded() {
    let (bell, mut hw, m) = socket_bell(UioLayout::OmapMailbox(OMAP));
    m.store_u32(omap::msg_status(OMAP.rx), 3u32.to_le(), Ordering::SeqCst);
    hw.write_all(&1i32.to_ne_bytes()).unwrap();
    assert_eq!(bell.wait(Some(Duration::from_secs(5))), Ok(true));
}
