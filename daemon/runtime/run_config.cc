#include "runtime/run_config.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

#include "common/bounded_regex.h"
#include "common/modes.h"
#include "metrics/sampler.h"
#include "observe/textfile_writer.h"

namespace specact {

namespace {

using nlohmann::json;

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw ConfigError(path + ": " + what);
}

std::string type_name(const json& v) {
  if (v.is_number_integer()) return "integer";
  if (v.is_number()) return "number";
  return v.type_name();
}

// Keys beginning with "_" are comments (JSON has none of its own).
void check_keys(const json& obj, const std::string& path, const std::vector<std::string>& allowed) {
  if (!obj.is_object()) fail(path, "expected an object, got " + type_name(obj));
  for (const auto& [key, _] : obj.items()) {
    if (!key.empty() && key[0] == '_') continue;
    bool ok = false;
    for (const auto& a : allowed) ok = ok || a == key;
    if (!ok) {
      std::string list;
      for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
      // Escaped and cut: a NUL or newline in a hostile key must not empty
      // or forge the message.
      std::string shown =
          json(key.substr(0, 64)).dump(-1, ' ', false, json::error_handler_t::replace);
      shown = shown.substr(1, shown.size() - 2);
      fail(path.empty() ? shown : path + "." + shown,
           "unknown key (expected one of: " + list + ")");
    }
  }
}

std::string join(const std::string& path, const std::string& key) {
  return path.empty() ? key : path + "." + key;
}

int64_t get_int(const json& obj, const std::string& path, const std::string& key, int64_t min,
                int64_t max) {
  const json& v = obj.at(key);
  const std::string p = join(path, key);
  if (!v.is_number_integer()) fail(p, "expected an integer, got " + type_name(v));
  if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))
    fail(p, "out of range");
  int64_t x = v.get<int64_t>();
  if (x < min || x > max)
    fail(p, std::to_string(x) + " is outside [" + std::to_string(min) + ", " + std::to_string(max) +
                "]");
  return x;
}

double get_number(const json& obj, const std::string& path, const std::string& key, double min,
                  double max) {
  const json& v = obj.at(key);
  const std::string p = join(path, key);
  if (!v.is_number()) fail(p, "expected a number, got " + type_name(v));
  double x = v.get<double>();
  if (!(x >= min && x <= max)) {
    std::ostringstream os;
    os << x << " is outside [" << min << ", " << max << "]";
    fail(p, os.str());
  }
  return x;
}

std::string get_string(const json& obj, const std::string& path, const std::string& key) {
  const json& v = obj.at(key);
  if (!v.is_string()) fail(join(path, key), "expected a string, got " + type_name(v));
  return v.get<std::string>();
}

bool get_bool(const json& obj, const std::string& path, const std::string& key) {
  const json& v = obj.at(key);
  if (!v.is_boolean()) fail(join(path, key), "expected true or false, got " + type_name(v));
  return v.get<bool>();
}

TargetSpec parse_target(const json& v, const std::string& path) {
  if (!v.is_object()) fail(path, "expected an object such as {\"pid\": 123}, got " + type_name(v));
  try {
    return TargetSpec::from_json(v);
  } catch (const std::exception& e) {
    fail(path, e.what());
  }
}

void check_regex(const std::string& re, const std::string& path) {
  std::string error;
  auto compiled = compile_bounded_regex(re, kMaxMetricRegexLength, &error);
  if (!compiled)
    fail(path,
         re.size() > kMaxMetricRegexLength ? error : "malformed regular expression: " + error);
  if (compiled->NumberOfCapturingGroups() < 1)
    fail(path, "needs one capture group around the number");
}

