// Table-driven tests of the config loader: every key with a good value, every bad value with the
// exact error line, ${VAR} expansion, defaults, relative paths and the SPEC §2 example.
#include "config/config.hpp"

#include <gtest/gtest.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

namespace fabdns {
namespace {

using namespace std::chrono_literals;

// The smallest valid config; cases change one key of it.
constexpr const char *kMinimal = R"(
node:
  cluster: beijing
source:
  kind: file
  file:
    path: gs.yaml
)";

// Injected environment: tests never depend on the real one.
EnvLookup fake_env(std::map<std::string, std::string> vars = {}) {
    return [vars = std::move(vars)](const std::string &name) -> std::optional<std::string> {
        auto it = vars.find(name);
        if (it == vars.end()) return std::nullopt;
        return it->second;
    };
}

const std::map<std::string, std::string> kEnv = {
    {"NODE_ZONE", "zone-a"}, {"NODE_REGION", "north"}, {"TTL", "30"}, {"EMPTY", ""}};

// Returns kMinimal with the value at a dotted path replaced by `value_yaml` (parsed as YAML),
// or removed when value_yaml is "<delete>".
std::string with(const std::string &path, const std::string &value_yaml) {
    YAML::Node root = YAML::Load(kMinimal);
    std::vector<std::string> parts;
    std::stringstream ss(path);
    for (std::string p; std::getline(ss, p, '.');) parts.push_back(p);
    std::vector<YAML::Node> chain{root};
    for (size_t i = 0; i + 1 < parts.size(); i++) {
        YAML::Node next = chain.back()[parts[i]];
        if (!next.IsMap()) next = YAML::Node(YAML::NodeType::Map);
        chain.back()[parts[i]] = next;
        chain.push_back(chain.back()[parts[i]]);
    }
    if (value_yaml == "<delete>") {
        chain.back().remove(parts.back());
    } else {
        chain.back()[parts.back()] = YAML::Load(value_yaml);
    }
    YAML::Emitter out;
    out << root;
    return out.c_str();
}

Config parse(const std::string &yaml, const std::string &base = "/etc/fabdns") {
    return parse_config(yaml, base, fake_env(kEnv));
}

SocketAddr addr(const char *text) {
    auto a = SocketAddr::parse(text);
    EXPECT_TRUE(a) << text;
    return a.value_or(SocketAddr{});
}

// ---- good values ----

struct GoodCase {
    const char *name;
    const char *path;
    const char *value;
    std::function<void(const Config &)> check;
};

class GoodValue : public testing::TestWithParam<GoodCase> {};

TEST_P(GoodValue, ParsesTo) {
    const auto &c = GetParam();
    std::string yaml = with(c.path, c.value);
    try {
        Config cfg = parse(yaml);
        c.check(cfg);
    } catch (const ConfigError &e) {
        FAIL() << "unexpected error: " << e.what() << "\n" << yaml;
    }
}

const GoodCase kGood[] = {
    {"node_cluster", "node.cluster", "shanghai",
     [](const Config &c) { EXPECT_EQ(c.node.cluster, "shanghai"); }},
    {"node_zone", "node.zone", "beijing",
     [](const Config &c) { EXPECT_EQ(c.node.zone, "beijing"); }},
    {"node_zone_k8s_style", "node.zone", "cn-north-1a",
     [](const Config &c) { EXPECT_EQ(c.node.zone, "cn-north-1a"); }},
    {"node_region", "node.region", "north",
     [](const Config &c) { EXPECT_EQ(c.node.region, "north"); }},
    {"node_zone_env", "node.zone", "${NODE_ZONE}",
     [](const Config &c) { EXPECT_EQ(c.node.zone, "zone-a"); }},
    {"node_region_env_empty", "node.region", "${EMPTY}",
     [](const Config &c) { EXPECT_EQ(c.node.region, ""); }},
    {"dns_zones", "dns.zones", "[global, clusterset.local]",
     [](const Config &c) {
         EXPECT_EQ(c.dns.zones, (std::vector<std::string>{"global", "clusterset.local"}));
     }},
    {"dns_zones_normalised", "dns.zones", "[Global., ClusterSet.Local.]",
     [](const Config &c) {
         EXPECT_EQ(c.dns.zones, (std::vector<std::string>{"global", "clusterset.local"}));
     }},
    {"dns_ttl", "dns.ttl", "30", [](const Config &c) { EXPECT_EQ(c.dns.ttl, 30u); }},
    {"dns_ttl_zero", "dns.ttl", "0", [](const Config &c) { EXPECT_EQ(c.dns.ttl, 0u); }},
    {"dns_ttl_max", "dns.ttl", "3600", [](const Config &c) { EXPECT_EQ(c.dns.ttl, 3600u); }},
    {"dns_ttl_quoted", "dns.ttl", "'7'", [](const Config &c) { EXPECT_EQ(c.dns.ttl, 7u); }},
    {"dns_ttl_env", "dns.ttl", "${TTL}", [](const Config &c) { EXPECT_EQ(c.dns.ttl, 30u); }},
    {"dns_listen", "dns.listen", "['127.0.0.1:53', '[::1]:5353']",
     [](const Config &c) {
         EXPECT_EQ(c.dns.listen,
                   (std::vector<SocketAddr>{addr("127.0.0.1:53"), addr("[::1]:5353")}));
     }},
    {"dns_upstream", "dns.upstream", "['10.96.0.10', '8.8.8.8:5353', '2001:db8::1', '[::1]']",
     [](const Config &c) {
         EXPECT_EQ(c.dns.upstream,
                   (std::vector<SocketAddr>{addr("10.96.0.10:53"), addr("8.8.8.8:5353"),
                                            addr("[2001:db8::1]:53"), addr("[::1]:53")}));
     }},
    {"dns_upstream_empty", "dns.upstream", "[]",
     [](const Config &c) { EXPECT_TRUE(c.dns.upstream.empty()); }},
    {"source_kind_hub", "source",
     "{kind: hub, hub: {url: 'https://hub:3000/', cluster: beijing, ca: ca.crt, cert: /t/tls.crt, "
     "key: tls.key, interval: 250ms, snapshot: state/last.json, max_response_bytes: 1048576}}",
     [](const Config &c) {
         EXPECT_EQ(c.source.kind, SourceKind::Hub);
         EXPECT_EQ(c.source.hub.url, "https://hub:3000");
         EXPECT_EQ(c.source.hub.cluster, "beijing");
         EXPECT_EQ(c.source.hub.ca, "/etc/fabdns/ca.crt");
         EXPECT_EQ(c.source.hub.cert, "/t/tls.crt");
         EXPECT_EQ(c.source.hub.key, "/etc/fabdns/tls.key");
         EXPECT_EQ(c.source.hub.interval, 250ms);
         EXPECT_EQ(c.source.hub.snapshot, "/etc/fabdns/state/last.json");
         EXPECT_EQ(c.source.hub.max_response_bytes, 1048576u);
     }},
    {"source_hub_snapshot_disabled", "source",
     "{kind: hub, hub: {url: 'https://hub', cluster: b, ca: a, cert: b, key: c, snapshot: ''}}",
     [](const Config &c) { EXPECT_EQ(c.source.hub.snapshot, ""); }},
    {"source_kind_kubernetes", "source", "{kind: kubernetes}",
     [](const Config &c) {
         EXPECT_EQ(c.source.kind, SourceKind::Kubernetes);
         EXPECT_EQ(c.source.kubernetes.server, "");
         EXPECT_EQ(c.source.kubernetes.kubeconfig, "");
     }},
    {"source_kubernetes_server", "source",
     "{kind: kubernetes, kubernetes: {server: 'http://127.0.0.1:10261', kubeconfig: kube/config}}",
     [](const Config &c) {
         EXPECT_EQ(c.source.kubernetes.server, "http://127.0.0.1:10261");
         EXPECT_EQ(c.source.kubernetes.kubeconfig, "/etc/fabdns/kube/config");
     }},
    {"source_kubernetes_allow_token_over_http", "source",
     "{kind: kubernetes, kubernetes: {server: 'http://127.0.0.1:10261', allow_token_over_http: "
     "true}}",
     [](const Config &c) { EXPECT_TRUE(c.source.kubernetes.allow_token_over_http); }},
    {"source_kubernetes_allow_token_over_http_no", "source.kubernetes.allow_token_over_http", "no",
     [](const Config &c) { EXPECT_FALSE(c.source.kubernetes.allow_token_over_http); }},
    {"source_file_path_relative", "source.file.path", "../examples/gs.yaml",
     [](const Config &c) { EXPECT_EQ(c.source.file.path, "/etc/examples/gs.yaml"); }},
    {"source_file_path_absolute", "source.file.path", "/srv/gs/",
     [](const Config &c) { EXPECT_EQ(c.source.file.path, "/srv/gs/"); }},
    {"datapath_enabled", "datapath.enabled", "false",
     [](const Config &c) { EXPECT_FALSE(c.datapath.enabled); }},
    {"datapath_enabled_yes", "datapath.enabled", "yes",
     [](const Config &c) { EXPECT_TRUE(c.datapath.enabled); }},
    {"datapath_pin_path", "datapath.pin_path", "/sys/fs/bpf/other",
     [](const Config &c) { EXPECT_EQ(c.datapath.pin_path, "/sys/fs/bpf/other"); }},
    {"datapath_capacity_min", "datapath.capacity", "1",
     [](const Config &c) { EXPECT_EQ(c.datapath.capacity, 1u); }},
    {"datapath_capacity_max", "datapath.capacity", "16777216",
     [](const Config &c) { EXPECT_EQ(c.datapath.capacity, 16777216u); }},
    {"datapath_answer_for", "datapath.answer_for", "['169.254.20.10:53', '[fd00::10]:53']",
     [](const Config &c) {
         EXPECT_EQ(c.datapath.answer_for,
                   (std::vector<SocketAddr>{addr("169.254.20.10:53"), addr("[fd00::10]:53")}));
     }},
    {"datapath_attach", "datapath.attach",
     "[{iface: eth0, mode: xdp}, {iface: lo, mode: xdp-generic}, {iface: ens3, mode: tc}, {iface: "
     "veth1}]",
     [](const Config &c) {
         ASSERT_EQ(c.datapath.attach.size(), 4u);
         EXPECT_EQ(c.datapath.attach[0].iface, "eth0");
         EXPECT_EQ(c.datapath.attach[0].mode, AttachMode::Xdp);
         EXPECT_EQ(c.datapath.attach[1].mode, AttachMode::XdpGeneric);
         EXPECT_EQ(c.datapath.attach[2].mode, AttachMode::Tc);
         EXPECT_EQ(c.datapath.attach[3].mode, AttachMode::XdpGeneric);  // the default mode
     }},
    {"datapath_stale_after", "datapath.stale_after", "2m",
     [](const Config &c) { EXPECT_EQ(c.datapath.stale_after, 2min); }},
    {"datapath_stale_after_seconds", "datapath.stale_after", "90",
     [](const Config &c) { EXPECT_EQ(c.datapath.stale_after, 90s); }},
    {"datapath_stale_after_compound", "datapath.stale_after", "1h1m1s",
     [](const Config &c) { EXPECT_EQ(c.datapath.stale_after, 1h + 1min + 1s); }},
    {"datapath_detach_on_exit", "datapath.detach_on_exit", "true",
     [](const Config &c) { EXPECT_TRUE(c.datapath.detach_on_exit); }},
    {"datapath_required", "datapath.required", "true",
     [](const Config &c) { EXPECT_TRUE(c.datapath.required); }},
    {"datapath_required_off", "datapath.required", "off",
     [](const Config &c) { EXPECT_FALSE(c.datapath.required); }},
    {"metrics_listen", "metrics.listen", "'[::1]:9253'",
     [](const Config &c) { EXPECT_EQ(c.metrics.listen, addr("[::1]:9253")); }},
    {"metrics_listen_disabled", "metrics.listen", "''",
     [](const Config &c) { EXPECT_FALSE(c.metrics.listen.has_value()); }},
    {"empty_section_is_defaults", "dns", "~",
     [](const Config &c) { EXPECT_EQ(c.dns, Config::Dns{}); }},
};

INSTANTIATE_TEST_SUITE_P(Config, GoodValue, testing::ValuesIn(kGood),
                         [](const auto &info) { return std::string(info.param.name); });

// ---- bad values: the exact error line ----

struct BadCase {
    const char *name;
    const char *path;
    const char *value;
    const char *key;
    const char *message;  // the whole what()
};

class BadValue : public testing::TestWithParam<BadCase> {};

TEST_P(BadValue, NamesTheKey) {
    const auto &c = GetParam();
    std::string yaml = with(c.path, c.value);
    try {
        parse(yaml);
        FAIL() << "no error for\n" << yaml;
    } catch (const ConfigError &e) {
        EXPECT_EQ(e.key(), c.key);
        EXPECT_STREQ(e.what(), c.message);
    }
}

const BadCase kBad[] = {
    // unknown keys and wrong shapes at every level
    {"unknown_top", "cache", "1", "cache", "cache: unknown key"},
    {"unknown_node", "node.name", "x", "node.name", "node.name: unknown key"},
    {"unknown_dns", "dns.foo", "1", "dns.foo", "dns.foo: unknown key"},
    {"unknown_hub", "source.hub.token", "x", "source.hub.token", "source.hub.token: unknown key"},
    {"unknown_attach", "datapath.attach", "[{iface: lo, prog: x}]", "datapath.attach[0].prog",
     "datapath.attach[0].prog: unknown key"},
    {"unknown_metrics", "metrics.path", "/m", "metrics.path", "metrics.path: unknown key"},
    {"node_not_map", "node", "[beijing]", "node", "node: must be a map (got a list)"},
    {"dns_not_map", "dns", "yes", "dns", "dns: must be a map (got a scalar)"},
    {"zones_not_list", "dns.zones", "{a: b}", "dns.zones", "dns.zones: must be a list (got a map)"},
    {"zones_scalar", "dns.zones", "global", "dns.zones",
     "dns.zones: must be a list (got a scalar)"},
    {"cluster_not_scalar", "node.cluster", "[a]", "node.cluster",
     "node.cluster: must be a string (got a list)"},
    {"attach_not_map", "datapath.attach", "[lo]", "datapath.attach[0]",
     "datapath.attach[0]: must be a map with iface and mode (got a scalar)"},
    // node
    {"cluster_missing", "node.cluster", "<delete>", "node.cluster", "node.cluster: required"},
    {"cluster_null", "node.cluster", "~", "node.cluster", "node.cluster: required"},
    {"cluster_empty", "node.cluster", "''", "node.cluster", "node.cluster: required"},
    {"node_missing", "node", "<delete>", "node.cluster", "node.cluster: required"},
    {"cluster_not_label", "node.cluster", "Bei_jing", "node.cluster",
     "node.cluster: must be a DNS label (lowercase letters, digits, '-') (got 'Bei_jing')"},
    {"zone_bad", "node.zone", "'a b'", "node.zone",
     "node.zone: must be a Kubernetes label value (letters, digits, '-', '_', '.') (got 'a b')"},
    {"zone_unset_env", "node.zone", "${NODE_ZONE_X}", "node.zone",
     "node.zone: environment variable NODE_ZONE_X is not set"},
    {"region_unterminated_env", "node.region", "'${NODE_REGION'", "node.region",
     "node.region: unterminated ${ in (got '${NODE_REGION')"},
    {"region_bad_env_name", "node.region", "'${1X}'", "node.region",
     "node.region: invalid environment variable name '1X'"},
    // dns
    {"zones_empty", "dns.zones", "[]", "dns.zones", "dns.zones: must not be empty"},
    {"zone_invalid", "dns.zones", "[global, 'bad..zone']", "dns.zones[1]",
     "dns.zones[1]: must be a domain name such as global (got 'bad..zone')"},
    {"zone_root", "dns.zones", "['.']", "dns.zones[0]",
     "dns.zones[0]: must be a domain name such as global (got '.')"},
    {"zone_duplicate", "dns.zones", "[global, GLOBAL.]", "dns.zones[1]",
     "dns.zones[1]: duplicate zone 'global'"},
    {"zone_label_too_long", "dns.zones",
     "[aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa]", "dns.zones[0]",
     "dns.zones[0]: must be a domain name such as global (got "
     "'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa')"},
    {"ttl_too_big", "dns.ttl", "5000", "dns.ttl",
     "dns.ttl: must be an integer in 0..3600 (got 5000)"},
    {"ttl_negative", "dns.ttl", "-1", "dns.ttl", "dns.ttl: must be an integer in 0..3600 (got -1)"},
    {"ttl_not_integer", "dns.ttl", "5s", "dns.ttl",
     "dns.ttl: must be an integer in 0..3600 (got '5s')"},
    {"ttl_float", "dns.ttl", "1.5", "dns.ttl",
     "dns.ttl: must be an integer in 0..3600 (got '1.5')"},
    {"ttl_huge", "dns.ttl", "99999999999999999999999", "dns.ttl",
     "dns.ttl: must be an integer in 0..3600 (got 99999999999999999999999)"},
    {"ttl_map", "dns.ttl", "{a: 1}", "dns.ttl",
     "dns.ttl: must be an integer in 0..3600 (got a map)"},
    {"listen_no_port", "dns.listen", "['127.0.0.1']", "dns.listen[0]",
     "dns.listen[0]: must be an IP address and port such as 127.0.0.1:1053 or [::1]:1053 (got "
     "'127.0.0.1')"},
    {"listen_hostname", "dns.listen", "['localhost:53']", "dns.listen[0]",
     "dns.listen[0]: must be an IP address and port such as 127.0.0.1:1053 or [::1]:1053 (got "
     "'localhost:53')"},
    {"listen_port_zero", "dns.listen", "['127.0.0.1:0']", "dns.listen[0]",
     "dns.listen[0]: port must be in 1..65535 (got '127.0.0.1:0')"},
    {"listen_port_big", "dns.listen", "['127.0.0.1:65536']", "dns.listen[0]",
     "dns.listen[0]: must be an IP address and port such as 127.0.0.1:1053 or [::1]:1053 (got "
     "'127.0.0.1:65536')"},
    {"listen_empty", "dns.listen", "[]", "dns.listen", "dns.listen: must not be empty"},
    {"listen_duplicate", "dns.listen", "['127.0.0.1:53', '127.0.0.1:53']", "dns.listen[1]",
     "dns.listen[1]: duplicate address 127.0.0.1:53"},
    {"listen_null_item", "dns.listen", "[~]", "dns.listen[0]",
     "dns.listen[0]: must be an address (got nothing)"},
    {"upstream_bad", "dns.upstream", "['8.8.8.8', 'dns.google']", "dns.upstream[1]",
     "dns.upstream[1]: must be an IP address, optionally with a port (got 'dns.google')"},
    // source
    {"source_missing", "source", "<delete>", "source", "source: required"},
    {"source_kind_unknown", "source.kind", "etcd", "source.kind",
     "source.kind: must be one of file, hub, kubernetes (got 'etcd')"},
    {"source_file_path_missing", "source.file", "<delete>", "source.file.path",
     "source.file.path: required"},
    {"hub_url_missing", "source", "{kind: hub, hub: {cluster: b, ca: a, cert: b, key: c}}",
     "source.hub.url", "source.hub.url: required"},
    {"hub_url_http", "source.hub.url", "'http://hub:3000'", "source.hub.url",
     "source.hub.url: must be an https:// URL (got 'http://hub:3000')"},
    {"hub_cluster_missing", "source",
     "{kind: hub, hub: {url: 'https://h', ca: a, cert: b, key: c}}", "source.hub.cluster",
     "source.hub.cluster: required"},
    {"hub_ca_missing", "source",
     "{kind: hub, hub: {url: 'https://h', cluster: b, cert: b, key: c}}", "source.hub.ca",
     "source.hub.ca: required"},
    {"hub_cert_missing", "source",
     "{kind: hub, hub: {url: 'https://h', cluster: b, ca: a, key: c}}", "source.hub.cert",
     "source.hub.cert: required"},
    {"hub_key_missing", "source",
     "{kind: hub, hub: {url: 'https://h', cluster: b, ca: a, cert: b}}", "source.hub.key",
     "source.hub.key: required"},
    {"hub_interval_bad", "source.hub.interval", "abc", "source.hub.interval",
     "source.hub.interval: not a duration (got 'abc'); use e.g. 250ms, 5s, 2m, 1h"},
    {"hub_interval_no_unit_term", "source.hub.interval", "5s3", "source.hub.interval",
     "source.hub.interval: not a duration (got '5s3'); use e.g. 250ms, 5s, 2m, 1h"},
    {"hub_max_response_bytes_too_small", "source.hub.max_response_bytes", "10",
     "source.hub.max_response_bytes",
     "source.hub.max_response_bytes: must be an integer in 1024..1073741824 (got 10)"},
    {"hub_interval_too_short", "source.hub.interval", "10ms", "source.hub.interval",
     "source.hub.interval: must be at least 100ms (got '10ms')"},
    {"kubernetes_server_bad", "source.kubernetes.server", "'127.0.0.1:10261'",
     "source.kubernetes.server",
     "source.kubernetes.server: must be an http:// or https:// URL (got '127.0.0.1:10261')"},
    {"kubernetes_allow_token_over_http_bad", "source.kubernetes.allow_token_over_http", "2",
     "source.kubernetes.allow_token_over_http",
     "source.kubernetes.allow_token_over_http: must be true or false (got 2)"},
    {"kubernetes_allow_token_over_http_map", "source.kubernetes.allow_token_over_http", "{a: b}",
     "source.kubernetes.allow_token_over_http",
     "source.kubernetes.allow_token_over_http: must be true or false (got a map)"},
    // datapath
    {"enabled_not_bool", "datapath.enabled", "maybe", "datapath.enabled",
     "datapath.enabled: must be true or false (got 'maybe')"},
    {"enabled_list", "datapath.enabled", "[true]", "datapath.enabled",
     "datapath.enabled: must be true or false (got a list)"},
    {"pin_path_relative", "datapath.pin_path", "bpf/fabdns", "datapath.pin_path",
     "datapath.pin_path: must be an absolute path (got 'bpf/fabdns')"},
    {"capacity_zero", "datapath.capacity", "0", "datapath.capacity",
     "datapath.capacity: must be an integer in 1..16777216 (got 0)"},
    {"capacity_too_big", "datapath.capacity", "16777217", "datapath.capacity",
     "datapath.capacity: must be an integer in 1..16777216 (got 16777217)"},
    {"answer_for_bad", "datapath.answer_for", "['10.0.0.1']", "datapath.answer_for[0]",
     "datapath.answer_for[0]: must be an IP address and port such as 127.0.0.1:1053 or [::1]:1053 "
     "(got '10.0.0.1')"},
    {"attach_mode_bad", "datapath.attach", "[{iface: lo, mode: xdp}, {iface: eth0, mode: foo}]",
     "datapath.attach[1].mode",
     "datapath.attach[1].mode: must be one of xdp, xdp-generic, tc (got 'foo')"},
    {"attach_iface_missing", "datapath.attach", "[{mode: xdp}]", "datapath.attach[0].iface",
     "datapath.attach[0].iface: required"},
    {"attach_iface_empty", "datapath.attach", "[{iface: '', mode: xdp}]",
     "datapath.attach[0].iface", "datapath.attach[0].iface: required"},
    {"attach_iface_too_long", "datapath.attach", "[{iface: abcdefghijklmnop}]",
     "datapath.attach[0].iface",
     "datapath.attach[0].iface: not a valid interface name (got 'abcdefghijklmnop')"},
    {"attach_iface_duplicate", "datapath.attach", "[{iface: lo}, {iface: lo, mode: tc}]",
     "datapath.attach[1].iface", "datapath.attach[1].iface: duplicate interface (got 'lo')"},
    {"stale_after_bad", "datapath.stale_after", "2 minutes", "datapath.stale_after",
     "datapath.stale_after: not a duration (got '2 minutes'); use e.g. 250ms, 5s, 2m, 1h"},
    {"stale_after_negative", "datapath.stale_after", "-5s", "datapath.stale_after",
     "datapath.stale_after: not a duration (got '-5s'); use e.g. 250ms, 5s, 2m, 1h"},
    {"stale_after_too_short", "datapath.stale_after", "1s", "datapath.stale_after",
     "datapath.stale_after: must be at least 2s (got '1s')"},
    {"detach_on_exit_bad", "datapath.detach_on_exit", "1", "datapath.detach_on_exit",
     "datapath.detach_on_exit: must be true or false (got 1)"},
    {"required_bad", "datapath.required", "maybe", "datapath.required",
     "datapath.required: must be true or false (got 'maybe')"},
    {"required_list", "datapath.required", "[true]", "datapath.required",
     "datapath.required: must be true or false (got a list)"},
    {"required_empty", "datapath.required", "''", "datapath.required",
     "datapath.required: must be true or false (got '')"},
    // metrics
    {"metrics_listen_no_port", "metrics.listen", "'127.0.0.1'", "metrics.listen",
     "metrics.listen: must be an IP address and port such as 127.0.0.1:1053 or [::1]:1053 (got "
     "'127.0.0.1')"},
    {"metrics_listen_list", "metrics.listen", "['127.0.0.1:9153']", "metrics.listen",
     "metrics.listen: must be an address such as 127.0.0.1:9153 (got a list)"},
};

INSTANTIATE_TEST_SUITE_P(Config, BadValue, testing::ValuesIn(kBad),
                         [](const auto &info) { return std::string(info.param.name); });

// ---- whole-document cases ----

ConfigError error_of(const std::string &yaml, const EnvLookup &env = fake_env(kEnv)) {
    try {
        parse_config(yaml, "/etc/fabdns", env);
    } catch (const ConfigError &e) {
        return e;
    }
    ADD_FAILURE() << "no error for\n" << yaml;
    return ConfigError("", "");
}

TEST(Config, Defaults) {
    Config c = parse(kMinimal);
    EXPECT_EQ(c.node.cluster, "beijing");
    EXPECT_EQ(c.node.zone, "");
    EXPECT_EQ(c.node.region, "");
    EXPECT_EQ(c.dns.zones, std::vector<std::string>{"global"});
    EXPECT_EQ(c.dns.ttl, 5u);
    EXPECT_EQ(c.dns.listen, std::vector<SocketAddr>{addr("127.0.0.1:1053")});
    EXPECT_TRUE(c.dns.upstream.empty());
    EXPECT_EQ(c.source.kind, SourceKind::File);
    EXPECT_EQ(c.source.file.path, "/etc/fabdns/gs.yaml");
    EXPECT_EQ(c.source.hub.interval, 5s);
    EXPECT_EQ(c.source.hub.snapshot, "/var/lib/fabdns/last-known.json");
    EXPECT_TRUE(c.datapath.enabled);
    EXPECT_EQ(c.datapath.pin_path, "/sys/fs/bpf/fabdns");
    EXPECT_EQ(c.datapath.capacity, 65536u);
    EXPECT_EQ(c.datapath.answer_for, c.dns.listen);  // filled from dns.listen
    EXPECT_TRUE(c.datapath.attach.empty());          // attach nowhere unless told
    EXPECT_EQ(c.datapath.stale_after, 120s);
    EXPECT_FALSE(c.datapath.detach_on_exit);
    EXPECT_FALSE(c.datapath.required);  // a datapath failure leaves DNS to user space
    EXPECT_FALSE(c.source.kubernetes.allow_token_over_http);
    EXPECT_EQ(c.metrics.listen, addr("127.0.0.1:9153"));
}

TEST(Config, AnswerForFollowsListen) {
    Config c = parse(with("dns.listen", "['10.0.0.1:53', '[fd00::1]:53']"));
    EXPECT_EQ(c.datapath.answer_for, c.dns.listen);
    Config d = parse(with("datapath.answer_for", "['169.254.20.10:53']"));
    EXPECT_EQ(d.datapath.answer_for, std::vector<SocketAddr>{addr("169.254.20.10:53")});
    EXPECT_EQ(d.dns.listen, std::vector<SocketAddr>{addr("127.0.0.1:1053")});
}

TEST(Config, EmptyDocumentNeedsCluster) {
    EXPECT_EQ(error_of("").key(), "node.cluster");
    EXPECT_EQ(error_of("# only a comment\n").key(), "node.cluster");
}

TEST(Config, RootMustBeAMap) {
    EXPECT_STREQ(error_of("- a\n- b\n").what(), "config: must be a map (got a list)");
}

TEST(Config, SyntaxErrorNamesTheLine) {
    auto e = error_of("node:\n  cluster: beijing\ndns:\n  ttl: [5\n");
    EXPECT_EQ(e.key(), "config");
    EXPECT_NE(std::string(e.what()).find("line "), std::string::npos) << e.what();
    auto f = error_of("node:\n  cluster: a\n   zone: b\n");
    EXPECT_EQ(f.key(), "config");
    EXPECT_NE(std::string(f.what()).find("line 3"), std::string::npos) << f.what();
}

TEST(Config, SeveralDocumentsRejected) {
    EXPECT_STREQ(error_of(std::string(kMinimal) + "---\n" + kMinimal).what(),
                 "config: expected one YAML document (got 2)");
}

TEST(Config, DuplicateKeyRejected) {
    EXPECT_STREQ(error_of("node:\n  cluster: a\n  cluster: b\n").what(),
                 "node.cluster: duplicate key");
}

TEST(Config, EnvExpandedInsideValuesAndLists) {
    std::string yaml = R"(
node: {cluster: "c-${NODE_REGION}", zone: "${NODE_ZONE}", region: "${NODE_REGION}"}
dns: {zones: ["${NODE_REGION}.global"], listen: ["127.0.0.1:${PORT}"], ttl: "${TTL}"}
source: {kind: file, file: {path: "/data/${NODE_ZONE}/gs.yaml"}}
datapath: {attach: [{iface: "${IFACE}", mode: "${MODE}"}]}
)";
    auto env = fake_env({{"NODE_ZONE", "z1"},
                         {"NODE_REGION", "north"},
                         {"PORT", "5353"},
                         {"TTL", "9"},
                         {"IFACE", "eth0"},
                         {"MODE", "tc"}});
    Config c = parse_config(yaml, "/", env);
    EXPECT_EQ(c.node.cluster, "c-north");
    EXPECT_EQ(c.node.zone, "z1");
    EXPECT_EQ(c.dns.zones, std::vector<std::string>{"north.global"});
    EXPECT_EQ(c.dns.listen, std::vector<SocketAddr>{addr("127.0.0.1:5353")});
    EXPECT_EQ(c.dns.ttl, 9u);
    EXPECT_EQ(c.source.file.path, "/data/z1/gs.yaml");
    ASSERT_EQ(c.datapath.attach.size(), 1u);
    EXPECT_EQ(c.datapath.attach[0].iface, "eth0");
    EXPECT_EQ(c.datapath.attach[0].mode, AttachMode::Tc);
}

