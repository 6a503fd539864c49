#include "agents/policy.h"

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>

namespace specact {
namespace {

using nlohmann::json;

// Prior for the window-to-window spread of p95 on the log scale (~8 %), worth
// two pseudo-observations: one window alone never looks more certain than that.
constexpr double kPriorWindowSd = 0.08;
constexpr double kPriorWeight = 2.0;
constexpr double kZ95 = 1.96;
// An undecided comparison is worth at most this many windows of the config in force.
constexpr uint64_t kMaxWindowsToWait = 6;
// Windows between two calls of an actor that answers "more evidence": its
// latency (the paper's 10-15 s actor, 1 s windows) plus the window it is
// asked at. Only used to guess which view a pending decision rests on.
constexpr uint64_t kAssumedActorWindows = 11;

double normal_cdf(double z) { return 0.5 * std::erfc(-z / std::sqrt(2.0)); }

int64_t knob_value(const PolicyInput& in, const KnobInfo& k, const Config& c) {
  if (auto it = c.find(k.name); it != c.end()) return it->second;
  if (auto it = in.current.find(k.name); it != in.current.end()) return it->second;
  if (k.current) return *k.current;
  if (k.default_value) return *k.default_value;
  return k.domain.min;
}

// Completes a config with every tunable knob so configs compare by value.
Config full_config(const PolicyInput& in, const Config& c) {
  Config out;
  for (const auto& k : in.knobs) out[k.name] = k.domain.clamp(knob_value(in, k, c));
  return out;
}

bool same_value(const KnobInfo& k, int64_t a, int64_t b) {
  if (a == b) return true;
  if (k.domain.scale == KnobScale::Log && a > 0 && b > 0) {
    double r = std::fabs(std::log(static_cast<double>(a) / static_cast<double>(b)));
    return r < std::log1p(k.tolerance_fraction / 2);
  }
  return false;
}

bool same_config(const PolicyInput& in, const Config& a, const Config& b) {
  for (const auto& k : in.knobs)
    if (!same_value(k, knob_value(in, k, a), knob_value(in, k, b))) return false;
  return true;
}

const ConfigEvidence* find_evidence(const PolicyInput& in, const Config& c) {
  for (const auto& e : in.evidence)
    if (same_config(in, e.config, c)) return &e;
  return nullptr;
}

std::string describe_change(const PolicyInput& in, const Config& from, const Config& to) {
  std::ostringstream os;
  bool first = true;
  for (const auto& k : in.knobs) {
    int64_t a = knob_value(in, k, from), b = knob_value(in, k, to);
    if (a == b) continue;
    os << (first ? "" : ", ") << k.name << " " << format_knob_value(k, a) << "->"
       << format_knob_value(k, b);
    first = false;
  }
  return first ? "no change" : os.str();
}

// z of "b has a lower p95 than a", on the log scale.
double z_better(const ConfigEvidence& a, const ConfigEvidence& b) {
  double se = std::sqrt(a.rel_se() * a.rel_se() + b.rel_se() * b.rel_se());
  if (se <= 0) se = 1e-9;
  return (std::log(a.p95_us) - std::log(b.p95_us)) / se;
}

struct Move {
  Config config;
  int score = 0;  // +1: the opposite direction is known to be worse (follow the gradient)
  int level = 0;  // 0 is the largest step
  size_t order = 0;
  std::string why;
};

// Pattern search around anchor: per knob and direction, the largest step whose
// neighbour has not been measured yet (a measured neighbour at a step means
// that step failed, so the step shrinks). Ranked best first.
std::vector<Move> neighbour_moves(const PolicyInput& in, const Config& anchor, double anchor_p95) {
  std::vector<Move> moves;
  size_t n = in.knobs.size();
  if (n == 0) return moves;
  size_t rotate = static_cast<size_t>(in.seed % n);
  int first_dir = (in.seed >> 8) & 1 ? 1 : -1;
  for (size_t i = 0; i < n; ++i) {
    const KnobInfo& k = in.knobs[(i + rotate) % n];
    const KnobDomain& d = k.domain;
    int64_t a = d.clamp(knob_value(in, k, anchor));
    bool worse_side[2] = {false, false};  // [dir<0, dir>0]: a measured neighbour was worse
    std::optional<Move> found[2];
    for (int di = 0; di < 2; ++di) {
      int dir = di == 0 ? first_dir : -first_dir;
      int side = dir < 0 ? 0 : 1;
      for (int level = 0; level < 12; ++level) {
        int64_t v;
        bool last = false;
        if (d.scale == KnobScale::Enum) {
          if (level > 0) break;
          v = a + dir;
        } else if (d.scale == KnobScale::Log && d.min > 0) {
          double f = std::pow(4.0, 1.0 / std::pow(2.0, level));
          if (f < 1.0 + k.tolerance_fraction) break;
          v = std::llround(static_cast<double>(a) * std::pow(f, dir));
        } else {
          double span = static_cast<double>(d.max - d.min);
          // Steps finer than the knob's tolerance are not worth a measurement.
          int64_t finest = std::max<int64_t>(1, std::llround(k.tolerance_fraction * span));
          int64_t step = std::llround(span / 4.0 / std::pow(2.0, level));
          if (level > 0 && step < finest) break;
          step = std::max(step, finest);
          last = step == finest;
          v = a + dir * step;
        }
        v = d.clamp(v);
        if (v == a) break;
        Config c = full_config(in, anchor);
        c[k.name] = v;
        const ConfigEvidence* e = find_evidence(in, c);
        if (e) {
          if (e->p95_us >= anchor_p95) worse_side[side] = true;
          if (last) break;
          continue;  // measured already: try a smaller step
        }
        if (!found[side]) {
          Move m;
          m.config = c;
          m.level = level;
          m.order = i * 2 + static_cast<size_t>(di);
          m.why = k.name + " " + format_knob_value(k, a) + "->" + format_knob_value(k, v);
          found[side] = m;
        }
        break;
      }
    }
    for (int side = 0; side < 2; ++side) {
      if (!found[side]) continue;
      Move m = *found[side];
      if (worse_side[1 - side]) {
        m.score = 1;
        m.why += " (the other direction measured worse)";
      }
      moves.push_back(m);
    }
  }
  std::stable_sort(moves.begin(), moves.end(), [](const Move& x, const Move& y) {
    if (x.score != y.score) return x.score > y.score;
    if (x.level != y.level) return x.level < y.level;
    return x.order < y.order;
  });
  return moves;
}

// The request-size prior (kSliceBurstFactor): the task.slice_us knob and the
// value just above the target's burst, rounded to two significant digits.
std::optional<std::pair<const KnobInfo*, int64_t>> prior_slice(const PolicyInput& in) {
  if (!in.burst_us || *in.burst_us <= 0) return std::nullopt;
  for (const auto& k : in.knobs) {
    if (k.name != "task.slice_us") continue;
    double raw = *in.burst_us * kSliceBurstFactor;
    double unit = std::pow(10.0, std::floor(std::log10(raw)) - 1);
    return std::make_pair(&k, k.domain.clamp(std::llround(std::round(raw / unit) * unit)));
  }
  return std::nullopt;
}

// Whether config c has the prior's slice, give or take the burst's jitter
// between windows (kPriorSpread).
bool near_prior(const PolicyInput& in, const Config& c) {
  auto p = prior_slice(in);
  if (!p) return false;
  int64_t s = knob_value(in, *p->first, c);
  return s > 0 && std::fabs(std::log(static_cast<double>(s) / static_cast<double>(p->second))) <
                      kPriorSpread;
}

// The prior as a move from anchor; nothing when a config like it (other knobs
// as in anchor) is in force or measured already.
std::optional<Move> slice_prior(const PolicyInput& in, const Config& anchor) {
  auto p = prior_slice(in);
  if (!p) return std::nullopt;
  const KnobInfo& k = *p->first;
  const int64_t v = p->second;
  Config c = full_config(in, anchor);
  c[k.name] = v;
  auto like_c = [&](const Config& other) {
    Config o = full_config(in, other);
    o[k.name] = v;
    return same_config(in, o, c) && near_prior(in, other);
  };
  if (like_c(anchor)) return std::nullopt;
  for (const auto& e : in.evidence)
    if (like_c(e.config)) return std::nullopt;
  const int64_t a = k.domain.clamp(knob_value(in, k, anchor));
  Move m;
  m.config = c;
  m.score = 2;
  m.why = k.name + " " + format_knob_value(k, a) + "->" + format_knob_value(k, v) +
          " (just above the target's " + std::to_string(std::llround(*in.burst_us)) +
          " us burst: it preempts on wakeup and finishes within one slice)";
  return m;
}

// Whether a config has served a window at the floor no setting goes below (a
// request is not served faster than its own CPU time; service metric).
// Exploring past it only costs latency.
bool at_floor(const PolicyInput& in, const ConfigEvidence& e) {
  return in.metric == Metric::ServiceP95 && in.burst_us && e.windows >= 1 &&
         e.window_best_us <= *in.burst_us * kFloorMargin;
}

// Prior first, then the pattern-search steps.
std::vector<Move> next_moves(const PolicyInput& in, const Config& anchor, double anchor_p95) {
  std::vector<Move> moves;
  if (auto p = slice_prior(in, anchor)) moves.push_back(*p);
  for (auto& m : neighbour_moves(in, anchor, anchor_p95))
    if (moves.empty() || !same_config(in, m.config, moves.front().config))
      moves.push_back(std::move(m));
  return moves;
}

json knob_to_state(const KnobInfo& k) {
  json j = {{"name", k.name},
            {"unit", k.unit},
            {"scale", to_string(k.domain.scale)},
            {"min", k.domain.min},
            {"max", k.domain.max},
            {"tolerance", k.tolerance_fraction}};  // descriptions are in the prompt's text
  if (!k.domain.enum_values.empty()) j["values"] = k.domain.enum_values;
  if (k.current) j["current"] = *k.current;
  if (k.default_value) j["default"] = *k.default_value;
  return j;
}

KnobScale scale_from_string(const std::string& s) {
  if (s == "linear") return KnobScale::Linear;
  if (s == "log") return KnobScale::Log;
  if (s == "enum") return KnobScale::Enum;
  throw std::invalid_argument("state: unknown knob scale '" + s + "'");
}

Config config_from_state(const json& j) {
  if (!j.is_object()) throw std::invalid_argument("state: config is not an object");
  Config c;
  for (const auto& [k, v] : j.items()) {
    if (!v.is_number_integer()) throw std::invalid_argument("state: config value not integer");
    c[k] = v.get<int64_t>();
  }
  return c;
}

json opt_json(const std::optional<double>& v) { return v ? json(*v) : json(nullptr); }
std::optional<double> opt_double(const json& j, const char* key) {
  if (!j.contains(key) || j.at(key).is_null()) return std::nullopt;
  return j.at(key).get<double>();
}

json evidence_to_json(const std::vector<ConfigEvidence>& all) {
  json out = json::array();
  for (const auto& e : all) {
    out.push_back({{"config", config_to_json(e.config)},
                   {"windows", e.windows},
                   {"samples", e.samples},
                   {"p95_us", e.p95_us},
                   {"ci95_us", {e.ci_low_us, e.ci_high_us}},
                   {"best_window_p95_us", e.window_best_us},
                   {"throughput", opt_json(e.throughput)},
                   {"last_window", e.last_window}});
  }
  return out;
}

std::vector<ConfigEvidence> evidence_from_json(const json& all) {
  if (!all.is_array()) throw std::invalid_argument("state: evidence is not an array");
  std::vector<ConfigEvidence> out;
  for (const auto& ej : all) {
    ConfigEvidence e;
    e.config = config_from_state(ej.at("config"));
    e.windows = ej.at("windows").get<uint64_t>();
    e.samples = ej.at("samples").get<uint64_t>();
    e.p95_us = ej.at("p95_us").get<double>();
    const json& ci = ej.at("ci95_us");
    if (!ci.is_array() || ci.size() != 2) throw std::invalid_argument("state: bad ci95_us");
    e.ci_low_us = ci[0].get<double>();
    e.ci_high_us = ci[1].get<double>();
    e.window_best_us = ej.value("best_window_p95_us", e.p95_us);
    e.throughput = opt_double(ej, "throughput");
    e.last_window = ej.at("last_window").get<uint64_t>();
    out.push_back(std::move(e));
  }
  return out;
}

bool usable(const WindowRecord& w, Metric metric) {
  return !w.straddled && !w.window.low_confidence && objective_us(w.window, metric);
}

}  // namespace

// Every config's usable windows among the first `end` of the history, pooled.
static std::vector<ConfigEvidence> pool_by_config(const AgentContext& ctx, size_t end) {
  std::map<Config, std::vector<const WindowRecord*>> by_config;
  for (size_t i = 0; i < end && i < ctx.history.size(); ++i)
    if (usable(ctx.history[i], ctx.metric))
      by_config[ctx.history[i].config].push_back(&ctx.history[i]);
  std::vector<ConfigEvidence> out;
  for (const auto& [config, ws] : by_config) {
    ConfigEvidence e = pool_evidence(ws, ctx.metric);
    if (e.windows) out.push_back(std::move(e));
  }
  return out;
}

// The engine asks the actor at the end of the first window after its last
// decision whose config in force has usable evidence: the history up to there
// is what the pending decision rests on.
static uint64_t actor_call_prefix(const AgentContext& ctx, size_t since) {
  std::set<Config> measured;
  for (size_t i = 0; i < ctx.history.size(); ++i) {
    const WindowRecord& w = ctx.history[i];
    if (usable(w, ctx.metric)) measured.insert(w.config);
    if (i >= since && measured.count(w.config)) return i + 1;
  }
  return ctx.history.size();
}

// Whether the builtin actor, asked at the end of history window n-1, would
// ask for more evidence.
static bool actor_waits(const AgentContext& ctx, uint64_t n) {
  AgentContext asked = ctx;
  asked.role = AgentRole::Actor;
  asked.history.resize(n);
  asked.current = asked.history.back().config;
  return BuiltinActorPolicy{}.propose(asked).wants_more_evidence;
}

double ConfigEvidence::rel_se() const {
  if (ci_low_us <= 0 || ci_high_us <= 0) return 1.0;
  return std::log(ci_high_us / ci_low_us) / (2 * kZ95);
}

ConfigEvidence pool_evidence(const std::vector<const WindowRecord*>& windows, Metric metric) {
  ConfigEvidence e;
  Histogram pooled;
  std::vector<double> logs;
  double tput_sum = 0;
  uint64_t tput_n = 0;
  double mean_obj = 0;
  for (const WindowRecord* w : windows) {
    auto obj = objective_us(w->window, metric);
    if (!obj || *obj <= 0) continue;
    if (e.windows == 0) e.config = w->config;
    e.windows++;
    e.last_window = std::max(e.last_window, w->window.index);
    logs.push_back(std::log(*obj));
    mean_obj += *obj;
    if (metric == Metric::ServiceP95) pooled.merge(w->window.service_hist);
    if (metric == Metric::RunqP95) pooled.merge(w->window.runq_hist);
    if (auto t = throughput_of(w->window, metric)) {
      tput_sum += *t;
      tput_n++;
    }
    e.samples += metric == Metric::ServiceP95 ? w->window.service.count
                 : metric == Metric::RunqP95  ? w->window.runq.count
                                              : 1;
  }
  if (e.windows == 0) return e;
  double h_os = 0;
  if (pooled.count() > 0) {
    double n = static_cast<double>(pooled.count());
    e.p95_us = pooled.percentile_ns(0.95) / 1e3;
    // Binomial order-statistic interval of the 95th percentile.
    double sd = std::sqrt(n * 0.95 * 0.05);
    double lo = pooled.percentile_ns(std::max(0.0, (n * 0.95 - kZ95 * sd) / n)) / 1e3;
    double hi = pooled.percentile_ns(std::min(1.0, (n * 0.95 + kZ95 * sd + 1) / n)) / 1e3;
    if (e.p95_us > 0 && lo > 0 && hi > 0)
      h_os = std::max(std::log(hi / e.p95_us), std::log(e.p95_us / lo));
  }
  if (e.p95_us <= 0) e.p95_us = mean_obj / static_cast<double>(e.windows);
  e.window_best_us = std::exp(*std::min_element(logs.begin(), logs.end()));
  // Windows of one config also differ from each other (drift, other load): the
  // spread of their p95s, shrunk towards a prior, bounds how sure pooling can be.
  double m = static_cast<double>(logs.size());
  double mean = 0;
  for (double x : logs) mean += x / m;
  double ss = 0;
  for (double x : logs) ss += (x - mean) * (x - mean);
  double var = (kPriorWeight * kPriorWindowSd * kPriorWindowSd + ss) / (kPriorWeight + m - 1);
  double h_w = kZ95 * std::sqrt(var / m);
  double h = std::sqrt(h_os * h_os + h_w * h_w);
  e.ci_low_us = e.p95_us * std::exp(-h);
  e.ci_high_us = e.p95_us * std::exp(h);
  if (tput_n) e.throughput = tput_sum / static_cast<double>(tput_n);
  return e;
}

// Figures to 0.1 us (or unit): finer digits are noise and cost prompt tokens.
// Done here, not when printing, so a policy rebuilt from the prompt's state
// sees exactly the numbers the builtin one saw.
static void round_for_prompt(PolicyInput& in) {
  auto r = [](double& v) { v = std::round(v * 10) / 10; };
  auto ro = [&](std::optional<double>& v) {
    if (v) r(*v);
  };
  auto evidence = [&](std::vector<ConfigEvidence>& all) {
    for (auto& e : all) {
      r(e.p95_us);
      r(e.ci_low_us);
      r(e.ci_high_us);
      r(e.window_best_us);
      ro(e.throughput);
    }
  };
  evidence(in.evidence);
  if (in.actor_view) evidence(in.actor_view->evidence);
  for (auto& w : in.recent) {
    ro(w.objective_us);
    r(w.p50_us);
    r(w.p99_us);
    ro(w.throughput);
  }
  ro(in.burst_us);
}

// On-CPU time per voluntary sleep over the latest clean windows.
static std::optional<double> burst_of(const std::vector<WindowRecord>& history) {
  constexpr size_t kBurstWindows = 10;
  double oncpu_ms = 0, seconds = 0;
  uint64_t sleeps = 0, used = 0;
  for (auto it = history.rbegin(); it != history.rend() && used < kBurstWindows; ++it) {
    if (it->straddled) continue;
    oncpu_ms += it->window.oncpu_ms;
    sleeps += it->window.nvcsw;
    seconds += it->window.duration_ms() / 1e3;
    ++used;
  }
  if (sleeps == 0 || seconds <= 0 || static_cast<double>(sleeps) / seconds < kMinSleepsPerSecond)
    return std::nullopt;
  return oncpu_ms * 1e3 / static_cast<double>(sleeps);
}

PolicyInput digest(const AgentContext& ctx) {
  PolicyInput in;
  in.role = ctx.role;
  in.metric = ctx.metric;
  in.knobs = ctx.knobs;
  in.current = ctx.current;
  in.confirmed = ctx.confirmed;
  in.best = ctx.best;
  in.baseline = ctx.baseline;
  in.top_k = std::max(1, ctx.top_k);
  in.seed = ctx.seed;
  in.call_index = ctx.call_index;
  in.windows_total = ctx.history.size();
  size_t since = std::min(ctx.since_decision, ctx.history.size());
  in.windows_since_decision = ctx.history.size() - since;

  in.evidence = pool_by_config(ctx, ctx.history.size());
  if (ctx.role == AgentRole::Speculator) {
    // Right after a decision the actor is asked with its decision in force; a
    // call point under another config means since_decision does not describe
    // this history, and no view beats a wrong one.
    uint64_t n = actor_call_prefix(ctx, since);
    if (n > 0 && ctx.history[n - 1].config == ctx.confirmed) {
      // An actor that asks for more evidence is asked again when it answers:
      // the pending decision then rests on a later view.
      while (n + kAssumedActorWindows <= ctx.history.size() && actor_waits(ctx, n))
        n += kAssumedActorWindows;
      ActorView v;
      v.windows = n;
      v.current = ctx.history[n - 1].config;
      v.evidence = pool_by_config(ctx, n);
      in.actor_view = std::move(v);
    }
  }
  size_t first =
      ctx.role == AgentRole::Speculator
          ? std::max(since, ctx.history.size() > kSpeculatorRecentWindows
                                ? ctx.history.size() - kSpeculatorRecentWindows
                                : size_t{0})
          : (ctx.history.size() > kActorRecentWindows ? ctx.history.size() - kActorRecentWindows
                                                      : size_t{0});
  in.burst_us = burst_of(ctx.history);
  for (size_t i = first; i < ctx.history.size(); ++i) {
    const auto& r = ctx.history[i];
    WindowSummary s;
    s.index = r.window.index;
    s.config = r.config;
    s.objective_us = objective_us(r.window, ctx.metric);
    const LatencySummary& ls = ctx.metric == Metric::RunqP95 ? r.window.runq : r.window.service;
    s.p50_us = ls.p50_us;
    s.p99_us = ls.p99_us;
    s.samples = ls.count;
    s.throughput = throughput_of(r.window, ctx.metric);
    s.straddled = r.straddled;
    s.low_confidence = r.window.low_confidence;
    in.recent.push_back(std::move(s));
  }
  round_for_prompt(in);
  return in;
}

json state_to_json(const PolicyInput& in) {
  json knobs = json::array();
  for (const auto& k : in.knobs) knobs.push_back(knob_to_state(k));
  json recent = json::array();
  for (const auto& w : in.recent) {
    json j = {{"window", w.index},
              {"config", config_to_json(w.config)},
              {"p95_us", opt_json(w.objective_us)},
              {"p50_us", w.p50_us},
              {"p99_us", w.p99_us},
              {"samples", w.samples},
              {"throughput", opt_json(w.throughput)},
              {"straddled", w.straddled},
              {"low_confidence", w.low_confidence}};
    recent.push_back(std::move(j));
  }
  json evidence = evidence_to_json(in.evidence);
  json j = {{"role", to_string(in.role)},
            {"metric", to_string(in.metric)},
            {"top_k", in.top_k},
            {"seed", in.seed},
            {"call_index", in.call_index},
            {"windows_total", in.windows_total},
            {"windows_since_decision", in.windows_since_decision},
            {"knobs", knobs},
            {"current", config_to_json(in.current)},
            {"confirmed", config_to_json(in.confirmed)},
            {"best", config_to_json(in.best)},
            {"baseline", config_to_json(in.baseline)},
            {"recent", recent},
            {"evidence", evidence},
            {"burst_us", opt_json(in.burst_us)}};
  if (in.actor_view)
    j["actor_view"] = {{"windows", in.actor_view->windows},
                       {"current", config_to_json(in.actor_view->current)},
                       {"evidence", evidence_to_json(in.actor_view->evidence)}};
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
    for (const auto& kj : j.at("knobs")) {
      KnobInfo k;
      k.name = kj.at("name").get<std::string>();
      k.family = kj.value("family", "");
      k.unit = kj.value("unit", "");
      k.description = kj.value("description", "");
      k.domain.scale = scale_from_string(kj.at("scale").get<std::string>());
      k.domain.min = kj.at("min").get<int64_t>();
      k.domain.max = kj.at("max").get<int64_t>();
      if (kj.contains("values"))
        k.domain.enum_values = kj.at("values").get<std::vector<std::string>>();
      k.tolerance_fraction = kj.value("tolerance", 0.10);
      if (kj.contains("current")) k.current = kj.at("current").get<int64_t>();
      if (kj.contains("default")) k.default_value = kj.at("default").get<int64_t>();
      k.available = true;
      in.knobs.push_back(std::move(k));
    }
    in.current = config_from_state(j.at("current"));
    in.confirmed = config_from_state(j.at("confirmed"));
    in.best = config_from_state(j.at("best"));
    in.baseline = config_from_state(j.at("baseline"));
    for (const auto& wj : j.at("recent")) {
      WindowSummary w;
      w.index = wj.at("window").get<uint64_t>();
      w.config = config_from_state(wj.at("config"));
      w.objective_us = opt_double(wj, "p95_us");
      w.p50_us = wj.at("p50_us").get<double>();
      w.p99_us = wj.at("p99_us").get<double>();
      w.samples = wj.at("samples").get<uint64_t>();
      w.throughput = opt_double(wj, "throughput");
      w.straddled = wj.at("straddled").get<bool>();
      w.low_confidence = wj.at("low_confidence").get<bool>();
      in.recent.push_back(std::move(w));
    }
    in.evidence = evidence_from_json(j.at("evidence"));
    in.burst_us = opt_double(j, "burst_us");
    if (j.contains("actor_view") && !j.at("actor_view").is_null()) {
      const json& vj = j.at("actor_view");
      ActorView v;
      v.windows = vj.at("windows").get<uint64_t>();
      v.current = config_from_state(vj.at("current"));
      v.evidence = evidence_from_json(vj.at("evidence"));
      in.actor_view = std::move(v);
    }
    return in;
  } catch (const json::exception& e) {
    throw std::invalid_argument(std::string("state: ") + e.what());
  }
}

