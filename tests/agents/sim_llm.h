// What a hosted model would bill the simulated agents: each call's prompt is
// built exactly as the openai backend builds it (daemon/agents/prompts.h,
// with the role's last replies), counted and cached as an OpenAI-compatible
// server counts them (tests/llm_server/prompt_cache.h), and priced at the
// paper's prices (gemini-2.5-flash actor, flash-lite speculator; cached
// input at a quarter of the input price, Google's published ratio).
#pragma once

#include <deque>
#include <string>

#include "agents/policy.h"
#include "agents/prompts.h"
#include "prompt_cache.h"

namespace specact::testing {

struct SimPrices {
  double in = 0, cached_in = 0, out = 0;  // USD per million tokens
};
inline SimPrices paper_prices(AgentRole r) {
  return r == AgentRole::Actor ? SimPrices{0.30, 0.075, 2.50} : SimPrices{0.10, 0.025, 0.40};
}

class SimLlm {
 public:
  AgentUsage bill(const AgentContext& ctx, const AgentReply& reply) {
    auto& own = own_[ctx.role == AgentRole::Speculator ? 0 : 1];
    ChatPrompt p = build_prompt(ctx, templates_, {own.begin(), own.end()});
    AgentUsage u;
    u.prompt_tokens = tokens_of(p.system.size() + p.user.size());
    u.cached_tokens =
        std::min(u.prompt_tokens,
                 cache_.lookup_and_store(prompt_text({{"system", p.system}, {"user", p.user}})));
    const std::string answer = reply_to_json(reply).dump();
    u.completion_tokens = tokens_of(answer.size());
    own.push_back(reply_summary(reply, ctx));
    while (own.size() > kOwnRepliesInPrompt) own.pop_front();
    const SimPrices pr = paper_prices(ctx.role);
    u.cost_usd = (static_cast<double>(u.prompt_tokens - u.cached_tokens) * pr.in +
                  static_cast<double>(u.cached_tokens) * pr.cached_in +
                  static_cast<double>(u.completion_tokens) * pr.out) /
                 1e6;
    return u;
  }

 private:
  PromptTemplates templates_ = PromptTemplates::defaults();
  PromptCache cache_;
  std::deque<std::string> own_[2];
};

}  // namespace specact::testing
