// What the sources share to turn a decoded document into the next complete set: one
// de-duplication, the last good version of each rejected object (SPEC §5), and rejection logs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "model/globalservice.hpp"

namespace fabdns::source_detail {

// The next set built from a decoded document.
struct NextSet {
    ServiceList services;  // sorted by namespace/name, one per key
    size_t kept = 0;       // rejected objects served in their last good version instead
};

// The first 16 bytes of "namespace\0name" as two big-endian numbers, and the service's position
// in its document: compared as numbers they order as key_less does (names are DNS labels,
// without NUL bytes), without reading the services again.
struct SortKey {
    uint64_t high = 0, low = 0;
    uint32_t pos = 0;
};

// The sort of one document's services, kept for its next decode: `input` the services given
// last (document order) and `keys` their keys in sorted order. A next input of the same length
// with, at every position, the same pointer or a service of the same namespace/name sorts the
// same way, so the keys are reused instead of reading every service and sorting again (a
// rewrite of one service in 100,000). Shared pointers: a freed service's address, taken by a
// new one, cannot pass for the old service.
struct SortMemo {
    std::vector<ServicePtr> input;
    std::vector<SortKey> keys;
    size_t reuses = 0;  // the calls that reused `keys`

    void clear() {
        input = std::vector<ServicePtr>();
        keys = std::vector<SortKey>();
    }
};

// Builds the next set from `decoded` (its services, or shared services, are moved out): the
// last object of each
// namespace/name wins (a duplicate is logged once), and every named rejection whose
// namespace/name is in `held` (a ServiceList, sorted) keeps its held version unless a valid
// object of the same name is in the document too. Objects absent from the document are gone.
// A service equal to its held version is the held one (the same pointer), so the engine skips
// it without comparing it again. `memo`: as for unique_services, over the document's shared
// services (cleared for a document decoded into values).
NextSet build_set(DecodeResult &decoded, const ServiceList &held, const std::string &label,
                  SortMemo *memo = nullptr);

// build_set's de-duplication alone: `in` (moved out) sorted by namespace/name, the last object
// of each kept (a duplicate is logged once, `where` after its name), each equal to its held
// version the held one.
ServiceList unique_services(std::vector<GlobalService> &in, const ServiceList &held,
                            const std::string &label, const std::string &where = "");
// The same for shared services (as a decode through a SpanCache gives them): one that is the
// held pointer is kept without comparing it. With a `memo` of the same document's last decode,
// the sort is reused when it still holds (see SortMemo), and the memo then describes `in`; the
// result is the same as without it.
ServiceList unique_services(std::vector<ServicePtr> &in, const ServiceList &held,
                            const std::string &label, const std::string &where = "",
                            SortMemo *memo = nullptr);

// Adds to `out` (sorted by key, one per key) the held version of every named rejection whose
// namespace/name is not in `out`: build_set's rule for rejections, for a set built otherwise.
// Returns how many were added.
size_t keep_last_good(ServiceList &out, const std::vector<Rejection> &rejected,
                      const ServiceList &held);

// The held version of `key` ("namespace/name"), or nullptr; `held` sorted by key_less.
const ServicePtr *find_held(const ServiceList &held, const std::string &key);

// One warning per rejected object (at most 20 lines, then a count), each with its reason.
void log_rejections(const DecodeResult &decoded, const std::string &label);

}  // namespace fabdns::source_detail
