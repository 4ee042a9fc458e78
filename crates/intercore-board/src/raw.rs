//! The file as written: serde types that mirror the TOML (every key optional that the
//! file may omit, keywords still strings so that validation can report every bad one),
//! and where in the text a syntax error is.

use crate::error::Problem;
use serde::Deserialize;

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBoard {
    pub(crate) board: RawBoardInfo,
    // The tables of a single-core file; in a file with `[[core]]` tables, the ones a core
    // that omits a table inherits (whole tables, not key by key).
    pub(crate) remoteproc: Option<RawRproc>,
    pub(crate) transport: Option<RawTransport>,
    pub(crate) memory: Option<RawMemory>,
    pub(crate) mapping: Option<RawMapping>,
    pub(crate) cache: Option<RawCache>,
    pub(crate) rpmsg: Option<RawRpmsg>,
    pub(crate) pool: Option<RawPool>,
    pub(crate) vdev: Option<RawVdev>,
    /// `[[core]]`: one per remote core (absent: the file describes one core).
    pub(crate) core: Option<Vec<RawCore>>,
}

impl RawBoard {
    /// The top-level tables (everything but `[board]` and `[[core]]`).
    pub(crate) fn tables(&self) -> RawTables {
        RawTables {
            remoteproc: self.remoteproc.clone(),
            transport: self.transport.clone(),
            memory: self.memory.clone(),
            mapping: self.mapping.clone(),
            cache: self.cache.clone(),
            rpmsg: self.rpmsg.clone(),
            pool: self.pool.clone(),
            vdev: self.vdev.clone(),
        }
    }
}

/// The tables that describe one core's link.
#[derive(Clone, Default)]
pub(crate) struct RawTables {
    pub(crate) remoteproc: Option<RawRproc>,
    pub(crate) transport: Option<RawTransport>,
    pub(crate) memory: Option<RawMemory>,
    pub(crate) mapping: Option<RawMapping>,
    pub(crate) cache: Option<RawCache>,
    pub(crate) rpmsg: Option<RawRpmsg>,
    pub(crate) pool: Option<RawPool>,
    pub(crate) vdev: Option<RawVdev>,
}

/// One `[[core]]` table: its name and its own tables.
#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCore {
    pub(crate) name: String,
    pub(crate) description: Option<String>,
    pub(crate) remoteproc: Option<RawRproc>,
    pub(crate) transport: Option<RawTransport>,
    pub(crate) memory: Option<RawMemory>,
    pub(crate) mapping: Option<RawMapping>,
    pub(crate) cache: Option<RawCache>,
    pub(crate) rpmsg: Option<RawRpmsg>,
    pub(crate) pool: Option<RawPool>,
    pub(crate) vdev: Option<RawVdev>,
}

