/* Turning a built DNS reply into a frame: L2-L4 headers written in front of the message in
 * scratch space, IPv4 header and UDP checksums. */
#ifndef FABDNS_BPF_RESPOND_H
#define FABDNS_BPF_RESPOND_H

#include "consts.h"
#include "csum.h"
#include "dns.h"
#include "parse.h"

/* Writes the reply's headers into s->hdr just before s->msg and fills in both checksums;
 * sets s->q.frame_start and frame_len. The UDP checksum adds up the pseudo-header, the UDP
 * and DNS headers, the question's sum taken while the key was built (the question is sent
 * back unchanged) and the records after it: no pass over the whole reply. The query's own
 * checksum field is not used (it may hold only a partial sum, KERNEL-FACTS). Returns 0 or
 * the pass reason. */
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

    /* Pseudo-header protocol and length; UDP header (its length again); the DNS message. */
    sum += bpf_htons(IP_PROTO_UDP) + 2 * bpf_htons(udp_len) + f->sport + f->dport;
    sum += s->q.qsum + s->q.asum;
    __u16 check = csum_fold(sum);
    udp->check = check ? check : UDP_CSUM_MANGLED_0;

    s->q.frame_start = base + __builtin_offsetof(struct scratch, hdr);
    s->q.frame_len = hdr_len + reply_len;
    return 0;
}

#endif
