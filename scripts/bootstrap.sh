#!/usr/bin/env bash
# Installs every build, test and benchmark dependency on a fresh Debian 12 machine (and caches
# Debian 12's stock kernel for the qemu tests) and mounts bpffs. Idempotent; needs root.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
    echo "bootstrap.sh: run as root (apt-get, bpffs)" >&2
    exit 1
fi

packages=(
    # build
    cmake g++ make pkg-config clang llvm clang-format
    libbpf-dev libelf-dev zlib1g-dev linux-libc-dev bpftool
    libldns-dev libyaml-cpp-dev libyaml-dev nlohmann-json3-dev rapidjson-dev libcli11-dev
    libcurl4-openssl-dev libmicrohttpd-dev libssl-dev libxxhash-dev
    libgtest-dev libgmock-dev googletest libbenchmark-dev
    # sanitizers and fuzzers (clang's runtime)
    libclang-rt-14-dev
    # tests: real peers and tools
    iproute2 dnsutils ldnsutils unbound knot knot-dnsutils dnsperf openssl ethtool
    python3 python3-pytest python3-yaml procps
    # tests on Debian 12's stock kernel under qemu (tests/qemu)
    qemu-system-x86 busybox-static cpio dash binutils
    # benchmark plots
    python3-matplotlib
)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The packaged unbound/knot services are not wanted: tests start their own on loopback.
for svc in unbound knot; do
    if command -v systemctl >/dev/null && systemctl is-active --quiet "$svc" 2>/dev/null; then
        systemctl stop "$svc" || true
    fi
    pkill -x "${svc/knot/knotd}" 2>/dev/null || true
done

# Debian 12's stock kernel for tests/qemu: downloaded and extracted to a cache, not installed.
"$(dirname "$0")/../tests/qemu/kernel.sh" >/dev/null

if ! mountpoint -q /sys/fs/bpf; then
    mount -t bpf bpf /sys/fs/bpf
fi
