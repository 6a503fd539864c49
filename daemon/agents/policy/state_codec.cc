// The state JSON block of every prompt, both ways, and the reply payload.
// Field names are stable (daemon/agents/README.md documents them).
#include <cmath>
#include <stdexcept>

#include "agents/policy.h"

namespace specact {
namespace {

using nlohmann::json;

constexpr double kDefaultTolerance = 0.10;

json opt_json(const std::optional<double>& v) { return v ? json(*v) : json(nullptr); }
std::optional<double> opt_double(const json& j, const char* key) {
  if (!j.contains(key) || j.at(key).is_null()) return std::nullopt;
  return j.at(key).get<double>();
}

// Fields at their usual value (tolerance 0.10, effect direct, current =
// default) are left out and read back as that value (prompt tokens).
json knob_to_state(const KnobInfo& k) {
  json j = {{"name", k.name},      {"family", k.family},
            {"unit", k.unit},      {"scale", to_string(k.domain.scale)},
            {"min", k.domain.min}, {"max", k.domain.max}};  // descriptions are in the prompt's text
  if (k.tolerance_fraction != kDefaultTolerance) j["tolerance"] = k.tolerance_fraction;
  if (k.effect != KnobEffect::Direct) j["effect"] = to_string(k.effect);
  if (k.request_size) j["request_size"] = true;
  if (!k.domain.enum_values.empty()) j["values"] = k.domain.enum_values;
  if (k.default_value) j["default"] = *k.default_value;
  if (k.current && k.current != k.default_value) j["current"] = *k.current;
  if (!k.current) j["current"] = nullptr;
  return j;
}

KnobScale scale_from_string(const std::string& s) {
  if (s == "linear") return KnobScale::Linear;
  if (s == "log") return KnobScale::Log;
  if (s == "enum") return KnobScale::Enum;
  throw std::invalid_argument("state: unknown knob scale '" + s + "'");
}

KnobInfo knob_from_state(const json& kj) {
  KnobInfo k;
  k.name = kj.at("name").get<std::string>();
  k.family = kj.value("family", "");
  k.unit = kj.value("unit", "");
  k.domain.scale = scale_from_string(kj.at("scale").get<std::string>());
  k.domain.min = kj.at("min").get<int64_t>();
  k.domain.max = kj.at("max").get<int64_t>();
  if (kj.contains("values")) k.domain.enum_values = kj.at("values").get<std::vector<std::string>>();
  k.tolerance_fraction = kj.value("tolerance", kDefaultTolerance);
  auto effect = knob_effect_from_string(kj.value("effect", "direct"));
  if (!effect) throw std::invalid_argument("state: unknown knob effect");
  k.effect = *effect;
  k.request_size = kj.value("request_size", false);
  if (kj.contains("default")) k.default_value = kj.at("default").get<int64_t>();
  if (!kj.contains("current"))
    k.current = k.default_value;
  else if (!kj.at("current").is_null())
    k.current = kj.at("current").get<int64_t>();
  k.available = true;
  return k;
}

// Configs other than the baseline are written as their differences from it
// (most knobs keep their baseline value; full configs would repeat every knob
// name in every entry), and read back on top of it.
Config config_from_state(const json& j, const Config& base = {}) {
  if (!j.is_object()) throw std::invalid_argument("state: config is not an object");
  Config c = base;
  for (const auto& [k, v] : j.items()) {
    if (!v.is_number_integer()) throw std::invalid_argument("state: config value not integer");
    c[k] = v.get<int64_t>();
  }
  return c;
}

json config_delta(const Config& c, const Config& base) {
  json j = json::object();
  for (const auto& [k, v] : c)
    if (auto it = base.find(k); it == base.end() || it->second != v) j[k] = v;
  return j;
}

// The histogram's resolution is every estimate's unless the metric is
// coarser there (a command's quantisation): written only where it differs,
// as "confident" only where it is false (prompt tokens).
json estimate_to_state(const evidence::Estimate& e) {
  json j = {{"p95_us", e.p95_us},
            {"ci95_us", {e.lo_us, e.hi_us}},
            {"se_log", e.se},
            {"p99_us", opt_json(e.p99_us)},
            {"throughput", opt_json(e.throughput)},
            {"requests_per_s", opt_json(e.requests_per_s)},
            {"samples", e.samples},
            {"windows", e.windows},
            {"seconds", e.seconds}};
  if (e.resolution != evidence::kHistogramResolution) j["resolution"] = e.resolution;
  if (!e.confident) j["confident"] = false;
  // One window's spread, typical and highest p95, as [sd of log, geometric
  // mean, highest]: what the search's "measure it again" rule reads.
  // A config of one window: only the spread (its one window is its p95).
  if (e.windows >= 2)
    j["win"] = {e.window_sd, std::round(std::exp(e.window_log_mean)), e.window_worst_us};
  else if (e.windows == 1)
    j["win"] = {e.window_sd};
  return j;
}

evidence::Estimate estimate_from_state(const json& j) {
  evidence::Estimate e;
  e.p95_us = j.at("p95_us").get<double>();
  const json& ci = j.at("ci95_us");
  if (!ci.is_array() || ci.size() != 2) throw std::invalid_argument("state: bad ci95_us");
  e.lo_us = ci[0].get<double>();
  e.hi_us = ci[1].get<double>();
  e.se = j.at("se_log").get<double>();
  e.resolution = j.value("resolution", evidence::kHistogramResolution);
  e.p99_us = opt_double(j, "p99_us");
  e.throughput = opt_double(j, "throughput");
  e.requests_per_s = opt_double(j, "requests_per_s");
  e.window_best_us = j.value("best_window_p95_us", e.p95_us);
  e.window_log_mean = std::log(std::max(e.p95_us, 0.1));
  e.window_worst_us = e.p95_us;
  if (auto it = j.find("win"); it != j.end()) {
    if (!it->is_array() || (it->size() != 1 && it->size() != 3))
      throw std::invalid_argument("state: bad win");
    e.window_sd = (*it)[0].get<double>();
    if (it->size() == 3) {
      const double mean_us = (*it)[1].get<double>();
      if (!(mean_us > 0)) throw std::invalid_argument("state: bad win");
      e.window_log_mean = std::log(mean_us);
      e.window_worst_us = (*it)[2].get<double>();
    }
  }
  e.samples = j.at("samples").get<uint64_t>();
  e.windows = j.at("windows").get<int>();
  e.seconds = j.at("seconds").get<double>();
  e.confident = j.value("confident", true);
  return e;
}

json evidence_to_json(const std::vector<ConfigEvidence>& all, const Config& base) {
  json out = json::array();
  for (const auto& e : all) {
    json j = estimate_to_state(e.est);
    j["config"] = config_delta(e.config, base);
    j["last_window"] = e.last_window;
    out.push_back(std::move(j));
  }
  return out;
}

std::vector<ConfigEvidence> evidence_from_json(const json& all, const Config& base) {
  if (!all.is_array()) throw std::invalid_argument("state: evidence is not an array");
  std::vector<ConfigEvidence> out;
  for (const auto& ej : all) {
    ConfigEvidence e;
    e.config = config_from_state(ej.at("config"), base);
    e.est = estimate_from_state(ej);
    e.last_window = ej.at("last_window").get<uint64_t>();
    out.push_back(std::move(e));
  }
  return out;
}

json options_to_json(const PolicyInput& in) {
  return {{"interval_z", in.opts.interval_z},
          {"decide_z", in.opts.decide_z},
          {"min_samples", in.opts.min_samples},
          {"prior_sd", in.opts.prior_sd},
          {"min_effect", in.opts.min_effect},
          {"p99_margin", in.opts.p99_margin},
          {"throughput_floor", in.opts.throughput_floor},
          {"slice_burst_margin", in.search.slice_burst_margin},
          {"saturated_share", in.search.saturated_share}};
}

void options_from_json(const json& j, PolicyInput& in) {
  in.opts.interval_z = j.at("interval_z").get<double>();
  in.opts.decide_z = j.at("decide_z").get<double>();
  in.opts.min_samples = j.at("min_samples").get<uint64_t>();
  in.opts.prior_sd = j.at("prior_sd").get<double>();
  in.opts.min_effect = j.at("min_effect").get<double>();
  in.opts.p99_margin = j.at("p99_margin").get<double>();
  in.opts.throughput_floor = j.at("throughput_floor").get<double>();
  in.search.slice_burst_margin = j.at("slice_burst_margin").get<double>();
  in.search.saturated_share = j.at("saturated_share").get<double>();
}

}  // namespace

json state_to_json(const PolicyInput& in) {
  json knobs = json::array();
  for (const auto& k : in.knobs) knobs.push_back(knob_to_state(k));
  json recent = json::array();
  for (const auto& w : in.recent) {
    recent.push_back({{"window", w.index},
                      {"config", config_delta(w.config, in.baseline)},
                      {"p95_us", opt_json(w.objective_us)},
                      {"p50_us", w.p50_us},
                      {"p99_us", w.p99_us},
                      {"samples", w.samples},
                      {"throughput", opt_json(w.throughput)},
                      {"straddled", w.straddled},
                      {"low_confidence", w.low_confidence}});
  }
  json j = {{"role", to_string(in.role)},
            {"metric", to_string(in.metric)},
            {"top_k", in.top_k},
            {"seed", in.seed},
            {"call_index", in.call_index},
            {"windows_total", in.windows_total},
            {"windows_since_decision", in.windows_since_decision},
            {"knobs", knobs},
            {"current", config_delta(in.current, in.baseline)},
            {"confirmed", config_delta(in.confirmed, in.baseline)},
            {"best", config_delta(in.best, in.baseline)},
            {"baseline", config_to_json(in.baseline)},
            {"recent", recent},
            {"evidence", evidence_to_json(in.evidence, in.baseline)},
            {"target",
             {{"oncpu_ms_per_s", opt_json(in.oncpu_ms_per_s)},
              {"sleeps_per_s", opt_json(in.sleeps_per_s)},
              {"online_cpus", in.online_cpus}}},
            {"guard",
             {{"p99_us", opt_json(in.guard.p99_us)},
              {"throughput", opt_json(in.guard.throughput)},
              {"requests_per_s", opt_json(in.guard.requests_per_s)}}},
            {"actor_latency_windows", in.actor_latency_windows},
            {"actor_explores", in.actor_explores},
            {"measurements_only", in.measurements_only},
            {"rules", options_to_json(in)}};
  if (in.actor_view) {
    j["actor_view"] = {{"windows", in.actor_view->windows},
                       {"current", config_delta(in.actor_view->current, in.baseline)},
                       {"confirmed", config_delta(in.actor_view->confirmed, in.baseline)}};
    // A view of every window is the evidence above: not repeated.
    if (in.actor_view->windows != in.windows_total)
      j["actor_view"]["evidence"] = evidence_to_json(in.actor_view->evidence, in.baseline);
  }
  return j;
}

PolicyInput state_from_json(const json& j) {
  try {
    PolicyInput in;
    std::string role = j.at("role").get<std::string>();
    if (role == "speculator")
      in.role = AgentRole::Speculator;
    else if (role == "actor")
      in.role = AgentRole::Actor;
    else
      throw std::invalid_argument("state: unknown role '" + role + "'");
    auto metric = metric_from_string(j.at("metric").get<std::string>());
    if (!metric) throw std::invalid_argument("state: unknown metric");
    in.metric = *metric;
    in.top_k = j.at("top_k").get<int>();
    in.seed = j.at("seed").get<uint64_t>();
    in.call_index = j.at("call_index").get<uint64_t>();
    in.windows_total = j.at("windows_total").get<uint64_t>();
    in.windows_since_decision = j.at("windows_since_decision").get<uint64_t>();
    for (const auto& kj : j.at("knobs")) in.knobs.push_back(knob_from_state(kj));
    in.baseline = config_from_state(j.at("baseline"));
    in.current = config_from_state(j.at("current"), in.baseline);
    in.confirmed = config_from_state(j.at("confirmed"), in.baseline);
    in.best = config_from_state(j.at("best"), in.baseline);
    for (const auto& wj : j.at("recent")) {
      WindowSummary w;
      w.index = wj.at("window").get<uint64_t>();
      w.config = config_from_state(wj.at("config"), in.baseline);
      w.objective_us = opt_double(wj, "p95_us");
      w.p50_us = wj.at("p50_us").get<double>();
      w.p99_us = wj.at("p99_us").get<double>();
      w.samples = wj.at("samples").get<uint64_t>();
      w.throughput = opt_double(wj, "throughput");
      w.straddled = wj.at("straddled").get<bool>();
      w.low_confidence = wj.at("low_confidence").get<bool>();
      in.recent.push_back(std::move(w));
    }
    in.evidence = evidence_from_json(j.at("evidence"), in.baseline);
    const json& t = j.at("target");
    in.oncpu_ms_per_s = opt_double(t, "oncpu_ms_per_s");
    in.sleeps_per_s = opt_double(t, "sleeps_per_s");
    in.online_cpus = t.at("online_cpus").get<int>();
    const json& g = j.at("guard");
    in.guard.p99_us = opt_double(g, "p99_us");
    in.guard.throughput = opt_double(g, "throughput");
    in.guard.requests_per_s = opt_double(g, "requests_per_s");
    in.actor_latency_windows = j.at("actor_latency_windows").get<double>();
    in.actor_explores = j.at("actor_explores").get<bool>();
    in.measurements_only = j.value("measurements_only", false);
    options_from_json(j.at("rules"), in);
    if (j.contains("actor_view") && !j.at("actor_view").is_null()) {
      const json& vj = j.at("actor_view");
      ActorView v;
      v.windows = vj.at("windows").get<uint64_t>();
      v.current = config_from_state(vj.at("current"), in.baseline);
      v.confirmed = config_from_state(vj.at("confirmed"), in.baseline);
      v.evidence = vj.contains("evidence") ? evidence_from_json(vj.at("evidence"), in.baseline)
                                           : in.evidence;
      in.actor_view = std::move(v);
    }
    return in;
  } catch (const json::exception& e) {
    throw std::invalid_argument(std::string("state: ") + e.what());
  }
}

json reply_to_json(const AgentReply& r) {
  json cands = json::array();
  for (const auto& c : r.candidates)
    cands.push_back({{"config", config_to_json(c.config)},
                     {"confidence", c.confidence},
                     {"rationale", c.rationale}});
  return {{"candidates", cands}, {"wants_more_evidence", r.wants_more_evidence}};
}

}  // namespace specact
