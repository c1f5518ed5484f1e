#!/usr/bin/env bash
# Builds everything and runs every test: the main build (unit, datapath, end-to-end, benchmark
# smoke), the datapath on Debian 12's 6.1 kernel under qemu, the same tests under ASan+UBSan,
# and the fuzzers for a bounded time. Needs root
# (installs dependencies, BPF, network namespaces).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/bootstrap.sh
fuzz_seconds=${FABDNS_FUZZ_SECONDS:-20}
status=0

echo "== build (RelWithDebInfo)"
scripts/build.sh build -DCMAKE_BUILD_TYPE=RelWithDebInfo
echo "== tests"
(cd build && ctest --output-on-failure -j1) || status=1
echo "== datapath and attach/detach tests on Debian 12's stock kernel (6.1) under qemu"
tests/qemu/run.sh build || status=1

echo "== build (ASan+UBSan)"
scripts/build.sh build-asan -DCMAKE_BUILD_TYPE=Debug -DFABDNS_SANITIZE=ON
echo "== tests under ASan+UBSan (end-to-end and benchmark smoke excluded: they run above)"
(cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --output-on-failure -j1 -LE "e2e|bench") || status=1

echo "== fuzzers (${fuzz_seconds}s each)"
CC=clang CXX=clang++ cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug -DFABDNS_FUZZ=ON >/dev/null
cmake --build build-fuzz -j"$(nproc)" --target fabdns_fuzz_respond fabdns_fuzz_hub fabdns_fuzz_kube \
    fabdns_fuzz_file
tests/fuzz/run.sh build-fuzz "$fuzz_seconds" || status=1

if [ $status -eq 0 ]; then echo "== all tests passed"; else echo "== FAILURES (see above)"; fi
exit $status
