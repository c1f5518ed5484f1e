// Map compiler: desired set from the engine, capacity ranking, and diff-apply to the map.
#include "compiler/compiler.hpp"

#include <algorithm>
#include <chrono>
#include <cstring>

#include "common/log.hpp"

namespace fabdns {

namespace {

double ms_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

std::string query_key(std::string_view name, uint16_t qtype) {
    std::string k(name);
    k += '/';
    k += std::to_string(qtype);
    return k;
}

bool same_answer(const fabdns_answer &a, const fabdns_answer &b) {
    // Everything but the kernel's hit counter.
    return std::memcmp(a.name, b.name, sizeof(a.name)) == 0 && a.ttl == b.ttl &&
           a.count == b.count && a.flags == b.flags &&
           std::memcmp(a.rdata, b.rdata, sizeof(a.rdata)) == 0;
}

maps::KernelAnswer to_kernel(std::string_view name, uint16_t qtype, const Answer &ans) {
    maps::KernelAnswer k;
    k.name = std::string(name);
    k.qtype = qtype;
    k.ttl = ans.answer.front().ttl;
    for (const auto &rr : ans.answer) {
        std::array<uint8_t, 16> a{};
        std::memcpy(a.data(), rr.rdata.data(), std::min<size_t>(16, rr.rdata.size()));
        k.addrs.push_back(a);
    }
    return k;
}

// Whether a map value already holds this answer (compared in place: this runs for every
// answer on every sync, so it builds nothing).
bool holds(const fabdns_answer &v, std::string_view name, const Answer &ans) {
    if (name.size() >= sizeof(v.name) || std::memcmp(v.name, name.data(), name.size()) != 0 ||
        v.name[name.size()] != '\0')
        return false;
    if (v.ttl != ans.answer.front().ttl || v.count != ans.answer.size()) return false;
    size_t off = 0;
    for (const auto &rr : ans.answer) {
        if (off + rr.rdata.size() > sizeof(v.rdata) ||
            std::memcmp(&v.rdata[off], rr.rdata.data(), rr.rdata.size()) != 0)
            return false;
        off += rr.rdata.size();
    }
    return true;
}

}  // namespace

std::vector<maps::KernelAnswer> kernel_answers(const Engine &engine, size_t *unfit) {
    std::vector<maps::KernelAnswer> out;
    size_t skipped = 0;
    engine.for_each_address_answer(
        [&](std::string_view name, uint16_t qtype, const Answer &ans) {
            if (ans.rcode != Rcode::NoError || ans.answer.empty()) return;
            if (!maps::fits_kernel(name, ans.answer.size())) {
                skipped++;
                return;
            }
            out.push_back(to_kernel(name, qtype, ans));
        },
        /*include_pod_names=*/false);
    std::sort(out.begin(), out.end(), [](const auto &a, const auto &b) {
        return a.name != b.name ? a.name < b.name : a.qtype < b.qtype;
    });
    if (unfit) *unfit = skipped;
    return out;
}

MapCompiler::MapCompiler(maps::AnswerTable &table) : table_(table) {
    table_.for_each([&](const fabdns_answer_key &k, const fabdns_answer &v) {
        shadow_[k] = Entry{v, 0};
    });
}

void MapCompiler::note_query(std::string_view name, uint16_t qtype) {
    std::lock_guard lock(queries_mu_);
    // Bounded: a flood of distinct names must not grow memory without limit.
    if (user_queries_.size() > 1'000'000) user_queries_.clear();
    user_queries_[query_key(name, qtype)]++;
}

void MapCompiler::write(const fabdns_answer_key &k, const fabdns_answer &v, CompileStats &st) {
    auto it = shadow_.find(k);
    if (it != shadow_.end() && same_answer(it->second.value, v)) {
        it->second.generation = generation_;
        return;
    }
    try {
        table_.upsert(k, v);
    } catch (const std::exception &e) {
        log::warn(std::string("answer map update failed: ") + e.what() + " (" + v.name + ")");
        return;
    }
    (it == shadow_.end() ? st.added : st.updated)++;
    shadow_[k] = Entry{v, generation_};
}

void MapCompiler::remove_unwanted(CompileStats &st) {
    for (auto it = shadow_.begin(); it != shadow_.end();) {
        if (it->second.generation != generation_) {
            table_.erase(it->first);
            it = shadow_.erase(it);
            st.removed++;
        } else {
            ++it;
        }
    }
}

void MapCompiler::apply_all(const std::vector<maps::KernelAnswer> &desired, CompileStats &st) {
    std::vector<std::pair<fabdns_answer_key, fabdns_answer>> values;
    values.reserve(desired.size());
    for (const auto &a : desired) {
        auto k = maps::make_key(a.name, a.qtype);
        auto it = shadow_.find(k);
        if (it != shadow_.end()) it->second.generation = generation_;
        values.emplace_back(k, maps::make_value(a));
    }
    // Removals first so that additions have room in a full map; a removed name simply goes
    // to user space, which answers the same.
    remove_unwanted(st);
    for (const auto &[k, v] : values) write(k, v, st);
}

CompileStats MapCompiler::sync(const Engine &engine) {
    CompileStats st;
    auto t0 = std::chrono::steady_clock::now();
    generation_++;
    size_t cap = table_.capacity();

    // The common case, everything fits: one pass over the engine's answers that marks what
    // the map already holds and collects only what changed, without materialising the whole
    // set (a one-service change costs a walk and a few writes).
    bool over = false;
    std::vector<std::pair<fabdns_answer_key, fabdns_answer>> changed;
    engine.for_each_address_answer(
        [&](std::string_view name, uint16_t qtype, const Answer &ans) {
            if (over || ans.rcode != Rcode::NoError || ans.answer.empty()) return;
            if (!maps::fits_kernel(name, ans.answer.size())) {
                st.unfit++;
                return;
            }
            if (++st.desired > cap) {
                over = true;
                return;
            }
            auto key = maps::make_key(name, qtype);
            auto it = shadow_.find(key);
            if (it != shadow_.end() && holds(it->second.value, name, ans)) {
                it->second.generation = generation_;
                return;
            }
            changed.emplace_back(key, maps::make_value(to_kernel(name, qtype, ans)));
        },
        /*include_pod_names=*/false);
    if (!over) {
        st.compile_ms = ms_since(t0);
        auto t1 = std::chrono::steady_clock::now();
        // Changed keys are not marked yet: mark them so that removal keeps them, then remove
        // first so that additions have room in a full map.
        for (auto &[k, v] : changed)
            if (auto it = shadow_.find(k); it != shadow_.end()) it->second.generation = generation_;
        remove_unwanted(st);
        for (auto &[k, v] : changed) write(k, v, st);
        st.entries = shadow_.size();
        st.apply_ms = ms_since(t1);
        last_ = st;
        return st;
    }

    // Over capacity: rank by queries seen (kernel hits + user-space answers), keep the top.
    st = CompileStats{};
    generation_++;
    auto answers = kernel_answers(engine, &st.unfit);
    st.desired = answers.size();
    std::unordered_map<std::string, uint64_t> score;
    {
        std::lock_guard lock(queries_mu_);
        score = user_queries_;
    }
    table_.for_each([&](const fabdns_answer_key &k, const fabdns_answer &v) {
        score[query_key(std::string_view(v.name, strnlen(v.name, sizeof(v.name))), k.qtype)] +=
            v.hits;
    });
    std::vector<std::pair<uint64_t, size_t>> rank;
    rank.reserve(answers.size());
    for (size_t i = 0; i < answers.size(); i++) {
        auto it = score.find(query_key(answers[i].name, answers[i].qtype));
        rank.emplace_back(it == score.end() ? 0 : it->second, i);
    }
    // Highest score first; ties keep the sorted (name, type) order so results are stable.
    std::stable_sort(rank.begin(), rank.end(),
                     [](const auto &a, const auto &b) { return a.first > b.first; });
    std::vector<maps::KernelAnswer> kept;
    kept.reserve(cap);
    for (size_t i = 0; i < cap; i++) kept.push_back(std::move(answers[rank[i].second]));
    st.over_capacity = answers.size() - cap;
    st.compile_ms = ms_since(t0);
    auto t1 = std::chrono::steady_clock::now();
    apply_all(kept, st);
    st.entries = shadow_.size();
    st.apply_ms = ms_since(t1);
    last_ = st;
    return st;
}

}  // namespace fabdns
