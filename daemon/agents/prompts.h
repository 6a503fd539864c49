// Prompts for the LLM backend, after the paper: a system prompt with the goal
// and the knob domains; the speculator sees the latest results since the
// actor's last decision and its own recent replies; the actor sees a
// compressed chronology. Every user message carries the PolicyInput as one
// JSON block between <state> and </state>.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "agents/agent.h"
#include "agents/policy.h"

namespace specact {

inline constexpr const char* kStateBegin = "<state>";
inline constexpr const char* kStateEnd = "</state>";
// The speculator's own replies its prompt carries: the latest only (what it
// proposed last, so it does not repeat itself); older ones were measured and
// are in the evidence.
inline constexpr size_t kOwnRepliesInPrompt = 1;

// Template texts with {{placeholders}}: system.txt, speculator.txt, actor.txt.
struct PromptTemplates {
  std::string system, speculator, actor;
  // Compiled in from daemon/agents/prompts/ (installed to
  // ${CMAKE_INSTALL_DATADIR}/specact/prompts for reading and copying).
  static PromptTemplates defaults();
  // Defaults overridden by whichever of the three files exist in dir; throws
  // std::runtime_error if dir is not a readable directory.
  static PromptTemplates load(const std::string& dir);
};

struct ChatPrompt {
  std::string system;
  std::string user;
};

ChatPrompt build_prompt(const AgentContext& ctx, const PromptTemplates& templates,
                        const std::vector<std::string>& own_recent_replies = {},
                        double window_ms = 1000);

// A reply as the speculator's next prompt shows it ("your last reply"): the
// candidates' configs as differences from the context's baseline, without
// rationales (what was proposed, not why: the evidence shows what came of it).
std::string reply_summary(const AgentReply& reply, const AgentContext& ctx);

// The JSON state block of a prompt text (between the first <state> and the last
// </state>), or nullopt if there is none or it does not parse.
std::optional<nlohmann::json> extract_state(const std::string& text);

}  // namespace specact
