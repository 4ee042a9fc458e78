#!/usr/bin/env bash
# The firmware as real ARM machine code: builds the offload firmware images for a
# Cortex-R5F (armv7r-none-eabihf) and a Cortex-M4F (thumbv7em-none-eabihf) from
# firmware/images, runs `intercore demo --soc qemu-r5f|qemu-m4f --json` against QEMU's
# emulated cores (their RAM is the memfd the host maps) and checks every result; then
# checks that deliberately faulty images fail by name (a wrong CRC32C → corrupted > 0; an
# undefined instruction → a named firmware fault), that a missing qemu-system-arm and a
# non-ARM image are named errors, that `readelf -h` says ARM and that `intercore rsc`
# shows the table with the intercore vendor entry. Correctness only: nothing is timed
# except the script itself.
#
# Toolchain (see docs/PORTING.md and the REFERENCE's "bare-metal ARM"): Debian's rustc-web
# 1.96 + cargo-web + rust-web-src build core for the bare-metal targets with
# -Zbuild-std (RUSTC_BOOTSTRAP); binutils-arm-none-eabi links; qemu-system-arm runs.
#
# Usage: scripts/test-baremetal.sh [--build-only]
# Environment: BAREMETAL_OUT (default target/baremetal): images go to OUT/images (good),
# OUT/fault-crc, OUT/fault-udf as <core>.elf; INTERCORE (the intercore binary, default
# target/release/intercore, built if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
t0=$(date +%s)
out=${BAREMETAL_OUT:-$root/target/baremetal}
build_only=0
[[ ${1:-} == --build-only ]] && build_only=1

# --- tools: the one shared apt step (QEMU from bookworm-backports) --------------------------
"$root/scripts/deps.sh"
rustc_version=$(/usr/bin/rustc --version | awk '{print $2}')
libsrc=/usr/src/rustc-$rustc_version/library
[[ -d $libsrc ]] || { echo "test-baremetal: no library source at $libsrc (rust-web-src)"; exit 1; }
echo "test-baremetal: $(/usr/bin/rustc --version), $(qemu-system-arm --version | head -1)"

# The images' own workspace is outside `cargo fmt --all`: check it here.
cargo fmt --manifest-path firmware/images/Cargo.toml -- --check

# --- images ------------------------------------------------------------------------------
cargo_images() { # cargo subcommand and arguments, in firmware/images, with core from source
    (cd firmware/images &&
        RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 __CARGO_TESTS_ONLY_SRC_ROOT=$libsrc \
            nice -n 10 /usr/bin/cargo "$@" --release --locked --target-dir "$out/cargo")
}
declare -A triple=([qemu-r5f]=armv7r-none-eabihf [qemu-m4f]=thumbv7em-none-eabihf)
targets=(--target armv7r-none-eabihf --target thumbv7em-none-eabihf)
std=(-Zbuild-std=core,compiler_builtins -Zbuild-std-features=compiler-builtins-mem)
# Good images first, then the deliberately faulty ones (only our crate is rebuilt).
for variant in images fault-crc fault-udf; do
    features=()
    [[ $variant != images ]] && features=(--features "$variant")
    cargo_images build "${targets[@]}" "${features[@]}" "${std[@]}"
    mkdir -p "$out/$variant"
    for core in qemu-r5f qemu-m4f; do
        cp "$out/cargo/${triple[$core]}/release/offload" "$out/$variant/$core.elf"
    done
done
# The Cortex-M7 variant of the M4F image (SCB cache maintenance): compiled, not run.
cargo_images build --target thumbv7em-none-eabihf --features m7 "${std[@]}"
mkdir -p "$out/m7" && cp "$out/cargo/thumbv7em-none-eabihf/release/offload" "$out/m7/qemu-m4f.elf"
# The core crate with `alloc` (host role, data-plane pool: the 32-bit forms of its
# lock-free structures) compiles for both 32-bit cores.
cargo_images check "${targets[@]}" --features alloc -Zbuild-std=core,alloc,compiler_builtins
# The remote role on a core without compare-and-swap (Cortex-M0+) compiles.
cargo_images check --target thumbv6m-none-eabi -p intercore-fw-offload -Zbuild-std=core,compiler_builtins
echo "test-baremetal: images built in $(($(date +%s) - t0)) s under $out"
((build_only)) && exit 0

