// `specactd restore`: undo everything from the journal, no daemon needed.
#include <getopt.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>

#include "cli/commands.h"
#include "cli/knobs_config_file.h"
#include "knobs/knob_manager.h"

namespace specact {
namespace {

constexpr const char* kRestoreHelp =
    R"(Usage: specactd restore [--state-dir DIR] [--config FILE] [--json] [--force]
       specactd --restore [...]

Put back every kernel setting specactd changed, from the journal of original
values in the state directory, then clear the journal. Works without a running
daemon (after kill -9 or a crash); the systemd unit runs it on stop. Running it
twice is harmless: the second run has nothing to do.

Per-task settings are restored on the threads that still exist; threads that
exited are skipped (not an error). A value someone else changed after
specactd's last write is left alone (use --force to restore it anyway).
A truncated, corrupt (checksum mismatch) or newer-format journal is renamed
aside (knobs-journal.json.corrupt-TIME / .newer-vN-TIME, with -2, -3 ... when
that name exists), reported, and nothing is restored from it: inspect it and
restore those settings by hand. Restore writes only the knob files below the
configured sys_root (/proc/sys), debugfs_root (/sys/kernel/debug/sched) and
the cgroup v2 mount, whatever the journal says; a journal naming any other
file is kept aside as .refused-TIME and nothing is restored (--force does not
change that). Extra sysctls from the config are known only with --config.

Options:
  --state-dir DIR  State directory (default /var/lib/specactd).
  --config FILE    Take the state directory, the knob roots and the extra
                   sysctls from the daemon config.
  --force          Also restore values changed by someone else since.
  --json           Machine-readable report.
  -h, --help       Show this help.

Exit status: 0 everything restored (or nothing to do), 1 something could not
be restored or the journal was unusable, 2 usage error.
)";

}  // namespace

int cmd_restore(int argc, char** argv) {
  static const option opts[] = {
      {"json", no_argument, nullptr, 'j'},         {"state-dir", required_argument, nullptr, 's'},
      {"config", required_argument, nullptr, 'c'}, {"force", no_argument, nullptr, 'f'},
      {"help", no_argument, nullptr, 'h'},         {nullptr, 0, nullptr, 0}};
  bool json = false, force = false;
  std::string state_dir, config_path;
  optind = 1;
  opterr = 0;
  int c;
  while ((c = getopt_long(argc, argv, "h", opts, nullptr)) != -1) {
    switch (c) {
      case 'j':
        json = true;
        break;
      case 'f':
        force = true;
        break;
      case 's':
        state_dir = optarg;
        break;
      case 'c':
        config_path = optarg;
        break;
      case 'h':
        std::fputs(kRestoreHelp, stdout);
        return 0;
      default:
        std::fprintf(stderr, "specactd restore: unknown or incomplete option '%s' (see --help)\n",
                     argv[optind - 1]);
        return 2;
    }
  }
  if (optind < argc) {
    std::fprintf(stderr, "specactd restore: unexpected argument '%s' (see --help)\n", argv[optind]);
    return 2;
  }
  KnobsConfig cfg;
  if (!config_path.empty()) {
    nlohmann::json j;
    if (!load_knobs_config(config_path, "restore", &cfg, &j)) {
      // Restoring matters more than the config: use the defaults, and say so.
      std::fprintf(stderr, "specactd restore: restoring from the default state directory %s\n",
                   KnobsConfig{}.state_dir.c_str());
      cfg = KnobsConfig{};
      if (!state_dir.empty()) cfg.state_dir = state_dir;
      RestoreReport r = restore_from_journal(cfg, force);
      std::fputs(r.to_text().c_str(), stderr);
      return 1;
    }
    // The unit runs `restore --config` after every stop. A clean stop of a
    // daemon configured to keep its settings (knobs.restore_on_exit: false)
    // keeps them; after a crash or a watchdog kill, everything is restored.
    const char* result = std::getenv("SERVICE_RESULT");
    if (!cfg.restore_on_exit && !force && result && std::string(result) == "success") {
      std::fprintf(stderr,
                   "specactd restore: keeping the settings (knobs.restore_on_exit is false and "
                   "the service stopped cleanly); run without --config to restore them\n");
      return 0;
    }
  }
  if (!state_dir.empty()) cfg.state_dir = state_dir;
  RestoreReport r = restore_from_journal(cfg, force);
  if (json)
    std::cout << r.to_json().dump(2) << "\n";
  else
    std::fputs(r.to_text().c_str(), r.ok ? stdout : stderr);
  return r.ok ? 0 : 1;
}

}  // namespace specact
