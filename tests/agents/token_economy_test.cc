// Tokens over 200 s of simulated time, speculative / actor-only, on every
// simulated workload: the builtin agents decide, the calls are billed as a
// hosted model would bill the openai backend's prompts (sim_llm.h). Selective
// launching (the default) is compared in the same run with always-on
// speculation (engine.selective_launch false, the engine's cadence before
// it): at most 1.5x the actor-only tokens (median of the seeds), and no
// slower to get within 10 % of the best config.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <optional>
#include <vector>

#include "agents/prompts.h"
#include "sim_llm.h"
#include "sim_suite.h"

namespace specact::agents_test {
using namespace specact::engine;
using namespace specact::engine::testing;
using specact::testing::SimLlm;
namespace {

constexpr int kSeeds = 5;

struct Spend {
  uint64_t tokens = 0, cached = 0, spec_tokens = 0;
  double usd = 0;
  uint64_t spec_calls = 0, actor_calls = 0;
  uint64_t reach = 0;  // first window within 10 % of the grid best (0: never)
};

Spend run_once(const sim::SimWorkload& w, Mode mode, uint64_t seed, double grid_p95,
               bool selective = true) {
  EngineOptions o = sim_options(w, mode, seed);
  o.selective_launch = selective;
  auto driver = builtin_driver(w, o, seed);
  SimDriver& d = *driver;
  SimLlm llm;
  d.usage_model = [&](const AgentContext& ctx, const AgentReply& r) { return llm.bill(ctx, r); };
  d.run(kWindows);
  Spend s;
  for (AgentRole r : {AgentRole::Speculator, AgentRole::Actor}) {
    const RoleUsage& u = d.engine().usage(r);
    s.tokens += u.prompt_tokens + u.completion_tokens;
    s.cached += u.cached_tokens;
    s.usd += u.cost_usd;
    if (r == AgentRole::Speculator) s.spec_tokens = u.prompt_tokens + u.completion_tokens;
  }
  s.spec_calls = d.calls_of(AgentRole::Speculator);
  s.actor_calls = d.calls_of(AgentRole::Actor);
  s.reach = d.first_within(grid_p95);
  return s;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

class TokenEconomy : public ::testing::TestWithParam<int> {};

TEST_P(TokenEconomy, SpeculationCostsAtMostHalfAgainTheActorAlone) {
  const sim::SimWorkload w = sim::SimWorkload::all()[static_cast<size_t>(GetParam())];
  sim::SimKernel truth(w, 1);
  const double grid_p95 = sim::grid_search(truth, searched_knobs(w), 9).second;
  std::vector<double> token_ratio, usd_ratio, always_ratio, spec_reach, always_reach, actor_reach;
  auto windows = [](uint64_t reach) { return static_cast<double>(reach ? reach : kWindows); };
  for (uint64_t seed = 1; seed <= kSeeds; ++seed) {
    Spend s = run_once(w, Mode::Speculative, seed, grid_p95);
    Spend all = run_once(w, Mode::Speculative, seed, grid_p95, /*selective=*/false);
    Spend a = run_once(w, Mode::ActorOnly, seed, grid_p95);
    token_ratio.push_back(static_cast<double>(s.tokens) / static_cast<double>(a.tokens));
    always_ratio.push_back(static_cast<double>(all.tokens) / static_cast<double>(a.tokens));
    usd_ratio.push_back(s.usd / a.usd);
    spec_reach.push_back(windows(s.reach));
    always_reach.push_back(windows(all.reach));
    actor_reach.push_back(windows(a.reach));
    std::printf(
        "%s seed %llu: speculative %llu tokens (speculator %llu, %llu cached) $%.4f, %llu+%llu "
        "calls, reach %llu | always-on %llu tokens, %llu+%llu calls, reach %llu | actor-only "
        "%llu tokens $%.4f, %llu calls, reach %llu\n",
        w.name.c_str(), static_cast<unsigned long long>(seed),
        static_cast<unsigned long long>(s.tokens), static_cast<unsigned long long>(s.spec_tokens),
        static_cast<unsigned long long>(s.cached), s.usd,
        static_cast<unsigned long long>(s.spec_calls),
        static_cast<unsigned long long>(s.actor_calls), static_cast<unsigned long long>(s.reach),
        static_cast<unsigned long long>(all.tokens),
        static_cast<unsigned long long>(all.spec_calls),
        static_cast<unsigned long long>(all.actor_calls),
        static_cast<unsigned long long>(all.reach), static_cast<unsigned long long>(a.tokens),
        a.usd, static_cast<unsigned long long>(a.actor_calls),
        static_cast<unsigned long long>(a.reach));
  }
  std::printf(
      "%s: tokens speculative / actor-only median %.2fx (always-on %.2fx), USD %.2fx; median "
      "windows to within 10%%: speculative %.0f, always-on %.0f, actor-only %.0f\n",
      w.name.c_str(), median(token_ratio), median(always_ratio), median(usd_ratio),
      median(spec_reach), median(always_reach), median(actor_reach));
  EXPECT_LE(median(token_ratio), 1.5) << w.name;
  EXPECT_LE(median(spec_reach), median(always_reach)) << w.name;
}

// The prompt's stable prefix: per role, the system message (role, goal, knob
// catalogue, answer format) is byte-identical across every call of a session
// and the user message opens with the role's fixed instructions, so a
// provider's prompt cache serves them; everything that changes comes after.
TEST(TokenEconomyPrompts, StablePrefixIsByteIdenticalAcrossCalls) {
  const sim::SimWorkload w = sim::SimWorkload::periodic_vs_hogs();
  auto driver = builtin_driver(w, sim_options(w, Mode::Speculative, 3), 3);
  SimDriver& d = *driver;
  SimLlm llm;
  d.usage_model = [&](const AgentContext& ctx, const AgentReply& r) { return llm.bill(ctx, r); };
  d.run(120);
  const PromptTemplates t = PromptTemplates::defaults();
  for (AgentRole role : {AgentRole::Speculator, AgentRole::Actor}) {
    const std::string& tpl = role == AgentRole::Actor ? t.actor : t.speculator;
    const std::string fixed = tpl.substr(0, tpl.find("{{"));
    ASSERT_GT(fixed.size(), 200u) << "the role's instructions must come before its data";
    std::optional<std::string> system;
    size_t n = 0;
    for (const auto& c : d.calls) {
      if (c.role != role) continue;
      ChatPrompt p = build_prompt(c.context, t, {"{\"candidates\":[]}"});
      if (!system) system = p.system;
      EXPECT_EQ(p.system, *system) << to_string(role) << " call at window " << c.window;
      EXPECT_EQ(p.user.compare(0, fixed.size(), fixed), 0) << to_string(role);
      ++n;
    }
    EXPECT_GE(n, 3u) << to_string(role);
  }
}

// The test server's prompt cache follows OpenAI's published rules: nothing
// below 1024 tokens, then the shared prefix in steps of 128 tokens.
TEST(TokenEconomyPrompts, PromptCacheCountsLikeOpenAI) {
  specact::testing::PromptCache cache;
  const std::string a(8000, 'a');                     // 2000 tokens
  EXPECT_EQ(cache.lookup_and_store(a + "x"), 0u);     // first sight
  EXPECT_EQ(cache.lookup_and_store(a + "y"), 1920u);  // 2000 shared tokens, in 128s
  EXPECT_EQ(cache.lookup_and_store(std::string(4000, 'a') + "z"), 0u);  // 1000 < 1024
  specact::testing::PromptCache every({0, 1, 4});
  EXPECT_EQ(every.lookup_and_store("abcdefgh1"), 0u);
  EXPECT_EQ(every.lookup_and_store("abcdefgh2"), 2u);
}

INSTANTIATE_TEST_SUITE_P(SimWorkloads, TokenEconomy, sim_workloads(), sim_workload_name);

}  // namespace
}  // namespace specact::agents_test
