//! `intercore board check FILE`: parse and validate a board file (`boards/*.toml`), print
//! what it describes, then what opening it on this machine would do and why it could not
//! (`intercore_linux::board`).

use intercore_linux::board::{Board, CheckEnv, Level};
use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "\
usage: intercore board check FILE [--strict]
   roots (for a fake tree): [--sysfs DIR] [--dev DIR] [--device-tree DIR] [--firmware-dir DIR]
   [--arch ARCH]  check as if the host were ARCH (aarch64, x86_64)
exit status: 0 valid, 1 invalid file, 2 usage, 3 valid but this machine cannot open it (--strict)";

struct Opts {
    file: PathBuf,
    strict: bool,
    env: CheckEnv,
}

fn parse(args: &[String]) -> Result<Opts, String> {
    let mut it = args.iter();
    match it.next().map(String::as_str) {
        Some("check") => {}
        Some(other) => return Err(format!("unknown command {other:?}")),
        None => return Err("which command?".into()),
    }
    let mut file = None;
    let mut strict = false;
    let mut env = CheckEnv::default();
    while let Some(a) = it.next() {
        let mut val = |k: &str| it.next().cloned().ok_or(format!("{k} needs a value"));
        match a.as_str() {
            "--strict" => strict = true,
            "--sysfs" => {
                let v = PathBuf::from(val(a)?);
                env.roots.sys = v.clone();
                env.rproc.sys = v;
            }
            "--dev" => {
                let v = PathBuf::from(val(a)?);
                env.roots.dev = v.clone();
                env.rproc.dev = v;
            }
            "--device-tree" => env.roots.device_tree = val(a)?.into(),
            "--firmware-dir" => env.rproc.firmware_dir = Some(val(a)?.into()),
            "--arch" => env.host_arch = val(a)?,
            s if !s.starts_with('-') && file.is_none() => file = Some(PathBuf::from(s)),
            s => return Err(format!("unexpected argument {s:?}")),
        }
    }
    let file = file.ok_or("check needs a FILE")?;
    Ok(Opts { file, strict, env })
}

/// Runs `intercore board ARGS`.
pub fn main(args: &[String]) -> ExitCode {
    let o = match parse(args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("intercore board: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let board = match Board::from_file(&o.file) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("intercore board: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("{}: valid", o.file.display());
    println!("{board}");
    println!();
    println!("on this machine ({}):", o.env.host_arch);
    let findings = board.check(&o.env);
    for f in &findings {
        println!("{f}");
    }
    let count = |l: Level| findings.iter().filter(|f| f.level == l).count();
    let (errors, warnings) = (count(Level::Error), count(Level::Warn));
    if errors == 0 {
        println!("{warnings} warning(s); nothing stops this machine from opening the board");
        ExitCode::SUCCESS
    } else {
        println!(
            "{errors} error(s), {warnings} warning(s): this machine cannot open the board as configured"
        );
        if o.strict {
            ExitCode::from(3)
        } else {
            ExitCode::SUCCESS
        }
    }
}
