// Decoding of GlobalService objects: one validating decoder over nlohmann::json, fed one object at
// a time by the streaming JSON and YAML document decoders (document.cpp).
#include "model/globalservice.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <tuple>

#include "common/dns_name.hpp"

namespace fabdns {

using nlohmann::json;

const char *to_string(ServiceType type) {
    switch (type) {
        case ServiceType::ClusterIP:
            return "ClusterIP";
        case ServiceType::Headless:
            return "Headless";
    }
    return "?";
}

const char *json_type_name(const json &v) {
    switch (v.type()) {
        case json::value_t::null:
            return "null";
        case json::value_t::object:
            return "a mapping";
        case json::value_t::array:
            return "a list";
        case json::value_t::string:
            return "a string";
        case json::value_t::boolean:
            return "a boolean";
        case json::value_t::number_integer:
        case json::value_t::number_unsigned:
        case json::value_t::number_float:
            return "a number";
        default:
            return "an unsupported value";
    }
}

namespace {

// The decoder stops at the first problem; `why` gets "<path>: <problem>".
struct Ctx {
    std::string &why;
    bool fail(const std::string &path, const std::string &problem) {
        why = path + ": " + problem;
        return false;
    }
};

// A member that is absent or null counts as absent (Go's omitempty and YAML's `key:` both
// produce that).
const json *member(const json &obj, const char *key) {
    auto it = obj.find(key);
    if (it == obj.end() || it->is_null()) return nullptr;
    return &*it;
}

// A value from the input, quoted for a reason line: bounded in length and printable, since
// reasons end up in logs and status output.
std::string quote_value(std::string_view value) {
    constexpr size_t kMax = 64;
    std::string out = "'";
    for (size_t i = 0; i < value.size() && i < kMax; i++) {
        unsigned char c = static_cast<unsigned char>(value[i]);
        out += (c >= 0x20 && c < 0x7f) ? static_cast<char>(c) : '?';
    }
    if (value.size() > kMax) out += "...";
    return out + "'";
}

std::string join(const std::string &path, const char *key) {
    return path.empty() ? std::string(key) : path + "." + key;
}

std::string index_path(const std::string &path, size_t i) {
    return path + "[" + std::to_string(i) + "]";
}

// Reads an optional string member; false (with why) when present but not a string.
bool opt_string(Ctx &ctx, const json &obj, const std::string &path, const char *key,
                std::string &out) {
    const json *v = member(obj, key);
    if (!v) return true;
    if (!v->is_string())
        return ctx.fail(join(path, key),
                        std::string("expected a string, got ") + json_type_name(*v));
    out = v->get<std::string>();
    return true;
}

bool req_string(Ctx &ctx, const json &obj, const std::string &path, const char *key,
                std::string &out) {
    if (!opt_string(ctx, obj, path, key, out)) return false;
    if (out.empty()) return ctx.fail(join(path, key), "missing");
    return true;
}

bool dns_label_field(Ctx &ctx, const std::string &path, const std::string &value) {
    if (is_dns_label(value)) return true;
    return ctx.fail(path, quote_value(value) +
                              " is not a DNS label (lower case a-z, 0-9 and '-', at most 63 "
                              "characters, starting and ending with a letter or digit)");
}

bool decode_port(Ctx &ctx, const json &v, const std::string &path, ServicePort &out) {
    if (!v.is_object())
        return ctx.fail(path, std::string("expected a mapping, got ") + json_type_name(v));
    if (!opt_string(ctx, v, path, "name", out.name)) return false;
    if (!opt_string(ctx, v, path, "protocol", out.protocol)) return false;
    if (out.protocol.empty()) out.protocol = "TCP";
    if (out.protocol != "TCP" && out.protocol != "UDP" && out.protocol != "SCTP")
        return ctx.fail(join(path, "protocol"),
                        quote_value(out.protocol) + " is not one of TCP, UDP, SCTP");
    if (!opt_string(ctx, v, path, "appProtocol", out.app_protocol)) return false;

    const json *p = member(v, "port");
    std::string ppath = join(path, "port");
    if (!p) return ctx.fail(ppath, "missing");
    int64_t n = -1;
    if (p->is_number_integer() || p->is_number_unsigned()) {
        n = p->is_number_unsigned() ? static_cast<int64_t>(std::min<uint64_t>(
                                          p->get<uint64_t>(), std::numeric_limits<int64_t>::max()))
                                    : p->get<int64_t>();
    } else if (p->is_number_float()) {
        double d = p->get<double>();
        if (std::isfinite(d) && d == std::floor(d) && d >= 0 && d <= 65535)
            n = static_cast<int64_t>(d);
        else
            return ctx.fail(ppath, "not a port number (1..65535)");
    } else if (p->is_string()) {
        // Some producers quote numbers; a numeric string is the same port.
        const std::string &s = p->get_ref<const std::string &>();
        auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
        if (ec != std::errc() || end != s.data() + s.size() || s.empty())
            return ctx.fail(ppath, quote_value(s) + " is not a port number (1..65535)");
    } else {
        return ctx.fail(ppath, std::string("expected a number, got ") + json_type_name(*p));
    }
    if (n < 1 || n > 65535)
        return ctx.fail(ppath, std::to_string(n) + " is not a port number (1..65535)");
    out.port = static_cast<uint16_t>(n);
    return true;
}

bool check_target_ref(Ctx &ctx, const json &v, const std::string &path) {
    if (!v.is_object())
        return ctx.fail(path, std::string("expected a mapping, got ") + json_type_name(v));
    std::string ignored;
    for (const char *key : {"kind", "name", "namespace", "uid"})
        if (!opt_string(ctx, v, path, key, ignored)) return false;
    return true;
}

bool decode_endpoint(Ctx &ctx, const json &v, const std::string &path, Endpoint &out) {
    if (!v.is_object())
        return ctx.fail(path, std::string("expected a mapping, got ") + json_type_name(v));

    const json *addrs = member(v, "addresses");
    std::string apath = join(path, "addresses");
    if (!addrs) return ctx.fail(apath, "missing (an endpoint needs at least one address)");
    if (!addrs->is_array())
        return ctx.fail(apath, std::string("expected a list, got ") + json_type_name(*addrs));
    if (addrs->empty()) return ctx.fail(apath, "empty (an endpoint needs at least one address)");
    for (size_t i = 0; i < addrs->size(); i++) {
        const json &a = (*addrs)[i];
        std::string ipath = index_path(apath, i);
        if (!a.is_string())
            return ctx.fail(ipath, std::string("expected a string, got ") + json_type_name(a));
        const std::string &text = a.get_ref<const std::string &>();
        auto ip = IpAddr::parse(text);
        if (!ip) return ctx.fail(ipath, quote_value(text) + " is not an IP address");
        if (ip->is_unspecified())
            return ctx.fail(ipath, quote_value(text) + " is the unspecified address");
        out.addresses.push_back(*ip);
    }

    std::string hostname;
    if (!opt_string(ctx, v, path, "hostname", hostname)) return false;
    if (!hostname.empty()) {
        if (!dns_label_field(ctx, join(path, "hostname"), hostname)) return false;
        out.hostname = std::move(hostname);
    }

    // The cluster is part of DNS names (<cluster>.<svc>.<ns>.svc.Z), so it must be a label too.
    if (!req_string(ctx, v, path, "cluster", out.cluster)) return false;
    if (!dns_label_field(ctx, join(path, "cluster"), out.cluster)) return false;

    // Topology labels are compared, never put in names: any string will do.
    if (!opt_string(ctx, v, path, "zone", out.zone)) return false;
    if (!opt_string(ctx, v, path, "region", out.region)) return false;

    if (const json *ref = member(v, "targetRef"))
        if (!check_target_ref(ctx, *ref, join(path, "targetRef"))) return false;
    return true;
}

bool decode_spec(Ctx &ctx, const json &spec, GlobalService &out) {
    if (!spec.is_object())
        return ctx.fail("spec", std::string("expected a mapping, got ") + json_type_name(spec));

    std::string type;
    if (!opt_string(ctx, spec, "spec", "type", type)) return false;
    if (type.empty() || type == "ClusterIP")
        out.type = ServiceType::ClusterIP;
    else if (type == "Headless")
        out.type = ServiceType::Headless;
    else
        return ctx.fail("spec.type", quote_value(type) + " is not ClusterIP or Headless");

    if (const json *ports = member(spec, "ports")) {
        if (!ports->is_array())
            return ctx.fail("spec.ports",
                            std::string("expected a list, got ") + json_type_name(*ports));
        for (size_t i = 0; i < ports->size(); i++) {
            ServicePort p;
            if (!decode_port(ctx, (*ports)[i], index_path("spec.ports", i), p)) return false;
            out.ports.push_back(std::move(p));
        }
    }

    if (const json *eps = member(spec, "endpoints")) {
        if (!eps->is_array())
            return ctx.fail("spec.endpoints",
                            std::string("expected a list, got ") + json_type_name(*eps));
        out.endpoints.reserve(eps->size());
        for (size_t i = 0; i < eps->size(); i++) {
            Endpoint e;
            if (!decode_endpoint(ctx, (*eps)[i], index_path("spec.endpoints", i), e)) return false;
            out.endpoints.push_back(std::move(e));
        }
    }
    return true;
}

// metadata.namespace as decoded: kubectl's "default" when absent, null or empty.
const json *namespace_member(const json &md) {
    const json *ns = member(md, "namespace");
    if (ns && ns->is_string() && ns->get_ref<const std::string &>().empty()) return nullptr;
    return ns;
}

// "namespace/name" when the object names itself with strings, else "".
std::string named_key(const json &obj) {
    if (!obj.is_object()) return "";
    const json *md = member(obj, "metadata");
    if (!md || !md->is_object()) return "";
    const json *name = member(*md, "name");
    if (!name || !name->is_string() || name->get_ref<const std::string &>().empty()) return "";
    const json *ns = namespace_member(*md);
    if (ns && !ns->is_string()) return "";
    return (ns ? ns->get<std::string>() : std::string("default")) + "/" + name->get<std::string>();
}

bool is_list_kind(const std::string &kind) {
    return kind == "List" || (kind.size() > 4 && kind.compare(kind.size() - 4, 4, "List") == 0);
}

std::string kind_of(const json &obj) {
    const json *k = member(obj, "kind");
    return k && k->is_string() ? k->get<std::string>() : "";
}

}  // namespace

void DecodeResult::reject(Rejection r) {
    if (r.key.empty() && listed_unnamed++ >= kMaxUnnamedRejections) {
        unlisted_rejections++;
        return;
    }
    rejected.push_back(std::move(r));
}

bool is_list_object(const json &obj) {
    return obj.is_object() && (member(obj, "items") || is_list_kind(kind_of(obj)));
}

std::optional<GlobalService> decode_globalservice(const json &obj, std::string &why) {
    Ctx ctx{why};
    if (!obj.is_object()) {
        ctx.fail("object", std::string("expected a mapping, got ") + json_type_name(obj));
        return std::nullopt;
    }
    std::string api_version, kind;
    if (!opt_string(ctx, obj, "", "apiVersion", api_version)) return std::nullopt;
    if (!api_version.empty() && api_version != kGlobalServiceApiVersion) {
        ctx.fail("apiVersion",
                 quote_value(api_version) + " is not " + std::string(kGlobalServiceApiVersion));
        return std::nullopt;
    }
    if (!opt_string(ctx, obj, "", "kind", kind)) return std::nullopt;
    if (!kind.empty() && kind != kGlobalServiceKind) {
        ctx.fail("kind", quote_value(kind) + " is not " + std::string(kGlobalServiceKind));
        return std::nullopt;
    }

    GlobalService svc;
    const json *md = member(obj, "metadata");
    if (!md) {
        ctx.fail("metadata", "missing");
        return std::nullopt;
    }
    if (!md->is_object()) {
        ctx.fail("metadata", std::string("expected a mapping, got ") + json_type_name(*md));
        return std::nullopt;
    }
    if (!req_string(ctx, *md, "metadata", "name", svc.name) ||
        !dns_label_field(ctx, "metadata.name", svc.name))
        return std::nullopt;
    if (const json *ns = namespace_member(*md)) {
        if (!ns->is_string()) {
            ctx.fail("metadata.namespace",
                     std::string("expected a string, got ") + json_type_name(*ns));
            return std::nullopt;
        }
        svc.ns = ns->get<std::string>();
    } else {
        svc.ns = "default";
    }
    if (!dns_label_field(ctx, "metadata.namespace", svc.ns) ||
        !opt_string(ctx, *md, "metadata", "resourceVersion", svc.resource_version))
        return std::nullopt;

    const json *spec = member(obj, "spec");
    if (!spec) {
        ctx.fail("spec", "missing");
        return std::nullopt;
    }
    if (!decode_spec(ctx, *spec, svc)) return std::nullopt;
    return svc;
}

void decode_element(const json &obj, const std::string &locator, DecodeResult &out) {
    if (obj.is_object()) {
        const json *k = member(obj, "kind");
        if (k && k->is_string() && k->get_ref<const std::string &>() != kGlobalServiceKind) {
            out.skipped++;
            return;
        }
    }
    std::string why;
    if (auto svc = decode_globalservice(obj, why)) {
        out.services.push_back(std::move(*svc));
        return;
    }
    std::string key = named_key(obj);
    out.reject({key.empty() ? locator : key, std::move(why), key});
}

std::string encode_globalservices(const std::vector<GlobalService> &services) {
    std::string out = "[";
    for (const GlobalService &s : services) {
        json ports = json::array();
        for (const ServicePort &p : s.ports) {
            json port = {{"protocol", p.protocol}, {"port", p.port}};
            if (!p.name.empty()) port["name"] = p.name;
            if (!p.app_protocol.empty()) port["appProtocol"] = p.app_protocol;
            ports.push_back(std::move(port));
        }
        json endpoints = json::array();
        for (const Endpoint &e : s.endpoints) {
            json addrs = json::array();
            for (const IpAddr &a : e.addresses) addrs.push_back(a.to_string());
            json ep = {{"addresses", std::move(addrs)}, {"cluster", e.cluster}};
            if (e.hostname) ep["hostname"] = *e.hostname;
            if (!e.zone.empty()) ep["zone"] = e.zone;
            if (!e.region.empty()) ep["region"] = e.region;
            endpoints.push_back(std::move(ep));
        }
        json md = {{"name", s.name}, {"namespace", s.ns}};
        if (!s.resource_version.empty()) md["resourceVersion"] = s.resource_version;
        json obj = {{"apiVersion", kGlobalServiceApiVersion},
                    {"kind", kGlobalServiceKind},
                    {"metadata", std::move(md)},
                    {"spec",
                     {{"type", to_string(s.type)},
                      {"ports", std::move(ports)},
                      {"endpoints", std::move(endpoints)}}}};
        if (out.size() > 1) out += ',';
        out += obj.dump();
    }
    return out + "]";
}

bool key_less(const GlobalService &a, const GlobalService &b) {
    return std::tie(a.ns, a.name) < std::tie(b.ns, b.name);
}

ServiceSet make_service_set(std::vector<GlobalService> services) {
    // Stable, so that among equal keys the last given is the last in its run.
    std::stable_sort(services.begin(), services.end(), key_less);
    ServiceList out;
    out.reserve(services.size());
    for (size_t i = 0; i < services.size(); i++)
        if (i + 1 == services.size() || key_less(services[i], services[i + 1]))
            out.push_back(std::make_shared<const GlobalService>(std::move(services[i])));
    return std::make_shared<const ServiceList>(std::move(out));
}

std::vector<GlobalService> copy_services(const ServiceList &services) {
    std::vector<GlobalService> out;
    out.reserve(services.size());
    for (const ServicePtr &s : services) out.push_back(*s);
    return out;
}

}  // namespace fabdns
