/* Ethernet / 802.1Q / IPv4 / IPv6 / UDP parsing with direct packet access: finds a UDP
 * datagram addressed to an answer_for destination and records what the reply needs. */
#ifndef FABDNS_BPF_PARSE_H
#define FABDNS_BPF_PARSE_H

#include "consts.h"
#include "maps.h"
#include "mem.h"

/* 0 when the destination is in the listen map, else the pass reason. The last destination
 * found there is kept per CPU and trusted without a lookup while the generation gen (read
 * before the lookup, renewed after every change of the map) is unchanged. */
static __always_inline int check_listen(struct scratch *s, __u64 gen) {
    const struct frame *f = &s->f;
    /* Aligned for the word compare below (the verifier refuses misaligned stack reads). */
    struct fabdns_listen_key k __attribute__((aligned(8))) = {};
    const __u64 *kw = (const __u64 *)&k, *hw = (const __u64 *)&s->listen_hit;

    if (f->is_v6) {
        __builtin_memcpy(k.addr, f->daddr, 16);
    } else {
        k.addr[10] = 0xff;
        k.addr[11] = 0xff;
        __builtin_memcpy(&k.addr[12], f->daddr, 4);
    }
    k.port = f->dport;
    if (gen && gen == s->listen_gen &&
        ((kw[0] ^ hw[0]) | (kw[1] ^ hw[1]) | (*(const __u32 *)&kw[2] ^ *(const __u32 *)&hw[2])) ==
            0)
        return 0;
    if (!bpf_map_lookup_elem(&listen, &k)) return FABDNS_STAT_NOT_FOR_US;
    s->listen_hit = k;
    s->listen_gen = gen;
    return 0;
}

static __always_inline int ipv6_is_loopback(const __u32 *a) {
    return (a[0] | a[1] | a[2]) == 0 && a[3] == bpf_htonl(1);
}

static __always_inline int ipv6_is_v4_mapped(const __u32 *a) {
    return (a[0] | a[1]) == 0 && a[2] == bpf_htonl(0xffff);
}

/* After the listen check: what the stack would not answer (SPEC §4). Group MAC destinations;
 * martian, multicast and broadcast sources; loopback addresses off lo; reflection ports.
 * Returns 0 or the pass reason. */
static __always_inline int check_sanity(const struct frame *f) {
    if (f->eth_dst[0] & ETH_GROUP_BIT) return FABDNS_STAT_GROUP_MAC;
    if (f->is_v6) {
        const __u32 *s = (const __u32 *)f->saddr, *d = (const __u32 *)f->daddr;

        if ((s[0] | s[1] | s[2] | s[3]) == 0 || f->saddr[0] == IPV6_MULTICAST_PREFIX ||
            ipv6_is_v4_mapped(s))
            return FABDNS_STAT_BAD_ADDRESS;
        if (!f->on_lo && (ipv6_is_loopback(s) || ipv6_is_loopback(d)))
            return FABDNS_STAT_BAD_ADDRESS;
    } else {
        __u8 s0 = f->saddr[0];

        if (s0 == IPV4_NET_THIS || (s0 & IPV4_MULTICAST_MASK) == IPV4_MULTICAST_NET ||
            *(const __u32 *)f->saddr == IPV4_BROADCAST)
            return FABDNS_STAT_BAD_ADDRESS;
        if (!f->on_lo && (s0 == IPV4_NET_LOOPBACK || f->daddr[0] == IPV4_NET_LOOPBACK))
            return FABDNS_STAT_BAD_ADDRESS;
    }
    if (dns_is_reflection_port(bpf_ntohs(f->sport))) return FABDNS_STAT_REFLECTION;
    return 0;
}

/* Parses L2-L4 of a frame of pkt_len bytes whose headers are at [data, data_end) (for TC
 * the linear part may be shorter than the frame). Returns 0 for a UDP datagram whose headers
 * are consistent (f filled in), else the pass reason. */
