#!/usr/bin/env bash
# Runs intercore's VFIO, IOMMU and dma-buf code against a real Linux kernel: a QEMU guest
# (TCG) with an emulated IOMMU and QEMU's `edu` PCI device bound to vfio-pci as the DMA
# engine of a "remote core" that reaches memory only through the windows the host maps.
#
# The guest is Debian's 6.12 kernel from bookworm-backports (it has VFIO, VFIO_PCI,
# VIRTIO_IOMMU as modules, INTEL_IOMMU, DMABUF_HEAPS and UDMABUF built in), booted with a
# busybox initramfs that holds the modules, the project's statically linked test binaries
# and a small init. It boots twice: under `intel-iommu` (interrupt remapping on) and under
# `virtio-iommu-pci` (no interrupt remapping: vfio_iommu_type1 needs
# allow_unsafe_interrupts=1, and the init first checks that VfioIommu names that cause).
#
# A third guest (model `phys`) has no IOMMU: there the `pagemap_guest` tests check the
# mainline route to a device address for a cacheable buffer — a hugetlb memfd's physical
# addresses from /proc/self/pagemap (as root), reached by the `edu` device's DMA (given a
# 32-bit dma_mask), which without an IOMMU uses physical addresses — and that a dma-buf
# heap's VM_PFNMAP mapping is a hole in pagemap. This kernel has no CMA (`# CONFIG_CMA is
# not set` in its config), so no CMA heap and no use for `cma=`.
#
# In the guests with an IOMMU: intercore-linux's `vfio_guest` tests (ignored on the host, run here with
# --ignored), and the crate's other Linux-backend test binaries as on the host (their "for
# real" branches run here: /dev/udmabuf and /dev/dma_heap exist; `conformance` also runs
# its ignored udmabuf and dma-heap instances). Excluded in the guest:
#   - kernel_uapi: compiles a C program with the system C compiler (none in the initramfs);
#     it runs on the host in every CI run.
# Verdict through the console; on failure the guest log is printed and the script exits 1.
#
# Caches (outside the clone): the guest kernel package, unpacked, under
# $INTERCORE_VFIO_DIR (default $HOME/.cache/intercore/vfio), keyed by the package name;
# the static test builds under the same directory. apt packages: qemu-system-x86 10.0 from
# bookworm-backports (bookworm's 7.2 aborts on a full 4096-byte edu transfer), named per
# package — a blanket `-t bookworm-backports` would upgrade unrelated packages.
# Environment: INTERCORE_VFIO_DIR, VFIO_TIMEOUT (seconds per boot, default 240),
# VFIO_MODELS (default "intel virtio phys").
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
dir=${INTERCORE_VFIO_DIR:-$HOME/.cache/intercore/vfio}
timeout_s=${VFIO_TIMEOUT:-240}
models=${VFIO_MODELS:-intel virtio phys}
mkdir -p "$dir"
t0=$(date +%s)
say() { echo "vm-vfio-test: $*"; }

# --- packages -------------------------------------------------------------------------------
# The one shared apt step: QEMU 10 and every other QEMU package from bookworm-backports.
"$root/scripts/deps.sh"
qemu_ok() {
    command -v qemu-system-x86_64 >/dev/null 2>&1 &&
        [[ $(qemu-system-x86_64 --version | sed -n 's/.*version \([0-9]*\)\..*/\1/p;q') -ge 10 ]]
}
qemu_ok || { say "qemu-system-x86_64 >= 10 is needed (bookworm-backports)"; exit 1; }
t_apt=$(date +%s)

# --- the guest kernel: linux-image-6.12.*-amd64-unsigned, unpacked once ---------------------
kernel_name() {
    { apt-cache show linux-image-amd64/bookworm-backports 2>/dev/null || true; } |
        sed -n 's/^Depends: \(linux-image-6\.12\.[^ ,]*-amd64\).*/\1/p' | head -1
}
meta=$(kernel_name)
if [[ -z $meta ]]; then
    apt-get -o DPkg::Lock::Timeout=600 update -q # the suite is configured but its package lists are missing or stale
    meta=$(kernel_name)
