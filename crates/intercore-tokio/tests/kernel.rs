//! The async `/dev/rpmsg` transport against the fake rpmsg character-device kernel (real
//! socket descriptors, an echo service): woken through the reactor, every echo verified,
//! dropped receives losing nothing.

use intercore_linux::rpmsg_char::fake::{Behavior, FakeRpmsgKernel};
use intercore_tokio::AsyncKernelRpmsg;
use std::sync::Arc;
use std::time::Duration;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Runs `f` on a current-thread runtime, failing (not hanging) if it takes over 60 s: a
/// lost wake-up shows as this failure.
fn run<F: std::future::Future>(f: F) -> F::Output {
    runtime().block_on(async {
        tokio::time::timeout(std::time::Duration::from_secs(60), f)
            .await
            .expect("hung: a wake-up was lost")
    })
}

/// Eight channels to the echo service, one task each on one thread, 200 messages each;
/// before each send a receive parks on the descriptor and is dropped (zero timeout), and
/// every receive after it is raced against a task yield (`select!`), so that some are
/// dropped while the echo arrives; each channel still gets exactly its own messages, in
/// order.
#[test]
fn kernel_echo_on_many_channels_with_dropped_receives() {
    let k = FakeRpmsgKernel::new();
    k.announce("echo", 1024, Behavior::Echo);
    let t = k.transport().unwrap();
    run(async move {
        let t = Arc::new(AsyncKernelRpmsg::new(t).unwrap());
        let mut tasks = tokio::task::JoinSet::new();
        for c in 0..8u32 {
            let ch = t.open("echo", 1024).unwrap();
            let t = Arc::clone(&t);
            tasks.spawn(async move {
                let mut dropped = 0u32;
                let mut buf = [0u8; 496];
                for i in 0..200u32 {
                    let m = [c.to_le_bytes(), i.to_le_bytes()].concat();
                    // A receive parked on the descriptor, dropped before anything is sent.
                    let early = tokio::time::timeout(Duration::ZERO, t.recv(&ch, &mut buf)).await;
                    assert!(early.is_err(), "channel {c}: a message before any was sent");
                    dropped += 1;
                    t.send(&ch, &m).await.unwrap();
                    let n = loop {
                        tokio::select! {
                            r = t.recv(&ch, &mut buf) => break r.unwrap(),
                            () = tokio::task::yield_now() => dropped += 1,
                        }
                    };
                    assert_eq!(&buf[..n], &m[..], "channel {c} message {i}");
                }
                t.close(ch).unwrap();
                dropped
            });
        }
        let mut dropped = 0;
        while let Some(r) = tasks.join_next().await {
            dropped += r.unwrap();
        }
        assert!(
            dropped > 50,
            "only {dropped} receives dropped: the race did not happen"
        );
    });
    assert!(k.refusals().is_empty(), "{:?}", k.refusals());
}
