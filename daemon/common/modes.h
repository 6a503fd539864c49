// The engine's modes by name, in the order of engine::Mode. The config key
// "mode", D-Bus SetMode, `specactctl mode`, the help texts and the error
// messages all take the names from here (the man pages, the README and the
// bash completion are checked against it by tests/package).
#pragma once

#include <array>
#include <string>
#include <string_view>

namespace specact {

inline constexpr std::array<std::string_view, 5> kModeNames = {
    "speculative", "actor-only", "speculator-only", "recommend", "monitor"};

// The names joined by `separator`: "speculative, actor-only, ...".
inline std::string join_mode_names(std::string_view separator) {
  std::string out;
  for (std::string_view name : kModeNames) {
    if (!out.empty()) out += separator;
    out += name;
  }
  return out;
}

}  // namespace specact
