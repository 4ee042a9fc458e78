#!/usr/bin/env bash
# Builds the C remote firmwares of firmware/c for the emulated Cortex-R5F (QEMU -M none)
# into $INTERCORE_PEERS_DIR/fw (default ~/.cache/intercore/peers/fw, outside the clone):
#   ti-echo.elf           own code behaving as TI MCU+ SDK's ipc_rpmsg_echo_linux
#   zephyr-rsc.elf        own code behaving as Zephyr's samples/subsys/ipc/openamp_rsc_table
#   rpmsglite-remote.elf  own code behaving as an RPMsg-Lite remote (i.MX str-echo example)
#   ti-ipc-rpmsg.elf      TI's own ipc_rpmsg.c + ipc_rpmsg_vring.c, unmodified, from
#                         $INTERCORE_PEERS_DIR/src/mcupsdk-core (TexasInstruments/
#                         mcupsdk-core, commit d0ccb3c8f7), with firmware/c/ti-dpl's stubs;
#                         skipped, with one loud line, when that tree is absent.
#   ffi-echo.elf          own C echo firmware whose rpmsg is intercore's remote role
#                         through its C ABI: crates/intercore-ffi built as a static
#                         library for armv7r-none-eabihf (Debian's rustc-web + rust-web-src,
#                         -Zbuild-std, as scripts/test-baremetal.sh; its cargo target dir
#                         $INTERCORE_PEERS_DIR/ffi-cargo, outside the clone), linked
#                         hard-float (the Rust target's ABI)
#   ffi-offload.elf       own C firmware over the same C ABI serving the data plane
#                         (CRC32C of every bulk buffer) and an echo, for the R5F
#   ffi-offload-m4f.elf   the same firmware for the emulated Cortex-M4F (QEMU
#                         mps2-an386: thumbv7em-none-eabihf library, ../ffi-m4f's startup,
#                         SysTick clock and linker script)
# Run any of them: qemu-system-arm -nodefaults -display none -monitor none
#   -semihosting-config enable=on,target=native
#   -object memory-backend-file,id=shm,mem-path=FILE,size=16M,share=on
#   -M none,memory-backend=shm -cpu cortex-r5f -device loader,file=FW.elf,cpu-num=0
# (or load the PT_LOAD segments into FILE yourself and pass -device loader,addr=ENTRY,cpu-num=0).
#
# Packages (gcc-arm-none-eabi, libnewlib-arm-none-eabi): the one shared apt step, scripts/deps.sh.
#
# Usage: scripts/build-c-firmware.sh
set -euo pipefail
cd "$(dirname "$0")/.."
src=$PWD/firmware/c
peers=${INTERCORE_PEERS_DIR:-$HOME/.cache/intercore/peers}
out=$peers/fw
ti_tree=$peers/src/mcupsdk-core
ti_commit=d0ccb3c8f7

"$PWD/scripts/deps.sh"
for tool in arm-none-eabi-gcc arm-none-eabi-size; do
    command -v "$tool" >/dev/null || { echo "build-c-firmware: $tool not found" >&2; exit 1; }
done

mkdir -p "$out/obj"
cflags=(-mcpu=cortex-r5 -marm -mfloat-abi=soft -ffreestanding -O2 -g -ffunction-sections -fdata-sections)
ldflags=(-nostartfiles -T "$src/common/r5f.ld" -Wl,--gc-sections --specs=nano.specs -Wl,--no-warn-rwx-segments)
own=(-Wall -Wextra -Werror)
common=("$src/common/startup.S" "$src/common/board.c" "$src/common/vring.c")

for fw in ti-echo zephyr-rsc rpmsglite-remote; do
    arm-none-eabi-gcc "${cflags[@]}" "${own[@]}" "${ldflags[@]}" -o "$out/$fw.elf" \
        "${common[@]}" "$src/$fw/main.c" -lc_nano -lgcc
    echo "built $out/$fw.elf ($(arm-none-eabi-size -B "$out/$fw.elf" | awk 'NR==2 {print $1 " B text"}'))"
done

# ffi-echo: intercore's remote role as a static library through the C ABI.
rustc_version=$(/usr/bin/rustc --version | awk '{print $2}')
libsrc=/usr/src/rustc-$rustc_version/library
[[ -d $libsrc ]] || { echo "build-c-firmware: !!!!! no Rust library source at $libsrc (rust-web-src): ffi-echo.elf cannot be built !!!!!" >&2; exit 1; }
# For the R5F (armv7r-none-eabihf) and the M4F (thumbv7em-none-eabihf).
(RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 __CARGO_TESTS_ONLY_SRC_ROOT=$libsrc \
    nice -n 10 /usr/bin/cargo build -p intercore-ffi --release --locked \
    --target armv7r-none-eabihf --target thumbv7em-none-eabihf \
    -Zbuild-std=core,compiler_builtins -Zbuild-std-features=compiler-builtins-mem --target-dir "$peers/ffi-cargo")
