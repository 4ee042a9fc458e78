//! The peer-behaviour suite: each role under test is driven exactly the way another
//! implementation of virtio-rpmsg drives it, at every point where the implementations differ
//! (`../shared/REFERENCE.md`, "other implementations"). The peers are hand-written models over
//! the raw rings, each naming the upstream file and function it follows:
//!
//! * Linux host: `drivers/rpmsg/virtio_rpmsg_bus.c` and `drivers/virtio/virtio_ring.c` (v6.1–6.12)
//! * OpenAMP host and remote: `lib/rpmsg/rpmsg_virtio.c`, `lib/virtio/virtqueue.c` (v2023.10+)
//! * RPMsg-Lite remote: `lib/rpmsg_lite/rpmsg_lite.c`, `lib/virtio/virtqueue.c` (v5.x); its
//!   master is modelled in `peer_rpmsg_lite.rs`
//! * TI MCU+ SDK IPC firmware on K3 (`ipc_rpmsg`), with Linux's `ti_k3_common.c` layout
//!
//! The roles under test run with intercore's defaults unless a test says otherwise.

use intercore::rpmsg::Channel;
use intercore::rpmsg::RPMSG_ADDR_ANY;
use intercore::rpmsg::{HostBus, HostConfig, RemoteBus, RemoteConfig, RscLocation, status};
use intercore::testing::HeapMem;
use intercore::virtq::{DeviceQueue, DriverQueue, VringLayout};
use intercore::wire::rpmsg::{NsAnnouncement, NsKind, RpmsgHdr, VIRTIO_ID_RPMSG};
use intercore::wire::rsc::{
    FW_RSC_ADDR_ANY, FwRscCarveout, FwRscTrace, FwRscVdev, FwRscVdevVring, ResourceTable,
    RscTableWriter, VDEV_GFEATURES_OFFSET, VDEV_STATUS_OFFSET,
};
use intercore::wire::vring::VIRTIO_RING_F_EVENT_IDX;
use intercore::wire::{Le32, rpmsg::Name};
use intercore::{DevAddr, Doorbell, Error, LinearMap, SharedMemory, WaitMode};
use std::collections::VecDeque;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use zerocopy::IntoBytes;

const T: Option<Duration> = Some(Duration::from_secs(5));
const NS: u32 = 1 << intercore::wire::rpmsg::VIRTIO_RPMSG_F_NS;
const EVENT_IDX: u32 = 1 << VIRTIO_RING_F_EVENT_IDX;
const DA: u64 = 0xA000_0000;
const PAGE: usize = 4096;

// ---------------------------------------------------------------------------------------
// A doorbell that carries notify ids, as a mailbox does, and records every ring.

#[derive(Default)]
struct Wire {
    /// Notify ids rung by each side, not yet consumed: `[to host, to remote]`.
    pending: [VecDeque<u32>; 2],
    /// Every id each side has rung, in order: `[by host, by remote]`.
    log: [Vec<u32>; 2],
}

/// One side of a mailbox-like doorbell pair: each ring delivers its notify id.
#[derive(Clone)]
struct MailBell {
    wire: Arc<Mutex<Wire>>,
    side: usize,
    epoch: Instant,
}

impl MailBell {
    /// `(host side, remote side)`.
    fn pair() -> (MailBell, MailBell) {
        let wire = Arc::new(Mutex::new(Wire::default()));
        let epoch = Instant::now();
        (
            MailBell {
                wire: Arc::clone(&wire),
                side: 0,
                epoch,
            },
            MailBell {
                wire,
                side: 1,
                epoch,
            },
        )
    }
    /// Takes the ids rung to this side so far.
    fn take(&self) -> Vec<u32> {
        self.wire.lock().unwrap().pending[self.side]
            .drain(..)
            .collect()
    }
    /// Every id this side has rung.
    fn rung(&self) -> Vec<u32> {
        self.wire.lock().unwrap().log[self.side].clone()
    }
}

impl Doorbell for MailBell {
    const CARRIES_NOTIFY_ID: bool = true;
    fn ring(&self, notify_id: u32) -> intercore::Result<()> {
        let mut w = self.wire.lock().unwrap();
        w.pending[1 - self.side].push_back(notify_id);
        w.log[self.side].push(notify_id);
        Ok(())
    }
    fn wait(&self, timeout: Option<Duration>) -> intercore::Result<bool> {
        let end = Instant::now() + timeout.unwrap_or(Duration::from_secs(3600));
        loop {
            if !self.wire.lock().unwrap().pending[self.side].is_empty() {
                return Ok(true);
            }
            if Instant::now() >= end {
                return Ok(false);
            }
            std::thread::sleep(Duration::from_micros(200));
        }
    }
    fn now(&self) -> Duration {
        self.epoch.elapsed()
    }
}

// ---------------------------------------------------------------------------------------
// Resource tables as other firmware writes them.

/// What a firmware's resource table holds.
#[derive(Clone, Copy)]
struct TableSpec {
    features: u32,
    /// Device addresses of the two vrings (`None`: `FW_RSC_ADDR_ANY`).
    vrings: [Option<u64>; 2],
    notify_ids: [u32; 2],
    num: u32,
    /// A `vdev0buffer` carveout: (da, len).
    buffers: Option<(u64, u32)>,
    /// A trace entry first, as TI's and OpenAMP's tables have.
    trace: bool,
}

