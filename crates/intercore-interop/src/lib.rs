//! intercore's side of the runs against the real OpenAMP and RPMsg-Lite C libraries
//! (`scripts/test-real-peers.sh`, `interop/`): the shared-memory layouts the C platform
//! layers in `interop/` use, and the two doorbells that match them.
//!
//! * [`SocketBell`]: OpenAMP's Linux "generic" machine (openamp-system-reference,
//!   `examples/legacy_apps/system/linux/machine/generic/platform_info.c`): one byte over a
//!   UNIX stream socket per notification, whatever the vring; the receiver reads up to 32
//!   bytes at once, so rings coalesce. It carries no notify id.
//! * [`MuBell`]: the mailbox of `interop/rpmsglite-linux/platform.c`, modelled on NXP's i.MX
//!   Messaging Unit as RPMsg-Lite's i.MX platform layers use it (`platform_notify(vector_id)`
//!   sends the vring's id, the receiving core runs `env_isr(vector)` for exactly that
//!   vring). Each notification names ONE vring, and a notification stays pending until the
//!   receiver takes it, as an MU register stays full until read: a peer that starts late
//!   still sees it.
#![forbid(unsafe_code)]

use intercore::{Doorbell, Error, Result, SharedMemory};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::time::Duration;

/// The OpenAMP Linux generic machine's layout (`platform_info.c`, `rsc_table.c`): the
/// shared-memory object and its size, the table's offset, the vrings, the buffer pool.
pub mod openamp {
    /// `metal_shmem_open("openamp.shm", 0x80000, …)`: `/dev/shm/openamp.shm`.
    pub const SHM_NAME: &str = "openamp.shm";
    /// Size of the object.
    pub const SHM_SIZE: usize = 0x8_0000;
    /// `RSC_MEM_PA`: the resource table (offset = physical address).
    pub const RSC_PA: usize = 0;
    /// `RING_TX` (vring 0, remote → host) and `RING_RX` (vring 1).
    pub const VRINGS: [u64; 2] = [0x4000, 0x8000];
    /// Vring entries (`VRING_SIZE` in `rsc_table.c`).
    pub const VRING_NUM: u32 = 256;
    /// `VRING_ALIGN`.
    pub const VRING_ALIGN: u32 = 0x1000;
    /// Notify ids of vring 0 and 1 in the table.
    pub const NOTIFY_IDS: [u32; 2] = [1, 2];
    /// `SHARED_BUF_PA` and `SHARED_BUF_SIZE`: the host's buffer pool.
    pub const BUF_PA: usize = 0x1_0000;
    /// `SHARED_BUF_SIZE`.
    pub const BUF_SIZE: usize = 0x4_0000;
    /// The service the echo apps use (`RPMSG_SERVICE_NAME`).
    pub const SERVICE: &str = "rpmsg-openamp-demo-channel";
    /// The doorbell socket (`unixs:` side = the remote, `unix:` side = the host).
    pub const SOCKET: &str = "/tmp/openamp.event.0";
}

/// The layout of `interop/rpmsglite-linux` (its `rpmsg_platform.h` and `platform.h`):
/// RPMsg-Lite's own master layout from offset 0 (`rpmsg_lite_master_init`: vring 0 at the
/// base, vring 1 at `VRING_SIZE`, buffers at `2 * VRING_SIZE`), offset = physical address.
pub mod lite {
    /// Size of the object.
    pub const SHM_SIZE: usize = 0x8_0000;
    /// `VRING_SIZE` of the platform header: each vring's slot.
    pub const VRING_SIZE: usize = 0x8000;
    /// `VRING_ALIGN`.
    pub const VRING_ALIGN: u32 = 0x1000;
    /// `RL_BUFFER_COUNT` (per direction; the vring has as many entries).
    pub const BUF_COUNT: u32 = 256;
    /// `RL_BUFFER_SIZE`: payload 496 + 16-byte header.
    pub const BUF_SIZE: usize = 512;
    /// Where the master's buffers start.
    pub const BUF_PA: usize = 2 * VRING_SIZE;
    /// Bytes of buffers (both directions).
    pub const BUF_LEN: usize = 2 * BUF_COUNT as usize * BUF_SIZE;
    /// The length passed to `rpmsg_lite_master_init`.
    pub const LINK_LEN: usize = BUF_PA + BUF_LEN;
    /// The vdev-only resource table intercore's host reads (RPMsg-Lite has none: on i.MX it
    /// is the firmware's `rsc_table.c`; here the host writes it, describing the layout above).
    pub const RSC_PA: usize = 0x7_e000;
    /// The mailbox block ([`super::MuBell`]).
    pub const MBOX_PA: usize = 0x7_f000;
    /// Notify ids = RPMsg-Lite's queue ids for link 0 (`RL_GET_VQ_ID(0, q)`).
    pub const NOTIFY_IDS: [u32; 2] = [0, 1];
    /// The service the remote app announces.
    pub const SERVICE: &str = "rpmsg-lite-echo";
}

