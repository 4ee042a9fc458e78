//! The zero-copy data plane in one process: the host's pool and handoff against the
//! remote's `DpRemote` over heap memory with coherent cache operations. The non-coherent
//! model and its sanitizer are tested in `intercore-sim`.

use intercore::dataplane::{Coherent, DpHost, DpRemote, Owner, Pool, PoolConfig, WritableBuf};
use intercore::rpmsg::Channel;
use intercore::rpmsg::layout::CarveoutSpec;
use intercore::rpmsg::{HostBus, HostConfig, RemoteBus};
use intercore::testing::{Carveout, HeapMem, ThreadBell};
use intercore::wire::dataplane::*;
use intercore::wire::{Le16, Le32, Le64};
use intercore::{DevAddr, Error, LinearMap, WaitMode, crc32c};
use proptest::prelude::*;
use std::collections::HashSet;
use std::sync::Arc;
use std::thread;
use std::time::Duration;
use zerocopy::IntoBytes;

type Cache = Coherent<Arc<HeapMem>>;
type Host = HostBus<Arc<HeapMem>, ThreadBell>;
type Remote = RemoteBus<Arc<HeapMem>, ThreadBell, 8>;

const IOVA: u64 = 0xC000_0000;
const T: Option<Duration> = Some(Duration::from_secs(5));

fn cfg() -> PoolConfig {
    PoolConfig {
        classes: vec![(4096, 16), (64 << 10, 4)],
        align: 4096,
    }
}

struct Setup {
    link: Carveout,
    host: Host,
    remote: Remote,
}

fn setup() -> Setup {
    let spec = CarveoutSpec {
        vring_num: 16,
        buf_size: 512,
        event_idx: true,
        da_base: 0xA000_0000,
    };
    let link = Carveout::with_pool_area(spec, cfg().region_len());
    let (host, remote) = link
        .connect(HostConfig::default(), WaitMode::Event)
        .unwrap();
    Setup { link, host, remote }
}

fn pool(link: &Carveout) -> Pool<Cache> {
    Pool::new(
        Coherent::new(Arc::clone(&link.mem)),
        link.pool.0,
        DevAddr(IOVA),
        &cfg(),
    )
    .unwrap()
}

/// The remote's data-plane endpoint, announced, and the host's data plane to it over the
/// setup's bus: (the remote endpoint, the host's `DpHost`).
fn dp_service(s: &mut Setup) -> (u32, DpHost<Cache>) {
    let rep = s.remote.create_endpoint(DP_SERVICE, None).unwrap();
    s.remote.announce(rep).unwrap();
    let dst = s.host.find_service(DP_SERVICE, T).unwrap();
    let ep = s.host.create_endpoint("dp", None).unwrap();
    let max = s.host.max_payload();
    let dp = DpHost::new(pool(&s.link), Channel::new(ep, dst), max).unwrap();
    (rep, dp)
}

fn windows(link: &Carveout) -> LinearMap {
    LinearMap {
        base: DevAddr(IOVA),
        offset: link.pool.0,
        len: link.pool.1,
    }
}

/// The remote side of the offload example, as a thread: CRC32C of the input written right
/// after it.
fn spawn_remote(
    mut bus: Remote,
    win: LinearMap,
    mem: Arc<HeapMem>,
) -> thread::JoinHandle<(u64, u64)> {
    thread::spawn(move || {
        let mut dp = DpRemote::new(Coherent::new(mem), win);
        let ep = bus.create_endpoint(DP_SERVICE, None).unwrap();
        bus.announce(ep).unwrap();
        loop {
            let r = bus.recv_any_with(None, |m| {
                dp.process(ep, m.src, m.payload, |job| match job.op() {
                    DP_OP_CRC32C => {
                        let crc = crc32c(job.input().map_err(|_| DP_FAULT)?);
                        let n = job.len();
                        job.output(n, 4)
                            .map_err(|_| DP_FAULT)?
                            .copy_from_slice(&crc.to_le_bytes());
                        Ok(n + 4)
                    }
                    _ => Err(DP_UNSUPPORTED),
                })
            });
            match r {
                Ok(()) => dp.flush(&mut bus, T).unwrap(),
                Err(Error::PeerGone) => return (dp.stats().done, dp.stats().faults),
                Err(e) => panic!("remote: {e}"),
            }
        }
    })
}

fn connect(s: Setup) -> (Host, DpHost<Cache>, thread::JoinHandle<(u64, u64)>) {
    let Setup {
        link,
        mut host,
        remote,
    } = s;
    let worker = spawn_remote(remote, windows(&link), Arc::clone(&link.mem));
    let dst = host.find_service(DP_SERVICE, T).unwrap();
    let ep = host.create_endpoint("dp", None).unwrap();
    let max = host.max_payload();
    (
        host,
        DpHost::new(pool(&link), Channel::new(ep, dst), max).unwrap(),
        worker,
    )
}

fn fill(buf: &mut WritableBuf<Cache>, len: usize, seed: u8) -> u32 {
    for (i, b) in buf[..len].iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(31).wrapping_add(seed);
    }
    crc32c(&buf[..len])
}

