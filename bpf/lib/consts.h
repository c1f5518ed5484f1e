/* Wire-format constants of Ethernet, IP and UDP used by the datapath, each named once. The DNS
 * ones are shared with user space in maps/dns_wire.h. */
#ifndef FABDNS_BPF_CONSTS_H
#define FABDNS_BPF_CONSTS_H

#include "dns_wire.h"

/* Ethernet and 802.1Q. */
#define ETH_HDR_LEN 14
#define ETH_ALEN_ 6
#define VLAN_HDR_LEN 4
#define ETH_TYPE_IPV4 0x0800
#define ETH_TYPE_IPV6 0x86DD
#define ETH_TYPE_8021Q 0x8100

#define ETH_GROUP_BIT 0x01 /* first destination byte: broadcast and multicast */
#define LOOPBACK_IFINDEX 1 /* lo in every network namespace */

/* IPv4. */
#define IPV4_HDR_MIN 20
#define IPV4_VERSION 4
#define IPV4_VER_IHL_NO_OPTIONS 0x45
#define IPV4_FLAG_MF 0x2000
#define IPV4_FLAG_DF 0x4000
#define IPV4_FRAG_OFFSET_MASK 0x1FFF
#define IP_PROTO_UDP 17
#define IP_REPLY_TTL 64
/* First bytes of IPv4 addresses the stack does not answer from (RFC 1122 §3.2.1.3). */
#define IPV4_NET_THIS 0            /* 0.0.0.0/8: "this network", never a source */
#define IPV4_NET_LOOPBACK 127      /* 127.0.0.0/8 */
#define IPV4_MULTICAST_MASK 0xF0   /* 224.0.0.0/4 ... */
#define IPV4_MULTICAST_NET 0xE0    /* ... is multicast */
#define IPV4_BROADCAST 0xFFFFFFFFu /* limited broadcast */

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
#define IPV6_MULTICAST_PREFIX 0xFF
#define IPV6_TCLASS_MASK 0x0FF00000 /* traffic class in the first word, host order */

/* UDP. */
#define UDP_HDR_LEN 8
#define UDP_CSUM_MANGLED_0 0xFFFF /* a computed checksum of 0 is sent as all ones (RFC 768) */

#endif
