// Loading and validating fabdns's YAML config (SPEC §2): every bad key or value becomes one
// ConfigError naming the dotted key, before any component sees the config.
#include "config/config.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "common/dns_name.hpp"

namespace fabdns {

const char *to_string(SourceKind kind) {
    switch (kind) {
        case SourceKind::File:
            return "file";
        case SourceKind::Hub:
            return "hub";
        case SourceKind::Kubernetes:
            return "kubernetes";
    }
    return "?";
}

std::optional<SourceKind> parse_source_kind(std::string_view text) {
    if (text == "file") return SourceKind::File;
    if (text == "hub") return SourceKind::Hub;
    if (text == "kubernetes") return SourceKind::Kubernetes;
    return std::nullopt;
}

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) {
    // Bounded well below int64 milliseconds so that the sum of terms cannot overflow.
    constexpr int64_t kMaxMs = int64_t{1} << 50;
    if (text.empty()) return std::nullopt;
    auto parse_number = [](std::string_view &s) -> std::optional<int64_t> {
        int64_t v = 0;
        auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
        if (ec != std::errc() || p == s.data() || v < 0 || v > kMaxMs) return std::nullopt;
        s.remove_prefix(static_cast<size_t>(p - s.data()));
        return v;
    };
    if (!std::isdigit(static_cast<unsigned char>(text.front()))) return std::nullopt;
    std::string_view rest = text;
    if (std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        auto secs = parse_number(rest);
        if (!secs || *secs > kMaxMs / 1000) return std::nullopt;
        return std::chrono::milliseconds(*secs * 1000);
    }
    int64_t total = 0;
    while (!rest.empty()) {
        if (!std::isdigit(static_cast<unsigned char>(rest.front()))) return std::nullopt;
        auto n = parse_number(rest);
        if (!n) return std::nullopt;
        int64_t unit;
        if (rest.substr(0, 2) == "ms") {
            unit = 1, rest.remove_prefix(2);
        } else if (!rest.empty() && rest.front() == 's') {
            unit = 1000, rest.remove_prefix(1);
        } else if (!rest.empty() && rest.front() == 'm') {
            unit = 60 * 1000, rest.remove_prefix(1);
        } else if (!rest.empty() && rest.front() == 'h') {
            unit = 3600 * 1000, rest.remove_prefix(1);
        } else {
            return std::nullopt;  // missing or unknown unit
        }
        if (*n > (kMaxMs - total) / unit) return std::nullopt;
        total += *n * unit;
    }
    return std::chrono::milliseconds(total);
}

namespace {

[[noreturn]] void fail(const std::string &key, const std::string &problem) {
    throw ConfigError(key, problem);
}

std::string join(const std::string &path, const std::string &key) {
    return path.empty() ? key : path + "." + key;
}

std::string indexed(const std::string &path, size_t i) {
    return path + "[" + std::to_string(i) + "]";
}

const char *shape(const YAML::Node &n) {
    switch (n.Type()) {
        case YAML::NodeType::Map:
            return "a map";
        case YAML::NodeType::Sequence:
            return "a list";
        case YAML::NodeType::Scalar:
            return "a scalar";
        default:
            return "nothing";
    }
}

bool is_integer_text(std::string_view s) {
    if (!s.empty() && (s.front() == '-' || s.front() == '+')) s.remove_prefix(1);
    return !s.empty() &&
           std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// How a rejected value is shown: numbers as they are, anything else quoted.
std::string got(const std::string &value) {
    return "(got " + (is_integer_text(value) ? value : "'" + value + "'") + ")";
}

std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return s;
}

// Everything a section reader needs: the environment for ${VAR} and the directory that
// relative paths are resolved against.
struct Context {
    EnvLookup env;
    std::filesystem::path base_dir;

    // Replaces each ${NAME} in a scalar value. Keys are never expanded, and nothing else about
    // '$' is special, so values such as passwords with a lone '$' pass through untouched.
    std::string expand(const std::string &key, const std::string &value) const {
        std::string out;
        size_t i = 0;
        while (i < value.size()) {
            size_t start = value.find("${", i);
            if (start == std::string::npos) {
                out.append(value, i, std::string::npos);
                break;
            }
            out.append(value, i, start - i);
            size_t end = value.find('}', start + 2);
            if (end == std::string::npos) fail(key, "unterminated ${ in " + got(value));
            std::string name = value.substr(start + 2, end - start - 2);
            bool valid = !name.empty() && !std::isdigit(static_cast<unsigned char>(name[0])) &&
                         std::all_of(name.begin(), name.end(),
                                     [](unsigned char c) { return std::isalnum(c) || c == '_'; });
            if (!valid) fail(key, "invalid environment variable name '" + name + "'");
            auto v = env(name);
            if (!v) fail(key, "environment variable " + name + " is not set");
            out += *v;
            i = end + 1;
        }
        return out;
    }

