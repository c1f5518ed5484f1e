// Test helpers for the engine tests: building services and reading answers back as text.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <initializer_list>
#include <string>
#include <vector>

#include "engine/engine.hpp"

namespace fabdns::testing {

inline Endpoint endpoint(std::string cluster, std::string zone, std::string region,
                         std::initializer_list<const char *> addresses, std::string hostname = "") {
    Endpoint e;
    e.cluster = std::move(cluster);
    e.zone = std::move(zone);
    e.region = std::move(region);
    e.hostname = std::move(hostname);
    for (const char *a : addresses) {
        auto ip = IpAddr::parse(a);
        EXPECT_TRUE(ip) << a;
        if (ip) e.addresses.push_back(*ip);
    }
    return e;
}

inline GlobalService service(std::string name, std::string ns, std::vector<Endpoint> endpoints,
                             ServiceType type = ServiceType::ClusterIP) {
    GlobalService s;
    s.name = std::move(name);
    s.ns = std::move(ns);
    s.type = type;
    s.endpoints = std::move(endpoints);
    return s;
}

inline EngineOptions options(NodeTopology node, std::vector<std::string> zones = {"global"},
                             uint32_t ttl = 5) {
    EngineOptions o;
    o.node = std::move(node);
    o.zones = std::move(zones);
    o.ttl = ttl;
    return o;
}

// The addresses of an answer's A/AAAA records as text, sorted.
inline std::vector<std::string> addresses(const Answer &a) {
    std::vector<std::string> out;
    for (const Record &r : a.answer) {
        IpAddr ip;
        if (r.type == dnstype::A && r.rdata.size() == 4) {
            ip.family = IpAddr::Family::V4;
        } else if (r.type == dnstype::AAAA && r.rdata.size() == 16) {
            ip.family = IpAddr::Family::V6;
        } else {
            out.push_back("<bad record type " + std::to_string(r.type) + " size " +
                          std::to_string(r.rdata.size()) + ">");
            continue;
        }
        std::copy(r.rdata.begin(), r.rdata.end(), ip.bytes.begin());
        out.push_back(ip.to_string());
    }
    std::sort(out.begin(), out.end());
    return out;
}

using Strings = std::vector<std::string>;

// Reads a wire name starting at `pos`, advancing it ("" for the root).
inline std::string read_name(const std::vector<uint8_t> &rdata, size_t &pos) {
    std::string out;
    while (pos < rdata.size()) {
        uint8_t len = rdata[pos++];
        if (len == 0) return out;
        if (len > 63 || pos + len > rdata.size()) return "<bad name>";
        if (!out.empty()) out += '.';
        out.append(reinterpret_cast<const char *>(&rdata[pos]), len);
        pos += len;
    }
    return "<unterminated name>";
}

inline uint32_t read_u32(const std::vector<uint8_t> &rdata, size_t &pos) {
    if (pos + 4 > rdata.size()) return 0xdeadbeef;
    uint32_t v = (uint32_t{rdata[pos]} << 24) | (uint32_t{rdata[pos + 1]} << 16) |
                 (uint32_t{rdata[pos + 2]} << 8) | rdata[pos + 3];
    pos += 4;
    return v;
}

struct Soa {
    std::string mname, rname;
    uint32_t serial = 0, refresh = 0, retry = 0, expire = 0, minimum = 0;
    bool complete = false;  // every byte consumed
};

inline Soa parse_soa(const std::vector<uint8_t> &rdata) {
    Soa s;
    size_t pos = 0;
    s.mname = read_name(rdata, pos);
    s.rname = read_name(rdata, pos);
    s.serial = read_u32(rdata, pos);
    s.refresh = read_u32(rdata, pos);
    s.retry = read_u32(rdata, pos);
    s.expire = read_u32(rdata, pos);
    s.minimum = read_u32(rdata, pos);
    s.complete = pos == rdata.size();
    return s;
}

}  // namespace fabdns::testing
