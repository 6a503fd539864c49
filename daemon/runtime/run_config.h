// The daemon's configuration file (`specactd run --config FILE`). Strict:
// unknown keys and wrong types are rejected with the key path in the message.
// Every key is documented in daemon/runtime/README.md.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>

#include "agents/agent_config.h"
#include "engine/engine.h"
#include "knobs/knob_manager.h"
#include "metrics/sampler.h"
#include "observe/observer.h"
#include "target/target.h"

namespace specact {

class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct DbusSettings {
  bool enabled = true;      // serve org.specact.Daemon1
  bool required = false;    // false: no bus -> warn and run without D-Bus
  std::string bus_address;  // "" = the system bus (or DBUS_SYSTEM_BUS_ADDRESS)
};

// The "warm_start" section (daemon/runtime/warm_start.h).
struct WarmStartSettings {
  bool enabled = true;
  // Signatures within this many orders of magnitude are the same workload
  // (0.5: a factor of ~3 in CPU share and in sleeps per second).
  double match_decades = 0.5;
  // Configs remembered in learned.json; the least recently learned go first.
  size_t max_entries = 64;
};

struct RunConfig {
  std::optional<TargetSpec> target;  // none: wait for `specactctl target`
  Metric metric = Metric::ServiceP95;
  std::optional<CommandSourceOptions> command;  // objective.metric == "command"
  uint64_t min_samples = 20;                    // objective.min_samples
  int window_ms = 1000;
  engine::EngineOptions engine;  // mode, safety, budgets, engine.* tuning
  KnobsConfig knobs;             // knobs.* and background
  AgentConfig speculator;
  AgentConfig actor;
  std::string state_dir = "/var/lib/specactd";
  DbusSettings dbus;
  WarmStartSettings warm_start;
  observe::MetricsSettings metrics;  // Prometheus endpoint and textfile (off by default)
  std::string log_level = "info";
  // max_target_pids, allow_init_and_self; `specactd run` installs it with
  // set_target_policy() so D-Bus SetTarget follows the same rules.
  TargetPolicy target_policy;

  // Throws ConfigError("window_ms: expected an integer, got string") etc.
  static RunConfig from_json(const nlohmann::json& j);
  // JSON text -> from_json; every failure (syntax, a number out of double's
  // range, ...) is a ConfigError, never another exception.
  static RunConfig from_text(const std::string& text);
  static RunConfig from_file(const std::string& path);
  // The file's JSON; ConfigError naming the path when it cannot be opened, is
  // not a regular file (a directory), is larger than 1 MiB or is not JSON.
  static nlohmann::json read_json_file(const std::string& path);
};

}  // namespace specact
