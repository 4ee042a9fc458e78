//! `intercore vhost-user`: the remote role as a vhost-user virtio-rpmsg device.

use intercore_vhost::Firmware;
use std::path::PathBuf;
use std::process::ExitCode;

pub fn main(args: &[String]) -> ExitCode {
    let mut socket = None;
    let mut firmware = Firmware::Echo;
    let mut verbose = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--socket" => socket = it.next().map(PathBuf::from),
            "--firmware" => match it.next().map(|s| s.parse()) {
                Some(Ok(f)) => firmware = f,
                Some(Err(e)) => {
                    eprintln!("intercore vhost-user: {e}");
                    return ExitCode::from(2);
                }
                None => socket = None,
            },
            "--verbose" => verbose = true,
            other => {
                eprintln!("intercore vhost-user: unknown argument {other:?}");
                return ExitCode::from(2);
            }
        }
    }
    let Some(socket) = socket else {
        eprintln!("usage: intercore vhost-user --socket PATH [--firmware echo|sink] [--verbose]");
        return ExitCode::from(2);
    };
    match intercore_vhost::serve_socket(&socket, firmware, verbose) {
        Ok(reports) => {
            let mut ok = true;
            for r in &reports {
                println!(
                    "firmware run: {} messages, {}",
                    r.messages,
                    match &r.result {
                        Ok(()) => "guest went away".to_string(),
                        Err(e) => {
                            ok = false;
                            format!("error: {e}")
                        }
                    }
                );
            }
            if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("intercore vhost-user: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `intercore kernel-echo`: through the kernel's rpmsg character devices
/// (`KernelRpmsg` on `/dev/rpmsg_ctrlN`), find an echo service, open an endpoint to it,
/// exchange and verify messages, close the endpoint. Run inside a guest whose kernel has
/// rpmsg (scripts/vm-test.sh); exits 0 only if every echo matched.
pub fn kernel_echo_main(args: &[String]) -> ExitCode {
    use intercore::rpmsg::Transport;
    use std::time::Duration;
    let mut paths = intercore_linux::RpmsgPaths::default();
    let mut service = intercore_fw_echo::SERVICE.to_string();
    let mut messages = 100usize;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let v = it.next();
        match (a.as_str(), v) {
            ("--ctrl", Some(v)) => paths.ctrl = v.clone(),
            ("--service", Some(v)) => service = v.clone(),
            ("--messages", Some(v)) if v.parse::<usize>().is_ok() => {
                messages = v.parse().expect("checked")
            }
            _ => {
                eprintln!(
                    "usage: intercore kernel-echo [--ctrl rpmsg_ctrl0] [--service NAME] [--messages N]"
                );
                return ExitCode::from(2);
            }
        }
    }
    let t = Some(Duration::from_secs(10));
    let run = || -> Result<String, String> {
        let mut k = intercore_linux::KernelRpmsg::open(&paths).map_err(|e| e.to_string())?;
        let remote = k
            .find_service(&service, t)
            .map_err(|e| format!("finding {service}: {e}"))?;
        let ch = k
            .open("intercore-check", remote)
            .map_err(|e| format!("opening an endpoint to {remote}: {e}"))?;
        let dev = k.endpoint_device(&ch);
        let max = k.max_payload();
        let mut buf = vec![0u8; max];
        for i in 0..messages {
            let len = (i * 37) % max + 1;
            let msg: Vec<u8> = (0..len).map(|b| (b * 7 + i) as u8).collect();
            k.send(&ch, &msg, t).map_err(|e| format!("send {i}: {e}"))?;
            let n = k
                .recv(&ch, &mut buf, t)
                .map_err(|e| format!("recv {i}: {e}"))?;
            if buf[..n] != msg[..] {
                return Err(format!(
                    "message {i}: sent {len} bytes, echo of {n} bytes differs"
                ));
            }
        }
        k.close(ch).map_err(|e| format!("closing: {e}"))?;
        Ok(format!(
            "{messages} messages echoed through {} via {} (remote {remote}), endpoint destroyed",
            dev.map_or("?".into(), |d| d.display().to_string()),
            paths.ctrl_dev().display()
        ))
    };
    match run() {
        Ok(s) => {
            println!("kernel-echo: PASS {s}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!("kernel-echo: FAIL {e}");
            ExitCode::FAILURE
        }
    }
}
