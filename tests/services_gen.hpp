// Seeded generator of GlobalService sets and their query names, for tests and benchmarks.
//
// Many services over several clusters with varied topology labels, address families, endpoint
// counts and Headless pods, plus every query name each service defines (SPEC §3).
#pragma once

#include <algorithm>
#include <cstdint>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "engine/engine.hpp"
#include "model/globalservice.hpp"

namespace fabdns::test {

struct ClusterSpec {
    std::string name, zone, region;
};

// Eight clusters: two share the node's zone, one more its region, one has no zone, one no
// region, so that every topology tier (cluster, zone, region, all) wins for some service.
inline const std::vector<ClusterSpec> &gen_clusters() {
    static const std::vector<ClusterSpec> clusters = {
        {"beijing", "bj-a", "north"}, {"beijing-2", "bj-a", "north"}, {"tianjin", "tj-a", "north"},
        {"shanghai", "sh-a", "east"}, {"hangzhou", "sh-a", "east"},   {"shenzhen", "sz-a", "south"},
        {"chengdu", "", "west"},      {"edge-7", "ed-7", ""},
    };
    return clusters;
}

// The node every generated set is compiled for.
inline NodeTopology gen_node() {
    return {"beijing", "bj-a", "north"};
}

struct GenOptions {
    uint64_t seed = 1;
    size_t services = 1000;
    size_t headless_every = 40;  // every n-th service is Headless (with pods)
    size_t big_every = 13;       // every n-th service has more than 8 addresses in one tier
};

// Families of a generated service's endpoints.
enum class GenFamily { V4, Dual, V6, Mixed };

// Builds the services. Addresses are unique per set (so the record count is the address
// count), except that a few services repeat an address on two endpoints, which the engine
// merges.
inline std::vector<GlobalService> generate_services(const GenOptions &o) {
    std::mt19937_64 rng(o.seed);
    auto pick = [&](size_t n) { return static_cast<size_t>(rng() % n); };
    const auto &clusters = gen_clusters();
    static const char *const namespaces[] = {"default", "prod", "team-a", "kube-public", "x"};
    uint32_t next_v4 = 0, next_v6 = 0;
    auto v4 = [&] {
        uint32_t n = ++next_v4;
        return IpAddr::v4(10, static_cast<uint8_t>(n >> 16), static_cast<uint8_t>(n >> 8),
                          static_cast<uint8_t>(n));
    };
    auto v6 = [&] {
        uint32_t n = ++next_v6;
        IpAddr a;
        a.family = IpAddr::Family::V6;
        a.bytes = {0xfd, 0, 0, 0x42, 0, 0, 0, 0, 0, 0, 0, 0};
        a.bytes[12] = static_cast<uint8_t>(n >> 24);
        a.bytes[13] = static_cast<uint8_t>(n >> 16);
        a.bytes[14] = static_cast<uint8_t>(n >> 8);
        a.bytes[15] = static_cast<uint8_t>(n);
        return a;
    };

    std::vector<GlobalService> out;
    out.reserve(o.services);
    for (size_t i = 0; i < o.services; i++) {
        GlobalService s;
        s.name = "svc-" + std::to_string(i);
        // A few long labels so that names of 100..200 bytes are covered too.
        if (i % 97 == 5) s.name += "-" + std::string(30 + pick(20), 'l');
        s.ns = namespaces[pick(std::size(namespaces))];
        if (i % 151 == 7) s.ns = "ns-" + std::string(50 + pick(10), 'n');
        s.type = (o.headless_every && i % o.headless_every == 3) ? ServiceType::Headless
                                                                 : ServiceType::ClusterIP;
        const size_t r = pick(100);
        const GenFamily fam = r < 50   ? GenFamily::V4
                              : r < 85 ? GenFamily::Dual
                              : r < 90 ? GenFamily::V6
                                       : GenFamily::Mixed;
        const bool big = o.big_every && i % o.big_every == 1;
        size_t n_ep = big ? 9 + pick(4) : 1 + pick(8);
        // Big services put every endpoint in one cluster so that one tier holds > 8 addresses.
        const size_t home = pick(clusters.size());
        for (size_t e = 0; e < n_ep; e++) {
            const ClusterSpec &c = clusters[big ? home : pick(clusters.size())];
            Endpoint ep;
            ep.cluster = c.name;
            ep.zone = c.zone;
            ep.region = c.region;
            switch (fam) {
                case GenFamily::V4:
                    ep.addresses.push_back(v4());
                    break;
                case GenFamily::V6:
                    ep.addresses.push_back(v6());
                    break;
                case GenFamily::Dual:
                    ep.addresses.push_back(v4());
                    ep.addresses.push_back(v6());
                    break;
                case GenFamily::Mixed:
                    // Near endpoints IPv4-only, far ones IPv6-only: AAAA falls through tiers.
                    ep.addresses.push_back(c.region == "north" ? v4() : v6());
                    break;
            }
            if (s.type == ServiceType::Headless) {
                // Some pods share a hostname in one cluster (one name, several addresses),
                // some have none.
                if (e % 5 != 4) ep.hostname = "pod-" + std::to_string(e % 4);
            }
            s.endpoints.push_back(std::move(ep));
        }
        if (i % 50 == 9 && s.endpoints.size() > 1)
            s.endpoints[1].addresses.push_back(s.endpoints[0].addresses[0]);
        out.push_back(std::move(s));
    }
    return out;
}

inline EngineOptions gen_engine_options(uint32_t ttl = 30) {
    EngineOptions o;
    o.zones = {"global", "clusterset.local"};
    o.ttl = ttl;
    o.node = gen_node();
    return o;
}

struct QueryName {
    std::string name;  // lowercase dotted
    std::string form;  // service, short, cluster, old, pod, miss, ent
};

// Every name the services define, per zone, in SPEC §3's forms, plus a few misses and empty
// non-terminals. Names are listed as the model spells them; the engine decides what they
// answer.
inline std::vector<QueryName> query_names(const std::vector<GlobalService> &services,
                                          const std::vector<std::string> &zones) {
    std::vector<QueryName> out;
    std::set<std::string> seen;
    auto add = [&](std::string name, const char *form) {
        if (seen.insert(name).second) out.push_back({std::move(name), form});
    };
    for (const auto &z : zones) {
        for (size_t i = 0; i < services.size(); i++) {
            const GlobalService &s = services[i];
            const std::string base = s.name + "." + s.ns;
            add(base + ".svc." + z, "service");
            add(base + "." + z, "short");
            std::vector<std::string> seen_clusters;
            for (const Endpoint &e : s.endpoints) {
                if (std::find(seen_clusters.begin(), seen_clusters.end(), e.cluster) !=
                    seen_clusters.end())
                    continue;
                seen_clusters.push_back(e.cluster);
                add(e.cluster + "." + base + ".svc." + z, "cluster");
                add(base + "." + e.cluster + "." + z, "old");
            }
            if (s.type == ServiceType::Headless)
                for (const Endpoint &e : s.endpoints)
                    if (!e.hostname.empty())
                        add(e.hostname + "." + e.cluster + "." + base + ".svc." + z, "pod");
            if (i % 25 == 0) {
                add("nope-" + std::to_string(i) + "." + s.ns + ".svc." + z, "miss");
                add(s.ns + ".svc." + z, "ent");
            }
        }
    }
    return out;
}

}  // namespace fabdns::test
