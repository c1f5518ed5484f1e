// The resolver's counters: plain atomics, written with relaxed adds on the hot path and read
// without locks by the metrics endpoint and fabdnsctl.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>

#include "resolver/wire.hpp"

namespace fabdns {

using dns::Transport;

struct ResolverCounters {
    // Rcodes 0..23 have their own slot (16 is BADVERS); anything higher lands in the last one.
    static constexpr size_t kRcodeSlots = 24;
    static constexpr size_t kTransports = 2;  // indexed by dns::Transport

    // Messages received, garbage included.
    std::array<std::atomic<uint64_t>, kTransports> queries{};
    // Replies sent (answered here, relayed from an upstream, or SERVFAIL after upstream
    // failure), by transport and rcode.
    std::array<std::array<std::atomic<uint64_t>, kRcodeSlots>, kTransports> replies{};
    std::atomic<uint64_t> forwarded{0};             // queries handed to the forwarder
    std::atomic<uint64_t> upstream_failures{0};     // forwarded queries no upstream answered
    std::atomic<uint64_t> upstream_tcp_retries{0};  // upstream said TC=1, retried over TCP
    std::atomic<uint64_t> dropped{0};               // garbage or responses: never answered
    std::atomic<uint64_t> truncated{0};             // replies sent with TC=1 by us
    std::atomic<uint64_t> tcp_refused{0};         // TCP connections closed at once: over the limit
    std::atomic<uint64_t> tcp_evicted{0};         // idle TCP connections closed to admit a new one
    std::atomic<uint64_t> tcp_timed_out{0};       // closed: idle, or a message never completed
    std::atomic<uint64_t> tcp_accept_errors{0};   // accept() out of descriptors or memory
    std::atomic<uint64_t> forward_rejected{0};    // SERVFAIL at once: the forwarder was full
    std::atomic<uint64_t> reflection_dropped{0};  // UDP from a reflection port: never answered

    static size_t rcode_slot(Rcode rcode) {
        const auto code = static_cast<size_t>(rcode);
        return code < kRcodeSlots ? code : kRcodeSlots - 1;
    }
    void count_query(dns::Transport t) {
        queries[static_cast<size_t>(t)].fetch_add(1, std::memory_order_relaxed);
    }
    void count_reply(dns::Transport t, Rcode rcode) {
        replies[static_cast<size_t>(t)][rcode_slot(rcode)].fetch_add(1, std::memory_order_relaxed);
    }
    uint64_t query_count(dns::Transport t) const {
        return queries[static_cast<size_t>(t)].load(std::memory_order_relaxed);
    }
    uint64_t reply_count(dns::Transport t, Rcode rcode) const {
        return replies[static_cast<size_t>(t)][rcode_slot(rcode)].load(std::memory_order_relaxed);
    }
    static void bump(std::atomic<uint64_t> &c) { c.fetch_add(1, std::memory_order_relaxed); }
};

}  // namespace fabdns
