// Test helpers for kernel answer tables: putting one answer (addresses as text) the way the map
// compiler writes it, and an in-memory table that behaves like the kernel's.
#pragma once

#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <system_error>
#include <vector>

#include "common/net.hpp"
#include "datapath_maps.hpp"

namespace fabdns::test {

inline void put_answer(maps::AnswerTable &table, const std::string &name, uint16_t qtype,
                       const std::vector<std::string> &addrs, uint32_t ttl = 5) {
    maps::KernelAnswer a;
    a.name = name;
    a.qtype = qtype;
    a.ttl = ttl;
    for (const auto &s : addrs) a.addrs.push_back(IpAddr::parse(s)->bytes);
    ASSERT_TRUE(maps::fits_kernel(a.name, a.addrs.size()));
    table.upsert(maps::make_key(a.name, qtype), maps::make_value(a));
}

// Keys compared as bytes, as the kernel's hash map does.
struct KeyLess {
    bool operator()(const fabdns_answer_key &a, const fabdns_answer_key &b) const {
        return std::memcmp(&a, &b, sizeof(a)) < 0;
    }
};

// The answer map as a std::map, counting every write. Like the kernel map it refuses a new key
// when full.
class FakeTable : public maps::AnswerTable {
  public:
    explicit FakeTable(uint32_t capacity) : capacity_(capacity) {}

    std::optional<fabdns_answer> lookup(const fabdns_answer_key &key) const override {
        auto it = entries.find(key);
        if (it == entries.end()) return std::nullopt;
        return it->second;
    }
    // As the kernel's table does it: removals first, then additions up to the capacity.
    std::vector<maps::AnswerFailure> apply(
        const std::vector<maps::AnswerChange> &changes) override {
        if (fail_next) {
            fail_next = false;
            throw std::system_error(EPERM, std::generic_category(), "answers_active map update");
        }
        batches++;
        for (const auto &c : changes) {
            if (c.value) continue;
            erases++;
            erased.insert(c.key);
            entries.erase(c.key);
        }
        std::vector<maps::AnswerFailure> failed;
        for (size_t i = 0; i < changes.size(); i++) {
            const auto &c = changes[i];
            if (!c.value) continue;
            if (!entries.count(c.key) && entries.size() >= capacity_) {
                failed_upserts++;
                failed.push_back({i, E2BIG});
                continue;
            }
            upserts++;
            upserted.insert(c.key);
            entries[c.key] = *c.value;
        }
        return failed;
    }
    void for_each(const std::function<void(const fabdns_answer_key &, const fabdns_answer &)> &fn)
        const override {
        for (const auto &[k, v] : entries) fn(k, v);
    }
    uint32_t capacity() const override { return capacity_; }

    void reset_counters() {
        upserts = erases = failed_upserts = batches = 0;
        upserted.clear();
        erased.clear();
    }
    bool holds(const std::string &name, uint16_t qtype) const {
        return entries.count(maps::make_key(name, qtype)) > 0;
    }

    std::map<fabdns_answer_key, fabdns_answer, KeyLess> entries;
    size_t upserts = 0, erases = 0, failed_upserts = 0, batches = 0;
    bool fail_next = false;  // the next apply() throws, as a failed switch of copies does
    std::set<fabdns_answer_key, KeyLess> upserted, erased;

  private:
    uint32_t capacity_;
};

}  // namespace fabdns::test
