// BuiltinAgent semantics, AgentConfig parsing, prompts (golden snapshots), the
// factory, and the contract both backends must satisfy.
#include "agents/agents.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/asio/steady_timer.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "agent_test_util.h"
#include "agents/builtin_agent.h"
#include "agents/policy.h"
#include "agents/prompts.h"
#include "llm_server.h"

using namespace specact;
using namespace specact::testing;
using nlohmann::json;
using std::chrono::milliseconds;

namespace {

std::string slurp(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Compares against tests/agents/golden/<name>; SPECACT_UPDATE_GOLDEN=1 rewrites it.
void expect_golden(const std::string& name, const std::string& actual) {
  std::string path = std::string(SPECACT_AGENTS_TEST_DIR) + "/golden/" + name;
  if (const char* u = std::getenv("SPECACT_UPDATE_GOLDEN"); u && std::string(u) == "1") {
    std::filesystem::create_directories(std::filesystem::path(path).parent_path());
    std::ofstream(path) << actual;
    return;
  }
  std::string expected = slurp(path);
  ASSERT_FALSE(expected.empty()) << "missing golden file " << path
                                 << " (run with SPECACT_UPDATE_GOLDEN=1)";
  EXPECT_EQ(actual, expected) << "prompt changed; if intended, rerun with SPECACT_UPDATE_GOLDEN=1";
}

}  // namespace

// ---- BuiltinAgent -----------------------------------------------------------

TEST(BuiltinAgent, RepliesLaterOnTheLoopNeverInline) {
  boost::asio::io_context io;
  BuiltinAgent agent(AgentRole::Speculator, io);
  AgentContext ctx = sim_context(AgentRole::Speculator);
  Outcome o = ask(agent, io, ctx);
  ASSERT_TRUE(o.reply);
  EXPECT_FALSE(o.inline_call);
  EXPECT_TRUE(o.reply->ok());
  EXPECT_EQ(reply_to_json(*o.reply), reply_to_json(BuiltinSpeculatorPolicy{}.propose(ctx)));
  EXPECT_EQ(agent.describe(), "builtin:speculator");
}

TEST(BuiltinAgent, DelayIsHonoured) {
  boost::asio::io_context io;
  BuiltinAgent agent(AgentRole::Actor, io, milliseconds(150));
  Outcome o = ask(agent, io, sim_context(AgentRole::Actor, 6));
  ASSERT_TRUE(o.reply);
  EXPECT_GE(o.elapsed_ms, 150);
  EXPECT_GE(o.reply->usage.latency_ms, 150);
  EXPECT_NE(agent.describe().find("delay 150 ms"), std::string::npos);
}

TEST(BuiltinAgent, CancelDropsTheReply) {
  boost::asio::io_context io;
  BuiltinAgent agent(AgentRole::Actor, io, milliseconds(100));
  bool called = false;
  agent.request(sim_context(AgentRole::Actor), [&](AgentReply) { called = true; });
  EXPECT_TRUE(agent.busy());
  agent.cancel();
  EXPECT_FALSE(agent.busy());
  io.run_for(milliseconds(200));
  EXPECT_FALSE(called);
  // Cancel with no delay: the reply was already posted but must not run either.
  BuiltinAgent fast(AgentRole::Speculator, io);
  fast.request(sim_context(AgentRole::Speculator), [&](AgentReply) { called = true; });
  fast.cancel();
  io.restart();
  io.run_for(milliseconds(50));
  EXPECT_FALSE(called);
}

TEST(BuiltinAgent, SeedOverrideAndTopKCap) {
  boost::asio::io_context io;
  BuiltinAgent agent(AgentRole::Speculator, io, milliseconds(0), 77, 2);
  AgentContext ctx = sim_context(AgentRole::Speculator);
  ctx.top_k = 5;
  Outcome o = ask(agent, io, ctx);
  ASSERT_TRUE(o.reply);
  EXPECT_EQ(o.reply->candidates.size(), 2u);
  ctx.seed = 77;
  ctx.top_k = 2;
  EXPECT_EQ(reply_to_json(*o.reply), reply_to_json(BuiltinSpeculatorPolicy{}.propose(ctx)));
}

// ---- AgentConfig -------------------------------------------------------------

TEST(AgentConfig, ParsesBothBackends) {
  AgentConfig b = AgentConfig::from_json(
      json::parse(R"({"backend":"builtin","delay_ms":1000,"seed":3,"top_k":2})"));
  EXPECT_EQ(b.backend, AgentConfig::Backend::Builtin);
  EXPECT_EQ(b.delay_ms, 1000);
  EXPECT_EQ(b.seed, 3);
  EXPECT_EQ(b.top_k, 2);
  EXPECT_EQ(AgentConfig::from_json(json::object()).backend, AgentConfig::Backend::Builtin);
  AgentConfig o = AgentConfig::from_json(json::parse(R"({"backend":"openai",
      "base_url":"http://127.0.0.1:8080/v1","model":"m","api_key_env":"K","timeout_ms":15000,
      "connect_timeout_ms":1000,"max_retries":2,"temperature":0.5,"top_k":3,
      "price_in_per_mtok":0.1,"price_out_per_mtok":0.4,"prompt_dir":"/x",
      "response_format":"json_object","max_response_bytes":65536,
      "price_cached_in_per_mtok":0.025})"));
  EXPECT_DOUBLE_EQ(o.cached_in_price(), 0.025);
  EXPECT_EQ(o.backend, AgentConfig::Backend::OpenAI);
  EXPECT_EQ(o.timeout_ms, 15000);
  EXPECT_EQ(o.max_retries, 2);
  EXPECT_DOUBLE_EQ(o.price_out_per_mtok, 0.4);
  EXPECT_EQ(o.response_format, "json_object");
  EXPECT_EQ(AgentConfig::from_json(o.to_json()).to_json(), o.to_json());
}

TEST(AgentConfig, RejectsBadInputNamingTheKeyPath) {
  struct Bad {
    const char* json;
    const char* message;
  };
  std::vector<Bad> bad = {
      {R"([])", "actor: expected object"},
      {R"({"backend":"gpt"})", "actor.backend: unknown backend"},
      {R"({"backend":"builtin","delay":5})", "actor.delay: unknown key"},
      {R"({"backend":"builtin","model":"x"})", "actor.model: not valid for backend \"builtin\""},
      {R"({"backend":"builtin","delay_ms":"5"})", "actor.delay_ms: expected integer"},
      {R"({"backend":"builtin","delay_ms":-1})", "actor.delay_ms: must be in"},
      {R"({"backend":"builtin","top_k":0})", "actor.top_k: must be in"},
      {R"({"backend":"openai","model":"m"})", "actor.base_url: required"},
      {R"({"backend":"openai","base_url":"ftp://x","model":"m"})", "actor.base_url: must start"},
      {R"({"backend":"openai","base_url":"http://x"})", "actor.model: required"},
      {R"({"backend":"openai","base_url":"http://x","model":"m","temperature":"hot"})",
       "actor.temperature: expected number"},
      {R"({"backend":"openai","base_url":"http://x","model":"m","temperature":3})",
       "actor.temperature: must be in"},
      {R"({"backend":"openai","base_url":"http://x","model":"m","timeout_ms":1.5})",
       "actor.timeout_ms: expected integer"},
      {R"({"backend":"openai","base_url":"http://x","model":"m","api_key":"sk-x"})",
       "actor.api_key: unknown key"},
      {R"({"backend":"openai","base_url":"http://x","model":"m","api_key_env":"A","api_key_file":"/f"})",
       "exclusive"},
      {R"({"backend":"openai","base_url":"http://x","model":"m","response_format":"xml"})",
       "actor.response_format"},
  };
  for (const auto& b : bad) {
    try {
      AgentConfig::from_json(json::parse(b.json), "actor");
      ADD_FAILURE() << "accepted " << b.json;
    } catch (const AgentConfigError& e) {
      EXPECT_NE(std::string(e.what()).find(b.message), std::string::npos)
          << b.json << " -> " << e.what();
    }
  }
}

// ---- Prompts -----------------------------------------------------------------

namespace {
AgentContext prompt_context(AgentRole role) {
  AgentContext ctx = sim_context(role, 6, 4);
  ctx.since_decision = 3;
  ctx.call_index = 2;
  ctx.top_k = 2;
  return ctx;
}
}  // namespace

TEST(Prompts, SpeculatorSnapshot) {
  ChatPrompt p = build_prompt(prompt_context(AgentRole::Speculator), PromptTemplates::defaults(),
                              {R"({"candidates":[]})"});
  expect_golden("prompt_speculator.txt", "=== system ===\n" + p.system + "=== user ===\n" + p.user);
}

TEST(Prompts, ActorSnapshot) {
  ChatPrompt p = build_prompt(prompt_context(AgentRole::Actor), PromptTemplates::defaults());
  expect_golden("prompt_actor.txt", "=== system ===\n" + p.system + "=== user ===\n" + p.user);
}

TEST(Prompts, StateBlockRebuildsTheSameDecision) {
  for (auto role : {AgentRole::Speculator, AgentRole::Actor}) {
    AgentContext ctx = prompt_context(role);
    ChatPrompt p = build_prompt(ctx, PromptTemplates::defaults());
    auto state = extract_state(p.user);
    ASSERT_TRUE(state);
    EXPECT_EQ((*state)["role"], to_string(role));
    EXPECT_EQ(reply_to_json(builtin_propose(state_from_json(*state))),
              reply_to_json(builtin_propose(digest(ctx))));
    EXPECT_NE(p.system.find(std::string("ROLE: ") + to_string(role)), std::string::npos);
    for (const auto& k : ctx.knobs) EXPECT_NE(p.system.find(k.name), std::string::npos);
    EXPECT_EQ(p.user.find("{{"), std::string::npos);
    EXPECT_EQ(p.system.find("{{"), std::string::npos);
  }
}

// A later speculator call of the same actor round: the guess is in force,
// every candidate is a measurement (none is the config in force), the prompt
// says so, and the state rebuilds the same reply.
TEST(Prompts, MeasurementsOnlyCallProposesNoGuess) {
  AgentContext ctx = prompt_context(AgentRole::Speculator);
  ctx.top_k = 3;
  ctx.measurements_only = true;
  AgentReply r = builtin_propose(digest(ctx));
  ASSERT_FALSE(r.candidates.empty());
  for (const auto& c : r.candidates) EXPECT_NE(c.config, ctx.current);
  ChatPrompt p = build_prompt(ctx, PromptTemplates::defaults());
  EXPECT_NE(p.user.find("measurements only"), std::string::npos);
  auto state = extract_state(p.user);
  ASSERT_TRUE(state);
  EXPECT_EQ((*state)["measurements_only"], true);
  EXPECT_EQ(reply_to_json(builtin_propose(state_from_json(*state))), reply_to_json(r));
}

// The speculator reasons from pooled evidence: its prompt carries no window
// list (it counts the windows since the decision); the actor gets the last few.
TEST(Prompts, SpeculatorGetsPooledEvidenceOnly) {
  AgentContext ctx = prompt_context(AgentRole::Speculator);
  PolicyInput in = digest(ctx);
  EXPECT_TRUE(in.recent.empty());
  EXPECT_EQ(in.windows_since_decision, 3u);
  EXPECT_FALSE(in.evidence.empty());
  ctx.role = AgentRole::Actor;
  EXPECT_EQ(digest(ctx).recent.size(), 6u);
}

TEST(Prompts, PromptDirOverridesFileByFile) {
  std::string dir = ::testing::TempDir() + "/specact-prompts-" + std::to_string(getpid());
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/actor.txt") << "CUSTOM {{top_k}} <state>{{state}}</state>";
  PromptTemplates t = PromptTemplates::load(dir);
  EXPECT_EQ(t.system, PromptTemplates::defaults().system);
  ChatPrompt p = build_prompt(prompt_context(AgentRole::Actor), t);
  EXPECT_EQ(p.user.rfind("CUSTOM 2 <state>", 0), 0u);
  EXPECT_TRUE(extract_state(p.user));
  std::filesystem::remove_all(dir);
  EXPECT_THROW(PromptTemplates::load(dir), std::runtime_error);
}

TEST(Prompts, InstalledTemplatesMatchTheCompiledDefaults) {
  std::string src = std::string(SPECACT_SOURCE_DIR) + "/daemon/agents/prompts/";
  EXPECT_EQ(slurp(src + "system.txt"), PromptTemplates::defaults().system);
  EXPECT_EQ(slurp(src + "speculator.txt"), PromptTemplates::defaults().speculator);
  EXPECT_EQ(slurp(src + "actor.txt"), PromptTemplates::defaults().actor);
}

// ---- Factory -----------------------------------------------------------------

TEST(MakeAgent, BuildsEachBackend) {
  boost::asio::io_context io;
  auto b =
      make_agent(AgentRole::Actor, AgentConfig::from_json(json::parse(R"({"delay_ms":5})")), io);
  EXPECT_EQ(b->describe(), "builtin:actor (delay 5 ms)");
  auto o = make_agent(
      AgentRole::Speculator,
      AgentConfig::from_json(
          json::parse(R"({"backend":"openai","base_url":"http://127.0.0.1:9/v1","model":"m"})")),
      io);
  EXPECT_EQ(o->describe(), "openai:m@http://127.0.0.1:9/v1");
  EXPECT_THROW(make_agent(AgentRole::Speculator,
                          AgentConfig::from_json(json::parse(
                              R"({"backend":"openai","base_url":"http://x","model":"m",
                                  "api_key_env":"SPECACT_SURELY_UNSET_VAR"})")),
                          io),
               AgentConfigError);
  EXPECT_THROW(make_agent(AgentRole::Speculator,
                          AgentConfig::from_json(json::parse(
                              R"({"backend":"openai","base_url":"http://x","model":"m",
                                  "prompt_dir":"/nonexistent/specact"})")),
                          io),
               AgentConfigError);
}

// ---- Contract: the same cases against both backends ---------------------------

class AgentContract : public ::testing::TestWithParam<std::string> {
 protected:
  boost::asio::io_context io;
  std::unique_ptr<TestLlmServer> server;
  std::unique_ptr<Agent> make(AgentRole role, int64_t delay_ms = 0) {
    json cfg;
    if (GetParam() == "builtin") {
      cfg = {{"backend", "builtin"}, {"delay_ms", delay_ms}};
    } else {
      if (!server) server = std::make_unique<TestLlmServer>(LlmServerOptions{});
      server->set_latency(to_string(role), delay_ms);
      cfg = {{"backend", "openai"},
             {"base_url", server->base_url()},
             {"model", "test"},
             {"timeout_ms", 5000},
             {"max_retries", 0}};
    }
    return make_agent(role, AgentConfig::from_json(cfg), io);
  }
};

TEST_P(AgentContract, SameDecisionsAsTheBuiltinPolicy) {
  for (auto role : {AgentRole::Speculator, AgentRole::Actor}) {
    for (int windows : {0, 1, 4, 9}) {
      auto agent = make(role);
      AgentContext ctx = sim_context(role, windows, 3);
      ctx.top_k = 2;
      Outcome o = ask(*agent, io, ctx);
      ASSERT_TRUE(o.reply);
      ASSERT_TRUE(o.reply->ok()) << o.reply->error;
      EXPECT_FALSE(o.inline_call);
      EXPECT_EQ(reply_to_json(*o.reply), reply_to_json(builtin_propose(digest(ctx))))
          << to_string(role) << " windows " << windows;
      EXPECT_LE(o.reply->candidates.size(), 2u);
      EXPECT_FALSE(agent->busy());
    }
  }
}

TEST_P(AgentContract, CandidatesAreInsideTheCatalogue) {
  auto agent = make(AgentRole::Speculator);
  AgentContext ctx = sim_context(AgentRole::Speculator, 5);
  ctx.top_k = 3;
  Outcome o = ask(*agent, io, ctx);
  ASSERT_TRUE(o.reply && o.reply->ok());
  ASSERT_FALSE(o.reply->candidates.empty());
  for (const auto& c : o.reply->candidates) {
    EXPECT_GE(c.confidence, 0.0);
    EXPECT_LE(c.confidence, 1.0);
    EXPECT_FALSE(c.rationale.empty());
    for (const auto& k : ctx.knobs) {
      ASSERT_TRUE(c.config.count(k.name)) << k.name;
      EXPECT_TRUE(k.domain.contains(c.config.at(k.name)));
    }
    EXPECT_EQ(c.config.size(), ctx.knobs.size());
  }
}

TEST_P(AgentContract, CancelMeansNoCallback) {
  auto agent = make(AgentRole::Actor, 200);
  bool called = false;
  agent->request(sim_context(AgentRole::Actor), [&](AgentReply) { called = true; });
  EXPECT_TRUE(agent->busy());
  io.run_for(milliseconds(20));
  agent->cancel();
  EXPECT_FALSE(agent->busy());
  io.restart();
  io.run_for(milliseconds(300));
  EXPECT_FALSE(called);
}

TEST_P(AgentContract, DelayedReplyLeavesTheLoopRunning) {
  auto agent = make(AgentRole::Actor, 200);
  int ticks = 0;
  boost::asio::steady_timer t(io);
  std::function<void()> tick = [&] {
    t.expires_after(milliseconds(10));
    t.async_wait([&](const boost::system::error_code& ec) {
      if (!ec) ++ticks, tick();
    });
  };
  tick();
  Outcome o = ask(*agent, io, sim_context(AgentRole::Actor, 4));
  t.cancel();
  ASSERT_TRUE(o.reply && o.reply->ok());
  EXPECT_GE(o.elapsed_ms, 200);
  EXPECT_GE(ticks, 5);
}

INSTANTIATE_TEST_SUITE_P(Backends, AgentContract, ::testing::Values("builtin", "openai"),
                         [](const auto& info) { return info.param; });

// ---- The server as a program --------------------------------------------------

TEST(TestLlmProgram, PrintsItsPortAndServes) {
  int out[2];
  ASSERT_EQ(pipe(out), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    dup2(out[1], 1);
    close(out[0]);
    execl(SPECACT_TEST_LLM_BIN, SPECACT_TEST_LLM_BIN, "--port", "0", "--actor-latency-ms", "0",
          nullptr);
    _exit(127);
  }
  close(out[1]);
  FILE* f = fdopen(out[0], "r");
  char line[64] = {0};
  ASSERT_NE(fgets(line, sizeof line, f), nullptr);
  int port = atoi(line);
  EXPECT_GT(port, 0);
  boost::asio::io_context io;
  AgentConfig cfg =
      AgentConfig::from_json({{"backend", "openai"},
                              {"base_url", "http://127.0.0.1:" + std::to_string(port)},
                              {"model", "m"},
                              {"max_retries", 0}});
  auto agent = make_agent(AgentRole::Actor, cfg, io);  // base_url without /v1 works too
  Outcome o = ask(*agent, io, sim_context(AgentRole::Actor, 4));
  ASSERT_TRUE(o.reply);
  EXPECT_TRUE(o.reply->ok()) << o.reply->error;
  kill(pid, SIGTERM);
  int status = 0;
  waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  fclose(f);
}
