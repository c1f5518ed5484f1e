// SPDX-License-Identifier: GPL-2.0
// XDP_PASS on a veth end: creates the NAPI context (needed for threaded NAPI and for native
// XDP_TX from the peer) without changing any packet.
#include <linux/bpf.h>
#define SEC(n) __attribute__((section(n), used))
SEC("xdp") int xdp_pass(struct xdp_md *ctx) {
    return XDP_PASS;
}
char _license[] SEC("license") = "GPL";
