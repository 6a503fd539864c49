// Configuration of one agent role (the "speculator" / "actor" objects of the
// daemon config). Schema in daemon/agents/README.md.
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <stdexcept>
#include <string>

namespace specact {

class AgentConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct AgentConfig {
  enum class Backend { Builtin, OpenAI };
  Backend backend = Backend::Builtin;
  int top_k = 0;  // 0: the engine decides; otherwise the engine asks for at most this many

  // builtin
  int64_t delay_ms = 0;  // reply this long after the request (reproduces model latency)
  int64_t seed = -1;     // >= 0 overrides AgentContext::seed

  // openai
  std::string base_url;  // e.g. https://api.openai.com/v1, http://127.0.0.1:8080/v1
  std::string model;
  std::string api_key_env;   // name of the environment variable holding the key
  std::string api_key_file;  // or a file whose first line is the key
  int64_t timeout_ms = 60000;
  int64_t connect_timeout_ms = 5000;
  int max_retries = 3;
  double temperature = 0.2;
  double price_in_per_mtok = 0;   // USD per million prompt tokens
  double price_out_per_mtok = 0;  // USD per million completion tokens
  // USD per million prompt tokens the server served from its prompt cache
  // (usage.prompt_tokens_details.cached_tokens); unset: price_in_per_mtok.
  std::optional<double> price_cached_in_per_mtok;
  double cached_in_price() const { return price_cached_in_per_mtok.value_or(price_in_per_mtok); }
  std::string prompt_dir;                       // overrides the compiled-in templates, file by file
  std::string response_format = "json_schema";  // json_schema | json_object | none
  int64_t max_response_bytes = 1 << 20;

  // Throws AgentConfigError naming the key path (e.g. "actor.timeout_ms: ...").
  static AgentConfig from_json(const nlohmann::json& j, const std::string& path = "agent");
  nlohmann::json to_json() const;  // without secrets (there are none: only where the key is)
};

}  // namespace specact