/// Buffers of both size classes go to the remote and come back with the CRC32C of their
/// input written in place after it; the remote reads and writes the same memory (no copy).
#[test]
fn crc_offload_round_trip_in_place() {
    let (mut host, mut dp, worker) = connect(setup());
    let mut expected = std::collections::HashMap::new();
    for round in 0..10u8 {
        let mut held = Vec::new();
        for size in [4096usize, 64 << 10, 4096] {
            let mut b = dp.alloc(size).unwrap();
            let len = b.cap() - 64;
            let crc = fill(&mut b, len, round);
            held.push((b, len, crc));
        }
        for (b, len, crc) in held {
            let t = dp.submit(&mut host, b, len, DP_OP_CRC32C).unwrap();
            expected.insert(t.seq, (len, crc));
        }
        while dp.outstanding() > 0 {
            let c = dp.wait_complete(&mut host, T).unwrap();
            let (len, crc) = expected.remove(&c.seq()).unwrap();
            assert_eq!(c.status(), DP_OK);
            assert_eq!(c.len(), len + 4);
            assert_eq!(&c[len..], &crc.to_le_bytes());
        }
    }
    assert_eq!(
        dp.pool().counts(),
        [20, 0, 0, 0],
        "every buffer is back in the pool"
    );
    drop(host);
    assert_eq!(worker.join().unwrap(), (30, 0));
}

/// A batch of submissions travels in one rpmsg message (one doorbell at most): 15 entries
/// fit Linux's 496-byte payload.
#[test]
fn submissions_are_batched() {
    let (mut host, mut dp, _worker) = connect(setup());
    assert_eq!(dp.batch_size(), 15);
    for _ in 0..15 {
        let b = dp.alloc(4096).unwrap();
        dp.submit(&mut host, b, 100, DP_OP_CRC32C).unwrap();
    }
    assert_eq!(
        dp.stats().messages,
        1,
        "the 15th submission sent the whole batch"
    );
    let b = dp.alloc(4096).unwrap();
    dp.submit(&mut host, b, 100, DP_OP_CRC32C).unwrap();
    assert_eq!(
        dp.stats().messages,
        1,
        "the 16th waits for the next batch or a flush"
    );
    for _ in 0..16 {
        dp.wait_complete(&mut host, T).unwrap();
    }
    assert_eq!(dp.stats().messages, 2);
}

/// Submitting more than the buffer holds is refused before anything is sent, and the
/// buffer is returned to the pool.
#[test]
fn submit_checks_length() {
    let (mut host, mut dp, _worker) = connect(setup());
    let b = dp.alloc(4096).unwrap();
    assert_eq!(
        dp.submit(&mut host, b, 4097, DP_OP_CRC32C).unwrap_err(),
        Error::MessageTooLarge {
            len: 4097,
            max: 4096
        }
    );
    assert_eq!(dp.pool().counts()[0], 20);
}

/// A remote that stops answering: waiting for a completion times out (the buffer stays
/// accounted as in flight — the remote may still write it).
#[test]
fn silent_remote_times_out() {
    let Setup {
        link,
        mut host,
        remote: _remote,
    } = setup();
    let ep = host.create_endpoint("dp", None).unwrap();
    let max = host.max_payload();
    let mut dp = DpHost::new(pool(&link), Channel::new(ep, 1024), max).unwrap();
    let b = dp.alloc(4096).unwrap();
    let id = b.id();
    dp.submit(&mut host, b, 10, DP_OP_CRC32C).unwrap();
    assert_eq!(
        dp.wait_complete(&mut host, Some(Duration::from_millis(100)))
            .unwrap_err(),
        Error::Timeout
    );
    assert_eq!(dp.pool().owner(id), Some(Owner::InFlight));
}

/// Builds a completion message from (sequence, device address, buffer id).
type MakeCompletion = fn(u64, u64, u32) -> Vec<u8>;

fn completion(seq: u64, da: u64, buf: u32, len: u32) -> Vec<u8> {
    let mut m = DpHdr {
        kind: Le16::new(DP_COMPLETE),
        count: Le16::new(1),
        reserved: Le32::new(0),
    }
    .as_bytes()
    .to_vec();
    let c = DpComplete {
        seq: Le64::new(seq),
        da: Le64::new(da),
        buf: Le32::new(buf),
        len: Le32::new(len),
        status: Le32::new(0),
        reserved: Le32::new(0),
    };
    m.extend_from_slice(c.as_bytes());
    m
}

/// The host checks every completion against its own records: a buffer id outside the
/// pool, one not in flight, a wrong sequence number, a device address that is not the
/// buffer's, or a length beyond its capacity is a protocol error, never an access.
#[test]
fn hostile_completions_are_refused() {
    let cases: [(&str, MakeCompletion); 6] = [
        ("buffer outside pool", |s, d, _| completion(s, d, 999, 4)),
        ("other buffer not in flight", |s, d, b| {
            completion(s, d, b + 1, 4)
        }),
        ("wrong sequence", |s, d, b| completion(s + 7, d, b, 4)),
        ("wrong device address", |s, d, b| {
            completion(s, d + 4096, b, 4)
        }),
        ("length beyond capacity", |s, d, b| {
            completion(s, d, b, 4097)
        }),
        ("truncated message", |s, d, b| {
            completion(s, d, b, 4)[..30].to_vec()
        }),
    ];
    for (what, make) in cases {
        let Setup {
            link,
            mut host,
            mut remote,
        } = setup();
        let rep = remote.create_endpoint("fake-dp", None).unwrap();
        remote.announce(rep).unwrap();
        let dst = host.find_service("fake-dp", T).unwrap();
        let ep = host.create_endpoint("dp", None).unwrap();
        let max = host.max_payload();
        let mut dp = DpHost::new(pool(&link), Channel::new(ep, dst), max).unwrap();
        let b = dp.alloc(4096).unwrap();
        let (id, da) = (b.id(), b.da().0);
        let t = dp.submit(&mut host, b, 10, DP_OP_CRC32C).unwrap();
        dp.flush(&mut host).unwrap();
        remote.recv_any_with(Some(Duration::ZERO), |_| ()).unwrap();
        remote
            .send_raw(rep, ep, &make(t.seq, da, id), Some(Duration::ZERO))
            .unwrap();
        let e = dp.wait_complete(&mut host, T).unwrap_err();
        assert!(matches!(e, Error::DataPlane { .. }), "{what}: {e:?}");
        assert_eq!(
            dp.pool().owner(id),
            Some(Owner::InFlight),
            "{what}: the buffer stays with the remote"
        );
        assert_eq!(dp.broken(), Some(e), "{what}: the error is sticky");
        let b = dp.alloc(4096).unwrap();
        assert_eq!(dp.submit(&mut host, b, 10, DP_OP_NOP).unwrap_err(), e);
        assert_eq!(dp.reclaim(), 1, "{what}: reclaim takes the buffer back");
        assert_eq!(dp.pool().counts(), [20, 0, 0, 0], "{what}: nothing lost");
    }
}

