/* DNS query validation, answer lookup and in-place reply construction on the per-CPU scratch
 * copy of the message. Each step is a global (non-inlined) function taking only the scratch
 * pointer and scalars, so the verifier checks it once instead of once per path through the
 * steps before it (a 255-byte name walk inlined with the rest exceeds the 1M-insn limit). */
#ifndef FABDNS_BPF_DNS_H
#define FABDNS_BPF_DNS_H

#include "consts.h"
#include "csum.h"
#include "maps.h"
#include "mem.h"

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the word-at-a-time name handling assumes a little-endian host"
#endif

#define MSG_MASK (SCRATCH_MSG_MAX - 1)
/* Replies built in the kernel are at most 12 + 259 + 8 * 28 + 11 bytes (a NODATA: 12 + 259 +
 * FABDNS_SOA_HEAD_MAX + FABDNS_SOA_TAIL_LEN + 11). */
#define REPLY_MASK 511
#define NAME_OFF DNS_HDR_LEN /* the question name follows the header */
#define NAME_WORDS (FABDNS_NAME_BUF / 8)

/* The longest query handled in the kernel; longer ones (large options) pass. */
#define DNS_QUERY_MAX 512

#define __global __attribute__((noinline))

/* Masks an offset in a way clang cannot drop as redundant: the verifier does not learn bounds
 * from comparisons between two unknown registers, so it needs the mask to see the bound. */
static __always_inline __u32 bound(__u32 off, __u32 mask) {
    asm volatile("" : "+r"(off));
    return off & mask;
}

/* Network-order 16-bit read at a variable offset (unaligned loads are fine on the map value;
 * SCRATCH_SLACK covers the byte after the mask). */
static __always_inline __u16 rd16(const __u8 *msg, __u32 off) {
    return bpf_ntohs(*(const __u16 *)&msg[bound(off, MSG_MASK)]);
}

/* Stores a 16-bit value in network order at a constant offset from p. */
static __always_inline void put16(__u8 *p, __u16 v) {
    *(__u16 *)p = bpf_htons(v);
}

/* Header checks and the label walk (lengths only). Sets q->flags and name_len. Returns 0 or
 * the pass reason. */
__global enum fabdns_stat fabdns_parse_name(struct scratch *s, __u64 dns_len) {
    if (!s) return FABDNS_STAT_RESIZE;
    __u8 *msg = s->msg;
    __u32 pos = NAME_OFF, i;
    __u16 flags = rd16(msg, DNS_OFF_FLAGS);

    if (dns_len > DNS_QUERY_MAX) return FABDNS_STAT_TOO_LONG;
    if (flags & (DNS_FLAG_QR | DNS_OPCODE_MASK | DNS_FLAG_TC)) return FABDNS_STAT_NOT_QUERY;
    if (rd16(msg, DNS_OFF_QDCOUNT) != 1 || rd16(msg, DNS_OFF_ANCOUNT) != 0 ||
        rd16(msg, DNS_OFF_NSCOUNT) != 0 || rd16(msg, DNS_OFF_ARCOUNT) > 1)
        return FABDNS_STAT_NOT_QUERY;
    s->q.flags = flags;

    for (i = 0; i < DNS_MAX_LABELS; i++) {
        __u8 len;

        if (pos >= dns_len) return FABDNS_STAT_MALFORMED;
        len = msg[bound(pos, MSG_MASK)];
        if (len == 0) break;
        if (len > DNS_LABEL_MAX)
            return FABDNS_STAT_NAME; /* compression pointer or extended label type */
        pos += len + 1;
        if (pos - NAME_OFF >= DNS_NAME_MAX) return FABDNS_STAT_NAME;
    }
    if (i == 0 || i == DNS_MAX_LABELS) return FABDNS_STAT_NAME;
    s->q.name_len = pos - NAME_OFF - 1;
    return 0;
}

