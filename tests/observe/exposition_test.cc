// The exposition renderer: names, types, labels and escaping by the text
// format's rules, and promtool (Prometheus's own linter) accepting the output.
#include "observe/exposition.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "observe_test_util.h"

namespace specact::observe {
namespace {

MetricsSnapshot example() {
  MetricsSnapshot s;
  s.version = "0.1.0";
  s.start_time_seconds = 1700000000.5;
  s.state = "running";
  s.mode = "speculative";
  s.objective_metric = "service_p95";
  s.window_index = 12;
  s.objective_p50_seconds = 0.000125;
  s.objective_p95_seconds = 0.000319;
  s.objective_p99_seconds = 0.0021;
  s.baseline_p95_seconds = 0.00347;
  s.hit_ratio = 0.5;
  s.knobs["task.nice"] = {-10, 0, 0, false};
  s.knobs["task.slice_us"] = {1400, 1400, 3000, true};
  s.windows_total = 40;
  s.decisions[{"applied", "speculator"}] = 3;
  s.decisions[{"reverted", "safety"}] = 1;
  s.speculation_hits = 2;
  s.speculation_misses = 1;
  s.agents["speculator"] = {10, 1, 2, 1000, 200, 0.25};
  s.agents["actor"] = {2, 0, 0, 5000, 900, 1.5, 4096};
  s.apply_errors = 1;
  s.service_latency = {{{0.001, 5}, {0.002, 9}}, 10, 0.0123};
  s.runq_latency = {{{0.001, 0}, {0.002, 0}}, 0, 0};
  return s;
}

TEST(Exposition, EveryFamilyHasHelpAndTypeAndTheSamplesTheSnapshotHolds) {
  const std::string text = render_exposition(example());
  for (const char* family :
       {"specact_build_info gauge", "specact_state gauge", "specact_mode gauge",
        "specact_objective_p95_seconds gauge", "specact_knob_value gauge",
        "specact_decisions_total counter", "specact_agent_tokens_total counter",
        "specact_agent_cost_usd_total counter", "specact_windows_total counter",
        "specact_service_latency_seconds histogram", "specact_runq_latency_seconds histogram"}) {
    EXPECT_NE(text.find(std::string("# TYPE ") + family + "\n"), std::string::npos) << family;
    const std::string name(family, std::string(family).find(' '));
    EXPECT_NE(text.find("# HELP " + name + " "), std::string::npos) << name;
  }
  for (const char* line : {
           "specact_build_info{version=\"0.1.0\"} 1\n",
           "specact_start_time_seconds 1700000000.5\n",
           "specact_state{state=\"running\"} 1\n",
           "specact_state{state=\"paused\"} 0\n",
           "specact_mode{mode=\"speculative\"} 1\n",
           "specact_window_index 12\n",
           "specact_objective_p50_seconds{metric=\"service_p95\"} 0.000125\n",
           "specact_objective_p95_seconds{metric=\"service_p95\"} 0.000319\n",
           "specact_objective_p99_seconds{metric=\"service_p95\"} 0.0021\n",
           "specact_baseline_p95_seconds{metric=\"service_p95\"} 0.00347\n",
           "specact_knob_value{knob=\"task.nice\",config=\"current\"} -10\n",
           "specact_knob_value{knob=\"task.slice_us\",config=\"baseline\"} 3000\n",
           "specact_knob_pinned{knob=\"task.slice_us\"} 1\n",
           "specact_knob_pinned{knob=\"task.nice\"} 0\n",
           "specact_windows_total 40\n",
           "specact_decisions_total{kind=\"applied\",role=\"speculator\"} 3\n",
           "specact_decisions_total{kind=\"reverted\",role=\"safety\"} 1\n",
           // Known pairs exist at 0 before their first decision.
           "specact_decisions_total{kind=\"overridden\",role=\"actor\"} 0\n",
           "specact_speculations_total{outcome=\"hit\"} 2\n",
           "specact_speculation_hit_ratio 0.5\n",
           "specact_agent_calls_total{role=\"speculator\"} 10\n",
           "specact_agent_tokens_total{role=\"actor\",type=\"prompt\"} 5000\n",
           "specact_agent_tokens_total{role=\"actor\",type=\"completion\"} 900\n",
           "specact_agent_cached_prompt_tokens_total{role=\"actor\"} 4096\n",
           "specact_agent_cost_usd_total{role=\"actor\"} 1.5\n",
           "specact_agent_errors_total{role=\"speculator\"} 1\n",
           "specact_apply_errors_total 1\n",
           "specact_service_latency_seconds_bucket{le=\"0.001\"} 5\n",
           "specact_service_latency_seconds_bucket{le=\"+Inf\"} 10\n",
           "specact_service_latency_seconds_sum 0.0123\n",
           "specact_service_latency_seconds_count 10\n",
       })
    EXPECT_NE(text.find(line), std::string::npos) << "missing: " << line << "in\n" << text;
}

TEST(Exposition, GaugesWithoutAValueHaveNoSample) {
  MetricsSnapshot s = example();
  s.window_index.reset();
  s.objective_p50_seconds.reset();
  s.objective_p95_seconds.reset();
  s.objective_p99_seconds.reset();
  s.baseline_p95_seconds.reset();
  const std::string text = render_exposition(s);
  EXPECT_NE(text.find("# TYPE specact_objective_p95_seconds gauge"), std::string::npos);
  EXPECT_EQ(text.find("specact_objective_p95_seconds{"), std::string::npos) << text;
  EXPECT_EQ(text.find("\nspecact_window_index "), std::string::npos) << text;
}

TEST(Exposition, AnUnknownStateIsShownBesideTheKnownOnes) {
  MetricsSnapshot s = example();
  s.state = "draining";
  const std::string text = render_exposition(s);
  EXPECT_NE(text.find("specact_state{state=\"draining\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("specact_state{state=\"running\"} 0\n"), std::string::npos);
}

TEST(Exposition, LabelValuesAreEscaped) {
  EXPECT_EQ(escape_label_value("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
  MetricsSnapshot s = example();
  s.knobs["sysctl.odd\"name\\x\n"] = {1, 1, 1, false};
  const std::string text = render_exposition(s);
  EXPECT_NE(
      text.find("specact_knob_value{knob=\"sysctl.odd\\\"name\\\\x\\n\",config=\"current\"} 1"),
      std::string::npos)
      << text;
}

TEST(Exposition, ValuesReadBackExactly) {
  EXPECT_EQ(format_sample_value(0.1), "0.1");
  EXPECT_EQ(format_sample_value(1e-06), "1e-06");
  EXPECT_EQ(format_sample_value(3), "3");
  EXPECT_EQ(format_sample_value(std::numeric_limits<double>::quiet_NaN()), "NaN");
  EXPECT_EQ(format_sample_value(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(format_sample_value(-std::numeric_limits<double>::infinity()), "-Inf");
  const double tricky = 0.000524288;
  EXPECT_EQ(std::stod(format_sample_value(tricky)), tricky);
}

TEST(Exposition, PromtoolAcceptsTheOutput) {
  SPECACT_REQUIRE_PROGRAM("promtool");
  for (const MetricsSnapshot& s : {example(), MetricsSnapshot{}}) {
    PromtoolResult r = promtool_check_metrics(render_exposition(s));
    EXPECT_EQ(r.exit_code, 0) << r.output << "\n" << render_exposition(s);
    // promtool also lints names and help; it prints nothing when all is well.
    EXPECT_EQ(r.output, "") << render_exposition(s);
  }
}

}  // namespace
}  // namespace specact::observe
