//! `intercore`: the command-line front end. The commands and the command line (clap) are
//! the library half of this crate, `intercore_cli`; this file parses, dispatches and
//! reports errors (as `intercore CMD: message` on stderr, or with `--json` as one JSON
//! line on stdout).

#![deny(unsafe_code)]

use clap::Parser;
use intercore_cli::error::{self, CliError};
use intercore_cli::{Cli, Command, RprocCommand, SIM_REMOTE, SimCommand, bench, owner};
use std::ffi::OsString;
use std::process::ExitCode;

fn main() -> ExitCode {
    let argv: Vec<OsString> = std::env::args_os().collect();
    let rest = || -> Vec<String> {
        argv[2..]
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    };
    match argv.get(1).and_then(|a| a.to_str()) {
        Some(SIM_REMOTE) => {
            return ExitCode::from(intercore_sim::remote_main(
                &rest(),
                &intercore_cli::firmwares::sim(),
            ) as u8);
        }
        Some(bench::PEER) => {
            return match bench::peer_main(&rest()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("intercore bench peer: {e}");
                    ExitCode::FAILURE
                }
            };
        }
        _ => {}
    }
    // Whether an error must be JSON is known before clap has parsed anything.
    let json = argv
        .iter()
        .skip(1)
        .take_while(|a| *a != "--")
        .any(|a| a == "--json");
    let cli = match Cli::try_parse_from(&argv) {
        Ok(c) => c,
        Err(e) => return error::clap_error(&e, &argv, json),
    };
    let (name, r) = run(&cli);
    match r {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            e.report(name, cli.json);
            ExitCode::from(e.code)
        }
    }
}

/// Runs the command: its name (for error messages) and its result.
fn run(cli: &Cli) -> (&'static str, Result<u8, CliError>) {
    let json = cli.json;
    match &cli.command {
        Command::Demo(a) => ("demo", intercore_cli::demo::main(a, json)),
        Command::Bench(a) => (
            "bench",
            match &a.board {
                Some(b) => owner::bench(a, b, json),
                None => bench::main(a, json),
            },
        ),
        Command::Up(a) => ("up", owner::up(a, json)),
        Command::Down(a) => ("down", owner::down(a, json)),
        Command::Ping(a) => ("ping", owner::ping(a, json)),
        Command::Echo(a) => ("echo", owner::echo(a, json)),
        Command::Sim(SimCommand::Selftest) => ("sim selftest", intercore_cli::selftest::main(json)),
        Command::Rsc(a) => ("rsc", intercore_cli::rsc::main(a, json)),
        Command::Inspect(a) => (
            "inspect",
            intercore_cli::inspect::main(a, json).map_err(CliError::failed),
        ),
        Command::Rproc(c) => (
            match c {
                RprocCommand::List { .. } => "rproc list",
                RprocCommand::Start(_) => "rproc start",
                RprocCommand::Stop(_) => "rproc stop",
                RprocCommand::Detach(_) => "rproc detach",
                RprocCommand::Load(_) => "rproc load",
            },
            intercore_cli::rproc::main(c, json),
        ),
        Command::Board(c) => ("board check", intercore_cli::board::main(c, json)),
        Command::VhostUser(a) => ("vhost-user", intercore_cli::vhost::main(a, json)),
        Command::KernelEcho(a) => (
            "kernel-echo",
            intercore_cli::vhost::kernel_echo_main(a, json),
        ),
        Command::KernelBulk(a) => (
            "kernel-bulk",
            intercore_cli::vhost::kernel_bulk_main(a, json),
        ),
        Command::KernelScale(a) => ("kernel-scale", intercore_cli::kernel_scale::main(a, json)),
    }
}
