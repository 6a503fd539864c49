// MetricsCollector: counters from audit-trail events, gauges from the status
// snapshot, cumulative histograms from windows.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "observe/metrics_collector.h"

namespace specact::observe {
namespace {

using nlohmann::json;

StatusSnapshot running_status() {
  StatusSnapshot st;
  st.state = "running";
  st.mode = "speculative";
  st.current = {{"task.nice", -5}, {"task.slice_us", 400}};
  st.confirmed = {{"task.nice", 0}, {"task.slice_us", 400}};
  st.baseline = {{"task.nice", 0}, {"task.slice_us", 3000}};
  st.pinned = {"task.slice_us"};
  st.hit_rate = 0.75;
  st.baseline_p95_us = 3470;
  st.warnings = {"history: cannot append"};
  st.last_window = {
      {"window", 7},
      {"metric", "service_p95"},
      {"objective_us", 390.5},
      {"service", {{"p50_us", 120.0}, {"p95_us", 390.5}, {"p99_us", 1500.0}, {"count", 900}}},
      {"runq", {{"p50_us", 3.0}, {"p95_us", 9.0}, {"p99_us", 20.0}, {"count", 950}}}};
  return st;
}

TEST(Collector, GaugesComeFromTheStatus) {
  MetricsCollector c("0.1.0", 100, "service_p95");
  MetricsSnapshot s = c.snapshot(running_status());
  EXPECT_EQ(s.state, "running");
  EXPECT_EQ(s.mode, "speculative");
  ASSERT_TRUE(s.window_index);
  EXPECT_EQ(*s.window_index, 7u);
  ASSERT_TRUE(s.objective_p95_seconds);
  EXPECT_DOUBLE_EQ(*s.objective_p95_seconds, 390.5e-6);
  EXPECT_DOUBLE_EQ(*s.objective_p50_seconds, 120e-6);
  EXPECT_DOUBLE_EQ(*s.objective_p99_seconds, 1500e-6);
  EXPECT_DOUBLE_EQ(*s.baseline_p95_seconds, 3470e-6);
  EXPECT_DOUBLE_EQ(s.hit_ratio, 0.75);
  EXPECT_EQ(s.warnings, 1u);
  EXPECT_EQ(s.knobs.at("task.nice").current, -5);
  EXPECT_EQ(s.knobs.at("task.nice").confirmed, 0);
  EXPECT_EQ(s.knobs.at("task.slice_us").baseline, 3000);
  EXPECT_TRUE(s.knobs.at("task.slice_us").pinned);
  EXPECT_FALSE(s.knobs.at("task.nice").pinned);
}

TEST(Collector, RunqObjectiveTakesTheRunqPercentilesAndCommandOnlyAP95) {
  MetricsCollector c("0.1.0", 100, "runq_p95");
  StatusSnapshot st = running_status();
  st.last_window["metric"] = "runq_p95";
  st.last_window["objective_us"] = 9.0;
  MetricsSnapshot s = c.snapshot(st);
  EXPECT_DOUBLE_EQ(*s.objective_p50_seconds, 3e-6);
  EXPECT_DOUBLE_EQ(*s.objective_p99_seconds, 20e-6);

  st.last_window["metric"] = "command";
  st.last_window["objective_us"] = 24400.0;
  s = c.snapshot(st);
  EXPECT_DOUBLE_EQ(*s.objective_p95_seconds, 0.0244);
  EXPECT_FALSE(s.objective_p50_seconds);
  EXPECT_FALSE(s.objective_p99_seconds);
}

TEST(Collector, AWindowWithoutObjectiveHasNoPercentiles) {
  MetricsCollector c("0.1.0", 100, "service_p95");
  StatusSnapshot st = running_status();
  st.last_window["objective_us"] = nullptr;
  MetricsSnapshot s = c.snapshot(st);
  EXPECT_FALSE(s.objective_p95_seconds);
  EXPECT_FALSE(s.objective_p50_seconds);
  EXPECT_TRUE(s.window_index);
}

TEST(Collector, StoppedShowsNoKnobsOrWindow) {
  MetricsCollector c("0.1.0", 100, "service_p95");
  StatusSnapshot st = running_status();
  st.state = "stopped";
  MetricsSnapshot s = c.snapshot(st);
  EXPECT_TRUE(s.knobs.empty());
  EXPECT_FALSE(s.objective_p95_seconds);
  EXPECT_FALSE(s.window_index);
}

TEST(Collector, DecisionsAndAgentUseAreCountedFromEvents) {
  MetricsCollector c("0.1.0", 100, "service_p95");
  for (const json& e : {
           json{{"type", "window"}},
           json{{"type", "window"}},
           json{{"type", "applied"}, {"who", "speculator"}, {"kind", "provisional"}},
           json{{"type", "applied"}, {"who", "speculator"}},
           json{{"type", "applied"}, {"who", "somebody\nnew"}},  // bounded: "other"
           json{{"type", "confirmed"}, {"who", "actor"}, {"hit", true}},
           json{{"type", "confirmed"}, {"who", "engine"}, {"hit", false}},
           json{{"type", "overridden"}, {"who", "actor"}},
           json{{"type", "reverted"}, {"who", "safety"}, {"miss", true}},
           json{{"type", "reverted"}, {"who", "user"}, {"miss", false}},
           json{{"type", "yielded"}, {"knob", "task.nice"}},
           json{{"type", "agent_called"}, {"role", "speculator"}},
           json{{"type", "agent_called"}, {"role", "actor"}},
           json{
               {"type", "agent_reply"},
               {"role", "actor"},
               {"error", ""},
               {"rejected", 2},
               {"usage", {{"prompt_tokens", 1000}, {"completion_tokens", 50}, {"cost_usd", 0.01}}}},
           json{{"type", "agent_reply"},
                {"role", "actor"},
                {"error", "timeout"},
                {"rejected", 0},
                {"usage", {{"prompt_tokens", 10}, {"completion_tokens", 0}, {"cost_usd", 0.001}}}},
           json{{"type", "agent_reply"}, {"role", "actor"}, {"usage", "not an object"}},
           json{{"type", "apply_error"}, {"error", "EPERM"}},
           json{{"type", 5}},
           json("not an object"),
       })
    c.on_event(e);
  MetricsSnapshot s = c.snapshot(running_status());
  EXPECT_EQ(s.windows_total, 2u);
  using K = std::pair<std::string, std::string>;
  EXPECT_EQ(s.decisions[K("applied", "speculator")], 2u);
  EXPECT_EQ(s.decisions[K("applied", "other")], 1u);
  EXPECT_EQ(s.decisions[K("confirmed", "actor")], 1u);
  EXPECT_EQ(s.decisions[K("confirmed", "engine")], 1u);
  EXPECT_EQ(s.decisions[K("overridden", "actor")], 1u);
  EXPECT_EQ(s.decisions[K("reverted", "safety")], 1u);
  EXPECT_EQ(s.decisions[K("reverted", "user")], 1u);
  EXPECT_EQ(s.decisions[K("yielded", "external")], 1u);
  EXPECT_EQ(s.speculation_hits, 1u);
  EXPECT_EQ(s.speculation_misses, 2u);  // overridden + safety revert
  EXPECT_EQ(s.agents["speculator"].calls, 1u);
  EXPECT_EQ(s.agents["actor"].calls, 1u);
  EXPECT_EQ(s.agents["actor"].errors, 1u);
  EXPECT_EQ(s.agents["actor"].rejected, 2u);
  EXPECT_EQ(s.agents["actor"].prompt_tokens, 1010u);
  EXPECT_EQ(s.agents["actor"].completion_tokens, 50u);
  EXPECT_NEAR(s.agents["actor"].cost_usd, 0.011, 1e-12);
  EXPECT_EQ(s.apply_errors, 1u);
}

TEST(Collector, HistogramsAreCumulativeOverWindowsWithExactBounds) {
  MetricsCollector c("0.1.0", 100, "service_p95");
  Window w1, w2;
  w1.service_hist.record(1000, 3);           // 1 us: below the first bound (4.096 us)
  w1.service_hist.record(100'000, 2);        // 100 us: <= 131.072 us (2^17 ns)
  w1.service_hist.record(131'071, 1);        // just below 2^17 ns
  w1.service_hist.record(131'072, 1);        // 2^17 exactly: the next bound's
  w2.service_hist.record(5'000'000'000, 1);  // 5 s: only +Inf
  w2.runq_hist.record(2000, 4);
  c.on_window(w1);
  c.on_window(w2);
  MetricsSnapshot s = c.snapshot(running_status());
  const LatencyHistogram& h = s.service_latency;
  ASSERT_EQ(h.buckets.size(), static_cast<size_t>(MetricsCollector::kBounds));
  EXPECT_DOUBLE_EQ(h.buckets.front().first, 4096e-9);
  EXPECT_DOUBLE_EQ(h.buckets.back().first, 1073741824e-9);
  auto at = [&](double le) {
    for (const auto& [bound, n] : h.buckets)
      if (bound == le) return n;
    ADD_FAILURE() << "no bound " << le;
    return uint64_t{0};
  };
  EXPECT_EQ(at(4096e-9), 3u);
  EXPECT_EQ(at(65536e-9), 3u);
  EXPECT_EQ(at(131072e-9), 6u);
  EXPECT_EQ(at(262144e-9), 7u);
  EXPECT_EQ(h.buckets.back().second, 7u);
  EXPECT_EQ(h.count, 8u);
  for (size_t i = 1; i < h.buckets.size(); ++i)
    EXPECT_GE(h.buckets[i].second, h.buckets[i - 1].second);
  // The sum is estimated from bucket midpoints: within a bucket's width.
  const double exact = (3 * 1000 + 2 * 100'000 + 131'071 + 131'072 + 5'000'000'000.0) / 1e9;
  EXPECT_NEAR(h.sum_seconds, exact, exact * 0.07);
  EXPECT_EQ(s.runq_latency.count, 4u);
  EXPECT_EQ(s.runq_latency.buckets.front().second, 4u);
}

}  // namespace
}  // namespace specact::observe
