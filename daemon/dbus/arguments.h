// Checks on what a D-Bus caller sends, before any of it reaches the runtime.
// Plain functions (no bus needed), so the fuzzers can drive them directly.
#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>

#include "target/target.h"

namespace specact {

// Length caps on string arguments (bytes). Names (modes, knobs) are short; a
// target's JSON holds at most max_target_pids pids or one bounded pattern/path.
inline constexpr size_t kMaxDbusNameArg = 256;
inline constexpr size_t kMaxDbusTargetArg = 1 << 20;
// Reset names settings (target, mode, pins, paused); a few repeats are harmless.
inline constexpr size_t kMaxResetNames = 16;

// Throws ControlError("InvalidArgument") when value is longer than max.
void check_string_argument(const char* what, const std::string& value, size_t max);

// SetTarget's argument: length-capped, JSON, a valid target under `policy`
// (strict pids, pids list cap, bounded comm regex, pid 1 / self refused unless
// allowed). Returns the normalised target (pids de-duplicated). Throws
// ControlError("InvalidArgument") with the reason.
nlohmann::json parse_target_argument(const std::string& text,
                                     const TargetPolicy& policy = target_policy());

}  // namespace specact
