//! Picks the linker script for the target core.

fn main() {
    let target = std::env::var("TARGET").unwrap_or_default();
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let script = match target.as_str() {
        "armv7r-none-eabihf" => "r5f.ld",
        "thumbv7em-none-eabihf" => "m4f.ld",
        // Hosted builds (e.g. `cargo check` without --target) link nothing of ours.
        _ => return,
    };
    println!("cargo:rustc-link-search={dir}/link");
    println!("cargo:rustc-link-arg=-T{script}");
    println!("cargo:rerun-if-changed=link");
    println!("cargo:rerun-if-changed=build.rs");
}
