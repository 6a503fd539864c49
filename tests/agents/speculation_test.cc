// The builtin Speculator and Actor driven by the real engine on the simulated
// kernel, in virtual time (speculator ~0.5 window, actor ~10 windows, as in the
// paper's 1 s / 10-15 s): how often the speculator's provisional config is the
// one the actor then decides (hit rate), and how soon speculative mode reaches
// a config within 10 % of the grid best compared with actor-only.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "agents/policy.h"
#include "sim_driver.h"

namespace specact::agents_test {
using namespace specact::engine;
using namespace specact::engine::testing;
namespace {

constexpr double kActorLatency = 10.3;
constexpr double kSpeculatorLatency = 0.5;
constexpr int kWindows = 200;

struct RunResult {
  uint64_t reach = 0;   // first window within 10 % of the grid best (kWindows if never)
  uint64_t settle = 0;  // first window from which it stays within 10 % (0 if never)
  uint64_t hits = 0, misses = 0;
  double hit_rate = 0;
  double final_true_p95 = 0;
  double grid_p95 = 0;
};

// since_decision as agent.h defines it (the engine at 2f366e2 derives it from
// pointer differences inside a std::deque, which does not give an index: the
// speculator then sees since_decision 0 or 1 whatever the last decision was),, from the driver's
// record of the actor's decisions (the windows completed when each was made).
size_t fixed_since(SimDriver& d, const AgentContext& ctx) {
  int64_t last = -1;
  for (const auto& e : d.events)
    if ((e.type == "confirmed" || e.type == "overridden") && e.fields.value("who", "") == "actor")
      last = e.time_ns;
  if (last < 0) return 0;
  uint64_t decided_after = static_cast<uint64_t>(last / SimDriver::kWindowNs);  // windows completed
  size_t first = ctx.history.empty() ? 0 : ctx.history.front().window.index;
  return decided_after + 1 > first ? std::min(ctx.history.size(), decided_after + 1 - first) : 0;
}

RunResult run_mode(Mode mode, uint64_t seed, sim::SimWorkload w, bool fix_since) {
  EngineOptions o;
  o.mode = mode;
  o.seed = seed;
  SimDriver d(o, w, seed);
  d.speculator = [&d, fix_since](const AgentContext& ctx) {
    if (!fix_since) return BuiltinSpeculatorPolicy{}.propose(ctx);
    AgentContext c = ctx;
    c.since_decision = fixed_since(d, ctx);
    return BuiltinSpeculatorPolicy{}.propose(c);
  };
  d.actor = [](const AgentContext& ctx) { return BuiltinActorPolicy{}.propose(ctx); };
  d.speculator_latency_windows = kSpeculatorLatency;
  d.actor_latency_windows = kActorLatency;
  d.run(kWindows);
  if (const char* t = std::getenv("SPECACT_SPEC_TRACE");
      t && std::to_string(seed) == t && mode == Mode::Speculative) {
    for (const auto& e : d.events)
      if (e.type != "window" && e.type != "agent_called")
        std::printf("  %6.1f %s\n", static_cast<double>(e.time_ns) / 1e9, e.summary.c_str());
  }
  auto [best_cfg, best_p95] = sim::grid_search(d.kernel(), sim::catalogue());
  RunResult r;
  r.grid_p95 = best_p95;
  r.reach = d.first_within(best_p95);
  if (!r.reach) r.reach = kWindows;
  r.settle = d.settled_within(best_p95);
  r.hits = d.engine().hits();
  r.misses = d.engine().misses();
  r.hit_rate = d.engine().hit_rate();
  r.final_true_p95 = d.kernel().true_p95_us(d.engine().confirmed());
  return r;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

struct Summary {
  std::vector<double> hit_rate, spec_reach, actor_reach;
  uint64_t hits = 0, decisions = 0;
  double pooled() const { return decisions ? static_cast<double>(hits) / decisions : 0; }
};

Summary measure(sim::SimWorkload (*workload)(), bool fix_since) {
  Summary s;
  for (uint64_t seed = 1; seed <= 8; ++seed) {
    RunResult sp = run_mode(Mode::Speculative, seed, workload(), fix_since);
    RunResult ac = run_mode(Mode::ActorOnly, seed, workload(), fix_since);
    std::printf(
        "%s seed %llu: speculative hit rate %.2f (%llu/%llu), reach %3llu, settle %3llu, final "
        "%5.0f us | actor-only reach %3llu, settle %3llu, final %5.0f us | grid best %.0f us\n",
        workload().name.c_str(), static_cast<unsigned long long>(seed), sp.hit_rate,
        static_cast<unsigned long long>(sp.hits),
        static_cast<unsigned long long>(sp.hits + sp.misses),
        static_cast<unsigned long long>(sp.reach), static_cast<unsigned long long>(sp.settle),
        sp.final_true_p95, static_cast<unsigned long long>(ac.reach),
        static_cast<unsigned long long>(ac.settle), ac.final_true_p95, sp.grid_p95);
    s.hit_rate.push_back(sp.hit_rate);
    s.spec_reach.push_back(static_cast<double>(sp.reach));
    s.actor_reach.push_back(static_cast<double>(ac.reach));
    s.hits += sp.hits;
    s.decisions += sp.hits + sp.misses;
  }
  std::printf(
      "%s%s: median hit rate %.2f (pooled %llu/%llu = %.2f), median windows to within 10%% of "
      "grid best: speculative %.0f, actor-only %.0f\n",
      workload().name.c_str(), fix_since ? " (since_decision per agent.h)" : "", median(s.hit_rate),
      static_cast<unsigned long long>(s.hits), static_cast<unsigned long long>(s.decisions),
      s.pooled(), median(s.spec_reach), median(s.actor_reach));
  return s;
}

// Before the speculator predicted the actor (engine as is, 8 seeds each): hit
// rate pooled 1/38 (periodic) and 3/60 (sysbench), 0.04 overall; median windows
// to within 10 % of the grid best 13 and 12 (actor-only 126 and 149). After:
// 9/39 and 11/63 (0.20 overall), medians 12 and 12; with since_decision as
// agent.h defines it, 57/70 and 62/74 (0.83).
TEST(Speculation, SpeculatorPredictsTheActorWithTheEngineAsIs) {
  Summary p = measure(&sim::SimWorkload::periodic_vs_hogs, false);
  Summary b = measure(&sim::SimWorkload::sysbench_like, false);
  double pooled =
      static_cast<double>(p.hits + b.hits) / static_cast<double>(p.decisions + b.decisions);
  std::printf("pooled hit rate %.2f\n", pooled);
  EXPECT_GE(pooled, 0.12);
  // Convergence must not regress: medians were 13 and 12 windows.
  EXPECT_LE(median(p.spec_reach), 16);
  EXPECT_LE(median(b.spec_reach), 16);
  for (const Summary* s : {&p, &b}) {
    double spec = 0, actor = 0;
    for (double x : s->spec_reach) spec += x;
    for (double x : s->actor_reach) actor += x;
    EXPECT_GE(actor / spec, 5.0);
  }
}

// The same with the context the speculator is promised: it then knows which
// evidence the pending decision rests on, and guesses it far more often.
TEST(Speculation, SpeculatorPredictsTheActorGivenSinceDecision) {
  Summary p = measure(&sim::SimWorkload::periodic_vs_hogs, true);
  Summary b = measure(&sim::SimWorkload::sysbench_like, true);
  double pooled =
      static_cast<double>(p.hits + b.hits) / static_cast<double>(p.decisions + b.decisions);
  std::printf("pooled hit rate %.2f\n", pooled);
  EXPECT_GE(pooled, 0.60);
  EXPECT_LE(median(p.spec_reach), 16);
  EXPECT_LE(median(b.spec_reach), 16);
}

}  // namespace
}  // namespace specact::agents_test
