// knobs_crash_child: applies a rotating set of knobs forever through a
// KnobManager, and SIGKILLs itself at step N (argv[4]; -1 = wait for the
// parent's kill). The step name is written to argv[5] first, so the test
// knows where it died (e.g. between journal commit and the first write).
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "knobs/knob_manager.h"

using namespace specact;

int main(int argc, char** argv) {
  if (argc < 6) return 2;
  std::string state_dir = argv[1], debugfs = argv[2], step_file = argv[5];
  pid_t victim = std::atoi(argv[3]);
  // argv[4]: "N" = die at the N-th step of any kind, "name:K" = at the K-th
  // step whose name starts with `name`, "-1" = never (the parent kills us).
  std::string spec = argv[4], kill_prefix;
  long kill_step = std::atol(argv[4]);
  if (auto colon = spec.find(':'); colon != std::string::npos) {
    kill_prefix = spec.substr(0, colon);
    kill_step = std::atol(spec.c_str() + colon + 1);
  }
  KnobsConfig cfg;
  cfg.state_dir = state_dir;
  cfg.debugfs_root = debugfs;
  cfg.min_interval_ms = 0;
  cfg.restore_on_exit = false;
  cfg.allow = {"task.slice_us", "task.nice", "sysctl.kernel.sched_rr_timeslice_ms", "sched.*"};
  long steps = 0;
  cfg.on_step = [&](std::string_view step) {
    if (!kill_prefix.empty() && step.substr(0, kill_prefix.size()) != kill_prefix) return;
    if (++steps != kill_step) return;
    int fd = open(step_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd >= 0) {
      (void)!write(fd, step.data(), step.size());
      close(fd);
    }
    raise(SIGKILL);
  };
  TargetResolver target(TargetSpec::pid(victim));
  target.validate();
  KnobManager mgr(cfg, &target);
  const int64_t slices[] = {300, 500, 2000}, nices[] = {3, 5, 7}, rr[] = {50, 30, 70};
  const int64_t base[] = {1000000, 2000000, 3000000}, mig[] = {100000, 200000, 300000};
  const int64_t nr[] = {8, 16, 64}, preempt[] = {0, 1, 3};
  for (int i = 0;; ++i) {
    int k = i % 3;
    mgr.apply({{"task.slice_us", slices[k]},
               {"task.nice", nices[k]},
               {"sysctl.kernel.sched_rr_timeslice_ms", rr[k]},
               {"sched.base_slice_ns", base[k]},
               {"sched.migration_cost_ns", mig[k]},
               {"sched.nr_migrate", nr[k]},
               {"sched.preempt", preempt[k]}},
              "crash test");
    mgr.reapply_to_new_threads();
  }
}
