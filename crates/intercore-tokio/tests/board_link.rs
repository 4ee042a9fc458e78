//! `AsyncLink`: board links (`intercore_board::Link`, from `Board::open_with`) driven by
//! tokio. A `sim` board (the simulated SoC, its remote core a child process: this crate's
//! `board_link` example run with `--remote-core`) and a `kernel` board (intercore-linux's
//! fake rpmsg kernel: real socket descriptors), each on one thread with several tasks; a
//! QEMU board (polled doorbell) is refused with the link given back.

use intercore::Error;
use intercore_board::{Board, OpenEnv};
use intercore_linux::remoteproc::fake::{FakeKernel, FakeRproc};
use intercore_linux::rpmsg_char::fake::{Behavior, FakeRpmsgKernel};
use intercore_sim::{RemoteProgram, SimFirmware};
use intercore_tokio::{AsyncLink, OpenError};
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
            let st = std::process::Command::new("kill")
                .args(["-9", &pid.to_string()])
                .status()
                .unwrap();
            assert!(st.success());
            std::future::pending::<()>().await
        };
        let r = tokio::select! {
            r = parked => r,
            () = kill => unreachable!(),
        };
        assert_eq!(r, Err(Error::PeerGone));
    });
}

/// A `kernel` board over the fake rpmsg kernel: each channel's `/dev/rpmsgN` descriptor
/// registered with the reactor; four tasks on one thread, every echo verified.
#[test]
fn kernel_board_link_echoes_through_the_endpoint_descriptors() {
    let k = Arc::new(FakeRpmsgKernel::new());
    k.announce("rpmsg-raw", 0x400, Behavior::Echo);
    let k2 = Arc::clone(&k);
    // The core is brought up through the fake remoteproc tree (the board file needs one).
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
    let link = board.open_with(env).unwrap();
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
