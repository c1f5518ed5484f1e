/* Turning a built DNS reply into a frame: L2-L4 headers written in front of the message in
 * scratch space, IPv4 header and UDP checksums computed over the reply itself. */
#ifndef FABDNS_BPF_RESPOND_H
#define FABDNS_BPF_RESPOND_H

#include "consts.h"
#include "dns.h"
#include "parse.h"

#define CSUM_CHUNK 256 /* bpf_csum_diff is fed in bounded, 4-byte-multiple pieces */

static __always_inline __u16 csum_fold(__u64 sum) {
    sum = (sum & 0xffffffff) + (sum >> 32);
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    return ~sum & 0xffff;
}

/* Sum of 16-bit words as they lie in memory (byte-order independent for a ones' complement
 * checksum stored back the same way). */
static __always_inline __u64 sum16(const __u8 *p, __u32 n) {
    __u64 sum = 0;
    for (__u32 i = 0; i + 1 < n; i += 2) sum += *(const __u16 *)(p + i);
    return sum;
}

/* Writes the reply's headers into s->hdr just before s->msg and fills in both checksums;
 * sets s->q.frame_start and frame_len. Returns 0 or the pass reason. */
__global enum fabdns_stat fabdns_finish_frame(struct scratch *s, __u64 reply_len) {
    if (!s || reply_len > REPLY_MASK) return FABDNS_STAT_RESIZE;
    const struct frame *f = &s->f;
    __u32 l3_len = f->is_v6 ? IPV6_HDR_LEN : IPV4_HDR_MIN;
    __u32 l2_len = ETH_HDR_LEN + (f->has_vlan ? VLAN_HDR_LEN : 0);
    __u32 hdr_len = l2_len + l3_len + UDP_HDR_LEN;
    __u32 udp_len = UDP_HDR_LEN + reply_len;
    __u32 base = SCRATCH_HDR_ROOM - hdr_len;
    __u8 *h;
    __u64 sum;

    if (base > SCRATCH_HDR_ROOM - (ETH_HDR_LEN + IPV4_HDR_MIN + UDP_HDR_LEN))
        return FABDNS_STAT_RESIZE;
    h = &s->hdr[base];

    /* Ethernet (+ tag): back to the sender. */
    copy_words(h, f->eth_src, ETH_ALEN_);
    copy_words(h + ETH_ALEN_, f->eth_dst, ETH_ALEN_);
    if (f->has_vlan) {
        *(__u16 *)(h + 12) = bpf_htons(ETH_TYPE_8021Q);
        *(__u16 *)(h + 14) = f->vlan_tci;
        h += VLAN_HDR_LEN;
    }
    *(__u16 *)(h + 12) = bpf_htons(f->is_v6 ? ETH_TYPE_IPV6 : ETH_TYPE_IPV4);
    h += ETH_HDR_LEN;

    if (f->is_v6) {
        struct ipv6hdr *ip6 = (void *)h;
        /* The flow label is kept; the traffic class is zero, as from the resolver's socket
         * (no ECN or DSCP copied from the query). */
        *(__u32 *)ip6 = f->v6_first_word & ~bpf_htonl(IPV6_TCLASS_MASK);
        ip6->payload_len = bpf_htons(udp_len);
        ip6->nexthdr = IP_PROTO_UDP;
        ip6->hop_limit = IP_REPLY_TTL;
        __builtin_memcpy(&ip6->saddr, f->daddr, 16);
        __builtin_memcpy(&ip6->daddr, f->saddr, 16);
        sum = sum16(f->saddr, 16) + sum16(f->daddr, 16);
    } else {
        struct iphdr *ip = (void *)h;
        *(__u8 *)ip = IPV4_VER_IHL_NO_OPTIONS;
        ip->tos = 0; /* as from the resolver's socket: no ECN or DSCP copied from the query */
        ip->tot_len = bpf_htons(IPV4_HDR_MIN + udp_len);
        ip->id = 0;
        ip->frag_off = bpf_htons(IPV4_FLAG_DF);
        ip->ttl = IP_REPLY_TTL;
        ip->protocol = IP_PROTO_UDP;
        ip->check = 0;
        __builtin_memcpy(&ip->saddr, f->daddr, 4);
        __builtin_memcpy(&ip->daddr, f->saddr, 4);
        ip->check = csum_fold(sum16(h, IPV4_HDR_MIN));
        sum = sum16(f->saddr, 4) + sum16(f->daddr, 4);
    }
    h += l3_len;

    struct udphdr *udp = (void *)h;
    udp->source = f->dport;
    udp->dest = f->sport;
    udp->len = bpf_htons(udp_len);
    udp->check = 0;

    /* Pseudo-header protocol and length, then the UDP header and message (zero-padded). */
    sum += bpf_htons(IP_PROTO_UDP) + bpf_htons(udp_len);
    __u32 padded = (udp_len + 3) & ~3u;
    __u8 *p = (__u8 *)udp;
    for (int c = 0; c < 3; c++) {
        if (padded == 0) break;
        __u32 n = padded > CSUM_CHUNK ? CSUM_CHUNK : padded;
        n = bound(n - 1, CSUM_CHUNK - 1) + 1; /* 1..CSUM_CHUNK, visibly to the verifier */
        __s64 r = bpf_csum_diff(0, 0, (void *)p, n, 0);
        if (r < 0) return FABDNS_STAT_RESIZE;
        sum += (__u32)r;
        p += CSUM_CHUNK;
        padded -= n;
    }
    __u16 check = csum_fold(sum);
    udp->check = check ? check : UDP_CSUM_MANGLED_0;

    s->q.frame_start = base + __builtin_offsetof(struct scratch, hdr);
    s->q.frame_len = hdr_len + reply_len;
    return 0;
}

#endif
