// Decoding of GlobalService objects: one validating decoder, fed one object at a time by the
// streaming JSON and YAML document decoders (document.cpp) as a tree::Ref, or given a
// nlohmann::json (tests, tools) through the same interface.
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

namespace {

// nlohmann::json seen through the interface of tree::Ref, so that one decoder serves both.
class JsonRef {
  public:
    explicit JsonRef(const json &v) : v_(&v) {}

    tree::Type type() const {
        switch (v_->type()) {
            case json::value_t::boolean:
                return tree::Type::Bool;
            case json::value_t::number_integer:
                return tree::Type::Int;
            case json::value_t::number_unsigned:
                return tree::Type::Uint;
            case json::value_t::number_float:
                return tree::Type::Float;
            case json::value_t::string:
                return tree::Type::String;
            case json::value_t::array:
                return tree::Type::Array;
            case json::value_t::object:
                return tree::Type::Object;
            default:
                return tree::Type::Null;
        }
    }
    bool is_null() const { return type() == tree::Type::Null; }
    bool is_object() const { return v_->is_object(); }
    bool is_array() const { return v_->is_array(); }
    bool is_string() const { return v_->is_string(); }
    std::string_view str() const { return v_->get_ref<const std::string &>(); }
    int64_t as_int() const { return v_->get<int64_t>(); }
    uint64_t as_uint() const { return v_->get<uint64_t>(); }
    double as_float() const { return v_->get<double>(); }
    size_t size() const { return v_->is_object() || v_->is_array() ? v_->size() : 0; }
    std::optional<JsonRef> get(std::string_view k) const {
        if (!v_->is_object()) return std::nullopt;
        auto it = v_->find(k);
        if (it == v_->end() || it->is_null()) return std::nullopt;
        return JsonRef(*it);
    }
    template <class F>
    bool each(F &&f) const {
        size_t i = 0;
        for (const json &c : *v_)
            if (!f(i++, JsonRef(c))) return false;
        return true;
    }

  private:
    const json *v_;
};

// Where in an object a value is ("spec.endpoints[1].addresses[0]"), spelled only when a reason
// needs it: a valid object builds no path strings.
struct Path {
    const Path *up = nullptr;
    const char *key = nullptr;  // a member of up; nullptr: element `index` of up
    size_t index = 0;
    bool root = true;

