//! `intercore`: the command-line front end. The command line itself (clap) is in the
//! library half of this crate, `intercore_cli` (`src/cli.rs`); this file dispatches and
//! reports errors (as text on stderr, or with `--json` as one JSON line on stdout).

#![deny(unsafe_code)]

// `print!`/`println!` for every module of this binary (textual scope: defined before the
// modules): a reader that closed stdout (`intercore bench --json | head -1`) ends the
// program quietly with exit status 1, where std's macros panic ("failed printing to
// stdout", exit 101). SIGPIPE stays ignored, as Rust sets it: a peer that goes away must
// be an EPIPE error on its socket or pipe, not a signal that kills the process.
macro_rules! println {
    () => {
        $crate::write_stdout(format_args!("\n"))
    };
    ($($t:tt)*) => {
        $crate::write_stdout(format_args!("{}\n", format_args!($($t)*)))
    };
}
macro_rules! print {
    ($($t:tt)*) => {
        $crate::write_stdout(format_args!($($t)*))
    };
}

// The same for stderr, where a write that fails is dropped: diagnostics are best effort.
macro_rules! eprintln {
    ($($t:tt)*) => {
        $crate::write_stderr(format_args!("{}\n", format_args!($($t)*)))
    };
}
macro_rules! eprint {
    ($($t:tt)*) => {
        $crate::write_stderr(format_args!($($t)*))
    };
}

/// Writes to stderr, ignoring failure (a closed pipe must not turn into a panic).
pub fn write_stderr(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let _ = std::io::stderr().lock().write_fmt(args);
}

/// Writes to stdout; exits with status 1 if stdout cannot be written (closed pipe, full
/// disk).
pub fn write_stdout(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    if std::io::stdout().lock().write_fmt(args).is_err() {
        std::process::exit(intercore_cli::EXIT_FAILED.into());
    }
}

mod bench;
mod board;
mod bulk;
mod demo;
mod error;
mod firmwares;
mod link;
mod rproc;
mod rsc;
mod selftest;
mod vhost;

use clap::Parser;
use error::CliError;
use intercore_cli::{Cli, Command, RprocCommand, SimCommand};
use std::ffi::OsString;
use std::process::ExitCode;

/// The hidden subcommand under which this binary hosts the simulated remote core. Like
/// `bench::PEER`, it is internal (this binary runs itself with it) and bypasses clap.
pub const SIM_REMOTE: &str = "__sim-remote";

fn main() -> ExitCode {
    let argv: Vec<OsString> = std::env::args_os().collect();
    match argv.get(1).and_then(|a| a.to_str()) {
        Some(SIM_REMOTE) => {
            let rest: Vec<String> = argv[2..]
                .iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect();
            return ExitCode::from(intercore_sim::remote_main(&rest, &firmwares::sim()) as u8);
        }
        Some(bench::PEER) => {
            let rest: Vec<String> = argv[2..]
                .iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect();
            return match bench::peer_main(&rest) {
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
        Err(e) => return error::clap_error(e, json),
    };
    let json = cli.json;
    let (name, r): (&str, Result<u8, CliError>) = match &cli.command {
        Command::Demo(a) => ("demo", demo::main(a, json)),
        Command::Bench(a) => (
            "bench",
            match &a.board {
                Some(b) => link::bench(a, b, json),
                None => bench::main(a, json),
            },
        ),
        Command::Up(a) => ("up", link::up(a, json)),
        Command::Down(a) => ("down", link::down(a, json)),
        Command::Ping(a) => ("ping", link::ping(a, json)),
        Command::Echo(a) => ("echo", link::echo(a, json)),
        Command::Sim(SimCommand::Selftest) => ("sim selftest", selftest::main(json)),
        Command::Rsc(a) => ("rsc", rsc::main(a, json)),
        Command::Rproc(c) => (
            match c {
                RprocCommand::List { .. } => "rproc list",
                RprocCommand::Start(_) => "rproc start",
                RprocCommand::Stop(_) => "rproc stop",
                RprocCommand::Detach(_) => "rproc detach",
                RprocCommand::Load(_) => "rproc load",
            },
            rproc::main(c, json),
        ),
        Command::Board(c) => ("board check", board::main(c, json)),
        Command::VhostUser(a) => ("vhost-user", vhost::main(a, json)),
        Command::KernelEcho(a) => ("kernel-echo", vhost::kernel_echo_main(a, json)),
        Command::KernelBulk(a) => ("kernel-bulk", vhost::kernel_bulk_main(a, json)),
    };
    match r {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            e.report(name, json);
            ExitCode::from(e.code)
        }
    }
}
