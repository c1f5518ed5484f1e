/* Wire-format constants of Ethernet, IP, UDP and DNS used by the datapath, each named once. */
#ifndef FABDNS_BPF_CONSTS_H
#define FABDNS_BPF_CONSTS_H

/* Ethernet and 802.1Q. */
#define ETH_HDR_LEN 14
#define ETH_ALEN_ 6
#define VLAN_HDR_LEN 4
#define ETH_TYPE_IPV4 0x0800
#define ETH_TYPE_IPV6 0x86DD
#define ETH_TYPE_8021Q 0x8100

/* IPv4. */
#define IPV4_HDR_MIN 20
#define IPV4_VERSION 4
#define IPV4_VER_IHL_NO_OPTIONS 0x45
#define IPV4_FLAG_MF 0x2000
#define IPV4_FLAG_DF 0x4000
#define IPV4_FRAG_OFFSET_MASK 0x1FFF
#define IP_PROTO_UDP 17
#define IP_REPLY_TTL 64

/* IPv6. */
#define IPV6_HDR_LEN 40
#define IPV6_VERSION 6
#define IPV6_NEXT_HOPOPT 0
#define IPV6_NEXT_ROUTING 43
#define IPV6_NEXT_FRAGMENT 44
#define IPV6_NEXT_ESP 50
#define IPV6_NEXT_AH 51
#define IPV6_NEXT_DSTOPTS 60
#define IPV6_NEXT_MOBILITY 135

/* UDP. */
#define UDP_HDR_LEN 8
#define UDP_CSUM_MANGLED_0 0xFFFF /* a computed checksum of 0 is sent as all ones (RFC 768) */

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

/* Names (RFC 1035 §3.1, §4.1.4). */
#define DNS_LABEL_MAX 63
#define DNS_MAX_LABELS 128 /* 255 bytes hold at most 127 one-byte labels plus the root */
#define DNS_PTR_TO_QNAME (0xC000 | DNS_HDR_LEN) /* compression pointer to the question name */

/* Types and classes. */
#define DNS_CLASS_IN 1
#define DNS_TYPE_A 1
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

#endif
