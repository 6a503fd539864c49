#include "observe/metrics_collector.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <set>

namespace specact::observe {

namespace {

using nlohmann::json;

// Roles an event's "who" may name; anything else is "other", so a future or
// malformed value cannot create unbounded series.
std::string role_label(const json& e, const char* key = "who") {
  static const std::set<std::string> kKnown = {"speculator", "actor",  "safety",
                                               "user",       "engine", "warm_start"};
  auto it = e.find(key);
  if (it == e.end() || !it->is_string()) return "other";
  const std::string& who = it->get_ref<const std::string&>();
  return kKnown.count(who) ? who : "other";
}

uint64_t count_of(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number()) return 0;
  if (it->is_number_unsigned() || it->is_number_integer()) {
    int64_t v = it->get<int64_t>();
    return v > 0 ? static_cast<uint64_t>(v) : 0;
  }
  double d = it->get<double>();
  return d > 0 && d < 1.8e19 ? static_cast<uint64_t>(d) : 0;
}

double number_of(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_number() ? it->get<double>() : 0.0;
}

bool flag(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_boolean() && it->get<bool>();
}

std::optional<double> micros_to_seconds(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number()) return std::nullopt;
  return it->get<double>() / 1e6;
}

}  // namespace

MetricsCollector::MetricsCollector(std::string version, double start_time_seconds,
                                   std::string objective_metric) {
  snap_.version = std::move(version);
  snap_.start_time_seconds = start_time_seconds;
  snap_.objective_metric = std::move(objective_metric);
}

void MetricsCollector::Cumulative::add(const Histogram& h) {
  for (const auto& [bucket, n] : h.bins()) {
    const uint64_t lower = Histogram::bucket_lower(bucket);
    const uint64_t width = Histogram::bucket_width(bucket);
    const uint64_t upper = lower + width;  // values are below it
    // The first bound 2^k >= upper; the sampler's buckets never straddle one.
    const int k = std::bit_width(upper - 1);
    count += n;
    sum_ns += static_cast<double>(n) *
              (width == 1 ? static_cast<double>(lower)
                          : static_cast<double>(lower) + static_cast<double>(width) / 2);
    if (k > kLastBoundLog2) continue;  // only in +Inf
    below[std::max(k, kFirstBoundLog2) - kFirstBoundLog2] += n;
  }
}

LatencyHistogram MetricsCollector::Cumulative::to_histogram() const {
  LatencyHistogram h;
  uint64_t running = 0;
  for (int i = 0; i < kBounds; ++i) {
    running += below[i];
    h.buckets.emplace_back(static_cast<double>(uint64_t{1} << (kFirstBoundLog2 + i)) / 1e9,
                           running);
  }
  h.count = count;
  h.sum_seconds = sum_ns / 1e9;
  return h;
}

void MetricsCollector::on_window(const Window& w) {
  service_.add(w.service_hist);
  runq_.add(w.runq_hist);
}

void MetricsCollector::on_event(const json& e) {
  if (!e.is_object()) return;
  auto t = e.find("type");
  if (t == e.end() || !t->is_string()) return;
  const std::string& type = t->get_ref<const std::string&>();
  if (type == "window") {
    ++snap_.windows_total;
  } else if (type == "applied") {
    ++snap_.decisions[{type, role_label(e)}];
  } else if (type == "confirmed") {
    ++snap_.decisions[{type, role_label(e)}];
    if (flag(e, "hit")) ++snap_.speculation_hits;
  } else if (type == "overridden") {
    ++snap_.decisions[{type, role_label(e)}];
    ++snap_.speculation_misses;
  } else if (type == "reverted") {
    ++snap_.decisions[{type, role_label(e)}];
    if (flag(e, "miss")) ++snap_.speculation_misses;
  } else if (type == "yielded") {
    ++snap_.decisions[{type, "external"}];  // someone else changed the knob
  } else if (type == "agent_called") {
    const std::string role = role_label(e, "role");
    if (role == "speculator" || role == "actor") ++snap_.agents[role].calls;
  } else if (type == "agent_reply") {
    const std::string role = role_label(e, "role");
    if (role != "speculator" && role != "actor") return;
    AgentCounters& a = snap_.agents[role];
    auto err = e.find("error");
    if (err != e.end() && err->is_string() && !err->get_ref<const std::string&>().empty())
      ++a.errors;
    a.rejected += count_of(e, "rejected");
    auto u = e.find("usage");
    if (u != e.end() && u->is_object()) {
      a.prompt_tokens += count_of(*u, "prompt_tokens");
      a.cached_tokens += count_of(*u, "cached_tokens");
      a.completion_tokens += count_of(*u, "completion_tokens");
      const double cost = number_of(*u, "cost_usd");
      if (cost > 0 && std::isfinite(cost)) a.cost_usd += cost;
    }
  } else if (type == "apply_error") {
    ++snap_.apply_errors;
  }
}

MetricsSnapshot MetricsCollector::snapshot(const StatusSnapshot& st) const {
  MetricsSnapshot s = snap_;
  s.state = st.state;
  s.mode = st.mode;
  s.hit_ratio = st.hit_rate;
  s.warnings = st.warnings.size();
  s.service_latency = service_.to_histogram();
  s.runq_latency = runq_.to_histogram();
  // Between sessions the status keeps the last session's figures, but its
  // knobs have been restored and its windows are over: nothing to show.
  if (st.state == "stopped") return s;
  for (const auto& [k, v] : st.current) s.knobs[k].current = v;
  for (const auto& [k, v] : st.confirmed) s.knobs[k].confirmed = v;
  for (const auto& [k, v] : st.baseline) s.knobs[k].baseline = v;
  for (const auto& k : st.pinned) s.knobs[k].pinned = true;
  if (st.baseline_p95_us > 0) s.baseline_p95_seconds = st.baseline_p95_us / 1e6;

  const json& w = st.last_window;
  if (!w.is_object()) return s;
  if (auto m = w.find("metric"); m != w.end() && m->is_string())
    s.objective_metric = m->get<std::string>();
  if (auto i = w.find("window"); i != w.end() && i->is_number_integer() && i->get<int64_t>() >= 0)
    s.window_index = i->get<uint64_t>();
  // The engine's own objective, as the status shows it; null for a window
  // without samples, and then the window has no percentiles either.
  s.objective_p95_seconds = micros_to_seconds(w, "objective_us");
  if (!s.objective_p95_seconds) return s;
  const char* kind = s.objective_metric == "service_p95" ? "service"
                     : s.objective_metric == "runq_p95"  ? "runq"
                                                         : nullptr;
  if (!kind) return s;  // the command metric has a p95 only
  auto summary = w.find(kind);
  if (summary == w.end() || !summary->is_object() || count_of(*summary, "count") == 0) return s;
  s.objective_p50_seconds = micros_to_seconds(*summary, "p50_us");
  s.objective_p99_seconds = micros_to_seconds(*summary, "p99_us");
  return s;
}

}  // namespace specact::observe
