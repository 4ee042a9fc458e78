//! `intercore board check FILE...`: parse and validate board files (`boards/*.toml`),
//! print what each describes, then what opening it on this machine would do and why it
//! could not (`intercore_board`). One verdict per file; the exit status is the worst.

use crate::error::CliError;
use crate::{BoardCheck, BoardCommand, EXIT_BOARD_UNOPENABLE, EXIT_OK};
use intercore_board::{BoardFile, CheckEnv, Level};
use serde::Serialize;
use std::fmt;
use std::path::Path;

/// Runs `intercore board check`: 0 valid, 1 an invalid file, 3 valid but not openable here
/// (`--strict` only); with several files, the worst of them (1 over 3 over 0).
pub fn main(c: &BoardCommand, json: bool) -> Result<u8, CliError> {
    let BoardCommand::Check(o) = c;
    let env = env_of(o);
    // A single file keeps the plain error rule: its error is the command's.
    if let [file] = o.files.as_slice() {
        let r = check(file, &env)?;
        crate::out::emit(&r, json)?;
        return Ok(r.status(o.strict));
    }
    let mut worst = EXIT_OK;
    for (i, file) in o.files.iter().enumerate() {
        if !json && i > 0 {
            outln!()?;
        }
        let code = match check(file, &env) {
            Ok(r) => {
                crate::out::emit(&r, json)?;
                r.status(o.strict)
            }
            Err(e) => {
                if json {
                    crate::out::line(format_args!("{}", e.json()))?;
                } else {
                    outln!("{}: invalid", file.display())?;
                    e.report("board check", false);
                }
                e.code
            }
        };
        worst = worse(worst, code);
    }
    Ok(worst)
}

/// The worse of two exit statuses: an invalid file (1) over an unopenable board (3) over
/// a valid one (0).
fn worse(a: u8, b: u8) -> u8 {
    let rank = |c: u8| match c {
        EXIT_OK => 0,
        EXIT_BOARD_UNOPENABLE => 1,
        _ => 2,
    };
    if rank(b) > rank(a) { b } else { a }
}

/// What `board check` found in one file.
#[derive(Debug, Clone, Serialize)]
pub struct BoardReport {
    /// The file, as given.
    pub file: String,
    /// Always true (an invalid file is an error, not a report).
    pub valid: bool,
    /// What the board describes, as text (core by core for a file with several).
    pub summary: String,
    /// The cores the file names (`core0` for a file without `[[core]]` tables).
    pub cores: Vec<String>,
    /// The host architecture checked for.
    pub host_arch: String,
    /// What opening it here would meet.
    pub findings: Vec<FindingJson>,
    /// Findings that stop this machine from opening it.
    pub errors: usize,
    /// Findings that do not.
    pub warnings: usize,
    /// Whether nothing stops this machine from opening it.
    pub openable: bool,
    #[serde(skip)]
    lines: Vec<String>,
}

/// One finding of [`BoardReport`].
#[derive(Debug, Clone, Serialize)]
pub struct FindingJson {
    /// The core it is about, in a file with several.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub core: Option<String>,
    /// `error`, `warn` or `info`.
    pub level: &'static str,
    /// What it is about.
    pub topic: &'static str,
    /// What was found.
    pub message: String,
}

impl BoardReport {
    /// The exit status of this verdict.
    pub fn status(&self, strict: bool) -> u8 {
        if self.errors > 0 && strict {
            EXIT_BOARD_UNOPENABLE
        } else {
            EXIT_OK
        }
    }
}

impl fmt::Display for BoardReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}: valid", self.file)?;
        writeln!(f, "{}", self.summary)?;
        writeln!(f)?;
        writeln!(f, "on this machine ({}):", self.host_arch)?;
        for l in &self.lines {
            writeln!(f, "{l}")?;
        }
        if self.errors == 0 {
            write!(
                f,
                "{} warning(s); nothing stops this machine from opening the board",
                self.warnings
            )
        } else {
            write!(
                f,
                "{} error(s), {} warning(s): this machine cannot open the board as configured",
                self.errors, self.warnings
            )
        }
    }
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

/// Checks one board file in `env`: its report, or the error that makes it invalid
/// (exit 1). A file with several cores is checked core by core, each finding naming its
/// core (the cores against each other are validation's: an overlap is an invalid file).
pub fn check(file: &Path, env: &CheckEnv) -> Result<BoardReport, CliError> {
    let f = BoardFile::from_file(file).map_err(|e| CliError::at(file, e.to_string()))?;
    let multi = f.is_multi();
    let mut findings = Vec::new();
    let mut lines = Vec::new();
    let mut summary = Vec::new();
    for c in &f.cores {
        let core = multi.then(|| c.name.clone());
        if multi {
            summary.push(format!("core {}:\n{}", c.name, c.board));
            lines.push(format!("core {}:", c.name));
        } else {
            summary.push(c.board.to_string());
        }
        for x in c.board.check(env) {
            lines.push(if multi {
                format!("  {x}")
            } else {
                x.to_string()
            });
            findings.push(FindingJson {
                core: core.clone(),
                level: x.level.as_str(),
                topic: x.topic,
                message: x.message.clone(),
            });
        }
    }
    // The cores against each other, as this machine locates their memory.
    for (core, x) in f.check_between(env) {
        lines.push(format!("cores: {x}"));
        findings.push(FindingJson {
            core: Some(core),
            level: x.level.as_str(),
            topic: x.topic,
            message: x.message.clone(),
        });
    }
    let count = |l: Level| findings.iter().filter(|f| f.level == l.as_str()).count();
    let (errors, warnings) = (count(Level::Error), count(Level::Warn));
    Ok(BoardReport {
        file: file.to_string_lossy().into_owned(),
        valid: true,
        summary: if multi {
            format!(
                "board: {} ({} cores: {})\n\n{}",
                f.name,
                f.cores.len(),
                f.core_names(),
                summary.join("\n\n")
            )
        } else {
            summary.join("")
        },
        cores: f.cores.iter().map(|c| c.name.clone()).collect(),
        host_arch: env.host_arch.clone(),
        findings,
        errors,
        warnings,
        openable: errors == 0,
        lines,
    })
}
