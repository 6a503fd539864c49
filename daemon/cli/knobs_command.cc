// `specactd knobs`: the knob catalogue as seen on this machine.
#include <getopt.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <sstream>

#include "cli/commands.h"
#include "cli/knobs_config_file.h"
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

}  // namespace specact
