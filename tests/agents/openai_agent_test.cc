// The OpenAI-compatible client against the test LLM server over real HTTP on
// 127.0.0.1, for every fault the issue lists. Short timeouts keep it fast.
#include "agents/openai_agent.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/steady_timer.hpp>
#include <cstdlib>
#include <fstream>

#include "agent_test_util.h"
#include "agents/agents.h"
#include "agents/policy.h"
#include "llm_server.h"

using namespace specact;
using namespace specact::testing;
using std::chrono::milliseconds;

namespace {

// An openai-backend config for the test server at base_url.
AgentConfig test_server_config(const std::string& base_url) {
  AgentConfig config;
  config.backend = AgentConfig::Backend::OpenAI;
  config.base_url = base_url;
  config.model = "specact-test";
  config.timeout_ms = 2000;
  return config;
}

class OpenAIClient : public ::testing::Test {
 protected:
  boost::asio::io_context io;
  TestLlmServer server{LlmServerOptions{}};
  AgentConfig config;

  void SetUp() override {
    config = test_server_config(server.base_url());
    config.connect_timeout_ms = 500;
    config.max_retries = 2;
    config.price_in_per_mtok = 0.10;
    config.price_out_per_mtok = 0.40;
  }
  std::unique_ptr<OpenAIAgent> agent(AgentRole role = AgentRole::Speculator) {
    return std::make_unique<OpenAIAgent>(role, config, io);
  }
};

bool contains(const std::string& s, const std::string& what) {
  return s.find(what) != std::string::npos;
}

uint16_t unused_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);  // nothing listens there now
  return ntohs(a.sin_port);
}

}  // namespace

TEST_F(OpenAIClient, PolicyModeAnswersLikeTheBuiltinPolicy) {
  auto a = agent();
  AgentContext ctx = sim_context(AgentRole::Speculator);
  Outcome o = ask(*a, io, ctx);
  ASSERT_TRUE(o.reply);
  EXPECT_FALSE(o.inline_call);
  ASSERT_TRUE(o.reply->ok()) << o.reply->error;
  AgentReply expected = BuiltinSpeculatorPolicy{}.propose(ctx);
  EXPECT_EQ(reply_to_json(*o.reply), reply_to_json(expected));
  EXPECT_GT(o.reply->usage.prompt_tokens, 200u);
  EXPECT_GT(o.reply->usage.completion_tokens, 5u);
  double cost =
      o.reply->usage.prompt_tokens * 0.10 / 1e6 + o.reply->usage.completion_tokens * 0.40 / 1e6;
  EXPECT_DOUBLE_EQ(o.reply->usage.cost_usd, cost);
  EXPECT_GT(o.reply->usage.latency_ms, 0);
  EXPECT_FALSE(a->busy());
  auto stats = server.stats();
  EXPECT_EQ(stats.requests, 1u);
  EXPECT_EQ(stats.per_role["speculator"], 1u);
  EXPECT_EQ(stats.paths.at(0), "/v1/chat/completions");
  auto body = nlohmann::json::parse(stats.last_body);
  EXPECT_EQ(body["model"], "specact-test");
  EXPECT_EQ(body["response_format"]["type"], "json_schema");
  EXPECT_EQ(body["messages"].size(), 2u);
}

TEST_F(OpenAIClient, RetriesServerErrorsThenSucceeds) {
  server.push("any", LlmStep::make_fault("500"));
  server.push("any", LlmStep::make_fault("500"));
  auto a = agent();
  Outcome o = ask(*a, io, sim_context(AgentRole::Actor, 6));
  ASSERT_TRUE(o.reply);
  EXPECT_TRUE(o.reply->ok()) << o.reply->error;
  EXPECT_EQ(a->totals().attempts, 3u);
  EXPECT_EQ(a->totals().retries, 2u);
  EXPECT_EQ(server.stats().requests, 3u);
}

TEST_F(OpenAIClient, GivesUpAfterMaxRetriesWithAClearError) {
  for (int i = 0; i < 3; ++i) server.push("any", LlmStep::make_fault("500"));
  auto a = agent();
  Outcome o = ask(*a, io, sim_context(AgentRole::Speculator));
  ASSERT_TRUE(o.reply);
  EXPECT_FALSE(o.reply->ok());
  EXPECT_TRUE(contains(o.reply->error, "HTTP 500")) << o.reply->error;
  EXPECT_TRUE(contains(o.reply->error, "after 3 attempts")) << o.reply->error;
  EXPECT_TRUE(o.reply->candidates.empty());
  EXPECT_EQ(a->totals().errors, 1u);
  EXPECT_FALSE(a->busy());
}

