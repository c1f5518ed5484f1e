// Tests of source/objects.hpp: the structural check, type defaults and de-duplication.
#include "source/objects.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "support.hpp"

namespace fabdns::source_detail {
namespace {

using fabdns::testing::service_json;

TEST(ObjectsTest, StructuralProblems) {
    EXPECT_EQ(structural_problem(service_json("a", "b", {"10.0.0.1"})), "");
    EXPECT_EQ(structural_problem(nlohmann::json::array()), "not an object");
    EXPECT_EQ(structural_problem({{"spec", nlohmann::json::object()}}), "no metadata");
    EXPECT_EQ(structural_problem({{"metadata", {{"namespace", "x"}}}, {"spec", {{"a", 1}}}}),
              "no metadata.name");
    EXPECT_EQ(structural_problem({{"metadata", {{"name", ""}, {"namespace", "x"}}}}),
              "no metadata.name");
    EXPECT_EQ(structural_problem({{"metadata", {{"name", "a"}}}}), "no metadata.namespace");
    EXPECT_EQ(structural_problem({{"metadata", {{"name", "a"}, {"namespace", "x"}}}}), "no spec");
    EXPECT_EQ(structural_problem({{"metadata", {{"name", "a"}, {"namespace", "x"}}}, {"spec", 3}}),
              "no spec");
}

TEST(ObjectsTest, TypeMetaDefaultsOnlyWhenAbsent) {
    nlohmann::json a = {{"metadata", {{"name", "a"}}}};
    default_type_meta(a);
    EXPECT_EQ(a["apiVersion"], kApiVersion);
    EXPECT_EQ(a["kind"], kKind);
    nlohmann::json b = {{"apiVersion", "v1"}, {"kind", "Service"}};
    default_type_meta(b);
    EXPECT_EQ(b["apiVersion"], "v1");
    EXPECT_EQ(b["kind"], "Service");
}

TEST(ObjectsTest, ObjectKey) {
    EXPECT_EQ(object_key(service_json("a", "b", {})), "b/a");
    EXPECT_EQ(object_key({{"metadata", {{"name", "a"}}}}), "");
    EXPECT_EQ(object_key(nlohmann::json("x")), "");
}

TEST(ObjectsTest, DedupeKeepsTheLastInFirstSeenOrder) {
    auto svc = [](const char *ns, const char *name, const char *rv) {
        GlobalService s;
        s.ns = ns;
        s.name = name;
        s.resource_version = rv;
        return s;
    };
    std::vector<GlobalService> v{svc("x", "a", "1"), svc("x", "b", "1"), svc("x", "a", "2"),
                                 svc("y", "a", "1")};
    dedupe(v, "test");
    ASSERT_EQ(v.size(), 3u);
    EXPECT_EQ(v[0].key(), "x/a");
    EXPECT_EQ(v[0].resource_version, "2");
    EXPECT_EQ(v[1].key(), "x/b");
    EXPECT_EQ(v[2].key(), "y/a");
}

}  // namespace
}  // namespace fabdns::source_detail
