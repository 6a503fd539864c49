// The daemon config: every section parses, and bad input names its key path.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "runtime/run_config.h"
#include "subprocess.h"
#include "test_support.h"

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
    "allow_init_and_self": true,
    "max_target_pids": 100,
    "background": {"comm": "^stress"},
    "objective": {"metric": "command", "command": "sysbench cpu run", "stream": true,
                  "p95_scale_to_us": 1000, "min_samples": 30},
    "window_ms": 500,
    "mode": "actor-only",
    "knobs": {"allow": ["task.*"], "min_interval_ms": 100},
    "speculator": {"backend": "builtin", "delay_ms": 1000, "top_k": 3},
    "actor": {"backend": "builtin", "delay_ms": 10000},
    "safety": {"margin": 0.2, "windows": 3, "throughput_floor": 0.8},
    "budgets": {"speculator_tokens": 100000, "actor_tokens": 50000, "actor_usd": 2.5,
                "speculator_tokens_per_hour": 40000, "actor_usd_per_hour": 0.5},
    "engine": {"converge_after": 3, "max_backoff": 8, "seed": 42, "window_price_usd": 0.001,
               "selective_launch": false},
    "state_dir": "/tmp/specact-config-test",
    "dbus": {"enabled": false},
    "log_level": "debug"
  })"_json;
  RunConfig c = RunConfig::from_json(j);
  ASSERT_TRUE(c.target);
  EXPECT_EQ(c.target->pids.at(0), 1);
  EXPECT_TRUE(c.target_policy.allow_init_and_self);
  EXPECT_EQ(c.target_policy.max_pids, 100u);
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
  EXPECT_DOUBLE_EQ(c.engine.evidence.throughput_floor, 0.8);
  EXPECT_EQ(c.engine.speculator_token_budget, 100000u);
  EXPECT_EQ(c.engine.actor_token_budget, 50000u);
  EXPECT_DOUBLE_EQ(c.engine.actor_budget.usd, 2.5);
  EXPECT_EQ(c.engine.speculator_budget.tokens_per_hour, 40000u);
  EXPECT_DOUBLE_EQ(c.engine.actor_budget.usd_per_hour, 0.5);
  EXPECT_EQ(c.engine.speculator_budget.usd_per_hour, 0.0);
  EXPECT_DOUBLE_EQ(c.engine.window_price_usd, 0.001);
  EXPECT_FALSE(c.engine.selective_launch);
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
  EXPECT_FALSE(c.metrics.any());  // no endpoint, no textfile unless configured
  EXPECT_TRUE(c.warm_start.enabled);
  EXPECT_EQ(c.warm_start.match_decades, 0.5);
  EXPECT_EQ(c.warm_start.max_entries, 64u);
  c = RunConfig::from_json(json::parse(
      R"({"warm_start": {"enabled": false, "match_decades": 0.25, "max_entries": 8}})"));
  EXPECT_FALSE(c.warm_start.enabled);
  EXPECT_EQ(c.warm_start.match_decades, 0.25);
  EXPECT_EQ(c.warm_start.max_entries, 8u);
}

// The configs the project ships are accepted by the parser that will read them.
TEST(RunConfig, ShippedConfigsParse) {
  for (const char* file : {"/systemd/specactd.json", "/deploy/kubernetes/specactd.json"}) {
    SCOPED_TRACE(file);
    RunConfig c = RunConfig::from_file(std::string(SPECACT_SOURCE_DIR) + file);
    EXPECT_EQ(c.state_dir, "/var/lib/specactd");
  }
  RunConfig k8s = RunConfig::from_file(SPECACT_SOURCE_DIR "/deploy/kubernetes/specactd.json");
  ASSERT_TRUE(k8s.metrics.listen);
  EXPECT_TRUE(k8s.metrics.listen->address.is_unspecified());  // the pod's own interfaces
  EXPECT_FALSE(k8s.dbus.enabled);
}