    std::string resolve_path(const std::string &p) const {
        if (p.empty()) return p;
        return (base_dir / p).lexically_normal().string();
    }
};

// A map node at a dotted path. Construction rejects non-maps, unknown keys and keys given
// twice (yaml-cpp keeps both silently, and which one wins would be a surprise).
class Section {
  public:
    Section(const YAML::Node &node, std::string path, std::initializer_list<const char *> keys,
            const Context &ctx)
        : node_(node), path_(std::move(path)), ctx_(ctx) {
        if (!node_.IsDefined() || node_.IsNull()) return;  // absent or empty: all defaults
        if (!node_.IsMap()) fail(label(), std::string("must be a map (got ") + shape(node_) + ")");
        std::set<std::string> seen;
        for (const auto &kv : node_) {
            if (!kv.first.IsScalar()) fail(label(), "keys must be plain strings");
            const std::string &k = kv.first.Scalar();
            if (std::find_if(keys.begin(), keys.end(), [&](const char *a) { return k == a; }) ==
                keys.end())
                fail(join(path_, k), "unknown key");
            if (!seen.insert(k).second) fail(join(path_, k), "duplicate key");
        }
    }

    bool present() const { return node_.IsDefined() && !node_.IsNull(); }
    bool has(const char *k) const {
        return present() && value(k).IsDefined() && !value(k).IsNull();
    }
    YAML::Node value(const char *k) const { return present() ? node_[k] : YAML::Node(); }
    std::string key(const char *k) const { return join(path_, k); }

    // The expanded scalar at k, or nullopt when absent or null. `what` completes "must be ...".
    std::optional<std::string> scalar(const char *k, const std::string &what) const {
        return scalar_of(value(k), key(k), what, ctx_);
    }

    static std::optional<std::string> scalar_of(const YAML::Node &n, const std::string &key,
                                                const std::string &what, const Context &ctx) {
        if (!n.IsDefined() || n.IsNull()) return std::nullopt;
        if (!n.IsScalar()) fail(key, "must be " + what + " (got " + shape(n) + ")");
        return ctx.expand(key, n.Scalar());
    }

    // The elements of the list at k; absent or null gives an empty list.
    std::vector<YAML::Node> list(const char *k) const {
        YAML::Node n = value(k);
        std::vector<YAML::Node> out;
        if (!n.IsDefined() || n.IsNull()) return out;
        if (!n.IsSequence()) fail(key(k), std::string("must be a list (got ") + shape(n) + ")");
        for (const auto &e : n) out.push_back(e);
        return out;
    }

    void string(const char *k, std::string &out) const {
        if (auto v = scalar(k, "a string")) out = *v;
    }

    void boolean(const char *k, bool &out) const {
        auto v = scalar(k, "true or false");
        if (!v) return;
        std::string l = lower(*v);
        if (l == "true" || l == "yes" || l == "on") {
            out = true;
        } else if (l == "false" || l == "no" || l == "off") {
            out = false;
        } else {
            fail(key(k), "must be true or false " + got(*v));
        }
    }

