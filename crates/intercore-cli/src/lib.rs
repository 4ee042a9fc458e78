//! `intercore`, the command, as a library: the command line ([`Cli`], clap derive types,
//! re-exported from `cli`), and each command as a function returning a typed report
//! (`Serialize`, `Display`) that [`out::emit`] prints as text or JSON. The binary
//! (`src/main.rs`) parses, dispatches and reports errors ([`error::CliError`]); tests call
//! the command functions directly.
//!
//! Conventions every command follows are those of [`cli`]'s documentation: exit status
//! 0/1/2 (+ command-specific codes), `--json` results on stdout, an error as one JSON line.

#![deny(unsafe_code)]
#![warn(clippy::too_many_lines)]

/// `outln!(...)`: one line on stdout through [`out::line`]; `Err(Closed)` once stdout is
/// gone (use it with `?`).
macro_rules! outln {
    () => {
        $crate::out::line(format_args!(""))
    };
    ($($t:tt)*) => {
        $crate::out::line(format_args!($($t)*))
    };
}

/// `diagln!(...)`: one line on stderr through [`out::diag`] (best effort).
macro_rules! diagln {
    ($($t:tt)*) => {
        $crate::out::diag(format_args!("{}\n", format_args!($($t)*)))
    };
}

/// `diag!(...)`: text on stderr through [`out::diag`] (best effort; progress lines).
macro_rules! diag {
    ($($t:tt)*) => {
        $crate::out::diag(format_args!($($t)*))
    };
}

pub mod cli;
pub use cli::*;

pub mod bench;
pub mod board;
pub mod control;
pub mod demo;
pub mod error;
pub mod firmwares;
pub mod inspect;
pub mod kernel_scale;
pub mod out;
pub mod owner;
pub mod rproc;
pub mod rsc;
pub mod selftest;
pub mod vhost;
pub mod workload;

use std::path::PathBuf;
use std::sync::OnceLock;

/// The hidden subcommand under which this binary hosts the simulated remote core. Like
/// [`bench::PEER`], it is internal (the binary runs itself with it) and bypasses clap.
pub const SIM_REMOTE: &str = "__sim-remote";

static PROGRAM: OnceLock<PathBuf> = OnceLock::new();

/// Names the `intercore` binary the commands run as the simulated remote core and as the
/// bench's baseline peers (default: this process's own executable). A test calling the
/// command functions sets it to `env!("CARGO_BIN_EXE_intercore")`; the first call wins.
pub fn set_program(path: impl Into<PathBuf>) {
    let _ = PROGRAM.set(path.into());
}

/// The `intercore` binary (see [`set_program`]).
pub fn program() -> std::io::Result<PathBuf> {
    match PROGRAM.get() {
        Some(p) => Ok(p.clone()),
        None => std::env::current_exe(),
    }
}

/// The program hosting the simulated remote core: [`program`] run as [`SIM_REMOTE`].
pub fn sim_remote() -> std::io::Result<intercore_sim::RemoteProgram> {
    Ok(intercore_sim::RemoteProgram {
        program: program()?,
        args: vec![SIM_REMOTE.to_string()],
    })
}
