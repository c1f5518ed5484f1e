// What the sources share to turn decoded objects into one clean set: defaults for the type
// fields that list APIs omit, a structural sanity check, de-duplication and rejection logging.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "model/globalservice.hpp"

namespace fabdns::source_detail {

inline constexpr const char *kApiVersion = "dns.fabedge.io/v1alpha1";
inline constexpr const char *kKind = "GlobalService";

// Kubernetes list items (and some hub versions) carry no apiVersion/kind: fill them in when
// absent so the decoder accepts them. Present but different values are left for it to refuse.
void default_type_meta(nlohmann::json &obj);

// "" when obj has the shape of a GlobalService (an object with metadata.name and
// metadata.namespace as non-empty strings and a spec object), else what is missing.
std::string structural_problem(const nlohmann::json &obj);

// "namespace/name" from an object's metadata, "" when absent.
std::string object_key(const nlohmann::json &obj);

// Keeps the last object of each namespace/name (the order an apply would leave) and logs each
// duplicate once. The result keeps first-seen order.
void dedupe(std::vector<GlobalService> &services, const std::string &label);

// One warning per rejected object (at most 20 lines, then a count), each with its reason.
void log_rejections(const std::vector<Rejection> &rejected, const std::string &label);

}  // namespace fabdns::source_detail
