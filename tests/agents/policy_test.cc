#include "agents/policy.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <functional>
#include <optional>

#include "sim_kernel.h"

using namespace specact;
using namespace specact::sim;

namespace {

constexpr int64_t kSecond = 1'000'000'000;

struct Loop {
  SimKernel kernel;
  AgentContext ctx;
  int64_t t = 0;
  explicit Loop(SimWorkload w, uint64_t seed = 1) : kernel(std::move(w), seed) {
    ctx.knobs = catalogue();
    ctx.current = kernel.resolve({});
    ctx.confirmed = ctx.current;
    ctx.best = ctx.current;
    ctx.baseline = ctx.current;
    ctx.seed = seed;
  }
  void measure(int n) {
    for (int i = 0; i < n; ++i) {
      WindowRecord r;
      r.window = kernel.measure(ctx.current, t, kSecond);
      r.config = ctx.current;
      t += kSecond;
      ctx.history.push_back(std::move(r));
    }
  }
};

}  // namespace

// Actor alone on the mixed workload (the paper's sequential baseline): every
// decision is followed by 3 measured windows.
TEST(BuiltinActor, ReachesTenPercentOfGridBestOnMixedWorkload) {
  for (uint64_t seed = 1; seed <= 8; ++seed) {
    Loop loop(seed % 2 ? SimWorkload::mixed() : SimWorkload::sysbench_like(), seed);
    auto [grid_best, grid_p95] = grid_search(loop.kernel, catalogue());
    BuiltinActorPolicy actor;
    int reached_at = -1;
    const int kMaxWindows = 150;
    while (static_cast<int>(loop.ctx.history.size()) < kMaxWindows) {
      loop.measure(3);
      loop.ctx.role = AgentRole::Actor;
      AgentReply r = actor.propose(loop.ctx);
      loop.ctx.call_index++;
      ASSERT_TRUE(r.ok());
      if (r.wants_more_evidence) continue;
      ASSERT_FALSE(r.candidates.empty());
      loop.ctx.current = r.candidates[0].config;
      loop.ctx.confirmed = loop.ctx.current;
      loop.ctx.since_decision = loop.ctx.history.size();
      if (reached_at < 0 && loop.kernel.true_p95_us(loop.ctx.confirmed) <= grid_p95 * 1.10)
        reached_at = static_cast<int>(loop.ctx.history.size());
    }
    double final_p95 = loop.kernel.true_p95_us(loop.ctx.confirmed);
    std::printf(
        "%s seed %lu: grid best %.0f us, actor final %.0f us, within 10%% after %d windows\n",
        loop.kernel.workload().name.c_str(), static_cast<unsigned long>(seed), grid_p95, final_p95,
        reached_at);
    EXPECT_LE(final_p95, grid_p95 * 1.10) << "seed " << seed;
    EXPECT_GT(reached_at, 0);
    EXPECT_LE(reached_at, 90);
  }
}

// Speculator alone, one trial per window: fast but lossy. Applying its
// measurement (candidate 2) each window must get the periodic workload's p95
// down by > 80 % within 15 windows.
TEST(BuiltinSpeculator, FastStepsDownhillEveryWindow) {
  for (uint64_t seed = 1; seed <= 4; ++seed) {
    Loop loop(SimWorkload::mixed(), seed);
    loop.ctx.top_k = 2;
    loop.ctx.actor_explores = false;
    BuiltinSpeculatorPolicy spec;
    double untuned = loop.kernel.true_p95_us(loop.ctx.current);
    double best_seen = untuned;
    for (int i = 0; i < 15; ++i) {
      loop.measure(1);
      AgentReply r = spec.propose(loop.ctx);
      ASSERT_TRUE(r.ok());
      ASSERT_FALSE(r.wants_more_evidence);
      ASSERT_FALSE(r.candidates.empty());
      loop.ctx.current = r.candidates.back().config;
      best_seen = std::min(best_seen, loop.kernel.true_p95_us(loop.ctx.current));
    }
    EXPECT_LT(best_seen, untuned * 0.2) << "seed " << seed;
  }
}

