// The answer engine: the one place where fabdns decides what a name answers (SPEC §3). Pure
// C++, no I/O. The user-space resolver calls resolve() for each query; the map compiler calls
// for_each_service_answer() to get every (name, type) the kernel may serve, so the two paths
// cannot disagree.
//
// Names, for each zone Z (a name belongs to the longest configured zone it ends with):
//   Z                                      apex: SOA and NS; other types NODATA
//   <svc>.<ns>.svc.Z, <svc>.<ns>.Z         the service, topology-aware ("service", "short")
//   <cluster>.<svc>.<ns>.svc.Z             one cluster's endpoints, no fallback ("cluster")
//   <svc>.<ns>.<cluster>.Z                 the old FabDNS spelling of the line above ("old")
//   <hostname>.<cluster>.<svc>.<ns>.svc.Z  one pod of a Headless service ("pod")
//   svc.Z, <ns>.svc.Z, <ns>.Z, <cluster>.Z, <ns>.<cluster>.Z
//                                          empty non-terminals: NODATA
// When two forms spell the same name, the apex wins, then the service/short/cluster/pod forms,
// then the old form, then empty non-terminals; between two services the one first in
// "namespace/name" order wins. The one real clash is `<svc>.<ns>.svc.Z`, which
// is also the old form of a cluster named "svc": the service form wins. A short form
// `<svc>.<ns>.Z` also hides an empty non-terminal of the same spelling (`<ns2>.svc.Z` when the
// namespace is "svc"), which only turns a NODATA into an answer.
//
// The per-cluster name of a Headless service answers that cluster's pod addresses, so it is
// never an empty non-terminal. Hostname names exist only for Headless services: on a ClusterIP
// service they are NXDOMAIN. ANY and every type other than A, AAAA (and SOA, NS at the apex)
// get NODATA, which RFC 8482 allows. The apex NS record names "ns.dns.Z", a name this engine
// does not give addresses to (the resolver is reached by address, not by delegation).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "dns_wire.h"
#include "model/globalservice.hpp"

namespace fabdns {

// The DNS numbers the engine, the resolver, the compiler and fabdnsctl name, in one place; those
// the kernel uses too are taken from maps/dns_wire.h.
// Record types (RFC 1035 §3.2.2, RFC 3596, RFC 6891, RFC 1995, RFC 5936).
namespace dnstype {
inline constexpr uint16_t A = DNS_TYPE_A, NS = DNS_TYPE_NS, SOA = DNS_TYPE_SOA,
                          AAAA = DNS_TYPE_AAAA, OPT = DNS_TYPE_OPT, IXFR = 251, AXFR = 252,
                          ANY = 255;
}
// The one class served (RFC 1035 §3.2.4).
namespace dnsclass {
inline constexpr uint16_t IN = DNS_CLASS_IN;
}

// A response code. The type holds any code, including the extended ones carried partly in OPT
// (RFC 6891 §6.1.3) and those an upstream sends; the names are the ones fabdns writes.
enum class Rcode : uint16_t {
    NoError = 0,
    FormErr = 1,
    ServFail = 2,
    NxDomain = 3,
    NotImp = 4,
    Refused = 5,
    BadVers = 16
};

// "A", "AAAA", "MX", ... for the types fabdnsctl names; "TYPE<n>" (RFC 3597) for others.
std::string type_name(uint16_t qtype);
// "NXDOMAIN" (RFC 6895 §2.3 mnemonics); "RCODE<n>" for a code without one.
std::string rcode_name(Rcode rcode);

struct NodeTopology {
    std::string cluster, zone, region;
};

struct EngineOptions {
    std::vector<std::string> zones{"global"};  // lowercase, no trailing dot
    uint32_t ttl = 5;
    NodeTopology node;
};

// The fixed SOA timers (seconds); the SOA minimum is the configured ttl.
inline constexpr uint32_t kSoaRefresh = 7200, kSoaRetry = 1800, kSoaExpire = 86400;

// One resource record; rdata in uncompressed wire format.
struct Record {
    // Lowercase dotted, no trailing dot ("" is the root), for people (fabdnsctl, explain) and
    // the compiler.
    std::string owner;
    uint16_t type = 0;
    uint32_t ttl = 0;
    std::vector<uint8_t> rdata;
    // The owner for the wire: every owner in an answer is the query name or a zone it is in,
    // so it is the query name's last `owner_labels` labels. The resolver writes it as a
    // pointer into the question, never from the text.
    uint8_t owner_labels = 0;

    bool operator==(const Record &) const = default;
};

struct Answer {
    bool in_zone = false;  // false: the name is under no zone (forward or REFUSED)
    Rcode rcode = Rcode::NoError;
    bool authoritative = false;  // AA: set on every in-zone answer from data
    std::vector<Record> answer;
    std::vector<Record> authority;  // the zone's SOA for NODATA / NXDOMAIN

