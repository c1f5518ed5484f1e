// Where the daemon's GlobalServices come from (SPEC §5): the Source interface shared by the file,
// hub and Kubernetes sources, their health as seen by metrics and probes, and the factory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "model/globalservice.hpp"

namespace fabdns {

// A point-in-time view of a source's health. Copied out under a lock, so a value is consistent.
struct SourceStatus {
    std::string kind;            // "file", "hub", "kubernetes"
    bool healthy = false;        // the latest sync attempt succeeded
    bool has_data = false;       // some set was delivered (a hub snapshot counts)
    int64_t last_sync_unix = 0;  // last successful sync with the source, 0 = never
    uint64_t consecutive_failures = 0;
    uint64_t total_failures = 0;
    size_t objects = 0;      // services in the set currently held
    size_t rejected = 0;     // objects left out of the last accepted set by the decoder
    std::string last_error;  // short reason of the latest failure, "" after a success
};

// A source keeps one complete set of GlobalServices in sync with where they come from.
//
// Promises of every implementation:
// - on_update runs on the source's own thread, never concurrently with itself, and always with
//   a complete replacement set that was accepted (a failure never delivers an empty or partial
//   set; the previous set simply stays).
// - start() returns at once; the first set arrives asynchronously.
// - stop() returns once the thread has ended; after it returns on_update is not called again.
//   Destroying a started source stops it.
// - status() may be called from any thread at any time.
class Source {
  public:
    using Update = std::function<void(ServiceSet)>;

    virtual ~Source();
    virtual void start(Update on_update) = 0;
    virtual void stop() = 0;
    virtual SourceStatus status() const = 0;
};

// Builds the source named by cfg.kind with its settings. Never throws for a reachable-later
// problem (missing file, hub down): those show in status(). Throws std::invalid_argument when
// the settings cannot work at all (e.g. an empty file path).
std::unique_ptr<Source> make_source(const Config::Source &cfg);

}  // namespace fabdns
