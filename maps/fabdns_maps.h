/* Every struct, enum, constant and map name that crosses the kernel/user boundary.
 *
 * Included by the BPF program (bpf/) and by C++ (maps/, loader/, daemon/). Fixed-width types
 * and explicit padding only; each field says its byte order. maps/datapath_maps.hpp
 * static_asserts the layout and tests/datapath/object_test.cpp checks it against the BTF
 * of the built object.
 */
#ifndef FABDNS_MAPS_H
#define FABDNS_MAPS_H

#include <linux/types.h>

#include "dns_wire.h" /* DNS_TYPE_* and DNS_NAME_MAX, as the keys and names below use them */

/* Map names, as pinned under datapath.pin_path (libbpf pins by map name). */
#define FABDNS_MAP_ANSWERS "answers"                 /* copy 0 of the answer table */
#define FABDNS_MAP_ANSWERS_STANDBY "answers_standby" /* copy 1, the same entries */
#define FABDNS_MAP_ANSWERS_ACTIVE "answers_active"   /* which copy programs read (bpf/lib/maps.h) */
#define FABDNS_MAP_LISTEN "listen"
#define FABDNS_MAP_CONFIG "config"
#define FABDNS_MAP_STATS "stats"

/* Program names inside the object (SEC names are "xdp" and "tc"). */
#define FABDNS_PROG_XDP "fabdns_xdp"
#define FABDNS_PROG_TC "fabdns_tc"

/* Longest dotted name without the trailing dot: the wire form minus the first length byte
 * and the root label. */
#define FABDNS_NAME_MAX (DNS_NAME_MAX - 2)
/* Size of the NUL-padded dotted-name buffer in an answer (a multiple of 8: hashed by words). */
#define FABDNS_NAME_BUF 256
/* What a stored name holds for each length byte of the wire form. */
#define FABDNS_NAME_DOT '.'
/* Hit counting granularity (a power of two): see fabdns_answer.hits. */
#define FABDNS_HIT_SAMPLE 16
/* Records per answer: 8 IPv4 or 8 IPv6 addresses. */
#define FABDNS_MAX_RECORDS 8
#define FABDNS_RDATA_BUF (FABDNS_MAX_RECORDS * 16)
/* Capacity of the listen (answer_for) map. */
#define FABDNS_MAX_LISTEN 64
/* Default capacity of the answers map (datapath.capacity): the loader sizes the map to the
 * configured value before it is created. */
#define FABDNS_ANSWERS_CAPACITY 65536

/* Key of the answers map. The kernel lowercases the query name in wire form (length bytes,
 * no root label), hashes its words with fabdns_hash_word() (below), writes each length byte as
 * FABDNS_NAME_DOT and then compares the stored name word by word for equality, so a hash
 * collision can only cause a miss, never another name's answer. */
struct fabdns_answer_key {
    __u64 hash;    /* fabdns_hash_word() over the value's name words; host byte order */
    __u16 qtype;   /* DNS_TYPE_A or _AAAA (DNS_TYPE_SOA for zone entries); host order */
    __u8 name_len; /* length of the dotted name (the value's name without its leading '.'),
                      1..FABDNS_NAME_MAX */
    __u8 pad[5];   /* zero */
};

/* What an answers-map entry holds. */
enum fabdns_answer_kind {
    FABDNS_ANSWER_ADDRESSES = 0, /* NOERROR, AA, count A or AAAA records */
    FABDNS_ANSWER_NODATA = 1,    /* NOERROR, AA, no records, the zone's SOA in authority */
    FABDNS_ANSWER_ZONE = 2,      /* a zone's SOA timers, shared by its NODATA entries; keyed by
                                    the zone name and DNS_TYPE_SOA, never a query's answer */
};

/* A NODATA entry's rdata: the key of its zone's FABDNS_ANSWER_ZONE entry, then the SOA record
 * as the reply carries it up to its serial (owner, type, class, TTL, RDLENGTH, MNAME, RNAME,
 * compressed against the question exactly as user space writes them). The zone entry's rdata
 * holds the rest: serial, refresh, retry, expire, minimum. So a new serial is one write. */
#define FABDNS_SOA_TAIL_LEN 20
#define FABDNS_SOA_HEAD_OFF 16 /* sizeof(struct fabdns_answer_key) */
#define FABDNS_SOA_HEAD_MAX 48

/* Value of the answers map: one answer, or a zone's shared SOA data (see kind). */
struct fabdns_answer {
    char name[FABDNS_NAME_BUF];   /* lowercase name with a '.' before every label
                                     (".nginx.default.svc.global"), NUL-padded: readable text
                                     for bpftool, and byte for byte the query's wire form with
                                     each length byte written as '.' (FABDNS_NAME_DOT), the
                                     form the kernel gives the query name to compare it */
    __u32 ttl;                    /* seconds; host byte order */
    __u8 count;                   /* ADDRESSES: records in rdata, 1..FABDNS_MAX_RECORDS; else 0 */
    __u8 kind;                    /* enum fabdns_answer_kind */
    __u8 soa_len;                 /* NODATA: SOA bytes after the zone key in rdata, at most
                                     FABDNS_SOA_HEAD_MAX; ZONE: FABDNS_SOA_TAIL_LEN; else 0 */
    __u8 zone_len;                /* NODATA: length of the zone's name, a suffix of name; else 0 */
    __u64 hits;                   /* queries answered from this entry, sampled: the kernel adds
                                     FABDNS_HIT_SAMPLE once per FABDNS_HIT_SAMPLE hits of a
                                     CPU; read by the daemon to rank names */
    __u8 rdata[FABDNS_RDATA_BUF]; /* ADDRESSES: count addresses of 4 (A) or 16 (AAAA) bytes,
                                     packed from offset 0; NODATA, ZONE: see above; network
                                     byte order except the zone key (host order) */
};

