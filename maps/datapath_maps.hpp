// The typed C++ view of the datapath's maps (maps/fabdns_maps.h): layout checks, key/value
// construction, and the small interface the daemon and tools use. The real implementation
// over pinned BPF maps is in loader/; the compiler tests use an in-memory AnswerTable.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fabdns_maps.h"

static_assert(sizeof(fabdns_answer_key) == 16);
static_assert(offsetof(fabdns_answer_key, hash) == 0);
static_assert(offsetof(fabdns_answer_key, qtype) == 8);
static_assert(offsetof(fabdns_answer_key, name_len) == 10);
static_assert(sizeof(fabdns_answer) == 400);
static_assert(offsetof(fabdns_answer, name) == 0);
static_assert(offsetof(fabdns_answer, ttl) == 256);
static_assert(offsetof(fabdns_answer, count) == 260);
static_assert(offsetof(fabdns_answer, kind) == 261);
static_assert(offsetof(fabdns_answer, soa_len) == 262);
static_assert(offsetof(fabdns_answer, zone_len) == 263);
static_assert(offsetof(fabdns_answer, hits) == 264);
static_assert(offsetof(fabdns_answer, rdata) == 272);
static_assert(sizeof(fabdns_listen_key) == 20);
static_assert(offsetof(fabdns_listen_key, port) == 16);
static_assert(sizeof(fabdns_listen_value) == 4);
static_assert(sizeof(fabdns_config) == 24);
static_assert(offsetof(fabdns_config, stale_after_ns) == 8);
static_assert(offsetof(fabdns_config, listen_gen) == 16);
static_assert(FABDNS_NAME_BUF % 8 == 0, "names are hashed and compared by 64-bit words");
static_assert(FABDNS_SOA_HEAD_OFF == sizeof(fabdns_answer_key));
static_assert(FABDNS_SOA_HEAD_OFF + FABDNS_SOA_HEAD_MAX <= FABDNS_RDATA_BUF);
static_assert(FABDNS_SOA_TAIL_LEN <= FABDNS_RDATA_BUF);

namespace fabdns::maps {

// Metric label of each counter, indexed by enum fabdns_stat.
inline constexpr std::array<const char *, FABDNS_STAT_MAX> kStatNames = {
#define FABDNS_STAT_LABEL_(name, label) label,
    FABDNS_STAT_LIST(FABDNS_STAT_LABEL_)
#undef FABDNS_STAT_LABEL_
};

// fabdns_hash_word over a lowercase dotted name (no trailing dot) in the kernel's form, its
// wire form without the root label: the same words the kernel hashes, read from a zero-padded
// buffer.
uint64_t name_hash(std::string_view name);

// The name of a map value (".a.b", see fabdns_answer.name) as a lowercase dotted name ("a.b"):
// a view into v.name, valid as long as v is.
std::string_view dotted_name(const fabdns_answer &v);

// One kernel map entry in C++ terms (see enum fabdns_answer_kind).
struct KernelAnswer {
    fabdns_answer_kind kind = FABDNS_ANSWER_ADDRESSES;
    std::string name;             // lowercase dotted, no trailing dot; ZONE: the zone's name
    uint16_t qtype = DNS_TYPE_A;  // ZONE: DNS_TYPE_SOA
    uint32_t ttl = 0;
    std::vector<std::array<uint8_t, 16>> addrs;  // ADDRESSES: A uses the first 4 bytes
    std::string zone;          // NODATA: the zone (a suffix of name, "" for the root)
    std::vector<uint8_t> soa;  // NODATA: SOA bytes up to the serial; ZONE: serial to minimum
    uint64_t hits = 0;

    bool operator==(const KernelAnswer &o) const {
        return kind == o.kind && name == o.name && qtype == o.qtype && ttl == o.ttl &&
               addrs == o.addrs && zone == o.zone && soa == o.soa;
    }
};

// Whether the kernel can hold this name (length and characters).
bool fits_kernel_name(std::string_view name);
// Whether the kernel can hold an address answer of this name (name, record count).
bool fits_kernel(std::string_view name, size_t records);
// Whether the kernel can hold a NODATA entry of this name, zone and SOA head length.
bool fits_kernel_nodata(std::string_view name, std::string_view zone, size_t soa_len);
// Whether the kernel can hold this entry, of any kind.
bool fits_kernel(const KernelAnswer &a);

fabdns_answer_key make_key(std::string_view name, uint16_t qtype);
// Precondition: fits_kernel(a).
fabdns_answer make_value(const KernelAnswer &a);
// The key of a zone's FABDNS_ANSWER_ZONE entry.
fabdns_answer_key zone_key(std::string_view zone);
KernelAnswer from_map(const fabdns_answer_key &k, const fabdns_answer &v);

// A destination the kernel answers for.
struct ListenEntry {
    std::array<uint8_t, 16> addr{};  // IPv6 or ::ffff:a.b.c.d
    uint16_t port = 0;               // host order
    bool is_v4() const;
    bool is_wildcard() const;
};

// One change to the answers map: the value to hold for key, or none to remove it.
struct AnswerChange {
    fabdns_answer_key key{};
    std::optional<fabdns_answer> value;
};

// An addition apply() could not make, and why (an errno value, e.g. E2BIG when full).
struct AnswerFailure {
    size_t index = 0;
    int error = 0;
};

// The answers map. Readers (the kernel) see every entry whole, and a batch of changes all at
// once: before it or after it.
class AnswerTable {
  public:
    virtual ~AnswerTable() = default;
    virtual std::optional<fabdns_answer> lookup(const fabdns_answer_key &key) const = 0;
    // Applies the changes as one step; removals first, so that additions have room in a full
    // map. Returns the failed additions in index order; the others are made.
    virtual std::vector<AnswerFailure> apply(const std::vector<AnswerChange> &changes) = 0;
    // Visits every entry; `hits` is the entry's total over whatever copies the table keeps.
    virtual void for_each(
        const std::function<void(const fabdns_answer_key &, const fabdns_answer &)> &fn) const = 0;
    virtual uint32_t capacity() const = 0;

    // One change as its own batch. upsert throws std::system_error when it fails.
    void upsert(const fabdns_answer_key &key, const fabdns_answer &value);
    void erase(const fabdns_answer_key &key);
    // Removes every entry, as one batch.
    void clear();
};

// All maps of one datapath instance.
class DatapathMaps {
  public:
    virtual ~DatapathMaps() = default;
    virtual AnswerTable &answers() = 0;
    virtual const AnswerTable &answers() const = 0;
    // Replaces the listen map's contents, then renews config().listen_gen (a read-modify-write
    // of the config: callers serialize it with their own config writes).
    virtual void set_listen(const std::vector<ListenEntry> &entries) = 0;
    virtual std::vector<ListenEntry> listen() const = 0;
    virtual fabdns_config config() const = 0;
    virtual void set_config(const fabdns_config &cfg) = 0;
    // Counters summed over CPUs, indexed by enum fabdns_stat.
    virtual std::array<uint64_t, FABDNS_STAT_MAX> stats() const = 0;
};

// CLOCK_MONOTONIC in ns, used for the liveness stamp (the kernel reads the same clock coarse).
uint64_t monotonic_ns();

}  // namespace fabdns::maps