/// Writes the table at `at` and returns where it is.
fn write_table(mem: &HeapMem, at: usize, t: &TableSpec) -> RscLocation {
    let mut buf = [0u8; 1024];
    let mut w = RscTableWriter::new(&mut buf, 3).unwrap();
    if t.trace {
        let mut name = [0u8; 32];
        name[..9].copy_from_slice(b"trace:r5f");
        w.add_trace(&FwRscTrace {
            da: Le32::new(0x9000_0000),
            len: Le32::new(0x1000),
            reserved: Le32::new(0),
            name,
        })
        .unwrap();
    }
    if let Some((da, len)) = t.buffers {
        let mut name = [0u8; 32];
        name[..11].copy_from_slice(b"vdev0buffer");
        w.add_carveout(&FwRscCarveout {
            da: Le32::new(da as u32),
            pa: Le32::new(da as u32),
            len: Le32::new(len),
            flags: Le32::new(0),
            reserved: Le32::new(0),
            name,
        })
        .unwrap();
    }
    let ring = |i: usize| FwRscVdevVring {
        da: Le32::new(t.vrings[i].map_or(FW_RSC_ADDR_ANY, |d| d as u32)),
        align: Le32::new(4096),
        num: Le32::new(t.num),
        notifyid: Le32::new(t.notify_ids[i]),
        pa: Le32::new(0),
    };
    w.add_vdev(
        &FwRscVdev {
            id: Le32::new(VIRTIO_ID_RPMSG),
            dfeatures: Le32::new(t.features),
            ..Default::default()
        },
        &[ring(0), ring(1)],
        &[],
    )
    .unwrap();
    let len = w.finish();
    mem.write(at, &buf[..len]);
    RscLocation { offset: at, len }
}

/// The vdev's status and features words and the vring entries of the table at `loc`.
struct TableWords {
    status: usize,
    gfeatures: usize,
    dfeatures: u32,
    vring_entry: [usize; 2],
}

fn table_words(mem: &HeapMem, loc: RscLocation) -> TableWords {
    let mut raw = vec![0u8; loc.len];
    mem.read(loc.offset, &mut raw);
    let t = ResourceTable::validate(&raw).unwrap();
    let v = t.find_vdev(7).unwrap().unwrap();
    TableWords {
        status: loc.offset + v.offset + VDEV_STATUS_OFFSET,
        gfeatures: loc.offset + v.offset + VDEV_GFEATURES_OFFSET,
        dfeatures: v.vdev.dfeatures.get(),
        vring_entry: [
            loc.offset + v.vring_offset(0),
            loc.offset + v.vring_offset(1),
        ],
    }
}

fn layout(num: u32) -> VringLayout {
    VringLayout::new(num, 4096).unwrap()
}

fn ring_bytes(num: u32) -> usize {
    layout(num).size().div_ceil(PAGE) * PAGE
}

fn msg_bytes(src: u32, dst: u32, payload: &[u8]) -> Vec<u8> {
    let mut v = RpmsgHdr::new(src, dst, payload.len() as u16)
        .as_bytes()
        .to_vec();
    v.extend_from_slice(payload);
    v
}

fn parse_msg(raw: &[u8]) -> (u32, u32, Vec<u8>) {
    let (h, rest) = RpmsgHdr::parse(raw).unwrap();
    (
        h.src.get(),
        h.dst.get(),
        rest[..h.len.get() as usize].to_vec(),
    )
}

fn ns_create(name: &str, addr: u32) -> Vec<u8> {
    NsAnnouncement {
        name: Name::new(name.as_bytes()).unwrap(),
        addr,
        kind: NsKind::Create,
    }
    .emit()
    .as_bytes()
    .to_vec()
}

fn payload(i: usize) -> Vec<u8> {
    (0..(i * 37) % 480 + 1).map(|b| (b ^ i) as u8).collect()
}

/// A remote echo service run by our `RemoteBus` until `n` messages are echoed.
fn echo_n<M: SharedMemory, D: Doorbell, const N: usize>(
    bus: &mut RemoteBus<M, D, N>,
    ep: u32,
    n: usize,
) {
    let mut buf = [0u8; 2048];
    for _ in 0..n {
        let (src, len) = bus
            .recv_any_with(T, |m| {
                buf[..m.payload.len()].copy_from_slice(m.payload);
                (m.src, m.payload.len())
            })
            .unwrap();
        bus.send_raw(ep, src, &buf[..len], T).unwrap();
    }
}

// =======================================================================================
// The REMOTE role under other hosts.

/// A Linux-like host over raw rings (`rpmsg_probe`, `get_a_tx_buf`, `rpmsg_send_offchannel_raw`,
/// `rpmsg_recv_single`): buffers in one contiguous area, first half receive, second half
/// transmit; every receive buffer posted before DRIVER_OK; transmit buffers taken fresh until
/// half are used, then recycled from vring 1's used ring with the used length ignored
/// (`get_a_tx_buf`) — or, as OpenAMP's `rpmsg_virtio_get_tx_buffer` does, sized from it.
struct ModelHost {
    mem: Arc<HeapMem>,
    rx: DriverQueue,
    tx: DriverQueue,
    buf_off: usize,
    buf_da: u64,
    nbufs: u16,
    buf_size: usize,
    fresh_tx: u16,
    /// OpenAMP: the room of a recycled buffer is its used length minus the header.
    size_tx_from_used_len: bool,
    /// OpenAMP's remoteproc-virtio host: accepts every offered feature (EVENT_IDX too)
    /// but never writes `used_event` (stays 0), and reads vring 0 only when notified.
    interrupt_driven: bool,
    bell: MailBell,
    /// Recycled transmit buffers with their used length.
    free_tx: Vec<(u16, u32)>,
    /// An interrupt-driven host's receive callback is running (a notification came).
    irq: bool,
}

