// Strict DNS message reader and semantic comparison, for checking kernel replies.
//
// Independent of ldns and of the resolver: names decompressed with their case kept, OPT split
// out of the additional section, and a field-by-field comparison that names every difference.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "packet.hpp"

namespace fabdns::test {

struct Rr {
    Bytes owner;  // uncompressed wire form, case as written
    uint16_t type = 0, klass = 0;
    uint32_t ttl = 0;
    Bytes rdata;  // names inside NS/CNAME/PTR/MX/SOA rdata decompressed

    auto operator<=>(const Rr &) const = default;
};

struct Opt {
    Bytes owner;
    uint16_t payload = 0;
    uint8_t ext_rcode = 0, version = 0;
    uint16_t flags = 0;  // DO and the Z bits
    Bytes options;       // the rdata (option TLVs) as sent

    bool operator==(const Opt &) const = default;
};

struct Message {
    bool ok = false;
    std::string error;
    uint16_t id = 0, flags = 0;
    Bytes question;  // the question section's bytes as written
    Bytes qname;     // uncompressed
    uint16_t qtype = 0, qclass = 0;
    std::vector<Rr> answer, authority, additional;  // additional without OPT
    std::optional<Opt> opt;
    size_t opt_count = 0;

    // RCODE with the OPT's upper bits (RFC 6891 §6.1.3).
    uint16_t rcode() const {
        return static_cast<uint16_t>((flags & 0xf) | (opt ? opt->ext_rcode << 4 : 0));
    }
};

// Parses a whole message; ok is false with `error` set when anything is out of place
// (truncated record, pointer loop or forward pointer, trailing bytes, more than one question).
Message parse_message(std::span<const uint8_t> wire);

// "QR AA RD CD opcode=0 rcode=3" for a header's flags word.
std::string describe_flags(uint16_t flags);

// Empty when a and b say the same thing: header flags and rcode, question bytes, answer,
// authority and additional records as sets, OPT presence and every OPT field. Otherwise one
// line per difference. The ID is compared too.
std::vector<std::string> semantic_diff(const Message &a, const Message &b);

// The lowercase dotted form of an uncompressed wire name ("" for the root).
std::string dotted_lower(const Bytes &wire_name);

}  // namespace fabdns::test
