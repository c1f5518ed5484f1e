// The Kubernetes source (SPEC §5): list + watch of globalservices.dns.fabedge.io/v1alpha1 in all
// namespaces, resuming from the last resourceVersion and re-listing on 410 Gone without ever
// serving a gap.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "config/config.hpp"
#include "source/source.hpp"

namespace fabdns {

struct KubeOptions {
    std::string server;                  // "" = from the kubeconfig or in-cluster
    std::string kubeconfig;              // "" = none
    bool allow_token_over_http = false;  // send a kubeconfig token to an http:// server
    std::string service_account_dir = "/var/run/secrets/kubernetes.io/serviceaccount";
    // Environment lookup for KUBERNETES_SERVICE_HOST/PORT; nullptr = the process environment.
    std::function<std::optional<std::string>(const std::string &)> env;
    std::chrono::milliseconds coalesce{50};   // at most one delivery per this: a burst is one set
    std::chrono::seconds watch_timeout{300};  // timeoutSeconds asked of the server
    std::chrono::milliseconds connect_timeout{5000};
    std::chrono::milliseconds list_timeout{60000};  // per list page
    std::chrono::milliseconds min_backoff{500};
    std::chrono::milliseconds max_backoff{30000};
    std::chrono::seconds token_refresh{60};        // re-read a token file this often (rotation)
    size_t page_size = 500;                        // list in pages of this many; 0 = one request
    size_t max_response_bytes = size_t{64} << 20;  // per list page, and per watch event line
    size_t max_object_bytes = size_t{1} << 20;     // one GlobalService; larger: rejected

    static KubeOptions from_config(const Config::Source::Kubernetes &kube);
};

// Behaviour:
// - A list fills a fresh map keyed by namespace/name that replaces the held one only once the
//   whole list (all pages) succeeded; until then the old set keeps being served.
// - The watch applies ADDED/MODIFIED/DELETED to the changes held and delivers the next set,
//   which shares every unchanged service with the set before (the engine skips those by
//   pointer). An event after a quiet spell is delivered at once; after that, at most one set per
//   `coalesce` carries whatever arrived meanwhile. BOOKMARK only advances the resourceVersion.
// - When a stream ends or breaks it is resumed from the last resourceVersion seen; a 410 (HTTP
//   status or ERROR event) leads to a re-list. Other failures back off exponentially.
// - An event whose object the decoder refuses is logged and skipped; for MODIFIED the previous
//   version of that object stays.
// - An empty list is a valid answer of the API server and is delivered (all objects deleted).
class KubernetesSource final : public Source {
  public:
    explicit KubernetesSource(KubeOptions options);
    ~KubernetesSource() override;

    void start(Update on_update) override;
    void stop() override;
    SourceStatus status() const override;

    // How many listed objects were parsed and decoded since start: a re-list decodes only the
    // objects whose bytes changed since the list before (SpanCache).
    uint64_t objects_decoded() const;

  private:
    struct State;
    std::unique_ptr<State> state_;
    std::thread worker_, deliverer_;
};

}  // namespace fabdns