impl ModelHost {
    /// Sets the link up on `loc`'s table the way Linux (or OpenAMP, with `openamp`) does.
    fn start(mem: Arc<HeapMem>, loc: RscLocation, bell: MailBell, openamp: bool) -> ModelHost {
        let w = table_words(&mem, loc);
        let mut raw = vec![0u8; loc.len];
        mem.read(loc.offset, &mut raw);
        let t = ResourceTable::validate(&raw).unwrap();
        let v = t.find_vdev(7).unwrap().unwrap();
        let r0 = v.vring(0).unwrap();
        let r1 = v.vring(1).unwrap();
        let num = r0.num.get();
        let off = |da: u32| (da as u64 - DA) as usize;
        let mut rx = DriverQueue::new(&*mem, off(r0.da.get()), layout(num), false).unwrap();
        let mut tx = DriverQueue::new(&*mem, off(r1.da.get()), layout(num), false).unwrap();
        // Linux: virtio_rpmsg_bus negotiates NS and EVENT_IDX when offered (virtio_ring
        // implements it); OpenAMP's host copies every offered feature into gfeatures.
        let accepted = if openamp {
            w.dfeatures
        } else {
            w.dfeatures & (NS | EVENT_IDX)
        };
        if !openamp && accepted & EVENT_IDX != 0 {
            rx = DriverQueue::new(&*mem, off(r0.da.get()), layout(num), true).unwrap();
            tx = DriverQueue::new(&*mem, off(r1.da.get()), layout(num), true).unwrap();
        }
        rx.reset(&*mem);
        tx.reset(&*mem);
        // `rproc_alloc_vring` (Linux; OpenAMP's remoteproc likewise) assigns notify ids from
        // 0 and writes them into the table.
        mem.store_u32(w.vring_entry[0] + 12, 0, Relaxed);
        mem.store_u32(w.vring_entry[1] + 12, 1, Relaxed);
        mem.store_u32(w.gfeatures, accepted, Relaxed);
        let mut carve = None;
        for e in t.iter() {
            if let intercore::wire::rsc::Resource::Carveout(c) = e.unwrap() {
                carve = Some((c.da.get() as u64, c.len.get()));
            }
        }
        let (buf_da, _) = carve.expect("the model host uses the table's vdev0buffer");
        let host = ModelHost {
            buf_off: off(buf_da as u32),
            buf_da,
            nbufs: num as u16,
            buf_size: 512,
            fresh_tx: 0,
            size_tx_from_used_len: openamp,
            interrupt_driven: openamp,
            bell,
            free_tx: Vec::new(),
            irq: false,
            mem,
            rx,
            tx,
        };
        let mut host = host;
        for id in 0..host.nbufs {
            let da = DevAddr(host.buf_da + (id as usize * host.buf_size) as u64);
            host.rx
                .add(&*host.mem, id, da, host.buf_size as u32, true)
                .unwrap();
        }
        host.rx.publish(&*host.mem);
        if host.interrupt_driven {
            host.rx.enable_interrupts(&*host.mem);
        }
        // Linux writes the status byte alone (`rproc_virtio_set_status`: `rsc->status =
        // status`), leaving num_of_vrings beside it untouched.
        std::sync::atomic::fence(Release);
        host.mem.write(w.status, &[status::DRIVER_OK | 0xb]);
        host
    }

    fn notify_ids(&self) -> [u32; 2] {
        [0, 1]
    }

    /// Sends from `src` to `dst`: `Err` with the reason when no transmit buffer fits.
    fn send(&mut self, src: u32, dst: u32, data: &[u8]) -> Result<(), String> {
        while let Some((id, len)) = self.tx.pop_used(&*self.mem).unwrap() {
            self.free_tx.push((id, len));
        }
        let (id, room, size) = if self.fresh_tx < self.nbufs {
            self.fresh_tx += 1;
            (self.fresh_tx - 1, self.buf_size - 16, self.buf_size as u32)
        } else {
            let (id, used_len) = self.free_tx.pop().ok_or("no free transmit buffer")?;
            let room = if self.size_tx_from_used_len {
                // rpmsg_virtio_send_offchannel_raw: `if (len > (buff_len - sizeof(*rp_hdr)))`
                // with buff_len the used length; computed signed, as the C code does.
                used_len as i64 - 16
            } else {
                (self.buf_size - 16) as i64
            };
            if room < data.len() as i64 {
                return Err(format!(
                    "recycled transmit buffer {id} has room {room} for {} bytes (used length {used_len})",
                    data.len()
                ));
            }
            (id, room as usize, used_len)
        };
        assert!(data.len() <= room);
        let off = self.buf_off + (self.nbufs as usize + id as usize) * self.buf_size;
        self.mem.write(off, &msg_bytes(src, dst, data));
        let da = DevAddr(self.buf_da + (off - self.buf_off) as u64);
        // Linux posts the message's length (`sg_init_one(&sg, msg, sizeof(*msg) + len)`);
        // OpenAMP the whole buffer (`rpmsg_virtio_enqueue_buffer(.., buff_len, ..)`).
        let desc_len = if self.size_tx_from_used_len {
            size
        } else {
            (16 + data.len()) as u32
        };
        self.tx.add(&*self.mem, id, da, desc_len, false).unwrap();
        if self.tx.publish(&*self.mem) {
            self.bell.ring(self.notify_ids()[1]).unwrap();
        }
        Ok(())
    }

    /// Receives one message (reposting its buffer), waiting up to 5 s. An interrupt-driven
    /// host reads vring 0 only after a notification for it.
    fn recv(&mut self) -> Result<(u32, u32, Vec<u8>), String> {
        let end = Instant::now() + Duration::from_secs(5);
        loop {
            if self.interrupt_driven && self.bell.take().contains(&self.notify_ids()[0]) {
                // `rpmsg_virtio_rx_callback` runs and drains the ring.
                self.irq = true;
            }
            if !self.interrupt_driven || self.irq {
                if let Some((id, len)) = self.rx.pop_used(&*self.mem).unwrap() {
                    let off = self.buf_off + id as usize * self.buf_size;
                    let mut raw = vec![0u8; len as usize];
                    self.mem.read(off, &mut raw);
                    let da = DevAddr(self.buf_da + (id as usize * self.buf_size) as u64);
                    self.rx
                        .add(&*self.mem, id, da, self.buf_size as u32, true)
                        .unwrap();
                    self.rx.publish(&*self.mem);
                    if self.interrupt_driven {
                        self.rx.enable_interrupts(&*self.mem);
                    }
                    return Ok(parse_msg(&raw));
                }
                self.irq = false;
            }
            if Instant::now() > end {
                return Err("no message (and no notification) within 5 s".into());
            }
            std::thread::sleep(Duration::from_micros(100));
        }
    }
}

