/* Ones'-complement sums (RFC 1071) of 16-bit words as they lie in memory: byte-order
 * independent for a checksum stored back the same way, and additive over blocks, so the UDP
 * checksum of a reply is put together from the parts that changed and the question's sum. */
#ifndef FABDNS_BPF_CSUM_H
#define FABDNS_BPF_CSUM_H

#include <linux/types.h>

/* A 64-bit word's share of a sum: its two 32-bit halves (folded later). */
static __always_inline __u64 csum_word(__u64 v) {
    return (v & 0xffffffff) + (v >> 32);
}

/* Folds a sum to 16 bits (not complemented). */
static __always_inline __u32 csum_fold16(__u64 sum) {
    sum = (sum & 0xffffffff) + (sum >> 32);
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    return sum;
}

/* The folded sum of a block summed as if it started at an even offset, placed at an odd one:
 * each byte moves to the other half of its 16-bit word (RFC 1071 §2(B)). */
static __always_inline __u32 csum_at(__u32 folded, __u32 off) {
    return (off & 1) ? ((folded << 8) | (folded >> 8)) & 0xffff : folded;
}

/* The complemented 16-bit checksum of a sum. */
static __always_inline __u16 csum_fold(__u64 sum) {
    return ~csum_fold16(sum) & 0xffff;
}

/* Sum of n bytes at p, n even and a constant. */
static __always_inline __u64 sum16(const __u8 *p, __u32 n) {
    __u64 sum = 0;
    for (__u32 i = 0; i + 1 < n; i += 2) sum += *(const __u16 *)(p + i);
    return sum;
}

#endif
