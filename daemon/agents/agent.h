// The agent interface shared by the Speculator and the Actor, whatever the
// backend (builtin optimizer or an OpenAI-compatible LLM). The engine never
// calls agents itself: it emits "call agent" actions with an AgentContext, the
// daemon runs them through an Agent and feeds the AgentReply back.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

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
};

struct AgentReply {
  std::vector<Candidate> candidates;  // best first; at most top_k
  bool wants_more_evidence = false;   // actor: "keep measuring, ask me again"
  AgentUsage usage;
  std::string error;      // non-empty: the call failed (transport, validation, ...)
  uint64_t rejected = 0;  // candidates dropped by validation
  bool ok() const { return error.empty(); }
};

class Agent {
 public:
  using Callback = std::function<void(AgentReply)>;
  virtual ~Agent() = default;
  // Starts one request. The callback runs later on the daemon's event loop
  // (never inline, never on another thread). At most one request is in flight.
  virtual void request(const AgentContext& ctx, Callback done) = 0;
  // Drops the in-flight request, if any: its callback will not run.
  virtual void cancel() = 0;
  virtual bool busy() const = 0;
  virtual std::string describe() const = 0;  // "builtin", "openai:gpt-4o-mini@http://..."
};

}  // namespace specact
