// Key/value construction for the datapath maps, mirroring what the kernel computes.
#include "datapath_maps.hpp"

#include <time.h>

#include <cstring>
#include <system_error>

namespace fabdns::maps {

namespace {

// A dotted name (no trailing dot) in wire form without the root label, into out (at least
// name.size() + 1 bytes); returns its length.
size_t to_wire(std::string_view name, char *out) {
    size_t len_at = 0, n = 1;
    for (char c : name) {
        if (c == '.') {
            out[len_at] = static_cast<char>(n - len_at - 1);
            len_at = n;
        } else {
            out[n] = c;
        }
        n++;
    }
    out[len_at] = static_cast<char>(n - len_at - 1);
    return n;
}

}  // namespace

uint64_t name_hash(std::string_view name) {
    char wire[FABDNS_NAME_BUF + 1];
    if (name.size() >= FABDNS_NAME_BUF) return 0;  // never a kernel name (fits_kernel_name)
    const size_t n = to_wire(name, wire);
    uint64_t h = FABDNS_HASH_SEED;
    for (size_t off = 0; off < n; off += 8) {
        uint64_t w = 0;
        std::memcpy(&w, wire + off, std::min<size_t>(8, n - off));
        h = fabdns_hash_word(h, w);
    }
    return h;
}

std::string_view dotted_name(const fabdns_answer &v) {
    const std::string_view s(v.name, strnlen(v.name, sizeof(v.name)));
    return !s.empty() && s.front() == '.' ? s.substr(1) : s;
}

bool fits_kernel(std::string_view name, size_t records) {
    return records > 0 && records <= FABDNS_MAX_RECORDS && fits_kernel_name(name);
}

bool fits_kernel(const KernelAnswer &a) {
    switch (a.kind) {
        case FABDNS_ANSWER_ADDRESSES:
            return fits_kernel(a.name, a.addrs.size());
        case FABDNS_ANSWER_NODATA:
            return fits_kernel_nodata(a.name, a.zone, a.soa.size());
        case FABDNS_ANSWER_ZONE:
            return a.name.size() < FABDNS_NAME_BUF && a.soa.size() == FABDNS_SOA_TAIL_LEN;
    }
    return false;
}

bool fits_kernel_nodata(std::string_view name, std::string_view zone, size_t soa_len) {
    return fits_kernel_name(name) && zone.size() <= name.size() && name.ends_with(zone) &&
           soa_len <= FABDNS_SOA_HEAD_MAX;
}

bool fits_kernel_name(std::string_view name) {
    if (name.empty() || name.size() > FABDNS_NAME_MAX) return false;
    if (name.front() == '.' || name.back() == '.') return false;
    size_t label = 0;
    for (char c : name) {
        // The kernel compares lowercase bytes; NUL and uppercase would never match.
        if (c == '\0' || (c >= 'A' && c <= 'Z')) return false;
        if (c == '.') {
            if (label == 0) return false;
            label = 0;
        } else if (++label > 63) {
            return false;
        }
    }
    return true;
}

fabdns_answer_key make_key(std::string_view name, uint16_t qtype) {
    fabdns_answer_key k{};
    k.hash = name_hash(name);
    k.qtype = qtype;
    k.name_len = static_cast<uint8_t>(name.size());
    return k;
}

fabdns_answer_key zone_key(std::string_view zone) {
    return make_key(zone, DNS_TYPE_SOA);
}

fabdns_answer make_value(const KernelAnswer &a) {
    fabdns_answer v{};
    if (!a.name.empty() && a.name.size() < FABDNS_NAME_BUF) {
        v.name[0] = '.';
        std::memcpy(v.name + 1, a.name.data(), a.name.size());
    }
    v.ttl = a.ttl;
    v.kind = static_cast<uint8_t>(a.kind);
    if (a.kind == FABDNS_ANSWER_NODATA) {
        const fabdns_answer_key z = zone_key(a.zone);
        std::memcpy(v.rdata, &z, sizeof(z));
        std::memcpy(&v.rdata[FABDNS_SOA_HEAD_OFF], a.soa.data(), a.soa.size());
        v.soa_len = static_cast<uint8_t>(a.soa.size());
        v.zone_len = static_cast<uint8_t>(a.zone.size());
        return v;
    }
    if (a.kind == FABDNS_ANSWER_ZONE) {
        std::memcpy(v.rdata, a.soa.data(), a.soa.size());
        v.soa_len = static_cast<uint8_t>(a.soa.size());
        return v;
    }
    v.count = static_cast<uint8_t>(a.addrs.size());
    size_t len = a.qtype == DNS_TYPE_A ? 4 : 16;
    for (size_t i = 0; i < a.addrs.size(); i++)
        std::memcpy(&v.rdata[i * len], a.addrs[i].data(), len);
    return v;
}

KernelAnswer from_map(const fabdns_answer_key &k, const fabdns_answer &v) {
    KernelAnswer a;
    a.name = std::string(dotted_name(v));
    a.qtype = k.qtype;
    a.ttl = v.ttl;
    a.hits = v.hits;
    a.kind = static_cast<fabdns_answer_kind>(v.kind);
    if (a.kind == FABDNS_ANSWER_NODATA || a.kind == FABDNS_ANSWER_ZONE) {
        const size_t off = a.kind == FABDNS_ANSWER_NODATA ? FABDNS_SOA_HEAD_OFF : 0;
        const size_t n = std::min<size_t>(v.soa_len, sizeof(v.rdata) - off);
        a.soa.assign(&v.rdata[off], &v.rdata[off + n]);
        if (a.kind == FABDNS_ANSWER_NODATA && v.zone_len <= a.name.size())
            a.zone = a.name.substr(a.name.size() - v.zone_len);
        return a;
    }
    size_t len = k.qtype == DNS_TYPE_A ? 4 : 16;
    size_t n = std::min<size_t>(v.count, FABDNS_MAX_RECORDS);
    for (size_t i = 0; i < n; i++) {
        std::array<uint8_t, 16> addr{};
        std::memcpy(addr.data(), &v.rdata[i * len], len);
        a.addrs.push_back(addr);
    }
    return a;
}

void AnswerTable::upsert(const fabdns_answer_key &key, const fabdns_answer &value) {
    const auto failed = apply({AnswerChange{key, value}});
    if (!failed.empty())
        throw std::system_error(failed.front().error, std::generic_category(),
                                "answers map update");
}

void AnswerTable::erase(const fabdns_answer_key &key) {
    apply({AnswerChange{key, std::nullopt}});
}

void AnswerTable::clear() {
    std::vector<AnswerChange> batch;
    for_each([&](const fabdns_answer_key &k, const fabdns_answer &) {
        batch.push_back({k, std::nullopt});
    });
    apply(batch);
}

bool ListenEntry::is_v4() const {
    static const uint8_t prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    return std::memcmp(addr.data(), prefix, 12) == 0;
}

bool ListenEntry::is_wildcard() const {
    size_t from = is_v4() ? 12 : 0;
    for (size_t i = from; i < 16; i++)
        if (addr[i]) return false;
    return true;
}

uint64_t monotonic_ns() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

}  // namespace fabdns::maps
