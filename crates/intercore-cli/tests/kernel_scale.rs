//! `intercore kernel-scale` on the fake kernel rpmsg character devices
//! (`intercore_linux::rpmsg_char::fake`): the rows, the verification of every echo, a lost
//! echo, and every endpoint destroyed.

use intercore::rpmsg::{MessageIo, Transport};
use intercore_cli::kernel_scale::{ScaleTimes, payload, run};
use intercore_linux::rpmsg_char::fake::{Behavior, FakeRemoteEnd, FakeRpmsgKernel};
use std::sync::mpsc::Receiver;
use std::time::Duration;

const TIMES: ScaleTimes = ScaleTimes {
    warm_up: Duration::from_millis(20),
    window: Duration::from_millis(100),
    stall: Duration::from_millis(500),
};

/// Every row has bench scale's shape, round trips in its window, no error; every endpoint
/// device is destroyed afterwards.
#[test]
fn rows_for_each_count_and_every_endpoint_destroyed() {
    let fake = FakeRpmsgKernel::new();
    fake.announce("rpmsg-raw", 1024, Behavior::Echo);
    let mut k = fake.transport().unwrap();
    let remote = k
        .find_service("rpmsg-raw", Some(Duration::from_secs(5)))
        .unwrap();
    let mut seen = Vec::new();
    let (rows, echoes) = run(&mut k, remote, &[1, 16, 64], TIMES, |r| {
        seen.push(r.transport.clone());
        Ok(())
    })
    .unwrap();
    assert_eq!(
        seen,
        ["kernel-rpmsg-1x1", "kernel-rpmsg-1x16", "kernel-rpmsg-1x64"]
    );
    for r in &rows {
        let j = r.json();
        assert_eq!(j["bench"], "scale");
        assert_eq!(j["size"], 64);
        assert_eq!(j["errors"], 0, "{j}");
        assert!(j["samples"].as_u64().unwrap() > 0, "{j}");
        assert!(j["msgs_per_s"].as_u64().unwrap() > 0, "{j}");
        assert!(j["host_cpu_ns_per_op"].as_u64().unwrap() > 0, "{j}");
        assert!(j["p99_ns"].as_u64().unwrap() >= j["p50_ns"].as_u64().unwrap());
    }
    let measured: u64 = rows.iter().map(|r| r.lat.unwrap().samples).sum();
    assert!(
        echoes >= measured + 81,
        "{echoes} echoes, {measured} measured"
    );
    assert!(
        fake.endpoint_devices().is_empty(),
        "left behind: {:?}",
        fake.endpoint_devices()
    );
}

/// Plays the echo service: each endpoint's remote end echoes what it receives through
/// `f`, which may change it or drop it (`None`).
fn remote(
    ends: Receiver<FakeRemoteEnd>,
    f: fn(Vec<u8>) -> Option<Vec<u8>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        for mut end in ends {
            std::thread::spawn(move || {
                let ch = end.channel();
                let mut buf = [0u8; 512];
                while let Ok(n) = end.recv(&ch, &mut buf, None) {
                    if let Some(m) = f(buf[..n].to_vec()) {
                        if end.send(&ch, &m, None).is_err() {
                            return;
                        }
                    }
                }
            });
        }
    })
}

fn seq(m: &[u8]) -> u32 {
    u32::from_le_bytes(m[8..12].try_into().unwrap())
}

/// An echo that differs from what was sent (one byte of sequence 3 of every endpoint) is
/// counted in the row's errors.
#[test]
fn a_wrong_echo_is_an_error() {
    let fake = FakeRpmsgKernel::new();
    let ends = fake.announce_external("rpmsg-raw", 1024);
    let _r = remote(ends, |mut m| {
        if seq(&m) == 3 {
            m[40] ^= 1;
        }
        Some(m)
    });
    let mut k = fake.transport().unwrap();
    let remote = k
        .find_service("rpmsg-raw", Some(Duration::from_secs(5)))
        .unwrap();
    let (rows, _) = run(&mut k, remote, &[4], TIMES, |_| Ok(())).unwrap();
    assert_eq!(rows[0].errors, 4, "{}", rows[0].json());
    assert!(fake.endpoint_devices().is_empty());
}

/// An echo that never comes ends the run with an error naming the endpoint, and the
/// endpoints are destroyed all the same.
#[test]
fn a_lost_echo_fails_the_run() {
    let fake = FakeRpmsgKernel::new();
    let ends = fake.announce_external("rpmsg-raw", 1024);
    let _r = remote(ends, |m| {
        let ep = u32::from_le_bytes(m[4..8].try_into().unwrap());
        (ep != 2 || seq(&m) != 5).then_some(m)
    });
    let mut k = fake.transport().unwrap();
    let remote = k
        .find_service("rpmsg-raw", Some(Duration::from_secs(5)))
        .unwrap();
    let e = run(&mut k, remote, &[3], TIMES, |_| Ok(())).unwrap_err();
    assert!(e.contains("lost") && e.contains("2 (seq 5)"), "{e}");
    assert!(fake.endpoint_devices().is_empty());
}

/// The payload names the row, the endpoint and the sequence number.
#[test]
fn payloads_differ_by_endpoint_and_sequence() {
    assert_ne!(payload(16, 1, 0), payload(16, 2, 0));
    assert_ne!(payload(16, 1, 0), payload(16, 1, 1));
    assert_ne!(payload(16, 1, 0), payload(64, 1, 0));
}