TEST(Config, EnvNotExpandedInKeysAndLoneDollarKept) {
    auto e = error_of(std::string(kMinimal) + "${SECTION}: {}\n", fake_env({{"SECTION", "dns"}}));
    EXPECT_STREQ(e.what(), "${SECTION}: unknown key");
    Config c = parse(with("source.file.path", "'/srv/a$b/$'"));
    EXPECT_EQ(c.source.file.path, "/srv/a$b/$");
}

TEST(Config, UnsetVariableInListNamesTheElement) {
    EXPECT_STREQ(error_of(with("dns.upstream", "['${DNS1}']")).what(),
                 "dns.upstream[0]: environment variable DNS1 is not set");
}

TEST(Config, ExpandedValueIsValidated) {
    EXPECT_STREQ(error_of(with("dns.ttl", "'${T}'"), fake_env({{"T", "9000"}})).what(),
                 "dns.ttl: must be an integer in 0..3600 (got 9000)");
}

TEST(Config, ProcessEnvironmentIsTheDefault) {
    ASSERT_EQ(setenv("FABDNS_TEST_ZONE", "from-env", 1), 0);
    Config c = parse_config(with("node.zone", "${FABDNS_TEST_ZONE}"), "/");
    EXPECT_EQ(c.node.zone, "from-env");
    unsetenv("FABDNS_TEST_ZONE");
    try {
        parse_config(with("node.zone", "${FABDNS_TEST_ZONE}"), "/");
        FAIL();
    } catch (const ConfigError &e) {
        EXPECT_STREQ(e.what(), "node.zone: environment variable FABDNS_TEST_ZONE is not set");
    }
}

