//! `intercore rproc list|start|stop|detach|load`: remoteproc control through sysfs (or
//! `/dev/remoteprocN`), as `Documentation/ABI/testing/sysfs-class-remoteproc` describes it.

use intercore_linux::remoteproc::{Control, Remoteproc, RprocPaths, firmware_dir};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

const USAGE: &str = "\
usage: intercore rproc list [--json]
       intercore rproc start|stop|detach [--rproc NAME|N] [--control sysfs|cdev] [--timeout SECS]
       intercore rproc load FILE [--name NAME] [--start] [--rproc NAME|N]
   roots (for a fake tree): [--sysfs DIR] [--dev DIR] [--firmware-dir DIR]";

struct Opts {
    cmd: String,
    file: Option<PathBuf>,
    rproc: Option<String>,
    name: Option<String>,
    start: bool,
    json: bool,
    control: Control,
    timeout: Duration,
    paths: RprocPaths,
}

fn parse(args: &[String]) -> Result<Opts, String> {
    let mut it = args.iter();
    let cmd = it.next().ok_or("which command?")?.clone();
    if !matches!(cmd.as_str(), "list" | "start" | "stop" | "detach" | "load") {
        return Err(format!("unknown command {cmd:?}"));
    }
    let mut o = Opts {
        cmd,
        file: None,
        rproc: None,
        name: None,
        start: false,
        json: false,
        control: Control::Sysfs,
        timeout: Duration::from_secs(10),
        paths: RprocPaths::default(),
    };
    while let Some(a) = it.next() {
        let mut val = |k: &str| it.next().cloned().ok_or(format!("{k} needs a value"));
        match a.as_str() {
            "--rproc" => o.rproc = Some(val(a)?),
            "--name" => o.name = Some(val(a)?),
            "--sysfs" => o.paths.sys = val(a)?.into(),
            "--dev" => o.paths.dev = val(a)?.into(),
            "--firmware-dir" => o.paths.firmware_dir = Some(val(a)?.into()),
            "--control" => {
                o.control = match val(a)?.as_str() {
                    "sysfs" => Control::Sysfs,
                    "cdev" => Control::Cdev,
                    v => return Err(format!("--control {v:?}: sysfs or cdev")),
                }
            }
            "--timeout" => {
                let v = val(a)?;
                let secs: f64 = v
                    .parse()
                    .ok()
                    .filter(|s: &f64| s.is_finite() && *s >= 0.0)
                    .ok_or(format!("--timeout {v:?} is not a number of seconds"))?;
                o.timeout = Duration::from_secs_f64(secs);
            }
            "--start" if o.cmd == "load" => o.start = true,
            "--json" if o.cmd == "list" => o.json = true,
            s if !s.starts_with('-') && o.cmd == "load" && o.file.is_none() => {
                o.file = Some(s.into())
            }
            s => return Err(format!("unexpected argument {s:?}")),
        }
    }
    if o.cmd == "load" && o.file.is_none() {
        return Err("load needs a FILE".into());
    }
    Ok(o)
}

/// Runs the subcommand: 0 done, 1 refused or failed (the message says why and what to
/// do), 2 usage.
pub fn main(args: &[String]) -> ExitCode {
    let o = match parse(args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("intercore rproc: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&o) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("intercore rproc {}: {e}", o.cmd);
            ExitCode::from(1)
        }
    }
}

fn js(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => o.push_str(&format!("\\u{:04x}", c as u32)),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

fn run(o: &Opts) -> Result<(), Box<dyn std::error::Error>> {
    if o.cmd == "list" {
        let all = Remoteproc::list(&o.paths)?;
        if o.json {
            let mut rows = Vec::new();
            for r in &all {
                let i = r.info()?;
                rows.push(format!(
                    "{{\"index\":{},\"id\":{},\"name\":{},\"state\":{},\"firmware\":{}}}",
                    i.index,
                    js(&r.id()),
                    js(&i.name),
                    js(i.state.as_str()),
                    js(&i.firmware)
                ));
            }
            println!("[{}]", rows.join(","));
        } else if all.is_empty() {
            println!(
                "no remote processors under {}",
                o.paths.class_dir().display()
            );
        } else {
            for r in &all {
                let i = r.info()?;
                println!(
                    "{:<13} {:<24} {:<10} {}",
                    r.id(),
                    i.name,
                    i.state.as_str(),
                    i.firmware
                );
            }
        }
        return Ok(());
    }
    let r = Remoteproc::open(&o.paths, o.rproc.as_deref())?;
    let who = format!("{} ({})", r.id(), r.name()?);
    match o.cmd.as_str() {
        "start" => {
            let s = r.start(o.control, o.timeout)?;
            println!("{who}: {s} (firmware {})", r.firmware()?);
        }
        "stop" => {
            let s = r.stop(o.control, o.timeout)?;
            println!("{who}: {s}");
        }
        "detach" => {
            let s = r.detach(o.control, o.timeout)?;
            println!("{who}: {s}");
        }
        "load" => {
            let file = o.file.as_ref().expect("checked in parse");
            let loaded = r.load(file, o.name.as_deref())?;
            println!(
                "{who}: installed {} as {} (firmware search directory {}); firmware = {}",
                file.display(),
                loaded.installed.display(),
                firmware_dir(&o.paths).display(),
                loaded.name
            );
            if o.start {
                let s = r.start(o.control, o.timeout)?;
                println!("{who}: {s}");
            }
        }
        _ => unreachable!("checked in parse"),
    }
    Ok(())
}
