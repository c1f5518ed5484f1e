// SPDX-License-Identifier: GPL-2.0
// The benchmarks' reference point: a minimal A-only XDP DNS responder.
//
// It answers UDP/IPv4 queries to port 53 (no IP options, no fragments, QDCOUNT 1, type A,
// class IN, optionally one 11-byte OPT record without options) for names found in the
// `ref_names` hash map, whose key is the query name in wire format, zero-padded to 256 bytes
// (compared as sent: no case folding). The reply carries one A record with a compression
// pointer (+16 bytes) and, when the query had OPT, OPT with payload size 1232. IPv4 header
// checksum is recomputed; the UDP checksum is set to 0 (allowed for IPv4). Everything else is
// XDP_PASS. This is deliberately the least work an in-kernel answer can take; the fabdns
// datapath does more (IPv6, VLAN, case folding with 0x20 preserved, several records, AAAA,
// full UDP checksum, answer_for, staleness, per-reason counters).
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>

#define SEC(n) __attribute__((section(n), used))
#define __uint(name, val) int(*name)[val]
#define __type(name, val) typeof(val) *name
#undef __always_inline
#define __always_inline inline __attribute__((always_inline))

static long (*bpf_xdp_adjust_head)(struct xdp_md *, int) = (void *)BPF_FUNC_xdp_adjust_head;
static long (*bpf_xdp_adjust_tail)(struct xdp_md *, int) = (void *)BPF_FUNC_xdp_adjust_tail;
static long (*bpf_xdp_load_bytes)(struct xdp_md *, __u32, void *,
                                  __u32) = (void *)BPF_FUNC_xdp_load_bytes;
static long (*bpf_xdp_store_bytes)(struct xdp_md *, __u32, void *,
                                   __u32) = (void *)BPF_FUNC_xdp_store_bytes;
static void *(*bpf_map_lookup_elem)(void *, const void *) = (void *)BPF_FUNC_map_lookup_elem;

#define NAME_KEY 256
#define HDRS 42     /* Ethernet + IPv4 (no options) + UDP */
#define DNS_MAX 288 /* longest query message handled: header + name + qtype/class + OPT */
#define BUF (HDRS + DNS_MAX + 32)

struct ref_key {
    __u8 name[NAME_KEY];
};
struct ref_value {
    __u32 addr; /* network byte order */
    __u32 ttl;  /* host byte order */
};
struct scratch {
    struct ref_key key;
    __u8 buf[BUF + 32];
};

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 65536);
    __type(key, struct ref_key);
    __type(value, struct ref_value);
} ref_names SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct scratch);
} ref_scratch SEC(".maps");

static __always_inline __u16 be16(const __u8 *p) {
    return (__u16)((p[0] << 8) | p[1]);
}