TEST(Config, RelativePathsResolvedAgainstBaseDir) {
    std::string yaml = R"(
node: {cluster: a}
source:
  kind: hub
  file: {path: gs}
  hub: {url: "https://h", cluster: a, ca: ca.crt, cert: ./tls/../tls.crt, key: /abs/tls.key,
        snapshot: var/last.json}
  kubernetes: {kubeconfig: kube.conf}
)";
    Config c = parse_config(yaml, "/etc/fabdns", fake_env());
    EXPECT_EQ(c.source.file.path, "/etc/fabdns/gs");
    EXPECT_EQ(c.source.hub.ca, "/etc/fabdns/ca.crt");
    EXPECT_EQ(c.source.hub.cert, "/etc/fabdns/tls.crt");
    EXPECT_EQ(c.source.hub.key, "/abs/tls.key");
    EXPECT_EQ(c.source.hub.snapshot, "/etc/fabdns/var/last.json");
    EXPECT_EQ(c.source.kubernetes.kubeconfig, "/etc/fabdns/kube.conf");
    Config d = parse_config(yaml, ".", fake_env());
    EXPECT_EQ(d.source.file.path, "gs");
}

TEST(Config, OtherKindsSectionsStillValidated) {
    // kind is file, but a typo in the hub section is still reported.
    EXPECT_STREQ(error_of(with("source.hub.intervall", "5s")).what(),
                 "source.hub.intervall: unknown key");
}

