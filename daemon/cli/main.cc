// specactd: the specact tuning daemon. Dispatches to subcommands.
#include <cstdio>
#include <cstring>
#include <exception>
#include <string_view>

#include "cli/commands.h"

namespace {

constexpr const char* kUsage = R"(Usage: specactd COMMAND [OPTIONS]

specactd watches a CPU-bound workload through eBPF and tunes scheduler and
sysctl settings to cut its p95 latency. A fast Speculator applies a
provisional setting within one measurement window; a slower Actor confirms
or replaces it; a safety envelope reverts a bad provisional setting at once.

Commands:
  run --config FILE [--duration SECONDS]
        Run the tuning loop in the foreground (the systemd service runs this).
  monitor --pid PID | --cgroup PATH | --unit NAME | --comm REGEX
          [--window-ms MS] [--windows N] [--json] [--command CMD]
        Measure the target's latency per window; change nothing.
  knobs [--json] [--pid PID ...] [--config FILE] [--state-dir DIR]
        List the tunable knobs as seen on this machine, with availability.
  restore [--state-dir DIR] [--config FILE] [--json] [--force]
        Put back every kernel setting specactd changed, from its journal.
        Also spelled --restore. Safe to run more than once.

Options:
  -h, --help     Show this help (also: specactd COMMAND --help).
  -V, --version  Show the version.

Files:
  /etc/specactd/specactd.json   default configuration
  /var/lib/specactd/            journal of original values, history.jsonl

Exit status: 0 success, 1 runtime error, 2 usage error.
)";

}  // namespace

namespace {

int dispatch(int argc, char** argv) {
  if (argc < 2) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  std::string_view cmd = argv[1];
  if (cmd == "-h" || cmd == "--help" || cmd == "help") {
    std::fputs(kUsage, stdout);
    return 0;
  }
  if (cmd == "-V" || cmd == "--version") {
    std::puts("specactd " SPECACT_VERSION);
    return 0;
  }
  int sub_argc = argc - 1;
  char** sub_argv = argv + 1;
  if (cmd == "monitor") return specact::cmd_monitor(sub_argc, sub_argv);
  if (cmd == "knobs") return specact::cmd_knobs(sub_argc, sub_argv);
  if (cmd == "restore" || cmd == "--restore") return specact::cmd_restore(sub_argc, sub_argv);
  if (cmd == "run") return specact::cmd_run(sub_argc, sub_argv);
  std::fprintf(stderr, "specactd: unknown command '%s' (see specactd --help)\n", argv[1]);
  return 2;
}

}  // namespace

// Every subcommand maps its own errors to 1 or 2; this is the net under them,
// so nothing ends in std::terminate (rc 134).
int main(int argc, char** argv) {
  try {
    return dispatch(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "specactd: %s\n", e.what());
    return 1;
  } catch (...) {
    std::fputs("specactd: internal error (unknown exception)\n", stderr);
    return 1;
  }
}
