// The answer engine: the one place where fabdns decides what a name answers (SPEC §3). Pure
// C++, no I/O. The user-space resolver calls resolve() for each query; the map compiler calls
// for_each_kernel_answer() to get every (name, type) the kernel may serve, so the two paths
// cannot disagree.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "model/globalservice.hpp"

namespace fabdns {

namespace dnstype {
constexpr uint16_t A = 1, NS = 2, SOA = 6, AAAA = 28, ANY = 255;
}

enum class Rcode : uint8_t { NoError = 0, FormErr = 1, ServFail = 2, NxDomain = 3, Refused = 5 };

struct NodeTopology {
    std::string cluster, zone, region;
};

struct EngineOptions {
    std::vector<std::string> zones{"global"};  // lowercase, no trailing dot
    uint32_t ttl = 5;
    NodeTopology node;
};

// One resource record; rdata in uncompressed wire format.
struct Record {
    std::string owner;  // lowercase dotted, no trailing dot ("" is the root)
    uint16_t type = 0;
    uint32_t ttl = 0;
    std::vector<uint8_t> rdata;
};

struct Answer {
    bool in_zone = false;        // false: the name is under no zone (forward or REFUSED)
    Rcode rcode = Rcode::NoError;
    bool authoritative = false;  // AA: set on every in-zone answer
    std::vector<Record> answer;
    std::vector<Record> authority;  // the zone's SOA for NODATA / NXDOMAIN
};

// Which topology tier produced an address answer.
enum class Tier { None, Cluster, Zone, Region, All, Pinned /* <cluster>.<svc> forms, pods */ };

struct Explanation {
    Answer answer;
    std::string form;  // which naming form matched ("service", "short", "cluster", "old", "pod",
                       // "apex", "empty-non-terminal", "none")
    Tier tier = Tier::None;
    // One line per endpoint considered, e.g. "shanghai/10.1.0.5: skipped: cluster tier had
    // no IPv4 address" or "beijing/10.0.0.5: used (same region)".
    std::vector<std::string> endpoints;
};

class AnswerIndex;  // immutable, built from one set of services

// Thread-safe: resolve() and explain() may run on many threads while set_services() replaces
// the data; each call sees one consistent set.
class Engine {
public:
    explicit Engine(EngineOptions options);
    ~Engine();

    const EngineOptions &options() const { return options_; }

    // Replaces the whole set of services.
    void set_services(std::vector<GlobalService> services);
    size_t service_count() const;

    // The answer for qname (any case, with or without trailing dot) and qtype.
    Answer resolve(std::string_view qname, uint16_t qtype) const;
    Explanation explain(std::string_view qname, uint16_t qtype) const;

    // Calls fn for every name (lowercase) and type in {A, AAAA} whose answer is NOERROR with at
    // least one address record. Headless pod names are included (the compiler decides what
    // fits the kernel).
    void for_each_address_answer(
        const std::function<void(std::string_view name, uint16_t qtype, const Answer &)> &fn)
        const;

private:
    EngineOptions options_;
    std::shared_ptr<const AnswerIndex> current() const;
    std::shared_ptr<const AnswerIndex> index_;  // accessed with std::atomic_load/store
};

}  // namespace fabdns
