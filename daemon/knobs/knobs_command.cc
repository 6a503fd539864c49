// `specactd knobs` (the catalogue as seen on this machine) and
// `specactd restore` (undo everything from the journal, no daemon needed).
#include <getopt.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>

#include "commands.h"
#include "knobs/knob_defs.h"
#include "knobs/knob_manager.h"

namespace specact {
namespace {

constexpr const char* kKnobsHelp =
    R"(Usage: specactd knobs [--json] [--pid PID ...] [--config FILE] [--state-dir DIR]

List every knob specact knows, as seen on this machine: its name, family,
domain, current value, and whether it can be used here — and if not, why
(kernel lockdown, kernel too old, no cgroup v2 cpu controller, not in the
allow-list, ...). Nothing is written.

Per-task knobs (task.*) and cgroup.target.* read their current value from the
target; without --pid (or a "target" in --config) they show no current value.

Options:
  --pid PID        Target process (repeatable, or comma-separated).
  --config FILE    Daemon config: its "knobs" section (allow/deny, ranges,
                   extra sysctls, background set) and "target" are used.
  --state-dir DIR  State directory (default /var/lib/specactd).
  --json           One JSON object for scripts: {"kernel", "target", "knobs": [...]}.
  -h, --help       Show this help.

Knob families:
  task.*        per-thread scheduler attributes of the target (slice_us, nice, policy)
  background.*  the same for the configured background set
  sysctl.*      /proc/sys tunables on the allow-list
  sched.*       scheduler debugfs (/sys/kernel/debug/sched), often closed by lockdown
  cgroup.*      cgroup v2 cpu.weight / cpu.idle / cpu.max of the target or background

Exit status: 0 listed, 1 runtime or config error, 2 usage error.
)";

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

// Reads the daemon config's knob settings: the "knobs" section, whose
// state_dir defaults to the top-level "state_dir" (as `specactd run` does), and
// the target. Prints one line and returns false on error.
bool load_knobs_config(const std::string& path, const char* cmd, KnobsConfig* cfg,
                       nlohmann::json* whole) {
  std::ifstream in(path);
  if (!in) {
    std::fprintf(stderr, "specactd %s: cannot open config %s\n", cmd, path.c_str());
    return false;
  }
  try {
    *whole = nlohmann::json::parse(in);
    const nlohmann::json& j = *whole;
    if (j.is_object() && j.contains("knobs")) *cfg = KnobsConfig::from_json(j["knobs"]);
    bool knobs_dir = j.is_object() && j.contains("knobs") && j["knobs"].is_object() &&
                     j["knobs"].contains("state_dir");
    if (!knobs_dir && j.is_object() && j.contains("state_dir") && j["state_dir"].is_string())
      cfg->state_dir = j["state_dir"].get<std::string>();
  } catch (const nlohmann::json::parse_error& e) {
    std::fprintf(stderr, "specactd %s: %s is not valid JSON: %s\n", cmd, path.c_str(), e.what());
    return false;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "specactd %s: %s: %s\n", cmd, path.c_str(), e.what());
    return false;
  }
  return true;
}

std::string domain_text(const KnobInfo& k) {
  if (k.domain.scale == KnobScale::Enum) {
    std::string s;
    for (size_t i = 0; i < k.domain.enum_values.size(); ++i)
      s += (i ? "|" : "") + k.domain.enum_values[i];
    return s;
  }
  return std::to_string(k.domain.min) + ".." + std::to_string(k.domain.max) + " " + k.unit +
         (k.domain.scale == KnobScale::Log ? " (log)" : "");
}

}  // namespace