void parse_objective(const json& o, RunConfig& c) {
  const std::string path = "objective";
  check_keys(o, path,
             {"metric", "command", "p95_regex", "p95_scale_to_us", "throughput_regex", "timeout_ms",
              "stream", "min_samples"});
  if (o.contains("metric")) {
    std::string m = get_string(o, path, "metric");
    auto metric = metric_from_string(m);
    if (!metric) fail(path + ".metric", "'" + m + "' is not one of service_p95, runq_p95, command");
    c.metric = *metric;
  }
  const bool command_keys = o.contains("command") || o.contains("p95_regex") ||
                            o.contains("p95_scale_to_us") || o.contains("throughput_regex") ||
                            o.contains("timeout_ms") || o.contains("stream");
  if (c.metric == Metric::CommandP95) {
    if (!o.contains("command")) fail(path + ".command", "required when metric is \"command\"");
    CommandSourceOptions cs;
    cs.command = get_string(o, path, "command");
    if (cs.command.empty()) fail(path + ".command", "must not be empty");
    if (o.contains("p95_regex")) cs.p95_regex = get_string(o, path, "p95_regex");
    check_regex(cs.p95_regex, path + ".p95_regex");
    if (o.contains("p95_scale_to_us"))
      cs.p95_scale_to_us = get_number(o, path, "p95_scale_to_us", 1e-9, 1e9);
    if (o.contains("throughput_regex")) {
      cs.throughput_regex = get_string(o, path, "throughput_regex");
      if (!cs.throughput_regex.empty())
        check_regex(cs.throughput_regex, path + ".throughput_regex");
    }
    if (o.contains("timeout_ms"))
      cs.timeout_ms = static_cast<int>(get_int(o, path, "timeout_ms", 100, 3'600'000));
    if (o.contains("stream")) cs.stream = get_bool(o, path, "stream");
    c.command = cs;
  } else if (command_keys) {
    fail(path,
         "command, p95_regex, p95_scale_to_us, throughput_regex, timeout_ms and stream "
         "only apply to metric \"command\"");
  }
  if (o.contains("min_samples"))
    c.min_samples = static_cast<uint64_t>(get_int(o, path, "min_samples", 1, 1'000'000));
}

void parse_safety(const json& s, engine::EngineOptions& e) {
  const std::string path = "safety";
  check_keys(s, path, {"margin", "windows", "throughput_floor", "p99_margin"});
  if (s.contains("margin")) e.safety_margin = get_number(s, path, "margin", 0.0, 10.0);
  if (s.contains("windows"))
    e.safety_windows = static_cast<int>(get_int(s, path, "windows", 1, 1000));
  if (s.contains("throughput_floor"))
    e.evidence.throughput_floor = get_number(s, path, "throughput_floor", 0.0, 1.0);
  if (s.contains("p99_margin"))
    e.evidence.p99_margin = get_number(s, path, "p99_margin", 0.0, 100.0);
}

void parse_search(const json& s, engine::EngineOptions& e) {
  const std::string path = "search";
  check_keys(s, path, {"slice_burst_margin", "saturated_share"});
  if (s.contains("slice_burst_margin"))
    e.search.slice_burst_margin = get_number(s, path, "slice_burst_margin", 0.0, 10.0);
  if (s.contains("saturated_share"))
    e.search.saturated_share = get_number(s, path, "saturated_share", 0.0, 1.0);
}

void parse_budgets(const json& b, engine::EngineOptions& e) {
  const std::string path = "budgets";
  check_keys(b, path,
             {"speculator_tokens", "actor_tokens", "speculator_usd", "actor_usd",
              "speculator_tokens_per_hour", "actor_tokens_per_hour", "speculator_usd_per_hour",
              "actor_usd_per_hour"});
  auto tokens = [&](const char* k) {
    return static_cast<uint64_t>(get_int(b, path, k, 0, INT64_MAX));
  };
  auto usd = [&](const char* k) { return get_number(b, path, k, 0.0, 1e9); };
  if (b.contains("speculator_tokens")) e.speculator_token_budget = tokens("speculator_tokens");
  if (b.contains("actor_tokens")) e.actor_token_budget = tokens("actor_tokens");
  for (auto [role, budget] :
       {std::pair<const char*, engine::RoleBudget*>{"speculator", &e.speculator_budget},
        {"actor", &e.actor_budget}}) {
    const std::string r = role;
    if (b.contains(r + "_usd")) budget->usd = usd((r + "_usd").c_str());
    if (b.contains(r + "_tokens_per_hour"))
      budget->tokens_per_hour = tokens((r + "_tokens_per_hour").c_str());
    if (b.contains(r + "_usd_per_hour")) budget->usd_per_hour = usd((r + "_usd_per_hour").c_str());
  }
}

