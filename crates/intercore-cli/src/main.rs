//! `intercore`: the command-line front end.
//!
//! * `intercore demo` — the main job: a simulated SoC with the echo firmware in its own
//!   process, 100,000 verified messages of mixed sizes, round-trip percentiles.
//! * `intercore help` — usage.

#![deny(unsafe_code)]

mod bench;
mod board;
mod bulk;
mod demo;
mod rproc;
mod rsc;
mod selftest;
mod vhost;

use std::process::ExitCode;

/// The hidden subcommand under which this binary hosts the simulated remote core.
pub const SIM_REMOTE: &str = "__sim-remote";

const USAGE: &str = "\
intercore — virtio-rpmsg and zero-copy shared memory between Linux and a remote core

USAGE:
    intercore demo [--json] [--messages N] [--wait MODE] [--remote-wait MODE] [--seed S]
                   [--cache coherent|noncoherent[:SEED:PER_MILLE]] [--bulk-mib N]
                   [--layout standard|ti-k3]
        Start the simulated SoC (offload firmware in its own process), open an endpoint
        through the name service and exchange N verified messages of 1..496 bytes
        (default 100000); then stream N MiB (default 256) through the zero-copy data
        plane in 1 MiB buffers, each CRC32C'd by the remote in place and checked.
        --cache noncoherent runs the bulk stage under the coherency sanitizer with random
        eviction. --layout ti-k3 lays the shared memory out as on TI K3 (table in the
        firmware's region, vrings placed by the host, no buffer carveout, firmware first).
        Prints percentiles and GB/s; --json ends with one JSON line.
        MODE: poll | event | adaptive | adaptive:MICROS (default adaptive:50).
    intercore bench [rtt] [throughput] [bulk] [soak] [--duration SECS] [--samples N]
                    [--json] [--plot FILE.svg]
        Measure intercore side by side with the machine's floor (a cache line bounced
        between two processes; the same with eventfd wake-ups), a Unix socket and a pipe,
        in one run: round trips (1/64/496 B; poll, event, adaptive), batched one-way
        throughput, bulk GB/s (4 KiB..4 MiB, coherent and non-coherent) against one write
        pass, and a soak. Prints ratios to the baselines; --json one object per row and a
        summary; --plot an SVG. Default: every suite (a few minutes).
    intercore sim selftest [--json]
        Inject each cache-maintenance bug class (missing clean, missing invalidate, dirty
        eviction over peer data) and IOMMU violation (unmapped, read-only) and show the
        sanitizer / IOMMU catch each; then a correct run that must be clean.
    intercore rsc FILE [--json]
        Print the remoteproc resource table of an ELF firmware (its .resource_table
        section: carveouts, trace buffers, vdevs with features, status and vrings), as
        the kernel would read it; a malformed file is an error naming the offset (exit 1).
        This binary carries the offload firmware's table: intercore rsc $(which intercore).
    intercore rproc list [--json]
    intercore rproc start|stop|detach [--rproc NAME|N] [--control sysfs|cdev] [--timeout S]
    intercore rproc load FILE [--name NAME] [--start] [--rproc NAME|N]
        Remote processors under /sys/class/remoteproc: list them; start, stop or detach
        one (through sysfs or /dev/remoteprocN), waiting for the state; install a checked
        ELF firmware where the kernel looks (firmware_class.path, else /lib/firmware) and
        select it. Refused with the reason when the state does not allow it (the kernel
        changes firmware only while offline). --sysfs DIR, --dev DIR, --firmware-dir DIR
        point at other roots (a test tree).
    intercore board check FILE [--strict] [--arch ARCH]
        Read a board file (boards/*.toml: remote processor and firmware, transport,
        data-plane memory, device-address mapping, cache mode, rpmsg parameters), print
        what it describes, then what opening it here would open and why it cannot (no
        such remote processor, reserved-memory node, device node or permission), mapping
        nothing. An invalid file is an error naming each key (exit 1); --strict also
        exits 3 when this machine cannot open a valid board. --sysfs, --dev,
        --device-tree, --firmware-dir DIR point at other roots (a test tree).
    intercore vhost-user --socket PATH [--firmware echo|sink] [--verbose]
        Serve the remote role as a vhost-user virtio-rpmsg device (id 7, two queues,
        name service) on a Unix socket, for one front end until it disconnects: a
        user-mode Linux guest (virtio_uml.device=PATH:7) binds it with its own
        virtio_rpmsg_bus. echo announces rpmsg-raw (/dev/rpmsgN in the guest) and
        echoes; sink announces intercore-sink and counts. Exit 1 if the firmware failed.
    intercore kernel-echo [--ctrl rpmsg_ctrl0] [--service rpmsg-raw] [--messages N]
        Through the kernel's /dev/rpmsg_ctrlN (the kernel transport), find an echo
        service, open an endpoint to it, exchange N verified messages (default 100) and
        destroy the endpoint. For a guest talking to intercore vhost-user. Exit 1 on any
        mismatch.
    intercore help
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some(SIM_REMOTE) => ExitCode::from(intercore_sim::remote_main(&args[1..]) as u8),
        Some("demo") => demo::main(&args[1..]),
        Some("rsc") => rsc::main(&args[1..]),
        Some("rproc") => rproc::main(&args[1..]),
        Some("board") => board::main(&args[1..]),
        Some("bench") => bench::main(&args[1..]),
        Some("vhost-user") => vhost::main(&args[1..]),
        Some("kernel-echo") => vhost::kernel_echo_main(&args[1..]),
        Some(bench::PEER) => match bench::peer_main(&args[1..]) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("intercore bench peer: {e}");
                ExitCode::FAILURE
            }
        },
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
