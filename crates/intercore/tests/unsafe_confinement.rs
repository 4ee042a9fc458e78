//! `unsafe` in the whole workspace (every crate, its tests and examples, `firmware/`,
//! `fuzz/`) lives only in the homes docs/ARCHITECTURE.md names ("Where `unsafe` lives"),
//! listed below with the reason for each. Each crate root denies `unsafe_code` and a home
//! allows it for itself; this test reads every Rust file under the workspace root (except
//! build output) and fails on an `unsafe` keyword or an `allow(unsafe_code)` anywhere else,
//! so a new one cannot slip in under a local `#[allow]`. It also fails when a named home no
//! longer has any, so the list cannot outlive what it describes.

use std::path::{Path, PathBuf};

/// Where `unsafe` may appear (paths from the workspace root, `/`-separated; a folder ends
/// in `/`), and why.
const HOMES: &[(&str, &str)] = &[
    // The core crate.
    (
        "crates/intercore/src/platform/shm.rs",
        "the SharedMemory contract and its bounds-checked accessors: the only pointers and slices into shared memory",
    ),
    (
        "crates/intercore/src/platform/cache.rs",
        "declares the CacheOps contract (the CPU view pointer) and implements it for coherent memory",
    ),
    (
        "crates/intercore/src/rpmsg/rsc_table.rs",
        "a firmware's resource table: a writable static the host writes back into",
    ),
    (
        "crates/intercore/src/testing/",
        "test-utils memory and cache models implementing the unsafe platform traits",
    ),
    // The Linux crate.
    (
        "crates/intercore-linux/src/sys/",
        "every system call, wrapped in a safe function; SharedMemory for the crate's mappings",
    ),
    (
        "crates/intercore-linux/src/cache.rs",
        "the EL0 cache-maintenance assembly and the CacheOps implementations",
    ),
    // The simulator's cache models.
    (
        "crates/intercore-sim/src/coherency.rs",
        "the non-coherent cache model: CacheOps over a private cache image",
    ),
    (
        "crates/intercore-sim/src/anycache.rs",
        "CacheOps for the choice of cache model (forwarding, no unsafe blocks)",
    ),
    (
        "crates/intercore-sim/src/faults.rs",
        "CacheOps for the fault-injecting wrapper (forwarding, no unsafe blocks)",
    ),
    // Firmware.
    (
        "firmware/images/src/main.rs",
        "the bare-metal images: entry point (no_mangle), resource-table section, allocator",
    ),
    (
        "firmware/images/src/bsp/",
        "the boards' support: registers, vector tables, interrupt controllers",
    ),
    (
        "firmware/offload/src/lib.rs",
        "the resource table's link_section in the target build",
    ),
    (
        "crates/intercore-ffi/src/",
        "the C ABI: extern \"C\" functions on raw pointers from C, the caller's storage, SharedMemory over the firmware's window",
    ),
    (
        "crates/intercore-ffi-host/src/",
        "the host role's C ABI: extern \"C\" functions reading C strings, caller buffers and out-pointers",
    ),
    (
        "crates/intercore-ffi-host/tests/ffi.rs",
        "the host role's C ABI called as C calls it: raw pointers, C strings, buffers the library hands out",
    ),
    // Tests whose models implement the unsafe platform traits.
    (
        "crates/intercore/tests/conformance.rs",
        "deliberately broken SharedMemory/CacheOps implementations the suite must catch",
    ),
    (
        "crates/intercore/tests/device_memory.rs",
        "SharedMemory for a region that faults on unaligned access",
    ),
    (
        "crates/intercore/tests/loom.rs",
        "SharedMemory over loom's atomics",
    ),
    (
        "crates/intercore/tests/virtio_queue_interop.rs",
        "SharedMemory over vm-memory's guest memory",
    ),
    (
        "crates/intercore-sim/tests/conformance.rs",
        "a deliberately broken CacheOps implementation the suite must catch",
    ),
    (
        "crates/intercore-cli/tests/soak.rs",
        "signals a child process (kill(2))",
    ),
];

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