/// The standard carveout, with the remote's table written as our firmwares declare it.
fn standard_carveout(features: u32) -> (Arc<HeapMem>, RscLocation, LinearMap) {
    let num = 256;
    let rings = ring_bytes(num);
    let total = PAGE + 2 * rings + 2 * 256 * 512;
    let mem = Arc::new(HeapMem::new(total));
    let loc = write_table(
        &mem,
        0,
        &TableSpec {
            features,
            vrings: [Some(DA + PAGE as u64), Some(DA + (PAGE + rings) as u64)],
            notify_ids: [1, 2],
            num,
            buffers: Some((DA + (PAGE + 2 * rings) as u64, 2 * 256 * 512)),
            trace: false,
        },
    );
    let map = LinearMap {
        base: DevAddr(DA),
        offset: 0,
        len: total,
    };
    (mem, loc, map)
}

/// The features intercore's firmwares offer by default: the name service, no EVENT_IDX
/// (`intercore-sim`'s `firmware_tables_do_not_offer_event_idx` checks the firmwares' tables).
fn default_features() -> u32 {
    NS
}

/// Runs `n` echo round trips of our remote (defaults) under `host`, all verified.
fn remote_echo_under(
    mut host: ModelHost,
    mut remote: RemoteBus<Arc<HeapMem>, MailBell, 8>,
    n: usize,
) {
    remote.wait_ready(T).unwrap();
    let ep = remote.create_endpoint("rpmsg-raw", None).unwrap();
    remote.announce(ep).unwrap();
    let (_, dst, ns) = host.recv().unwrap();
    assert_eq!(dst, 53);
    let ann = NsAnnouncement::parse(&ns).unwrap();
    assert_eq!(ann.addr, ep);
    let t = std::thread::spawn(move || {
        echo_n(&mut remote, ep, n);
        remote
    });
    for i in 0..n {
        let p = payload(i);
        host.send(0x400, ep, &p)
            .unwrap_or_else(|e| panic!("message {i}: {e}"));
        let (src, dst, got) = host.recv().unwrap_or_else(|e| panic!("echo {i}: {e}"));
        assert_eq!((src, dst, &got), (ep, 0x400, &p), "echo {i}");
    }
    t.join().unwrap();
}

/// Linux host (`virtio_rpmsg_bus.c`): our remote with its defaults answers 1,000 messages;
/// Linux ignores the used length of returned transmit buffers (`get_a_tx_buf`).
#[test]
fn remote_under_linux_host() {
    let (mem, loc, map) = standard_carveout(default_features());
    let (hb, rb) = MailBell::pair();
    let remote = RemoteBus::new(
        Arc::clone(&mem),
        rb,
        &map,
        loc,
        RemoteConfig::default().wait(WaitMode::Poll),
    )
    .unwrap();
    let host = ModelHost::start(mem, loc, hb, false);
    remote_echo_under(host, remote, 1000);
}

/// Linux host with EVENT_IDX offered (a firmware opting in): virtio_ring implements it, so
/// the link still works.
#[test]
fn remote_under_linux_host_with_event_idx() {
    let (mem, loc, map) = standard_carveout(NS | EVENT_IDX);
    let (hb, rb) = MailBell::pair();
    let remote = RemoteBus::new(
        Arc::clone(&mem),
        rb,
        &map,
        loc,
        RemoteConfig::default().wait(WaitMode::Poll),
    )
    .unwrap();
    let host = ModelHost::start(mem, loc, hb, false);
    remote_echo_under(host, remote, 600);
}

/// OpenAMP host (`rpmsg_virtio_get_tx_buffer` sizes a recycled transmit buffer from the used
/// length; remoteproc-virtio copies every offered feature but never writes `used_event`;
/// receives on notifications): more messages than buffers, so buffers are recycled. Before
/// the fix the remote returned used length 0 and the 257th send failed with room -16; with
/// EVENT_IDX offered by default the remote waited for a `used_event` that never moves and
/// the host, woken only by notifications, saw no echo.
#[test]
fn remote_under_openamp_host() {
    let (mem, loc, map) = standard_carveout(default_features());
    let (hb, rb) = MailBell::pair();
    let remote = RemoteBus::new(
        Arc::clone(&mem),
        rb,
        &map,
        loc,
        RemoteConfig::default().wait(WaitMode::Poll),
    )
    .unwrap();
    let host = ModelHost::start(mem, loc, hb, true);
    remote_echo_under(host, remote, 700);
}

/// The used length our remote writes for a consumed host buffer is the descriptor's length
/// (OpenAMP `rpmsg_virtio_release_rx_buffer`, RPMsg-Lite `vq_rx_free_remote`).
#[test]
fn remote_returns_descriptor_length_as_used_length() {
    let (mem, loc, map) = standard_carveout(default_features());
    let (hb, rb) = MailBell::pair();
    let mut remote = RemoteBus::<_, _, 4>::new(
        Arc::clone(&mem),
        rb,
        &map,
        loc,
        RemoteConfig::default().wait(WaitMode::Poll),
    )
    .unwrap();
    let mut host = ModelHost::start(Arc::clone(&mem), loc, hb, false);
    remote.wait_ready(T).unwrap();
    let ep = remote.create_endpoint("x", Some(30)).unwrap();
    host.send(0x400, ep, &[7; 10]).unwrap();
    remote
        .recv_any_with(T, |m| assert_eq!(m.payload, &[7; 10]))
        .unwrap();
    let (id, len) = host.tx.pop_used(&*mem).unwrap().expect("returned");
    assert_eq!(
        (id, len),
        (0, 26),
        "used length = descriptor length (16 + 10)"
    );
}

