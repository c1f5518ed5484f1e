// Small POSIX socket helpers for the resolver: an owning file descriptor and conversions
// between SocketAddr and sockaddr.
#pragma once

#include <sys/socket.h>

#include <string>
#include <utility>

#include "common/net.hpp"

namespace fabdns::sock {

// Owns one file descriptor; closes it on destruction.
class Fd {
  public:
    Fd() = default;
    explicit Fd(int fd) : fd_(fd) {}
    ~Fd() { reset(); }
    Fd(Fd &&o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
    Fd &operator=(Fd &&o) noexcept {
        if (this != &o) reset(std::exchange(o.fd_, -1));
        return *this;
    }
    Fd(const Fd &) = delete;
    Fd &operator=(const Fd &) = delete;

    int get() const { return fd_; }
    explicit operator bool() const { return fd_ >= 0; }
    void reset(int fd = -1);

  private:
    int fd_ = -1;
};

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
