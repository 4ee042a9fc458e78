//! `accesses [--json]`: shared-memory accesses per message, counted
//! ([`intercore_bench::accesses`]). Exit 0, 1 when the bench failed, 2 on a usage error.

#![deny(unsafe_code)]

use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let json = match args.as_slice() {
        [] => false,
        [a] if a == "--json" => true,
        _ => {
            eprintln!("accesses: usage: accesses [--json]");
            return ExitCode::from(2);
        }
    };
    let rows = match intercore_bench::accesses::rows() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("accesses: {e}");
            return ExitCode::FAILURE;
        }
    };
    // The uncached-SoC estimate (issue 24.3) from the 64-byte round-trip counts.
    let soc = intercore_bench::accesses::soc_paths(&rows);
    let cost = intercore_bench::soc_model::UNCACHED_ACCESS_NS;
    let text: String = if json {
        let rows = rows.iter().map(|r| format!("{}\n", r.json()));
        let est = intercore_bench::soc_model::summary_json(&soc, cost)
            .into_iter()
            .map(|l| format!("{l}\n"));
        rows.chain(est).collect()
    } else {
        let est: String = intercore_bench::soc_model::summary(&soc, cost)
            .into_iter()
            .map(|l| format!("{l}\n"))
            .collect();
        format!("{}\n{est}", intercore_bench::accesses::table(&rows))
    };
    // A reader that closed stdout early ends the program quietly.
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) => ExitCode::FAILURE,
    }
}
