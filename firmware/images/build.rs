//! Picks the linker script for the target core.
//!
//! The scripts are copied into `OUT_DIR` and searched there, not in the source tree: the
//! images' target directory is a cache shared by every checkout on the machine
//! (`scripts/test-baremetal.sh`), and cargo does not rerun a build script whose inputs are
//! unchanged when the same sources sit at another path, so a search path into the checkout
//! that last ran this script would outlive that checkout.

use std::path::PathBuf;

fn main() {
    let target = std::env::var("TARGET").unwrap_or_default();
    let script = match target.as_str() {
        "armv7r-none-eabihf" => "r5f.ld",
        "thumbv7em-none-eabihf" => "m4f.ld",
        // Hosted builds (e.g. `cargo check` without --target) link nothing of ours.
        _ => return,
    };
    let src =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it")).join("link");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets it"));
    for name in ["common.ld", "r5f.ld", "m4f.ld"] {
        std::fs::copy(src.join(name), out.join(name))
            .unwrap_or_else(|e| panic!("copying link/{name} into OUT_DIR: {e}"));
    }
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rustc-link-arg=-T{script}");
    println!("cargo:rerun-if-changed=link");
    println!("cargo:rerun-if-changed=build.rs");
}
