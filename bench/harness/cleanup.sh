#!/usr/bin/env bash
# Undoes everything the benchmark harness set up, from the records topology.py keeps in the
# state directory: processes it started (by PID, only if still one of ours), network namespaces
# (their veths go with them), BPF pin directories, sysctls it changed. Idempotent; run by
# bench/run on EXIT.
# Usage: cleanup.sh STATE_DIR [EXIT_STATUS]   (the state directory is removed when status is 0)
state="${1:?state dir}"
status="${2:-0}"
[[ -d "$state" ]] || exit 0

ours='fabdnsd|knotd|unbound|kxdpgun|dnsperf|python3|perf|nsenter|taskset|sleep'
if [[ -f "$state/pids" ]]; then
    for sig in TERM KILL; do
        while read -r pid; do
            [[ "$pid" =~ ^[0-9]+$ ]] || continue
            comm="$(cat "/proc/$pid/comm" 2>/dev/null)" || continue
            [[ "$comm" =~ ^($ours)$ ]] || continue
            kill "-$sig" "$pid" 2>/dev/null
        done < "$state/pids"
        [[ $sig == TERM ]] && sleep 1
    done
fi
if [[ -f "$state/sysctl" ]]; then
    while IFS='=' read -r key value; do
        [[ -n "$key" ]] && sysctl -qw "$key=$value" 2>/dev/null
    done < "$state/sysctl"
fi
if [[ -f "$state/netns" ]]; then
    while read -r ns; do
        [[ "$ns" =~ ^fbb[0-9]+[sc]$ ]] || continue
        ip netns del "$ns" 2>/dev/null
    done < "$state/netns"
fi
# a veth left in the root namespace if setup failed half-way
for dev in $(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1 | grep -E '^fbb[0-9]+[hp]$'); do
    tag="${dev:3:${#dev}-4}"
    grep -qx "fbb${tag}s" "$state/netns" 2>/dev/null && ip link del "$dev" 2>/dev/null
done
if [[ -f "$state/pins" ]]; then
    while read -r pin; do
        [[ "$pin" =~ ^/sys/fs/bpf/fbb[0-9]+$ ]] && rm -rf "$pin"
    done < "$state/pins"
fi
if [[ "$status" == 0 ]]; then
    rm -rf "$state"
else
    echo "bench/run: state and logs kept in $state" >&2
fi
exit 0