/// A completion message of several entries.
fn completions(count: u16, entries: &[DpComplete]) -> Vec<u8> {
    let mut m = DpHdr {
        kind: Le16::new(DP_COMPLETE),
        count: Le16::new(count),
        reserved: Le32::new(0),
    }
    .as_bytes()
    .to_vec();
    for c in entries {
        m.extend_from_slice(c.as_bytes());
    }
    m
}

fn entry(seq: u64, da: u64, buf: u32, len: u32) -> DpComplete {
    DpComplete {
        seq: Le64::new(seq),
        da: Le64::new(da),
        buf: Le32::new(buf),
        len: Le32::new(len),
        status: Le32::new(DP_OK),
        reserved: Le32::new(0),
    }
}

/// A fake data-plane service on the remote bus, a host data plane talking to it, and three
/// buffers submitted and received by the fake: `(setup, fake endpoint, host endpoint, data
/// plane, [(seq, da, id)])`.
/// `(sequence, device address, buffer id)` of a buffer in flight.
type Flying = (u64, u64, u32);

fn fake_service_with_three_in_flight() -> (Setup, u32, u32, DpHost<Cache>, Vec<Flying>) {
    let mut s = setup();
    let rep = s.remote.create_endpoint("fake-dp", None).unwrap();
    s.remote.announce(rep).unwrap();
    let dst = s.host.find_service("fake-dp", T).unwrap();
    let ep = s.host.create_endpoint("dp", None).unwrap();
    let max = s.host.max_payload();
    let mut dp = DpHost::new(pool(&s.link), Channel::new(ep, dst), max).unwrap();
    let mut flying = Vec::new();
    for _ in 0..3 {
        let b = dp.alloc(4096).unwrap();
        let (id, da) = (b.id(), b.da().0);
        let t = dp.submit(&mut s.host, b, 10, DP_OP_NOP).unwrap();
        flying.push((t.seq, da, id));
    }
    dp.flush(&mut s.host).unwrap();
    s.remote
        .recv_any_with(Some(Duration::ZERO), |_| ())
        .unwrap();
    (s, rep, ep, dp, flying)
}

/// Issue 12: a batch "good, bad, good" completes both good buffers; the bad entry breaks
/// the data plane with an error naming it (index, buffer, sequence); the error is sticky.
#[test]
fn good_bad_good_completes_both_good_buffers() {
    let (mut s, rep, ep, mut dp, f) = fake_service_with_three_in_flight();
    let msg = completions(
        3,
        &[
            entry(f[0].0, f[0].1, f[0].2, 4),
            entry(f[1].0 + 99, f[1].1, f[1].2, 4),
            entry(f[2].0, f[2].1, f[2].2, 4),
        ],
    );
    s.remote
        .send_raw(rep, ep, &msg, Some(Duration::ZERO))
        .unwrap();
    let e = dp.wait_complete(&mut s.host, T).unwrap_err();
    match e {
        Error::DataPlane {
            entry, buf, seq, ..
        } => {
            assert_eq!(entry, Some(1));
            assert_eq!(buf, Some(f[1].2));
            assert_eq!(seq, Some(f[1].0 + 99));
        }
        e => panic!("wrong error {e:?}"),
    }
    assert!(e.to_string().contains("completion entry 1"), "{e}");
    let a = dp.wait_complete(&mut s.host, T).unwrap();
    let b = dp.wait_complete(&mut s.host, T).unwrap();
    assert_eq!((a.id(), b.id()), (f[0].2, f[2].2));
    let mut copy = [0xAAu8; 8];
    assert_eq!(a.copy_to(&mut copy), 4, "copy of the 4 completed bytes");
    assert_eq!(dp.wait_complete(&mut s.host, T).unwrap_err(), e, "sticky");
    assert_eq!(dp.stats().completed, 2);
    assert_eq!(dp.stats().refused, 1);
    assert_eq!(dp.pool().owner(f[1].2), Some(Owner::InFlight));
    drop((a, b));
    assert_eq!(dp.reclaim(), 1);
    assert_eq!(dp.pool().counts(), [20, 0, 0, 0]);
}

/// A message whose count lies (more entries claimed than carried, or fewer) still
/// completes the good entries it carries, and is reported.
#[test]
fn lying_count_keeps_the_entries_present() {
    for count in [5u16, 2] {
        let (mut s, rep, ep, mut dp, f) = fake_service_with_three_in_flight();
        let all: Vec<_> = f.iter().map(|&(q, d, i)| entry(q, d, i, 4)).collect();
        s.remote
            .send_raw(rep, ep, &completions(count, &all), Some(Duration::ZERO))
            .unwrap();
        let e = dp.wait_complete(&mut s.host, T).unwrap_err();
        assert!(
            matches!(e, Error::DataPlane { entry: None, value, .. } if value == count as u64),
            "{e:?}"
        );
        let judged = (count as usize).min(3);
        for _ in 0..judged {
            dp.wait_complete(&mut s.host, T).unwrap();
        }
        assert_eq!(dp.reclaim(), 3 - judged);
        assert_eq!(dp.pool().counts(), [20, 0, 0, 0]);
    }
}

