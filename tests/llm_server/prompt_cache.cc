#include "prompt_cache.h"

#include <algorithm>

namespace specact::testing {

uint64_t PromptCache::lookup_and_store(const std::string& prompt) {
  std::lock_guard<std::mutex> lock(mu_);
  size_t shared = 0;
  for (const auto& s : seen_) {
    auto [a, b] = std::mismatch(prompt.begin(), prompt.end(), s.begin(), s.end());
    shared = std::max(shared, static_cast<size_t>(a - prompt.begin()));
  }
  seen_.push_back(prompt);
  while (seen_.size() > std::max<size_t>(1, opts_.entries)) seen_.pop_front();
  // Whole tokens of the shared prefix only: a token that straddles the first
  // difference is not the same token.
  uint64_t tokens = shared / 4;
  if (opts_.block_tokens > 1) tokens -= tokens % opts_.block_tokens;
  return tokens < opts_.min_tokens ? 0 : tokens;
}

}  // namespace specact::testing