TEST_F(OpenAIClient, HonoursRetryAfterOn429) {
  LlmStep s = LlmStep::make_fault("429");
  s.retry_after_s = 1;
  server.push("any", s);
  auto a = agent();
  Outcome o = ask(*a, io, sim_context(AgentRole::Speculator));
  ASSERT_TRUE(o.reply);
  EXPECT_TRUE(o.reply->ok()) << o.reply->error;
  EXPECT_GE(o.elapsed_ms, 1000);
  EXPECT_EQ(server.stats().requests, 2u);
}

TEST_F(OpenAIClient, Unauthorized401IsNotRetried) {
  server.push("any", LlmStep::make_fault("401"));
  auto a = agent();
  Outcome o = ask(*a, io, sim_context(AgentRole::Speculator));
  ASSERT_TRUE(o.reply);
  EXPECT_TRUE(contains(o.reply->error, "authentication failed (HTTP 401)")) << o.reply->error;
  EXPECT_EQ(server.stats().requests, 1u);
}

TEST_F(OpenAIClient, HangingServerTimesOutWithoutBlockingTheLoop) {
  config.timeout_ms = 300;
  config.max_retries = 1;
  server.push("any", LlmStep::make_fault("hang"));
  server.push("any", LlmStep::make_fault("hang"));
  auto a = agent();
  // A timer on the same loop keeps ticking while the request hangs.
  int ticks = 0;
  boost::asio::steady_timer t(io);
  std::function<void()> tick = [&] {
    t.expires_after(milliseconds(10));
    t.async_wait([&](const boost::system::error_code& ec) {
      if (ec) return;
      ++ticks;
      tick();
    });
  };
  tick();
  Outcome o = ask(*a, io, sim_context(AgentRole::Speculator));
  t.cancel();
  ASSERT_TRUE(o.reply);
  EXPECT_TRUE(contains(o.reply->error, "timeout")) << o.reply->error;
  EXPECT_TRUE(contains(o.reply->error, "after 2 attempts")) << o.reply->error;
  EXPECT_LT(o.elapsed_ms, 5000);
  EXPECT_GE(ticks, 10);  // ~60 possible in 600 ms: the loop was never blocked
}

TEST_F(OpenAIClient, SlowBodyBeyondTheTimeoutFails) {
  config.timeout_ms = 400;
  config.max_retries = 0;
  LlmStep s = LlmStep::make_fault("slow_body");
  s.slow_total_ms = 3000;
  server.push("any", s);
  auto a = agent();
  Outcome o = ask(*a, io, sim_context(AgentRole::Speculator));
  ASSERT_TRUE(o.reply);
  EXPECT_TRUE(contains(o.reply->error, "timeout")) << o.reply->error;
}

TEST_F(OpenAIClient, SlowBodyWithinTheTimeoutSucceeds) {
  LlmStep s = LlmStep::make_fault("slow_body");
  s.slow_total_ms = 200;
  server.push("any", s);
  auto a = agent();
  Outcome o = ask(*a, io, sim_context(AgentRole::Speculator));
  ASSERT_TRUE(o.reply);
  EXPECT_TRUE(o.reply->ok()) << o.reply->error;
  EXPECT_FALSE(o.reply->candidates.empty());
}

TEST_F(OpenAIClient, MalformedEnvelopesAreClearErrors) {
  for (const char* f : {"malformed_json", "invalid_utf8", "truncated_json", "empty_choices"}) {
    server.push("any", LlmStep::make_fault(f));
    auto a = agent();
    Outcome o = ask(*a, io, sim_context(AgentRole::Speculator));
    ASSERT_TRUE(o.reply) << f;
    EXPECT_TRUE(contains(o.reply->error, "malformed response")) << f << ": " << o.reply->error;
    EXPECT_TRUE(o.reply->candidates.empty());
  }
}

TEST_F(OpenAIClient, HugeBodyIsCutOffAtTheCap) {
  for (const char* f : {"huge_body", "huge_body_chunked"}) {
    server.push("any", LlmStep::make_fault(f));  // 50 MB
    auto a = agent();
    Outcome o = ask(*a, io, sim_context(AgentRole::Speculator));
    ASSERT_TRUE(o.reply) << f;
    EXPECT_TRUE(contains(o.reply->error, "larger than 1048576 bytes"))
        << f << ": " << o.reply->error;
  }
}

TEST_F(OpenAIClient, ConnectionResetAndTruncatedBodyAreRetried) {
  config.max_retries = 1;
  for (const char* f : {"reset", "truncated_body"}) {
    server.push("any", LlmStep::make_fault(f));
    server.push("any", LlmStep::make_fault(f));
    auto a = agent();
    Outcome o = ask(*a, io, sim_context(AgentRole::Speculator));
    ASSERT_TRUE(o.reply) << f;
    EXPECT_TRUE(contains(o.reply->error, "connection error")) << f << ": " << o.reply->error;
    EXPECT_EQ(a->totals().attempts, 2u) << f;
  }
}

