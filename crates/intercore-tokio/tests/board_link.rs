//! `AsyncLink`: board links (`intercore_board::Link`, from `Board::open_with`) driven by
//! tokio. A `sim` board (the simulated SoC, its remote core a child process: this crate's
//! `board_link` example run with `--remote-core`) and a `kernel` board (intercore-linux's
//! fake rpmsg kernel: real socket descriptors), each on one thread with several tasks; a
//! QEMU board (polled doorbell) is refused with the link given back.

use intercore::Error;
use intercore_board::{Board, OpenEnv};
use intercore_board::{Link, LinkMsg};
use intercore_linux::reactor::{LinkId, Reactor, ReactorConfig, Ready};
use intercore_linux::remoteproc::fake::{FakeKernel, FakeRproc};
use intercore_linux::rpmsg_char::fake::{Behavior, FakeRpmsgKernel};
use intercore_sim::{RemoteProgram, SimFirmware};
use intercore_tokio::{AsyncLink, AsyncReactor, OpenError};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Runs `f` on a current-thread runtime, failing (not hanging) after 60 s: a lost wake-up
/// shows as this failure.
fn run<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            tokio::time::timeout(Duration::from_secs(60), f)
                .await
                .expect("hung: a wake-up was lost")
        })
}

/// `target/<profile>/examples/board_link`, built by `cargo test -p intercore-tokio`.
fn remote_program() -> RemoteProgram {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(|d| d.parent()).unwrap();
    let path: PathBuf = dir.join("examples").join("board_link");
    assert!(
        path.is_file(),
        "{} is missing: `cargo build -p intercore-tokio --example board_link` (cargo test -p intercore-tokio builds it)",
        path.display()
    );
    RemoteProgram {
        program: path,
        args: vec!["--remote-core".into()],
    }
}

fn sim_env() -> OpenEnv {
    let firmwares: Vec<Arc<SimFirmware>> = vec![
        Arc::new(intercore_fw_echo::Echo),
        Arc::new(intercore_fw_offload::Offload),
    ];
    OpenEnv {
        sim_remote: Some(remote_program()),
        sim_firmwares: firmwares,
        ..OpenEnv::default()
    }
}

fn sim_board() -> Board {
    Board::from_file(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../boards/sim.toml"
    ))
    .unwrap()
}

/// Four channels to the sim board's echo service, one task each on one thread, 100
/// messages each (a receive dropped while parked before every send): each channel gets
/// exactly its own echoes, in order. Then the remote core is killed while a receive is
/// parked: it ends with `PeerGone`, woken by the remote's pidfd.
#[test]
fn sim_board_link_echoes_on_many_tasks_and_sees_the_remote_die() {
    let link = sim_board().open_with(sim_env()).unwrap();
    let pid = link.child_pid().expect("the simulated remote core's pid");
    run(async move {
        let link = Arc::new(AsyncLink::new(link).unwrap());
        let mut tasks = tokio::task::JoinSet::new();
        for c in 0..4u32 {
            let link = Arc::clone(&link);
            tasks.spawn(async move {
                let ch = link.connect(intercore_fw_offload::ECHO_SERVICE).await?;
                let mut buf = [0u8; 496];
                for i in 0..100u32 {
                    let early =
                        tokio::time::timeout(Duration::ZERO, link.recv(&ch, &mut buf)).await;
                    assert!(early.is_err(), "channel {c}: an echo before any send");
                    let m = [c.to_le_bytes(), i.to_le_bytes()].concat();
                    link.send(&ch, &m).await?;
                    let n = link.recv(&ch, &mut buf).await?;
                    assert_eq!(&buf[..n], &m[..], "channel {c} message {i}");
                }
                Ok::<_, Error>(ch)
            });
        }
        let mut chans = Vec::new();
        while let Some(r) = tasks.join_next().await {
            chans.push(r.unwrap().unwrap());
        }
        assert_eq!(chans.len(), 4);
        // The remote dies while a receive is parked: PeerGone, not a hang.
        let mut buf = [0u8; 496];
        let parked = link.recv(&chans[0], &mut buf);
        let kill = async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            kill(pid);
            std::future::pending::<()>().await
        };
        let r = tokio::select! {
            r = parked => r,
            () = kill => unreachable!(),
        };
        assert_eq!(r, Err(Error::PeerGone));
    });
}

