// OpenAI-compatible Chat Completions backend (OpenAI, vLLM, llama.cpp server,
// Ollama /v1, LM Studio): POST {base_url}/chat/completions with libcurl's multi
// socket interface driven by the Asio loop (curl's sockets are watched with
// posix::stream_descriptor, its timeouts with a steady_timer; DNS runs in curl's
// resolver thread), so nothing ever blocks the loop. Retries with jittered backoff on 429
// (Retry-After honoured), 5xx, timeouts and connection errors; every reply is validated
// (validate.h).
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <random>
#include <string>

#include "agents/agent.h"
#include "agents/agent_config.h"
#include "agents/prompts.h"

namespace specact {

class OpenAIAgent final : public Agent {
 public:
  // Reads the API key (env var or file) and the prompt templates now; throws
  // AgentConfigError if either source is named but unusable.
  OpenAIAgent(AgentRole role, const AgentConfig& config, boost::asio::io_context& io);
  ~OpenAIAgent() override;

  void request(const AgentContext& ctx, Callback done) override;
  void cancel() override;
  bool busy() const override { return static_cast<bool>(call_); }
  std::string describe() const override;

  // Running totals of this agent (one role), for status and tests.
  struct Totals {
    uint64_t calls = 0;
    uint64_t errors = 0;
    uint64_t attempts = 0;
    uint64_t retries = 0;
    uint64_t rejected = 0;
    uint64_t prompt_tokens = 0;
    uint64_t cached_tokens = 0;
    uint64_t completion_tokens = 0;
    double cost_usd = 0;
  };
  const Totals& totals() const { return totals_; }
  // The request body of the last attempt (tests check it carries no secret).
  const std::string& last_request_body() const { return last_body_; }

  struct Call;  // one request in flight (implementation detail, used by curl callbacks)
  // Entry points of curl's multi callbacks (implementation detail).
  void on_socket_change_for_curl(int fd, int what) { on_socket_change(fd, what); }
  void on_timer_change_for_curl(long timeout_ms) { on_timer_change(timeout_ms); }

 private:
  void start_attempt();
  struct SocketWatch;
  void on_socket_change(int fd, int what);  // CURLMOPT_SOCKETFUNCTION
  void on_timer_change(long timeout_ms);    // CURLMOPT_TIMERFUNCTION
  void arm(const std::shared_ptr<SocketWatch>& w);
  void socket_action(int fd, int events);
  void check_done();
  void on_transfer_done(int curl_code);
  void retry_or_fail(const std::string& why, std::chrono::milliseconds min_delay);
  void finish(AgentReply reply);
  void cleanup_transfer();
  std::string build_body(const AgentContext& ctx, const ChatPrompt& prompt) const;

  AgentRole role_;
  AgentConfig config_;
  boost::asio::io_context& io_;
  boost::asio::steady_timer curl_timer_;
  std::map<int, std::shared_ptr<SocketWatch>> sockets_;
  boost::asio::steady_timer backoff_timer_;
  std::string api_key_;  // never logged, never in describe()
  PromptTemplates templates_;
  std::string response_format_;  // downgraded when a server refuses json_schema
  void* multi_ = nullptr;        // CURLM*
  std::unique_ptr<Call> call_;
  uint64_t generation_ = 0;
  std::mt19937_64 jitter_rng_;
  std::deque<std::string> own_replies_;  // last few accepted replies, for the speculator prompt
  Totals totals_;
  std::string last_body_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace specact
