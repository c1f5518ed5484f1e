/* DNS wire-format constants and limits shared by the kernel datapath (bpf/) and the user-space
 * resolver (daemon/resolver/), so that both paths apply the same numbers. Plain C, usable from
 * BPF and C++. Flag values are for the 16-bit header flags word in host order. */
#ifndef FABDNS_DNS_WIRE_H
#define FABDNS_DNS_WIRE_H

/* DNS header (RFC 1035 §4.1.1) offsets and flag bits, in host order after bpf_ntohs(). */
#define DNS_HDR_LEN 12
#define DNS_OFF_ID 0
#define DNS_OFF_FLAGS 2
#define DNS_OFF_QDCOUNT 4
#define DNS_OFF_ANCOUNT 6
#define DNS_OFF_NSCOUNT 8
#define DNS_OFF_ARCOUNT 10
#define DNS_FLAG_QR 0x8000
#define DNS_OPCODE_MASK 0x7800
#define DNS_FLAG_AA 0x0400
#define DNS_FLAG_TC 0x0200
#define DNS_FLAG_RD 0x0100
#define DNS_FLAG_CD 0x0010

/* Names (RFC 1035 §2.3.4, §3.1, §4.1.4). */
#define DNS_NAME_MAX 255 /* longest name in wire format, root label included */
#define DNS_LABEL_MAX 63
#define DNS_MAX_LABELS 128 /* 255 bytes hold at most 127 one-byte labels plus the root */
/* The top two bits of a length byte say what it is: 00 a label, 11 a compression pointer,
 * whose other 14 bits (and the next byte) are the offset it points to. */
#define DNS_LABEL_TYPE_MASK 0xC0
#define DNS_LABEL_POINTER 0xC0
#define DNS_PTR 0xC000
#define DNS_PTR_TO_QNAME (DNS_PTR | DNS_HDR_LEN) /* compression pointer to the question name */

/* Types and classes. */
#define DNS_CLASS_IN 1
#define DNS_TYPE_A 1
#define DNS_TYPE_NS 2
#define DNS_TYPE_SOA 6
#define DNS_TYPE_AAAA 28
#define DNS_TYPE_OPT 41

/* Resource record fixed part after the owner: type, class, TTL, RDLENGTH. */
#define DNS_RR_FIXED_LEN 10
#define DNS_PTR_LEN 2
#define DNS_QUESTION_FIXED_LEN 4 /* QTYPE + QCLASS */

/* EDNS0 (RFC 6891): OPT with an empty root owner. */
#define EDNS_OPT_LEN 11 /* root(1) type(2) class(2) ttl(4) rdlen(2) */
#define EDNS_FLAG_DO 0x8000
#define EDNS_OPTION_HDR_LEN 4
#define EDNS_MAX_OPTIONS 16
#define EDNS_REPLY_PAYLOAD 1232 /* what fabdns advertises (DNS flag day 2020) */
#define DNS_UDP_PLAIN_MAX 512   /* limit without EDNS; also the floor of a client's EDNS size */

/* UDP source ports never answered by either path, not even with an error: echo, daytime, qotd,
 * chargen, time and port 0. A spoofed query from one of them would start a reply loop
 * (CVE-2024-2169). Host order. */
#define DNS_REFLECTION_PORT_LIST(X) X(0) X(7) X(13) X(17) X(19) X(37)

static inline int dns_is_reflection_port(unsigned int port) {
#define DNS_REFLECTION_PORT_CASE_(p) \
    if (port == (p)) return 1;
    DNS_REFLECTION_PORT_LIST(DNS_REFLECTION_PORT_CASE_)
#undef DNS_REFLECTION_PORT_CASE_
    return 0;
}

#endif /* FABDNS_DNS_WIRE_H */
