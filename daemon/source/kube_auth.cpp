// kubeconfig and in-cluster credential resolution for the Kubernetes source.
#include "source/kube_auth.hpp"

#include <yaml-cpp/yaml.h>

#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string_view>

#include "source/snapshot.hpp"

namespace fabdns::source_detail {

namespace fs = std::filesystem;

std::string base64_decode(const std::string &text) {
    auto value = [](char c) -> int {
        if (c >= 'A' && c <= 'Z') return c - 'A';
        if (c >= 'a' && c <= 'z') return c - 'a' + 26;
        if (c >= '0' && c <= '9') return c - '0' + 52;
        if (c == '+' || c == '-') return 62;
        if (c == '/' || c == '_') return 63;
        return -1;
    };
    std::string out;
    out.reserve(text.size() * 3 / 4);
    uint32_t acc = 0;
    int bits = 0;
    bool padding = false;
    for (char c : text) {
        if (c == ' ' || c == '\n' || c == '\r' || c == '\t') continue;
        if (c == '=') {
            padding = true;
            continue;
        }
        int v = value(c);
        if (v < 0 || padding) throw std::runtime_error("invalid base64");
        acc = (acc << 6) | static_cast<uint32_t>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out.push_back(static_cast<char>((acc >> bits) & 0xff));
        }
    }
    if (bits >= 6) throw std::runtime_error("invalid base64 length");
    return out;
}

namespace {

std::string scalar(const YAML::Node &node, const char *key) {
    const YAML::Node v = node[key];
    if (!v || v.IsNull()) return "";
    if (!v.IsScalar()) throw std::runtime_error(std::string(key) + " is not a string");
    return v.as<std::string>();
}

// The entry named `name` in a kubeconfig list (clusters, users, contexts): its inner map.
YAML::Node find_named(const YAML::Node &root, const char *list, const char *inner,
                      const std::string &name) {
    const YAML::Node items = root[list];
    if (items && items.IsSequence()) {
        for (const auto &item : items) {
            if (item["name"] && item["name"].as<std::string>() == name) {
                const YAML::Node v = item[inner];
                if (v && v.IsMap()) return v;
                return YAML::Node(YAML::NodeType::Map);
            }
        }
    }
    throw std::runtime_error(std::string(list) + ": no entry named '" + name + "'");
}

std::string resolve_path(const fs::path &base, const std::string &p) {
    if (p.empty() || fs::path(p).is_absolute()) return p;
    return (base / p).string();
}

std::string decode_data(const std::string &data, const char *field) {
    try {
        return base64_decode(data);
    } catch (const std::exception &e) {
        throw std::runtime_error(std::string(field) + ": " + e.what());
    }
}

// Whether text starts with prefix, ignoring ASCII case (URL schemes are case-insensitive).
bool lower_prefix(const std::string &text, std::string_view prefix) {
    if (text.size() < prefix.size()) return false;
    for (size_t i = 0; i < prefix.size(); i++)
        if (std::tolower(static_cast<unsigned char>(text[i])) != prefix[i]) return false;
    return true;
}

std::string trim_server(std::string s) {
    while (!s.empty() && s.back() == '/') s.pop_back();
    return s;
}

}  // namespace

