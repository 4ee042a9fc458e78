//! The one printer: every report goes to stdout as text ([`Display`]) or as one JSON line
//! (serde_json), through [`emit`]; free-form lines through [`line()`] (the `outln!` macro).
//!
//! A reader that closed stdout (`intercore bench --json | head -1`) makes a write fail
//! with [`Closed`], which the command returns at once (`?`) and the binary turns into a
//! quiet exit 1; std's `println!` would panic ("failed printing to stdout", exit 101).
//! SIGPIPE stays ignored, as Rust sets it: a peer that goes away must be an EPIPE error on
//! its socket or pipe, not a signal that kills the process.

use serde::Serialize;
use std::fmt::{self, Display};
use std::io::Write;

/// Stdout could not be written (a closed pipe, a full disk): the command stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Closed;

impl Display for Closed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("stdout is closed")
    }
}

impl std::error::Error for Closed {}

impl From<Closed> for String {
    fn from(c: Closed) -> String {
        c.to_string()
    }
}

/// Writes `args` and a newline to stdout, flushed (so a row shows as it is produced).
pub fn line(args: fmt::Arguments<'_>) -> Result<(), Closed> {
    text(format_args!("{args}\n"))
}

/// Writes `args` to stdout as they are, flushed.
pub fn text(args: fmt::Arguments<'_>) -> Result<(), Closed> {
    let mut o = std::io::stdout().lock();
    o.write_fmt(args)
        .and_then(|()| o.flush())
        .map_err(|_| Closed)
}

/// Writes `v` as one JSON line.
pub fn json<T: Serialize + ?Sized>(v: &T) -> Result<(), Closed> {
    // Serializing our own report types cannot fail (string keys, finite or null numbers).
    let s = serde_json::to_string(v).map_err(|_| Closed)?;
    line(format_args!("{s}"))
}

/// Prints a report: one JSON line with `json`, else its text.
pub fn emit<T: Serialize + Display + ?Sized>(r: &T, json: bool) -> Result<(), Closed> {
    if json {
        self::json(r)
    } else {
        line(format_args!("{r}"))
    }
}

/// Writes `args` to stderr (no newline), dropping a failure: progress and diagnostics are
/// best effort.
pub fn diag(args: fmt::Arguments<'_>) {
    let _ = std::io::stderr().lock().write_fmt(args);
}
