// The daemon's control surface as the D-Bus adaptor sees it: a snapshot of
// state, commands, and observers for windows and engine events. The daemon
// runtime implements it; transports stay thin.
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/knob_info.h"

namespace specact {

// Thrown by commands; `name` becomes the D-Bus error org.specact.Error.<name>.
class ControlError : public std::runtime_error {
 public:
  ControlError(std::string name, const std::string& message)
      : std::runtime_error(message), name_(std::move(name)) {}
  const std::string& name() const { return name_; }

 private:
  std::string name_;  // InvalidArgument, UnknownKnob, NoSuchTarget, NotRunning, Failed
};

struct RoleUsage {
  uint64_t calls = 0;
  uint64_t prompt_tokens = 0;
  uint64_t completion_tokens = 0;
  uint64_t errors = 0;
  uint64_t rejected = 0;
  double cost_usd = 0;
  uint64_t cached_tokens = 0;  // of prompt_tokens, served from the provider's prompt cache
};
// {"calls","prompt_tokens","cached_tokens","completion_tokens","errors","rejected","cost_usd"}:
// GetStatus's usage.<role> and the history's status event.
inline nlohmann::json role_usage_to_json(const RoleUsage& u) {
  return {{"calls", u.calls},
          {"prompt_tokens", u.prompt_tokens},
          {"cached_tokens", u.cached_tokens},
          {"completion_tokens", u.completion_tokens},
          {"errors", u.errors},
          {"rejected", u.rejected},
          {"cost_usd", u.cost_usd}};
}

struct StatusSnapshot {
  std::string state = "stopped";  // running, paused, stopped, converged, waiting
  std::string mode = "speculative";
  nlohmann::json target;  // TargetSpec::to_json()
  Config current;
  Config confirmed;
  Config baseline;
  std::vector<std::string> pinned;
  nlohmann::json last_window;  // window_to_json() of the latest window, or null
  double baseline_p95_us = 0;
  double hit_rate = 0;  // confirmed speculations / actor decisions with a speculation
  uint64_t windows = 0;
  RoleUsage speculator;
  RoleUsage actor;
  // Per role: spend against the budgets, {"tokens","usd","tokens_last_hour",
  // "usd_last_hour","budget":{...},"left":{...},"limited_by"} (null: none).
  nlohmann::json spend = nlohmann::json::object();
  double uptime_s = 0;
  // Problems the caller should see (a history file that cannot be written).
  std::vector<std::string> warnings;
  // Each setting that can be set over D-Bus (target, mode, pins, paused):
  // the config file's value and where the one in force came from ("config",
  // "saved", "unsaved"), and the settings file; null when not known.
  nlohmann::json settings;
};

// One entry of the audit trail (history.jsonl): {"seq","time","type",...fields}.
struct HistoryEvent {
  uint64_t seq = 0;
  nlohmann::json data;  // includes "type": window, applied, confirmed, overridden, reverted, ...
};

class ControlSurface {
 public:
  virtual ~ControlSurface() = default;
  virtual StatusSnapshot status() = 0;
  virtual void start() = 0;
  virtual void stop() = 0;
  virtual void pause() = 0;
  virtual void resume() = 0;
  virtual void set_mode(const std::string& mode) = 0;
  virtual void set_target(const nlohmann::json& target) = 0;
  virtual void revert() = 0;  // back to baseline
  virtual void pin(const std::string& knob, int64_t value) = 0;
  virtual void unpin(const std::string& knob) = 0;
  // Forgets what was set over D-Bus for the named settings ("target", "mode",
  // "pins", "paused"; none = all): the config file's values are in force again.
  virtual void reset(const std::vector<std::string>& settings) = 0;
  virtual std::vector<KnobInfo> list_knobs() = 0;
  virtual std::vector<HistoryEvent> history(uint64_t since_seq) = 0;

  // Set by the transport; the runtime calls them on its event loop.
  std::function<void(const nlohmann::json& window)> on_window;
  std::function<void(const HistoryEvent& event)> on_event;
  std::function<void()> on_status_changed;
};

}  // namespace specact
