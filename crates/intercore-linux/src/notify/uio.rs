//! A doorbell through UIO: the interrupt count of `/dev/uioN` to sleep on, and the
//! mailbox or IPI registers of a UIO map to ring the peer with.
//!
//! UIO (`drivers/uio/uio.c`, `Documentation/driver-api/uio-howto.rst`): a `read` of exactly
//! 4 bytes blocks until the interrupt count differs from the one this open file last saw
//! and returns the new count (`EAGAIN` under `O_NONBLOCK`); `poll` says `POLLIN` while it
//! differs; a 4-byte `write` calls the driver's `irqcontrol`, which for
//! `uio_pdrv_genirq` with 1 re-enables the interrupt its handler disabled. Map `M` of
//! `/sys/class/uio/uioN/maps/mapM` is mapped at file offset `M * page_size`.
//!
//! Two register layouts ring the peer, each with the vring's notify id as its message:
//!
//! * [`OmapMailbox`]: TI's OMAP mailbox in its OMAP4+ layout, as on K3 (AM64x, AM62x,
//!   J7): the id goes into the sending mailbox's FIFO, as `ti_k3_r5_remoteproc` and
//!   `ti_k3_m4_remoteproc` do (`mbox_send_message(kproc->mbox, (void *)vqid)`).
//! * [`ZynqmpIpi`]: AMD/Xilinx's ZynqMP IPI agent registers: the id goes into the request
//!   buffer for the remote agent (as `xlnx_r5_remoteproc` copies `vqid` into the message),
//!   then the remote's bit is set in the trigger register.

use crate::memory::{MemError, SysRoots, UDEV_HINT, UIO_MISSING, mmap_error, open_rw, uio_device};
use crate::sys::{self, Mmap, MmioRegs, fd::poll_readable, monotonic_now};
use intercore::{Doorbell, Error};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering, fence};
use std::time::Duration;

/// Register offsets of the OMAP mailbox, OMAP4+ interrupt layout (`intr_type` 1), from
/// `drivers/mailbox/omap-mailbox.c`.
pub mod omap {
    /// `MAILBOX_MESSAGE(m)`: writing pushes into mailbox `m`'s FIFO, reading pops.
    pub const fn message(m: u32) -> usize {
        0x040 + 4 * m as usize
    }
    /// `MAILBOX_FIFOSTATUS(m)`: bit 0 set while mailbox `m`'s FIFO is full.
    pub const fn fifo_status(m: u32) -> usize {
        0x080 + 4 * m as usize
    }
    /// `MAILBOX_MSGSTATUS(m)`: the number of messages in mailbox `m`'s FIFO.
    pub const fn msg_status(m: u32) -> usize {
        0x0c0 + 4 * m as usize
    }
    /// `OMAP4_MAILBOX_IRQSTATUS(u)`: user `u`'s pending interrupts, write 1 to clear.
    pub const fn irq_status(u: u32) -> usize {
        0x104 + 0x10 * u as usize
    }
    /// `OMAP4_MAILBOX_IRQENABLE(u)`: write 1 to enable user `u`'s interrupt sources.
    pub const fn irq_enable(u: u32) -> usize {
        0x108 + 0x10 * u as usize
    }
    /// `OMAP4_MAILBOX_IRQENABLE_CLR(u)`: write 1 to disable them.
    pub const fn irq_enable_clr(u: u32) -> usize {
        0x10c + 0x10 * u as usize
    }
    /// `MAILBOX_IRQ_NEWMSG(m)`: mailbox `m` holds a message.
    pub const fn irq_newmsg(m: u32) -> u32 {
        1 << (2 * m)
    }
    /// Bit 0 of `MAILBOX_FIFOSTATUS`: the FIFO is full (`mbox_fifo_full`).
    pub const FIFO_FULL: u32 = 1;
    /// Messages a mailbox FIFO holds ("As per TRM, omap mailboxes are limited to 4
    /// messages per mailbox in the hardware queue", `MAX_MSG_HW_QUEUE`).
    pub const FIFO_DEPTH: u32 = 4;
    /// Mailboxes (FIFOs) of a K3 cluster: `ti,mbox-num-fifos = <16>` on every
    /// `mailbox0_clusterN` node of the K3 device trees (`k3-am64-main.dtsi`,
    /// `k3-am62-main.dtsi`, `k3-am65-main.dtsi`, `k3-j721s2-main.dtsi`).
    pub const FIFOS: u32 = 16;
    /// Users (interrupt outputs) of a K3 cluster: `ti,mbox-num-users = <4>` there.
    pub const USERS: u32 = 4;
}