    Path operator/(const char *k) const { return {this, k, 0, false}; }
    Path operator[](size_t i) const { return {this, nullptr, i, false}; }
    std::string str() const {
        if (root) return "";
        std::string s = up->str();
        if (key) return s.empty() ? std::string(key) : s + "." + key;
        return s + "[" + std::to_string(index) + "]";
    }
};

// The decoder stops at the first problem; `why` gets "<path>: <problem>".
struct Ctx {
    std::string &why;
    bool fail(const Path &path, const std::string &problem) {
        why = path.str() + ": " + problem;
        return false;
    }
    template <class V>
    bool wrong_type(const Path &path, const char *expected, const V &v) {
        return fail(path,
                    std::string("expected ") + expected + ", got " + tree::type_name(v.type()));
    }
};

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

// Reads an optional string member (absent or null: absent, see Ref::get); false (with why) when
// present but not a string.
template <class V>
bool opt_string(Ctx &ctx, const V &obj, const Path &path, const char *key, std::string &out) {
    auto v = obj.get(key);
    if (!v) return true;
    if (!v->is_string()) return ctx.wrong_type(path / key, "a string", *v);
    out.assign(v->str());
    return true;
}

// The same into a Label: interned straight from the input's text.
template <class V>
bool opt_string(Ctx &ctx, const V &obj, const Path &path, const char *key, Label &out) {
    auto v = obj.get(key);
    if (!v) return true;
    if (!v->is_string()) return ctx.wrong_type(path / key, "a string", *v);
    out = Label(v->str());
    return true;
}

template <class V, class S>
bool req_string(Ctx &ctx, const V &obj, const Path &path, const char *key, S &out) {
    if (!opt_string(ctx, obj, path, key, out)) return false;
    if (out.empty()) return ctx.fail(path / key, "missing");
    return true;
}

bool dns_label_field(Ctx &ctx, const Path &path, const std::string &value) {
    if (is_dns_label(value)) return true;
    return ctx.fail(path, quote_value(value) +
                              " is not a DNS label (lower case a-z, 0-9 and '-', at most 63 "
                              "characters, starting and ending with a letter or digit)");
}

template <class V>
bool decode_port(Ctx &ctx, const V &v, const Path &path, ServicePort &out) {
    if (!v.is_object()) return ctx.wrong_type(path, "a mapping", v);
    if (!opt_string(ctx, v, path, "name", out.name)) return false;
    if (!opt_string(ctx, v, path, "protocol", out.protocol)) return false;
    if (out.protocol.empty()) out.protocol = "TCP";
    if (out.protocol != "TCP" && out.protocol != "UDP" && out.protocol != "SCTP")
        return ctx.fail(path / "protocol",
                        quote_value(out.protocol) + " is not one of TCP, UDP, SCTP");
    if (!opt_string(ctx, v, path, "appProtocol", out.app_protocol)) return false;

    auto p = v.get("port");
    Path ppath = path / "port";
    if (!p) return ctx.fail(ppath, "missing");
    int64_t n = -1;
    switch (p->type()) {
        case tree::Type::Uint:
            n = static_cast<int64_t>(
                std::min<uint64_t>(p->as_uint(), std::numeric_limits<int64_t>::max()));
            break;
        case tree::Type::Int:
            n = p->as_int();
            break;
        case tree::Type::Float: {
            double d = p->as_float();
            if (std::isfinite(d) && d == std::floor(d) && d >= 0 && d <= 65535)
                n = static_cast<int64_t>(d);
            else
                return ctx.fail(ppath, "not a port number (1..65535)");
            break;
        }
        case tree::Type::String: {
            // Some producers quote numbers; a numeric string is the same port.
            std::string_view s = p->str();
            auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
            if (ec != std::errc() || end != s.data() + s.size() || s.empty())
                return ctx.fail(ppath, quote_value(s) + " is not a port number (1..65535)");
            break;
        }
        default:
            return ctx.wrong_type(ppath, "a number", *p);
    }
    if (n < 1 || n > 65535)
        return ctx.fail(ppath, std::to_string(n) + " is not a port number (1..65535)");
    out.port = static_cast<uint16_t>(n);
    return true;
}

template <class V>
bool check_target_ref(Ctx &ctx, const V &v, const Path &path) {
    if (!v.is_object()) return ctx.wrong_type(path, "a mapping", v);
    std::string ignored;
    for (const char *key : {"kind", "name", "namespace", "uid"})
        if (!opt_string(ctx, v, path, key, ignored)) return false;
    return true;
}

template <class V>
bool decode_endpoint(Ctx &ctx, const V &v, const Path &path, Endpoint &out) {
    if (!v.is_object()) return ctx.wrong_type(path, "a mapping", v);

    auto addrs = v.get("addresses");
    Path apath = path / "addresses";
    if (!addrs) return ctx.fail(apath, "missing (an endpoint needs at least one address)");
    if (!addrs->is_array()) return ctx.wrong_type(apath, "a list", *addrs);
    if (addrs->size() == 0)
        return ctx.fail(apath, "empty (an endpoint needs at least one address)");
    out.addresses.reserve(addrs->size());
    bool ok = addrs->each([&](size_t i, const V &a) {
        if (!a.is_string()) return ctx.wrong_type(apath[i], "a string", a);
        std::string_view text = a.str();
        auto ip = IpAddr::parse(text);
        if (!ip) return ctx.fail(apath[i], quote_value(text) + " is not an IP address");
        if (ip->is_unspecified())
            return ctx.fail(apath[i], quote_value(text) + " is the unspecified address");
        out.addresses.push_back(*ip);
        return true;
    });
    if (!ok) return false;

    if (!opt_string(ctx, v, path, "hostname", out.hostname)) return false;
    if (!out.hostname.empty() && !dns_label_field(ctx, path / "hostname", out.hostname))
        return false;

    // The cluster is part of DNS names (<cluster>.<svc>.<ns>.svc.Z), so it must be a label too.
    if (!req_string(ctx, v, path, "cluster", out.cluster)) return false;
    if (!dns_label_field(ctx, path / "cluster", out.cluster)) return false;

    // Topology labels are compared, never put in names: any string will do.
    if (!opt_string(ctx, v, path, "zone", out.zone)) return false;
    if (!opt_string(ctx, v, path, "region", out.region)) return false;

    if (auto ref = v.get("targetRef"))
        if (!check_target_ref(ctx, *ref, path / "targetRef")) return false;
    return true;
}

template <class V>
bool decode_spec(Ctx &ctx, const V &spec, const Path &path, GlobalService &out) {
    if (!spec.is_object()) return ctx.wrong_type(path, "a mapping", spec);

    std::string type;
    if (!opt_string(ctx, spec, path, "type", type)) return false;
    if (type.empty() || type == "ClusterIP")
        out.type = ServiceType::ClusterIP;
    else if (type == "Headless")
        out.type = ServiceType::Headless;
    else
        return ctx.fail(path / "type", quote_value(type) + " is not ClusterIP or Headless");

    if (auto ports = spec.get("ports")) {
        Path ppath = path / "ports";
        if (!ports->is_array()) return ctx.wrong_type(ppath, "a list", *ports);
        out.ports.reserve(ports->size());
        bool ok = ports->each([&](size_t i, const V &pv) {
            ServicePort p;
            if (!decode_port(ctx, pv, ppath[i], p)) return false;
            out.ports.push_back(std::move(p));
            return true;
        });
        if (!ok) return false;
    }

    if (auto eps = spec.get("endpoints")) {
        Path epath = path / "endpoints";
        if (!eps->is_array()) return ctx.wrong_type(epath, "a list", *eps);
        out.endpoints.reserve(eps->size());
        return eps->each([&](size_t i, const V &ev) {
            Endpoint e;
            if (!decode_endpoint(ctx, ev, epath[i], e)) return false;
            out.endpoints.push_back(std::move(e));
            return true;
        });
    }
    return true;
}

// metadata.namespace as decoded: kubectl's "default" when absent, null or empty.
template <class V>
std::optional<V> namespace_member(const V &md) {
    auto ns = md.get("namespace");
    if (ns && ns->is_string() && ns->str().empty()) return std::nullopt;
    return ns;
}

// "namespace/name" when the object names itself with strings, else "".
template <class V>
std::string named_key(const V &obj) {
    auto md = obj.get("metadata");
    if (!md || !md->is_object()) return "";
    auto name = md->get("name");
    if (!name || !name->is_string() || name->str().empty()) return "";
    auto ns = namespace_member(*md);
    if (ns && !ns->is_string()) return "";
    std::string key(ns ? ns->str() : std::string_view("default"));
    key += '/';
    key += name->str();
    return key;
}

bool is_list_kind(std::string_view kind) {
    return kind == "List" || (kind.size() > 4 && kind.substr(kind.size() - 4) == "List");
}

template <class V>
bool list_object(const V &v) {
    if (!v.is_object()) return false;
    if (v.get("items")) return true;
    auto k = v.get("kind");
    return k && k->is_string() && is_list_kind(k->str());
}

template <class V>
std::optional<GlobalService> decode_object(const V &obj, std::string &why) {
    Ctx ctx{why};
    const Path root;
    if (!obj.is_object()) {
        ctx.wrong_type(root / "object", "a mapping", obj);
        return std::nullopt;
    }
    std::string api_version, kind;
    if (!opt_string(ctx, obj, root, "apiVersion", api_version)) return std::nullopt;
    if (!api_version.empty() && api_version != kGlobalServiceApiVersion) {
        ctx.fail(root / "apiVersion",
                 quote_value(api_version) + " is not " + std::string(kGlobalServiceApiVersion));
        return std::nullopt;
    }
    if (!opt_string(ctx, obj, root, "kind", kind)) return std::nullopt;
    if (!kind.empty() && kind != kGlobalServiceKind) {
        ctx.fail(root / "kind", quote_value(kind) + " is not " + std::string(kGlobalServiceKind));
        return std::nullopt;
    }

    GlobalService svc;
    auto md = obj.get("metadata");
    Path mpath = root / "metadata";
    if (!md) {
        ctx.fail(mpath, "missing");
        return std::nullopt;
    }
    if (!md->is_object()) {
        ctx.wrong_type(mpath, "a mapping", *md);
        return std::nullopt;
    }
    if (!req_string(ctx, *md, mpath, "name", svc.name) ||
        !dns_label_field(ctx, mpath / "name", svc.name))
        return std::nullopt;
    if (auto ns = namespace_member(*md)) {
        if (!ns->is_string()) {
            ctx.wrong_type(mpath / "namespace", "a string", *ns);
            return std::nullopt;
        }
        svc.ns.assign(ns->str());
    } else {
        svc.ns = "default";
    }
    if (!dns_label_field(ctx, mpath / "namespace", svc.ns) ||
        !opt_string(ctx, *md, mpath, "resourceVersion", svc.resource_version))
        return std::nullopt;

    auto spec = obj.get("spec");
    if (!spec) {
        ctx.fail(root / "spec", "missing");
        return std::nullopt;
    }
    if (!decode_spec(ctx, *spec, root / "spec", svc)) return std::nullopt;
    return svc;
}

template <class V>
void decode_any_element(const V &obj, const std::string &locator, DecodeResult &out) {
    if (auto k = obj.get("kind"); k && k->is_string() && k->str() != kGlobalServiceKind) {
        out.skipped++;
        return;
    }
    std::string why;
    if (auto svc = decode_object(obj, why)) {
        out.services.push_back(std::move(*svc));
        return;
    }
    std::string key = named_key(obj);
    out.reject({key.empty() ? locator : key, std::move(why), key});
}

}  // namespace

