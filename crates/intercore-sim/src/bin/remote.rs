//! The simulated remote core as a stand-alone program (the `intercore` binary embeds the
//! same entry point as a hidden subcommand).

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(intercore_sim::remote_main(&args));
}