/// Register offsets of a ZynqMP IPI agent, as U-Boot's `drivers/mailbox/zynqmp-ipi.c`
/// lays them out (`struct ipi_int_regs`: trig 0x0, obs 0x4, isr 0x10, imr 0x14, ier 0x18,
/// idr 0x1c; its send writes the request buffer, then the destination's bit to `trig`, and
/// waits for that bit to clear in `obs`), matching Xilinx's `xipipsu_hw.h` and Zephyr's
/// `mbox_xlnx_ipi`. Mainline Linux's `zynqmp-ipi-mailbox.c` reaches the same registers
/// through TF-A (`SMC_IPI_MAILBOX_NOTIFY`/`_ACK`) on ZynqMP; from userspace through UIO
/// they are written directly.
pub mod ipi {
    /// `TRIG`: write a destination's bit to interrupt it.
    pub const TRIG: usize = 0x00;
    /// `OBS`: a destination's bit stays set until it clears its `ISR` bit for us.
    pub const OBS: usize = 0x04;
    /// `ISR`: the sources that interrupted us, write 1 to clear.
    pub const ISR: usize = 0x10;
    /// `IMR`: the masked sources (read-only).
    pub const IMR: usize = 0x14;
    /// `IER`: write 1 to unmask a source.
    pub const IER: usize = 0x18;
    /// `IDR`: write 1 to mask a source.
    pub const IDR: usize = 0x1c;
    /// The agent register block's length (`IDR` + 4).
    pub const LEN: usize = 0x20;
    /// Bytes of one request buffer (`IPI_BUF_LEN_MAX` 32; `XIPIPSU_MSG_BUF_SIZE` 8 words).
    pub const BUF_LEN: usize = 32;
    /// The request buffer an agent with buffer index `local` writes for the agent with
    /// buffer index `remote` (`xlnx,ipi-buf-index`: RPU0 0, RPU1 1, APU 2, PMU 7), from
    /// the start of the IPI buffer RAM (0xff990000): eight agents of 0x200 bytes, each a
    /// 32-byte request and a 32-byte response per target (`XIPIPSU_BUFFER_OFFSET_GROUP`,
    /// `_TARGET`, `_RESPONSE`).
    pub const fn request_buffer(local: u32, remote: u32) -> usize {
        0x200 * local as usize + 0x40 * remote as usize
    }
    /// Agent bits on ZynqMP (`xlnx,ipi-bitmask` / `xlnx,ipi-id` in the device tree): APU
    /// (channel 0) bit 0.
    pub const APU: u32 = 1 << 0;
    /// RPU0 (channel 1): bit 8.
    pub const RPU0: u32 = 1 << 8;
    /// RPU1 (channel 2): bit 9.
    pub const RPU1: u32 = 1 << 9;
    /// Channel 7 (`ipi7: ipi@ff340000`, SPI 29, buffer index 3): bit 24. Xilinx's
    /// OpenAMP device trees give it to the APU for RPU traffic (`xlnx,ipi-id = <7>`,
    /// request buffer to RPU0 at 0xff990600), leaving channel 0 to TF-A and the PMU
    /// firmware.
    pub const CH7: u32 = 1 << 24;
}

