//! The committed header is what cbindgen generates from the tree, and compiles.

use std::path::Path;

#[test]
fn header_is_current() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cfg = cbindgen::Config::from_file(dir.join("cbindgen.toml")).expect("cbindgen.toml");
    let mut out = Vec::new();
    cbindgen::Builder::new()
        .with_crate(dir)
        .with_config(cfg)
        .generate()
        .expect("cbindgen generates the header")
        .write(&mut out);
    let path = dir.join("include/intercore_host.h");
    if std::env::var_os("INTERCORE_BLESS").is_some() {
        std::fs::write(&path, &out).expect("write the header");
    }
    let committed = std::fs::read(&path).unwrap_or_default();
    assert!(
        committed == out,
        "{} is not what cbindgen generates from the tree: regenerate it with \
         INTERCORE_BLESS=1 cargo test -p intercore-ffi-host --test header",
        path.display()
    );
}

/// The header compiles, warning-free, as C11 and as C++17 (`cc`/`c++` on the PATH: a
/// missing compiler fails the test).
#[test]
fn header_compiles_as_c11_and_cxx17() {
    compile_c11_and_cxx17(
        "header",
        "#include \"intercore_host.h\"\nint main(void) { return INTERCORE_HOST_OK; }\n",
    );
}

/// One translation unit includes both roles' headers (the remote role's `intercore.h` of
/// `crates/intercore-ffi` and this one) and uses a data-plane name and a status of each:
/// no name is declared twice, so a program (or a test harness beside firmware code) may
/// include both. Warning-free, as C11 and as C++17.
#[test]
fn both_roles_headers_compile_in_one_translation_unit() {
    compile_c11_and_cxx17(
        "both",
        r#"#include "intercore.h"
#include "intercore_host.h"
int main(void) {
    int32_t (*remote)(struct intercore_dp *, struct intercore_remote *, uint32_t) =
        intercore_dp_flush;
    int32_t (*host)(struct intercore_board *) = intercore_host_dp_flush;
    (void)remote;
    (void)host;
    return INTERCORE_OK + INTERCORE_HOST_OK;
}
"#,
    );
}

/// No `intercore*`/`INTERCORE*` name appears in both roles' headers, even one that would
/// compile twice (a macro redefined with the same value does): each name means one thing.
#[test]
fn no_name_is_in_both_roles_headers() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let host = intercore_names(&dir.join("include/intercore_host.h"));
    let remote = intercore_names(&dir.join("../intercore-ffi/include/intercore.h"));
    assert!(
        host.len() > 40 && remote.len() > 40,
        "too few names read: {} host, {} remote",
        host.len(),
        remote.len()
    );
    let shared: Vec<_> = host.intersection(&remote).collect();
    assert!(
        shared.is_empty(),
        "names in both intercore_host.h and intercore.h: {shared:?}"
    );
}

/// Every identifier of a C header that starts with `intercore`, any case (declared or
/// used: functions, macros, types, struct tags), comments left out.
fn intercore_names(path: &Path) -> std::collections::BTreeSet<String> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut code = String::new();
    let mut rest = text.as_str();
    while !rest.is_empty() {
        let block = rest.find("/*");
        let line = rest.find("//");
        match (block, line) {
            (Some(b), l) if l.is_none_or(|l| b < l) => {
                code.push_str(&rest[..b]);
                let end = rest[b..].find("*/").expect("unterminated comment");
                rest = &rest[b + end + 2..];
            }
            (_, Some(l)) => {
                code.push_str(&rest[..l]);
                rest = rest[l..].find('\n').map_or("", |e| &rest[l + e..]);
            }
            _ => {
                code.push_str(rest);
                rest = "";
            }
        }
    }
    code.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.to_ascii_lowercase().starts_with("intercore"))
        .map(str::to_owned)
        .collect()
}

/// Compiles `main` (a C source, also valid C++) with both crates' include directories,
/// `-Wall -Wextra -Werror -pedantic`, as C11 and as C++17 (`cc`/`c++` on the PATH: a
/// missing compiler fails the test).
fn compile_c11_and_cxx17(what: &str, main: &str) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let src = std::env::temp_dir().join(format!(
        "intercore-ffi-host-{what}-{}.c",
        std::process::id()
    ));
    std::fs::write(&src, main).unwrap();
    for (cc, lang, std) in [("cc", "c", "-std=c11"), ("c++", "c++", "-std=c++17")] {
        let out = std::process::Command::new(cc)
            .args([
                "-x",
                lang,
                std,
                "-Wall",
                "-Wextra",
                "-Werror",
                "-pedantic",
                "-fsyntax-only",
                "-I",
            ])
            .arg(dir.join("include"))
            .arg("-I")
            .arg(dir.join("../intercore-ffi/include"))
            .arg(&src)
            .output()
            .unwrap_or_else(|e| panic!("{cc} (needed to check the header): {e}"));
        assert!(
            out.status.success(),
            "{cc} {std}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let _ = std::fs::remove_file(&src);
}
