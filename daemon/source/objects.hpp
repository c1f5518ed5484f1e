// What the sources share to turn a decoded document into the next complete set: one
// de-duplication, the last good version of each rejected object (SPEC §5), and rejection logs.
#pragma once

#include <string>
#include <vector>

#include "model/globalservice.hpp"

namespace fabdns::source_detail {

// The next set built from a decoded document.
struct NextSet {
    ServiceList services;  // sorted by namespace/name, one per key
    size_t kept = 0;       // rejected objects served in their last good version instead
};

// Builds the next set from `decoded` (its services, or shared services, are moved out): the
// last object of each
// namespace/name wins (a duplicate is logged once), and every named rejection whose
// namespace/name is in `held` (a ServiceList, sorted) keeps its held version unless a valid
// object of the same name is in the document too. Objects absent from the document are gone.
// A service equal to its held version is the held one (the same pointer), so the engine skips
// it without comparing it again.
NextSet build_set(DecodeResult &decoded, const ServiceList &held, const std::string &label);

// build_set's de-duplication alone: `in` (moved out) sorted by namespace/name, the last object
// of each kept (a duplicate is logged once, `where` after its name), each equal to its held
// version the held one.
ServiceList unique_services(std::vector<GlobalService> &in, const ServiceList &held,
                            const std::string &label, const std::string &where = "");
// The same for shared services (as a decode through a SpanCache gives them): one that is the
// held pointer is kept without comparing it.
ServiceList unique_services(std::vector<ServicePtr> &in, const ServiceList &held,
                            const std::string &label, const std::string &where = "");

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
