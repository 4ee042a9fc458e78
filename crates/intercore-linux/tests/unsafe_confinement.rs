//! `unsafe` in this crate lives in two modules only: `sys` (the system calls) and `cache`
//! (the EL0 cache-maintenance assembly and the `CacheOps` implementations). The crate root
//! denies `unsafe_code`, and those two modules alone allow it; this test reads every source
//! file and fails on an `unsafe` keyword or an `allow(unsafe_code)` anywhere else (fakes and
//! unit tests included), so a new one cannot slip in under a local `#[allow]`.

use std::path::{Path, PathBuf};

/// Files (relative to `src/`, `/`-separated) where `unsafe` may appear: a folder ends in `/`.
const ALLOWED: &[&str] = &["sys/", "cache.rs"];

/// `src` with comments, string literals and character literals blanked out (newlines kept,
/// so line numbers stay right): what is left is code.
fn code_only(src: &str) -> String {
    let c: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let blank = |out: &mut String, ch: char| out.push(if ch == '\n' { '\n' } else { ' ' });
    let mut i = 0;
    while i < c.len() {
        let at = |k: usize| c.get(i + k).copied().unwrap_or('\0');
        // Line comment.
        if at(0) == '/' && at(1) == '/' {
            while i < c.len() && c[i] != '\n' {
                i += 1;
                out.push(' ');
            }
            continue;
        }
        // Block comment (they nest in Rust).
        if at(0) == '/' && at(1) == '*' {
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    blank(&mut out, c[i]);
                    i += 1;
                }
            }
            continue;
        }
        // Raw strings: r"..", r#".."#, br#".."#.
        let prev_ident = i > 0 && (c[i - 1].is_alphanumeric() || c[i - 1] == '_');
        let raw_at = if !prev_ident && at(0) == 'r' {
            Some(1)
        } else if !prev_ident && at(0) == 'b' && at(1) == 'r' {
            Some(2)
        } else {
            None
        };
        if let Some(skip) = raw_at {
            let mut k = skip;
            while at(k) == '#' {
                k += 1;
            }
            if at(k) == '"' {
                let hashes = k - skip;
                for _ in 0..=k {
                    out.push(' ');
                }
                i += k + 1;
                loop {
                    if i >= c.len() {
                        break;
                    }
                    if c[i] == '"' && (1..=hashes).all(|h| c.get(i + h) == Some(&'#')) {
                        for _ in 0..=hashes {
                            out.push(' ');
                        }
                        i += hashes + 1;
                        break;
                    }
                    blank(&mut out, c[i]);
                    i += 1;
                }
                continue;
            }
        }
        // Strings and byte strings.
        if at(0) == '"' {
            out.push(' ');
            i += 1;
            while i < c.len() && c[i] != '"' {
                if c[i] == '\\' {
                    blank(&mut out, c[i]);
                    i += 1;
                }
                if i < c.len() {
                    blank(&mut out, c[i]);
                    i += 1;
                }
            }
            out.push(' ');
            i += 1;
            continue;
        }
        // Character literals ('x', '\n', '\u{..}'); a lifetime ('a) is code.
        if at(0) == '\'' {
            let end = if at(1) == '\\' {
                (2..16).find(|&k| at(k) == '\'')
            } else if at(2) == '\'' {
                Some(2)
            } else {
                None
            };
            if let Some(end) = end {
                for k in 0..=end {
                    blank(&mut out, at(k));
                }
                i += end + 1;
                continue;
            }
        }
        out.push(c[i]);
        i += 1;
    }
    out
}

/// `(line, identifier)` of every identifier in `code` that is `unsafe` or `unsafe_code`
/// (the latter outside `deny(..)` / `forbid(..)`).
fn offences(code: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (n, line) in code.lines().enumerate() {
        let compact: String = line.chars().filter(|c| !c.is_whitespace()).collect();
        let idents = line
            .split(|c: char| !(c.is_alphanumeric() || c == '_'))
            .filter(|w| !w.is_empty());
        for w in idents {
            let bad = match w {
                "unsafe" => true,
                "unsafe_code" => {
                    !(compact.contains("deny(unsafe_code)")
                        || compact.contains("forbid(unsafe_code)"))
                }
                _ => false,
            };
            if bad {
                found.push((n + 1, line.trim().to_string()));
            }
        }
    }
    found
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rel(p: &Path) -> String {
    let r = p.strip_prefix(src_dir()).unwrap();
    r.components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

#[test]
fn unsafe_only_in_sys_and_cache() {
    let mut files = Vec::new();
    sources(&src_dir(), &mut files);
    files.sort();
    assert!(files.len() > 20, "found only {} source files", files.len());
    let mut bad = Vec::new();
    let mut allowed_with_unsafe = 0;
    for f in &files {
        let r = rel(f);
        let allowed = ALLOWED.iter().any(|a| {
            if a.ends_with('/') {
                r.starts_with(a)
            } else {
                r == *a
            }
        });
        let code = code_only(&std::fs::read_to_string(f).unwrap());
        let found = offences(&code);
        if allowed {
            allowed_with_unsafe += usize::from(!found.is_empty());
        } else {
            bad.extend(found.into_iter().map(|(n, l)| format!("src/{r}:{n}: {l}")));
        }
    }
    assert!(
        bad.is_empty(),
        "`unsafe` or allow(unsafe_code) outside sys/ and cache.rs:\n{}",
        bad.join("\n")
    );
    // The scan sees the unsafe code that is there (so it is not blind).
    assert!(allowed_with_unsafe >= 4, "{allowed_with_unsafe}");
}

#[test]
fn the_root_denies_and_only_sys_and_cache_allow() {
    let read = |p: &str| code_only(&std::fs::read_to_string(src_dir().join(p)).unwrap());
    let compact = |s: String| s.split_whitespace().collect::<String>();
    assert!(compact(read("lib.rs")).contains("#![deny(unsafe_code)]"));
    assert!(compact(read("sys/mod.rs")).contains("#![allow(unsafe_code)]"));
    assert!(compact(read("cache.rs")).contains("#![allow(unsafe_code)]"));
}

/// The scanner itself: code is flagged, the same words in comments, strings and character
/// literals are not, and a lifetime does not hide what follows it.
#[test]
fn scanner_tells_code_from_text() {
    let flagged = |s: &str| !offences(&code_only(s)).is_empty();
    assert!(flagged("fn f() { unsafe { g() } }"));
    assert!(flagged("unsafe impl Send for X {}"));
    assert!(flagged("#[allow(unsafe_code)]\nmod m;"));
    assert!(flagged("#[cfg_attr(test, allow( unsafe_code ))]"));
    assert!(flagged("fn f<'a>(x: &'a u8) { unsafe { g(x) } }"));
    assert!(flagged("let c = '\\''; unsafe { g() }"));
    assert!(flagged("let s = r#\"a\"#; unsafe { g() }"));
    assert!(!flagged("#![deny(unsafe_code)]"));
    assert!(!flagged(
        "// unsafe { g() }\n/* unsafe /* nested */ unsafe */"
    ));
    assert!(!flagged("let s = \"allow_unsafe_interrupts, unsafe\";"));
    assert!(!flagged("let s = r#\"unsafe \"quoted\" \"#;"));
    assert!(!flagged("let s = \"esc \\\" unsafe\";"));
    assert!(!flagged("let not_unsafe = 1; let unsafe_x = 2;"));
}
