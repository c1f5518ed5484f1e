// Small POSIX socket helpers: sockaddr conversions, errno text, socket options.
#include "common/socket.hpp"

#include <netinet/in.h>

#include <cstring>

namespace fabdns::sock {

SockAddr to_sockaddr(const SocketAddr &addr) {
    SockAddr out;
    if (addr.ip.is_v4()) {
        auto *sin = reinterpret_cast<sockaddr_in *>(&out.storage);
        sin->sin_family = AF_INET;
        sin->sin_port = htons(addr.port);
        std::memcpy(&sin->sin_addr, addr.ip.bytes.data(), 4);
        out.len = sizeof(sockaddr_in);
    } else {
        auto *sin6 = reinterpret_cast<sockaddr_in6 *>(&out.storage);
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(addr.port);
        std::memcpy(&sin6->sin6_addr, addr.ip.bytes.data(), 16);
        out.len = sizeof(sockaddr_in6);
    }
    return out;
}

SocketAddr from_sockaddr(const SockAddr &addr) {
    SocketAddr out;
    if (addr.family() == AF_INET) {
        const auto *sin = reinterpret_cast<const sockaddr_in *>(&addr.storage);
        out.ip.family = IpAddr::Family::V4;
        std::memcpy(out.ip.bytes.data(), &sin->sin_addr, 4);
        out.port = ntohs(sin->sin_port);
    } else if (addr.family() == AF_INET6) {
        const auto *sin6 = reinterpret_cast<const sockaddr_in6 *>(&addr.storage);
        out.ip.family = IpAddr::Family::V6;
        std::memcpy(out.ip.bytes.data(), &sin6->sin6_addr, 16);
        out.port = ntohs(sin6->sin6_port);
    }
    return out;
}

std::string error_text(int err) {
    char buf[128];
    // GNU strerror_r returns the message, which may not be buf.
    return ::strerror_r(err, buf, sizeof(buf));
}

bool set_int_option(int fd, int level, int name, int value) {
    return ::setsockopt(fd, level, name, &value, sizeof(value)) == 0;
}

}  // namespace fabdns::sock
