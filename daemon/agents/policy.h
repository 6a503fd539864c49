// Builtin Speculator and Actor policies: synchronous, deterministic given the
// seed, no I/O. Both read a PolicyInput, a compact digest of an AgentContext
// (per-config pooled evidence plus the latest windows and facts about the
// target). The same digest is the JSON state block embedded in every LLM
// prompt, so a test server can rebuild it from a prompt and answer exactly as
// the builtin agent would.
//
// The units: digest.cc (AgentContext -> PolicyInput), state_codec.cc (the
// state JSON both ways), rules.cc (scheduler knowledge as stated rules),
// search.cc (where to measure next), actor_policy.cc and speculator_policy.cc
// (one role each). Evidence statistics come from daemon/evidence, the same
// model the engine decides with.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/agent_protocol.h"
#include "evidence/evidence.h"

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

// Everything known about one config, pooled over its clean windows.
struct ConfigEvidence {
  Config config;
  evidence::Estimate est;
  uint64_t last_window = 0;
};

// What the actor's pending decision rests on: the history it was asked with.
// The speculator replays the actor's rule on it to guess that decision.
struct ActorView {
  uint64_t windows = 0;  // history windows the view covers (oldest first)
  Config current;        // in force when the actor was asked
  Config confirmed;      // the actor's last decision at that time
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
  std::vector<WindowSummary> recent;     // actor: the last few (speculator: none)
  std::vector<ConfigEvidence> evidence;  // every config with clean windows, whole history
  std::optional<ActorView> actor_view;   // speculator only, while the actor is thinking
  // Facts about the target over its latest clean windows: on-CPU time and
  // voluntary sleeps per second of wall time.
  std::optional<double> oncpu_ms_per_s;
  std::optional<double> sleeps_per_s;
  int online_cpus = 1;
  double actor_latency_windows = 10;
  bool actor_explores = true;
  bool measurements_only = false;  // speculator: the guess is in force; measurements only
  EvidenceOptions opts;
  SearchOptions search;
  GuardReference guard;
};

// Limits of the digest (and so of the prompts).
inline constexpr size_t kActorRecentWindows = 12;
// Windows the target facts (burst, CPU share) are averaged over: the latest
// few, so they follow the workload, and enough to smooth one odd window.
inline constexpr size_t kFactWindows = 10;

// Pools an AgentContext into a PolicyInput.
PolicyInput digest(const AgentContext& ctx);
// The state JSON block (stable field names; see daemon/agents/README.md).
nlohmann::json state_to_json(const PolicyInput& in);
// Inverse of state_to_json; throws std::invalid_argument on malformed state.
PolicyInput state_from_json(const nlohmann::json& j);

// Evidence of one config's windows (exposed for tests): the engine's model.
ConfigEvidence pool_evidence(const std::vector<const WindowRecord*>& windows, Metric metric,
                             const EvidenceOptions& opts = {});

// Speculator: candidate 1 is what should be in force when the actor answers
// (its likely decision, or the best measured config while it will not decide
// yet), so a right guess is confirmed as a hit; the other candidates are the
// search's next measurements, tried while the actor thinks.
class BuiltinSpeculatorPolicy {
 public:
  AgentReply propose(const AgentContext& ctx) const { return propose(digest(ctx)); }
  AgentReply propose(const PolicyInput& in) const;
};

// Actor: deliberate. Moves to a measured config only when it is better than
// the confirmed one by more than the noise and the metric's resolution;
// explores itself only when no speculator explores for it; says "converged"
// when the search has nothing left to measure.
class BuiltinActorPolicy {
 public:
  AgentReply propose(const AgentContext& ctx) const { return propose(digest(ctx)); }
  AgentReply propose(const PolicyInput& in) const;
};

// Dispatches on in.role.
AgentReply builtin_propose(const PolicyInput& in);

// Reply payload as an LLM would write it: {"candidates":[...],"wants_more_evidence":b}.
nlohmann::json reply_to_json(const AgentReply& r);

}  // namespace specact