    bool operator==(const Answer &) const = default;
};

// Which topology tier produced an address answer.
enum class Tier { None, Cluster, Zone, Region, All, Pinned /* <cluster>.<svc> forms, pods */ };
const char *to_string(Tier tier);

struct Explanation {
    Answer answer;
    std::string form;  // which naming form matched ("service", "short", "cluster", "old", "pod",
                       // "apex", "empty-non-terminal", "none")
    Tier tier = Tier::None;
    std::string service;  // "namespace/name" of the service the name belongs to, if any
    std::string summary;  // one human-readable line: what matched and what was answered
    // One line per endpoint address considered, e.g. "shanghai/10.1.0.5: skipped: a nearer
    // tier (cluster beijing) has IPv4 addresses" or "beijing/10.0.0.5: used (cluster beijing)".
    std::vector<std::string> endpoints;
};

class AnswerIndex;  // immutable, built from one set of services

// Thread-safe: resolve() and explain() may run on many threads while set_services() replaces
// the data; each call sees one consistent set.
class Engine {
  public:
    // Zones are normalised (lowercased, trailing dot dropped, duplicates removed). Throws
    // std::invalid_argument for a zone that cannot be a DNS name.
    explicit Engine(EngineOptions options);
    ~Engine();

    const EngineOptions &options() const { return options_; }

    // Replaces the whole set of services. Services with the same namespace/name: the last one
    // wins. The answers are computed here, once, for this node's topology, and only for the
    // services whose content differs from the set before: the cost of an update follows what
    // changed (plus a comparison of the two sets), not the size of the set.
    void set_services(std::vector<GlobalService> services);
    // The same, keeping the set itself rather than a copy when it is sorted without duplicates
    // (as a source's set is). A service the set shares (the same pointer) with the set before is
    // taken as unchanged without comparing it: building the next set from the last one and the
    // changes makes an update cost what changed plus a walk of the pointers. After an update of a
    // few services it returns the data it replaced (the previous index and set, often the only
    // reference to that set), so that a caller publishing the change first can free it afterwards
    // (100,000 services: ~100 ms); after a larger update, whose full walk needs the memory, it
    // frees it and returns null.
    std::shared_ptr<const void> set_service_set(ServiceSet services);
    // False until the first set_services(): before it the engine knows no names, and an
    // NXDOMAIN would be a lie (resolve() answers SERVFAIL for in-zone names instead).
    bool has_data() const { return has_data_.load(std::memory_order_acquire); }
    size_t service_count() const;
    // The SOA serial of the current data: a hash of the DNS-relevant content, the same for the
    // same services whatever their order.
    uint32_t serial() const;

    // The answer for qname (any case, with or without trailing dot), qtype and qclass. Every
    // decision is made here; for a name in a zone, before the data:
    // - no data yet (has_data() false): SERVFAIL, "I cannot answer now", never an NXDOMAIN
    //   that caches negatively and contradicts the kernel still answering from a previous
    //   daemon's maps;
    // - a class other than IN, or AXFR/IXFR: REFUSED (only IN is served, zone transfers are
    //   not offered).
    // Both have AA clear and no records. A name under no zone: in_zone false, nothing else.
    Answer resolve(std::string_view qname, uint16_t qtype, uint16_t qclass = dnsclass::IN) const;
    // The same, reusing out's storage (the resolver's hot path).
    void resolve(std::string_view qname, uint16_t qtype, uint16_t qclass, Answer &out) const;
    // resolve()'s answer, and why.
    Explanation explain(std::string_view qname, uint16_t qtype,
                        uint16_t qclass = dnsclass::IN) const;

    // Calls fn for every name (lowercase) of a service, with its naming form as
    // Explanation::form names it ("service", "short", "cluster", "old", "pod"), and each type in
    // {A, AAAA}: the address answer where the name has addresses of that family, else its
    // NODATA (NOERROR, no records, the zone's SOA in authority), the other half of what a
    // resolver asking A and AAAA together gets. Apex and empty non-terminal names are left out.
    // Each Answer equals what resolve() returns for that name and type; it is only valid during
    // the call.
    using ServiceAnswerFn = std::function<void(std::string_view name, std::string_view form,
                                               uint16_t qtype, const Answer &)>;
    void for_each_service_answer(const ServiceAnswerFn &fn) const;
    // Calls fn as for_each_service_answer() does, but only for those of `names` (lowercase, as
    // fn got them) it visits, in the order given: a caller that chose a few names from a walk
    // gets their answers without a second walk.
    void for_each_answer_of(const std::vector<std::string_view> &names,
                            const ServiceAnswerFn &fn) const;
    // How many times for_each_service_answer() calls fn for the current data, without computing
    // a single answer: lets a caller size its buffers, or learn that a set cannot fit, first.
    size_t service_answer_count() const;

    // Which data the engine holds: 0 before the first set_services(), then one more per call.
    uint64_t generation() const;
    // What changed since the data of generation `since`, for a caller that keeps a copy of the
    // answers (the map compiler): calls fn as for_each_service_answer() does, for every name a
    // service that changed in the last set_services() had or has, and gone(name) for such a name
    // for_each_service_answer() no longer visits. Returns false, calling nothing, when the
    // current data is not `since` plus one update, or when that update changed most of the set
    // (then the caller walks everything).
    bool for_each_changed_answer(uint64_t since, const ServiceAnswerFn &fn,
                                 const std::function<void(std::string_view)> &gone) const;

  private:
    EngineOptions options_;
    std::shared_ptr<const AnswerIndex> current() const;
    std::atomic<std::shared_ptr<const AnswerIndex>> index_;
    std::atomic<bool> has_data_{false};  // set after the first index_ store
    std::mutex write_mu_;                // one set_services() at a time
};

}  // namespace fabdns
