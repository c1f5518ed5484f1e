// The GlobalService model (CRD dns.fabedge.io/v1alpha1, FabDNS fields) and its decoding from
// JSON (hub API, Kubernetes API) and YAML manifests (file source). The only definition of the
// model in the project: every source produces these values.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "common/net.hpp"

namespace fabdns {

enum class ServiceType { ClusterIP, Headless };

struct ServicePort {
    std::string name;
    std::string protocol = "TCP";
    uint16_t port = 0;
    std::string app_protocol;
};

struct ObjectReference {
    std::string kind, name, ns, uid;
};

struct Endpoint {
    std::vector<IpAddr> addresses;
    std::optional<std::string> hostname;  // a DNS label; set for pods of Headless services
    std::string cluster, zone, region;
    std::optional<ObjectReference> target_ref;
};

struct GlobalService {
    std::string name, ns, resource_version;
    ServiceType type = ServiceType::ClusterIP;
    std::vector<ServicePort> ports;
    std::vector<Endpoint> endpoints;

    std::string key() const { return ns + "/" + name; }
};

// Why an object was not accepted, naming it ("default/nginx: endpoints[1].addresses[0]:
// '10.0.0.300' is not an IP address").
struct Rejection {
    std::string object;  // "namespace/name", or "document N" when unnamed
    std::string reason;
};

struct DecodeResult {
    std::vector<GlobalService> services;
    std::vector<Rejection> rejected;
};

// Decodes one GlobalService object (apiVersion dns.fabedge.io/v1alpha1, kind GlobalService).
// Returns nullopt and fills `why` when the object is invalid: wrong apiVersion/kind, missing
// metadata.name/namespace, unknown spec.type, a bad IP address, a hostname that is not a DNS
// label, a name or namespace that is not a DNS label.
std::optional<GlobalService> decode_globalservice(const nlohmann::json &obj, std::string &why);

// Decodes a JSON array of GlobalService objects (the hub's /api/global-services) or a
// Kubernetes list ({"items": [...]}) : valid entries are kept, invalid ones are reported.
DecodeResult decode_globalservice_list(const nlohmann::json &doc);

// Parses YAML text holding one or more documents ("---"), each a GlobalService or a List of
// them; documents of other kinds are skipped silently (a manifest directory may hold other
// objects). Throws std::runtime_error with line information when the YAML itself is invalid.
DecodeResult parse_manifests(const std::string &yaml_text);

}  // namespace fabdns