/// Completions count only from the data-plane service's own address: a message from
/// another remote endpoint is counted and ignored.
#[test]
fn completions_from_another_address_are_ignored() {
    let (mut s, rep, ep, mut dp, f) = fake_service_with_three_in_flight();
    let other = s.remote.create_endpoint("other", None).unwrap();
    let all: Vec<_> = f.iter().map(|&(q, d, i)| entry(q, d, i, 4)).collect();
    s.remote
        .send_raw(other, ep, &completions(3, &all), Some(Duration::ZERO))
        .unwrap();
    s.remote
        .send_raw(rep, ep, &completions(1, &all[..1]), Some(Duration::ZERO))
        .unwrap();
    let c = dp.wait_complete(&mut s.host, T).unwrap();
    assert_eq!(c.id(), f[0].2);
    assert_eq!(dp.stats().foreign, 1);
    assert_eq!(dp.broken(), None);
    assert_eq!(dp.in_flight(), 2);
}

/// Issue 12: the remote dies with buffers in flight (submitted and received, plus one
/// submitted and never flushed); `PeerGone` is reported, `reclaim` returns every one of
/// them, and the pool's exact accounting shows all buffers free.
#[test]
fn remote_death_then_reclaim_accounts_for_every_buffer() {
    let (mut s, _rep, _ep, mut dp, _f) = fake_service_with_three_in_flight();
    let held = dp.alloc(4096).unwrap();
    let unsent = dp.alloc(4096).unwrap();
    dp.submit(&mut s.host, unsent, 1, DP_OP_NOP).unwrap();
    assert_eq!(dp.pool().counts(), [15, 1, 4, 0]);
    drop(s.remote);
    let e = dp.wait_complete(&mut s.host, T).unwrap_err();
    assert_eq!(e, Error::PeerGone);
    assert_eq!(dp.reclaim(), 4);
    assert_eq!(dp.stats().reclaimed, 4);
    assert_eq!(dp.in_flight(), 0);
    assert_eq!(dp.pool().counts(), [19, 1, 0, 0]);
    drop(held);
    assert_eq!(dp.pool().counts(), [20, 0, 0, 0], "every buffer free");
}

/// Issue 20.5: a completion is valid only for a submission the remote has been sent. A
/// remote that guesses the sequence number, id and address of a buffer that is staged but
/// not flushed is refused (the data plane breaks, naming it); the buffer stays with the
/// host's records and no `Completed` is handed out for it.
#[test]
fn completion_for_a_staged_unsent_submission_is_refused() {
    let (mut s, rep, ep, mut dp, _f) = fake_service_with_three_in_flight();
    let b = dp.alloc(4096).unwrap();
    let (id, da) = (b.id(), b.da().0);
    let t = dp.stage(b, 10, DP_OP_NOP).unwrap();
    s.remote
        .send_raw(rep, ep, &completion(t.seq, da, id, 4), Some(Duration::ZERO))
        .unwrap();
    let e = dp.poll(&mut s.host).unwrap_err();
    assert!(
        matches!(e, Error::DataPlane { buf: Some(b), seq: Some(q), .. } if b == id && q == t.seq),
        "{e:?}"
    );
    assert!(e.to_string().contains("not sent"), "{e}");
    assert!(dp.take_completed().is_none(), "nothing completed");
    assert_eq!(dp.pool().owner(id), Some(Owner::InFlight));
    assert_eq!(dp.stats().completed, 0);
}

/// Issue 20.4: the data plane broke (a bad completion) while the remote kept completing
/// the buffers it had; those completions wait in the transport. `reset` on the live link
/// reclaims the buffers and fences their sequence numbers: the queued completions, which
/// name reclaimed buffers (one of them in flight again under a new sequence number), are
/// ignored and counted as stale, and the next submission completes.
#[test]
fn reset_on_a_live_link_ignores_stale_completions() {
    let (mut s, rep, ep, mut dp, f) = fake_service_with_three_in_flight();
    s.remote
        .send_raw(
            rep,
            ep,
            &completion(f[0].0 + 5, f[0].1, f[0].2, 4),
            Some(Duration::ZERO),
        )
        .unwrap();
    assert!(matches!(
        dp.wait_complete(&mut s.host, T),
        Err(Error::DataPlane { .. })
    ));
    let late: Vec<_> = f.iter().map(|&(q, d, i)| entry(q, d, i, 4)).collect();
    s.remote
        .send_raw(rep, ep, &completions(3, &late), Some(Duration::ZERO))
        .unwrap();
    assert_eq!(dp.reset(Channel::new(ep, rep)), 3);
    assert_eq!(dp.broken(), None);
    // The pool lends a reclaimed buffer out again.
    let b = dp.alloc(4096).unwrap();
    let (id, da) = (b.id(), b.da().0);
    assert!(f.iter().any(|x| x.2 == id), "a reclaimed buffer is reused");
    let t = dp.submit(&mut s.host, b, 10, DP_OP_NOP).unwrap();
    dp.flush(&mut s.host).unwrap();
    s.remote
        .recv_any_with(Some(Duration::ZERO), |_| ())
        .unwrap();
    s.remote
        .send_raw(rep, ep, &completion(t.seq, da, id, 4), Some(Duration::ZERO))
        .unwrap();
    let c = dp.wait_complete(&mut s.host, T).unwrap();
    assert_eq!((c.id(), c.seq()), (id, t.seq));
    assert_eq!(dp.stats().stale, 3);
    assert_eq!(dp.broken(), None);
    drop(c);
    assert_eq!(dp.pool().counts(), [20, 0, 0, 0]);
}