/* QTYPE, QCLASS and the optional OPT record after the name. Returns 0 or the pass reason. */
__global enum fabdns_stat fabdns_parse_tail(struct scratch *s, __u64 dns_len, __u64 name_len) {
    if (!s) return FABDNS_STAT_RESIZE;
    __u8 *msg = s->msg;
    __u32 pos, opt, i;
    __u16 payload, rdlen;

    if (dns_len > DNS_QUERY_MAX || name_len > FABDNS_NAME_MAX) return FABDNS_STAT_MALFORMED;
    pos = NAME_OFF + name_len + 2; /* first length byte, name, root label */
    if (pos + DNS_QUESTION_FIXED_LEN > dns_len) return FABDNS_STAT_MALFORMED;
    if (rd16(msg, pos + 2) != DNS_CLASS_IN) return FABDNS_STAT_QCLASS;
    s->q.qtype = rd16(msg, pos);
    if (s->q.qtype != DNS_TYPE_A && s->q.qtype != DNS_TYPE_AAAA) return FABDNS_STAT_QTYPE;
    pos += DNS_QUESTION_FIXED_LEN;
    s->q.qend = pos;
    s->q.client_max = DNS_UDP_PLAIN_MAX;
    s->q.has_opt = 0;
    s->q.do_bit = 0;

    if (rd16(msg, DNS_OFF_ARCOUNT) == 0) return pos == dns_len ? 0 : FABDNS_STAT_MALFORMED;

    /* The one additional record must be an OPT owned by the root that ends the message. */
    opt = pos;
    if (opt + EDNS_OPT_LEN > dns_len) return FABDNS_STAT_MALFORMED;
    if (msg[bound(opt, MSG_MASK)] != 0 || rd16(msg, opt + 1) != DNS_TYPE_OPT)
        return FABDNS_STAT_EDNS;
    payload = rd16(msg, opt + 3);
    if (msg[bound(opt + 6, MSG_MASK)] != 0) /* EDNS version: user space answers BADVERS */
        return FABDNS_STAT_EDNS;
    rdlen = rd16(msg, opt + 9);
    if (opt + EDNS_OPT_LEN + rdlen != dns_len) return FABDNS_STAT_MALFORMED;
    /* Options are ignored (RFC 7873 §5.2) but must be well formed, as user space checks. */
    pos = opt + EDNS_OPT_LEN;
    for (i = 0; i < EDNS_MAX_OPTIONS; i++) {
        if (pos >= dns_len) break;
        if (pos + EDNS_OPTION_HDR_LEN > dns_len) return FABDNS_STAT_MALFORMED;
        pos += EDNS_OPTION_HDR_LEN + rd16(msg, pos + 2);
    }
    if (pos != dns_len) return pos > dns_len ? FABDNS_STAT_MALFORMED : FABDNS_STAT_EDNS;
    s->q.has_opt = 1;
    s->q.do_bit = (rd16(msg, opt + 7) & EDNS_FLAG_DO) ? 1 : 0;
    if (payload > EDNS_REPLY_PAYLOAD) payload = EDNS_REPLY_PAYLOAD;
    s->q.client_max = payload > DNS_UDP_PLAIN_MAX ? payload : DNS_UDP_PLAIN_MAX;
    return 0;
}

/* One word of the key: the 8 wire bytes of the name from key offset 8 * w (w is a loop
 * counter or masked, so the verifier knows the offset: no mask per word), the bytes in keep
 * only, lowercased (length bytes, at most 63, are below 'A' and stay); h updated, and the
 * bytes as they are in the question added to sum. */
static __always_inline void key_word(struct scratch *s, __u32 w, __u64 keep, __u64 *h, __u64 *sum) {
    __u64 v = *(__u64 *)unaligned(&s->msg[NAME_OFF + w * 8]) & keep;

    *sum += csum_word(v);
    v = fabdns_lower_word(v);
    *h = fabdns_hash_word(*h, v);
    ((__u64 *)s->key)[w] = v;
}