SEC("xdp")
int ref_xdp(struct xdp_md *ctx) {
    void *data = (void *)(long)ctx->data;
    void *end = (void *)(long)ctx->data_end;
    struct ethhdr *eth = data;
    struct iphdr *ip = data + sizeof(*eth);
    struct udphdr *udp = (void *)(ip + 1);
    if ((void *)(udp + 1) > end) return XDP_PASS;
    if (eth->h_proto != __builtin_bswap16(ETH_P_IP)) return XDP_PASS;
    if (ip->ihl != 5 || ip->protocol != IPPROTO_UDP) return XDP_PASS;
    if (ip->frag_off & __builtin_bswap16(0x3fff)) return XDP_PASS;
    if (udp->dest != __builtin_bswap16(53)) return XDP_PASS;
    __u64 dns_len = __builtin_bswap16(udp->len);
    if (dns_len < 8 + 17 || dns_len > 8 + DNS_MAX) return XDP_PASS;
    dns_len -= 8;
    if ((void *)udp + 8 + dns_len != end) return XDP_PASS;

    __u32 zero = 0;
    struct scratch *s = bpf_map_lookup_elem(&ref_scratch, &zero);
    if (!s) return XDP_PASS;
    __u64 frame = HDRS + dns_len;
    asm volatile("" : "+r"(frame));
    if (frame > HDRS + DNS_MAX) return XDP_PASS;
    if (bpf_xdp_load_bytes(ctx, 0, s->buf, frame) < 0) return XDP_PASS;

    __u8 *msg = s->buf + HDRS;
    /* QR=0, opcode QUERY, TC=0; QDCOUNT 1, ANCOUNT 0, NSCOUNT 0, ARCOUNT 0 or 1 */
    if ((msg[2] & 0xfa) != 0) return XDP_PASS;
    if (be16(msg + 4) != 1 || be16(msg + 6) != 0 || be16(msg + 8) != 0) return XDP_PASS;
    __u16 arcount = be16(msg + 10);
    if (arcount > 1) return XDP_PASS;

    __builtin_memset(&s->key, 0, sizeof(s->key));
    __u64 qlen = 0;
    for (__u32 i = 0; i < 255; i++) {
        __u8 c = msg[12 + i];
        s->key.name[i] = c;
        if (c == 0) {
            qlen = i + 1;
            break;
        }
    }
    if (qlen == 0) return XDP_PASS;
    __u64 off = 12 + qlen;
    asm volatile("" : "+r"(off));
    if (off > 12 + 255) return XDP_PASS;
    if (off + 4 > dns_len) return XDP_PASS;
    /* qtype A, qclass IN */
    if (msg[off] != 0 || msg[off + 1] != 1 || msg[off + 2] != 0 || msg[off + 3] != 1)
        return XDP_PASS;
    off += 4;
    __u64 rest = dns_len - off;
    if (arcount ? rest != 11 : rest != 0) return XDP_PASS;
    if (arcount) {
        /* root owner, type OPT, version 0, RDLENGTH 0 */
        __u8 *opt = msg + off;
        if (opt[0] != 0 || opt[1] != 0 || opt[2] != 41 || opt[6] != 0 || opt[9] != 0 ||
            opt[10] != 0)
            return XDP_PASS;
    }

    struct ref_value *v = bpf_map_lookup_elem(&ref_names, &s->key);
    if (!v) return XDP_PASS;

    /* Build the reply in the scratch buffer: OPT (if any) moves 16 bytes down. */
    __u8 *ans = msg + off;
    if (arcount) {
        __u8 opt[11];
        __builtin_memcpy(opt, ans, 11);
        opt[3] = 1232 >> 8;
        opt[4] = 1232 & 0xff;
        __builtin_memcpy(ans + 16, opt, 11);
    }
    ans[0] = 0xc0;
    ans[1] = 12;
    ans[2] = 0;
    ans[3] = 1; /* A */
    ans[4] = 0;
    ans[5] = 1; /* IN */
    ans[6] = v->ttl >> 24;
    ans[7] = v->ttl >> 16;
    ans[8] = v->ttl >> 8;
    ans[9] = v->ttl;
    ans[10] = 0;
    ans[11] = 4;
    __builtin_memcpy(ans + 12, &v->addr, 4);
    msg[2] = 0x80 | 0x04 | (msg[2] & 0x01); /* QR, AA, RD copied; opcode 0 */
    msg[3] = 0;                             /* RA 0, rcode NOERROR */
    msg[7] = 1;                             /* ANCOUNT 1 */

    /* Ethernet, IPv4, UDP: swap, fix lengths, IPv4 checksum; UDP checksum 0. */
    __u8 mac[6];
    __builtin_memcpy(mac, s->buf, 6);
    __builtin_memcpy(s->buf, s->buf + 6, 6);
    __builtin_memcpy(s->buf + 6, mac, 6);
    struct iphdr *rip = (struct iphdr *)(s->buf + 14);
    __u32 a = rip->saddr;
    rip->saddr = rip->daddr;
    rip->daddr = a;
    rip->tot_len = __builtin_bswap16(20 + 8 + dns_len + 16);
    rip->ttl = 64;
    rip->check = 0;
    __u32 sum = 0;
    __u16 *w = (__u16 *)rip;
#pragma unroll
    for (int i = 0; i < 10; i++) sum += w[i];
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    rip->check = ~sum;
    struct udphdr *rudp = (struct udphdr *)(s->buf + 34);
    __u16 p = rudp->source;
    rudp->source = rudp->dest;
    rudp->dest = p;
    rudp->len = __builtin_bswap16(8 + dns_len + 16);
    rudp->check = 0;

    /* Grow at the tail, or at the head when the driver leaves no tailroom. */
    if (bpf_xdp_adjust_tail(ctx, 16) < 0 && bpf_xdp_adjust_head(ctx, -16) < 0) return XDP_PASS;
    __u64 out = frame + 16;
    asm volatile("" : "+r"(out));
    if (out > HDRS + DNS_MAX + 16) return XDP_PASS;
    if (bpf_xdp_store_bytes(ctx, 0, s->buf, out) < 0) return XDP_PASS;
    return XDP_TX;
}

char _license[] SEC("license") = "GPL";
