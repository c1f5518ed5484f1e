// The spelling rules for DNS names that the config, the model, the engine and fabdnsctl share:
// what a cluster label may be, how a name is compared, and what a zone is once normalised.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace fabdns {

// The longest zone, as text: the SOA rname hostmaster.<zone>, the longest name written for a
// zone, must still fit the 255-octet wire limit (253 characters of text).
inline constexpr size_t kMaxZoneText = 253 - (sizeof("hostmaster.") - 1);

// True when `s` is an RFC 1123 DNS label as Kubernetes spells it: 1..63 characters of
// [a-z0-9-], starting and ending with [a-z0-9]. Upper case is not a label here: Kubernetes
// names are lower case, and a name with upper case could never match a (lowercased) query.
// Cluster names stand as such a label inside DNS names (<cluster>.<svc>.<ns>.svc.Z).
bool is_dns_label(std::string_view s);

// A name as fabdns looks it up: ASCII letters lowercased (DNS compares names without case,
// RFC 4343), one trailing dot dropped. Writes to `out`, which holds name.size() characters,
// and returns the length written.
size_t normalise_name(std::string_view name, char *out);
// The same, as a string ("Nginx.Default.Global." -> "nginx.default.global").
std::string normalise_name(std::string_view name);

// A zone in the form every component keeps ("Global." -> "global"): lowercased, one trailing
// dot dropped. nullopt unless each label is 1..63 characters of [a-z0-9_-] not starting or
// ending with '-', and the whole at most kMaxZoneText characters.
std::optional<std::string> normalise_zone(std::string_view zone);

}  // namespace fabdns
