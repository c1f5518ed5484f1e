/* fabdns datapath entry points: XDP and TC (tcx ingress, direct action). Both answer hot
 * .global A/AAAA queries from the answers map and pass everything else untouched. */
#include <linux/bpf.h>
/* libbpf's helper declarations need the kernel types above. */
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/pkt_cls.h>
#include <linux/udp.h>

#include "lib/datapath.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("xdp")
int fabdns_xdp(struct xdp_md *ctx) {
    void *data = (void *)(long)ctx->data;
    void *data_end = (void *)(long)ctx->data_end;
    struct scratch *s = get_scratch();
    int reason = FABDNS_STAT_RESIZE, delta;

    if (!s) goto pass;
    reason = datapath_accept(data, data_end, data_end - data, ctx->ingress_ifindex, s);
    if (reason) goto pass;
    if (bpf_xdp_load_bytes(ctx, s->f.dns_off, s->msg, query_copy_len(s)) < 0) {
        reason = FABDNS_STAT_MALFORMED;
        goto pass;
    }
    reason = datapath_answer(s);
    if (reason) goto pass;

    /* Resize: grow at the tail where there is room, else at the head (native XDP on veth
     * leaves little tailroom); the whole frame is rewritten from offset 0 either way. */
    delta = (int)s->q.frame_len - (int)(data_end - data);
    if (delta && bpf_xdp_adjust_tail(ctx, delta) < 0 &&
        (delta < 0 || bpf_xdp_adjust_head(ctx, -delta) < 0)) {
        reason = FABDNS_STAT_RESIZE;
        goto pass;
    }
    if (bpf_xdp_store_bytes(ctx, 0, frame_ptr(s), frame_len(s)) < 0) {
        /* The packet was already resized: it can no longer be passed as it came. */
        count(FABDNS_STAT_RESIZE);
        return XDP_ABORTED;
    }
    count(FABDNS_STAT_ANSWERED);
    return XDP_TX;
pass:
    count(reason);
    return XDP_PASS;
}

SEC("tc")
int fabdns_tc(struct __sk_buff *skb) {
    struct scratch *s = get_scratch();
    int reason = FABDNS_STAT_RESIZE;
    __u32 want = ETH_HDR_LEN + VLAN_HDR_LEN + IPV6_HDR_LEN + UDP_HDR_LEN;

    if (!s) goto pass;
    /* Headers are parsed with direct access, so they must be in the linear part. */
    if (skb->data_end - skb->data < want && skb->len > skb->data_end - skb->data)
        bpf_skb_pull_data(skb, skb->len < want ? skb->len : want);

    reason = datapath_accept((void *)(long)skb->data, (void *)(long)skb->data_end, skb->len,
                             skb->ingress_ifindex, s);
    if (reason) goto pass;
    if (bpf_skb_load_bytes(skb, s->f.dns_off, s->msg, query_copy_len(s)) < 0) {
        reason = FABDNS_STAT_MALFORMED;
        goto pass;
    }
    reason = datapath_answer(s);
    if (reason) goto pass;
    if (bpf_skb_change_tail(skb, s->q.frame_len, 0) < 0) {
        reason = FABDNS_STAT_RESIZE;
        goto pass;
    }
    if (bpf_skb_store_bytes(skb, 0, frame_ptr(s), frame_len(s), 0) < 0) {
        count(FABDNS_STAT_RESIZE);
        return TC_ACT_SHOT;
    }
    count(FABDNS_STAT_ANSWERED);
    return bpf_redirect(skb->ifindex, 0);
pass:
    count(reason);
    return TC_ACT_OK;
}
