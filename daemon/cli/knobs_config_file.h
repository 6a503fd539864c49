// The knob settings of a daemon config file, as `specactd knobs` and
// `specactd restore` read them (they take --config without running the daemon).
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "knobs/knob_manager.h"

namespace specact {

// Reads the "knobs" section of the config at `path` into *cfg; its state_dir
// defaults to the top-level "state_dir" (as `specactd run` does). The whole
// document goes to *whole (for the target). On error prints one line prefixed
// "specactd CMD: " and returns false.
bool load_knobs_config(const std::string& path, const char* cmd, KnobsConfig* cfg,
                       nlohmann::json* whole);

}  // namespace specact
