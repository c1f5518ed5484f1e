// Tests of source/objects.hpp: how every source turns a decoded document into the next set
// (one de-duplication, last good versions of rejected objects).
#include "source/objects.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <random>

namespace fabdns::source_detail {
namespace {

GlobalService svc(const char *ns, const char *name, const char *rv) {
    GlobalService s;
    s.ns = ns;
    s.name = name;
    s.resource_version = rv;
    return s;
}

std::vector<std::string> keys_and_versions(const ServiceList &v) {
    std::vector<std::string> out;
    for (const auto &s : v) out.push_back(s->key() + "@" + s->resource_version);
    return out;
}

ServiceList list(std::vector<GlobalService> v) {
    return *make_service_set(std::move(v));
}

ServicePtr shared_svc(const std::string &ns, const std::string &name, const std::string &rv) {
    return std::make_shared<const GlobalService>(svc(ns.c_str(), name.c_str(), rv.c_str()));
}

TEST(BuildSet, DuplicatesKeepTheLastAndTheSetIsSortedByKey) {
    DecodeResult r;
    r.services = {svc("y", "a", "1"), svc("x", "b", "1"), svc("x", "a", "1"), svc("x", "a", "2")};
    NextSet next = build_set(r, {}, "test");
    EXPECT_EQ(keys_and_versions(next.services),
              (std::vector<std::string>{"x/a@2", "x/b@1", "y/a@1"}));
    EXPECT_EQ(next.kept, 0u);
}

// A duplicated name after another service: the service before the run is already in the set
// when the run's first copy is warned about.
TEST(BuildSet, DuplicatesAfterAnotherService) {
    DecodeResult r;
    r.services = {svc("x", "a", "1"), svc("x", "b", "1"), svc("x", "b", "2"),
                  svc("x", "c", "1"), svc("x", "c", "2"), svc("x", "c", "3")};
    NextSet next = build_set(r, {}, "test");
    EXPECT_EQ(keys_and_versions(next.services),
              (std::vector<std::string>{"x/a@1", "x/b@2", "x/c@3"}));
}

TEST(BuildSet, RejectedObjectsKeepTheirHeldVersion) {
    ServiceList held = list({svc("x", "a", "1"), svc("x", "b", "1"), svc("x", "c", "1")});
    DecodeResult r;
    r.services = {svc("x", "d", "1")};
    r.reject({"x/a", "spec: missing", "x/a"});        // held: kept
    r.reject({"x/a", "spec: missing", "x/a"});        // twice: kept once
    r.reject({"x/z", "spec: missing", "x/z"});        // never held: left out
    r.reject({"items[4]", "metadata: missing", ""});  // unnamed: nothing to keep
    // x/b is absent from the document: gone. x/c is absent too.
    NextSet next = build_set(r, held, "test");
    EXPECT_EQ(keys_and_versions(next.services), (std::vector<std::string>{"x/a@1", "x/d@1"}));
    EXPECT_EQ(next.kept, 1u);
}

TEST(BuildSet, AValidObjectOfTheSameNameWinsOverTheHeldOne) {
    ServiceList held = list({svc("x", "a", "1")});
    DecodeResult r;
    r.services = {svc("x", "a", "3")};
    r.reject({"x/a", "spec: missing", "x/a"});
    NextSet next = build_set(r, held, "test");
    EXPECT_EQ(keys_and_versions(next.services), (std::vector<std::string>{"x/a@3"}));
    EXPECT_EQ(next.kept, 0u);
}

TEST(BuildSet, AnUnchangedObjectIsTheHeldOne) {
    ServiceList held = list({svc("x", "a", "1"), svc("x", "b", "1"), svc("x", "c", "1")});
    DecodeResult r;
    r.services = {svc("x", "c", "1"), svc("x", "a", "2"), svc("x", "b", "1"), svc("w", "a", "1")};
    NextSet next = build_set(r, held, "test");
    ASSERT_EQ(keys_and_versions(next.services),
              (std::vector<std::string>{"w/a@1", "x/a@2", "x/b@1", "x/c@1"}));
    // The engine tells unchanged services by their pointer: equal content must share it.
    EXPECT_EQ(next.services[2], held[1]);
    EXPECT_EQ(next.services[3], held[2]);
    EXPECT_NE(next.services[1], held[0]);
}

TEST(BuildSet, FindHeld) {
    ServiceList held = list({svc("x", "a", "1"), svc("y", "a", "2")});
    ASSERT_NE(find_held(held, "y/a"), nullptr);
    EXPECT_EQ((*find_held(held, "y/a"))->resource_version, "2");
    EXPECT_EQ(find_held(held, "z/a"), nullptr);
    EXPECT_EQ(find_held(held, "nonsense"), nullptr);
}

// The memo serves a document whose services changed only in version (new pointers, the same
// names at the same positions), not one with a service renamed: x/b renamed x/d sorts last,
// where the memo's order would leave it.
TEST(SortMemo, ReusedForNewVersionsNotForARename) {
    std::vector<ServicePtr> doc = {shared_svc("x", "c", "1"), shared_svc("x", "a", "1"),
                                   shared_svc("x", "b", "1")};
    SortMemo memo;
    auto run = [&] {
        std::vector<ServicePtr> in = doc;
        ServiceList out = unique_services(in, {}, "test", "", &memo);
        EXPECT_TRUE(memo.input == doc);  // the memo describes the input it was given last
        return keys_and_versions(out);
    };
    EXPECT_EQ(run(), (std::vector<std::string>{"x/a@1", "x/b@1", "x/c@1"}));
    EXPECT_EQ(memo.reuses, 0u);
    EXPECT_EQ(run(), (std::vector<std::string>{"x/a@1", "x/b@1", "x/c@1"}));
    EXPECT_EQ(memo.reuses, 1u);
    doc[2] = shared_svc("x", "b", "2");
    EXPECT_EQ(run(), (std::vector<std::string>{"x/a@1", "x/b@2", "x/c@1"}));
    EXPECT_EQ(memo.reuses, 2u);
    doc[2] = shared_svc("x", "d", "1");
    EXPECT_EQ(run(), (std::vector<std::string>{"x/a@1", "x/c@1", "x/d@1"}));
    EXPECT_EQ(memo.reuses, 2u);
    doc.pop_back();
    EXPECT_EQ(run(), (std::vector<std::string>{"x/a@1", "x/c@1"}));
    EXPECT_EQ(memo.reuses, 2u);
    EXPECT_EQ(run(), (std::vector<std::string>{"x/a@1", "x/c@1"}));
    EXPECT_EQ(memo.reuses, 3u);
}

// With a memo, unique_services gives exactly what it gives without one (the same pointers in the
// same order) for a document edited at random between decodes: new versions and equal copies in
// place (the memo serves), renames, duplicates, insertions, removals and swaps (mostly it does
// not). Names share their first 16 bytes often, so that ties are broken past the SortKey.
TEST(SortMemo, SameResultAsWithoutOverRandomEdits) {
    std::mt19937 rng(20261205);
    auto pick = [&](size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng); };
    int version = 0;
    auto random_service = [&] {
        static const char *const kNamespaces[] = {"a", "b", "a-namespace-over-16-bytes"};
        std::string name =
            (pick(2) ? "s" : "a-service-name-over-16-bytes-") + std::to_string(pick(60));
        return shared_svc(kNamespaces[pick(3)], name, std::to_string(++version));
    };
    std::vector<ServicePtr> doc;
    for (int i = 0; i < 150; ++i) doc.push_back(random_service());
    SortMemo memo;
    ServiceList held;
    constexpr int kRounds = 600;
    for (int round = 0; round < kRounds; ++round) {
        size_t i = pick(doc.size()), j = pick(doc.size());
        switch (pick(9)) {
            case 0:
            case 1:
            case 2:  // a new version
                doc[i] = shared_svc(doc[i]->ns, doc[i]->name, std::to_string(++version));
                break;
            case 3:  // a new object equal to the last: the held one is used
                doc[i] = std::make_shared<const GlobalService>(*doc[i]);
                break;
            case 4:  // renamed
                doc[i] = random_service();
                break;
            case 5:  // a duplicate of another service, at i
                doc[i] = shared_svc(doc[j]->ns, doc[j]->name, std::to_string(++version));
                break;
            case 6:  // inserted or removed
                if (pick(2) != 0 && doc.size() > 1)
                    doc.erase(doc.begin() + static_cast<std::ptrdiff_t>(i));
                else
                    doc.insert(doc.begin() + static_cast<std::ptrdiff_t>(i), random_service());
                break;
            case 7:  // reordered
                std::swap(doc[i], doc[j]);
                break;
            default:  // unchanged
                break;
        }
        std::vector<ServicePtr> with = doc, without = doc;
        ServiceList got = unique_services(with, held, "test", "", &memo);
        ServiceList want = unique_services(without, held, "test");
        ASSERT_EQ(keys_and_versions(got), keys_and_versions(want)) << "round " << round;
        ASSERT_TRUE(got == want) << "round " << round;  // the very pointers
        held = std::move(want);
    }
    // Both ways were taken many times.
    EXPECT_GT(memo.reuses, static_cast<size_t>(kRounds) / 3);
    EXPECT_LT(memo.reuses, static_cast<size_t>(kRounds) * 9 / 10);
}

// A document decoded into values (no SpanCache) cannot recur pointer for pointer: build_set
// drops the memo rather than keep its services alive.
TEST(SortMemo, BuildSetClearsItForValues) {
    SortMemo memo;
    DecodeResult shared;
    shared.shared = {shared_svc("x", "b", "1"), shared_svc("x", "a", "1")};
    build_set(shared, {}, "test", &memo);
    EXPECT_EQ(memo.input.size(), 2u);
    EXPECT_EQ(memo.keys.size(), 2u);
    DecodeResult values;
    values.services = {svc("x", "a", "1")};
    NextSet next = build_set(values, {}, "test", &memo);
    EXPECT_EQ(keys_and_versions(next.services), (std::vector<std::string>{"x/a@1"}));
    EXPECT_TRUE(memo.input.empty());
    EXPECT_TRUE(memo.keys.empty());
}

}  // namespace
}  // namespace fabdns::source_detail
