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

std::vector<std::string> keys_and_versions(const std::vector<GlobalService> &v) {
    std::vector<std::string> out;
    for (const auto &s : v) out.push_back(s.key() + "@" + s.resource_version);
    return out;
}

TEST(BuildSet, DuplicatesKeepTheLastAndTheSetIsSortedByKey) {
    DecodeResult r;
    r.services = {svc("y", "a", "1"), svc("x", "b", "1"), svc("x", "a", "1"), svc("x", "a", "2")};
    NextSet next = build_set(r, {}, "test");
    EXPECT_EQ(keys_and_versions(next.services),
              (std::vector<std::string>{"x/a@2", "x/b@1", "y/a@1"}));
    EXPECT_EQ(next.kept, 0u);
}

TEST(BuildSet, RejectedObjectsKeepTheirHeldVersion) {
    std::vector<GlobalService> held{svc("x", "a", "1"), svc("x", "b", "1"), svc("x", "c", "1")};
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
    std::vector<GlobalService> held{svc("x", "a", "1")};
    DecodeResult r;
    r.services = {svc("x", "a", "3")};
    r.reject({"x/a", "spec: missing", "x/a"});
    NextSet next = build_set(r, held, "test");
    EXPECT_EQ(keys_and_versions(next.services), (std::vector<std::string>{"x/a@3"}));
    EXPECT_EQ(next.kept, 0u);
}

TEST(BuildSet, FindHeld) {
    std::vector<GlobalService> held{svc("x", "a", "1"), svc("y", "a", "2")};
    ASSERT_NE(find_held(held, "y/a"), nullptr);
    EXPECT_EQ(find_held(held, "y/a")->resource_version, "2");
    EXPECT_EQ(find_held(held, "z/a"), nullptr);
    EXPECT_EQ(find_held(held, "nonsense"), nullptr);
}

}  // namespace
}  // namespace fabdns::source_detail
