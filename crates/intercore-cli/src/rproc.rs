//! `intercore rproc list|start|stop|detach|load`: remoteproc control through sysfs (or
//! `/dev/remoteprocN`), as `Documentation/ABI/testing/sysfs-class-remoteproc` describes it.

use crate::error::{CliError, js};
use intercore_board::CoreIsa;
use intercore_cli::{ControlArg, EXIT_OK, RprocCommand, RprocControl, RprocRoots};
use intercore_linux::file::{FIRMWARE_MAX, read_regular};
use intercore_linux::remoteproc::{Control, Remoteproc, RprocError, RprocPaths, firmware_dir};

/// Runs the subcommand: 0 done, 1 refused or failed (the message says why and what to
/// do); usage errors (2) are clap's.
pub fn main(c: &RprocCommand, json: bool) -> Result<u8, CliError> {
    match c {
        RprocCommand::List { roots } => list(&paths(roots), json),
        RprocCommand::Start(o) => control(o, "start", json),
        RprocCommand::Stop(o) => control(o, "stop", json),
        RprocCommand::Detach(o) => control(o, "detach", json),
        RprocCommand::Load(l) => {
            let o = &l.control;
            let p = paths(&o.roots);
            let r = Remoteproc::open(&p, o.rproc.as_deref()).map_err(err)?;
            let who = who(&r);
            // The kernel's loader checks the ELF class, not the machine: refuse firmware
            // built for another core than the one the device tree describes.
            if let Some(core) = CoreIsa::of_rproc(&r) {
                let bytes =
                    read_regular(&l.file, FIRMWARE_MAX).map_err(|e| err(RprocError::File(e)))?;
                core.check_elf(&l.file, &bytes).map_err(|m| CliError {
                    path: Some(l.file.clone()),
                    ..CliError::failed(format!("{who}: {m}"))
                })?;
            }
            let loaded = r.load(&l.file, l.name.as_deref()).map_err(err)?;
            let dir = firmware_dir(&p).map_err(err)?;
            let state = if l.start {
                Some(r.start(via(o.control), o.timeout).map_err(err)?)
            } else {
                None
            };
            if json {
                println!(
                    "{{\"rproc\":{},\"name\":{},\"file\":{},\"installed\":{},\"firmware_dir\":{},\"firmware\":{},\"state\":{}}}",
                    js(&r.id()),
                    js(&r.name().unwrap_or_default()),
                    js(&l.file.to_string_lossy()),
                    js(&loaded.installed.to_string_lossy()),
                    js(&dir.to_string_lossy()),
                    js(&loaded.name),
                    state.map_or("null".into(), |s| js(s.as_str()))
                );
            } else {
                println!(
                    "{who}: installed {} as {} (firmware search directory {}); firmware = {}",
                    l.file.display(),
                    loaded.installed.display(),
                    dir.display(),
                    loaded.name
                );
                if let Some(s) = state {
                    println!("{who}: {s}");
                }
            }
            Ok(EXIT_OK)
        }
    }
}

fn paths(r: &RprocRoots) -> RprocPaths {
    RprocPaths {
        sys: r.sysfs.clone(),
        dev: r.dev.clone(),
        firmware_dir: r.firmware_dir.clone(),
    }
}

fn via(c: ControlArg) -> Control {
    match c {
        ControlArg::Sysfs => Control::Sysfs,
        ControlArg::Cdev => Control::Cdev,
    }
}

fn who(r: &Remoteproc) -> String {
    match r.name() {
        Ok(n) => format!("{} ({n})", r.id()),
        Err(_) => r.id(),
    }
}

/// An rproc error, with the file it is about when there is one.
fn err(e: RprocError) -> CliError {
    let path = match &e {
        RprocError::NoCdev { path }
        | RprocError::NotPermitted { path, .. }
        | RprocError::BadFirmware { path, .. }
        | RprocError::DriverRefused { path, .. }
        | RprocError::Io { path, .. } => Some(path.clone()),
        RprocError::File(f) => Some(f.path().to_path_buf()),
        RprocError::NoFirmwareDir { sys } => Some(sys.clone()),
        _ => None,
    };
    CliError {
        path,
        ..CliError::failed(e.to_string())
    }
}

fn control(o: &RprocControl, cmd: &str, json: bool) -> Result<u8, CliError> {
    let p = paths(&o.roots);
    let r = Remoteproc::open(&p, o.rproc.as_deref()).map_err(err)?;
    let who = who(&r);
    let s = match cmd {
        "start" => r.start(via(o.control), o.timeout),
        "stop" => r.stop(via(o.control), o.timeout),
        _ => r.detach(via(o.control), o.timeout),
    }
    .map_err(err)?;
    let firmware = r.firmware().ok();
    if json {
        println!(
            "{{\"rproc\":{},\"name\":{},\"state\":{},\"firmware\":{}}}",
            js(&r.id()),
            js(&r.name().unwrap_or_default()),
            js(s.as_str()),
            firmware.as_deref().map_or("null".into(), js)
        );
    } else if cmd == "start" {
        println!(
            "{who}: {s} (firmware {})",
            firmware.as_deref().unwrap_or("unreadable")
        );
    } else {
        println!("{who}: {s}");
    }
    Ok(EXIT_OK)
}

/// Lists every remote processor. An attribute that cannot be read is shown as
/// `unreadable` (text) or `null` with the reason under `unreadable` (JSON), and named on
/// stderr; the rest of the list is still printed and the exit status is 0.
fn list(p: &RprocPaths, json: bool) -> Result<u8, CliError> {
    let all = Remoteproc::list(p).map_err(err)?;
    let mut rows = Vec::new();
    for r in &all {
        let attrs = [
            ("name", r.name()),
            ("state", r.state().map(|s| s.as_str().to_string())),
            ("firmware", r.firmware()),
        ];
        if json {
            let mut fields = vec![
                format!("\"index\":{}", r.index()),
                format!("\"id\":{}", js(&r.id())),
            ];
            let mut bad = Vec::new();
            for (k, v) in &attrs {
                match v {
                    Ok(v) => fields.push(format!("{}:{}", js(k), js(v))),
                    Err(e) => {
                        fields.push(format!("{}:null", js(k)));
                        bad.push(format!("{}:{}", js(k), js(&e.to_string())));
                    }
                }
            }
            if !bad.is_empty() {
                fields.push(format!("\"unreadable\":{{{}}}", bad.join(",")));
            }
            rows.push(format!("{{{}}}", fields.join(",")));
        } else {
            let v = |i: usize| match &attrs[i].1 {
                Ok(v) => v.clone(),
                Err(e) => {
                    eprintln!("intercore rproc list: {}: {e}", r.id());
                    "unreadable".to_string()
                }
            };
            println!("{:<13} {:<24} {:<10} {}", r.id(), v(0), v(1), v(2));
        }
    }
    if json {
        println!("[{}]", rows.join(","));
    } else if all.is_empty() {
        println!("no remote processors under {}", p.class_dir().display());
    }
    Ok(EXIT_OK)
}
