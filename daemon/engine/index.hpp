// AnswerIndex: the immutable, per-node table built from one set of services. Every name the
// zones hold maps to a node saying which form it is and which address sets it answers, so a
// query costs one hash lookup plus copying the records. An index is derived from the one before
// it by redoing only the services that changed: what a service computes and the shards of the
// name table it does not touch are shared between the two.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
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

// A string in a ServiceInfo's text (ServiceInfo::str()).
struct TextRef {
    uint32_t offset = 0, size = 0;
};

struct ClusterInfo {
    TextRef name;  // as given
    std::array<uint32_t, 2> sets{0, 0};
};

struct PodInfo {
    uint32_t cluster = 0;  // index into clusters
    TextRef hostname;      // as given
    std::array<uint32_t, 2> sets{0, 0};
};

// What was computed for one service on this node; immutable, shared by every index that holds
// this version of the service. Address sets are numbered, 0 being the empty set. Everything of
// variable size is in one block (clusters, pods, where each set ends, the addresses, then the
// key, cluster names and hostnames): a service costs two allocations.
class ServiceInfo {
  public:
    // The parts, as compute() collects them; set i > 0 is addresses[set_end[i - 1],
    // set_end[i]), text starts with the key.
    struct Parts {
        std::string text;
        uint32_t key_size = 0;
        std::vector<ClusterInfo> clusters;
        std::vector<PodInfo> pods;
        std::vector<uint32_t> set_end;
        std::vector<IpAddr> addresses;
    };
    explicit ServiceInfo(const Parts &parts);

    uint32_t hash = 0;  // of the DNS-relevant content, for the serial
    std::array<Tier, 2> tier{Tier::None, Tier::None};
    std::array<uint32_t, 2> service_sets{0, 0};

    std::span<const ClusterInfo> clusters() const {
        return {reinterpret_cast<const ClusterInfo *>(data_.get()), n_clusters_};
    }
    std::span<const PodInfo> pods() const {
        return {reinterpret_cast<const PodInfo *>(data_.get() + pods_at_), n_pods_};
    }
    std::span<const IpAddr> set(uint32_t i) const {
        if (i == 0) return {};
        const uint32_t *end = reinterpret_cast<const uint32_t *>(data_.get() + set_end_at_);
        const uint32_t begin = i == 1 ? 0 : end[i - 2];
        const auto *addresses = reinterpret_cast<const IpAddr *>(data_.get() + addresses_at_);
        return {addresses + begin, end[i - 1] - begin};
    }
    std::string_view str(TextRef r) const {
        return {reinterpret_cast<const char *>(data_.get() + text_at_) + r.offset, r.size};
    }
    std::string_view key() const { return str({0, key_size_}); }  // "namespace/name", as given
    // Whether every string here is lowercase already (then a name compares byte for byte).
    bool lowercase() const { return lowercase_; }
    std::string_view ns() const { return key().substr(0, key().find('/')); }
    std::string_view name() const { return key().substr(key().find('/') + 1); }

  private:
    std::unique_ptr<std::byte[]> data_;
    uint32_t n_clusters_ = 0, n_pods_ = 0, key_size_ = 0;
    bool lowercase_ = true;
    uint32_t pods_at_ = 0, set_end_at_ = 0, addresses_at_ = 0, text_at_ = 0;  // offsets in data_
};

// What a name is: find()'s answer, spelled out from the table's compact entry.
struct NameNode {
    Form form = Form::EmptyNonTerminal;
    uint16_t zone = 0;                     // index into AnswerIndex::zones
    uint32_t slot = kNone;                 // Cluster, Old: index into clusters; Pod: into pods
    const ServiceInfo *service = nullptr;  // none for the apex and empty non-terminals
    std::array<uint32_t, 2> sets{0, 0};    // numbers of service->set()
};

// One service's claim on a name, as the table holds it: the name itself is not stored but
// spelled again from the service, the form, the slot and the zone whenever it is needed (a
// lookup compares the query with it label by label, without building it).
struct Claim {
    static constexpr uint32_t kNoSlot = (1u << 24) - 1;
    const ServiceInfo *service = nullptr;  // null: a free table entry
    uint32_t slot : 24 = kNoSlot;          // kNone as kNoSlot; for_each_claim() keeps it below
    uint32_t form : 8 = 0;
    uint16_t zone = 0;
    uint16_t tag = 0;  // the name's hash, low bits: where it is in the table, a quick mismatch