// The RPMsg-Lite master model and its tests are in `peer_rpmsg_lite.rs`.

/// Descriptor checks on the remote (issue: buffers outside the table): a transmit buffer
/// longer than the configured buffer size, one over the resource table and one in the
/// firmware's own memory each break the link; the remote never touches them. (A transmit
/// buffer marked device-writable is accepted, as RPMsg-Lite's master marks them all:
/// `peer_rpmsg_lite.rs`.)
#[test]
fn remote_refuses_descriptors_outside_its_windows() {
    type Bad = fn(&ModelHost) -> (u64, u32, bool);
    let cases: [(&str, Bad); 4] = [
        ("longer than the buffer size", |h| (h.buf_da, 1024, false)),
        ("over the resource table", |_| (DA, 64, false)),
        ("in the firmware's memory", |h| {
            (h.buf_da + (2 * 256 * 512 - 512) as u64, 64, false)
        }),
        ("outside every window", |_| (0x1000, 64, false)),
    ];
    for (what, bad) in cases {
        let (mem, loc, map) = standard_carveout(default_features());
        let (hb, rb) = MailBell::pair();
        let mut cfg = RemoteConfig::default().wait(WaitMode::Poll);
        // The last buffer-sized block of the carveout is the firmware's own.
        let host = ModelHost::start(Arc::clone(&mem), loc, hb, false);
        cfg.private = Some((host.buf_off + 2 * 256 * 512 - 512, 512));
        let mut remote = RemoteBus::<_, _, 4>::new(Arc::clone(&mem), rb, &map, loc, cfg).unwrap();
        let mut host = host;
        remote.wait_ready(T).unwrap();
        let (da, len, writable) = bad(&host);
        host.tx.add(&*mem, 0, DevAddr(da), len, writable).unwrap();
        host.tx.publish(&*mem);
        let r = remote.recv_any_with(Some(Duration::ZERO), |_| ());
        assert!(matches!(r, Err(Error::Protocol { .. })), "{what}: {r:?}");
        assert!(
            matches!(
                remote.recv_any_with(Some(Duration::ZERO), |_| ()),
                Err(Error::Protocol { .. })
            ),
            "{what}: sticky"
        );
    }
}

// =======================================================================================
// The HOST role against other firmware.

/// A remote over raw rings in the manner of OpenAMP's remote (`rpmsg_virtio.c`) or
/// RPMsg-Lite's remote (`rpmsg_lite_remote_init`): returns the descriptor length as used
/// length; OpenAMP honours `VRING_AVAIL_F_NO_INTERRUPT`, RPMsg-Lite ignores it and always
/// notifies; the i.MX port runs only the virtqueue named in each mailbox message
/// (`env_isr(vector)`: 0 = buffers posted for the remote's transmit ring, 1 = host
/// messages) — with `per_vring`, a notification naming the other ring is not enough.
struct ModelRemote {
    mem: Arc<HeapMem>,
    tx: DeviceQueue,
    rx: DeviceQueue,
    map: LinearMap,
    always_notify: bool,
    per_vring: bool,
    notify_ids: [u32; 2],
    bell: MailBell,
}

impl ModelRemote {
    /// Waits for DRIVER_OK, reads the (host-placed) vrings from the table, attaches.
    fn start(
        mem: Arc<HeapMem>,
        loc: RscLocation,
        map: LinearMap,
        bell: MailBell,
        always_notify: bool,
        per_vring: bool,
    ) -> ModelRemote {
        let w = table_words(&mem, loc);
        let end = Instant::now() + Duration::from_secs(5);
        while mem.load_u32(w.status, Acquire) as u8 & status::DRIVER_OK == 0 {
            assert!(Instant::now() < end, "no DRIVER_OK");
            std::thread::sleep(Duration::from_micros(100));
        }
        let g = mem.load_u32(w.gfeatures, Relaxed);
        assert_eq!(g & !w.dfeatures, 0, "host accepted features not offered");
        let ring = |i: usize| {
            let da = mem.load_u32(w.vring_entry[i], Relaxed);
            let num = mem.load_u32(w.vring_entry[i] + 8, Relaxed);
            let id = mem.load_u32(w.vring_entry[i] + 12, Relaxed);
            assert_ne!(da, FW_RSC_ADDR_ANY, "host left vring {i} unplaced");
            ((da as u64 - map.base.0) as usize + map.offset, num, id)
        };
        let (b0, n0, id0) = ring(0);
        let (b1, n1, id1) = ring(1);
        let tx = DeviceQueue::attach(&*mem, b0, layout(n0), false).unwrap();
        let rx = DeviceQueue::attach(&*mem, b1, layout(n1), false).unwrap();
        ModelRemote {
            mem,
            tx,
            rx,
            map,
            always_notify,
            per_vring,
            notify_ids: [id0, id1],
            bell,
        }
    }

    fn off(&self, da: DevAddr) -> usize {
        (da.0 - self.map.base.0) as usize + self.map.offset
    }

    fn send(&mut self, src: u32, dst: u32, data: &[u8]) {
        let end = Instant::now() + Duration::from_secs(5);
        let mut c = loop {
            if let Some(c) = self.tx.pop(&*self.mem).unwrap() {
                break c;
            }
            assert!(Instant::now() < end, "no host receive buffer");
            std::thread::sleep(Duration::from_micros(100));
        };
        let d = self.tx.single(&*self.mem, &mut c).unwrap();
        assert!(d.writable && d.len as usize >= 16 + data.len());
        self.mem.write(self.off(d.addr), &msg_bytes(src, dst, data));
        self.tx
            .push_used(&*self.mem, c.head(), (16 + data.len()) as u32);
        let want = self.tx.publish(&*self.mem);
        if want || self.always_notify {
            self.bell.ring(self.notify_ids[0]).unwrap();
        }
    }

