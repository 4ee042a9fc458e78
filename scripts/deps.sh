#!/usr/bin/env bash
# The one apt step for every script CI runs: installs what is missing, in one `apt-get
# update` and one `apt-get install`, and does nothing (no network) when everything is there.
#
# Every QEMU package comes from ONE suite, bookworm-backports (QEMU 10): the qemu-system-*
# packages must all match one qemu-system-common, the machine image already carries
# backports' qemu-utils, and bookworm's QEMU 7.2 aborts on a full 4096-byte `edu` DMA
# (scripts/vm-vfio-test.sh). A QEMU package installed from any other suite (an earlier
# run of an older script) is reinstalled from backports with the others, in the same step.
# Packages are named per suite (`PKG/bookworm-backports`): a blanket `-t bookworm-backports`
# would also upgrade unrelated packages (systemd, mesa and linux-libc-dev were seen).
#
# Usage: scripts/deps.sh            install what every CI script needs (what .ci/run does)
#        scripts/deps.sh --check    exit 1 naming what is missing, install nothing
# The scripts call it at their top, so each one still runs alone on a fresh machine.
# No `grep -q` at the end of a pipeline: under `set -o pipefail` the early exit of grep can
# kill the writer with SIGPIPE and turn a match into a failure (exit 141).
set -euo pipefail

# Debian packages, by the script that needs them (bookworm unless listed under qemu).
base=(gcc g++ libc6-dev binutils make)
aarch64=(rustc-web libstd-rust-web-dev:arm64 gcc-aarch64-linux-gnu libc6-dev-arm64-cross)
baremetal=(rustc-web cargo-web rust-web-src binutils-arm-none-eabi gcc-arm-none-eabi
    libnewlib-arm-none-eabi)
uml=(linux-source-6.1 flex bison bc busybox-static cpio xz-utils gzip)
peers=(cmake pkg-config libsysfs-dev python3)
# From bookworm-backports, all of them, always together.
qemu=(qemu-system-arm qemu-system-x86 qemu-system-common qemu-system-data qemu-user-static
    seabios)

say() { echo "deps: $*"; }
check_only=0
[[ ${1:-} == --check ]] && check_only=1

bpo_src=/etc/apt/sources.list.d/intercore-bookworm-backports.sources
have_bpo() {
    local f
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*; do
        [[ -f $f ]] || continue
        if grep -Eqs '^[^#]*bookworm-backports' "$f"; then return 0; fi
    done
    return 1
}

# version of an installed package, or nothing
installed() { { dpkg-query -W -f='${db:Status-Abbrev}|${Version}\n' "$1" 2>/dev/null || true; } | sed -n 's/^ii *|//p'; }

missing=()
for p in "${base[@]}" "${aarch64[@]}" "${baremetal[@]}" "${uml[@]}" "${peers[@]}"; do
    [[ -n $(installed "$p") ]] || missing+=("$p")
done
for p in "${qemu[@]}"; do
    v=$(installed "$p")
    # seabios (QEMU's x86 BIOS) need not come from backports once it is there.
    [[ $p == seabios && -n $v ]] && continue
    [[ $v == *bpo12* ]] || missing+=("$p/bookworm-backports")
done
# Deduplicate (rustc-web is in two lists).
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | awk 'NF && !seen[$0]++')

if ((${#missing[@]} == 0)); then
    say "all packages present (QEMU $(qemu-system-arm --version | sed -n '1s/.*version \([^ ]*\).*/\1/p'))"
    exit 0
fi
if ((check_only)); then
    say "MISSING: ${missing[*]} — run scripts/deps.sh (as root) first"
    exit 1
fi
say "installing ${missing[*]}"
if [[ $(id -u) != 0 ]]; then
    say "FAIL: packages are missing and this is not root: run scripts/deps.sh as root"
    exit 1
fi
if ! have_bpo; then
    say "adding the bookworm-backports suite ($bpo_src)"
    cat >"$bpo_src" <<'EOF'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
fi
if ! dpkg --print-foreign-architectures | awk '$0 == "arm64" {f=1} END {exit !f}'; then
    dpkg --add-architecture arm64
fi
apt-get -o DPkg::Lock::Timeout=600 update -q
DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "${missing[@]}"
# The same check again: anything still missing is a failure here, not in a later script.
exec "$0" --check
