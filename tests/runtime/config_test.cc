// The daemon config: every section parses, and bad input names its key path.
#include <gtest/gtest.h>

#include "runtime/run_config.h"

namespace specact {
namespace {

using nlohmann::json;

std::string error_of(const json& j) {
  try {
    RunConfig::from_json(j);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(RunConfig, FullConfigParses) {
  json j = R"({
    "_comment": "keys starting with _ are comments",
    "target": {"pid": 1},
    "background": {"comm": "^stress"},
    "objective": {"metric": "command", "command": "sysbench cpu run", "stream": true,
                  "p95_scale_to_us": 1000, "min_samples": 30},
    "window_ms": 500,
    "mode": "actor-only",
    "knobs": {"allow": ["task.*"], "min_interval_ms": 100},
    "speculator": {"backend": "builtin", "delay_ms": 1000, "top_k": 3},
    "actor": {"backend": "builtin", "delay_ms": 10000},
    "safety": {"margin": 0.2, "windows": 3, "throughput_floor": 0.8},
    "budgets": {"speculator_tokens": 100000, "actor_tokens": 50000},
    "engine": {"converge_after": 3, "max_backoff": 8, "seed": 42},
    "state_dir": "/tmp/specact-config-test",
    "dbus": {"enabled": false},
    "log_level": "debug"
  })"_json;
  RunConfig c = RunConfig::from_json(j);
  ASSERT_TRUE(c.target);
  EXPECT_EQ(c.target->pids.at(0), 1);
  EXPECT_EQ(c.metric, Metric::CommandP95);
  ASSERT_TRUE(c.command);
  EXPECT_TRUE(c.command->stream);
  EXPECT_EQ(c.min_samples, 30u);
  EXPECT_EQ(c.window_ms, 500);
  EXPECT_EQ(c.engine.mode, engine::Mode::ActorOnly);
  EXPECT_EQ(c.engine.metric, Metric::CommandP95);
  EXPECT_EQ(c.engine.speculator_top_k, 3);
  EXPECT_DOUBLE_EQ(c.engine.safety_margin, 0.2);
  EXPECT_EQ(c.engine.safety_windows, 3);
  EXPECT_DOUBLE_EQ(c.engine.throughput_floor, 0.8);
  EXPECT_EQ(c.engine.speculator_token_budget, 100000u);
  EXPECT_EQ(c.engine.actor_token_budget, 50000u);
  EXPECT_EQ(c.engine.converge_after, 3);
  EXPECT_EQ(c.engine.seed, 42u);
  EXPECT_EQ(c.state_dir, "/tmp/specact-config-test");
  EXPECT_EQ(c.knobs.state_dir, "/tmp/specact-config-test");  // inherited
  ASSERT_TRUE(c.knobs.background);
  EXPECT_FALSE(c.dbus.enabled);
  EXPECT_EQ(c.log_level, "debug");
}

TEST(RunConfig, DefaultsAndNullTarget) {
  RunConfig c = RunConfig::from_json(json::parse(R"({"target": null})"));
  EXPECT_FALSE(c.target);
  EXPECT_EQ(c.window_ms, 1000);
  EXPECT_EQ(c.engine.mode, engine::Mode::Speculative);
  EXPECT_EQ(c.metric, Metric::ServiceP95);
  EXPECT_EQ(c.state_dir, "/var/lib/specactd");
  EXPECT_TRUE(c.dbus.enabled);
  EXPECT_FALSE(c.dbus.required);
}

TEST(RunConfig, BadInputNamesTheKeyPath) {
  struct Case {
    const char* json;
    const char* expect;  // substring of the error
  };
  const Case cases[] = {
      {R"({"windw_ms": 1000})", "windw_ms: unknown key"},
      {R"({"window_ms": "1000"})", "window_ms: expected an integer, got string"},
      {R"({"window_ms": 1.5})", "window_ms: expected an integer, got number"},
      {R"({"window_ms": 10})", "window_ms: 10 is outside"},
      {R"({"mode": "fast"})", "mode: 'fast' is not one of"},
      {R"({"mode": 3})", "mode: expected a string"},
      {R"({"target": 12})", "target: expected an object"},
      {R"({"target": {"pid": "x"}})", "target:"},
      {R"({"objective": {"metric": "p99"}})", "objective.metric: 'p99'"},
      {R"({"objective": {"metric": "command"}})", "objective.command: required"},
      {R"({"objective": {"metric": "command", "command": "x", "p95_regex": "("}})",
       "objective.p95_regex: malformed"},
      {R"({"objective": {"command": "x"}})", "objective: command"},
      {R"({"objective": {"metrc": "service_p95"}})", "objective.metrc: unknown key"},
      {R"({"safety": {"margin": -1}})", "safety.margin: -1 is outside"},
      {R"({"safety": {"windows": true}})", "safety.windows: expected an integer, got boolean"},
      {R"({"safety": {"throughput_floor": 2}})", "safety.throughput_floor"},
      {R"({"budgets": {"speculator": 5}})", "budgets.speculator: unknown key"},
      {R"({"budgets": {"actor_tokens": -5}})", "budgets.actor_tokens: -5 is outside"},
      {R"({"engine": {"backoff": 2}})", "engine.backoff: unknown key"},
      {R"({"dbus": {"enabled": "yes"}})", "dbus.enabled: expected true or false"},
      {R"({"state_dir": ""})", "state_dir: must not be empty"},
      {R"({"log_level": "loud"})", "log_level: 'loud'"},
      {R"({"knobs": {"alow": []}})", "knobs.alow"},
      {R"({"knobs": 5})", "knobs: expected an object"},
      {R"({"speculator": {"backend": "gpt"}})", "speculator.backend"},
      {R"({"actor": {"backend": "builtin", "delay_ms": "slow"}})", "actor.delay_ms"},
      {R"({"background": {"pid": 1}, "knobs": {"background": {"pid": 2}}})",
       "background: given twice"},
      {R"([1, 2])", "expected an object"},
  };
  for (const auto& c : cases) {
    std::string err = error_of(json::parse(c.json));
    EXPECT_NE(err.find(c.expect), std::string::npos)
        << "config " << c.json << "\n  error: '" << err << "'\n  wanted: '" << c.expect << "'";
  }
}

}  // namespace
}  // namespace specact
