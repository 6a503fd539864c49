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

#include "common/agent_protocol.h"

namespace specact {

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
