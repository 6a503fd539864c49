// The setting the sim suites share: the builtin agents at the paper's timing
// (a 1 s speculator and a 10-15 s actor, 1 s windows) driving the real engine
// on a simulated workload with the knob set a default config has.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "agents/policy.h"
#include "sim_driver.h"

namespace specact::agents_test {

inline constexpr double kActorLatency = 12;
inline constexpr double kSpeculatorLatency = 0.5;
inline constexpr int kWindows = 200;

// The knobs a grid search sweeps (conditional ones cannot matter alone).
inline std::vector<KnobInfo> searched_knobs(const sim::SimWorkload& w) {
  std::vector<KnobInfo> out;
  for (auto& k : sim::full_catalogue(w))
    if (k.effect != KnobEffect::Conditional) out.push_back(k);
  return out;
}

inline engine::EngineOptions sim_options(const sim::SimWorkload& w, engine::Mode mode,
                                         uint64_t seed) {
  engine::EngineOptions o;
  o.mode = mode;
  o.seed = seed;
  o.online_cpus = 2;
  if (w.command_metric) o.metric = Metric::CommandP95;
  return o;
}

inline std::unique_ptr<engine::testing::SimDriver> builtin_driver(const sim::SimWorkload& w,
                                                                  const engine::EngineOptions& o,
                                                                  uint64_t seed) {
  auto d = std::make_unique<engine::testing::SimDriver>(o, w, seed, sim::full_catalogue(w));
  d->speculator = [](const AgentContext& c) { return BuiltinSpeculatorPolicy{}.propose(c); };
  d->actor = [](const AgentContext& c) { return BuiltinActorPolicy{}.propose(c); };
  d->speculator_latency_windows = kSpeculatorLatency;
  d->actor_latency_windows = kActorLatency;
  return d;
}

// Seeds a suite runs: `fallback`, or SPECACT_SIM_SEEDS (1..1000) to tell a
// change from seed luck when a 9-of-10 bar passes or fails by one seed. A
// value that is not such a number fails the test instead of being ignored.
inline int sim_seeds(int fallback) {
  const char* v = std::getenv("SPECACT_SIM_SEEDS");
  if (!v) return fallback;
  char* end = nullptr;
  const long n = std::strtol(v, &end, 10);
  if (end == v || *end != '\0' || n < 1 || n > 1000) {
    ADD_FAILURE() << "SPECACT_SIM_SEEDS=\"" << v << "\": not a number of seeds in 1..1000";
    return fallback;
  }
  return static_cast<int>(n);
}

// Every simulated workload as a gtest parameter, each test named after it:
//   INSTANTIATE_TEST_SUITE_P(SimWorkloads, Suite, sim_workloads(), sim_workload_name);
inline auto sim_workloads() {
  return ::testing::Range(0, static_cast<int>(sim::SimWorkload::all().size()));
}
inline std::string sim_workload_name(const ::testing::TestParamInfo<int>& i) {
  return sim::SimWorkload::all()[static_cast<size_t>(i.param)].name;
}

}  // namespace specact::agents_test
