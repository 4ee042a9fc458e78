//! Async over a UIO doorbell, against a fake UIO device: the device node is one end of a
//! socket pair (pollable, as a real `/dev/uioN` is), the registers a memfd, and
//! `intercore-linux`'s fake hardware (`tests/fake_uio`) plays the mailbox. The runtimes
//! here have no time driver, so a wake-up can only come from a descriptor.

#[path = "../../intercore-linux/tests/fake_uio/mod.rs"]
mod fake_uio;

use fake_uio::{EMPTY, FakeHw, Irq, Lane};
use intercore::SharedMemory;
use intercore::WaitMode;
use intercore::rpmsg::{HostBus, HostConfig, RPMSG_ADDR_ANY, RemoteBus, RemoteConfig};
use intercore::testing::Carveout;
use intercore_board::{Link, LinkParts};
use intercore_linux::MemfdRegion;
use intercore_linux::memory::SysRoots;
use intercore_linux::notify::uio::{OmapMailbox, omap};
use intercore_linux::reactor::{ReactorConfig, Ready};
use intercore_linux::sys::{Mmap, MmioRegs, page_size};
use intercore_linux::{DevMemCaching, PhysCarveout};
use intercore_linux::{UioDoorbell, UioLayout};
use intercore_tokio::{AsyncHost, AsyncLink, AsyncReactor};
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::Duration;

/// How long a blocking side waits: far beyond a round trip here (well under 1 ms), so a
/// lost ring fails the test instead of being papered over by a timeout and a re-check.
const TIMEOUT: Option<Duration> = Some(Duration::from_secs(5));

/// A current-thread runtime with the reactor and no timers: any `tokio::time` use panics.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .unwrap()
}

/// Runs `f` on a thread of its own, failing (not hanging) after 60 s: a lost wake-up.
fn watchdog<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(60))
        .expect("hung: a wake-up was lost")
}

/// A fake UIO device: (the hardware's end, the device's end, non-blocking as `open` makes it).
fn device() -> (UnixStream, OwnedFd) {
    let (hw, dev) = UnixStream::pair().unwrap();
    dev.set_nonblocking(true).unwrap();
    (hw, dev.into())
}

/// A K3 cluster's side sending on mailbox `tx`, receiving on `rx` as `user`.
fn omap_bell(regs: &MemfdRegion, dev: OwnedFd, tx: u32, rx: u32, user: u32) -> UioDoorbell {
    let mm = Mmap::shared(regs.fd(), page_size(), 0).unwrap();
    UioDoorbell::from_parts(
        dev,
        format!("fake-uio{user}").into(),
        UioLayout::OmapMailbox(OmapMailbox {
            map: 0,
            tx,
            rx,
            user,
        }),
        MmioRegs::new(mm, 0, 0x200).unwrap(),
        None,
    )
    .unwrap()
}

fn message(i: u32, len: usize) -> Vec<u8> {
    (0..len).map(|k| (i as usize * 31 + k) as u8).collect()
}

const MAX: usize = 496;

/// A K3 mailbox cluster behind two fake UIO devices, an echo remote (blocking, in a
/// thread) on one side echoing `messages` messages over `remote_mem`, and the host bus on
/// the other over `host_mem` (the same carveout: `carveout`'s layout, table written).
struct UioEcho<M: SharedMemory> {
    bus: HostBus<M, UioDoorbell>,
    remote: std::thread::JoinHandle<Result<u64, String>>,
    /// Lets the remote go: it keeps its device open until the host is done, since its
    /// last ring must still be delivered after it returns from its last send.
    done: mpsc::Sender<()>,
    _hw: FakeHw,
}

