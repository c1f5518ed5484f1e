// Health bookkeeping and its log-once-per-state-change rule.
#include "source/health.hpp"

#include <chrono>

#include "common/log.hpp"

namespace fabdns::source_detail {

int64_t unix_now() {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

Health::Health(std::string kind, std::string label) : label_(std::move(label)) {
    status_.kind = std::move(kind);
}

void Health::succeeded() {
    std::string recovered;
    {
        std::lock_guard lock(mutex_);
        if (!failing_category_.empty()) {
            recovered = label_ + ": source recovered after " +
                        std::to_string(status_.consecutive_failures) + " failed attempt(s)";
        }
        failing_category_.clear();
        status_.healthy = true;
        status_.consecutive_failures = 0;
        status_.last_error.clear();
        status_.last_sync_unix = unix_now();
    }
    if (!recovered.empty()) log::info(recovered);
}

uint64_t Health::failed(std::string_view category, const std::string &message) {
    bool changed, has_data;
    uint64_t consecutive;
    {
        std::lock_guard lock(mutex_);
        changed = failing_category_ != category;
        failing_category_ = std::string(category.empty() ? "error" : category);
        status_.healthy = false;
        consecutive = ++status_.consecutive_failures;
        ++status_.total_failures;
        status_.last_error = message;
        has_data = status_.has_data;
    }
    std::string line = label_ + ": " + message;
    if (changed) {
        log::warn(line + (has_data ? " (keeping the last good set)" : " (no data yet)"));
    } else {
        log::debug(line + " (failure " + std::to_string(consecutive) + " in a row)");
    }
    return consecutive;
}

void Health::delivered(size_t objects, size_t rejected) {
    std::lock_guard lock(mutex_);
    status_.has_data = true;
    status_.objects = objects;
    status_.rejected = rejected;
}

void Health::set_rejected(size_t rejected) {
    std::lock_guard lock(mutex_);
    status_.rejected = rejected;
}

void Health::pending(const std::string &why) {
    std::lock_guard lock(mutex_);
    status_.healthy = false;
    status_.last_error = why;
}

SourceStatus Health::status() const {
    std::lock_guard lock(mutex_);
    return status_;
}

}  // namespace fabdns::source_detail
