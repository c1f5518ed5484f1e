// The GlobalService model (CRD dns.fabedge.io/v1alpha1, FabDNS fields) and its decoding from
// JSON (hub API, Kubernetes API) and YAML manifests (file source). The only definition of the
// model in the project: every source produces these values.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "common/net.hpp"

namespace fabdns {

// The apiVersion and kind every accepted object carries (or omits, see decode_globalservice).
inline constexpr std::string_view kGlobalServiceApiVersion = "dns.fabedge.io/v1alpha1";
inline constexpr std::string_view kGlobalServiceKind = "GlobalService";

enum class ServiceType { ClusterIP, Headless };
const char *to_string(ServiceType type);

struct ServicePort {
    std::string name;
    std::string protocol = "TCP";
    uint16_t port = 0;
    std::string app_protocol;

    bool operator==(const ServicePort &) const = default;
};

struct ObjectReference {
    std::string kind, name, ns, uid;

    bool operator==(const ObjectReference &) const = default;
};

struct Endpoint {
    std::vector<IpAddr> addresses;
    std::optional<std::string> hostname;  // a DNS label; set for pods of Headless services
    std::string cluster, zone, region;
    std::optional<ObjectReference> target_ref;

    bool operator==(const Endpoint &) const = default;
};

struct GlobalService {
    std::string name, ns, resource_version;
    ServiceType type = ServiceType::ClusterIP;
    std::vector<ServicePort> ports;
    std::vector<Endpoint> endpoints;

    std::string key() const { return ns + "/" + name; }
    bool operator==(const GlobalService &) const = default;
};

// Why an object was not accepted, naming it ("default/nginx: endpoints[1].addresses[0]:
// '10.0.0.300' is not an IP address").
struct Rejection {
    std::string object;  // "namespace/name", or "document N" / "items[N]" when unnamed
    std::string reason;  // starts with the field path ("spec.endpoints[1].addresses[0]: ...")
};

struct DecodeResult {
    std::vector<GlobalService> services;
    std::vector<Rejection> rejected;
};

// True when `s` is an RFC 1123 DNS label as Kubernetes spells it: 1..63 characters of
// [a-z0-9-], starting and ending with [a-z0-9]. Upper case is not a label here: Kubernetes
// names are lower case, and a name with upper case could never match a (lowercased) query.
bool is_dns_label(std::string_view s);

// Decodes one GlobalService object (apiVersion dns.fabedge.io/v1alpha1, kind GlobalService).
// Returns nullopt and fills `why` when the object is invalid: wrong apiVersion/kind, missing
// metadata.name/namespace, unknown spec.type, a bad IP address, a hostname that is not a DNS
// label, a name or namespace that is not a DNS label, an endpoint without a cluster or without
// addresses, a port outside 1..65535.
//
// apiVersion and kind may be absent (items of a Kubernetes list and of the hub's array do not
// carry them); when present they must be exactly the values above. A missing spec.type means
// ClusterIP. Ports are numbers or numeric strings. An empty hostname counts as no hostname.
// Unknown fields are ignored.
std::optional<GlobalService> decode_globalservice(const nlohmann::json &obj, std::string &why);

// Decodes a JSON array of GlobalService objects (the hub's /api/global-services) or a
// Kubernetes list ({"items": [...]}) : valid entries are kept, invalid ones are reported.
DecodeResult decode_globalservice_list(const nlohmann::json &doc);

// Parses YAML text holding one or more documents ("---"), each a GlobalService or a List of
// them; documents of other kinds are skipped silently (a manifest directory may hold other
// objects). Throws std::runtime_error with line information when the YAML itself is invalid.
//
// As kubectl does, a manifest without metadata.namespace is placed in "default". Plain scalars
// are typed by the YAML 1.2 core schema (`port: 80` is a number, `zone: "1"` and `zone: no` are
// strings), then the objects go through decode_globalservice like JSON does.
DecodeResult parse_manifests(const std::string &yaml_text);

}  // namespace fabdns