fn uio_echo<M: SharedMemory + Send + 'static>(
    host_mem: M,
    remote_mem: M,
    carveout: &Carveout,
    messages: u64,
) -> UioEcho<M> {
    let regs = MemfdRegion::create("omap-mbox", page_size()).unwrap();
    for mb in 0..omap::FIFOS {
        regs.store_u32(omap::message(mb), EMPTY, Ordering::SeqCst);
    }
    let (hw_host, dev_host) = device();
    let (hw_remote, dev_remote) = device();
    let hw_regs = MemfdRegion::from_fd(regs.fd().try_clone_to_owned().unwrap()).unwrap();
    let hw = FakeHw::start(
        hw_regs,
        vec![
            Lane {
                msg: omap::message(0),
                trig: None,
                to: 1,
                ids: Default::default(),
            },
            Lane {
                msg: omap::message(1),
                trig: None,
                to: 0,
                ids: Default::default(),
            },
        ],
        vec![
            Irq {
                status: omap::irq_status(0),
                bit: omap::irq_newmsg(1),
                sock: hw_host,
            },
            Irq {
                status: omap::irq_status(1),
                bit: omap::irq_newmsg(0),
                sock: hw_remote,
            },
        ],
    );
    let host_bell = omap_bell(&regs, dev_host, 0, 1, 0);
    let remote_bell = omap_bell(&regs, dev_remote, 1, 0, 1);
    let (map, rsc) = (carveout.map, carveout.rsc);
    let (done, done_rx) = mpsc::channel::<()>();
    let remote = std::thread::spawn(move || -> Result<u64, String> {
        let cfg = RemoteConfig {
            wait: WaitMode::Event,
            ..RemoteConfig::default()
        };
        let mut bus: RemoteBus<_, _> =
            RemoteBus::new(remote_mem, remote_bell, &map, rsc, cfg).map_err(|e| e.to_string())?;
        bus.wait_ready(TIMEOUT).map_err(|e| e.to_string())?;
        let ch = bus
            .open("echo", RPMSG_ADDR_ANY)
            .map_err(|e| e.to_string())?;
        let mut buf = vec![0u8; MAX];
        for i in 0..messages {
            let n = bus
                .recv(&ch, &mut buf, TIMEOUT)
                .map_err(|e| format!("remote recv {i}: {e}"))?;
            bus.send(&ch, &buf[..n], TIMEOUT)
                .map_err(|e| format!("remote send {i}: {e}"))?;
        }
        let _ = done_rx.recv();
        Ok(messages)
    });
    let cfg = HostConfig::default().timeout(TIMEOUT).wait(WaitMode::Event);
    let bus = HostBus::new(host_mem, host_bell, &carveout.map, carveout.rsc, cfg).unwrap();
    UioEcho {
        bus,
        remote,
        done,
        _hw: hw,
    }
}

impl<M: SharedMemory> UioEcho<M> {
    /// Runs the host side `host` (under the watchdog), then checks the remote echoed
    /// every message; `host`'s result.
    fn run<T: Send + 'static>(
        self,
        messages: u64,
        host: impl FnOnce(HostBus<M, UioDoorbell>) -> T + Send + 'static,
    ) -> T
    where
        M: Send + Sync + 'static,
    {
        let bus = self.bus;
        let r =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| watchdog(move || host(bus))));
        let _ = self.done.send(());
        // The remote's error first (its device closing stops the fake hardware, which the
        // host then sees as EIO).
        assert_eq!(self.remote.join().unwrap(), Ok(messages));
        r.unwrap()
    }
}

/// Every size from 0 to the largest payload, sent and echoed, each echo compared.
async fn echo_every_size(
    send: impl AsyncFn(&[u8]) -> intercore::Result<()>,
    recv: impl AsyncFn(&mut [u8]) -> intercore::Result<usize>,
) {
    let mut buf = vec![0u8; MAX];
    for len in 0..=MAX {
        let m = message(len as u32, len);
        send(&m).await.unwrap();
        let n = recv(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], &m[..], "size {len}");
    }
}

/// Each round trip's reply needs an interrupt unless it beat the host's first look; most
/// do not (the fake delivers every 100 µs at best).
fn assert_woken_by_the_fd(interrupts: u32, messages: u64) {
    eprintln!("{interrupts} UIO interrupts woke the host for {messages} round trips");
    assert!(
        interrupts as u64 > messages / 2,
        "the host woke from the UIO descriptor {interrupts} times for {messages} round trips"
    );
}