/* s->q.hash is the hash of the query name in wire form without its root label (name_len + 1
 * bytes), lowercased, zero-padded to a word: the hash covers the label lengths, so a label
 * holding a '.' is another key than two labels. s->key holds the same bytes with each length
 * byte then written as '.', the form of a stored name (fabdns_answer.name), so that the stored
 * name is compared word by word for plain equality: one store per label here instead of
 * masking out the stored dots in every word of the compare. The last word, the only one
 * masked, is done after the loop: a branch on it inside the loop multiplies the paths the
 * verifier walks. The same words give the checksum sum of the question (s->q.qsum), which the
 * reply repeats unchanged. Returns 0 or the pass reason. */
__global enum fabdns_stat fabdns_key(struct scratch *s, __u64 name_len) {
    if (!s) return FABDNS_STAT_RESIZE;
    __u64 h = FABDNS_HASH_SEED, keep = ~0ULL, name_sum = 0;
    __u32 n, last, w, i, tail_off, sum;

    if (name_len == 0 || name_len > FABDNS_NAME_MAX) return FABDNS_STAT_NAME;
    n = name_len + 1;
    last = (n - 1) / 8;
    for (w = 0; w < NAME_WORDS - 1; w++) {
        if (w >= last) break;
        key_word(s, w, ~0ULL, &h, &name_sum);
    }
    if (n & 7) keep = (1ULL << ((n & 7) * 8)) - 1;
    key_word(s, bound(last, NAME_WORDS - 1), keep, &h, &name_sum);
    s->q.hash = h;

    /* Labels were checked by fabdns_parse_name(): each length byte is followed by its label. */
    for (w = 0, i = 0; i < DNS_MAX_LABELS; i++) {
        __u8 *len = &s->key[bound(w, FABDNS_NAME_BUF - 1)];

        if (w >= n) break;
        w += *len + 1;
        *len = FABDNS_NAME_DOT;
    }

    /* The question: the name from even offset 12, the root label (zero) and QTYPE + QCLASS. */
    tail_off = NAME_OFF + n + 1;
    sum = csum_fold16(name_sum) +
          csum_at(csum_fold16(*(__u32 *)unaligned(&s->msg[bound(tail_off, MSG_MASK)])), tail_off);
    s->q.qsum = csum_fold16(sum);
    return 0;
}

/* Counts a hit of entry a. Its counter shares a cache line with the TTL and records every hit
 * reads, so an atomic add per hit would bounce that line between CPUs answering one hot name:
 * each CPU adds FABDNS_HIT_SAMPLE once per FABDNS_HIT_SAMPLE of its own hits instead. */
static __always_inline void count_hit(struct scratch *s, struct fabdns_answer *a) {
    if ((s->hit_tick++ & (FABDNS_HIT_SAMPLE - 1)) == 0)
        __sync_fetch_and_add(&a->hits, FABDNS_HIT_SAMPLE);
}

/* Writes the header of a NOERROR, AA reply (ID and question stay; RD and CD are copied).
 * Returns its checksum sum, from the values rather than read back from what was just
 * written. */
static __always_inline __u32 put_reply_header(struct scratch *s, __u32 ancount, __u32 nscount) {
    __u8 *msg = s->msg;
    __u16 flags = DNS_FLAG_QR | DNS_FLAG_AA | (s->q.flags & (DNS_FLAG_RD | DNS_FLAG_CD));

    put16(msg + DNS_OFF_FLAGS, flags);
    put16(msg + DNS_OFF_ANCOUNT, ancount);
    put16(msg + DNS_OFF_NSCOUNT, nscount);
    put16(msg + DNS_OFF_ARCOUNT, s->q.has_opt);
    return *(__u16 *)(msg + DNS_OFF_ID) + bpf_htons(flags) + bpf_htons(1) /* QDCOUNT */ +
           bpf_htons(ancount) + bpf_htons(nscount) + bpf_htons(s->q.has_opt);
}

#define REPLY_WORDS ((REPLY_MASK + 1) / 8)

