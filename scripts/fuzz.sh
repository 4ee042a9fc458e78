#!/usr/bin/env bash
# Builds the cargo-fuzz targets in fuzz/ and runs each one for a fixed time (CI) or a
# fixed number of executions (the FUZZING.md runs), starting from the committed corpus.
#
#   scripts/fuzz.sh                  # every target, FUZZ_SECONDS (default 30) each
#   scripts/fuzz.sh --runs 10000000  # every target, 10 M executions each, final stats
#   scripts/fuzz.sh rings elf        # only these targets
#
# cargo-fuzz is installed once into $HOME/.cache/intercore/cargo-fuzz (outside the clone).
# The build uses the stable toolchain with RUSTC_BOOTSTRAP=1 (cargo-fuzz passes nightly-only
# flags: -Zsanitizer=address and friends). New corpus entries and crash artifacts go to a
# scratch directory, never into the clone; a crash fails the script and names the input.
set -euo pipefail
cd "$(dirname "$0")/.."

runs=""
targets=()
while [ $# -gt 0 ]; do
    case "$1" in
        --runs) runs="$2"; shift 2 ;;
        *) targets+=("$1"); shift ;;
    esac
done
if [ ${#targets[@]} -eq 0 ]; then
    for f in fuzz/fuzz_targets/*.rs; do targets+=("$(basename "$f" .rs)"); done
fi
seconds="${FUZZ_SECONDS:-30}"

root="${INTERCORE_FUZZ_TOOLS:-$HOME/.cache/intercore/cargo-fuzz}"
if [ ! -x "$root/bin/cargo-fuzz" ]; then
    echo "installing cargo-fuzz into $root"
    CARGO_INSTALL_ROOT="$root" cargo install cargo-fuzz --version 0.13.2 --locked
fi
export PATH="$root/bin:$PATH"
if ! command -v c++ >/dev/null 2>&1; then
    echo "fuzz.sh: libFuzzer needs a C++ compiler (g++)" >&2
    exit 1
fi

export RUSTC_BOOTSTRAP=1
cd fuzz
# -O with debug assertions and overflow checks on: the library's debug_asserts are checks.
cargo fuzz build -O -a

scratch="$(mktemp -d "${TMPDIR:-/tmp}/intercore-fuzz.XXXXXX")"
trap 'rm -rf "$scratch"' EXIT
for t in "${targets[@]}"; do
    mkdir -p "$scratch/$t/new" "$scratch/$t/artifacts"
    if [ -n "$runs" ]; then
        limit=(-runs="$runs")
    else
        limit=(-max_total_time="$seconds")
    fi
    echo "=== fuzz $t (${limit[*]})"
    if ! cargo fuzz run -O -a "$t" "$scratch/$t/new" "corpus/$t" -- \
        "${limit[@]}" -print_final_stats=1 -max_len=8192 -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="$scratch/$t/artifacts/" 2>&1 | tee "$scratch/$t/log" \
        | grep -E '^(stat::|==[0-9]+==|INFO: Loaded|Done|.*(panicked|ERROR|SUMMARY))'; then
        :
    fi
    if ls "$scratch/$t/artifacts/"* >/dev/null 2>&1 || ! grep -q '^Done ' "$scratch/$t/log"; then
        echo "fuzz.sh: target $t failed; inputs kept in $scratch/$t/artifacts (log below)" >&2
        tail -n 40 "$scratch/$t/log" >&2
        mkdir -p "${FUZZ_KEEP:-$HOME/.cache/intercore/fuzz-failures}"
        cp -r "$scratch/$t" "${FUZZ_KEEP:-$HOME/.cache/intercore/fuzz-failures}/" || true
        exit 1
    fi
done
echo "fuzz.sh: ${#targets[@]} targets ran without a crash"