/// Notify ids from here up are refused: TI's remoteproc drivers give mailbox messages
/// from `RP_MBOX_READY` (0xffffff00, `omap_remoteproc.h`) on as control messages (crash,
/// echo, suspend), not vring ids; the same bound holds on ZynqMP so that one id space
/// serves both.
pub const FIRST_CONTROL_MESSAGE: u32 = 0xffff_ff00;

/// How long `ring` waits for a full FIFO (or an unacknowledged IPI) to drain before it
/// reports [`Error::Exhausted`] (settable with [`UioDoorbell::set_full_wait`]).
pub const DEFAULT_FULL_WAIT: Duration = Duration::from_millis(1);

/// One side of a TI OMAP (K3) mailbox cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OmapMailbox {
    /// The UIO map of the cluster's registers.
    pub map: usize,
    /// The mailbox (FIFO) this side sends on: the first cell of `ti,mbox-tx` in the
    /// kernel's sub-mailbox node for the core (`mbox-m4-0 { ti,mbox-tx = <1 0 0>; }` on
    /// AM62x: FIFO 1).
    pub tx: u32,
    /// The mailbox this side receives on: the first cell of `ti,mbox-rx`.
    pub rx: u32,
    /// The user (interrupt output) whose line the UIO device has: the third cell of
    /// `ti,mbox-rx` (`<fifo 0 user>`).
    pub user: u32,
}

/// One ZynqMP IPI agent, ringing one remote agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZynqmpIpi {
    /// The UIO map of this agent's registers (`TRIG`..`IDR`).
    pub regs_map: usize,
    /// The UIO map of the IPI buffer RAM holding our request buffer to the remote.
    pub buf_map: usize,
    /// Where that request buffer starts inside `buf_map` (see [`ipi::request_buffer`]).
    pub req_offset: usize,
    /// The remote agent's bit ([`ipi::RPU0`], ...).
    pub remote: u32,
}

/// The register layout a [`UioDoorbell`] rings through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UioLayout {
    /// TI's OMAP mailbox (K3).
    OmapMailbox(OmapMailbox),
    /// AMD/Xilinx ZynqMP IPI.
    ZynqmpIpi(ZynqmpIpi),
}

enum Regs {
    Omap {
        regs: MmioRegs,
        cfg: OmapMailbox,
    },
    Ipi {
        regs: MmioRegs,
        buf: MmioRegs,
        cfg: ZynqmpIpi,
    },
}

/// A [`Doorbell`] over a UIO device: `wait` sleeps on its interrupt count, `ring` writes
/// the notify id into a mailbox (see the [module](self) documentation).
///
/// It carries notify ids ([`Doorbell::CARRIES_NOTIFY_ID`]); ids from
/// [`FIRST_CONTROL_MESSAGE`] up are refused. A ring that finds the FIFO full (OMAP) or the
/// previous IPI not yet acknowledged (ZynqMP) waits up to [`DEFAULT_FULL_WAIT`] and then
/// fails with [`Error::Exhausted`], never overwriting a message. It cannot tell whether
/// the remote core is alive (`check_peer` always says alive; remoteproc's state does).
pub struct UioDoorbell {
    dev: OwnedFd,
    path: PathBuf,
    regs: Regs,
    ring_lock: Mutex<()>,
    full_wait: Duration,
    count: AtomicU32,
}

impl std::fmt::Debug for UioDoorbell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UioDoorbell")
            .field("device", &self.path)
            .field("layout", &self.layout())
            .finish()
    }
}

fn invalid(path: &Path, what: String) -> MemError {
    MemError::InvalidRequest(format!("{}: {what}", path.display()))
}