TEST_F(OpenAIClient, EndpointDownIsAConnectionError) {
  config.base_url = "http://127.0.0.1:" + std::to_string(unused_port()) + "/v1";
  config.max_retries = 1;
  auto a = agent();
  Outcome o = ask(*a, io, sim_context(AgentRole::Speculator));
  ASSERT_TRUE(o.reply);
  EXPECT_TRUE(contains(o.reply->error, "connection error")) << o.reply->error;
}

TEST_F(OpenAIClient, DnsFailureIsAnError) {
  config.base_url = "http://specact-no-such-host.invalid/v1";
  config.max_retries = 0;
  config.timeout_ms = 3000;
  auto a = agent();
  Outcome o = ask(*a, io, sim_context(AgentRole::Speculator));
  ASSERT_TRUE(o.reply);
  EXPECT_FALSE(o.reply->ok());
  EXPECT_TRUE(contains(o.reply->error, "resolve") || contains(o.reply->error, "timeout"))
      << o.reply->error;
}

TEST_F(OpenAIClient, TlsAgainstAPlainServerIsATlsError) {
  config.base_url = "https://127.0.0.1:" + std::to_string(server.port()) + "/v1";
  auto a = agent();
  Outcome o = ask(*a, io, sim_context(AgentRole::Speculator));
  ASSERT_TRUE(o.reply);
  EXPECT_TRUE(contains(o.reply->error, "TLS error")) << o.reply->error;
}

TEST_F(OpenAIClient, FallsBackWhenResponseFormatIsUnsupported) {
  server.push("any", LlmStep::make_fault("400_response_format"));
  server.push("any", LlmStep::make_fault("400_response_format"));
  auto a = agent();
  Outcome o = ask(*a, io, sim_context(AgentRole::Speculator));
  ASSERT_TRUE(o.reply);
  EXPECT_TRUE(o.reply->ok()) << o.reply->error;
  auto body = nlohmann::json::parse(server.stats().last_body);
  EXPECT_FALSE(body.contains("response_format"));  // json_schema -> json_object -> none
  EXPECT_EQ(server.stats().requests, 3u);
}

TEST_F(OpenAIClient, ProseAndCodeFencesAroundTheJsonAreTolerated) {
  server.push("any", LlmStep::reply(
                         "Sure! Here is my answer:\n```json\n{\"candidates\":[{\"config\":{"
                         "\"task.slice_us\":400},\"confidence\":0.7,\"rationale\":\"smaller\"}]}\n"
                         "```\nHope this helps."));
  auto a = agent();
  Outcome o = ask(*a, io, sim_context(AgentRole::Speculator));
  ASSERT_TRUE(o.reply);
  ASSERT_TRUE(o.reply->ok()) << o.reply->error;
  ASSERT_EQ(o.reply->candidates.size(), 1u);
  EXPECT_EQ(o.reply->candidates[0].config.at("task.slice_us"), 400);
}

TEST_F(OpenAIClient, HostileReplyIsRejectedAndCounted) {
  server.push(
      "any",
      LlmStep::reply(
          R"({"candidates":[{"config":{"kernel.panic":1},"confidence":1,"rationale":"x"}]})"));
  auto a = agent();
  Outcome o = ask(*a, io, sim_context(AgentRole::Speculator));
  ASSERT_TRUE(o.reply);
  EXPECT_FALSE(o.reply->ok());
  EXPECT_TRUE(contains(o.reply->error, "invalid reply")) << o.reply->error;
  EXPECT_TRUE(o.reply->candidates.empty());
  EXPECT_EQ(o.reply->rejected, 1u);
  EXPECT_EQ(a->totals().rejected, 1u);
  EXPECT_EQ(server.stats().requests, 1u);  // a bad answer is not retried
}

TEST_F(OpenAIClient, MissingUsageIsEstimated) {
  server.push("any", LlmStep::make_fault("no_usage"));
  auto a = agent();
  Outcome o = ask(*a, io, sim_context(AgentRole::Speculator));
  ASSERT_TRUE(o.reply);
  ASSERT_TRUE(o.reply->ok()) << o.reply->error;
  EXPECT_GT(o.reply->usage.prompt_tokens, 200u);
}

TEST_F(OpenAIClient, ApiKeyFromEnvIsSentButNeverInTheBodyOrDescription) {
  setenv("SPECACT_TEST_KEY", "sk-test-secret-123", 1);
  config.api_key_env = "SPECACT_TEST_KEY";
  auto a = agent();
  Outcome o = ask(*a, io, sim_context(AgentRole::Speculator));
  ASSERT_TRUE(o.reply && o.reply->ok());
  EXPECT_EQ(server.stats().last_authorization, "Bearer sk-test-secret-123");
  EXPECT_FALSE(contains(a->last_request_body(), "sk-test-secret"));
  EXPECT_FALSE(contains(a->describe(), "sk-test-secret"));
  unsetenv("SPECACT_TEST_KEY");
  EXPECT_THROW(agent(), AgentConfigError);
}

