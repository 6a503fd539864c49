#include "agents/policy.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>

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

// Speculator alone, one step per window: fast but lossy. It must get the
// periodic workload's p95 down by > 80 % within 15 windows.
TEST(BuiltinSpeculator, FastStepsDownhillEveryWindow) {
  for (uint64_t seed = 1; seed <= 4; ++seed) {
    Loop loop(SimWorkload::mixed(), seed);
    BuiltinSpeculatorPolicy spec;
    double untuned = loop.kernel.true_p95_us(loop.ctx.current);
    double best_seen = untuned;
    for (int i = 0; i < 15; ++i) {
      loop.measure(1);
      AgentReply r = spec.propose(loop.ctx);
      ASSERT_TRUE(r.ok());
      ASSERT_FALSE(r.wants_more_evidence);
      ASSERT_EQ(r.candidates.size(), 1u);
      loop.ctx.current = r.candidates[0].config;
      best_seen = std::min(best_seen, loop.kernel.true_p95_us(loop.ctx.current));
    }
    EXPECT_LT(best_seen, untuned * 0.2) << "seed " << seed;
  }
}

TEST(BuiltinSpeculator, TopKGivesDistinctNeighboursOfTheAnchor) {
  Loop loop(SimWorkload::mixed(), 1);
  loop.measure(2);
  loop.ctx.top_k = 3;
  AgentReply r = BuiltinSpeculatorPolicy{}.propose(loop.ctx);
  ASSERT_EQ(r.candidates.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_NE(r.candidates[i].config, loop.ctx.current);
    EXPECT_GE(r.candidates[i].confidence, 0.0);
    EXPECT_LE(r.candidates[i].confidence, 1.0);
    for (size_t j = 0; j < i; ++j) EXPECT_NE(r.candidates[i].config, r.candidates[j].config);
    // Coordinate-wise: exactly one knob differs from the anchor.
    int changed = 0;
    for (const auto& [k, v] : r.candidates[i].config) changed += loop.ctx.current.at(k) != v;
    EXPECT_EQ(changed, 1);
    // Always inside the domain.
    for (const auto& k : loop.ctx.knobs)
      EXPECT_TRUE(k.domain.contains(r.candidates[i].config.at(k.name)));
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
  loop.ctx.history.push_back(thin);
  loop.ctx.current = good;
  loop.measure(2);
  loop.ctx.current = loop.ctx.confirmed;
  AgentReply r = BuiltinActorPolicy{}.propose(loop.ctx);
  ASSERT_FALSE(r.candidates.empty());
  EXPECT_EQ(r.candidates[0].config.at(kSlice), 100);
  EXPECT_GT(r.candidates[0].confidence, 0.9);
  PolicyInput in = digest(loop.ctx);
  for (const auto& e : in.evidence) EXPECT_NE(e.config.at(kSlice), 50000);
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
  EXPECT_EQ(e8.windows, 8u);
  EXPECT_LT(e1.ci_low_us, e1.p95_us);
  EXPECT_GT(e1.ci_high_us, e1.p95_us);
  EXPECT_LT(e8.rel_se(), e1.rel_se());
  double truth = k.true_p95_us({});
  EXPECT_NEAR(e8.p95_us, truth, truth * 0.1);
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
  loop.measure(2);
  loop.ctx.top_k = 4;
  AgentReply r = BuiltinSpeculatorPolicy{}.propose(loop.ctx);
  ASSERT_EQ(r.candidates.size(), 1u);  // index 0 has one neighbour
  EXPECT_EQ(r.candidates[0].config.at("task.policy"), 1);
  // No knobs at all: nothing to move, the current config stays.
  loop.ctx.knobs.clear();
  r = BuiltinSpeculatorPolicy{}.propose(loop.ctx);
  ASSERT_EQ(r.candidates.size(), 1u);
  loop.ctx.role = AgentRole::Actor;
  r = BuiltinActorPolicy{}.propose(loop.ctx);
  EXPECT_TRUE(r.ok());
}

// The speculator's first candidate is the actor's decision on the evidence the
// actor was asked with (right after its last decision), not on what the
// speculator measured since; the rest explore.
TEST(BuiltinSpeculator, FirstCandidateIsTheActorsPendingDecision) {
  // CPU-bound: no burst, so no floor stops the exploration this test looks at.
  Loop loop(SimWorkload::sysbench_like(), 3);
  loop.measure(3);
  Config good = loop.ctx.current;
  good[kSlice] = 700;
  loop.ctx.current = good;
  loop.measure(3);
  // The actor decided `good` here; it is asked again after one window of it.
  loop.ctx.confirmed = good;
  loop.ctx.since_decision = loop.ctx.history.size();
  loop.measure(1);
  AgentContext asked = loop.ctx;
  asked.role = AgentRole::Actor;
  AgentReply actor = BuiltinActorPolicy{}.propose(asked);
  ASSERT_FALSE(actor.candidates.empty());
  const Config expected = actor.candidates[0].config;
  ASSERT_NE(expected, good);  // the actor explores a neighbour of `good`
  // While it thinks, the speculator measures that neighbour and another one.
  loop.ctx.current = expected;
  loop.measure(2);
  Config other = good;
  other[kSlice] = 175;
  if (other == expected) other[kSlice] = 2800;
  loop.ctx.current = other;
  loop.measure(2);
  loop.ctx.role = AgentRole::Speculator;
  loop.ctx.top_k = 3;
  PolicyInput in = digest(loop.ctx);
  ASSERT_TRUE(in.actor_view);
  EXPECT_EQ(in.actor_view->windows, asked.history.size());
  AgentReply r = BuiltinSpeculatorPolicy{}.propose(in);
  ASSERT_EQ(r.candidates.size(), 3u);
  EXPECT_EQ(r.candidates[0].config, expected);
  for (size_t i = 1; i < r.candidates.size(); ++i) EXPECT_NE(r.candidates[i].config, expected);
  // The view survives the JSON state block (LLM prompts, test server).
  PolicyInput back = state_from_json(nlohmann::json::parse(state_to_json(in).dump()));
  EXPECT_EQ(reply_to_json(BuiltinSpeculatorPolicy{}.propose(back)), reply_to_json(r));
}

// A since_decision whose window is not under the confirmed config does not
// describe the history: no view, the speculator replays on all evidence.
TEST(BuiltinSpeculator, NoActorViewWhenSinceDecisionDoesNotFit) {
  Loop loop(SimWorkload::mixed(), 4);
  loop.measure(2);
  loop.ctx.current[kSlice] = 700;
  loop.measure(2);
  loop.ctx.confirmed = loop.ctx.current;
  loop.ctx.current[kSlice] = 175;
  loop.measure(2);
  loop.ctx.since_decision = 1;  // a window of the baseline, not of the confirmed config
  loop.ctx.role = AgentRole::Speculator;
  EXPECT_FALSE(digest(loop.ctx).actor_view);
  loop.ctx.since_decision = 2;
  PolicyInput in = digest(loop.ctx);
  ASSERT_TRUE(in.actor_view);
  EXPECT_EQ(in.actor_view->windows, 3u);
  loop.ctx.role = AgentRole::Actor;
  EXPECT_FALSE(digest(loop.ctx).actor_view);
}

// The request-size prior: with a sleeping target the first step is
// task.slice_us = kSliceBurstFactor x the measured burst (~300 us in the sim);
// a CPU-bound target has no burst and gets no such step.
TEST(SlicePrior, FirstStepIsJustAboveTheBurstOnlyForSleepingTargets) {
  Loop loop(SimWorkload::periodic_vs_hogs(), 2);
  loop.measure(3);
  PolicyInput in = digest(loop.ctx);
  ASSERT_TRUE(in.burst_us);
  EXPECT_NEAR(*in.burst_us, 300, 30);
  AgentReply r = BuiltinSpeculatorPolicy{}.propose(in);
  ASSERT_FALSE(r.candidates.empty());
  EXPECT_NEAR(static_cast<double>(r.candidates[0].config.at(kSlice)), kSliceBurstFactor * 300,
              0.15 * kSliceBurstFactor * 300);

  Loop cpu(SimWorkload::sysbench_like(), 2);
  cpu.measure(3);
  PolicyInput cin = digest(cpu.ctx);
  EXPECT_FALSE(cin.burst_us);
  for (const auto& c : BuiltinSpeculatorPolicy{}.propose(cin).candidates)
    EXPECT_EQ(c.rationale.find("burst"), std::string::npos) << c.rationale;
}

// The floor: once the config in force served a window near the burst, neither
// role explores further; above the floor they keep searching.
TEST(SlicePrior, AtTheFloorNobodyExplores) {
  Loop loop(SimWorkload::periodic_vs_hogs(), 3);
  loop.measure(2);
  loop.ctx.current[kSlice] = 400;  // the valley: p95 ~335 us, floor 1.3 x 300 us
  loop.ctx.confirmed = loop.ctx.current;
  loop.ctx.since_decision = loop.ctx.history.size();
  loop.measure(3);
  loop.ctx.role = AgentRole::Actor;
  AgentReply actor = BuiltinActorPolicy{}.propose(loop.ctx);
  ASSERT_EQ(actor.candidates.size(), 1u);
  EXPECT_EQ(actor.candidates[0].config.at(kSlice), 400);
  EXPECT_NE(actor.candidates[0].rationale.find("floor"), std::string::npos);
  loop.ctx.role = AgentRole::Speculator;
  for (const auto& c : BuiltinSpeculatorPolicy{}.propose(loop.ctx).candidates)
    EXPECT_EQ(c.config.at(kSlice), 400) << c.rationale;

  Loop far(SimWorkload::periodic_vs_hogs(), 3);
  far.measure(2);
  far.ctx.current[kSlice] = 1000;  // ~1.8 ms: far above the floor
  far.ctx.confirmed = far.ctx.current;
  far.measure(3);
  far.ctx.role = AgentRole::Actor;
  AgentReply explore = BuiltinActorPolicy{}.propose(far.ctx);
  ASSERT_FALSE(explore.candidates.empty());
  EXPECT_NE(explore.candidates[0].config.at(kSlice), 1000);
}
