#!/usr/bin/env bash
# Runs every example of every workspace crate (`cargo run -p CRATE --example NAME`), found
# from `cargo metadata`, so a new example is run without editing this script. An example
# that needs something this machine lacks must say so itself and exit non-zero; none is
# skipped here. An example's `required-features` are enabled for its run.
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t runs < <(cargo metadata --no-deps --format-version 1 | python3 -c '
import json, sys
for p in json.load(sys.stdin)["packages"]:
    for t in p["targets"]:
        if "example" in t["kind"]:
            print(p["name"], t["name"], ",".join(t.get("required-features", [])) or "-")
')
if [ "${#runs[@]}" -eq 0 ]; then
    echo "run-examples: NO EXAMPLES FOUND (cargo metadata listed none)" >&2
    exit 1
fi
failed=0
for r in "${runs[@]}"; do
    set -- $r
    features=()
    [ "$3" = "-" ] || features=(--features "$3")
    printf '\n--- example %s (%s%s)\n' "$2" "$1" "${features[*]:+, ${features[*]}}"
    if ! timeout 300 cargo run --quiet --release -p "$1" "${features[@]}" --example "$2"; then
        echo "run-examples: example $2 of $1 FAILED" >&2
        failed=1
    fi
done
exit "$failed"
