// The map compiler: turns the answer engine's output into the kernel's answer map for this
// node. It computes the desired set (every service name x {A, AAAA} whose answer fits the
// kernel), keeps the most-queried names when the set exceeds the map's capacity, and applies
// only the difference to the live map, as one batch: a concurrent query sees the data set
// before the sync or after it, never a gap or a mix.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "datapath_maps.hpp"
#include "engine/engine.hpp"

namespace fabdns {

struct CompileStats {
    size_t desired = 0;        // answers that fit the kernel
    size_t over_capacity = 0;  // of those, left to user space for lack of room
    size_t unfit = 0;          // answers the kernel cannot hold (too many records, name)
    size_t added = 0, updated = 0, removed = 0;
    size_t entries = 0;  // in the map after the sync
    double compile_ms = 0, apply_ms = 0;
};

// Every answer the kernel may serve for the engine's current data, sorted by (name, qtype).
// `unfit` counts the answers left out because they do not fit.
std::vector<maps::KernelAnswer> kernel_answers(const Engine &engine, size_t *unfit = nullptr);

// Whether the kernel holds one answer of the engine's, as sync() writes it, and if not, why
// (a sentence for an operator). For `fabdnsctl explain`: the same filter as sync().
struct KernelChoice {
    std::optional<maps::KernelAnswer> entry;
    std::string why_not;
};
KernelChoice kernel_choice(std::string_view name, uint16_t qtype, const Explanation &ex);

class MapCompiler {
  public:
    // Adopts what is already in the map (after a restart) as the current state.
    explicit MapCompiler(maps::AnswerTable &table);

    // Brings the map in line with the engine's data. Not thread-safe against itself. When the
    // engine made one update since the last sync, which held all of its answers, only the names
    // that update changed are looked at (a one-service change costs its own names, not a walk
    // of the set); otherwise every answer is. Over capacity the map holds a ranked part of the
    // set, and such an update keeps the names it holds current; a changed name it does not hold
    // stays in user space (which answers the same) until resync() ranks again.
    CompileStats sync(const Engine &engine);
    // Walks the whole set as a first sync does: over capacity, ranks again with the queries
    // counted since. The daemon calls it now and then while over capacity.
    CompileStats resync(const Engine &engine);

    // Counts a query answered in user space (ranking input when over capacity). Thread-safe.
    void note_query(std::string_view name, uint16_t qtype);

    const CompileStats &last() const { return last_; }
    // Whether the map holds a ranked part of the set and user space has answered A or AAAA
    // queries since the ranking (which resync() would count). Thread-safe.
    bool ranking_outdated() const;

    // The first sync into an empty map is written in batches of this many (commit_in_parts).
    static constexpr size_t kFirstSyncPart = 8192;

  private:
    struct KeyHash {
        size_t operator()(const fabdns_answer_key &k) const { return k.hash ^ k.qtype; }
    };
    struct KeyEq {
        bool operator()(const fabdns_answer_key &a, const fabdns_answer_key &b) const {
            return a.hash == b.hash && a.qtype == b.qtype && a.name_len == b.name_len;
        }
    };
    // Digests instead of the 400-byte values keep the shadow small (10,000 services: ~34 MiB
    // of copies before). `value` covers every field but the kernel's hit counter and decides
    // whether a write is needed; `held` covers what the sync's in-place check compares with an
    // engine answer (held_digest() in compiler.cpp).
    struct Entry {
        uint64_t value = 0;
        uint64_t held = 0;
        uint32_t generation = 0;  // the last sync that wanted this entry
        uint16_t zone = kNoZone;  // a NODATA entry's zone: index into zone_keys_
    };
    static constexpr uint16_t kNoZone = UINT16_MAX;
    using Shadow = std::unordered_map<fabdns_answer_key, Entry, KeyHash, KeyEq>;

    using Batch = std::vector<maps::AnswerChange>;
    // Applies `desired` (already ranked to fit) in full; used when over capacity. Frees
    // `desired` once it is staged, before the batch is written.
    bool apply_all(std::vector<maps::KernelAnswer> desired, CompileStats &st);
    // The `cap` answers to keep when the wanted set does not fit; nullopt when it fits after
    // all (then the caller walks it as usual). Fills st.desired, st.unfit, st.over_capacity.
    std::optional<std::vector<maps::KernelAnswer>> ranked_answers(const Engine &engine, size_t cap,
                                                                  CompileStats &st);
    // Adds k = v to the batch unless the map already holds it (marking it wanted).
    void stage(const fabdns_answer_key &k, const fabdns_answer &v, Batch &batch);
    // Adds the removal of every entry this sync did not mark wanted.
    void stage_removals(Batch &batch);
    // Applies the batch as one step and brings the shadow in line with what was made. False
    // when some of it was not made.
    bool commit(const Batch &batch, CompileStats &st);
    // Into an empty map every change is an addition, and a name not in the map yet is answered
    // by user space from the same set: the first sync stages and commits its n changes in parts
    // of kFirstSyncPart (stage_one(i, batch) stages the i-th) instead of staging them whole
    // (~424 bytes a change: 27 MiB for a full default map, at the first sync's peak).
    bool commit_in_parts(size_t n, CompileStats &st,
                         const std::function<void(size_t, Batch &)> &stage_one);
    // Stages only the answers of the names the engine's last update changed, and the zone
    // entries; false (nothing staged) when that cannot be told (see sync()).
    bool sync_changes(const Engine &engine, CompileStats &st);
    // The shadow entry for a value written, and the NODATA count per zone kept with it.
    Entry entry_for(const fabdns_answer_key &k, const fabdns_answer &v);
    void count(const Entry &e, int delta);

    maps::AnswerTable &table_;
    Shadow shadow_;  // what the map holds, as written by us
    uint32_t generation_ = 0;
    // The zone keys NODATA entries refer to, and how many NODATA entries of each the map
    // holds: a zone's entry is kept while some NODATA entry refers to it.
    std::vector<fabdns_answer_key> zone_keys_;
    std::vector<size_t> nodata_;
    // The engine generation the map holds in full (0: unknown), so that the next sync can
    // apply only what the engine's next update changed.
    uint64_t synced_generation_ = 0;
    // The map holds a ranked part of an over-capacity set (the last full sync ranked).
    std::atomic<bool> ranked_{false};  // read by ranking_outdated() on another thread
    // Queries per name, A and AAAA, found by string_view: the ranking looks up every answer.
    struct NameHash {
        using is_transparent = void;
        size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
    };
    using QueryCounts =
        std::unordered_map<std::string, std::array<uint64_t, 2>, NameHash, std::equal_to<>>;
    mutable std::mutex queries_mu_;
    QueryCounts user_queries_;  // answered in user space (only A and AAAA can move in)
    uint64_t noted_ = 0, noted_at_rank_ = 0;  // note_query() calls, in all and at the ranking
    CompileStats last_;
};

}  // namespace fabdns
