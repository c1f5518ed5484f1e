// AnswerIndex: the immutable, per-node table built from one set of services. Every name the
// zones hold maps to a node saying which form it is and which address sets it answers, so a
// query costs one hash lookup plus copying the records. An index is derived from the one before
// it by redoing only the services that changed: what a service computes and the shards of the
// name table it does not touch are shared between the two.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
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

struct ClusterInfo {
    std::string name;
    std::array<uint32_t, 2> sets{0, 0};
};

struct PodInfo {
    uint32_t cluster = 0;  // index into clusters
    std::string hostname;
    std::array<uint32_t, 2> sets{0, 0};
};

// What was computed for one service on this node; immutable, shared by every index that holds
// this version of the service. Address sets are indices into `sets`; 0 is the empty set.
struct ServiceInfo {
    std::string key;    // "namespace/name", as given
    uint32_t hash = 0;  // of the DNS-relevant content, for the serial
    std::array<Tier, 2> tier{Tier::None, Tier::None};
    std::array<uint32_t, 2> service_sets{0, 0};
    std::vector<ClusterInfo> clusters;
    std::vector<PodInfo> pods;
    std::vector<std::vector<IpAddr>> sets;
};

// What a name is.
struct NameNode {
    Form form = Form::EmptyNonTerminal;
    uint16_t zone = 0;                     // index into AnswerIndex::zones
    uint32_t slot = kNone;                 // Cluster, Old: index into clusters; Pod: into pods
    const ServiceInfo *service = nullptr;  // none for the apex and empty non-terminals
    std::array<uint32_t, 2> sets{0, 0};    // into service->sets
};

struct NameHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

template <typename T>
using ByName = std::unordered_map<std::string, T, NameHash, std::equal_to<>>;

// One part of the name table, copied when an update touches it. `names` holds each name's
// winning form; a name more than one service form claims keeps every such claim in `contested`
// (so that removing the winner finds the next), and the number of services a name is an empty
// non-terminal of is in `ent_claims`.
struct Shard {
    ByName<NameNode> names;
    ByName<std::vector<NameNode>> contested;
    ByName<uint32_t> ent_claims;
};

}  // namespace engine_detail

class AnswerIndex {
  public:
    // An empty index. `options` must already be normalised (lowercase zones without duplicates).
    explicit AnswerIndex(const EngineOptions &options);
    // `services` applied to `before` (same options): only the services whose content differs
    // are computed again, and only the names they had or have are looked at.
    AnswerIndex(const AnswerIndex &before, ServiceSet services);

    // `name` is lowercase without a trailing dot.
    const engine_detail::NameNode *find(std::string_view name) const;
    // The longest zone `name` is in, or -1.
    int zone_of(std::string_view name) const;

    // The answer for a lowercase name; reuses out's storage.
    void answer(std::string_view name, uint16_t qtype, Answer &out) const;
    // The answer for a node found under `name`.
    void answer(const engine_detail::NameNode &node, std::string_view name, uint16_t qtype,
                Answer &out) const;

    // The service a node names, from the set.
    const GlobalService &service(const engine_detail::NameNode &node) const;

    template <typename Fn>
    void for_each_name(Fn &&fn) const {
        for (const auto &shard : shards_)
            if (shard)
                for (const auto &[name, node] : shard->names) fn(name, node);
    }

    EngineOptions options;
    uint32_t ttl = 0;
    uint32_t serial = 0;
    uint64_t generation = 0;           // 1 for the first set, +1 per update
    bool incremental = false;          // derived from the index of generation - 1
    std::vector<std::string> changed;  // then: every name whose answers may differ from it
    ServiceSet set;                    // sorted by namespace/name, one per namespace/name
    struct ZoneInfo {
        std::string name;
        Record soa, ns;
    };
    std::vector<ZoneInfo> zones;

  private:
    static constexpr size_t kShards = 4096;
    using ShardPtr = std::shared_ptr<const engine_detail::Shard>;

    void make_zones();
    // Calls fn(name, node) for every name `info` claims, in every zone.
    template <typename Fn>
    void for_each_claim(const engine_detail::ServiceInfo &info, Fn &&fn) const;
    static size_t shard_of(std::string_view name);

    bool nested_zones_ = false;
    std::vector<std::shared_ptr<const engine_detail::ServiceInfo>> info_;  // parallel to *set
    std::vector<ShardPtr> shards_;
    void nxdomain_or_nodata(Rcode rcode, size_t zone, Answer &out) const;
};

}  // namespace fabdns
