#include "target/target.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

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

bool valid_unit_name(const std::string& u) {
  if (u.empty() || u.size() > 255) return false;
  return std::all_of(u.begin(), u.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) ||
           std::string_view(":-_.\\@").find(c) != std::string_view::npos;
  });
}

}  // namespace

TargetSpec TargetSpec::from_json(const nlohmann::json& j) {
  if (!j.is_object() || j.size() != 1)
    throw TargetError(
        "target must be an object with exactly one of \"pid\", \"pids\", \"cgroup\", \"unit\", "
        "\"comm\"");
  TargetSpec s;
  const auto& [key, value] = *j.items().begin();
  if (key == "pid" || key == "pids") {
    s.kind = Kind::Pid;
    auto add = [&](const nlohmann::json& v) {
      if (!v.is_number_integer() || v.get<int64_t>() <= 0)
        throw TargetError("target." + key + ": expected a positive integer pid");
      s.pids.push_back(v.get<pid_t>());
    };
    if (key == "pid")
      add(value);
    else if (value.is_array() && !value.empty())
      for (const auto& v : value) add(v);
    else
      throw TargetError("target.pids: expected a non-empty array of pids");
  } else if (key == "cgroup" || key == "unit" || key == "comm") {
    if (!value.is_string() || value.get<std::string>().empty())
      throw TargetError("target." + key + ": expected a non-empty string");
    auto v = value.get<std::string>();
    if (key == "cgroup") s.kind = Kind::Cgroup, s.cgroup = v;
    if (key == "unit") s.kind = Kind::Unit, s.unit = v;
    if (key == "comm") s.kind = Kind::Comm, s.comm_regex = v;
  } else {
    throw TargetError("target: unknown key \"" + key +
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
    case Kind::Pid:
      if (spec_.pids.empty()) throw TargetError("no target pid given");
      for (pid_t p : spec_.pids)
        if (!process_exists(p, proc_root_))
          throw TargetError("no such process: pid " + std::to_string(p));
      break;
    case Kind::Comm:
      try {
        comm_re_.emplace(spec_.comm_regex, std::regex::ECMAScript);
      } catch (const std::regex_error& e) {
        throw TargetError("malformed comm regex '" + spec_.comm_regex + "': " + e.what());
      }
      break;
    case Kind::Cgroup:
    case Kind::Unit: {
      std::string root = cgroup_root_.empty() ? cgroup2_mount(proc_root_) : cgroup_root_;
      if (root.empty())
        throw TargetError(
            "no cgroup v2 hierarchy is mounted (cgroup v1-only host); use --pid or "
            "--comm instead");
      if (spec_.kind == Kind::Cgroup) {
        std::string path = spec_.cgroup;
        if (path.rfind(root, 0) != 0) path = root + (path.starts_with("/") ? "" : "/") + path;
        std::error_code ec;
        if (!fs::is_directory(path, ec) || !fs::exists(fs::path(path) / "cgroup.procs", ec))
          throw TargetError("no such cgroup v2 directory: " + path);
        cgroup_dir_ = fs::weakly_canonical(path, ec).string();
      } else {
        if (!valid_unit_name(spec_.unit))
          throw TargetError("invalid unit name '" + spec_.unit + "'");
        std::string rel;
        std::error_code ec;
        if (fs::exists("/run/systemd/system", ec))
          rel = run_capture("systemctl show -p ControlGroup --value -- '" + spec_.unit +
                            "' 2>/dev/null");
        std::optional<std::string> dir;
        if (!rel.empty() && fs::is_directory(root + rel, ec)) dir = root + rel;
        if (!dir) dir = find_dir_named(root, spec_.unit, 4);
        if (!dir)
          throw TargetError("unknown unit '" + spec_.unit + "': no cgroup for it under " + root +
                            " (is it running?)");
        cgroup_dir_ = *dir;
      }
      break;
    }
  }
}

std::vector<pid_t> TargetResolver::processes() const {
  using Kind = TargetSpec::Kind;
  std::vector<pid_t> out;
  switch (spec_.kind) {
    case Kind::Pid:
      for (pid_t p : spec_.pids)
        if (process_exists(p, proc_root_)) out.push_back(p);
      break;
    case Kind::Cgroup:
    case Kind::Unit: {
      if (!cgroup_dir_) break;
      std::set<pid_t> procs;
      collect_cgroup_procs(*cgroup_dir_, procs);
      out.assign(procs.begin(), procs.end());
      break;
    }
    case Kind::Comm: {
      if (!comm_re_) break;
      pid_t self = getpid();
      for (pid_t p : numeric_entries(proc_root_)) {
        if (p == self) continue;
        std::string comm = read_first_line(proc_root_ + "/" + std::to_string(p) + "/comm");
        if (!comm.empty() && std::regex_search(comm, *comm_re_)) out.push_back(p);
      }
      break;
    }
  }
  return out;
}

}  // namespace specact
