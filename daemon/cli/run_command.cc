// `specactd run --config FILE [--duration SECONDS] [--state-dir DIR] [--verbose]`
#include <getopt.h>

#include <boost/asio/io_context.hpp>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>

#include "agents/agent_config.h"
#include "cli/commands.h"
#include "common/log.h"
#include "dbus/dbus_service.h"
#include "knobs/knob_manager.h"
#include "metrics/sampler.h"
#include "runtime/run_config.h"
#include "runtime/runtime.h"
#include "target/target.h"

namespace specact {

namespace {

constexpr const char* kRunUsage =
    R"(Usage: specactd run --config FILE [--duration SECONDS] [--state-dir DIR] [--verbose]

Runs the tuning loop in the foreground: every window_ms it measures the target,
lets the Speculator apply a provisional setting and the Actor confirm or
replace it, and logs one line per decision to stderr. Every event is appended
to <state_dir>/history.jsonl. At the end of --duration, on SIGTERM or SIGINT it
restores every setting it changed (unless knobs.restore_on_exit is false) and
exits 0.

Options:
  --config FILE        daemon configuration (JSON; keys in the README)
  --duration SECONDS   stop after this long (default: run until signalled)
  --state-dir DIR      overrides state_dir from the config
  -v, --verbose        also log every window and agent call
  -h, --help           show this help

Exit status: 0 stopped normally, 1 runtime error (target, BPF, agents, bus),
2 usage or configuration error.
)";

}  // namespace

int cmd_run(int argc, char** argv) {
  static const option kOptions[] = {{"config", required_argument, nullptr, 'c'},
                                    {"duration", required_argument, nullptr, 'd'},
                                    {"state-dir", required_argument, nullptr, 's'},
                                    {"verbose", no_argument, nullptr, 'v'},
                                    {"help", no_argument, nullptr, 'h'},
                                    {nullptr, 0, nullptr, 0}};
  std::string config_path, state_dir;
  std::optional<double> duration;
  bool verbose = false;
  optind = 1;
  int c;
  while ((c = getopt_long(argc, argv, "c:d:s:vh", kOptions, nullptr)) != -1) {
    switch (c) {
      case 'c':
        config_path = optarg;
        break;
      case 'd': {
        char* end = nullptr;
        double d = std::strtod(optarg, &end);
        if (!end || *end || !(d > 0) || d > 1e9) {
          std::fprintf(stderr,
                       "specactd run: --duration wants a positive number of seconds, got '%s'\n",
                       optarg);
          return 2;
        }
        duration = d;
        break;
      }
      case 's':
        state_dir = optarg;
        break;
      case 'v':
        verbose = true;
        break;
      case 'h':
        std::fputs(kRunUsage, stdout);
        return 0;
      default:
        std::fputs(kRunUsage, stderr);
        return 2;
    }
  }
  if (optind < argc) {
    std::fprintf(stderr, "specactd run: unexpected argument '%s'\n", argv[optind]);
    return 2;
  }
  if (config_path.empty()) {
    std::fputs("specactd run: --config FILE is required\n", stderr);
    std::fputs(kRunUsage, stderr);
    return 2;
  }

  RunConfig cfg;
  try {
    nlohmann::json j = RunConfig::read_json_file(config_path);
    if (!state_dir.empty() && j.is_object()) j["state_dir"] = state_dir;
    try {
      cfg = RunConfig::from_json(j);
    } catch (const ConfigError& e) {
      throw ConfigError(config_path + ": " + e.what());
    }
  } catch (const ConfigError& e) {
    std::fprintf(stderr, "specactd run: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    // Whatever else a parser throws is still the config's fault.
    std::fprintf(stderr, "specactd run: %s: %s\n", config_path.c_str(), e.what());
    return 2;
  }
  if (verbose) cfg.log_level = "debug";
  // SetTarget over D-Bus follows the config's limits too; the daemon waits for
  // a unit or cgroup that is not there yet instead of refusing it.
  TargetPolicy policy = cfg.target_policy;
  policy.absent_targets_allowed = true;
  set_target_policy(policy);

  try {
    boost::asio::io_context io;
    Runtime runtime(std::move(cfg), io);
    return runtime.run(duration);
  } catch (const ConfigError& e) {
    std::fprintf(stderr, "specactd run: %s\n", e.what());
    return 2;
  } catch (const TargetError& e) {
    std::fprintf(stderr, "specactd run: target: %s\n", e.what());
    return 1;
  } catch (const SamplerError& e) {
    std::fprintf(stderr, "specactd run: sampler: %s\n", e.what());
    return 1;
  } catch (const AgentConfigError& e) {
    std::fprintf(stderr, "specactd run: agents: %s\n", e.what());
    return 2;
  } catch (const DbusError& e) {
    std::fprintf(stderr, "specactd run: D-Bus: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "specactd run: %s\n", e.what());
    return 1;
  } catch (...) {
    std::fputs("specactd run: internal error (unknown exception)\n", stderr);
    return 1;
  }
}

}  // namespace specact
