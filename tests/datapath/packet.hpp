// Frame building and checking for datapath tests: DNS queries (via ldns) wrapped in Ethernet,
// optional 802.1Q, IPv4 (with options) or IPv6, and UDP; checksums verified independently.
#pragma once

#include "resolver/ldns.hpp"

#include <cstdint>
#include <string>
#include <vector>

#include "common/net.hpp"

namespace fabdns::test {

using Bytes = std::vector<uint8_t>;

struct QueryOpts {
    std::string name = "nginx.default.svc.global";
    uint16_t qtype = LDNS_RR_TYPE_A;
    uint16_t qclass = LDNS_RR_CLASS_IN;
    uint16_t id = 0x1234;
    bool rd = true;
    bool cd = false;
    bool edns = false;
    uint16_t edns_size = 1232;
    uint8_t edns_version = 0;
    bool do_bit = false;
    Bytes edns_options;  // raw option TLVs (e.g. a cookie)
};

// The DNS message of a query (built with ldns, then EDNS appended by hand so every field is
// under the test's control).
Bytes dns_query(const QueryOpts &q);

struct FrameOpts {
    bool v6 = false;
    std::string src = "10.0.0.2", dst = "10.0.0.1";
    uint16_t sport = 40000, dport = 53;
    bool vlan = false;
    uint16_t vlan_tci = 100;
    Bytes ip_options;   // IPv4 only, multiple of 4
    uint16_t frag = 0;  // IPv4 frag_off field (host order)
    uint8_t ttl = 64;
    uint8_t tos = 0;  // IPv4 TOS or IPv6 traffic class (DSCP and ECN)
    Bytes eth_dst;    // destination MAC; empty: a unicast default
    Bytes eth_src;    // source MAC; empty: a unicast default
};

Bytes frame(const FrameOpts &f, const Bytes &dns);

// A parsed reply frame; ok is false with `error` set when anything is inconsistent (lengths,
// checksums, addresses not swapped).
struct Reply {
    bool ok = false;
    std::string error;
    Bytes dns;
    ldns_pkt *pkt = nullptr;  // owned
    Reply() = default;
    Reply(const Reply &) = delete;
    Reply(Reply &&o) noexcept
        : ok(o.ok), error(std::move(o.error)), dns(std::move(o.dns)), pkt(o.pkt) {
        o.pkt = nullptr;
    }
    ~Reply() {
        if (pkt) ldns_pkt_free(pkt);
    }
};

// Checks that `out` is a well-formed reply frame to `in` (MACs, VLAN, addresses and ports
// swapped; IPv4 header checksum; UDP checksum over the pseudo-header) and parses its DNS part.
Reply parse_reply(const Bytes &in, const Bytes &out);

uint16_t inet_checksum(const uint8_t *data, size_t len, uint32_t seed = 0);

}  // namespace fabdns::test