static __always_inline int parse_frame(void *data, void *data_end, __u32 pkt_len, __u32 ifindex,
                                       struct frame *f) {
    struct ethhdr *eth = data;
    __u32 off = ETH_HDR_LEN;
    __u16 proto;
    __u32 udp_off, udp_len;

    f->has_vlan = 0; /* f is reused scratch space */
    f->is_v6 = 0;
    if ((void *)(eth + 1) > data_end) return FABDNS_STAT_NOT_DNS;
    copy_words(f->eth_dst, eth->h_dest, ETH_ALEN_);
    copy_words(f->eth_src, eth->h_source, ETH_ALEN_);
    /* lo's frames carry zero MACs; a loopback address in a frame with real ones (or on
     * another device) was not sent by this host. */
    f->on_lo =
        ifindex == LOOPBACK_IFINDEX && (*(__u32 *)f->eth_dst | *(__u16 *)&f->eth_dst[4] |
                                        *(__u32 *)f->eth_src | *(__u16 *)&f->eth_src[4]) == 0;
    proto = eth->h_proto;
    if (proto == bpf_htons(ETH_TYPE_8021Q)) {
        struct vlan_hdr {
            __be16 tci;
            __be16 proto;
        } *vh = data + ETH_HDR_LEN;
        if ((void *)(vh + 1) > data_end) return FABDNS_STAT_NOT_DNS;
        f->has_vlan = 1;
        f->vlan_tci = vh->tci;
        proto = vh->proto;
        off += VLAN_HDR_LEN;
    }

    if (proto == bpf_htons(ETH_TYPE_IPV4)) {
        struct iphdr *ip = data + off;
        __u32 ihl_bytes, tot_len;

        if ((void *)(ip + 1) > data_end) return FABDNS_STAT_NOT_DNS;
        if (ip->version != IPV4_VERSION || ip->ihl < IPV4_HDR_MIN / 4) return FABDNS_STAT_MALFORMED;
        if (ip->protocol != IP_PROTO_UDP) return FABDNS_STAT_NOT_DNS;
        if (ip->frag_off & bpf_htons(IPV4_FLAG_MF | IPV4_FRAG_OFFSET_MASK))
            return FABDNS_STAT_FRAGMENT;
        ihl_bytes = ip->ihl * 4;
        tot_len = bpf_ntohs(ip->tot_len);
        if (tot_len < ihl_bytes + UDP_HDR_LEN || off + tot_len > pkt_len)
            return FABDNS_STAT_MALFORMED;
        __builtin_memcpy(f->saddr, &ip->saddr, 4);
        __builtin_memcpy(f->daddr, &ip->daddr, 4);
        udp_off = off + ihl_bytes;
        udp_len = tot_len - ihl_bytes;
    } else if (proto == bpf_htons(ETH_TYPE_IPV6)) {
        struct ipv6hdr *ip6 = data + off;
        __u8 nh;

        if ((void *)(ip6 + 1) > data_end) return FABDNS_STAT_NOT_DNS;
        if (ip6->version != IPV6_VERSION) return FABDNS_STAT_MALFORMED;
        nh = ip6->nexthdr;
        if (nh != IP_PROTO_UDP) {
            if (nh == IPV6_NEXT_HOPOPT || nh == IPV6_NEXT_ROUTING || nh == IPV6_NEXT_FRAGMENT ||
                nh == IPV6_NEXT_DSTOPTS || nh == IPV6_NEXT_AH || nh == IPV6_NEXT_ESP ||
                nh == IPV6_NEXT_MOBILITY)
                return FABDNS_STAT_IPV6_EXT;
            return FABDNS_STAT_NOT_DNS;
        }
        udp_len = bpf_ntohs(ip6->payload_len);
        if (udp_len < UDP_HDR_LEN || off + IPV6_HDR_LEN + udp_len > pkt_len)
            return FABDNS_STAT_MALFORMED;
        f->is_v6 = 1;
        __builtin_memcpy(&f->v6_first_word, ip6, 4);
        __builtin_memcpy(f->saddr, &ip6->saddr, 16);
        __builtin_memcpy(f->daddr, &ip6->daddr, 16);
        udp_off = off + IPV6_HDR_LEN;
        /* Before the listen check: the listen map spells IPv4 destinations this way. */
        if (ipv6_is_v4_mapped((const __u32 *)f->daddr)) return FABDNS_STAT_V4_MAPPED;
    } else {
        return FABDNS_STAT_NOT_DNS;
    }

    /* Bound the offset so the verifier can check the UDP header access below. */
    if (udp_off > ETH_HDR_LEN + VLAN_HDR_LEN + 60) return FABDNS_STAT_MALFORMED;
    struct udphdr *udp = data + udp_off;
    if ((void *)(udp + 1) > data_end) return FABDNS_STAT_MALFORMED;
    if (bpf_ntohs(udp->len) != udp_len) return FABDNS_STAT_MALFORMED;
    f->sport = udp->source;
    f->dport = udp->dest;
    f->dns_off = udp_off + UDP_HDR_LEN;
    f->dns_len = udp_len - UDP_HDR_LEN;
    return 0;
}

#endif
