// Unit tests for daemon/engine: naming forms, topology tiers per address family, NODATA /
// NXDOMAIN / SOA, apex and empty non-terminals, zones, explain() and for_each_service_answer().
#include "engine/engine.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <map>
#include <set>
#include <stdexcept>
#include <thread>
#include <tuple>

#include "support.hpp"

namespace fabdns {
namespace {

using namespace fabdns::testing;

const NodeTopology kBeijing{"beijing", "bj", "north"};

// One service with an endpoint in every tier as seen from kBeijing.
GlobalService tiered() {
    return service("tiered", "default",
                   {endpoint("beijing", "bj", "north", {"10.0.0.1"}),
                    endpoint("tianjin", "bj", "north", {"10.0.0.2"}),
                    endpoint("dalian", "dl", "north", {"10.0.0.3"}),
                    endpoint("shanghai", "sh", "south", {"10.0.0.4"})});
}

// IPv6 only outside the node's zone: AAAA must fall back further than A.
GlobalService dual() {
    return service("dual", "default",
                   {endpoint("beijing", "bj", "north", {"10.1.0.1"}),
                    endpoint("dalian", "dl", "north", {"10.1.0.3", "fd00::3"}),
                    endpoint("shanghai", "sh", "south", {"fd00::4"})});
}

GlobalService headless() {
    return service("web", "apps",
                   {endpoint("beijing", "bj", "north", {"10.2.0.1"}, "web-0"),
                    endpoint("beijing", "bj", "north", {"10.2.0.2", "fd00::2:2"}, "web-1"),
                    endpoint("shanghai", "sh", "south", {"10.2.1.1"}, "web-0")},
                   ServiceType::Headless);
}

Strings resolve_a(const Engine &e, std::string_view name) {
    return addresses(e.resolve(name, dnstype::A));
}
Strings resolve_aaaa(const Engine &e, std::string_view name) {
    return addresses(e.resolve(name, dnstype::AAAA));
}

// Expects a NOERROR answer without records and the zone's SOA in authority.
void expect_nodata(const Answer &a, const std::string &zone = "global") {
    EXPECT_TRUE(a.in_zone);
    EXPECT_TRUE(a.authoritative);
    EXPECT_EQ(a.rcode, Rcode::NoError);
    EXPECT_TRUE(a.answer.empty());
    ASSERT_EQ(a.authority.size(), 1u);
    EXPECT_EQ(a.authority[0].type, dnstype::SOA);
    EXPECT_EQ(a.authority[0].owner, zone);
}

void expect_nxdomain(const Answer &a, const std::string &zone = "global") {
    EXPECT_TRUE(a.in_zone);
    EXPECT_TRUE(a.authoritative);
    EXPECT_EQ(a.rcode, Rcode::NxDomain);
    EXPECT_TRUE(a.answer.empty());
    ASSERT_EQ(a.authority.size(), 1u);
    EXPECT_EQ(a.authority[0].type, dnstype::SOA);
    EXPECT_EQ(a.authority[0].owner, zone);
}

TEST(EngineTopology, OwnClusterFirst) {
    Engine e(options(kBeijing));
    e.set_services({tiered()});
    EXPECT_EQ(resolve_a(e, "tiered.default.svc.global"), Strings{"10.0.0.1"});
}

TEST(EngineTopology, SameZoneWhenOwnClusterHasNone) {
    Engine e(options({"langfang", "bj", "north"}));
    e.set_services({tiered()});
    // beijing and tianjin are both in zone bj.
    EXPECT_EQ(resolve_a(e, "tiered.default.svc.global"), (Strings{"10.0.0.1", "10.0.0.2"}));
}

TEST(EngineTopology, SameRegionWhenZoneHasNone) {
    Engine e(options({"harbin", "hb", "north"}));
    e.set_services({tiered()});
    EXPECT_EQ(resolve_a(e, "tiered.default.svc.global"),
              (Strings{"10.0.0.1", "10.0.0.2", "10.0.0.3"}));
}

TEST(EngineTopology, AllEndpointsWhenNothingIsNear) {
    Engine e(options({"lhasa", "xz", "west"}));
    e.set_services({tiered()});
    EXPECT_EQ(resolve_a(e, "tiered.default.svc.global"),
              (Strings{"10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"}));
}

TEST(EngineTopology, EmptyLabelsMatchNothing) {
    // A node without zone and region, and endpoints without them: "" is not a shared zone.
    Engine e(options({"elsewhere", "", ""}));
    e.set_services({service(
        "s", "d", {endpoint("c1", "", "", {"10.9.0.1"}), endpoint("c2", "", "", {"10.9.0.2"})})});
    Explanation ex = e.explain("s.d.svc.global", dnstype::A);
    EXPECT_EQ(ex.tier, Tier::All);
    EXPECT_EQ(addresses(ex.answer), (Strings{"10.9.0.1", "10.9.0.2"}));
}

TEST(EngineTopology, TierIsChosenPerAddressFamily) {
    Engine e(options(kBeijing));
    e.set_services({dual()});
    // A: own cluster has IPv4.
    EXPECT_EQ(resolve_a(e, "dual.default.svc.global"), Strings{"10.1.0.1"});
    // AAAA: neither the cluster nor zone bj has IPv6; region north (dalian) does.
    EXPECT_EQ(resolve_aaaa(e, "dual.default.svc.global"), Strings{"fd00::3"});

    Engine south(options({"suzhou", "sz", "south"}));
    south.set_services({dual()});
    // A: nothing in region south has IPv4, so all IPv4 endpoints.
    EXPECT_EQ(resolve_a(south, "dual.default.svc.global"), (Strings{"10.1.0.1", "10.1.0.3"}));
    EXPECT_EQ(resolve_aaaa(south, "dual.default.svc.global"), Strings{"fd00::4"});
}

TEST(EngineTopology, HeadlessUsesTheSameRule) {
    Engine e(options(kBeijing));
    e.set_services({headless()});
    EXPECT_EQ(resolve_a(e, "web.apps.svc.global"), (Strings{"10.2.0.1", "10.2.0.2"}));
    EXPECT_EQ(resolve_aaaa(e, "web.apps.svc.global"), Strings{"fd00::2:2"});

    Engine sh(options({"shanghai", "sh", "south"}));
    sh.set_services({headless()});
    EXPECT_EQ(resolve_a(sh, "web.apps.svc.global"), Strings{"10.2.1.1"});
    // shanghai has no IPv6 pod: the first tier with one is "all".
    EXPECT_EQ(resolve_aaaa(sh, "web.apps.svc.global"), Strings{"fd00::2:2"});
}

TEST(EngineForms, ShortFormAnswersLikeServiceForm) {
    Engine e(options(kBeijing));
    e.set_services({tiered(), dual()});
    for (const char *svc : {"tiered", "dual"})
        for (uint16_t t : {dnstype::A, dnstype::AAAA}) {
            std::string full = std::string(svc) + ".default.svc.global";
            std::string shrt = std::string(svc) + ".default.global";
            EXPECT_EQ(addresses(e.resolve(full, t)), addresses(e.resolve(shrt, t)));
            EXPECT_EQ(e.resolve(shrt, t).rcode, Rcode::NoError);
        }
    EXPECT_EQ(resolve_a(e, "tiered.default.global"), Strings{"10.0.0.1"});
    EXPECT_EQ(e.explain("tiered.default.global", dnstype::A).form, "short");
}

TEST(EngineForms, PerClusterFormHasNoFallback) {
    Engine e(options(kBeijing));
    e.set_services({dual()});
    EXPECT_EQ(resolve_a(e, "shanghai.dual.default.svc.global"), Strings{});
    expect_nodata(e.resolve("shanghai.dual.default.svc.global", dnstype::A));
    EXPECT_EQ(resolve_aaaa(e, "shanghai.dual.default.svc.global"), Strings{"fd00::4"});
    EXPECT_EQ(resolve_a(e, "dalian.dual.default.svc.global"), Strings{"10.1.0.3"});
    EXPECT_EQ(resolve_aaaa(e, "dalian.dual.default.svc.global"), Strings{"fd00::3"});
    // The node's own cluster has no IPv6: NODATA, not a fallback to other clusters.
    expect_nodata(e.resolve("beijing.dual.default.svc.global", dnstype::AAAA));
    // A cluster that does not export the service.
    expect_nxdomain(e.resolve("tianjin.dual.default.svc.global", dnstype::A));
}

TEST(EngineForms, OldFormEqualsPerClusterForm) {
    Engine e(options(kBeijing));
    e.set_services({dual(), tiered()});
    for (const char *cluster : {"beijing", "dalian", "shanghai", "tianjin", "nowhere"})
        for (const char *svc : {"dual", "tiered"})
            for (uint16_t t : {dnstype::A, dnstype::AAAA}) {
                Answer modern =
                    e.resolve(std::string(cluster) + "." + svc + ".default.svc.global", t);
                Answer old = e.resolve(std::string(svc) + ".default." + cluster + ".global", t);
                EXPECT_EQ(modern.rcode, old.rcode) << cluster << " " << svc;
                EXPECT_EQ(addresses(modern), addresses(old)) << cluster << " " << svc;
            }
    EXPECT_EQ(resolve_a(e, "tiered.default.shanghai.global"), Strings{"10.0.0.4"});
    expect_nxdomain(e.resolve("dual.default.tianjin.global", dnstype::A));
    EXPECT_EQ(e.explain("tiered.default.shanghai.global", dnstype::A).form, "old");
}

TEST(EngineForms, ServiceFormWinsOverOldFormOfClusterNamedSvc) {
    // <svc>.<ns>.svc.Z is also the old form for a cluster called "svc".
    Engine e(options(kBeijing));
    e.set_services({service("db", "prod",
                            {endpoint("beijing", "bj", "north", {"10.3.0.1"}),
                             endpoint("svc", "x", "y", {"10.3.0.2"})})});
    EXPECT_EQ(resolve_a(e, "db.prod.svc.global"), Strings{"10.3.0.1"});
    EXPECT_EQ(e.explain("db.prod.svc.global", dnstype::A).form, "service");
    // The cluster stays reachable through the other per-cluster form.
    EXPECT_EQ(resolve_a(e, "svc.db.prod.svc.global"), Strings{"10.3.0.2"});
}

TEST(EngineForms, HeadlessPodNames) {
    Engine e(options(kBeijing));
    e.set_services({headless()});
    EXPECT_EQ(resolve_a(e, "web-0.beijing.web.apps.svc.global"), Strings{"10.2.0.1"});
    EXPECT_EQ(resolve_a(e, "web-0.shanghai.web.apps.svc.global"), Strings{"10.2.1.1"});
    EXPECT_EQ(resolve_a(e, "web-1.beijing.web.apps.svc.global"), Strings{"10.2.0.2"});
    EXPECT_EQ(resolve_aaaa(e, "web-1.beijing.web.apps.svc.global"), Strings{"fd00::2:2"});
    expect_nodata(e.resolve("web-0.beijing.web.apps.svc.global", dnstype::AAAA));
    expect_nxdomain(e.resolve("web-1.shanghai.web.apps.svc.global", dnstype::A));
    expect_nxdomain(e.resolve("web-9.beijing.web.apps.svc.global", dnstype::A));
    // The per-cluster name of a Headless service answers that cluster's pods.
    EXPECT_EQ(resolve_a(e, "beijing.web.apps.svc.global"), (Strings{"10.2.0.1", "10.2.0.2"}));
    EXPECT_EQ(e.explain("web-0.beijing.web.apps.svc.global", dnstype::A).form, "pod");
}

TEST(EngineForms, EndpointsSharingAHostnameShareTheName) {
    Engine e(options(kBeijing));
    e.set_services({service(
        "h", "d",
        {endpoint("c1", "", "", {"10.4.0.1"}, "db"), endpoint("c1", "", "", {"10.4.0.2"}, "db"),
         endpoint("c2", "", "", {"10.4.0.3"}, "db")},
        ServiceType::Headless)});
    EXPECT_EQ(resolve_a(e, "db.c1.h.d.svc.global"), (Strings{"10.4.0.1", "10.4.0.2"}));
    EXPECT_EQ(resolve_a(e, "db.c2.h.d.svc.global"), Strings{"10.4.0.3"});
}

TEST(EngineForms, HostnameFormOnClusterIpIsNxdomain) {
    Engine e(options(kBeijing));
    // Even with a hostname set on the endpoint, a ClusterIP service has no pod names.
    e.set_services({service("nginx", "default",
                            {endpoint("beijing", "bj", "north", {"10.5.0.1"}, "nginx-0")})});
    EXPECT_EQ(resolve_a(e, "beijing.nginx.default.svc.global"), Strings{"10.5.0.1"});
    expect_nxdomain(e.resolve("nginx-0.beijing.nginx.default.svc.global", dnstype::A));
    expect_nxdomain(e.resolve("nginx-0.beijing.nginx.default.svc.global", dnstype::AAAA));
}

TEST(EngineAnswers, RecordsCarryTtlOwnerAndWireAddresses) {
    Engine e(options(kBeijing, {"global"}, 30));
    e.set_services({dual()});
    Answer a = e.resolve("dual.default.svc.global", dnstype::A);
    EXPECT_TRUE(a.in_zone);
    EXPECT_TRUE(a.authoritative);
    EXPECT_EQ(a.rcode, Rcode::NoError);
    EXPECT_TRUE(a.authority.empty());
    ASSERT_EQ(a.answer.size(), 1u);
    EXPECT_EQ(a.answer[0].owner, "dual.default.svc.global");
    EXPECT_EQ(a.answer[0].owner_labels, 4u);
    EXPECT_EQ(a.answer[0].type, dnstype::A);
    EXPECT_EQ(a.answer[0].ttl, 30u);
    EXPECT_EQ(a.answer[0].rdata, (std::vector<uint8_t>{10, 1, 0, 1}));

    Answer aaaa = e.resolve("dual.default.svc.global", dnstype::AAAA);
    ASSERT_EQ(aaaa.answer.size(), 1u);
    EXPECT_EQ(aaaa.answer[0].type, dnstype::AAAA);
    EXPECT_EQ(aaaa.answer[0].ttl, 30u);
    std::vector<uint8_t> v6(16, 0);
    v6[0] = 0xfd;
    v6[15] = 3;
    EXPECT_EQ(aaaa.answer[0].rdata, v6);
}

// The resolver writes owners as the query name's last owner_labels labels: that must be the
// owner's text, for answers and for the SOA of the innermost zone.
TEST(EngineAnswers, OwnersAreSuffixesOfTheQueryName) {
    Engine e(options(kBeijing, {"global", "cluster.global"}));
    e.set_services({dual(), tiered()});
    for (const char *name :
         {"dual.default.svc.global", "global", "cluster.global", "nope.default.svc.global",
          "x.y.cluster.global", "svc.global", "Tiered.Default.global."})
        for (uint16_t t : {dnstype::A, dnstype::AAAA, dnstype::SOA, dnstype::NS}) {
            const Answer a = e.resolve(name, t);
            std::string lower = name;
            for (char &c : lower)
                c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
            if (lower.back() == '.') lower.pop_back();
            for (const auto *section : {&a.answer, &a.authority})
                for (const Record &r : *section) {
                    std::string suffix = lower;
                    const size_t labels = 1 + std::count(lower.begin(), lower.end(), '.');
                    ASSERT_LE(r.owner_labels, labels) << name;
                    for (size_t i = r.owner_labels; i < labels; i++)
                        suffix = suffix.substr(suffix.find('.') + 1);
                    EXPECT_EQ(r.owner, suffix) << name << " " << t;
                }
        }
}

TEST(EngineAnswers, DuplicateAddressesAnswerOnce) {
    Engine e(options(kBeijing));
    e.set_services({service("dup", "default",
                            {endpoint("beijing", "bj", "north", {"10.6.0.1", "10.6.0.1"}),
                             endpoint("beijing", "bj", "north", {"10.6.0.1", "10.6.0.2"}),
                             endpoint("beijing", "bj", "north", {"fd00::6", "FD00:0::6"})})});
    EXPECT_EQ(resolve_a(e, "dup.default.svc.global"), (Strings{"10.6.0.1", "10.6.0.2"}));
    EXPECT_EQ(resolve_aaaa(e, "dup.default.svc.global"), Strings{"fd00::6"});
    EXPECT_EQ(resolve_a(e, "beijing.dup.default.svc.global"), (Strings{"10.6.0.1", "10.6.0.2"}));
}

TEST(EngineAnswers, OtherTypesAreNodata) {
    Engine e(options(kBeijing));
    e.set_services({tiered(), headless()});
    constexpr uint16_t kMx = 15, kTxt = 16, kSrv = 33, kCname = 5;
    for (const char *name :
         {"tiered.default.svc.global", "tiered.default.global", "beijing.tiered.default.svc.global",
          "tiered.default.beijing.global", "web-0.beijing.web.apps.svc.global"})
        for (uint16_t t : {kMx, kTxt, kSrv, kCname, dnstype::ANY, dnstype::SOA, dnstype::NS}) {
            SCOPED_TRACE(std::string(name) + " type " + std::to_string(t));
            expect_nodata(e.resolve(name, t));
        }
}

TEST(EngineAnswers, NameWithoutFamilyIsNodata) {
    Engine e(options(kBeijing));
    e.set_services({tiered()});
    expect_nodata(e.resolve("tiered.default.svc.global", dnstype::AAAA));
    expect_nodata(e.resolve("tiered.default.global", dnstype::AAAA));
}

TEST(EngineAnswers, ServiceWithoutEndpointsExistsWithoutAddresses) {
    Engine e(options(kBeijing));
    e.set_services({service("empty", "default", {})});
    expect_nodata(e.resolve("empty.default.svc.global", dnstype::A));
    expect_nodata(e.resolve("empty.default.global", dnstype::AAAA));
    expect_nxdomain(e.resolve("beijing.empty.default.svc.global", dnstype::A));
}

TEST(EngineAnswers, UnknownNamesAreNxdomain) {
    Engine e(options(kBeijing));
    e.set_services({tiered()});
    for (const char *name :
         {"nope.default.svc.global", "tiered.other.svc.global", "tiered.other.global",
          "x.tiered.default.svc.global.more.global", "a.b.c.d.e.f.global", "other.global",
          "web-0.beijing.tiered.default.svc.global", "tiered.svc.global"}) {
        SCOPED_TRACE(name);
        expect_nxdomain(e.resolve(name, dnstype::A));
        expect_nxdomain(e.resolve(name, 16 /* TXT */));
    }
}

TEST(EngineAnswers, ApexAnswersSoaAndNs) {
    Engine e(options(kBeijing, {"global"}, 7));
    e.set_services({tiered()});
    Answer soa = e.resolve("global", dnstype::SOA);
    EXPECT_TRUE(soa.in_zone);
    EXPECT_TRUE(soa.authoritative);
    EXPECT_EQ(soa.rcode, Rcode::NoError);
    EXPECT_TRUE(soa.authority.empty());
    ASSERT_EQ(soa.answer.size(), 1u);
    EXPECT_EQ(soa.answer[0].owner, "global");
    EXPECT_EQ(soa.answer[0].type, dnstype::SOA);
    EXPECT_EQ(soa.answer[0].ttl, 7u);
    Soa s = parse_soa(soa.answer[0].rdata);
    EXPECT_TRUE(s.complete);
    EXPECT_EQ(s.mname, "ns.dns.global");
    EXPECT_EQ(s.rname, "hostmaster.global");
    EXPECT_EQ(s.serial, e.serial());
    EXPECT_EQ(s.refresh, 7200u);
    EXPECT_EQ(s.retry, 1800u);
    EXPECT_EQ(s.expire, 86400u);
    EXPECT_EQ(s.minimum, 7u);

    Answer ns = e.resolve("GLOBAL.", dnstype::NS);
    ASSERT_EQ(ns.answer.size(), 1u);
    EXPECT_EQ(ns.answer[0].type, dnstype::NS);
    EXPECT_EQ(ns.answer[0].ttl, 7u);
    size_t pos = 0;
    EXPECT_EQ(read_name(ns.answer[0].rdata, pos), "ns.dns.global");
    EXPECT_EQ(pos, ns.answer[0].rdata.size());

    // The SOA in negative answers is the same record.
    Answer neg = e.resolve("global", dnstype::A);
    expect_nodata(neg);
    EXPECT_EQ(neg.authority[0], soa.answer[0]);
    expect_nodata(e.resolve("global", dnstype::ANY));
    EXPECT_EQ(e.explain("global", dnstype::SOA).form, "apex");
}

TEST(EngineAnswers, ApexExistsWithoutServices) {
    Engine e(options(kBeijing));
    e.set_services({});
    EXPECT_EQ(e.service_count(), 0u);
    EXPECT_EQ(e.resolve("global", dnstype::SOA).answer.size(), 1u);
    expect_nxdomain(e.resolve("nginx.default.svc.global", dnstype::A));
}

TEST(EngineAnswers, EmptyNonTerminalsAreNodata) {
    Engine e(options(kBeijing));
    e.set_services({tiered(), headless()});
    for (const char *name :
         {"svc.global", "default.svc.global", "apps.svc.global", "default.global", "apps.global",
          "beijing.global", "shanghai.global", "default.beijing.global", "apps.shanghai.global"})
        for (uint16_t t : {dnstype::A, dnstype::AAAA, uint16_t{16}}) {
            SCOPED_TRACE(std::string(name) + " type " + std::to_string(t));
            expect_nodata(e.resolve(name, t));
            EXPECT_EQ(e.explain(name, t).form, "empty-non-terminal");
        }
    // Not an empty non-terminal: no service lives under it.
    expect_nodata(e.resolve("default.tianjin.global", dnstype::A));
    expect_nxdomain(e.resolve("default.nowhere.global", dnstype::A));
    expect_nxdomain(e.resolve("apps.tianjin.global", dnstype::A));
    expect_nxdomain(e.resolve("kube-system.svc.global", dnstype::A));
}

TEST(EngineNames, CaseInsensitiveWithOptionalTrailingDot) {
    Engine e(options(kBeijing));
    e.set_services({tiered()});
    Answer plain = e.resolve("tiered.default.svc.global", dnstype::A);
    for (const char *name : {"tiered.default.svc.global.", "TIERED.Default.SVC.Global",
                             "TiErEd.DeFaUlT.sVc.GlObAl."}) {
        SCOPED_TRACE(name);
        Answer a = e.resolve(name, dnstype::A);
        EXPECT_EQ(a, plain);
        ASSERT_EQ(a.answer.size(), 1u);
        EXPECT_EQ(a.answer[0].owner, "tiered.default.svc.global");
    }
    expect_nxdomain(e.resolve("NOPE.default.svc.GLOBAL.", dnstype::A));
}

TEST(EngineNames, NamesOutsideZonesAreNotInZone) {
    Engine e(options(kBeijing));
    e.set_services({tiered()});
    for (const char *name : {"example.com", "tiered.default.svc.cluster.local", "xglobal",
                             "global.example", "", "."}) {
        SCOPED_TRACE(name);
        Answer a = e.resolve(name, dnstype::A);
        EXPECT_FALSE(a.in_zone);
        EXPECT_FALSE(a.authoritative);
        EXPECT_TRUE(a.answer.empty());
        EXPECT_TRUE(a.authority.empty());
        EXPECT_EQ(e.explain(name, dnstype::A).form, "none");
    }
}

TEST(EngineNames, MultipleZones) {
    Engine e(options(kBeijing, {"global", "ClusterSet.Local."}));
    ASSERT_EQ(e.options().zones, (Strings{"global", "clusterset.local"}));
    e.set_services({tiered()});
    EXPECT_EQ(resolve_a(e, "tiered.default.svc.global"), Strings{"10.0.0.1"});
    EXPECT_EQ(resolve_a(e, "tiered.default.svc.clusterset.local"), Strings{"10.0.0.1"});
    EXPECT_EQ(resolve_a(e, "tiered.default.clusterset.local"), Strings{"10.0.0.1"});
    EXPECT_EQ(resolve_a(e, "shanghai.tiered.default.svc.clusterset.local"), Strings{"10.0.0.4"});
    EXPECT_EQ(resolve_a(e, "tiered.default.dalian.clusterset.local"), Strings{"10.0.0.3"});
    expect_nodata(e.resolve("tiered.default.svc.clusterset.local", dnstype::AAAA),
                  "clusterset.local");
    expect_nxdomain(e.resolve("nope.default.svc.clusterset.local", dnstype::A), "clusterset.local");
    expect_nodata(e.resolve("default.svc.clusterset.local", dnstype::A), "clusterset.local");
    Answer soa = e.resolve("clusterset.local", dnstype::SOA);
    ASSERT_EQ(soa.answer.size(), 1u);
    EXPECT_EQ(parse_soa(soa.answer[0].rdata).mname, "ns.dns.clusterset.local");
    EXPECT_FALSE(e.resolve("local", dnstype::SOA).in_zone);
}

TEST(EngineNames, NestedZonesBelongToTheInnermost) {
    // "beijing.global" is a zone of its own, so it is not the old-form parent in "global".
    Engine e(options(kBeijing, {"global", "beijing.global"}));
    e.set_services({tiered()});
    Answer soa = e.resolve("beijing.global", dnstype::SOA);
    ASSERT_EQ(soa.answer.size(), 1u);
    EXPECT_EQ(soa.answer[0].owner, "beijing.global");
    EXPECT_EQ(resolve_a(e, "tiered.default.svc.beijing.global"), Strings{"10.0.0.1"});
    // In the inner zone this spelling is the short form, not the old form for cluster beijing.
    EXPECT_EQ(e.explain("tiered.default.beijing.global", dnstype::A).form, "short");
    expect_nodata(e.resolve("tiered.default.beijing.global", dnstype::AAAA), "beijing.global");
    EXPECT_EQ(resolve_a(e, "tiered.default.shanghai.global"), Strings{"10.0.0.4"});
}

TEST(EngineNames, InvalidZonesAreRefused) {
    EXPECT_THROW(Engine(options(kBeijing, {"a..b"})), std::invalid_argument);
    EXPECT_THROW(Engine(options(kBeijing, {std::string(64, 'x')})), std::invalid_argument);
    EXPECT_NO_THROW(Engine(options(kBeijing, {std::string(63, 'x')})));
}

TEST(EngineData, ServiceCountAndLastDuplicateWins) {
    Engine e(options(kBeijing));
    GlobalService first = tiered();
    GlobalService second =
        service("tiered", "default", {endpoint("beijing", "bj", "north", {"10.7.0.1"})});
    e.set_services({first, dual(), second});
    EXPECT_EQ(e.service_count(), 2u);
    EXPECT_EQ(resolve_a(e, "tiered.default.svc.global"), Strings{"10.7.0.1"});
    expect_nxdomain(e.resolve("shanghai.tiered.default.svc.global", dnstype::A));

    e.set_services({});
    EXPECT_EQ(e.service_count(), 0u);
    expect_nxdomain(e.resolve("tiered.default.svc.global", dnstype::A));
}

// The services in the order given, each shared, as a source hands them over.
ServiceSet as_set(std::vector<GlobalService> v) {
    ServiceList list;
    for (GlobalService &s : v) list.push_back(std::make_shared<const GlobalService>(std::move(s)));
    return std::make_shared<const ServiceList>(std::move(list));
}

// A source's set (sorted, one per namespace/name) is answered from as it is, not copied; a
// sorted set holding one name twice still gets the last one, in a copy of its own.
TEST(EngineData, ASourcesSetIsSharedNotCopied) {
    Engine e(options(kBeijing));
    std::vector<GlobalService> v{tiered(), dual(), headless()};
    std::sort(v.begin(), v.end(), [](const GlobalService &a, const GlobalService &b) {
        return std::tie(a.ns, a.name) < std::tie(b.ns, b.name);
    });
    ServiceSet set = as_set(std::move(v));
    e.set_service_set(set);
    EXPECT_EQ(e.service_count(), 3u);
    EXPECT_GT(set.use_count(), 1) << "the engine holds the set itself";

    GlobalService second =
        service("tiered", "default", {endpoint("beijing", "bj", "north", {"10.7.0.1"})});
    ServiceSet dup = as_set({tiered(), second});
    e.set_service_set(dup);
    EXPECT_EQ(e.service_count(), 1u);
    EXPECT_EQ(resolve_a(e, "tiered.default.svc.global"), Strings{"10.7.0.1"});
    EXPECT_EQ(dup.use_count(), 1) << "answered from a copy without the duplicate";
    EXPECT_EQ(set.use_count(), 1) << "the previous set is released";
}

// After an update of a few services the replaced data comes back to the caller, who frees it
// once the change is published; after an update of most of the set it is freed at once.
TEST(EngineData, ASmallUpdateHandsBackTheReplacedSet) {
    Engine e(options(kBeijing));
    std::vector<GlobalService> v;
    for (int i = 0; i < 40; i++)
        v.push_back(service("s" + std::to_string(100 + i), "default",
                            {endpoint("beijing", "bj", "north", {"10.8.0.1"})}));
    ServiceSet first = as_set(v);
    e.set_service_set(first);
    v[7].endpoints[0].addresses[0] = *IpAddr::parse("10.8.0.2");
    ServiceSet second = as_set(v);
    std::shared_ptr<const void> replaced = e.set_service_set(second);
    ASSERT_TRUE(replaced);
    EXPECT_EQ(resolve_a(e, "s107.default.svc.global"), Strings{"10.8.0.2"});
    EXPECT_GT(first.use_count(), 1) << "held by the replaced data";
    replaced.reset();
    EXPECT_EQ(first.use_count(), 1);

    for (auto &s : v) s.endpoints[0].addresses[0] = *IpAddr::parse("10.8.0.3");
    EXPECT_FALSE(e.set_service_set(as_set(v)));
    EXPECT_EQ(second.use_count(), 1) << "freed at once";
}

TEST(EngineData, SerialFollowsContentNotOrder) {
    Engine a(options(kBeijing)), b(options({"other", "", ""}));
    a.set_services({tiered(), dual(), headless()});
    b.set_services({headless(), tiered(), dual()});
    EXPECT_EQ(a.serial(), b.serial());
    uint32_t before = a.serial();
    GlobalService moved = tiered();
    moved.endpoints[0].addresses[0] = *IpAddr::parse("10.0.0.99");
    a.set_services({moved, dual(), headless()});
    EXPECT_NE(a.serial(), before);
    a.set_services({tiered(), dual(), headless()});
    EXPECT_EQ(a.serial(), before);
}

// Decisions made before the data (engine.hpp): the resolver and explain both get them here.
TEST(EngineDecisions, BeforeTheFirstDataInZoneNamesAreServfail) {
    Engine e(options(kBeijing));
    for (const char *name : {"global", "nginx.default.svc.global"}) {
        const Answer a = e.resolve(name, dnstype::SOA);
        EXPECT_TRUE(a.in_zone) << name;
        EXPECT_EQ(a.rcode, Rcode::ServFail) << name;
        EXPECT_FALSE(a.authoritative) << name;
        EXPECT_TRUE(a.answer.empty() && a.authority.empty()) << name;
    }
    EXPECT_FALSE(e.resolve("example.com", dnstype::A).in_zone);
    const Explanation ex = e.explain("global", dnstype::SOA);
    EXPECT_EQ(ex.answer.rcode, Rcode::ServFail);
    EXPECT_EQ(ex.summary.rfind("SERVFAIL", 0), 0u) << ex.summary;

    e.set_services({});
    EXPECT_EQ(e.resolve("global", dnstype::SOA).answer.size(), 1u);
    expect_nxdomain(e.resolve("nginx.default.svc.global", dnstype::A));
}

TEST(EngineDecisions, OtherClassesAndZoneTransfersAreRefused) {
    Engine e(options(kBeijing));
    e.set_services({dual()});
    constexpr uint16_t kChaos = 3;
    for (auto [name, type, klass] : {std::tuple{"dual.default.svc.global", dnstype::A, kChaos},
                                     std::tuple{"global", dnstype::SOA, kChaos},
                                     std::tuple{"global", dnstype::AXFR, dnsclass::IN},
                                     std::tuple{"global", dnstype::IXFR, dnsclass::IN},
                                     std::tuple{"nope.global", dnstype::AXFR, dnsclass::IN}}) {
        Answer a;
        e.resolve(name, type, klass, a);
        EXPECT_TRUE(a.in_zone) << name;
        EXPECT_EQ(a.rcode, Rcode::Refused) << name << " " << type << " " << klass;
        EXPECT_FALSE(a.authoritative) << name;
        EXPECT_TRUE(a.answer.empty() && a.authority.empty()) << name;
        EXPECT_EQ(e.explain(name, type, klass).answer, a) << name;
    }
    // Outside every zone the resolver decides (forward or REFUSED), whatever the class.
    EXPECT_FALSE(e.resolve("example.com", dnstype::AXFR, kChaos).in_zone);
    EXPECT_EQ(e.explain("global", dnstype::AXFR).summary,
              "REFUSED: zone transfers are not offered");
    EXPECT_EQ(e.explain("global", dnstype::SOA, kChaos).summary,
              "REFUSED: only class IN is served");
    EXPECT_EQ(e.explain("dual.default.svc.global", dnstype::A, kChaos).form, "service");
}

TEST(EngineExplain, ReportsTheWinningTierAndEachEndpoint) {
    Engine e(options(kBeijing));
    e.set_services({tiered()});
    Explanation ex = e.explain("Tiered.Default.svc.global.", dnstype::A);
    EXPECT_EQ(ex.answer, e.resolve("tiered.default.svc.global", dnstype::A));
    EXPECT_EQ(ex.form, "service");
    EXPECT_EQ(ex.tier, Tier::Cluster);
    EXPECT_EQ(ex.service, "default/tiered");
    EXPECT_EQ(
        ex.endpoints,
        (Strings{"beijing/10.0.0.1: used (cluster beijing)",
                 "tianjin/10.0.0.2: skipped: a nearer tier (cluster beijing) has IPv4 addresses",
                 "dalian/10.0.0.3: skipped: a nearer tier (cluster beijing) has IPv4 addresses",
                 "shanghai/10.0.0.4: skipped: a nearer tier (cluster beijing) has IPv4 "
                 "addresses"}));
    EXPECT_NE(ex.summary.find("1 IPv4 address"), std::string::npos) << ex.summary;
}

TEST(EngineExplain, AaaaFallbackIsExplained) {
    Engine e(options(kBeijing));
    e.set_services({dual()});
    Explanation ex = e.explain("dual.default.global", dnstype::AAAA);
    EXPECT_EQ(ex.form, "short");
    EXPECT_EQ(ex.tier, Tier::Region);
    EXPECT_EQ(ex.endpoints,
              (Strings{"beijing/10.1.0.1: skipped: not an IPv6 address",
                       "dalian/10.1.0.3: skipped: not an IPv6 address",
                       "dalian/fd00::3: used (region north)",
                       "shanghai/fd00::4: skipped: a nearer tier (region north) has IPv6 "
                       "addresses"}));
    EXPECT_EQ(e.explain("dual.default.global", dnstype::A).tier, Tier::Cluster);

    Engine far(options({"lhasa", "xz", "west"}));
    far.set_services({tiered()});
    EXPECT_EQ(far.explain("tiered.default.svc.global", dnstype::A).tier, Tier::All);
    Engine zone(options({"langfang", "bj", "north"}));
    zone.set_services({tiered()});
    EXPECT_EQ(zone.explain("tiered.default.svc.global", dnstype::A).tier, Tier::Zone);
    Explanation none = zone.explain("tiered.default.svc.global", dnstype::AAAA);
    EXPECT_EQ(none.tier, Tier::None);
    expect_nodata(none.answer);
}

TEST(EngineExplain, PinnedFormsAndNegativeAnswers) {
    Engine e(options(kBeijing));
    e.set_services({headless()});
    Explanation pod = e.explain("web-1.beijing.web.apps.svc.global", dnstype::A);
    EXPECT_EQ(pod.form, "pod");
    EXPECT_EQ(pod.tier, Tier::Pinned);
    EXPECT_EQ(pod.endpoints,
              (Strings{"beijing/10.2.0.1 (web-0): skipped: not pod web-1 in cluster beijing",
                       "beijing/10.2.0.2 (web-1): used (pod web-1 in cluster beijing)",
                       "beijing/fd00::2:2 (web-1): skipped: not an IPv4 address",
                       "shanghai/10.2.1.1 (web-0): skipped: not pod web-1 in cluster beijing"}));

    Explanation cl = e.explain("web.apps.shanghai.global", dnstype::A);
    EXPECT_EQ(cl.form, "old");
    EXPECT_EQ(cl.tier, Tier::Pinned);
    EXPECT_EQ(addresses(cl.answer), Strings{"10.2.1.1"});
    EXPECT_EQ(cl.endpoints.back(), "shanghai/10.2.1.1 (web-0): used (cluster shanghai)");

    Explanation nx = e.explain("web-7.beijing.web.apps.svc.global", dnstype::A);
    EXPECT_EQ(nx.form, "none");
    EXPECT_EQ(nx.answer.rcode, Rcode::NxDomain);
    EXPECT_NE(nx.summary.find("NXDOMAIN"), std::string::npos);

    Explanation mx = e.explain("web.apps.svc.global", 15);
    EXPECT_EQ(mx.form, "service");
    EXPECT_EQ(mx.tier, Tier::None);
    EXPECT_EQ(mx.endpoints.size(), 4u);
}

// Every candidate name a set of services could produce, including many that do not exist.
std::set<std::string> candidate_names(const std::vector<GlobalService> &services,
                                      const std::vector<std::string> &zones) {
    std::set<std::string> clusters{"nowhere"}, hostnames{"nobody"};
    for (const auto &s : services)
        for (const auto &ep : s.endpoints) {
            clusters.insert(ep.cluster);
            if (!ep.hostname.empty()) hostnames.insert(ep.hostname);
        }
    std::set<std::string> out;
    for (const auto &z : zones) {
        out.insert(z);
        out.insert("svc." + z);
        for (const auto &s : services) {
            const std::string sn = s.name + "." + s.ns;
            out.insert(sn + ".svc." + z);
            out.insert(sn + "." + z);
            out.insert(s.ns + ".svc." + z);
            out.insert(s.ns + "." + z);
            for (const auto &c : clusters) {
                out.insert(c + "." + sn + ".svc." + z);
                out.insert(sn + "." + c + "." + z);
                out.insert(c + "." + z);
                for (const auto &h : hostnames) out.insert(h + "." + c + "." + sn + ".svc." + z);
            }
        }
    }
    return out;
}

TEST(EngineForEach, YieldsExactlyTheAddressAnswersResolveGives) {
    std::vector<GlobalService> services = {
        tiered(),
        dual(),
        headless(),
        service("empty", "default", {}),
        service("db", "prod",
                {endpoint("beijing", "bj", "north", {"10.3.0.1"}),
                 endpoint("svc", "x", "y", {"10.3.0.2", "fd00::3:2"})}),
        service("h6", "prod",
                {endpoint("shanghai", "sh", "south", {"fd00::6:1"}, "h-0"),
                 endpoint("shanghai", "sh", "south", {"10.8.0.1"}, "h-1"),
                 endpoint("dalian", "dl", "north", {"10.8.0.2"})},
                ServiceType::Headless)};
    const std::vector<std::string> zones = {"global", "clusterset.local"};
    Engine e(options(kBeijing, zones, 9));
    e.set_services(services);

    std::map<std::pair<std::string, uint16_t>, Answer> yielded;
    size_t yielded_positive = 0;
    e.for_each_service_answer(
        [&](std::string_view name, std::string_view form, uint16_t type, const Answer &a) {
            EXPECT_TRUE(type == dnstype::A || type == dnstype::AAAA);
            EXPECT_EQ(form, e.explain(name, type).form) << name;
            auto [it, fresh] = yielded.emplace(std::make_pair(std::string(name), type), a);
            EXPECT_TRUE(fresh) << "yielded twice: " << name << " " << type;
            // Each yielded answer is what the resolver says: records, or NODATA with the SOA.
            EXPECT_EQ(a, e.resolve(name, type)) << name << " " << type;
            EXPECT_EQ(a.rcode, Rcode::NoError);
            if (a.answer.empty()) {
                EXPECT_EQ(a.authority.size(), 1u) << name;
            } else {
                yielded_positive++;
            }
        });

    // And nothing is missing: every candidate with records was yielded.
    size_t positive = 0;
    for (const auto &name : candidate_names(services, zones))
        for (uint16_t type : {dnstype::A, dnstype::AAAA}) {
            Answer a = e.resolve(name, type);
            bool has = a.rcode == Rcode::NoError && !a.answer.empty();
            positive += has;
            if (has) {
                EXPECT_EQ(yielded.count({name, type}), 1u) << name << " " << type;
            }
        }
    EXPECT_EQ(positive, yielded_positive);
    EXPECT_TRUE(yielded.count({"h-0.shanghai.h6.prod.svc.clusterset.local", dnstype::AAAA}));
    EXPECT_TRUE(yielded.count({"db.prod.svc.global", dnstype::A}));
    // The cluster tier has IPv4 only; AAAA comes from the first tier with IPv6.
    EXPECT_EQ(addresses(yielded[{"db.prod.svc.global", dnstype::AAAA}]), Strings{"fd00::3:2"});
    // The beijing cluster name has no IPv6: its AAAA is NODATA, never an address.
    EXPECT_TRUE(yielded.at({"beijing.db.prod.svc.global", dnstype::AAAA}).answer.empty());

    // The count a caller sizes its buffers by is the number of calls.
    EXPECT_EQ(e.service_answer_count(), yielded.size());
}

// for_each_answer_of() gives, for the names asked, what the walk gives, and nothing for names
// the walk does not visit (apex, empty non-terminals, unknown names).
TEST(EngineForEach, AnswersOfChosenNamesEqualTheWalks) {
    Engine e(options(kBeijing, {"global"}, 9));
    e.set_services({tiered(), dual(), headless()});
    std::map<std::pair<std::string, uint16_t>, std::pair<std::string, Answer>> walked;
    e.for_each_service_answer(
        [&](std::string_view name, std::string_view form, uint16_t type, const Answer &a) {
            walked[{std::string(name), type}] = {std::string(form), a};
        });
    const std::vector<std::string_view> names = {"web.apps.svc.global",
                                                 "global",
                                                 "svc.global",
                                                 "nope.default.global",
                                                 "beijing.tiered.default.svc.global",
                                                 "web-1.beijing.web.apps.svc.global"};
    std::vector<std::pair<std::string, uint16_t>> got;
    e.for_each_answer_of(
        names, [&](std::string_view name, std::string_view form, uint16_t type, const Answer &a) {
            got.emplace_back(name, type);
            auto it = walked.find({std::string(name), type});
            ASSERT_NE(it, walked.end()) << name;
            EXPECT_EQ(form, it->second.first) << name;
            EXPECT_EQ(a, it->second.second) << name << " " << type;
        });
    using P = std::pair<std::string, uint16_t>;
    EXPECT_EQ(got, (std::vector<P>{{"web.apps.svc.global", dnstype::A},
                                   {"web.apps.svc.global", dnstype::AAAA},
                                   {"beijing.tiered.default.svc.global", dnstype::A},
                                   {"beijing.tiered.default.svc.global", dnstype::AAAA},
                                   {"web-1.beijing.web.apps.svc.global", dnstype::A},
                                   {"web-1.beijing.web.apps.svc.global", dnstype::AAAA}}));
}

TEST(EngineResolve, ReusedAnswerEqualsFreshAnswer) {
    Engine e(options(kBeijing));
    e.set_services({tiered(), dual(), headless()});
    Answer reused;
    for (const char *name :
         {"web.apps.svc.global", "dual.default.global", "nope.default.global", "global",
          "example.com", "tiered.default.svc.global", "web-1.beijing.web.apps.svc.global"})
        for (uint16_t t : {dnstype::A, dnstype::AAAA, dnstype::SOA, uint16_t{16}}) {
            e.resolve(name, t, dnsclass::IN, reused);
            EXPECT_EQ(reused, e.resolve(name, t)) << name << " " << t;
        }
}

TEST(EngineResolve, ConcurrentReadersSeeOneConsistentSet) {
    Engine e(options(kBeijing));
    auto set_a = std::vector<GlobalService>{
        service("x", "d", {endpoint("beijing", "", "", {"10.10.0.1", "10.10.0.2"})})};
    auto set_b = std::vector<GlobalService>{
        service("x", "d", {endpoint("beijing", "", "", {"10.20.0.1", "10.20.0.2", "10.20.0.3"})})};
    e.set_services(set_a);
    const Strings a = {"10.10.0.1", "10.10.0.2"}, b = {"10.20.0.1", "10.20.0.2", "10.20.0.3"};

    std::atomic<bool> stop{false};
    std::atomic<int> bad{0};
    std::vector<std::thread> readers;
    for (int i = 0; i < 3; i++)
        readers.emplace_back([&] {
            Answer out;
            while (!stop.load()) {
                e.resolve("x.d.svc.global", dnstype::A, dnsclass::IN, out);
                Strings got = addresses(out);
                if (got != a && got != b) bad++;
            }
        });
    for (int i = 0; i < 200; i++) e.set_services(i % 2 ? set_a : set_b);
    stop = true;
    for (auto &t : readers) t.join();
    EXPECT_EQ(bad.load(), 0);
}

TEST(EngineNames, TypeNamesFallBackToRfc3597) {
    EXPECT_EQ(type_name(dnstype::AAAA), "AAAA");
    EXPECT_EQ(type_name(15), "MX");
    EXPECT_EQ(type_name(999), "TYPE999");
}

TEST(EngineNames, RcodeNamesCoverWhatTheResolverCounts) {
    EXPECT_EQ(rcode_name(Rcode::NoError), "NOERROR");
    EXPECT_EQ(rcode_name(Rcode::NxDomain), "NXDOMAIN");
    EXPECT_EQ(rcode_name(Rcode::NotImp), "NOTIMP");
    EXPECT_EQ(rcode_name(Rcode::BadVers), "BADVERS");
    EXPECT_EQ(rcode_name(static_cast<Rcode>(9)), "NOTAUTH") << "relayed from an upstream";
    EXPECT_EQ(rcode_name(static_cast<Rcode>(23)), "RCODE23");
}

}  // namespace
}  // namespace fabdns
