#!/usr/bin/env bash
# Checks the C firmwares of firmware/c (built by scripts/build-c-firmware.sh) on QEMU's
# emulated Cortex-R5F against firmware/c/tests/linux_host.py, a host that does what
# Linux's remoteproc + virtio_rpmsg_bus do (status 0x7, ANY vrings and buffers from a
# power-of-two-aligned coherent pool, receive buffers re-posted by cookie). Every case
# must end as stated, the refusals included; any other outcome fails the script.
# With --intercore it then runs crates/intercore-sim/tests/c_firmware.rs (ignored in a
# plain cargo test): intercore's own HostBus, placed as Linux would, against every image.
# Needs: qemu-system-arm (or $INTERCORE_QEMU), python3; cargo for --intercore.
# Usage: scripts/check-c-firmware.sh [--no-build] [--intercore]
set -euo pipefail
cd "$(dirname "$0")/.."
peers=${INTERCORE_PEERS_DIR:-$HOME/.cache/intercore/peers}
fw=$peers/fw
host=firmware/c/tests/linux_host.py
qemu=${INTERCORE_QEMU:-qemu-system-arm}
command -v "$qemu" >/dev/null || { echo "check-c-firmware: $qemu not found (apt-get install qemu-system-arm)" >&2; exit 1; }
command -v python3 >/dev/null || { echo "check-c-firmware: python3 not found" >&2; exit 1; }
build=1 intercore=0
for arg in "$@"; do
    case $arg in
    --no-build) build=0 ;;
    --intercore) intercore=1 ;;
    *) echo "usage: $0 [--no-build] [--intercore]" >&2; exit 2 ;;
    esac
done
((build == 0)) || scripts/build-c-firmware.sh

failed=0
pass() { echo "ok   $1"; }
run() { # name, then the harness arguments: the harness must succeed
    local name=$1
    shift
    if python3 "$host" "$@" 2>"$fw/check.log"; then pass "$name"; else
        echo "FAIL $name"; cat "$fw/check.log"; failed=1; fi
}
run_fails() { # name, expected text, then the harness arguments: the harness must fail, saying that
    local name=$1 want=$2
    shift 2
    if python3 "$host" "$@" 2>"$fw/check.log"; then
        echo "FAIL $name: the host saw no difference"; failed=1
    elif grep -F -- "$want" "$fw/check.log" >/dev/null; then pass "$name"; else
        echo "FAIL $name: expected '$want'"; cat "$fw/check.log"; failed=1; fi
}

ti_svc=(--expect ti.ipc4.ping-pong@13 --expect rpmsg_chrdev@14 --service rpmsg_chrdev)
for img in ti-echo ti-ipc-rpmsg; do
    if [[ ! -f $fw/$img.elf ]]; then
        echo "!!!!! SKIPPED $img: $fw/$img.elf was not built (see build-c-firmware.sh) !!!!!"
        continue
    fi
    run "$img: echo 1..=496 on rpmsg_chrdev, used lengths as TI writes them" \
        "$fw/$img.elf" "${ti_svc[@]}" --tx-used-len msg --rx-used-len desc
    run "$img: ti.ipc4.ping-pong echoes too" "$fw/$img.elf" --expect ti.ipc4.ping-pong@13 --max 64
    run "$img: status 0xF (FEATURES_OK too) never starts it" "$fw/$img.elf" --status 0xf --expect-silent 3
    run_fails "$img: buffers right after the vrings lose its messages" "got 0 bytes to 0" \
        "$fw/$img.elf" --buffers 0x208000 --expect ti.ipc4.ping-pong@13 --timeout 5
done
run "ti-echo: a descriptor index past the table stops it with the reason (exit 2)" \
    "$fw/ti-echo.elf" --expect ti.ipc4.ping-pong@13 --expect rpmsg_chrdev@14 --bad-head --expect-exit 2 \
    --console "names descriptor 261 of 256" --timeout 10

z=$fw/zephyr-rsc.elf
run "zephyr-rsc: rpmsg-client-sample echo 1..=496, descriptor lengths as used lengths" \
    "$z" --expect rpmsg-client-sample@0x400 --expect rpmsg-tty@0x401 --tx-used-len desc --rx-used-len desc
run "zephyr-rsc: rpmsg-tty answers 'TTY 0x0401: ' + message up to 484 bytes" \
    "$z" --expect rpmsg-client-sample@0x400 --expect rpmsg-tty@0x401 --service rpmsg-tty \
    --prefix "TTY 0x%04x: " --max 484
run "zephyr-rsc: only DRIVER_OK counts (status 0xF works)" \
    "$z" --status 0xf --expect rpmsg-client-sample@0x400 --max 16
run "zephyr-rsc: a descriptor index past the table stops it with the reason (exit 2)" \
    "$z" --expect rpmsg-client-sample@0x400 --expect rpmsg-tty@0x401 --bad-head --expect-exit 2 \
    --console "names descriptor 13 of 8" --timeout 10
run "zephyr-rsc: buffers outside its window are refused" \
    "$z" --buffers 0x180000 --expect-silent 3 --console "outside the shared-memory window"

r=$fw/rpmsglite-remote.elf
run "rpmsglite-remote: no status word, echo 1..=496, descriptor lengths as used lengths" \
    "$r" --no-status --buffers 0x600000 --expect rpmsg-virtual-tty-channel-1@30 --tx-used-len desc --rx-used-len desc
run "rpmsglite-remote: a descriptor index past the table stops it with the reason (exit 2)" \
    "$r" --no-status --buffers 0x600000 --expect rpmsg-virtual-tty-channel-1@30 --bad-head --expect-exit 2 \
    --console "names descriptor 261 of 256" --timeout 10
run "rpmsglite-remote: no vring-0 notification, no link" \
    "$r" --no-status --no-buffers --buffers 0x600000 --expect-silent 3

if ((intercore)); then
    if nice -n 5 cargo test -p intercore-sim --test c_firmware \
        -- --ignored; then pass "intercore HostBus against every image"; else
        echo "FAIL intercore HostBus against the images (above)"; failed=1; fi
fi

if ((failed)); then
    echo "check-c-firmware: FAILED" >&2
    exit 1
fi
echo "check-c-firmware: all passed"