int cmd_knobs(int argc, char** argv) {
  static const option opts[] = {
      {"json", no_argument, nullptr, 'j'},         {"pid", required_argument, nullptr, 'p'},
      {"config", required_argument, nullptr, 'c'}, {"state-dir", required_argument, nullptr, 's'},
      {"help", no_argument, nullptr, 'h'},         {nullptr, 0, nullptr, 0}};
  bool json = false;
  std::vector<pid_t> pids;
  std::string config_path, state_dir;
  optind = 1;
  opterr = 0;
  int c;
  while ((c = getopt_long(argc, argv, "h", opts, nullptr)) != -1) {
    switch (c) {
      case 'j':
        json = true;
        break;
      case 'p': {
        std::stringstream ss(optarg);
        std::string item;
        while (std::getline(ss, item, ',')) {
          char* end = nullptr;
          errno = 0;
          long v = std::strtol(item.c_str(), &end, 10);
          // Range-checked before the pid_t cast: 4294967297 would become pid 1.
          if (item.empty() || *end || errno == ERANGE || v <= 0 || v > INT32_MAX) {
            std::fprintf(stderr, "specactd knobs: --pid expects a positive pid, got '%s'\n",
                         item.c_str());
            return 2;
          }
          pids.push_back(static_cast<pid_t>(v));
        }
        break;
      }
      case 'c':
        config_path = optarg;
        break;
      case 's':
        state_dir = optarg;
        break;
      case 'h':
        std::fputs(kKnobsHelp, stdout);
        return 0;
      default:
        std::fprintf(stderr, "specactd knobs: unknown or incomplete option '%s' (see --help)\n",
                     argv[optind - 1]);
        return 2;
    }
  }
  if (optind < argc) {
    std::fprintf(stderr, "specactd knobs: unexpected argument '%s' (see --help)\n", argv[optind]);
    return 2;
  }
  KnobsConfig cfg;
  std::optional<TargetSpec> spec;
  if (!config_path.empty()) {
    nlohmann::json j;
    if (!load_knobs_config(config_path, "knobs", &cfg, &j)) return 1;
    try {
      if (j.is_object() && j.contains("target") && !j["target"].is_null() && pids.empty())
        spec = TargetSpec::from_json(j["target"]);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "specactd knobs: %s: %s\n", config_path.c_str(), e.what());
      return 1;
    }
  }
  if (!state_dir.empty()) cfg.state_dir = state_dir;
  if (!pids.empty()) {
    spec = TargetSpec{};
    spec->kind = TargetSpec::Kind::Pid;
    spec->pids = pids;
  }
  std::optional<TargetResolver> target;
  if (spec) {
    target.emplace(*spec, cfg.proc_root, cfg.cgroup_root);
    try {
      target->validate();
    } catch (const TargetError& e) {
      std::fprintf(stderr, "specactd knobs: %s\n", e.what());
      return 1;
    }
  }
  KnobManager mgr(cfg, target ? &*target : nullptr);
  auto cat = mgr.catalogue();
  std::string kernel =
      cfg.kernel_release.empty() ? knobs::running_kernel_release() : cfg.kernel_release;
  if (json) {
    nlohmann::json arr = nlohmann::json::array();
    for (const auto& k : cat) arr.push_back(knob_info_to_json(k));
    nlohmann::json out = {{"kernel", kernel},
                          {"target", spec ? spec->to_json() : nlohmann::json(nullptr)},
                          {"knobs", arr}};
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  size_t wname = 4, wfam = 6, wdom = 6, wcur = 7;
  std::vector<std::string> domains, currents;
  for (const auto& k : cat) {
    domains.push_back(domain_text(k));
    currents.push_back(k.current ? format_knob_value(k, *k.current) : "-");
    wname = std::max(wname, k.name.size());
    wfam = std::max(wfam, k.family.size());
    wdom = std::max(wdom, domains.back().size());
    wcur = std::max(wcur, currents.back().size());
  }
  std::printf("kernel %s, target: %s\n\n", kernel.c_str(),
              spec ? spec->describe().c_str() : "none (use --pid)");
  std::printf("%-*s  %-*s  %-*s  %-*s  %s\n", int(wname), "NAME", int(wfam), "FAMILY", int(wdom),
              "DOMAIN", int(wcur), "CURRENT", "AVAILABLE");
  size_t available = 0;
  for (size_t i = 0; i < cat.size(); ++i) {
    const auto& k = cat[i];
    available += k.available;
    std::string avail = k.available ? "yes" : "no: " + k.unavailable_reason;
    std::printf("%-*s  %-*s  %-*s  %-*s  %s\n", int(wname), k.name.c_str(), int(wfam),
                k.family.c_str(), int(wdom), domains[i].c_str(), int(wcur), currents[i].c_str(),
                avail.c_str());
  }
  std::printf("\n%zu of %zu knobs available. Descriptions: specactd knobs --json\n", available,
              cat.size());
  return 0;
}

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
