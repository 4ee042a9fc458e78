//! `intercore rproc list|start|stop|detach|load`: remoteproc control through sysfs (or
//! `/dev/remoteprocN`), as `Documentation/ABI/testing/sysfs-class-remoteproc` describes it.

use crate::error::CliError;
use crate::{ControlArg, EXIT_OK, RprocCommand, RprocControl, RprocRoots};
use intercore_board::CoreIsa;
use intercore_linux::file::{FIRMWARE_MAX, read_regular};
use intercore_linux::remoteproc::{Control, Remoteproc, RprocError, RprocPaths, firmware_dir};
use serde_json::{Map, Value, json};

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
                crate::out::json(&json!({
                    "rproc": r.id(),
                    "name": r.name().unwrap_or_default(),
                    "file": l.file.to_string_lossy(),
                    "installed": loaded.installed.to_string_lossy(),
                    "firmware_dir": dir.to_string_lossy(),
                    "firmware": loaded.name,
                    "state": state.map(|s| s.as_str().to_string()),
                }))?;
            } else {
                outln!(
                    "{who}: installed {} as {} (firmware search directory {}); firmware = {}",
                    l.file.display(),
                    loaded.installed.display(),
                    dir.display(),
                    loaded.name
                )?;
                if let Some(s) = state {
                    outln!("{who}: {s}")?;
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
        crate::out::json(&json!({
            "rproc": r.id(),
            "name": r.name().unwrap_or_default(),
            "state": s.as_str(),
            "firmware": firmware,
        }))?;
    } else if cmd == "start" {
        outln!(
            "{who}: {s} (firmware {})",
            firmware.as_deref().unwrap_or("unreadable")
        )?;
    } else {
        outln!("{who}: {s}")?;
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
            let mut o = Map::new();
            o.insert("index".into(), json!(r.index()));
            o.insert("id".into(), json!(r.id()));
            let mut bad = Map::new();
            for (k, v) in &attrs {
                match v {
                    Ok(v) => o.insert((*k).into(), json!(v)),
                    Err(e) => {
                        bad.insert((*k).into(), json!(e.to_string()));
                        o.insert((*k).into(), Value::Null)
                    }
                };
            }
            if !bad.is_empty() {
                o.insert("unreadable".into(), Value::Object(bad));
            }
            rows.push(Value::Object(o));
        } else {
            let v = |i: usize| match &attrs[i].1 {
                Ok(v) => v.clone(),
                Err(e) => {
                    diagln!("intercore rproc list: {}: {e}", r.id());
                    "unreadable".to_string()
                }
            };
            outln!("{:<13} {:<24} {:<10} {}", r.id(), v(0), v(1), v(2))?;
        }
    }
    if json {
        crate::out::json(&rows)?;
    } else if all.is_empty() {
        outln!("no remote processors under {}", p.class_dir().display())?;
    }
    Ok(EXIT_OK)
}