ffi_lib=$peers/ffi-cargo/armv7r-none-eabihf/release/libintercore_ffi.a
hard=(-mcpu=cortex-r5 -marm -mfpu=vfpv3-d16 -mfloat-abi=hard -ffreestanding -O2 -g -ffunction-sections -fdata-sections)
arm-none-eabi-gcc "${hard[@]}" "${own[@]}" -I "$PWD/crates/intercore-ffi/include" "${ldflags[@]}" \
    -o "$out/ffi-echo.elf" "${common[@]}" "$src/ffi-echo/main.c" "$ffi_lib" -lc_nano -lgcc
echo "built $out/ffi-echo.elf ($(arm-none-eabi-size -B "$out/ffi-echo.elf" | awk 'NR==2 {print $1 " B text"}'))"
arm-none-eabi-gcc "${hard[@]}" "${own[@]}" -I "$PWD/crates/intercore-ffi/include" "${ldflags[@]}" \
    -o "$out/ffi-offload.elf" "${common[@]}" "$src/ffi-offload/main.c" "$ffi_lib" -lc_nano -lgcc
echo "built $out/ffi-offload.elf ($(arm-none-eabi-size -B "$out/ffi-offload.elf" | awk 'NR==2 {print $1 " B text"}'))"
m4f_lib=$peers/ffi-cargo/thumbv7em-none-eabihf/release/libintercore_ffi.a
m4f=(-mcpu=cortex-m4 -mthumb -mfpu=fpv4-sp-d16 -mfloat-abi=hard -ffreestanding -O2 -g -ffunction-sections -fdata-sections)
m4f_ld=(-nostartfiles -T "$src/ffi-m4f/m4f.ld" -Wl,--gc-sections --specs=nano.specs -Wl,--no-warn-rwx-segments)
arm-none-eabi-gcc "${m4f[@]}" "${own[@]}" -I "$PWD/crates/intercore-ffi/include" "${m4f_ld[@]}" \
    -o "$out/ffi-offload-m4f.elf" "$src/ffi-m4f/startup.S" "$src/ffi-m4f/board_m4f.c" "$src/common/board.c" \
    "$src/ffi-offload/main.c" "$m4f_lib" -lc_nano -lgcc
echo "built $out/ffi-offload-m4f.elf ($(arm-none-eabi-size -B "$out/ffi-offload-m4f.elf" | awk 'NR==2 {print $1 " B text"}'))"

ti_drv=$ti_tree/source/drivers/ipc_rpmsg
if [[ ! -f $ti_drv/ipc_rpmsg.c || ! -f $ti_drv/ipc_rpmsg_vring.c || ! -f $ti_tree/source/drivers/ipc_rpmsg.h ||
    ! -f $ti_tree/source/drivers/ipc_notify.h || ! -d $ti_tree/source/kernel/dpl ]]; then
    echo "!!!!! SKIPPED ti-ipc-rpmsg.elf: TI MCU+ SDK sources absent at $ti_tree (need source/drivers/ipc_rpmsg, source/drivers/ipc_{rpmsg,notify}.h, source/kernel/dpl from TexasInstruments/mcupsdk-core $ti_commit; how: firmware/c/README.md) !!!!!"
    exit 0
fi
have=$(cat "$ti_tree/COMMIT" 2>/dev/null || echo unknown)
echo "TI ipc_rpmsg from $ti_tree (commit $have; the recipe names $ti_commit)"
ti_inc=(-I "$src/ti-dpl" -I "$ti_tree/source")
objs=()
for c in "$ti_drv/ipc_rpmsg.c" "$ti_drv/ipc_rpmsg_vring.c"; do
    o=$out/obj/$(basename "$c" .c).o
    arm-none-eabi-gcc "${cflags[@]}" "${ti_inc[@]}" -c "$c" -o "$o" # TI's code: TI's warnings are not ours
    objs+=("$o")
done
for c in dpl ipc_notify main; do
    o=$out/obj/ti-dpl-$c.o
    arm-none-eabi-gcc "${cflags[@]}" "${own[@]}" "${ti_inc[@]}" -c "$src/ti-dpl/$c.c" -o "$o"
    objs+=("$o")
done
arm-none-eabi-gcc "${cflags[@]}" "${ldflags[@]}" -o "$out/ti-ipc-rpmsg.elf" \
    "$src/common/startup.S" "$src/common/board.c" "${objs[@]}" -lc_nano -lgcc
echo "built $out/ti-ipc-rpmsg.elf ($(arm-none-eabi-size -B "$out/ti-ipc-rpmsg.elf" | awk 'NR==2 {print $1 " B text"}'))"
