//! Why a board file was refused: every problem, each naming its key, the value found and
//! what is allowed.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// One problem with a board file: the key, the value found (as TOML), and what is allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Dotted key (`memory.heap`).
    pub key: String,
    /// The value as written (`"arm64-el0"`, `0x1000`), when there is one.
    pub value: Option<String>,
    /// What is wrong and what is allowed.
    pub message: String,
    /// 1-based line in the file, when known.
    pub line: Option<usize>,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(line) = self.line {
            write!(f, "line {line}: ")?;
        }
        match &self.value {
            Some(v) => write!(f, "{} = {v}: {}", self.key, self.message),
            None => write!(f, "{}: {}", self.key, self.message),
        }
    }
}

/// Why a board file was refused.
#[derive(Debug)]
pub enum BoardError {
    /// The file could not be read.
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// Not valid TOML, an unknown key, or a value of the wrong type.
    Syntax {
        /// The file, if read from one.
        path: Option<PathBuf>,
        /// The problem.
        problem: Problem,
    },
    /// Valid TOML that does not describe a usable board.
    Invalid {
        /// The file, if read from one.
        path: Option<PathBuf>,
        /// Every problem found.
        problems: Vec<Problem>,
    },
}

impl BoardError {
    /// Every problem (one for a syntax error, none for an I/O error).
    pub fn problems(&self) -> Vec<&Problem> {
        match self {
            BoardError::Io { .. } => Vec::new(),
            BoardError::Syntax { problem, .. } => vec![problem],
            BoardError::Invalid { problems, .. } => problems.iter().collect(),
        }
    }
}

impl fmt::Display for BoardError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = |p: &Option<PathBuf>| match p {
            Some(p) => p.display().to_string(),
            None => "board configuration".to_string(),
        };
        match self {
            BoardError::Io { path, source } => {
                write!(f, "cannot read board file {}: {source}", path.display())
            }
            BoardError::Syntax { path, problem } => write!(f, "{}: {problem}", name(path)),
            BoardError::Invalid { path, problems } => {
                write!(f, "{}: {} problem(s)", name(path), problems.len())?;
                for p in problems {
                    write!(f, "\n  {p}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for BoardError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BoardError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
