// Unit tests of daemon/common/socket.cpp and fd.hpp: sockaddr conversions in both families and
// the owning descriptor's close-once rule.
#include "common/socket.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>

#include <utility>

#include "common/fd.hpp"

namespace fabdns {
namespace {

bool is_open(int fd) {
    return ::fcntl(fd, F_GETFD) != -1;
}

TEST(SockAddr, V4RoundTripsInNetworkOrder) {
    const SocketAddr addr = *SocketAddr::parse("10.233.0.10:5353");
    const sock::SockAddr sa = sock::to_sockaddr(addr);
    ASSERT_EQ(sa.family(), AF_INET);
    EXPECT_EQ(sa.len, sizeof(sockaddr_in));
    const auto *sin = reinterpret_cast<const sockaddr_in *>(&sa.storage);
    EXPECT_EQ(ntohs(sin->sin_port), 5353);
    EXPECT_EQ(ntohl(sin->sin_addr.s_addr), 0x0ae9000au);
    EXPECT_EQ(sock::from_sockaddr(sa), addr);
}

TEST(SockAddr, V6RoundTrips) {
    const SocketAddr addr = *SocketAddr::parse("[fd00:234::10]:53");
    const sock::SockAddr sa = sock::to_sockaddr(addr);
    ASSERT_EQ(sa.family(), AF_INET6);
    EXPECT_EQ(sa.len, sizeof(sockaddr_in6));
    const auto *sin6 = reinterpret_cast<const sockaddr_in6 *>(&sa.storage);
    EXPECT_EQ(ntohs(sin6->sin6_port), 53);
    EXPECT_EQ(sin6->sin6_addr.s6_addr[0], 0xfd);
    EXPECT_EQ(sin6->sin6_addr.s6_addr[15], 0x10);
    EXPECT_EQ(sock::from_sockaddr(sa), addr);
}

TEST(SockAddr, BoundPortIsReadBack) {
    Fd fd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    ASSERT_TRUE(fd);
    const sock::SockAddr any = sock::to_sockaddr(*SocketAddr::parse("127.0.0.1:0"));
    ASSERT_EQ(::bind(fd.fd, any.get(), any.len), 0);
    sock::SockAddr got;
    got.len = sizeof(got.storage);
    ASSERT_EQ(::getsockname(fd.fd, got.get(), &got.len), 0);
    const SocketAddr bound = sock::from_sockaddr(got);
    EXPECT_EQ(bound.ip, IpAddr::v4(127, 0, 0, 1));
    EXPECT_NE(bound.port, 0);
}

TEST(Fd, ClosesOnceWhateverPathItTakes) {
    int raw = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    ASSERT_GE(raw, 0);
    {
        Fd a(raw);
        Fd b(std::move(a));
        EXPECT_FALSE(a);
        EXPECT_EQ(b.fd, raw);
        Fd c;
        c = std::move(b);
        EXPECT_TRUE(is_open(raw));
    }
    EXPECT_FALSE(is_open(raw)) << "the last owner closes it";

    raw = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    ASSERT_GE(raw, 0);
    {
        Fd d(raw);
        EXPECT_EQ(d.release(), raw);
        EXPECT_FALSE(d);
    }
    EXPECT_TRUE(is_open(raw)) << "released: the caller owns it";
    Fd e(raw);
    e.reset();
    EXPECT_FALSE(is_open(raw));
}

}  // namespace
}  // namespace fabdns
