#!/usr/bin/env bash
# Builds the wire, core and Linux-backend tests for aarch64 and runs them under
# qemu-aarch64, so the ARM64 code paths really execute: the EL0 cache maintenance
# (CTR_EL0, DC CVAC, DC CIVAC, DSB — a DC IVAC would die with SIGILL), the ring and rpmsg
# code, the data plane and its tests.
#
# rustup cannot fetch another target here; Debian bookworm ships rustc-web with the
# aarch64 standard library (libstd-rust-web-dev:arm64), a cross linker and qemu-user.
# Programs are linked statically: dynamically linked aarch64 programs that start a thread
# hang under qemu-aarch64 on these machines.
set -euo pipefail
cd "$(dirname "$0")/.."

# The one shared apt step (the aarch64 standard library, cross linker, qemu-user-static).
./scripts/deps.sh

export RUSTC=/usr/bin/rustc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER=qemu-aarch64-static
export RUSTFLAGS="-C target-feature=+crt-static"
"$RUSTC" --version
cargo test --target aarch64-unknown-linux-gnu --target-dir target/aarch64 \
    -p intercore-wire -p intercore -p intercore-linux --lib --tests "$@"
