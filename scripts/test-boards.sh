#!/usr/bin/env bash
# The board path end to end: for each shipped board that runs on this host — the simulated
# SoC (boards/sim.toml), its TI K3 layout (boards/sim-ti-k3.toml) and the firmware as ARM
# code on QEMU's Cortex-R5F and Cortex-M4F (boards/qemu-r5f.toml, boards/qemu-m4f.toml) —
# `intercore up` (the link owner in the background), `ping --json` (every round trip
# verified, exit 0), `echo --json`, a short `bench rtt --board`, and `down`; the boards with
# several cores (boards/sim-4core.toml, boards/qemu-2core.toml) the same on every core;
# then the errors a user meets: ping with no owner, a second `up`, a dead owner. Fails on
# any error.
#
# The QEMU images come from scripts/test-baremetal.sh, which CI runs first: they are read
# from OUT/images (BAREMETAL_OUT, default target/baremetal; CI passes
# ${INTERCORE_BAREMETAL_DIR:-$HOME/.cache/intercore/baremetal}), or INTERCORE_FW_DIR.
# INTERCORE: the intercore binary (default target/release/intercore, built if missing).
# The control sockets go to a private runtime directory (XDG_RUNTIME_DIR), removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
t0=$(date +%s.%N)
out=${BAREMETAL_OUT:-$root/target/baremetal}
export INTERCORE_FW_DIR=${INTERCORE_FW_DIR:-$out/images}
if [[ -z ${INTERCORE:-} ]]; then
    cargo build --release -p intercore-cli
fi
intercore=${INTERCORE:-$root/target/release/intercore}
run=$(mktemp -d /tmp/intercore-test-boards.XXXXXX)
chmod 700 "$run"
export XDG_RUNTIME_DIR=$run
up=()
cleanup() {
    for b in "${up[@]}"; do "$intercore" down --board "$b" >/dev/null 2>&1 || true; done
    rm -rf "$run"
}
trap cleanup EXIT
fail() {
    echo "test-boards: FAIL: $*"
    for l in "$run"/intercore/*.log; do [[ -s $l ]] && { echo "--- $l"; tail -n 20 "$l"; }; done
    exit 1
}
since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }
field() { grep -o "\"$1\":[^,}]*" <<<"$2" | head -1 | cut -d: -f2-; }

for board in boards/sim.toml boards/sim-ti-k3.toml boards/qemu-r5f.toml boards/qemu-m4f.toml; do
    tb=$(date +%s.%N)
    "$intercore" board check "$board" >/dev/null || fail "$board: board check"
    "$intercore" up --board "$board" || fail "$board: up"
    up+=("$board")
    json=$("$intercore" ping --board "$board" --count 200 --json) || fail "$board: ping: $json"
    echo "$json"
    verified=$(field verified "$json")
    [[ $verified == 200 && $(field errors "$json") == 0 ]] || fail "$board: ping verified $verified of 200"
    json=$("$intercore" echo --board "$board" --json) || fail "$board: echo: $json"
    [[ $(field errors "$json") == 0 && $(field verified "$json") == $(field messages "$json") ]] ||
        fail "$board: echo: $json"
    "$intercore" bench rtt --board "$board" --samples 200 || fail "$board: bench rtt"
    # A second up finds the owner and says so (exit 0).
    again=$("$intercore" up --board "$board") || fail "$board: second up"
    grep -q "already up" <<<"$again" || fail "$board: second up said: $again"
    "$intercore" down --board "$board" || fail "$board: down"
    up=("${up[@]/$board/}")
    # After down, ping names the command to run.
    if err=$("$intercore" ping --board "$board" 2>&1); then fail "$board: ping after down succeeded"; fi
    grep -q "no link is up for board $board: run \`intercore up --board $board\`" <<<"$err" ||
        fail "$board: ping after down said: $err"
    echo "test-boards: $board: up, ping, echo, bench rtt, down in $(since "$tb") s"
done

# Boards with several cores: the simulated SoC with four remotes and two emulated
# Cortex-R5F under QEMU. One `up` starts every core (a link owner each); `ping` and `echo`
# without --core answer one JSON line per core, every round trip and every size verified;
# `bench` measures the core named; `down` stops every core; then ping names --core.
for board in boards/sim-4core.toml boards/qemu-2core.toml; do
    tb=$(date +%s.%N)
    "$intercore" board check "$board" >/dev/null || fail "$board: board check"
    cores=$("$intercore" board check "$board" --json | grep -o '"cores":\[[^]]*\]' | tr -d '"[]' | cut -d: -f2 | tr , ' ')
    n=$(wc -w <<<"$cores")
    (( n >= 2 )) || fail "$board: board check names cores: $cores"
    "$intercore" up --board "$board" || fail "$board: up"
    up+=("$board")
    json=$("$intercore" ping --board "$board" --count 200 --json) || fail "$board: ping: $json"
    echo "$json"
    [[ $(grep -c '"verified":200,"errors":0' <<<"$json") == "$n" ]] || fail "$board: ping: not every core verified 200 of 200"
    json=$("$intercore" echo --board "$board" --json) || fail "$board: echo: $json"
    while read -r line; do
        [[ $(field errors "$line") == 0 && $(field verified "$line") == $(field messages "$line") &&
            $(field messages "$line") == $(field max_payload "$line") ]] || fail "$board: echo: $line"
    done <<<"$json"
    [[ $(wc -l <<<"$json") == "$n" ]] || fail "$board: echo: $n cores, got: $json"
    first=${cores%% *}
    "$intercore" bench rtt --board "$board" --core "$first" --samples 200 || fail "$board: bench rtt --core $first"
    "$intercore" down --board "$board" || fail "$board: down"
    up=("${up[@]/$board/}")
    if err=$("$intercore" ping --board "$board" --core "$first" 2>&1); then fail "$board: ping after down succeeded"; fi
    grep -q "run \`intercore up --board $board --core $first\`" <<<"$err" || fail "$board: ping after down said: $err"
    echo "test-boards: $board ($n cores: $cores): up, ping, echo, bench rtt, down in $(since "$tb") s"
done

# A dead owner (killed, its socket left behind) is reported, and `up` replaces the stale socket.
board=boards/sim.toml
"$intercore" up --board "$board" >/dev/null || fail "dead owner: up"
up+=("$board")
pid=$("$intercore" up --board "$board" --json | grep -o '"owner_pid":[0-9]*' | cut -d: -f2)
[[ -n $pid ]] || fail "dead owner: no owner pid"
kill -KILL "$pid"
sleep 0.2
if err=$("$intercore" ping --board "$board" 2>&1); then fail "ping through a dead owner succeeded"; fi
grep -q "is gone" <<<"$err" || fail "dead owner: ping said: $err"
"$intercore" up --board "$board" >/dev/null || fail "up over a dead owner's socket"
"$intercore" ping --board "$board" --count 10 >/dev/null || fail "ping after replacing a dead owner"
"$intercore" down --board "$board" >/dev/null || fail "down after replacing a dead owner"
up=()
echo "test-boards: PASS in $(since "$t0") s"
