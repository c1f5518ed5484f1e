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
            maps::KernelAnswer k;
            k.name = std::string(name);
            k.qtype = qtype;
            k.ttl = ans.answer.front().ttl;
            for (const auto &rr : ans.answer) {
                std::array<uint8_t, 16> a{};
                std::memcpy(a.data(), rr.rdata.data(), std::min<size_t>(16, rr.rdata.size()));
                k.addrs.push_back(a);
            }
            out.push_back(std::move(k));
        },
        /*include_pod_names=*/false);
    std::sort(out.begin(), out.end(), [](const auto &a, const auto &b) {
        return a.name != b.name ? a.name < b.name : a.qtype < b.qtype;
    });
    if (unfit) *unfit = skipped;
    return out;
}

MapCompiler::MapCompiler(maps::AnswerTable &table) : table_(table) {
    table_.for_each([&](const fabdns_answer_key &k, const fabdns_answer &v) { shadow_[k] = v; });
}

void MapCompiler::note_query(std::string_view name, uint16_t qtype) {
    std::lock_guard lock(queries_mu_);
    // Bounded: a flood of distinct names must not grow memory without limit.
    if (user_queries_.size() > 1'000'000) user_queries_.clear();
    user_queries_[query_key(name, qtype)]++;
}

CompileStats MapCompiler::sync(const Engine &engine) {
    CompileStats st;
    auto t0 = std::chrono::steady_clock::now();
    auto answers = kernel_answers(engine, &st.unfit);
    st.desired = answers.size();

    // Over capacity: rank by queries seen (kernel hits + user-space answers), keep the top.
    size_t cap = table_.capacity();
    if (answers.size() > cap) {
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
        answers = std::move(kept);
    }

    Shadow desired;
    desired.reserve(answers.size());
    for (const auto &a : answers)
        desired.emplace(maps::make_key(a.name, a.qtype), maps::make_value(a));
    st.compile_ms = ms_since(t0);

    // Removals first so that additions have room in a full map; a removed name simply goes to
    // user space, which answers the same.
    auto t1 = std::chrono::steady_clock::now();
    for (auto it = shadow_.begin(); it != shadow_.end();) {
        if (!desired.count(it->first)) {
            table_.erase(it->first);
            it = shadow_.erase(it);
            st.removed++;
        } else {
            ++it;
        }
    }
    for (auto &[k, v] : desired) {
        auto it = shadow_.find(k);
        if (it != shadow_.end() && same_answer(it->second, v)) continue;
        try {
            table_.upsert(k, v);
        } catch (const std::exception &e) {
            log::warn(std::string("answer map update failed: ") + e.what() + " (" + v.name + ")");
            continue;
        }
        (it == shadow_.end() ? st.added : st.updated)++;
        shadow_[k] = v;
    }
    st.entries = shadow_.size();
    st.apply_ms = ms_since(t1);
    last_ = st;
    return st;
}

}  // namespace fabdns