void parse_engine(const json& j, engine::EngineOptions& e) {
  const std::string path = "engine";
  check_keys(
      j, path,
      {"converge_after", "max_backoff", "drift_margin", "drift_windows", "trial_cost",
       "speculator_interval", "actor_interval", "expected_actor_windows", "history_limit",
       "context_history_limit", "max_configs", "min_pooled_samples", "prior_cv", "confidence_z",
       "decision_z", "min_effect", "seed", "window_price_usd", "selective_launch"});
  auto i = [&](const char* k, int64_t lo, int64_t hi) { return get_int(j, path, k, lo, hi); };
  auto d = [&](const char* k, double lo, double hi) { return get_number(j, path, k, lo, hi); };
  if (j.contains("converge_after"))
    e.converge_after = static_cast<int>(i("converge_after", 1, 1000));
  if (j.contains("max_backoff")) e.max_backoff = static_cast<int>(i("max_backoff", 1, 1024));
  if (j.contains("drift_margin")) e.drift_margin = d("drift_margin", 0.0, 10.0);
  if (j.contains("drift_windows")) e.drift_windows = static_cast<int>(i("drift_windows", 1, 1000));
  if (j.contains("trial_cost")) e.trial_cost = d("trial_cost", 0.0, 1.0);
  if (j.contains("speculator_interval"))
    e.speculator_interval = static_cast<int>(i("speculator_interval", 1, 10000));
  if (j.contains("actor_interval"))
    e.actor_interval = static_cast<int>(i("actor_interval", 1, 10000));
  if (j.contains("expected_actor_windows"))
    e.expected_actor_windows = d("expected_actor_windows", 0.0, 10000.0);
  if (j.contains("history_limit"))
    e.history_limit = static_cast<size_t>(i("history_limit", 10, 1'000'000));
  if (j.contains("context_history_limit"))
    e.context_history_limit = static_cast<size_t>(i("context_history_limit", 1, 1'000'000));
  if (j.contains("max_configs"))
    e.max_configs = static_cast<size_t>(i("max_configs", 4, 1'000'000));
  if (j.contains("min_pooled_samples"))
    e.evidence.min_samples = static_cast<uint64_t>(i("min_pooled_samples", 1, 100'000'000));
  if (j.contains("prior_cv")) e.evidence.prior_sd = d("prior_cv", 0.0, 10.0);
  if (j.contains("confidence_z")) e.evidence.interval_z = d("confidence_z", 0.1, 10.0);
  if (j.contains("decision_z")) e.evidence.decide_z = d("decision_z", 0.1, 10.0);
  if (j.contains("min_effect")) e.evidence.min_effect = d("min_effect", 0.0, 10.0);
  if (j.contains("seed")) e.seed = static_cast<uint64_t>(i("seed", 0, INT64_MAX));
  // -1: the actor's own price of a window (see EngineOptions::window_price_usd).
  if (j.contains("window_price_usd")) e.window_price_usd = d("window_price_usd", -1.0, 1e6);
  if (j.contains("selective_launch")) e.selective_launch = get_bool(j, path, "selective_launch");
}

void parse_dbus(const json& j, DbusSettings& d) {
  const std::string path = "dbus";
  check_keys(j, path, {"enabled", "required", "bus_address"});
  if (j.contains("enabled")) d.enabled = get_bool(j, path, "enabled");
  if (j.contains("required")) d.required = get_bool(j, path, "required");
  if (j.contains("bus_address")) d.bus_address = get_string(j, path, "bus_address");
}

