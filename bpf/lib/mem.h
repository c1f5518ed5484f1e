/* Word-sized copies at offsets clang cannot prove aligned, so that they stay word loads and
 * stores instead of being split into byte accesses. */
#ifndef FABDNS_BPF_MEM_H
#define FABDNS_BPF_MEM_H

#include <linux/types.h>

/* A pointer whose alignment clang must not infer: an access through it is compiled at the
 * access type's width even where the offset is known to be odd (packed Ethernet headers, the
 * name at offset 13). Unaligned accesses to packet data and map values are allowed on the
 * architectures the datapath runs on (no BPF_F_STRICT_ALIGNMENT). */
static __always_inline void *unaligned(const void *p) {
    asm volatile("" : "+r"(p));
    return (void *)p;
}

/* Copies n bytes (a constant multiple of 2) in the widest words that fit. */
static __always_inline void copy_words(void *dst, const void *src, __u32 n) {
    __u8 *d = unaligned(dst);
    const __u8 *s = unaligned(src);
    __u32 i = 0;

#pragma unroll
    for (; i + 8 <= n; i += 8) *(__u64 *)(d + i) = *(const __u64 *)(s + i);
    if (n - i >= 4) {
        *(__u32 *)(d + i) = *(const __u32 *)(s + i);
        i += 4;
    }
    if (n - i >= 2) *(__u16 *)(d + i) = *(const __u16 *)(s + i);
}

#endif