    void integer(const char *k, uint64_t min, uint64_t max, uint32_t &out) const {
        std::string what = "an integer in " + std::to_string(min) + ".." + std::to_string(max);
        auto v = scalar(k, what);
        if (!v) return;
        uint64_t n = 0;
        auto [p, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
        if (!is_integer_text(*v) || ec != std::errc() || p != v->data() + v->size() || n < min ||
            n > max)
            fail(key(k), "must be " + what + " " + got(*v));
        out = static_cast<uint32_t>(n);
    }

    void duration(const char *k, std::chrono::milliseconds min,
                  std::chrono::milliseconds &out) const {
        auto v = scalar(k, "a duration such as 5s or 250ms");
        if (!v) return;
        auto d = parse_duration(*v);
        if (!d) fail(key(k), "not a duration " + got(*v) + "; use e.g. 250ms, 5s, 2m, 1h");
        if (*d < min) {
            auto ms = min.count();
            std::string text =
                ms % 1000 == 0 ? std::to_string(ms / 1000) + "s" : std::to_string(ms) + "ms";
            fail(key(k), "must be at least " + text + " " + got(*v));
        }
        out = *d;
    }

    void path(const char *k, std::string &out) const {
        if (auto v = scalar(k, "a path")) out = ctx_.resolve_path(*v);
    }

    const Context &ctx() const { return ctx_; }

  private:
    std::string label() const { return path_.empty() ? "config" : path_; }

    YAML::Node node_;
    std::string path_;
    const Context &ctx_;
};

// A Kubernetes label value (topology.kubernetes.io/zone and /region carry these).
bool is_label_value(std::string_view s) {
    if (s.empty()) return true;
    auto alnum = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; };
    if (s.size() > 63 || !alnum(s.front()) || !alnum(s.back())) return false;
    return std::all_of(s.begin(), s.end(),
                       [&](char c) { return alnum(c) || c == '-' || c == '_' || c == '.'; });
}

// Parses a socket address. With default_port unset the port is required.
SocketAddr parse_addr(const std::string &key, const std::string &text,
                      std::optional<uint16_t> default_port) {
    auto a = SocketAddr::parse(text, default_port);
    if (!a) {
        fail(key, default_port ? "must be an IP address, optionally with a port " + got(text)
                               : "must be an IP address and port such as 127.0.0.1:1053 or "
                                 "[::1]:1053 " +
                                     got(text));
    }
    if (a->port == 0) fail(key, "port must be in 1..65535 " + got(text));
    return *a;
}

std::vector<SocketAddr> addr_list(const Section &s, const char *k,
                                  std::optional<uint16_t> default_port) {
    std::vector<SocketAddr> out;
    auto items = s.list(k);
    for (size_t i = 0; i < items.size(); i++) {
        std::string key = indexed(s.key(k), i);
        auto text = Section::scalar_of(items[i], key, "an address", s.ctx());
        if (!text) fail(key, "must be an address (got nothing)");
        SocketAddr a = parse_addr(key, *text, default_port);
        if (std::find(out.begin(), out.end(), a) != out.end())
            fail(key, "duplicate address " + a.to_string());
        out.push_back(a);
    }
    return out;
}

std::string required(const std::string &key, const std::string &value) {
    if (value.empty()) fail(key, "required");
    return value;
}

void parse_node(const Section &s, Config::Node &node) {
    s.string("cluster", node.cluster);
    if (node.cluster.empty()) fail(s.key("cluster"), "required");
    if (!is_dns_label(node.cluster))
        fail(s.key("cluster"),
             "must be a DNS label (lowercase letters, digits, '-') " + got(node.cluster));
    s.string("zone", node.zone);
    s.string("region", node.region);
    for (auto [k, v] : {std::pair{"zone", &node.zone}, std::pair{"region", &node.region}}) {
        if (!is_label_value(*v))
            fail(s.key(k),
                 "must be a Kubernetes label value (letters, digits, '-', '_', '.') " + got(*v));
    }
}

void parse_dns(const Section &s, Config::Dns &dns) {
    if (s.has("zones")) {
        auto items = s.list("zones");
        if (items.empty()) fail(s.key("zones"), "must not be empty");
        dns.zones.clear();
        for (size_t i = 0; i < items.size(); i++) {
            std::string key = indexed(s.key("zones"), i);
            auto text = Section::scalar_of(items[i], key, "a domain name", s.ctx());
            auto zone = normalise_zone(text.value_or(""));
            if (!zone) fail(key, "must be a domain name such as global " + got(text.value_or("")));
            if (std::find(dns.zones.begin(), dns.zones.end(), *zone) != dns.zones.end())
                fail(key, "duplicate zone '" + *zone + "'");
            dns.zones.push_back(*zone);
        }
    }
    s.integer("ttl", 0, 3600, dns.ttl);
    if (s.has("listen")) {
        dns.listen = addr_list(s, "listen", std::nullopt);
        if (dns.listen.empty()) fail(s.key("listen"), "must not be empty");
    }
    dns.upstream = addr_list(s, "upstream", 53);
}

void parse_source(const Section &s, Config::Source &src) {
    if (!s.present()) fail("source", "required");
    if (auto v = s.scalar("kind", "one of file, hub, kubernetes")) {
        auto kind = parse_source_kind(*v);
        if (!kind) fail(s.key("kind"), "must be one of file, hub, kubernetes " + got(*v));
        src.kind = *kind;
    }

    // Every sub-section is checked for unknown keys and bad values even when another kind is
    // selected, so switching kind later does not reveal old mistakes.
    Section file(s.value("file"), s.key("file"), {"path"}, s.ctx());
    file.path("path", src.file.path);

    Section hub(
        s.value("hub"), s.key("hub"),
        {"url", "cluster", "ca", "cert", "key", "interval", "snapshot", "max_response_bytes"},
        s.ctx());
    hub.string("url", src.hub.url);
    if (!src.hub.url.empty()) {
        // Plain http is refused: the hub is reached with mutual TLS only (SPEC §5).
        constexpr std::string_view scheme = "https://";
        if (lower(src.hub.url.substr(0, scheme.size())) != scheme ||
            src.hub.url.size() == scheme.size())
            fail(hub.key("url"), "must be an https:// URL " + got(src.hub.url));
        while (src.hub.url.size() > scheme.size() && src.hub.url.back() == '/')
            src.hub.url.pop_back();
    }
    hub.string("cluster", src.hub.cluster);
    if (!src.hub.cluster.empty() && !is_dns_label(src.hub.cluster))
        fail(hub.key("cluster"),
             "must be a DNS label (lowercase letters, digits, '-') " + got(src.hub.cluster));
    hub.path("ca", src.hub.ca);
    hub.path("cert", src.hub.cert);
    hub.path("key", src.hub.key);
    // Zero would poll the hub in a busy loop.
    hub.duration("interval", std::chrono::milliseconds(100), src.hub.interval);
    hub.path("snapshot", src.hub.snapshot);
    hub.integer("max_response_bytes", 1024, uint64_t{1} << 30, src.hub.max_response_bytes);

    Section k8s(s.value("kubernetes"), s.key("kubernetes"),
                {"server", "kubeconfig", "allow_token_over_http"}, s.ctx());
    k8s.string("server", src.kubernetes.server);
    if (!src.kubernetes.server.empty()) {
        std::string l = lower(src.kubernetes.server);
        if ((l.rfind("http://", 0) != 0 || l.size() == 7) &&
            (l.rfind("https://", 0) != 0 || l.size() == 8))
            fail(k8s.key("server"),
                 "must be an http:// or https:// URL " + got(src.kubernetes.server));
        while (src.kubernetes.server.back() == '/') src.kubernetes.server.pop_back();
    }
    k8s.path("kubeconfig", src.kubernetes.kubeconfig);
    k8s.boolean("allow_token_over_http", src.kubernetes.allow_token_over_http);

    switch (src.kind) {
        case SourceKind::File:
            required(file.key("path"), src.file.path);
            break;
        case SourceKind::Hub:
            required(hub.key("url"), src.hub.url);
            required(hub.key("cluster"), src.hub.cluster);
            required(hub.key("ca"), src.hub.ca);
            required(hub.key("cert"), src.hub.cert);
            required(hub.key("key"), src.hub.key);
            break;
        case SourceKind::Kubernetes:
            break;  // empty server and kubeconfig: in-cluster
    }
}

void parse_datapath(const Section &s, Config::Datapath &dp) {
    s.boolean("enabled", dp.enabled);
    s.string("pin_path", dp.pin_path);
    // A bpffs location is never relative to the config file.
    if (dp.pin_path.empty() || dp.pin_path.front() != '/')
        fail(s.key("pin_path"), "must be an absolute path " + got(dp.pin_path));
    s.integer("capacity", 1, uint64_t{1} << 24, dp.capacity);
    dp.answer_for = addr_list(s, "answer_for", std::nullopt);

    auto items = s.list("attach");
    dp.attach.clear();
    for (size_t i = 0; i < items.size(); i++) {
        std::string key = indexed(s.key("attach"), i);
        if (!items[i].IsMap())
            fail(key,
                 std::string("must be a map with iface and mode (got ") + shape(items[i]) + ")");
        Section a(items[i], key, {"iface", "mode"}, s.ctx());
        Config::Datapath::Attach at;
        a.string("iface", at.iface);
        if (at.iface.empty()) fail(a.key("iface"), "required");
        // Linux interface names: at most IFNAMSIZ-1 bytes, no '/', ':' or whitespace.
        bool ok = at.iface.size() < 16 && at.iface != "." && at.iface != ".." &&
                  std::none_of(at.iface.begin(), at.iface.end(), [](unsigned char c) {
                      return c == '/' || c == ':' || std::isspace(c) || !std::isprint(c);
                  });
        if (!ok) fail(a.key("iface"), "not a valid interface name " + got(at.iface));
        for (const auto &prev : dp.attach)
            if (prev.iface == at.iface)
                fail(a.key("iface"), "duplicate interface " + got(at.iface));
        if (auto m = a.scalar("mode", "one of xdp, xdp-generic, tc")) {
            auto mode = parse_attach_mode(*m);
            if (!mode) fail(a.key("mode"), "must be one of xdp, xdp-generic, tc " + got(*m));
            at.mode = *mode;
        }
        dp.attach.push_back(std::move(at));
    }
    // The kernel stamp is refreshed once a second, so anything shorter would flap.
    s.duration("stale_after", std::chrono::seconds(2), dp.stale_after);
    s.boolean("detach_on_exit", dp.detach_on_exit);
    s.boolean("required", dp.required);
}

void parse_metrics(const Section &s, Config::Metrics &m) {
    auto v = s.scalar("listen", "an address such as 127.0.0.1:9153");
    if (!v) return;
    if (v->empty()) {
        m.listen.reset();
        return;
    }
    m.listen = parse_addr(s.key("listen"), *v, std::nullopt);
}

}  // namespace

