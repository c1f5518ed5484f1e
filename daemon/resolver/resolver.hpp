// The user-space resolver: UDP and TCP DNS service on every listen address, answering from
// the engine through respond() and forwarding names outside every zone to the upstreams.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "common/net.hpp"
#include "engine/engine.hpp"
#include "resolver/counters.hpp"

namespace fabdns {

// Called for each in-zone A/AAAA query answered here with at least one address (the map
// compiler ranks names by it). Runs on the resolver's threads, concurrently: keep it cheap
// and thread-safe.
using QueryHook = std::function<void(std::string_view qname_lower, uint16_t qtype)>;

struct ResolverOptions {
    std::vector<SocketAddr> listen;    // UDP and TCP on each; port 0 picks a free port
    std::vector<SocketAddr> upstream;  // empty: names outside every zone get REFUSED
    unsigned workers = 0;              // UDP threads (one socket each per address); 0: CPUs
    std::chrono::milliseconds upstream_timeout{2000};  // per upstream attempt
    // TCP (see TcpOptions): closed after this long without a whole query received or the
    // replies sent (RFC 7766 §6.2.3); a message begun must be whole within tcp_message_timeout;
    // beyond tcp_max_connections a new connection evicts the one idle the longest; a client
    // with tcp_max_output reply bytes unread is neither answered nor read until it reads.
    std::chrono::milliseconds tcp_idle_timeout{10000};
    std::chrono::milliseconds tcp_message_timeout{2000};
    size_t tcp_max_connections = 1024;
    size_t tcp_max_output = 16384;
    // Forwarded queries waiting for an upstream; beyond it, SERVFAIL at once.
    size_t max_forward_pending = 4096;
    QueryHook on_query;
};

// A listen address that cannot be bound, or the service cannot start.
class ResolverError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

class Resolver {
  public:
    // Binds every listen address (UDP and TCP) and starts serving; raises the process's
    // RLIMIT_NOFILE soft limit to its hard limit (TCP clients each hold a descriptor). Throws
    // ResolverError naming the address when one cannot be bound; nothing is left running then.
    // `engine` must outlive the resolver.
    Resolver(const Engine &engine, ResolverOptions options);
    // Stops (see stop()).
    ~Resolver();
    Resolver(const Resolver &) = delete;
    Resolver &operator=(const Resolver &) = delete;

    // Stops serving: threads are joined and sockets closed; queries in flight are dropped.
    // Returns within about a second. Idempotent.
    void stop();

    // The addresses served, with the ports actually bound (port 0 resolved).
    const std::vector<SocketAddr> &addresses() const;

    const ResolverCounters &counters() const;

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace fabdns
