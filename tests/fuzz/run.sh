#!/usr/bin/env bash
# Runs every fabdns fuzzer for SECONDS with its seed corpus (tests/fuzz/corpus/<name>/) and
# exits non-zero when one crashes. Build first:
#   CC=clang CXX=clang++ cmake -S . -B build-fuzz -DFABDNS_FUZZ=ON
#   cmake --build build-fuzz --target fabdns_fuzz_respond fabdns_fuzz_hub fabdns_fuzz_kube \
#       fabdns_fuzz_file
# Usage: tests/fuzz/run.sh BUILD_DIR SECONDS
set -euo pipefail

if [ $# -ne 2 ]; then
    echo "usage: $0 BUILD_DIR SECONDS" >&2
    exit 2
fi
build=$(cd "$1" && pwd)
seconds=$2
here=$(cd "$(dirname "$0")" && pwd)
fuzzers=(respond hub kube file)

status=0
for name in "${fuzzers[@]}"; do
    bin="$build/tests/fuzz/fabdns_fuzz_$name"
    if [ ! -x "$bin" ]; then
        echo "$name: $bin not built (configure with CC=clang CXX=clang++ -DFABDNS_FUZZ=ON)" >&2
        exit 2
    fi
    # New inputs go to a scratch corpus so the checked-in seeds stay as they are; crash
    # inputs are kept under the build dir.
    scratch=$(mktemp -d)
    artifacts="$build/fuzz-artifacts/$name"
    mkdir -p "$artifacts"
    echo "== $name: ${seconds}s"
    if "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$artifacts/" "$scratch" "$here/corpus/$name" \
        >"$artifacts/log" 2>&1; then
        grep -E '^(#[0-9]+.*DONE|stat::number_of_executed_units|stat::new_units_added)' \
            "$artifacts/log" || true
        echo "== $name: no crash"
    else
        status=1
        tail -n 60 "$artifacts/log"
        echo "== $name: CRASH (inputs in $artifacts/, full log in $artifacts/log)" >&2
    fi
    rm -rf "$scratch"
done
exit $status
