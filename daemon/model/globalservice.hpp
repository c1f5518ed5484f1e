// The GlobalService model (CRD dns.fabedge.io/v1alpha1, FabDNS fields) and the decoder of one
// object, whether it came as JSON (hub API, Kubernetes API, files) or YAML (files). The only
// definition of the model in the project: every source produces these values.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "common/net.hpp"
#include "model/label.hpp"
#include "model/tree.hpp"

namespace fabdns {

// The apiVersion and kind every accepted object carries (or omits, see decode_globalservice).
inline constexpr std::string_view kGlobalServiceApiVersion = "dns.fabedge.io/v1alpha1";
inline constexpr std::string_view kGlobalServiceKind = "GlobalService";

enum class ServiceType : uint8_t { ClusterIP, Headless };
const char *to_string(ServiceType type);

// The model is what every source holds for every service (100,000 x 3 endpoints on an edge node
// in 256 MiB), so it is kept small: strings that repeat across services (port names and
// protocols, clusters, zones, regions, pod hostnames) are interned Labels of 8 bytes; the sizes
// are asserted below.
struct ServicePort {
    Label name;
    Label protocol = "TCP";
    uint16_t port = 0;
    Label app_protocol;

    bool operator==(const ServicePort &) const = default;
};

struct Endpoint {
    std::vector<IpAddr> addresses;
    // A DNS label, never empty when present: "" is no hostname. Set for pods of Headless
    // services; StatefulSets repeat the same names ("web-0") across services, hence a Label.
    Label hostname;
    // targetRef is checked for its shape but not kept: nothing answers from it, and it would
    // take 136 bytes per endpoint.
    Label cluster, zone, region;

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

static_assert(sizeof(ServicePort) == 32);
static_assert(sizeof(Endpoint) == 56);

// One service as a set holds it: immutable and shared, so the next set re-uses every service
// that did not change (a pointer copy, not ~800 bytes), and the engine tells an unchanged
// service by its pointer without comparing its content.
using ServicePtr = std::shared_ptr<const GlobalService>;
// The services of one set, sorted by namespace/name (key_less) with one per namespace/name, as
// every source delivers them.
using ServiceList = std::vector<ServicePtr>;
// One complete set of services, shared (never copied) by the source that holds it and the
// engine that answers from it.
using ServiceSet = std::shared_ptr<const ServiceList>;

// Orders services by namespace/name (the order of a ServiceList).
bool key_less(const GlobalService &a, const GlobalService &b);
// A set of the given services (any order; of equal namespace/name the last one wins).
ServiceSet make_service_set(std::vector<GlobalService> services);
// Copies of the services of a set, in its order (for callers that keep values).
std::vector<GlobalService> copy_services(const ServiceList &services);

// Why an object was not accepted, naming it ("default/nginx: endpoints[1].addresses[0]:
// '10.0.0.300' is not an IP address").
struct Rejection {
    std::string object;  // "namespace/name", or "document N" / "items[N]" when unnamed
    std::string reason;  // starts with the field path ("spec.endpoints[1].addresses[0]: ...")
    // "namespace/name" when the object names itself validly, so that a source can keep the last
    // good version of that service (SPEC §5); "" when it cannot be told which service it was.
    std::string key;
};

struct DecodeResult {
    std::vector<GlobalService> services;  // in document order; duplicates are left to the source
    // A decode through a SpanCache (model/document.hpp) delivers its services here instead, in
    // document order, shared with the cache: an object whose bytes were in the last document is
    // the same pointer as then. `services` is empty then.
    std::vector<ServicePtr> shared;
    // Every named rejection, and the first kMaxUnnamedRejections unnamed ones: a hostile document
    // of a million numbers must not become a million reasons in memory.
    std::vector<Rejection> rejected;
    size_t unlisted_rejections = 0;  // unnamed rejections beyond that cap, only counted
    size_t skipped = 0;              // objects of other kinds (a manifest directory may hold any)
    size_t listed_unnamed = 0;       // unnamed rejections in `rejected`

    static constexpr size_t kMaxUnnamedRejections = 100;
    size_t rejected_count() const { return rejected.size() + unlisted_rejections; }
    // Records a rejection, within the cap above.
    void reject(Rejection r);
};

// How an error message names a JSON value's type: "a mapping", "a list", "a string", "a number",
// "a boolean" or "null".
const char *json_type_name(const nlohmann::json &v);

// Decodes one GlobalService object (apiVersion dns.fabedge.io/v1alpha1, kind GlobalService).
// Returns nullopt and fills `why` when the object is invalid: wrong apiVersion/kind, missing
// metadata.name, no spec, unknown spec.type, a bad IP address, a hostname that is not a DNS
// label, a name or namespace that is not a DNS label, an endpoint without a cluster or without
// addresses, a port outside 1..65535, any field of the wrong type.
//
// The same rules hold whatever carried the object (a YAML or JSON manifest, the hub's array, a
// Kubernetes list or watch event):
// - apiVersion and kind may be absent (items of a Kubernetes list and of the hub's array do not
//   carry them); when present they must be exactly the values above;
// - as kubectl does, a missing or empty metadata.namespace means "default";
// - spec must be present (a mapping, possibly empty); a missing spec.type means ClusterIP;
// - ports are numbers or numeric strings; an empty hostname counts as no hostname;
// - unknown fields are ignored.
std::optional<GlobalService> decode_globalservice(const nlohmann::json &obj, std::string &why);

// Decodes one element of any container into `out`: an object whose kind is another string
// (a ConfigMap next to the manifests, say) is counted as skipped; anything else is either a
// GlobalService or a rejection named by the object or, when unnamed, by `locator`.
void decode_element(const nlohmann::json &obj, const std::string &locator, DecodeResult &out);
// The same, for an object as the document decoders build it.
void decode_element(const tree::Ref &obj, const std::string &locator, DecodeResult &out);

// The services as a JSON array of GlobalService objects, in the hub's format; decoding it gives
// the same services back.
std::string encode_globalservices(const std::vector<GlobalService> &services);

// True when obj is a List of objects: it has an "items" member or its kind ends in "List".
bool is_list_object(const nlohmann::json &obj);
bool is_list_object(const tree::Ref &obj);

}  // namespace fabdns