// The actor's rule replayed on what it sees. When its view would not decide
// yet (it asks for more evidence and is asked again later), the whole evidence
// is the best guess of the view it will decide on.
static std::optional<Candidate> predict_actor(const PolicyInput& in) {
  auto replay = [&](const std::vector<ConfigEvidence>& evidence,
                    const Config& current) -> std::optional<Candidate> {
    PolicyInput a = in;
    a.role = AgentRole::Actor;
    a.top_k = 1;
    a.actor_view.reset();
    a.evidence = evidence;
    a.current = current;
    AgentReply r = BuiltinActorPolicy{}.propose(a);
    if (r.candidates.empty()) return std::nullopt;
    Candidate c = std::move(r.candidates.front());
    c.confidence = std::clamp(c.confidence, 0.5, 0.95);
    c.rationale = "the actor's likely decision: " + c.rationale;
    return c;
  };
  if (in.actor_view) {
    if (auto c = replay(in.actor_view->evidence, in.actor_view->current)) return c;
  }
  return replay(in.evidence, in.confirmed);
}

AgentReply BuiltinSpeculatorPolicy::propose(const PolicyInput& in) const {
  AgentReply reply;
  auto full = [&] { return reply.candidates.size() >= static_cast<size_t>(in.top_k); };
  auto listed = [&](const Config& c) {
    for (const auto& x : reply.candidates)
      if (same_config(in, x.config, c)) return true;
    return false;
  };
  // Anchor: the best-measured config among the latest results (and the
  // confirmed one); the fast step is taken from there.
  const ConfigEvidence* anchor = find_evidence(in, in.confirmed);
  for (const auto& w : in.recent) {
    const ConfigEvidence* e = find_evidence(in, w.config);
    if (e && (!anchor || e->p95_us < anchor->p95_us)) anchor = e;
  }
  Config anchor_config = full_config(in, anchor ? anchor->config : in.current);
  double anchor_p95 = anchor ? anchor->p95_us : INFINITY;
  // At the floor there is nothing left to explore (and every trial costs
  // latency); the prior gets a fair trial of a few windows before a blind
  // search around it (one window says little: the kernel flips some).
  const bool settled = anchor && (at_floor(in, *anchor) || (near_prior(in, anchor->config) &&
                                                            anchor->windows < kPriorTrialWindows));
  auto moves = settled ? std::vector<Move>{} : next_moves(in, anchor_config, anchor_p95);

  // The actor's pending decision first, so that it is in force when the actor
  // answers (a hit); exploration fills the remaining slots.
  std::optional<Candidate> predicted = predict_actor(in);
  // Already in force, the prediction means "stay": with one slot, the step is
  // more useful (staying needs no proposal); with more, it keeps its slot (the
  // engine skips a proposal equal to the config in force and moves to the
  // step after it, without trialling yet another one).
  if (predicted && (in.top_k > 1 || !same_config(in, predicted->config, in.current)))
    reply.candidates.push_back(*predicted);
  for (const auto& m : moves) {
    if (full()) break;
    if (listed(m.config)) continue;
    Candidate c;
    c.config = m.config;
    c.confidence = std::clamp(0.55 + 0.15 * m.score - 0.05 * m.level, 0.2, 0.9);
    std::ostringstream os;
    os << "step from best recent config";
    if (anchor) os << " (p95 " << std::llround(anchor->p95_us) << " us)";
    os << ": " << m.why;
    c.rationale = os.str();
    reply.candidates.push_back(std::move(c));
  }
  if (reply.candidates.empty()) {
    Candidate c;
    c.config = predicted ? predicted->config : anchor_config;
    c.confidence = 0.7;
    c.rationale = "every neighbour at the finest step is measured: stay at the best config";
    reply.candidates.push_back(std::move(c));
  }
  return reply;
}

