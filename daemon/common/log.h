// Minimal leveled logging to stderr: one line per event, prefixed with the level
// (systemd's journal reads the <N> priority prefix when SPECACT_LOG_PREFIX=1).
#pragma once

#include <string_view>

namespace specact::log {

enum class Level { Debug = 7, Info = 6, Warning = 4, Error = 3 };

void set_min_level(Level l);
void set_syslog_prefix(bool on);
void write(Level l, std::string_view msg);

inline void debug(std::string_view m) { write(Level::Debug, m); }
inline void info(std::string_view m) { write(Level::Info, m); }
inline void warn(std::string_view m) { write(Level::Warning, m); }
inline void error(std::string_view m) { write(Level::Error, m); }

}  // namespace specact::log