TEST(Config, AttachModeNames) {
    for (AttachMode m : {AttachMode::Xdp, AttachMode::XdpGeneric, AttachMode::Tc})
        EXPECT_EQ(parse_attach_mode(to_string(m)), m);
    EXPECT_STREQ(to_string(AttachMode::XdpGeneric), "xdp-generic");
    EXPECT_FALSE(parse_attach_mode("XDP"));
    EXPECT_FALSE(parse_attach_mode(""));
    for (SourceKind k : {SourceKind::File, SourceKind::Hub, SourceKind::Kubernetes})
        EXPECT_EQ(parse_source_kind(to_string(k)), k);
}

TEST(Config, Durations) {
    EXPECT_EQ(parse_duration("250ms"), 250ms);
    EXPECT_EQ(parse_duration("5s"), 5s);
    EXPECT_EQ(parse_duration("2m"), 2min);
    EXPECT_EQ(parse_duration("1h"), 1h);
    EXPECT_EQ(parse_duration("1m30s"), 90s);
    EXPECT_EQ(parse_duration("30"), 30s);
    EXPECT_EQ(parse_duration("0s"), 0ms);
    for (const char *bad : {"", "s", "5x", "5 s", "-1s", "+1s", "1.5s", "1s ", "1s5",
                            "99999999999999999999h", "9999999999999999s"})
        EXPECT_FALSE(parse_duration(bad)) << bad;
}