/// A `kernel` board over the fake rpmsg kernel, its echo service `rpmsg-raw` at 0x400, the
/// core brought up through the fake remoteproc tree (the board file needs one): the link,
/// the fake kernel and the fake remoteproc tree (kept alive by the caller).
fn kernel_link() -> (intercore_board::Link, Arc<FakeRpmsgKernel>, FakeKernel) {
    let k = Arc::new(FakeRpmsgKernel::new());
    k.announce("rpmsg-raw", 0x400, Behavior::Echo);
    let k2 = Arc::clone(&k);
    let rp = FakeKernel::new(&[FakeRproc::offline("78000000.r5f", "am64-main-r5f0_0-fw")]);
    rp.set_state(0, "running");
    let env = OpenEnv {
        rproc: rp.paths(),
        rpmsg: k.paths(),
        ready_timeout: Duration::from_secs(5),
        kernel_opener: Some(Box::new(move |p| k2.transport_with(p))),
        ..OpenEnv::default()
    };
    let board = Board::from_str(
        r#"
[board]
name = "fake kernel"
[remoteproc]
name = "78000000.r5f"
firmware = "am64-main-r5f0_0-fw"
[transport]
kind = "kernel"
[memory]
source = "carveout"
reserved_memory = "intercore-pool@a6000000"
[cache]
mode = "coherent"
"#,
    )
    .unwrap();
    (board.open_with(env).unwrap(), k, rp)
}

/// A `kernel` board over the fake rpmsg kernel: each channel's `/dev/rpmsgN` descriptor
/// registered with the reactor; four tasks on one thread, every echo verified.
#[test]
fn kernel_board_link_echoes_through_the_endpoint_descriptors() {
    let (link, k, _rp) = kernel_link();
    run(async move {
        let link = Arc::new(AsyncLink::new(link).unwrap());
        let mut tasks = tokio::task::JoinSet::new();
        for c in 0..4u32 {
            let link = Arc::clone(&link);
            tasks.spawn(async move {
                let ch = link.connect("rpmsg-raw").await.unwrap();
                let mut buf = [0u8; 496];
                for i in 0..100u32 {
                    let early =
                        tokio::time::timeout(Duration::ZERO, link.recv(&ch, &mut buf)).await;
                    assert!(early.is_err(), "channel {c}: an echo before any send");
                    let m = [c.to_le_bytes(), i.to_le_bytes()].concat();
                    link.send(&ch, &m).await.unwrap();
                    let n = link.recv(&ch, &mut buf).await.unwrap();
                    assert_eq!(&buf[..n], &m[..], "channel {c} message {i}");
                }
                link.close(ch).unwrap();
            });
        }
        while let Some(r) = tasks.join_next().await {
            r.unwrap();
        }
    });
    assert!(k.refusals().is_empty(), "{:?}", k.refusals());
}

/// A QEMU board's link waits on a polled doorbell (no descriptor): `AsyncLink::new` refuses
/// it, says why, and gives the link back, still usable with the blocking API.
#[test]
#[ignore = "needs qemu-system-arm and the firmware images scripts/test-baremetal.sh builds: INTERCORE_FW_DIR=DIR cargo test -p intercore-tokio --test board_link -- --ignored"]
fn qemu_board_link_is_refused_and_given_back() {
    let board = Board::from_file(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../boards/qemu-r5f.toml"
    ))
    .unwrap();
    let link = board.open().unwrap();
    run(async move {
        let e = AsyncLink::new(link).unwrap_err();
        assert!(matches!(e.error, OpenError::NoWakeFd { .. }), "{e}");
        assert!(e.to_string().contains("polled doorbell"), "{e}");
        let mut link = *e.link;
        let ch = link
            .connect(
                intercore_fw_offload::ECHO_SERVICE,
                Some(Duration::from_secs(10)),
            )
            .or_else(|_| link.connect("rpmsg-echo", Some(Duration::from_secs(10))))
            .unwrap();
        link.send(&ch, b"still blocking", None).unwrap();
        let mut buf = [0u8; 496];
        let n = link
            .recv(&ch, &mut buf, Some(Duration::from_secs(10)))
            .unwrap();
        assert_eq!(&buf[..n], b"still blocking");
    });
}