/// Issue 20.4, the live-remote path: `recover` drains what the remote returns (good
/// entries complete, a bad one is counted and skipped), takes back a staged submission that
/// never went out, leaves the buffer the remote still holds in flight (a live remote may
/// still write it) — which then completes normally when it comes back — and the data plane
/// works again.
#[test]
fn recover_drains_a_live_remote() {
    let (mut s, rep, ep, mut dp, f) = fake_service_with_three_in_flight();
    let staged = dp.alloc(4096).unwrap();
    dp.stage(staged, 1, DP_OP_NOP).unwrap();
    s.remote
        .send_raw(
            rep,
            ep,
            &completion(f[0].0 + 5, f[0].1, f[0].2, 4),
            Some(Duration::ZERO),
        )
        .unwrap();
    assert!(dp.poll(&mut s.host).is_err());
    let two: Vec<_> = f[..2].iter().map(|&(q, d, i)| entry(q, d, i, 4)).collect();
    s.remote
        .send_raw(
            rep,
            ep,
            &completions(1, &[entry(77, f[2].1, f[2].2, 4)]),
            Some(Duration::ZERO),
        )
        .unwrap();
    s.remote
        .send_raw(rep, ep, &completions(2, &two), Some(Duration::ZERO))
        .unwrap();
    let left = dp.recover(&mut s.host, Some(Duration::from_millis(100)));
    assert_eq!(left, 1, "the third buffer is still at the remote");
    assert_eq!(dp.broken(), None);
    assert_eq!(dp.pool().owner(f[2].2), Some(Owner::InFlight));
    let a = dp.take_completed().unwrap();
    let b = dp.take_completed().unwrap();
    assert_eq!((a.id(), b.id()), (f[0].2, f[1].2));
    drop((a, b));
    s.remote
        .send_raw(
            rep,
            ep,
            &completions(1, &[entry(f[2].0, f[2].1, f[2].2, 4)]),
            Some(Duration::ZERO),
        )
        .unwrap();
    let c = dp.wait_complete(&mut s.host, T).unwrap();
    assert_eq!(c.id(), f[2].2);
    drop(c);
    assert_eq!(dp.broken(), None);
    assert_eq!(dp.pool().counts(), [20, 0, 0, 0]);
}

/// The remote refuses requests outside its windows (status DP_FAULT) and inconsistent ones
/// (DP_BAD_REQUEST), without touching memory.
#[test]
fn remote_refuses_bad_requests() {
    let s = setup();
    let win = LinearMap {
        base: DevAddr(IOVA),
        offset: s.link.pool.0,
        len: 4096,
    };
    let mut dp = DpRemote::new(Coherent::new(Arc::clone(&s.link.mem)), win);
    let sub = |da: u64, len: u32, cap: u32| {
        let mut m = DpHdr {
            kind: Le16::new(DP_SUBMIT),
            count: Le16::new(1),
            reserved: Le32::new(0),
        }
        .as_bytes()
        .to_vec();
        m.extend_from_slice(
            DpSubmit {
                seq: Le64::new(1),
                da: Le64::new(da),
                len: Le32::new(len),
                cap: Le32::new(cap),
                buf: Le32::new(0),
                op: Le32::new(DP_OP_CRC32C),
            }
            .as_bytes(),
        );
        m
    };
    let crc = |job: &mut intercore::dataplane::Job<'_, Cache, LinearMap>| {
        let c = crc32c(job.input().map_err(|_| DP_FAULT)?);
        let n = job.len();
        job.output(n, 4)
            .map_err(|_| DP_FAULT)?
            .copy_from_slice(&c.to_le_bytes());
        Ok(n + 4)
    };
    dp.process(1, 2, &sub(IOVA + 4096, 10, 64), crc);
    dp.process(1, 2, &sub(IOVA, 100, 64), crc);
    dp.process(1, 2, &sub(IOVA, 4094, 4096), crc);
    dp.process(1, 2, &sub(u64::MAX - 8, 10, 4096), crc);
    dp.process(1, 2, b"garbage", crc);
    let st = dp.stats();
    assert_eq!((st.done, st.faults, st.bad), (0, 3, 2), "{st:?}");
}

