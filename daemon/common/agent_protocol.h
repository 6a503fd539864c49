// The agent protocol: what the engine hands an agent (AgentContext) and what
// comes back (AgentReply). The engine and every agent backend use these types;
// the engine does not depend on the agents library.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/evidence_options.h"
#include "common/knob_info.h"
#include "common/window.h"

namespace specact {

enum class AgentRole { Speculator, Actor };
inline const char* to_string(AgentRole r) {
  return r == AgentRole::Speculator ? "speculator" : "actor";
}

// A window attributed to the config that was in force while it was measured.
struct WindowRecord {
  Window window;
  Config config;
  bool straddled = false;  // a change happened inside it: not evidence for either config
};

// Settings of the builtin search that are judgement, not fact: configurable
// (the "search" section of the config), carried to every agent call so a
// test server answering from the prompt's state decides the same way.
struct SearchOptions {
  // A task that sleeps between requests wants a slice that covers its burst
  // (the on-CPU time between a wakeup and the next sleep); the measured burst
  // is a mean, and mean x (1 + this) covers the p95 request of a burst whose
  // coefficient of variation is up to ~0.18 (1.645 standard deviations).
  double slice_burst_margin = 0.3;
  // The target "alone keeps every CPU busy" when its threads' on-CPU time is
  // at least this share of all online CPUs: other tasks then hold at most
  // the rest, so it mostly competes with itself.
  double saturated_share = 0.9;
};

struct AgentContext {
  AgentRole role = AgentRole::Speculator;
  Metric metric = Metric::ServiceP95;
  std::vector<KnobInfo> knobs;        // only the knobs the engine may tune (available, allowed)
  Config current;                     // in force now (possibly provisional)
  Config confirmed;                   // last config the actor decided
  Config best;                        // best pooled p95 so far
  Config baseline;                    // what the machine had before specact
  std::vector<WindowRecord> history;  // every window so far, oldest first (bounded by the engine)
  size_t since_decision =
      0;  // index into history of the first window after the actor's last decision
  int top_k = 1;
  uint64_t seed = 0;
  uint64_t call_index = 0;  // how many calls this role has had (for determinism and prompts)
  // CPUs the target can run on (the machine's online CPUs): with the target's
  // on-CPU time it tells whether the target alone keeps every CPU busy.
  int online_cpus = 1;
  // The actor's measured answer time in windows (the engine's running
  // estimate; its configured prior until the actor has answered once).
  double actor_latency_windows = 10;
  // The engine's evidence rules, so an agent judges windows as the engine does.
  EvidenceOptions evidence;
  SearchOptions search;
  GuardReference guard;
  // Windows of `history` the actor's pending request was made with (its
  // view); 0 when no actor request is in flight.
  size_t actor_view = 0;
  // Speculator: its guess for the actor's pending decision is in force
  // already (an earlier call of this actor round made it, from the same
  // view): every candidate is a measurement, none a guess.
  bool measurements_only = false;
  // The actor itself takes exploration steps (no speculator explores for it:
  // actor-only mode); otherwise it only decides between measured configs.
  bool actor_explores = true;
};

struct Candidate {
  Config config;
  double confidence = 0.5;  // [0,1]
  std::string rationale;
};

struct AgentUsage {
  uint64_t prompt_tokens = 0;
  uint64_t completion_tokens = 0;
  double latency_ms = 0;
  double cost_usd = 0;
  // Of prompt_tokens, those the server served from its prompt cache
  // (usage.prompt_tokens_details.cached_tokens; 0 where not reported).
  uint64_t cached_tokens = 0;
};

struct AgentReply {
  std::vector<Candidate> candidates;  // best first; at most top_k
  bool wants_more_evidence = false;   // actor: "keep measuring, ask me again"
  AgentUsage usage;
  std::string error;      // non-empty: the call failed (transport, validation, ...)
  uint64_t rejected = 0;  // candidates dropped by validation
  bool ok() const { return error.empty(); }
};

}  // namespace specact
