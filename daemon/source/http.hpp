// A small blocking HTTP(S) client over libcurl for the hub and Kubernetes sources: mutual TLS
// from files or in-memory PEM, connect and total timeouts, a body size limit, streaming bodies,
// and cancel() that interrupts a transfer at once (so stop() never waits for a timeout).
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace fabdns::source_detail {

struct TlsSettings {
    std::string ca_file, cert_file, key_file;  // paths ("" = not set)
    std::string ca_pem, cert_pem, key_pem;     // in-memory PEM; preferred over the paths when set
    bool insecure_skip_verify = false;         // kubeconfig insecure-skip-tls-verify only
};

struct HttpRequest {
    std::string url;
    std::vector<std::string> headers;  // "Name: value"
    TlsSettings tls;
    bool https_only = false;  // refuse plain http:// (the hub must be mutual TLS)
    bool http1_only = false;  // HTTP/1.1 even where the server offers HTTP/2 (ALPN)
    std::chrono::milliseconds connect_timeout{5000};
    std::chrono::milliseconds timeout{30000};  // whole transfer; 0 = none
    size_t max_body = size_t{64} << 20;        // decoded bytes; 0 = unlimited
    // Bytes reserved for a 2xx body that announces no length (chunked), so that it does not
    // grow by doubling (holding up to twice the answer while it arrives); 0 = none.
    size_t expected_body = 0;
    // Streaming: for a 2xx answer, body bytes go here instead of HttpResponse::body. Return
    // false to abort the transfer (HttpFailure::Aborted).
    std::function<bool(std::string_view)> on_data;
    // Called once with the final status when the response headers are complete (before any
    // body): lets a long stream report "connected" before its first byte of data.
    std::function<void(long status)> on_response;
};

enum class HttpFailure {
    None,
    Cancelled,  // cancel() was called
    TooLarge,   // the body passed max_body
    Aborted,    // on_data returned false
    Tls,        // handshake, certificate or verification problem, either side
    Timeout,
    Connect,   // could not reach the server
    Transfer,  // the connection broke mid-answer, a truncated body, a malformed answer
    Setup,     // a bad URL or option (our side)
};

const char *to_string(HttpFailure failure);

struct HttpResponse {
    HttpFailure failure = HttpFailure::None;
    std::string error;  // libcurl's explanation when failure != None
    long status = 0;    // HTTP status, 0 when no answer was received
    std::string body;   // the body (non-2xx bodies are kept too, cut to 64 KiB)

    bool transport_ok() const { return failure == HttpFailure::None; }
};

// One client per thread of use: perform() is not reentrant; cancel() may be called from any
// thread. Connections are kept alive between perform() calls.
class HttpClient {
  public:
    HttpClient();
    ~HttpClient();
    HttpClient(const HttpClient &) = delete;
    HttpClient &operator=(const HttpClient &) = delete;

    HttpResponse perform(const HttpRequest &request);

    // Makes the running perform() and every later one return HttpFailure::Cancelled at once.
    void cancel();
    bool cancelled() const { return cancelled_.load(); }

  private:
    void *multi_ = nullptr;  // CURLM*
    void *easy_ = nullptr;   // CURL*
    std::atomic<bool> cancelled_{false};
};

}  // namespace fabdns::source_detail
