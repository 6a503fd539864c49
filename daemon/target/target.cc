#include "target/target.h"

#include <dirent.h>
#include <re2/re2.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <climits>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "common/bounded_regex.h"

namespace specact {
namespace fs = std::filesystem;

namespace {

std::vector<pid_t> numeric_entries(const std::string& dir) {
  std::vector<pid_t> out;
  DIR* d = opendir(dir.c_str());
  if (!d) return out;
  while (dirent* e = readdir(d)) {
    char* end = nullptr;
    long v = std::strtol(e->d_name, &end, 10);
    if (end && *end == '\0' && v > 0) out.push_back(static_cast<pid_t>(v));
  }
  closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

std::string read_first_line(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

// cgroup.procs of dir and every descendant.
void collect_cgroup_procs(const fs::path& dir, std::set<pid_t>& out) {
  std::ifstream in(dir / "cgroup.procs");
  pid_t p;
  while (in >> p) out.insert(p);
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
    if (it->is_directory(ec)) collect_cgroup_procs(it->path(), out);
}

std::optional<std::string> find_dir_named(const fs::path& root, const std::string& name,
                                          int depth) {
  std::error_code ec;
  for (fs::directory_iterator it(root, ec), end; !ec && it != end; it.increment(ec)) {
    if (!it->is_directory(ec)) continue;
    if (it->path().filename() == name) return it->path().string();
    if (depth > 0)
      if (auto found = find_dir_named(it->path(), name, depth - 1)) return found;
  }
  return std::nullopt;
}

std::string run_capture(const std::string& cmd) {
  std::string out;
  FILE* f = popen(cmd.c_str(), "r");
  if (!f) return out;
  std::array<char, 256> buf{};
  while (fgets(buf.data(), buf.size(), f)) out += buf.data();
  pclose(f);
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

TargetPolicy& mutable_policy() {
  static TargetPolicy policy;
  return policy;
}

bool valid_unit_name(const std::string& u) {
  if (u.empty() || u.size() > 255) return false;
  return std::all_of(u.begin(), u.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) ||
           std::string_view(":-_.\\@").find(c) != std::string_view::npos;
  });
}

// Follows a unit to its cgroup: systemd's answer first, else a directory named
// after the unit a few levels down (containers, tests with a fake root).
std::optional<std::string> unit_cgroup_dir(const std::string& unit, const std::string& root) {
  std::string rel;
  std::error_code ec;
  if (fs::exists("/run/systemd/system", ec))
    rel = run_capture("systemctl show -p ControlGroup --value -- '" + unit + "' 2>/dev/null");
  if (!rel.empty() && fs::is_directory(root + rel, ec)) return root + rel;
  return find_dir_named(root, unit, 4);
}

}  // namespace

const TargetPolicy& target_policy() { return mutable_policy(); }
void set_target_policy(const TargetPolicy& policy) { mutable_policy() = policy; }

int64_t kernel_pid_max() {
  std::string line = read_first_line("/proc/sys/kernel/pid_max");
  char* end = nullptr;
  long long v = std::strtoll(line.c_str(), &end, 10);
  if (line.empty() || !end || *end != '\0' || v <= 1 || v > INT32_MAX) return 4194304;
  return v;
}

std::shared_ptr<const re2::RE2> compile_comm_regex(const std::string& pattern) {
  if (pattern.size() > kMaxCommRegexLength)
    throw TargetError("comm regex is " + std::to_string(pattern.size()) + " bytes; the limit is " +
                      std::to_string(kMaxCommRegexLength) + " (a comm is at most 15 characters)");
  std::string error;
  auto re = compile_bounded_regex(pattern, kMaxCommRegexLength, &error);
  if (!re) {
    std::string shown = pattern.size() > 64 ? pattern.substr(0, 64) + "..." : pattern;
    throw TargetError("malformed comm regex '" + shown + "': " + error);
  }
  return re;
}

void check_target_allowed(const TargetSpec& spec, const TargetPolicy& policy) {
  if (spec.kind != TargetSpec::Kind::Pid || policy.allow_init_and_self) return;
  const pid_t self = getpid();
  for (pid_t p : spec.pids) {
    if (p == 1)
      throw TargetError(
          "pid 1 (init) is refused as a target; set \"allow_init_and_self\": true in the "
          "config to tune it anyway");
    if (p == self)
      throw TargetError("pid " + std::to_string(p) +
                        " is specactd itself and is refused as a target; set "
                        "\"allow_init_and_self\": true in the config to allow it");
  }
}

TargetSpec TargetSpec::from_json(const nlohmann::json& j, const TargetPolicy& policy) {
  if (!j.is_object() || j.size() != 1)
    throw TargetError(
        "target must be an object with exactly one of \"pid\", \"pids\", \"cgroup\", \"unit\", "
        "\"comm\"");
  TargetSpec s;
  // A copy of the key: items()'s proxy is a temporary.
  const std::string key = j.begin().key();
  const nlohmann::json& value = j.begin().value();
  if (key == "pid" || key == "pids") {
    s.kind = Kind::Pid;
    // Checked in the JSON's own 64-bit types before any conversion: a pid_t
    // cast of 4294967297 is 1.
    auto add = [&](const nlohmann::json& v) {
      if (!v.is_number_integer())
        // The type, not the value: dump() recurses, and a hostile value nests
        // deeply enough to overflow the stack.
        throw TargetError("target." + key + ": expected a positive integer pid, got " +
                          (v.is_number() ? v.dump() : std::string("a ") + v.type_name()));
      const bool in_range = v.is_number_unsigned()
                                ? v.get<uint64_t>() >= 1 && v.get<uint64_t>() <= INT32_MAX
                                : v.get<int64_t>() >= 1 && v.get<int64_t>() <= INT32_MAX;
      if (!in_range)
        throw TargetError("target." + key + ": " + v.dump() + " is not a valid pid (expected 1.." +
                          std::to_string(kernel_pid_max()) + ")");
      s.pids.push_back(static_cast<pid_t>(v.get<int64_t>()));
    };
    if (key == "pid") {
      add(value);
    } else if (value.is_array() && !value.empty()) {
      if (value.size() > policy.max_pids)
        throw TargetError("target.pids: " + std::to_string(value.size()) +
                          " entries; the limit is " + std::to_string(policy.max_pids) +
                          " (config key max_target_pids)");
      for (const auto& v : value) add(v);
      // Duplicates would only multiply the work on every refresh.
      std::sort(s.pids.begin(), s.pids.end());
      s.pids.erase(std::unique(s.pids.begin(), s.pids.end()), s.pids.end());
    } else {
      throw TargetError("target.pids: expected a non-empty array of pids");
    }
  } else if (key == "cgroup" || key == "unit" || key == "comm") {
    if (!value.is_string() || value.get<std::string>().empty())
      throw TargetError("target." + key + ": expected a non-empty string");
    auto v = value.get<std::string>();
    if (key == "cgroup" && v.size() > kMaxCgroupPathLength)
      throw TargetError("target.cgroup: path of " + std::to_string(v.size()) +
                        " bytes; the limit is " + std::to_string(kMaxCgroupPathLength));
    if (key == "unit" && !valid_unit_name(v))
      throw TargetError("target.unit: invalid unit name '" + v.substr(0, 64) +
                        "' (at most 255 of A-Z a-z 0-9 : - _ . \\ @)");
    if (key == "comm") compile_comm_regex(v);  // throws with the reason
    if (key == "cgroup") s.kind = Kind::Cgroup, s.cgroup = v;
    if (key == "unit") s.kind = Kind::Unit, s.unit = v;
    if (key == "comm") s.kind = Kind::Comm, s.comm_regex = v;
  } else {
    throw TargetError("target: unknown key \"" + key.substr(0, 64) +
                      "\" (expected pid, pids, cgroup, unit or comm)");
  }
  return s;
}

nlohmann::json TargetSpec::to_json() const {
  switch (kind) {
    case Kind::Pid:
      if (pids.size() == 1) return {{"pid", pids[0]}};
      return {{"pids", pids}};
    case Kind::Cgroup:
      return {{"cgroup", cgroup}};
    case Kind::Unit:
      return {{"unit", unit}};
    case Kind::Comm:
      return {{"comm", comm_regex}};
  }
  return nullptr;
}

std::string TargetSpec::describe() const {
  switch (kind) {
    case Kind::Pid: {
      std::string s = pids.size() == 1 ? "pid " : "pids ";
      for (size_t i = 0; i < pids.size(); ++i) s += (i ? "," : "") + std::to_string(pids[i]);
      return s;
    }
    case Kind::Cgroup:
      return "cgroup " + cgroup;
    case Kind::Unit:
      return "unit " + unit;
    case Kind::Comm:
      return "comm /" + comm_regex + "/";
  }
  return "?";
}

std::string cgroup2_mount(const std::string& proc_root) {
  std::ifstream in(proc_root + "/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    // ... mount_point ... - fstype source options
    auto dash = line.find(" - ");
    if (dash == std::string::npos) continue;
    std::istringstream tail(line.substr(dash + 3));
    std::string fstype;
    tail >> fstype;
    if (fstype != "cgroup2") continue;
    std::istringstream head(line.substr(0, dash));
    std::string id, parent, devno, root, mount_point;
    head >> id >> parent >> devno >> root >> mount_point;
    return mount_point;
  }
  return "";
}

std::string cgroup2_dir_of(pid_t pid, const std::string& proc_root,
                           const std::string& cgroup_root) {
  std::string root = cgroup_root.empty() ? cgroup2_mount(proc_root) : cgroup_root;
  if (root.empty()) return "";
  std::ifstream in(proc_root + "/" + std::to_string(pid) + "/cgroup");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("0::", 0) == 0) return root + line.substr(3);
  return "";
}

std::vector<pid_t> threads_of(pid_t tgid, const std::string& proc_root) {
  return numeric_entries(proc_root + "/" + std::to_string(tgid) + "/task");
}

bool process_exists(pid_t pid, const std::string& proc_root) {
  if (pid <= 0) return false;
  // A zombie has exited: it only waits to be reaped.
  std::string stat_line = read_first_line(proc_root + "/" + std::to_string(pid) + "/stat");
  auto close_paren = stat_line.rfind(')');
  if (close_paren == std::string::npos || close_paren + 2 >= stat_line.size()) return false;
  char state = stat_line[close_paren + 2];
  return state != 'Z' && state != 'X';
}

TargetResolver::TargetResolver(TargetSpec spec, std::string proc_root, std::string cgroup_root)
    : spec_(std::move(spec)),
      proc_root_(std::move(proc_root)),
      cgroup_root_(std::move(cgroup_root)) {}

void TargetResolver::validate() {
  using Kind = TargetSpec::Kind;
  switch (spec_.kind) {
    case Kind::Pid: {
      if (spec_.pids.empty()) throw TargetError("no target pid given");
      const int64_t pid_max = kernel_pid_max();
      for (pid_t p : spec_.pids) {
        if (p <= 0 || p >= pid_max)
          throw TargetError("no such process: pid " + std::to_string(p) + " (kernel.pid_max is " +
                            std::to_string(pid_max) + ")");
        if (!process_exists(p, proc_root_))
          throw TargetError("no such process: pid " + std::to_string(p));
      }
      break;
    }
    case Kind::Comm:
      comm_re_ = compile_comm_regex(spec_.comm_regex);
      break;
    case Kind::Cgroup:
    case Kind::Unit: {
      std::string root = cgroup_root_.empty() ? cgroup2_mount(proc_root_) : cgroup_root_;
      if (root.empty())
        throw TargetError(
            "no cgroup v2 hierarchy is mounted (cgroup v1-only host); use --pid or "
            "--comm instead");
      cgroup_root_resolved_ = root;
      std::error_code ec;
      if (spec_.kind == Kind::Cgroup) {
        if (spec_.cgroup.size() > kMaxCgroupPathLength)
          throw TargetError("cgroup path too long (limit " + std::to_string(kMaxCgroupPathLength) +
                            " bytes)");
        // The kernel reads a path up to its first NUL: "\0x" would name the
        // cgroup root itself (every process on the machine).
        if (std::any_of(spec_.cgroup.begin(), spec_.cgroup.end(),
                        [](unsigned char ch) { return ch < 0x20 || ch == 0x7f; }))
          throw TargetError("cgroup path contains a control character (NUL, newline, ...)");
        std::string path = spec_.cgroup;
        if (path.rfind(root, 0) != 0) path = root + (path.starts_with("/") ? "" : "/") + path;
        fs::path norm = fs::path(path).lexically_normal();
        std::string rel = norm.lexically_relative(root).string();
        if (rel.empty() || rel.starts_with(".."))
          throw TargetError("cgroup " + spec_.cgroup + " is outside the cgroup v2 mount " + root);
        // A directory that does not exist yet (the service creates it) is a
        // target with no processes until it does.
        if (!fs::exists(norm, ec) && !target_policy().absent_targets_allowed)
          throw TargetError("no such cgroup v2 directory: " + norm.string());
        if (fs::exists(norm, ec) && !fs::is_directory(norm, ec))
          throw TargetError("not a cgroup v2 directory: " + norm.string());
        if (fs::is_directory(norm, ec) && !fs::exists(norm / "cgroup.procs", ec))
          throw TargetError("not a cgroup v2 directory (no cgroup.procs): " + norm.string());
        cgroup_dir_ = norm.string();
      } else {
        if (!valid_unit_name(spec_.unit))
          throw TargetError("invalid unit name '" + spec_.unit + "'");
        // Not running yet can be fine: processes() looks for its cgroup again.
        cgroup_dir_ = unit_cgroup_dir(spec_.unit, root);
        if (!cgroup_dir_ && !target_policy().absent_targets_allowed)
          throw TargetError("unknown unit '" + spec_.unit + "': no cgroup for it under " + root +
                            " (is it running?)");
      }
      break;
    }
  }
}

std::vector<pid_t> TargetResolver::processes() const {
  using Kind = TargetSpec::Kind;
  std::vector<pid_t> out;
  const pid_t self = getpid();
  const bool allow_init = target_policy().allow_init_and_self;
  // Explicit pids were checked by check_target_allowed; sets found by
  // matching never include this process, nor init unless allowed.
  auto wanted = [&](pid_t p) { return p != self && (p != 1 || allow_init); };
  switch (spec_.kind) {
    case Kind::Pid:
      for (pid_t p : spec_.pids)
        if (process_exists(p, proc_root_)) out.push_back(p);
      break;
    case Kind::Cgroup:
    case Kind::Unit: {
      if (cgroup_root_resolved_.empty()) break;  // not validated
      std::error_code ec;
      if (spec_.kind == Kind::Unit && (!cgroup_dir_ || !fs::is_directory(*cgroup_dir_, ec)))
        cgroup_dir_ = unit_cgroup_dir(spec_.unit, cgroup_root_resolved_);
      if (!cgroup_dir_ || !fs::is_directory(*cgroup_dir_, ec)) break;
      std::set<pid_t> procs;
      collect_cgroup_procs(*cgroup_dir_, procs);
      for (pid_t p : procs)
        if (wanted(p)) out.push_back(p);
      break;
    }
    case Kind::Comm: {
      if (!comm_re_) break;
      for (pid_t p : numeric_entries(proc_root_)) {
        if (!wanted(p)) continue;
        std::string comm = read_first_line(proc_root_ + "/" + std::to_string(p) + "/comm");
        if (!comm.empty() && RE2::PartialMatch(comm, *comm_re_)) out.push_back(p);
      }
      break;
    }
  }
  return out;
}

}  // namespace specact