fi
[[ -n $meta ]] || { say "cannot find linux-image-amd64 in bookworm-backports"; exit 1; }
pkg=$meta-unsigned
kdir=$dir/$pkg
mods=(virtio-iommu irqbypass vfio vfio_iommu_type1 vfio-pci-core vfio-pci)
if [[ ! -s $kdir/vmlinuz || ! -f $kdir/.complete ]]; then
    say "fetching $pkg"
    rm -rf "$kdir" "$dir"/*.deb
    mkdir -p "$kdir/modules"
    (cd "$dir" && apt-get download -q "$pkg" 2>&1 | grep -v '^W: Download is performed unsandboxed' || true)
    deb=$(ls "$dir"/"${pkg}"_*.deb)
    x=$dir/unpack.$$
    rm -rf "$x"
    dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$dir" --transform "s,^\./,unpack.$$/," \
        --wildcards './boot/vmlinuz-*' './lib/modules/*/kernel/drivers/vfio/*' \
        './lib/modules/*/kernel/virt/lib/irqbypass.ko*' './lib/modules/*/kernel/drivers/iommu/virtio-iommu.ko*'
    cp "$x"/boot/vmlinuz-* "$kdir/vmlinuz"
    for m in "${mods[@]}"; do
        f=$(find "$x/lib/modules" -name "$m.ko.xz" | head -1)
        [[ -n $f ]] || { say "module $m missing from $pkg"; exit 1; }
        xz -dc "$f" >"$kdir/modules/$m.ko"
    done
    rm -rf "$x" "$deb"
    touch "$kdir/.complete"
fi
t_kernel=$(date +%s)

# --- the project's test binaries, linked statically ------------------------------------------
say "building the static test binaries"
# Line tables only: panics still name file and line, and the build is lighter; no
# incremental state (a cold build is what CI pays for).
RUSTFLAGS="-C target-feature=+crt-static" CARGO_PROFILE_DEV_DEBUG=line-tables-only CARGO_INCREMENTAL=0 \
    cargo test -q -p intercore-linux --features vfio \
    --no-run --target x86_64-unknown-linux-gnu --target-dir "$dir/cargo" \
    --message-format=json-render-diagnostics >"$dir/build.json"
mapfile -t exes < <(grep -o '"executable":"[^"]*"' "$dir/build.json" | cut -d'"' -f4)
t_build=$(date +%s)

# --- the initramfs ---------------------------------------------------------------------------
rd=$dir/initramfs
rm -rf "$rd"
mkdir -p "$rd"/{bin,dev,proc,sys,tmp,lib/modules,tests}
cp /bin/busybox "$rd/bin/busybox"
cp "$kdir"/modules/*.ko "$rd/lib/modules/"
list=()
for e in "${exes[@]}"; do
    n=$(basename "$e" | sed 's/-[0-9a-f]*$//')
    case $n in
    kernel_uapi) continue ;; # needs a C compiler: runs on the host
    esac
    strip -o "$rd/tests/$n" "$e"
    list+=("$n")
done
# CARGO_MANIFEST_DIR (an absolute path fixed at build time) exists in the guest too. (The
# board tests, which read boards/, moved to intercore-board and run on the host.)
mkdir -p "$rd$root/crates/intercore-linux"
[[ " ${list[*]} " == *" vfio_guest "* ]] || { say "no vfio_guest test binary built"; exit 1; }
[[ " ${list[*]} " == *" pagemap_guest "* ]] || { say "no pagemap_guest test binary built"; exit 1; }
cat >"$rd/init" <<EOF
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mount -t tmpfs tmpfs /tmp
export PATH=/bin HOME=/tmp TMPDIR=/tmp RUST_BACKTRACE=1
verdict() {
    case \$1 in FAIL*)
        echo "--- guest kernel log: IOMMU and VFIO lines"; dmesg | grep -i -E 'dmar|iommu|vfio|fault'
        echo "--- guest kernel log (tail)"; dmesg | tail -n 30 ;;
    esac
    echo "INTERCORE-VFIO: \$1"; sync; poweroff -f
}
model=\$(sed -n 's/.*intercore\.iommu=\([a-z]*\).*/\1/p' /proc/cmdline)
echo "iommu model: \$model; kernel \$(uname -r)"
run() { # binary, arguments...
    b=\$1; shift
    echo "--- \$b \$*"
    /tests/\$b --test-threads=1 "\$@" || verdict "FAIL \$b \$*"
}
if [ "\$model" = phys ]; then
    # No IOMMU: edu DMAs to physical addresses; only the pagemap routes run here.
    echo 4 >/proc/sys/vm/nr_hugepages
    grep -q '^HugePages_Free: *[1-9]' /proc/meminfo || verdict "FAIL no huge pages could be reserved"
    run pagemap_guest --ignored --nocapture
    verdict "PASS \$model"
fi
for m in virtio-iommu irqbypass vfio vfio_iommu_type1 vfio-pci-core vfio-pci; do
    insmod /lib/modules/\$m.ko || verdict "FAIL insmod \$m"