// Candidate 1 holds the best measured config (nothing beats the baseline
// yet); the others are measurements one knob away from it.
TEST(BuiltinSpeculator, TopKGivesTheAnchorThenDistinctOneKnobSteps) {
  Loop loop(SimWorkload::mixed(), 1);
  loop.ctx.actor_explores = false;
  loop.measure(2);
  loop.ctx.top_k = 3;
  AgentReply r = BuiltinSpeculatorPolicy{}.propose(loop.ctx);
  ASSERT_EQ(r.candidates.size(), 3u);
  EXPECT_EQ(r.candidates[0].config, loop.ctx.current);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_GE(r.candidates[i].confidence, 0.0);
    EXPECT_LE(r.candidates[i].confidence, 1.0);
    for (size_t j = 0; j < i; ++j) EXPECT_NE(r.candidates[i].config, r.candidates[j].config);
    for (const auto& k : loop.ctx.knobs)
      EXPECT_TRUE(k.domain.contains(r.candidates[i].config.at(k.name)));
    if (i == 0) continue;
    int changed = 0;
    for (const auto& [k, v] : r.candidates[i].config) changed += loop.ctx.current.at(k) != v;
    EXPECT_EQ(changed, 1);
  }
}

TEST(BuiltinPolicies, DeterministicGivenSeedAndContext) {
  Loop a(SimWorkload::mixed(), 5), b(SimWorkload::mixed(), 5);
  a.measure(4);
  b.measure(4);
  for (auto role : {AgentRole::Speculator, AgentRole::Actor}) {
    a.ctx.role = b.ctx.role = role;
    EXPECT_EQ(reply_to_json(builtin_propose(digest(a.ctx))),
              reply_to_json(builtin_propose(digest(b.ctx))));
  }
}

TEST(BuiltinActor, WaitsWhenTheDifferenceIsWithinTheNoise) {
  Loop loop(SimWorkload::mixed(), 1);
  loop.ctx.role = AgentRole::Actor;
  loop.measure(3);
  // Timer migration alone moves p95 by ~2 %: one window of it cannot settle that.
  loop.ctx.current[kTimerMigration] = 0;
  loop.measure(1);
  AgentReply r = BuiltinActorPolicy{}.propose(loop.ctx);
  EXPECT_TRUE(r.wants_more_evidence);
  EXPECT_TRUE(r.candidates.empty());
}

