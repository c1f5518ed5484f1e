// Unit tests of daemon/common/net.cpp: IP and socket address parsing, printing and the kernel's
// 16-byte listen-map form.
#include "common/net.hpp"

#include <gtest/gtest.h>

namespace fabdns {
namespace {

TEST(IpAddr, ParsesBothFamiliesInNetworkOrder) {
    auto v4 = IpAddr::parse("10.233.0.10");
    ASSERT_TRUE(v4);
    EXPECT_TRUE(v4->is_v4());
    EXPECT_EQ(v4->size(), 4u);
    EXPECT_EQ(v4->bytes[0], 10);
    EXPECT_EQ(v4->bytes[3], 10);
    EXPECT_EQ(*v4, IpAddr::v4(10, 233, 0, 10));

    auto v6 = IpAddr::parse("fd00:234::10");
    ASSERT_TRUE(v6);
    EXPECT_TRUE(v6->is_v6());
    EXPECT_EQ(v6->size(), 16u);
    EXPECT_EQ(v6->bytes[0], 0xfd);
    EXPECT_EQ(v6->bytes[3], 0x34);
    EXPECT_EQ(v6->bytes[15], 0x10);
}

TEST(IpAddr, RejectsWhatIsNotAnAddress) {
    for (const char *bad : {"", "10.0.0.300", "10.0.0", "10.0.0.1 ", "fd00::1::2", "nginx", "[::1]",
                            "10.0.0.1:53", "0000:0000:0000:0000:0000:0000:0000:0000:1"})
        EXPECT_FALSE(IpAddr::parse(bad)) << bad;
}

TEST(IpAddr, PrintsCanonically) {
    // Strict: a leading zero is refused (some parsers read it as octal, others as decimal).
    EXPECT_FALSE(IpAddr::parse("010.1.1.1"));
    EXPECT_EQ(IpAddr::parse("FD00:0:0::0010")->to_string(), "fd00::10");
    EXPECT_EQ(IpAddr::v4(127, 0, 0, 1).to_string(), "127.0.0.1");
}

TEST(IpAddr, UnspecifiedIsPerFamily) {
    EXPECT_TRUE(IpAddr::parse("0.0.0.0")->is_unspecified());
    EXPECT_TRUE(IpAddr::parse("::")->is_unspecified());
    EXPECT_FALSE(IpAddr::parse("0.0.0.1")->is_unspecified());
    EXPECT_FALSE(IpAddr::parse("::1")->is_unspecified());
}

TEST(IpAddr, Mapped16IsTheListenMapForm) {
    auto m = IpAddr::v4(192, 0, 2, 7).mapped16();
    std::array<uint8_t, 16> want{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 7};
    EXPECT_EQ(m, want);
    auto v6 = *IpAddr::parse("2001:db8::1");
    EXPECT_EQ(v6.mapped16(), v6.bytes);
    // A v4 address and its v4-mapped IPv6 spelling stay different values (A vs AAAA).
    EXPECT_NE(*IpAddr::parse("::ffff:192.0.2.7"), IpAddr::v4(192, 0, 2, 7));
    EXPECT_EQ(IpAddr::parse("::ffff:192.0.2.7")->mapped16(), m);
}

TEST(SocketAddr, ParsesAddressAndPort) {
    auto a = SocketAddr::parse("127.0.0.1:1053");
    ASSERT_TRUE(a);
    EXPECT_EQ(a->ip, IpAddr::v4(127, 0, 0, 1));
    EXPECT_EQ(a->port, 1053);
    EXPECT_EQ(a->to_string(), "127.0.0.1:1053");

    auto b = SocketAddr::parse("[::1]:53");
    ASSERT_TRUE(b);
    EXPECT_TRUE(b->ip.is_v6());
    EXPECT_EQ(b->port, 53);
    EXPECT_EQ(b->to_string(), "[::1]:53");
}

TEST(SocketAddr, DefaultPortOnlyWhenGiven) {
    EXPECT_FALSE(SocketAddr::parse("10.0.0.1"));
    EXPECT_EQ(SocketAddr::parse("10.0.0.1", 53)->port, 53);
    EXPECT_EQ(SocketAddr::parse("[fd00::1]", 53)->port, 53);
    // A bare IPv6 address has many colons: taken whole, with the default port.
    auto bare6 = SocketAddr::parse("fd00::1", 53);
    ASSERT_TRUE(bare6);
    EXPECT_EQ(bare6->ip, *IpAddr::parse("fd00::1"));
    EXPECT_EQ(bare6->port, 53);
    EXPECT_FALSE(SocketAddr::parse("fd00::1"));
}

TEST(SocketAddr, RejectsBadPortsAndBrackets) {
    for (const char *bad : {"10.0.0.1:", "10.0.0.1:65536", "10.0.0.1:-1", "10.0.0.1:5x", "[::1]:",
                            "[::1", "[::1]53", "[10.0.0.1:53", ":53", "nginx:53", "[::1]:99999"})
        EXPECT_FALSE(SocketAddr::parse(bad, 53)) << bad;
    EXPECT_EQ(SocketAddr::parse("10.0.0.1:0")->port, 0);
    EXPECT_EQ(SocketAddr::parse("10.0.0.1:65535")->port, 65535);
}

TEST(SocketAddr, OrdersByAddressThenPort) {
    auto a = *SocketAddr::parse("10.0.0.1:53");
    auto b = *SocketAddr::parse("10.0.0.1:54");
    auto c = *SocketAddr::parse("10.0.0.2:1");
    EXPECT_LT(a, b);
    EXPECT_LT(b, c);
    EXPECT_EQ(a, *SocketAddr::parse("10.0.0.1:53"));
}

}  // namespace
}  // namespace fabdns