done
echo 1234 11e8 >/sys/bus/pci/drivers/vfio-pci/new_id || verdict "FAIL binding edu to vfio-pci"
i=0
until ls /dev/vfio/[0-9]* >/dev/null 2>&1; do
    i=\$((i + 1)); [ \$i -lt 50 ] || verdict "FAIL no /dev/vfio/<group> (is the IOMMU on?)"
    sleep 0.1
done
echo "vfio groups: \$(ls /dev/vfio | tr '\n' ' ')"
if [ "\$model" = virtio ]; then
    # No interrupt remapping: VfioIommu must name allow_unsafe_interrupts, then it is set.
    run vfio_guest --ignored --exact vfio_set_iommu_eperm_names_allow_unsafe_interrupts --nocapture
    echo Y >/sys/module/vfio_iommu_type1/parameters/allow_unsafe_interrupts
fi
run vfio_guest --ignored --skip vfio_set_iommu_eperm --nocapture
for t in ${list[*]}; do
    case \$t in
    vfio_guest) ;;
    # The udmabuf and dma-heap instances of the conformance suites need this kernel.
    conformance) run \$t --include-ignored ;;
    # The guest has one vCPU: the one test that moves a thread between two CPUs runs on
    # the host (the tests step), not here.
    intercore_linux)
        echo "vm-vfio-test: NOT RUN in this one-vCPU guest: a_thread_on_the_peers_cpu_moves_off_it (needs two CPUs; the host's test step runs it)"
        run \$t --skip a_thread_on_the_peers_cpu_moves_off_it ;;
    *) run \$t ;;
    esac
done
verdict "PASS \$model"
EOF
chmod +x "$rd/init"
(cd "$rd" && find . | cpio -o -H newc --quiet | gzip -1) >"$dir/initramfs.cpio.gz"
t_rd=$(date +%s)

# --- boot under each IOMMU model (the guests run side by side: one vCPU each) ---------------
run=$(mktemp -d /tmp/intercore-vfio.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    rm -rf "$run"
}
trap cleanup EXIT
tb=$(date +%s.%N)
for model in $models; do
    case $model in
    intel)
        machine=(-machine q35,kernel-irqchip=split -device intel-iommu,intremap=on)
        append="intel_iommu=on"
        ;;
    virtio)
        machine=(-machine q35 -device virtio-iommu-pci)
        append=""
        ;;
    phys)
        # No IOMMU; edu's DMA mask widened from its 28-bit default to 32 bits (RAM < 4 GiB).
        machine=(-machine q35 -global edu.dma_mask=0xffffffff)
        append=""
        ;;
    *) say "unknown IOMMU model $model (intel, virtio, phys)"; exit 2 ;;
    esac
    # The IOMMU device comes before edu; -nic none avoids a missing option ROM.
    # no_timer_check: on a loaded host the TCG guest can miss the kernel's early timer-IRQ
    # test and panic ("timer doesn't work through Interrupt-remapped IO-APIC"; seen here).
    timeout -s KILL "$timeout_s" qemu-system-x86_64 -accel tcg "${machine[@]}" -cpu max -smp 1 \
        -m 512M -nographic -no-reboot -nic none -device edu -kernel "$kdir/vmlinuz" \
        -initrd "$dir/initramfs.cpio.gz" \
        -append "console=ttyS0 panic=-1 quiet no_timer_check $append intercore.iommu=$model" \
        </dev/null >"$run/$model.log" 2>&1 &
    pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || true; done
pids=()
te=$(date +%s.%N)
fail=0
for model in $models; do
    log=$run/$model.log
    verdict=$({ grep -a -o 'INTERCORE-VFIO: .*' "$log" || true; } | tr -d '\r' | tail -1)
    if [[ $verdict == "INTERCORE-VFIO: PASS $model" ]]; then
        say "$model: PASS"
        grep -a -o -E '^--- .*|^vm-vfio-test: NOT RUN[^[:cntrl:]]*|(pagemap: |dataplane over VFIO|dma-heap \+ VFIO|read-only window|never mapped|unmapped again|virtio-iommu without|1 TiB from)[^[:cntrl:]]*|^test result.*' "$log" |
            tr -d '\r' | sed "s/^/vm-vfio-test: $model: /"
    else
        echo "===== guest console ($model) ====="
        cat "$log"
        say "$model: FAILED: ${verdict:-no verdict from the guest (it crashed, or was killed after ${timeout_s}s)}"
        fail=1
    fi
done
printf 'vm-vfio-test: boots (side by side) to power-off %.1fs\n' "$(echo "$te - $tb" | bc)"
say "times: apt $((t_apt - t0))s, kernel $((t_kernel - t_apt))s, static build $((t_build - t_kernel))s, initramfs $((t_rd - t_build))s, total $(($(date +%s) - t0))s"
exit $fail
