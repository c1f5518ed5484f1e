// The process-wide logger: leveled lines on stderr ("2026-11-30T12:00:00Z level msg").
#pragma once

#include <string_view>

namespace fabdns::log {

enum class Level { Debug = 0, Info, Warn, Error };

void set_level(Level level);
Level level();
void write(Level level, std::string_view message);

inline void debug(std::string_view m) {
    write(Level::Debug, m);
}
inline void info(std::string_view m) {
    write(Level::Info, m);
}
inline void warn(std::string_view m) {
    write(Level::Warn, m);
}
inline void error(std::string_view m) {
    write(Level::Error, m);
}

}  // namespace fabdns::log
