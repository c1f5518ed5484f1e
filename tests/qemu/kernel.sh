#!/usr/bin/env bash
# Fetches Debian 12's stock kernel (the package linux-image-amd64 depends on) without installing
# it: downloads the .deb and extracts the kernel image and the few modules the guest tests need
# into a cache directory. Prints that directory (holding vmlinuz and modules/) on stdout.
# Usage: tests/qemu/kernel.sh [cache-dir]   (default $FABDNS_KERNEL_CACHE or /var/cache/fabdns/kernels)
set -euo pipefail

cache=${1:-${FABDNS_KERNEL_CACHE:-/var/cache/fabdns/kernels}}
# Modules the guest loads: veth (xdp on a veth pair), clsact (sch_ingress), cls_bpf (tc mode
# before tcx) and cls_u32 (a foreign filter sharing clsact with ours).
modules=(veth sch_ingress cls_bpf cls_u32)

image_package() {
    apt-cache depends linux-image-amd64 2>/dev/null |
        awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }'
}
pkg=$(image_package)
if [ -z "$pkg" ] && [ "$(id -u)" -eq 0 ]; then
    apt-get update -qq >&2
    pkg=$(image_package)
fi
if [ -z "$pkg" ]; then
    echo "kernel.sh: apt-cache does not know linux-image-amd64 (run apt-get update)" >&2
    exit 1
fi
version=$(apt-cache policy "$pkg" | awk '$1 == "Candidate:" { print $2 }')
dir="$cache/$pkg-$version"
if [ -f "$dir/vmlinuz" ] && [ -f "$dir/modules/.complete" ]; then
    echo "$dir"
    exit 0
fi

mkdir -p "$cache"
rm -rf "$dir" "$dir.tmp"
mkdir -p "$dir.tmp/deb" "$dir.tmp/x"
# apt's sandbox user cannot write to a root-owned cache: download as root, quietly.
(cd "$dir.tmp/deb" && apt-get download -q -o APT::Sandbox::User=root "$pkg=$version" >&2)
deb=$(ls "$dir.tmp/deb"/*.deb)
kver=${pkg#linux-image-}
# Only the members needed: extracting the whole package (~400 MB of modules) takes far longer.
dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$dir.tmp/x" --wildcards \
    "./boot/vmlinuz-$kver" "./boot/config-$kver" "./lib/modules/$kver/kernel/drivers/net/*" \
    "./lib/modules/$kver/kernel/net/sched/*"
mkdir -p "$dir.tmp/modules"
cp "$dir.tmp/x/boot/vmlinuz-$kver" "$dir.tmp/vmlinuz"
cp "$dir.tmp/x/boot/config-$kver" "$dir.tmp/config"

# Copies a module after its dependencies (read from the module's .modinfo "depends=" field)
# and appends it to modules/order, the insmod order.
add_module() {
    local name=$1 path deps dep
    [ -e "$dir.tmp/modules/$name.ko" ] && return 0
    path=$(find "$dir.tmp/x/lib/modules/$kver" -name "$name.ko" | head -n1)
    deps=$(tr '\0' '\n' <"$path" | sed -n 's/^depends=//p' | tr ',' ' ')
    for dep in $deps; do add_module "$dep"; done
    cp "$path" "$dir.tmp/modules/$name.ko"
    echo "$name.ko" >>"$dir.tmp/modules/order"
}
for m in "${modules[@]}"; do
    if [ -z "$(find "$dir.tmp/x/lib/modules/$kver" -name "$m.ko" | head -n1)" ]; then
        echo "kernel.sh: module $m not found in $pkg" >&2
        exit 1
    fi
    add_module "$m"
done
touch "$dir.tmp/modules/.complete"
rm -rf "$dir.tmp/x" "$dir.tmp/deb"
mv "$dir.tmp" "$dir"
echo "$dir"
