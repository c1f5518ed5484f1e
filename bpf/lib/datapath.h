/* The datapath shared by the XDP and TC entries: everything from the parsed frame to a reply
 * frame in scratch space. The entries only copy bytes in and out and resize the packet. */
#ifndef FABDNS_BPF_DATAPATH_H
#define FABDNS_BPF_DATAPATH_H

#include "dns.h"
#include "parse.h"
#include "respond.h"

/* First half: L2-L4 checks, answer_for, liveness. Returns 0 when the DNS message at
 * f->dns_off should be copied into scratch, else the pass reason. */
static __always_inline int datapath_accept(void *data, void *data_end, __u32 pkt_len, __u32 ifindex,
                                           struct frame *f) {
    __u32 zero = 0;
    struct fabdns_config *cfg;
    int reason;

    reason = parse_frame(data, data_end, pkt_len, ifindex, f);
    if (reason) return reason;
    cfg = bpf_map_lookup_elem(&config, &zero);
    if (!cfg) return FABDNS_STAT_STALE;
    reason = check_listen(f);
    if (reason) return reason;
    reason = check_sanity(f);
    if (reason) return reason;
    if (cfg->stamp_ns == 0) return FABDNS_STAT_STALE;
    if (cfg->stale_after_ns &&
        (__s64)(bpf_ktime_get_ns() - cfg->stamp_ns) > (__s64)cfg->stale_after_ns)
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
    reason = fabdns_key_copy(s, s->q.name_len);
    if (reason) return reason;
    fabdns_key_dots(s, s->q.name_len);
    reason = fabdns_key_hash(s, s->q.name_len, s->q.labels);
    if (reason) return reason;
    reason = fabdns_build_reply(s, s->q.qend, s->q.name_len, s->q.qtype);
    if (reason) return reason;
    return fabdns_finish_frame(s, s->q.reply_len);
}

/* The reply frame, bounded for the verifier: 1..1024 bytes from an offset below 512. */
static __always_inline void *frame_ptr(struct scratch *s) {
    return &((__u8 *)s)[bound(s->q.frame_start, 0x1ff)];
}

static __always_inline __u32 frame_len(struct scratch *s) {
    return bound(s->q.frame_len - 1, 0x3ff) + 1;
}

static __always_inline struct scratch *get_scratch(void) {
    __u32 zero = 0;
    return bpf_map_lookup_elem(&scratch, &zero);
}

#endif
