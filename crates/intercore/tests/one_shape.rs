//! One API shape for both roles: the same generic code, written once against
//! [`Transport`], drives a `HostBus` and a `RemoteBus` talking to each other over shared
//! memory in one process — endpoints (`open`, `connect`, `close`), messages (`send`,
//! `recv_from`) and the timeout convention (`Some(ZERO)` does not wait; expiry is
//! `Timeout`). It would not compile if the two roles' shapes differed.

use intercore::rpmsg::{Channel, HostConfig, RPMSG_ADDR_ANY, Transport};
use intercore::testing::Carveout;
use intercore::{Error, Result, WaitMode};
use std::time::Duration;

const T: Option<Duration> = Some(Duration::from_secs(5));
const NAME: &str = "one-shape";

/// Connects to the peer's service `NAME`, sends `n` numbered messages and checks each
/// echo and its sender; closes the channel.
fn call<B: Transport>(bus: &mut B, n: u32) -> Result<()> {
    let ch = bus.connect(NAME, T)?;
    let mut buf = [0u8; 64];
    for i in 0..n {
        let msg = i.to_le_bytes().repeat(1 + i as usize % 8);
        bus.send(&ch, &msg, T)?;
        let (from, len) = bus.recv_from(&ch, &mut buf, T)?;
        assert_eq!(from, Some(ch.remote), "echo from the service");
        assert_eq!(&buf[..len], &msg[..], "echo {i}");
    }
    bus.close(ch)
}

/// Echoes `n` messages received on `ch` to their senders.
fn echo<B: Transport>(bus: &mut B, ch: &Channel, n: u32) -> Result<()> {
    let mut buf = [0u8; 64];
    for _ in 0..n {
        let (from, len) = bus.recv_from(ch, &mut buf, T)?;
        let back = Channel::new(ch.local, from.expect("both buses report the sender"));
        bus.send(&back, &buf[..len], T)?;
    }
    Ok(())
}

/// Nothing there and a zero timeout: one look, and the answer is `Timeout`.
fn nothing_waiting<B: Transport>(bus: &mut B, ch: &Channel) {
    let mut buf = [0u8; 8];
    assert_eq!(
        bus.recv(ch, &mut buf, Some(Duration::ZERO)),
        Err(Error::Timeout)
    );
    assert_eq!(
        bus.recv_from(ch, &mut buf, Some(Duration::from_millis(20))),
        Err(Error::Timeout)
    );
}

/// The remote serves (its `open` announces), the host calls (its `connect` finds the
/// announcement); both through the same generic functions.
#[test]
fn generic_code_drives_a_host_calling_a_remote() {
    let c = Carveout::with_buffers(16);
    let (mut host, mut remote) = c
        .connect::<8>(HostConfig::default(), WaitMode::Event)
        .unwrap();
    let server = std::thread::spawn(move || {
        // Before the service exists, so the host sends nothing yet.
        let quiet = remote.open("quiet", RPMSG_ADDR_ANY).unwrap();
        nothing_waiting(&mut remote, &quiet);
        let ch = remote.open(NAME, RPMSG_ADDR_ANY).unwrap();
        echo(&mut remote, &ch, 20).unwrap();
        remote
    });
    call(&mut host, 20).unwrap();
    let remote = server.join().unwrap();
    // 20 echoes and 2 announcements.
    assert_eq!((remote.stats().received, remote.stats().sent), (20, 22));
}

/// The host serves (announced through its name-service extra), the remote calls.
#[test]
fn generic_code_drives_a_remote_calling_a_host() {
    let c = Carveout::with_buffers(16);
    let (mut host, mut remote) = c
        .connect::<8>(HostConfig::default(), WaitMode::Event)
        .unwrap();
    let ch = host.open(NAME, RPMSG_ADDR_ANY).unwrap();
    host.announce(ch.local).unwrap();
    nothing_waiting(&mut host, &ch);
    let client = std::thread::spawn(move || call(&mut remote, 20));
    echo(&mut host, &ch, 20).unwrap();
    client.join().unwrap().unwrap();
}

/// A remote channel opened to `RPMSG_ADDR_ANY` answers whoever sent last to its endpoint,
/// and says so (`NotReady`) before anyone has.
#[test]
fn a_remote_channel_to_any_answers_the_last_sender() {
    let c = Carveout::with_buffers(16);
    let (mut host, mut remote) = c
        .connect::<8>(HostConfig::default(), WaitMode::Event)
        .unwrap();
    let service = remote.open(NAME, RPMSG_ADDR_ANY).unwrap();
    assert!(matches!(
        remote.send(&service, b"to nobody", T),
        Err(Error::NotReady(_))
    ));
    let a = host.connect(NAME, T).unwrap();
    let b = host.open("second", a.remote).unwrap();
    let mut buf = [0u8; 16];
    let turns: [(&Channel, &[u8]); 3] = [(&b, b"from b"), (&a, b"from a"), (&b, b"again b")];
    for (ch, msg) in turns {
        host.send(ch, msg, T).unwrap();
        let n = remote.recv(&service, &mut buf, T).unwrap();
        assert_eq!(&buf[..n], msg);
        remote.send(&service, &buf[..n], T).unwrap();
        let n = host.recv(ch, &mut buf, T).unwrap();
        assert_eq!(&buf[..n], msg, "the answer went to the sender");
    }
}
