// Which tasks are "the target": a pid list, a cgroup v2 path, a systemd unit
// (its cgroup) or a comm regex, resolved against /proc and the cgroup2 tree.
// Both the sampler (what to measure) and the knobs (whom to tune) use this.
#pragma once

#include <sys/types.h>

#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <regex>
#include <stdexcept>
#include <string>
#include <vector>

namespace specact {

class TargetError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct TargetSpec {
  enum class Kind { Pid, Cgroup, Unit, Comm };
  Kind kind = Kind::Pid;
  std::vector<pid_t> pids;
  std::string cgroup;  // absolute, or relative to the cgroup2 mount
  std::string unit;
  std::string comm_regex;

  static TargetSpec pid(pid_t p) { return {Kind::Pid, {p}, {}, {}, {}}; }
  // {"pid":N} | {"pids":[..]} | {"cgroup":".."} | {"unit":".."} | {"comm":".."}; throws
  // TargetError.
  static TargetSpec from_json(const nlohmann::json& j);
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

class TargetResolver {
 public:
  // proc_root and cgroup_root are overridable for tests; cgroup_root "" = detect.
  explicit TargetResolver(TargetSpec spec, std::string proc_root = "/proc",
                          std::string cgroup_root = "");

  // Throws TargetError with one clear sentence when the target cannot be used
  // (no such pid, malformed regex, unknown unit, no cgroup v2 on this host).
  void validate();
  // The processes (tgids) that make up the target right now.
  std::vector<pid_t> processes() const;
  // For cgroup/unit targets: the absolute cgroup directory.
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
  std::optional<std::string> cgroup_dir_;
  std::optional<std::regex> comm_re_;
};

}  // namespace specact
