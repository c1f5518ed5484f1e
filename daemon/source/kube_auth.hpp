// How the Kubernetes source reaches the API server: an explicit server URL, the common subset of
// a kubeconfig file, or the in-cluster service account.
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "source/http.hpp"

namespace fabdns::source_detail {

struct KubeAccess {
    std::string server;      // "https://10.96.0.1:443", no trailing slash
    TlsSettings tls;         // CA and client certificate, from files or inline PEM
    std::string token;       // a fixed bearer token
    std::string token_file;  // a bearer token re-read from this file (service accounts rotate)
    std::string origin;      // where this came from, for logs ("kubeconfig /x, context y")
};

using KubeEnv = std::function<std::optional<std::string>(const std::string &name)>;

// Reads the current context of a kubeconfig file: the cluster's server, certificate-authority
// (-data), insecure-skip-tls-verify, and the user's token, tokenFile, client-certificate(-data)
// and client-key(-data). Relative paths are taken from the kubeconfig's directory. exec and
// auth-provider users are not supported. Throws std::runtime_error with the reason.
KubeAccess load_kubeconfig(const std::string &path);

// The in-cluster service account: KUBERNETES_SERVICE_HOST/PORT from `env` (nullptr: the process
// environment), ca.crt and token from sa_dir. Throws std::runtime_error when not in a cluster.
KubeAccess in_cluster_access(const std::string &sa_dir, const KubeEnv &env);

// The rules of source.kubernetes: a kubeconfig when given (server, when also given, overrides
// its cluster's); else an explicit server (https: with the service account's CA and token when
// they exist; http: no credentials, as for a node-local API proxy); else in-cluster.
// A kubeconfig's bearer token goes to an http:// server only with allow_token_over_http (on
// plain http anyone on the path reads it); origin says which applies.
KubeAccess resolve_kube_access(const std::string &server, const std::string &kubeconfig,
                               const std::string &sa_dir, const KubeEnv &env,
                               bool allow_token_over_http = false);

// Standard base64 (as in kubeconfig *-data fields); throws std::runtime_error on bad input.
std::string base64_decode(const std::string &text);

}  // namespace fabdns::source_detail
