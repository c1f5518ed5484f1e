#!/usr/bin/env bash
# The main job on the embedded default: builds fabdnsd and fabdnsctl (nothing else), runs fabdnsd
# for a suzhou node (file source examples/globalservices.yaml, datapath on lo in xdp-generic
# mode), shows dig answered from the kernel, shows a beijing node's different answer, then keeps
# the suzhou daemon running in the foreground until Ctrl-C (FABDNS_DEMO_EXIT=1: stop after the
# show). Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/bootstrap.sh
# Only the two binaries the demo runs: the tests build later, with scripts/test.sh.
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" --target fabdnsd fabdnsctl >/dev/null
bin=build/daemon
ctl="$bin/ctl/fabdnsctl"

pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    # The demo leaves nothing attached: remove both datapaths.
    for pin in /sys/fs/bpf/fabdns /sys/fs/bpf/fabdns-beijing; do
        "$ctl" --pin-path "$pin" detach --all >/dev/null 2>&1 || true
    done
}
trap cleanup EXIT
# A TERM (or INT) ends the script through its EXIT trap, so the datapaths are removed then too.
trap 'exit 143' TERM
trap 'exit 130' INT

"$bin/app/fabdnsd" --config examples/config-suzhou.yaml &
pids+=($!)
"$bin/app/fabdnsd" --config examples/config-beijing.yaml &
pids+=($!)
for port in 9153 9154; do
    for _ in $(seq 50); do
        curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && break
        sleep 0.1
    done
done

echo
echo "\$ dig @127.0.0.1 -p 1053 nginx.default.svc.global   # suzhou node: shanghai, same region"
dig @127.0.0.1 -p 1053 nginx.default.svc.global +noall +answer
echo "\$ dig @127.0.0.1 -p 1054 nginx.default.svc.global   # beijing node: its own cluster"
dig @127.0.0.1 -p 1054 nginx.default.svc.global +noall +answer
echo "\$ dig @127.0.0.1 -p 1053 NgInX.default.svc.global AAAA"
dig @127.0.0.1 -p 1053 NgInX.default.svc.global AAAA +noall +answer
echo
echo "\$ fabdnsctl --config examples/config-suzhou.yaml stats"
"$ctl" --config examples/config-suzhou.yaml stats
if [ "${FABDNS_DEMO_EXIT:-0}" = 1 ]; then exit 0; fi
echo
echo "fabdnsd (suzhou node) keeps running on 127.0.0.1:1053; Ctrl-C stops it."
kill -TERM "${pids[1]}" 2>/dev/null || true
wait "${pids[0]}"
