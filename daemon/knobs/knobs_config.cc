// The "knobs" section of the daemon config (schema in daemon/knobs/README.md).
#include <algorithm>
#include <regex>

#include "knobs/knob_defs.h"
#include "knobs/knob_manager.h"

namespace specact {
namespace {

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw KnobsConfigError(path + ": " + what);
}

std::string get_string(const nlohmann::json& v, const std::string& path) {
  if (!v.is_string()) fail(path, "expected a string");
  return v.get<std::string>();
}

int64_t get_int(const nlohmann::json& v, const std::string& path) {
  if (!v.is_number_integer()) fail(path, "expected an integer");
  return v.get<int64_t>();
}

std::vector<std::string> get_patterns(const nlohmann::json& v, const std::string& path) {
  if (!v.is_array()) fail(path, "expected an array of knob names or glob patterns");
  std::vector<std::string> out;
  for (size_t i = 0; i < v.size(); ++i) {
    auto s = get_string(v[i], path + "[" + std::to_string(i) + "]");
    if (s.empty()) fail(path + "[" + std::to_string(i) + "]", "empty pattern");
    out.push_back(s);
  }
  return out;
}

}  // namespace

KnobsConfig KnobsConfig::from_json(const nlohmann::json& j) {
  const std::string root = "knobs";
  KnobsConfig c;
  if (j.is_null()) return c;
  if (!j.is_object()) fail(root, "expected an object");
  static const std::vector<std::string> keys = {
      "state_dir",  "allow",           "deny",      "ranges",   "extra_sysctls", "min_interval_ms",
      "background", "restore_on_exit", "proc_root", "sys_root", "debugfs_root",  "cgroup_root"};
  for (const auto& [key, value] : j.items()) {
    std::string path = root + "." + key;
    if (std::find(keys.begin(), keys.end(), key) == keys.end())
      fail(path,
           "unknown key (expected one of: state_dir, allow, deny, ranges, extra_sysctls, "
           "min_interval_ms, background, restore_on_exit, proc_root, sys_root, "
           "debugfs_root, cgroup_root)");
    if (key == "state_dir" || key == "proc_root" || key == "sys_root" || key == "debugfs_root" ||
        key == "cgroup_root") {
      std::string s = get_string(value, path);
      if (key != "cgroup_root" && s.empty()) fail(path, "must not be empty");
      if (!s.empty() && s[0] != '/') fail(path, "expected an absolute path, got '" + s + "'");
      if (key == "state_dir") c.state_dir = s;
      if (key == "proc_root") c.proc_root = s;
      if (key == "sys_root") c.sys_root = s;
      if (key == "debugfs_root") c.debugfs_root = s;
      if (key == "cgroup_root") c.cgroup_root = s;
    } else if (key == "allow") {
      c.allow = get_patterns(value, path);
    } else if (key == "deny") {
      c.deny = get_patterns(value, path);
    } else if (key == "min_interval_ms") {
      int64_t v = get_int(value, path);
      if (v < 0 || v > 3'600'000) fail(path, "expected 0..3600000 milliseconds");
      c.min_interval_ms = static_cast<int>(v);
    } else if (key == "restore_on_exit") {
      if (!value.is_boolean()) fail(path, "expected true or false");
      c.restore_on_exit = value.get<bool>();
    } else if (key == "background") {
      try {
        c.background = TargetSpec::from_json(value);
      } catch (const TargetError& e) {
        fail(path, e.what());
      }
    } else if (key == "extra_sysctls") {
      if (!value.is_object())
        fail(path, "expected an object {\"kernel.name\": {\"min\":..,\"max\":..}}");
      static const std::regex name_re("^[a-z0-9_]+(\\.[a-z0-9_-]+)+$");
      for (const auto& [name, spec] : value.items()) {
        // A sysctl path is far shorter than this; the cap also keeps
        // std::regex (which recurses per character) away from huge names.
        constexpr size_t kMaxSysctlNameLength = 255;
        if (name.size() > kMaxSysctlNameLength)
          fail(path, "a sysctl name of " + std::to_string(name.size()) + " bytes (the limit is " +
                         std::to_string(kMaxSysctlNameLength) + ")");
        std::string p = path + "." + name;
        // Dots only: no '/', no '..' — the name becomes a path under /proc/sys.
        if (!std::regex_match(name, name_re))
          fail(p, "not a sysctl name (dotted, lowercase, e.g. kernel.sched_rt_runtime_us)");
        if (!spec.is_object()) fail(p, "expected an object with min and max");
        ExtraSysctl x;
        x.name = name;
        bool has_min = false, has_max = false;
        for (const auto& [k, v] : spec.items()) {
          std::string kp = p + "." + k;
          if (k == "min")
            x.min = get_int(v, kp), has_min = true;
          else if (k == "max")
            x.max = get_int(v, kp), has_max = true;
          else if (k == "unit")
            x.unit = get_string(v, kp);
          else if (k == "description")
            x.description = get_string(v, kp);
          else if (k == "scale") {
            std::string s = get_string(v, kp);
            if (s == "linear")
              x.scale = KnobScale::Linear;
            else if (s == "log")
              x.scale = KnobScale::Log;
            else
              fail(kp, "expected \"linear\" or \"log\"");
          } else {
            fail(kp, "unknown key (expected min, max, scale, unit, description)");
          }
        }
        if (!has_min || !has_max) fail(p, "min and max are required (explicit ranges only)");
        if (x.min > x.max) fail(p, "min > max");
        if (x.scale == KnobScale::Log && x.min <= 0) fail(p + ".scale", "log scale needs min > 0");
        if (knobs::is_builtin_knob("sysctl." + name))
          fail(p, "already a built-in knob (use knobs.ranges to narrow it)");
        c.extra_sysctls.push_back(x);
      }
    }
  }
  // Ranges last: they may refer to extra sysctls.
  if (j.contains("ranges")) {
    const auto& value = j["ranges"];
    std::string path = root + ".ranges";
    if (!value.is_object()) fail(path, "expected an object {\"knob\": {\"min\":..,\"max\":..}}");
    for (const auto& [name, spec] : value.items()) {
      std::string p = path + "." + name;
      auto dom = knobs::builtin_domain(name);
      if (!dom)
        for (const auto& x : c.extra_sysctls)
          if ("sysctl." + x.name == name) dom = KnobDomain{x.min, x.max, x.scale, {}};
      if (!dom) fail(p, "unknown knob (see `specactd knobs`)");
      if (dom->scale == KnobScale::Enum) fail(p, "enum knobs cannot be narrowed; use knobs.deny");
      if (!spec.is_object()) fail(p, "expected an object with min and/or max");
      int64_t lo = dom->min, hi = dom->max;
      for (const auto& [k, v] : spec.items()) {
        if (k == "min")
          lo = get_int(v, p + ".min");
        else if (k == "max")
          hi = get_int(v, p + ".max");
        else
          fail(p + "." + k, "unknown key (expected min, max)");
      }
      if (lo < dom->min || lo > dom->max)
        fail(p + ".min", std::to_string(lo) + " is outside the knob's domain [" +
                             std::to_string(dom->min) + ", " + std::to_string(dom->max) + "]");
      if (hi < dom->min || hi > dom->max)
        fail(p + ".max", std::to_string(hi) + " is outside the knob's domain [" +
                             std::to_string(dom->min) + ", " + std::to_string(dom->max) + "]");
      if (lo > hi) fail(p, "min > max");
      c.ranges[name] = {lo, hi};
    }
  }
  return c;
}

nlohmann::json KnobsConfig::to_json() const {
  nlohmann::json j = {{"state_dir", state_dir},
                      {"proc_root", proc_root},
                      {"sys_root", sys_root},
                      {"debugfs_root", debugfs_root},
                      {"cgroup_root", cgroup_root},
                      {"allow", allow},
                      {"deny", deny},
                      {"min_interval_ms", min_interval_ms},
                      {"restore_on_exit", restore_on_exit}};
  nlohmann::json r = nlohmann::json::object();
  for (const auto& [k, v] : ranges) r[k] = {{"min", v.first}, {"max", v.second}};
  j["ranges"] = r;
  nlohmann::json x = nlohmann::json::object();
  for (const auto& e : extra_sysctls)
    x[e.name] = {{"min", e.min},
                 {"max", e.max},
                 {"scale", to_string(e.scale)},
                 {"unit", e.unit},
                 {"description", e.description}};
  j["extra_sysctls"] = x;
  if (background) j["background"] = background->to_json();
  return j;
}

}  // namespace specact
