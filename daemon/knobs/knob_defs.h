// The knob descriptor tables: every knob specact knows, as data — name,
// domain, the text agents see, and where it lives (which backend writes it and
// with what). Adding knobs of an existing kind is adding rows here.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common/knob_info.h"
#include "knobs/file_codec.h"
#include "knobs/knob_manager.h"
#include "knobs/task_sched.h"

namespace specact::knobs {

// Where a knob lives. Task / Background: every thread of the set, through
// the task backend (task_backend.h). The others: files below the configured
// roots, through the file backend (file_backend.h).
enum class Where { Task, Background, Sysctl, Debugfs, CgroupTarget, CgroupBackground };

struct KnobDef {
  KnobInfo info;  // name, family, unit, description, domain, default_value
  Where where = Where::Sysctl;
  TaskField field = TaskField::Slice;  // Task / Background
  std::string file;  // Sysctl: "kernel/x"; Debugfs: "base_slice_ns"; Cgroup*: "cpu.weight"
  Codec codec = Codec::Int;
  int64_t unlimited = 0;      // CpuMax: the value that means "max"
  std::string static_reason;  // unavailable whatever we probe (kernel version)
  // > 0: the knob's default is the kernel's default task slice (probed, in
  // ns) divided by this: 1000 for a knob in us, 1 for one in ns.
  int64_t default_slice_divisor = 0;

  bool per_task() const { return where == Where::Task || where == Where::Background; }
  bool background() const { return where == Where::Background || where == Where::CgroupBackground; }
};

struct KernelVersion {
  int major = 0, minor = 0;
  bool at_least(int ma, int mi) const { return major > ma || (major == ma && minor >= mi); }
};
KernelVersion parse_kernel_release(const std::string& release);
KernelVersion running_kernel();
std::string running_kernel_release();

std::vector<KnobDef> builtin_defs(KernelVersion kv, int ncpus);
KnobDef extra_sysctl_def(const ExtraSysctl& x);
// The knobs of a configuration: the built-in ones for its kernel (the running
// one unless kernel_release says otherwise) and this machine's CPU count, its
// extra sysctls, with the numeric domains narrowed by its ranges.
std::vector<KnobDef> configured_defs(const KnobsConfig& c);
bool is_builtin_knob(const std::string& name);
std::optional<KnobDomain> builtin_domain(const std::string& name);

}  // namespace specact::knobs
