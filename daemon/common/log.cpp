// Logger implementation: one mutex-protected write per line so lines never interleave.
#include "common/log.hpp"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>

namespace fabdns::log {

static std::atomic<Level> g_level{Level::Info};
static std::mutex g_mutex;

void set_level(Level l) {
    g_level.store(l);
}
Level level() {
    return g_level.load();
}

void write(Level l, std::string_view message) {
    if (l < g_level.load(std::memory_order_relaxed)) return;
    static const char *names[] = {"debug", "info", "warn", "error"};
    auto now = std::chrono::system_clock::now();
    std::time_t t = std::chrono::system_clock::to_time_t(now);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char stamp[32];
    std::strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
    std::lock_guard lock(g_mutex);
    std::fprintf(stderr, "%s %s %.*s\n", stamp, names[static_cast<int>(l)],
                 static_cast<int>(message.size()), message.data());
}

}  // namespace fabdns::log
