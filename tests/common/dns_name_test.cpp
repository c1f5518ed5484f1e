// Unit tests of daemon/common/dns_name.cpp: the cluster-label rule and the zone normaliser the
// config, the model and the engine share.
#include "common/dns_name.hpp"

#include <gtest/gtest.h>

namespace fabdns {
namespace {

TEST(DnsLabel, FollowsRfc1123AsKubernetesSpellsIt) {
    for (const char *ok : {"a", "0", "web-0", "a-b-c", "123", "x1"})
        EXPECT_TRUE(is_dns_label(ok)) << ok;
    EXPECT_TRUE(is_dns_label(std::string(63, 'z')));
    for (const char *bad : {"", "-a", "a-", "A", "a.b", "a_b", "é"})
        EXPECT_FALSE(is_dns_label(bad)) << bad;
    EXPECT_FALSE(is_dns_label(std::string(64, 'z')));
}

TEST(NormaliseZone, LowercasesAndDropsOneTrailingDot) {
    EXPECT_EQ(normalise_zone("Global."), "global");
    EXPECT_EQ(normalise_zone("ClusterSet.Local"), "clusterset.local");
    EXPECT_EQ(normalise_zone("_srv.x-1.example"), "_srv.x-1.example");
}

TEST(NormaliseName, LowercasesAsciiAndDropsOneTrailingDot) {
    EXPECT_EQ(normalise_name("NGINX.Default.Global."), "nginx.default.global");
    EXPECT_EQ(normalise_name("a"), "a");
    EXPECT_EQ(normalise_name(""), "");
    EXPECT_EQ(normalise_name("."), "");
    EXPECT_EQ(normalise_name("A.."), "a.");
    EXPECT_EQ(normalise_name("\\065\xc3\x89Z"), "\\065\xc3\x89z") << "ASCII letters only";
    char buf[8];
    EXPECT_EQ(normalise_name("AbC.", buf), 3u);
    EXPECT_EQ(std::string(buf, 3), "abc");
}

TEST(NormaliseZone, RefusesWhatCannotBeAZone) {
    for (const char *bad : {"", ".", "a..b", "..", "a..", "-a.b", "a-.b", "a b", "a/b", "é"})
        EXPECT_FALSE(normalise_zone(bad)) << bad;
    EXPECT_FALSE(normalise_zone(std::string(64, 'x')));
    EXPECT_TRUE(normalise_zone(std::string(63, 'x')));
}

TEST(NormaliseZone, LeavesRoomForTheSoaRname) {
    // Three labels of 60 and one of 59 with their dots: 242 characters, kMaxZoneText.
    const std::string label(60, 'a');
    const std::string longest = label + "." + label + "." + label + "." + std::string(59, 'a');
    ASSERT_EQ(longest.size(), kMaxZoneText);
    EXPECT_EQ(normalise_zone(longest), longest);
    EXPECT_EQ(normalise_zone(longest + "."), longest);
    EXPECT_FALSE(normalise_zone(longest + "a"));
    EXPECT_EQ(kMaxZoneText + sizeof("hostmaster.") - 1, 253u) << "the 255-octet wire limit";
}

}  // namespace
}  // namespace fabdns
