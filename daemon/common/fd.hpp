// An owning file descriptor, the one RAII wrapper for sockets, epoll, eventfd and BPF objects.
#pragma once

#include <unistd.h>

#include <utility>

namespace fabdns {

// Owns one file descriptor and closes it on destruction; `fd` is -1 when it owns none. The
// member is public so that C APIs read it directly; only reset(), release() and moves
// change it.
struct Fd {
    int fd = -1;

    Fd() = default;
    explicit Fd(int f) : fd(f) {}
    ~Fd() { reset(); }
    Fd(Fd &&o) noexcept : fd(std::exchange(o.fd, -1)) {}
    Fd &operator=(Fd &&o) noexcept {
        if (this != &o) reset(std::exchange(o.fd, -1));
        return *this;
    }
    Fd(const Fd &) = delete;
    Fd &operator=(const Fd &) = delete;

    explicit operator bool() const { return fd >= 0; }
    // Closes the descriptor held, if any, and takes `f`.
    void reset(int f = -1) {
        if (fd >= 0) ::close(fd);
        fd = f;
    }
    // Gives up ownership: the caller closes what is returned.
    int release() { return std::exchange(fd, -1); }
};

}  // namespace fabdns