/// One byte per notification over a UNIX stream socket, as OpenAMP's Linux generic machine
/// rings (`linux_proc_notify`: `send(fd, &dummy, 1, MSG_NOSIGNAL)`; `linux_proc_irq_handler`
/// reads up to 32 bytes). End of stream is the peer gone.
#[derive(Debug)]
pub struct SocketBell {
    rx: UnixStream,
    tx: UnixStream,
}

impl SocketBell {
    /// A doorbell over a connected stream.
    pub fn new(stream: UnixStream) -> std::io::Result<Self> {
        let tx = stream.try_clone()?;
        Ok(Self { rx: stream, tx })
    }

    /// Connects to `path`, retrying for up to `patience` (the generic machine's client
    /// retries the same way while the server sets up).
    pub fn connect(path: &str, patience: Duration) -> std::io::Result<Self> {
        let start = std::time::Instant::now();
        loop {
            match UnixStream::connect(path) {
                Ok(s) => return Self::new(s),
                Err(e) if start.elapsed() < patience => {
                    let _ = e;
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => {
                    return Err(std::io::Error::new(
                        e.kind(),
                        format!("connecting to the doorbell socket {path}: {e}"),
                    ));
                }
            }
        }
    }

    /// Listens on `path` (replacing a stale socket file) and accepts one peer.
    pub fn accept(path: &str) -> std::io::Result<Self> {
        let _ = std::fs::remove_file(path);
        let l = std::os::unix::net::UnixListener::bind(path).map_err(|e| {
            std::io::Error::new(e.kind(), format!("binding the doorbell socket {path}: {e}"))
        })?;
        let (s, _) = l.accept()?;
        Self::new(s)
    }
}

fn io_err(e: std::io::Error) -> Error {
    match e.kind() {
        ErrorKind::BrokenPipe | ErrorKind::ConnectionReset | ErrorKind::UnexpectedEof => {
            Error::PeerGone
        }
        _ => Error::Os(e.raw_os_error().unwrap_or(EIO)),
    }
}

/// `EIO`, for an I/O error without an errno.
const EIO: i32 = 5;

impl Doorbell for SocketBell {
    fn ring(&self, _notify_id: u32) -> Result<()> {
        loop {
            match (&self.tx).write(&[1]) {
                Ok(1) => return Ok(()),
                Ok(_) => return Err(Error::PeerGone),
                // The read side may have switched the socket to non-blocking (one file
                // description): a full buffer just means the peer has rings to read.
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(io_err(e)),
            }
        }
    }

    fn wait(&self, timeout: Option<Duration>) -> Result<bool> {
        let mut buf = [0u8; 32];
        let zero = timeout.is_some_and(|t| t.is_zero());
        self.rx.set_nonblocking(zero).map_err(io_err)?;
        if !zero {
            self.rx.set_read_timeout(timeout).map_err(io_err)?;
        }
        let r = (&self.rx).read(&mut buf);
        match r {
            Ok(0) => Err(Error::PeerGone),
            Ok(_) => {
                // Take every ring pending now, without waiting.
                self.rx.set_nonblocking(true).map_err(io_err)?;
                while let Ok(n) = (&self.rx).read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                }
                Ok(true)
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => Ok(false),
            Err(e) if e.kind() == ErrorKind::Interrupted => Ok(false),
            Err(e) => Err(io_err(e)),
        }
    }

    fn now(&self) -> Duration {
        intercore_linux::monotonic_now()
    }

    fn yield_cpu(&self) {
        std::thread::yield_now()
    }
}

/// Which side of the mailbox this end is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MuSide {
    /// The master (host): rings the to-remote words, takes the to-host ones.
    Master,
    /// The remote.
    Remote,
}

/// Words per direction and kind in the mailbox (one per vring id; RPMsg-Lite link 0 uses 0
/// and 1).
pub const MU_IDS: u32 = 2;

/// A mailbox in shared memory whose every notification names one vring and stays pending
/// until taken. Block layout (each group on its own 64-byte line, each word written by one
/// side only, so no read-modify-write is needed):
///
/// | offset | words | written by |
/// |---|---|---|
/// | 0 | `sent[id]` master → remote | master |
/// | 64 | `taken[id]` master → remote | remote |
/// | 128 | `sent[id]` remote → master | remote |
/// | 192 | `taken[id]` remote → master | master |
///
/// Vring `id` is pending for the receiver while `sent[id] != taken[id]`; the receiver takes
/// it by copying `sent[id]` into `taken[id]`. `interop/rpmsglite-linux/platform.c` is the C
/// side of the same block.
#[derive(Debug)]
pub struct MuBell<M: SharedMemory> {
    mem: M,
    block: usize,
    side: MuSide,
}

/// Bytes of the mailbox block.
pub const MU_BLOCK_LEN: usize = 256;

impl<M: SharedMemory> MuBell<M> {
    /// The mailbox at region offset `block` (64-byte aligned, inside `mem`).
    pub fn new(mem: M, block: usize, side: MuSide) -> Result<Self> {
        if block % 64 != 0
            || block
                .checked_add(MU_BLOCK_LEN)
                .is_none_or(|e| e > mem.len())
        {
            return Err(Error::Config(
                "mailbox block misaligned or outside the shared memory",
            ));
        }
        Ok(Self { mem, block, side })
    }