TEST(Config, SpecExampleParses) {
    // SPEC §2, verbatim.
    const char *spec = R"(
node:
  cluster: beijing          # required: the cluster this node belongs to
  zone: beijing             # optional topology labels of this node
  region: north
dns:
  zones: [global]           # zones answered authoritatively (more: e.g. clusterset.local)
  ttl: 5                    # seconds, 0..3600
  listen: ["127.0.0.1:1053"]  # user-space resolver, UDP and TCP on each
  upstream: []              # where names outside `zones` go; empty: REFUSED
source:
  kind: file                # file | hub | kubernetes
  file:
    path: examples/globalservices.yaml   # one or many YAML docs; a directory is allowed
  hub:
    url: https://service-hub.fabedge:3000
    cluster: beijing        # sent as X-FabEdge-Cluster
    ca: /etc/fabdns/ca.crt
    cert: /etc/fabdns/tls.crt
    key: /etc/fabdns/tls.key
    interval: 5s
    snapshot: /var/lib/fabdns/last-known.json   # last-known-good copy, used at start if the hub is down
  kubernetes:
    server: ""              # empty: in-cluster service account; or e.g. http://127.0.0.1:10261 (an edge API proxy)
    kubeconfig: ""
datapath:
  enabled: true
  pin_path: /sys/fs/bpf/fabdns
  capacity: 65536           # answer-map entries
  answer_for: []            # destination IP:port pairs answered in-kernel; empty: the dns.listen addresses
  attach:
    - iface: lo
      mode: xdp-generic     # xdp | xdp-generic | tc
  stale_after: 120s         # kernel stops answering when the daemon is gone this long
  detach_on_exit: false     # SIGTERM keeps the datapath answering (upgrades without a gap)
  required: false           # true: exit 1 when the datapath cannot load/attach (default: serve in user space)
metrics:
  listen: 127.0.0.1:9153    # GET /metrics (Prometheus text), /healthz, /readyz
)";
    Config c = parse_config(spec, "/work", fake_env());
    EXPECT_EQ(c.node.cluster, "beijing");
    EXPECT_EQ(c.node.zone, "beijing");
    EXPECT_EQ(c.node.region, "north");
    EXPECT_EQ(c.dns.zones, std::vector<std::string>{"global"});
    EXPECT_EQ(c.dns.listen, std::vector<SocketAddr>{addr("127.0.0.1:1053")});
    EXPECT_EQ(c.source.kind, SourceKind::File);
    EXPECT_EQ(c.source.file.path, "/work/examples/globalservices.yaml");
    EXPECT_EQ(c.source.hub.url, "https://service-hub.fabedge:3000");
    EXPECT_EQ(c.source.hub.ca, "/etc/fabdns/ca.crt");
    EXPECT_EQ(c.source.hub.interval, 5s);
    EXPECT_EQ(c.datapath.answer_for, std::vector<SocketAddr>{addr("127.0.0.1:1053")});
    ASSERT_EQ(c.datapath.attach.size(), 1u);
    EXPECT_EQ(c.datapath.attach[0].iface, "lo");
    EXPECT_EQ(c.datapath.attach[0].mode, AttachMode::XdpGeneric);
    EXPECT_EQ(c.datapath.stale_after, 120s);
    EXPECT_EQ(c.metrics.listen, addr("127.0.0.1:9153"));
}