/// An echo remote and the async host, each with a UIO doorbell on one K3 mailbox cluster
/// (against a fake UIO device): every size round-trips and is compared, every wake-up of
/// the host coming from its UIO descriptor (the runtime has no timers). The fake delivers
/// an interrupt only while it is enabled, so a host that did not take and re-enable it
/// after a wake-up would hang here.
#[test]
fn async_host_echoes_over_a_uio_doorbell() {
    let messages = (MAX + 1) as u64;
    let carveout = Carveout::with_buffers(64);
    let echo = uio_echo(
        carveout.mem.clone(),
        carveout.mem.clone(),
        &carveout,
        messages,
    );
    let interrupts = echo.run(messages, |bus| {
        runtime().block_on(async move {
            let host = AsyncHost::new(bus).unwrap();
            let ch = host.connect("echo").await.unwrap();
            assert_eq!(host.with_bus(|b| b.max_payload()), MAX);
            echo_every_size(
                async |m: &[u8]| host.send(&ch, m).await,
                async |b: &mut [u8]| host.recv(&ch, b).await,
            )
            .await;
            host.with_bus(|b| b.doorbell().interrupt_count())
        })
    });
    assert_woken_by_the_fd(interrupts, messages);
}

/// A scratch directory holding a fake `/dev/mem` (a regular file, mapped shared by both
/// sides, as the userspace transport maps its carveout).
struct Scratch(std::path::PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A board's `userspace/uio` link (the host bus the board opens for `doorbell = "uio"`,
/// over its carveout through `/dev/mem`), driven by [`AsyncLink`] against a fake UIO
/// device: it is accepted, and every size echoes with each wake-up from the descriptor.
#[test]
fn async_link_echoes_over_a_userspace_uio_board_link() {
    let s =
        Scratch(std::env::temp_dir().join(format!("intercore-tokio-uio-{}", std::process::id())));
    let _ = std::fs::remove_dir_all(&s.0);
    std::fs::create_dir_all(s.0.join("dev")).unwrap();
    let carveout = Carveout::with_buffers(64);
    let len = carveout.mem.len();
    let pa = carveout.spec.da_base;
    // The carveout as the firmware left it (the resource table written) at its address.
    let mut image = vec![0u8; len];
    carveout.mem.read(0, &mut image);
    let f = std::fs::File::create(s.0.join("dev/mem")).unwrap();
    f.set_len(pa + len as u64).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&f, &image, pa).unwrap();
    let roots = SysRoots::under(&s.0);
    let open = || Arc::new(PhysCarveout::devmem(&roots, pa, len, DevMemCaching::Cached).unwrap());
    let messages = (MAX + 1) as u64;
    let echo = uio_echo(open(), open(), &carveout, messages);
    let interrupts = echo.run(messages, |bus| {
        let link = Link::from_uio_bus(bus);
        assert_eq!(link.transport_name(), "userspace/uio");
        runtime().block_on(async move {
            let link = AsyncLink::new(link).unwrap();
            let ch = link.connect("echo").await.unwrap();
            assert_eq!(link.max_payload(), MAX);
            echo_every_size(
                async |m: &[u8]| link.send(&ch, m).await,
                async |b: &mut [u8]| link.recv(&ch, b).await,
            )
            .await;
            let mut link = link.into_inner();
            let LinkParts::Uio(bus) = link.async_parts() else {
                panic!("not a UIO link")
            };
            bus.doorbell().interrupt_count()
        })
    });
    assert_woken_by_the_fd(interrupts, messages);
}

