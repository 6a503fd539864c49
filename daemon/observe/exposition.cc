#include "observe/exposition.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <set>
#include <vector>

namespace specact::observe {

namespace {

using Labels = std::vector<std::pair<std::string, std::string>>;

// The engine's states and modes, all rendered (0 or 1) so that a query such as
// specact_state{state="converged"} == 1 has a series before the first change.
const std::vector<std::string> kStates = {"running",    "paused",  "converged",
                                          "monitoring", "waiting", "stopped"};
const std::vector<std::string> kModes = {"speculative", "actor-only", "speculator-only",
                                         "recommend", "monitor"};
// Decision kinds with the roles that can make them: these series exist from
// the start (at 0), so rate() and increase() see the first decision.
const std::vector<std::pair<std::string, std::string>> kDecisionSeries = {
    {"applied", "speculator"}, {"applied", "actor"},      {"applied", "safety"},
    {"applied", "user"},       {"applied", "warm_start"}, {"confirmed", "actor"},
    {"confirmed", "engine"},   {"overridden", "actor"},   {"reverted", "safety"},
    {"reverted", "user"},      {"yielded", "external"}};
const std::vector<std::string> kRoles = {"speculator", "actor"};

class Writer {
 public:
  void family(const char* name, const char* type, const char* help) {
    name_ = name;
    out_ += "# HELP ";
    out_ += name;
    out_ += ' ';
    out_ += help;  // fixed text: nothing to escape
    out_ += "\n# TYPE ";
    out_ += name;
    out_ += ' ';
    out_ += type;
    out_ += '\n';
  }
  void sample(double v, const Labels& labels = {}, const char* suffix = "") {
    out_ += name_;
    out_ += suffix;
    if (!labels.empty()) {
      out_ += '{';
      bool first = true;
      for (const auto& [k, val] : labels) {
        if (!first) out_ += ',';
        first = false;
        out_ += k;
        out_ += "=\"";
        out_ += escape_label_value(val);
        out_ += '"';
      }
      out_ += '}';
    }
    out_ += ' ';
    out_ += format_sample_value(v);
    out_ += '\n';
  }
  // A family of one unlabelled sample.
  void single(const char* name, const char* type, const char* help, double v) {
    family(name, type, help);
    sample(v);
  }
  void sample(uint64_t v, const Labels& labels = {}, const char* suffix = "") {
    sample(static_cast<double>(v), labels, suffix);
  }
  void optional_sample(const std::optional<double>& v, const Labels& labels = {}) {
    if (v) sample(*v, labels);
  }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
  std::string name_;
};

void histogram(Writer& w, const char* name, const char* help, const LatencyHistogram& h) {
  w.family(name, "histogram", help);
  for (const auto& [le, n] : h.buckets) w.sample(n, {{"le", format_sample_value(le)}}, "_bucket");
  w.sample(h.count, {{"le", "+Inf"}}, "_bucket");
  w.sample(h.sum_seconds, {}, "_sum");
  w.sample(h.count, {}, "_count");
}

// kStates / kModes plus the current value when it is not among them.
std::vector<std::string> with(const std::vector<std::string>& known, const std::string& v) {
  std::vector<std::string> all = known;
  if (!v.empty() && std::find(all.begin(), all.end(), v) == all.end()) all.push_back(v);
  return all;
}

}  // namespace

std::string escape_label_value(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

std::string format_sample_value(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

std::string render_exposition(const MetricsSnapshot& s) {
  Writer w;
  w.family("specact_build_info", "gauge", "specactd's version (always 1).");
  w.sample(1.0, {{"version", s.version}});
  w.single("specact_start_time_seconds", "gauge", "Unix time specactd started.",
           s.start_time_seconds);
  w.family("specact_state", "gauge",
           "1 for the tuning state specactd is in (running, paused, converged, monitoring, "
           "waiting for the target's processes, stopped), 0 for the others.");
  for (const auto& st : with(kStates, s.state))
    w.sample(st == s.state ? 1.0 : 0.0, {{"state", st}});
  w.family("specact_mode", "gauge", "1 for the decision mode in force, 0 for the others.");
  for (const auto& m : with(kModes, s.mode)) w.sample(m == s.mode ? 1.0 : 0.0, {{"mode", m}});

  w.family("specact_window_index", "gauge",
           "Index of the latest measurement window within the current tuning session.");
  if (s.window_index) w.sample(*s.window_index);
  const Labels metric = {{"metric", s.objective_metric}};
  w.family("specact_objective_p50_seconds", "gauge",
           "Median of the objective latency in the latest window (not for the command metric).");
  w.optional_sample(s.objective_p50_seconds, metric);
  w.family("specact_objective_p95_seconds", "gauge",
           "The objective (p95 latency) of the latest window, as the engine judged it; absent "
           "when the window had no samples.");
  w.optional_sample(s.objective_p95_seconds, metric);
  w.family("specact_objective_p99_seconds", "gauge",
           "p99 of the objective latency in the latest window (not for the command metric).");
  w.optional_sample(s.objective_p99_seconds, metric);
  w.family("specact_baseline_p95_seconds", "gauge",
           "Pooled p95 of the untuned (baseline) configuration, once measured confidently.");
  w.optional_sample(s.baseline_p95_seconds, metric);

  w.family("specact_knob_value", "gauge",
           "Knob value in the knob's own unit (enum knobs: index into their values), in the "
           "config in force (current), the last decided one (confirmed) and before specactd "
           "(baseline).");
  for (const auto& [name, k] : s.knobs) {
    if (k.current)
      w.sample(static_cast<double>(*k.current), {{"knob", name}, {"config", "current"}});
    if (k.confirmed)
      w.sample(static_cast<double>(*k.confirmed), {{"knob", name}, {"config", "confirmed"}});
    if (k.baseline)
      w.sample(static_cast<double>(*k.baseline), {{"knob", name}, {"config", "baseline"}});
  }
  w.family("specact_knob_pinned", "gauge", "1 for a knob pinned by the user, else 0.");
  for (const auto& [name, k] : s.knobs) w.sample(k.pinned ? 1.0 : 0.0, {{"knob", name}});

  w.single("specact_windows_total", "counter", "Measurement windows closed since specactd started.",
           static_cast<double>(s.windows_total));
  w.family("specact_decisions_total", "counter",
           "Decisions since specactd started, by kind (applied, confirmed, overridden, reverted, "
           "yielded) and role (speculator, actor, safety, user, engine, warm_start, external).");
  std::set<std::pair<std::string, std::string>> series(kDecisionSeries.begin(),
                                                       kDecisionSeries.end());
  for (const auto& [key, _] : s.decisions) series.insert(key);
  for (const auto& key : series) {
    auto it = s.decisions.find(key);
    w.sample(it == s.decisions.end() ? uint64_t{0} : it->second,
             {{"kind", key.first}, {"role", key.second}});
  }
  w.family("specact_speculations_total", "counter",
           "Provisional configs the actor confirmed (hit) or overrode, or the safety envelope "
           "reverted (miss).");
  w.sample(s.speculation_hits, {{"outcome", "hit"}});
  w.sample(s.speculation_misses, {{"outcome", "miss"}});
  w.single("specact_speculation_hit_ratio", "gauge",
           "Hits / (hits + misses) in the current tuning session.", s.hit_ratio);

  auto agent = [&](const std::string& role) {
    auto it = s.agents.find(role);
    return it == s.agents.end() ? AgentCounters{} : it->second;
  };
  w.family("specact_agent_calls_total", "counter", "Agent requests made, by role.");
  for (const auto& r : kRoles) w.sample(agent(r).calls, {{"role", r}});
  w.family("specact_agent_errors_total", "counter",
           "Agent replies that failed (transport, timeout, validation), by role.");
  for (const auto& r : kRoles) w.sample(agent(r).errors, {{"role", r}});
  w.family("specact_agent_rejected_candidates_total", "counter",
           "Candidates dropped by reply validation, by role.");
  for (const auto& r : kRoles) w.sample(agent(r).rejected, {{"role", r}});
  w.family("specact_agent_tokens_total", "counter",
           "Tokens billed by agent replies, by role and type.");
  for (const auto& r : kRoles) {
    w.sample(agent(r).prompt_tokens, {{"role", r}, {"type", "prompt"}});
    w.sample(agent(r).completion_tokens, {{"role", r}, {"type", "completion"}});
  }
  // A subset of the prompt tokens above, so a family of its own: summing the
  // type label of specact_agent_tokens_total must not count them twice.
  w.family("specact_agent_cached_prompt_tokens_total", "counter",
           "Prompt tokens the provider served from its prompt cache (reported "
           "usage.prompt_tokens_details.cached_tokens), by role.");
  for (const auto& r : kRoles) w.sample(agent(r).cached_tokens, {{"role", r}});
  w.family("specact_agent_cost_usd_total", "counter",
           "Cost of agent replies in US dollars (from the configured prices), by role.");
  for (const auto& r : kRoles) w.sample(agent(r).cost_usd, {{"role", r}});

  w.single("specact_apply_errors_total", "counter",
           "Applies the knob layer did not complete (a knob write failed, was refused or is "
           "unavailable).",
           static_cast<double>(s.apply_errors));
  w.single("specact_metrics_textfile_errors_total", "counter",
           "Failed writes of the node_exporter textfile (metrics.textfile).",
           static_cast<double>(s.textfile_errors));
  w.single("specact_warnings", "gauge",
           "Problems specactd reports in its status right now (e.g. history.jsonl cannot be "
           "written).",
           static_cast<double>(s.warnings));

  histogram(w, "specact_service_latency_seconds",
            "Service latency of the target's tasks (wakeup to next voluntary block), all windows "
            "since specactd started; bucket bounds are the sampler's power-of-two edges, the "
            "sum is estimated from bucket midpoints.",
            s.service_latency);
  histogram(w, "specact_runq_latency_seconds",
            "Run-queue latency of the target's tasks (runnable to on CPU), all windows since "
            "specactd started; bucket bounds are the sampler's power-of-two edges, the sum is "
            "estimated from bucket midpoints.",
            s.runq_latency);
  return w.take();
}

}  // namespace specact::observe