    fn recv(&mut self) -> (u32, u32, Vec<u8>) {
        let end = Instant::now() + Duration::from_secs(5);
        let mut named = false;
        loop {
            named |= self.bell.take().contains(&self.notify_ids[1]);
            if !self.per_vring || named {
                if let Some(mut c) = self.rx.pop(&*self.mem).unwrap() {
                    let d = self.rx.single(&*self.mem, &mut c).unwrap();
                    assert!(!d.writable);
                    let mut raw = vec![0u8; d.len as usize];
                    self.mem.read(self.off(d.addr), &mut raw);
                    self.rx.push_used(&*self.mem, c.head(), d.len);
                    let want = self.rx.publish(&*self.mem);
                    if want || self.always_notify {
                        self.bell.ring(self.notify_ids[1]).unwrap();
                    }
                    return parse_msg(&raw);
                }
                named = false;
            }
            assert!(
                Instant::now() < end,
                "no host message (and no notification naming vring 1) within 5 s"
            );
            std::thread::sleep(Duration::from_micros(100));
        }
    }
}

/// Echo loop of a model remote: announce `name` at `addr` (if NS), then echo `n`.
fn model_echo(mut r: ModelRemote, name: &str, addr: u32, ns: bool, n: usize) -> ModelRemote {
    if ns {
        r.send(addr, 53, &ns_create(name, addr));
    }
    for _ in 0..n {
        let (src, dst, p) = r.recv();
        assert_eq!(dst, addr);
        r.send(addr, src, &p);
    }
    r
}

/// `n` verified round trips from `host` to the service at `addr`.
fn host_round_trips(host: &mut HostBus<Arc<HeapMem>, MailBell>, addr: u32, n: usize) {
    let ep = host.create_endpoint("client", None).unwrap();
    let mut buf = [0u8; 512];
    for i in 0..n {
        let p = payload(i);
        host.send_raw(ep, addr, &p, Some(Duration::from_secs(1)))
            .unwrap();
        let (src, len) = host
            .recv_from(
                &Channel::new(ep, RPMSG_ADDR_ANY),
                &mut buf,
                Some(Duration::from_secs(1)),
            )
            .unwrap();
        assert_eq!((src, &buf[..len]), (Some(addr), &p[..]), "round trip {i}");
    }
}

/// OpenAMP remote (`apps/machine/*/rsc_table.c`: a vdev with fixed vrings, no buffer
/// carveout — the host supplies the buffer memory): the host places buffers from its
/// configuration and talks to it. Before the fix: "no carveout named vdev0buffer".
#[test]
fn host_with_openamp_remote_without_buffer_carveout() {
    let num = 64u32;
    let rb = ring_bytes(num);
    let bufs_at = PAGE + 2 * rb;
    let total = bufs_at + 2 * num as usize * 512;
    let mem = Arc::new(HeapMem::new(total));
    let loc = write_table(
        &mem,
        0,
        &TableSpec {
            features: NS,
            vrings: [Some(DA + PAGE as u64), Some(DA + (PAGE + rb) as u64)],
            notify_ids: [0, 1],
            num,
            buffers: None,
            trace: true,
        },
    );
    let map = LinearMap {
        base: DevAddr(DA),
        offset: 0,
        len: total,
    };
    let (hb, rbell) = MailBell::pair();
    let m = Arc::clone(&mem);
    let remote = std::thread::spawn(move || {
        let r = ModelRemote::start(m, loc, map, rbell, false, false);
        model_echo(r, "rpmsg-openamp-demo-channel", 0x400, true, 300)
    });
    let no_buffers = HostBus::new(
        Arc::clone(&mem),
        hb.clone(),
        &map,
        loc,
        HostConfig::default(),
    );
    assert!(
        matches!(&no_buffers, Err(Error::Config(m)) if m.contains("vdev0buffer")),
        "without a buffer region the error names what is missing"
    );
    drop(no_buffers);
    let cfg = HostConfig {
        num_bufs: num as u16,
        buffers: Some(LinearMap {
            base: DevAddr(DA + bufs_at as u64),
            offset: bufs_at,
            len: total - bufs_at,
        }),
        ..HostConfig::default()
    };
    let mut host = HostBus::new(Arc::clone(&mem), hb, &map, loc, cfg).unwrap();
    let addr = host.find_service("rpmsg-openamp-demo-channel", T).unwrap();
    host_round_trips(&mut host, addr, 300);
    remote.join().unwrap();
}

/// RPMsg-Lite remote on NXP i.MX (`rpmsg_lite_remote_init`, the i.MX `env_isr(vector)`):
/// a vdev-only table, a mailbox that names the vring, a remote that runs only the
/// virtqueue named and always notifies. The host rings vring 1's notify id for messages and
/// vring 0's for reposted receive buffers. (Before the fix a doorbell could carry no id.)
#[test]
fn host_with_rpmsg_lite_remote_per_vring_doorbell() {
    let num = 32u32;
    let rb = ring_bytes(num);
    let bufs_at = PAGE + 2 * rb;
    let total = bufs_at + 2 * num as usize * 512;
    let mem = Arc::new(HeapMem::new(total));
    let loc = write_table(
        &mem,
        0,
        &TableSpec {
            features: NS,
            vrings: [Some(DA + PAGE as u64), Some(DA + (PAGE + rb) as u64)],
            notify_ids: [0, 1],
            num,
            buffers: None,
            trace: false,
        },
    );
    let map = LinearMap {
        base: DevAddr(DA),
        offset: 0,
        len: total,
    };
    let (hb, rbell) = MailBell::pair();
    let m = Arc::clone(&mem);
    let remote = std::thread::spawn(move || {
        let r = ModelRemote::start(m, loc, map, rbell, true, true);
        model_echo(r, "rpmsg-lite-echo", 30, true, 200)
    });
    let cfg = HostConfig {
        num_bufs: num as u16,
        wait: WaitMode::Poll,
        buffers: Some(LinearMap {
            base: DevAddr(DA + bufs_at as u64),
            offset: bufs_at,
            len: total - bufs_at,
        }),
        ..HostConfig::default()
    };
    let mut host = HostBus::new(Arc::clone(&mem), hb.clone(), &map, loc, cfg).unwrap();
    let addr = host.find_service("rpmsg-lite-echo", T).unwrap();
    host_round_trips(&mut host, addr, 200);
    let r = remote.join().unwrap();
    let by_host = hb.rung();
    assert!(
        by_host.contains(&1),
        "host named vring 1 for its messages: {by_host:?}"
    );
    assert!(by_host.iter().all(|&id| id == 0 || id == 1));
    assert!(r.bell.rung().iter().all(|&id| id == 0 || id == 1));
}

