//! `intercore board check FILE`: parse and validate a board file (`boards/*.toml`), print
//! what it describes, then what opening it on this machine would do and why it could not
//! (`intercore_board`).

use crate::error::{CliError, js};
use intercore_board::{Board, CheckEnv, Level};
use intercore_cli::{BoardCheck, BoardCommand, EXIT_BOARD_UNOPENABLE, EXIT_OK};

/// Runs `intercore board check`: 0 valid, 1 invalid file, 3 valid but not openable here
/// (`--strict` only).
pub fn main(c: &BoardCommand, json: bool) -> Result<u8, CliError> {
    let BoardCommand::Check(o) = c;
    check(o, json)
}

fn env_of(o: &BoardCheck) -> CheckEnv {
    let mut env = CheckEnv::default();
    if let Some(v) = &o.sysfs {
        env.roots.sys = v.clone();
        env.rproc.sys = v.clone();
    }
    if let Some(v) = &o.dev {
        env.roots.dev = v.clone();
        env.rproc.dev = v.clone();
    }
    if let Some(v) = &o.device_tree {
        env.roots.device_tree = v.clone();
    }
    if let Some(v) = &o.firmware_dir {
        env.rproc.firmware_dir = Some(v.clone());
    }
    if let Some(a) = &o.arch {
        env.host_arch = a.clone();
    }
    env
}

fn check(o: &BoardCheck, json: bool) -> Result<u8, CliError> {
    let env = env_of(o);
    let board = Board::from_file(&o.file).map_err(|e| CliError::at(&o.file, e.to_string()))?;
    let findings = board.check(&env);
    let count = |l: Level| findings.iter().filter(|f| f.level == l).count();
    let (errors, warnings) = (count(Level::Error), count(Level::Warn));
    if json {
        let rows: Vec<String> = findings
            .iter()
            .map(|f| {
                format!(
                    "{{\"level\":{},\"topic\":{},\"message\":{}}}",
                    js(f.level.as_str()),
                    js(f.topic),
                    js(&f.message)
                )
            })
            .collect();
        println!(
            "{{\"file\":{},\"valid\":true,\"summary\":{},\"host_arch\":{},\"findings\":[{}],\"errors\":{errors},\"warnings\":{warnings},\"openable\":{}}}",
            js(&o.file.to_string_lossy()),
            js(&board.to_string()),
            js(&env.host_arch),
            rows.join(","),
            errors == 0
        );
    } else {
        println!("{}: valid", o.file.display());
        println!("{board}");
        println!();
        println!("on this machine ({}):", env.host_arch);
        for f in &findings {
            println!("{f}");
        }
        if errors == 0 {
            println!("{warnings} warning(s); nothing stops this machine from opening the board");
        } else {
            println!(
                "{errors} error(s), {warnings} warning(s): this machine cannot open the board as configured"
            );
        }
    }
    Ok(if errors > 0 && o.strict {
        EXIT_BOARD_UNOPENABLE
    } else {
        EXIT_OK
    })
}
