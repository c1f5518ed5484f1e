// Tests of source/objects.hpp: how every source turns a decoded document into the next set
// (one de-duplication, last good versions of rejected objects).
#include "source/objects.hpp"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace fabdns::source_detail