void parse_warm_start(const json& j, WarmStartSettings& w) {
  const std::string path = "warm_start";
  check_keys(j, path, {"enabled", "match_decades", "max_entries"});
  if (j.contains("enabled")) w.enabled = get_bool(j, path, "enabled");
  if (j.contains("match_decades")) w.match_decades = get_number(j, path, "match_decades", 0.0, 3.0);
  if (j.contains("max_entries"))
    w.max_entries = static_cast<size_t>(get_int(j, path, "max_entries", 1, 1024));
}

void parse_metrics(const json& j, observe::MetricsSettings& m) {
  const std::string path = "metrics";
  check_keys(j, path, {"listen", "allow_wildcard", "textfile", "max_connections", "timeout_ms"});
  if (j.contains("allow_wildcard")) m.allow_wildcard = get_bool(j, path, "allow_wildcard");
  if (j.contains("listen") && !j.at("listen").is_null()) {
    const std::string text = get_string(j, path, "listen");
    try {
      m.listen = observe::parse_listen_address(text, m.allow_wildcard);
    } catch (const observe::ListenAddressError& e) {
      fail(path + ".listen", e.what());
    }
  }
  if (j.contains("textfile") && !j.at("textfile").is_null()) {
    m.textfile = get_string(j, path, "textfile");
    const std::string why = observe::check_textfile_path(m.textfile);
    if (!why.empty()) fail(path + ".textfile", "'" + m.textfile + "' " + why);
  }
  if (j.contains("max_connections"))
    m.max_connections = static_cast<size_t>(get_int(j, path, "max_connections", 1, 1024));
  if (j.contains("timeout_ms"))
    m.timeout_ms = static_cast<int>(get_int(j, path, "timeout_ms", 100, 600'000));
}

// Makes the config's target policy the one TargetSpec::from_json sees while the
// config is parsed (knobs.background is parsed by the knobs module).
class ScopedTargetPolicy {
 public:
  explicit ScopedTargetPolicy(const TargetPolicy& p) : saved_(target_policy()) {
    set_target_policy(p);
  }
  ~ScopedTargetPolicy() { set_target_policy(saved_); }

 private:
  TargetPolicy saved_;
};

}  // namespace

RunConfig RunConfig::from_json(const json& j) {
  RunConfig c;
  check_keys(j, "",
             {"target", "background", "objective", "window_ms", "mode", "knobs", "speculator",
              "actor", "safety", "search", "budgets", "engine", "state_dir", "dbus", "metrics",
              "log_level", "max_target_pids", "allow_init_and_self", "warm_start"});
  if (j.contains("max_target_pids"))
    c.target_policy.max_pids = static_cast<size_t>(get_int(j, "", "max_target_pids", 1, 1'000'000));
  if (j.contains("allow_init_and_self"))
    c.target_policy.allow_init_and_self = get_bool(j, "", "allow_init_and_self");
  ScopedTargetPolicy scoped(c.target_policy);
  if (j.contains("target") && !j.at("target").is_null())
    c.target = parse_target(j.at("target"), "target");
  if (j.contains("objective")) parse_objective(j.at("objective"), c);
  if (j.contains("window_ms"))
    c.window_ms = static_cast<int>(get_int(j, "", "window_ms", 50, 600'000));
  if (j.contains("mode")) {
    std::string m = get_string(j, "", "mode");
    auto mode = engine::mode_from_string(m);
    if (!mode) fail("mode", "'" + m + "' is not one of " + join_mode_names(", "));
    c.engine.mode = *mode;
  }
  if (j.contains("state_dir")) {
    c.state_dir = get_string(j, "", "state_dir");
    if (c.state_dir.empty()) fail("state_dir", "must not be empty");
  }
  if (j.contains("knobs")) {
    const json& k = j.at("knobs");
    if (!k.is_object()) fail("knobs", "expected an object, got " + type_name(k));
    try {
      c.knobs = KnobsConfig::from_json(k);
    } catch (const KnobsConfigError& e) {
      throw ConfigError(e.what());  // already starts with the key path
    }
    if (!k.contains("state_dir")) c.knobs.state_dir = c.state_dir;
  } else {
    c.knobs.state_dir = c.state_dir;
  }
  if (j.contains("background")) {
    if (c.knobs.background) fail("background", "given twice (also as knobs.background)");
    c.knobs.background = parse_target(j.at("background"), "background");
  }
  for (const char* role : {"speculator", "actor"}) {
    if (!j.contains(role)) continue;
    const json& a = j.at(role);
    if (!a.is_object()) fail(role, "expected an object, got " + type_name(a));
    try {
      (std::string(role) == "speculator" ? c.speculator : c.actor) =
          AgentConfig::from_json(a, role);
    } catch (const AgentConfigError& e) {
      throw ConfigError(e.what());
    }
  }
  if (c.speculator.top_k > 0) c.engine.speculator_top_k = c.speculator.top_k;
  if (c.actor.top_k > 0) c.engine.actor_top_k = c.actor.top_k;
  c.engine.metric = c.metric;
  if (j.contains("safety")) parse_safety(j.at("safety"), c.engine);
  if (j.contains("search")) parse_search(j.at("search"), c.engine);
  if (j.contains("budgets")) parse_budgets(j.at("budgets"), c.engine);
  if (j.contains("engine")) parse_engine(j.at("engine"), c.engine);
  if (j.contains("dbus")) parse_dbus(j.at("dbus"), c.dbus);
  if (j.contains("metrics")) parse_metrics(j.at("metrics"), c.metrics);
  if (j.contains("warm_start")) parse_warm_start(j.at("warm_start"), c.warm_start);
  if (j.contains("log_level")) {
    c.log_level = get_string(j, "", "log_level");
    if (c.log_level != "debug" && c.log_level != "info" && c.log_level != "warning" &&
        c.log_level != "error")
      fail("log_level", "'" + c.log_level + "' is not one of debug, info, warning, error");
  }
  // Last, so a config's other mistakes are reported first.
  try {
    if (c.target) check_target_allowed(*c.target, c.target_policy);
  } catch (const TargetError& e) {
    fail("target", e.what());
  }
  try {
    if (c.knobs.background) check_target_allowed(*c.knobs.background, c.target_policy);
  } catch (const TargetError& e) {
    fail("background", e.what());
  }
  return c;
}

RunConfig RunConfig::from_text(const std::string& text) {
  json j;
  try {
    j = json::parse(text, nullptr, true, /*ignore_comments=*/false);
  } catch (const json::exception& e) {
    // parse_error, and out_of_range for numbers such as 1e400.
    throw ConfigError(std::string("not valid JSON: ") + e.what());
  }
  return from_json(j);
}

json RunConfig::read_json_file(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0)
    throw ConfigError(path + ": cannot open: " + std::strerror(errno));
  if (S_ISDIR(st.st_mode)) throw ConfigError(path + ": is a directory, not a config file");
  if (!S_ISREG(st.st_mode)) throw ConfigError(path + ": not a regular file");
  constexpr off_t kMaxConfigBytes = 1 << 20;
  if (st.st_size > kMaxConfigBytes)
    throw ConfigError(path + ": " + std::to_string(st.st_size) +
                      " bytes; a config is at most 1 MiB");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigError(path + ": cannot open: " + std::strerror(errno));
  std::string text;
  try {
    std::ostringstream buf;
    buf << in.rdbuf();
    text = buf.str();
  } catch (const std::exception& e) {
    throw ConfigError(path + ": cannot read: " + e.what());
  }
  if (in.bad()) throw ConfigError(path + ": cannot read");
  try {
    return json::parse(text, nullptr, true, /*ignore_comments=*/false);
  } catch (const json::exception& e) {
    throw ConfigError(path + ": not valid JSON: " + e.what());
  }
}

RunConfig RunConfig::from_file(const std::string& path) {
  json j = read_json_file(path);
  try {
    return from_json(j);
  } catch (const ConfigError& e) {
    throw ConfigError(path + ": " + e.what());
  }
}

}  // namespace specact