TEST_F(OpenAIClient, ApiKeyFromFile) {
  std::string path = ::testing::TempDir() + "/specact-key-" + std::to_string(getpid());
  std::ofstream(path) << "  sk-file-key\n";
  config.api_key_file = path;
  auto a = agent();
  Outcome o = ask(*a, io, sim_context(AgentRole::Speculator));
  ASSERT_TRUE(o.reply && o.reply->ok());
  EXPECT_EQ(server.stats().last_authorization, "Bearer sk-file-key");
  unlink(path.c_str());
  EXPECT_THROW(agent(), AgentConfigError);
}

TEST_F(OpenAIClient, CancelDropsTheCallbackAndFreesTheAgent) {
  server.set_latency("speculator", 500);
  auto a = agent();
  bool called = false;
  a->request(sim_context(AgentRole::Speculator), [&](AgentReply) { called = true; });
  EXPECT_TRUE(a->busy());
  io.run_for(milliseconds(50));
  a->cancel();
  EXPECT_FALSE(a->busy());
  io.restart();
  io.run_for(milliseconds(700));
  EXPECT_FALSE(called);
  server.set_latency("speculator", 0);
  Outcome o = ask(*a, io, sim_context(AgentRole::Speculator));
  ASSERT_TRUE(o.reply);
  EXPECT_TRUE(o.reply->ok()) << o.reply->error;
}

TEST_F(OpenAIClient, SecondRequestWhileBusyIsRefusedNotQueued) {
  server.set_latency("speculator", 200);
  auto a = agent();
  std::optional<AgentReply> first;
  a->request(sim_context(AgentRole::Speculator), [&](AgentReply r) { first = std::move(r); });
  Outcome second = ask(*a, io, sim_context(AgentRole::Speculator), milliseconds(100));
  ASSERT_TRUE(second.reply);
  EXPECT_TRUE(contains(second.reply->error, "busy"));
  io.restart();
  while (!first) io.run_for(milliseconds(10));
  EXPECT_TRUE(first->ok()) << first->error;
}

TEST_F(OpenAIClient, DestroyingTheAgentMidRequestIsSafe) {
  server.set_latency("speculator", 300);
  bool called = false;
  {
    auto a = agent();
    a->request(sim_context(AgentRole::Speculator), [&](AgentReply) { called = true; });
    io.run_for(milliseconds(30));
  }
  io.restart();
  io.run_for(milliseconds(400));
  EXPECT_FALSE(called);
}

// usage.prompt_tokens_details.cached_tokens, as an OpenAI-compatible server
// reports a prompt prefix it holds from an earlier request: read and priced
// at price_cached_in_per_mtok. The system message is the same in both calls,
// so the second one finds at least that much of its prompt cached.
TEST(OpenAIClientCache, CachedPromptTokensArePricedSeparately) {
  boost::asio::io_context io;
  LlmServerOptions opts;
  opts.prompt_cache.min_tokens = 0;  // count every shared prefix (a local server's cache)
  opts.prompt_cache.block_tokens = 1;
  TestLlmServer server(opts);
  AgentConfig config = test_server_config(server.base_url());
  config.price_in_per_mtok = 1.0;
  config.price_cached_in_per_mtok = 0.25;
  config.price_out_per_mtok = 4.0;
  OpenAIAgent agent(AgentRole::Speculator, config, io);
  Outcome first = ask(agent, io, sim_context(AgentRole::Speculator, 4, 1));
  ASSERT_TRUE(first.reply && first.reply->ok());
  EXPECT_EQ(first.reply->usage.cached_tokens, 0u);  // nothing seen before
  Outcome second = ask(agent, io, sim_context(AgentRole::Speculator, 5, 1));
  ASSERT_TRUE(second.reply && second.reply->ok());
  const AgentUsage& u = second.reply->usage;
  EXPECT_GT(u.cached_tokens, 300u);
  EXPECT_LT(u.cached_tokens, u.prompt_tokens);
  EXPECT_DOUBLE_EQ(u.cost_usd, (u.prompt_tokens - u.cached_tokens) * 1.0 / 1e6 +
                                   u.cached_tokens * 0.25 / 1e6 + u.completion_tokens * 4.0 / 1e6);
  EXPECT_EQ(agent.totals().cached_tokens, u.cached_tokens);
  // Unset, cached input costs what other input costs.
  AgentConfig plain = config;
  plain.price_cached_in_per_mtok.reset();
  EXPECT_DOUBLE_EQ(plain.cached_in_price(), 1.0);
}
