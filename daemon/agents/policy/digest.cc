// AgentContext -> PolicyInput: every config's clean windows pooled with the
// engine's evidence model, the actor's pending view, the latest windows and
// the target's facts, rounded as they are printed in prompts.
#include <algorithm>
#include <cmath>
#include <map>

#include "agents/policy.h"

namespace specact {
namespace {

// Every config's clean windows among the first `end` of the history.
std::vector<ConfigEvidence> pool_by_config(const AgentContext& ctx, size_t end) {
  std::map<Config, std::vector<const WindowRecord*>> by_config;
  for (size_t i = 0; i < end && i < ctx.history.size(); ++i)
    if (!ctx.history[i].straddled) by_config[ctx.history[i].config].push_back(&ctx.history[i]);
  // A command metric's quantisation is a property of the metric: learnt from
  // every window, whichever config measured it.
  evidence::Quantisation quantum;
  if (ctx.metric == Metric::CommandP95)
    for (size_t i = 0; i < end && i < ctx.history.size(); ++i)
      if (auto v = objective_us(ctx.history[i].window, ctx.metric)) quantum.observe(*v);
  std::vector<evidence::Pool> pools;
  evidence::Spread spread;
  for (const auto& [config, ws] : by_config) {
    evidence::Pool pool;
    for (const WindowRecord* w : ws) pool.add(w->window, ctx.metric);
    const evidence::Spread s = pool.spread();
    spread.ss += s.ss;
    spread.df += s.df;
    pools.push_back(std::move(pool));
  }
  std::vector<ConfigEvidence> out;
  size_t i = 0;
  for (const auto& [config, ws] : by_config) {
    const evidence::Pool& pool = pools[i++];
    ConfigEvidence e;
    e.config = config;
    e.est = pool.estimate(ctx.evidence, &quantum, &spread);
    e.last_window = pool.last_window();
    if (e.est.windows > 0 && e.est.p95_us > 0) out.push_back(std::move(e));
  }
  return out;
}

// Figures to 0.1 (standard errors and resolutions to 1e-4): finer digits are
// noise and cost prompt tokens. Done here, not when printing, so a policy
// rebuilt from the prompt's state sees exactly the numbers the builtin one saw.
double r1(double v) { return std::round(v * 10) / 10; }
void r1(std::optional<double>& v) {
  if (v) *v = r1(*v);
}
double r4(double v) { return std::round(v * 1e4) / 1e4; }

void round_estimate(evidence::Estimate& e) {
  e.p95_us = r1(e.p95_us);
  e.lo_us = r1(e.lo_us);
  e.hi_us = r1(e.hi_us);
  e.se = r4(e.se);
  e.resolution = r4(e.resolution);
  e.window_best_us = r1(e.window_best_us);
  // One window's figures coarser still (they only decide whether a trial is
  // worth another window); a config of one window is its p95 there (prompt
  // tokens).
  e.window_sd = std::round(e.window_sd * 100) / 100;
  if (e.windows < 2) {
    e.window_worst_us = e.p95_us;
    e.window_log_mean = std::log(std::max(e.p95_us, 0.1));
  } else {
    e.window_worst_us = std::round(e.window_worst_us);
    e.window_log_mean = std::log(std::max(std::round(std::exp(e.window_log_mean)), 1.0));
  }
  e.seconds = r1(e.seconds);
  r1(e.p99_us);
  r1(e.throughput);
  r1(e.requests_per_s);
}

void round_for_prompt(PolicyInput& in) {
  for (auto& e : in.evidence) round_estimate(e.est);
  if (in.actor_view)
    for (auto& e : in.actor_view->evidence) round_estimate(e.est);
  for (auto& w : in.recent) {
    r1(w.objective_us);
    w.p50_us = r1(w.p50_us);
    w.p99_us = r1(w.p99_us);
    r1(w.throughput);
  }
  r1(in.oncpu_ms_per_s);
  r1(in.sleeps_per_s);
  in.actor_latency_windows = r1(in.actor_latency_windows);
  r1(in.guard.p99_us);
  r1(in.guard.throughput);
  r1(in.guard.requests_per_s);
}

// On-CPU time and voluntary sleeps per second over the latest clean windows.
void target_facts(const std::vector<WindowRecord>& history, PolicyInput& in) {
  double oncpu_ms = 0, seconds = 0, sleeps = 0;
  size_t used = 0;
  for (auto it = history.rbegin(); it != history.rend() && used < kFactWindows; ++it) {
    if (it->straddled || it->window.duration_ms() <= 0) continue;
    oncpu_ms += it->window.oncpu_ms;
    sleeps += static_cast<double>(it->window.nvcsw);
    seconds += it->window.duration_ms() / 1e3;
    ++used;
  }
  if (seconds <= 0) return;
  in.oncpu_ms_per_s = oncpu_ms / seconds;
  in.sleeps_per_s = sleeps / seconds;
}

}  // namespace

ConfigEvidence pool_evidence(const std::vector<const WindowRecord*>& windows, Metric metric,
                             const EvidenceOptions& opts) {
  evidence::Pool pool;
  evidence::Quantisation quantum;
  ConfigEvidence e;
  for (const WindowRecord* w : windows) {
    if (e.config.empty()) e.config = w->config;
    pool.add(w->window, metric);
    if (metric == Metric::CommandP95)
      if (auto v = objective_us(w->window, metric)) quantum.observe(*v);
  }
  e.est = pool.estimate(opts, &quantum);
  e.last_window = pool.last_window();
  return e;
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
  const size_t since = std::min(ctx.since_decision, ctx.history.size());
  in.windows_since_decision = ctx.history.size() - since;
  in.online_cpus = std::max(1, ctx.online_cpus);
  in.actor_latency_windows = ctx.actor_latency_windows;
  in.actor_explores = ctx.actor_explores;
  in.measurements_only = ctx.role == AgentRole::Speculator && ctx.measurements_only;
  in.opts = ctx.evidence;
  in.search = ctx.search;
  in.guard = ctx.guard;

  in.evidence = pool_by_config(ctx, ctx.history.size());
  if (ctx.role == AgentRole::Speculator && ctx.actor_view > 0 &&
      ctx.actor_view <= ctx.history.size()) {
    ActorView v;
    v.windows = ctx.actor_view;
    v.current = ctx.history[ctx.actor_view - 1].config;
    // No decision was made while the actor thinks: its confirmed config then
    // is the confirmed config now.
    v.confirmed = ctx.confirmed;
    v.evidence = pool_by_config(ctx, ctx.actor_view);
    in.actor_view = std::move(v);
  }
  // The speculator reasons from pooled evidence only (single windows are in
  // it): its prompt carries no window list.
  const size_t first =
      ctx.role == AgentRole::Speculator
          ? ctx.history.size()
          : (ctx.history.size() > kActorRecentWindows ? ctx.history.size() - kActorRecentWindows
                                                      : size_t{0});
  target_facts(ctx.history, in);
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

}  // namespace specact
