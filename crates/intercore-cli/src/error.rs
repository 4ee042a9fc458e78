//! How `intercore` reports an error: `intercore CMD: message` on stderr, or with `--json`
//! exactly one line on stdout, `{"error":{"message":…,"path":…,"option":…}}` (`path` and
//! `option` only when known). The exit status is the same either way.

use intercore_cli::EXIT_FAILED;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// An error a command ends with.
#[derive(Debug)]
pub struct CliError {
    /// What went wrong (for I/O errors, naming the path).
    pub message: String,
    /// The file it is about, if any.
    pub path: Option<PathBuf>,
    /// The option it is about, if any (`--messages`).
    pub option: Option<String>,
    /// The exit status.
    pub code: u8,
}

impl CliError {
    /// A failure (exit 1).
    pub fn failed(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            path: None,
            option: None,
            code: EXIT_FAILED,
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
        let mut o = format!("{{\"error\":{{\"message\":{}", js(&self.message));
        if let Some(p) = &self.path {
            let _ = write!(o, ",\"path\":{}", js(&p.to_string_lossy()));
        }
        if let Some(opt) = &self.option {
            let _ = write!(o, ",\"option\":{}", js(opt));
        }
        o.push_str("}}");
        o
    }
    /// Prints the error for command `cmd`.
    pub fn report(&self, cmd: &str, json: bool) {
        if json {
            println!("{}", self.json());
        } else {
            eprintln!("intercore {cmd}: {}", self.message);
        }
    }
}

impl From<intercore_linux::file::FileError> for CliError {
    fn from(e: intercore_linux::file::FileError) -> Self {
        CliError::at(e.path(), e.to_string())
    }
}

/// Reports a clap error: help and version go to stdout with exit 0; a usage error goes to
/// stderr (or, with `--json`, as one JSON line to stdout) with exit 2.
pub fn clap_error(e: clap::Error, json: bool) -> ExitCode {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    let code = e.exit_code() as u8;
    let is_error = !matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion);
    if !json || !is_error {
        let _ = e.print();
        return ExitCode::from(code);
    }
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
    let err = CliError {
        message,
        path: None,
        option,
        code,
    };
    println!("{}", err.json());
    ExitCode::from(code)
}

/// A JSON string literal.
pub fn js(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}
