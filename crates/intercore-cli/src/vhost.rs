//! `intercore vhost-user`: the remote role as a vhost-user virtio-rpmsg device.

use crate::error::{CliError, js};
use intercore_cli::{EXIT_FAILED, EXIT_OK, FirmwareArg, KernelEchoArgs, VhostUserArgs};
use intercore_vhost::DeviceFirmware;

/// Serves one front end: 0 when every firmware run ended with the guest going away, 1
/// otherwise; an unusable socket path (a regular file, a socket in use) is an error
/// naming it, and the file is left as it was.
pub fn main(a: &VhostUserArgs, json: bool) -> Result<u8, CliError> {
    let firmware = match a.firmware {
        FirmwareArg::Echo => DeviceFirmware::Echo,
        FirmwareArg::Sink => DeviceFirmware::Sink,
    };
    let reports = intercore_vhost::serve_socket(&a.socket, firmware, a.verbose)
        .map_err(|e| CliError::at(&a.socket, e.to_string()))?;
    let mut ok = true;
    let mut rows = Vec::new();
    for r in &reports {
        let result = match &r.result {
            Ok(()) => "guest went away".to_string(),
            Err(e) => {
                ok = false;
                format!("error: {e}")
            }
        };
        if json {
            rows.push(format!(
                "{{\"messages\":{},\"result\":{}}}",
                r.messages,
                js(&result)
            ));
        } else {
            println!("firmware run: {} messages, {result}", r.messages);
        }
    }
    if json {
        println!("{{\"runs\":[{}],\"ok\":{ok}}}", rows.join(","));
    }
    Ok(if ok { EXIT_OK } else { EXIT_FAILED })
}

/// `intercore kernel-echo`: through the kernel's rpmsg character devices
/// (`KernelRpmsg` on `/dev/rpmsg_ctrlN`), find an echo service, open an endpoint to it,
/// exchange and verify messages, close the endpoint. Run inside a guest whose kernel has
/// rpmsg (scripts/vm-test.sh); exits 0 only if every echo matched.
pub fn kernel_echo_main(a: &KernelEchoArgs, json: bool) -> Result<u8, CliError> {
    use intercore::rpmsg::{MessageIo, Transport};
    use std::time::Duration;
    let paths = intercore_linux::RpmsgPaths {
        ctrl: a.ctrl.clone(),
        ..Default::default()
    };
    let service = a.service.clone();
    let messages = a.messages as usize;
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
            if json {
                println!(
                    "{{\"pass\":true,\"messages\":{messages},\"detail\":{}}}",
                    js(&s)
                );
            } else {
                println!("kernel-echo: PASS {s}");
            }
            Ok(EXIT_OK)
        }
        Err(e) if json => Err(CliError::failed(e)),
        Err(e) => {
            println!("kernel-echo: FAIL {e}");
            Ok(EXIT_FAILED)
        }
    }
}