Config parse_config(const std::string &yaml_text, const std::string &base_dir,
                    const EnvLookup &env) {
    Context ctx;
    ctx.env = env ? env : [](const std::string &name) -> std::optional<std::string> {
        const char *v = std::getenv(name.c_str());
        if (!v) return std::nullopt;
        return std::string(v);
    };
    ctx.base_dir = base_dir.empty() ? "." : base_dir;

    YAML::Node root;
    try {
        auto docs = YAML::LoadAll(yaml_text);
        if (docs.size() > 1)
            fail("config", "expected one YAML document (got " + std::to_string(docs.size()) + ")");
        if (!docs.empty()) root = docs.front();
    } catch (const YAML::Exception &e) {
        std::ostringstream msg;
        msg << "YAML syntax error at line " << e.mark.line + 1 << ", column " << e.mark.column + 1
            << ": " << e.msg;
        fail("config", msg.str());
    }

    Config cfg;
    try {
        Section top(root, "", {"node", "dns", "source", "datapath", "metrics"}, ctx);
        parse_node(Section(top.value("node"), "node", {"cluster", "zone", "region"}, ctx),
                   cfg.node);
        parse_dns(Section(top.value("dns"), "dns", {"zones", "ttl", "listen", "upstream"}, ctx),
                  cfg.dns);
        parse_source(
            Section(top.value("source"), "source", {"kind", "file", "hub", "kubernetes"}, ctx),
            cfg.source);
        parse_datapath(Section(top.value("datapath"), "datapath",
                               {"enabled", "pin_path", "capacity", "answer_for", "attach",
                                "stale_after", "detach_on_exit", "required"},
                               ctx),
                       cfg.datapath);
        parse_metrics(Section(top.value("metrics"), "metrics", {"listen"}, ctx), cfg.metrics);
    } catch (const YAML::Exception &e) {
        // Not expected after a successful load; kept so that no yaml-cpp error escapes untyped.
        fail("config", e.msg);
    }
    if (cfg.datapath.answer_for.empty()) cfg.datapath.answer_for = cfg.dns.listen;
    return cfg;
}

Config load_config(const std::string &path, const EnvLookup &env) {
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec)) fail("config", path + " is a directory");
    std::ifstream in(path, std::ios::binary);
    if (!in) fail("config", "cannot read " + path + ": " + std::strerror(errno));
    std::ostringstream text;
    text << in.rdbuf();
    if (in.bad()) fail("config", "cannot read " + path);
    auto dir = std::filesystem::absolute(std::filesystem::path(path), ec).parent_path();
    if (ec) dir = std::filesystem::path(path).parent_path();
    return parse_config(text.str(), dir.empty() ? "." : dir.string(), env);
}

}  // namespace fabdns
