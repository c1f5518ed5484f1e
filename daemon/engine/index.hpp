// AnswerIndex: the immutable, per-node table built from one set of services. Every name the
// zones hold maps to a node saying which form it is and which address sets it answers, so a
// query costs one hash lookup plus copying the records.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "engine/engine.hpp"

namespace fabdns {
namespace engine_detail {

enum class Form : uint8_t { Apex, Service, Short, Cluster, Old, Pod, EmptyNonTerminal };
const char *to_string(Form form);

inline constexpr uint32_t kNone = UINT32_MAX;
inline constexpr size_t kV4 = 0, kV6 = 1;  // index of a family in the per-family arrays

inline size_t family_index(uint16_t qtype) {
    return qtype == dnstype::AAAA ? kV6 : kV4;
}
inline uint16_t family_type(size_t fam) {
    return fam == kV6 ? dnstype::AAAA : dnstype::A;
}
inline IpAddr::Family family_of(size_t fam) {
    return fam == kV6 ? IpAddr::Family::V6 : IpAddr::Family::V4;
}

// What a name is. Address sets are indices into AnswerIndex::sets; 0 is the empty set.
struct NameNode {
    Form form = Form::EmptyNonTerminal;
    uint16_t zone = 0;         // index into AnswerIndex::zones
    uint32_t service = kNone;  // index into AnswerIndex::services
    uint32_t slot = kNone;     // Cluster, Old: index into clusters; Pod: index into pods
    std::array<uint32_t, 2> sets{0, 0};
};

struct ClusterInfo {
    std::string name;
    std::array<uint32_t, 2> sets{0, 0};
};

struct PodInfo {
    uint32_t cluster = 0;  // index into clusters
    std::string hostname;
    std::array<uint32_t, 2> sets{0, 0};
};

// What was computed for one service on this node.
struct ServiceInfo {
    std::array<Tier, 2> tier{Tier::None, Tier::None};
    std::array<uint32_t, 2> sets{0, 0};
    std::vector<ClusterInfo> clusters;
    std::vector<PodInfo> pods;
};

struct ZoneInfo {
    std::string name;
    Record soa, ns;
};

struct NameHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

using NameMap = std::unordered_map<std::string, NameNode, NameHash, std::equal_to<>>;

}  // namespace engine_detail

class AnswerIndex {
  public:
    // `options` must already be normalised (lowercase zones without duplicates).
    AnswerIndex(const EngineOptions &options, ServiceSet services);

    // `name` is lowercase without a trailing dot.
    const engine_detail::NameNode *find(std::string_view name) const {
        auto it = names.find(name);
        return it == names.end() ? nullptr : &it->second;
    }
    // The longest zone `name` is in, or -1.
    int zone_of(std::string_view name) const;

    // The answer for a lowercase name; reuses out's storage.
    void answer(std::string_view name, uint16_t qtype, Answer &out) const;
    // The answer for a node found under `name`.
    void answer(const engine_detail::NameNode &node, std::string_view name, uint16_t qtype,
                Answer &out) const;

    uint32_t ttl = 0;
    uint32_t serial = 0;
    ServiceSet set;                                // what `services` refers to
    const std::vector<GlobalService> &services;    // one per namespace/name
    std::vector<engine_detail::ServiceInfo> info;  // parallel to services
    std::vector<std::vector<IpAddr>> sets;         // [0] is empty
    std::vector<engine_detail::ZoneInfo> zones;
    engine_detail::NameMap names;

  private:
    bool nested_zones_ = false;
    void nxdomain_or_nodata(Rcode rcode, size_t zone, Answer &out) const;
};

}  // namespace fabdns
