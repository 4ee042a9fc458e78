#!/usr/bin/env bash
# The host role from C and C++ (issue 22.1): builds libintercore_ffi_host (release, shared
# and static), installs it with its header and pkg-config files into target/c-host/prefix,
# compiles the C11 and the C++17 check programs (crates/intercore-ffi-host/c/) with
# -Wall -Wextra -Werror -pedantic through pkg-config — both against the shared library,
# the C one against the static library too — built with AddressSanitizer, LeakSanitizer
# and UBSan, and runs each on the simulated SoC (boards/sim.toml) and on QEMU's Cortex-R5F
# (boards/qemu-r5f.toml): every message size echoed and compared, CRC32C buffers on the
# data plane compared with a CRC computed by the program, every handle closed, no leak
# (LeakSanitizer sees the library's allocations too: it intercepts malloc process-wide).
# A control program with a deliberate leak must fail the same way, so the checker is known
# to be on. A missing tool or image is one line saying so and a failure.
#
# Why not valgrind: Debian 12's valgrind (3.19) does not implement pidfd_open (syscall
# 434: "WARNING: unhandled amd64-linux syscall: 434", then ENOSYS), which the simulated SoC
# and the QEMU link use to watch the remote core's process: under it the board cannot be
# opened at all.
#
# The QEMU image comes from scripts/test-baremetal.sh, which CI runs first: read from
# OUT/images (BAREMETAL_OUT, default target/baremetal; CI passes
# ${INTERCORE_BAREMETAL_DIR:-$HOME/.cache/intercore/baremetal}), or INTERCORE_FW_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
t0=$(date +%s.%N)
fail() {
    echo "test-c-host: FAIL: $*"
    exit 1
}
since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }
need() { command -v "$1" >/dev/null || fail "$1 is not installed ($2): run scripts/deps.sh"; }
need cc "the C11 program"
need c++ "the C++17 program"
need pkg-config "linking through intercore-host.pc"
need readelf "checking which library each program links"
need nm "checking the static program holds the library"
need qemu-system-arm "the QEMU board"

out=${BAREMETAL_OUT:-$root/target/baremetal}
export INTERCORE_FW_DIR=${INTERCORE_FW_DIR:-$out/images}
[[ -f $INTERCORE_FW_DIR/qemu-r5f.elf ]] ||
    fail "no QEMU image $INTERCORE_FW_DIR/qemu-r5f.elf: run scripts/test-baremetal.sh first (BAREMETAL_OUT=$out)"

cargo build --release -p intercore-ffi-host
crate=crates/intercore-ffi-host
work=$root/target/c-host
prefix=$work/prefix
bin=$work/bin
rm -rf "$work"
mkdir -p "$prefix/lib/pkgconfig" "$prefix/include" "$bin"
cp target/release/libintercore_ffi_host.so target/release/libintercore_ffi_host.a "$prefix/lib/"
cp "$crate/include/intercore_host.h" "$prefix/include/"
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
[[ -n $version ]] || fail "no workspace version in Cargo.toml"
for pc in intercore-host intercore-host-static; do
    sed -e "s|@PREFIX@|$prefix|g" -e "s|@VERSION@|$version|g" "$crate/$pc.pc.in" \
        >"$prefix/lib/pkgconfig/$pc.pc"
done
export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
pkg-config --exists --print-errors intercore-host intercore-host-static ||
    fail "pkg-config does not find the installed .pc files"

warn=(-Wall -Wextra -Werror -pedantic -g -O1)
san=(-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
export ASAN_OPTIONS=detect_leaks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
shared() { pkg-config --cflags --libs intercore-host; }
static() { pkg-config --cflags --libs intercore-host-static; }
rpath=-Wl,-rpath,$prefix/lib
# shellcheck disable=SC2046 # pkg-config's words are separate flags
{
    cc -std=c11 "${warn[@]}" "${san[@]}" "$crate/c/host_check.c" -o "$bin/host_check_c" \
        $(shared) "$rpath" &&
        c++ -std=c++17 "${warn[@]}" "${san[@]}" "$crate/c/host_check.cpp" \
            -o "$bin/host_check_cpp" $(shared) "$rpath" &&
        cc -std=c11 "${warn[@]}" "${san[@]}" "$crate/c/host_check.c" \
            -o "$bin/host_check_c_static" $(static)
} || fail "compiling the C/C++ programs"
# Each program links the library it says it does.
for p in host_check_c host_check_cpp; do
    readelf -d "$bin/$p" | grep -F 'libintercore_ffi_host.so' >/dev/null ||
        fail "$p does not link libintercore_ffi_host.so"
done
if readelf -d "$bin/host_check_c_static" | grep -F 'libintercore_ffi_host' >/dev/null; then
    fail "host_check_c_static links the shared library"
fi
nm "$bin/host_check_c_static" | grep -w 'T intercore_board_open' >/dev/null ||
    fail "host_check_c_static does not contain the library"
echo "test-c-host: built the C11 and C++17 programs against $prefix (shared and static)"

# The control: a program that leaks must be failed by the sanitizer (so it is on).
printf '%s\n' '#include <intercore_host.h>' '#include <stdlib.h>' '#include <string.h>' \
    'int main(void) {' '    char *p = malloc(64);' \
    '    strcpy(p, intercore_host_status_str(INTERCORE_HOST_E_TIMEOUT));' \
    '    p = NULL;' '    return p != NULL;' '}' >"$work/leak.c"
# shellcheck disable=SC2046
cc -std=c11 "${warn[@]}" "${san[@]}" "$work/leak.c" -o "$bin/leak" $(shared) "$rpath" ||
    fail "compiling the leak control"
if "$bin/leak" >"$work/leak.log" 2>&1; then
    fail "the leak control passed: LeakSanitizer is not on"
fi
grep -F 'detected memory leaks' "$work/leak.log" >/dev/null ||
    fail "the leak control failed without a leak report: $(head -n 5 "$work/leak.log")"
echo "test-c-host: the leak control is caught by LeakSanitizer"

for board in boards/sim.toml boards/qemu-r5f.toml; do
    for p in host_check_c host_check_cpp host_check_c_static; do
        tb=$(date +%s.%N)
        log=$work/$p-$(basename "$board" .toml).log
        if ! "$bin/$p" "$board" >"$log" 2>&1; then
            cat "$log"
            fail "$p on $board (output above)"
        fi
        if grep -E 'Sanitizer|runtime error' "$log" >/dev/null; then
            cat "$log"
            fail "$p on $board: a sanitizer reported something (above)"
        fi
        echo "test-c-host: $(tail -n 1 "$log") [$p, sanitizers clean, $(since "$tb") s]"
    done
done
echo "test-c-host: PASS in $(since "$t0") s"