impl UioDoorbell {
    /// Opens `/dev/<node>` (`uio0`), maps the layout's UIO maps as sysfs describes them,
    /// enables the layout's receive interrupt source and the UIO interrupt.
    pub fn open(roots: &SysRoots, node: &str, layout: UioLayout) -> Result<Self, MemError> {
        let info = uio_device(roots, node)?;
        let path = roots.dev.join(node);
        let dev = open_rw(&path, libc::O_NONBLOCK, UIO_MISSING, UDEV_HINT)?;
        let map =
            |index: usize| -> Result<MmioRegs, MemError> {
                let m = info.maps.iter().find(|m| m.index == index).ok_or_else(|| {
                    MemError::NotFound {
                        what: format!("map{index} of {node} (it has {} map(s))", info.maps.len()),
                    }
                })?;
                let page = sys::page_size() as u64;
                let attr = roots
                    .sys
                    .join("class/uio")
                    .join(node)
                    .join(format!("maps/map{index}"));
                let end = m.offset.checked_add(m.size).filter(|_| m.size != 0);
                let len = end
                    .and_then(|e| e.checked_next_multiple_of(page))
                    .and_then(|l| usize::try_from(l).ok())
                    .ok_or_else(|| MemError::Malformed {
                        path: attr.join("size"),
                        what: format!("offset {:#x} + size {:#x} is no mapping", m.offset, m.size),
                    })?;
                let mm = Mmap::shared(dev.as_fd(), len, index as u64 * page)
                    .map_err(|e| mmap_error(&path, e, "the UIO driver refused the mapping"))?;
                MmioRegs::new(mm, m.offset as usize, m.size as usize)
                    .map_err(|e| invalid(&attr, format!("offset {:#x}: {e}", m.offset)))
            };
        let regs = match layout {
            UioLayout::OmapMailbox(cfg) => Regs::Omap {
                regs: map(cfg.map)?,
                cfg,
            },
            UioLayout::ZynqmpIpi(cfg) => Regs::Ipi {
                regs: map(cfg.regs_map)?,
                buf: map(cfg.buf_map)?,
                cfg,
            },
        };
        Self::with_regs(dev, path, regs)
    }

    /// A doorbell over an open UIO device `dev` (its name, for errors, is `path`) and
    /// registers already mapped: for an OMAP mailbox, `regs` is the cluster; for ZynqMP,
    /// `regs` the agent's registers and `buf` the buffer RAM. `layout`'s map indices are
    /// not used. This is how tests run it over a socket and a memfd.
    pub fn from_parts(
        dev: OwnedFd,
        path: PathBuf,
        layout: UioLayout,
        regs: MmioRegs,
        buf: Option<MmioRegs>,
    ) -> Result<Self, MemError> {
        let regs = match layout {
            UioLayout::OmapMailbox(cfg) => Regs::Omap { regs, cfg },
            UioLayout::ZynqmpIpi(cfg) => Regs::Ipi {
                regs,
                buf: buf.ok_or_else(|| {
                    invalid(
                        &path,
                        "a ZynqMP IPI doorbell needs the IPI buffer map".into(),
                    )
                })?,
                cfg,
            },
        };
        Self::with_regs(dev, path, regs)
    }