/// One round of a board reactor's ping-pong: checks an echo against what its link sent last
/// and sends the next message (a little-endian count, then the link's tag), without waiting.
/// `sent[link]` counts each link's messages; a link's next message is sent only when its
/// echo came back, so each echo must equal the one before it.
fn echo_back(
    sent: &mut Sent,
    downs: &mut Vec<(LinkId, Error)>,
    id: LinkId,
    link: &mut Link,
    ready: Ready<LinkMsg>,
) {
    match ready {
        Ready::Message(m) => {
            let (n, tag) = sent[&id];
            let want = [n.to_le_bytes(), tag.to_le_bytes()].concat();
            assert_eq!(&m[..], &want[..], "{id:?}: echo {n}");
            let next = [(n + 1).to_le_bytes(), tag.to_le_bytes()].concat();
            assert_eq!(link.post(m.dst(), m.src(), &next), Ok(true), "{id:?}");
            sent.insert(id, (n + 1, tag));
        }
        Ready::Lost { endpoint, count } => panic!("{id:?}/{endpoint}: {count} lost"),
        Ready::Down(e) => downs.push((id, e)),
    }
}

/// Echoes counted on each link.
type Sent = BTreeMap<LinkId, (u32, u32)>;
/// Links reported down, with why.
type Downs = [(LinkId, Error)];

/// Turns `reactor` (blocking, [`echo_back`] answering) until `until` holds; fails after
/// 60 s or when a turn waits 5 s for nothing.
fn serve(
    reactor: &mut Reactor<Link>,
    sent: &mut Sent,
    downs: &mut Vec<(LinkId, Error)>,
    until: &dyn Fn(&Sent, &Downs) -> bool,
) {
    let t0 = std::time::Instant::now();
    while !until(sent, downs) {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "hung: {sent:?} {downs:?}"
        );
        if let Err(e) = reactor.turn(Some(Duration::from_secs(5)), |id, link, r| {
            echo_back(sent, downs, id, link, r)
        }) {
            panic!("turn: {e:?} {sent:?} {downs:?}");
        }
    }
}

/// Connects `link` to its echo service (the fake kernel's `rpmsg-raw`, the demo firmware's
/// echo, or the C images' `rpmsg-echo`) and sends message 0 of link `tag` (see
/// [`echo_back`]), with the blocking API, before the link joins a reactor.
fn first_ping(mut link: Link, tag: u32) -> Link {
    let t = Some(Duration::from_secs(10));
    let ch = if link.transport_name() == "kernel" {
        link.connect("rpmsg-raw", t)
    } else {
        link.connect(intercore_fw_offload::ECHO_SERVICE, t)
            .or_else(|_| link.connect("rpmsg-echo", t))
    }
    .unwrap();
    link.send(&ch, &[0u32.to_le_bytes(), tag.to_le_bytes()].concat(), None)
        .unwrap();
    link
}

/// Adds each link to `reactor` after its first ping ([`first_ping`], tagged with its place).
fn join(reactor: &mut Reactor<Link>, links: impl Iterator<Item = Link>) -> Sent {
    let mut sent = Sent::new();
    for (tag, link) in links.enumerate() {
        let id = reactor.add(first_ping(link, tag as u32)).unwrap();
        sent.insert(id, (0, tag as u32));
    }
    sent
}

/// Kills process `pid` (a simulated remote core, QEMU) with SIGKILL.
fn kill(pid: u32) {
    let st = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    assert!(st.success());
}

