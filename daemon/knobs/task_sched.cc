// Per-task scheduler attributes through the raw syscalls: glibc has no
// wrappers for sched_getattr / sched_setattr.
#include "knobs/task_sched.h"

#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <sstream>
#include <thread>

#include "knobs/kernel_files.h"

namespace specact::knobs {
namespace {

struct SchedAttr {
  uint32_t size;
  uint32_t sched_policy;
  uint64_t sched_flags;
  int32_t sched_nice;
  uint32_t sched_priority;
  uint64_t sched_runtime;
  uint64_t sched_deadline;
  uint64_t sched_period;
  uint32_t sched_util_min;
  uint32_t sched_util_max;
};

constexpr uint64_t kFlagResetOnFork = 0x01;

int raw_get(pid_t tid, SchedAttr* a) {
  *a = SchedAttr{};
  if (syscall(SYS_sched_getattr, tid, a, sizeof(*a), 0) != 0) return errno;
  return 0;
}

int raw_set(pid_t tid, int policy, int nice, uint64_t runtime, bool reset_on_fork) {
  SchedAttr a{};
  a.size = sizeof(a);
  a.sched_policy = static_cast<uint32_t>(policy);
  a.sched_flags = reset_on_fork ? kFlagResetOnFork : 0;  // no UTIL_CLAMP flags: clamps untouched
  a.sched_nice = nice;
  a.sched_runtime = runtime;
  if (syscall(SYS_sched_setattr, tid, &a, 0) != 0) return errno;
  return 0;
}

bool fair(int policy) { return policy == SCHED_OTHER || policy == SCHED_BATCH; }

}  // namespace

int get_task_attr(pid_t tid, TaskAttr* out) {
  SchedAttr a;
  if (int err = raw_get(tid, &a)) return err;
  out->policy = static_cast<int>(a.sched_policy);
  out->nice = a.sched_nice;
  out->runtime_ns = a.sched_runtime;
  out->reset_on_fork = (a.sched_flags & kFlagResetOnFork) != 0;
  out->runtime_default = false;
  return 0;
}

int set_task_attr(pid_t tid, const TaskAttr& want, const TaskAttr& cur) {
  uint64_t runtime = want.runtime_default ? 0 : want.runtime_ns;
  bool params_change =
      want.nice != cur.nice || want.runtime_ns != cur.runtime_ns || want.runtime_default;
  if (want.policy == SCHED_IDLE && params_change) {
    // The kernel applies nice and slice only for OTHER/BATCH; set them first
    // under a fair policy, then switch to IDLE (which keeps them).
    int via = fair(cur.policy) ? cur.policy : SCHED_OTHER;
    if (int err = raw_set(tid, via, want.nice, runtime, want.reset_on_fork)) return err;
  }
  return raw_set(tid, want.policy, want.nice, runtime, want.reset_on_fork);
}

bool tunable_policy(int policy) { return fair(policy) || policy == SCHED_IDLE; }

uint64_t task_start_time(const std::string& proc_root, pid_t tgid, pid_t tid) {
  std::ifstream in(proc_root + "/" + std::to_string(tgid) + "/task/" + std::to_string(tid) +
                   "/stat");
  std::string line;
  if (!std::getline(in, line)) return 0;
  auto close = line.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream rest(line.substr(close + 2));
  // Fields after comm start at 3 (state); starttime is field 22.
  std::string field;
  for (int i = 3; i < 22; ++i)
    if (!(rest >> field)) return 0;
  uint64_t start = 0;
  rest >> start;
  return start;
}

SliceProbe probe_slice_support() {
  SliceProbe p;
  std::thread t([&p] {
    pid_t self = static_cast<pid_t>(syscall(SYS_gettid));
    TaskAttr a;
    if (int err = get_task_attr(self, &a)) {
      p.reason = "sched_getattr failed (" + errno_name(err) + ")";
      return;
    }
    if (int err = raw_set(self, SCHED_OTHER, a.nice, 0, false)) {
      p.reason = "sched_setattr failed (" + errno_name(err) + ")";
      return;
    }
    TaskAttr def;
    get_task_attr(self, &def);
    p.default_slice_ns = static_cast<int64_t>(def.runtime_ns);
    if (int err = raw_set(self, SCHED_OTHER, a.nice, 123000, false)) {
      p.reason = "sched_setattr with sched_runtime failed (" + errno_name(err) + ")";
      return;
    }
    TaskAttr custom;
    get_task_attr(self, &custom);
    if (custom.runtime_ns != 123000) {
      p.reason =
          "kernel ignores sched_runtime for SCHED_OTHER (per-task EEVDF slices need Linux >= 6.12)";
      return;
    }
    p.supported = true;
  });
  t.join();
  return p;
}

std::string to_string(TaskField f) {
  switch (f) {
    case TaskField::Slice:
      return "slice";
    case TaskField::Nice:
      return "nice";
    case TaskField::Policy:
      return "policy";
  }
  return "?";
}

std::optional<TaskField> task_field_from_string(const std::string& s) {
  if (s == "slice") return TaskField::Slice;
  if (s == "nice") return TaskField::Nice;
  if (s == "policy") return TaskField::Policy;
  return std::nullopt;
}

int64_t task_field_get(const TaskAttr& a, TaskField f) {
  switch (f) {
    case TaskField::Slice:
      return static_cast<int64_t>(a.runtime_ns);
    case TaskField::Nice:
      return a.nice;
    case TaskField::Policy:
      return a.policy;
  }
  return 0;
}

void task_field_set(TaskAttr* a, TaskField f, int64_t v, int64_t default_slice_ns) {
  switch (f) {
    case TaskField::Slice:
      a->runtime_ns = static_cast<uint64_t>(v);
      // A task that had no custom slice goes back to following the default.
      a->runtime_default = default_slice_ns > 0 && v == default_slice_ns;
      break;
    case TaskField::Nice:
      a->nice = static_cast<int>(v);
      break;
    case TaskField::Policy:
      a->policy = static_cast<int>(v);
      break;
  }
}

int64_t to_kernel_units(TaskField f, int64_t v) {
  switch (f) {
    case TaskField::Slice:
      return v * 1000;
    case TaskField::Nice:
      return v;
    case TaskField::Policy:
      return v == 1 ? SCHED_BATCH : v == 2 ? SCHED_IDLE : SCHED_OTHER;
  }
  return v;
}

std::optional<int64_t> from_kernel_units(TaskField f, int64_t k) {
  switch (f) {
    case TaskField::Slice:
      return (k + 500) / 1000;
    case TaskField::Nice:
      return k;
    case TaskField::Policy:
      if (k == SCHED_OTHER) return 0;
      if (k == SCHED_BATCH) return 1;
      if (k == SCHED_IDLE) return 2;
      return std::nullopt;
  }
  return std::nullopt;
}

std::string describe_task_value(TaskField f, int64_t v) {
  switch (f) {
    case TaskField::Slice:
      return std::to_string(v / 1000) + "us";
    case TaskField::Nice:
      return "nice " + std::to_string(v);
    case TaskField::Policy:
      return v == SCHED_OTHER   ? "other"
             : v == SCHED_BATCH ? "batch"
             : v == SCHED_IDLE  ? "idle"
                                : "policy " + std::to_string(v);
  }
  return std::to_string(v);
}

}  // namespace specact::knobs
