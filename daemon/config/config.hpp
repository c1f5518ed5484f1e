// fabdns's configuration (SPEC §2): the typed form of the YAML file, its defaults, and the
// validation that turns every bad key or value into one line naming the key.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "common/attach_mode.hpp"
#include "common/net.hpp"
#include "fabdns_maps.h"

namespace fabdns {

enum class SourceKind { File, Hub, Kubernetes };
const char *to_string(SourceKind kind);
std::optional<SourceKind> parse_source_kind(std::string_view text);

// Parses a duration: one or more <integer><unit> terms with unit ms, s, m or h ("250ms", "5s",
// "1m30s"), or a plain integer meaning seconds ("30"). Nullopt when malformed or too large.
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text);

// Every member's initializer is the default the file falls back to, so Config{} is the
// configuration of an empty file (which still fails validation: node.cluster and source are
// required). operator== lets a SIGHUP reload tell what changed.
struct Config {
    struct Node {
        std::string cluster, zone, region;
        bool operator==(const Node &) const = default;
    } node;
    struct Dns {
        std::vector<std::string> zones{"global"};  // lowercased, trailing dot removed
        uint32_t ttl = 5;
        std::vector<SocketAddr> listen{SocketAddr{IpAddr::v4(127, 0, 0, 1), 1053}};
        std::vector<SocketAddr> upstream;  // bare addresses get port 53
        bool operator==(const Dns &) const = default;
    } dns;
    struct Source {
        SourceKind kind = SourceKind::File;
        struct File {
            std::string path;
            bool operator==(const File &) const = default;
        } file;
        struct Hub {
            std::string url;  // https://..., without a trailing slash
            std::string cluster, ca, cert, key;
            std::chrono::milliseconds interval{5000};
            std::string snapshot = "/var/lib/fabdns/last-known.json";  // "" keeps no snapshot
            // An answer (or snapshot) larger than this is refused before it is parsed.
            uint32_t max_response_bytes = uint32_t{64} << 20;
            bool operator==(const Hub &) const = default;
        } hub;
        struct Kubernetes {
            std::string server, kubeconfig;
            // A bearer token is sent to an http:// server only when this is true: on plain
            // http anyone on the path reads it (an edge API proxy usually needs none).
            bool allow_token_over_http = false;
            bool operator==(const Kubernetes &) const = default;
        } kubernetes;
        bool operator==(const Source &) const = default;
    } source;
    struct Datapath {
        bool enabled = true;
        std::string pin_path = "/sys/fs/bpf/fabdns";
        uint32_t capacity = FABDNS_ANSWERS_CAPACITY;
        std::vector<SocketAddr> answer_for;  // empty in the file: filled with dns.listen
        struct Attach {
            std::string iface;
            AttachMode mode = AttachMode::XdpGeneric;
            bool operator==(const Attach &) const = default;
        };
        // Default: attach nowhere. The daemon cannot guess which interfaces carry DNS, and
        // attaching to one the operator did not name would change its traffic unasked.
        std::vector<Attach> attach;
        std::chrono::milliseconds stale_after{120000};
        bool detach_on_exit = false;
        // false: a datapath that cannot load or attach leaves DNS to user space (and attaching
        // is retried); true: that is a start-up failure (exit 1).
        bool required = false;
        bool operator==(const Datapath &) const = default;
    } datapath;
    struct Metrics {
        std::optional<SocketAddr> listen{
            SocketAddr{IpAddr::v4(127, 0, 0, 1), 9153}};  // "" disables
        bool operator==(const Metrics &) const = default;
    } metrics;
    bool operator==(const Config &) const = default;
};

// A config error: `key` is the dotted path ("dns.ttl", "datapath.attach[0].mode").
class ConfigError : public std::runtime_error {
  public:
    ConfigError(std::string key, const std::string &problem)
        : std::runtime_error(key + ": " + problem), key_(std::move(key)) {}
    const std::string &key() const { return key_; }

  private:
    std::string key_;
};

using EnvLookup = std::function<std::optional<std::string>(const std::string &name)>;

// Parses and validates YAML text. Relative file paths (source.file.path, hub ca/cert/key,
// snapshot, kubeconfig) are resolved against base_dir. ${NAME} in any scalar value (never in a
// key) is replaced from `env` first, so expanded values are validated like literal ones. An
// empty datapath.answer_for is filled with dns.listen. Throws ConfigError naming the first bad
// key; YAML syntax errors have key "config" and give the line.
Config parse_config(const std::string &yaml_text, const std::string &base_dir = ".",
                    const EnvLookup &env = nullptr /* nullptr: the process environment */);

// Reads and parses a file; an unreadable file is a ConfigError with key "config".
Config load_config(const std::string &path, const EnvLookup &env = nullptr);

}  // namespace fabdns
