// Small POSIX socket helpers for the resolver and the metrics server: conversions between
// SocketAddr and sockaddr, errno text, socket options.
#pragma once

#include <sys/socket.h>

#include <string>

#include "common/net.hpp"

namespace fabdns::sock {

// A socket address of either family, with the length the socket calls take.
struct SockAddr {
    sockaddr_storage storage{};
    socklen_t len = 0;

    const sockaddr *get() const { return reinterpret_cast<const sockaddr *>(&storage); }
    sockaddr *get() { return reinterpret_cast<sockaddr *>(&storage); }
    int family() const { return storage.ss_family; }
};

SockAddr to_sockaddr(const SocketAddr &addr);
SocketAddr from_sockaddr(const SockAddr &addr);

// "Address already in use" for an errno value.
std::string error_text(int err);

// Sets an int socket option; returns false (errno set) on failure.
bool set_int_option(int fd, int level, int name, int value);

}  // namespace fabdns::sock