/// `Job::dma_addr` (a remote's DMA engine): the device address of a range is the
/// buffer's address plus the offset when the range is inside the buffer and a window;
/// outside the buffer, outside the windows, or beyond the address space it is a `Fault` of
/// the matching kind — the same checks as a CPU access, so a DMA engine never gets an
/// address the IOMMU does not map.
#[test]
fn dma_addr_follows_buffer_bounds_and_windows() {
    let s = setup();
    let win = LinearMap {
        base: DevAddr(IOVA),
        offset: s.link.pool.0,
        len: 8192,
    };
    let mut dp = DpRemote::new(Coherent::new(Arc::clone(&s.link.mem)), win);
    let sub = |da: u64, cap: u32| {
        let mut m = DpHdr {
            kind: Le16::new(DP_SUBMIT),
            count: Le16::new(1),
            reserved: Le32::new(0),
        }
        .as_bytes()
        .to_vec();
        m.extend_from_slice(
            DpSubmit {
                seq: Le64::new(1),
                da: Le64::new(da),
                len: Le32::new(16),
                cap: Le32::new(cap),
                buf: Le32::new(0),
                op: Le32::new(DP_OP_NOP),
            }
            .as_bytes(),
        );
        m
    };
    let mut seen = Vec::new();
    dp.process(1, 2, &sub(IOVA + 4096, 4096), |job| {
        seen.push(job.dma_addr(0, 16, false).map_err(|f| f.kind));
        seen.push(job.dma_addr(100, 16, true).map_err(|f| f.kind));
        seen.push(job.dma_addr(4090, 16, true).map_err(|f| f.kind));
        Ok(0)
    });
    dp.process(1, 2, &sub(IOVA + 8192, 4096), |job| {
        seen.push(job.dma_addr(0, 16, false).map_err(|f| f.kind));
        Ok(0)
    });
    use intercore::dataplane::FaultKind;
    assert_eq!(
        seen,
        vec![
            Ok(DevAddr(IOVA + 4096)),
            Ok(DevAddr(IOVA + 4096 + 100)),
            Err(FaultKind::OutsideBuffer),
            Err(FaultKind::Unmapped),
        ]
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Random allocate / drop sequences: no buffer is ever handed out twice, none is lost,
    /// and the owner accounting always adds up.
    #[test]
    fn pool_never_loses_or_duplicates(ops in proptest::collection::vec((any::<bool>(), 0usize..70_000, any::<u8>()), 1..400)) {
        let link = Carveout::with_pool_area(CarveoutSpec { vring_num: 4, buf_size: 512, event_idx: true, da_base: 0xA000_0000 }, cfg().region_len());
        let pool = pool(&link);
        let mut held: Vec<WritableBuf<Cache>> = Vec::new();
        for (alloc, size, pick) in ops {
            if alloc {
                match pool.alloc(size) {
                    Some(b) => {
                        prop_assert!(b.cap() >= size);
                        prop_assert!(held.iter().all(|h| h.id() != b.id()), "buffer {} handed out twice", b.id());
                        held.push(b);
                    }
                    None => {
                        let fits = pool.owners().iter().enumerate().any(|(i, o)| *o == Owner::Free && pool.info(i as u32).unwrap().cap >= size);
                        prop_assert!(!fits, "alloc failed although a free buffer of {size} bytes exists");
                    }
                }
            } else if !held.is_empty() {
                let b = held.swap_remove(pick as usize % held.len());
                drop(b);
            }
            let c = pool.counts();
            prop_assert_eq!(c[1], held.len());
            prop_assert_eq!(c[0] + c[1], pool.len());
        }
        drop(held);
        prop_assert_eq!(pool.counts(), [pool.len(), 0, 0, 0]);
    }
}

/// Allocation and release from two threads at once (the lock-free stacks): every buffer is
/// held by at most one thread at any time, and all come back.
#[test]
fn pool_is_safe_under_concurrent_alloc_and_free() {
    let link = Carveout::with_pool_area(
        CarveoutSpec {
            vring_num: 4,
            buf_size: 512,
            event_idx: true,
            da_base: 0xA000_0000,
        },
        cfg().region_len(),
    );
    let pool = Arc::new(pool(&link));
    let owners: Arc<Vec<std::sync::atomic::AtomicBool>> =
        Arc::new((0..pool.len()).map(|_| Default::default()).collect());
    let threads: Vec<_> = (0..2)
        .map(|t| {
            let (pool, owners) = (Arc::clone(&pool), Arc::clone(&owners));
            thread::spawn(move || {
                let mut mine = Vec::new();
                for i in 0..50_000usize {
                    if (i + t) % 3 != 0 {
                        if let Some(b) = pool.alloc(1) {
                            let was = owners[b.id() as usize]
                                .swap(true, std::sync::atomic::Ordering::SeqCst);
                            assert!(!was, "buffer {} held twice", b.id());
                            mine.push(b);
                        }
                    } else if let Some(b) = mine.pop() {
                        owners[b.id() as usize].store(false, std::sync::atomic::Ordering::SeqCst);
                        drop(b);
                    }
                }
                for b in mine {
                    owners[b.id() as usize].store(false, std::sync::atomic::Ordering::SeqCst);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(pool.counts(), [pool.len(), 0, 0, 0]);
    let ids: HashSet<u32> = (0..pool.len() as u32).collect();
    assert_eq!(ids.len(), pool.len());
}

/// A message pipe that records what is sent: `max` is its advertised maximum payload,
/// `room` the size it really takes (a smaller host buffer: `MessageTooLarge` naming it),
/// and `fail_at` makes that send (0-based) time out once.
struct Recorder {
    max: usize,
    room: usize,
    fail_at: Option<usize>,
    attempts: usize,
    sent: Vec<Vec<u8>>,
}

impl Recorder {
    fn new(max: usize) -> Self {
        Self {
            max,
            room: max,
            fail_at: None,
            attempts: 0,
            sent: Vec::new(),
        }
    }
    /// `(count, first seq)` of every completion message sent.
    fn batches(&self) -> Vec<(usize, u64)> {
        self.sent
            .iter()
            .map(|m| {
                let e = dp_parse(m, DP_COMPLETE).unwrap();
                let c: DpComplete = dp_entry(e, 0).unwrap();
                (e.len() / DP_ENTRY_SIZE, c.seq.get())
            })
            .collect()
    }
}

impl intercore::rpmsg::MessageIo for Recorder {
    fn send(
        &mut self,
        _: &intercore::rpmsg::Channel,
        data: &[u8],
        _: Option<Duration>,
    ) -> intercore::Result<()> {
        let n = self.attempts;
        self.attempts += 1;
        if data.len() > self.room {
            return Err(Error::MessageTooLarge {
                len: data.len(),
                max: self.room,
            });
        }
        if self.fail_at == Some(n) {
            self.fail_at = None;
            return Err(Error::Timeout);
        }
        self.sent.push(data.to_vec());
        Ok(())
    }
    fn recv(
        &mut self,
        _: &intercore::rpmsg::Channel,
        _: &mut [u8],
        _: Option<Duration>,
    ) -> intercore::Result<usize> {
        Err(Error::Timeout)
    }
    fn max_payload(&self) -> usize {
        self.max
    }
}

/// One submit message of `n` no-op jobs with sequence numbers 1..=n.
fn nop_batch(n: usize) -> Vec<u8> {
    let mut m = DpHdr {
        kind: Le16::new(DP_SUBMIT),
        count: Le16::new(n as u16),
        reserved: Le32::new(0),
    }
    .as_bytes()
    .to_vec();
    for i in 0..n {
        m.extend_from_slice(
            DpSubmit {
                seq: Le64::new(i as u64 + 1),
                da: Le64::new(IOVA + i as u64 * 4096),
                len: Le32::new(0),
                cap: Le32::new(4096),
                buf: Le32::new(i as u32),
                op: Le32::new(DP_OP_NOP),
            }
            .as_bytes(),
        );
    }
    m
}

/// The remote's completion messages carry as many entries as the transport's maximum
/// payload holds (`(payload - 8) / 32`, at most `MAX_DP_BATCH`) — 15 with Linux's 496
/// bytes, 64 from 2056 on, 2 with 100 — in order, each entry exactly once; a host buffer
/// smaller than advertised is met with smaller messages; a flush that times out part way
/// sends only the rest the next time.
#[test]
fn remote_batches_follow_the_transports_payload() {
    use intercore::dataplane::MAX_DP_BATCH;
    let s = setup();
    let mem = Arc::clone(&s.link.mem);
    let win = windows(&s.link);
    let nop = |_: &mut intercore::dataplane::Job<'_, Cache, LinearMap>| Ok(0);
    let run = |rec: &mut Recorder| {
        let mut dp = DpRemote::new(Coherent::new(Arc::clone(&mem)), win);
        dp.process(1, 2, &nop_batch(MAX_DP_BATCH), nop);
        let r = dp.flush(rec, T);
        if r.is_err() {
            dp.flush(rec, T).unwrap();
        }
        let b = rec.batches();
        // Every entry once, in order.
        let mut next = 1;
        for &(n, first) in &b {
            assert_eq!(first, next);
            next += n as u64;
        }
        assert_eq!(next, MAX_DP_BATCH as u64 + 1);
        b.iter().map(|&(n, _)| n).collect::<Vec<_>>()
    };
    assert_eq!(run(&mut Recorder::new(496)), [15, 15, 15, 15, 4]);
    assert_eq!(run(&mut Recorder::new(2056)), [64]);
    assert_eq!(run(&mut Recorder::new(65535)), [64]);
    assert_eq!(run(&mut Recorder::new(100)), vec![2; 32]);
    let mut small = Recorder::new(65535);
    small.room = 496;
    assert_eq!(run(&mut small), [15, 15, 15, 15, 4]);
    let mut flaky = Recorder::new(496);
    flaky.fail_at = Some(2);
    assert_eq!(run(&mut flaky), [15, 15, 15, 15, 4]);
    // Too small for one entry: an error, nothing sent.
    let mut tiny = Recorder::new(39);
    let mut dp = DpRemote::new(Coherent::new(Arc::clone(&mem)), win);
    dp.process(1, 2, &nop_batch(1), nop);
    assert!(matches!(dp.flush(&mut tiny, T), Err(Error::Config(_))));
    assert!(tiny.sent.is_empty());
}

/// Issue 24.4: submissions are published in whole batches while completions keep coming.
/// With 20 buffers submitted (one message of 15 sent, 5 staged) and the completion message
/// for the first 15 already arrived, taking completions does not send the 5 as a short
/// message: the application resubmits what comes back and fills the batch instead. Only
/// when nothing has arrived does a wait (here `try_complete`) flush the staged 5.
#[test]
fn arrived_completions_are_taken_before_a_partial_batch_is_sent() {
    let mut s = setup();
    let win = windows(&s.link);
    let mut remote_dp = DpRemote::new(Coherent::new(Arc::clone(&s.link.mem)), win);
    let (rep, mut dp) = dp_service(&mut s);
    assert_eq!(dp.batch_size(), 15);
    // The pool has 16 small buffers: take 15, and one more after the first completes.
    for _ in 0..15 {
        let b = dp.alloc(4096).unwrap();
        dp.submit(&mut s.host, b, 8, DP_OP_NOP).unwrap();
    }
    assert_eq!(dp.stats().messages, 1);
    let b = dp.alloc(4096).unwrap();
    dp.stage(b, 8, DP_OP_NOP).unwrap();
    // The remote completes the 15 it was sent.
    let serve = |s: &mut Setup, dp: &mut DpRemote<Cache, LinearMap>| {
        while let Ok(()) = s.remote.recv_any_with(Some(Duration::ZERO), |m| {
            dp.process(rep, m.src, m.payload, |_| Ok(0))
        }) {}
        dp.flush(&mut s.remote, T).unwrap();
    };
    serve(&mut s, &mut remote_dp);
    for i in 0..14 {
        let c = dp.wait_complete(&mut s.host, T).unwrap();
        assert_eq!(
            dp.stats().messages,
            1,
            "completion {i} had arrived: the staged batch waits to fill"
        );
        dp.stage(c.into_writable(), 8, DP_OP_NOP).unwrap();
    }
    // The 15th completion: the batch (the 16th buffer and 14 resubmitted) is full now.
    let last = dp.wait_complete(&mut s.host, T).unwrap();
    assert_eq!(dp.stats().messages, 1);
    // Nothing more can arrive (the remote holds nothing): a wait sends the batch first.
    assert!(dp.try_complete(&mut s.host).unwrap().is_none());
    assert_eq!(
        dp.stats().messages,
        2,
        "nothing had arrived: the batch went out"
    );
    serve(&mut s, &mut remote_dp);
    for _ in 0..15 {
        drop(dp.wait_complete(&mut s.host, T).unwrap());
    }
    drop(last);
    assert_eq!(dp.outstanding(), 0);
    assert_eq!(dp.stats().messages, 2);
    assert_eq!(dp.pool().counts(), [20, 0, 0, 0]);
}

/// The completion queue (a ring of one slot per pool buffer, issue 24.4) hands buffers out
/// in the order their entries came, across its wrap-around, with buffers taken out and
/// resubmitted while others wait in it; an entry naming a buffer that waits in the queue
/// is refused as not in flight.
#[test]
fn completions_come_out_in_entry_order_across_the_ring() {
    let mut s = setup();
    let rep = s.remote.create_endpoint("fake-dp", None).unwrap();
    s.remote.announce(rep).unwrap();
    let dst = s.host.find_service("fake-dp", T).unwrap();
    let ep = s.host.create_endpoint("dp", None).unwrap();
    let max = s.host.max_payload();
    let mut dp = DpHost::new(pool(&s.link), Channel::new(ep, dst), max).unwrap();
    let mut free = Vec::new();
    while let Some(b) = dp.alloc(1) {
        free.push(b);
    }
    let n = free.len();
    assert_eq!(n, 20);
    // Submits every buffer of `bufs`, lets the fake take the messages, and returns each
    // one's `(seq, da, id)` in submission order.
    let submit_all = |s: &mut Setup, dp: &mut DpHost<Cache>, bufs: Vec<WritableBuf<Cache>>| {
        let mut f = Vec::new();
        for b in bufs {
            let (id, da) = (b.id(), b.da().0);
            let t = dp.submit(&mut s.host, b, 8, DP_OP_NOP).unwrap();
            f.push((t.seq, da, id));
        }
        dp.flush(&mut s.host).unwrap();
        while s.remote.recv_any_with(Some(Duration::ZERO), |_| ()).is_ok() {}
        f
    };
    // Completes `f` in that order (one entry per message, so any order fits).
    let complete = |dp: &mut DpHost<Cache>, f: &[Flying]| {
        for &(seq, da, id) in f {
            dp.absorb_for_test(dst, &completions(1, &[entry(seq, da, id, 8)]))
                .unwrap();
        }
    };
    let mut flying = submit_all(&mut s, &mut dp, free);
    for round in 0..5usize {
        // Completed in a rotated, reversed order: not the order of the ids.
        let mut order = flying.clone();
        order.rotate_left(round * 3 % n);
        order.reverse();
        complete(&mut dp, &order);
        assert_eq!(dp.in_flight(), 0);
        assert_eq!(dp.outstanding(), n);
        // Seven out and back in while thirteen wait in the queue.
        let k = 7;
        let mut back = Vec::new();
        for want in &order[..k] {
            let c = dp.take_completed().unwrap();
            assert_eq!((c.seq(), c.id()), (want.0, want.2), "round {round}");
            back.push(c.into_writable());
        }
        let again = submit_all(&mut s, &mut dp, back);
        complete(&mut dp, &again);
        let mut bufs = Vec::new();
        for want in order[k..].iter().chain(&again) {
            let c = dp.take_completed().unwrap();
            assert_eq!((c.seq(), c.id()), (want.0, want.2), "round {round}");
            bufs.push(c.into_writable());
        }
        assert!(dp.take_completed().is_none());
        assert_eq!(dp.outstanding(), 0);
        flying = submit_all(&mut s, &mut dp, bufs);
    }
    // One completed and waiting in the queue: a second entry for it is refused.
    let (seq, da, id) = flying[0];
    complete(&mut dp, &flying[..1]);
    let e = dp
        .absorb_for_test(dst, &completions(1, &[entry(seq, da, id, 8)]))
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::DataPlane {
                what: "buffer not in flight",
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(dp.take_completed().unwrap().id(), id);
    assert_eq!(dp.reclaim(), n - 1);
}

/// Large buffers are not held back to fill a message: a submission goes out once the
/// staged work reaches `FLUSH_BYTES` (here one 64 KiB buffer), while small ones still
/// wait to fill the batch (`batch_due`).
#[test]
fn a_large_buffer_goes_out_without_waiting_for_a_full_batch() {
    use intercore::dataplane::FLUSH_BYTES;
    let mut s = setup();
    let (_, mut dp) = dp_service(&mut s);
    assert!(dp.batch_size() > 2);
    // Two small buffers: staged, not sent.
    for _ in 0..2 {
        let b = dp.alloc(4096).unwrap();
        dp.submit(&mut s.host, b, 4096, DP_OP_NOP).unwrap();
    }
    assert!(!dp.batch_due());
    assert_eq!(dp.stats().messages, 0);
    assert_eq!(dp.staged(), 2);
    // A large one brings the staged work to FLUSH_BYTES or more: the three go out now.
    let big = dp.alloc(64 << 10).unwrap();
    const { assert!(2 * 4096 + (64 << 10) >= FLUSH_BYTES) };
    dp.submit(&mut s.host, big, 64 << 10, DP_OP_NOP).unwrap();
    assert_eq!(dp.stats().messages, 1, "the large buffer was held back");
    assert_eq!(dp.staged(), 0);
    // Staged bytes start again from zero after a send: a short one waits again.
    let b = dp.alloc(4096).unwrap();
    dp.submit(&mut s.host, b, 100, DP_OP_NOP).unwrap();
    assert_eq!(dp.stats().messages, 1);
    assert!(!dp.batch_due());
}