/* Folded sum of the reply after the question, msg[qend, reply_len), at its offset, read
 * back from the message (for NODATA: its SOA head has a variable length). Whole words in the
 * loop, the last partial word after it
 * (a branch on it inside the loop multiplies the paths the verifier walks). */
static __always_inline __u32 answer_sum(struct scratch *s, __u32 qend, __u32 reply_len) {
    __u32 n = reply_len - qend, words = n / 8, i;
    __u64 sum = 0;

    for (i = 0; i < REPLY_WORDS; i++) {
        if (i >= words) break;
        sum += csum_word(*(__u64 *)unaligned(&s->msg[bound(qend + i * 8, REPLY_MASK)]));
    }
    if (n & 7)
        sum += csum_word(*(__u64 *)unaligned(&s->msg[bound(qend + words * 8, REPLY_MASK)]) &
                         ((1ULL << ((n & 7) * 8)) - 1));
    return csum_at(csum_fold16(sum), qend);
}

/* Appends the OPT record (when the query had one) at off; sets s->q.reply_len. Returns the
 * OPT's checksum sum as if at an even offset: its 16-bit fields sit at odd offsets 1, 3, 7
 * and 9, where a field's sum is its value in host order. */
static __always_inline __u32 put_reply_end(struct scratch *s, __u32 off) {
    __u8 *msg = s->msg;

    if (s->q.has_opt) {
        __u8 *opt = &msg[bound(off, REPLY_MASK)];
        opt[0] = 0; /* root owner */
        put16(opt + 1, DNS_TYPE_OPT);
        put16(opt + 3, EDNS_REPLY_PAYLOAD);
        opt[5] = 0; /* extended rcode */
        opt[6] = 0; /* version */
        put16(opt + 7, s->q.do_bit ? EDNS_FLAG_DO : 0);
        put16(opt + 9, 0);
        s->q.reply_len = off + EDNS_OPT_LEN;
        return DNS_TYPE_OPT + EDNS_REPLY_PAYLOAD + (s->q.do_bit ? EDNS_FLAG_DO : 0);
    }
    s->q.reply_len = off;
    return 0;
}

/* The NODATA reply of entry a: no answers, the zone's SOA in authority, made of the head the
 * entry holds (owner to RNAME, compressed against the question) and the zone entry's serial
 * and timers. Returns 0 or the pass reason. */
static __always_inline enum fabdns_stat build_nodata(struct scratch *s, void *table,
                                                     struct fabdns_answer *a, __u32 qend) {
    struct fabdns_answer_key zk;
    struct fabdns_answer *z;
    __u32 head = a->soa_len, len, hdr_sum;

    if (head > FABDNS_SOA_HEAD_MAX) return FABDNS_STAT_MISS;
    __builtin_memcpy(&zk, a->rdata, sizeof(zk));
    z = bpf_map_lookup_elem(table, &zk);
    if (!z || z->kind != FABDNS_ANSWER_ZONE || z->soa_len != FABDNS_SOA_TAIL_LEN)
        return FABDNS_STAT_MISS;
    len = qend + head + FABDNS_SOA_TAIL_LEN + (s->q.has_opt ? EDNS_OPT_LEN : 0);
    if (len > s->q.client_max || len > REPLY_MASK) return FABDNS_STAT_TOO_BIG;

    hdr_sum = put_reply_header(s, 0, 1);
    /* Fixed-size copies: the bytes past the head are overwritten by the tail and the end. */
    copy_words(&s->msg[bound(qend, REPLY_MASK)], &a->rdata[FABDNS_SOA_HEAD_OFF],
               FABDNS_SOA_HEAD_MAX);
    copy_words(&s->msg[bound(qend + head, REPLY_MASK)], z->rdata, FABDNS_SOA_TAIL_LEN);
    put_reply_end(s, qend + head + FABDNS_SOA_TAIL_LEN);
    s->q.asum = hdr_sum + answer_sum(s, qend, s->q.reply_len);
    count_hit(s, a);
    return 0;
}