    /// Clears every word, both directions: a master starting over memory a previous run
    /// used (its `platform_init` does the same on the C side).
    pub fn reset(&self) {
        for i in 0..MU_BLOCK_LEN / 4 {
            // Relaxed: the peer is not running yet or treats any change as a ring.
            self.mem.store_u32(self.block + 4 * i, 0, Relaxed);
        }
        self.mem.fence(Release);
    }

    fn word(&self, group: usize, id: u32) -> usize {
        self.block + 64 * group + 4 * id as usize
    }

    /// (sent, taken) groups of the direction this side rings.
    fn outgoing(&self) -> (usize, usize) {
        match self.side {
            MuSide::Master => (0, 1),
            MuSide::Remote => (2, 3),
        }
    }
    fn incoming(&self) -> (usize, usize) {
        match self.side {
            MuSide::Master => (2, 3),
            MuSide::Remote => (0, 1),
        }
    }

    /// Takes every pending notification; returns the vring ids named.
    pub fn take(&self) -> Vec<u32> {
        let (s, t) = self.incoming();
        let mut ids = Vec::new();
        for id in 0..MU_IDS {
            // Acquire: pairs with the ringer's Release store, so the ring updates it made
            // before ringing are visible after we see the ring.
            let sent = self.mem.load_u32(self.word(s, id), Acquire);
            // Relaxed: we are the only writer of `taken`.
            let taken = self.mem.load_u32(self.word(t, id), Relaxed);
            if sent != taken {
                // Relaxed: only the ringer reads it, to see a ring taken; no data hangs on it.
                self.mem.store_u32(self.word(t, id), sent, Relaxed);
                ids.push(id);
            }
        }
        ids
    }
}

impl<M: SharedMemory> Doorbell for MuBell<M> {
    const CARRIES_NOTIFY_ID: bool = true;

    fn ring(&self, notify_id: u32) -> Result<()> {
        if notify_id >= MU_IDS {
            return Err(Error::Config("notify id beyond the mailbox's vring ids"));
        }
        let (s, _) = self.outgoing();
        let off = self.word(s, notify_id);
        // Relaxed: we are the only writer of this word.
        let v = self.mem.load_u32(off, Relaxed);
        // Release: the ring updates before the ring are visible to a receiver that sees it.
        self.mem.store_u32(off, v.wrapping_add(1), Release);
        Ok(())
    }

    fn wait(&self, timeout: Option<Duration>) -> Result<bool> {
        let start = self.now();
        let mut round: u32 = 0;
        loop {
            if !self.take().is_empty() {
                return Ok(true);
            }
            if let Some(t) = timeout
                && self.now().saturating_sub(start) >= t
            {
                return Ok(false);
            }
            match round {
                0..64 => std::hint::spin_loop(),
                64..128 => std::thread::yield_now(),
                _ => std::thread::sleep(Duration::from_micros(50)),
            }
            round = round.saturating_add(1);
        }
    }

    fn now(&self) -> Duration {
        intercore_linux::monotonic_now()
    }

    fn yield_cpu(&self) {
        std::thread::yield_now()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use intercore::testing::HeapMem;
    use std::sync::Arc;

    #[test]
    fn mailbox_names_the_vring_and_keeps_it_pending_for_a_late_receiver() {
        let mem = Arc::new(HeapMem::new(4096));
        let master = MuBell::new(Arc::clone(&mem), 1024, MuSide::Master).unwrap();
        master.reset();
        master.ring(1).unwrap();
        master.ring(1).unwrap();
        // The remote starts only now: the ring is still pending, and names vring 1 only.
        let remote = MuBell::new(Arc::clone(&mem), 1024, MuSide::Remote).unwrap();
        assert_eq!(remote.take(), vec![1]);
        assert_eq!(remote.take(), Vec::<u32>::new());
        assert!(!remote.wait(Some(Duration::ZERO)).unwrap());
        remote.ring(0).unwrap();
        assert_eq!(master.take(), vec![0]);
        assert!(master.ring(2).is_err(), "no vring 2 in the mailbox");
        assert!(MuBell::new(Arc::clone(&mem), 4000, MuSide::Remote).is_err());
    }

    #[test]
    fn socket_bell_coalesces_rings_and_reports_the_peer_gone() {
        let (a, b) = UnixStream::pair().unwrap();
        let (a, b) = (SocketBell::new(a).unwrap(), SocketBell::new(b).unwrap());
        assert!(!b.wait(Some(Duration::ZERO)).unwrap());
        a.ring(1).unwrap();
        a.ring(2).unwrap();
        assert!(b.wait(Some(Duration::from_secs(1))).unwrap());
        assert!(
            !b.wait(Some(Duration::from_millis(10))).unwrap(),
            "both rings taken"
        );
        drop(a);
        assert!(matches!(
            b.wait(Some(Duration::from_secs(1))),
            Err(Error::PeerGone)
        ));
    }
}
