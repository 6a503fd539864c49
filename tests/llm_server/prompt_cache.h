// What an OpenAI-compatible server reports as usage.prompt_tokens_details.
// cached_tokens: the part of a prompt's prefix it already holds from an earlier
// request (providers cache prompt prefixes; OpenAI counts only prompts of at
// least 1024 tokens, in steps of 128). Tokens are counted as the test server
// counts them, ~4 characters each. Used by the test LLM server and by the
// simulated agents' token accounting, so both report what a server would.
#pragma once

#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace specact::testing {

// Tokens the test server bills for `chars` characters of prompt or reply.
inline uint64_t tokens_of(size_t chars) { return (chars + 3) / 4; }

// A chat request's messages as one text, in order, for prefix matching: the
// same messages give the same text, a change anywhere ends the shared prefix.
// Each message is "<role>\n<content>\n".
inline std::string prompt_text(const std::vector<std::pair<std::string, std::string>>& messages) {
  std::string s;
  for (const auto& [role, content] : messages) s += role + "\n" + content + "\n";
  return s;
}

struct PromptCacheOptions {
  // OpenAI's published rules: no caching below 1024 prompt tokens, then the
  // cached prefix in steps of 128 tokens.
  uint64_t min_tokens = 1024;
  uint64_t block_tokens = 128;
  size_t entries = 64;  // prompts remembered (oldest forgotten first)
};

class PromptCache {
 public:
  explicit PromptCache(PromptCacheOptions o = {}) : opts_(o) {}
  // The cached tokens of `prompt` (the request's messages, serialised in
  // order), then remembers it. Thread-safe.
  uint64_t lookup_and_store(const std::string& prompt);

 private:
  PromptCacheOptions opts_;
  std::mutex mu_;
  std::deque<std::string> seen_;
};

}  // namespace specact::testing