if [[ -z ${INTERCORE:-} ]]; then
    cargo build --release -p intercore-cli
fi
intercore=${INTERCORE:-$root/target/release/intercore}
fail() { echo "test-baremetal: FAIL: $*"; exit 1; }
field() { grep -o "\"$1\":[^,}]*" <<<"$2" | head -1 | cut -d: -f2-; }

# --- the images are ARM, with the table and the vendor entry -----------------------------
for core in qemu-r5f qemu-m4f; do
    elf=$out/images/$core.elf
    arm-none-eabi-readelf -h "$elf" | grep -E 'Machine:\s+ARM$' || fail "$core: readelf -h does not say ARM"
    rsc=$("$intercore" rsc "$elf") || fail "$core: intercore rsc failed"
    echo "$rsc"
    grep -q 'vdev     id 7 (rpmsg)' <<<"$rsc" || fail "$core: no rpmsg vdev in the table"
    grep -q 'intercore v1: polling doorbell' <<<"$rsc" || fail "$core: no intercore vendor entry"
done

# --- the demo on both cores ----------------------------------------------------------------
for core in qemu-r5f qemu-m4f; do
    json=$(timeout 600 "$intercore" demo --soc "$core" --fw-dir "$out/images" --json | tail -n 1) ||
        fail "$core: demo exited non-zero: $json"
    echo "$core: $json"
    [[ $(field errors "$json") == 0 ]] || fail "$core: errors"
    [[ $(field corrupted "$json") == 0 ]] || fail "$core: corrupted"
    (($(field messages "$json") > 0)) || fail "$core: no messages"
    (($(field bulk_bytes "$json") > 0)) || fail "$core: no bulk bytes"
    host=$(field host_echoed "$json")
    [[ $(field fw_echoed_link "$json") == "$host" ]] || fail "$core: firmware's count over the link differs"
    [[ $(field fw_echoed_semihosting "$json") == "$host" ]] || fail "$core: firmware's count on semihosting differs"
    # Who loaded what: the host loads every segment in the shared RAM (at least the
    # resource table); on the M4F, QEMU loads the code in SSRAM1; the R5F has no other RAM.
    (($(field segments_loaded_by_host "$json") > 0)) || fail "$core: the host loaded nothing"
    by_qemu=$(field segments_loaded_by_qemu "$json")
    if [[ $core == qemu-r5f ]]; then ((by_qemu == 0)) || fail "$core: QEMU loaded segments"; fi
    if [[ $core == qemu-m4f ]]; then ((by_qemu > 0)) || fail "$core: QEMU loaded nothing"; fi
done

# --- faults are named ------------------------------------------------------------------------
for core in qemu-r5f qemu-m4f; do
    if json=$(timeout 600 "$intercore" demo --soc "$core" --fw-dir "$out/fault-crc" --json 2>/dev/null | tail -n 1); then
        fail "$core: the wrong-CRC image passed"
    fi
    echo "$core fault-crc: $json"
    (($(field corrupted "$json") > 0)) || fail "$core: wrong CRCs not reported as corrupted"

    if timeout 600 "$intercore" demo --soc "$core" --fw-dir "$out/fault-udf" --json >/dev/null 2>"$out/udf.err"; then
        fail "$core: the udf image passed"
    fi
    cat "$out/udf.err"
    grep -q "firmware fault on $core: exit code 4 (CPU fault)" "$out/udf.err" || fail "$core: udf not reported as a firmware fault"
done

if INTERCORE_QEMU=/nonexistent/qemu-system-arm "$intercore" demo --soc qemu-r5f --fw-dir "$out/images" 2>"$out/noqemu.err"; then
    fail "ran without QEMU"
fi
cat "$out/noqemu.err"
grep -q "QEMU not available" "$out/noqemu.err" || fail "a missing QEMU is not a named error"

mkdir -p "$out/not-arm"
cp "$intercore" "$out/not-arm/qemu-r5f.elf"
if "$intercore" demo --soc qemu-r5f --fw-dir "$out/not-arm" 2>"$out/notarm.err"; then
    fail "ran an x86-64 image"
fi
cat "$out/notarm.err"
grep -q "bad firmware image.*not a 32-bit ARM image" "$out/notarm.err" || fail "a non-ARM image is not a named error"

echo "test-baremetal: OK in $(($(date +%s) - t0)) s"