    fn with_regs(dev: OwnedFd, path: PathBuf, regs: Regs) -> Result<Self, MemError> {
        let need = |r: &MmioRegs, end: usize, what: &str| {
            if r.len() < end {
                Err(invalid(
                    &path,
                    format!("{what} needs {end:#x} bytes, the map has {:#x}", r.len()),
                ))
            } else {
                Ok(())
            }
        };
        match &regs {
            Regs::Omap { regs, cfg } => {
                if cfg.tx >= omap::FIFOS || cfg.rx >= omap::FIFOS || cfg.user >= omap::USERS {
                    return Err(invalid(
                        &path,
                        format!(
                            "mailbox tx {} / rx {} / user {}: a K3 cluster has {} mailboxes and {} users",
                            cfg.tx,
                            cfg.rx,
                            cfg.user,
                            omap::FIFOS,
                            omap::USERS
                        ),
                    ));
                }
                need(regs, omap::irq_enable_clr(cfg.user) + 4, "the OMAP mailbox")?;
            }
            Regs::Ipi { regs, buf, cfg } => {
                if cfg.remote == 0 {
                    return Err(invalid(
                        &path,
                        "the remote IPI agent's bit mask is 0".into(),
                    ));
                }
                if cfg.req_offset % 4 != 0 {
                    return Err(invalid(
                        &path,
                        format!(
                            "IPI request buffer offset {:#x} is not 4-aligned",
                            cfg.req_offset
                        ),
                    ));
                }
                need(regs, ipi::LEN, "the IPI agent's registers")?;
                need(
                    buf,
                    cfg.req_offset.saturating_add(ipi::BUF_LEN),
                    "the IPI request buffer",
                )?;
            }
        }
        let bell = Self {
            dev,
            path,
            regs,
            ring_lock: Mutex::new(()),
            full_wait: DEFAULT_FULL_WAIT,
            count: AtomicU32::new(0),
        };
        let r = match &bell.regs {
            Regs::Omap { regs, cfg } => {
                regs.write32(omap::irq_enable(cfg.user), omap::irq_newmsg(cfg.rx))
            }
            Regs::Ipi { regs, cfg, .. } => regs.write32(ipi::IER, cfg.remote),
        };
        r.map_err(|e| invalid(&bell.path, format!("enabling the receive interrupt: {e}")))?;
        bell.irq_control(1).map_err(|e| MemError::Os {
            op: format!("enabling the interrupt (irqcontrol write) of {}", bell.path.display()),
            source: e,
            hint: "the UIO driver has no irqcontrol (use uio_pdrv_genirq / generic-uio) or no interrupt",
        })?;
        Ok(bell)
    }

    /// The layout it rings through.
    pub fn layout(&self) -> UioLayout {
        match &self.regs {
            Regs::Omap { cfg, .. } => UioLayout::OmapMailbox(*cfg),
            Regs::Ipi { cfg, .. } => UioLayout::ZynqmpIpi(*cfg),
        }
    }

    /// The UIO device node.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The interrupt count UIO last returned.
    pub fn interrupt_count(&self) -> u32 {
        self.count.load(Ordering::Relaxed)
    }

