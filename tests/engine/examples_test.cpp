// Checks the seed scenario in examples/globalservices.yaml: what nodes in beijing, shanghai and
// suzhou are answered.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "engine/engine.hpp"
#include "model/document.hpp"
#include "support.hpp"

namespace fabdns {
namespace {

using namespace fabdns::testing;

std::vector<GlobalService> load_example() {
    std::ifstream in(std::string(FABDNS_SOURCE_DIR) + "/examples/globalservices.yaml");
    EXPECT_TRUE(in.good()) << "examples/globalservices.yaml not readable";
    std::stringstream text;
    text << in.rdbuf();
    DocumentResult r = decode_yaml_documents(text.str());
    EXPECT_EQ(r.error, "");
    for (const auto &rej : r.rejected) ADD_FAILURE() << rej.object << ": " << rej.reason;
    return r.services;
}

Strings a_of(const Engine &e, const char *name) {
    return addresses(e.resolve(name, dnstype::A));
}

TEST(Examples, SeedScenarioLoads) {
    auto services = load_example();
    ASSERT_EQ(services.size(), 3u);
    EXPECT_EQ(services[0].key(), "default/nginx");
    EXPECT_EQ(services[1].key(), "default/mysql");
    EXPECT_EQ(services[2].key(), "default/web");
    EXPECT_EQ(services[2].type, ServiceType::Headless);
}

TEST(Examples, BeijingNodeGetsBeijing) {
    Engine e(options({"beijing", "beijing", "north"}));
    e.set_services(load_example());
    EXPECT_EQ(a_of(e, "nginx.default.svc.global"), Strings{"10.233.0.10"});
    EXPECT_EQ(a_of(e, "mysql.default.svc.global"), Strings{"10.233.0.20"});
    // Only shanghai has IPv6: AAAA falls back to all endpoints.
    EXPECT_EQ(addresses(e.resolve("nginx.default.svc.global", dnstype::AAAA)),
              Strings{"fd00:234::10"});
    EXPECT_EQ(e.explain("nginx.default.svc.global", dnstype::AAAA).tier, Tier::All);
    EXPECT_EQ(a_of(e, "web.default.svc.global"), (Strings{"10.243.1.5", "10.243.2.7"}));
    EXPECT_EQ(a_of(e, "web-0.beijing.web.default.svc.global"), Strings{"10.243.1.5"});
    EXPECT_EQ(a_of(e, "web-1.beijing.web.default.svc.global"), Strings{"10.243.2.7"});
}

TEST(Examples, SuzhouNodeGetsShanghaiThroughTheRegion) {
    Engine e(options({"suzhou", "suzhou", "south"}));
    e.set_services(load_example());
    Explanation ex = e.explain("nginx.default.svc.global", dnstype::A);
    EXPECT_EQ(addresses(ex.answer), Strings{"10.234.0.10"});
    EXPECT_EQ(ex.tier, Tier::Region);
    EXPECT_EQ(a_of(e, "mysql.default.global"), Strings{"10.234.0.20"});
    EXPECT_EQ(addresses(e.resolve("nginx.default.svc.global", dnstype::AAAA)),
              Strings{"fd00:234::10"});
    // Pinned names do not depend on the node.
    EXPECT_EQ(a_of(e, "beijing.nginx.default.svc.global"), Strings{"10.233.0.10"});
    EXPECT_EQ(a_of(e, "nginx.default.beijing.global"), Strings{"10.233.0.10"});
    // web only runs in beijing: the "all" tier.
    EXPECT_EQ(a_of(e, "web.default.svc.global"), (Strings{"10.243.1.5", "10.243.2.7"}));
}

TEST(Examples, ShanghaiNodeGetsShanghai) {
    Engine e(options({"shanghai", "shanghai", "south"}));
    e.set_services(load_example());
    EXPECT_EQ(a_of(e, "nginx.default.svc.global"), Strings{"10.234.0.10"});
    EXPECT_EQ(e.explain("nginx.default.svc.global", dnstype::A).tier, Tier::Cluster);
}

}  // namespace
}  // namespace fabdns
