//! Board files shared by the board crate's test binaries.

/// A minimal real board (kernel transport, a carveout by node name) that validates; tests
/// break one thing in it at a time.
pub const REAL: &str = r#"
[board]
name = "t"
arch = "aarch64"
[remoteproc]
name = "78000000.r5f"
firmware = "am64-main-r5f0_0-fw"
[transport]
kind = "kernel"
[memory]
source = "carveout"
reserved_memory = "intercore-pool@a6000000"
[cache]
mode = "coherent"
"#;
