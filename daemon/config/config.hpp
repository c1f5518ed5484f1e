// fabdns's configuration (SPEC §2): the typed form of the YAML file, its defaults, and the
// validation that turns every bad key or value into one line naming the key.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/net.hpp"

namespace fabdns {

enum class AttachMode { Xdp, XdpGeneric, Tc };
const char *to_string(AttachMode mode);
std::optional<AttachMode> parse_attach_mode(std::string_view text);

enum class SourceKind { File, Hub, Kubernetes };

struct Config {
    struct Node {
        std::string cluster, zone, region;
    } node;
    struct Dns {
        std::vector<std::string> zones{"global"};  // lowercased, trailing dot removed
        uint32_t ttl = 5;
        std::vector<SocketAddr> listen;            // default 127.0.0.1:1053
        std::vector<SocketAddr> upstream;          // bare addresses get port 53
    } dns;
    struct Source {
        SourceKind kind = SourceKind::File;
        struct File {
            std::string path;
        } file;
        struct Hub {
            std::string url, cluster, ca, cert, key;
            std::chrono::milliseconds interval{5000};
            std::string snapshot = "/var/lib/fabdns/last-known.json";
        } hub;
        struct Kubernetes {
            std::string server, kubeconfig;
        } kubernetes;
    } source;
    struct Datapath {
        bool enabled = true;
        std::string pin_path = "/sys/fs/bpf/fabdns";
        uint32_t capacity = 65536;
        std::vector<SocketAddr> answer_for;  // empty in the file: filled with dns.listen
        struct Attach {
            std::string iface;
            AttachMode mode = AttachMode::XdpGeneric;
        };
        std::vector<Attach> attach;
        std::chrono::milliseconds stale_after{120000};
        bool detach_on_exit = false;
    } datapath;
    struct Metrics {
        std::optional<SocketAddr> listen;  // default 127.0.0.1:9153; "" disables
    } metrics;
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
// snapshot, kubeconfig) are resolved against base_dir. Throws ConfigError.
Config parse_config(const std::string &yaml_text, const std::string &base_dir = ".",
                    const EnvLookup &env = nullptr /* nullptr: the process environment */);

// Reads and parses a file; an unreadable file is a ConfigError with key "config".
Config load_config(const std::string &path, const EnvLookup &env = nullptr);

}  // namespace fabdns
