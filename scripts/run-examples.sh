#!/usr/bin/env bash
# Runs every example of every workspace crate (`cargo run -p CRATE --example NAME`), found
# from `cargo metadata`, so a new example is run without editing this script. An example
# that needs something this machine lacks must say so itself and exit non-zero; none is
# skipped here.
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t runs < <(cargo metadata --no-deps --format-version 1 | python3 -c '
import json, sys
for p in json.load(sys.stdin)["packages"]:
    for t in p["targets"]:
        if "example" in t["kind"]:
            print(p["name"], t["name"])
')
if [ "${#runs[@]}" -eq 0 ]; then
    echo "run-examples: NO EXAMPLES FOUND (cargo metadata listed none)" >&2
    exit 1
fi
failed=0
for r in "${runs[@]}"; do
    set -- $r
    printf '\n--- example %s (%s)\n' "$2" "$1"
    if ! timeout 300 cargo run --quiet --release -p "$1" --example "$2"; then
        echo "run-examples: example $2 of $1 FAILED" >&2
        failed=1
    fi
done
exit "$failed"
