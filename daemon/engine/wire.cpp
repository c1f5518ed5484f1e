// DNS wire encoding of names and SOA data for the engine's records.
#include "engine/wire.hpp"

namespace fabdns::engine_detail {

namespace {
void append_u32(std::vector<uint8_t> &out, uint32_t v) {
    out.push_back(static_cast<uint8_t>(v >> 24));
    out.push_back(static_cast<uint8_t>(v >> 16));
    out.push_back(static_cast<uint8_t>(v >> 8));
    out.push_back(static_cast<uint8_t>(v));
}
}  // namespace

void append_name(std::vector<uint8_t> &out, std::string_view dotted) {
    size_t start = 0;
    while (start < dotted.size()) {
        size_t dot = dotted.find('.', start);
        if (dot == std::string_view::npos) dot = dotted.size();
        out.push_back(static_cast<uint8_t>(dot - start));
        out.insert(out.end(), dotted.begin() + static_cast<std::ptrdiff_t>(start),
                   dotted.begin() + static_cast<std::ptrdiff_t>(dot));
        start = dot + 1;
    }
    out.push_back(0);
}

std::vector<uint8_t> soa_rdata(std::string_view mname, std::string_view rname, uint32_t serial,
                               uint32_t refresh, uint32_t retry, uint32_t expire,
                               uint32_t minimum) {
    std::vector<uint8_t> out;
    append_name(out, mname);
    append_name(out, rname);
    for (uint32_t v : {serial, refresh, retry, expire, minimum}) append_u32(out, v);
    return out;
}

}  // namespace fabdns::engine_detail
