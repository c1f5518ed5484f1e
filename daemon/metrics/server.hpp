// The metrics and probe HTTP server on metrics.listen: GET /metrics (Prometheus text),
// /healthz (liveness) and /readyz (readiness), as CoreDNS's prometheus, health and ready
// plugins serve them, plus pages the daemon adds (GET /explain for fabdnsctl).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>

#include "common/net.hpp"
#include "metrics/registry.hpp"

namespace fabdns::metrics {

// The server could not start; the message names the address and the OS error.
class ServerError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

struct Readiness {
    bool ready = true;
    std::string reason;  // shown in the 503 body when not ready
};

// Serves until destroyed. Responses:
//   GET /metrics  200, text/plain; version=0.0.4, the registry's scrape
//   GET /healthz  200 "OK" while the process is serving at all
//   GET /readyz   200 "OK" when the readiness check says so, else 503 with its reason
//   pages         what the page returns
//   other paths   404; methods other than GET and HEAD: 405 with Allow: GET, HEAD
// Requests are handled on one internal thread, so the readiness check and the collectors run
// there, one request at a time.
struct PageReply {
    unsigned status = 200;
    std::string body;
    std::string content_type = "application/json";
};

class Server {
  public:
    using ReadyCheck = std::function<Readiness()>;
    // A page: the request's query arguments in, the reply out.
    using Page = std::function<PageReply(const std::map<std::string, std::string> &args)>;

    // Binds `listen` (IPv4 or IPv6; port 0 picks a free port) and starts serving. `registry`
    // must outlive the server. A null `ready` means always ready. `pages` adds paths. Throws
    // ServerError.
    Server(const SocketAddr &listen, const Registry &registry, ReadyCheck ready = nullptr,
           std::map<std::string, Page> pages = {});
    ~Server();  // stops accepting and waits for the request in progress
    Server(const Server &) = delete;
    Server &operator=(const Server &) = delete;

    // The bound address, with the real port when port 0 was asked for.
    const SocketAddr &address() const;

    struct Impl;

  private:
    std::unique_ptr<Impl> impl_;
};

}  // namespace fabdns::metrics