AgentReply BuiltinActorPolicy::propose(const PolicyInput& in) const {
  AgentReply reply;
  if (in.evidence.empty()) {
    reply.wants_more_evidence = true;
    return reply;
  }
  // Champion: lowest p95 penalised by one standard error, so a single lucky
  // window does not beat a well-measured config by a hair.
  const ConfigEvidence* champion = nullptr;
  double champion_score = INFINITY;
  for (const auto& e : in.evidence) {
    double score = e.p95_us * std::exp(e.rel_se());
    if (score < champion_score) {
      champion = &e;
      champion_score = score;
    }
  }
  const ConfigEvidence* inc = find_evidence(in, in.confirmed);
  if (!inc) inc = find_evidence(in, in.current);
  if (!inc) inc = champion;
  const ConfigEvidence* in_force = find_evidence(in, in.current);
  auto can_settle = [&](const ConfigEvidence* e) {
    return e && e == in_force && e->windows < kMaxWindowsToWait;
  };
  auto add_explorations = [&](const ConfigEvidence& from, double confidence) {
    if (at_floor(in, from)) return;
    for (const auto& m : next_moves(in, full_config(in, from.config), from.p95_us)) {
      if (reply.candidates.size() >= static_cast<size_t>(in.top_k)) break;
      Candidate c;
      c.config = m.config;
      c.confidence = confidence;
      c.rationale = "trial next to the best config (no measured config beats it): " + m.why;
      reply.candidates.push_back(std::move(c));
    }
  };
  auto add = [&](const ConfigEvidence& e, double confidence, const std::string& why) {
    Candidate c;
    c.config = full_config(in, e.config);
    c.confidence = confidence;
    c.rationale = why;
    reply.candidates.push_back(std::move(c));
  };
  auto fmt = [](const ConfigEvidence& e) {
    std::ostringstream os;
    os << "pooled p95 " << std::llround(e.p95_us) << " us [" << std::llround(e.ci_low_us) << ", "
       << std::llround(e.ci_high_us) << "] over " << e.windows << " windows";
    return os.str();
  };

  if (champion != inc) {
    double z = z_better(*inc, *champion);
    if (z >= kDecisionZ) {
      std::ostringstream os;
      os << fmt(*champion) << " beats " << std::llround(inc->p95_us) << " us (z=" << std::fixed
         << std::setprecision(1) << z
         << "): " << describe_change(in, inc->config, champion->config);
      add(*champion, std::min(0.99, normal_cdf(z)), os.str());
      add_explorations(*champion, 0.3);
      return reply;
    }
    // Within the noise: measure the config in force longer if that can settle
    // it; past the cap they count as equivalent and the champion is kept.
    if (can_settle(inc) || can_settle(champion)) {
      reply.wants_more_evidence = true;
      return reply;
    }
    add(*champion, 0.5,
        fmt(*champion) + " is within the noise of " + std::to_string(std::llround(inc->p95_us)) +
            " us; keeping the better-measured config: " +
            describe_change(in, inc->config, champion->config));
    add_explorations(*champion, 0.3);
    return reply;
  }
  if (champion->windows < 2 && champion == in_force) {
    reply.wants_more_evidence = true;
    return reply;
  }
  add_explorations(*champion, 0.35);
  if (reply.candidates.empty())
    add(*champion, 0.9,
        "converged: " + fmt(*champion) +
            (at_floor(in, *champion)
                 ? ", a window already at the floor of " +
                       std::to_string(std::llround(*in.burst_us * kFloorMargin)) +
                       " us (the target's own " + std::to_string(std::llround(*in.burst_us)) +
                       " us burst: no setting serves it faster)"
                 : std::string(" and every neighbour down to the finest step is measured worse")));
  return reply;
}

AgentReply builtin_propose(const PolicyInput& in) {
  if (in.role == AgentRole::Actor) return BuiltinActorPolicy{}.propose(in);
  return BuiltinSpeculatorPolicy{}.propose(in);
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
