// A real HTTP/1.1 server speaking the OpenAI Chat Completions protocol on
// 127.0.0.1, for tests and benchmarks: scripted replies, per-role latency,
// fault injection, and a policy mode that answers with the builtin policy from
// the <state> block of the prompt. Plain POSIX sockets, one thread per
// connection, "Connection: close" after every response.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "prompt_cache.h"

namespace specact::testing {

// One scripted response.
struct LlmStep {
  enum class Kind { Reply, Policy, Fault };
  Kind kind = Kind::Policy;
  std::string content;  // Reply: the assistant message text, verbatim
  // Fault: 500 | 429 | 401 | 400_response_format | hang | slow_body | malformed_json |
  // huge_body | huge_body_chunked | reset | invalid_utf8 | truncated_json |
  // truncated_body | empty_choices | no_usage
  std::string fault;
  int retry_after_s = 1;         // 429
  uint64_t bytes = 50ull << 20;  // huge_body*
  int64_t slow_total_ms = 2000;  // slow_body: the body trickles over this long
  int64_t delay_ms = -1;         // >= 0 overrides the role's latency

  static LlmStep reply(std::string content);
  static LlmStep policy();
  static LlmStep make_fault(std::string fault);
  // {"reply": "<text>"|{...}} | {"policy": true} | {"fault": "...", ...}, plus "delay_ms".
  static LlmStep from_json(const nlohmann::json& j);
};

struct LlmServerOptions {
  uint16_t port = 0;  // 0: any free port
  // What to answer when a role's script is empty: "policy" or "error" (HTTP 500).
  std::string when_empty = "policy";
  std::map<std::string, int64_t> latency_ms;          // per role: speculator, actor
  std::map<std::string, std::deque<LlmStep>> script;  // per role, or "any"
  // usage.prompt_tokens_details.cached_tokens: the prefix shared with an
  // earlier request (OpenAI's rules by default).
  PromptCacheOptions prompt_cache;
  // {"when_empty":..,"latency_ms":{"speculator":1000,"actor":10000},"script":{"actor":[...]},
  //  "prompt_cache":{"min_tokens":1024,"block_tokens":128,"entries":64}}
  static LlmServerOptions from_json(const nlohmann::json& j);
};

struct LlmServerStats {
  uint64_t requests = 0;
  std::map<std::string, uint64_t> per_role;
  std::map<std::string, uint64_t> faults;
  std::string last_body;
  std::string last_authorization;
  std::vector<std::string> paths;
};

class TestLlmServer {
 public:
  explicit TestLlmServer(LlmServerOptions options);
  ~TestLlmServer();
  TestLlmServer(const TestLlmServer&) = delete;
  TestLlmServer& operator=(const TestLlmServer&) = delete;

  uint16_t port() const { return port_; }
  std::string base_url() const;  // http://127.0.0.1:PORT/v1
  void push(const std::string& role, LlmStep step);
  void set_latency(const std::string& role, int64_t ms);
  LlmServerStats stats() const;
  void stop();

  // Role of a request body: from the <state> block, else the "ROLE:" line of the
  // system prompt; "unknown" otherwise.
  static std::string detect_role(const nlohmann::json& request);

 private:
  void accept_loop();
  void serve(int fd);
  bool sleep_unless_stopped(int64_t ms, int fd = -1);

  LlmServerOptions options_;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread acceptor_;
  mutable std::mutex mu_;
  std::vector<std::thread> workers_;
  LlmServerStats stats_;
  PromptCache prompt_cache_;
};

}  // namespace specact::testing
