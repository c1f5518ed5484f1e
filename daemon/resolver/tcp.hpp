// The resolver's DNS-over-TCP service (RFC 7766): one epoll thread serving every connection
// with bounded work per connection per turn, so that hostile clients (pipelining without
// reading, dripping bytes, holding idle connections) cannot starve the others.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "engine/engine.hpp"
#include "resolver/counters.hpp"
#include "resolver/respond.hpp"

namespace fabdns {

class Forwarder;

struct TcpOptions {
    // Closed after this long without progress (a whole query received or the pending replies
    // all sent), unless a forwarded answer is still on its way (RFC 7766 §6.2.3).
    std::chrono::milliseconds idle_timeout{10000};
    // A message, once its first byte arrived, must be whole within this long.
    std::chrono::milliseconds message_timeout{2000};
    // Beyond this many connections, a new one evicts the connection idle the longest, or is
    // refused when none is idle.
    size_t max_connections = 1024;
    // Reply bytes waiting for one client: at or above it, that client's queries are neither
    // answered nor read until it reads.
    size_t max_output = 16384;
};

class TcpServer {
  public:
    // Called for each reply answered here (not forwarded), on the TCP thread.
    using OnReply = std::function<void(const Reply &)>;

    // `listeners` are bound, listening, non-blocking TCP sockets (not owned). `stop_fd` is an
    // eventfd that becomes readable when run() must return; `forwarder` may be null (no
    // upstream). Everything passed must outlive the server.
    TcpServer(const Engine &engine, const RespondOptions &respond_options,
              ResolverCounters &counters, Forwarder *forwarder, OnReply on_reply,
              TcpOptions options, std::vector<int> listeners, int stop_fd,
              const std::atomic<bool> &stopping);
    ~TcpServer();
    TcpServer(const TcpServer &) = delete;
    TcpServer &operator=(const TcpServer &) = delete;

    // Serves until stop_fd is readable and `stopping` is set; then closes every connection.
    void run();

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace fabdns