TEST(Config, LoadConfigResolvesAgainstTheFilesDirectory) {
    auto dir =
        std::filesystem::temp_directory_path() / ("fabdns-config-" + std::to_string(getpid()));
    std::filesystem::create_directories(dir / "etc");
    auto file = dir / "etc" / "fabdns.yaml";
    std::ofstream(file) << kMinimal;
    Config c = load_config(file.string(), fake_env());
    EXPECT_EQ(c.source.file.path, (dir / "etc" / "gs.yaml").string());

    try {
        load_config((dir / "missing.yaml").string(), fake_env());
        FAIL();
    } catch (const ConfigError &e) {
        EXPECT_EQ(e.key(), "config");
        EXPECT_NE(std::string(e.what()).find("missing.yaml"), std::string::npos);
    }
    try {
        load_config(dir.string(), fake_env());
        FAIL();
    } catch (const ConfigError &e) {
        EXPECT_EQ(e.key(), "config");
    }
    std::filesystem::remove_all(dir);
}

TEST(Config, EqualityTellsWhatChanged) {
    Config a = parse(kMinimal), b = parse(kMinimal);
    EXPECT_EQ(a, b);
    Config c = parse(with("dns.ttl", "6"));
    EXPECT_NE(a, c);
    EXPECT_EQ(a.datapath, c.datapath);
}

}  // namespace
}  // namespace fabdns
