// Per-task scheduler attributes (sched_getattr / sched_setattr), the fields
// the per-task knobs act on, and their units. One thread at a time; which
// threads is the task backend's business (task_backend.h).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>

namespace specact::knobs {

struct TaskAttr {
  int policy = 0;  // SCHED_OTHER / SCHED_BATCH / SCHED_IDLE / realtime ...
  int nice = 0;
  uint64_t runtime_ns = 0;  // EEVDF slice as the kernel reports it
  bool reset_on_fork = false;
  bool runtime_default = false;  // write sched_runtime=0 (back to the default slice)
};

// 0 or errno (ESRCH when the thread is gone).
int get_task_attr(pid_t tid, TaskAttr* out);
// Writes `want` given the thread's current attributes `cur`; 0 or errno.
// SCHED_IDLE ignores nice/slice in sched_setattr, so those are set first under
// a fair policy.
int set_task_attr(pid_t tid, const TaskAttr& want, const TaskAttr& cur);
bool tunable_policy(int policy);  // OTHER, BATCH, IDLE (not realtime/deadline)
// Start time (clock ticks since boot, /proc stat field 22) of a thread; 0 if gone.
// Guards against restoring a recycled tid.
uint64_t task_start_time(const std::string& proc_root, pid_t tgid, pid_t tid);

struct SliceProbe {
  bool supported = false;
  int64_t default_slice_ns = 0;  // what a task without a custom slice reports
  std::string reason;
};
// Tries sched_runtime on a short-lived thread of this process.
SliceProbe probe_slice_support();

enum class TaskField { Slice, Nice, Policy };
std::string to_string(TaskField f);
std::optional<TaskField> task_field_from_string(const std::string& s);
// Kernel units: slice in ns, nice, policy number.
int64_t task_field_get(const TaskAttr& a, TaskField f);
void task_field_set(TaskAttr* a, TaskField f, int64_t v, int64_t default_slice_ns);
// Knob units (slice in us, policy as the index into other/batch/idle) <->
// kernel units. A policy the knob has no index for (realtime) is nullopt.
int64_t to_kernel_units(TaskField f, int64_t knob_value);
std::optional<int64_t> from_kernel_units(TaskField f, int64_t kernel_value);
// A kernel-unit value for people: "300us", "nice 5", "batch".
std::string describe_task_value(TaskField f, int64_t kernel_value);

}  // namespace specact::knobs