/* Looks the key up and, on a hit, rewrites s->msg into the reply (s->q.reply_len set, and
 * s->q.asum the checksum sum of the header and of what follows the question, added up from
 * the values written rather than read back). Returns 0 or the pass reason; on a pass s->msg may be
 * changed but the packet is not. */
__global enum fabdns_stat fabdns_build_reply(struct scratch *s, __u64 qend, __u64 name_len,
                                             __u64 qtype) {
    if (!s) return FABDNS_STAT_RESIZE;
    struct fabdns_answer_key k = {};
    struct fabdns_answer *a;
    void *table = answer_table();
    __u8 *msg = s->msg;
    __u64 *key = (__u64 *)s->key;
    __u32 w, i, words, rdlen, rr_len, count, off, len, ttl, hdr_sum;
    __u64 sum;

    if (name_len == 0 || name_len > FABDNS_NAME_MAX || qend > DNS_QUERY_MAX)
        return FABDNS_STAT_MALFORMED;
    words = (name_len + 1 + 7) / 8; /* the key's wire bytes */
    k.hash = s->q.hash;
    k.qtype = qtype;
    k.name_len = name_len;
    if (!table) return FABDNS_STAT_MISS;
    a = bpf_map_lookup_elem(table, &k);
    if (!a) return FABDNS_STAT_MISS;
    for (w = 0; w < NAME_WORDS; w++) {
        if (w >= words) break;
        if (((__u64 *)a->name)[w] != key[w]) return FABDNS_STAT_COLLISION;
    }
    if (a->kind == FABDNS_ANSWER_NODATA) return build_nodata(s, table, a, qend);
    count = a->count;
    if (a->kind != FABDNS_ANSWER_ADDRESSES || count == 0 || count > FABDNS_MAX_RECORDS)
        return FABDNS_STAT_MISS;

    rdlen = qtype == DNS_TYPE_A ? 4 : 16;
    rr_len = DNS_PTR_LEN + DNS_RR_FIXED_LEN + rdlen;
    len = qend + count * rr_len + (s->q.has_opt ? EDNS_OPT_LEN : 0);
    if (len > s->q.client_max || len > REPLY_MASK) return FABDNS_STAT_TOO_BIG;

    hdr_sum = put_reply_header(s, count, 0);
    off = qend;
    ttl = a->ttl;
    /* Records have an even length: each one's fixed part sums alike (even offsets relative to
     * qend, where a 16-bit field's sum is its network-order value read in host order). */
    sum = count * (bpf_htons(DNS_PTR_TO_QNAME) + bpf_htons(qtype) + bpf_htons(DNS_CLASS_IN) +
                   bpf_htonl(ttl) + bpf_htons(rdlen));
    for (i = 0; i < FABDNS_MAX_RECORDS; i++) {
        if (i >= count) break;
        __u8 *rr = &msg[bound(off, REPLY_MASK)];
        put16(rr + 0, DNS_PTR_TO_QNAME);
        put16(rr + 2, qtype);
        put16(rr + 4, DNS_CLASS_IN);
        *(__u32 *)(rr + 6) = bpf_htonl(ttl);
        put16(rr + 10, rdlen);
        if (rdlen == 4) {
            __u32 v = *(__u32 *)&a->rdata[i * 4];
            *(__u32 *)unaligned(rr + 12) = v;
            sum += v;
        } else {
            __u64 v0 = *(__u64 *)&a->rdata[i * 16], v1 = *(__u64 *)&a->rdata[i * 16 + 8];
            *(__u64 *)unaligned(rr + 12) = v0;
            *(__u64 *)unaligned(rr + 20) = v1;
            sum += csum_word(v0) + csum_word(v1);
        }
        off += rr_len;
    }
    sum += put_reply_end(s, off); /* at an even offset from qend, like every record */
    s->q.asum = hdr_sum + csum_at(csum_fold16(sum), qend);
    count_hit(s, a);
    return 0;
}

#endif