TEST(RunConfig, MetricsSection) {
  RunConfig c = RunConfig::from_json(json::parse(R"({"metrics": {"listen": "127.0.0.1:9477",
      "textfile": "/var/lib/prometheus/node-exporter/specact.prom", "max_connections": 2,
      "timeout_ms": 2000}})"));
  ASSERT_TRUE(c.metrics.listen);
  EXPECT_EQ(c.metrics.listen->to_string(), "127.0.0.1:9477");
  EXPECT_EQ(c.metrics.textfile, "/var/lib/prometheus/node-exporter/specact.prom");
  EXPECT_EQ(c.metrics.max_connections, 2u);
  EXPECT_EQ(c.metrics.timeout_ms, 2000);
  // Every interface only when asked for, in either order of the keys.
  c = RunConfig::from_json(
      json::parse(R"({"metrics": {"listen": "[::]:9477", "allow_wildcard": true}})"));
  ASSERT_TRUE(c.metrics.listen);
  EXPECT_TRUE(c.metrics.listen->address.is_unspecified());
  c = RunConfig::from_json(json::parse(R"({"metrics": {"listen": null, "textfile": null}})"));
  EXPECT_FALSE(c.metrics.any());
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
      {R"({"budgets": {"actor_usd": -1}})", "budgets.actor_usd: -1 is outside"},
      {R"({"budgets": {"speculator_tokens_per_hour": 1.5}})", "budgets.speculator_tokens_per_hour"},
      {R"({"engine": {"selective_launch": 1}})", "engine.selective_launch"},
      {R"({"budgets": {"actor_tokens": -5}})", "budgets.actor_tokens: -5 is outside"},
      {R"({"engine": {"backoff": 2}})", "engine.backoff: unknown key"},
      {R"({"dbus": {"enabled": "yes"}})", "dbus.enabled: expected true or false"},
      {R"({"state_dir": ""})", "state_dir: must not be empty"},
      {R"({"log_level": "loud"})", "log_level: 'loud'"},
      {R"({"knobs": {"alow": []}})", "knobs.alow"},
      {R"({"knobs": 5})", "knobs: expected an object"},
      {R"({"speculator": {"backend": "gpt"}})", "speculator.backend"},
      {R"({"actor": {"backend": "builtin", "delay_ms": "slow"}})", "actor.delay_ms"},
      {R"({"background": {"pid": 3}, "knobs": {"background": {"pid": 2}}})",
       "background: given twice"},
      {R"({"target": {"pid": 4294967297}})", "target: target.pid: 4294967297 is not a valid pid"},
      {R"({"target": {"pids": [12, 4294967297]}})", "is not a valid pid"},
      {R"({"target": {"pid": 1}})", "target: pid 1 (init) is refused"},
      {R"({"background": {"pid": 1}})", "background: pid 1 (init) is refused"},
      {R"({"target": {"pid": 1}, "allow_init_and_self": "yes"})",
       "allow_init_and_self: expected true or false"},
      {R"({"max_target_pids": 0})", "max_target_pids: 0 is outside"},
      {R"({"target": {"pids": [2, 3, 4]}, "max_target_pids": 2})", "the limit is 2"},
      {R"({"target": {"comm": "(a)\\1"}})", "target: malformed comm regex"},
      {R"([1, 2])", "expected an object"},
      {R"({"metrics": {"listen": "0.0.0.0:9477"}})",
       "metrics.listen: 0.0.0.0:9477 listens on every"},
      {R"({"metrics": {"listen": "[::]:9477"}})", "set metrics.allow_wildcard to true"},
      {R"({"metrics": {"listen": "localhost:9477"}})",
       "metrics.listen: 'localhost' is not a numeric"},
      {R"({"metrics": {"listen": "127.0.0.1"}})", "metrics.listen: '127.0.0.1' has no port"},
      {R"({"metrics": {"listen": 9477}})", "metrics.listen: expected a string"},
      {R"({"metrics": {"listen": "127.0.0.1:9477", "allow_wildcard": 1}})",
       "metrics.allow_wildcard: expected true or false"},
      {R"({"metrics": {"textfile": "specact.prom"}})",
       "metrics.textfile: 'specact.prom' must be an absolute"},
      {R"({"metrics": {"textfile": "/var/lib/node/specact.txt"}})", "must end in .prom"},
      {R"({"metrics": {"max_connections": 0}})", "metrics.max_connections: 0 is outside [1, 1024]"},
      {R"({"metrics": {"timeout_ms": 5}})", "metrics.timeout_ms: 5 is outside"},
      {R"({"metrics": {"port": 9477}})", "metrics.port: unknown key"},
      {R"({"warm_start": {"enabled": "yes"}})", "warm_start.enabled: expected true or false"},
      {R"({"warm_start": {"match_decades": -1}})", "warm_start.match_decades: -1 is outside"},
      {R"({"warm_start": {"max_entries": 0}})", "warm_start.max_entries: 0 is outside [1, 1024]"},
      {R"({"warm_start": {"signature": 1}})", "warm_start.signature: unknown key"},
  };
  for (const auto& c : cases) {
    std::string err = error_of(json::parse(c.json));
    EXPECT_NE(err.find(c.expect), std::string::npos)
        << "config " << c.json << "\n  error: '" << err << "'\n  wanted: '" << c.expect << "'";
  }
}

