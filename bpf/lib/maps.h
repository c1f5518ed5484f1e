/* The datapath's maps: the shared ones declared in maps/fabdns_maps.h, pinned by name, plus
 * the per-CPU scratch space used to build a reply. */
#ifndef FABDNS_BPF_MAPS_H
#define FABDNS_BPF_MAPS_H

#include "fabdns_maps.h"

/* The answer table exists twice. A hash map element replaced or deleted is reused by the next
 * update at once (no RCU grace period, whatever the kernel), so a reader still holding it could
 * copy half of one answer and half of another. The daemon therefore writes only the copy no
 * program reads, switches answers_active to it (which returns only after every program that
 * could still see the old copy has finished: a map-in-map update waits for an RCU grace
 * period), then writes the same changes into the other copy. The loader sets max_entries to
 * datapath.capacity. */
#define FABDNS_ANSWER_TABLE                       \
    __uint(type, BPF_MAP_TYPE_HASH);              \
    __uint(max_entries, FABDNS_ANSWERS_CAPACITY); \
    __uint(map_flags, BPF_F_NO_PREALLOC);         \
    __type(key, struct fabdns_answer_key);        \
    __type(value, struct fabdns_answer)

struct answer_table {
    FABDNS_ANSWER_TABLE;
};

struct {
    FABDNS_ANSWER_TABLE;
    __uint(pinning, LIBBPF_PIN_BY_NAME);
} answers SEC(".maps"), answers_standby SEC(".maps");

/* Slot 0 is the copy programs read; a new map starts on `answers`. */
struct {
    __uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
    __uint(max_entries, 1);
    __type(key, __u32);
    __uint(pinning, LIBBPF_PIN_BY_NAME);
    __array(values, struct answer_table); /* last: a flexible array */
} answers_active SEC(".maps") = {.values = {[0] = (void *)&answers}};

/* Destination address:port pairs answered in the kernel (datapath.answer_for). */
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, FABDNS_MAX_LISTEN);
    __type(key, struct fabdns_listen_key);
    __type(value, struct fabdns_listen_value);
    __uint(pinning, LIBBPF_PIN_BY_NAME);
} listen SEC(".maps");

/* Liveness stamp and flags, one entry. */
struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct fabdns_config);
    __uint(pinning, LIBBPF_PIN_BY_NAME);
} config SEC(".maps");

/* One counter per verdict reason (enum fabdns_stat). */
struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, FABDNS_STAT_MAX);
    __type(key, __u32);
    __type(value, __u64);
    __uint(pinning, LIBBPF_PIN_BY_NAME);
} stats SEC(".maps");

/* What the reply is built from, parsed from the query's L2-L4 headers; addresses and ports
 * in network byte order. */
struct frame {
    __u32 dns_off; /* offset of the DNS message in the frame */
    __u32 dns_len; /* its length, from the UDP header */
    __u8 eth_dst[6];
    __u8 eth_src[6];
    __u16 vlan_tci; /* network order; valid when has_vlan */
    __u8 has_vlan;
    __u8 is_v6;
    __u32 v6_first_word; /* version, traffic class, flow label (network order) */
    __u8 on_lo;          /* arrived on the loopback device */
    __u8 pad[3];
    __u8 saddr[16]; /* IPv4 uses the first 4 bytes */
    __u8 daddr[16];
    __u16 sport;
    __u16 dport;
};

/* The parsed question and the reply's sizes. */
struct query {
    __u32 qend;        /* offset just past the question */
    __u32 name_len;    /* dotted length (wire length - 2) */
    __u32 reply_len;   /* DNS reply length, once built */
    __u32 frame_start; /* offset of the reply frame in struct scratch */
    __u32 frame_len;
    __u64 hash;
    __u32 qsum; /* folded checksum sum of the question, at its offset in the message */
    __u32 asum; /* the same of the reply's header and of what it adds after the question */
    __u16 qtype;
    __u16 flags;      /* query header flags, host order */
    __u16 client_max; /* UDP size limit for the reply */
    __u8 has_opt;
    __u8 do_bit;
};

/* Per-CPU work area. The parse results live here rather than on the stack so that the
 * datapath's global functions can take just this pointer and be verified once each. The
 * query's DNS message is copied into msg and the reply built in place; the reply's L2-L4
 * headers are written into the end of hdr so that headers and message form one frame. */
#define SCRATCH_HDR_ROOM 128
#define SCRATCH_MSG_MAX 1024 /* power of two: offsets are masked with SCRATCH_MSG_MAX - 1 */
#define SCRATCH_SLACK 16     /* word reads past the end and checksum padding */
struct scratch {
    struct frame f;
    struct query q;
    __u8 hdr[SCRATCH_HDR_ROOM];
    __u8 msg[SCRATCH_MSG_MAX + SCRATCH_SLACK];
    __u8 key[FABDNS_NAME_BUF + 8]; /* lowercase query name, length bytes as '.', zero-padded */
    __u64 hit_tick;                /* this CPU's hits, for sampling entries' hit counters */
    __u64 clock_jiffies;           /* jiffies when clock_ns was read (coarse_now()) */
    __u64 clock_ns;
    __u64 listen_gen;                    /* check_listen(): config.listen_gen ... */
    struct fabdns_listen_key listen_hit; /* ... under which this destination was found */
};

_Static_assert(__builtin_offsetof(struct scratch, key) % 8 == 0,
               "the key is read and written in words");
_Static_assert(sizeof(struct fabdns_listen_key) == 20 &&
                   __builtin_offsetof(struct scratch, listen_hit) % 8 == 0,
               "check_listen() compares the listen key as two words and a half");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct scratch);
} scratch SEC(".maps");

/* The copy of the answer table to read: look entries up in it only, and within one query only
 * in the one copy, so that an entry and the zone entry it refers to come from one data set. */
static __always_inline void *answer_table(void) {
    __u32 zero = 0;
    return bpf_map_lookup_elem(&answers_active, &zero);
}

static __always_inline void count(__u32 reason) {
    __u64 *c = bpf_map_lookup_elem(&stats, &reason);
    if (c) *c += 1;
}

#endif
