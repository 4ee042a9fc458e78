//! Test support shared by the kernel-header checks of several crates (included with
//! `#[path]`): compiles a C program against the installed headers with the system C
//! compiler, runs it, and reads the `key=value` lines it prints.

use std::collections::HashMap;
use std::process::Command;

/// Compiles and runs `program`; returns what it printed as `key → value`.
pub fn c_values(name: &str, program: &str) -> HashMap<String, u64> {
    let dir = std::env::temp_dir().join(format!("intercore-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join(format!("{name}.c"));
    let exe = dir.join(name);
    std::fs::write(&src, program).unwrap();
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let out = Command::new(&cc)
        .arg("-o")
        .arg(&exe)
        .arg(&src)
        .output()
        .expect("a C compiler (cc) is needed for this test");
    assert!(
        out.status.success(),
        "compiling against the kernel headers failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run = Command::new(&exe).output().unwrap();
    assert!(run.status.success());
    let _ = std::fs::remove_dir_all(&dir);
    String::from_utf8(run.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap();
            (k.to_string(), v.parse().unwrap())
        })
        .collect()
}