/// NS absent (a firmware without `VIRTIO_RPMSG_F_NS`, e.g. RPMsg-Lite built without the
/// name service): static endpoints on both sides still exchange messages, and nothing is
/// sent to address 53.
#[test]
fn host_without_name_service_uses_static_endpoints() {
    let num = 16u32;
    let rb = ring_bytes(num);
    let bufs_at = PAGE + 2 * rb;
    let total = bufs_at + 2 * num as usize * 512;
    let mem = Arc::new(HeapMem::new(total));
    let loc = write_table(
        &mem,
        0,
        &TableSpec {
            features: 0,
            vrings: [Some(DA + PAGE as u64), Some(DA + (PAGE + rb) as u64)],
            notify_ids: [0, 1],
            num,
            buffers: Some((DA + bufs_at as u64, (total - bufs_at) as u32)),
            trace: false,
        },
    );
    let map = LinearMap {
        base: DevAddr(DA),
        offset: 0,
        len: total,
    };
    let (hb, rbell) = MailBell::pair();
    let m = Arc::clone(&mem);
    let remote = std::thread::spawn(move || {
        let r = ModelRemote::start(m, loc, map, rbell, false, false);
        model_echo(r, "", 30, false, 50)
    });
    let cfg = HostConfig {
        num_bufs: num as u16,
        ..HostConfig::default()
    };
    let mut host = HostBus::new(Arc::clone(&mem), hb, &map, loc, cfg).unwrap();
    host_round_trips(&mut host, 30, 50);
    remote.join().unwrap();
    assert!(host.services().is_empty());
}

/// TI K3 layout (`ti_k3_common.c`, TI MCU+ SDK `ipc_rpmsg` firmware): the table at the start
/// of the second reserved-memory region, vrings at `FW_RSC_ADDR_ANY` with the firmware's own
/// notify ids, a trace entry and no buffer carveout; the host allocates the vrings from the
/// first region (`rproc_alloc_vring`, as `kernel/dma/coherent.c` places them), writes `da`
/// and `notifyid` (0, 1) back, and puts the buffers there too (`rpmsg_probe`). TI's echo firmware announces "rpmsg_chrdev" at address 14 (below
/// 1024). Both start-up orders: IPC-only attach (the firmware is running and waiting) and
/// host first. Before the fix: "host-allocated vrings are not supported".
#[test]
fn host_with_ti_k3_firmware_both_start_orders() {
    for firmware_first in [true, false] {
        let num = 256u32;
        let region0 = 0x10_0000; // vrings and buffers (memory-region 0)
        let region1 = 0x10_0000; // firmware: table at its start, then code and data
        let mem = Arc::new(HeapMem::new(region0 + region1));
        let loc = write_table(
            &mem,
            region0,
            &TableSpec {
                features: NS,
                vrings: [None, None],
                notify_ids: [1, 2],
                num,
                buffers: None,
                trace: true,
            },
        );
        let map = LinearMap {
            base: DevAddr(DA),
            offset: 0,
            len: region0 + region1,
        };
        // The vdev's DMA pool: Linux's coherent allocator places vrings and buffers in it.
        let pool = LinearMap {
            base: DevAddr(DA),
            offset: 0,
            len: region0,
        };
        let (hb, rbell) = MailBell::pair();
        let fw = {
            let mem = Arc::clone(&mem);
            move || {
                let cfg = RemoteConfig::default()
                    .buffers(Some(LinearMap {
                        base: DevAddr(DA),
                        offset: 0,
                        len: region0,
                    }))
                    .private(Some((region0 + loc.len, region1 - loc.len)))
                    .wait(WaitMode::Poll)
                    .invalidate_table(Some(note_table_invalidated));
                let mut bus = RemoteBus::<_, _, 4>::new(mem, rbell, &map, loc, cfg).unwrap();
                bus.wait_ready(T).unwrap();
                let ep = bus.create_endpoint("rpmsg_chrdev", Some(14)).unwrap();
                bus.announce(ep).unwrap();
                echo_n(&mut bus, ep, 100);
                bus
            }
        };
        let cfg = HostConfig {
            vring_region: Some(pool),
            ..HostConfig::default()
        };
        let (mut host, remote) = if firmware_first {
            let t = std::thread::spawn(fw);
            std::thread::sleep(Duration::from_millis(20));
            (
                HostBus::new(Arc::clone(&mem), hb, &map, loc, cfg).unwrap(),
                t,
            )
        } else {
            let h = HostBus::new(Arc::clone(&mem), hb, &map, loc, cfg).unwrap();
            (h, std::thread::spawn(fw))
        };
        let w = table_words(&mem, loc);
        assert_eq!(mem.load_u32(w.vring_entry[0], Relaxed), DA as u32);
        // Where Linux's coherent pool puts them (`CoherentPool`): each allocation aligned
        // to its own power-of-two size, so vring 1 (12 KiB → a 16 KiB run) at +0x4000.
        assert_eq!(
            mem.load_u32(w.vring_entry[1], Relaxed),
            (DA + 0x4000) as u32
        );
        assert_eq!(mem.load_u32(w.vring_entry[0] + 12, Relaxed), 0, "notifyid");
        assert_eq!(mem.load_u32(w.vring_entry[1] + 12, Relaxed), 1, "notifyid");
        let addr = host.find_service("rpmsg_chrdev", T).unwrap();
        assert_eq!(addr, 14);
        host_round_trips(&mut host, addr, 100);
        let bus = remote.join().unwrap();
        assert_eq!(bus.stats().received, 100, "firmware_first={firmware_first}");
        assert_eq!(
            TABLE_INVALIDATED.swap(0, Relaxed),
            loc.len,
            "the firmware invalidated its cached table before re-reading it"
        );
    }
}