impl RawCore {
    /// This core's tables, each of them its own or else the file's top-level one.
    pub(crate) fn tables(&self, top: &RawTables) -> RawTables {
        RawTables {
            remoteproc: self.remoteproc.clone().or_else(|| top.remoteproc.clone()),
            transport: self.transport.clone().or_else(|| top.transport.clone()),
            memory: self.memory.clone().or_else(|| top.memory.clone()),
            mapping: self.mapping.clone().or_else(|| top.mapping.clone()),
            cache: self.cache.clone().or_else(|| top.cache.clone()),
            rpmsg: self.rpmsg.clone().or_else(|| top.rpmsg.clone()),
            pool: self.pool.clone().or_else(|| top.pool.clone()),
            vdev: self.vdev.clone().or_else(|| top.vdev.clone()),
        }
    }
}

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawVdev {
    pub(crate) pool_base: Option<u64>,
    pub(crate) pool_size: Option<u64>,
    pub(crate) buffers_base: Option<u64>,
    pub(crate) buffers_size: Option<u64>,
}

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBoardInfo {
    pub(crate) name: String,
    pub(crate) description: Option<String>,
    pub(crate) arch: Option<String>,
}

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRproc {
    pub(crate) name: Option<String>,
    pub(crate) index: Option<u32>,
    pub(crate) firmware: Option<String>,
    pub(crate) firmware_file: Option<String>,
    pub(crate) control: Option<String>,
    pub(crate) boot: Option<String>,
}

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTransport {
    pub(crate) kind: String,
    pub(crate) firmware: Option<String>,
    pub(crate) da_base: Option<u64>,
    pub(crate) event_idx: Option<bool>,
    pub(crate) layout: Option<String>,
    pub(crate) ctrl: Option<String>,
    pub(crate) region: Option<String>,
    pub(crate) base: Option<u64>,
    pub(crate) size: Option<u64>,
    pub(crate) rsc_offset: Option<u64>,
    pub(crate) doorbell: Option<String>,
    pub(crate) core: Option<String>,
    pub(crate) fw_dir: Option<String>,
    pub(crate) image: Option<String>,
    pub(crate) ready_timeout_ms: Option<u64>,
    pub(crate) vring_offset: Option<u64>,
    pub(crate) uio_device: Option<String>,
    pub(crate) mailbox: Option<String>,
    pub(crate) mbox_map: Option<u32>,
    pub(crate) mbox_tx: Option<u32>,
    pub(crate) mbox_rx: Option<u32>,
    pub(crate) mbox_user: Option<u32>,
    pub(crate) ipi_regs_map: Option<u32>,
    pub(crate) ipi_buf_map: Option<u32>,
    pub(crate) ipi_req_offset: Option<u32>,
    pub(crate) ipi_remote: Option<u32>,
}

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMemory {
    pub(crate) source: String,
    pub(crate) size: Option<u64>,
    pub(crate) access: Option<String>,
    pub(crate) reserved_memory: Option<String>,
    pub(crate) base: Option<u64>,
    pub(crate) uio_device: Option<String>,
    pub(crate) uio_map: Option<u32>,
    pub(crate) uio_map_name: Option<String>,
    pub(crate) heap: Option<String>,
    pub(crate) device_address: Option<String>,
    pub(crate) device: Option<String>,
}

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMapping {
    pub(crate) kind: String,
    pub(crate) offset: Option<i64>,
    pub(crate) iova: Option<u64>,
    pub(crate) group: Option<u32>,
}

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCache {
    pub(crate) mode: String,
    pub(crate) io_coherent: Option<bool>,
    pub(crate) seed: Option<u64>,
    pub(crate) per_mille: Option<u32>,
}

#[derive(Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRpmsg {
    pub(crate) buffers: Option<u32>,
    pub(crate) buffer_size: Option<u32>,
    pub(crate) wait: Option<String>,
    pub(crate) timeout_ms: Option<u64>,
    pub(crate) service: Option<String>,
}

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPool {
    pub(crate) classes: Vec<[u64; 2]>,
    pub(crate) align: Option<u64>,
}

/// Most structural characters a board file may have outside strings and comments: `[`,
/// `{` (tables, arrays), `,` (elements), `.` (dotted keys, decimals) and `=` (keys). The
/// shipped single-core board files have 23 to 35 (a `[[core]]` file more, far below the bound); toml's parser keeps a node for each (a 900 KB file
/// of `[[t]]` headers took 45 MB and more to reject), so the work is bounded before it runs.
pub const MAX_STRUCTURE: usize = 4096;
/// Deepest nesting of arrays and inline tables (the shipped files nest 2 deep).
pub const MAX_NESTING: usize = 16;

