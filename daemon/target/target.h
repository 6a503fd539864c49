// Which tasks are "the target": a pid list, a cgroup v2 path, a systemd unit
// (its cgroup) or a comm regex, resolved against /proc and the cgroup2 tree.
// Both the sampler (what to measure) and the knobs (whom to tune) use this.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <regex>  // kept for includers that rely on it
#include <stdexcept>
#include <string>
#include <vector>

namespace re2 {
class RE2;
}

namespace specact {

class TargetError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Bounds on what a target may name. Comm patterns are matched with RE2 (linear
// time, no backreferences or lookaround), so a pattern cannot hang the loop;
// the length and memory caps keep compiling one cheap too.
inline constexpr size_t kMaxCommRegexLength = 1024;   // bytes; a comm has at most 15
inline constexpr size_t kMaxCgroupPathLength = 4096;  // PATH_MAX
inline constexpr size_t kDefaultMaxTargetPids = 4096;

// What the daemon accepts as a target, from its config (process-wide, set once
// by `specactd run` before the loop starts; defaults are the safe ones).
struct TargetPolicy {
  size_t max_pids = kDefaultMaxTargetPids;  // "pids" lists longer than this are refused
  bool allow_init_and_self = false;         // pid 1 and the daemon itself are refused
  // A unit not running yet / a cgroup directory not created yet validates and
  // resolves to no processes until it appears (`specactd run` sets this: it
  // waits for its target). Off, validate() reports them as errors (monitor).
  bool absent_targets_allowed = false;
};
const TargetPolicy& target_policy();
void set_target_policy(const TargetPolicy& policy);

// kernel.pid_max (4194304, the 64-bit limit, when it cannot be read).
int64_t kernel_pid_max();

// Compiles a comm pattern with the bounded RE2 options; throws TargetError with
// the reason (too long, invalid, too large, unsupported syntax).
std::shared_ptr<const re2::RE2> compile_comm_regex(const std::string& pattern);

struct TargetSpec {
  enum class Kind { Pid, Cgroup, Unit, Comm };
  Kind kind = Kind::Pid;
  std::vector<pid_t> pids;
  std::string cgroup;  // absolute, or relative to the cgroup2 mount
  std::string unit;
  std::string comm_regex;

  static TargetSpec pid(pid_t p) { return {Kind::Pid, {p}, {}, {}, {}}; }
  // {"pid":N} | {"pids":[..]} | {"cgroup":".."} | {"unit":".."} | {"comm":".."}; throws
  // TargetError. Pids are strict integers in [1, INT32_MAX] (never narrowed), "pids" is
  // de-duplicated and capped at policy.max_pids, strings are length-capped and a comm
  // pattern must compile under the RE2 bounds. Whether the pids exist (and are below
  // kernel.pid_max) is validate()'s question; pid 1 / self is check_target_allowed()'s.
  static TargetSpec from_json(const nlohmann::json& j,
                              const TargetPolicy& policy = target_policy());
  nlohmann::json to_json() const;
  std::string describe() const;  // "pid 123", "unit nginx.service", ...
};

// Mount point of the cgroup v2 hierarchy ("" when there is none), from mountinfo.
std::string cgroup2_mount(const std::string& proc_root = "/proc");
// The cgroup v2 directory of a process, or "" when unknown.
std::string cgroup2_dir_of(pid_t pid, const std::string& proc_root = "/proc",
                           const std::string& cgroup_root = "");
// All thread ids of a process (empty if it is gone).
std::vector<pid_t> threads_of(pid_t tgid, const std::string& proc_root = "/proc");
bool process_exists(pid_t pid, const std::string& proc_root = "/proc");

// Throws TargetError when spec names pid 1 or this process and the policy does not
// allow it (config key "allow_init_and_self").
void check_target_allowed(const TargetSpec& spec, const TargetPolicy& policy = target_policy());

class TargetResolver {
 public:
  // proc_root and cgroup_root are overridable for tests; cgroup_root "" = detect.
  explicit TargetResolver(TargetSpec spec, std::string proc_root = "/proc",
                          std::string cgroup_root = "");

  // Throws TargetError with one clear sentence when the target cannot be used
  // (no such pid, malformed regex, invalid unit name, no cgroup v2 on this host).
  // With target_policy().absent_targets_allowed, a unit that is not running
  // yet, or a cgroup directory that does not exist yet, is valid: it resolves
  // to no processes until it appears.
  void validate();
  // The processes (tgids) that make up the target right now. Never this process;
  // pid 1 only for an explicit pid target (or when the policy allows it). A unit's
  // cgroup is looked up again when it is unknown or gone (the unit started or
  // restarted).
  std::vector<pid_t> processes() const;
  // For cgroup/unit targets: the absolute cgroup directory, once it exists.
  std::optional<std::string> cgroup_dir() const { return cgroup_dir_; }
  // cgroup and unit targets include processes forked later.
  bool follows_forks() const {
    return spec_.kind == TargetSpec::Kind::Cgroup || spec_.kind == TargetSpec::Kind::Unit;
  }
  const TargetSpec& spec() const { return spec_; }

 private:
  TargetSpec spec_;
  std::string proc_root_;
  std::string cgroup_root_;
  // Unit cgroups move on restart; processes() refreshes it, hence mutable.
  mutable std::optional<std::string> cgroup_dir_;
  std::string cgroup_root_resolved_;
  std::shared_ptr<const re2::RE2> comm_re_;
};

}  // namespace specact
