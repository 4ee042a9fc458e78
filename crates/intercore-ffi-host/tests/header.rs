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
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let src = std::env::temp_dir().join(format!(
        "intercore-ffi-host-header-{}.c",
        std::process::id()
    ));
    std::fs::write(
        &src,
        "#include \"intercore_host.h\"\nint main(void) { return INTERCORE_OK; }\n",
    )
    .unwrap();
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
