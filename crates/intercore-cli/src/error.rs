//! How `intercore` reports an error: `intercore CMD: message` on stderr, or with `--json`
//! exactly one line on stdout, `{"error":{"message":…,"path":…,"option":…}}` (`path` and
//! `option` only when known). The exit status is the same either way. Usage errors (clap's)
//! follow the same rule, with exit 2.

use crate::out::Closed;
use crate::{Cli, EXIT_FAILED};
use serde::Serialize;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// An error a command ends with.
#[derive(Debug, Clone, Serialize)]
pub struct CliError {
    /// What went wrong (for I/O errors, naming the path).
    pub message: String,
    /// The file it is about, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    /// The option it is about, if any (`--messages`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub option: Option<String>,
    /// The exit status.
    #[serde(skip)]
    pub code: u8,
    /// Nothing to print: stdout is closed (its reader went away), so the command ended
    /// quietly.
    #[serde(skip)]
    pub quiet: bool,
}

impl CliError {
    /// A failure (exit 1).
    pub fn failed(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            path: None,
            option: None,
            code: EXIT_FAILED,
            quiet: false,
        }
    }
    /// A failure about `path` (exit 1); the message should name it.
    pub fn at(path: &Path, message: impl Into<String>) -> Self {
        Self {
            path: Some(path.to_path_buf()),
            ..Self::failed(message)
        }
    }
    /// The error's JSON line.
    pub fn json(&self) -> String {
        serde_json::json!({ "error": self }).to_string()
    }
    /// Prints the error for command `cmd` (nothing when [`Self::quiet`]).
    pub fn report(&self, cmd: &str, json: bool) {
        if self.quiet {
            return;
        }
        if json {
            // stdout may be closed too; then there is nobody to tell.
            let _ = crate::out::line(format_args!("{}", self.json()));
        } else {
            diagln!("intercore {cmd}: {}", self.message);
        }
    }
}

impl From<Closed> for CliError {
    fn from(c: Closed) -> Self {
        Self {
            quiet: true,
            ..Self::failed(c.to_string())
        }
    }
}

impl From<intercore_linux::file::FileError> for CliError {
    fn from(e: intercore_linux::file::FileError) -> Self {
        CliError::at(e.path(), e.to_string())
    }
}

/// The subcommand words of `argv` that name a command (`board check`), for the message
/// prefix of a usage error; empty when even the first is unknown.
pub fn command_words(argv: &[OsString]) -> Vec<String> {
    use clap::CommandFactory;
    let mut cmd = Cli::command();
    let mut words = Vec::new();
    for a in argv.iter().skip(1) {
        let Some(a) = a.to_str() else { break };
        if a.starts_with('-') {
            continue;
        }
        let Some(sub) = cmd.find_subcommand(a).cloned() else {
            break;
        };
        words.push(a.to_string());
        cmd = sub;
    }
    words
}

/// A usage error as the rule says: its message (clap's first line, without `error: `) and
/// the option it is about, if clap names one.
pub fn usage_error(e: &clap::Error) -> CliError {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    let option = match e.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(s)) => s.split([' ', '=']).next().map(str::to_string),
        _ => None,
    };
    let message = if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
        "a subcommand is required; see --help".to_string()
    } else {
        let text = e.render().to_string();
        let first = text.lines().next().unwrap_or("").trim();
        first.strip_prefix("error: ").unwrap_or(first).to_string()
    };
    CliError {
        option,
        code: e.exit_code() as u8,
        ..CliError::failed(message)
    }
}

/// Reports a clap error: help and version go to stdout with exit 0; a usage error is
/// `intercore CMD: message` on stderr with a pointer to the help (or, with `--json`, one
/// JSON line on stdout), exit 2.
pub fn clap_error(e: &clap::Error, argv: &[OsString], json: bool) -> ExitCode {
    use clap::error::ErrorKind;
    let code = e.exit_code() as u8;
    let help = matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion)
        || (!json && e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand);
    if help {
        let _ = e.print();
        return ExitCode::from(code);
    }
    let words = command_words(argv).join(" ");
    let err = usage_error(e);
    if json {
        err.report(&words, true);
    } else {
        let cmd = if words.is_empty() {
            "intercore".to_string()
        } else {
            format!("intercore {words}")
        };
        diagln!("{cmd}: {}", err.message);
        diagln!("see `{cmd} --help`");
    }
    ExitCode::from(code)
}