/// Board links of two transports in one blocking reactor on one thread: two simulated SoCs
/// (their host buses, eventfd doorbells, messages in place) and a kernel board (the fake
/// rpmsg kernel's `/dev/rpmsgN` devices behind one epoll, messages copied), each answered
/// from the callback with `Link::post`. 200 verified round trips each; then one simulated
/// remote is killed: its link alone is reported down (once, by its pidfd) and the other
/// two carry on with 100 more each.
#[test]
fn board_links_of_every_transport_share_one_reactor() {
    let (kernel, _k, _rp) = kernel_link();
    let links = vec![
        sim_board().open_with(sim_env()).unwrap(),
        sim_board().open_with(sim_env()).unwrap(),
        kernel,
    ];
    let victim = links[0]
        .child_pid()
        .expect("the simulated remote core's pid");
    // No link here may need the tick: every one wakes the reactor through a descriptor.
    let cfg = ReactorConfig::default().tick(Duration::from_secs(3600));
    let mut reactor: Reactor<Link> = Reactor::new(cfg).unwrap();
    let mut sent = join(&mut reactor, links.into_iter());
    let mut downs = Vec::new();
    serve(&mut reactor, &mut sent, &mut downs, &|s, _| {
        s.values().all(|&(n, _)| n >= 200)
    });
    assert!(downs.is_empty(), "{downs:?}");
    kill(victim);
    let base: BTreeMap<LinkId, u32> = sent.iter().map(|(&l, &(n, _))| (l, n)).collect();
    serve(&mut reactor, &mut sent, &mut downs, &|s, d| {
        !d.is_empty()
            && s.iter()
                .filter(|(l, _)| **l != LinkId(0))
                .all(|(l, &(n, _))| n >= base[l] + 100)
    });
    assert_eq!(downs.len(), 1, "{downs:?}");
    assert_eq!(downs[0], (LinkId(0), Error::PeerGone));
    assert_eq!(reactor.down(LinkId(0)), Some(Error::PeerGone));
    assert!(reactor.down(LinkId(1)).is_none() && reactor.down(LinkId(2)).is_none());
}

/// The same mix in the async reactor: a simulated SoC and a kernel board served by one
/// task (`AsyncReactor<Link>`), 100 verified round trips each.
#[test]
fn board_links_share_one_async_reactor() {
    let (kernel, _k, _rp) = kernel_link();
    let links = vec![sim_board().open_with(sim_env()).unwrap(), kernel];
    run(async move {
        let mut reactor: AsyncReactor<Link> = AsyncReactor::new(ReactorConfig::default()).unwrap();
        let mut sent = Sent::new();
        for (tag, link) in links.into_iter().enumerate() {
            let link = first_ping(link, tag as u32);
            let id = reactor.add(link).unwrap();
            sent.insert(id, (0u32, tag as u32));
        }
        let mut downs = Vec::new();
        while !sent.values().all(|&(n, _)| n >= 100) {
            reactor
                .turn(|id, link, r| echo_back(&mut sent, &mut downs, id, link, r))
                .await
                .unwrap();
            assert!(downs.is_empty(), "{downs:?}");
        }
    });
}

/// A QEMU board's link (polled doorbell, no descriptor) beside a simulated SoC's in one
/// blocking reactor: served on the reactor's tick, 50 verified round trips each; then QEMU
/// is killed and the tick's look at its peer reports that link alone down.
#[test]
#[ignore = "needs qemu-system-arm and the firmware images scripts/test-baremetal.sh builds: INTERCORE_FW_DIR=DIR cargo test -p intercore-tokio --test board_link -- --ignored"]
fn qemu_board_link_joins_a_reactor_on_its_tick() {
    let qemu = Board::from_file(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../boards/qemu-r5f.toml"
    ))
    .unwrap()
    .open()
    .unwrap();
    let victim = qemu.child_pid().expect("QEMU's pid");
    let links = vec![qemu, sim_board().open_with(sim_env()).unwrap()];
    let mut reactor: Reactor<Link> = Reactor::new(ReactorConfig::default()).unwrap();
    let mut sent = join(&mut reactor, links.into_iter());
    assert!(reactor.ticking(), "the QEMU link needs the tick");
    let mut downs = Vec::new();
    serve(&mut reactor, &mut sent, &mut downs, &|s, _| {
        s.values().all(|&(n, _)| n >= 50)
    });
    assert!(downs.is_empty(), "{downs:?}");
    kill(victim);
    let base = sent[&LinkId(1)].0;
    serve(&mut reactor, &mut sent, &mut downs, &|s, d| {
        !d.is_empty() && s[&LinkId(1)].0 >= base + 50
    });
    assert_eq!(downs.len(), 1, "{downs:?}");
    assert_eq!(downs[0].0, LinkId(0));
    assert!(reactor.down(LinkId(1)).is_none());
}