TEST(RunConfig, ConfigOfTheDaemonItselfIsRefused) {
  std::string err = error_of({{"target", {{"pid", getpid()}}}});
  EXPECT_NE(err.find("is specactd itself"), std::string::npos) << err;
  RunConfig ok = RunConfig::from_json(
      {{"target", {{"pids", {getpid(), 1, getpid()}}}}, {"allow_init_and_self", true}});
  EXPECT_EQ(ok.target->pids.size(), 2u);  // de-duplicated
}

TEST(RunConfig, NumbersBeyondDoubleAreAConfigError) {
  try {
    RunConfig::from_text(R"({"safety":{"margin":1e400}})");
    FAIL() << "1e400 must be refused";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("not valid JSON"), std::string::npos) << e.what();
  }
  EXPECT_THROW(RunConfig::from_text("{"), ConfigError);
  EXPECT_THROW(RunConfig::from_text("\xff\xfe"), ConfigError);
  EXPECT_THROW(RunConfig::read_json_file("/"), ConfigError);
  EXPECT_THROW(RunConfig::read_json_file("/nonexistent/specact.json"), ConfigError);
}

// Hostile comm patterns through the config: refused or accepted, never a hang
// or a crash of the parser.
TEST(RunConfig, HostilePatternsAreBounded) {
  const std::string deep = std::string(20'000, '(') + "a" + std::string(20'000, ')');
  EXPECT_NE(error_of({{"target", {{"comm", std::string(100'000, 'a')}}}}).find("limit is 1024"),
            std::string::npos);
  EXPECT_NE(error_of({{"target", {{"comm", deep}}}}).find("limit is 1024"), std::string::npos);
  EXPECT_NE(
      error_of({{"objective", {{"metric", "command"}, {"command", "x"}, {"p95_regex", deep}}}})
          .find("objective.p95_regex: 40001 bytes"),
      std::string::npos);
  EXPECT_NO_THROW(RunConfig::from_json({{"target", {{"comm", "(.*)*(.*)*(.*)*(.*)*x$"}}}}));
}

// ---- the real specactd binary ------------------------------------------------

struct Outcome {
  int code = -1;  // -1: still running at the deadline (killed)
  double seconds = 0;
  std::string output;
};

Outcome run_daemon(const std::vector<std::string>& args, int timeout_ms,
                   int sigterm_after_ms = -1) {
  using Clock = std::chrono::steady_clock;
  std::vector<std::string> argv = {SPECACTD_BIN};
  argv.insert(argv.end(), args.begin(), args.end());
  testing::Subprocess d(argv, /*merge_stderr=*/true);
  auto t0 = Clock::now();
  auto ms = [&] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
  };
  Outcome o;
  bool signalled = false;
  std::string line;
  while (ms() < timeout_ms) {
    if (d.read_line(line, 20)) o.output += line + "\n";
    if (!signalled && sigterm_after_ms >= 0 && ms() >= sigterm_after_ms) {
      d.signal(SIGTERM);
      signalled = true;
      t0 = Clock::now();  // from here on, the time to answer SIGTERM
    }
    int rc = d.wait(0);
    if (rc >= 0) {
      o.code = rc;
      o.seconds = ms() / 1000.0;
      o.output += d.drain_stdout();
      return o;
    }
  }
  o.output += "(killed at the deadline)";
  return o;  // the Subprocess destructor stops it by pid
}

class DaemonInput : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/specact-input-XXXXXX";
    dir_ = mkdtemp(tmpl);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string config(const std::string& name, const std::string& text) {
    std::string path = dir_ + "/" + name;
    std::ofstream(path) << text;
    return path;
  }
  std::string base() const {
    return R"("state_dir": ")" + dir_ + R"(/state", "dbus": {"enabled": false})";
  }
  std::string dir_;
};

// Issue 11 item 5: these ended in std::terminate (rc 134).
TEST_F(DaemonInput, UnparsableNumbersAndDirectoriesExitTwo) {
  Outcome big =
      run_daemon({"run", "--config", config("big.json", R"({"safety":{"margin":1e400}})")}, 5000);
  EXPECT_EQ(big.code, 2) << big.output;
  EXPECT_NE(big.output.find("not valid JSON"), std::string::npos) << big.output;
  EXPECT_EQ(big.output.find("terminate"), std::string::npos) << big.output;

  Outcome dir = run_daemon({"run", "--config", dir_}, 5000);
  EXPECT_EQ(dir.code, 2) << dir.output;
  EXPECT_NE(dir.output.find("is a directory"), std::string::npos) << dir.output;

  Outcome bin = run_daemon({"run", "--config", config("bin.json", "\xff\xfe{\"a\"")}, 5000);
  EXPECT_EQ(bin.code, 2) << bin.output;
}

// Issue 11 items 2 and 3 through the config file: refused at once, exit 2.
TEST_F(DaemonInput, HostileTargetsInTheConfigExitTwo) {
  const std::string deep = std::string(20'000, '(') + "a" + std::string(20'000, ')');
  auto comm = [&](const std::string& pattern) {
    return R"({"target": {"comm": ")" + pattern + R"("}, )" + base() + "}";
  };
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"long", comm(std::string(100'000, 'a'))},
      {"deep", comm(deep)},
      {"narrow", R"({"target": {"pid": 4294967297}, )" + base() + "}"},
      {"init", R"({"target": {"pid": 1}, )" + base() + "}"},
  };
  for (const auto& [name, text] : cases) {
    Outcome o =
        run_daemon({"run", "--config", config(name + ".json", text), "--duration", "1"}, 5000);
    EXPECT_EQ(o.code, 2) << name << ": " << o.output;
    EXPECT_LT(o.seconds, 1.0) << name;
    EXPECT_NE(o.output.find("target"), std::string::npos) << name << ": " << o.output;
  }
}

// Issue 11 item 1 through the config: the pattern that pinned a CPU inside
// std::regex; the daemon must still answer SIGTERM promptly.
TEST_F(DaemonInput, BacktrackingCommPatternStillAnswersSigterm) {
  SPECACT_REQUIRE_ROOT_BPF();
  std::string cfg =
      config("hang.json",
             R"({"target": {"comm": "(.*)*(.*)*(.*)*(.*)*x$"}, "window_ms": 200, )" + base() + "}");
  Outcome o = run_daemon({"run", "--config", cfg}, 8000, /*sigterm_after_ms=*/2000);
  EXPECT_GE(o.code, 0) << "did not stop within 6 s of SIGTERM:\n" << o.output;
  EXPECT_LE(o.code, 1) << o.output;
  EXPECT_LT(o.seconds, 1.0) << o.output;
  std::printf("stopped %.3f s after SIGTERM with exit %d\n", o.seconds, o.code);
}

}  // namespace
}  // namespace specact
