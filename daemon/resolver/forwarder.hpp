// The forwarder: sends queries for names outside every zone to the upstream servers without
// ever blocking the threads that answer in-zone queries. One thread drives all outstanding
// queries with non-blocking sockets and epoll.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "common/net.hpp"
#include "resolver/counters.hpp"

namespace fabdns {

struct ForwarderOptions {
    std::vector<SocketAddr> upstreams;        // tried in order
    std::chrono::milliseconds timeout{2000};  // per upstream and per transport
    // Queries submitted and not yet answered; beyond this a query gets SERVFAIL at once
    // (counted in forward_rejected) rather than wait in an unbounded queue. SERVFAIL rather
    // than silence: a TCP client's connection would otherwise wait for its answer.
    size_t max_pending = 4096;
};

class Forwarder {
  public:
    // Receives the reply to send to the client (the client's ID already in place).
    using Deliver = std::function<void(std::vector<uint8_t> reply)>;

    // Starts the forwarder thread. Throws std::system_error when it cannot set up epoll.
    Forwarder(ForwarderOptions options, ResolverCounters &counters);
    ~Forwarder();
    Forwarder(const Forwarder &) = delete;
    Forwarder &operator=(const Forwarder &) = delete;

    // Forwards `query` (as the client sent it). Each upstream in turn gets it over UDP under a
    // fresh random ID and source port; a reply with TC=1 is retried over TCP; on a timeout or
    // error the next upstream is tried; replies without exactly the question asked are
    // ignored. `deliver` is called once, on the forwarder thread, with the upstream's reply or,
    // when every upstream failed, a SERVFAIL; when max_pending queries are already waiting,
    // with a SERVFAIL at once on the caller's thread. A reply larger than `client_udp_limit`
    // (0: the client is on TCP, no limit) is cut to header and question with TC=1. After
    // stop(), queries are dropped and deliver is not called.
    void submit(std::vector<uint8_t> query, size_t client_udp_limit, Deliver deliver);

    // Stops the thread and drops the queries in flight. Idempotent.
    void stop();

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace fabdns