void DecodeResult::reject(Rejection r) {
    if (r.key.empty() && listed_unnamed++ >= kMaxUnnamedRejections) {
        unlisted_rejections++;
        return;
    }
    rejected.push_back(std::move(r));
}

const char *json_type_name(const json &v) {
    return tree::type_name(JsonRef(v).type());
}

bool is_list_object(const json &obj) {
    return list_object(JsonRef(obj));
}

bool is_list_object(const tree::Ref &obj) {
    return list_object(obj);
}

std::optional<GlobalService> decode_globalservice(const json &obj, std::string &why) {
    return decode_object(JsonRef(obj), why);
}

void decode_element(const json &obj, const std::string &locator, DecodeResult &out) {
    decode_any_element(JsonRef(obj), locator, out);
}

void decode_element(const tree::Ref &obj, const std::string &locator, DecodeResult &out) {
    decode_any_element(obj, locator, out);
}

std::string encode_globalservices(const std::vector<GlobalService> &services) {
    std::string out = "[";
    for (const GlobalService &s : services) {
        json ports = json::array();
        for (const ServicePort &p : s.ports) {
            json port = {{"protocol", p.protocol.str()}, {"port", p.port}};
            if (!p.name.empty()) port["name"] = p.name.str();
            if (!p.app_protocol.empty()) port["appProtocol"] = p.app_protocol.str();
            ports.push_back(std::move(port));
        }
        json endpoints = json::array();
        for (const Endpoint &e : s.endpoints) {
            json addrs = json::array();
            for (const IpAddr &a : e.addresses) addrs.push_back(a.to_string());
            json ep = {{"addresses", std::move(addrs)}, {"cluster", e.cluster.str()}};
            if (!e.hostname.empty()) ep["hostname"] = e.hostname;
            if (!e.zone.empty()) ep["zone"] = e.zone.str();
            if (!e.region.empty()) ep["region"] = e.region.str();
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
