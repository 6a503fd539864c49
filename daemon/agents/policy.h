// Builtin Speculator and Actor policies: synchronous, deterministic given the
// seed, no I/O. Both read a PolicyInput, a compact digest of an AgentContext
// (per-config pooled evidence with confidence intervals plus the latest
// windows). The same digest is the JSON state block embedded in every LLM
// prompt, so a test server can rebuild it from a prompt and answer exactly as
// the builtin agent would.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "agents/agent.h"

namespace specact {

// One window as the agents see it (no histogram).
struct WindowSummary {
  uint64_t index = 0;
  Config config;
  std::optional<double> objective_us;  // the metric's p95, if the window has one
  double p50_us = 0;
  double p99_us = 0;
  uint64_t samples = 0;
  std::optional<double> throughput;
  bool straddled = false;
  bool low_confidence = false;
};

// Everything known about one config, pooled over its usable windows (not
// straddled, not low-confidence, with an objective).
struct ConfigEvidence {
  Config config;
  uint64_t windows = 0;
  uint64_t samples = 0;
  double p95_us = 0;          // pooled-histogram p95 (mean of window p95s without histograms)
  double window_best_us = 0;  // the lowest of its windows' own p95s
  double ci_low_us = 0;       // ~95 % interval of the p95
  double ci_high_us = 0;
  std::optional<double> throughput;  // mean per window
  uint64_t last_window = 0;
  // Relative standard error of p95 (on the log scale), from the interval.
  double rel_se() const;
};

// What the actor's pending decision is most likely based on: the history up to
// the window at whose end the engine asked it (the first window after its last
// decision under a config with usable evidence). The speculator replays the
// actor's rule on it to guess that decision.
struct ActorView {
  uint64_t windows = 0;  // history windows the view covers (oldest first)
  Config current;        // in force when the actor was asked
  std::vector<ConfigEvidence> evidence;
};

struct PolicyInput {
  AgentRole role = AgentRole::Speculator;
  Metric metric = Metric::ServiceP95;
  std::vector<KnobInfo> knobs;
  Config current, confirmed, best, baseline;
  int top_k = 1;
  uint64_t seed = 0;
  uint64_t call_index = 0;
  uint64_t windows_total = 0;            // windows in the context's history
  uint64_t windows_since_decision = 0;   // of which after the actor's last decision
  std::vector<WindowSummary> recent;     // speculator: since the decision; actor: the last few
  std::vector<ConfigEvidence> evidence;  // every config with usable windows, whole history
  std::optional<ActorView> actor_view;   // speculator only
  // Mean on-CPU time of the target between voluntary sleeps over the latest
  // windows (its request size), when it sleeps often enough to have one.
  std::optional<double> burst_us;
};

// EEVDF's per-task slice is the task's request size: a slice a little above
// the burst lets a woken task preempt on an early deadline and finish its
// burst within one slice; the closer above, the earlier the deadline (on
// kernel 6.18 a 300 us burst waited out a hog's slice in ~5 % of windows at a
// 350 us slice, ~30 % at 500 us, and was cut up at 300 us). The prior proposes
// task.slice_us = this x burst: a 30 % margin for the burst's own jitter.
inline constexpr double kSliceBurstFactor = 1.3;
// A measured slice within this log distance (~15 %) of the prior counts as it.
inline constexpr double kPriorSpread = 0.14;
// Windows the prior's config is measured before the speculator searches around it.
inline constexpr uint64_t kPriorTrialWindows = 3;
// The floor of the service p95: burst x this. A config that has served a
// whole window at the floor is as good as any setting can be: converged. (At a
// fixed good slice the kernel still flips about a third of the windows to
// ~1.4 ms, so neither the pooled p95 nor a median of few windows settles it;
// no knob value reaches the floor while the target waits out other tasks.)
inline constexpr double kFloorMargin = 1.3;
// Fewer voluntary sleeps per second than this: no burst (a CPU-bound target).
inline constexpr double kMinSleepsPerSecond = 20;

// Limits of the digest (and so of the prompts).
inline constexpr size_t kSpeculatorRecentWindows = 8;
inline constexpr size_t kActorRecentWindows = 12;

// Pools an AgentContext into a PolicyInput.
PolicyInput digest(const AgentContext& ctx);
// The state JSON block (stable field names; see daemon/agents/README.md).
nlohmann::json state_to_json(const PolicyInput& in);
// Inverse of state_to_json; throws std::invalid_argument on malformed state.
PolicyInput state_from_json(const nlohmann::json& j);

// Evidence statistics for one set of windows of a single config (exposed for tests).
ConfigEvidence pool_evidence(const std::vector<const WindowRecord*>& windows, Metric metric);

// Speculator: predicts the actor first, explores second. Candidate 1 is the
// actor's own rule replayed on the evidence the actor is deciding from (its
// view; the whole evidence when that view would not decide yet), so a right
// guess is confirmed as a hit; the other candidates are the most promising
// pattern-search steps around the best recent config. When the predicted
// decision is already in force, exploring comes first (staying is implicit).
class BuiltinSpeculatorPolicy {
 public:
  AgentReply propose(const AgentContext& ctx) const { return propose(digest(ctx)); }
  AgentReply propose(const PolicyInput& in) const;
};

class BuiltinActorPolicy {
 public:
  // Decisions need the better config to win a one-sided test at this z.
  static constexpr double kDecisionZ = 1.645;
  AgentReply propose(const AgentContext& ctx) const { return propose(digest(ctx)); }
  AgentReply propose(const PolicyInput& in) const;
};

// Dispatches on in.role.
AgentReply builtin_propose(const PolicyInput& in);

// Reply payload as an LLM would write it: {"candidates":[...],"wants_more_evidence":b}.
nlohmann::json reply_to_json(const AgentReply& r);

}  // namespace specact
