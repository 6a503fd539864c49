// specact-pin: holds a fixed knob configuration on a target through specact's
// own write gate (journal first, then write), for benchmarks: the grid search
// measures each point with it, and the reaction benchmark uses it to start
// the workload from a bad setting. Restores everything on SIGINT/SIGTERM
// unless --keep (allowed for per-task knobs only: they die with the target).
//
//   specact-pin (--pid PID | --comm REGEX) --state-dir DIR [--keep] KNOB=VALUE...
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include "knobs/knob_manager.h"
#include "target/target.h"

namespace {

// Whole-string integer, or exit 2 with the offending text.
long long parse_int_or_exit(const std::string& what, const std::string& text) {
  char* end = nullptr;
  errno = 0;
  long long v = std::strtoll(text.c_str(), &end, 10);
  if (errno || text.empty() || *end) {
    std::fprintf(stderr, "specact-pin: %s: '%s' is not an integer\n", what.c_str(), text.c_str());
    std::exit(2);
  }
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace specact;
  TargetSpec spec;
  bool have_target = false, keep = false;
  std::string state_dir;
  Config config;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "specact-pin: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--pid") {
      spec = TargetSpec::pid(static_cast<pid_t>(parse_int_or_exit("--pid", value())));
      have_target = true;
    } else if (a == "--comm") {
      spec = TargetSpec{TargetSpec::Kind::Comm, {}, {}, {}, value()};
      have_target = true;
    } else if (a == "--state-dir") {
      state_dir = value();
    } else if (a == "--keep") {
      keep = true;
    } else if (auto eq = a.find('='); eq != std::string::npos) {
      config[a.substr(0, eq)] = parse_int_or_exit(a.substr(0, eq), a.substr(eq + 1));
    } else {
      std::fprintf(stderr,
                   "usage: specact-pin (--pid PID | --comm REGEX) --state-dir DIR [--keep] "
                   "KNOB=VALUE...\n");
      return 2;
    }
  }
  if (!have_target || state_dir.empty() || config.empty()) {
    std::fprintf(stderr, "specact-pin: need a target, --state-dir and at least one KNOB=VALUE\n");
    return 2;
  }
  for (const auto& [name, v] : config)
    if (keep && name.rfind("task.", 0) != 0 && name.rfind("background.", 0) != 0) {
      std::fprintf(stderr, "specact-pin: --keep is only allowed for per-task knobs (%s)\n",
                   name.c_str());
      return 2;
    }
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigprocmask(SIG_BLOCK, &set, nullptr);
  try {
    TargetResolver target(spec);
    target.validate();
    KnobsConfig kc;
    kc.state_dir = state_dir;
    kc.restore_on_exit = !keep;
    KnobManager knobs(kc, &target);
    ApplyResult r = knobs.apply(config, "bench: pinned");
    for (const auto& k : r.results)
      std::fprintf(stderr, "specact-pin: %s -> %s%s%s\n", k.knob.c_str(),
                   to_string(k.status).c_str(), k.error.empty() ? "" : ": ", k.error.c_str());
    if (!r.all_ok()) return 1;
    std::puts("pinned");
    std::fflush(stdout);
    timespec tick{0, 200'000'000};
    for (;;) {
      int sig = sigtimedwait(&set, nullptr, &tick);
      if (sig > 0) break;
      knobs.reapply_to_new_threads();
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "specact-pin: %s\n", e.what());
    return 1;
  }
  return 0;
}
