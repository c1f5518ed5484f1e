/* The datapath shared by the XDP and TC entries: everything from the parsed frame to a reply
 * frame in scratch space. The entries only copy bytes in and out and resize the packet. */
#ifndef FABDNS_BPF_DATAPATH_H
#define FABDNS_BPF_DATAPATH_H

#include "dns.h"
#include "parse.h"
#include "respond.h"

/* CLOCK_MONOTONIC, coarse, read once per tick on each CPU: the coarse clock only moves at a
 * tick, and jiffies (an inlined load, no helper call) tell when one has passed. A tick's
 * first packet can still read the clock before the tick updated it, so the value is at most
 * two ticks behind. */
static __always_inline __u64 coarse_now(struct scratch *s) {
    __u64 j = bpf_jiffies64();

    if (j != s->clock_jiffies) {
        s->clock_jiffies = j;
        s->clock_ns = bpf_ktime_get_coarse_ns();
    }
    return s->clock_ns;
}

/* First half: L2-L4 checks, answer_for, liveness. Returns 0 when the DNS message at
 * s->f.dns_off should be copied into scratch, else the pass reason. */
static __always_inline int datapath_accept(void *data, void *data_end, __u32 pkt_len, __u32 ifindex,
                                           struct scratch *s) {
    struct frame *f = &s->f;
    __u32 zero = 0;
    struct fabdns_config *cfg;
    int reason;

    reason = parse_frame(data, data_end, pkt_len, ifindex, f);
    if (reason) return reason;
    cfg = bpf_map_lookup_elem(&config, &zero);
    if (!cfg) return FABDNS_STAT_STALE;
    reason = check_listen(s, cfg->listen_gen);
    if (reason) return reason;
    reason = check_sanity(f);
    if (reason) return reason;
    if (fabdns_is_stale(cfg->stamp_ns, cfg->stale_after_ns, coarse_now(s)))
        return FABDNS_STAT_STALE;
    if (f->dns_len < DNS_HDR_LEN) return FABDNS_STAT_MALFORMED;
    if (f->dns_len > DNS_QUERY_MAX) return FABDNS_STAT_TOO_LONG;
    return 0;
}

/* Second half, after the message was copied into s->msg: builds the reply frame in s.
 * Returns 0 or the pass reason. */
static __always_inline int datapath_answer(struct scratch *s) {
    int reason;

    reason = fabdns_parse_name(s, s->f.dns_len);
    if (reason) return reason;
    reason = fabdns_parse_tail(s, s->f.dns_len, s->q.name_len);
    if (reason) return reason;
    reason = fabdns_key(s, s->q.name_len);
    if (reason) return reason;
    reason = fabdns_build_reply(s, s->q.qend, s->q.name_len, s->q.qtype);
    if (reason) return reason;
    return fabdns_finish_frame(s, s->q.reply_len);
}

/* The reply frame, bounded for the verifier: it starts inside struct scratch's hdr and is at
 * most the headers' room plus a reply. */
#define FRAME_START_MASK 511
#define FRAME_LEN_MASK (SCRATCH_MSG_MAX - 1)
_Static_assert(__builtin_offsetof(struct scratch, hdr) + SCRATCH_HDR_ROOM <= FRAME_START_MASK + 1,
               "frame_start is below FRAME_START_MASK + 1");
_Static_assert(SCRATCH_HDR_ROOM + REPLY_MASK + 1 <= FRAME_LEN_MASK + 1,
               "a reply frame fits FRAME_LEN_MASK + 1 bytes");

static __always_inline void *frame_ptr(struct scratch *s) {
    return &((__u8 *)s)[bound(s->q.frame_start, FRAME_START_MASK)];
}

static __always_inline __u32 frame_len(struct scratch *s) {
    return bound(s->q.frame_len - 1, FRAME_LEN_MASK) + 1;
}

/* The query's DNS message length as copied into scratch: 1..DNS_QUERY_MAX. */
#define QUERY_LEN_MASK (DNS_QUERY_MAX - 1)
_Static_assert((DNS_QUERY_MAX & QUERY_LEN_MASK) == 0, "DNS_QUERY_MAX is a power of two");

static __always_inline __u32 query_copy_len(struct scratch *s) {
    return bound(s->f.dns_len - 1, QUERY_LEN_MASK) + 1;
}

static __always_inline struct scratch *get_scratch(void) {
    __u32 zero = 0;
    return bpf_map_lookup_elem(&scratch, &zero);
}

#endif
