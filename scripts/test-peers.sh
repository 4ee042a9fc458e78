#!/usr/bin/env bash
# Peers as vendors ship them, through the front door.
#
# Part 1 — vendor-behaviour firmware on the emulated Cortex-R5F (QEMU -M none): for each
# stock board file a user would write, `intercore board check`, `up --board F`, `ping`
# (every round trip verified), `echo` (one message of every size 1..=max payload, each
# verified), `bench rtt --board`, and `down`:
#   boards/qemu-r5f-ti-echo.toml      ti-echo.elf          TI MCU+ SDK ipc_rpmsg echo behaviour
#   boards/qemu-r5f-ti-ipc-rpmsg.toml ti-ipc-rpmsg.elf     TI's own ipc_rpmsg sources (when built)
#   boards/qemu-r5f-zephyr.toml       zephyr-rsc.elf       Zephyr openamp_rsc_table behaviour
#   boards/qemu-r5f-rpmsglite.toml    rpmsglite-remote.elf RPMsg-Lite remote behaviour
#   boards/qemu-r5f-ffi-echo.toml     ffi-echo.elf         own C firmware over intercore's C ABI
#   boards/qemu-r5f-ffi-offload.toml  ffi-offload.elf      own C firmware over the C ABI: echo and the
#                                                          data plane (CRC32C of each bulk buffer)
#   boards/qemu-m4f-ffi-offload.toml  ffi-offload-m4f.elf  the same on the emulated Cortex-M4F
# For the ffi-offload boards also `bench bulk --board` (16 MiB in 1 MiB buffers, every
# CRC32C the firmware wrote checked by the host) and a clean exit at `down` (the firmware
# exits non-zero when a cache hook got a range outside the data-plane window).
# The images are built by scripts/build-c-firmware.sh (run first when present) into
# $INTERCORE_PEERS_DIR/fw (default ~/.cache/intercore/peers/fw), where the board files'
# transport.image looks. An absent image is ONE LOUD LINE, and a failure under CI=true
# (never a silent pass) — except ti-ipc-rpmsg.elf when TI's sources are absent
# ($INTERCORE_PEERS_DIR/src/mcupsdk-core: CI cannot fetch them, as test-real-peers.sh's
# trees): then one loud NOT RUN line (INTERCORE_REQUIRE_PEERS=1 makes it a failure).
#
# INTERCORE: the intercore binary (default target/release/intercore, built if missing).
# The control sockets go to a private runtime directory (XDG_RUNTIME_DIR), removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
export INTERCORE_PEERS_DIR=${INTERCORE_PEERS_DIR:-$HOME/.cache/intercore/peers}
fw=$INTERCORE_PEERS_DIR/fw
ti_src=$INTERCORE_PEERS_DIR/src/mcupsdk-core
ci=${CI:-false}

if [[ -x scripts/build-c-firmware.sh ]]; then
    scripts/build-c-firmware.sh
else
    echo "test-peers: scripts/build-c-firmware.sh is not in this tree: using the images already in $fw"
fi
command -v "${INTERCORE_QEMU:-qemu-system-arm}" >/dev/null || {
    echo "test-peers: !!!!! NO QEMU: ${INTERCORE_QEMU:-qemu-system-arm} is not installed; the vendor-behaviour firmwares were NOT run !!!!!"
    exit 1
}
if [[ -z ${INTERCORE:-} ]]; then
    cargo build --release -p intercore-cli
fi
intercore=${INTERCORE:-$root/target/release/intercore}
run=$(mktemp -d /tmp/intercore-test-peers.XXXXXX)
chmod 700 "$run"
export XDG_RUNTIME_DIR=$run
up=()
cleanup() {
    for b in "${up[@]}"; do [[ -n $b ]] && "$intercore" down --board "$b" >/dev/null 2>&1 || true; done
    rm -rf "$run"
}
trap cleanup EXIT
fail() {
    echo "test-peers: FAIL: $*"
    for l in "$run"/intercore/*.log; do [[ -s $l ]] && { echo "--- $l"; tail -n 30 "$l"; }; done
    exit 1
}
field() { grep -o "\"$1\":[^,}]*" <<<"$2" | head -1 | cut -d: -f2-; }

missing=0
ran=0
for pair in qemu-r5f-ti-echo:ti-echo qemu-r5f-ti-ipc-rpmsg:ti-ipc-rpmsg qemu-r5f-zephyr:zephyr-rsc \
    qemu-r5f-rpmsglite:rpmsglite-remote qemu-r5f-ffi-echo:ffi-echo qemu-r5f-ffi-offload:ffi-offload \
    qemu-m4f-ffi-offload:ffi-offload-m4f; do
    board=boards/${pair%%:*}.toml
    elf=$fw/${pair#*:}.elf
    if [[ ! -f $elf ]]; then
        if [[ $elf == */ti-ipc-rpmsg.elf && ! -d $ti_src/source/drivers/ipc_rpmsg &&
            ${INTERCORE_REQUIRE_PEERS:-0} != 1 ]]; then
            # Built from TI's own sources, which CI cannot fetch (no route to github.com):
            # like test-real-peers.sh, absent sources are one loud line, not a failure.
            echo "test-peers: !!!!! NOT RUN $board: TI MCU+ SDK sources absent at $ti_src (CI cannot fetch them; firmware/c/README.md says how to put them there) !!!!!"
            continue
        fi
        echo "test-peers: !!!!! MISSING FIRMWARE $elf: $board NOT RUN (build it with scripts/build-c-firmware.sh) !!!!!"
        missing=$((missing + 1))
        continue
    fi
    echo "== $board ($elf)"
    "$intercore" board check --strict "$board" || fail "$board: board check"
    "$intercore" up --board "$board" || fail "$board: up"
    up+=("$board")
    json=$("$intercore" ping --board "$board" --count 200 --json) || fail "$board: ping: $json"
    echo "$json"
    [[ $(field verified "$json") == 200 && $(field errors "$json") == 0 ]] || fail "$board: ping: $json"
    json=$("$intercore" echo --board "$board" --json) || fail "$board: echo: $json"
    echo "$json"
    [[ $(field errors "$json") == 0 && $(field verified "$json") == $(field messages "$json") &&
        $(field messages "$json") == $(field max_payload "$json") ]] || fail "$board: echo: $json"
    "$intercore" bench rtt --board "$board" --samples 200 || fail "$board: bench rtt"
    if [[ $board == *ffi-offload* ]]; then
        json=$("$intercore" bench bulk --board "$board" --json) || fail "$board: bench bulk: $json"
        echo "$json"
        [[ $(field buffers "$json") == 17 && $(field bytes "$json") == 16777216 &&
            $(field corrupted "$json") == 0 ]] || fail "$board: bench bulk: $json"
        down=$("$intercore" down --board "$board") || fail "$board: down: $down"
        echo "$down"
        grep -q "exited cleanly" <<<"$down" || fail "$board: the firmware did not exit cleanly: $down"
        up=("${up[@]/$board/}")
        ran=$((ran + 1))
        continue
    fi
    "$intercore" down --board "$board" || fail "$board: down"
    up=("${up[@]/$board/}")
    ran=$((ran + 1))
done
echo "test-peers: part 1: $ran vendor-behaviour firmware(s) passed up/ping/echo/bench/down, $missing missing"
if ((missing > 0)) && [[ $ci == true ]]; then
    echo "test-peers: FAIL: $missing firmware image(s) missing under CI=true"
    exit 1
fi
((ran > 0)) || fail "no firmware ran"
