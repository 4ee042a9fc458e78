//! `intercore`: the command-line front end.
//!
//! * `intercore demo` — the main job: a simulated SoC with the echo firmware in its own
//!   process, 100,000 verified messages of mixed sizes, round-trip percentiles.
//! * `intercore help` — usage.

#![deny(unsafe_code)]

mod bulk;
mod demo;
mod selftest;

use std::process::ExitCode;

/// The hidden subcommand under which this binary hosts the simulated remote core.
pub const SIM_REMOTE: &str = "__sim-remote";

const USAGE: &str = "\
intercore — virtio-rpmsg and zero-copy shared memory between Linux and a remote core

USAGE:
    intercore demo [--json] [--messages N] [--wait MODE] [--remote-wait MODE] [--seed S]
                   [--cache coherent|noncoherent[:SEED:PER_MILLE]] [--bulk-mib N]
        Start the simulated SoC (offload firmware in its own process), open an endpoint
        through the name service and exchange N verified messages of 1..496 bytes
        (default 100000); then stream N MiB (default 256) through the zero-copy data
        plane in 1 MiB buffers, each CRC32C'd by the remote in place and checked.
        --cache noncoherent runs the bulk stage under the coherency sanitizer with random
        eviction. Prints percentiles and GB/s; --json ends with one JSON line.
        MODE: poll | event | adaptive | adaptive:MICROS (default adaptive:50).
    intercore sim selftest [--json]
        Inject each cache-maintenance bug class (missing clean, missing invalidate, dirty
        eviction over peer data) and IOMMU violation (unmapped, read-only) and show the
        sanitizer / IOMMU catch each; then a correct run that must be clean.
    intercore help
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some(SIM_REMOTE) => ExitCode::from(intercore_sim::remote_main(&args[1..]) as u8),
        Some("demo") => demo::main(&args[1..]),
        Some("sim") if args.get(1).map(String::as_str) == Some("selftest") => {
            selftest::main(&args[2..])
        }
        Some("help" | "--help" | "-h") => {
            print!("{USAGE}");
            ExitCode::SUCCESS
        }
        Some(other) => {
            eprintln!("intercore: unknown command {other:?}\n\n{USAGE}");
            ExitCode::from(2)
        }
        None => {
            eprint!("{USAGE}");
            ExitCode::from(2)
        }
    }
}