/// Counts the structure of `text` before the parser sees it ([`MAX_STRUCTURE`],
/// [`MAX_NESTING`]): one pass over the bytes, skipping comments and strings (basic,
/// literal and multi-line), no allocation. Unterminated strings and other syntax errors are
/// left to the parser.
pub(crate) fn prescan(text: &str) -> Result<(), Problem> {
    let b = text.as_bytes();
    let (mut i, mut line, mut depth, mut structure) = (0usize, 1usize, 0usize, 0usize);
    let refuse = |line: usize, message: String| Problem {
        key: "(file)".into(),
        value: None,
        message,
        line: Some(line),
    };
    while i < b.len() {
        let c = b[i];
        match c {
            b'\n' => line += 1,
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'"' | b'\'' => {
                let delim: &[u8] = match (c, b[i..].starts_with(&[c, c, c])) {
                    (b'"', true) => b"\"\"\"",
                    (b'"', false) => b"\"",
                    (_, true) => b"\'\'\'",
                    _ => b"\'",
                };
                i += delim.len();
                while i < b.len() {
                    if b[i..].starts_with(delim) {
                        i += delim.len();
                        break;
                    }
                    match b[i] {
                        b'\n' if delim.len() == 1 => break,
                        b'\n' => line += 1,
                        b'\\' if c == b'"' => i += 1,
                        _ => {}
                    }
                    i += 1;
                }
                continue;
            }
            b'[' | b'{' => {
                depth += 1;
                structure += 1;
                if depth > MAX_NESTING {
                    return Err(refuse(
                        line,
                        format!(
                            "arrays or tables nested more than {MAX_NESTING} deep; a board file nests 2 deep"
                        ),
                    ));
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            b',' | b'.' | b'=' => structure += 1,
            _ => {}
        }
        if structure > MAX_STRUCTURE {
            return Err(refuse(
                line,
                format!(
                    "more than {MAX_STRUCTURE} tables, arrays, elements and keys by this line; a board file has a few dozen (refused before parsing)"
                ),
            ));
        }
        i += 1;
    }
    Ok(())
}

/// 1-based line of byte offset `at`.
fn line_of(text: &str, at: usize) -> usize {
    text[..at.min(text.len())].matches('\n').count() + 1
}

/// The `[table]` header in force at byte offset `at` (the header on that line counts).
fn table_at(text: &str, at: usize) -> Option<String> {
    let end = text[at.min(text.len())..]
        .find('\n')
        .map_or(text.len(), |i| at + i);
    text[..end].lines().rev().find_map(|l| {
        let t = l.trim();
        let inner = t.strip_prefix('[')?.trim_start_matches('[');
        let name = inner.split(']').next()?.trim();
        (!name.is_empty()).then(|| name.to_string())
    })
}

/// The key on the line of byte offset `at` (`key = value`), if that line has one.
fn key_on_line(text: &str, at: usize) -> Option<String> {
    let at = at.min(text.len());
    let start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let line = text[start..].lines().next()?;
    let (k, _) = line.split_once('=')?;
    let k = k.trim().trim_matches('"');
    (!k.is_empty() && !k.starts_with('[') && !k.starts_with('#')).then(|| k.to_string())
}

/// Turns toml's error into a [`Problem`] that names the dotted key: serde's messages
/// (`unknown field \`x\`, expected one of ...`, `missing field \`x\``, `invalid type: ...`)
/// name only the last component, so the table is recovered from the text around the span.
pub(crate) fn syntax_problem(text: &str, e: &toml::de::Error) -> Problem {
    let msg = e.message().trim().to_string();
    let at = e.span().map(|s| s.start);
    let table = at.and_then(|a| table_at(text, a));
    let join = |k: &str| match &table {
        Some(t) if !k.contains('.') => format!("{t}.{k}"),
        _ => k.to_string(),
    };
    let backticked = |prefix: &str| -> Option<String> {
        let rest = msg.strip_prefix(prefix)?;
        let rest = rest.strip_prefix('`')?;
        Some(rest[..rest.find('`')?].to_string())
    };
    let line = at.map(|a| line_of(text, a));
    if let Some(field) = backticked("unknown field ") {
        let allowed = msg
            .split_once(", expected ")
            .map(|(_, a)| a.replace('`', "\""))
            .unwrap_or_else(|| "nothing here".into());
        return Problem {
            key: join(&field),
            value: None,
            message: format!("unknown key; expected {allowed}"),
            line,
        };
    }
    if let Some(field) = backticked("missing field ") {
        // The span covers the table that lacks the key; for a missing top-level table it is
        // empty at 0 (or the whole document).
        let whole = e
            .span()
            .is_none_or(|s| s.start == 0 && (s.end == 0 || s.end >= text.trim_end().len()));
        return Problem {
            key: if whole { field } else { join(&field) },
            value: None,
            message: "missing (required)".into(),
            line: if whole { None } else { line },
        };
    }
    let key = at
        .and_then(|a| key_on_line(text, a))
        .map(|k| join(&k))
        .or(table)
        .unwrap_or_else(|| "(file)".into());
    Problem {
        key,
        value: None,
        message: msg,
        line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// toml's errors name only the last key component; the table is recovered from the
    /// header in force at the error's position, and the key from the line.
    #[test]
    fn table_and_key_recovery() {
        let text = "[board]\nname = \"x\"\n\n[memory]\nsource = 5\n";
        let at = text.find("5").unwrap();
        assert_eq!(table_at(text, at).as_deref(), Some("memory"));
        assert_eq!(key_on_line(text, at).as_deref(), Some("source"));
        assert_eq!(line_of(text, at), 5);
        let hdr = text.find("[memory]").unwrap();
        assert_eq!(table_at(text, hdr).as_deref(), Some("memory"));
        assert_eq!(key_on_line(text, hdr), None);
    }
}