static TABLE_INVALIDATED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// The firmware's cache hook: records how much of the table it was asked to invalidate.
fn note_table_invalidated(_at: *const u8, len: usize) {
    TABLE_INVALIDATED.fetch_add(len, Relaxed);
}

/// Buffer size and count are not negotiated on the wire: both ends are built with them.
/// 1024-byte buffers, 32 per direction, on both of our roles.
#[test]
fn non_default_buffer_size_and_count() {
    let num = 32u32;
    let rb = ring_bytes(num);
    let bufs_at = PAGE + 2 * rb;
    let total = bufs_at + 2 * num as usize * 1024;
    let mem = Arc::new(HeapMem::new(total));
    let loc = write_table(
        &mem,
        0,
        &TableSpec {
            features: NS,
            vrings: [Some(DA + PAGE as u64), Some(DA + (PAGE + rb) as u64)],
            notify_ids: [0, 1],
            num,
            buffers: Some((DA + bufs_at as u64, (total - bufs_at) as u32)),
            trace: false,
        },
    );
    let map = LinearMap {
        base: DevAddr(DA),
        offset: 0,
        len: total,
    };
    let (hb, rbell) = MailBell::pair();
    let m = Arc::clone(&mem);
    let remote = std::thread::spawn(move || {
        let cfg = RemoteConfig::default().buf_size(1024);
        let mut bus = RemoteBus::<_, _, 4>::new(m, rbell, &map, loc, cfg).unwrap();
        bus.wait_ready(T).unwrap();
        let ep = bus.create_endpoint("big", None).unwrap();
        bus.announce(ep).unwrap();
        echo_n(&mut bus, ep, 100);
    });
    let cfg = HostConfig {
        num_bufs: num as u16,
        buf_size: 1024,
        ..HostConfig::default()
    };
    let mut host = HostBus::new(Arc::clone(&mem), hb, &map, loc, cfg).unwrap();
    assert_eq!(host.max_payload(), 1008);
    let addr = host.find_service("big", T).unwrap();
    let ep = host.create_endpoint("c", None).unwrap();
    let mut buf = [0u8; 1008];
    for i in 0..100 {
        let p: Vec<u8> = (0..(i * 97) % 1008 + 1).map(|b| b as u8).collect();
        host.send_raw(ep, addr, &p, Some(Duration::from_secs(1)))
            .unwrap();
        let (_, len) = host
            .recv_from(
                &Channel::new(ep, RPMSG_ADDR_ANY),
                &mut buf,
                Some(Duration::from_secs(1)),
            )
            .unwrap();
        assert_eq!(&buf[..len], &p[..]);
    }
    remote.join().unwrap();
}

/// A remote that announces at once, in the notification that answers DRIVER_OK (before
/// the host created any endpoint), and one that announces a second service later and
/// withdraws it, from the endpoint's own address (Linux `virtio_rpmsg_announce_destroy`,
/// OpenAMP `rpmsg_destroy_ept`).
#[test]
fn announcements_early_late_and_destroyed() {
    let (mem, loc, map) = standard_carveout(default_features());
    let (hb, rbell) = MailBell::pair();
    let m = Arc::clone(&mem);
    let remote = std::thread::spawn(move || {
        let mut r = ModelRemote::start(m, loc, map, rbell, false, false);
        r.send(0x400, 53, &ns_create("early", 0x400));
        std::thread::sleep(Duration::from_millis(50));
        r.send(0x401, 53, &ns_create("late", 0x401));
        let mut destroy = NsAnnouncement::parse(&ns_create("late", 0x401)).unwrap();
        destroy.kind = NsKind::Destroy;
        r.send(0x401, 53, destroy.emit().as_bytes());
        r
    });
    let mut host = HostBus::new(Arc::clone(&mem), hb, &map, loc, HostConfig::default()).unwrap();
    assert_eq!(host.find_service("early", T).unwrap(), 0x400);
    remote.join().unwrap();
    let end = Instant::now() + Duration::from_secs(5);
    loop {
        host.poll().unwrap();
        if host.service("late").is_none() && host.services().len() == 1 {
            break;
        }
        assert!(
            Instant::now() < end,
            "destroy not applied: {:?}",
            host.services()
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Our own remote's destroy announcement comes from the endpoint's address.
#[test]
fn remote_destroy_comes_from_the_endpoint_address() {
    let (mem, loc, map) = standard_carveout(default_features());
    let (hb, rb) = MailBell::pair();
    let mut remote = RemoteBus::<_, _, 4>::new(
        Arc::clone(&mem),
        rb,
        &map,
        loc,
        RemoteConfig::default().wait(WaitMode::Poll),
    )
    .unwrap();
    let mut host = ModelHost::start(Arc::clone(&mem), loc, hb, false);
    remote.wait_ready(T).unwrap();
    let ep = remote.create_endpoint("gone", None).unwrap();
    remote.announce(ep).unwrap();
    let (src, dst, _) = host.recv().unwrap();
    assert_eq!((src, dst), (ep, 53));
    remote.destroy_endpoint(ep).unwrap();
    let (src, dst, body) = host.recv().unwrap();
    assert_eq!((src, dst), (ep, 53));
    assert_eq!(NsAnnouncement::parse(&body).unwrap().kind, NsKind::Destroy);
}
