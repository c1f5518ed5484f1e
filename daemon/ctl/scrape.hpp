// Asking the running daemon over metrics.listen: its user-space counters (GET /metrics, with a
// parser for the Prometheus text exposition format) and its explain reports (GET /explain).
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/net.hpp"

namespace fabdns::ctl {

struct Sample {
    std::string name;
    std::map<std::string, std::string> labels;
    std::string value;  // as written by the server ("12", "0.25", "NaN")

    // The value as a number; NaN when it is not one.
    double number() const;
    // `name{a="x",b="y"}` as Prometheus writes it (labels sorted).
    std::string series() const;
};

// Parses exposition-format text. Comment and blank lines are skipped; a malformed line is
// skipped too (an operator tool shows what it can read).
std::vector<Sample> parse_metrics(std::string_view text);

// The URL fabdnsctl scrapes for a metrics.listen address: an unspecified address (0.0.0.0, ::)
// is reached through the loopback address of its family.
std::string metrics_url(const SocketAddr &listen);

struct ScrapeResult {
    bool ok = false;
    std::string error;  // why not, when !ok ("connection refused", "HTTP 503")
    std::vector<Sample> samples;
};

struct HttpResult {
    bool ok = false;    // 200
    std::string error;  // why not ("connection refused", "HTTP 404")
    std::string body;
};

// GET url with short timeouts, never through a proxy (the daemon is on this node); bodies over
// 16 MiB are refused.
HttpResult http_get(const std::string &url,
                    std::chrono::milliseconds timeout = std::chrono::milliseconds(2000));

// The daemon's GET /explain for a name and type, on the server of a metrics URL.
std::string explain_url(const std::string &metrics_url, std::string_view name,
                        std::string_view type);

// GET url and parse the metrics it serves.
ScrapeResult scrape(const std::string &url,
                    std::chrono::milliseconds timeout = std::chrono::milliseconds(2000));

}  // namespace fabdns::ctl
