#!/usr/bin/env bash
# Boots Debian 12's stock kernel (6.1, see kernel.sh) under qemu with software emulation (no KVM
# needed) and runs the datapath packet tests and the loader's attach/detach tests there. The
# initramfs holds busybox, the test binaries, the tools they call (ip, tc), every
# library these need (from ldd) and the kernel modules. Each test prints a result line on the
# serial console; this script parses them and fails unless every test reported a pass. A
# timeout bounds the whole run so that it can never hang.
# Usage: tests/qemu/run.sh <build-dir>   (env: FABDNS_QEMU_TIMEOUT seconds, default 240;
#        FABDNS_QEMU_KEEP=1 keeps the work directory)
set -euo pipefail

build=$(realpath "${1:?usage: run.sh <build-dir>}")
here=$(dirname "$(realpath "$0")")
timeout_s=${FABDNS_QEMU_TIMEOUT:-240}
for tool in qemu-system-x86_64 busybox cpio ldd; do
    command -v "$tool" >/dev/null || { echo "run.sh: $tool missing (scripts/bootstrap.sh)" >&2; exit 1; }
done

kdir=$("$here/kernel.sh")
work=$(mktemp -d /tmp/fabdns-qemu.XXXXXX)
[ "${FABDNS_QEMU_KEEP:-}" = 1 ] || trap 'rm -rf "$work"' EXIT
root="$work/root"
mkdir -p "$root"/{bin,sbin,proc,sys,dev,tmp,run,etc,modules}

# Tests run in the guest: name, then the command line (binaries keep their host paths). Every
# object load costs seconds under emulation, so the loader runs only its attach/detach tests:
# every mode (tc takes the clsact fallback there), the answer table's two copies, restart
# adoption and foreign filters.
tests=(
    "datapath-packets|$build/tests/datapath/fabdns_datapath_test"
    "kernel-requirements|$build/tests/kernels/fabdns_kernels_test"
    "loader-attach-detach|$build/tests/loader/fabdns_loader_test --gtest_filter=LoaderTest.AttachDetachEveryModeLeavesNoTrace:LoaderTest.BatchesSwitchCopiesAndLeaveBothTheSame:LoaderTest.ARestartMakesTheStandbyCopyEqualToTheReadOne:ClsactTest.RestartReplacesTheProgramInPlaceWithoutAGap:ClsactTest.ForeignFiltersAndQdiscAreLeftAlone"
)
binaries=(
    "$build/tests/datapath/fabdns_datapath_test" "$build/tests/loader/fabdns_loader_test"
    "$build/tests/kernels/fabdns_kernels_test"
    /usr/sbin/ip /usr/sbin/tc /bin/dash
)

copy() {  # copies a file to the same path inside the guest root
    mkdir -p "$root$(dirname "$1")"
    cp -L "$1" "$root$1"
}
for b in "${binaries[@]}"; do
    [ -x "$b" ] || { echo "run.sh: $b not built" >&2; exit 1; }
    mkdir -p "$root$(dirname "$b")"
    # Debug info is not needed in the guest and would triple the initramfs.
    strip --strip-debug -o "$root$b" "$b"
    for lib in $(ldd "$b" | awk '/=> \// { print $3 } /^\t\// { print $1 }'); do
        [ -e "$root$lib" ] || copy "$lib"
    done
done
# The requirements test reads the object and docs/kernels.md by their host paths.
copy "$build/bpf/fabdns.bpf.o"
copy "$(realpath "$here/../../docs/kernels.md")"
cp /bin/busybox "$root/bin/busybox"
# The tests' popen() runs /bin/sh: dash, because busybox's shell would run its own (reduced) ip
# and tc applets instead of iproute2's.
ln -s dash "$root/bin/sh"
cp "$kdir"/modules/*.ko "$kdir/modules/order" "$root/modules/"
echo "root:x:0:0:root:/:/bin/sh" >"$root/etc/passwd"
echo "nogroup:x:65534:" >"$root/etc/group"
printf '%s\n' "${tests[@]}" >"$root/tests"
cp "$here/init" "$root/init"
chmod +x "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$work/initramfs.gz"

log="$work/console.log"
echo "== qemu: $(basename "$kdir") ($(du -h "$work/initramfs.gz" | cut -f1) initramfs), timeout ${timeout_s}s"
start=$(date +%s)
set +e
timeout -k 5 "$timeout_s" qemu-system-x86_64 -accel tcg -smp 2 -m 1024 \
    -kernel "$kdir/vmlinuz" -initrd "$work/initramfs.gz" \
    -append "console=ttyS0 quiet panic=-1 oops=panic" \
    -nographic -no-reboot -monitor none -serial stdio </dev/null | tee "$log" | sed -u 's/^/  guest| /'
qemu_rc=${PIPESTATUS[0]}
set -e
echo  # a killed guest leaves its last line unfinished
elapsed=$(($(date +%s) - start))

status=0
[ "$qemu_rc" -eq 124 ] && { echo "== qemu: timed out after ${timeout_s}s"; status=1; }
for t in "${tests[@]}"; do
    name=${t%%|*}
    if grep -aq "FABDNS-QEMU-RESULT $name pass" "$log"; then
        echo "== qemu: $name: pass"
    elif grep -aq "FABDNS-QEMU-RESULT $name fail" "$log"; then
        echo "== qemu: $name: FAIL"; status=1
    else
        echo "== qemu: $name: no result (guest crashed or timed out)"; status=1
    fi
done
grep -aq "FABDNS-QEMU-DONE" "$log" || { echo "== qemu: the guest did not finish"; status=1; }
kernel=$(grep -ao 'FABDNS-QEMU-KERNEL.*' "$log" | tr -d '\r' | cut -d' ' -f2-)
echo "== qemu: boot and tests took ${elapsed}s (guest: ${kernel:-never reached init})"
exit $status