TEST(BuiltinActor, MovesOnClearEvidenceAndIgnoresStraddledAndLowConfidence) {
  Loop loop(SimWorkload::mixed(), 1);
  loop.ctx.role = AgentRole::Actor;
  loop.measure(3);
  Config good = loop.ctx.current;
  good[kSlice] = 100;
  Config fake = loop.ctx.current;
  fake[kSlice] = 50000;
  // Evidence that must not count: a straddled window and a low-confidence one
  // claiming a miraculous p95 for `fake`.
  WindowRecord straddled;
  straddled.window = loop.kernel.measure(good, 0, 1'000'000'000);
  straddled.config = fake;
  straddled.straddled = true;
  loop.ctx.history.push_back(straddled);
  WindowRecord thin = straddled;
  thin.straddled = false;
  thin.window.low_confidence = true;
  thin.window.service_hist = Histogram();
  for (int i = 0; i < 5; ++i) thin.window.service_hist.record(10'000);  // 10 us: "miraculous"
  thin.window.service = LatencySummary::from(thin.window.service_hist);
  loop.ctx.history.push_back(thin);
  loop.ctx.current = good;
  loop.measure(2);
  loop.ctx.current = loop.ctx.confirmed;
  AgentReply r = BuiltinActorPolicy{}.propose(loop.ctx);
  ASSERT_FALSE(r.candidates.empty());
  EXPECT_EQ(r.candidates[0].config.at(kSlice), 100);
  EXPECT_GT(r.candidates[0].confidence, 0.9);
  // The thin window's five samples are pooled, but they decide nothing.
  PolicyInput in = digest(loop.ctx);
  for (const auto& e : in.evidence) {
    if (e.config.at(kSlice) == 50000) {
      EXPECT_FALSE(e.est.confident);
    }
  }
}

TEST(PolicyState, JsonRoundTripGivesTheSameReply) {
  Loop loop(SimWorkload::mixed(), 9);
  loop.measure(3);
  loop.ctx.current[kSlice] = 700;
  loop.measure(2);
  loop.ctx.since_decision = 3;
  for (auto role : {AgentRole::Speculator, AgentRole::Actor}) {
    loop.ctx.role = role;
    PolicyInput in = digest(loop.ctx);
    nlohmann::json j = state_to_json(in);
    PolicyInput back = state_from_json(nlohmann::json::parse(j.dump()));
    EXPECT_EQ(state_to_json(back), j);
    EXPECT_EQ(reply_to_json(builtin_propose(back)), reply_to_json(builtin_propose(in)));
  }
  EXPECT_THROW(state_from_json(nlohmann::json::object()), std::invalid_argument);
  EXPECT_THROW(state_from_json(nlohmann::json::parse(R"({"role":"boss"})")), std::invalid_argument);
}

TEST(PolicyState, IntervalShrinksWithEvidence) {
  SimKernel k(SimWorkload::mixed(), 1);
  std::vector<WindowRecord> ws(8);
  for (size_t i = 0; i < ws.size(); ++i) {
    ws[i].window = k.measure({}, 0, 1'000'000'000);
    ws[i].config = k.resolve({});
  }
  std::vector<const WindowRecord*> one{&ws[0]}, all;
  for (auto& w : ws) all.push_back(&w);
  ConfigEvidence e1 = pool_evidence(one, Metric::ServiceP95);
  ConfigEvidence e8 = pool_evidence(all, Metric::ServiceP95);
  EXPECT_EQ(e8.est.windows, 8);
  EXPECT_LT(e1.est.lo_us, e1.est.p95_us);
  EXPECT_GT(e1.est.hi_us, e1.est.p95_us);
  EXPECT_LT(e8.est.se, e1.est.se);
  double truth = k.true_p95_us({});
  EXPECT_NEAR(e8.est.p95_us, truth, truth * 0.1);
}

// The command metric has no histograms: evidence comes from per-window p95s.
TEST(BuiltinActor, WorksOnTheCommandMetricWithoutHistograms) {
  Loop loop(SimWorkload::sysbench_like(), 11);
  loop.ctx.metric = Metric::CommandP95;
  auto [grid_best, grid_p95] = grid_search(loop.kernel, catalogue());
  BuiltinActorPolicy actor;
  while (loop.ctx.history.size() < 150) {
    loop.measure(3);
    for (auto& r : loop.ctx.history) r.window.service_hist = Histogram();  // only the command p95
    loop.ctx.role = AgentRole::Actor;
    AgentReply r = actor.propose(loop.ctx);
    if (r.wants_more_evidence) continue;
    ASSERT_FALSE(r.candidates.empty());
    loop.ctx.current = loop.ctx.confirmed = r.candidates[0].config;
  }
  EXPECT_LE(loop.kernel.true_p95_us(loop.ctx.confirmed), grid_p95 * 1.10);
}

TEST(BuiltinPolicies, EnumKnobsMoveByOneIndexAndStayInRange) {
  Loop loop(SimWorkload::mixed(), 2);
  KnobInfo policy;
  policy.name = "task.policy";
  policy.unit = "enum";
  policy.domain = {0, 2, KnobScale::Enum, {"other", "batch", "idle"}};
  policy.available = true;
  loop.ctx.knobs = {policy};
  loop.ctx.current = loop.ctx.confirmed = {{"task.policy", 0}};
  loop.ctx.actor_explores = false;
  loop.measure(2);
  loop.ctx.top_k = 4;
  AgentReply r = BuiltinSpeculatorPolicy{}.propose(loop.ctx);
  ASSERT_EQ(r.candidates.size(), 2u);  // the anchor, and index 0's one neighbour
  EXPECT_EQ(r.candidates[0].config.at("task.policy"), 0);
  EXPECT_EQ(r.candidates[1].config.at("task.policy"), 1);
  // No knobs at all: nothing to move, the current config stays.
  loop.ctx.knobs.clear();
  r = BuiltinSpeculatorPolicy{}.propose(loop.ctx);
  ASSERT_EQ(r.candidates.size(), 1u);
  loop.ctx.role = AgentRole::Actor;
  r = BuiltinActorPolicy{}.propose(loop.ctx);
  EXPECT_TRUE(r.ok());
}

// The speculator's first candidate is the actor's decision on the evidence the
// actor was asked with (its pending view), not on what the speculator measured
// since; the rest measure.
TEST(BuiltinSpeculator, FirstCandidateIsTheActorsPendingDecision) {
  Loop loop(SimWorkload::sysbench_like(), 3);
  loop.measure(3);
  Config good = loop.ctx.current;
  good[kSlice] = 20000;  // clearly better on this workload
  loop.ctx.current = good;
  loop.measure(1);
  // The actor is asked here: its view holds one window of `good`.
  AgentContext asked = loop.ctx;
  asked.role = AgentRole::Actor;
  asked.actor_explores = false;
  AgentReply actor = BuiltinActorPolicy{}.propose(asked);
  ASSERT_FALSE(actor.candidates.empty());
  const Config expected = actor.candidates[0].config;
  EXPECT_EQ(expected.at(kSlice), 20000);
  // While it thinks, the speculator measures something even better.
  Config better = good;
  better[kSlice] = 100000;
  loop.ctx.current = better;
  loop.measure(2);
  loop.ctx.role = AgentRole::Speculator;
  loop.ctx.actor_view = asked.history.size();
  loop.ctx.top_k = 3;
  PolicyInput in = digest(loop.ctx);
  ASSERT_TRUE(in.actor_view);
  EXPECT_EQ(in.actor_view->windows, asked.history.size());
  AgentReply r = BuiltinSpeculatorPolicy{}.propose(in);
  ASSERT_FALSE(r.candidates.empty());
  EXPECT_EQ(r.candidates[0].config, expected);
  for (size_t i = 1; i < r.candidates.size(); ++i) EXPECT_NE(r.candidates[i].config, expected);
  // The view survives the JSON state block (LLM prompts, test server).
  PolicyInput back = state_from_json(nlohmann::json::parse(state_to_json(in).dump()));
  EXPECT_EQ(reply_to_json(BuiltinSpeculatorPolicy{}.propose(back)), reply_to_json(r));
  // Without a pending request the speculator replays the actor on everything.
  loop.ctx.actor_view = 0;
  r = BuiltinSpeculatorPolicy{}.propose(loop.ctx);
  ASSERT_FALSE(r.candidates.empty());
  EXPECT_EQ(r.candidates[0].config.at(kSlice), 100000);
  // The actor's own digest never carries a view.
  loop.ctx.role = AgentRole::Actor;
  loop.ctx.actor_view = 3;
  EXPECT_FALSE(digest(loop.ctx).actor_view);
}

// While the actor will not decide yet, the speculator's guess is the config in
// force unless the evidence calls it worse than the best measured one: a config
// still being measured (a warm start, an unjudged guess) is the actor's to
// judge, and putting the confirmed config back would end its measurement.
TEST(BuiltinSpeculator, HoldsAnUnjudgedConfigInForceUntilItIsMeasuredWorse) {
  Loop loop(SimWorkload::mixed(), 1);
  loop.measure(3);
  const Config base = loop.ctx.current;
  loop.ctx.role = AgentRole::Speculator;
  loop.ctx.actor_explores = false;
  loop.ctx.top_k = 2;
  // Timer migration alone moves p95 by ~2 %: one window cannot judge it, and
  // the actor waits (BuiltinActor.WaitsWhenTheDifferenceIsWithinTheNoise).
  loop.ctx.current[kTimerMigration] = 0;
  const Config unjudged = loop.ctx.current;
  loop.measure(1);
  AgentReply r = BuiltinSpeculatorPolicy{}.propose(loop.ctx);
  ASSERT_FALSE(r.candidates.empty());
  EXPECT_EQ(r.candidates[0].config, unjudged) << r.candidates[0].rationale;
  // A config measured worse is not held: the best measured config goes back.
  loop.ctx.current = base;
  loop.ctx.current[kNice] = 19;  // a light weight's later deadlines against the hogs: +30 %
  loop.measure(6);
  r = BuiltinSpeculatorPolicy{}.propose(loop.ctx);
  ASSERT_FALSE(r.candidates.empty());
  EXPECT_EQ(r.candidates[0].config, base) << r.candidates[0].rationale;
}

// The request-size rule: with a sleeping target the slice's first step is just
// above its measured burst (SearchOptions::slice_burst_margin); a CPU-bound
// target gets no such step, and its slice is screened upwards first.
TEST(SchedulerRules, SliceStartsJustAboveTheBurstOnlyForSleepingTargets) {
  Loop loop(SimWorkload::periodic_vs_hogs(), 2);
  loop.measure(3);
  loop.ctx.top_k = 2;
  loop.ctx.actor_explores = false;
  PolicyInput in = digest(loop.ctx);
  ASSERT_TRUE(in.oncpu_ms_per_s && in.sleeps_per_s);
  EXPECT_NEAR(*in.oncpu_ms_per_s * 1e3 / *in.sleeps_per_s, 300, 30);
  AgentReply r = BuiltinSpeculatorPolicy{}.propose(in);
  ASSERT_EQ(r.candidates.size(), 2u);
  const double want = 300 * (1 + in.search.slice_burst_margin);
  EXPECT_NEAR(static_cast<double>(r.candidates[1].config.at(kSlice)), want, 0.15 * want);
  EXPECT_NE(r.candidates[1].rationale.find("burst"), std::string::npos);

  Loop cpu(SimWorkload::sysbench_like(), 2);
  cpu.measure(3);
  cpu.ctx.top_k = 2;
  cpu.ctx.actor_explores = false;
  AgentReply c = BuiltinSpeculatorPolicy{}.propose(cpu.ctx);
  ASSERT_EQ(c.candidates.size(), 2u);
  EXPECT_EQ(c.candidates[1].rationale.find("burst"), std::string::npos);
  EXPECT_GT(c.candidates[1].config.at(kSlice), cpu.ctx.current.at(kSlice));
}

namespace {

// A loop whose windows are scripted: each config's p95 comes from `p95_of`,
// every window a clean 1 s with enough samples.
struct Scripted {
  AgentContext ctx;
  std::function<double(const Config&)> p95_of;
  uint64_t index = 0;
  Scripted(std::vector<KnobInfo> knobs, std::function<double(const Config&)> f)
      : p95_of(std::move(f)) {
    ctx.knobs = std::move(knobs);
    for (const auto& k : ctx.knobs) ctx.current[k.name] = *k.current;
    ctx.confirmed = ctx.baseline = ctx.best = ctx.current;
    ctx.role = AgentRole::Speculator;
    ctx.top_k = 2;
    ctx.actor_explores = false;  // a speculator measures for the actor
  }
  void measure(const Config& c, int n = 1) {
    for (int i = 0; i < n; ++i) {
      WindowRecord r;
      r.config = c;
      r.window.index = ++index;
      r.window.start_ns = static_cast<int64_t>(index) * kSecond;
      r.window.end_ns = r.window.start_ns + kSecond;
      const double p = p95_of(c) * (1 + 0.01 * static_cast<double>(index % 3));
      for (int s = 0; s < 200; ++s) r.window.service_hist.record(static_cast<uint64_t>(p * 900));
      for (int s = 0; s < 12; ++s) r.window.service_hist.record(static_cast<uint64_t>(p * 1000));
      r.window.service = LatencySummary::from(r.window.service_hist);
      r.window.oncpu_ms = 1990;  // both CPUs: CPU-bound
      ctx.history.push_back(std::move(r));
    }
  }
  // The speculator's measurement (its second candidate), or nothing.
  std::optional<Config> next() {
    AgentReply r = BuiltinSpeculatorPolicy{}.propose(ctx);
    if (r.candidates.size() < 2) return std::nullopt;
    return r.candidates[1].config;
  }
};

KnobInfo log_knob(const char* name, int64_t lo, int64_t hi, int64_t v) {
  KnobInfo k;
  k.name = name;
  k.family = "task";
  k.domain = {lo, hi, KnobScale::Log, {}};
  k.available = true;
  k.current = v;
  return k;
}

KnobInfo nice_knob() {
  KnobInfo k;
  k.name = "task.nice";
  k.family = "task";
  k.domain = {-20, 19, KnobScale::Linear, {}};
  k.available = true;
  k.current = 0;
  return k;
}

}  // namespace

// A plateau widens to the domain edge (where a cliff can hide), and a knob whose
// largest steps stayed within the noise is set aside: the search ends.
TEST(Search, PlateauWidensToTheEdgeThenTheKnobIsSetAside) {
  Scripted s({log_knob("task.slice_us", 100, 100000, 1000)},
             [](const Config& c) { return c.at("task.slice_us") >= 50000 ? 500.0 : 60000.0; });
  s.ctx.knobs[0].request_size = true;
  s.measure(s.ctx.current, 2);
  std::vector<int64_t> tried;
  for (int i = 0; i < 8; ++i) {
    auto c = s.next();
    if (!c) break;
    tried.push_back(c->at("task.slice_us"));
    s.measure(*c);
  }
  ASSERT_GE(tried.size(), 2u);
  EXPECT_EQ(tried[0], 10000);   // half-way up (CPU-bound: up first)
  EXPECT_EQ(tried[1], 100000);  // the half-way step changed nothing: the edge
  s.ctx.current = s.ctx.confirmed = {{"task.slice_us", 100000}};

  Scripted flat({log_knob("task.slice_us", 100, 100000, 1000)},
                [](const Config&) { return 1000.0; });
  flat.measure(flat.ctx.current, 2);
  int steps = 0;
  while (auto c = flat.next()) {
    flat.measure(*c);
    ASSERT_LT(++steps, 10) << "a flat knob is screened a few times, then set aside";
  }
  EXPECT_EQ(steps, 4);  // half-way and the edge, both ways
}

// The package e2e's failing history (7 Dec): the demo at its 10 ms slice read
// 5.4 ms, 0.34 ms, 5.4 ms from one second to the next; a 400 us slice read
// 0.34 ms in its one window, 1 ms 1.5 ms. Within that spread one window is
// no evidence either way: the 400 us trial is measured again before anything
// else, not taken for a plateau (which widened to the edges, set the slice
// aside and converged on 10 ms). A trial that read no better (1 ms) is not.
TEST(Search, AOneWindowTrialFarBelowABimodalBaselineIsMeasuredAgain) {
  const std::vector<double> baseline_windows = {5374, 336, 5374, 5374, 4129};
  size_t baseline_seen = 0;
  Scripted s({log_knob("task.slice_us", 100, 100000, 10000)}, [&](const Config& c) {
    const int64_t slice = c.at("task.slice_us");
    if (slice == 400) return 336.0;
    if (slice == 1000) return 1475.0;
    if (slice == 10000) return baseline_windows[baseline_seen++ % baseline_windows.size()];
    return 3473.0;
  });
  s.ctx.knobs[0].request_size = true;
  s.ctx.top_k = 3;
  s.measure(s.ctx.current, 2);
  s.measure({{"task.slice_us", 400}});
  s.measure({{"task.slice_us", 1000}});
  s.measure(s.ctx.current, 1);
  AgentReply r = BuiltinSpeculatorPolicy{}.propose(s.ctx);
  ASSERT_GE(r.candidates.size(), 2u);
  EXPECT_EQ(r.candidates[1].config.at("task.slice_us"), 400);
  EXPECT_NE(r.candidates[1].rationale.find("measuring again"), std::string::npos)
      << r.candidates[1].rationale;
  for (const auto& c : r.candidates) EXPECT_NE(c.config.at("task.slice_us"), 1000);
  // Its second window settles it: 400 us is better, and the search goes on
  // from there.
  s.measure({{"task.slice_us", 400}});
  s.measure(s.ctx.current, 1);
  r = BuiltinSpeculatorPolicy{}.propose(s.ctx);
  ASSERT_GE(r.candidates.size(), 2u);
  EXPECT_NE(r.candidates[1].rationale.find("task.slice_us 400->"), std::string::npos)
      << r.candidates[1].rationale;
}

// bench/suite's periodic workload as its histories read (7 Dec): the guess in
// force, a slice just above the burst, reads fast or ~4x slow from one window
// to the next; nice -10 reads fast. Measured: the baseline 3 windows (the
// actor asked on those alone, when `actor_asked`: it waits), the guess 2,
// nice -10 once, the guess 3 more; the guess is in force.
struct BimodalGuess {
  const Config guess = {{"task.slice_us", 400}, {"task.nice", 0}};
  const Config nicer = {{"task.slice_us", 400}, {"task.nice", -10}};
  const std::vector<double> guess_windows = {385, 369, 1400, 352, 1400};
  size_t guess_seen = 0;
  Scripted s;
  explicit BimodalGuess(bool actor_asked)
      : s({log_knob("task.slice_us", 100, 100000, 10000), nice_knob()}, [this](const Config& c) {
          if (c.at("task.nice") <= -10) return 319.0;
          if (c.at("task.slice_us") == 400)
            return guess_windows[guess_seen++ % guess_windows.size()];
          return 3473.0;
        }) {
    s.ctx.top_k = 3;
    s.measure(s.ctx.current, 3);
    if (actor_asked) s.ctx.actor_view = s.ctx.history.size();
    s.measure(guess, 2);
    s.measure(nicer, 1);
    s.measure(guess, 3);
    s.ctx.current = guess;
  }
};

// Nice -10 became the best config in its one window, yet every later round
// measured steps around it and returned to the guess, which collected the
// windows. The best config is measured again first while it is the less
// known side of a comparison still within the noise.
TEST(Search, TheBestConfigIsMeasuredAgainWhileLessKnownThanTheConfigInForce) {
  BimodalGuess b(false);
  Scripted& s = b.s;
  s.ctx.measurements_only = true;
  AgentReply r = BuiltinSpeculatorPolicy{}.propose(s.ctx);
  ASSERT_FALSE(r.candidates.empty());
  EXPECT_EQ(r.candidates[0].config, b.nicer);
  EXPECT_NE(r.candidates[0].rationale.find("measuring the best config again"), std::string::npos)
      << r.candidates[0].rationale;
  // Once it is known as well as the guess, the search goes on from it.
  s.measure(b.nicer, 4);
  r = BuiltinSpeculatorPolicy{}.propose(s.ctx);
  for (const auto& c : r.candidates) EXPECT_NE(c.config, b.nicer) << c.rationale;
}

// While the actor thought, the rounds' anchor stayed the guess in force
// (never measurably worse: its windows are fast or slow by turns) and nice
// -10, ranked ahead from one window, got one trial window a round. A config
// in force known better than the champion ranked ahead of it gives way to
// it; one known less well (a warm start) is still held.
TEST(BuiltinSpeculator, AnchorIsTheChampionWhenTheConfigInForceIsKnownBetter) {
  BimodalGuess b(true);
  Scripted& s = b.s;
  AgentReply r = BuiltinSpeculatorPolicy{}.propose(s.ctx);
  ASSERT_FALSE(r.candidates.empty());
  EXPECT_EQ(r.candidates[0].config, b.nicer) << r.candidates[0].rationale;
  EXPECT_NE(r.candidates[0].rationale.find("holding the best measured config"), std::string::npos)
      << r.candidates[0].rationale;
  // The config in force with fewer windows than the champion is held.
  s.measure(b.nicer, 5);
  s.ctx.current = {{"task.slice_us", 300}, {"task.nice", -10}};
  s.measure(s.ctx.current, 1);
  r = BuiltinSpeculatorPolicy{}.propose(s.ctx);
  ASSERT_FALSE(r.candidates.empty());
  EXPECT_EQ(r.candidates[0].config, s.ctx.current) << r.candidates[0].rationale;
}

// Relative knobs come after direct ones while the target alone keeps every
// CPU busy; conditional knobs are never searched.
TEST(Search, RelativeKnobsLastWhenSaturatedConditionalNever) {
  KnobInfo nice = nice_knob();
  nice.effect = KnobEffect::Relative;
  KnobInfo rr = log_knob("sysctl.kernel.sched_rr_timeslice_ms", 1, 1000, 100);
  rr.family = "sysctl";
  rr.effect = KnobEffect::Conditional;
  KnobInfo tm;
  tm.name = "sysctl.kernel.timer_migration";
  tm.family = "sysctl";
  tm.domain = {0, 1, KnobScale::Linear, {}};
  tm.available = true;
  tm.current = 1;
  Scripted s({nice, rr, tm}, [](const Config&) { return 1000.0; });
  s.ctx.online_cpus = 2;  // Scripted windows hold 1990 ms of on-CPU time a second
  s.measure(s.ctx.current, 2);
  std::vector<std::string> order;
  while (auto c = s.next()) {
    for (const auto& [k, v] : *c)
      if (v != s.ctx.current.at(k)) order.push_back(k);
    s.measure(*c);
    ASSERT_LT(order.size(), 10u);
  }
  ASSERT_FALSE(order.empty());
  EXPECT_EQ(order.front(), "sysctl.kernel.timer_migration");
  EXPECT_EQ(order.back(), "task.nice");
  for (const auto& k : order) EXPECT_NE(k, "sysctl.kernel.sched_rr_timeslice_ms");
}

// A valley is bracketed: once the screens are done, the gap towards a worse
// neighbour is halved; a side within the noise (a plateau) is not.
TEST(Search, BracketsTowardsWorseNeighboursOnly) {
  Scripted s({log_knob("task.slice_us", 100, 100000, 400)}, [](const Config& c) {
    const double v = static_cast<double>(c.at("task.slice_us"));
    return v < 300 ? 3000.0 : v > 2000 ? 3000.0 : 350.0;
  });
  s.measure(s.ctx.current, 3);
  std::vector<int64_t> tried;
  while (auto c = s.next()) {
    tried.push_back(c->at("task.slice_us"));
    s.measure(*c);
    ASSERT_LT(tried.size(), 20u);
  }
  // Screens at 200 and ~6300 (both worse), then bisection between 400 and them.
  ASSERT_GE(tried.size(), 3u);
  bool bisected = false;
  for (size_t i = 2; i < tried.size(); ++i)
    if ((tried[i] > 200 && tried[i] < 400) || (tried[i] > 400 && tried[i] < 6400)) bisected = true;
  EXPECT_TRUE(bisected);
}

// The actor: converged when nothing measured is better and every knob is
// screened; with a speculator measuring for it, it waits instead of exploring.
TEST(BuiltinActor, ConvergesWhenTheSearchIsDoneAndWaitsWhileASpeculatorMeasures) {
  Scripted s({log_knob("task.slice_us", 100, 100000, 1000)}, [](const Config&) { return 1000.0; });
  s.measure(s.ctx.current, 3);
  s.ctx.role = AgentRole::Actor;
  s.ctx.actor_explores = false;
  AgentReply wait = BuiltinActorPolicy{}.propose(s.ctx);
  EXPECT_TRUE(wait.wants_more_evidence);
  s.ctx.actor_explores = true;
  AgentReply explore = BuiltinActorPolicy{}.propose(s.ctx);
  ASSERT_FALSE(explore.candidates.empty());
  EXPECT_NE(explore.candidates[0].config, s.ctx.current);
  s.ctx.actor_explores = false;
  s.ctx.role = AgentRole::Speculator;
  while (auto c = s.next()) s.measure(*c);
  s.ctx.role = AgentRole::Actor;
  AgentReply done = BuiltinActorPolicy{}.propose(s.ctx);
  ASSERT_EQ(done.candidates.size(), 1u);
  EXPECT_EQ(done.candidates[0].config, s.ctx.confirmed);
  EXPECT_NE(done.candidates[0].rationale.find("converged"), std::string::npos);
}