    /// The UIO device's descriptor, for an event loop to wait on: readable (`POLLIN`) while
    /// the interrupt count differs from the one this open file last read; then call
    /// [`Self::take_interrupt`].
    pub fn wake_fd(&self) -> BorrowedFd<'_> {
        self.dev.as_fd()
    }

    /// Takes a delivered interrupt without blocking, as [`Doorbell::wait`] does once the
    /// device is readable: reads the new count (`Ok(false)` if there is none), clears the
    /// mailbox or IPI source, then re-enables the UIO interrupt (irqcontrol 1). Until this
    /// runs after an interrupt, `uio_pdrv_genirq` keeps the line disabled and no further
    /// ring reaches this side.
    pub fn take_interrupt(&self) -> intercore::Result<bool> {
        let mut b = [0u8; 4];
        loop {
            match sys::fd::read(self.dev.as_fd(), &mut b) {
                Ok(4) => break,
                // End of file: the device went away (a fake's hardware side closed).
                Ok(_) => return Err(Error::Os(libc::EIO)),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(os(e)),
            }
        }
        self.count.store(u32::from_ne_bytes(b), Ordering::Relaxed);
        self.ack().map_err(os)?;
        self.irq_control(1).map_err(os)?;
        Ok(true)
    }

    /// How long a ring waits for a full FIFO to drain.
    pub fn set_full_wait(&mut self, d: Duration) {
        self.full_wait = d;
    }

    /// UIO's irqcontrol: a 4-byte write of `on` (1 re-enables the interrupt).
    fn irq_control(&self, on: i32) -> io::Result<()> {
        loop {
            match sys::fd::write(self.dev.as_fd(), &on.to_ne_bytes()) {
                Ok(4) => return Ok(()),
                Ok(_) => return Err(io::Error::from_raw_os_error(libc::EIO)),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Whether the send side is full: the OMAP FIFO, or the remote has not yet cleared our
    /// previous IPI.
    fn tx_full(&self) -> io::Result<bool> {
        Ok(match &self.regs {
            Regs::Omap { regs, cfg } => {
                regs.read32(omap::fifo_status(cfg.tx))? & omap::FIFO_FULL != 0
            }
            Regs::Ipi { regs, cfg, .. } => regs.read32(ipi::OBS)? & cfg.remote != 0,
        })
    }

    /// Clears the interrupt source of a received ring: drains the OMAP receive FIFO (at
    /// most its depth) and clears its NEWMSG status, or clears the remote's ISR bit.
    fn ack(&self) -> io::Result<()> {
        match &self.regs {
            Regs::Omap { regs, cfg } => {
                for _ in 0..omap::FIFO_DEPTH {
                    if regs.read32(omap::msg_status(cfg.rx))? == 0 {
                        break;
                    }
                    // The id itself is not needed: the bus re-checks every ring on a wake-up.
                    regs.read32(omap::message(cfg.rx))?;
                }
                regs.write32(omap::irq_status(cfg.user), omap::irq_newmsg(cfg.rx))
            }
            Regs::Ipi { regs, cfg, .. } => {
                let pending = regs.read32(ipi::ISR)? & cfg.remote;
                if pending != 0 {
                    regs.write32(ipi::ISR, pending)?;
                }
                Ok(())
            }
        }
    }
}

fn os(e: io::Error) -> Error {
    Error::Os(e.raw_os_error().unwrap_or(libc::EIO))
}

impl Doorbell for UioDoorbell {
    const CARRIES_NOTIFY_ID: bool = true;

    fn ring(&self, notify_id: u32) -> intercore::Result<()> {
        if notify_id >= FIRST_CONTROL_MESSAGE {
            return Err(Error::Protocol {
                what: "notify id in the remoteproc mailbox control range (>= 0xffffff00)",
                value: notify_id.into(),
            });
        }
        let _g = self.ring_lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut deadline = None;
        while self.tx_full().map_err(os)? {
            let now = monotonic_now();
            let d = *deadline.get_or_insert(now + self.full_wait);
            if now >= d {
                return Err(Error::Exhausted(
                    "mailbox FIFO full (the peer is not draining it)",
                ));
            }
            std::thread::yield_now();
        }
        match &self.regs {
            Regs::Omap { regs, cfg } => regs.write32(omap::message(cfg.tx), notify_id),
            Regs::Ipi { regs, buf, cfg } => buf.write32(cfg.req_offset, notify_id).and_then(|()| {
                // The message before the trigger (the kernel's writel has a barrier).
                fence(Ordering::SeqCst);
                regs.write32(ipi::TRIG, cfg.remote)
            }),
        }
        .map_err(os)
    }

    fn wait(&self, timeout: Option<Duration>) -> intercore::Result<bool> {
        let deadline = timeout.map(|t| monotonic_now().saturating_add(t));
        loop {
            let left = deadline.map(|d| d.saturating_sub(monotonic_now()));
            let [rev] = poll_readable([self.dev.as_fd()], left).map_err(os)?;
            if rev & libc::POLLIN == 0 {
                if rev & (libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) != 0 {
                    // UIO says POLLERR for a device without an interrupt.
                    return Err(Error::Os(libc::EIO));
                }
                if deadline.is_none_or(|d| monotonic_now() >= d) {
                    return Ok(false);
                }
                continue;
            }
            if self.take_interrupt()? {
                return Ok(true);
            }
            // Nothing new after all (another reader took it, or a spurious readiness):
            // sleep again.
        }
    }

    fn now(&self) -> Duration {
        monotonic_now()
    }

    /// `sched_yield(2)`.
    fn yield_cpu(&self) {
        std::thread::yield_now()
    }
}
