// The built-in knob definitions: names, domains, and the text agents see.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common/knob_info.h"
#include "knobs/knobs_internal.h"

namespace specact::knobs {

enum class Where { Task, Background, Sysctl, Debugfs, CgroupTarget, CgroupBackground };

struct KnobDef {
  KnobInfo info;  // name, family, unit, description, domain, default_value
  Where where = Where::Sysctl;
  TaskField field = TaskField::Slice;  // Task / Background
  std::string file;  // Sysctl: "kernel/x"; Debugfs: "base_slice_ns"; Cgroup*: "cpu.weight"
  Codec codec = Codec::Int;
  int64_t unlimited = 0;      // CpuMax: the value that means "max"
  std::string static_reason;  // unavailable whatever we probe (kernel version)
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
bool is_builtin_knob(const std::string& name);
std::optional<KnobDomain> builtin_domain(const std::string& name);

}  // namespace specact::knobs