KubeAccess load_kubeconfig(const std::string &path) {
    std::string why;
    auto text = read_whole_file(path, why);
    if (!text) throw std::runtime_error(why.empty() ? path + " does not exist" : why);
    YAML::Node root;
    try {
        root = YAML::Load(*text);
    } catch (const YAML::Exception &e) {
        throw std::runtime_error(path + ": " + e.what());
    }
    if (!root.IsMap()) throw std::runtime_error(path + ": not a kubeconfig (not a map)");
    const fs::path base = fs::path(path).parent_path();

    KubeAccess a;
    try {
        std::string context_name = scalar(root, "current-context");
        if (context_name.empty()) throw std::runtime_error("current-context is not set");
        YAML::Node context = find_named(root, "contexts", "context", context_name);
        std::string cluster_name = scalar(context, "cluster");
        std::string user_name = scalar(context, "user");
        YAML::Node cluster = find_named(root, "clusters", "cluster", cluster_name);

        a.server = trim_server(scalar(cluster, "server"));
        if (a.server.empty())
            throw std::runtime_error("cluster '" + cluster_name + "' has no server");
        if (auto data = scalar(cluster, "certificate-authority-data"); !data.empty()) {
            a.tls.ca_pem = decode_data(data, "certificate-authority-data");
        } else {
            a.tls.ca_file = resolve_path(base, scalar(cluster, "certificate-authority"));
        }
        a.tls.insecure_skip_verify = scalar(cluster, "insecure-skip-tls-verify") == "true";

        if (!user_name.empty()) {
            YAML::Node user = find_named(root, "users", "user", user_name);
            if (user["exec"] || user["auth-provider"]) {
                throw std::runtime_error("user '" + user_name +
                                         "': exec and auth-provider credentials are not supported");
            }
            a.token = scalar(user, "token");
            a.token_file = resolve_path(base, scalar(user, "tokenFile"));
            if (auto data = scalar(user, "client-certificate-data"); !data.empty()) {
                a.tls.cert_pem = decode_data(data, "client-certificate-data");
            } else {
                a.tls.cert_file = resolve_path(base, scalar(user, "client-certificate"));
            }
            if (auto data = scalar(user, "client-key-data"); !data.empty()) {
                a.tls.key_pem = decode_data(data, "client-key-data");
            } else {
                a.tls.key_file = resolve_path(base, scalar(user, "client-key"));
            }
        }
        a.origin = "kubeconfig " + path + ", context " + context_name;
    } catch (const YAML::Exception &e) {
        throw std::runtime_error(path + ": " + e.what());
    } catch (const std::runtime_error &e) {
        throw std::runtime_error(path + ": " + e.what());
    }
    return a;
}

namespace {
std::optional<std::string> lookup(const KubeEnv &env, const std::string &name) {
    if (env) return env(name);
    const char *v = std::getenv(name.c_str());
    if (v == nullptr) return std::nullopt;
    return std::string(v);
}

bool exists(const std::string &p) {
    std::error_code ec;
    return fs::exists(p, ec);
}
}  // namespace

KubeAccess in_cluster_access(const std::string &sa_dir, const KubeEnv &env) {
    auto host = lookup(env, "KUBERNETES_SERVICE_HOST");
    auto port = lookup(env, "KUBERNETES_SERVICE_PORT");
    if (!host || host->empty() || !port || port->empty()) {
        throw std::runtime_error(
            "not running in a cluster (KUBERNETES_SERVICE_HOST/PORT unset); set "
            "source.kubernetes.server or source.kubernetes.kubeconfig");
    }
    KubeAccess a;
    bool v6 = host->find(':') != std::string::npos;
    a.server = "https://" + (v6 ? "[" + *host + "]" : *host) + ":" + *port;
    a.tls.ca_file = sa_dir + "/ca.crt";
    a.token_file = sa_dir + "/token";
    if (!exists(a.tls.ca_file)) throw std::runtime_error(a.tls.ca_file + " does not exist");
    if (!exists(a.token_file)) throw std::runtime_error(a.token_file + " does not exist");
    a.origin = "in-cluster service account";
    return a;
}

KubeAccess resolve_kube_access(const std::string &server, const std::string &kubeconfig,
                               const std::string &sa_dir, const KubeEnv &env,
                               bool allow_token_over_http) {
    if (!kubeconfig.empty()) {
        KubeAccess a = load_kubeconfig(kubeconfig);
        if (!server.empty()) {
            a.server = trim_server(server);
            a.origin += ", server " + a.server;
        }
        const bool plain = lower_prefix(a.server, "http://");
        const bool has_token = !a.token.empty() || !a.token_file.empty();
        if (plain && has_token && !allow_token_over_http) {
            a.token.clear();
            a.token_file.clear();
            a.origin +=
                ", without its bearer token over plain http "
                "(source.kubernetes.allow_token_over_http: true would send it)";
        } else if (plain && has_token) {
            a.origin += ", bearer token sent over plain http (allow_token_over_http)";
        }
        return a;
    }
    if (server.empty()) return in_cluster_access(sa_dir, env);
    KubeAccess a;
    a.server = trim_server(server);
    a.origin = "server " + a.server;
    // A bearer token never goes over plain http; https uses the service account when present.
    if (lower_prefix(a.server, "https://")) {
        if (exists(sa_dir + "/ca.crt")) a.tls.ca_file = sa_dir + "/ca.crt";
        if (exists(sa_dir + "/token")) a.token_file = sa_dir + "/token";
        if (!a.token_file.empty()) a.origin += " with the service account";
    }
    return a;
}

}  // namespace fabdns::source_detail