/// Every `.rs` file under `dir`, skipping build output (`target/`) and hidden folders.
fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_name().unwrap_or_default().to_string_lossy();
        if p.is_dir() {
            if name != "target" && !name.starts_with('.') {
                sources(&p, out);
            }
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn rel(p: &Path) -> String {
    let r = p.strip_prefix(root()).unwrap();
    r.components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

fn home_of(r: &str) -> Option<&'static str> {
    HOMES.iter().map(|h| h.0).find(|a| {
        if a.ends_with('/') {
            r.starts_with(a)
        } else {
            r == *a
        }
    })
}

/// `path:line: code` of every `unsafe` outside the homes, and the homes that had some.
fn scan(root: &Path) -> (Vec<String>, Vec<&'static str>, usize) {
    let mut files = Vec::new();
    sources(root, &mut files);
    files.sort();
    let mut bad = Vec::new();
    let mut used = Vec::new();
    for f in &files {
        let r = rel(f);
        let code = code_only(&std::fs::read_to_string(f).unwrap());
        let found = offences(&code);
        match home_of(&r) {
            Some(h) => {
                if !found.is_empty() && !used.contains(&h) {
                    used.push(h);
                }
            }
            None => bad.extend(found.into_iter().map(|(n, l)| format!("{r}:{n}: {l}"))),
        }
    }
    (bad, used, files.len())
}

#[test]
fn unsafe_only_in_the_named_homes() {
    let (bad, used, files) = scan(&root());
    // Every crate of the workspace, the firmware images and the fuzz targets were read.
    assert!(files > 200, "found only {files} source files");
    assert!(
        bad.is_empty(),
        "`unsafe` or allow(unsafe_code) outside the homes named in docs/ARCHITECTURE.md \
         (\"Where `unsafe` lives\"); move it behind a safe function in one of them \
         (intercore-linux's `sys` for system calls) or name a new home there and here:\n{}",
        bad.join("\n")
    );
    let stale: Vec<_> = HOMES
        .iter()
        .map(|h| h.0)
        .filter(|h| !used.contains(h))
        .collect();
    assert!(
        stale.is_empty(),
        "homes with no `unsafe` left (remove them here and from docs/ARCHITECTURE.md): {stale:?}"
    );
}

/// docs/ARCHITECTURE.md names every home.
#[test]
fn architecture_names_every_home() {
    let doc = std::fs::read_to_string(root().join("docs/ARCHITECTURE.md")).unwrap();
    let section = doc
        .split("## Where `unsafe` lives")
        .nth(1)
        .expect("docs/ARCHITECTURE.md has a section \"## Where `unsafe` lives\"");
    let section = section.split("\n## ").next().unwrap_or(section);
    for (home, _) in HOMES {
        assert!(
            section.contains(&format!("`{home}`")),
            "ARCHITECTURE.md does not name `{home}`"
        );
    }
}

/// The library crates deny `unsafe_code` at their roots (a home then allows it for itself).
#[test]
fn crate_roots_deny_unsafe_code() {
    let compact = |p: &str| {
        code_only(&std::fs::read_to_string(root().join(p)).unwrap())
            .split_whitespace()
            .collect::<String>()
    };
    for root_file in [
        "crates/intercore/src/lib.rs",
        "crates/intercore-wire/src/lib.rs",
        "crates/intercore-linux/src/lib.rs",
        "crates/intercore-vhost/src/lib.rs",
        "firmware/offload/src/lib.rs",
    ] {
        assert!(
            compact(root_file).contains("#![deny(unsafe_code)]"),
            "{root_file} does not deny unsafe_code"
        );
    }
    assert!(compact("crates/intercore-linux/src/sys/mod.rs").contains("#![allow(unsafe_code)]"));
    assert!(compact("crates/intercore-linux/src/cache.rs").contains("#![allow(unsafe_code)]"));
}

/// A new `unsafe` outside the homes is caught: a file written into a temporary copy of the
/// layout with one block is reported, with its path and line.
#[test]
fn a_new_unsafe_elsewhere_is_caught() {
    let dir = std::env::temp_dir().join(format!("intercore-unsafe-scan-{}", std::process::id()));
    let src = dir.join("crates/intercore-vhost/src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("lib.rs"), "fn f() {}\nfn g() { unsafe { h() } }\n").unwrap();
    let mut files = Vec::new();
    sources(&dir, &mut files);
    let found: Vec<_> = files
        .iter()
        .flat_map(|f| offences(&code_only(&std::fs::read_to_string(f).unwrap())))
        .collect();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].0, 2);
    assert_eq!(home_of("crates/intercore-vhost/src/lib.rs"), None);
    assert_eq!(
        home_of("crates/intercore-linux/src/sys/fd.rs"),
        Some("crates/intercore-linux/src/sys/")
    );
}

/// Where a library crate may print (`println!`, `eprintln!`, `print!`, `eprint!`): the
/// binaries and what only tests run. Everywhere else a library reports through the `log`
/// facade and its binary chooses where that goes.
const MAY_PRINT: &[&str] = &[
    "crates/intercore-cli/",
    "crates/intercore-bench/",
    "crates/intercore-interop/src/main.rs",
    "crates/intercore-sim/src/bin/",
    // `remote_main`: the simulated core's process entry point, called by the binaries.
    "crates/intercore-sim/src/remote.rs",
    "firmware/images/",
    "fuzz/",
];

/// `code` up to its unit-test module (`#[cfg(test)]` then `mod`): what the library ships.
fn shipped(code: &str) -> &str {
    let mut at = 0;
    let mut lines = code.split_inclusive('\n').peekable();
    while let Some(l) = lines.next() {
        if l.trim() == "#[cfg(test)]"
            && lines
                .peek()
                .is_some_and(|n| n.trim_start().starts_with("mod "))
        {
            return &code[..at];
        }
        at += l.len();
    }
    code
}

/// `(line, code)` of every printing macro call in `code`.
fn prints(code: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (n, line) in code.lines().enumerate() {
        let words = line.split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '!'));
        if words
            .into_iter()
            .any(|w| matches!(w, "println!" | "eprintln!" | "print!" | "eprint!"))
        {
            found.push((n + 1, line.trim().to_string()));
        }
    }
    found
}

#[test]
fn libraries_log_instead_of_printing() {
    let mut files = Vec::new();
    sources(&root(), &mut files);
    let mut bad = Vec::new();
    for f in &files {
        let r = rel(f);
        let test_only = ["/tests/", "/benches/", "/examples/"]
            .iter()
            .any(|d| r.contains(d));
        if test_only || MAY_PRINT.iter().any(|a| r.starts_with(a)) {
            continue;
        }
        let code = code_only(&std::fs::read_to_string(f).unwrap());
        bad.extend(
            prints(shipped(&code))
                .into_iter()
                .map(|(n, l)| format!("{r}:{n}: {l}")),
        );
    }
    assert!(
        bad.is_empty(),
        "a library prints; report through the `log` facade instead (`log::warn!` …):\n{}",
        bad.join("\n")
    );
    assert_eq!(prints("eprintln!(\"x\"); log::info!(\"y\");").len(), 1);
    assert_eq!(
        shipped("fn a() {}\n#[cfg(test)]\nmod tests {\n println!();\n}\n"),
        "fn a() {}\n"
    );
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
