// The few pieces of DNS wire format the engine produces: names and record data, uncompressed.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string_view>
#include <vector>

#include "common/net.hpp"

namespace fabdns::engine_detail {

// Appends `dotted` ("a.b", "" for the root) as a wire name. The caller has checked that every
// label is 1..63 bytes and the whole name at most 255 bytes.
void append_name(std::vector<uint8_t> &out, std::string_view dotted);

// The number of labels of a dotted name whose labels hold no dot ("" is the root: 0).
inline uint8_t label_count(std::string_view dotted) {
    return dotted.empty() ? 0
                          : static_cast<uint8_t>(1 + std::count(dotted.begin(), dotted.end(), '.'));
}

// SOA rdata: mname, rname, serial, refresh, retry, expire, minimum (RFC 1035 §3.3.13).
std::vector<uint8_t> soa_rdata(std::string_view mname, std::string_view rname, uint32_t serial,
                               uint32_t refresh, uint32_t retry, uint32_t expire, uint32_t minimum);

// A or AAAA rdata: the address bytes in network order (4 or 16).
inline void address_rdata(std::vector<uint8_t> &out, const IpAddr &a) {
    out.assign(a.bytes.begin(), a.bytes.begin() + static_cast<std::ptrdiff_t>(a.size()));
}

}  // namespace fabdns::engine_detail
