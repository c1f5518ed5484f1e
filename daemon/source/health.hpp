// Health bookkeeping shared by the sources: counts successes and failures into a SourceStatus
// and logs each change of state once (not every retry), so an outage is one line, not a flood.
#pragma once

#include <mutex>
#include <string>
#include <string_view>

#include "source/source.hpp"

namespace fabdns::source_detail {

class Health {
  public:
    // label prefixes every log line ("hub https://hub:3000").
    Health(std::string kind, std::string label);

    // A sync attempt worked. Logs the recovery when the source was failing.
    void succeeded();

    // A sync attempt failed. `category` is a stable name for the kind of failure ("http-500",
    // "tls", "parse", ...): a warning is logged when the source was healthy or the category
    // changed, a debug line otherwise. Returns the number of consecutive failures.
    uint64_t failed(std::string_view category, const std::string &message);

    // A set was accepted and delivered (or kept because it was unchanged).
    void delivered(size_t objects, size_t rejected);

    // The count of objects currently left out changed without a new set (a bad watch event).
    void set_rejected(size_t rejected);

    // The source started and has nothing to serve yet: not healthy, no failure counted.
    void pending(const std::string &why);

    SourceStatus status() const;
    const std::string &label() const { return label_; }

  private:
    mutable std::mutex mutex_;
    SourceStatus status_;
    std::string label_;
    std::string failing_category_;  // "" while healthy
};

// Seconds since the epoch, for SourceStatus::last_sync_unix.
int64_t unix_now();

}  // namespace fabdns::source_detail
