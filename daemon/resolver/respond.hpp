// respond(): the pure function that turns one query into the resolver's action and reply
// bytes. It is the reference the kernel datapath is compared against, so every rule here
// (flags, case, EDNS, size limits) is the contract both paths share.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "engine/engine.hpp"
#include "resolver/counters.hpp"
#include "resolver/wire.hpp"

namespace fabdns {

struct RespondOptions {
    bool forward = false;  // an upstream is configured: names outside every zone are forwarded
};

struct Reply {
    enum class Action : uint8_t {
        Reply,    // send `bytes`
        Forward,  // send the query, as received, to the upstreams
        Drop,     // say nothing (garbage, or a response)
    };
    Action action = Action::Drop;
    std::vector<uint8_t> bytes;
    Rcode rcode = Rcode::NoError;  // of `bytes`, extended (BADVERS)
    bool truncated = false;        // TC set, records dropped to fit
    bool in_zone = false;          // the name is under one of the engine's zones
    uint16_t qtype = 0;
    std::string qname;           // lowercase dotted, no trailing dot; empty if no question parsed
    bool has_addresses = false;  // in-zone A/AAAA answer with at least one record
    size_t udp_limit = dns::kUdpPlainLimit;  // dns::udp_limit() of the query (512 without
                                             // EDNS, else its size clamped to [512, 1232]):
                                             // bounds relayed answers
};

// Answers `query` received over `transport`:
// - shorter than a header, or QR=1: Drop;
// - opcode other than QUERY: NOTIMP; malformed question, section counts, OPT or trailing
//   bytes: FORMERR (ID, opcode and RD echoed, the question when it parsed);
// - EDNS version above 0: BADVERS;
// - in a zone: the engine's answer, AA from the engine, RD and CD copied, RA and AD clear, the
//   question echoed byte for byte, OPT (1232, DO copied) when the query had one; over UDP
//   answer records are dropped and TC set when the reply exceeds 512 bytes without EDNS, else
//   max(512, min(client payload, 1232));
// - in a zone but class other than IN, or AXFR/IXFR, or before the engine's first data: the
//   engine's REFUSED or SERVFAIL (AA clear);
// - outside every zone: Forward when options.forward, else REFUSED.
Reply respond(const Engine &engine, std::span<const uint8_t> query, Transport transport,
              const RespondOptions &options = {});

}  // namespace fabdns