/// Each interrupt that wakes a parked task is taken at once: the count read, the
/// mailbox's NEWMSG status acknowledged (write 1 to clear) and the interrupt re-enabled
/// (a 4-byte 1 on the device), before the next interrupt can come. The test is the
/// hardware: it raises an interrupt, then waits for the re-enable, five times, while a
/// task waits for a service that never comes.
#[test]
fn each_wake_takes_the_interrupt_and_re_enables_it() {
    let regs = MemfdRegion::create("omap-mbox", page_size()).unwrap();
    let (mut hw, dev) = device();
    hw.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let bell = omap_bell(&regs, dev, 0, 1, 0);
    let mut b = [0u8; 4];
    hw.read_exact(&mut b).unwrap();
    assert_eq!(
        i32::from_ne_bytes(b),
        1,
        "construction enables the interrupt"
    );
    let carveout = Carveout::with_buffers(8);
    let cfg = HostConfig::default().timeout(TIMEOUT).wait(WaitMode::Event);
    let bus = HostBus::new(carveout.mem.clone(), bell, &carveout.map, carveout.rsc, cfg).unwrap();
    let status = omap::irq_status(0);
    let newmsg = omap::irq_newmsg(1);
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    let hardware = std::thread::spawn(move || {
        for count in 1..=5i32 {
            // Raised: our source and another one, which is not ours to clear.
            regs.store_u32(status, (newmsg | 1 << 30).to_le(), Ordering::SeqCst);
            hw.write_all(&count.to_ne_bytes()).unwrap();
            let mut b = [0u8; 4];
            hw.read_exact(&mut b)
                .unwrap_or_else(|e| panic!("interrupt {count} was not re-enabled: {e}"));
            assert_eq!(
                i32::from_ne_bytes(b),
                1,
                "irqcontrol after interrupt {count}"
            );
            // The acknowledgement precedes the re-enable (a write-1-to-clear of exactly
            // our bit: plain memory keeps the value written).
            assert_eq!(
                u32::from_le(regs.load_u32(status, Ordering::SeqCst)),
                newmsg,
                "interrupt {count} acknowledged"
            );
        }
        let _ = done_tx.send(());
        // The device stays open until the host is done (a closed one reads as end of
        // file, which the host reports as EIO).
        hw
    });
    let count = watchdog(move || {
        runtime().block_on(async move {
            let host = AsyncHost::new(bus).unwrap();
            tokio::select! {
                biased;
                r = done_rx => r.expect("the hardware thread failed"),
                r = host.find_service("never") => panic!("no service was announced: {r:?}"),
            }
            host.with_bus(|b| b.doorbell().interrupt_count())
        })
    });
    drop(hardware.join().unwrap());
    assert_eq!(count, 5, "the host read every interrupt count");
}

/// The same echo remote and UIO doorbell, the host bus served by an [`AsyncReactor`]: every
/// size round-trips through the reactor's turns, each echo compared and answered from the
/// callback, every wake-up coming from the UIO descriptor in the reactor's epoll (the
/// runtime has no timers). A reactor that did not take and re-enable the interrupt after
/// each wake-up would hang here.
#[test]
fn async_reactor_echoes_over_a_uio_doorbell() {
    let messages = (MAX + 1) as u64;
    let carveout = Carveout::with_buffers(64);
    let echo = uio_echo(
        carveout.mem.clone(),
        carveout.mem.clone(),
        &carveout,
        messages,
    );
    let interrupts = echo.run(messages, |mut bus| {
        let svc = bus.find_service("echo", TIMEOUT).unwrap();
        let ep = bus.create_endpoint("reactor", None).unwrap();
        runtime().block_on(async move {
            let mut r = AsyncReactor::new(ReactorConfig::default()).unwrap();
            assert!(!r.reactor().ticking(), "a UIO link needs no tick");
            let l = r.add(bus).unwrap();
            let link = r.link(l).unwrap();
            link.send_raw(ep, svc, &message(0, 0), TIMEOUT).unwrap();
            let mut len = 0usize;
            while len <= MAX {
                r.turn(|_, bus, ready| match ready {
                    Ready::Message(m) => {
                        assert_eq!(&m[..], &message(len as u32, len)[..], "size {len}");
                        drop(m);
                        len += 1;
                        if len <= MAX {
                            let next = message(len as u32, len);
                            bus.post(ep, svc, &next).unwrap();
                        }
                    }
                    other => panic!("{other:?}"),
                })
                .await
                .unwrap();
            }
            let bus = r.remove(l).unwrap();
            bus.doorbell().interrupt_count()
        })
    });
    assert_woken_by_the_fd(interrupts, messages);
}