    Form the_form() const { return static_cast<Form>(form); }
    uint32_t the_slot() const { return slot == kNoSlot ? kNone : slot; }
};
static_assert(sizeof(Claim) == 16);

struct NameHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

template <typename T>
using ByName = std::unordered_map<std::string, T, NameHash, std::equal_to<>>;

// For tests: the bits of a name's hash an index created from options keeps (and every index
// derived from it). Fewer bits put many names in one shard with one tag, so that lookups must
// tell them apart by spelling.
extern uint64_t name_hash_mask;

// A name no service form claims: a zone's apex, or an empty non-terminal of `claims` services.
struct OtherName {
    Form form = Form::EmptyNonTerminal;
    uint16_t zone = 0;
    uint32_t claims = 0;
};

// One part of the name table, copied when an update touches it. `table` holds each service
// form name's winning claim, open addressing with linear probing (a power-of-two size, never
// more than 7/8 full, no tombstones). A name more than one service form claims keeps every
// such claim in `contested` (so that removing the winner finds the next). Apex and empty
// non-terminal names, a few per namespace and cluster, are in `others`; a name there that also
// has a service form answers as the service form.
struct Shard {
    std::vector<Claim> table;
    uint32_t used = 0;
    ByName<std::vector<Claim>> contested;
    ByName<OtherName> others;
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
    std::optional<engine_detail::NameNode> find(std::string_view name) const;
    // The longest zone `name` is in, or -1.
    int zone_of(std::string_view name) const;

    // The answer for a lowercase name; reuses out's storage.
    void answer(std::string_view name, uint16_t qtype, Answer &out) const;
    // The answer for a node found under `name`.
    void answer(const engine_detail::NameNode &node, std::string_view name, uint16_t qtype,
                Answer &out) const;

    // The service a node names, from the set.
    const GlobalService &service(const engine_detail::NameNode &node) const;

    // Calls fn(name, node) for every name, in no particular order; `name` is valid during the
    // call only.
    template <typename Fn>
    void for_each_name(Fn &&fn) const {
        std::string buf;
        for (const auto &shard : shards_) {
            if (!shard) continue;
            for (const engine_detail::Claim &c : shard->table)
                if (c.service) fn(spell(c, buf), node_of(c));
            for (const auto &[name, other] : shard->others)
                fn(std::string_view(name),
                   engine_detail::NameNode{other.form, other.zone, engine_detail::kNone, nullptr});
        }
    }

    // How many names a service form claims (those for_each_name() calls with a service).
    size_t service_name_count() const {
        size_t n = 0;
        for (const auto &shard : shards_)
            if (shard) n += shard->used;
        return n;
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
    // Calls fn(name, claim) for every name `info` claims, in every zone; `name` is valid during
    // the call only.
    template <typename Fn>
    void for_each_claim(const engine_detail::ServiceInfo &info, Fn &&fn) const;
    uint64_t name_hash(std::string_view name) const {
        const uint64_t hash = std::hash<std::string_view>{}(name);
        return hash & hash_mask_;
    }
    static size_t shard_of(uint64_t hash);
    static engine_detail::NameNode node_of(const engine_detail::Claim &claim);
    // The name a service claim stands for, written to buf.
    std::string_view spell(const engine_detail::Claim &claim, std::string &buf) const;
    // Whether a service claim stands for `name`, compared in place.
    bool spells(const engine_detail::Claim &claim, std::string_view name) const;
    // Where in shard.table the claim for `name` is, or SIZE_MAX.
    size_t locate(const engine_detail::Shard &shard, std::string_view name, uint16_t tag) const;
    void add_claim(engine_detail::Shard &shard, std::string_view name, uint64_t hash,
                   engine_detail::Claim claim) const;
    void remove_claim(engine_detail::Shard &shard, std::string_view name, uint64_t hash,
                      const engine_detail::Claim &claim) const;

    bool nested_zones_ = false;
    uint64_t hash_mask_ = ~uint64_t{0};
    std::vector<std::shared_ptr<const engine_detail::ServiceInfo>> info_;  // parallel to *set
    std::vector<ShardPtr> shards_;
    void nxdomain_or_nodata(Rcode rcode, size_t zone, Answer &out) const;
};

}  // namespace fabdns