/* Key of the listen map: one destination the kernel answers for (datapath.answer_for). Exact
 * addresses only: the daemon expands 0.0.0.0 and :: into the host's own addresses, because a
 * wildcard in the kernel would also match packets routed through the host to other servers. */
struct fabdns_listen_key {
    __u8 addr[16]; /* IPv6 address, or IPv4 as ::ffff:a.b.c.d; network byte order */
    __u16 port;    /* UDP port; network byte order */
    __u16 pad;     /* zero */
};

/* Value of the listen map. */
struct fabdns_listen_value {
    __u32 flags; /* reserved, zero */
};

/* The single entry (index 0) of the config array. */
struct fabdns_config {
    __u64 stamp_ns;       /* CLOCK_MONOTONIC ns of the daemon's last refresh; 0: never
                             configured, pass everything */
    __u64 stale_after_ns; /* pass everything once now - stamp_ns exceeds this; 0: never stale */
    __u64 listen_gen;     /* renewed (to a value never used before) after every change of the
                             listen map: each CPU keeps the last destination it found there
                             and trusts it while this is unchanged; 0: look up every packet */
};

/* The staleness rule, the one definition for the kernel and the tools: with no stamp the kernel
 * passes everything, and once now_ns - stamp_ns exceeds stale_after_ns (when set) as well.
 * now_ns is CLOCK_MONOTONIC; the kernel reads it coarse, once per tick (bpf_ktime_get_coarse_ns()
 * when bpf_jiffies64() moved: up to two ticks behind, which only delays staleness by that
 * much). */
static inline int fabdns_is_stale(__u64 stamp_ns, __u64 stale_after_ns, __u64 now_ns) {
    if (stamp_ns == 0) return 1;
    return stale_after_ns != 0 && (__s64)(now_ns - stamp_ns) > (__s64)stale_after_ns;
}

/* Per-CPU counters (the stats map is a per-CPU array indexed by this enum). Every verdict of
 * the datapath is counted under exactly one reason. X-macro: (enum suffix, metric label). */
#define FABDNS_STAT_LIST(X)                                                                \
    X(ANSWERED, "answered")       /* reply sent from the kernel */                         \
    X(NOT_DNS, "not_dns")         /* not Ethernet/IP/UDP */                                \
    X(NOT_FOR_US, "not_for_us")   /* UDP to an address:port not in answer_for */           \
    X(FRAGMENT, "fragment")       /* IPv4 fragment */                                      \
    X(IPV6_EXT, "ipv6_ext")       /* IPv6 extension header before UDP */                   \
    X(MALFORMED, "malformed")     /* lengths that do not add up, truncated headers */      \
    X(NOT_QUERY, "not_query")     /* QR=1, opcode, TC, section counts */                   \
    X(QCLASS, "qclass")           /* class other than IN */                                \
    X(QTYPE, "qtype")             /* type other than A/AAAA */                             \
    X(NAME, "name")               /* compression pointer, bad label type, name too long */ \
    X(TOO_LONG, "too_long")       /* query message longer than the kernel handles */       \
    X(EDNS, "edns")               /* OPT malformed, or EDNS version > 0 */                 \
    X(MISS, "miss")               /* name/type not in the answers map */                   \
    X(COLLISION, "collision")     /* hash matched, stored name differs */                  \
    X(TOO_BIG, "too_big")         /* reply would exceed the client's size limit */         \
    X(STALE, "stale")             /* daemon's liveness stamp too old or unset */           \
    X(RESIZE, "resize")           /* the packet could not be resized or rewritten */       \
    X(GROUP_MAC, "group_mac")     /* to a broadcast or multicast MAC address */            \
    X(BAD_ADDRESS, "bad_address") /* martian, multicast, broadcast or loopback source, or  \
                                     loopback destination, off lo */                       \
    X(V4_MAPPED, "v4_mapped")     /* to an IPv4-mapped IPv6 address (::ffff:a.b.c.d) */    \
    X(REFLECTION, "reflection")   /* from UDP port 0, 7, 13, 17, 19 or 37 */

#define FABDNS_STAT_ENUM_(name, label) FABDNS_STAT_##name,
enum fabdns_stat { FABDNS_STAT_LIST(FABDNS_STAT_ENUM_) FABDNS_STAT_MAX };
#undef FABDNS_STAT_ENUM_

/* Name hash shared by the kernel and the map compiler: FNV-style multiply-xor over the
 * NUL-padded wire-form name buffer, read as 64-bit words in host byte order. Only words that
 * hold name bytes are hashed, so the hash depends on the name alone. */
#define FABDNS_HASH_SEED 0xcbf29ce484222325ULL
#define FABDNS_HASH_MUL 0x9e3779b97f4a7c15ULL

static inline __u64 fabdns_hash_word(__u64 h, __u64 word) {
    h ^= word;
    h *= FABDNS_HASH_MUL;
    h ^= h >> 29;
    return h;
}

/* Lowercases the ASCII letters of 8 bytes at once; other bytes (label lengths, digits,
 * non-ASCII) are unchanged. */
static inline __u64 fabdns_lower_word(__u64 v) {
    const __u64 low7 = 0x7f7f7f7f7f7f7f7fULL;
    const __u64 high = 0x8080808080808080ULL;
    __u64 heptets = v & low7;
    __u64 ge_a = heptets + 0x3f3f3f3f3f3f3f3fULL; /* high bit set where byte >= 'A' */
    __u64 gt_z = heptets + 0x2525252525252525ULL; /* high bit set where byte > 'Z' */
    __u64 upper = ge_a & ~gt_z & ~v & high;
    return v | (upper >> 2);
}

#endif /* FABDNS_MAPS_H */
