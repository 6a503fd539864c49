#include "knobs/knob_defs.h"

#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>

namespace specact::knobs {
namespace {

KnobDef def(std::string name, std::string family, std::string unit, KnobDomain dom,
            std::optional<int64_t> dflt, std::string desc) {
  KnobDef d;
  d.info.name = std::move(name);
  d.info.family = std::move(family);
  d.info.unit = std::move(unit);
  d.info.domain = std::move(dom);
  d.info.default_value = dflt;
  d.info.description = std::move(desc);
  return d;
}

KnobDomain lin(int64_t lo, int64_t hi) { return {lo, hi, KnobScale::Linear, {}}; }
KnobDomain logd(int64_t lo, int64_t hi) { return {lo, hi, KnobScale::Log, {}}; }
KnobDomain enumd(std::vector<std::string> v) {
  int64_t n = static_cast<int64_t>(v.size());
  return {0, n - 1, KnobScale::Enum, std::move(v)};
}

void add_task_family(std::vector<KnobDef>& out, bool background) {
  std::string set = background ? "background" : "task";
  Where where = background ? Where::Background : Where::Task;
  std::string who = background ? "the background tasks (knobs.background)" : "every target thread";
  std::string slice_effect =
      background
          ? "Shorter background slices let target threads preempt background work sooner "
            "(usually lower target latency); longer ones cut the background's context switches."
          : "Smaller slices get a waking thread onto the CPU sooner and preempt it more often: "
            "lower run-queue/wakeup latency for short requests. Larger slices let a CPU-bound "
            "burst finish without being preempted: lower completion latency for long requests "
            "under contention, at other tasks' expense. Workloads differ; search both ways.";
  KnobDef slice = def(set + ".slice_us", set, "us", logd(100, 100000), std::nullopt,
                      "EEVDF time slice requested for " + who +
                          " (sched_setattr sched_runtime, SCHED_OTHER/BATCH). " + slice_effect);
  slice.where = where;
  slice.field = TaskField::Slice;
  slice.default_slice_divisor = 1000;
  // The background's slice only moves the target against the background.
  slice.info.effect = background ? KnobEffect::Relative : KnobEffect::Direct;
  slice.info.request_size = !background;
  out.push_back(slice);

  KnobDef nice =
      def(set + ".nice", set, "nice", lin(-20, 19), 0,
          background ? "Nice value of the background tasks. Raising it (e.g. 10..19) shrinks "
                       "their CPU share and usually lowers the target's latency under "
                       "contention; lowering it favours the background."
                     : "Nice value of every target thread (-20 highest priority .. 19 "
                       "lowest). Lower nice gives the target a larger CPU share and earlier "
                       "EEVDF deadlines: usually lower latency under contention, at other "
                       "tasks' expense; higher nice does the reverse.");
  nice.where = where;
  nice.field = TaskField::Nice;
  nice.info.effect = KnobEffect::Relative;
  out.push_back(nice);

  KnobDef policy =
      def(set + ".policy", set, "enum", enumd({"other", "batch", "idle"}), 0,
          background ? "Scheduling policy of the background tasks. batch: they never "
                       "preempt others on wakeup (helps target latency); idle: they run "
                       "only when CPUs are otherwise idle (strongest protection for the "
                       "target; background work may starve); other: normal."
                     : "Scheduling policy of every target thread. other: normal. batch: "
                       "treated as CPU-bound and never preempts on wakeup (higher wakeup "
                       "latency, slightly better throughput). idle: runs only when nothing "
                       "else wants the CPU (very high latency under contention). For "
                       "latency 'other' is usually right.");
  policy.where = where;
  policy.field = TaskField::Policy;
  // The target's own policy changes how its wakeups preempt (batch never
  // does); the background's only moves it against the target.
  policy.info.effect = background ? KnobEffect::Relative : KnobEffect::Direct;
  out.push_back(policy);
}

KnobDef sysctl(std::string name, std::string unit, KnobDomain dom, std::optional<int64_t> dflt,
               std::string desc) {
  KnobDef d =
      def("sysctl." + name, "sysctl", std::move(unit), std::move(dom), dflt, std::move(desc));
  d.where = Where::Sysctl;
  d.file = name;
  for (auto& c : d.file)
    if (c == '.') c = '/';
  return d;
}

KnobDef debugfs(std::string name, std::string unit, KnobDomain dom, std::optional<int64_t> dflt,
                std::string desc) {
  KnobDef d = def("sched." + name, "sched", std::move(unit), std::move(dom), dflt, std::move(desc));
  d.where = Where::Debugfs;
  d.file = name;
  return d;
}

void add_cgroup_family(std::vector<KnobDef>& out, bool background, int ncpus) {
  std::string set = background ? "background" : "target";
  Where where = background ? Where::CgroupBackground : Where::CgroupTarget;
  std::string whose = background ? "the background set's cgroup" : "the target's cgroup";
  KnobDef weight =
      def("cgroup." + set + ".cpu.weight", "cgroup", "weight", logd(1, 10000), 100,
          "cgroup v2 cpu.weight of " + whose + " versus its sibling cgroups (default 100). " +
              (background ? "Lower background weight leaves more CPU to the target "
                            "under contention (lower target latency)."
                          : "Higher weight gives the target a larger share under "
                            "contention (lower latency); only matters when sibling "
                            "cgroups compete for the CPUs."));
  weight.where = where;
  weight.file = "cpu.weight";
  weight.info.effect = KnobEffect::Relative;
  out.push_back(weight);

  KnobDef idle = def("cgroup." + set + ".cpu.idle", "cgroup", "bool", lin(0, 1), 0,
                     "cgroup v2 cpu.idle of " + whose +
                         ": 1 makes the whole cgroup SCHED_IDLE-like (it gets only the CPU "
                         "others leave). " +
                         (background ? "Setting it for the background strongly protects the "
                                       "target's latency; background work may starve."
                                     : "Setting it for the target raises its latency under "
                                       "contention; keep 0 for a latency-sensitive target."));
  idle.where = where;
  idle.file = "cpu.idle";
  idle.info.effect = KnobEffect::Relative;
  out.push_back(idle);

  int64_t full = int64_t{ncpus} * 100000;
  KnobDef max = def("cgroup." + set + ".cpu.max", "cgroup", "us/100ms", logd(1000, full), full,
                    "cgroup v2 cpu.max of " + whose +
                        " as CPU microseconds allowed per 100 ms period (100000 = one whole "
                        "CPU; the top of the range, " +
                        std::to_string(full) + ", means unlimited 'max'). " +
                        (background ? "A lower background quota frees CPU for the target "
                                      "(lower target latency) but throttles the background."
                                    : "A quota below demand throttles the target: large latency "
                                      "spikes. Keep it unlimited unless capping is the goal."));
  max.where = where;
  max.file = "cpu.max";
  // A quota throttles: the target's own requests stall (or the background's).
  max.info.effect = background ? KnobEffect::Relative : KnobEffect::Direct;
  max.codec = Codec::CpuMax;
  max.unlimited = full;
  out.push_back(max);
}

}  // namespace

KernelVersion parse_kernel_release(const std::string& release) {
  KernelVersion v;
  std::sscanf(release.c_str(), "%d.%d", &v.major, &v.minor);
  return v;
}

std::string running_kernel_release() {
  utsname u{};
  if (uname(&u) != 0) return "";
  return u.release;
}

KernelVersion running_kernel() { return parse_kernel_release(running_kernel_release()); }

std::vector<KnobDef> builtin_defs(KernelVersion kv, int ncpus) {
  std::vector<KnobDef> out;
  add_task_family(out, false);
  add_task_family(out, true);

  KnobDef autogroup = sysctl(
      "kernel.sched_autogroup_enabled", "bool", lin(0, 1), 1,
      "Autogroup: tasks are grouped per session and CPU is shared fairly between groups, not "
      "between threads. 1: a target in its own session keeps a group share however many "
      "threads others run; 0: every thread competes individually, which helps a target with "
      "many threads and hurts one with few threads against many hogs.");
  autogroup.info.effect = KnobEffect::Relative;  // group fairness: shares between sessions
  out.push_back(autogroup);
  KnobDef bandwidth_slice = sysctl(
      "kernel.sched_cfs_bandwidth_slice_us", "us", logd(100, 100000), 5000,
      "Chunk of a cgroup's cpu.max quota handed to one CPU at a time. Only matters when a CPU "
      "quota is set. Smaller: quota spread evenly across CPUs, fewer throttling stalls (latency "
      "spikes) but more overhead; larger: less overhead, burstier throttling.");
  bandwidth_slice.info.effect = KnobEffect::Conditional;  // only with a cpu.max quota
  out.push_back(bandwidth_slice);
  KnobDef rr_timeslice = sysctl(
      "kernel.sched_rr_timeslice_ms", "ms", logd(1, 1000), 100,
      "Time slice of SCHED_RR realtime tasks only. No effect on SCHED_OTHER targets unless RR "
      "tasks compete with them; then shorter RR slices give other tasks the CPU sooner.");
  rr_timeslice.info.effect = KnobEffect::Conditional;  // only SCHED_RR tasks have this slice
  out.push_back(rr_timeslice);
  out.push_back(
      sysctl("kernel.timer_migration", "bool", lin(0, 1), 1,
             "Lets timers migrate away from idle CPUs so they can stay asleep. 1 saves power but a "
             "timer-driven wakeup may be handled on another, busier CPU (slightly higher, jittery "
             "wakeup latency); 0 keeps timers on the CPU that armed them."));
  KnobDef numa = sysctl(
      "kernel.numa_balancing", "bool", lin(0, 1), std::nullopt,
      "Automatic NUMA balancing: samples memory accesses by unmapping pages and migrates "
      "pages/tasks towards their node. On multi-node machines it can cut memory latency for "
      "long-running tasks but adds page faults and migrations (latency jitter); on one node it "
      "only costs.");
  numa.info.effect = KnobEffect::Conditional;  // only several NUMA nodes have anything to balance
  out.push_back(numa);

  // Scheduler debugfs (EEVDF, Linux >= 6.6), or the CFS names of older kernels.
  bool eevdf = kv.at_least(6, 6);
  bool cfs_debugfs = kv.at_least(5, 13);  // before 5.13 these were sysctls
  std::string release = std::to_string(kv.major) + "." + std::to_string(kv.minor);
  KnobDef base = debugfs("base_slice_ns", "ns", logd(100000, 100000000), std::nullopt,
                         "Default EEVDF slice of every task without a custom slice (the "
                         "system-wide version of task.slice_us, in ns). Smaller: lower wakeup "
                         "latency, more context switches; larger: fewer preemptions, better "
                         "throughput and completion latency for CPU-bound bursts.");
  base.default_slice_divisor = 1;  // what fresh tasks get
  if (!eevdf)
    base.static_reason = "not in Linux " + release +
                         " (EEVDF's base_slice_ns arrived in 6.6; see sched.min_granularity_ns)";
  out.push_back(base);
  KnobDef mig = debugfs("migration_cost_ns", "ns", logd(10000, 10000000), 500000,
                        "How long a task stays cache-hot after running, so the load balancer "
                        "avoids moving it. Higher: fewer migrations (cache locality) but a task "
                        "may wait behind a busy CPU (higher run-queue latency); lower: tasks "
                        "spread to idle CPUs sooner.");
  KnobDef nr = debugfs("nr_migrate", "tasks", logd(1, 256), 32,
                       "Maximum tasks moved per load-balancing pass. Higher: imbalances after "
                       "bursts are fixed sooner (lower run-queue latency) but each pass runs "
                       "longer (jitter).");
  if (!cfs_debugfs) {
    mig.where = nr.where = Where::Sysctl;
    mig.file = "kernel/sched_migration_cost_ns";
    nr.file = "kernel/sched_nr_migrate";
  }
  out.push_back(mig);
  out.push_back(nr);
  KnobDef preempt =
      debugfs("preempt", "enum", enumd({"none", "voluntary", "full", "lazy"}), std::nullopt,
              "Kernel preemption model (PREEMPT_DYNAMIC). full: kernel code can be "
              "preempted almost anywhere (lowest wakeup latency); lazy: normal "
              "tasks are preempted at the next tick; voluntary/none: only at "
              "explicit points (best throughput, worst latency).");
  preempt.codec = Codec::BracketEnum;
  out.push_back(preempt);

  struct Cfs {
    const char* name;
    KnobDomain dom;
    const char* desc;
  };
  for (const Cfs& c : {
           Cfs{"min_granularity_ns", logd(100000, 100000000),
               "CFS minimum time a task runs before it can be preempted. Lower: lower wakeup "
               "latency, more switches; higher: better throughput."},
           Cfs{"latency_ns", logd(1000000, 200000000),
               "CFS target period in which every runnable task runs once. Lower: lower "
               "scheduling latency with few tasks; higher: longer slices, more throughput."},
           Cfs{"wakeup_granularity_ns", logd(100000, 50000000),
               "CFS: how much less vruntime a waking task needs to preempt the current one. "
               "Lower: wakers preempt sooner (lower wakeup latency); higher: fewer preemptions."},
       }) {
    KnobDef d = debugfs(c.name, "ns", c.dom, std::nullopt, c.desc);
    if (eevdf)
      d.static_reason = "removed in Linux 6.6 when EEVDF replaced CFS (this kernel is " + release +
                        "); use sched.base_slice_ns or task.slice_us";
    else if (!cfs_debugfs)
      d.where = Where::Sysctl, d.file = std::string("kernel/sched_") + c.name;
    out.push_back(d);
  }

  add_cgroup_family(out, false, ncpus);
  add_cgroup_family(out, true, ncpus);
  return out;
}

KnobDef extra_sysctl_def(const ExtraSysctl& x) {
  std::string desc = x.description.empty() ? "Extra sysctl " + x.name +
                                                 " (added in the config; no description given)."
                                           : x.description;
  KnobDef d = sysctl(x.name, x.unit, KnobDomain{x.min, x.max, x.scale, {}}, std::nullopt, desc);
  return d;
}

std::vector<KnobDef> configured_defs(const KnobsConfig& c) {
  KernelVersion kv =
      parse_kernel_release(c.kernel_release.empty() ? running_kernel_release() : c.kernel_release);
  std::vector<KnobDef> defs = builtin_defs(kv, static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN)));
  for (const auto& x : c.extra_sysctls) defs.push_back(extra_sysctl_def(x));
  for (auto& d : defs) {
    auto r = c.ranges.find(d.info.name);
    if (r != c.ranges.end()) {
      d.info.domain.min = std::max(d.info.domain.min, r->second.first);
      d.info.domain.max = std::min(d.info.domain.max, r->second.second);
    }
  }
  return defs;
}

namespace {
const std::vector<KnobDef>& reference_defs() {
  static const std::vector<KnobDef> defs =
      builtin_defs(running_kernel(), static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN)));
  return defs;
}
}  // namespace

bool is_builtin_knob(const std::string& name) { return builtin_domain(name).has_value(); }

std::optional<KnobDomain> builtin_domain(const std::string& name) {
  for (const auto& d : reference_defs())
    if (d.info.name == name) return d.info.domain;
  return std::nullopt;
}

}  // namespace specact::knobs
