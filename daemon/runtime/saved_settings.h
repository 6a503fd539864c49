// What was set over D-Bus and survives a restart (settings.json in the state
// directory): the target, the mode and, for the sessions of one target, the
// pinned knobs and the pause. The config file's values are the defaults; a
// saved value wins until it is forgotten (D-Bus Reset: `specactctl reset`,
// `specactctl target --clear`). Every value read back is checked as strictly
// as the D-Bus argument that set it, so the file can ask for nothing a caller
// of SetTarget, SetMode or Pin could not.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "target/target.h"

namespace specact {

struct SavedSettings {
  static constexpr const char* kFileName = "settings.json";
  static constexpr const char* kKind = "specactd-settings";
  static constexpr int kFormat = 1;
  // Two copies of a target (each at most the 1 MiB a SetTarget argument may
  // be), a start time per pid and the pins fit with room to spare.
  static constexpr size_t kMaxBytes = 8u << 20;
  // More pins than any catalogue has knobs is not a file this daemon wrote.
  static constexpr size_t kMaxPins = 1024;
  // The names Reset takes, one per setting.
  static const std::vector<std::string>& names();

  std::optional<TargetSpec> target;
  // A pid target names processes, not a workload: who each pid was when it
  // was set (boot id, start time), so that after a reboot, or once a pid is
  // reused, it is dropped instead of handed to another process.
  std::string boot_id;
  std::map<pid_t, uint64_t> start_times;
  std::optional<engine::Mode> mode;
  // Pins and pause belong to the sessions of one target: the one in force
  // when they were set (the config's or a saved one).
  std::optional<TargetSpec> session_target;
  std::map<std::string, int64_t> pins;
  bool paused = false;

  bool empty() const { return !target && !mode && !session_target; }
  // Whether the pins and pause apply to a session of `t`.
  bool session_is_for(const TargetSpec& t) const;
  // Sets (or replaces) the session part for `t`; empty pins and no pause
  // drop it.
  void set_session(const TargetSpec& t, std::map<std::string, int64_t> pins, bool paused);
  void clear_session();

  nlohmann::json to_json() const;
  // Throws std::runtime_error naming the field for anything not acceptable
  // (the same limits as the D-Bus arguments, under `policy`).
  static SavedSettings from_json(const nlohmann::json& doc, const TargetPolicy& policy);
};

// GetStatus "settings": each setting in force and where it came from.
// `source` is "config" (the config file's value, or its default), "saved"
// (set over D-Bus and in the settings file) or "unsaved" (set over D-Bus, but
// the file could not be written: it will not survive a restart).
nlohmann::json settings_status(const SavedSettings& saved,
                               const std::optional<TargetSpec>& config_target,
                               engine::Mode config_mode, bool file_ok, const std::string& path);

}  // namespace specact
