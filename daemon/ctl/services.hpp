// The GlobalServices fabdnsd would hold, read once for `fabdnsctl explain`: the file source's
// manifests (through the daemon's own FileSource, so parsing rules cannot drift) or the hub's
// last-known-good snapshot (decoded by the hub source's own rules).
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "model/globalservice.hpp"

namespace fabdns::ctl {

struct LoadedServices {
    std::vector<GlobalService> services;
    size_t rejected = 0;  // objects the decoder refused (the daemon logs why)
    std::string origin;   // "file examples/globalservices.yaml", "hub snapshot /var/lib/..."
};

// Throws std::runtime_error with an operator-readable reason when the services cannot be read
// (missing file, syntax error, no snapshot yet, a Kubernetes source).
LoadedServices load_services(const Config::Source &source,
                             std::chrono::milliseconds timeout = std::chrono::seconds(10));

}  // namespace fabdns::ctl
